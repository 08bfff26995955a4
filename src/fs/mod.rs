//! The filesystem core: plain async Rust over an [`ObjectClient`], driven by
//! the FUSE adapter (`fuse.rs`) and by tests without a kernel. It owns the
//! inode table, open handles and the read cache, and maps names to keys.

pub mod attr;
pub mod dir;
pub mod error;
pub mod inode;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use log::{debug, warn};

use crate::cache::{BlockCache, CacheConfig, MemoryBudget, ObjectVersion, ReadAhead};
use crate::cos::{CosResult, GetOptions, ListRequest, ListWalker, ObjectClient, ObjectInfo};
use attr::{Attr, Kind, Ownership};
use dir::{DirListing, Listed, invalid_name};
pub use error::{FsError, FsResult};
use inode::{ChildInfo, InodeTable, ROOT_INO};

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
    /// HEAD requests in flight at once while listing.
    pub head_concurrency: usize,
    /// Read path sizes.
    pub cache: CacheConfig,
    /// Memory budget for read blocks and write buffers.
    pub memory_bytes: u64,
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
            head_concurrency: 64,
            cache: CacheConfig::default(),
            memory_bytes: 256 << 20,
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

struct OpenFile {
    object: ObjectVersion,
    reader: Mutex<ReadAhead>,
}

#[derive(Default)]
struct DirHandle {
    entries: Option<Arc<Vec<DirEntry>>>,
}

/// The filesystem.
pub struct Fs<C> {
    client: Arc<C>,
    config: FsConfig,
    inodes: Mutex<InodeTable>,
    cache: BlockCache<C>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<DirHandle>>>>,
    /// Inodes whose page cache matches this ETag (for `keep_cache`).
    cached_etags: Mutex<HashMap<u64, String>>,
    next_handle: AtomicU64,
    warned: Mutex<HashSet<String>>,
    started: SystemTime,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<C: ObjectClient> Fs<C> {
    /// A filesystem over `client`.
    pub fn new(client: Arc<C>, mut config: FsConfig) -> Fs<C> {
        if !config.prefix.is_empty() && !config.prefix.ends_with('/') {
            config.prefix.push('/');
        }
        let started = SystemTime::now();
        let budget = Arc::new(MemoryBudget::new(config.memory_bytes));
        let root = InodeTable::new(
            &config.prefix,
            config.ownership.dir(started),
            Instant::now(),
        );
        Fs {
            cache: BlockCache::new(client.clone(), config.cache.clone(), budget),
            client,
            config,
            inodes: Mutex::new(root),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            cached_etags: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            warned: Mutex::new(HashSet::new()),
            started,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// Finds `name` in directory `parent` and counts one kernel reference.
    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Entry> {
        if let Some(reason) = invalid_name(name) {
            debug!("lookup of {name:?}: {reason}");
            return Err(if name.len() > dir::NAME_MAX {
                FsError::NameTooLong
            } else {
                FsError::NotFound
            });
        }
        let now = Instant::now();
        let parent_key = {
            let mut t = lock(&self.inodes);
            let p = t.get(parent).ok_or(FsError::NotFound)?;
            if p.attr.kind != Kind::Dir {
                return Err(FsError::NotDir);
            }
            let parent_key = p.key.clone();
            if let Some(child) = t.child(parent, name) {
                if child.is_fresh(now) && (child.exact || self.config.fast_list) {
                    let entry = Entry {
                        ino: child.ino,
                        attr: child.attr,
                    };
                    t.remember(entry.ino);
                    return Ok(entry);
                }
            } else if t.is_missing(parent, name, now) {
                return Err(FsError::NotFound);
            }
            parent_key
        };
        let found = self.resolve(&parent_key, name).await?;
        let mut t = lock(&self.inodes);
        match found {
            None => {
                t.mark_missing(parent, name, Instant::now() + self.config.negative_ttl);
                Err(FsError::NotFound)
            }
            Some(info) => {
                let attr = info.attr;
                let ino = t.upsert_child(
                    parent,
                    name,
                    info,
                    Instant::now() + self.config.metadata_ttl,
                );
                if ino == 0 {
                    return Err(FsError::NotFound);
                }
                t.remember(ino);
                Ok(Entry { ino, attr })
            }
        }
    }

    /// Asks COS what `parent_key + name` is: a directory (marker or prefix,
    /// which wins), a file, or nothing.
    async fn resolve(&self, parent_key: &str, name: &str) -> FsResult<Option<ChildInfo>> {
        let key = format!("{parent_key}{name}");
        if self.config.no_listing {
            return self.resolve_by_head(&key).await;
        }
        let prefix = format!("{key}/");
        let list_req = ListRequest {
            prefix: prefix.clone(),
            delimiter: Some("/".into()),
            marker: String::new(),
            max_keys: 1,
        };
        let marker = async {
            if self.config.fast_list {
                None
            } else {
                Some(self.client.head(&prefix).await)
            }
        };
        let (file, listed, marker) = tokio::join!(
            self.client.head(&key),
            self.client.list_page(&list_req),
            marker
        );
        let listed = listed?;
        if !listed.objects.is_empty() || !listed.common_prefixes.is_empty() {
            if file.is_ok() {
                self.warn_once(
                    &key,
                    &format!("directory {prefix:?} has the same name and wins"),
                );
            }
            let attr = match marker {
                Some(Ok(info)) => self.config.ownership.from_info(&info, true),
                Some(Err(e)) if !e.is_not_found() => return Err(e.into()),
                _ => self.config.ownership.dir(self.started),
            };
            return Ok(Some(ChildInfo {
                attr,
                etag: None,
                modified: None,
                exact: true,
            }));
        }
        match file {
            Ok(info) => Ok(Some(self.file_info(&info))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// [`resolve`](Self::resolve) without listing: HEAD the key and its
    /// marker `key/` at once; the marker (a directory) wins, as in listings.
    /// Directories without a marker cannot be found this way.
    async fn resolve_by_head(&self, key: &str) -> FsResult<Option<ChildInfo>> {
        let marker_key = format!("{key}/");
        let (file, marker) = tokio::join!(self.client.head(key), self.client.head(&marker_key));
        match marker {
            Ok(info) => {
                return Ok(Some(ChildInfo {
                    attr: self.config.ownership.from_info(&info, true),
                    etag: None,
                    modified: None,
                    exact: true,
                }));
            }
            Err(e) if !e.is_not_found() => return Err(e.into()),
            Err(_) => {}
        }
        match file {
            Ok(info) => Ok(Some(self.file_info(&info))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn file_info(&self, info: &ObjectInfo) -> ChildInfo {
        ChildInfo {
            attr: self.config.ownership.from_info(info, false),
            etag: Some(info.etag.clone()),
            modified: Some(info.last_modified),
            exact: true,
        }
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
            let trusted = node.is_fresh(Instant::now()) && (node.exact || self.config.fast_list);
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
            Some(node) if node.attr.kind == child.attr.kind => {
                node.attr = child.attr;
                node.etag = child.etag;
                node.modified = child.modified;
                node.exact = true;
                node.valid_until = until;
                node.attr
            }
            _ => child.attr,
        }
    }

    /// Opens a directory.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        let t = lock(&self.inodes);
        let node = t.get(ino).ok_or(FsError::NotFound)?;
        if node.attr.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        drop(t);
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        lock(&self.dirs).insert(fh, Arc::default());
        Ok(fh)
    }

    /// Entries of directory `ino` after `offset` (0 starts a new listing).
    pub async fn readdir(&self, ino: u64, fh: u64, offset: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        let handle = lock(&self.dirs)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle)?;
        let mut handle = handle.lock().await;
        if offset == 0 || handle.entries.is_none() {
            handle.entries = Some(Arc::new(self.list_dir(ino).await?));
        }
        Ok(handle.entries.clone().unwrap_or_default())
    }

    /// Counts a kernel reference taken by readdirplus.
    pub fn remember(&self, ino: u64) {
        lock(&self.inodes).remember(ino);
    }

    /// Closes a directory handle.
    pub fn releasedir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
    }

    /// The full contents of directory `ino`, from the inode table while its
    /// listing is fresh, else from COS.
    async fn list_dir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let (prefix, fresh) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            if node.attr.kind != Kind::Dir {
                return Err(FsError::NotDir);
            }
            (node.key.clone(), node.is_listed(Instant::now()))
        };
        if !fresh && !self.config.no_listing {
            self.fetch_listing(ino, &prefix).await?;
        }
        let t = lock(&self.inodes);
        let node = t.get(ino).ok_or(FsError::NotFound)?;
        let parent = t.get(node.parent).unwrap_or(node);
        let mut entries = vec![
            (
                ".".to_string(),
                Entry {
                    ino,
                    attr: node.attr,
                },
            ),
            (
                "..".to_string(),
                Entry {
                    ino: parent.ino,
                    attr: parent.attr,
                },
            ),
        ];
        for (name, child) in &node.children {
            if let Some(c) = t.get(*child) {
                entries.push((
                    name.clone(),
                    Entry {
                        ino: c.ino,
                        attr: c.attr,
                    },
                ));
            }
        }
        Ok(entries
            .into_iter()
            .enumerate()
            .map(|(i, (name, entry))| DirEntry {
                name,
                entry,
                offset: i as u64 + 1,
            })
            .collect())
    }

    /// Lists `prefix` from COS, HEADs what needs exact attributes, and
    /// installs the result as the directory's children.
    async fn fetch_listing(&self, ino: u64, prefix: &str) -> FsResult<()> {
        let mut listing = DirListing::default();
        let mut walker = ListWalker::new(prefix, Some("/"));
        while let Some(page) = walker.next_page(&*self.client).await? {
            listing.add_page(prefix, &page);
        }
        for (key, reason) in &listing.skipped {
            self.warn_once(key, reason);
        }
        let heads = if self.config.fast_list {
            HashMap::new()
        } else {
            self.head_entries(ino, prefix, &listing).await?
        };
        let until = Instant::now() + self.config.metadata_ttl;
        let mut t = lock(&self.inodes);
        let mut names = Vec::with_capacity(listing.entries.len());
        for (name, listed) in listing.entries {
            let info = match (listed, heads.get(&name)) {
                (_, Some(Some(info))) => info.clone(),
                (Listed::Dir, _) => ChildInfo {
                    attr: self.config.ownership.dir(self.started),
                    etag: None,
                    modified: None,
                    exact: true,
                },
                (
                    Listed::Object {
                        size,
                        etag,
                        last_modified,
                    },
                    _,
                ) => {
                    let known = t
                        .child(ino, &name)
                        .filter(|n| n.knows_version(&etag, last_modified));
                    match known {
                        Some(node) => ChildInfo {
                            attr: node.attr,
                            etag: Some(etag),
                            modified: Some(last_modified),
                            exact: true,
                        },
                        None => ChildInfo {
                            attr: self.config.ownership.listed_file(size, last_modified),
                            etag: Some(etag),
                            modified: Some(last_modified),
                            exact: false,
                        },
                    }
                }
            };
            t.upsert_child(ino, &name, info, until);
            names.push(name);
        }
        t.finish_listing(ino, &names, until);
        Ok(())
    }

    /// HEADs, in parallel, every listed object whose metadata this mount
    /// does not know yet and every subdirectory's marker. `None` means the
    /// marker does not exist (an implicit directory).
    async fn head_entries(
        &self,
        ino: u64,
        prefix: &str,
        listing: &DirListing,
    ) -> FsResult<HashMap<String, Option<ChildInfo>>> {
        let wanted: Vec<(String, String)> = {
            let t = lock(&self.inodes);
            listing
                .entries
                .iter()
                .filter_map(|(name, listed)| match listed {
                    Listed::Dir => Some((name.clone(), format!("{prefix}{name}/"))),
                    Listed::Object {
                        etag,
                        last_modified,
                        ..
                    } => {
                        let known = t
                            .child(ino, name)
                            .is_some_and(|n| n.knows_version(etag, *last_modified));
                        (!known).then(|| (name.clone(), format!("{prefix}{name}")))
                    }
                })
                .collect()
        };
        let results: Vec<(String, CosResult<ObjectInfo>, bool)> = stream::iter(wanted)
            .map(|(name, key)| async move {
                let is_dir = key.ends_with('/');
                (name, self.client.head(&key).await, is_dir)
            })
            .buffer_unordered(self.config.head_concurrency.max(1))
            .collect()
            .await;
        let mut out = HashMap::new();
        for (name, result, is_dir) in results {
            match result {
                Ok(info) if is_dir => {
                    let attr = self.config.ownership.from_info(&info, true);
                    out.insert(
                        name,
                        Some(ChildInfo {
                            attr,
                            etag: None,
                            modified: None,
                            exact: true,
                        }),
                    );
                }
                Ok(info) => {
                    out.insert(name, Some(self.file_info(&info)));
                }
                Err(e) if e.is_not_found() => {
                    out.insert(name, None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Opens a file for reading.
    pub async fn open(&self, ino: u64, write: bool) -> FsResult<Opened> {
        if write {
            return Err(FsError::ReadOnly);
        }
        let (key, needs_head) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            match node.attr.kind {
                Kind::Dir => return Err(FsError::IsDir),
                Kind::File | Kind::Symlink => {}
                _ => return Err(FsError::NotSupported),
            }
            let trusted = node.is_fresh(Instant::now()) && node.exact && node.etag.is_some();
            (node.key.clone(), !trusted)
        };
        if needs_head {
            let info = self.client.head(&key).await?;
            self.refresh_node(ino, &info);
        }
        let (etag, size) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            (node.etag.clone().unwrap_or_default(), node.attr.size)
        };
        let keep_cache = lock(&self.cached_etags)
            .insert(ino, etag.clone())
            .as_deref()
            == Some(etag.as_str());
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let file = OpenFile {
            object: ObjectVersion {
                key: key.into(),
                etag: etag.into(),
                size,
            },
            reader: Mutex::new(self.cache.new_reader()),
        };
        lock(&self.files).insert(fh, Arc::new(file));
        Ok(Opened { fh, keep_cache })
    }

    /// Reads from an open file.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let file = lock(&self.files)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle)?;
        self.cache
            .read(&file.object, offset, u64::from(size), &file.reader)
            .await
            .map_err(|e| {
                if e.status() == Some(412) {
                    FsError::Stale
                } else {
                    e.into()
                }
            })
    }

    /// Closes a file handle.
    pub fn release(&self, fh: u64) {
        lock(&self.files).remove(&fh);
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
mod tests;
