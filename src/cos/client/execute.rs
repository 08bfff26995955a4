//! Sending a [`Call`] until it succeeds or fails for good: attempts bounded
//! by their own deadline and the operation's, waits decided by the retry
//! policy, the clock offset learned from `RequestTimeTooSkewed` (corrections
//! do not spend the failure budget), one forced credential refresh per
//! call when COS says the token expired, and within each attempt the
//! progress deadlines (`progress`) and the hedge of a late answer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use log::{debug, warn};
use reqwest::Method;

use super::call::{Call, Signed};
use super::progress::{Progress, ProgressBody};
use super::response::{
    AttemptError, Reply, check_length, read_body, service_error, transport_error, unix_seconds,
};
use super::stats::Answer;
use super::{HttpClient, RetryCause};
use crate::cos::{CosError, CosResult, Provider, xml};

/// Below this much time left, an operation gives up instead of retrying.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// Bytes per second a server is assumed to copy at least, for calls
/// that answer once it has (Copy, Complete Multipart Upload).
const SERVER_WORK_RATE: f64 = 32.0 * 1024.0 * 1024.0;

/// Most a call's progress deadlines grow after its attempts stalled.
const MAX_PATIENCE: u32 = 8;

impl HttpClient {
    /// Sends a call, retrying what is worth retrying, until it succeeds,
    /// fails for good, runs out of attempts or reaches its deadline.
    pub(super) async fn execute(&self, call: &Call<'_>) -> CosResult<Reply> {
        let started = Instant::now();
        let _in_flight = self.stats.start(call.op);
        let deadline = started + self.op_timeout;
        let mut sent = 0u32;
        let mut failures = 0u32;
        let mut corrections = 0u32;
        let mut creds_refreshed = false;
        let mut patience = 1;
        loop {
            sent += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            self.latencies.earn_hedge_share();
            // The wait for a place in flight comes out of the operation's time.
            let slot = self.throttle.slot().await;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let err = match self.attempt(call, remaining, patience).await {
                Ok(reply) => {
                    self.throttle.answered();
                    return Ok(reply);
                }
                Err(err) => err,
            };
            drop(slot);
            if err.stalled {
                // Slower than learned, or dead: the next attempt waits
                // longer, so a slow server is not retried forever.
                patience = (patience * 2).min(MAX_PATIENCE);
            }
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
            let retryable = err.is_retryable();
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
                let kind = format!("gave up {why} {}", err.code());
                crate::warn_limited!(
                    &kind,
                    "{} {:?} failed: {sent} attempts in {:?}, {why}: {err}",
                    call.op,
                    call.key.unwrap_or("/"),
                    started.elapsed()
                );
                return Err(err);
            }
            // Never sleep away the time left: half of it at most, so a
            // last attempt still fits before the deadline.
            let cause = RetryCause::of(&err);
            let throttled = cause == RetryCause::SlowDown;
            if throttled {
                self.throttle.throttled();
                debug!(
                    "{} {:?}: the server asked for less traffic; requests in flight now at most {:?}",
                    call.op,
                    call.key.unwrap_or("/"),
                    self.throttle.limit()
                );
            }
            let delay = self
                .retry
                .request_delay(failures, throttled)
                .min(remaining / 2);
            debug!(
                "{} {:?} attempt {sent} failed ({err}); retrying in {delay:?}",
                call.op,
                call.key.unwrap_or("/")
            );
            self.stats.count_retry(cause);
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

    /// One attempt within `budget` (the operation's time left), with a
    /// hedge when the call allows one; `patience` multiplies its progress
    /// deadlines (it grows after an attempt of the call stalled).
    async fn attempt(
        &self,
        call: &Call<'_>,
        budget: Duration,
        patience: u32,
    ) -> Result<Reply, AttemptError> {
        if budget.is_zero() {
            return Err(deadline_passed(budget).into());
        }
        match tokio::time::timeout(budget, self.hedged_attempt(call, patience)).await {
            Ok(result) => result,
            Err(_) => Err(deadline_passed(budget).into()),
        }
    }

    /// Sends the call once and, when it allows a hedge and its answer is
    /// late (and the budget allows), once more on another connection: the
    /// first good answer wins, the other request is dropped with its
    /// connection.
    async fn hedged_attempt(&self, call: &Call<'_>, patience: u32) -> Result<Reply, AttemptError> {
        let first_progress = Progress::new(call.body.len() as u64);
        let first = self.attempt_within(call, &first_progress, patience);
        if !call.hedge {
            return first.await;
        }
        tokio::pin!(first);
        let why = tokio::select! {
            result = &mut first => return result,
            why = self.hedge_due(call, &first_progress, patience) => why,
        };
        if !self.latencies.take_hedge() {
            debug!(
                "{} {:?}: {why}; hedge budget spent, waiting",
                call.op,
                call.key.unwrap_or("/")
            );
            return first.await;
        }
        self.stats.hedges.fetch_add(1, Ordering::Relaxed);
        debug!(
            "{} {:?}: {why}; sending a hedge",
            call.op,
            call.key.unwrap_or("/")
        );
        let second_progress = Progress::new(call.body.len() as u64);
        let second = self.attempt_within(call, &second_progress, patience);
        tokio::pin!(second);
        tokio::select! {
            // A failure worth retrying leaves the hedge, already in
            // flight, as the retry.
            result = &mut first => match result {
                Err(e) if e.is_retryable() => self.hedge_result(call, second.await),
                decided => decided,
            },
            // The first request is late: whatever the hedge answers
            // decides, a failure included (the next attempt then goes out
            // at once instead of after the first's deadline).
            result = &mut second => self.hedge_result(call, result),
        }
    }

    /// Counts a hedge that answered for good (a success, or an answer such
    /// as 404 that a retry would repeat).
    fn hedge_result(
        &self,
        call: &Call<'_>,
        result: Result<Reply, AttemptError>,
    ) -> Result<Reply, AttemptError> {
        if result.as_ref().map_or_else(|e| !e.is_retryable(), |_| true) {
            self.stats.hedges_won.fetch_add(1, Ordering::Relaxed);
            debug!(
                "{} {:?}: the hedge answered first",
                call.op,
                call.key.unwrap_or("/")
            );
        }
        result
    }

    /// Resolves when a hedge of the attempt `progress` is due: its body
    /// sent (and drained, at the pace seen) and no answer for the learned
    /// hedge delay, or an answer that began and then stopped moving for
    /// longer than recent answers of its kind did (never before such
    /// silences were learned: a body trickling in on a slow link is not
    /// duplicated).
    async fn hedge_due(&self, call: &Call<'_>, progress: &Progress, patience: u32) -> HedgeWhy {
        let done = progress.wait_body_done().await;
        let delay = self.latencies.hedge_delay(call.op)
            + progress.drain_allowance(self.latencies.upload_rate());
        tokio::time::sleep_until(done + delay).await;
        if !progress.has_answer() {
            return HedgeWhy::NoAnswer(delay);
        }
        let idle = self.latencies.answer_idle(call.op, self.stall_timeout) * patience;
        let Some(silence) = self.latencies.answer_hedge_delay(call.op, idle) else {
            return std::future::pending().await;
        };
        loop {
            let due = progress.last_received().unwrap_or(done) + silence;
            if tokio::time::Instant::now() >= due {
                return HedgeWhy::Silent(silence);
            }
            tokio::time::sleep_until(due).await;
        }
    }

    /// How long the answer to `call` may take to begin once the request
    /// was handed over: the learned deadline for its kind, plus time for
    /// the bytes the server copies first.
    fn first_byte_deadline(&self, call: &Call<'_>) -> Duration {
        self.latencies.first_byte_deadline(call.op) + server_work_time(call.server_work)
    }

    async fn attempt_within(
        &self,
        call: &Call<'_>,
        progress: &Arc<Progress>,
        patience: u32,
    ) -> Result<Reply, AttemptError> {
        let result = self.send_and_read(call, progress, patience).await;
        let answer = match &result {
            Ok(reply) => Answer::Status(reply.status),
            Err(e) if e.stalled => Answer::Stalled,
            Err(e) => e.error.status().map_or(Answer::NoAnswer, Answer::Status),
        };
        self.stats
            .count_attempt(call.op, answer, progress.started().elapsed());
        if let Err(e) = &result {
            if e.stalled {
                self.stats.stalls.fetch_add(1, Ordering::Relaxed);
                debug!(
                    "{} {:?}: {}; abandoning the connection",
                    call.op,
                    call.key.unwrap_or("/"),
                    e.error
                );
            }
        }
        result
    }

    async fn send_and_read(
        &self,
        call: &Call<'_>,
        progress: &Arc<Progress>,
        patience: u32,
    ) -> Result<Reply, AttemptError> {
        let (url, signed_path) = call.target(&self.endpoint)?;
        // Parsed once, so that what SigV4 signs is what goes on the wire.
        let url = reqwest::Url::parse(&url)
            .map_err(|e| CosError::InvalidRequest(format!("bad URL {url:?}: {e}")))?;
        let creds = self.creds.current().await;
        // Signed with, and judged against: other requests may move it.
        let offset = self.clock_offset.load(Ordering::Relaxed);
        let token = creds.as_ref().and_then(|c| c.session_token.as_deref());
        let headers = call.wire_headers(&self.endpoint.host, self.provider, token);
        let signature = match &creds {
            Some(creds) => {
                let target = Signed {
                    url: url.as_str(),
                    path: &signed_path,
                    headers: &headers,
                    region: &self.endpoint.region,
                    https: url.scheme() == "https",
                };
                call.signature(self.provider, &target, creds, signing_time(offset))?
            }
            None => Vec::new(),
        };
        let mut req = self.http.request(call.method.clone(), url);
        for (name, value) in headers.iter().chain(&signature) {
            // Content-Length is sent explicitly: it is signed, and hyper
            // omits it for an empty PUT/POST body.
            if name != "host" {
                req = req.header(name.as_str(), value.as_str());
            }
        }
        if !call.body.is_empty() {
            let body = ProgressBody::new(call.body.clone(), progress.clone());
            req = req.body(reqwest::Body::wrap(body));
        } else if call.sends_body() {
            req = req.body(Bytes::new());
        }
        let stall = self.stall_timeout;
        let first_byte = self.first_byte_deadline(call) * patience;
        let resp = tokio::select! {
            resp = req.send() => resp.map_err(transport_error)?,
            stalled = progress.watch(
                self.latencies.body_idle(call.op, stall) * patience,
                first_byte,
                self.latencies.upload_rate(),
            ) => {
                return Err(stalled.into());
            }
        };
        progress.answered();
        self.stats.bytes_sent.inc_by(call.body.len() as u64);
        self.learn(call, progress);
        let status = resp.status().as_u16();
        let resp_headers = resp.headers().clone();
        if self.provider == Provider::Cos {
            self.dialect.observe(status, &resp_headers);
        }
        let idle = self.latencies.answer_idle(call.op, stall) * patience;
        let idle = idle.max(server_work_time(call.server_work));
        let body = if call.method == Method::HEAD {
            Bytes::new()
        } else {
            let (body, longest_gap) =
                read_body(resp, call.buffers.as_deref(), idle, progress).await?;
            if call.server_work == 0 {
                self.latencies.record_answer_gap(call.op, longest_gap);
            }
            body
        };
        self.stats.bytes_received.inc_by(body.len() as u64);
        debug!(
            "{} {} {:?}{} -> {status} ({} bytes, {:?})",
            call.op,
            call.method,
            call.key.unwrap_or("/"),
            call.params
                .iter()
                .find(|(name, _)| name == "prefix")
                .map_or(String::new(), |(_, p)| format!(" prefix {p:?}")),
            body.len(),
            progress.started().elapsed()
        );
        if status >= 300 || (call.xml_result && xml::is_error_body(&body)) {
            return Err(service_error(status, &resp_headers, &body, offset));
        }
        check_length(&resp_headers, &body, &call.method)?;
        if let Some(check) = call.check {
            check(&resp_headers, &body)?;
        }
        Ok(Reply {
            status,
            headers: resp_headers,
            body,
        })
    }

    /// Learns from an answer that just began: its time to first byte
    /// (calls whose server copies data first say nothing about the
    /// others), the upload throughput of its body and the body's longest
    /// silence.
    fn learn(&self, call: &Call<'_>, progress: &Progress) {
        let now = tokio::time::Instant::now();
        if let Some(done) = progress.body_done() {
            if call.server_work == 0 {
                self.latencies.record(call.op, now - done);
            }
        }
        self.latencies
            .record_upload(call.body.len() as u64, now - progress.started());
        if let Some(gap) = progress.longest_gap() {
            self.latencies.record_body_gap(call.op, gap);
        }
    }
}

/// Why a hedge is due.
enum HedgeWhy {
    /// No answer after this long.
    NoAnswer(Duration),
    /// The answer began, then moved nothing for this long.
    Silent(Duration),
}

impl std::fmt::Display for HedgeWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HedgeWhy::NoAnswer(d) => write!(f, "no answer after {d:.1?}"),
            HedgeWhy::Silent(d) => write!(f, "the answer stopped moving for {d:.1?}"),
        }
    }
}

/// The time requests are signed with: the local clock moved by `offset`
/// seconds (what COS said the clock is off by).
fn signing_time(offset: i64) -> SystemTime {
    let shift = Duration::from_secs(offset.unsigned_abs());
    match offset >= 0 {
        true => SystemTime::now() + shift,
        false => SystemTime::now() - shift,
    }
}

/// Time the server gets to copy `bytes` before it answers.
fn server_work_time(bytes: u64) -> Duration {
    Duration::from_secs_f64(bytes as f64 / SERVER_WORK_RATE)
}

fn deadline_passed(limit: Duration) -> CosError {
    CosError::Transport {
        message: format!("no answer within {limit:?}"),
        timeout: true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cos::client::ClientConfig;
    use crate::cos::endpoint::{Endpoint, Style};
    use crate::cos::{GetOptions, ObjectClient};
    use crate::creds::testutil::{FakeProvider, serve};
    use crate::creds::{CredentialStore, Credentials, RefreshPolicy, SystemClock};
    use crate::retry::RetryPolicy;

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

    /// An empty 200.
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

    /// A server that reads the first connection's request and never
    /// answers it (reporting when the client closes that connection), and
    /// answers every request on later connections with an empty 200.
    async fn first_connection_stalls() -> (String, tokio::sync::oneshot::Receiver<()>) {
        first_connection_stalls_then(OK).await
    }

    /// [`first_connection_stalls`], answering later requests with `answer`.
    async fn first_connection_stalls_then(
        answer: &'static [u8],
    ) -> (String, tokio::sync::oneshot::Receiver<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stalled, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut read = 0;
                while read < STALLED_READS_AT_MOST {
                    match stalled.read(&mut buf).await {
                        Ok(n) if n > 0 => read += n,
                        _ => break,
                    }
                }
                if read >= STALLED_READS_AT_MOST {
                    // Stop reading; wait until the client closes.
                    let _ = stalled.readable().await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                let _ = closed_tx.send(());
            });
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {
                        if conn.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (url, closed)
    }

    /// The stalled connection reads at most this much (half a part).
    const STALLED_READS_AT_MOST: usize = 4 << 20;

    #[tokio::test]
    async fn an_upload_stalled_halfway_is_hedged() {
        let (base, _closed) = first_connection_stalls().await;
        let c = fixed_client(&base, ClientConfig::DEFAULT_REQUEST_TIMEOUT);
        let started = Instant::now();
        let part = Bytes::from(vec![1u8; 8 << 20]);
        c.upload_part("k", "u", 1, part).await.unwrap();
        let took = started.elapsed();
        // Cold: the 4 MiB the socket buffers may hold get 8 s at the unlearned
        // upload rate, then the hedge delay (~9 s on an idle machine). On a
        // starved one the body's silence can reach --stall-timeout first:
        // then the stall detector abandons the attempt and the retry wins.
        // Either way the stalled connection costs seconds, not a minute.
        let stats = c.stats();
        assert!(
            took < Duration::from_secs(15),
            "took {took:?}: {}",
            stats.summary()
        );
        let hedged = stats.hedges_won.load(Ordering::Relaxed);
        let stalled = stats.stalls.load(Ordering::Relaxed);
        assert_eq!(hedged + stalled, 1, "{}", stats.summary());
    }

    /// A client that learned nothing about answer silences does not
    /// duplicate an answer trickling in.
    #[tokio::test]
    async fn an_answer_on_its_way_is_not_hedged() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n";
                    let _ = conn.write_all(head).await;
                    for byte in b"abcd" {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                        let _ = conn.write_all(&[*byte]).await;
                    }
                });
            }
        });
        let c = fixed_client(&base, ClientConfig::DEFAULT_REQUEST_TIMEOUT);
        let got = c.get("k", &GetOptions::default()).await.unwrap();
        assert_eq!(&got.body[..], b"abcd");
        let stats = c.stats();
        assert_eq!(
            stats.hedges.load(Ordering::Relaxed),
            0,
            "{}",
            stats.summary()
        );
    }

    #[tokio::test]
    async fn an_answer_that_stops_moving_is_hedged_once_silences_were_learned() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut first = true;
            while let Ok((mut conn, _)) = listener.accept().await {
                let stall = std::mem::take(&mut first);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
                        .await;
                    if stall {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    let _ = conn.write_all(b"cd").await;
                });
            }
        });
        let c = fixed_client(&base, ClientConfig::DEFAULT_REQUEST_TIMEOUT);
        for _ in 0..16 {
            c.latencies.record("get", Duration::from_millis(1));
            c.latencies
                .record_answer_gap("get", Duration::from_millis(1));
        }
        let started = Instant::now();
        let got = c.get("k", &GetOptions::default()).await.unwrap();
        assert_eq!(&got.body[..], b"abcd");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(900), "took {took:?}");
        let stats = c.stats();
        assert_eq!(
            (
                stats.hedges.load(Ordering::Relaxed),
                stats.hedges_won.load(Ordering::Relaxed)
            ),
            (1, 1),
            "{}",
            stats.summary()
        );
    }

    /// The stalled connection is closed by the client, not kept for reuse.
    async fn assert_closed(closed: tokio::sync::oneshot::Receiver<()>) {
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("the stalled connection is closed")
            .unwrap();
    }

    fn fixed_client(base: &str, request_timeout: Duration) -> HttpClient {
        let endpoint = Endpoint::custom(base, "b-1", "ap-x", Style::PathStyle).unwrap();
        let mut config = ClientConfig::new(endpoint);
        config.request_timeout = request_timeout;
        let store = CredentialStore::fixed(Credentials::permanent("AKID", "KEY"));
        HttpClient::new(config, Arc::new(store)).unwrap()
    }

    #[tokio::test]
    async fn a_late_answer_is_hedged_and_the_stalled_connection_closed() {
        let (base, closed) = first_connection_stalls().await;
        let c = fixed_client(&base, ClientConfig::DEFAULT_REQUEST_TIMEOUT);
        let started = Instant::now();
        c.head("k").await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let stats = c.stats();
        assert_eq!(
            stats.hedges.load(Ordering::Relaxed),
            1,
            "{}",
            stats.summary()
        );
        assert_eq!(stats.hedges_won.load(Ordering::Relaxed), 1);
        assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
        assert_closed(closed).await;
    }

    #[tokio::test]
    async fn a_hedge_answered_404_decides_without_waiting_for_the_first() {
        let not_found =
            b"HTTP/1.1 404 Not Found\r\nx-cos-request-id: r\r\ncontent-length: 0\r\n\r\n";
        let (base, closed) = first_connection_stalls_then(not_found).await;
        let c = fixed_client(&base, ClientConfig::DEFAULT_REQUEST_TIMEOUT);
        let started = Instant::now();
        let e = c.head("k").await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let took = started.elapsed();
        // The hedge goes out after 1 s (nothing learned yet); the first
        // request's deadline is 10 s.
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let stats = c.stats();
        assert_eq!(
            (
                stats.hedges.load(Ordering::Relaxed),
                stats.hedges_won.load(Ordering::Relaxed),
                stats.retries.load(Ordering::Relaxed)
            ),
            (1, 1, 0),
            "{}",
            stats.summary()
        );
        assert_closed(closed).await;
    }

    #[tokio::test]
    async fn a_hedge_that_fails_sends_the_retry_at_once() {
        let busy = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n";
        let (base, closed) = first_connection_stalls_then(busy).await;
        let c = fixed_client(&base, ClientConfig::DEFAULT_REQUEST_TIMEOUT);
        let started = Instant::now();
        let e = c.head("k").await.unwrap_err();
        assert_eq!(e.status(), Some(500), "{e}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let stats = c.stats();
        assert_eq!(
            stats.retries_for(RetryCause::ServerError),
            5,
            "{}",
            stats.summary()
        );
        assert_closed(closed).await;
    }

    #[tokio::test]
    async fn an_unhedged_call_is_abandoned_at_the_first_byte_deadline() {
        let (base, closed) = first_connection_stalls().await;
        let c = fixed_client(&base, Duration::from_secs(1));
        let started = Instant::now();
        c.abort_multipart("k", "u").await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let stats = c.stats();
        assert_eq!(
            stats.stalls.load(Ordering::Relaxed),
            1,
            "{}",
            stats.summary()
        );
        assert_eq!(stats.retries_for(RetryCause::Timeout), 1);
        assert_eq!(stats.hedges.load(Ordering::Relaxed), 0);
        assert_closed(closed).await;
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
