//! Fault injection (`cosmount serve --fault-rate P`, a test hook that is off
//! unless asked for): a seeded RNG decides, request by request, whether the
//! COS port misbehaves and how, so reliability tests can prove the client
//! survives a bad network and a bad server. And an outage switch that
//! refuses every request for a while (`POST /outage?secs=N` on the admin
//! port).
//!
//! The decisions come from one RNG in arrival order, so a run with the same
//! seed and the same request order makes the same decisions; with
//! concurrent clients the order (not the rate) varies. Every injected fault
//! is counted by kind (`GET /faults` on the admin port).
//!
//! Faults strike before the request runs (it never happened) or after it
//! ran (its answer is lost or damaged), so clients must be idempotent
//! where it matters (a retried Complete Multipart Upload finds its upload
//! gone). A damaged body never looks whole: a truncated one is shorter
//! than its `Content-Length`, a corrupted one fails its CRC64.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Buf as _;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Response, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

mod damaged;

use super::body::Body;
use super::error::ApiError;
use crate::sync::lock;
use damaged::{Cut, Damaged};

/// One way of misbehaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `500 InternalError`, before or after the request ran.
    InternalError,
    /// `503 SlowDown`, before the request runs.
    SlowDown,
    /// `403 RequestTimeTooSkewed` with a `Date` far ahead of the time the
    /// request was signed at (as a server whose clock is off would send),
    /// so the client adopts a wrong clock offset and must correct it again.
    Skew,
    /// The connection is closed: before the answer, or in its body.
    Reset,
    /// The body stops short of its `Content-Length` and the connection closes.
    Truncate,
    /// The answer is delayed by up to `--fault-delay`.
    Delay,
    /// Nothing is sent for `--fault-stall` (longer than the client waits),
    /// before the answer or in its body; then the connection closes.
    Stall,
    /// One byte of a whole-object GET is flipped (length intact). Only
    /// there: a range has no checksum in COS's protocol, so a flipped byte
    /// in a range is undetectable by any client (TLS is what guards it).
    Corrupt,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::InternalError,
        FaultKind::SlowDown,
        FaultKind::Skew,
        FaultKind::Reset,
        FaultKind::Truncate,
        FaultKind::Delay,
        FaultKind::Stall,
        FaultKind::Corrupt,
    ];

    /// The kinds `--fault-kinds` defaults to: all but `corrupt` (the last).
    pub const DEFAULT: &[FaultKind] = FaultKind::ALL.split_at(FaultKind::ALL.len() - 1).0;

    /// The kind's name in `--fault-kinds` and `/faults`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::InternalError => "500",
            FaultKind::SlowDown => "503",
            FaultKind::Skew => "skew",
            FaultKind::Reset => "reset",
            FaultKind::Truncate => "truncate",
            FaultKind::Delay => "delay",
            FaultKind::Stall => "stall",
            FaultKind::Corrupt => "corrupt",
        }
    }

    /// Parses a comma-separated list of kind names (`all` for every kind).
    pub fn parse_list(text: &str) -> Result<Vec<FaultKind>, String> {
        let mut kinds = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                kinds.extend(FaultKind::ALL);
                continue;
            }
            let kind = FaultKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                    format!(
                        "unknown fault kind {name:?} (known: {}, all)",
                        names.join(",")
                    )
                })?;
            kinds.push(kind);
        }
        kinds.sort_by_key(|k| k.index());
        kinds.dedup();
        if kinds.is_empty() {
            return Err("no fault kind given".into());
        }
        Ok(kinds)
    }

    fn index(self) -> usize {
        FaultKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// Which request an armed stall (`POST /stall` on the admin port) strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallTarget {
    /// The next GET of an object: no answer.
    Get,
    /// The next Upload Part: half its body is read, then nothing.
    Part,
}

impl StallTarget {
    /// The target named `name` (`get`, `part`).
    pub fn parse(name: &str) -> Option<StallTarget> {
        match name {
            "get" => Some(StallTarget::Get),
            "part" => Some(StallTarget::Part),
            _ => None,
        }
    }

    fn matches(self, method: &Method, headers: &HeaderMap, query: Option<&str>) -> bool {
        let query = query.unwrap_or("");
        match self {
            StallTarget::Get => *method == Method::GET && query.is_empty(),
            StallTarget::Part => {
                *method == Method::PUT
                    && query.contains("partNumber=")
                    && !headers.contains_key("x-cos-copy-source")
            }
        }
    }
}

/// How the server misbehaves; the default injects nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Fraction of requests that get a fault, 0 to 1.
    pub rate: f64,
    /// Seed of the RNG that decides.
    pub seed: u64,
    /// The kinds to pick from (uniformly, among those that fit the request).
    pub kinds: Vec<FaultKind>,
    /// Longest added latency of `delay`.
    pub delay: Duration,
    /// How long a `stall` sends nothing before closing the connection.
    pub stall: Duration,
    /// How far ahead of the request's signing time a `skew` answer's
    /// `Date` is.
    pub skew: Duration,
    /// Read every connection at most this many bytes per second (a thin
    /// link).
    pub throttle_uploads: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            rate: 0.0,
            seed: 0,
            kinds: FaultKind::DEFAULT.to_vec(),
            delay: Duration::from_secs(1),
            stall: Duration::from_secs(65),
            skew: Duration::from_secs(3600),
            throttle_uploads: None,
        }
    }
}

impl FaultConfig {
    /// Checks the rate and kinds.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(format!("--fault-rate {} is not between 0 and 1", self.rate));
        }
        if self.kinds.is_empty() {
            return Err("--fault-kinds names no kind".into());
        }
        Ok(())
    }
}

/// The injector: decisions, counters and the outage switch.
pub struct Faults {
    config: FaultConfig,
    rate_bits: AtomicU64,
    rng: Mutex<StdRng>,
    injected: [AtomicU64; FaultKind::ALL.len()],
    requests: AtomicU64,
    refused: AtomicU64,
    outage_until: Mutex<Option<Instant>>,
    armed: Mutex<Vec<(StallTarget, Duration)>>,
    armed_struck: AtomicU64,
}

/// The connection was closed on purpose (the error makes hyper drop it
/// without an answer).
#[derive(Debug)]
pub struct Dropped(&'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fault injection: {}", self.0)
    }
}

impl std::error::Error for Dropped {}

/// An error answered instead of (or in place of) the real one; `date`
/// overrides the `Date` header.
pub struct Refusal {
    /// The COS error.
    pub error: ApiError,
    /// The `Date` to send, when not now.
    pub date: Option<SystemTime>,
}

/// What was decided for one request.
pub struct Plan<'a> {
    faults: &'a Faults,
    action: Action,
    /// The time the request was signed at (its `q-key-time` start plus
    /// the minute clients put before it), when signed.
    signed_at: Option<SystemTime>,
}

enum Action {
    Pass,
    Outage,
    /// An armed stall of this long.
    Armed(StallTarget, Duration),
    Fault {
        kind: FaultKind,
        /// Strike after the request ran (where the kind allows both).
        after: bool,
        /// Where in the body to cut or flip, as a fraction of its length.
        at: f64,
        /// The delay of `delay`.
        delay: Duration,
    },
}

impl Faults {
    /// An injector for `config` (validated by the caller).
    pub fn new(config: FaultConfig) -> Faults {
        Faults {
            rate_bits: AtomicU64::new(config.rate.to_bits()),
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config,
            injected: Default::default(),
            requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            outage_until: Mutex::new(None),
            armed: Mutex::new(Vec::new()),
            armed_struck: AtomicU64::new(0),
        }
    }

    /// The fault rate now.
    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }

    /// Changes the fault rate (clamped to 0..=1).
    pub fn set_rate(&self, rate: f64) {
        let rate = if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Refuses every request for `duration` from now (zero ends an outage).
    pub fn start_outage(&self, duration: Duration) {
        *lock(&self.outage_until) = (!duration.is_zero()).then(|| Instant::now() + duration);
    }

    /// How long the current outage still lasts.
    pub fn outage_left(&self) -> Option<Duration> {
        let until = (*lock(&self.outage_until))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Decides what happens to a request.
    pub fn plan(&self, method: &Method, headers: &HeaderMap, query: Option<&str>) -> Plan<'_> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let action = if self.outage_left().is_some() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Action::Outage
        } else if let Some((target, stall)) = self.take_armed(method, headers, query) {
            Action::Armed(target, stall)
        } else {
            self.decide(whole_object_get(method, headers, query))
        };
        Plan {
            faults: self,
            action,
            signed_at: signing_time(headers),
        }
    }

    /// Makes the next request of `target`'s kind stall for `stall`, then
    /// lose its connection.
    pub fn arm(&self, target: StallTarget, stall: Duration) {
        lock(&self.armed).push((target, stall));
    }

    fn take_armed(
        &self,
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Option<(StallTarget, Duration)> {
        let mut armed = lock(&self.armed);
        let i = armed
            .iter()
            .position(|(t, _)| t.matches(method, headers, query))?;
        self.armed_struck.fetch_add(1, Ordering::Relaxed);
        Some(armed.remove(i))
    }

    fn decide(&self, whole_get: bool) -> Action {
        let rate = self.rate();
        if rate <= 0.0 {
            return Action::Pass;
        }
        let mut rng = lock(&self.rng);
        if !rng.random_bool(rate) {
            return Action::Pass;
        }
        let fitting: Vec<FaultKind> = self
            .config
            .kinds
            .iter()
            .copied()
            .filter(|&k| k != FaultKind::Corrupt || whole_get)
            .collect();
        if fitting.is_empty() {
            return Action::Pass;
        }
        let kind = fitting[rng.random_range(0..fitting.len())];
        let after = rng.random_bool(0.5);
        let at = rng.random_range(0.1..0.9);
        let max_delay = self.config.delay.as_millis().min(u64::MAX as u128) as u64;
        let delay = Duration::from_millis(rng.random_range(0..=max_delay));
        Action::Fault {
            kind,
            after,
            at,
            delay,
        }
    }

    fn count(&self, kind: FaultKind) {
        self.injected[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Faults of `kind` injected so far.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        self.injected[kind.index()].load(Ordering::Relaxed)
    }

    /// Zeroes the counters.
    pub fn reset(&self) {
        for c in &self.injected {
            c.store(0, Ordering::Relaxed);
        }
        self.requests.store(0, Ordering::Relaxed);
        self.refused.store(0, Ordering::Relaxed);
    }

    /// The settings and counters:
    /// `{"rate":..,"seed":..,"kinds":[..],"requests":N,"injected":{"500":N,..},
    /// "outage":{"active":bool,"left_ms":N,"refused":N}}`.
    pub fn to_json(&self) -> Value {
        let injected: Map<String, Value> = FaultKind::ALL
            .iter()
            .map(|&k| (k.name().to_string(), Value::from(self.injected(k))))
            .collect();
        let left = self.outage_left();
        serde_json::json!({
            "rate": self.rate(),
            "seed": self.config.seed,
            "kinds": self.config.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "requests": self.requests.load(Ordering::Relaxed),
            "injected": injected,
            "armed": {
                "pending": lock(&self.armed).len(),
                "struck": self.armed_struck.load(Ordering::Relaxed),
            },
            "outage": {
                "active": left.is_some(),
                "left_ms": left.map_or(0, |d| d.as_millis() as u64),
                "refused": self.refused.load(Ordering::Relaxed),
            },
        })
    }

    /// One line for the log at startup.
    pub fn describe(&self) -> String {
        let kinds: Vec<&str> = self.config.kinds.iter().map(|k| k.name()).collect();
        format!(
            "injecting faults into {:.1}% of requests (kinds {}, seed {}, delay up to {:?}, stall {:?}, skew {:?})",
            self.rate() * 100.0,
            kinds.join(","),
            self.config.seed,
            self.config.delay,
            self.config.stall,
            self.config.skew
        )
    }
}

/// When a signed request was signed, by the signer's clock.
fn signing_time(headers: &HeaderMap) -> Option<SystemTime> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let fields = crate::cos::sign::parse_authorization(value)?;
    let start = fields.key_time.start.saturating_add(60);
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(start))
}

/// A GET of a whole object (no Range, no sub-resource): the only answer
/// whose every byte a client can check, against `x-cos-hash-crc64ecma`.
fn whole_object_get(method: &Method, headers: &HeaderMap, query: Option<&str>) -> bool {
    *method == Method::GET
        && !headers.contains_key(header::RANGE)
        && query.is_none_or(str::is_empty)
}

impl Plan<'_> {
    /// Runs the part of the plan that comes before the request: waits
    /// (`delay`, `stall`), answers an error instead (`Ok(Some)`), or drops
    /// the connection (`Err`). `Ok(None)`: serve the request. An armed
    /// stall of an upload reads half of `body` first.
    pub async fn before<B>(&self, body: &mut B) -> Result<Option<Refusal>, Dropped>
    where
        B: hyper::body::Body + Unpin,
        B::Data: bytes::Buf,
    {
        let Action::Fault {
            kind, after, delay, ..
        } = self.action
        else {
            return match self.action {
                Action::Outage => Err(Dropped("outage")),
                Action::Armed(target, stall) => Err(armed_stall(target, stall, body).await),
                _ => Ok(None),
            };
        };
        let faults = self.faults;
        match kind {
            FaultKind::Delay => {
                faults.count(kind);
                tokio::time::sleep(delay).await;
                Ok(None)
            }
            FaultKind::SlowDown => {
                faults.count(kind);
                Ok(Some(refusal(slow_down(), None)))
            }
            FaultKind::Skew => {
                faults.count(kind);
                let signed_at = self.signed_at.unwrap_or_else(SystemTime::now);
                let date = signed_at + faults.config.skew;
                Ok(Some(refusal(skewed(), Some(date))))
            }
            FaultKind::InternalError if !after => {
                faults.count(kind);
                Ok(Some(refusal(internal(), None)))
            }
            FaultKind::Reset if !after => {
                faults.count(kind);
                Err(Dropped("connection reset before the answer"))
            }
            FaultKind::Stall if !after => {
                faults.count(kind);
                tokio::time::sleep(faults.config.stall).await;
                Err(Dropped("stalled before the answer"))
            }
            _ => Ok(None),
        }
    }

    /// Runs the part of the plan that comes after the request ran: the
    /// answer passes, is replaced by an error (`render` makes its
    /// document), has its body damaged, or is never sent (`Err`). `head`
    /// says the answer has no body whatever its `Content-Length`.
    pub async fn after(
        &self,
        answer: Response<Body>,
        head: bool,
        render: impl FnOnce(Refusal) -> Response<Body>,
    ) -> Result<Response<Body>, Dropped> {
        let Action::Fault {
            kind, after, at, ..
        } = self.action
        else {
            return Ok(answer);
        };
        match kind {
            FaultKind::InternalError if after => {
                self.faults.count(kind);
                Ok(render(refusal(internal(), None)))
            }
            FaultKind::Stall if after && body_length(&answer, head) == 0 => {
                // No body to stall in: the answer never comes.
                self.faults.count(kind);
                tokio::time::sleep(self.faults.config.stall).await;
                Err(Dropped("stalled before the answer"))
            }
            FaultKind::Reset | FaultKind::Stall if after => self.damage(answer, head, at),
            FaultKind::Truncate | FaultKind::Corrupt => self.damage(answer, head, at),
            _ => Ok(answer),
        }
    }

    /// Damages the body of `answer` as the plan's kind says.
    fn damage(
        &self,
        answer: Response<Body>,
        head: bool,
        at: f64,
    ) -> Result<Response<Body>, Dropped> {
        let Action::Fault { kind, .. } = self.action else {
            return Ok(answer);
        };
        let faults = self.faults;
        let len = body_length(&answer, head);
        let cut = (len as f64 * at) as u64;
        let mode = match kind {
            FaultKind::Corrupt => {
                let checked = answer.headers().contains_key("x-cos-hash-crc64ecma");
                if len == 0 || !checked || answer.status() != StatusCode::OK {
                    return Ok(answer); // nothing a client could check: no fault
                }
                Cut::Flip
            }
            FaultKind::Stall => Cut::Stall(faults.config.stall),
            _ if len == 0 => {
                // No body to cut: the answer is lost instead.
                faults.count(FaultKind::Reset);
                return Err(Dropped("connection reset before the answer"));
            }
            FaultKind::Truncate => Cut::End,
            _ => Cut::Reset,
        };
        faults.count(kind);
        let (parts, body) = answer.into_parts();
        let damaged = Damaged {
            inner: body,
            sent: 0,
            cut: cut.min(len - 1),
            mode,
            sleep: None,
        };
        Ok(Response::from_parts(parts, damaged.boxed()))
    }
}

/// Runs an armed stall: half of an upload's body is read (the rest waits
/// in socket buffers), then nothing happens for `stall`.
async fn armed_stall<B>(target: StallTarget, stall: Duration, body: &mut B) -> Dropped
where
    B: hyper::body::Body + Unpin,
    B::Data: bytes::Buf,
{
    if target == StallTarget::Part {
        let half = body.size_hint().exact().unwrap_or(0) / 2;
        let mut read = 0u64;
        while read < half {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.remaining() as u64),
                _ => break,
            }
        }
    }
    tokio::time::sleep(stall).await;
    match target {
        StallTarget::Get => Dropped("armed stall before the answer"),
        StallTarget::Part => Dropped("armed stall inside the request body"),
    }
}

fn refusal(error: ApiError, date: Option<SystemTime>) -> Refusal {
    Refusal { error, date }
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "We encountered an internal error. Please try again. (injected)",
    )
}

fn slow_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "SlowDown",
        "Please reduce your request rate. (injected)",
    )
}

fn skewed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "RequestTimeTooSkewed",
        "The difference between the request time and the server's time is too large. (injected)",
    )
}

/// Bytes the answer's body will carry.
fn body_length(answer: &Response<Body>, head: bool) -> u64 {
    let status = answer.status();
    if head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return 0;
    }
    answer
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| answer.body().size_hint().exact())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_body() -> http_body_util::Empty<bytes::Bytes> {
        http_body_util::Empty::new()
    }

    #[tokio::test(start_paused = true)]
    async fn an_armed_stall_strikes_the_next_request_of_its_kind_once() {
        let f = Faults::new(FaultConfig::default());
        f.arm(StallTarget::Part, Duration::from_secs(60));
        let part = Some("partNumber=1&uploadId=u");
        let get = f.plan(&Method::GET, &HeaderMap::new(), None);
        assert!(get.before(&mut no_body()).await.unwrap().is_none());
        let started = tokio::time::Instant::now();
        let stalled = f.plan(&Method::PUT, &HeaderMap::new(), part);
        assert!(stalled.before(&mut no_body()).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        let next = f.plan(&Method::PUT, &HeaderMap::new(), part);
        assert!(next.before(&mut no_body()).await.unwrap().is_none());
        assert_eq!(f.to_json()["armed"]["struck"], 1);
    }

    fn faults(rate: f64, kinds: &[FaultKind], seed: u64) -> Faults {
        Faults::new(FaultConfig {
            rate,
            seed,
            kinds: kinds.to_vec(),
            delay: Duration::from_millis(5),
            stall: Duration::from_millis(5),
            ..FaultConfig::default()
        })
    }

    fn decisions(f: &Faults, n: usize) -> Vec<Option<FaultKind>> {
        (0..n)
            .map(|_| {
                match f
                    .plan(&Method::GET, &HeaderMap::new(), Some("prefix="))
                    .action
                {
                    Action::Fault { kind, .. } => Some(kind),
                    _ => None,
                }
            })
            .collect()
    }

    #[test]
    fn parses_kind_lists() {
        assert_eq!(
            FaultKind::parse_list("skew, 500,500").unwrap(),
            vec![FaultKind::InternalError, FaultKind::Skew]
        );
        assert_eq!(
            FaultKind::parse_list("all").unwrap(),
            FaultKind::ALL.to_vec()
        );
        assert!(FaultKind::parse_list("fire").unwrap_err().contains("fire"));
        assert!(FaultKind::parse_list("").is_err());
    }

    #[test]
    fn the_seed_decides_and_the_rate_holds() {
        let a = decisions(&faults(0.1, FaultKind::DEFAULT, 7), 20_000);
        let b = decisions(&faults(0.1, FaultKind::DEFAULT, 7), 20_000);
        assert_eq!(a, b, "same seed, same decisions");
        let c = decisions(&faults(0.1, FaultKind::DEFAULT, 8), 20_000);
        assert_ne!(a, c);
        let hits = a.iter().flatten().count();
        assert!((1_700..2_300).contains(&hits), "{hits} faults in 20,000");
        for &kind in FaultKind::DEFAULT {
            let n = a.iter().flatten().filter(|&&k| k == kind).count();
            assert!(n > 200, "{kind:?} picked {n} times");
        }
        assert!(
            decisions(&faults(0.0, &FaultKind::ALL, 1), 1000)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn corruption_only_strikes_whole_object_gets() {
        let f = faults(1.0, &[FaultKind::Corrupt], 1);
        assert!(decisions(&f, 100).iter().all(Option::is_none), "a listing");
        let mut ranged = HeaderMap::new();
        ranged.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        assert!(matches!(
            f.plan(&Method::GET, &ranged, None).action,
            Action::Pass
        ));
        assert!(matches!(
            f.plan(&Method::GET, &HeaderMap::new(), None).action,
            Action::Fault {
                kind: FaultKind::Corrupt,
                ..
            }
        ));
    }

    #[test]
    fn an_outage_refuses_everything_until_it_ends() {
        let f = faults(0.0, FaultKind::DEFAULT, 1);
        f.start_outage(Duration::from_secs(60));
        assert!(f.outage_left().is_some());
        assert!(matches!(
            f.plan(&Method::HEAD, &HeaderMap::new(), None).action,
            Action::Outage
        ));
        f.start_outage(Duration::ZERO);
        assert!(matches!(
            f.plan(&Method::HEAD, &HeaderMap::new(), None).action,
            Action::Pass
        ));
        assert_eq!(f.to_json()["outage"]["refused"], 1);
        assert_eq!(f.to_json()["requests"], 2);
    }

    use hyper::header::HeaderValue;

    fn answer(body: &'static [u8]) -> Response<Body> {
        let mut r = Response::new(super::super::body::full(body));
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        r.headers_mut()
            .insert("x-cos-hash-crc64ecma", HeaderValue::from_static("1"));
        r
    }

    fn plan(f: &Faults, kind: FaultKind, after: bool) -> Plan<'_> {
        Plan {
            faults: f,
            action: Action::Fault {
                kind,
                after,
                at: 0.5,
                delay: Duration::ZERO,
            },
            signed_at: None,
        }
    }

    async fn collect(r: Response<Body>) -> Result<Vec<u8>, std::io::Error> {
        let mut body = r.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.extend_from_slice(&frame?.into_data().unwrap_or_default());
        }
        Ok(out)
    }

    fn no_render(_: Refusal) -> Response<Body> {
        panic!("no error answer expected")
    }

    #[tokio::test]
    async fn damaged_bodies_never_look_whole() {
        let f = faults(1.0, &FaultKind::ALL, 1);
        let body = b"0123456789";
        let cut = plan(&f, FaultKind::Truncate, true)
            .after(answer(body), false, no_render)
            .await
            .unwrap();
        assert_eq!(cut.headers()[header::CONTENT_LENGTH], "10");
        assert_eq!(collect(cut).await.unwrap(), b"01234", "ends short");
        let reset = plan(&f, FaultKind::Reset, true)
            .after(answer(body), false, no_render)
            .await
            .unwrap();
        assert!(collect(reset).await.is_err());
        let flipped = plan(&f, FaultKind::Corrupt, true)
            .after(answer(body), false, no_render)
            .await
            .unwrap();
        let got = collect(flipped).await.unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got.iter().zip(body).filter(|(a, b)| a != b).count(), 1);
        let stalled = plan(&f, FaultKind::Stall, true)
            .after(answer(body), false, no_render)
            .await
            .unwrap();
        assert!(collect(stalled).await.is_err());
        // HEAD answers have no body: the answer is lost instead.
        assert!(
            plan(&f, FaultKind::Truncate, true)
                .after(answer(body), true, no_render)
                .await
                .is_err()
        );
        for kind in [FaultKind::Truncate, FaultKind::Corrupt, FaultKind::Stall] {
            assert_eq!(f.injected(kind), 1, "{kind:?}");
        }
        assert_eq!(f.injected(FaultKind::Reset), 2);
    }

    #[tokio::test]
    async fn errors_before_and_after_the_request() {
        let f = faults(1.0, &FaultKind::ALL, 1);
        let skew = plan(&f, FaultKind::Skew, true)
            .before(&mut no_body())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(skew.error.code, "RequestTimeTooSkewed");
        assert!(skew.date.unwrap() > SystemTime::now() + Duration::from_secs(3000));
        // Relative to the time the request was signed at, as a server with
        // a clock an hour ahead of the client's would answer.
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "q-sign-algorithm=sha1&q-ak=AK&q-sign-time=1000;5000&q-key-time=1000;5000&q-header-list=&q-url-param-list=&q-signature=x",
            ),
        );
        let mut signed = plan(&f, FaultKind::Skew, false);
        signed.signed_at = signing_time(&headers);
        let skew = signed.before(&mut no_body()).await.unwrap().unwrap();
        assert_eq!(
            skew.date,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1060 + 3600))
        );
        assert!(
            plan(&f, FaultKind::Reset, false)
                .before(&mut no_body())
                .await
                .is_err()
        );
        assert!(
            plan(&f, FaultKind::Reset, true)
                .before(&mut no_body())
                .await
                .unwrap()
                .is_none()
        );
        let replaced = plan(&f, FaultKind::InternalError, true)
            .after(answer(b"x"), false, |r| {
                let mut a = Response::new(super::super::body::empty());
                *a.status_mut() = r.error.status;
                a
            })
            .await
            .unwrap();
        assert_eq!(replaced.status(), 500);
    }
}
