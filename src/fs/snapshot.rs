//! Snapshots of a directory's names: one listing page of a whole small
//! directory tells, for every name at once, whether the bucket held it.
//! Filling a directory with new names (tar, `cp -r`) then costs one
//! listing per window instead of a question per name, and close-to-open
//! keeps its meaning: a snapshot answers only while it is as recent as the
//! single answer it stands for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use log::debug;

use super::dir::{DirListing, Listed};
use super::{Fs, FsResult};
use crate::cos::{ListPage, ListRequest, ObjectClient};
use crate::sync::lock;

/// Keys one snapshot may hold: one listing page. A directory with more is
/// asked about name by name.
pub const SNAPSHOT_KEYS: u32 = 1000;

/// Directories whose snapshots are kept before old ones are dropped.
const KEPT_DIRS: usize = 64;

/// Snapshots older than this are dropped when room is needed (a directory
/// too large to snapshot is remembered as long as room allows).
const KEPT_FOR: Duration = Duration::from_secs(5);

/// What the bucket held in a directory when one listing page was sent.
#[derive(Debug)]
pub struct Snapshot {
    /// When the listing was sent: the view is at least this recent.
    pub taken: Instant,
    /// Names and what each is; `None` when the directory holds more than
    /// one page.
    names: Option<HashMap<String, Listed>>,
}

impl Snapshot {
    /// The snapshot one page of the directory `prefix` gives.
    pub fn from_page(prefix: &str, page: &ListPage, taken: Instant) -> Snapshot {
        if page.truncated {
            return Snapshot { taken, names: None };
        }
        let mut listing = DirListing::default();
        listing.add_page(prefix, page);
        Snapshot {
            taken,
            names: Some(listing.entries.into_iter().collect()),
        }
    }

    /// What `name` was when the snapshot was taken (this mount may have
    /// made it since: [`Seen`] tells).
    fn name(&self, name: &str) -> Held {
        match self.names.as_ref().map(|names| names.get(name)) {
            None => Held::Unknown,
            Some(None) => Held::Free,
            Some(Some(Listed::Object { .. })) => Held::File,
            Some(Some(Listed::Dir)) => Held::Dir,
        }
    }

    /// The ETag and Last-Modified of the file `name` when the snapshot was
    /// taken.
    pub fn version(&self, name: &str) -> Option<(&str, SystemTime)> {
        match self.names.as_ref()?.get(name)? {
            Listed::Object {
                etag,
                last_modified,
                ..
            } => Some((etag, *last_modified)),
            Listed::Dir => None,
        }
    }

    /// The directory held more than one page.
    pub fn too_large(&self) -> bool {
        self.names.is_none()
    }
}

/// What a snapshot says a name was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Nothing by that name.
    Free,
    /// A file.
    File,
    /// A directory (a common prefix or a marker).
    Dir,
    /// The snapshot cannot tell: the directory held more than one page.
    Unknown,
    /// This mount made the name after the snapshot was sent.
    Made,
}

/// A snapshot and what it says about the name asked for, as this mount
/// knows it.
pub struct Seen {
    /// The snapshot (when it was sent, whether it was too large).
    pub snapshot: Arc<Snapshot>,
    /// What the name is.
    pub held: Held,
}

type Flight = Shared<BoxFuture<'static, FsResult<Arc<Snapshot>>>>;

/// One directory's latest snapshot, the one being taken, and the names
/// this mount made there since the older of them was sent, with when.
#[derive(Default)]
struct DirSnapshots {
    latest: Option<Arc<Snapshot>>,
    taking: Option<(Instant, Flight)>,
    made: HashMap<String, Instant>,
    /// When the snapshots questions still wait for were sent (one entry
    /// per question): names made since must be remembered for them.
    waiting: Vec<Instant>,
    /// Snapshots sent before this tell no name: more names were made
    /// since than are worth remembering (a large directory being filled).
    blind_before: Option<Instant>,
}

impl DirSnapshots {
    /// Starts taking a snapshot with `take`, sent now.
    fn start(
        &mut self,
        take: impl FnOnce(Instant) -> BoxFuture<'static, FsResult<Snapshot>>,
    ) -> (Instant, Flight) {
        let sent = Instant::now();
        let flight = take(sent).map(|r| r.map(Arc::new)).boxed().shared();
        self.taking = Some((sent, flight.clone()));
        (sent, flight)
    }

    /// Keeps `snapshot` as the latest unless a newer one is kept.
    fn offer(&mut self, snapshot: Arc<Snapshot>) {
        if self
            .latest
            .as_ref()
            .is_none_or(|l| l.taken < snapshot.taken)
        {
            self.latest = Some(snapshot);
        }
    }

    /// What `snapshot` and the names made since it was sent say `name` is.
    fn seen(&self, snapshot: &Arc<Snapshot>, name: &str) -> Seen {
        let made_since = self.blind_before.is_some_and(|at| snapshot.taken <= at)
            || self.made.get(name).is_some_and(|at| *at >= snapshot.taken);
        Seen {
            snapshot: snapshot.clone(),
            held: if made_since {
                Held::Made
            } else {
                snapshot.name(name)
            },
        }
    }

    /// Whether to keep this directory's entry at `now`: a listing is still
    /// running, or its newest snapshot (kept, or finished in the background
    /// and never asked for) is younger than [`KEPT_FOR`].
    fn worth_keeping(&self, now: Instant) -> bool {
        let recent = |at: Instant| now.saturating_duration_since(at) < KEPT_FOR;
        let running = self
            .taking
            .as_ref()
            .is_some_and(|(sent, flight)| flight.peek().is_none() || recent(*sent));
        running || !self.waiting.is_empty() || self.latest.as_ref().is_some_and(|s| recent(s.taken))
    }

    /// A question no longer waits for the snapshot sent at `sent`.
    fn stop_waiting(&mut self, sent: Instant) {
        if let Some(i) = self.waiting.iter().position(|at| *at == sent) {
            self.waiting.swap_remove(i);
        }
    }

    /// Notes that this mount made `name` here just now.
    fn note_made(&mut self, name: &str) {
        let now = Instant::now();
        self.made.insert(name.to_string(), now);
        self.forget_shown_names();
        if self.made.len() > SNAPSHOT_KEYS as usize {
            self.made.clear();
            self.blind_before = Some(now);
        }
    }

    /// Forgets names made before every snapshot this directory still has
    /// or a question waits for was sent: those snapshots, and any later
    /// one, show them.
    fn forget_shown_names(&mut self) {
        let sent = self.latest.as_ref().map(|s| s.taken);
        let oldest = sent
            .into_iter()
            .chain(self.taking.as_ref().map(|t| t.0))
            .chain(self.waiting.iter().copied())
            .min();
        match oldest {
            Some(oldest) => self.made.retain(|_, at| *at >= oldest),
            None => self.made.clear(),
        }
        if oldest.is_none_or(|oldest| self.blind_before.is_some_and(|at| at < oldest)) {
            self.blind_before = None;
        }
    }
}

/// The snapshots of every directory, one listing in flight per directory.
#[derive(Default)]
pub struct Snapshots {
    dirs: Mutex<HashMap<u64, DirSnapshots>>,
}

impl Snapshots {
    /// The latest snapshot of directory `ino`, however old.
    pub fn latest(&self, ino: u64) -> Option<Arc<Snapshot>> {
        lock(&self.dirs).get(&ino).and_then(|d| d.latest.clone())
    }

    /// Records that this mount just made `name` exist in directory `ino`
    /// (created, renamed to, made a directory): a snapshot sent before
    /// cannot tell what it is.
    pub fn made(&self, ino: u64, name: &str) {
        if let Some(dir) = lock(&self.dirs).get_mut(&ino) {
            dir.note_made(name);
        }
    }

    /// Keeps `snapshot` as directory `ino`'s latest, unless a newer one is
    /// kept already.
    pub fn keep(&self, ino: u64, snapshot: Snapshot) {
        let mut dirs = lock(&self.dirs);
        let dir = dirs.entry(ino).or_default();
        dir.offer(Arc::new(snapshot));
        dir.forget_shown_names();
    }

    /// Starts taking a snapshot of directory `ino` with `take`, in the
    /// background, unless one is being taken: the next question finds it
    /// ready instead of waiting for its listing.
    pub fn refresh(
        &self,
        ino: u64,
        take: impl FnOnce(Instant) -> BoxFuture<'static, FsResult<Snapshot>>,
    ) {
        let flight = {
            let mut dirs = lock(&self.dirs);
            let dir = dirs.entry(ino).or_default();
            if dir.taking.is_some() {
                return;
            }
            dir.start(take).1
        };
        // Its answer is kept by the flight for the question that takes it.
        tokio::spawn(flight);
    }

    /// A snapshot of directory `ino` sent no earlier than `since`, and
    /// what it says `name` is: the latest when it is recent enough, else
    /// the one being taken when it was sent in time, else a new one from
    /// `take` (sent now).
    pub async fn since(
        &self,
        ino: u64,
        since: Instant,
        name: &str,
        take: impl FnOnce(Instant) -> BoxFuture<'static, FsResult<Snapshot>>,
    ) -> FsResult<Seen> {
        let (sent, flight) = {
            let mut dirs = lock(&self.dirs);
            if dirs.len() > KEPT_DIRS && !dirs.contains_key(&ino) {
                let now = Instant::now();
                dirs.retain(|_, d| d.worth_keeping(now));
            }
            let dir = dirs.entry(ino).or_default();
            if let Some(s) = dir.latest.as_ref().filter(|s| s.taken >= since) {
                return Ok(dir.seen(s, name));
            }
            let (sent, flight) = match &dir.taking {
                Some((sent, flight)) if *sent >= since => (*sent, flight.clone()),
                _ => dir.start(take),
            };
            dir.waiting.push(sent);
            (sent, flight)
        };
        let mut waiter = Waiter {
            snapshots: self,
            ino,
            sent,
            done: false,
        };
        let result = flight.await;
        let mut dirs = lock(&self.dirs);
        let dir = dirs.entry(ino).or_default();
        dir.stop_waiting(sent);
        waiter.done = true;
        // Done, well or not: a failure is not handed to later questions.
        if dir.taking.as_ref().is_some_and(|(s, _)| *s == sent) {
            dir.taking = None;
        }
        let snapshot = result?;
        dir.offer(snapshot.clone());
        // Before names the newer snapshots show are forgotten.
        let seen = dir.seen(&snapshot, name);
        dir.forget_shown_names();
        Ok(seen)
    }
}

/// A question waiting for the snapshot of directory `ino` sent at `sent`
/// (registered in [`DirSnapshots::waiting`]): unregistered when done, also
/// when the question is dropped.
struct Waiter<'a> {
    snapshots: &'a Snapshots,
    ino: u64,
    sent: Instant,
    done: bool,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(dir) = lock(&self.snapshots.dirs).get_mut(&self.ino) {
                dir.stop_waiting(self.sent);
            }
        }
    }
}

impl<C: ObjectClient> Fs<C> {
    /// What a snapshot of directory `ino` (key `prefix`) sent no earlier
    /// than `since` says `name` is, or `None` when the directory is not
    /// worth one: listings are off, or it holds more than one page (as far
    /// as this mount knows).
    pub(super) async fn dir_snapshot(
        &self,
        ino: u64,
        prefix: &str,
        since: Instant,
        name: &str,
    ) -> FsResult<Option<Seen>> {
        if !self.snapshot_worth(ino) {
            return Ok(None);
        }
        let taker = self.snapshot_taker(prefix);
        let seen = self.snapshots.since(ino, since, name, taker).await?;
        Ok((!seen.snapshot.too_large()).then_some(seen))
    }

    /// Starts the next snapshot of directory `ino` in the background (a
    /// folder being filled asks again soon).
    pub(super) fn refresh_dir_snapshot(&self, ino: u64, prefix: &str) {
        if self.snapshot_worth(ino) {
            self.snapshots.refresh(ino, self.snapshot_taker(prefix));
        }
    }

    /// A snapshot of the folder `prefix` this mount is about to make, taken
    /// while its marker is written: the folder's first creating opens then
    /// find their names free without waiting for a listing (close-to-open
    /// wants one sent within the last 100 ms). `None` when no creating
    /// open asks (`nocto`, listings off) or the listing failed.
    pub(super) async fn new_folder_snapshot(&self, prefix: &str) -> Option<Snapshot> {
        if !self.config.close_to_open || self.config.no_listing {
            return None;
        }
        match self.snapshot_taker(prefix)(Instant::now()).await {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                debug!("listing the new folder {prefix:?}: {e}");
                None
            }
        }
    }

    /// Whether directory `ino` may be snapshot: listings are on and it is
    /// not known to hold more than one page.
    fn snapshot_worth(&self, ino: u64) -> bool {
        if self.config.no_listing || self.snapshots.latest(ino).is_some_and(|s| s.too_large()) {
            return false;
        }
        lock(&self.inodes)
            .get(ino)
            .is_none_or(|d| d.children.len() < SNAPSHOT_KEYS as usize)
    }

    /// Takes a snapshot of the directory `prefix`: one listing page.
    fn snapshot_taker(
        &self,
        prefix: &str,
    ) -> impl FnOnce(Instant) -> BoxFuture<'static, FsResult<Snapshot>> + use<C> {
        let client = self.client.clone();
        let prefix = prefix.to_string();
        move |sent| {
            async move {
                let request = ListRequest {
                    prefix: prefix.clone(),
                    delimiter: Some("/".into()),
                    marker: String::new(),
                    max_keys: SNAPSHOT_KEYS,
                };
                let page = client.list_page(&request).await?;
                Ok(Snapshot::from_page(&prefix, &page, sent))
            }
            .boxed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::ListEntry;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn page(keys: &[&str], prefixes: &[&str], truncated: bool) -> ListPage {
        ListPage {
            objects: keys
                .iter()
                .map(|k| ListEntry {
                    key: k.to_string(),
                    size: 1,
                    etag: "e".into(),
                    last_modified: std::time::SystemTime::UNIX_EPOCH,
                    storage_class: Default::default(),
                })
                .collect(),
            common_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            next_marker: None,
            truncated,
        }
    }

    #[test]
    fn a_page_tells_files_directories_and_free_names() {
        let s = Snapshot::from_page(
            "d/",
            &page(&["d/", "d/a", "d/b"], &["d/sub/"], false),
            Instant::now(),
        );
        assert_eq!(s.name("a"), Held::File);
        assert_eq!(s.name("sub"), Held::Dir);
        assert_eq!(s.name("c"), Held::Free);
        assert!(!s.too_large());
    }

    #[test]
    fn a_truncated_page_tells_nothing() {
        let s = Snapshot::from_page("d/", &page(&["d/a"], &[], true), Instant::now());
        assert!(s.too_large());
        assert_eq!(s.name("zzz"), Held::Unknown);
    }

    #[tokio::test]
    async fn a_refresh_in_the_background_is_the_next_answer() {
        let snapshots = Snapshots::default();
        let listings = Arc::new(AtomicUsize::new(0));
        let take = |listings: Arc<AtomicUsize>| {
            move |sent: Instant| {
                async move {
                    listings.fetch_add(1, Ordering::SeqCst);
                    Ok(Snapshot::from_page("d/", &page(&["d/a"], &[], false), sent))
                }
                .boxed()
            }
        };
        let since = Instant::now();
        snapshots.refresh(5, take(listings.clone()));
        snapshots.refresh(5, take(listings.clone()));
        let seen = snapshots
            .since(5, since, "a", take(listings.clone()))
            .await
            .unwrap();
        assert!(seen.snapshot.taken >= since && seen.held == Held::File);
        assert_eq!(listings.load(Ordering::SeqCst), 1, "one listing in all");
    }

    #[tokio::test]
    async fn a_finished_background_listing_nobody_asked_for_is_dropped_when_old() {
        let mut dir = DirSnapshots::default();
        let (sent, flight) = dir.start(|sent| {
            async move { Ok(Snapshot::from_page("d/", &page(&[], &[], false), sent)) }.boxed()
        });
        let later = sent + KEPT_FOR * 2;
        assert!(dir.worth_keeping(later), "still running");
        flight.await.unwrap();
        assert!(dir.worth_keeping(sent), "recent");
        assert!(!dir.worth_keeping(later), "finished and old");
    }

    #[tokio::test]
    async fn a_failed_listing_is_not_the_answer_to_the_next_question() {
        let snapshots = Snapshots::default();
        let since = Instant::now();
        let failed = snapshots
            .since(3, since, "x", |_| {
                async { Err(super::super::FsError::LocalIo("refused".into())) }.boxed()
            })
            .await;
        assert!(failed.is_err());
        let seen = snapshots
            .since(3, since, "x", |sent| {
                async move { Ok(Snapshot::from_page("d/", &page(&[], &[], false), sent)) }.boxed()
            })
            .await
            .unwrap();
        assert_eq!(seen.held, Held::Free);
    }

    #[tokio::test]
    async fn concurrent_questions_share_one_listing_and_old_ones_are_not_reused() {
        let snapshots = Arc::new(Snapshots::default());
        let listings = Arc::new(AtomicUsize::new(0));
        let take = |listings: Arc<AtomicUsize>| {
            move |sent: Instant| {
                async move {
                    listings.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(Snapshot::from_page("d/", &page(&["d/a"], &[], false), sent))
                }
                .boxed()
            }
        };
        let since = Instant::now();
        let (a, b) = tokio::join!(
            snapshots.since(7, since, "a", take(listings.clone())),
            snapshots.since(7, since, "a", take(listings.clone())),
        );
        assert_eq!(listings.load(Ordering::SeqCst), 1);
        assert!(Arc::ptr_eq(&a.unwrap().snapshot, &b.unwrap().snapshot));
        // Recent enough: no new listing.
        snapshots
            .since(7, since, "a", take(listings.clone()))
            .await
            .unwrap();
        assert_eq!(listings.load(Ordering::SeqCst), 1);
        // Asked for a newer view: a new listing.
        let later = Instant::now();
        let seen = snapshots
            .since(7, later, "a", take(listings.clone()))
            .await
            .unwrap();
        assert_eq!(listings.load(Ordering::SeqCst), 2);
        assert!(seen.snapshot.taken >= later);
        assert!(Arc::ptr_eq(&snapshots.latest(7).unwrap(), &seen.snapshot));
    }

    #[tokio::test]
    async fn a_name_made_after_a_snapshot_was_sent_is_not_told_by_it() {
        let snapshots = Snapshots::default();
        let listing = |keys: &'static [&'static str]| {
            move |sent| {
                async move { Ok(Snapshot::from_page("d/", &page(keys, &[], false), sent)) }.boxed()
            }
        };
        let sent = Instant::now();
        snapshots.since(4, sent, "new", listing(&[])).await.unwrap();
        snapshots.made(4, "new");
        let old = |name| snapshots.since(4, sent, name, listing(&[]));
        assert_eq!(old("new").await.unwrap().held, Held::Made);
        assert_eq!(old("other").await.unwrap().held, Held::Free);
        let newer = snapshots
            .since(4, Instant::now(), "new", listing(&["d/new"]))
            .await
            .unwrap();
        assert_eq!(newer.held, Held::File);
        assert!(
            lock(&snapshots.dirs)[&4].made.is_empty(),
            "shown by every snapshot kept: forgotten"
        );
    }

    #[tokio::test]
    async fn too_many_names_made_since_a_snapshot_leave_it_telling_none() {
        let snapshots = Snapshots::default();
        let empty = |sent| {
            async move { Ok(Snapshot::from_page("d/", &page(&[], &[], false), sent)) }.boxed()
        };
        let sent = Instant::now();
        snapshots.since(4, sent, "x", empty).await.unwrap();
        for i in 0..=SNAPSHOT_KEYS {
            snapshots.made(4, &format!("f{i}"));
        }
        let seen = snapshots.since(4, sent, "x", empty).await.unwrap();
        assert_eq!(seen.held, Held::Made, "it tells no name");
        assert!(lock(&snapshots.dirs)[&4].made.len() <= 1, "bounded");
        let seen = snapshots
            .since(4, Instant::now(), "x", empty)
            .await
            .unwrap();
        assert_eq!(seen.held, Held::Free, "a newer snapshot tells again");
        assert_eq!(lock(&snapshots.dirs)[&4].blind_before, None);
    }

    #[tokio::test]
    async fn a_question_waiting_for_an_older_snapshot_still_learns_names_made_since() {
        let snapshots = Arc::new(Snapshots::default());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let slow = move |sent| {
            async move {
                released.await.unwrap();
                Ok(Snapshot::from_page("d/", &page(&[], &[], false), sent))
            }
            .boxed()
        };
        let waiting = {
            let snapshots = snapshots.clone();
            tokio::spawn(async move { snapshots.since(4, Instant::now(), "new", slow).await })
        };
        tokio::task::yield_now().await;
        snapshots.made(4, "new");
        // A newer question replaces the listing being taken and is
        // answered first; the name is shown by its snapshot.
        let listed = |sent| {
            async move {
                Ok(Snapshot::from_page(
                    "d/",
                    &page(&["d/new"], &[], false),
                    sent,
                ))
            }
            .boxed()
        };
        let newer = snapshots
            .since(4, Instant::now(), "new", listed)
            .await
            .unwrap();
        assert_eq!(newer.held, Held::File);
        release.send(()).unwrap();
        let older = waiting.await.unwrap().unwrap();
        assert_eq!(older.held, Held::Made, "the older snapshot cannot tell");
        assert!(lock(&snapshots.dirs)[&4].waiting.is_empty());
    }
}
