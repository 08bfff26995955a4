//! Temporary credentials rotating under load: three mounts, one per
//! refreshing source (cam_role from the metadata service, STS AssumeRole,
//! credential_process), each against its own `cosmount serve --sts-ttl 20`,
//! run a read/write workload side by side for three minutes. Each must
//! finish with no failed operation, at least six rotations of the mount's
//! keys in the server's log, and every signed request on the COS port made
//! with a temporary key and its currently valid token (the server's
//! authentication counters: no rejection at all, no other kind of key).

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};

use super::{issued_to, metadata_url, sts_server};
use crate::common::mount::{TestMount, tail};
use crate::common::{BUCKET, REGION, SECRET_ID, SECRET_KEY, TestServer};

/// Lifetime of the emulated temporary keys.
const TTL: u64 = 20;
/// Rotations each mount must show.
const MIN_ROTATIONS: usize = 6;
/// Size of the seeded file read at random offsets.
const BIG: usize = 3 << 20;

/// How long the workload runs: three minutes, or `COSMOUNT_ROTATION_SECS`
/// when iterating locally.
fn workload_time() -> Duration {
    let secs = std::env::var("COSMOUNT_ROTATION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

#[derive(Clone, Copy, Debug)]
enum Source {
    CamRole,
    AssumeRole,
    Process,
}

impl Source {
    /// The mount's credential options.
    fn mount_args(self, server: &TestServer) -> Vec<String> {
        match self {
            Source::CamRole => vec![
                "--cam-role".into(),
                "mount-role".into(),
                "--cam-role-endpoint".into(),
                metadata_url(server),
            ],
            Source::AssumeRole => vec![
                "--secret-id".into(),
                SECRET_ID.into(),
                "--secret-key".into(),
                SECRET_KEY.into(),
                "--role-arn".into(),
                ROLE_ARN.into(),
                "--role-session-name".into(),
                "mount".into(),
                "--sts-endpoint".into(),
                format!("{}/", server.sts_url()),
            ],
            Source::Process => vec![
                "--credential-process".into(),
                fetch_command(server, "process-mount"),
            ],
        }
    }

    /// The caller the server names when it issues the mount's keys.
    fn mount_caller(self) -> String {
        match self {
            Source::CamRole => "cam_role mount-role".into(),
            Source::AssumeRole => format!("AssumeRole {ROLE_ARN} (session mount,"),
            Source::Process => "cam_role process-mount".into(),
        }
    }
}

const ROLE_ARN: &str = "qcs::cam::uin/100000000001:roleName/rotation";

/// A credential command: the metadata answer has the JSON shape
/// credential_process expects.
fn fetch_command(server: &TestServer, role: &str) -> String {
    format!("curl -sf {}/{role}", metadata_url(server))
}

/// The workload's writes, through the mount.
struct Writes(PathBuf);

impl Writes {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), String> {
        fs::write(self.0.join(key), data).map_err(|e| format!("write {key}: {e}"))
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        fs::remove_file(self.0.join(key)).map_err(|e| format!("rm {key}: {e}"))
    }
}

/// The bytes of workload file `n`.
fn contents(n: usize) -> Vec<u8> {
    let len = 1 + (n * 7919) % (48 << 10);
    (0..len).map(|i| ((i * 31 + n * 17) % 251) as u8).collect()
}

fn big_contents() -> Vec<u8> {
    (0..BIG).map(|i| ((i / 7) % 253) as u8).collect()
}

/// What one variant did.
struct Outcome {
    source: Source,
    operations: usize,
    failures: Vec<String>,
    server_rotations: usize,
    mount_rotations: usize,
    auth: serde_json::Value,
    elapsed: Duration,
}

/// One mount under load for `time`.
fn run_variant(source: Source, time: Duration) -> Outcome {
    let started = Instant::now();
    let server = sts_server(TTL);
    let seeder = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seeder.put(
        "work/big.bin",
        Bytes::from(big_contents()),
        &ObjectAttrs::default(),
    ))
    .unwrap();
    let mut args = vec![
        "--endpoint".to_string(),
        server.url(),
        "--region".into(),
        REGION.into(),
        "--metadata-ttl".into(),
        "0".into(),
        "--negative-ttl".into(),
        "0".into(),
    ];
    args.extend(source.mount_args(&server));
    let mut mount = TestMount::start_raw(BUCKET, &args);
    let writes = Writes(mount.path());
    let (operations, failures) = workload(&mount, &writes, time);
    let mount_log = mount.log_text();
    let stopped = mount.stop();
    let mut failures = failures;
    if !stopped.success() {
        failures.push(format!("the mount exited with {stopped}"));
    }
    if !failures.is_empty() {
        eprintln!("{source:?} mount log tail:\n{}", tail(&mount_log, 40));
    }
    let server_log = server.log_text();
    Outcome {
        source,
        operations,
        failures,
        server_rotations: issued_to(&server_log, &source.mount_caller()).saturating_sub(1),
        mount_rotations: mount_log.matches("rotated credentials").count(),
        auth: server.admin_json("/stats/auth"),
        elapsed: started.elapsed(),
    }
}

/// Writes, reads back through the mount, lists and reads at random offsets
/// until `time` is up; returns (operations, failures).
fn workload(mount: &TestMount, writes: &Writes, time: Duration) -> (usize, Vec<String>) {
    let deadline = Instant::now() + time;
    let big = big_contents();
    let mut live: BTreeSet<usize> = BTreeSet::new();
    let mut failures = Vec::new();
    let mut operations = 0;
    let mut n = 0;
    let mut check = |ok: Result<(), String>, failures: &mut Vec<String>| {
        operations += 1;
        if let Err(e) = ok {
            failures.push(e);
        }
    };
    while Instant::now() < deadline {
        let name = format!("work/f{n:05}");
        let data = contents(n);
        let written = writes.put(&name, &data);
        let wrote = written.is_ok();
        check(written, &mut failures);
        if wrote {
            live.insert(n);
            check(read_back(mount, &name, &data), &mut failures);
        }
        check(list(mount, &live), &mut failures);
        check(read_at(mount, &big, n), &mut failures);
        if live.len() > 6 {
            let oldest = live.pop_first().unwrap_or_default();
            check(writes.delete(&format!("work/f{oldest:05}")), &mut failures);
        }
        n += 1;
        thread::sleep(Duration::from_millis(300));
    }
    (operations, failures)
}

fn read_back(mount: &TestMount, name: &str, data: &[u8]) -> Result<(), String> {
    match fs::read(mount.join(name)) {
        Ok(got) if got == data => Ok(()),
        Ok(got) => Err(format!(
            "{name}: read {} bytes, wrote {}",
            got.len(),
            data.len()
        )),
        Err(e) => Err(format!("read {name}: {e}")),
    }
}

fn list(mount: &TestMount, live: &BTreeSet<usize>) -> Result<(), String> {
    let entries = fs::read_dir(mount.join("work")).map_err(|e| format!("ls work: {e}"))?;
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("ls work: {e}"))?;
        entry
            .metadata()
            .map_err(|e| format!("stat {:?}: {e}", entry.file_name()))?;
        names.insert(entry.file_name().to_string_lossy().into_owned());
    }
    let mut wanted: BTreeSet<String> = live.iter().map(|n| format!("f{n:05}")).collect();
    wanted.insert("big.bin".into());
    if names == wanted {
        Ok(())
    } else {
        Err(format!("ls work: {names:?}, expected {wanted:?}"))
    }
}

fn read_at(mount: &TestMount, big: &[u8], n: usize) -> Result<(), String> {
    let offset = (n * 1_048_573) % (BIG - 8192);
    let mut file =
        fs::File::open(mount.join("work/big.bin")).map_err(|e| format!("open big.bin: {e}"))?;
    let mut buf = vec![0u8; 8192];
    file.seek(SeekFrom::Start(offset as u64))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| format!("read big.bin at {offset}: {e}"))?;
    if buf == big[offset..offset + 8192] {
        Ok(())
    } else {
        Err(format!("big.bin at {offset}: wrong bytes"))
    }
}

#[test]
fn temporary_credentials_rotate_under_a_three_minute_workload() {
    let time = workload_time();
    let runs: Vec<_> = [Source::CamRole, Source::AssumeRole, Source::Process]
        .into_iter()
        .map(|source| thread::spawn(move || run_variant(source, time)))
        .collect();
    let outcomes: Vec<Outcome> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    for o in &outcomes {
        eprintln!(
            "{:?}: {} operations in {:?}, {} failed; rotations: {} in the server log, {} in the mount log; auth {}",
            o.source,
            o.operations,
            o.elapsed,
            o.failures.len(),
            o.server_rotations,
            o.mount_rotations,
            o.auth
        );
    }
    for o in &outcomes {
        let s = o.source;
        assert!(
            o.failures.is_empty(),
            "{s:?}: failed operations: {:#?}",
            o.failures
        );
        assert!(
            o.operations > 100,
            "{s:?}: only {} operations",
            o.operations
        );
        assert!(
            o.server_rotations >= MIN_ROTATIONS,
            "{s:?}: {} rotations in the server log",
            o.server_rotations
        );
        assert!(
            o.mount_rotations >= MIN_ROTATIONS,
            "{s:?}: {} in the mount log",
            o.mount_rotations
        );
        assert_eq!(
            o.auth["rejected"],
            serde_json::json!({}),
            "{s:?}: {}",
            o.auth
        );
        assert_eq!(
            o.auth["anonymous"], 1,
            "{s:?}: only the mount's question which dialect the endpoint speaks (an unsigned GET /): {}",
            o.auth
        );
        assert_eq!(
            o.auth["permanent"], 1,
            "{s:?}: only the seeding PUT: {}",
            o.auth
        );
        assert!(
            o.auth["temporary"].as_u64().unwrap() > 500,
            "{s:?}: {}",
            o.auth
        );
    }
}
