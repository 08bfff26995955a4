//! The disk tier (`--cache-dir`): blocks fetched from the bucket are kept
//! on local disk too, under their own size bound (`--disk-cache-size`), so
//! the second touch of a page is local even after memory let it go or the
//! mount restarted.
//!
//! A block file is named by a hash of (key, ETag) and the block index, so a
//! changed object never matches its old blocks. Each file starts with a
//! header holding the data length and a CRC-64 per 4 KiB page; every read
//! checks the chunks it returns, and a mismatch (a flipped bit, a write torn
//! by a crash) removes the file and reads as a miss. Files are written to a
//! temporary name and renamed, and hold data only: no key, no credential.
//!
//! One mount owns a folder at a time (an `flock` on `DIR/lock`); a second
//! mount is refused with a message. A write that fails degrades the tier
//! instead of the read: a full disk shrinks the bound to what fits, any other
//! error stops writing; each says so once in the log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::os::unix::fs::{DirBuilderExt, FileExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use log::{debug, warn};
use lru::LruCache;
use prometheus_client::metrics::counter::Counter;
use sha1::{Digest, Sha1};

use crate::cos::BodyBuffers;
use crate::sync::lock;

/// Marks a block file of this layout.
const MAGIC: &[u8; 8] = b"cosmblk1";
/// Bytes covered by one checksum: a page, so a 4 KiB read checks 4 KiB.
const CHUNK: usize = 4096;
/// Most block files kept open (with their headers) for the next read of
/// the same block: a 1 GiB file in 1 MiB blocks, so a random reader's
/// second pass reads one page per read, not the header page too.
const MAX_OPEN_FILES: u64 = 1024;
/// Magic and data length.
const FIXED_HEADER: usize = 16;
/// No block is longer: a header saying more is damaged.
const MAX_BLOCK_LEN: u64 = 1 << 30;

/// Disk space for blocks unless `--disk-cache-size` says otherwise.
pub const DEFAULT_DISK_CACHE_BYTES: u64 = 10 << 30;

/// Where and how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// The folder of this mount's blocks (created 0700; its parent is
    /// created if need be and left as it is).
    pub dir: PathBuf,
    /// Most bytes of block files kept.
    pub max_bytes: u64,
}

/// What the disk tier counts.
#[derive(Clone, Debug, Default)]
pub struct DiskStats {
    /// Reads answered from disk.
    pub hits: Counter,
    /// Blocks fetched from the bucket because they were not on disk.
    pub misses: Counter,
    /// Blocks that failed their checksum (removed, then fetched again).
    pub corrupt: Counter,
    /// Blocks that could not be written.
    pub write_errors: Counter,
}

/// One block of one object version, as named on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockName {
    object: [u8; 20],
    index: u64,
}

impl BlockName {
    /// Block `index` of `key` at `etag`.
    pub fn new(key: &str, etag: &str, index: u64) -> BlockName {
        let mut h = Sha1::new();
        h.update((key.len() as u64).to_le_bytes());
        h.update(key.as_bytes());
        h.update(etag.as_bytes());
        BlockName {
            object: h.finalize().into(),
            index,
        }
    }

    /// Block `index` of the same object version.
    pub fn at(&self, index: u64) -> BlockName {
        BlockName { index, ..*self }
    }

    fn file_name(&self) -> String {
        format!("{}-{}", hex::encode(self.object), self.index)
    }

    fn parse(name: &str) -> Option<BlockName> {
        let (object, index) = name.split_once('-')?;
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(object, &mut bytes).ok()?;
        Some(BlockName {
            object: bytes,
            index: index.parse().ok()?,
        })
    }
}

/// Block files known, least recently used first out.
struct Index {
    files: LruCache<BlockName, u64>,
    bytes: u64,
}

/// The disk tier of one mount.
pub struct DiskTier {
    dir: PathBuf,
    blocks: PathBuf,
    _lock: File,
    max_bytes: AtomicU64,
    index: Mutex<Index>,
    open_files: Mutex<LruCache<BlockName, Arc<OpenBlock>>>,
    writes_off: AtomicBool,
    warned_full: AtomicBool,
    temp_names: AtomicU64,
    stats: DiskStats,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("dir", &self.dir)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl DiskTier {
    /// Opens (creating) the folder, takes its lock and learns the blocks a
    /// previous mount left there.
    pub fn open(config: &DiskConfig) -> Result<DiskTier, String> {
        let dir = &config.dir;
        let problem = |what: &str, e: io::Error| {
            format!("cache folder {}: cannot {what}: {e}", dir.display())
        };
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|e| problem("create its parent", e))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(problem("create it", e));
            }
            _ => {}
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| problem("make it private (0700)", e))?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| problem("open its lock file", e))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                format!(
                    "cache folder {} is in use by another cosmount mount: give each mount its own --cache-dir",
                    dir.display()
                )
            } else {
                problem("lock it", e)
            });
        }
        let blocks = dir.join("blocks");
        fs::create_dir_all(&blocks).map_err(|e| problem("create blocks/", e))?;
        let tier = DiskTier {
            dir: dir.clone(),
            blocks,
            _lock: lock_file,
            max_bytes: AtomicU64::new(config.max_bytes),
            index: Mutex::new(Index {
                files: LruCache::unbounded(),
                bytes: 0,
            }),
            open_files: Mutex::new(LruCache::new(open_files_cap())),
            writes_off: AtomicBool::new(false),
            warned_full: AtomicBool::new(false),
            temp_names: AtomicU64::new(0),
            stats: DiskStats::default(),
        };
        tier.learn_existing()
            .map_err(|e| problem("read what it holds", e))?;
        Ok(tier)
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its counters.
    pub fn stats(&self) -> &DiskStats {
        &self.stats
    }

    /// Bytes of block files held.
    pub fn bytes(&self) -> u64 {
        lock(&self.index).bytes
    }

    /// The bound on [`bytes`](Self::bytes) (lowered when the disk filled).
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Ordering::Relaxed)
    }

    fn path(&self, name: &BlockName) -> PathBuf {
        let file = name.file_name();
        self.blocks.join(&file[..2]).join(file)
    }

    /// Indexes the files a previous mount wrote, oldest first, and removes
    /// temporary files a crash left behind.
    fn learn_existing(&self) -> io::Result<()> {
        let mut found = Vec::new();
        for sub in fs::read_dir(&self.blocks)? {
            let sub = sub?.path();
            if !sub.is_dir() {
                continue;
            }
            for file in fs::read_dir(&sub)? {
                let file = file?;
                let path = file.path();
                let name = file.file_name();
                match name.to_str().and_then(BlockName::parse) {
                    Some(block) => {
                        let meta = file.metadata()?;
                        found.push((meta.modified()?, block, meta.len()));
                    }
                    None => {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        found.sort_by_key(|(modified, _, _)| *modified);
        let count = found.len();
        let mut index = lock(&self.index);
        for (_, block, len) in found {
            index.files.put(block, len);
            index.bytes += len;
        }
        drop(index);
        self.trim(0);
        debug!(
            "cache folder {}: {count} blocks, {} bytes",
            self.dir.display(),
            self.bytes()
        );
        Ok(())
    }

    /// Whether block `name` is on disk (unchecked: a damaged file still
    /// counts until a read finds it out).
    pub fn contains(&self, name: &BlockName) -> bool {
        lock(&self.index).files.contains(name)
    }

    /// Bytes `from..to` of a block, checked; `None` when it is not on disk
    /// or fails its checksum (then it is removed). The bytes land in a
    /// buffer from `buffers` when given (whole blocks for the memory
    /// cache), else in one of their own.
    pub fn read(
        &self,
        name: &BlockName,
        from: usize,
        to: usize,
        buffers: Option<&dyn BodyBuffers>,
    ) -> Option<Bytes> {
        lock(&self.index).files.get(name)?;
        let path = self.path(name);
        match self
            .open_block(name, &path)
            .and_then(|b| b.read(from, to, buffers))
        {
            Ok(data) => {
                self.stats.hits.inc();
                Some(data)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget(name);
                None
            }
            Err(e) => {
                warn!(
                    "cache file {} is damaged ({e}): removed, fetching the block again",
                    path.display()
                );
                self.stats.corrupt.inc();
                let _ = fs::remove_file(&path);
                self.forget(name);
                None
            }
        }
    }

    /// Block `name`, opened (and its header read) now if need be.
    fn open_block(&self, name: &BlockName, path: &Path) -> io::Result<Arc<OpenBlock>> {
        if let Some(block) = lock(&self.open_files).get(name) {
            return Ok(block.clone());
        }
        let block = Arc::new(OpenBlock::open(path)?);
        lock(&self.open_files).put(*name, block.clone());
        Ok(block)
    }

    fn forget(&self, name: &BlockName) {
        lock(&self.open_files).pop(name);
        let mut index = lock(&self.index);
        if let Some(len) = index.files.pop(name) {
            index.bytes -= len;
        }
    }

    /// Keeps `data` as block `name` (blocking file I/O: call it off the
    /// async threads). Failures degrade the tier; they are never returned.
    pub fn store(&self, name: &BlockName, data: &[u8]) {
        if self.writes_off.load(Ordering::Relaxed) || data.len() as u64 > self.max_bytes() {
            return;
        }
        let path = self.path(name);
        // Room first, so that a disk filled to the bound still takes it.
        self.trim(data.len() as u64);
        lock(&self.open_files).pop(name);
        let temp = path.with_extension(format!(
            "tmp{}",
            self.temp_names.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_block(&temp, data).and_then(|len| {
            fs::rename(&temp, &path)?;
            Ok(len)
        });
        match written {
            Ok(len) => {
                let mut index = lock(&self.index);
                if let Some(old) = index.files.put(*name, len) {
                    index.bytes -= old;
                }
                index.bytes += len;
                drop(index);
                self.trim(0);
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                self.stats.write_errors.inc();
                self.degrade(e);
            }
        }
    }

    /// One warning, then less (a full disk) or no (any other error) caching.
    fn degrade(&self, e: io::Error) {
        let dir = self.dir.display();
        if e.raw_os_error() == Some(libc::ENOSPC) {
            let held = self.bytes();
            let old = self.max_bytes.fetch_min(held, Ordering::Relaxed);
            if !self.warned_full.swap(true, Ordering::Relaxed) {
                warn!(
                    "cache folder {dir}: the disk is full; keeping at most {held} bytes there (was {old}), reads go on"
                );
            } else {
                debug!("cache folder {dir}: still full, now at most {held} bytes");
            }
            return;
        }
        if !self.writes_off.swap(true, Ordering::Relaxed) {
            warn!(
                "cache folder {dir}: cannot write blocks ({e}); no longer caching on disk, reads go on from memory and the bucket"
            );
        }
    }

    /// Removes least recently used files until `room` more bytes fit.
    fn trim(&self, room: u64) {
        let max = self.max_bytes().saturating_sub(room);
        loop {
            let mut index = lock(&self.index);
            if index.bytes <= max {
                return;
            }
            let Some((name, len)) = index.files.pop_lru() else {
                return;
            };
            index.bytes -= len;
            drop(index);
            lock(&self.open_files).pop(&name);
            let _ = fs::remove_file(self.path(&name));
        }
    }
}

/// Writes header and data to a new file; returns the file's length.
fn write_block(path: &Path, data: &[u8]) -> io::Result<u64> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut header = Vec::with_capacity(FIXED_HEADER + 8 * data.len().div_ceil(CHUNK));
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for chunk in data.chunks(CHUNK) {
        header.extend_from_slice(&crc64(chunk).to_le_bytes());
    }
    let mut file = File::create(path)?;
    file.write_all(&header)?;
    file.write_all(data)?;
    Ok((header.len() + data.len()) as u64)
}

/// An open block file and its header (length and page checksums).
struct OpenBlock {
    file: File,
    len: usize,
    crcs: Vec<u8>,
}

impl OpenBlock {
    /// Opens a block file and reads its header (one page for 1 MiB).
    fn open(path: &Path) -> io::Result<OpenBlock> {
        let file = File::open(path)?;
        let mut fixed = [0u8; FIXED_HEADER];
        file.read_exact_at(&mut fixed, 0)
            .map_err(|_| damaged("short header"))?;
        if &fixed[..8] != MAGIC {
            return Err(damaged("not a block file"));
        }
        let len = u64::from_le_bytes(fixed[8..].try_into().expect("8 bytes"));
        if len > MAX_BLOCK_LEN {
            return Err(damaged("impossible length"));
        }
        let len = len as usize;
        let mut crcs = vec![0u8; 8 * len.div_ceil(CHUNK)];
        file.read_exact_at(&mut crcs, FIXED_HEADER as u64)
            .map_err(|_| damaged("short checksums"))?;
        Ok(OpenBlock { file, len, crcs })
    }

    /// Reads `from..to` of the data, checking every page it touches.
    fn read(&self, from: usize, to: usize, buffers: Option<&dyn BodyBuffers>) -> io::Result<Bytes> {
        if from >= to || to > self.len {
            return Err(damaged("shorter than the block"));
        }
        let (first, last) = (from / CHUNK, (to - 1) / CHUNK);
        let data_start = FIXED_HEADER + self.crcs.len();
        let span = (first * CHUNK)..((last + 1) * CHUNK).min(self.len);
        let mut data = match buffers {
            Some(b) => b.buffer(span.len()),
            None => Vec::with_capacity(span.len()),
        };
        data.resize(span.len(), 0);
        self.file
            .read_exact_at(&mut data, (data_start + span.start) as u64)
            .map_err(|_| damaged("short data"))?;
        let crcs = &self.crcs[8 * first..8 * (last + 1)];
        for (chunk, crc) in data.chunks(CHUNK).zip(crcs.chunks(8)) {
            if crc64(chunk).to_le_bytes() != crc {
                return Err(damaged("checksum mismatch"));
            }
        }
        let data = match buffers {
            Some(b) => b.freeze(data),
            None => Bytes::from(data),
        };
        Ok(data.slice((from - span.start)..(to - span.start)))
    }
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// How many block files may stay open: up to [`MAX_OPEN_FILES`], raising
/// the soft descriptor limit toward the hard one first, and never more
/// than a quarter of what the limit then allows (sockets, staging files
/// and the FUSE device need the rest).
fn open_files_cap() -> NonZeroUsize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            let wanted = limit.rlim_max.min(4 * MAX_OPEN_FILES + 1024);
            if wanted > limit.rlim_cur {
                let raised = libc::rlimit {
                    rlim_cur: wanted,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = wanted;
                }
            }
        }
    }
    let cap = (limit.rlim_cur / 4).clamp(16, MAX_OPEN_FILES);
    NonZeroUsize::new(cap as usize).expect("at least 16")
}

fn crc64(data: &[u8]) -> u64 {
    let mut digest = crc64fast::Digest::new();
    digest.write(data);
    digest.sum64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(dir: &Path, max: u64) -> DiskTier {
        DiskTier::open(&DiskConfig {
            dir: dir.to_path_buf(),
            max_bytes: max,
        })
        .unwrap()
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn blocks_read_back_in_any_range_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let name = BlockName::new("a/b", "\"etag\"", 3);
        let block = data(CHUNK * 3 + 100);
        {
            let t = tier(dir.path(), 1 << 30);
            t.store(&name, &block);
            for (from, to) in [(0, block.len()), (5, 4101), (CHUNK - 1, CHUNK + 1)] {
                assert_eq!(
                    &t.read(&name, from, to, None).unwrap()[..],
                    &block[from..to]
                );
            }
            assert!(
                t.read(&BlockName::new("a/b", "\"other\"", 3), 0, 1, None)
                    .is_none()
            );
        }
        let again = tier(dir.path(), 1 << 30);
        assert_eq!(
            again.bytes(),
            std::fs::metadata(again.path(&name)).unwrap().len()
        );
        assert_eq!(&again.read(&name, 0, 10, None).unwrap()[..], &block[..10]);
    }

    #[test]
    fn a_flipped_byte_is_detected_and_the_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 1 << 30);
        let name = BlockName::new("k", "e", 0);
        t.store(&name, &data(CHUNK * 2));
        let path = t.path(&name);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(
            t.read(&name, 0, 10, None).is_some(),
            "the first chunk is intact"
        );
        assert!(t.read(&name, CHUNK, CHUNK + 10, None).is_none());
        assert_eq!(t.stats().corrupt.get(), 1);
        assert!(!path.exists());
        assert_eq!(t.bytes(), 0);
    }

    #[test]
    fn the_bound_holds_and_the_oldest_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let block = data(1000);
        let t = tier(dir.path(), 3500);
        for i in 0..10 {
            t.store(&BlockName::new("k", "e", i), &block);
        }
        assert!(t.bytes() <= 3500);
        assert!(t.read(&BlockName::new("k", "e", 0), 0, 1, None).is_none());
        assert!(t.read(&BlockName::new("k", "e", 9), 0, 1, None).is_some());
    }

    #[test]
    fn a_second_mount_of_one_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = tier(dir.path(), 1 << 20);
        let err = DiskTier::open(&DiskConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: 1 << 20,
        })
        .unwrap_err();
        assert!(err.contains("in use by another cosmount mount"), "{err}");
    }
}
