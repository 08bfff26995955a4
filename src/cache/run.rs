//! Runs: consecutive missing blocks fetched by one ranged GET. A read is
//! planned over its own blocks and its read-ahead window: blocks neither
//! cached nor in flight are grouped into runs of at most half the window
//! (1 → 2 → 4 → 8 → 16 MiB as a sequential reader's window doubles, capped
//! by [`Fetcher::max_run`]), so a long read costs one GET per 16 MiB
//! instead of one per block, while a random reader (no window) still
//! fetches one block at a time and a block on disk is read from disk alone.
//!
//! A run's blocks stay separate cache entries: slices of the run's one
//! buffer, which is reserved from the budget as a whole before the GET.
//! The reservation lives in the buffer's owner ([`Reserved`]), so it goes
//! back exactly when the buffer does, once the last slice of it (cached,
//! or on its way to the kernel) is dropped: the budget counts all that is
//! resident, at the price of freeing memory a run at a time.
//!
//! Each block is registered as in flight for the whole GET, so a reader
//! asking for any of them waits on that GET and never sends its own; it
//! gets its block when the whole run has arrived, and a failed GET (after
//! the client's retries) fails every waiter with its error.
//!
//! Runs are spawned tasks that run to the end once started (their blocks
//! are cached for whoever reads next); only a reader's own next read
//! starts new ones, within its window, never past the object's end. A
//! reader that stops or jumps elsewhere (window 0) starts none.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::FutureExt;
use log::debug;
use lru::LruCache;
use tokio::sync::Semaphore;

use super::budget::{MemoryBudget, Reservation};
use super::disk::{BlockName, DiskTier};
use super::pool::PoolBuffers;
use super::{BlockFuture, BlockId, ObjectVersion, lock};
use crate::cos::{BodyBuffers, CosError, CosResult, GetOptions, ObjectClient, ObjectInfo};

/// What the cache holds of one block, as far as planning goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Have {
    /// Cached in memory or in flight.
    Held,
    /// In the disk tier.
    OnDisk,
    /// Nowhere: it takes a GET.
    Missing,
}

/// The fetches a read of blocks `first..=last` starts, as ranges of block
/// indexes: every block it needs that is not held, then read-ahead up to
/// `window` blocks past `last` (never past `last_block`), cut into runs of
/// at most `run` consecutive missing blocks. A read-ahead run starts only
/// once it fits whole in the window (or ends where the object or a held
/// block does), so a reader moving one block on does not send a one-block
/// GET each time. A block on disk is a fetch of its own (from disk).
pub(super) fn plan(
    first: u64,
    last: u64,
    window: u64,
    last_block: u64,
    run: u64,
    have: impl Fn(u64) -> Have,
) -> Vec<Range<u64>> {
    let horizon = last.saturating_add(window).min(last_block);
    let run = run.max(1);
    let mut fetches = Vec::new();
    let mut i = first;
    while i <= horizon {
        match have(i) {
            Have::Held => i += 1,
            Have::OnDisk => {
                fetches.push(i..i + 1);
                i += 1;
            }
            Have::Missing => {
                let mut end = i + 1;
                while end < i + run && end <= last_block && have(end) == Have::Missing {
                    end += 1;
                }
                if i > last && end - 1 > horizon {
                    break;
                }
                fetches.push(i..end);
                i = end;
            }
        }
    }
    fetches
}

/// Blocks per run for a reader whose window is `window` blocks: half of
/// it, so that two runs are in flight ahead of a steady reader, at least
/// one and at most `max`.
pub(super) fn run_blocks(window: u64, max: u64) -> u64 {
    (window / 2).clamp(1, max.max(1))
}

/// A fetched body and the budget it holds, both given back when its last
/// slice is dropped.
struct Reserved {
    body: Bytes,
    _reservation: Reservation,
}

impl AsRef<[u8]> for Reserved {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

/// The buffer one fetch lands in, taken from the pool when its memory was
/// reserved: memory that evictions freed for this fetch goes to it, not to
/// whichever fetch's body happens to arrive first (the pool would
/// otherwise overflow and free buffers while others allocate new ones).
#[derive(Debug)]
struct RunBuffer {
    taken: Mutex<Option<Vec<u8>>>,
    pool: PoolBuffers,
}

impl RunBuffer {
    fn new(pool: &PoolBuffers, len: usize) -> RunBuffer {
        RunBuffer {
            taken: Mutex::new(pool.0.take(len)),
            pool: pool.clone(),
        }
    }
}

impl BodyBuffers for RunBuffer {
    fn buffer(&self, len: usize) -> Vec<u8> {
        match lock(&self.taken).take() {
            Some(buf) if buf.capacity() >= len => buf,
            other => {
                if let Some(buf) = other {
                    self.pool.0.give_back(buf);
                }
                self.pool.buffer(len)
            }
        }
    }

    fn freeze(&self, buf: Vec<u8>) -> Bytes {
        self.pool.freeze(buf)
    }
}

impl Drop for RunBuffer {
    fn drop(&mut self) {
        if let Some(buf) = lock(&self.taken).take() {
            self.pool.0.give_back(buf);
        }
    }
}

/// Blocks of one object version in flight, by index.
type Inflight = HashMap<BlockId, BlockFuture>;

/// The blocks a cache holds and how it fetches more; shared with the tasks
/// running its fetches.
pub(super) struct Fetcher<C> {
    pub client: Arc<C>,
    pub budget: Arc<MemoryBudget>,
    pub buffers: PoolBuffers,
    pub disk: Option<Arc<DiskTier>>,
    pub blocks: Mutex<LruCache<BlockId, Bytes>>,
    pub inflight: Mutex<Inflight>,
    /// GETs in flight ([`super::MAX_FETCHES`]).
    pub gets: Semaphore,
    /// Blocks under GETs in flight ([`super::MAX_FETCH_BYTES`]).
    pub get_blocks: Semaphore,
    /// Most permits of `get_blocks` one GET takes.
    pub get_blocks_max: u32,
    pub block_size: u64,
    /// Most blocks in one run.
    pub max_run: u64,
}

/// What a read started: the futures of the blocks it needs, and how many
/// blocks it sent fetching (`needed` of them its own).
pub(super) struct Started {
    pub needed: Vec<BlockFuture>,
    pub fetched: u64,
    pub needed_fetched: u64,
}

impl<C: ObjectClient> Fetcher<C> {
    /// Plans a read of blocks `first..=last` of `obj` with `window` blocks
    /// of read-ahead, starts the fetches it needs and returns its blocks'
    /// futures. Under the in-flight lock throughout, so a block is never
    /// fetched twice at once.
    pub fn start(
        self: &Arc<Self>,
        obj: &ObjectVersion,
        first: u64,
        last: u64,
        window: u64,
    ) -> Started {
        let last_block = (obj.size - 1) / self.block_size;
        let run = if window == 0 {
            1
        } else {
            run_blocks(window, self.max_run)
        };
        let mut inflight = lock(&self.inflight);
        let fetches = {
            let blocks = lock(&self.blocks);
            let on_disk = self
                .disk
                .as_ref()
                .map(|d| (d, BlockName::new(&obj.key, &obj.etag, 0)));
            plan(first, last, window, last_block, run, |index| {
                let id = BlockId::new(obj, index);
                if inflight.contains_key(&id) || blocks.contains(&id) {
                    Have::Held
                } else if on_disk.is_some_and(|(d, name)| d.contains(&name.at(index))) {
                    Have::OnDisk
                } else {
                    Have::Missing
                }
            })
        };
        let mut started = Started {
            needed: Vec::new(),
            fetched: 0,
            needed_fetched: 0,
        };
        for blocks in fetches {
            started.fetched += blocks.end - blocks.start;
            started.needed_fetched +=
                (blocks.end.min(last + 1)).saturating_sub(blocks.start.max(first));
            self.start_run(&mut inflight, obj, blocks);
        }
        for index in first..=last {
            let id = BlockId::new(obj, index);
            if !inflight.contains_key(&id) {
                let cached = lock(&self.blocks).get(&id).cloned();
                if let Some(data) = cached {
                    started
                        .needed
                        .push(async move { Ok(data) }.boxed().shared());
                    continue;
                }
                // Evicted since it was planned as held.
                started.fetched += 1;
                started.needed_fetched += 1;
                self.start_run(&mut inflight, obj, index..index + 1);
            }
            started.needed.push(inflight[&id].clone());
        }
        started
    }

    /// Starts fetching `blocks` of `obj` as one run: each becomes in flight
    /// (in `inflight`, which the caller holds) until the run ends.
    fn start_run(
        self: &Arc<Self>,
        inflight: &mut Inflight,
        obj: &ObjectVersion,
        blocks: Range<u64>,
    ) {
        let run = self
            .clone()
            .fetch(obj.clone(), blocks.clone())
            .boxed()
            .shared();
        for (k, index) in blocks.enumerate() {
            let run = run.clone();
            let block = async move { run.await.map(|data| data[k].clone()) };
            inflight.insert(BlockId::new(obj, index), block.boxed().shared());
        }
        tokio::spawn(run.map(drop));
    }

    /// Fetches `blocks` of `obj`, caches them, and takes them out of flight.
    async fn fetch(
        self: Arc<Self>,
        obj: ObjectVersion,
        blocks: Range<u64>,
    ) -> CosResult<Arc<[Bytes]>> {
        let fetched = self.fetch_blocks(&obj, blocks.clone()).await;
        if let Ok(data) = &fetched {
            // Cached before they leave `inflight`: a reader always finds
            // them in one or the other.
            let mut cached = lock(&self.blocks);
            for (index, data) in blocks.clone().zip(data.iter()) {
                cached.put(BlockId::new(&obj, index), data.clone());
            }
        }
        let mut inflight = lock(&self.inflight);
        for index in blocks.clone() {
            inflight.remove(&BlockId::new(&obj, index));
        }
        drop(inflight);
        let data = fetched?;
        self.budget.evictable_added();
        debug!(
            "cached blocks {blocks:?} of {:?} ({} bytes)",
            obj.key,
            data.iter().map(Bytes::len).sum::<usize>()
        );
        Ok(data)
    }

    /// The bytes of `blocks`, one slice per block of one buffer that holds
    /// its reservation: from disk for a lone block found there, else with
    /// one GET (then kept on disk too).
    async fn fetch_blocks(
        &self,
        obj: &ObjectVersion,
        blocks: Range<u64>,
    ) -> CosResult<Arc<[Bytes]>> {
        let bs = self.block_size;
        let (start, end) = (blocks.start * bs, (blocks.end * bs).min(obj.size));
        let reservation = self.budget.reserve(end - start).await;
        let buffer = Arc::new(RunBuffer::new(&self.buffers, (end - start) as usize));
        let name = BlockName::new(&obj.key, &obj.etag, blocks.start);
        let count = blocks.end - blocks.start;
        let on_disk = match &self.disk {
            Some(disk) if count == 1 => disk.read(&name, 0, (end - start) as usize, Some(&*buffer)),
            _ => None,
        };
        let body = match on_disk {
            Some(data) => data,
            None => self.get(obj, blocks.clone(), start..end, buffer).await?,
        };
        if body.len() as u64 != end - start {
            return Err(CosError::Integrity(format!(
                "blocks {blocks:?} of {:?}: got {} bytes, expected {}",
                obj.key,
                body.len(),
                end - start
            )));
        }
        let body = Bytes::from_owner(Reserved {
            body,
            _reservation: reservation,
        });
        let data = (0..count as usize)
            .map(|k| body.slice(k * bs as usize..((k + 1) * bs as usize).min(body.len())))
            .collect();
        Ok(data)
    }

    /// One GET of `blocks` of `obj` (bytes `range`) within the caps on
    /// GETs and blocks in flight; with a disk tier, the blocks are on disk
    /// before it returns, for the next reader (and the next mount).
    async fn get(
        &self,
        obj: &ObjectVersion,
        blocks: Range<u64>,
        range: Range<u64>,
        buffer: Arc<RunBuffer>,
    ) -> CosResult<Bytes> {
        let count = blocks.end - blocks.start;
        if let Some(disk) = &self.disk {
            disk.stats().misses.inc_by(count);
        }
        let opts = GetOptions {
            range: Some(range),
            if_match: Some(obj.etag.to_string()),
            buffers: Some(buffer),
        };
        let slot = self.gets.acquire().await.expect("never closed");
        let share = count.min(u64::from(self.get_blocks_max)) as u32;
        let in_flight = self
            .get_blocks
            .acquire_many(share)
            .await
            .expect("never closed");
        let body = self.client.get(&obj.key, &opts).await?.body;
        drop((slot, in_flight));
        self.keep_on_disk(obj, blocks, &body).await;
        Ok(body)
    }

    /// With a disk tier, stores `body`, the bytes of `blocks` of `obj`,
    /// there for the next reader (and the next mount).
    async fn keep_on_disk(&self, obj: &ObjectVersion, blocks: Range<u64>, body: &Bytes) {
        if let Some(disk) = self.disk.clone() {
            let name = BlockName::new(&obj.key, &obj.etag, blocks.start);
            let (body, bs) = (body.clone(), self.block_size as usize);
            let store = move || {
                for (index, chunk) in blocks.zip(body.chunks(bs)) {
                    disk.store(&name.at(index), chunk);
                }
            };
            let _ = tokio::task::spawn_blocking(store).await;
        }
    }

    /// What the object `key` is now, from a GET of its first block (no
    /// `If-Match`: whatever version is there now), which is cached as
    /// block 0 of that version. `len` is the block's length as last known,
    /// reserved before the GET; a block found longer reserves the rest.
    pub async fn fetch_first_block(&self, key: &str, len: u64) -> CosResult<ObjectInfo> {
        let len = len.clamp(1, self.block_size);
        let mut reservation = self.budget.reserve(len).await;
        let buffer = Arc::new(RunBuffer::new(&self.buffers, len as usize));
        let opts = GetOptions {
            range: Some(0..self.block_size),
            if_match: None,
            buffers: Some(buffer),
        };
        let slot = self.gets.acquire().await.expect("never closed");
        let in_flight = self.get_blocks.acquire().await.expect("never closed");
        let got = self.client.get(key, &opts).await?;
        drop((slot, in_flight));
        let obj = ObjectVersion {
            key: key.into(),
            etag: got.info.etag.as_str().into(),
            size: got.info.size,
        };
        if obj.size > 0 && got.body.len() as u64 == obj.size.min(self.block_size) {
            if got.body.len() as u64 > len {
                reservation.merge(self.budget.reserve(got.body.len() as u64 - len).await);
            }
            self.keep_on_disk(&obj, 0..1, &got.body).await;
            let block = Bytes::from_owner(Reserved {
                body: got.body,
                _reservation: reservation,
            });
            // Under the in-flight lock, as `start` plans: a block is held
            // once, in one or the other.
            let inflight = lock(&self.inflight);
            let id = BlockId::new(&obj, 0);
            if !inflight.contains_key(&id) {
                lock(&self.blocks).put(id, block);
            }
            drop(inflight);
            self.budget.evictable_added();
        }
        Ok(got.info)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;
    use crate::cache::testing::TestClient;
    use crate::cache::{BlockCache, CacheConfig, ReadAhead};
    use crate::cos::ObjectAttrs;

    const MB: u64 = 1 << 20;

    /// The runs a reader reading `blocks` blocks one at a time starts, as
    /// block ranges, with nothing cached before.
    fn sequential_runs(blocks: u64, max_window: u64, max_run: u64) -> Vec<Range<u64>> {
        let mut reader = ReadAhead::new(MB, max_window);
        let mut held = HashSet::new();
        let mut runs = Vec::new();
        for i in 0..blocks {
            let window = reader.observe(i * MB, MB);
            let have = |b| {
                if held.contains(&b) {
                    Have::Held
                } else {
                    Have::Missing
                }
            };
            let started = plan(i, i, window, blocks - 1, run_blocks(window, max_run), have);
            for r in &started {
                held.extend(r.clone());
            }
            runs.extend(started);
        }
        runs
    }

    #[test]
    fn runs_grow_with_the_window_and_stop_at_the_end() {
        let runs = sequential_runs(64, 32, 16);
        let sizes: Vec<u64> = runs.iter().map(|r| r.end - r.start).collect();
        assert_eq!(sizes, [1, 1, 1, 1, 2, 4, 8, 16, 16, 14]);
        assert!(runs.windows(2).all(|w| w[0].end == w[1].start), "{runs:?}");
        assert_eq!(
            runs.last().unwrap().end,
            64,
            "the last run ends with the object"
        );
        let long = sequential_runs(1024, 32, 16);
        assert_eq!(long.len(), 70, "a GiB in 70 GETs");
        assert_eq!(long.last().unwrap().end, 1024);
        let capped = sequential_runs(64, 32, 4);
        assert!(capped.iter().all(|r| r.end - r.start <= 4));
    }

    #[test]
    fn a_run_stops_at_held_blocks_and_disk_blocks_come_alone() {
        let have = |b: u64| match b {
            3 | 4 => Have::Held,
            6 => Have::OnDisk,
            _ => Have::Missing,
        };
        assert_eq!(plan(0, 0, 16, 100, 8, have), [0..3, 5..6, 6..7, 7..15]);
        // Read-ahead that does not fit whole in the window waits.
        assert_eq!(plan(0, 0, 10, 100, 8, have), [0..3, 5..6, 6..7]);
        // What the read needs is fetched whatever the window.
        assert_eq!(plan(9, 10, 0, 100, 1, have), [9..10, 10..11]);
        assert_eq!(plan(0, 1, 0, 100, 1, |_| Have::Held), []);
    }

    struct Setup {
        client: Arc<TestClient>,
        cache: Arc<BlockCache<TestClient>>,
        budget: Arc<MemoryBudget>,
    }

    /// A cache of `budget` bytes over objects `names` of `size` bytes each
    /// (byte `i` is `i % 251`).
    async fn setup(names: &[&str], size: u64, budget: u64) -> (Setup, Vec<ObjectVersion>) {
        let client = Arc::new(TestClient::new());
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut objects = Vec::new();
        for name in names {
            let put = client
                .put(name, Bytes::from(data.clone()), &ObjectAttrs::default())
                .await
                .unwrap();
            objects.push(ObjectVersion {
                key: (*name).into(),
                etag: put.etag.into(),
                size,
            });
        }
        let budget = Arc::new(MemoryBudget::new(budget));
        let config = CacheConfig {
            block_size: MB,
            max_prefetch: 32 * MB,
        };
        let cache = Arc::new(BlockCache::new(
            client.clone(),
            config,
            budget.clone(),
            None,
        ));
        (
            Setup {
                client,
                cache,
                budget,
            },
            objects,
        )
    }

    fn expected(offset: u64, len: u64) -> Vec<u8> {
        (offset..offset + len).map(|i| (i % 251) as u8).collect()
    }

    /// A reader whose window has grown to `window` blocks.
    fn reader_with_window(window: u64) -> Mutex<ReadAhead> {
        let mut reader = ReadAhead::new(MB, 32);
        while reader.observe(0, 1) < window {}
        Mutex::new(reader)
    }

    /// Lets spawned tasks run until `done` holds.
    async fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never happened: {what}");
    }

    #[tokio::test]
    async fn a_sequential_read_takes_few_gets_and_none_past_the_end() {
        let size = 40 * MB + 5;
        let (s, objects) = setup(&["obj"], size, 128 * MB).await;
        let obj = &objects[0];
        let reader = Mutex::new(s.cache.new_reader());
        for offset in (0..size).step_by(MB as usize) {
            let got = s.cache.read(obj, offset, MB, &reader).await.unwrap();
            assert!(got[..] == expected(offset, MB.min(size - offset))[..]);
        }
        let ranges = s.client.ranges();
        let sizes: Vec<u64> = ranges.iter().map(|r| (r.end - r.start) / MB).collect();
        assert_eq!(sizes, [1, 1, 1, 1, 2, 4, 8, 16, 6], "{ranges:?}");
        assert_eq!(
            ranges.last().unwrap().end,
            size,
            "the last GET ends with the object"
        );
        // Again, within the cache: no GET.
        let again = Mutex::new(s.cache.new_reader());
        for offset in (0..size).step_by(MB as usize) {
            s.cache.read(obj, offset, MB, &again).await.unwrap();
        }
        assert_eq!(s.client.inner.calls("get"), 9);
    }

    #[tokio::test]
    async fn a_second_reader_waits_on_the_run_in_flight() {
        let (s, objects) = setup(&["obj"], 40 * MB, 128 * MB).await;
        let obj = objects[0].clone();
        s.client.close_gate();
        let first = tokio::spawn({
            let (cache, obj) = (s.cache.clone(), obj.clone());
            async move {
                let reader = reader_with_window(8);
                cache.read(&obj, 4096, 4096, &reader).await
            }
        });
        until("two runs wait at the gate", || s.client.waiting() == 2).await;
        assert_eq!(s.client.ranges(), [0..8 * MB, 8 * MB..16 * MB]);
        // A random reader of a block in the second run joins it.
        let second = tokio::spawn({
            let (cache, obj) = (s.cache.clone(), obj.clone());
            async move {
                let reader = Mutex::new(cache.new_reader());
                cache.read(&obj, 13 * MB + 7, 100, &reader).await
            }
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!second.is_finished(), "it waits for the run");
        assert_eq!(s.client.ranges().len(), 2, "and sends no GET of its own");
        s.client.release(2);
        assert!(first.await.unwrap().unwrap()[..] == expected(4096, 4096)[..]);
        assert!(second.await.unwrap().unwrap()[..] == expected(13 * MB + 7, 100)[..]);
        assert_eq!(s.client.inner.calls("get"), 2);
    }

    #[tokio::test]
    async fn a_failed_run_fails_every_waiter_and_is_not_remembered() {
        let (s, objects) = setup(&["obj"], 8 * MB, 128 * MB).await;
        let obj = objects[0].clone();
        s.client.close_gate();
        let read = |offset: u64, reader: Mutex<ReadAhead>| {
            let (cache, obj) = (s.cache.clone(), obj.clone());
            tokio::spawn(async move { cache.read(&obj, offset, 10, &reader).await })
        };
        let first = read(0, reader_with_window(16));
        until("the run waits at the gate", || s.client.waiting() == 1).await;
        let ranges = s.client.ranges();
        assert_eq!(ranges.len(), 1, "one run…");
        assert_eq!(ranges[0], 0..8 * MB, "…to the object's end");
        let second = read(6 * MB, Mutex::new(s.cache.new_reader()));
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        let failure = CosError::service(503, "ServiceUnavailable", "try later");
        s.client.inner.fail_next("get", failure);
        s.client.release(usize::MAX >> 4);
        for waiter in [first, second] {
            let err = waiter.await.unwrap().unwrap_err();
            assert_eq!(err.status(), Some(503), "{err}");
        }
        let reader = Mutex::new(s.cache.new_reader());
        let got = s.cache.read(&obj, 6 * MB, 10, &reader).await.unwrap();
        assert!(
            got[..] == expected(6 * MB, 10)[..],
            "a new read fetches again"
        );
        assert_eq!(s.client.inner.calls("get"), 2);
    }

    #[tokio::test]
    async fn a_reader_that_jumps_starts_no_more_runs() {
        let (s, objects) = setup(&["obj"], 64 * MB, 128 * MB).await;
        let obj = &objects[0];
        let reader = Mutex::new(s.cache.new_reader());
        for i in 0..6 {
            s.cache.read(obj, i * MB, MB, &reader).await.unwrap();
        }
        let before = s.client.ranges().len();
        let got = s.cache.read(obj, 50 * MB + 3, 4096, &reader).await.unwrap();
        assert!(got[..] == expected(50 * MB + 3, 4096)[..]);
        let after = s.client.ranges();
        assert_eq!(after.len(), before + 1, "{after:?}");
        assert_eq!(after[before], 50 * MB..50 * MB + 8192, "only what it read");
    }

    #[tokio::test]
    async fn runs_stay_within_the_budget() {
        const BUDGET: u64 = 32 * MB;
        let (s, objects) = setup(&["a", "b"], 40 * MB, BUDGET).await;
        let read_all = |obj: ObjectVersion| {
            let (cache, budget) = (s.cache.clone(), s.budget.clone());
            async move {
                let reader = Mutex::new(cache.new_reader());
                for offset in (0..obj.size).step_by(MB as usize) {
                    let got = cache.read(&obj, offset, MB, &reader).await.unwrap();
                    assert!(got[..] == expected(offset, MB)[..]);
                    drop(got);
                    let resident = cache.resident_bytes();
                    let reserved = budget.total() - budget.available();
                    assert!(
                        resident <= reserved,
                        "{resident} resident, {reserved} reserved"
                    );
                    assert!(reserved <= BUDGET);
                }
            }
        };
        tokio::join!(read_all(objects[0].clone()), read_all(objects[1].clone()));
        assert!(
            s.cache.stats().evictions.get() > 0,
            "the budget was used up"
        );
        let ranges = s.client.ranges();
        assert!(
            ranges.iter().any(|r| r.end - r.start == 4 * MB),
            "runs of 4 MiB: {ranges:?}"
        );
        assert!(ranges.len() < 40, "{} GETs for 80 blocks", ranges.len());
    }
}
