//! Reads: a block cache keyed by (key, ETag, block index), bounded by the
//! shared [`MemoryBudget`], with read-ahead for sequential readers.
//! Keying by ETag means a changed object never serves stale blocks, and
//! every GET carries `If-Match`, so one read never mixes versions.
//! Concurrent requests for the same block share one GET. A sequential
//! reader's missing blocks are fetched in runs, several blocks to a GET
//! ([`run`]); a random reader's one at a time, or only the bytes it asked
//! for. With a disk tier ([`DiskTier`]), every fetched block is also
//! written there, blocks leave memory to be found on disk, and random
//! readers fetch whole blocks so that their next touch of the same block
//! is local.

pub mod budget;
pub mod disk;
pub mod pool;
pub mod readahead;
mod run;
#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, Shared};
use lru::LruCache;
use prometheus_client::metrics::counter::Counter;

use crate::cos::{CosError, CosResult, GetOptions, ObjectClient, ObjectInfo};
pub use budget::{MemoryBudget, Reservation};
use disk::BlockName;
pub use disk::{DEFAULT_DISK_CACHE_BYTES, DiskConfig, DiskStats, DiskTier};
use pool::{BufferPool, PoolBuffers};
pub use readahead::ReadAhead;
use run::Fetcher;

/// Sizes of the read path.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Bytes per block (and per ranged GET).
    pub block_size: u64,
    /// Most bytes one reader prefetches ahead.
    pub max_prefetch: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            block_size: 1 << 20,
            max_prefetch: 32 << 20,
        }
    }
}

/// One version of one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectVersion {
    /// Key.
    pub key: Arc<str>,
    /// ETag: blocks of other versions never match.
    pub etag: Arc<str>,
    /// Size in bytes.
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BlockId {
    key: Arc<str>,
    etag: Arc<str>,
    index: u64,
}

impl BlockId {
    fn new(obj: &ObjectVersion, index: u64) -> BlockId {
        BlockId {
            key: obj.key.clone(),
            etag: obj.etag.clone(),
            index,
        }
    }
}

type BlockFuture = Shared<BoxFuture<'static, CosResult<Bytes>>>;

/// GETs of blocks in flight at once, over all readers: each connection
/// holds a read buffer of up to ~400 KiB (hyper's), so 128 GETs in flight
/// would cost ~50 MiB beyond the budget; 32 keep the loopback pipe as full
/// with one-block GETs (random readers with a disk tier).
const MAX_FETCHES: usize = 32;

/// Bytes under GETs in flight at once, over all readers (whose reservations
/// already bound them; this bounds what one mount asks of the server at a
/// time): four 16 MiB runs, twice what fills the loopback pipe to SeaweedFS
/// or `cosmount serve` (8 MiB GETs, 4 in flight), so a block a reader needs
/// now waits behind at most ~64 MiB of read-ahead.
const MAX_FETCH_BYTES: u64 = 64 << 20;

/// Most bytes one GET of a run fetches (and the client's largest
/// preallocated body): past ~8 MiB a GET's own cost is noise, and a reader
/// waits for a whole run before its first block of it.
const MAX_RUN_BYTES: u64 = 16 << 20;

/// A run takes at most this share of the budget, so runs in flight can
/// never reserve it all.
const RUN_SHARE: u64 = 8;

/// Most idle block memory kept for reuse, at least: the churn between an
/// eviction and the next fetch, which takes the freed buffer at once (held
/// from the budget, see [`BufferPool`]); one largest run when more.
const MAX_IDLE_BLOCK_BYTES: u64 = 4 << 20;

/// Locks `m`, whatever a panicking holder left (the maps stay consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A reader that prefetched this recently shares the budget with the others.
const PREFETCHING_FOR: Duration = Duration::from_secs(1);

/// What the block cache counts.
#[derive(Clone, Debug, Default)]
pub struct CacheStats {
    /// Blocks found cached (or already being fetched by another reader).
    pub hits: Counter,
    /// Blocks fetched, and random reads sent past the cache.
    pub misses: Counter,
    /// Blocks given back under memory pressure.
    pub evictions: Counter,
}

/// The block cache.
pub struct BlockCache<C> {
    fetcher: Arc<Fetcher<C>>,
    stats: CacheStats,
    config: CacheConfig,
    budget: Arc<MemoryBudget>,
    pool: Arc<BufferPool>,
    /// When each sequential reader last asked for read-ahead.
    prefetchers: Mutex<HashMap<u64, Instant>>,
}

impl<C: ObjectClient> BlockCache<C> {
    /// A cache over `client` drawing memory from `budget`, backed by
    /// `disk` when there is one.
    pub fn new(
        client: Arc<C>,
        config: CacheConfig,
        budget: Arc<MemoryBudget>,
        disk: Option<Arc<DiskTier>>,
    ) -> BlockCache<C> {
        let bs = config.block_size.max(1);
        let max_run = (MAX_RUN_BYTES.min(budget.total() / RUN_SHARE) / bs).max(1);
        let pool = BufferPool::sized(
            &budget,
            bs as usize,
            (max_run * bs) as usize,
            MAX_IDLE_BLOCK_BYTES.max(max_run * bs) as usize,
        );
        let get_blocks = (MAX_FETCH_BYTES / bs).max(max_run);
        let fetcher = Arc::new(Fetcher {
            client,
            budget: budget.clone(),
            buffers: PoolBuffers(pool.clone()),
            disk,
            blocks: Mutex::new(LruCache::unbounded()),
            inflight: Mutex::new(HashMap::new()),
            gets: tokio::sync::Semaphore::new(MAX_FETCHES),
            get_blocks: tokio::sync::Semaphore::new(get_blocks as usize),
            get_blocks_max: get_blocks.min(u64::from(u32::MAX)) as u32,
            block_size: bs,
            max_run,
        });
        let stats = CacheStats::default();
        let evictable = Arc::downgrade(&fetcher);
        let evictions = stats.evictions.clone();
        budget.set_evictor(Box::new(move || {
            let evicted = evictable
                .upgrade()
                .is_some_and(|f| lock(&f.blocks).pop_lru().is_some());
            if evicted {
                evictions.inc();
            }
            evicted
        }));
        BlockCache {
            fetcher,
            stats,
            config,
            budget,
            pool,
            prefetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Bytes per block.
    pub fn block_size(&self) -> u64 {
        self.config.block_size
    }

    /// The disk tier, if any.
    pub fn disk(&self) -> Option<&DiskTier> {
        self.fetcher.disk.as_deref()
    }

    /// Bytes of the blocks held now.
    pub fn held_bytes(&self) -> u64 {
        let blocks = lock(&self.fetcher.blocks);
        blocks.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Bytes of block memory alive now: cached blocks, blocks just fetched
    /// and not yet dropped by their readers, and idle buffers kept for
    /// reuse (a run's whole buffer while any of its blocks lives).
    pub fn resident_bytes(&self) -> u64 {
        self.pool.loaned_bytes() + self.pool.idle_bytes()
    }

    /// A fresh read-ahead state for a new reader (its window is held to its
    /// share of the budget by `share_window`).
    pub fn new_reader(&self) -> ReadAhead {
        let max_window = self.config.max_prefetch / self.config.block_size;
        ReadAhead::new(self.config.block_size, max_window)
    }

    /// Reads up to `len` bytes at `offset` of `obj`, prefetching as the
    /// reader's pattern suggests.
    pub async fn read(
        &self,
        obj: &ObjectVersion,
        offset: u64,
        len: u64,
        reader: &Mutex<ReadAhead>,
    ) -> CosResult<Bytes> {
        if offset >= obj.size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + len).min(obj.size);
        let bs = self.config.block_size;
        let (first, last) = (offset / bs, (end - 1) / bs);
        let (reader_id, window) = {
            let mut reader = lock(reader);
            (reader.id(), reader.observe(offset, end - offset))
        };
        let window = self.share_window(reader_id, window);
        if window == 0 && !self.is_held(obj, first..=last) {
            match &self.fetcher.disk {
                // A random reader: fetch what it asked for, not whole blocks.
                None => return self.read_exact_range(obj, offset, end).await,
                Some(disk) => {
                    if let Some(data) = read_from_disk(disk, obj, offset, end, bs) {
                        return Ok(data);
                    }
                    // Else whole blocks, kept on disk for the next touch.
                }
            }
        }
        let started = self.fetcher.start(obj, first, last, window);
        self.stats.misses.inc_by(started.fetched);
        self.stats
            .hits
            .inc_by(last - first + 1 - started.needed_fetched);
        let mut out = BytesMut::new();
        let mut single = None;
        for (i, fut) in (first..=last).zip(started.needed) {
            let data = fut.await?;
            let block_start = i * bs;
            let from = (offset.max(block_start) - block_start) as usize;
            let to = ((end - block_start) as usize).min(data.len());
            if from > to {
                return Err(CosError::Integrity(format!(
                    "block {i} of {:?} is short",
                    obj.key
                )));
            }
            if first == last {
                single = Some(data.slice(from..to));
            } else {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(single.unwrap_or_else(|| out.freeze()))
    }

    /// Caps `window` so that the readers prefetching at once share half the
    /// budget: prefetched blocks must not push out each other's before they
    /// are read (four readers of a 64 MiB cache would otherwise refetch
    /// the same blocks over and over).
    fn share_window(&self, reader_id: u64, window: u64) -> u64 {
        let mut prefetchers = lock(&self.prefetchers);
        if window == 0 {
            prefetchers.remove(&reader_id);
            return 0;
        }
        let now = Instant::now();
        prefetchers.insert(reader_id, now);
        prefetchers.retain(|_, last| now.duration_since(*last) < PREFETCHING_FOR);
        let share = self.budget.total() / 2 / self.config.block_size / prefetchers.len() as u64;
        window.min(share.max(1))
    }

    /// Whether every block in `blocks` is cached or already being fetched.
    fn is_held(&self, obj: &ObjectVersion, blocks: std::ops::RangeInclusive<u64>) -> bool {
        let inflight = lock(&self.fetcher.inflight);
        let cached = lock(&self.fetcher.blocks);
        blocks.into_iter().all(|index| {
            let id = BlockId::new(obj, index);
            inflight.contains_key(&id) || cached.contains(&id)
        })
    }

    /// What the object `key` is now, from one GET of its first block
    /// (`len` bytes as last known) instead of a HEAD: the block is what an
    /// open for reading asks for next, and is cached for it.
    pub async fn fetch_first_block(&self, key: &str, len: u64) -> CosResult<ObjectInfo> {
        self.stats.misses.inc();
        self.fetcher.fetch_first_block(key, len).await
    }

    /// Whether the first block of `obj` is cached, being fetched, or on
    /// disk.
    pub fn holds_first_block(&self, obj: &ObjectVersion) -> bool {
        let on_disk = |disk: &Arc<DiskTier>| disk.contains(&BlockName::new(&obj.key, &obj.etag, 0));
        self.is_held(obj, 0..=0) || self.fetcher.disk.as_ref().is_some_and(on_disk)
    }

    /// One GET of `offset..end`, widened to 4 KiB pages, not cached.
    async fn read_exact_range(
        &self,
        obj: &ObjectVersion,
        offset: u64,
        end: u64,
    ) -> CosResult<Bytes> {
        const PAGE: u64 = 4096;
        let start = offset / PAGE * PAGE;
        let stop = end.next_multiple_of(PAGE).min(obj.size);
        self.stats.misses.inc();
        let opts = GetOptions {
            range: Some(start..stop),
            if_match: Some(obj.etag.to_string()),
            buffers: None,
        };
        let body = self.fetcher.client.get(&obj.key, &opts).await?.body;
        let (from, to) = ((offset - start) as usize, (end - start) as usize);
        if body.len() < to {
            return Err(CosError::Integrity(format!(
                "range {start}..{stop} of {:?} is short",
                obj.key
            )));
        }
        Ok(body.slice(from..to))
    }

    /// Drops every cached block of `key` (after it was changed here).
    pub fn invalidate(&self, key: &str) {
        let mut blocks = lock(&self.fetcher.blocks);
        let stale: Vec<BlockId> = blocks
            .iter()
            .filter(|(id, _)| &*id.key == key)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            blocks.pop(&id);
        }
    }
}

/// Bytes `offset..end` of `obj` from the disk tier, if every block they
/// touch is there.
fn read_from_disk(
    disk: &DiskTier,
    obj: &ObjectVersion,
    offset: u64,
    end: u64,
    block_size: u64,
) -> Option<Bytes> {
    let (first, last) = (offset / block_size, (end - 1) / block_size);
    let mut out = BytesMut::new();
    for index in first..=last {
        let block_start = index * block_size;
        let from = offset.max(block_start) - block_start;
        let to = end.min(block_start + block_size) - block_start;
        let name = BlockName::new(&obj.key, &obj.etag, index);
        let data = disk.read(&name, from as usize, to as usize, None)?;
        if first == last {
            return Some(data);
        }
        out.extend_from_slice(&data);
    }
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::ObjectAttrs;
    use crate::cos::memory::MemoryClient;

    const MB: u64 = 1 << 20;

    async fn setup(
        size: usize,
        budget: u64,
    ) -> (Arc<MemoryClient>, BlockCache<MemoryClient>, ObjectVersion) {
        let client = Arc::new(MemoryClient::new());
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let put = client
            .put("obj", Bytes::from(data), &ObjectAttrs::default())
            .await
            .unwrap();
        let cache = BlockCache::new(
            client.clone(),
            CacheConfig {
                block_size: MB,
                max_prefetch: 4 * MB,
            },
            Arc::new(MemoryBudget::new(budget)),
            None,
        );
        let obj = ObjectVersion {
            key: "obj".into(),
            etag: put.etag.into(),
            size: size as u64,
        };
        (client, cache, obj)
    }

    fn expected(offset: u64, len: u64) -> Vec<u8> {
        (offset..offset + len).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn reads_across_blocks_and_past_the_end() {
        let (_, cache, obj) = setup(3 * MB as usize + 10, 16 * MB).await;
        let r = Mutex::new(cache.new_reader());
        let got = cache.read(&obj, MB - 5, 10, &r).await.unwrap();
        assert_eq!(&got[..], &expected(MB - 5, 10)[..]);
        let tail = cache.read(&obj, 3 * MB, 100, &r).await.unwrap();
        assert_eq!(&tail[..], &expected(3 * MB, 10)[..]);
        assert!(cache.read(&obj, 4 * MB, 1, &r).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn cached_blocks_are_not_fetched_again() {
        let (client, cache, obj) = setup(2 * MB as usize, 16 * MB).await;
        let r = Mutex::new(cache.new_reader());
        cache.read(&obj, 10, 10, &r).await.unwrap();
        let gets = client.calls("get");
        let r2 = Mutex::new(cache.new_reader());
        cache.read(&obj, 100, 10, &r2).await.unwrap();
        assert_eq!(client.calls("get"), gets);
    }

    #[tokio::test]
    async fn random_reads_fetch_only_what_they_ask_for() {
        let (client, cache, obj) = setup(8 * MB as usize, 16 * MB).await;
        let r = Mutex::new(cache.new_reader());
        cache.read(&obj, 0, 10, &r).await.unwrap(); // offset 0 counts as sequential
        let before = client.calls("get");
        for offset in [5 * MB + 3, 2 * MB + 100, 7 * MB] {
            let got = cache.read(&obj, offset, 4096, &r).await.unwrap();
            assert_eq!(&got[..], &expected(offset, 4096)[..]);
        }
        assert_eq!(
            client.calls("get") - before,
            3,
            "one small GET per random read"
        );
        let cached: Vec<u64> = cache
            .fetcher
            .blocks
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.index)
            .collect();
        assert!(
            cached.iter().all(|i| *i <= 1),
            "random reads cache no block: {cached:?}"
        );
    }

    #[tokio::test]
    async fn a_changed_object_fails_instead_of_mixing() {
        let (client, cache, obj) = setup(2 * MB as usize, 16 * MB).await;
        client
            .put("obj", Bytes::from_static(b"new"), &ObjectAttrs::default())
            .await
            .unwrap();
        let r = Mutex::new(cache.new_reader());
        let err = cache.read(&obj, 0, 10, &r).await.unwrap_err();
        assert_eq!(err.status(), Some(412));
    }

    #[tokio::test]
    async fn with_a_disk_tier_random_reads_are_local_the_second_time() {
        let (client, _, obj) = setup(8 * MB as usize, 16 * MB).await;
        let dir = tempfile::tempdir().unwrap();
        let disk_config = DiskConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: 64 * MB,
        };
        let offsets = [5 * MB + 3, 2 * MB + 100, 7 * MB, MB - 10];
        let new_cache = |disk| {
            BlockCache::new(
                client.clone(),
                CacheConfig {
                    block_size: MB,
                    max_prefetch: 4 * MB,
                },
                Arc::new(MemoryBudget::new(16 * MB)),
                Some(Arc::new(disk)),
            )
        };
        let first = new_cache(DiskTier::open(&disk_config).unwrap());
        let r = Mutex::new(first.new_reader());
        first.read(&obj, 0, 10, &r).await.unwrap(); // offset 0 counts as sequential
        for offset in offsets {
            let got = first.read(&obj, offset, 4096, &r).await.unwrap();
            assert_eq!(&got[..], &expected(offset, 4096)[..]);
        }
        drop(first);
        let gets = client.calls("get");
        let second = new_cache(DiskTier::open(&disk_config).unwrap());
        let r = Mutex::new(second.new_reader());
        second.read(&obj, 0, 10, &r).await.unwrap();
        for offset in offsets {
            let got = second.read(&obj, offset, 4096, &r).await.unwrap();
            assert_eq!(&got[..], &expected(offset, 4096)[..]);
        }
        assert_eq!(client.calls("get"), gets, "every block came from disk");
        assert!(second.disk().unwrap().stats().hits.get() >= 4);
    }

    #[tokio::test]
    async fn stays_within_the_budget() {
        let (_, cache, obj) = setup(40 * MB as usize, 4 * MB).await;
        let r = Mutex::new(cache.new_reader());
        for i in 0..40 {
            let got = cache.read(&obj, i * MB, MB, &r).await.unwrap();
            assert_eq!(got.len() as u64, MB);
            assert!(cache.held_bytes() <= 4 * MB);
        }
    }
}
