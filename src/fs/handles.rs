//! Open file handles, from open to the release at the last close. A
//! handle pins the object version (ETag) it opened, so its reads never mix
//! two versions; the kernel keeps its page cache only when an open finds
//! the ETag of the previous one. A file unlinked while open stays readable
//! by its handles: its DELETE waits for the last close, and the last
//! writer's close uploads first.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::debug;

use super::attr::Kind;
use super::snapshot::Held;
use super::{Entry, Fs, FsError, FsResult, OpenMode, Opened, lock};
use crate::cache::{ObjectVersion, ReadAhead};
use crate::cos::{ObjectClient, ObjectInfo};

/// One open file handle.
pub(super) struct OpenFile {
    pub(super) ino: u64,
    /// The version reads see when the file has no changes in progress.
    pub(super) object: ObjectVersion,
    pub(super) reader: Mutex<ReadAhead>,
    pub(super) writable: bool,
    /// Opened with `O_APPEND`.
    pub(super) append: bool,
}

/// What the server said this recently needs no second question: a name it
/// said was missing is created without asking again, and a file whose
/// attributes it just gave is opened without another HEAD (the lookup of
/// the same `open` asked).
const JUST_CONFIRMED: Duration = Duration::from_millis(100);

/// A folder snapshot a create used at this age is taken again in the
/// background, so the creates that follow need not wait for a listing.
const REFRESH_AFTER: Duration = Duration::from_millis(75);

impl<C: ObjectClient> Fs<C> {
    /// Close-to-open for `open(O_CREAT)`: a name this mount believes
    /// missing, without the server having said so just now, is looked up
    /// before it is created, so a file another client created is opened
    /// (or `O_EXCL` fails) rather than replaced by an empty one. The
    /// question is a snapshot of the directory (shared by the names
    /// created within [`JUST_CONFIRMED`]) or, in a large one, a HEAD.
    pub(super) async fn created_elsewhere(
        &self,
        parent: u64,
        parent_key: &str,
        name: &str,
    ) -> FsResult<Option<ObjectInfo>> {
        if !self.config.close_to_open {
            return Ok(None);
        }
        let now = Instant::now();
        let ttl = self.config.negative_ttl;
        if lock(&self.inodes).absence_confirmed(parent, name, now, ttl, JUST_CONFIRMED) {
            return Ok(None);
        }
        // Many names created in one directory share one listing.
        let since = now.checked_sub(JUST_CONFIRMED).unwrap_or(now);
        if let Some(seen) = self.dir_snapshot(parent, parent_key, since, name).await? {
            if now.saturating_duration_since(seen.snapshot.taken) > REFRESH_AFTER {
                self.refresh_dir_snapshot(parent, parent_key);
            }
            if seen.held == Held::Free {
                return Ok(None);
            }
        }
        match self.client.head(&format!("{parent_key}{name}")).await {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens for writing a file another client created under `name`.
    pub(super) async fn open_created_elsewhere(
        &self,
        parent: u64,
        name: &str,
        info: &ObjectInfo,
        mode: OpenMode,
    ) -> FsResult<(Entry, Opened)> {
        debug!("{name:?} was created by another client: opening it");
        let child = self.file_info(info);
        let attr = child.attr;
        let ino = {
            let mut t = lock(&self.inodes);
            let until = Instant::now() + self.config.metadata_ttl;
            let ino = t
                .upsert_child(parent, name, child, until)
                .ok_or(FsError::NotFound)?;
            t.remember(ino);
            ino
        };
        match self.open(ino, mode).await {
            Ok(opened) => Ok((Entry { ino, attr }, opened)),
            Err(e) => {
                self.forget(ino, 1);
                Err(e)
            }
        }
    }

    /// Opens a file.
    pub async fn open(&self, ino: u64, mode: OpenMode) -> FsResult<Opened> {
        let kind = lock(&self.inodes)
            .get(ino)
            .ok_or(FsError::NotFound)?
            .attr
            .kind;
        match kind {
            Kind::Dir => return Err(FsError::IsDir),
            Kind::File | Kind::Symlink => {}
            _ => return Err(FsError::NotSupported),
        }
        if mode.write && self.config.read_only {
            return Err(FsError::ReadOnly);
        }
        let changing = self.writes.get(ino).is_some();
        // Close-to-open: what another client closed is what this open
        // sees. A truncating open replaces the content, so it needs no
        // look at the old one.
        let replaces = mode.write && mode.truncate;
        let mut changed = false;
        if !changing && !replaces {
            changed = self
                .revalidate(ino, self.config.close_to_open, mode.caller, !mode.write)
                .await?;
        }
        if mode.write {
            let state = self.write_state(ino, true).await?;
            if mode.truncate {
                let mut st = state.lock().await;
                let truncated = self.truncate_state(&mut st, ino, 0).await;
                if let Err(e) = truncated {
                    drop(st);
                    self.writes.drop_writer(ino);
                    return Err(e);
                }
                if st.attr.apply_set_id(mode.set_id) {
                    st.meta_dirty = true;
                    self.mark_pending(ino, st.attr);
                }
            }
        }
        let object = self.current_version(ino)?;
        let reading = !changing && !mode.write;
        let seen = reading
            .then(|| lock(&self.cached_etags).insert(ino, object.etag.to_string()))
            .flatten();
        let same = seen.as_deref() == Some(&*object.etag);
        Ok(Opened {
            keep_cache: reading && same,
            changed: changed || (seen.is_some() && !same),
            fh: self.add_handle(ino, object, mode.write, mode.append),
        })
    }

    /// Registers a new handle on `ino`.
    pub(super) fn add_handle(
        &self,
        ino: u64,
        object: ObjectVersion,
        writable: bool,
        append: bool,
    ) -> u64 {
        let fh = self
            .next_handle
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = OpenFile {
            ino,
            object,
            reader: Mutex::new(self.cache.new_reader()),
            writable,
            append,
        };
        lock(&self.files).insert(fh, std::sync::Arc::new(file));
        *lock(&self.open_counts).entry(ino).or_default() += 1;
        fh
    }

    /// Asks the bucket what the object is unless the node is fresh and
    /// exact and either `always` is not set or `caller`'s lookup just asked;
    /// a node whose object is gone is detached (ENOENT). The question is a
    /// HEAD or, for an open for `reading` a small file whose bytes neither
    /// this mount nor (as far as it knows) the kernel holds, a GET of its
    /// first block: the same answer, and the bytes the first read wants.
    /// True when the answer names another version than the node did (the
    /// attributes the kernel has are stale).
    pub(super) async fn revalidate(
        &self,
        ino: u64,
        always: bool,
        caller: Option<u32>,
        reading: bool,
    ) -> FsResult<bool> {
        let (key, trusted, known, readable) = {
            let mut t = lock(&self.inodes);
            let node = t.get_mut(ino).ok_or(FsError::NotFound)?;
            let now = Instant::now();
            let fresh = node.is_fresh(now) && node.exact && node.etag.is_some();
            let looked_up = node.looked_up_by.take();
            let just_asked = looked_up.is_some_and(|(pid, at)| {
                Some(pid) == caller && now.duration_since(at) <= JUST_CONFIRMED
            });
            (
                node.key.clone(),
                node.pending || (fresh && (!always || just_asked)),
                node.etag.clone(),
                // The size a file opened for reading had.
                (reading && node.attr.kind == Kind::File).then_some(node.attr.size),
            )
        };
        if trusted {
            return Ok(false);
        }
        let first_block = known
            .as_ref()
            .zip(readable)
            .map(|(etag, size)| ObjectVersion {
                key: key.as_str().into(),
                etag: etag.as_str().into(),
                size,
            })
            .filter(|obj| self.worth_first_block(ino, obj));
        let answer = match first_block {
            Some(obj) => match self.cache.fetch_first_block(&key, obj.size).await {
                // Emptied since: a range of nothing is not satisfiable.
                Err(e) if e.status() == Some(416) => self.client.head(&key).await,
                answer => answer,
            },
            None => self.client.head(&key).await,
        };
        match answer {
            Ok(info) => {
                self.refresh_node(ino, &info);
                Ok(known.as_deref() != Some(info.etag.as_str()))
            }
            Err(e) if e.is_not_found() => {
                debug!("{key:?} is gone from the bucket");
                lock(&self.inodes).detach(ino);
                Err(FsError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether to ask about `obj`, the version node `ino` last named, with
    /// a GET of its first block rather than a HEAD: it fits in one block,
    /// and neither the block cache nor (for all this mount knows) the
    /// kernel's page cache holds its bytes.
    fn worth_first_block(&self, ino: u64, obj: &ObjectVersion) -> bool {
        let small = (1..=self.cache.block_size()).contains(&obj.size);
        let in_kernel = lock(&self.cached_etags).get(&ino).map(String::as_str) == Some(&*obj.etag);
        small && !in_kernel && !self.cache.holds_first_block(obj)
    }

    /// The object version the node names now.
    pub(super) fn current_version(&self, ino: u64) -> FsResult<ObjectVersion> {
        let t = lock(&self.inodes);
        let node = t.get(ino).ok_or(FsError::NotFound)?;
        Ok(ObjectVersion {
            key: node.key.as_str().into(),
            etag: node.etag.clone().unwrap_or_default().into(),
            size: node.attr.size,
        })
    }

    /// Closes a handle: the last writer uploads anything still pending, the
    /// last handle of an unlinked file deletes its object.
    pub async fn release(&self, fh: u64) -> FsResult<()> {
        let Some(file) = lock(&self.files).remove(&fh) else {
            return Ok(());
        };
        let mut result = Ok(());
        if let Some((state, true)) = file
            .writable
            .then(|| self.writes.drop_writer(file.ino))
            .flatten()
        {
            result = self.sync(&mut *state.lock().await, file.ino).await;
            self.retire(file.ino, &state);
        }
        let last = {
            let mut counts = lock(&self.open_counts);
            let count = counts.entry(file.ino).or_default();
            *count = count.saturating_sub(1);
            let last = *count == 0;
            if last {
                counts.remove(&file.ino);
            }
            last
        };
        if last {
            self.delete_if_pending(file.ino).await;
        }
        result
    }
}
