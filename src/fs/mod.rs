//! The filesystem core: plain async Rust over an [`ObjectClient`], driven by
//! the FUSE adapter (`fuse.rs`) and by tests without a kernel. It owns the
//! inode table, open handles and the read cache, and maps names to keys.

pub mod attr;
pub mod dir;
pub mod error;
mod gauges;
mod handles;
pub mod head_window;
pub mod inode;
mod kept;
mod lookup;
mod marker_meta;
mod namespace;
mod read;
mod readdir;
mod rename;
mod snapshot;
mod write;
mod write_table;
pub mod xattr;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, warn};

use crate::cache::pool::{BufferPool, PoolBuffers};
use crate::cache::{BlockCache, CacheConfig, DiskConfig, DiskTier, MemoryBudget};
use crate::cos::{GetOptions, ObjectClient, ObjectInfo};
use crate::sync::lock;
use crate::upload::UploadConfig;
use crate::upload::staged::StagingArea;
use attr::{Attr, Kind, Ownership};
pub use attr::{SetAttr, SetIdBits};
pub use error::{FsError, FsResult};
pub use gauges::FsGauges;
use handles::OpenFile;
use inode::{InodeTable, ROOT_INO};
use readdir::DirHandle;
use write::WriteState;

/// How the filesystem behaves; built from the mount options.
#[derive(Clone, Debug)]
pub struct FsConfig {
    /// Key prefix mounted as the root (`""` or ending in `/`).
    pub prefix: String,
    /// Owner and permissions of nodes without metadata.
    pub ownership: Ownership,
    /// How long attributes and listings are trusted.
    pub metadata_ttl: Duration,
    /// How long a name known not to exist is trusted.
    pub negative_ttl: Duration,
    /// Take attributes from listings only (no HEAD per entry).
    pub fast_list: bool,
    /// Refuse every change.
    pub read_only: bool,
    /// Never list (static-website endpoints): names are found by HEAD of
    /// `key` and of the marker `key/` only, and a directory shows only the
    /// names looked up so far.
    pub no_listing: bool,
    /// Most HEADs in flight at once for listings (the window learns its
    /// size up to this, see [`head_window`]).
    pub head_concurrency: usize,
    /// Read path sizes.
    pub cache: CacheConfig,
    /// Memory budget for read blocks and write buffers.
    pub memory_bytes: u64,
    /// The disk tier of the read cache (`--cache-dir`), off when `None`.
    pub disk_cache: Option<DiskConfig>,
    /// Write path sizes.
    pub upload: UploadConfig,
    /// Folder for staging files.
    pub staging_dir: PathBuf,
    /// Most bytes held in staging files.
    pub staging_bytes: u64,
    /// Serve extended attributes (off: `noxattr`, the kernel stops asking).
    pub xattrs: bool,
    /// `open` asks the bucket whether the file changed, whatever the TTL
    /// (off: `nocto`).
    pub close_to_open: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            prefix: String::new(),
            ownership: Ownership::default(),
            metadata_ttl: Duration::from_secs(1),
            negative_ttl: Duration::from_millis(500),
            fast_list: false,
            read_only: false,
            no_listing: false,
            head_concurrency: 256,
            cache: CacheConfig::default(),
            memory_bytes: 128 << 20,
            disk_cache: None,
            upload: UploadConfig::default(),
            staging_dir: std::env::temp_dir().join("cosmount-staging"),
            staging_bytes: 16 << 30,
            xattrs: true,
            close_to_open: true,
        }
    }
}

/// A node and its attributes, as lookup and readdirplus report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Inode number.
    pub ino: u64,
    /// Attributes.
    pub attr: Attr,
}

/// One directory entry; `offset` is what the kernel passes back to continue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Name.
    pub name: String,
    /// The node.
    pub entry: Entry,
    /// Offset of the entry after this one.
    pub offset: u64,
}

/// What `open` tells the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// File handle.
    pub fh: u64,
    /// The object did not change since the last open: keep the page cache.
    pub keep_cache: bool,
    /// The object changed since the kernel last saw it (another client
    /// wrote it): the kernel's cached size and times are stale.
    pub changed: bool,
}

/// Where a write landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub len: u32,
    /// Offset they were written at: the end of the file for `O_APPEND`,
    /// whatever offset the kernel sent.
    pub offset: u64,
}

/// What `open(O_CREAT)` asked besides creating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateFlags {
    /// `O_EXCL`: fail if the name exists.
    pub exclusive: bool,
    /// `O_TRUNC`: an existing file is emptied.
    pub truncate: bool,
}

/// How a file is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenMode {
    /// Opened for writing (write-only or read-write).
    pub write: bool,
    /// `O_TRUNC`: start from an empty file.
    pub truncate: bool,
    /// `O_APPEND`: every write goes to the end of the file as this mount
    /// knows it (the kernel's idea of the end is stale after another
    /// client wrote the file).
    pub append: bool,
    /// The process opening, when known: if its lookup of the file just
    /// asked the bucket, that answer is the open's close-to-open check.
    pub caller: Option<u32>,
    /// What a truncating open does to the set-ID bits.
    pub set_id: SetIdBits,
}

/// Who asks (for new nodes' owner).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// uid of the calling process.
    pub uid: u32,
    /// gid of the calling process.
    pub gid: u32,
}

/// Filesystem statistics (statfs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub free: u64,
    /// Block size.
    pub block_size: u32,
    /// Total inodes.
    pub files: u64,
    /// Longest name.
    pub name_max: u32,
}

type SharedWrite<C> = Arc<tokio::sync::Mutex<WriteState<C>>>;

/// The filesystem.
pub struct Fs<C> {
    client: Arc<C>,
    config: FsConfig,
    inodes: Mutex<InodeTable>,
    budget: Arc<MemoryBudget>,
    cache: BlockCache<C>,
    staging: Arc<StagingArea>,
    /// Whole-part buffers of streaming uploads, recycled.
    part_buffers: PoolBuffers,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<DirHandle>>>>,
    /// Files with changes in progress (open for writing, or being uploaded).
    writes: write_table::WriteTable<C>,
    /// Open handles per inode, to delay the DELETE of an unlinked open file.
    open_counts: Mutex<HashMap<u64, usize>>,
    /// Inodes unlinked while open, with their key: deleted at the last close.
    pending_deletes: Mutex<HashMap<u64, String>>,
    /// Inodes whose page cache matches this ETag (for `keep_cache`).
    cached_etags: Mutex<HashMap<u64, String>>,
    /// Recent snapshots of directories' names (free-name questions).
    snapshots: snapshot::Snapshots,
    /// Listing HEADs in flight.
    head_window: head_window::HeadWindow,
    /// Whether the server keeps folder markers' metadata.
    marker_meta: marker_meta::MarkerMetaWatch,
    next_handle: AtomicU64,
    warned: Mutex<HashSet<String>>,
    started: SystemTime,
}

impl<C: ObjectClient> Fs<C> {
    /// A filesystem over `client`; fails, with a message naming the
    /// folder, when the staging folder or the cache folder is unusable.
    pub fn new(client: Arc<C>, mut config: FsConfig) -> Result<Fs<C>, String> {
        if !config.prefix.is_empty() && !config.prefix.ends_with('/') {
            config.prefix.push('/');
        }
        let started = SystemTime::now();
        let budget = Arc::new(MemoryBudget::new(config.memory_bytes));
        let staging = StagingArea::new(&config.staging_dir, config.staging_bytes).map_err(|e| {
            format!(
                "cannot use staging folder {}: {e}",
                config.staging_dir.display()
            )
        })?;
        let disk = match &config.disk_cache {
            Some(disk) => Some(Arc::new(DiskTier::open(disk)?)),
            None => None,
        };
        let root = InodeTable::new(
            &config.prefix,
            config.ownership.dir(started),
            Instant::now(),
        );
        let head_window = head_window::HeadWindow::new(config.head_concurrency);
        Ok(Fs {
            cache: BlockCache::new(client.clone(), config.cache.clone(), budget.clone(), disk),
            // One idle part (held from the budget) is what a streaming
            // upload cycles through: the part just sent becomes the next.
            part_buffers: PoolBuffers(BufferPool::new(
                &budget,
                config.upload.part_size as usize,
                1,
            )),
            budget,
            staging,
            client,
            config,
            inodes: Mutex::new(root),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            writes: write_table::WriteTable::default(),
            open_counts: Mutex::new(HashMap::new()),
            pending_deletes: Mutex::new(HashMap::new()),
            cached_etags: Mutex::new(HashMap::new()),
            snapshots: snapshot::Snapshots::default(),
            head_window,
            marker_meta: marker_meta::MarkerMetaWatch::new(),
            next_handle: AtomicU64::new(1),
            warned: Mutex::new(HashSet::new()),
            started,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        lock(&self.inodes).forget(ino, n);
    }

    /// Current attributes of `ino`, revalidated with HEAD when expired.
    pub async fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let (key, attr) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            let trusted = node.pending
                || (node.is_fresh(Instant::now()) && (node.exact || self.config.fast_list));
            if node.attr.kind == Kind::Dir || trusted {
                return Ok(node.attr);
            }
            (node.key.clone(), node.attr)
        };
        let info = match self.client.head(&key).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => {
                debug!("{key:?} vanished; keeping its last attributes for open handles");
                return Ok(attr);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(self.refresh_node(ino, &info))
    }

    /// Stores fresh HEAD results in the node and returns its attributes.
    fn refresh_node(&self, ino: u64, info: &ObjectInfo) -> Attr {
        let child = self.file_info(info);
        let mut t = lock(&self.inodes);
        let until = Instant::now() + self.config.metadata_ttl;
        match t.get_mut(ino) {
            Some(node) if node.pending => node.attr,
            Some(node) if node.attr.kind == child.attr.kind => {
                // Still the object as this mount wrote it: the same version
                // with the same metadata (another client's metadata change
                // keeps the ETag).
                let as_written = node.own_headers(Instant::now()).is_some_and(|w| {
                    node.etag.as_deref() == Some(info.etag.as_str())
                        && w.meta == info.meta
                        && w.content_type == info.content_type
                });
                node.own_object = as_written;
                node.attr = child.attr;
                node.etag = child.etag;
                node.modified = child.modified;
                node.exact = true;
                node.xattrs = child.xattrs;
                node.storage_class = child.storage_class;
                node.kept = child.kept;
                node.valid_until = until;
                node.attr
            }
            _ => child.attr,
        }
    }

    /// The target of symlink `ino`.
    pub async fn readlink(&self, ino: u64) -> FsResult<String> {
        let key = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            if node.attr.kind != Kind::Symlink {
                return Err(FsError::Invalid);
            }
            node.key.clone()
        };
        let body = self.client.get(&key, &GetOptions::default()).await?.body;
        String::from_utf8(body.to_vec()).map_err(|_| FsError::Invalid)
    }

    /// Filesystem statistics: an object store has no fixed capacity, so
    /// report a large, mostly free volume as s3fs and cosfs do.
    pub fn statfs(&self) -> FsStats {
        const BLOCK: u32 = 4096;
        let blocks = (1u64 << 50) / u64::from(BLOCK);
        FsStats {
            blocks,
            free: blocks,
            block_size: BLOCK,
            files: 1 << 32,
            name_max: dir::NAME_MAX as u32,
        }
    }

    /// The key of `ino` right now (renames change it).
    fn key_of(&self, ino: u64) -> FsResult<String> {
        Ok(lock(&self.inodes)
            .get(ino)
            .ok_or(FsError::NotFound)?
            .key
            .clone())
    }

    /// The path of `ino` (and of `name` in it, when given) inside the
    /// mount, for logs: `/` and the key without the mount prefix; `?` for
    /// an inode no longer known.
    pub fn mount_path(&self, ino: u64, name: Option<&str>) -> String {
        let key = self.key_of(ino).unwrap_or_else(|_| "?".to_string());
        let relative = key.strip_prefix(&self.config.prefix).unwrap_or(&key);
        let mut path = format!("/{}", relative.trim_end_matches('/'));
        if let Some(name) = name {
            if !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(name);
        }
        path
    }

    /// Attributes of `ino` without any request (for `.` entries and tests).
    pub fn cached_attr(&self, ino: u64) -> Option<Attr> {
        lock(&self.inodes).get(ino).map(|n| n.attr)
    }

    /// Number of inodes held.
    pub fn inode_count(&self) -> usize {
        lock(&self.inodes).len()
    }

    fn warn_once(&self, key: &str, reason: &str) {
        if lock(&self.warned).insert(key.to_string()) {
            warn!("object {key:?} is not shown: {reason}");
        }
    }
}

/// The root's inode number, for adapters.
pub const ROOT: u64 = ROOT_INO;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
