//! Per-operation request counters, read and reset through the admin
//! endpoint so tests can assert how many requests a client sent; counters
//! of how requests were authenticated (`/stats/auth`), so tests of
//! temporary credentials can assert that every request carried a valid
//! token; and the answers by operation and status, with their latency
//! (`/metrics`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use super::metrics::Answers;
use super::router::Op;

/// How many requests of each operation arrived, and how they were answered.
#[derive(Debug, Default)]
pub struct Stats {
    counts: [AtomicU64; Op::ALL.len()],
    auth: AuthCounts,
    answers: Answers,
}

/// How requests were authenticated.
#[derive(Debug, Default)]
struct AuthCounts {
    anonymous: AtomicU64,
    permanent: AtomicU64,
    temporary: AtomicU64,
    /// Refused signatures by COS error code.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

/// A snapshot of the authentication counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthTotals {
    /// Requests without a signature.
    pub anonymous: u64,
    /// Requests signed with a permanent key.
    pub permanent: u64,
    /// Requests signed with a temporary key and its token.
    pub temporary: u64,
    /// Refused signatures by COS error code.
    pub rejected: BTreeMap<&'static str, u64>,
}

/// The outcome of authenticating one request, for [`Stats::count_auth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// No signature.
    Anonymous,
    /// A valid signature with a permanent key.
    Permanent,
    /// A valid signature with a temporary key and its token.
    Temporary,
    /// Refused with this COS error code.
    Rejected(&'static str),
}

impl Stats {
    /// Counts one request.
    pub fn count(&self, op: Op) {
        self.counts[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The answers by operation and status, and their latency.
    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    /// The count of one operation.
    pub fn get(&self, op: Op) -> u64 {
        self.counts[op.index()].load(Ordering::Relaxed)
    }

    /// Counts how one request was authenticated.
    pub fn count_auth(&self, outcome: AuthOutcome) {
        let a = &self.auth;
        let counter = match outcome {
            AuthOutcome::Anonymous => &a.anonymous,
            AuthOutcome::Permanent => &a.permanent,
            AuthOutcome::Temporary => &a.temporary,
            AuthOutcome::Rejected(code) => {
                let mut rejected = a.rejected.lock().unwrap_or_else(|e| e.into_inner());
                *rejected.entry(code).or_default() += 1;
                return;
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        let a = &self.auth;
        for c in [&a.anonymous, &a.permanent, &a.temporary] {
            c.store(0, Ordering::Relaxed);
        }
        a.rejected.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.answers.clear();
    }

    /// The authentication counters now.
    pub fn auth(&self) -> AuthTotals {
        let a = &self.auth;
        AuthTotals {
            anonymous: a.anonymous.load(Ordering::Relaxed),
            permanent: a.permanent.load(Ordering::Relaxed),
            temporary: a.temporary.load(Ordering::Relaxed),
            rejected: a.rejected.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// The authentication counters:
    /// `{"anonymous":N,"permanent":N,"temporary":N,"rejected":{"CODE":N}}`.
    pub fn auth_json(&self) -> Value {
        let a = self.auth();
        serde_json::json!({
            "anonymous": a.anonymous,
            "permanent": a.permanent,
            "temporary": a.temporary,
            "rejected": a.rejected,
        })
    }

    /// Every counter, zeros included, as a JSON object keyed by op name.
    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> = Op::ALL
            .iter()
            .map(|&op| (op.name().to_string(), Value::from(self.get(op))))
            .collect();
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_op_and_resets() {
        let s = Stats::default();
        s.count(Op::GetObject);
        s.count(Op::GetObject);
        let j = s.to_json();
        assert_eq!(j["GetObject"], 2);
        assert_eq!(j["ListMultipartUploads"], 0);
        assert_eq!(j.as_object().unwrap().len(), 15);
        s.reset();
        assert_eq!(s.to_json()["GetObject"], 0);
    }

    #[test]
    fn counts_authentication_outcomes() {
        let s = Stats::default();
        s.count_auth(AuthOutcome::Temporary);
        s.count_auth(AuthOutcome::Temporary);
        s.count_auth(AuthOutcome::Anonymous);
        s.count_auth(AuthOutcome::Rejected("ExpiredToken"));
        assert_eq!(
            s.auth_json(),
            serde_json::json!({"anonymous":1,"permanent":0,"temporary":2,"rejected":{"ExpiredToken":1}})
        );
        s.reset();
        assert_eq!(s.auth_json()["temporary"], 0);
        assert_eq!(s.auth_json()["rejected"], serde_json::json!({}));
    }
}
