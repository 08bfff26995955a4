//! How many HEADs an exact listing keeps in flight, learned from how fast
//! they finish. A server near us answers a HEAD in a millisecond and runs
//! out of CPU past a few dozen at once; one across a region answers in tens
//! of milliseconds and serves hundreds at once. So the window starts at
//! [`START`] and climbs by hill climbing on throughput: every few measured
//! stretches it tries twice (or half) the window, and keeps the new size
//! only if HEADs finished faster with it (for a larger window, at least
//! `GAIN` faster: more in flight is more load on the server, and slows the
//! listing pages the HEADs wait for). A server
//! that answers 503 `SlowDown` gets fewer requests from the client's
//! throttle, so a larger window finishes no faster and a smaller one as
//! fast: the window follows it down.
//!
//! Only stretches in which HEADs waited for room count: a listing of a few
//! names, or one waiting for its next page, says nothing about the server;
//! nor does a mount's first stretch, which pays for opening connections.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use log::debug;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::sync::lock;

/// The window a mount starts with (what was measured best on a server
/// sharing this machine's two cores).
pub const START: usize = 64;
/// The smallest window a probe tries.
const MIN: usize = 4;
/// HEADs finished in one measured stretch: at least this many, and at
/// least [`STRETCH_WINDOWS`] windows' worth (a few round trips: one is
/// all noise)...
const STRETCH_MIN: usize = 64;
const STRETCH_WINDOWS: usize = 4;
/// ...over at least this long: a server near us finishes a window's worth
/// in a few milliseconds, where one wait for the next listing page, a
/// connection opened or a busy core would decide the measure.
const STRETCH_TIME: Duration = Duration::from_millis(250);
/// A larger window is kept when HEADs finish at least this much faster
/// (on a server near us, more HEADs in flight also slow the listing pages
/// they wait for, which the HEADs' own rate does not show)...
const GAIN: f64 = 1.25;
/// ...a smaller one when they finish at least this fast (measuring is
/// not exact).
const KEEP: f64 = 0.99;
/// Measured stretches at a settled window before the next probe; doubled
/// after each probe that found nothing better (a probe costs throughput
/// when it fails), up to [`PROBE_EVERY_MAX`].
const PROBE_EVERY: u32 = 4;
const PROBE_EVERY_MAX: u32 = 64;

/// The window of listing HEADs in flight, shared by the mount's listings.
pub struct HeadWindow {
    permits: Semaphore,
    /// HEADs waiting for room now.
    waiting: AtomicUsize,
    climb: Mutex<Window>,
}

struct Window {
    climb: Climb,
    /// Permits in existence (free or held); above the climb's window while
    /// a smaller one drains.
    issued: usize,
}

/// Room for one HEAD; gives it back, and counts the HEAD as finished,
/// when dropped.
pub struct HeadSlot<'a> {
    window: &'a HeadWindow,
    permit: Option<SemaphorePermit<'a>>,
}

impl HeadWindow {
    /// A window starting at [`START`] (or `max`, if smaller) that never
    /// grows past `max`.
    pub fn new(max: usize) -> HeadWindow {
        let max = max.max(1);
        let start = START.min(max);
        HeadWindow {
            permits: Semaphore::new(start),
            waiting: AtomicUsize::new(0),
            climb: Mutex::new(Window {
                climb: Climb::new(start, MIN.min(max), max),
                issued: start,
            }),
        }
    }

    /// The window now.
    pub fn size(&self) -> usize {
        lock(&self.climb).climb.window
    }

    /// Waits for room for one HEAD.
    pub async fn admit(&self) -> HeadSlot<'_> {
        let waiting = Waiting::new(&self.waiting);
        let permit = self.permits.acquire().await;
        drop(waiting);
        HeadSlot {
            window: self,
            // The semaphore is never closed.
            permit: permit.ok(),
        }
    }

    fn finished(&self, permit: SemaphorePermit<'_>) {
        let saturated = self.waiting.load(Ordering::Relaxed) > 0;
        let mut w = lock(&self.climb);
        w.climb.finished(Instant::now(), saturated);
        let window = w.climb.window;
        if window > w.issued {
            self.permits.add_permits(window - w.issued);
            w.issued = window;
        } else if window < w.issued {
            permit.forget();
            w.issued -= 1;
            let excess = w.issued - window;
            w.issued -= self.permits.forget_permits(excess);
        }
    }
}

/// One HEAD counted as waiting for room until dropped (also when the
/// listing waiting for it is abandoned).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for HeadSlot<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.window.finished(permit);
        }
    }
}

/// Hill climbing of the window on measured throughput (no clock or
/// semaphore of its own: testable with made-up times).
#[derive(Debug)]
struct Climb {
    /// The window in use: the settled one, or a probe's.
    window: usize,
    min: usize,
    max: usize,
    /// The best window found so far, and its HEADs per second.
    settled: usize,
    settled_rate: Option<f64>,
    /// Measured stretches at the settled window since the last probe...
    since_probe: u32,
    /// ...and how many the next probe waits for.
    probe_every: u32,
    /// The direction of the next probe.
    probe_down: bool,
    /// The first stretch was measured (and dropped: it paid for opening
    /// the connections).
    warmed: bool,
    stretch: Stretch,
}

/// HEADs finished back to back at one window.
#[derive(Debug, Default)]
struct Stretch {
    /// HEADs still to finish before measuring starts: those sent under
    /// the previous window.
    skip: usize,
    first: Option<Instant>,
    done: usize,
}

impl Climb {
    fn new(start: usize, min: usize, max: usize) -> Climb {
        Climb {
            window: start,
            min,
            max,
            settled: start,
            settled_rate: None,
            // A listing that ends within a few stretches (most, on a
            // server near us) pays for no probe.
            since_probe: 0,
            probe_every: PROBE_EVERY,
            probe_down: false,
            warmed: false,
            stretch: Stretch::default(),
        }
    }

    /// One HEAD finished at `now`; `saturated`: others were waiting for
    /// room. May change `window`.
    fn finished(&mut self, now: Instant, saturated: bool) {
        if !saturated {
            // Demand did not fill the window: this stretch is not a measure.
            self.stretch = Stretch::default();
            return;
        }
        if self.stretch.skip > 0 {
            self.stretch.skip -= 1;
            return;
        }
        let first = *self.stretch.first.get_or_insert(now);
        self.stretch.done += 1;
        let elapsed = now.duration_since(first);
        if self.stretch.done <= STRETCH_MIN.max(STRETCH_WINDOWS * self.window)
            || elapsed < STRETCH_TIME
        {
            return;
        }
        let secs = elapsed.as_secs_f64();
        // HEADs finished after the first one, per second.
        let rate = (self.stretch.done - 1) as f64 / secs.max(1e-6);
        self.stretch = Stretch::default();
        if !self.warmed {
            self.warmed = true;
            return;
        }
        let before = self.window;
        self.judge(rate);
        if self.window != before {
            self.stretch.skip = before;
            debug!(
                "listing HEAD window {before} -> {} ({rate:.0} HEADs/s at {before})",
                self.window
            );
        }
    }

    fn judge(&mut self, rate: f64) {
        if self.window == self.settled {
            self.settled_rate = Some(match self.settled_rate {
                Some(before) => (before + rate) / 2.0,
                None => rate,
            });
            self.since_probe += 1;
            if self.since_probe >= self.probe_every {
                self.probe();
            }
            return;
        }
        let settled_rate = self.settled_rate.unwrap_or(0.0);
        let larger = self.window > self.settled;
        let better = if larger {
            rate >= settled_rate * GAIN
        } else {
            rate >= settled_rate * KEEP
        };
        if better {
            self.settled = self.window;
            self.settled_rate = Some(rate);
            // Keep going the same way at once, unless at its bound.
            let next = if larger {
                (self.settled * 2).min(self.max)
            } else {
                (self.settled / 2).max(self.min)
            };
            self.since_probe = 0;
            self.probe_every = PROBE_EVERY;
            self.window = next;
        } else {
            self.window = self.settled;
            self.since_probe = 0;
            self.probe_every = (self.probe_every * 2).min(PROBE_EVERY_MAX);
            self.probe_down = larger;
        }
    }

    /// Tries the next window in the probe's direction (the other one at its
    /// bound); stays settled when both are bounds.
    fn probe(&mut self) {
        self.since_probe = 0;
        let up = (self.settled * 2).min(self.max);
        let down = (self.settled / 2).max(self.min);
        let (first, second) = if self.probe_down {
            (down, up)
        } else {
            (up, down)
        };
        self.window = [first, second]
            .into_iter()
            .find(|&w| w != self.settled)
            .unwrap_or(self.settled);
        self.probe_down = self.window < self.settled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `climb` against a server finishing `rate(window)` HEADs per
    /// second with demand always above the window, for `heads` HEADs.
    fn run(climb: &mut Climb, heads: usize, rate: impl Fn(usize) -> f64) {
        let mut now = Instant::now();
        for _ in 0..heads {
            now += Duration::from_secs_f64(1.0 / rate(climb.window));
            climb.finished(now, true);
        }
    }

    /// Throughput rising with the window up to `knee`, falling slowly after.
    fn knee(knee: usize) -> impl Fn(usize) -> f64 {
        move |w| {
            if w <= knee {
                10.0 * w as f64
            } else {
                10.0 * knee as f64 * (1.0 - 0.05 * (w as f64 / knee as f64).log2())
            }
        }
    }

    #[test]
    fn a_far_server_gets_a_wider_window() {
        let mut climb = Climb::new(64, 4, 256);
        run(&mut climb, 20_000, knee(1_000));
        assert_eq!(climb.settled, 256);
    }

    #[test]
    fn a_server_out_of_cpu_keeps_the_window_at_its_knee() {
        let mut climb = Climb::new(64, 4, 256);
        run(&mut climb, 20_000, knee(64));
        assert_eq!(climb.settled, 64);
        // Probes come back: the window is the settled one most of the time.
        assert!(climb.window == 64 || climb.window == 128 || climb.window == 32);
    }

    #[test]
    fn a_throttled_server_pulls_the_window_down() {
        let mut climb = Climb::new(64, 4, 256);
        // The client's throttle lets 16 through: a wider window is no faster.
        run(&mut climb, 20_000, |w| 10.0 * w.min(16) as f64);
        assert!(climb.settled <= 16, "settled at {}", climb.settled);
    }

    #[test]
    fn a_window_grows_only_by_a_real_gain() {
        let mut climb = Climb::new(64, 4, 256);
        // Twice the window, 20 % faster: not worth the load.
        run(&mut climb, 20_000, |w| {
            1_000.0 * (1.0 + 0.2 * (w as f64 / 64.0).log2())
        });
        assert_eq!(climb.settled, 64);
    }

    #[test]
    fn heads_that_did_not_wait_for_room_measure_nothing() {
        let mut climb = Climb::new(64, 4, 256);
        let mut now = Instant::now();
        for i in 0..10_000 {
            now += Duration::from_millis(1);
            climb.finished(now, i % 50 != 0);
        }
        assert_eq!((climb.window, climb.settled_rate), (64, None));
    }

    #[test]
    fn the_first_stretch_opening_connections_is_not_counted() {
        let mut climb = Climb::new(64, 4, 256);
        let mut now = Instant::now();
        // The first HEADs wait for their connections: 5 times slower.
        for _ in 0..=STRETCH_WINDOWS * 64 {
            now += Duration::from_secs_f64(5.0 / knee(64)(64));
            climb.finished(now, true);
        }
        for _ in 0..20 {
            run(&mut climb, 1_000, knee(64));
            assert_eq!(climb.settled, 64, "a wider window was kept");
        }
    }

    #[test]
    fn an_idle_gap_between_listings_is_not_counted() {
        let mut climb = Climb::new(64, 4, 256);
        // Its connections are open.
        climb.warmed = true;
        let mut now = Instant::now();
        for _ in 0..100 {
            now += Duration::from_micros(100);
            climb.finished(now, true);
        }
        // The listing ends (its last HEADs found nobody waiting), a minute
        // passes, the next listing starts.
        climb.finished(now, false);
        now += Duration::from_secs(60);
        for _ in 0..=STRETCH_WINDOWS * 64 {
            now += Duration::from_millis(1);
            climb.finished(now, true);
        }
        let rate = climb.settled_rate.expect("one stretch measured");
        assert!((rate - 1_000.0).abs() < 10.0, "rate {rate}");
    }

    #[tokio::test]
    async fn a_head_abandoned_while_waiting_for_room_stops_counting_as_waiting() {
        let window = HeadWindow::new(1);
        let held = window.admit().await;
        let mut waiting = Box::pin(window.admit());
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        assert_eq!(window.waiting.load(Ordering::Relaxed), 1);
        drop(waiting);
        assert_eq!(window.waiting.load(Ordering::Relaxed), 0);
        drop(held);
    }

    #[tokio::test]
    async fn a_narrower_window_takes_back_its_permits() {
        let window = HeadWindow::new(8);
        assert_eq!(window.size(), 8);
        let slots: Vec<_> = futures_util::future::join_all((0..8).map(|_| window.admit())).await;
        lock(&window.climb).climb.window = 2;
        drop(slots);
        assert_eq!(window.permits.available_permits(), 2);
        assert_eq!(lock(&window.climb).issued, 2);
    }
}
