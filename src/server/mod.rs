//! The embedded COS-compatible server (`cosmount serve`, and in-process for
//! `--local DIR`): the subset of the COS XML API the client uses, with the
//! same signature checks (the shared signer), error documents, status codes
//! and header spelling, over buckets stored durably in a folder.
//!
//! ```text
//!   http (accept, keep-alive) ─► service (route, auth, stats, errors) ─► handlers ─► store
//!                                   ├─ router   bucket / key / operation
//!                                   ├─ auth     q-sign verification, Keyring
//!                                   └─ admin    /stats, /metrics (separate port)
//!   sts (separate port, --sts-ttl) ─► issues temporary keys into the Keyring
//! ```
//!
//! Start it with [`Server::start`] from inside a tokio runtime; it runs on
//! that runtime until [`RunningServer::shutdown`].

mod admin;
pub mod auth;
mod body;
mod conditional;
mod error;
pub mod faults;
mod handlers;
mod http;
pub mod listing;
mod metrics;
mod pacing;
mod response;
pub mod router;
mod service;
pub mod stats;
pub mod store;
pub mod sts;

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use log::info;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cos::bucket;
use crate::creds::Credentials;
use auth::Keyring;
use faults::Faults;
pub use faults::{FaultConfig, FaultKind};
use router::Op;
use stats::Stats;
use store::Store;
use sts::Sts;
pub use sts::StsEmulation;

/// Who may use the buckets without signing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Signed requests only.
    #[default]
    Private,
    /// Anonymous HEAD, GET and list.
    PublicRead,
    /// Anonymous everything.
    PublicReadWrite,
}

impl Access {
    /// Whether an anonymous request may run `op`.
    pub fn allows_anonymous(self, op: Op) -> bool {
        match self {
            Access::Private => false,
            Access::PublicRead => op.is_read(),
            Access::PublicReadWrite => true,
        }
    }
}

/// Everything the server needs to start. Plain data; validated by
/// [`Server::start`].
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Folder holding the buckets (created when its parent exists).
    pub root: PathBuf,
    /// Address of the COS endpoint (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Address of the admin endpoint, when wanted.
    pub admin_listen: Option<SocketAddr>,
    /// Buckets (`name-appid`) to serve, created when missing. Empty: serve
    /// the buckets already in `root`.
    pub buckets: Vec<String>,
    /// Keys accepted in signatures.
    pub keys: Vec<Credentials>,
    /// Anonymous access.
    pub access: Access,
    /// Region named in copy sources, locations and errors.
    pub region: String,
    /// Make every write reach the disk (fsync) before answering.
    pub fsync: bool,
    /// Emulate STS and the instance metadata service on a second address.
    pub sts: Option<StsEmulation>,
    /// Fault injection (off by default).
    pub faults: FaultConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            root: PathBuf::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: None,
            buckets: Vec::new(),
            keys: Vec::new(),
            access: Access::Private,
            region: "ap-guangzhou".to_string(),
            fsync: false,
            sts: None,
            faults: FaultConfig::default(),
        }
    }
}

/// State shared by every request.
pub struct State {
    pub(crate) store: Store,
    pub(crate) bucket_names: Vec<String>,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) access: Access,
    pub(crate) region: String,
    pub(crate) stats: Stats,
    pub(crate) header_case: hyper::http::Extensions,
    pub(crate) sts: Option<Arc<Sts>>,
    pub(crate) faults: Faults,
    request_prefix: String,
    request_counter: AtomicU64,
}

impl State {
    /// A new unique request id (COS-style base64).
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        base64::engine::general_purpose::STANDARD.encode(format!("{}_{n:x}", self.request_prefix))
    }

    /// True when an anonymous request for `op` must be refused.
    pub(crate) fn deny_anonymous(&self, op: Op, anonymous: bool) -> bool {
        anonymous && !self.access.allows_anonymous(op)
    }
}

/// The server entry point.
pub struct Server;

/// A started server; dropping it stops accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    sts_addr: Option<SocketAddr>,
    keyring: Arc<Keyring>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Validates `config`, opens the buckets, binds the ports and starts
    /// serving on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> io::Result<RunningServer> {
        validate(&config)?;
        prepare_root(&config.root)?;
        let names = match config.buckets.is_empty() {
            true => discover_buckets(&config.root)?,
            false => config.buckets.clone(),
        };
        let listener = bind(config.listen).await?;
        let admin = match config.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let sts_listener = match &config.sts {
            Some(s) => Some(bind(s.listen).await?),
            None => None,
        };
        let (root, store_names, fsync) = (config.root.clone(), names.clone(), config.fsync);
        let store = tokio::task::spawn_blocking(move || Store::open(&root, &store_names, fsync))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open the buckets in {}: {e}", config.root.display()),
                )
            })?;
        let keyring = Arc::new(Keyring::new(config.keys.iter().cloned()));
        let sts = config
            .sts
            .as_ref()
            .map(|s| Arc::new(Sts::new(keyring.clone(), &config.keys, s.ttl)));
        let state = Arc::new(State {
            store,
            bucket_names: names,
            keyring: keyring.clone(),
            access: config.access,
            region: config.region.clone(),
            stats: Stats::default(),
            header_case: http::cos_header_case().await?,
            sts: sts.clone(),
            faults: Faults::new(config.faults.clone()),
            request_prefix: request_prefix(),
            request_counter: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let addr = listener.local_addr()?;
        let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;
        let sts_addr = sts_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let mut tasks = Vec::new();
        let cos_state = state.clone();
        let pace = config.faults.throttle_uploads;
        tasks.push(http::serve(listener, stopped.clone(), pace, move |req| {
            service::handle(cos_state.clone(), req)
        }));
        if let Some(admin) = admin {
            let admin_state = state.clone();
            tasks.push(http::serve(admin, stopped.clone(), None, move |req| {
                admin::handle(admin_state.clone(), req)
            }));
        }
        if let (Some(listener), Some(sts)) = (sts_listener, sts) {
            tasks.push(http::serve(listener, stopped, None, move |req| {
                sts::handle(sts.clone(), req)
            }));
            info!(
                "emulating STS and the metadata service on http://{} (keys live {:?})",
                sts_addr.map_or_else(String::new, |a| a.to_string()),
                config.sts.as_ref().map(|s| s.ttl).unwrap_or_default()
            );
        }
        if state.faults.rate() > 0.0 {
            info!("{}", state.faults.describe());
        }
        info!(
            "serving {} from {} on http://{addr} ({:?}, {} key(s))",
            state.bucket_names.join(", "),
            config.root.display(),
            config.access,
            config.keys.len()
        );
        Ok(RunningServer {
            addr,
            admin_addr,
            sts_addr,
            keyring,
            stop,
            tasks,
        })
    }
}

impl RunningServer {
    /// The COS endpoint's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin endpoint's address, when one was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The STS/metadata emulation's address, when it runs.
    pub fn sts_addr(&self) -> Option<SocketAddr> {
        self.sts_addr
    }

    /// The keys the server accepts; keys added here work at once.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Stops accepting, lets open requests finish, and returns when done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn validate(config: &ServerConfig) -> io::Result<()> {
    if config.root.as_os_str().is_empty() {
        return Err(invalid("no root folder given (--root DIR)".into()));
    }
    if let Some(bad) = config.buckets.iter().find(|b| !bucket::is_valid_name(b)) {
        return Err(invalid(format!(
            "bad bucket name {bad:?}: use <name>-<appid>, e.g. examplebucket-1250000000 (lowercase letters, digits, '-')"
        )));
    }
    if config.keys.is_empty() && config.access == Access::Private {
        return Err(invalid(
            "no way in: give --secret-id and --secret-key, or --public-read / --public-read-write"
                .into(),
        ));
    }
    config.faults.validate().map_err(invalid)?;
    if config.sts.as_ref().is_some_and(|s| s.ttl.is_zero()) {
        return Err(invalid("--sts-ttl must be at least 1 second".into()));
    }
    if let Some(k) = config
        .keys
        .iter()
        .find(|k| k.secret_id.is_empty() || k.secret_key.is_empty())
    {
        return Err(invalid(format!(
            "empty SecretId or SecretKey (SecretId {:?})",
            k.secret_id
        )));
    }
    Ok(())
}

/// Makes sure the root is a folder, creating it (not its parents) if missing.
fn prepare_root(root: &Path) -> io::Result<()> {
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(invalid(format!("root {} is not a folder", root.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(root).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create root {}: {e}", root.display()),
            )
        }),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot use root {}: {e}", root.display()),
        )),
    }
}

/// The bucket folders already in `root`.
fn discover_buckets(root: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && bucket::is_valid_name(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(invalid(format!(
            "no bucket in {}: give one with --bucket NAME-APPID",
            root.display()
        )));
    }
    names.sort();
    Ok(names)
}

async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

fn request_prefix() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{now:x}_{:x}", std::process::id())
}
