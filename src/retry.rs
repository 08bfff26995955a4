//! Retry policy: capped exponential backoff, with full jitter for requests
//! and without it for the one credential refresher per process. The only
//! place that decides how long to wait between attempts; it depends on
//! nothing else in the crate, so any layer may call it.

use std::time::Duration;

use rand::Rng;

/// How many times and how patiently to retry a request.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub max_attempts: u32,
    /// Delay ceiling before the second attempt.
    pub base_delay: Duration,
    /// Delay ceiling for any attempt.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            base_delay: Self::DEFAULT_BASE_DELAY,
            max_delay: Self::DEFAULT_MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// The default [`max_attempts`](RetryPolicy::max_attempts).
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
    /// The default [`base_delay`](RetryPolicy::base_delay).
    pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(100);
    /// The default [`max_delay`](RetryPolicy::max_delay).
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);

    /// The upper bound of the wait after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        exponential(self.base_delay, self.max_delay, attempt)
    }

    /// A random wait in `[0, ceiling(attempt)]` (full jitter).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = rand::rng().random_range(0..=ceiling.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }

    /// The wait after `failures` failed attempts of a request (1-based):
    /// when the server asked for less traffic (`throttled`), the full
    /// backoff; otherwise (a reset, a stall, a 500, a damaged body) the
    /// first retry goes at once on a fresh connection and later ones back
    /// off one step behind, so one unlucky request does not sleep while
    /// its neighbours finish.
    pub fn request_delay(&self, failures: u32, throttled: bool) -> Duration {
        match (throttled, failures) {
            (true, _) => self.delay(failures),
            (false, 0 | 1) => Duration::ZERO,
            (false, _) => self.delay(failures - 1),
        }
    }
}

/// Capped exponential backoff without jitter: `base` after the first
/// failure (`failures` is 1-based), doubling per failure, never above `max`.
pub fn exponential(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_waits_before_the_first_retry() {
        let p = RetryPolicy::default();
        assert_eq!(p.request_delay(1, false), Duration::ZERO);
        assert!(p.request_delay(2, false) <= p.ceiling(1));
        assert!(p.request_delay(3, false) <= p.ceiling(2));
        for _ in 0..100 {
            assert!(p.request_delay(1, true) <= p.ceiling(1));
        }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(10), Duration::from_secs(5));
        assert_eq!(p.ceiling(100), Duration::from_secs(5));
    }

    #[test]
    fn exponential_doubles_from_base_to_max() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let secs: Vec<u64> = (0..=8)
            .map(|n| exponential(base, max, n).as_secs())
            .collect();
        assert_eq!(secs, [1, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(exponential(base, max, u32::MAX), max);
    }

    #[test]
    fn delay_stays_under_the_ceiling() {
        let p = RetryPolicy::default();
        for attempt in 1..12 {
            assert!(p.delay(attempt) <= p.ceiling(attempt));
        }
    }
}
