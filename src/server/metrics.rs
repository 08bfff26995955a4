//! The Prometheus export of the server's counters (`GET /metrics` on the
//! admin port, text format 0.0.4). Answers by operation and status, and
//! their latency, are prometheus-client families that [`Stats`] owns and
//! the service fills; the authentication and fault-injection counters stay
//! the atomics the JSON endpoints read, and each scrape takes a snapshot of
//! them. Every name is written here, once. Label values come from small
//! fixed sets (operation names, HTTP statuses, COS error codes, fault
//! kinds), never from keys or paths. `POST /stats/reset` zeroes these
//! counters too, which Prometheus reads as a counter reset.

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
    prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::faults::{FaultKind, Faults};
use super::router::Op;
use super::stats::{AuthTotals, Stats};

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// What every metric name starts with.
const PREFIX: &str = "cosmount_server";

/// The `op` label of a request answered before routing classified it.
const UNCLASSIFIED: &str = "unknown";

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a request was answered: its `status` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// With this HTTP status (`"404"`).
    Code(u16),
    /// Not at all: fault injection closed the connection (`"dropped"`).
    Dropped,
}

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        match self {
            Status::Code(code) => EncodeLabelValue::encode(code, encoder),
            Status::Dropped => EncodeLabelValue::encode(&"dropped", encoder),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AnswerLabels {
    op: &'static str,
    status: Status,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

/// Answers by operation and status, and their latency by operation.
#[derive(Debug)]
pub struct Answers {
    requests: Family<AnswerLabels, Counter>,
    latency: Family<OpLabels, Histogram>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
        }
    }
}

impl Answers {
    /// Counts one answer; `op` is `None` when the request was answered
    /// before it was classified.
    pub fn count(&self, op: Option<Op>, status: Status, elapsed: Duration) {
        let op = op.map_or(UNCLASSIFIED, Op::name);
        self.requests
            .get_or_create(&AnswerLabels { op, status })
            .inc();
        self.latency
            .get_or_create(&OpLabels { op })
            .observe(elapsed.as_secs_f64());
    }

    /// Forgets every answer.
    pub fn clear(&self) {
        self.requests.clear();
        self.latency.clear();
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "Requests answered, by operation and HTTP status (op \"unknown\": answered before \
             routing, e.g. a bad path or an injected fault; status \"dropped\": connection closed \
             by fault injection)",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer's head, by operation",
            Unit::Seconds,
            self.latency.clone(),
        );
    }
}

/// The Prometheus text (version 0.0.4) of every counter now.
pub fn encode(stats: &Stats, faults: &Faults) -> Result<String, fmt::Error> {
    let mut registry = Registry::with_prefix(PREFIX);
    stats.answers().register(&mut registry);
    registry.register_collector(Box::new(Snapshot::take(stats, faults)));
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The atomic counters as one scrape read them.
#[derive(Debug)]
struct Snapshot {
    auth: AuthTotals,
    injected: Vec<(FaultKind, u64)>,
}

impl Snapshot {
    fn take(stats: &Stats, faults: &Faults) -> Snapshot {
        Snapshot {
            auth: stats.auth(),
            injected: FaultKind::ALL
                .iter()
                .map(|&kind| (kind, faults.injected(kind)))
                .collect(),
        }
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let a = &self.auth;
        let principals = [
            ("anonymous", a.anonymous),
            ("permanent", a.permanent),
            ("temporary", a.temporary),
        ];
        counters(
            &mut encoder,
            (
                "auth",
                "Requests by how they were authenticated (anonymous: unsigned).",
            ),
            "principal",
            principals,
        )?;
        counters(
            &mut encoder,
            ("auth_rejected", "Signatures refused, by COS error code."),
            "code",
            a.rejected.iter().map(|(&code, &n)| (code, n)),
        )?;
        let injected = self.injected.iter().map(|&(kind, n)| (kind.name(), n));
        counters(
            &mut encoder,
            (
                "faults_injected",
                "Faults injected, by kind (--fault-kinds names).",
            ),
            "kind",
            injected,
        )
    }
}

/// One counter family with one label, written only when it has samples
/// (as the registry does for its own families).
fn counters(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    label: &'static str,
    samples: impl IntoIterator<Item = (&'static str, u64)>,
) -> fmt::Result {
    let samples: Vec<_> = samples.into_iter().collect();
    if samples.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in samples {
        ConstCounter::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::FaultConfig;
    use crate::server::stats::AuthOutcome;

    fn scrape(stats: &Stats) -> String {
        encode(stats, &Faults::new(FaultConfig::default())).unwrap()
    }

    #[test]
    fn counts_answers_by_op_and_status_with_latency() {
        let s = Stats::default();
        let ms = Duration::from_millis;
        s.answers()
            .count(Some(Op::PutObject), Status::Code(200), ms(250));
        s.answers()
            .count(Some(Op::PutObject), Status::Code(200), ms(2000));
        s.answers()
            .count(Some(Op::GetObject), Status::Code(404), ms(1));
        s.answers().count(None, Status::Dropped, ms(7));
        let text = scrape(&s);
        for line in [
            "# TYPE cosmount_server_requests_total counter",
            "cosmount_server_requests_total{op=\"PutObject\",status=\"200\"} 2",
            "cosmount_server_requests_total{op=\"GetObject\",status=\"404\"} 1",
            "cosmount_server_requests_total{op=\"unknown\",status=\"dropped\"} 1",
            "# TYPE cosmount_server_request_duration_seconds histogram",
            "cosmount_server_request_duration_seconds_count{op=\"PutObject\"} 2",
            "cosmount_server_request_duration_seconds_sum{op=\"PutObject\"} 2.25",
            "cosmount_server_request_duration_seconds_bucket{op=\"PutObject\",le=\"0.25\"} 1",
            "cosmount_server_request_duration_seconds_bucket{op=\"PutObject\",le=\"+Inf\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn reports_authentication_and_every_fault_kind() {
        let s = Stats::default();
        s.count_auth(AuthOutcome::Permanent);
        s.count_auth(AuthOutcome::Permanent);
        s.count_auth(AuthOutcome::Rejected("SignatureDoesNotMatch"));
        let text = scrape(&s);
        for line in [
            "cosmount_server_auth_total{principal=\"permanent\"} 2",
            "cosmount_server_auth_total{principal=\"anonymous\"} 0",
            "cosmount_server_auth_rejected_total{code=\"SignatureDoesNotMatch\"} 1",
            "cosmount_server_faults_injected_total{kind=\"503\"} 0",
            "cosmount_server_faults_injected_total{kind=\"corrupt\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn families_without_samples_are_left_out_and_reset_clears_answers() {
        let s = Stats::default();
        s.answers()
            .count(Some(Op::HeadObject), Status::Code(200), Duration::ZERO);
        s.reset();
        let text = scrape(&s);
        assert!(!text.contains("requests_total"), "{text}");
        assert!(!text.contains("request_duration"), "{text}");
        assert!(!text.contains("auth_rejected"), "{text}");
        assert!(
            text.contains("# HELP cosmount_server_auth_total "),
            "{text}"
        );
    }
}
