//! Shared helpers for the integration tests: [`TestServer`] runs the real
//! `cosmount serve` binary on a free loopback port over a temporary root and
//! stops it on drop; [`raw_request`] speaks HTTP/1.1 by hand so nothing
//! normalises paths or header names.

#![allow(dead_code)]

pub mod mount;
pub mod sdk;
pub mod seaweed;
pub mod weed_command;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cosmount::cos::client::{ClientConfig, HttpClient};
use cosmount::cos::endpoint::{Endpoint, Style};
use cosmount::creds::{CredentialStore, Credentials};
use cosmount::retry::RetryPolicy;

/// The bucket every test server serves unless told otherwise.
pub const BUCKET: &str = "test-1250000000";
/// The SecretId the test server accepts by default.
pub const SECRET_ID: &str = "AKIDcosmountTEST0000";
/// Its SecretKey.
pub const SECRET_KEY: &str = "cosmount-test-secret-key-0000";
/// The region the test server names.
pub const REGION: &str = "ap-guangzhou";

/// Anonymous access of a test server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Public {
    /// `--public-read`.
    Read,
    /// `--public-read-write`.
    ReadWrite,
}

/// How to start a [`TestServer`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `--listen` value.
    pub listen: String,
    /// `--bucket` values.
    pub buckets: Vec<String>,
    /// `--secret-id`/`--secret-key`, if any.
    pub keys: Option<(String, String)>,
    /// `--public-read` or `--public-read-write`.
    pub public: Option<Public>,
    /// Start the admin endpoint too.
    pub admin: bool,
    /// More arguments after the others.
    pub extra_args: Vec<String>,
    /// Serve this root instead of a fresh temporary one.
    pub root: Option<PathBuf>,
    /// `--sts-ttl SECS` (with `--sts-listen 127.0.0.1:0`): emulate STS and
    /// the metadata service.
    pub sts_ttl: Option<u64>,
    /// `RUST_LOG` of the server (default `warn`, or the test's `RUST_LOG`).
    pub log_filter: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: "127.0.0.1:0".to_string(),
            buckets: vec![BUCKET.to_string()],
            keys: Some((SECRET_ID.to_string(), SECRET_KEY.to_string())),
            public: None,
            admin: true,
            extra_args: Vec::new(),
            root: None,
            sts_ttl: None,
            log_filter: None,
        }
    }
}

impl ServerOptions {
    /// The default options with anonymous access.
    pub fn public(public: Public) -> ServerOptions {
        ServerOptions {
            public: Some(public),
            ..ServerOptions::default()
        }
    }
}

/// A `cosmount serve` process; killed on drop.
pub struct TestServer {
    child: Option<Child>,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    sts: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
    root: PathBuf,
    options: ServerOptions,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server with the default options.
    pub fn start() -> TestServer {
        TestServer::with(ServerOptions::default())
    }

    /// A server with `options`; panics with the server's stderr if it fails.
    pub fn with(options: ServerOptions) -> TestServer {
        TestServer::try_with(options)
            .unwrap_or_else(|e| panic!("cosmount serve did not start: {e}"))
    }

    /// A server with `options`, or what it printed on stderr when it exited.
    pub fn try_with(options: ServerOptions) -> Result<TestServer, String> {
        let (tmp, root) = match &options.root {
            Some(root) => (None, root.clone()),
            None => {
                let tmp = tempfile::tempdir().expect("temp dir");
                let root = tmp.path().join("root");
                (Some(tmp), root)
            }
        };
        let log = Arc::new(Mutex::new(String::new()));
        let (child, addr, admin, sts) = spawn(&root, &options, &log)?;
        Ok(TestServer {
            child: Some(child),
            addr,
            admin,
            sts,
            log,
            root,
            options,
            _tmp: tmp,
        })
    }

    /// The COS endpoint's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin endpoint's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .expect("the server was started without the admin endpoint")
    }

    /// `http://127.0.0.1:PORT` of the STS/metadata emulation.
    pub fn sts_url(&self) -> String {
        let addr = self.sts.expect("the server was started without --sts-ttl");
        format!("http://{addr}")
    }

    /// What the server wrote on stderr so far (its log).
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// GETs an admin path and parses the JSON answer.
    pub fn admin_json(&self, path: &str) -> serde_json::Value {
        let req = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        let r = raw_request(self.admin_addr(), req.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        serde_json::from_slice(&r.body).expect("admin answers are JSON")
    }

    /// POSTs to an admin path and parses the JSON answer.
    pub fn admin_post(&self, path: &str) -> serde_json::Value {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let r = raw_request(self.admin_addr(), req.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        serde_json::from_slice(&r.body).expect("admin answers are JSON")
    }

    /// The root folder the server stores its buckets in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder around the root (for files that must stay outside it).
    pub fn outside_root(&self) -> &Path {
        self.root.parent().expect("root has a parent")
    }

    /// A client for `bucket` signed with the default keys.
    pub fn client(&self) -> HttpClient {
        self.client_for(BUCKET, Some(Credentials::permanent(SECRET_ID, SECRET_KEY)))
    }

    /// A client for `bucket` with `creds` (`None`: anonymous), addressed the
    /// way `Endpoint::custom(url, .., VirtualHosted)` does.
    pub fn client_for(&self, bucket: &str, creds: Option<Credentials>) -> HttpClient {
        let endpoint = Endpoint::custom(&self.url(), bucket, REGION, Style::VirtualHosted).unwrap();
        self.client_at(endpoint, creds)
    }

    /// A client that sends the real virtual-hosted Host
    /// (`<bucket>.cos.<region>.myqcloud.com:PORT`) to this server.
    pub fn client_virtual_hosted(&self, bucket: &str, creds: Option<Credentials>) -> HttpClient {
        let mut endpoint = Endpoint::virtual_hosted(bucket, REGION, false);
        endpoint.host = format!("{}:{}", endpoint.host, self.addr.port());
        self.client_at(endpoint, creds)
    }

    /// A client for any endpoint, with a quick retry policy; requests for
    /// the endpoint's host go to this server.
    pub fn client_at(&self, endpoint: Endpoint, creds: Option<Credentials>) -> HttpClient {
        let mut config = ClientConfig::new(endpoint);
        config.resolve = Some(self.addr);
        config.retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        let store = match creds {
            Some(c) => CredentialStore::fixed(c),
            None => CredentialStore::anonymous(),
        };
        HttpClient::new(config, Arc::new(store)).unwrap()
    }

    /// The bytes stored under `key`, read with [`TestServer::client`].
    pub fn object(&self, key: &str) -> Vec<u8> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(cosmount::cos::ObjectClient::get(
            &self.client(),
            key,
            &Default::default(),
        ))
        .unwrap_or_else(|e| panic!("GET {key}: {e}"))
        .body
        .to_vec()
    }

    /// The admin request counters.
    pub fn stats(&self) -> serde_json::Value {
        let r = raw_request(
            self.admin_addr(),
            b"GET /stats HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{}", r.head);
        serde_json::from_slice(&r.body).expect("stats are JSON")
    }

    /// Zeroes the admin request counters.
    pub fn reset_stats(&self) {
        let req = b"POST /stats/reset HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(raw_request(self.admin_addr(), req).status, 200);
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("cosmount serve ignored SIGTERM for 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM) if it runs and starts it again on the same
    /// root (on a new port).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.terminate();
            assert!(status.success(), "server exited with {status}");
        }
        let (child, addr, admin, sts) = spawn(&self.root, &self.options, &self.log)
            .unwrap_or_else(|e| panic!("restart failed: {e}"));
        self.child = Some(child);
        self.addr = addr;
        self.admin = admin;
        self.sts = sts;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The addresses a server printed: COS, admin, STS.
type Addresses = (Child, SocketAddr, Option<SocketAddr>, Option<SocketAddr>);

/// Starts the binary and reads its `listening on`/`admin on`/`sts on`
/// lines; its stderr is echoed and appended to `log`.
fn spawn(root: &Path, o: &ServerOptions, log: &Arc<Mutex<String>>) -> Result<Addresses, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosmount"));
    cmd.arg("serve")
        .arg("--root")
        .arg(root)
        .args(["--listen", &o.listen]);
    for b in &o.buckets {
        cmd.args(["--bucket", b]);
    }
    if let Some((id, key)) = &o.keys {
        cmd.args(["--secret-id", id, "--secret-key", key]);
    }
    match o.public {
        Some(Public::Read) => cmd.arg("--public-read"),
        Some(Public::ReadWrite) => cmd.arg("--public-read-write"),
        None => &mut cmd,
    };
    if o.admin {
        cmd.args(["--admin-listen", "127.0.0.1:0"]);
    }
    if let Some(ttl) = o.sts_ttl {
        cmd.args(["--sts-ttl", &ttl.to_string(), "--sts-listen", "127.0.0.1:0"]);
    }
    cmd.args(&o.extra_args);
    if let Some(filter) = &o.log_filter {
        cmd.env("RUST_LOG", filter);
    } else if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cosmount: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (err_tx, err_rx) = mpsc::channel();
    let shared_log = log.clone();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            eprint!("[cosmount serve] {line}");
            text.push_str(&line);
            shared_log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&line);
            line.clear();
        }
        let _ = err_tx.send(text);
    });
    let wanted = 1 + usize::from(o.admin) + usize::from(o.sts_ttl.is_some());
    let (mut addr, mut admin, mut sts) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while addr.is_none() || (o.admin && admin.is_none()) || (o.sts_ttl.is_some() && sts.is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let parse = |a: &str| a.parse().map_err(|_| format!("bad line {line:?}"));
                if let Some(a) = line.strip_prefix("listening on http://") {
                    addr = Some(parse(a)?);
                } else if let Some(a) = line.strip_prefix("admin on http://") {
                    admin = Some(parse(a)?);
                } else if let Some(a) = line.strip_prefix("sts on http://") {
                    sts = Some(parse(a)?);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let stderr = err_rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                return Err(format!(
                    "exit {status:?}, {wanted} address line(s) expected; stderr: {stderr}"
                ));
            }
        }
    }
    Ok((child, addr.unwrap(), admin, sts))
}

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Status line and headers, exactly as sent.
    pub head: String,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The value of the header spelled exactly `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }
}

/// Sends `request` (must ask for `Connection: close`) and reads the answer.
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).expect("send");
    let mut data = Vec::new();
    let _ = stream.read_to_end(&mut data);
    let split = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&data)));
    let head = String::from_utf8_lossy(&data[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        head,
        body: data[split + 4..].to_vec(),
    }
}

/// `GET path` from `addr` over one connection (see [`raw_request`]).
pub fn http_get(addr: SocketAddr, path: &str) -> RawResponse {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    raw_request(addr, request.as_bytes())
}

/// Ports the OS just handed out (closed again, so a race is possible but
/// unlikely on a test machine).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Runs `promtool check metrics` on `text` and panics with its report
/// when it finds a problem.
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is missing: install the Debian package `prometheus` (scripts/test.sh does)",
        );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics ({}): {report}\n{text}",
        out.status
    );
}

/// `len` bytes that a seed determines (object contents in tests).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut data = vec![0u8; len];
    rand::Rng::fill(&mut rng, &mut data[..]);
    data
}
