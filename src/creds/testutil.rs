//! Test helpers: a scripted provider, a canned HTTP server on 127.0.0.1 and
//! a per-thread log capture (tokio's current-thread test runtime runs every
//! task on the test's thread, so the refresher's logs land there too).

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Clock, Credentials, CredsError, FetchFuture, Provider};

type Script = dyn Fn(usize, SystemTime) -> Result<Credentials, CredsError> + Send + Sync;

/// A provider whose answers a closure decides from the call number
/// (0-based) and the clock; it records when it was called.
pub struct FakeProvider {
    clock: Arc<dyn Clock>,
    script: Box<Script>,
    delay: Duration,
    calls: Mutex<Vec<SystemTime>>,
}

impl FakeProvider {
    pub fn new(
        clock: Arc<dyn Clock>,
        script: impl Fn(usize, SystemTime) -> Result<Credentials, CredsError> + Send + Sync + 'static,
    ) -> FakeProvider {
        FakeProvider {
            clock,
            script: Box::new(script),
            delay: Duration::ZERO,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Every fetch after the first takes `delay` (of tokio time).
    pub fn slow(mut self, delay: Duration) -> FakeProvider {
        self.delay = delay;
        self
    }

    pub fn call_times(&self) -> Vec<SystemTime> {
        self.calls.lock().unwrap().clone()
    }
}

impl Provider for FakeProvider {
    fn name(&self) -> String {
        "fake source".into()
    }

    fn fetch(&self) -> FetchFuture<'_> {
        let now = self.clock.now();
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(now);
            calls.len() - 1
        };
        let result = (self.script)(n, now);
        let delay = if n == 0 { Duration::ZERO } else { self.delay };
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            result
        })
    }
}

/// One request as the server received it.
pub struct Captured {
    pub head: String,
    pub body: Vec<u8>,
}

impl Captured {
    /// The request line, e.g. `GET /path HTTP/1.1`.
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// A header value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Serves `responses` (status, JSON body) to successive connections on
/// 127.0.0.1; returns the base URL and the captured requests.
pub async fn serve(responses: Vec<(u16, String)>) -> (String, JoinHandle<Vec<Captured>>) {
    serve_with(responses, "").await
}

/// [`serve`], each answer stamped with `x-cos-request-id` as COS does.
pub async fn serve_as_cos(responses: Vec<(u16, String)>) -> (String, JoinHandle<Vec<Captured>>) {
    serve_with(responses, "x-cos-request-id: canned\r\n").await
}

pub async fn serve_with(
    responses: Vec<(u16, String)>,
    extra_headers: &'static str,
) -> (String, JoinHandle<Vec<Captured>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut captured = Vec::new();
        for (status, body) in responses {
            let (mut conn, _) = listener.accept().await.unwrap();
            captured.push(read_request(&mut conn).await);
            let reply = format!(
                "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).await.unwrap();
            conn.shutdown().await.ok();
        }
        captured
    });
    (url, task)
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Captured {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the request ended");
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut captured = Captured {
        head,
        body: Vec::new(),
    };
    let length: usize = captured
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&buf[..n]);
    }
    captured.body = body;
    captured
}

thread_local! {
    static LOGS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

struct ThreadLogger;

impl log::Log for ThreadLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        LOGS.with(|l| {
            if let Some(lines) = l.borrow_mut().as_mut() {
                lines.push(format!("{} {}", record.level(), record.args()));
            }
        });
    }

    fn flush(&self) {}
}

/// Starts capturing every log line (all levels) logged on this thread.
pub fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if log::set_logger(&ThreadLogger).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    LOGS.with(|l| *l.borrow_mut() = Some(Vec::new()));
}

/// The lines captured on this thread so far.
pub fn captured_logs() -> Vec<String> {
    LOGS.with(|l| l.borrow().clone().unwrap_or_default())
}
