//! The background refresher: one task per store that replaces temporary
//! credentials before they expire. Rules:
//! - refresh at 2/3 of the lifetime or 5 minutes before expiry, whichever
//!   comes first, but never before 1/3 of the lifetime (so tokens that live
//!   only a few minutes do not cause a refresh storm);
//! - on failure, or when the source still hands out the same keys, ask
//!   again after a doubling delay (1 s, 2 s, ... 60 s) and keep the old keys,
//!   which stay in use until they truly expire;
//! - a store can ask for an attempt at once (`wake`); concurrent askers
//!   share one attempt, and learn its outcome through `progress`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use log::{debug, error, info, warn};
use tokio::sync::{Notify, watch};

use super::clock::{self, Clock};
use super::{Credentials, CredsError, Provider};
use crate::retry;

/// When and how patiently credentials are refreshed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Refresh at the latest this long before expiry.
    pub early: Duration,
    /// Wait after the first failed attempt; doubles per failure.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// Give up on one fetch after this long.
    pub fetch_timeout: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            early: Duration::from_secs(300),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(60),
        }
    }
}

impl RefreshPolicy {
    /// When credentials fetched at `fetched_at` and expiring at
    /// `expires_at` should be replaced.
    pub fn refresh_at(&self, fetched_at: SystemTime, expires_at: SystemTime) -> SystemTime {
        let life = expires_at.duration_since(fetched_at).unwrap_or_default();
        let two_thirds = fetched_at + life * 2 / 3;
        let early = expires_at.checked_sub(self.early).unwrap_or(fetched_at);
        two_thirds.min(early).max(fetched_at + life / 3)
    }

    /// The wait after `failures` consecutive failed attempts (1-based).
    /// No jitter: there is one refresher per process, nothing to spread.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        retry::exponential(self.retry_base, self.retry_max, failures)
    }
}

/// Counts of refresh attempts, published to whoever waits for one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    /// The highest attempt number someone asked for.
    pub requested: u64,
    /// Attempts started.
    pub started: u64,
    /// Attempts finished.
    pub finished: u64,
    /// Attempts finished that failed.
    pub failed: u64,
    /// The error of the last finished attempt, if it failed.
    pub last_error: Option<CredsError>,
}

/// What the store and its refresher task share.
pub(crate) struct Shared {
    /// The credentials requests use; `None` is anonymous.
    pub current: RwLock<Option<Arc<Credentials>>>,
    /// Attempt counts and outcome.
    pub progress: watch::Sender<Progress>,
    /// Asks the refresher for an attempt now.
    pub wake: Notify,
}

impl Shared {
    /// A new shared state holding `current`.
    pub fn new(current: Option<Credentials>) -> Shared {
        Shared {
            current: RwLock::new(current.map(Arc::new)),
            progress: watch::Sender::new(Progress::default()),
            wake: Notify::new(),
        }
    }

    /// The current credentials.
    pub fn snapshot(&self) -> Option<Arc<Credentials>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Installs new credentials.
    pub fn set(&self, creds: Credentials) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(creds));
    }
}

/// The refresher task's state.
pub(crate) struct Refresher {
    shared: Arc<Shared>,
    provider: Arc<dyn Provider>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    name: String,
    /// When the next unprompted attempt is due; `None` for keys that do
    /// not expire (they are only re-fetched when asked).
    next: Option<SystemTime>,
    failures: u32,
}

impl Refresher {
    /// A refresher for `provider`; fetches the first credentials, or
    /// fails with the source's error.
    pub async fn start(
        provider: Arc<dyn Provider>,
        clock: Arc<dyn Clock>,
        policy: RefreshPolicy,
    ) -> Result<(Refresher, Arc<Shared>), CredsError> {
        let name = provider.name();
        let mut refresher = Refresher {
            shared: Arc::new(Shared::new(None)),
            provider,
            clock,
            policy,
            name,
            next: None,
            failures: 0,
        };
        let first = refresher.fetch().await?;
        info!("loaded credentials from {}; {first}", refresher.name);
        refresher.next = refresher.due_time(&first);
        refresher.shared.set(first);
        let shared = refresher.shared.clone();
        Ok((refresher, shared))
    }

    /// Runs until the task is aborted.
    pub async fn run(mut self) {
        loop {
            self.wait().await;
            self.attempt().await;
        }
    }

    async fn wait(&self) {
        let clock = self.clock.clone();
        let next = self.next;
        let timer = async move {
            match next {
                Some(at) => clock::sleep_until(&*clock, at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = self.shared.wake.notified() => {}
            _ = timer => {}
        }
    }

    async fn attempt(&mut self) {
        self.shared.progress.send_modify(|p| p.started += 1);
        let result = self.fetch().await;
        let last_error = result.as_ref().err().cloned();
        match result {
            Ok(new) => self.accept(new),
            Err(e) => self.failed(&e),
        }
        self.shared.progress.send_modify(|p| {
            p.finished += 1;
            p.failed += u64::from(last_error.is_some());
            p.last_error = last_error;
        });
    }

    /// One fetch, bounded in time; credentials that arrive expired are an error.
    async fn fetch(&self) -> Result<Credentials, CredsError> {
        let fetched = tokio::time::timeout(self.policy.fetch_timeout, self.provider.fetch()).await;
        let creds = fetched.map_err(|_| {
            CredsError::unavailable(
                &self.name,
                format!(
                    "no answer within {}: is the source reachable?",
                    humantime::format_duration(self.policy.fetch_timeout)
                ),
            )
        })??;
        match creds.expires_at {
            Some(at) if at <= self.clock.now() => Err(CredsError::invalid(
                &self.name,
                format!(
                    "handed out credentials that already expired at {}: renew them at the source (or check the local clock)",
                    clock::format_time(at)
                ),
            )),
            _ => Ok(creds),
        }
    }

    fn due_time(&self, creds: &Credentials) -> Option<SystemTime> {
        let now = self.clock.now();
        creds.expires_at.map(|e| self.policy.refresh_at(now, e))
    }

    fn is_due(&self) -> bool {
        self.next.is_some_and(|n| n <= self.clock.now())
    }

    fn accept(&mut self, new: Credentials) {
        if self.shared.snapshot().as_deref() == Some(&new) {
            if self.is_due() {
                self.failures += 1;
                let delay = self.backoff();
                debug!(
                    "{} still hands out the same credentials ({new}); asking again in {}",
                    self.name,
                    humantime::format_duration(delay)
                );
            }
            return;
        }
        self.failures = 0;
        self.next = self.due_time(&new);
        info!("rotated credentials from {}; new {new}", self.name);
        self.shared.set(new);
    }

    fn failed(&mut self, e: &CredsError) {
        self.failures += 1;
        let current = self.shared.snapshot();
        let Some(expires) = current.as_ref().and_then(|c| c.expires_at) else {
            // `e` names the source itself.
            warn!("cannot reload credentials: {e}; keeping the current ones");
            return;
        };
        let delay = self.backoff();
        let short = current.as_ref().map(|c| c.short_id()).unwrap_or_default();
        let (expires, delay) = (
            clock::format_time(expires),
            humantime::format_duration(delay),
        );
        if current.is_some_and(|c| c.is_expired_at(self.clock.now())) {
            error!(
                "cannot refresh credentials: {e}; SecretId {short} expired at {expires}, so requests fail until this is fixed; next try in {delay}"
            );
        } else {
            warn!(
                "cannot refresh credentials: {e}; still using SecretId {short} until it expires at {expires}; next try in {delay}"
            );
        }
    }

    /// Schedules the next attempt after a failure and returns the wait.
    fn backoff(&mut self) -> Duration {
        let delay = self.policy.retry_delay(self.failures);
        let now = self.clock.now();
        let retry = now + delay;
        self.next = Some(match self.next {
            Some(scheduled) if scheduled > now => scheduled.min(retry),
            _ => retry,
        });
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::clock::from_unix;

    #[test]
    fn two_thirds_rule_for_long_lives() {
        let p = RefreshPolicy::default();
        let at = p.refresh_at(from_unix(0), from_unix(7200));
        assert_eq!(at, from_unix(4800));
    }

    #[test]
    fn five_minute_rule_when_it_comes_first() {
        let p = RefreshPolicy::default();
        // 10 minutes: 2/3 is 400 s, 5 minutes before is 300 s.
        assert_eq!(p.refresh_at(from_unix(0), from_unix(600)), from_unix(300));
        // 12 minutes: 480 s vs 420 s.
        assert_eq!(p.refresh_at(from_unix(100), from_unix(820)), from_unix(520));
    }

    #[test]
    fn short_lives_are_not_refreshed_before_a_third() {
        let p = RefreshPolicy::default();
        // 6 minutes: 5 minutes before is 60 s, a third is 120 s.
        assert_eq!(p.refresh_at(from_unix(0), from_unix(360)), from_unix(120));
        assert_eq!(p.refresh_at(from_unix(0), from_unix(30)), from_unix(10));
        assert_eq!(p.refresh_at(from_unix(50), from_unix(40)), from_unix(50));
    }

    #[test]
    fn retry_delay_doubles_then_caps() {
        let p = RefreshPolicy::default();
        let secs: Vec<u64> = (1..=8).map(|n| p.retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.retry_delay(1000), Duration::from_secs(60));
    }
}
