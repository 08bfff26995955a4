//! Wires the layers for one mount: runtime, credentials, client, a bucket
//! check (explained in plain words by `check::explain`), the filesystem,
//! and the FUSE session.

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::check::explain;
use crate::config::{MountConfig, Target};
use crate::cos::client::HttpClient;
use crate::cos::endpoint::{Endpoint, Style};
use crate::cos::{ListRequest, ObjectClient};
use crate::creds::{CredentialStore, Credentials};
use crate::fs::Fs;
use crate::fuse::Observers;
use crate::metrics::{ControlSocket, MetricsServer, MountView};
use crate::mount::{self, Readiness};
use crate::server::{RunningServer, Server, ServerConfig};

/// Mounts as configured and serves until unmounted. Failures before the
/// mount is live are returned as one-line messages.
pub fn run_mount(config: &MountConfig, readiness: &mut Readiness) -> Result<(), String> {
    keep_malloc_within_budget();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_name("cosmount-io")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    let started = std::time::SystemTime::now();
    let (client, local_server) = runtime.block_on(connect(config))?;
    let client = Arc::new(client);
    if let (Some(age), false) = (config.abort_stale_uploads, config.fs.read_only) {
        let prefix = config.fs.prefix.clone();
        runtime.spawn(crate::cleanup::at_mount(
            client.clone(),
            prefix,
            started,
            age,
        ));
    }
    let fs = Fs::new(client.clone(), config.fs.clone())?;
    let fs = Arc::new(fs);
    let observers = Arc::new(Observers::new(open_audit_log(config)?));
    let view = Arc::new(MountView {
        fs: fs.clone(),
        client: client.clone(),
        observers: observers.clone(),
        bucket: config.bucket.clone(),
    });
    let _metrics = match config.monitoring.metrics_listen {
        Some(addr) => Some(runtime.block_on(MetricsServer::start(addr, view.clone()))?),
        None => None,
    };
    let _control = {
        let _entered = runtime.enter();
        ControlSocket::start(&config.mount.mountpoint, view)
    };
    let served = mount::serve(fs, &runtime, &config.mount, observers.clone(), || {
        readiness.ready()
    });
    if let Some(audit) = observers.audit_log() {
        audit.flush();
    }
    if let Some(server) = local_server {
        runtime.block_on(server.shutdown());
    }
    log::info!("COS client: {}", client.stats().summary());
    served.map_err(|e| mount_error(config, &e))?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}

/// The audit log of `--audit-log`, opened before mounting so that a bad
/// path fails the mount.
fn open_audit_log(config: &MountConfig) -> Result<Option<Arc<AuditLog>>, String> {
    let monitoring = &config.monitoring;
    match &monitoring.audit_log {
        Some(path) => AuditLog::open(path, monitoring.audit_reads).map(Some),
        None => Ok(None),
    }
}

/// glibc gives each busy thread its own heap ("arena"); buffers freed by one
/// thread then sit idle in another's, and resident memory drifts tens of
/// MiB above the cache budget. Two arenas keep it close to the budget.
/// And once a large buffer is freed, glibc raises its threshold for
/// mapping one on its own and serves the next from a heap, where freed
/// multi-MiB block and part buffers stay resident: a fixed 1 MiB threshold
/// maps each of them apart and gives it back when freed (on SeaweedFS, four
/// sequential readers peaked at 138–149 MiB with it, 191–201 without, a
/// 1 GiB write at 90 against 139–147, at the same CPU: the buffers that
/// are freed and taken again at once are pooled, so they are not mapped
/// anew).
fn keep_malloc_within_budget() {
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Allocations of this many bytes and more are mapped on their own.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Builds the client (starting the embedded server for `--local`) and
/// checks the bucket answers.
async fn connect(config: &MountConfig) -> Result<(HttpClient, Option<RunningServer>), String> {
    let (endpoint, creds, local_server) = match &config.target {
        Target::Local { dir } => {
            let (server, keys) = start_local_server(config, dir).await?;
            let url = format!("http://{}", server.addr());
            let endpoint =
                Endpoint::custom(&url, &config.bucket, &config.region, Style::VirtualHosted)
                    .map_err(|e| e.to_string())?;
            (endpoint, CredentialStore::fixed(keys), Some(server))
        }
        target => (
            target.endpoint(&config.bucket, &config.region)?,
            config.credentials.store().await?,
            None,
        ),
    };
    let client_config = config.client_config(endpoint);
    let client = HttpClient::new(client_config, Arc::new(creds)).map_err(|e| e.to_string())?;
    check_bucket(&client, config).await?;
    Ok((client, local_server))
}

/// Starts `cosmount serve` in-process over `dir` with fresh random keys.
async fn start_local_server(
    config: &MountConfig,
    dir: &std::path::Path,
) -> Result<(RunningServer, Credentials), String> {
    let secret = |n: usize| -> String {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..n)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect()
    };
    let keys = Credentials::permanent(&format!("AKIDlocal{}", secret(24)), &secret(40));
    let server_config = ServerConfig {
        root: dir.to_path_buf(),
        buckets: vec![config.bucket.clone()],
        keys: vec![keys.clone()],
        region: config.region.clone(),
        ..ServerConfig::default()
    };
    let server = Server::start(server_config)
        .await
        .map_err(|e| format!("cannot serve {} as a local bucket: {e}", dir.display()))?;
    Ok((server, keys))
}

/// HEAD Bucket; on failure, a one-key List to learn COS's error code, then
/// a message that says what is wrong and what to do.
async fn check_bucket(client: &HttpClient, config: &MountConfig) -> Result<(), String> {
    let head_error = match client.head_bucket().await {
        Ok(()) => return Ok(()),
        // A website domain answers `/` with its index document, or 404
        // without one; only a missing bucket is fatal there.
        Err(e) if config.website && e.status() == Some(404) && e.code() != "NoSuchBucket" => {
            return Ok(());
        }
        Err(e) => e,
    };
    if config.website {
        return Err(explain(&head_error, config, &client.endpoint().host));
    }
    let probe = ListRequest {
        max_keys: 1,
        ..ListRequest::default()
    };
    let error = match client.list_page(&probe).await {
        Err(e) if !e.code().is_empty() => e,
        _ => head_error,
    };
    Err(explain(&error, config, &client.endpoint().host))
}

fn mount_error(config: &MountConfig, e: &std::io::Error) -> String {
    let mp = config.mount.mountpoint.display();
    match e.raw_os_error() {
        Some(libc::ENOENT) if !std::path::Path::new("/dev/fuse").exists() => {
            "/dev/fuse is missing: load the fuse module (`modprobe fuse`) or install fuse3"
                .to_string()
        }
        Some(libc::EBUSY) => format!("mountpoint {mp} is busy"),
        Some(libc::EPERM | libc::EACCES) => {
            format!(
                "not allowed to mount on {mp}: {e} (install fuse3 for fusermount3, or mount as root)"
            )
        }
        _ => format!("cannot mount on {mp}: {e}"),
    }
}
