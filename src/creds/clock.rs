//! Wall-clock time for expiry decisions, behind a trait so refresh
//! scheduling can be tested on a paused tokio clock. Expiry times come from
//! servers as wall-clock instants, so production uses `SystemTime`; long
//! waits are cut into short sleeps that re-read the clock, so a suspended
//! laptop or a clock step never makes a refresh late by more than a minute.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest single sleep while waiting for a wall-clock instant.
const MAX_NAP: Duration = Duration::from_secs(60);

/// A source of the current wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Wall-clock time that advances with tokio's clock, so tests using
/// `tokio::time::pause` move both together.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: SystemTime,
    at: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start` now, advancing with `tokio::time::Instant`.
    pub fn starting_at(start: SystemTime) -> TokioClock {
        TokioClock {
            start,
            at: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.start + self.at.elapsed()
    }
}

/// Sleeps until `clock` reads `when` or later.
pub async fn sleep_until(clock: &dyn Clock, when: SystemTime) {
    while let Ok(left) = when.duration_since(clock.now()) {
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(MAX_NAP)).await;
    }
}

/// The instant `secs` seconds after the Unix epoch.
pub fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Whole seconds since the Unix epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2024-01-02T03:04:05Z`, for messages.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses `2021-03-12T23:00:47Z` or `2017-08-29T20:30:00` (UTC either way).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_utc_times() {
        let t = parse_time("2021-03-12T23:00:47Z").unwrap();
        assert_eq!(unix_seconds(t), 1615590047);
        assert_eq!(parse_time("2021-03-12T23:00:47"), Some(t));
        assert_eq!(format_time(from_unix(1615590047)), "2021-03-12T23:00:47Z");
        assert_eq!(parse_time("soon"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time_and_long_sleeps_arrive() {
        let clock = TokioClock::starting_at(from_unix(1000));
        sleep_until(&clock, from_unix(1000 + 3600)).await;
        assert_eq!(unix_seconds(clock.now()), 4600);
        sleep_until(&clock, from_unix(10)).await;
        assert_eq!(unix_seconds(clock.now()), 4600);
    }
}
