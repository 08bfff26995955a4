//! Progress of one attempt, and the watchdog that abandons it when the
//! progress stops: a request body that stops moving for longer than recent
//! bodies did (learned by the caller, at most the stall timeout),
//! or an answer whose first byte does not come within the first-byte
//! deadline after the request was handed over. The first-byte clock starts
//! when the last body byte left for the kernel, plus the time the bytes
//! still queued in socket buffers need at the upload rate seen (measured
//! on this body once the buffers filled, else learned from recent uploads),
//! so a slow but moving link is never mistaken for a dead one.
//!
//! Bodies are handed to hyper in [`CHUNK`] slices of the caller's buffer
//! (no copy), so that each pull is a sign of progress.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Size of the slices a request body is handed over in.
const CHUNK: usize = 64 << 10;

/// A pull later than this after the previous one means the socket
/// buffers were full: from then on, pulls advance at the link's pace.
const BLOCKED_GAP: Duration = Duration::from_millis(2);

/// At most this much of a body is assumed to sit in socket buffers when
/// the last of it was handed over (Linux's default `tcp_wmem` maximum;
/// bytes past the sender's buffer have crossed the link).
const MAX_BUFFERED: u64 = 4 << 20;

/// The drain allowance assumes half the pace seen: socket buffers keep
/// growing after they first filled, and a pace is an estimate.
const DRAIN_SAFETY: f64 = 2.0;

/// Not yet (a timestamp field's empty value).
const NEVER: u64 = u64::MAX;

/// What one attempt has done so far; shared by its body and its watchdog.
pub(super) struct Progress {
    started: Instant,
    body_len: u64,
    /// Bytes handed to hyper.
    pulled: AtomicU64,
    /// Nanoseconds since `started` of the last pull.
    last_pull: AtomicU64,
    /// Nanoseconds of the longest wait between two pulls.
    longest_gap: AtomicU64,
    /// Bytes handed over before the first pull that had to wait.
    pulled_before_block: AtomicU64,
    /// Nanoseconds since `started` of that pull.
    blocked_at: AtomicU64,
    /// Nanoseconds since `started` when the last body byte was handed over.
    body_done: AtomicU64,
    /// Told once, when the body is done.
    done: Notify,
    /// The answer's first byte came.
    answered: AtomicBool,
    /// Nanoseconds since `started` when the answer last moved (its head
    /// or a piece of its body arrived).
    last_received: AtomicU64,
}

/// Why an attempt was abandoned.
#[derive(Debug, PartialEq)]
pub(super) enum Stall {
    /// The request body stopped moving for this long.
    Body(Duration),
    /// No first byte of the answer within this long.
    FirstByte(Duration),
    /// The answer's body stopped moving for this long.
    Answer(Duration),
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stall::Body(d) => write!(f, "the request body stopped moving for {d:.1?}"),
            Stall::FirstByte(d) => write!(f, "no answer within {d:.1?} of the request"),
            Stall::Answer(d) => write!(f, "the answer's body stopped moving for {d:.1?}"),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(NEVER - 1)) as u64
}

impl Progress {
    /// An attempt that sends `body_len` bytes of body (0: none).
    pub fn new(body_len: u64) -> Arc<Progress> {
        let done = if body_len == 0 { 0 } else { NEVER };
        Arc::new(Progress {
            started: Instant::now(),
            body_len,
            pulled: AtomicU64::new(0),
            last_pull: AtomicU64::new(0),
            longest_gap: AtomicU64::new(0),
            pulled_before_block: AtomicU64::new(NEVER),
            blocked_at: AtomicU64::new(NEVER),
            body_done: AtomicU64::new(done),
            done: Notify::new(),
            answered: AtomicBool::new(false),
            last_received: AtomicU64::new(NEVER),
        })
    }

    fn now(&self) -> u64 {
        nanos(self.started.elapsed())
    }

    fn at(&self, nanos: u64) -> Instant {
        self.started + Duration::from_nanos(nanos)
    }

    /// Notes that `n` more body bytes were handed over.
    fn pulled(&self, n: usize) {
        let now = self.now();
        let previous = self.last_pull.swap(now, Ordering::Relaxed);
        let before = self.pulled.fetch_add(n as u64, Ordering::Relaxed);
        if before > 0 {
            self.longest_gap
                .fetch_max(now - previous, Ordering::Relaxed);
        }
        let waited = before > 0 && now - previous > nanos(BLOCKED_GAP);
        if waited && self.blocked_at.load(Ordering::Relaxed) == NEVER {
            self.pulled_before_block.store(before, Ordering::Relaxed);
            self.blocked_at.store(previous, Ordering::Relaxed);
        }
        if before + n as u64 >= self.body_len {
            self.body_done.store(now, Ordering::Relaxed);
            self.done.notify_one();
        }
    }

    /// When the last body byte was handed over (the start for no body).
    pub fn body_done(&self) -> Option<Instant> {
        let done = self.body_done.load(Ordering::Relaxed);
        (done != NEVER).then(|| self.at(done))
    }

    /// The longest wait between two slices of a body that went out whole
    /// (`None` before, or for a body of one slice).
    pub fn longest_gap(&self) -> Option<Duration> {
        let whole = self.body_done().is_some() && self.body_len > CHUNK as u64;
        whole.then(|| Duration::from_nanos(self.longest_gap.load(Ordering::Relaxed)))
    }

    /// Notes that the answer began.
    pub fn answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
        self.received();
    }

    /// Notes that the answer moved (a piece of its body arrived).
    pub fn received(&self) {
        self.last_received.store(self.now(), Ordering::Relaxed);
    }

    /// When the answer last moved, once it began.
    pub fn last_received(&self) -> Option<Instant> {
        let at = self.last_received.load(Ordering::Relaxed);
        (at != NEVER).then(|| self.at(at))
    }

    /// Whether the answer began.
    pub fn has_answer(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits until the last body byte was handed over.
    pub async fn wait_body_done(&self) -> Instant {
        loop {
            if let Some(done) = self.body_done() {
                return done;
            }
            self.done.notified().await;
        }
    }

    /// When the attempt began.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Time the bytes in socket buffers may need to reach the server: all
    /// bytes handed over, up to [`MAX_BUFFERED`], at this body's own pace
    /// once the buffers filled and drained some, or else at
    /// `learned_rate` (bytes/s). It covers the wait for the answer after
    /// the last byte was handed over, and each wait for room while sending
    /// (the kernel lets a writer on only once much of its buffer drained).
    /// The buffers hold more than when they first filled: they keep growing
    /// while the body is paced (and a writer that was merely descheduled
    /// looks blocked early), which also makes the pace look faster.
    pub fn drain_allowance(&self, learned_rate: f64) -> Duration {
        let blocked_at = self.blocked_at.load(Ordering::Relaxed);
        let last = self.last_pull.load(Ordering::Relaxed);
        let pulled = self.pulled.load(Ordering::Relaxed);
        let rate = if blocked_at != NEVER && last > blocked_at {
            let paced = pulled - self.pulled_before_block.load(Ordering::Relaxed);
            let secs = Duration::from_nanos(last - blocked_at).as_secs_f64();
            paced as f64 / secs
        } else {
            learned_rate
        };
        let buffered = pulled.min(MAX_BUFFERED) as f64;
        let secs = DRAIN_SAFETY * buffered / rate.max(1.0);
        Duration::from_secs_f64(secs).min(Duration::from_secs(3600))
    }

    /// Resolves when the attempt stalled: its body did not move for
    /// `stall` (the silence allowed, plus the drain allowance at `learned_rate`), or no answer
    /// came within `first_byte` (plus the same) of the body's end. Never
    /// resolves while the attempt progresses; the caller races it with
    /// the request.
    pub async fn watch(&self, stall: Duration, first_byte: Duration, learned_rate: f64) -> Stall {
        loop {
            let allowance = self.drain_allowance(learned_rate);
            let (due, why) = match self.body_done() {
                Some(done) => {
                    let limit = first_byte + allowance;
                    (done + limit, Stall::FirstByte(limit))
                }
                None => {
                    let limit = stall + allowance;
                    let last = self.at(self.last_pull.load(Ordering::Relaxed));
                    (last + limit, Stall::Body(limit))
                }
            };
            if Instant::now() >= due {
                return why;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// A request body handed over in [`CHUNK`] slices, each noted in its
/// attempt's [`Progress`].
pub(super) struct ProgressBody {
    rest: Bytes,
    progress: Arc<Progress>,
}

impl ProgressBody {
    /// `body`, reporting to `progress`.
    pub fn new(body: Bytes, progress: Arc<Progress>) -> ProgressBody {
        ProgressBody {
            rest: body,
            progress,
        }
    }
}

impl Body for ProgressBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(CHUNK);
        let chunk = self.rest.split_to(n);
        self.progress.pulled(n);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_body_is_handed_over_in_chunks_and_ends_the_sending() {
        let progress = Progress::new(200 << 10);
        let mut body = ProgressBody::new(Bytes::from(vec![7u8; 200 << 10]), progress.clone());
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            assert!(progress.body_done().is_none() || sizes.len() == 3);
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, [CHUNK, CHUNK, CHUNK, 8 << 10]);
        assert!(progress.body_done().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_moving_stalls() {
        let progress = Progress::new(1 << 20);
        let mut body = ProgressBody::new(Bytes::from(vec![0u8; 1 << 20]), progress.clone());
        body.frame().await;
        // 64 KiB may sit in buffers: 2 × 64 KiB at 64 KiB/s.
        let stalled = progress.watch(Duration::from_secs(5), Duration::from_secs(1), 65536.0);
        let started = Instant::now();
        assert_eq!(stalled.await, Stall::Body(Duration::from_secs(7)));
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn no_body_waits_for_the_first_byte_only() {
        let progress = Progress::new(0);
        let started = Instant::now();
        let stalled = progress.watch(Duration::from_secs(5), Duration::from_secs(1), 1e6);
        assert_eq!(stalled.await, Stall::FirstByte(Duration::from_secs(1)));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_body_allows_its_buffered_bytes_to_drain() {
        let len = 1 << 20;
        let progress = Progress::new(len);
        let mut body = ProgressBody::new(Bytes::from(vec![0u8; len as usize]), progress.clone());
        // Half swallowed at once, then a chunk per second: 64 KiB/s.
        for _ in 0..8 {
            body.frame().await;
        }
        while body.frame().await.is_some() {
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // The whole body may still sit in buffers, at the pace seen.
        let allowance = progress.drain_allowance(1e9);
        let paced = DRAIN_SAFETY * len as f64 / f64::from(CHUNK as u32);
        assert!(
            (allowance.as_secs_f64() - paced).abs() <= 3.0,
            "{allowance:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn buffers_that_grow_while_the_body_is_paced_still_drain_in_time() {
        // A flake under the test suite's load: the writer looked blocked
        // after 1 MiB (it was descheduled), the buffers then took 3 MiB
        // more at once, and the last 4 MiB went at 256 KiB/s; at the end
        // 4 MiB wait in buffers, 16 s at that pace. The allowance once
        // counted 1 MiB at the pace the growth inflated (4.6 s), and the
        // answer was hedged.
        let len: u64 = 8 << 20;
        let progress = Progress::new(len);
        let mut body = ProgressBody::new(Bytes::from(vec![0u8; len as usize]), progress.clone());
        let chunks = |mib: u64| mib * (1 << 20) / CHUNK as u64;
        for _ in 0..chunks(1) {
            body.frame().await;
        }
        tokio::time::advance(Duration::from_millis(10)).await;
        for _ in 0..chunks(3) {
            body.frame().await;
        }
        for _ in 0..chunks(4) {
            tokio::time::advance(Duration::from_millis(250)).await;
            body.frame().await;
        }
        assert!(progress.body_done().is_some());
        let allowance = progress.drain_allowance(1e9);
        assert!(allowance >= Duration::from_secs(16), "{allowance:?}");
        assert!(allowance <= Duration::from_secs(40), "{allowance:?}");
    }

    #[test]
    fn a_body_swallowed_whole_drains_at_the_learned_rate() {
        let progress = Progress::new(4 << 20);
        progress.pulled(4 << 20);
        assert_eq!(
            progress.drain_allowance(f64::from(1 << 20)),
            Duration::from_secs(8)
        );
    }
}
