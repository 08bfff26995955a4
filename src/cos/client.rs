//! The HTTP implementation of [`ObjectClient`]: one `reqwest::Client` (one
//! connection pool) per process, every request signed at send time with the
//! credentials current at that moment and re-signed on each retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use log::{debug, error, warn};
use md5::{Digest, Md5};
use reqwest::Method;
use reqwest::header::HeaderMap;

use super::dialect::{ServerDialect, ServerKind};
use super::endpoint::Endpoint;
use super::retry::RetryPolicy;
use super::sign::{self, KeyTime, StringToSign};
use super::xml::{self, unquote_etag};
use super::{
    BodyBuffers, CosError, CosResult, DeleteFailure, GetObject, GetOptions, ListPage, ListRequest,
    META_PREFIX, MetadataDirective, ObjectAttrs, ObjectClient, ObjectInfo, PartInfo, PutResult,
    UploadInfo, UserMeta, crc64,
};
use crate::creds::CredentialStore;

/// How the client connects and retries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Where the bucket lives.
    pub endpoint: Endpoint,
    /// Retry policy for retryable failures.
    pub retry: RetryPolicy,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Deadline of one attempt, from sending to the last body byte.
    pub request_timeout: Duration,
    /// Deadline of one operation: every attempt and every wait between
    /// attempts. When it passes, the operation fails with its last error
    /// (a timeout when an attempt was cut short), so no caller waits longer.
    pub op_timeout: Duration,
    /// Send requests for the endpoint's host to this address instead of
    /// resolving it (tests, private gateways).
    pub resolve: Option<std::net::SocketAddr>,
}

impl ClientConfig {
    /// Default TCP/TLS connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default deadline of one attempt.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default deadline of one operation, all attempts included.
    pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(120);

    /// Defaults for an endpoint: 6 attempts, 10 s connect, 60 s per
    /// attempt, 120 s per operation.
    pub fn new(endpoint: Endpoint) -> ClientConfig {
        ClientConfig {
            endpoint,
            retry: RetryPolicy::default(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            op_timeout: Self::DEFAULT_OP_TIMEOUT,
            resolve: None,
        }
    }
}

/// Counters of what the client sent, for benches and diagnostics.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Attempts sent, retries included.
    pub requests: AtomicU64,
    /// Attempts that were retries.
    pub retries: AtomicU64,
    /// Retries by the cause of the attempt that failed before them.
    by_cause: [AtomicU64; RetryCause::ALL.len()],
    /// Operations that failed after their last attempt or at their deadline.
    pub failed: AtomicU64,
}

/// Why an attempt failed and was retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryCause {
    /// A 5xx answer (other than 503), or a conflict COS asks to retry.
    ServerError,
    /// 503 or `SlowDown`: COS asks for less traffic.
    SlowDown,
    /// The attempt's deadline passed, or COS's `RequestTimeout`.
    Timeout,
    /// Connection refused, reset or closed early (truncated bodies included).
    Connection,
    /// The body arrived complete but damaged (length or CRC64 mismatch).
    Integrity,
    /// `RequestTimeTooSkewed`: the clock offset was corrected.
    ClockSkew,
    /// The temporary credentials had expired and were refreshed.
    Credentials,
}

impl RetryCause {
    /// Every cause, in the order [`ClientStats::summary`] prints them.
    pub const ALL: [RetryCause; 7] = [
        RetryCause::ServerError,
        RetryCause::SlowDown,
        RetryCause::Timeout,
        RetryCause::Connection,
        RetryCause::Integrity,
        RetryCause::ClockSkew,
        RetryCause::Credentials,
    ];

    /// The cause's name in [`ClientStats::summary`].
    pub fn name(self) -> &'static str {
        match self {
            RetryCause::ServerError => "server_error",
            RetryCause::SlowDown => "slow_down",
            RetryCause::Timeout => "timeout",
            RetryCause::Connection => "connection",
            RetryCause::Integrity => "integrity",
            RetryCause::ClockSkew => "clock_skew",
            RetryCause::Credentials => "credentials",
        }
    }

    /// The cause of a retryable error.
    pub fn of(err: &CosError) -> RetryCause {
        if err.is_clock_skew() {
            return RetryCause::ClockSkew;
        }
        if err.is_credential_expired() {
            return RetryCause::Credentials;
        }
        match err {
            CosError::Service { status, code, .. } => match (*status, code.as_str()) {
                (503, _) | (_, "SlowDown") => RetryCause::SlowDown,
                (_, "RequestTimeout") => RetryCause::Timeout,
                _ => RetryCause::ServerError,
            },
            CosError::Transport { timeout: true, .. } => RetryCause::Timeout,
            CosError::Transport { .. } => RetryCause::Connection,
            CosError::Integrity(_) => RetryCause::Integrity,
            CosError::InvalidResponse(_)
            | CosError::InvalidRequest(_)
            | CosError::Unsupported(_) => RetryCause::ServerError,
        }
    }

    fn index(self) -> usize {
        RetryCause::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }
}

impl ClientStats {
    /// Retries made after a failure of this cause.
    pub fn retries_for(&self, cause: RetryCause) -> u64 {
        self.by_cause[cause.index()].load(Ordering::Relaxed)
    }

    fn count_retry(&self, cause: RetryCause) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.by_cause[cause.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// One line, `requests=N retries=N failed=N server_error=N ...`, that
    /// the mount logs at exit and the fault harness reads.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "requests={} retries={} failed={}",
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        );
        for cause in RetryCause::ALL {
            line.push_str(&format!(" {}={}", cause.name(), self.retries_for(cause)));
        }
        line
    }
}

/// COS over HTTP(S).
pub struct HttpClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    creds: Arc<CredentialStore>,
    retry: RetryPolicy,
    request_timeout: Duration,
    op_timeout: Duration,
    /// Seconds to add to the local clock, learned from RequestTimeTooSkewed.
    clock_offset: AtomicI64,
    /// The first correction was logged as a warning; later ones at debug.
    skew_warned: AtomicBool,
    /// Whether the server proved it speaks COS (copies wait for that).
    dialect: ServerDialect,
    stats: ClientStats,
}

/// One logical request, sent possibly several times.
struct Call<'a> {
    op: &'static str,
    method: Method,
    key: Option<&'a str>,
    params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Bytes,
    /// The answer is an XML document that may be `<Error>` even with 200.
    xml_result: bool,
    /// Where the response body's memory comes from.
    buffers: Option<std::sync::Arc<dyn BodyBuffers>>,
    /// Checks a successful answer; a failure is retried like a damaged body.
    check: Option<&'a Check<'a>>,
}

/// A check of a successful answer's headers and body.
type Check<'a> = dyn Fn(&HeaderMap, &Bytes) -> CosResult<()> + Sync + 'a;

impl<'a> Call<'a> {
    fn new(op: &'static str, method: Method, key: Option<&'a str>) -> Call<'a> {
        Call {
            op,
            method,
            key,
            params: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            xml_result: false,
            buffers: None,
            check: None,
        }
    }

    fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.params.push((name.to_string(), value.into()));
        self
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn attrs(mut self, attrs: &ObjectAttrs) -> Self {
        if let Some(ct) = &attrs.content_type {
            self.headers.push(("content-type".into(), ct.clone()));
        }
        for (k, v) in &attrs.meta {
            self.headers.push((format!("{META_PREFIX}{k}"), v.clone()));
        }
        self
    }

    fn body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    fn xml(mut self) -> Self {
        self.xml_result = true;
        self
    }

    fn check(mut self, check: &'a Check<'a>) -> Self {
        self.check = Some(check);
        self
    }
}

/// A successful answer.
struct Reply {
    headers: HeaderMap,
    body: Bytes,
}

impl HttpClient {
    /// Builds the client and its connection pool.
    pub fn new(config: ClientConfig, creds: Arc<CredentialStore>) -> CosResult<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .user_agent(concat!("cosmount/", env!("CARGO_PKG_VERSION")));
        if let Some(addr) = config.resolve {
            let domain = config
                .endpoint
                .host
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            builder = builder.resolve(&domain, addr);
        }
        let http = builder
            .build()
            .map_err(|e| CosError::InvalidRequest(format!("cannot build HTTP client: {e}")))?;
        let dialect = ServerDialect::new(format!(
            "{}://{}",
            config.endpoint.scheme, config.endpoint.host
        ));
        Ok(HttpClient {
            http,
            dialect,
            endpoint: config.endpoint,
            creds,
            retry: config.retry,
            request_timeout: config.request_timeout,
            op_timeout: config.op_timeout,
            clock_offset: AtomicI64::new(0),
            skew_warned: AtomicBool::new(false),
            stats: ClientStats::default(),
        })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Request counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// What the answers so far proved about the server.
    pub fn server_kind(&self) -> ServerKind {
        self.dialect.kind()
    }

    /// `Ok` once the server proved it speaks COS, asking it (HEAD Bucket)
    /// when no answer decided yet; otherwise the refusal of `op`.
    async fn require_cos(&self, op: &str) -> CosResult<()> {
        if self.dialect.kind() == ServerKind::Undecided {
            // Any answer teaches; its own outcome does not matter here.
            let _ = self.head_bucket().await;
        }
        self.dialect.require_cos(op)
    }

    /// Sends a call, retrying what is worth retrying, until it succeeds,
    /// fails for good, runs out of attempts or reaches its deadline.
    async fn execute(&self, call: &Call<'_>) -> CosResult<Reply> {
        let started = Instant::now();
        let deadline = started + self.op_timeout;
        let mut sent = 0u32;
        let mut failures = 0u32;
        let mut corrections = 0u32;
        let mut creds_refreshed = false;
        loop {
            sent += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let remaining = deadline.saturating_duration_since(Instant::now());
            let err = match self.attempt(call, remaining).await {
                Ok(reply) => return Ok(reply),
                Err(err) => err,
            };
            // A skew answer carries the server's time: adopt it and retry
            // at once (up to --retries corrections, apart from the failure
            // budget). One that repeats the time we already sign with is
            // retried like any transient failure.
            let corrected = err.skew.is_some_and(|t| self.learn_clock_offset(t));
            if corrected && corrections < self.retry.max_attempts {
                corrections += 1;
                self.stats.count_retry(RetryCause::ClockSkew);
                continue;
            }
            let retryable = err.skew.is_some() || err.error.is_retryable();
            let err = err.error;
            if err.is_credential_expired() && !creds_refreshed {
                creds_refreshed = true;
                if self.refresh_credentials(call, &err).await {
                    self.stats.count_retry(RetryCause::Credentials);
                    continue;
                }
            }
            failures += 1;
            if !retryable {
                return Err(err);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let out_of_time = remaining < MIN_ATTEMPT;
            if failures >= self.retry.max_attempts || out_of_time {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let why = if out_of_time {
                    "reached its deadline (--op-timeout)"
                } else {
                    "ran out of attempts (--retries)"
                };
                warn!(
                    "{} {:?} failed: {sent} attempts in {:?}, {why}: {err}",
                    call.op,
                    call.key.unwrap_or("/"),
                    started.elapsed()
                );
                return Err(err);
            }
            // Never sleep away the time left: half of it at most, so a
            // last attempt still fits before the deadline.
            let delay = self.retry.delay(failures).min(remaining / 2);
            debug!(
                "{} {:?} attempt {sent} failed ({err}); retrying in {delay:?}",
                call.op,
                call.key.unwrap_or("/")
            );
            self.stats.count_retry(RetryCause::of(&err));
            tokio::time::sleep(delay).await;
        }
    }

    /// After COS rejected the credentials as expired: one forced refresh.
    /// True when it worked and the call should be sent once more.
    async fn refresh_credentials(&self, call: &Call<'_>, err: &CosError) -> bool {
        match self.creds.refresh_now().await {
            Ok(()) => {
                debug!(
                    "{} {:?}: {err}; credentials refreshed, retrying",
                    call.op,
                    call.key.unwrap_or("/")
                );
                true
            }
            Err(e) => {
                debug!(
                    "{} {:?}: {err}; no refresh possible: {e}",
                    call.op,
                    call.key.unwrap_or("/")
                );
                false
            }
        }
    }

    /// Adopts the server's clock; false when it is (within a second) the
    /// clock we already sign with, so correcting cannot help.
    fn learn_clock_offset(&self, server_time: SystemTime) -> bool {
        let offset = unix_seconds(server_time) as i64 - unix_seconds(SystemTime::now()) as i64;
        let previous = self.clock_offset.swap(offset, Ordering::Relaxed);
        if (offset - previous).abs() <= 1 {
            return false;
        }
        if !self.skew_warned.swap(true, Ordering::Relaxed) {
            warn!("the local clock differs from COS's by {offset} s; signing with COS's time");
        } else {
            debug!("COS reports a clock offset of {offset} s (was {previous} s)");
        }
        true
    }

    /// Seconds added to the local clock when signing (0 until COS said
    /// the clock is off).
    pub fn clock_offset(&self) -> i64 {
        self.clock_offset.load(Ordering::Relaxed)
    }

    fn key_time(offset: i64) -> KeyTime {
        let now = unix_seconds(SystemTime::now()) as i64 + offset;
        let now = now.max(60) as u64;
        KeyTime {
            start: now - 60,
            end: now + 3600,
        }
    }

    /// One attempt within `budget` (the operation's time left): bounded by
    /// the per-attempt deadline too, however long credentials or the
    /// server take.
    async fn attempt(&self, call: &Call<'_>, budget: Duration) -> Result<Reply, AttemptError> {
        let limit = budget.min(self.request_timeout);
        if limit.is_zero() {
            return Err(deadline_passed(budget).into());
        }
        // reqwest's own timeout yields the precise error; this one also
        // covers waiting for credentials.
        match tokio::time::timeout(limit + GUARD, self.attempt_within(call, limit)).await {
            Ok(result) => result,
            Err(_) => Err(deadline_passed(limit).into()),
        }
    }

    async fn attempt_within(
        &self,
        call: &Call<'_>,
        limit: Duration,
    ) -> Result<Reply, AttemptError> {
        let (url, signed_path) = match call.key {
            Some(key) => (
                self.endpoint.object_url(key)?,
                self.endpoint.signed_path(key),
            ),
            None => (self.endpoint.bucket_url(), self.endpoint.bucket_path()),
        };
        let url = with_query(url, &call.params);
        let mut headers = call.headers.clone();
        headers.push(("host".into(), self.endpoint.host.clone()));
        if call.method == Method::PUT || call.method == Method::POST {
            headers.push(("content-length".into(), call.body.len().to_string()));
        }
        let creds = self.creds.current().await;
        // Signed with, and judged against: other requests may move it.
        let offset = self.clock_offset.load(Ordering::Relaxed);
        if let Some(token) = creds.as_ref().and_then(|c| c.session_token.as_ref()) {
            headers.push(("x-cos-security-token".into(), token.clone()));
        }
        let mut req = self.http.request(call.method.clone(), &url).timeout(limit);
        for (name, value) in &headers {
            // Content-Length is sent explicitly: it is signed, and hyper
            // omits it for an empty PUT/POST body.
            if name != "host" {
                req = req.header(name.as_str(), value.as_str());
            }
        }
        if let Some(creds) = &creds {
            let signed: Vec<(String, String)> = headers
                .iter()
                .filter(|(n, _)| is_signed_header(n))
                .cloned()
                .collect();
            let to_sign = StringToSign {
                method: call.method.as_str(),
                path: &signed_path,
                params: &call.params,
                headers: &signed,
            };
            let sig = sign::sign(
                &to_sign,
                &creds.secret_id,
                &creds.secret_key,
                Self::key_time(offset),
            );
            req = req.header("authorization", sig.authorization);
        }
        if !call.body.is_empty() || call.method == Method::PUT || call.method == Method::POST {
            req = req.body(call.body.clone());
        }
        let started = Instant::now();
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let resp_headers = resp.headers().clone();
        self.dialect.observe(status, &resp_headers);
        let body = if call.method == Method::HEAD {
            Bytes::new()
        } else {
            read_body(resp, call.buffers.as_deref()).await?
        };
        debug!(
            "{} {} {:?} -> {status} ({} bytes, {:?})",
            call.op,
            call.method,
            call.key.unwrap_or("/"),
            body.len(),
            started.elapsed()
        );
        if status >= 300 || (call.xml_result && xml::is_error_body(&body)) {
            return Err(service_error(status, &resp_headers, &body, offset));
        }
        check_length(&resp_headers, &body, &call.method)?;
        if let Some(check) = call.check {
            check(&resp_headers, &body)?;
        }
        Ok(Reply {
            headers: resp_headers,
            body,
        })
    }

    /// A PUT whose answer must carry our CRC64 when it carries one: a
    /// mismatch means the stored bytes are damaged, and sending them again
    /// replaces them.
    async fn put_like(&self, call: Call<'_>, local_crc: u64) -> CosResult<PutResult> {
        let key = call.key.unwrap_or("/");
        let check = |headers: &HeaderMap, _: &Bytes| {
            verify_crc(key, header_u64(headers, "x-cos-hash-crc64ecma"), local_crc)
        };
        let reply = self.execute(&call.check(&check)).await?;
        Ok(PutResult {
            etag: etag(&reply.headers),
            crc64: header_u64(&reply.headers, "x-cos-hash-crc64ecma"),
        })
    }

    /// Complete was sent before and its answer lost: if the object now has a
    /// multipart ETag with the same part count, the first attempt won.
    async fn completed_earlier(&self, key: &str, parts: &[PartInfo]) -> Option<PutResult> {
        let info = self.head(key).await.ok()?;
        info.etag
            .ends_with(&format!("-{}", parts.len()))
            .then_some(PutResult {
                etag: info.etag,
                crc64: info.crc64,
            })
    }
}

/// A failed attempt; `skew` carries the server's time when it said our
/// clock is off.
struct AttemptError {
    error: CosError,
    skew: Option<SystemTime>,
}

impl From<CosError> for AttemptError {
    fn from(error: CosError) -> Self {
        AttemptError { error, skew: None }
    }
}

/// COS refuses signatures whose time is more than 15 minutes off.
const SKEW_LIMIT_SECS: i64 = 15 * 60;

/// A HEAD cannot carry an error code: a bare 403 whose `Date` is further
/// from the time we sign with than COS allows is taken for clock skew.
fn bodiless_skew(error: &CosError, server_time: SystemTime, clock_offset: i64) -> bool {
    let signing = unix_seconds(SystemTime::now()) as i64 + clock_offset;
    error.status() == Some(403)
        && error.code().is_empty()
        && (unix_seconds(server_time) as i64 - signing).abs() > SKEW_LIMIT_SECS
}

fn service_error(status: u16, headers: &HeaderMap, body: &[u8], clock_offset: i64) -> AttemptError {
    let request_id = header_str(headers, "x-cos-request-id");
    let parsed: Option<xml::ErrorBody> = if body.is_empty() {
        None
    } else {
        xml::from_xml(body).ok()
    };
    let (code, message) = match parsed {
        Some(e) => (e.code, e.message),
        None => (String::new(), reason(status).to_string()),
    };
    let error = CosError::Service {
        status,
        code,
        message,
        request_id,
    };
    let date = header_str(headers, "date").and_then(|d| httpdate::parse_http_date(&d).ok());
    let skew = date.filter(|&d| error.is_clock_skew() || bodiless_skew(&error, d, clock_offset));
    let error = match (&error, skew) {
        (CosError::Service { code, .. }, Some(_)) if code.is_empty() => CosError::Service {
            status,
            code: "RequestTimeTooSkewed".into(),
            message: "a 403 without a body whose Date is far from our clock".into(),
            request_id: header_str(headers, "x-cos-request-id"),
        },
        _ => error,
    };
    AttemptError { error, skew }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// Below this much time left, an operation gives up instead of retrying.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// Slack of the outer guard over reqwest's own per-attempt timeout.
const GUARD: Duration = Duration::from_millis(250);

fn deadline_passed(limit: Duration) -> CosError {
    CosError::Transport {
        message: format!("no answer within {limit:?}"),
        timeout: true,
    }
}

fn transport_error(e: reqwest::Error) -> AttemptError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    CosError::Transport {
        message,
        timeout: e.is_timeout(),
    }
    .into()
}

/// Most bytes reserved up front for a body, whatever Content-Length says.
const MAX_PREALLOCATION: usize = 16 << 20;

/// Reads a response body into one buffer sized from Content-Length (bounded:
/// the header comes from the network; from `buffers` when given), so a body
/// never sits in memory twice and a 1 MiB block costs no allocator churn.
async fn read_body(
    mut resp: reqwest::Response,
    buffers: Option<&dyn BodyBuffers>,
) -> Result<Bytes, AttemptError> {
    let expected = (resp.content_length().unwrap_or(0) as usize).min(MAX_PREALLOCATION);
    let mut body = match buffers {
        Some(b) => b.buffer(expected),
        None => Vec::with_capacity(expected),
    };
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        body.extend_from_slice(&chunk);
    }
    Ok(match buffers {
        Some(b) => b.freeze(body),
        None => Bytes::from(body),
    })
}

/// A body shorter or longer than Content-Length is damaged, never used.
fn check_length(headers: &HeaderMap, body: &Bytes, method: &Method) -> CosResult<()> {
    if *method == Method::HEAD {
        return Ok(());
    }
    match header_u64(headers, "content-length") {
        Some(n) if n != body.len() as u64 => Err(CosError::Integrity(format!(
            "body has {} bytes, Content-Length says {n}",
            body.len()
        ))),
        _ => Ok(()),
    }
}

/// A GET's body is what was asked for: a range has the range's length
/// (the object may be shorter); a whole object, or a range the server
/// answered with the whole object, matches the object's CRC64 when COS
/// sent one. Anything else is damage, retried and never returned.
fn check_get(
    key: &str,
    range: Option<&std::ops::Range<u64>>,
    headers: &HeaderMap,
    body: &Bytes,
) -> CosResult<()> {
    match (range, content_range_total(headers)) {
        (Some(r), Some(total)) => {
            let expected = r.end.min(total).saturating_sub(r.start);
            if body.len() as u64 == expected {
                Ok(())
            } else {
                Err(CosError::Integrity(format!(
                    "range {r:?} of {key:?} returned {} bytes, expected {expected}",
                    body.len()
                )))
            }
        }
        _ => match header_u64(headers, "x-cos-hash-crc64ecma") {
            Some(remote) => verify_crc(key, Some(remote), crc64::checksum(body)),
            None => Ok(()),
        },
    }
}

fn verify_crc(key: &str, remote: Option<u64>, local: u64) -> CosResult<()> {
    match remote {
        Some(remote) if remote != local => Err(CosError::Integrity(format!(
            "CRC64 of {key:?} is {remote} at COS but {local} locally"
        ))),
        _ => Ok(()),
    }
}

/// Headers we sign: host, the content headers, range and every `x-cos-*`.
fn is_signed_header(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-type" | "content-length" | "content-md5" | "range"
    ) || name.starts_with("x-cos-")
}

fn with_query(mut url: String, params: &[(String, String)]) -> String {
    for (i, (name, value)) in params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&sign::url_encode(name));
        url.push('=');
        url.push_str(&sign::url_encode(value));
    }
    url
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|v| v.trim().parse().ok())
}

fn etag(headers: &HeaderMap) -> String {
    header_str(headers, "etag")
        .map(|e| unquote_etag(&e))
        .unwrap_or_default()
}

/// Reads object attributes from HEAD/GET headers; `size` is the object's.
fn object_info(headers: &HeaderMap, size: u64) -> ObjectInfo {
    let last_modified = header_str(headers, "last-modified")
        .and_then(|d| httpdate::parse_http_date(&d).ok())
        .unwrap_or(UNIX_EPOCH);
    let meta: UserMeta = headers
        .iter()
        .filter_map(|(name, value)| {
            let suffix = name.as_str().strip_prefix(META_PREFIX)?;
            Some((suffix.to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    ObjectInfo {
        size,
        etag: etag(headers),
        last_modified,
        crc64: header_u64(headers, "x-cos-hash-crc64ecma"),
        content_type: header_str(headers, "content-type"),
        meta,
    }
}

/// Total object size from `Content-Range: bytes a-b/total`.
fn content_range_total(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, "content-range")?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

impl ObjectClient for HttpClient {
    async fn head_bucket(&self) -> CosResult<()> {
        self.execute(&Call::new("head_bucket", Method::HEAD, None))
            .await
            .map(|_| ())
    }

    async fn head(&self, key: &str) -> CosResult<ObjectInfo> {
        let reply = self
            .execute(&Call::new("head", Method::HEAD, Some(key)))
            .await?;
        let size = header_u64(&reply.headers, "content-length").unwrap_or(0);
        Ok(object_info(&reply.headers, size))
    }

    async fn get(&self, key: &str, opts: &GetOptions) -> CosResult<GetObject> {
        let mut call = Call::new("get", Method::GET, Some(key));
        if let Some(r) = &opts.range {
            if r.start >= r.end {
                return Err(CosError::InvalidRequest(format!("empty range {r:?}")));
            }
            call = call.header("range", format!("bytes={}-{}", r.start, r.end - 1));
        }
        if let Some(etag) = &opts.if_match {
            call = call.header("if-match", format!("\"{etag}\""));
        }
        call.buffers = opts.buffers.clone();
        let range = opts.range.clone();
        let check =
            |headers: &HeaderMap, body: &Bytes| check_get(key, range.as_ref(), headers, body);
        let reply = self.execute(&call.check(&check)).await?;
        let mut body = reply.body;
        let total = content_range_total(&reply.headers);
        let info = object_info(&reply.headers, total.unwrap_or(body.len() as u64));
        if let (Some(r), None) = (&opts.range, total) {
            // The server ignored Range and sent the whole object.
            let end = r.end.min(body.len() as u64) as usize;
            body = body.slice((r.start as usize).min(end)..end);
        }
        Ok(GetObject { info, body })
    }

    async fn put(&self, key: &str, body: Bytes, attrs: &ObjectAttrs) -> CosResult<PutResult> {
        let local = crc64::checksum(&body);
        let call = Call::new("put", Method::PUT, Some(key))
            .attrs(attrs)
            .body(body);
        self.put_like(call, local).await
    }

    async fn delete(&self, key: &str) -> CosResult<()> {
        match self
            .execute(&Call::new("delete", Method::DELETE, Some(key)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_many(&self, keys: &[String]) -> CosResult<Vec<DeleteFailure>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let request = xml::DeleteRequest {
            quiet: true,
            object: keys
                .iter()
                .map(|k| xml::DeleteObject { key: k.clone() })
                .collect(),
        };
        let body = Bytes::from(xml::to_xml(&request));
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        let call = Call::new("delete_many", Method::POST, None)
            .param("delete", "")
            .header("content-type", "application/xml")
            .header("content-md5", md5)
            .body(body);
        let reply = self.execute(&call).await?;
        let result: xml::DeleteResult = xml::from_xml(&reply.body)?;
        Ok(result
            .error
            .into_iter()
            .map(|e| DeleteFailure {
                key: e.key,
                code: e.code,
                message: e.message,
            })
            .collect())
    }

    async fn list_page(&self, req: &ListRequest) -> CosResult<ListPage> {
        let call = Call::new("list", Method::GET, None)
            .param("prefix", req.prefix.clone())
            .param("delimiter", req.delimiter.clone().unwrap_or_default())
            .param("marker", req.marker.clone())
            .param("max-keys", req.max_keys.clamp(1, 1000).to_string())
            .param("encoding-type", "url");
        let reply = self.execute(&call).await?;
        xml::from_xml::<xml::ListBucketResult>(&reply.body)?.into_page()
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        src_etag: Option<&str>,
        directive: MetadataDirective,
        attrs: &ObjectAttrs,
    ) -> CosResult<PutResult> {
        self.require_cos("server-side copy").await?;
        let mut call = Call::new("copy", Method::PUT, Some(dst))
            .header("x-cos-copy-source", self.endpoint.copy_source(src)?)
            .xml();
        if let Some(etag) = src_etag {
            call = call.header("x-cos-copy-source-if-match", format!("\"{etag}\""));
        }
        call = match directive {
            MetadataDirective::Copy => call.header("x-cos-metadata-directive", "Copy"),
            MetadataDirective::Replaced => call
                .header("x-cos-metadata-directive", "Replaced")
                .attrs(attrs),
        };
        let reply = self.execute(&call).await?;
        let result: xml::CopyObjectResult = copy_result(src, dst, &reply.body)?;
        let crc64 = header_u64(&reply.headers, "x-cos-hash-crc64ecma")
            .or_else(|| result.crc64.and_then(|c| c.parse().ok()));
        Ok(PutResult {
            etag: unquote_etag(&result.etag),
            crc64,
        })
    }

    async fn create_multipart(&self, key: &str, attrs: &ObjectAttrs) -> CosResult<String> {
        let call = Call::new("create_multipart", Method::POST, Some(key))
            .param("uploads", "")
            .attrs(attrs)
            .xml();
        let reply = self.execute(&call).await?;
        let result: xml::InitiateMultipartUploadResult = xml::from_xml(&reply.body)?;
        Ok(result.upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> CosResult<PartInfo> {
        let size = body.len() as u64;
        let local = crc64::checksum(&body);
        let call = Call::new("upload_part", Method::PUT, Some(key))
            .param("partNumber", part_number.to_string())
            .param("uploadId", upload_id)
            .body(body);
        let put = self.put_like(call, local).await?;
        Ok(PartInfo {
            part_number,
            etag: put.etag,
            size,
            crc64: Some(local),
        })
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src: &str,
        src_etag: Option<&str>,
        range: std::ops::Range<u64>,
    ) -> CosResult<PartInfo> {
        self.require_cos("server-side part copy").await?;
        let mut call = Call::new("upload_part_copy", Method::PUT, Some(key))
            .param("partNumber", part_number.to_string())
            .param("uploadId", upload_id)
            .header("x-cos-copy-source", self.endpoint.copy_source(src)?)
            .header(
                "x-cos-copy-source-range",
                format!("bytes={}-{}", range.start, range.end - 1),
            )
            .xml();
        if let Some(etag) = src_etag {
            call = call.header("x-cos-copy-source-if-match", format!("\"{etag}\""));
        }
        let reply = self.execute(&call).await?;
        let result: xml::CopyPartResult = copy_result(src, key, &reply.body)?;
        Ok(PartInfo {
            part_number,
            etag: unquote_etag(&result.etag),
            size: range.end - range.start,
            crc64: header_u64(&reply.headers, "x-cos-hash-crc64ecma"),
        })
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> CosResult<PutResult> {
        let request = xml::CompleteMultipartUpload {
            part: parts
                .iter()
                .map(|p| xml::CompletePart {
                    part_number: p.part_number,
                    etag: format!("\"{}\"", p.etag),
                })
                .collect(),
        };
        let call = Call::new("complete_multipart", Method::POST, Some(key))
            .param("uploadId", upload_id)
            .header("content-type", "application/xml")
            .body(Bytes::from(xml::to_xml(&request)))
            .xml();
        let result = match self.execute(&call).await {
            Ok(reply) => {
                let body: xml::CompleteMultipartUploadResult = xml::from_xml(&reply.body)?;
                PutResult {
                    etag: unquote_etag(&body.etag),
                    crc64: header_u64(&reply.headers, "x-cos-hash-crc64ecma"),
                }
            }
            Err(e) if e.code() == "NoSuchUpload" => {
                match self.completed_earlier(key, parts).await {
                    Some(result) => result,
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if let Some(expected) = combined_crc(parts) {
            verify_crc(key, result.crc64, expected)?;
        }
        Ok(result)
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> CosResult<()> {
        let call =
            Call::new("abort_multipart", Method::DELETE, Some(key)).param("uploadId", upload_id);
        match self.execute(&call).await {
            Err(e) if e.code() != "NoSuchUpload" => Err(e),
            _ => Ok(()),
        }
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> CosResult<Vec<PartInfo>> {
        let mut parts = Vec::new();
        let mut marker = 0;
        loop {
            let call = Call::new("list_parts", Method::GET, Some(key))
                .param("uploadId", upload_id)
                .param("part-number-marker", marker.to_string());
            let reply = self.execute(&call).await?;
            let page: xml::ListPartsResult = xml::from_xml(&reply.body)?;
            parts.extend(page.parts());
            if !page.is_truncated || page.next_part_number_marker <= marker {
                return Ok(parts);
            }
            marker = page.next_part_number_marker;
        }
    }

    async fn list_uploads(&self, prefix: &str) -> CosResult<Vec<UploadInfo>> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        loop {
            let call = Call::new("list_uploads", Method::GET, None)
                .param("uploads", "")
                .param("prefix", prefix)
                .param("key-marker", key_marker.clone())
                .param("upload-id-marker", id_marker.clone())
                .param("encoding-type", "url");
            let reply = self.execute(&call).await?;
            let page: xml::ListMultipartUploadsResult = xml::from_xml(&reply.body)?;
            uploads.extend(page.uploads()?);
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(k), Some(u))
                    if (k.clone(), u.clone()) != (key_marker.clone(), id_marker.clone()) =>
                {
                    key_marker = super::path::decode(&k)?;
                    id_marker = u;
                }
                _ => return Ok(uploads),
            }
        }
    }
}

/// The result of a copy (`CopyObjectResult` or `CopyPartResult`). An answer
/// that is not one, with an ETag, means the server may have taken the copy
/// for something else, such as an upload of nothing over `dst`: said loudly,
/// and an `InvalidResponse` so the caller can clean up.
fn copy_result<T>(src: &str, dst: &str, body: &[u8]) -> CosResult<T>
where
    T: for<'de> serde::Deserialize<'de> + xml::HasEtag,
{
    let parsed = xml::from_xml::<T>(body).and_then(|r| match r.etag().is_empty() {
        true => Err(CosError::InvalidResponse(
            "the copy result has no ETag".into(),
        )),
        false => Ok(r),
    });
    if let Err(e) = &parsed {
        error!(
            "copying {src:?} to {dst:?}: the server answered success without a copy result ({e}); it may have written something else at {dst:?}"
        );
    }
    parsed
}

/// The CRC64 of the whole object from its parts' CRCs, when all are known.
fn combined_crc(parts: &[PartInfo]) -> Option<u64> {
    let mut iter = parts.iter();
    let first = iter.next()?;
    let mut crc = first.crc64?;
    for p in iter {
        crc = crc64::combine(crc, p.crc64?, p.size);
    }
    Some(crc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::endpoint::Style;
    use crate::creds::testutil::{FakeProvider, serve, serve_as_cos};
    use crate::creds::{Credentials, RefreshPolicy, SystemClock};

    const EXPIRED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Error><Code>ExpiredToken</Code><Message>token expired</Message></Error>";

    fn provider() -> Arc<FakeProvider> {
        Arc::new(FakeProvider::new(Arc::new(SystemClock), |n, now| {
            Ok(Credentials::temporary(
                &format!("AKID{n}"),
                "KEY",
                &format!("TOKEN{n}"),
                now + Duration::from_secs(3600),
            ))
        }))
    }

    async fn client(base: &str, store: CredentialStore) -> HttpClient {
        let endpoint = Endpoint::custom(base, "b-1", "ap-x", Style::PathStyle).unwrap();
        HttpClient::new(ClientConfig::new(endpoint), Arc::new(store)).unwrap()
    }

    async fn refreshing(p: &Arc<FakeProvider>) -> CredentialStore {
        CredentialStore::refreshing(p.clone(), Arc::new(SystemClock), RefreshPolicy::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_expired_token_forces_one_refresh_and_one_retry() {
        let (base, requests) = serve(vec![(400, EXPIRED.into()), (200, String::new())]).await;
        let p = provider();
        let c = client(&base, refreshing(&p).await).await;
        c.get("k", &GetOptions::default()).await.unwrap();
        assert_eq!(p.call_times().len(), 2);
        let r = requests.await.unwrap();
        let token = |i: usize| r[i].header("x-cos-security-token");
        assert_eq!(
            (token(0).as_deref(), token(1).as_deref()),
            (Some("TOKEN0"), Some("TOKEN1"))
        );
        assert!(r[1].header("authorization").unwrap().contains("q-ak=AKID1"));
    }

    #[tokio::test]
    async fn only_once_per_call() {
        let (base, requests) = serve(vec![(400, EXPIRED.into()), (400, EXPIRED.into())]).await;
        let p = provider();
        let c = client(&base, refreshing(&p).await).await;
        let e = c.get("k", &GetOptions::default()).await.unwrap_err();
        assert_eq!(e.code(), "ExpiredToken");
        assert_eq!(p.call_times().len(), 2);
        assert_eq!(requests.await.unwrap().len(), 2);
    }

    /// A listener that accepts connections and, with `hold`, keeps them
    /// open without a word or closes them at once.
    async fn silent_server(hold: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                if hold {
                    held.push(conn);
                }
            }
        });
        url
    }

    fn deadline_client(base: &str, op_timeout: Duration) -> HttpClient {
        let endpoint = Endpoint::custom(base, "b-1", "ap-x", Style::PathStyle).unwrap();
        let mut config = ClientConfig::new(endpoint);
        config.request_timeout = Duration::from_secs(30);
        config.op_timeout = op_timeout;
        config.retry = RetryPolicy {
            max_attempts: 1000,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        };
        let store = CredentialStore::fixed(Credentials::permanent("AKID", "KEY"));
        HttpClient::new(config, Arc::new(store)).unwrap()
    }

    #[tokio::test]
    async fn a_silent_server_times_out_at_the_operation_deadline() {
        let c = deadline_client(&silent_server(true).await, Duration::from_millis(400));
        let started = Instant::now();
        let e = c.head("k").await.unwrap_err();
        assert!(
            matches!(e, CosError::Transport { timeout: true, .. }),
            "{e}"
        );
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert_eq!(c.stats().failed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn dropped_connections_are_retried_until_the_deadline() {
        let c = deadline_client(&silent_server(false).await, Duration::from_millis(400));
        // The last attempt may be cut by the deadline (a timeout) or fail
        // like the others.
        let e = c.head("k").await.unwrap_err();
        assert!(matches!(e, CosError::Transport { .. }), "{e}");
        let stats = c.stats();
        assert!(
            stats.retries_for(RetryCause::Connection) >= 2,
            "{}",
            stats.summary()
        );
        assert_eq!(
            stats.requests.load(Ordering::Relaxed),
            stats.retries.load(Ordering::Relaxed) + 1
        );
    }

    #[test]
    fn classifies_retry_causes() {
        let svc = |s, c: &str| CosError::service(s, c, "");
        assert_eq!(
            RetryCause::of(&svc(500, "InternalError")),
            RetryCause::ServerError
        );
        assert_eq!(RetryCause::of(&svc(503, "SlowDown")), RetryCause::SlowDown);
        assert_eq!(
            RetryCause::of(&svc(400, "RequestTimeout")),
            RetryCause::Timeout
        );
        assert_eq!(
            RetryCause::of(&svc(403, "RequestTimeTooSkewed")),
            RetryCause::ClockSkew
        );
        assert_eq!(
            RetryCause::of(&svc(400, "ExpiredToken")),
            RetryCause::Credentials
        );
        assert_eq!(
            RetryCause::of(&CosError::Integrity("crc".into())),
            RetryCause::Integrity
        );
        let stats = ClientStats::default();
        stats.count_retry(RetryCause::SlowDown);
        assert_eq!(
            stats.summary(),
            "requests=0 retries=1 failed=0 server_error=0 slow_down=1 timeout=0 connection=0 integrity=0 clock_skew=0 credentials=0"
        );
    }

    fn fixed(base: &str) -> HttpClient {
        let endpoint = Endpoint::custom(base, "b-1", "ap-x", Style::PathStyle).unwrap();
        let store = CredentialStore::fixed(Credentials::permanent("AKID", "KEY"));
        HttpClient::new(ClientConfig::new(endpoint), Arc::new(store)).unwrap()
    }

    async fn copy_k(c: &HttpClient) -> CosResult<PutResult> {
        c.copy(
            "k",
            "k2",
            None,
            MetadataDirective::Copy,
            &ObjectAttrs::default(),
        )
        .await
    }

    #[tokio::test]
    async fn a_copy_is_never_sent_to_a_server_that_is_not_cos() {
        // The probe (HEAD Bucket) is answered without any COS header.
        let (base, requests) = serve(vec![(200, String::new())]).await;
        let c = fixed(&base);
        let e = copy_k(&c).await.unwrap_err();
        assert!(matches!(e, CosError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains(&base), "{e}");
        let sent = requests.await.unwrap();
        assert_eq!(sent.len(), 1, "only the probe went out");
        assert!(sent[0].head.starts_with("HEAD /b-1/ "), "{}", sent[0].head);
        assert!(matches!(c.server_kind(), ServerKind::Other(_)));
    }

    #[tokio::test]
    async fn a_copy_answered_without_a_copy_result_fails() {
        let (base, requests) = serve_as_cos(vec![(200, String::new()), (200, String::new())]).await;
        let c = fixed(&base);
        let e = copy_k(&c).await.unwrap_err();
        assert!(matches!(e, CosError::InvalidResponse(_)), "{e}");
        let sent = requests.await.unwrap();
        assert_eq!(sent.len(), 2, "the probe and one copy, not retried");
        assert!(sent[1].head.starts_with("PUT /b-1/k2 "), "{}", sent[1].head);
        assert_eq!(c.server_kind(), ServerKind::Cos);
    }

    #[tokio::test]
    async fn fixed_credentials_are_not_retried() {
        let (base, requests) = serve(vec![(400, EXPIRED.into())]).await;
        let store = CredentialStore::fixed(Credentials::permanent("AKID", "KEY"));
        let e = client(&base, store)
            .await
            .get("k", &GetOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "ExpiredToken");
        assert_eq!(requests.await.unwrap().len(), 1);
    }
}
