//! What the client counts: attempts, retries by cause and operations that
//! failed for good, and each attempt's answer and latency by operation.
//! Counters only ever grow; readers may see them mid-update.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::cos::CosError;

/// Attempts by operation and answer, with their latency in seconds.
pub type AttemptFamily = Family<AttemptLabels, Histogram, fn() -> Histogram>;

/// Labels of one attempt: the operation (`get`, `put`, `list`, ...) and
/// how it was answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The operation's name (a fixed set).
    pub op: &'static str,
    /// The HTTP status, or what happened instead of an answer.
    pub status: Answer,
}

/// The label of a gauge per operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// The operation's name (a fixed set).
    pub op: &'static str,
}

/// One operation in progress, counted in [`ClientStats::in_flight`] until
/// dropped (finished, failed or cancelled).
pub(super) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status.
    Status(u16),
    /// Abandoned for lack of progress (no first byte, or a body that
    /// stopped moving).
    Stalled,
    /// No answer: connection refused, reset or closed, or a timeout.
    NoAnswer,
}

impl EncodeLabelValue for Answer {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        match self {
            Answer::Status(status) => write!(encoder, "{status}"),
            Answer::Stalled => encoder.write_str("stalled"),
            Answer::NoAnswer => encoder.write_str("none"),
        }
    }
}

/// Latency buckets of COS attempts: 1 ms to about 65 s.
fn attempt_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Counters of what the client sent, for benches, diagnostics and metrics.
#[derive(Debug)]
pub struct ClientStats {
    /// Attempts by operation and answer, with latency.
    pub attempts: AttemptFamily,
    /// Operations in progress (over all their attempts), by operation.
    pub in_flight: Family<OpLabel, Gauge>,
    /// Request body bytes sent (retries and hedges included).
    pub bytes_sent: Counter,
    /// Answer body bytes received.
    pub bytes_received: Counter,
    /// Attempts sent, retries included.
    pub requests: AtomicU64,
    /// Attempts that were retries.
    pub retries: AtomicU64,
    /// Retries by the cause of the attempt that failed before them.
    by_cause: [AtomicU64; RetryCause::ALL.len()],
    /// Operations that failed after their last attempt or at their deadline.
    pub failed: AtomicU64,
    /// Attempts abandoned because they stopped making progress (no first
    /// byte in time, or a body that stopped moving).
    pub stalls: AtomicU64,
    /// Duplicate requests sent for an attempt slow to answer.
    pub hedges: AtomicU64,
    /// Hedges whose answer came first and was used.
    pub hedges_won: AtomicU64,
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

impl Default for ClientStats {
    fn default() -> Self {
        ClientStats {
            attempts: Family::new_with_constructor(attempt_histogram),
            in_flight: Family::default(),
            bytes_sent: Counter::default(),
            bytes_received: Counter::default(),
            requests: AtomicU64::default(),
            retries: AtomicU64::default(),
            by_cause: Default::default(),
            failed: AtomicU64::default(),
            stalls: AtomicU64::default(),
            hedges: AtomicU64::default(),
            hedges_won: AtomicU64::default(),
        }
    }
}

impl ClientStats {
    /// Operations of the given names in progress now.
    pub fn in_flight_of(&self, ops: &[&'static str]) -> u64 {
        ops.iter()
            .map(|&op| self.in_flight.get_or_create(&OpLabel { op }).get().max(0) as u64)
            .sum()
    }

    /// Counts `op` in progress until the returned guard is dropped.
    pub(super) fn start(&self, op: &'static str) -> InFlight {
        let gauge = self.in_flight.get_or_create(&OpLabel { op }).clone();
        gauge.inc();
        InFlight(gauge)
    }

    /// Counts one attempt of `op` that ended with `answer` after `elapsed`.
    pub(super) fn count_attempt(&self, op: &'static str, answer: Answer, elapsed: Duration) {
        self.attempts
            .get_or_create(&AttemptLabels { op, status: answer })
            .observe(elapsed.as_secs_f64());
    }

    /// Retries made after a failure of this cause.
    pub fn retries_for(&self, cause: RetryCause) -> u64 {
        self.by_cause[cause.index()].load(Ordering::Relaxed)
    }

    /// Counts one retry after a failure of `cause`.
    pub(super) fn count_retry(&self, cause: RetryCause) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.by_cause[cause.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// One line, `requests=N retries=N failed=N server_error=N ...
    /// stalls=N hedges=N hedges_won=N`, that the mount logs at exit and the
    /// fault harness reads.
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
        line.push_str(&format!(
            " stalls={} hedges={} hedges_won={}",
            self.stalls.load(Ordering::Relaxed),
            self.hedges.load(Ordering::Relaxed),
            self.hedges_won.load(Ordering::Relaxed)
        ));
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "requests=0 retries=1 failed=0 server_error=0 slow_down=1 timeout=0 connection=0 integrity=0 clock_skew=0 credentials=0 stalls=0 hedges=0 hedges_won=0"
        );
    }
}
