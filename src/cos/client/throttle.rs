//! How many requests may be in flight at once, learned from throttling:
//! no limit until the server answers 503 / `SlowDown`, then half of what
//! was in flight (at most one cut per [`CUT_SPACING`], so a burst of 503s
//! from one moment counts once), growing back by one request per window's
//! worth of good answers (additive increase, multiplicative decrease, as
//! TCP and the AWS SDKs' adaptive mode do). Each request still backs off
//! on its own; this keeps the many requests of an `ls -l` or a `cp -r`
//! from all coming back at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::sync::lock;

/// The fewest requests in flight a cut leaves.
const MIN_LIMIT: usize = 4;

/// Two cuts are at least this far apart.
const CUT_SPACING: Duration = Duration::from_millis(200);

/// The requests in flight and how many may be.
pub(super) struct Throttle {
    state: Mutex<State>,
    freed: Notify,
}

struct State {
    in_flight: usize,
    /// `None`: never throttled, no limit.
    limit: Option<usize>,
    /// Good answers since the limit last grew.
    good: usize,
    last_cut: Option<Instant>,
}

/// A request's place in flight; freed on drop.
pub(super) struct Slot<'a>(&'a Throttle);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).in_flight -= 1;
        self.0.freed.notify_one();
    }
}

impl Throttle {
    /// No limit yet.
    pub fn new() -> Throttle {
        Throttle {
            state: Mutex::new(State {
                in_flight: 0,
                limit: None,
                good: 0,
                last_cut: None,
            }),
            freed: Notify::new(),
        }
    }

    /// Waits for a place in flight.
    pub async fn slot(&self) -> Slot<'_> {
        loop {
            let freed = self.freed.notified();
            {
                let mut s = lock(&self.state);
                if s.limit.is_none_or(|limit| s.in_flight < limit) {
                    s.in_flight += 1;
                    return Slot(self);
                }
            }
            freed.await;
        }
    }

    /// The server asked for less traffic: halve what is in flight (once
    /// per [`CUT_SPACING`]).
    pub fn throttled(&self) {
        let mut s = lock(&self.state);
        let now = Instant::now();
        if s.last_cut
            .is_some_and(|at| now.duration_since(at) < CUT_SPACING)
        {
            return;
        }
        let base = s.limit.map_or(s.in_flight, |l| l.min(s.in_flight.max(1)));
        s.limit = Some((base / 2).max(MIN_LIMIT));
        s.good = 0;
        s.last_cut = Some(now);
    }

    /// A good answer: one more request in flight per limit's worth of them.
    pub fn answered(&self) {
        {
            let mut s = lock(&self.state);
            let Some(limit) = s.limit else {
                return;
            };
            s.good += 1;
            if s.good < limit {
                return;
            }
            s.good = 0;
            s.limit = Some(limit + 1);
        }
        self.freed.notify_one();
    }

    /// The current limit, `None` before any throttling.
    pub fn limit(&self) -> Option<usize> {
        lock(&self.state).limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_limit_until_throttled_then_half_and_slow_growth() {
        let t = Throttle::new();
        let slots: Vec<Slot<'_>> = futures_util::future::join_all((0..40).map(|_| t.slot())).await;
        assert_eq!(t.limit(), None);
        t.throttled();
        assert_eq!(t.limit(), Some(20));
        t.throttled();
        assert_eq!(t.limit(), Some(20), "one cut per moment");
        drop(slots);
        for _ in 0..20 {
            t.answered();
        }
        assert_eq!(t.limit(), Some(21));
    }

    #[tokio::test]
    async fn a_full_throttle_waits_for_a_free_slot() {
        let t = Throttle::new();
        let held: Vec<Slot<'_>> = futures_util::future::join_all((0..8).map(|_| t.slot())).await;
        t.throttled();
        assert_eq!(t.limit(), Some(MIN_LIMIT));
        let waiting = tokio::time::timeout(Duration::from_millis(50), t.slot()).await;
        assert!(waiting.is_err(), "8 in flight, limit 4");
        drop(held);
        tokio::time::timeout(Duration::from_secs(1), t.slot())
            .await
            .expect("a slot once requests finished");
    }
}
