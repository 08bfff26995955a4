//! What the client learns from the answers it gets: recent times to first
//! byte per kind of request (the first-byte deadline and the hedge delay
//! come from them), the longest silences within answer and request bodies
//! (how long a body may move nothing), recent upload throughput (how long a body the kernel
//! swallowed whole may still take to reach the server) and the hedge
//! budget. Everything is bounded: a deadline never leaves
//! [`Deadlines::floor`]..[`Deadlines::ceiling`], a hedge waits at least
//! [`MIN_HEDGE_DELAY`], and hedges stay within [`HEDGE_SHARE`] of requests
//! (plus a small burst).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::sync::lock;

/// Samples kept per kind of request.
const WINDOW: usize = 64;

/// Samples needed before a kind's deadline is learned rather than the
/// ceiling.
const MIN_SAMPLES: usize = 16;

/// A learned first-byte deadline is this many times the recent p95.
const DEADLINE_FACTOR: u32 = 8;

/// A learned hedge delay is this many times the recent p95.
const HEDGE_FACTOR: u32 = 4;

/// No hedge is sent sooner than this after a request went out: on a
/// healthy server an answer slower than this is rare enough that the
/// duplicate is cheap insurance.
pub(super) const MIN_HEDGE_DELAY: Duration = Duration::from_millis(100);

/// The shortest learned silence allowed within an answer's body (a few
/// TCP retransmission timeouts).
const MIN_ANSWER_IDLE: Duration = Duration::from_secs(1);

/// The hedge delay before a kind has [`MIN_SAMPLES`] samples.
const UNLEARNED_HEDGE_DELAY: Duration = Duration::from_secs(1);

/// Hedges allowed per request sent, over time.
const HEDGE_SHARE: f64 = 0.05;

/// Hedges that may be sent in a burst (and at start, before any request
/// earned a share).
const HEDGE_BURST: f64 = 10.0;

/// Upload throughput assumed before uploads were measured, bytes/s
/// (8 Mbit/s: a thin link; a slower one's first uploads may be hedged
/// or retried with more patience until its rate is learned).
const UNLEARNED_UPLOAD_RATE: f64 = 1024.0 * 1024.0;

/// Uploads measured before their rate is used.
const MIN_RATE_SAMPLES: usize = 4;

/// Bodies shorter than this say nothing about throughput.
const MIN_RATE_SAMPLE: u64 = 256 << 10;

/// Bounds of the first-byte deadline.
#[derive(Clone, Copy, Debug)]
pub(super) struct Deadlines {
    /// The shortest learned deadline.
    pub floor: Duration,
    /// The longest: used until a kind has enough samples.
    pub ceiling: Duration,
}

/// Recent latencies and throughput, and the hedge budget.
pub(super) struct Latencies {
    bounds: Deadlines,
    by_op: Mutex<HashMap<&'static str, Ring>>,
    answer_gaps: Mutex<HashMap<&'static str, Ring>>,
    body_gaps: Mutex<HashMap<&'static str, Ring>>,
    upload_rates: Mutex<Ring>,
    hedge_tokens: Mutex<f64>,
}

/// The last [`WINDOW`] samples of one quantity, in seconds.
#[derive(Default)]
struct Ring {
    samples: Vec<f64>,
    next: usize,
}

impl Ring {
    fn push(&mut self, value: f64) {
        if self.samples.len() < WINDOW {
            self.samples.push(value);
        } else {
            self.samples[self.next] = value;
        }
        self.next = (self.next + 1) % WINDOW;
    }

    /// The `q` quantile (0..=1) once there are `min` samples.
    fn quantile(&self, q: f64, min: usize) -> Option<f64> {
        quantile(self.samples.clone(), q, min)
    }
}

/// The recent p95 of `op` in `rings`; while `op` has too few samples of
/// its own (a kind seen rarely, such as a copy or a delete, or early in a
/// mount), the p95 over every kind: the same server answers them all.
fn p95_of(rings: &HashMap<&'static str, Ring>, op: &'static str) -> Option<f64> {
    if let Some(p95) = rings.get(op).and_then(|r| r.quantile(0.95, MIN_SAMPLES)) {
        return Some(p95);
    }
    let pooled = rings.values().flat_map(|r| r.samples.iter().copied());
    quantile(pooled.collect(), 0.95, MIN_SAMPLES)
}

/// The `q` quantile (0..=1) of `samples` once there are `min` of them.
fn quantile(mut samples: Vec<f64>, q: f64, min: usize) -> Option<f64> {
    if samples.len() < min {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    Some(samples[i])
}

fn fraction_of(quantile: f64, factor: u32) -> Duration {
    Duration::from_secs_f64(quantile * f64::from(factor))
}

impl Latencies {
    /// Nothing learned yet; deadlines within `bounds`.
    pub fn new(bounds: Deadlines) -> Latencies {
        Latencies {
            bounds,
            by_op: Mutex::new(HashMap::new()),
            answer_gaps: Mutex::new(HashMap::new()),
            body_gaps: Mutex::new(HashMap::new()),
            upload_rates: Mutex::new(Ring::default()),
            hedge_tokens: Mutex::new(HEDGE_BURST),
        }
    }

    /// Records the time to first byte of an answer to `op`, counted from
    /// the moment the request (its body included) was handed to the kernel.
    pub fn record(&self, op: &'static str, first_byte: Duration) {
        let mut by_op = lock(&self.by_op);
        by_op.entry(op).or_default().push(first_byte.as_secs_f64());
    }

    fn p95(&self, op: &'static str) -> Option<f64> {
        p95_of(&lock(&self.by_op), op)
    }

    /// How long to wait for the first byte of an answer to `op` (the
    /// ceiling until anything was learned).
    pub fn first_byte_deadline(&self, op: &'static str) -> Duration {
        match self.p95(op) {
            Some(p95) => {
                fraction_of(p95, DEADLINE_FACTOR).clamp(self.bounds.floor, self.bounds.ceiling)
            }
            None => self.bounds.ceiling,
        }
    }

    /// How long to wait for the first byte before sending a hedge.
    pub fn hedge_delay(&self, op: &'static str) -> Duration {
        let deadline = self.first_byte_deadline(op);
        let delay = match self.p95(op) {
            Some(p95) => fraction_of(p95, HEDGE_FACTOR).max(MIN_HEDGE_DELAY),
            None => UNLEARNED_HEDGE_DELAY,
        };
        delay.min(deadline / 2)
    }

    /// Records the longest silence within an answer's body to `op`.
    pub fn record_answer_gap(&self, op: &'static str, gap: Duration) {
        let mut gaps = lock(&self.answer_gaps);
        gaps.entry(op).or_default().push(gap.as_secs_f64());
    }

    /// How long an answer's body to `op` may send nothing: learned from
    /// the longest silences of recent answers (8 × their p95; of every
    /// kind while `op` was seen too rarely), between [`MIN_ANSWER_IDLE`]
    /// and `ceiling` (the stall timeout, used as is until enough answers
    /// were seen).
    pub fn answer_idle(&self, op: &'static str, ceiling: Duration) -> Duration {
        match p95_of(&lock(&self.answer_gaps), op) {
            Some(p95) => {
                fraction_of(p95, DEADLINE_FACTOR).clamp(MIN_ANSWER_IDLE.min(ceiling), ceiling)
            }
            None => ceiling,
        }
    }

    /// How long an answer's body to `op` may move nothing before the
    /// request is hedged: 4 × the p95 of recent longest silences (of
    /// every kind while `op` was seen too rarely), at least
    /// [`MIN_HEDGE_DELAY`] and at most half of `idle` (when the attempt is
    /// abandoned); `None` before anything was learned.
    pub fn answer_hedge_delay(&self, op: &'static str, idle: Duration) -> Option<Duration> {
        let p95 = p95_of(&lock(&self.answer_gaps), op)?;
        Some(
            fraction_of(p95, HEDGE_FACTOR)
                .max(MIN_HEDGE_DELAY)
                .min(idle / 2),
        )
    }

    /// Records the longest wait between two slices of a request body to
    /// `op` that went out whole.
    pub fn record_body_gap(&self, op: &'static str, gap: Duration) {
        let mut gaps = lock(&self.body_gaps);
        gaps.entry(op).or_default().push(gap.as_secs_f64());
    }

    /// How long a request body to `op` may move nothing (besides the time
    /// its queued bytes need to drain): learned like
    /// [`answer_idle`](Self::answer_idle), from recent request bodies.
    pub fn body_idle(&self, op: &'static str, ceiling: Duration) -> Duration {
        match p95_of(&lock(&self.body_gaps), op) {
            Some(p95) => {
                fraction_of(p95, DEADLINE_FACTOR).clamp(MIN_ANSWER_IDLE.min(ceiling), ceiling)
            }
            None => ceiling,
        }
    }

    /// Records an upload of `bytes` that took `elapsed` from its first
    /// byte handed over to the first byte of the answer.
    pub fn record_upload(&self, bytes: u64, elapsed: Duration) {
        if bytes >= MIN_RATE_SAMPLE && !elapsed.is_zero() {
            lock(&self.upload_rates).push(bytes as f64 / elapsed.as_secs_f64());
        }
    }

    /// A cautious recent upload throughput in bytes/s: the 10th
    /// percentile of recent uploads, or a thin link's before any.
    pub fn upload_rate(&self) -> f64 {
        lock(&self.upload_rates)
            .quantile(0.1, MIN_RATE_SAMPLES)
            .unwrap_or(UNLEARNED_UPLOAD_RATE)
    }

    /// Earns the hedge share of one request.
    pub fn earn_hedge_share(&self) {
        let mut tokens = lock(&self.hedge_tokens);
        *tokens = (*tokens + HEDGE_SHARE).min(HEDGE_BURST);
    }

    /// Takes a hedge from the budget; false when it is spent.
    pub fn take_hedge(&self) -> bool {
        let mut tokens = lock(&self.hedge_tokens);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Deadlines = Deadlines {
        floor: Duration::from_secs(1),
        ceiling: Duration::from_secs(10),
    };

    fn with_samples(op: &'static str, ms: u64, n: usize) -> Latencies {
        let l = Latencies::new(BOUNDS);
        for _ in 0..n {
            l.record(op, Duration::from_millis(ms));
        }
        l
    }

    #[test]
    fn the_ceiling_holds_until_enough_samples() {
        let l = with_samples("get", 2, MIN_SAMPLES - 1);
        assert_eq!(l.first_byte_deadline("get"), BOUNDS.ceiling);
        assert_eq!(l.hedge_delay("get"), UNLEARNED_HEDGE_DELAY);
        l.record("get", Duration::from_millis(2));
        assert_eq!(l.first_byte_deadline("get"), BOUNDS.floor);
        assert_eq!(l.hedge_delay("get"), MIN_HEDGE_DELAY);
    }

    #[test]
    fn a_kind_seen_rarely_borrows_what_the_others_taught() {
        let l = with_samples("get", 2, MIN_SAMPLES / 2);
        for _ in 0..MIN_SAMPLES / 2 {
            l.record("head", Duration::from_millis(300));
        }
        // No kind has enough alone; together they do.
        assert_eq!(l.first_byte_deadline("copy"), Duration::from_millis(2400));
        assert_eq!(l.first_byte_deadline("get"), Duration::from_millis(2400));
        for _ in 0..MIN_SAMPLES {
            l.record("copy", Duration::from_millis(2));
        }
        assert_eq!(l.first_byte_deadline("copy"), BOUNDS.floor);
    }

    #[test]
    fn deadlines_follow_slow_servers_within_bounds() {
        let l = with_samples("list", 500, WINDOW);
        assert_eq!(l.first_byte_deadline("list"), Duration::from_secs(4));
        assert_eq!(l.hedge_delay("list"), Duration::from_secs(2));
        let l = with_samples("list", 5000, WINDOW);
        assert_eq!(l.first_byte_deadline("list"), BOUNDS.ceiling);
        assert_eq!(l.hedge_delay("list"), BOUNDS.ceiling / 2);
    }

    #[test]
    fn answer_silences_are_learned_within_bounds() {
        let l = Latencies::new(BOUNDS);
        let stall = Duration::from_secs(5);
        assert_eq!(l.answer_idle("get", stall), stall);
        for _ in 0..MIN_SAMPLES {
            l.record_answer_gap("get", Duration::from_millis(3));
        }
        assert_eq!(l.answer_idle("get", stall), MIN_ANSWER_IDLE);
        for _ in 0..WINDOW {
            l.record_answer_gap("get", Duration::from_secs(2));
        }
        assert_eq!(l.answer_idle("get", stall), stall);
        assert_eq!(
            l.answer_idle("copy", stall),
            stall,
            "a kind without answers of its own borrows the others'"
        );
    }

    #[test]
    fn a_silent_answer_is_hedged_once_silences_were_learned() {
        let l = Latencies::new(BOUNDS);
        let idle = Duration::from_secs(1);
        assert_eq!(l.answer_hedge_delay("list", idle), None);
        for _ in 0..MIN_SAMPLES {
            l.record_answer_gap("get", Duration::from_millis(1));
        }
        assert_eq!(l.answer_hedge_delay("list", idle), Some(MIN_HEDGE_DELAY));
        for _ in 0..WINDOW {
            l.record_answer_gap("list", Duration::from_millis(300));
        }
        assert_eq!(l.answer_hedge_delay("list", idle), Some(idle / 2));
    }

    #[test]
    fn request_body_silences_are_learned_within_bounds() {
        let l = Latencies::new(BOUNDS);
        let stall = Duration::from_secs(5);
        assert_eq!(l.body_idle("put", stall), stall);
        for _ in 0..MIN_SAMPLES {
            l.record_body_gap("put", Duration::from_millis(2));
        }
        assert_eq!(l.body_idle("upload_part", stall), MIN_ANSWER_IDLE);
        for _ in 0..WINDOW {
            l.record_body_gap("upload_part", Duration::from_millis(250));
        }
        assert_eq!(l.body_idle("upload_part", stall), Duration::from_secs(2));
    }

    #[test]
    fn old_samples_leave_the_window() {
        let l = with_samples("head", 5000, WINDOW);
        for _ in 0..WINDOW {
            l.record("head", Duration::from_millis(1));
        }
        assert_eq!(l.first_byte_deadline("head"), BOUNDS.floor);
    }

    #[test]
    fn hedges_stay_within_their_share() {
        let l = Latencies::new(BOUNDS);
        let mut hedges = 0;
        for _ in 0..1000 {
            l.earn_hedge_share();
            if l.take_hedge() {
                hedges += 1;
            }
        }
        // The burst, then one per 20 requests.
        assert!((58..=60).contains(&hedges), "{hedges}");
    }

    #[test]
    fn upload_rate_is_cautious() {
        let l = Latencies::new(BOUNDS);
        assert_eq!(l.upload_rate(), UNLEARNED_UPLOAD_RATE);
        for i in 0..WINDOW {
            let secs = if i % 10 == 0 { 4.0 } else { 1.0 };
            l.record_upload(4 << 20, Duration::from_secs_f64(secs));
        }
        assert_eq!(l.upload_rate(), f64::from(1 << 20));
        l.record_upload(100, Duration::from_secs(100));
        assert_eq!(l.upload_rate(), f64::from(1 << 20));
    }
}
