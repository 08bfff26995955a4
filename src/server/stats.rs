//! Per-operation request counters, read and reset through the admin
//! endpoint so tests can assert how many requests a client sent.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use super::router::Op;

/// How many requests of each operation arrived.
#[derive(Debug, Default)]
pub struct Stats {
    counts: [AtomicU64; Op::ALL.len()],
}

impl Stats {
    /// Counts one request.
    pub fn count(&self, op: Op) {
        self.counts[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one operation.
    pub fn get(&self, op: Op) -> u64 {
        self.counts[op.index()].load(Ordering::Relaxed)
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
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
}
