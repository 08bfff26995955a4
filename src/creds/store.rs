//! The credential store: what every request signs with. Requests take an
//! `Arc` snapshot and never wait, except when the credentials have already
//! expired: then they wait for the refresh in progress (or start one).
//! The store owns its refresher task and stops it when dropped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::refresh::{Refresher, Shared};
use super::{Clock, Credentials, CredsError, Provider, RefreshPolicy, SystemClock};

/// The credentials current right now; `None` inside means anonymous.
pub struct CredentialStore {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    refresher: Option<RefresherHandle>,
}

struct RefresherHandle {
    name: String,
    task: JoinHandle<()>,
    /// The longest a caller waits for one attempt.
    wait_limit: Duration,
}

impl CredentialStore {
    /// Anonymous requests: no Authorization header.
    pub fn anonymous() -> CredentialStore {
        CredentialStore::unrefreshed(None)
    }

    /// Fixed credentials, never refreshed.
    pub fn fixed(creds: Credentials) -> CredentialStore {
        CredentialStore::unrefreshed(Some(creds))
    }

    fn unrefreshed(creds: Option<Credentials>) -> CredentialStore {
        CredentialStore {
            shared: Arc::new(Shared::new(creds)),
            clock: Arc::new(SystemClock),
            refresher: None,
        }
    }

    /// Fetches the first credentials from `provider` (failing with its
    /// error) and starts the background refresher on the current runtime.
    pub async fn refreshing(
        provider: Arc<dyn Provider>,
        clock: Arc<dyn Clock>,
        policy: RefreshPolicy,
    ) -> Result<CredentialStore, CredsError> {
        let name = provider.name();
        let wait_limit = policy.fetch_timeout + Duration::from_secs(5);
        let (refresher, shared) = Refresher::start(provider, clock.clone(), policy).await?;
        let task = tokio::spawn(refresher.run());
        Ok(CredentialStore {
            shared,
            clock,
            refresher: Some(RefresherHandle {
                name,
                task,
                wait_limit,
            }),
        })
    }

    /// A snapshot for one request, without waiting.
    pub fn snapshot(&self) -> Option<Arc<Credentials>> {
        self.shared.snapshot()
    }

    /// A snapshot for one request. Waits only when the credentials have
    /// already expired and a refresher exists: for the attempt in progress,
    /// or a new one. If that fails, returns the expired credentials and the
    /// request fails at COS with a clear error.
    pub async fn current(&self) -> Option<Arc<Credentials>> {
        let snapshot = self.snapshot();
        let expired = snapshot
            .as_ref()
            .is_some_and(|c| c.is_expired_at(self.clock.now()));
        if !expired || self.refresher.is_none() {
            return snapshot;
        }
        let _ = self.wait_for_attempt(false).await;
        self.snapshot()
    }

    /// Replaces the current credentials (the refresh schedule is unchanged).
    pub fn replace(&self, creds: Credentials) {
        self.shared.set(creds);
    }

    /// Fetches new credentials now and waits for the outcome. Concurrent
    /// callers share one attempt. Fails with [`CredsError::NotRefreshable`]
    /// for fixed or anonymous credentials.
    pub async fn refresh_now(&self) -> Result<(), CredsError> {
        self.wait_for_attempt(true).await
    }

    /// Refresh attempts so far: (succeeded, failed), and the last
    /// failure's message while the latest attempt failed.
    pub fn refreshes(&self) -> (u64, u64, Option<String>) {
        let progress = self.shared.progress.borrow();
        (
            progress.finished - progress.failed,
            progress.failed,
            progress.last_error.as_ref().map(ToString::to_string),
        )
    }

    /// The source name (`cam_role ROLE`, ...) when credentials are refreshed.
    pub fn source(&self) -> Option<&str> {
        self.refresher.as_ref().map(|r| r.name.as_str())
    }

    /// Waits for an attempt to finish: one that starts after this call
    /// when `fresh`, else the one in progress if any.
    async fn wait_for_attempt(&self, fresh: bool) -> Result<(), CredsError> {
        let Some(refresher) = &self.refresher else {
            return Err(CredsError::NotRefreshable);
        };
        let mut progress = self.shared.progress.subscribe();
        let mut want = 0;
        let mut ask = false;
        // Receivers wait on `finished`, not `requested`: no need to wake them.
        self.shared.progress.send_if_modified(|p| {
            want = if !fresh && p.started > p.finished {
                p.started
            } else {
                p.started + 1
            };
            // An attempt in progress needs no asking; a new one is asked for once.
            ask = want > p.started && p.requested < want;
            if ask {
                p.requested = want;
            }
            false
        });
        if ask {
            self.shared.wake.notify_one();
        }
        let waited = tokio::time::timeout(
            refresher.wait_limit,
            progress.wait_for(|p| p.finished >= want),
        )
        .await;
        match waited {
            Ok(Ok(p)) => p.last_error.clone().map_or(Ok(()), Err),
            Ok(Err(_)) | Err(_) => Err(CredsError::unavailable(
                &refresher.name,
                "the credential refresh did not finish",
            )),
        }
    }
}

impl Drop for CredentialStore {
    fn drop(&mut self) {
        if let Some(r) = &self.refresher {
            r.task.abort();
        }
    }
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("current", &self.snapshot())
            .field("source", &self.source())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::creds::clock::{TokioClock, from_unix, unix_seconds};
    use crate::creds::testutil::{FakeProvider, capture_logs, captured_logs};

    const T0: u64 = 1_700_000_000;

    fn clock() -> Arc<dyn Clock> {
        Arc::new(TokioClock::starting_at(from_unix(T0)))
    }

    /// Temporary keys number `n`, living `life` seconds from `now`.
    fn keys(n: usize, now: SystemTime, life: u64) -> Credentials {
        Credentials::temporary(
            &format!("AKIDtemporary{n:04}"),
            &format!("SECRETKEY{n}"),
            &format!("TOKEN{n}"),
            now + Duration::from_secs(life),
        )
    }

    fn failure() -> CredsError {
        CredsError::unavailable("fake source", "down")
    }

    /// Seconds after T0 of each fetch.
    fn offsets(p: &FakeProvider) -> Vec<u64> {
        p.call_times()
            .into_iter()
            .map(|t| unix_seconds(t) - T0)
            .collect()
    }

    async fn sleep_to(clock: &Arc<dyn Clock>, offset: u64) {
        crate::creds::clock::sleep_until(&**clock, from_unix(T0 + offset)).await;
    }

    async fn start(clock: &Arc<dyn Clock>, p: &Arc<FakeProvider>) -> CredentialStore {
        CredentialStore::refreshing(p.clone(), clock.clone(), RefreshPolicy::default())
            .await
            .unwrap()
    }

    fn id(store: &CredentialStore) -> String {
        store.snapshot().unwrap().secret_id.clone()
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_at_two_thirds_of_a_long_life() {
        let clock = clock();
        let p = Arc::new(FakeProvider::new(clock.clone(), |n, now| {
            Ok(keys(n, now, 7200))
        }));
        let store = start(&clock, &p).await;
        sleep_to(&clock, 4799).await;
        assert_eq!(offsets(&p), [0]);
        assert_eq!(id(&store), "AKIDtemporary0000");
        sleep_to(&clock, 4801).await;
        assert_eq!(offsets(&p), [0, 4800]);
        assert_eq!(id(&store), "AKIDtemporary0001");
        sleep_to(&clock, 4800 + 4801).await;
        assert_eq!(offsets(&p), [0, 4800, 9600]);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_five_minutes_before_a_short_life_ends() {
        let clock = clock();
        let p = Arc::new(FakeProvider::new(clock.clone(), |n, now| {
            Ok(keys(n, now, 600))
        }));
        let _store = start(&clock, &p).await;
        sleep_to(&clock, 901).await;
        assert_eq!(offsets(&p), [0, 300, 600, 900]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_and_keeps_the_old_keys() {
        let clock = clock();
        let p = Arc::new(FakeProvider::new(clock.clone(), |n, now| match n {
            1..=3 => Err(failure()),
            _ => Ok(keys(n, now, 600)),
        }));
        let store = start(&clock, &p).await;
        sleep_to(&clock, 306).await;
        assert_eq!(offsets(&p), [0, 300, 301, 303]);
        assert_eq!(id(&store), "AKIDtemporary0000");
        sleep_to(&clock, 308).await;
        assert_eq!(offsets(&p), [0, 300, 301, 303, 307]);
        assert_eq!(id(&store), "AKIDtemporary0004");
        // The schedule starts over from the new keys: 307 + 300.
        sleep_to(&clock, 608).await;
        assert_eq!(offsets(&p), [0, 300, 301, 303, 307, 607]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_keys_again_count_as_not_renewed_yet() {
        let clock = clock();
        let first = keys(0, from_unix(T0), 600);
        let p = Arc::new(FakeProvider::new(clock.clone(), move |n, now| {
            if now < from_unix(T0 + 350) {
                Ok(first.clone())
            } else {
                Ok(keys(n, now, 600))
            }
        }));
        let store = start(&clock, &p).await;
        sleep_to(&clock, 364).await;
        assert_eq!(offsets(&p), [0, 300, 301, 303, 307, 315, 331, 363]);
        assert_eq!(id(&store), "AKIDtemporary0007");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_only_when_the_keys_have_expired() {
        let clock = clock();
        let policy = RefreshPolicy {
            retry_base: Duration::from_secs(45),
            retry_max: Duration::from_secs(45),
            ..RefreshPolicy::default()
        };
        // Every fetch after the first takes 20 s and fails if it starts
        // before T0+640. Attempts: 300-320, 365-385, 430-450, 495-515,
        // 560-580, 625-645; the keys expire at 600.
        let p = Arc::new(
            FakeProvider::new(clock.clone(), |n, now| match n {
                0 => Ok(keys(0, now, 600)),
                _ if now < from_unix(T0 + 640) => Err(failure()),
                _ => Ok(keys(n, now, 600)),
            })
            .slow(Duration::from_secs(20)),
        );
        let store = CredentialStore::refreshing(p.clone(), clock.clone(), policy)
            .await
            .unwrap();
        sleep_to(&clock, 305).await;
        let before = tokio::time::Instant::now();
        assert_eq!(
            store.current().await.unwrap().secret_id,
            "AKIDtemporary0000"
        );
        assert_eq!(before.elapsed(), Duration::ZERO, "valid keys never wait");

        // Expired, an attempt in progress (625-645): wait for it; it fails.
        sleep_to(&clock, 630).await;
        let before = tokio::time::Instant::now();
        assert_eq!(
            store.current().await.unwrap().secret_id,
            "AKIDtemporary0000"
        );
        assert_eq!(before.elapsed(), Duration::from_secs(15));

        // Expired, nothing in progress: start an attempt and wait for it.
        let before = tokio::time::Instant::now();
        let got = store.current().await.unwrap();
        assert_eq!(before.elapsed(), Duration::from_secs(20));
        assert_eq!(got.secret_id, "AKIDtemporary0007");
        assert_eq!(offsets(&p), [0, 300, 365, 430, 495, 560, 625, 645]);
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_now_fetches_once_for_concurrent_callers() {
        let clock = clock();
        let p = Arc::new(FakeProvider::new(clock.clone(), |n, now| match n {
            3 => Err(CredsError::refused("fake source", "no more")),
            _ => Ok(keys(n, now, 7200)),
        }));
        let store = start(&clock, &p).await;
        sleep_to(&clock, 10).await;
        store.refresh_now().await.unwrap();
        assert_eq!(id(&store), "AKIDtemporary0001");
        let (a, b, c) = tokio::join!(
            store.refresh_now(),
            store.refresh_now(),
            store.refresh_now()
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(offsets(&p), [0, 10, 10]);
        let err = store.refresh_now().await.unwrap_err();
        assert_eq!(err.to_string(), "fake source: no more");
        assert_eq!(id(&store), "AKIDtemporary0002");
        // The failure is retried a second later; the schedule then follows
        // that rotation: 11 + 4800.
        sleep_to(&clock, 4812).await;
        assert_eq!(offsets(&p), [0, 10, 10, 10, 11, 4811]);
    }

    #[tokio::test]
    async fn fixed_and_anonymous_stores_cannot_refresh() {
        let fixed = CredentialStore::fixed(Credentials::permanent("AKID", "KEY"));
        assert_eq!(fixed.refresh_now().await, Err(CredsError::NotRefreshable));
        assert_eq!(fixed.current().await.unwrap().secret_id, "AKID");
        let anonymous = CredentialStore::anonymous();
        assert!(anonymous.current().await.is_none());
        assert!(anonymous.refresh_now().await.is_err());
        assert_eq!(anonymous.source(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_fetch_fails_with_the_source_error() {
        let clock = clock();
        let p = Arc::new(FakeProvider::new(clock.clone(), |_, now| {
            Ok(keys(0, now - Duration::from_secs(10), 5))
        }));
        let err = CredentialStore::refreshing(p, clock.clone(), RefreshPolicy::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already expired"), "{err}");
        let slow = FakeProvider::new(clock.clone(), |n, now| Ok(keys(n, now, 600)));
        let p = Arc::new(slow.slow(Duration::from_secs(3600)));
        let store = start(&clock, &p).await;
        let err = store.refresh_now().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "fake source: no answer within 1m: is the source reachable?"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn logs_rotations_and_failures_without_secrets() {
        capture_logs();
        let clock = clock();
        let p = Arc::new(FakeProvider::new(clock.clone(), |n, now| match n {
            1 => Err(failure()),
            _ => Ok(keys(n, now, 600)),
        }));
        let store = start(&clock, &p).await;
        sleep_to(&clock, 302).await;
        sleep_to(&clock, 601).await;
        let _ = store.refresh_now().await;
        let logs = captured_logs();
        let text = logs.join("\n");
        assert!(
            text.contains("INFO rotated credentials from fake source; new SecretId AKID…002, expires at 2023-11-14T22:28:21Z"),
            "{text}"
        );
        assert!(
            text.contains(
                "WARN cannot refresh credentials: fake source: down; still using SecretId AKID…000"
            ),
            "{text}"
        );
        assert!(
            !text.contains("SECRETKEY") && !text.contains("TOKEN"),
            "{text}"
        );
        let shown = format!("{store:?}");
        assert!(
            shown.contains("AKIDtemporary") && shown.contains("fake source"),
            "{shown}"
        );
        assert!(
            !shown.contains("SECRETKEY") && !shown.contains("TOKEN"),
            "{shown}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_store_stops_the_refresher() {
        let clock = clock();
        let p = Arc::new(FakeProvider::new(clock.clone(), |n, now| {
            Ok(keys(n, now, 600))
        }));
        let store = start(&clock, &p).await;
        assert_eq!(Arc::strong_count(&p), 2);
        drop(store);
        tokio::task::yield_now().await;
        assert_eq!(Arc::strong_count(&p), 1);
    }
}
