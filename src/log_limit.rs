//! Keeps failure warnings from flooding the log. A bucket that refuses
//! writes, archived objects or an outage make every operation fail the
//! same way; `cp -r` of 10,000 files would write tens of thousands of
//! identical warnings. Each kind of failure (the caller names it: the errno
//! and COS error code) is warned about at most [`BURST`] times a
//! [`WINDOW`]; the rest go to the debug level, and the next warning of
//! that kind after the window says how many were held back. The metrics,
//! `/status` and the audit log still count every failure.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::sync::lock;

/// Warnings of one kind let through in each window.
pub const BURST: u32 = 5;
/// How long a window lasts.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Kinds remembered at once; more start the count afresh.
const MAX_KINDS: usize = 256;

/// The counts of every kind of warning.
pub static WARNINGS: LazyLock<WarnLimit> = LazyLock::new(WarnLimit::default);

/// What to do with one warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Warn; this many of the kind went to the debug level since the last
    /// warning of it.
    Warn { held_back: u64 },
    /// Log at the debug level only.
    Hold,
}

/// The windows of every kind of warning.
#[derive(Debug, Default)]
pub struct WarnLimit {
    kinds: Mutex<HashMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    began: Instant,
    warned: u32,
    held_back: u64,
}

impl WarnLimit {
    /// Counts one warning of `kind` at `now` and says whether to warn.
    pub fn admit(&self, kind: &str, now: Instant) -> Verdict {
        let mut kinds = lock(&self.kinds);
        if kinds.len() >= MAX_KINDS && !kinds.contains_key(kind) {
            kinds.clear();
        }
        let window = kinds.entry(kind.to_string()).or_insert(Window {
            began: now,
            warned: 0,
            held_back: 0,
        });
        if now.saturating_duration_since(window.began) >= WINDOW {
            window.began = now;
            window.warned = 0;
        }
        if window.warned < BURST {
            window.warned += 1;
            Verdict::Warn {
                held_back: std::mem::take(&mut window.held_back),
            }
        } else {
            window.held_back += 1;
            Verdict::Hold
        }
    }
}

/// `warn!` for a failure of `kind` (a `&str`), at most [`BURST`] times a
/// minute per kind; the rest are logged with `debug!`.
#[macro_export]
macro_rules! warn_limited {
    ($kind:expr, $($arg:tt)+) => {
        match $crate::log_limit::WARNINGS.admit($kind, std::time::Instant::now()) {
            $crate::log_limit::Verdict::Warn { held_back: 0 } => log::warn!($($arg)+),
            $crate::log_limit::Verdict::Warn { held_back } => log::warn!(
                "{} (and {held_back} more like it in the last minutes, logged at debug level)",
                format_args!($($arg)+)
            ),
            $crate::log_limit::Verdict::Hold => log::debug!($($arg)+),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_warns_a_few_times_a_minute_then_says_what_it_held_back() {
        let limit = WarnLimit::default();
        let t0 = Instant::now();
        let verdicts: Vec<Verdict> = (0..8).map(|_| limit.admit("EACCES", t0)).collect();
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Hold).count(),
            8 - BURST as usize
        );
        assert_eq!(verdicts[0], Verdict::Warn { held_back: 0 });
        assert_eq!(
            limit.admit("EIO", t0),
            Verdict::Warn { held_back: 0 },
            "another kind has its own count"
        );
        assert_eq!(limit.admit("EACCES", t0 + WINDOW / 2), Verdict::Hold);
        assert_eq!(
            limit.admit("EACCES", t0 + WINDOW),
            Verdict::Warn { held_back: 4 }
        );
        assert_eq!(
            limit.admit("EACCES", t0 + WINDOW),
            Verdict::Warn { held_back: 0 }
        );
    }
}
