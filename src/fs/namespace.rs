//! Changes to the namespace: create, mknod, mkdir, symlink, unlink, rmdir,
//! rename and setattr. Directories are `dir/` markers; rename is a copy and
//! a delete (per key for directories), which is not atomic: a failure in
//! the middle leaves both names, never neither.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use log::{debug, warn};

use super::attr::{Attr, DIR_CONTENT_TYPE, Kind, SetAttr, to_meta};
use super::dir::{NAME_MAX, invalid_name};
use super::inode::ChildInfo;
use super::write::{Content, WriteState};
use super::xattr::Xattrs;
use super::{Caller, CreateFlags, Entry, Fs, FsError, FsResult, Opened, lock};
use crate::cache::ObjectVersion;
use crate::cos::{CosError, ListRequest, ListWalker, MetadataDirective, ObjectAttrs, ObjectClient};
use crate::upload::{MAX_PART_SIZE, fixed_part_size};

/// Copies and deletes in flight while renaming a directory.
const RENAME_CONCURRENCY: usize = 16;
/// Keys per Delete Multiple request.
const DELETE_BATCH: usize = 1000;

/// A rename the server cannot copy fails with `EXDEV`, so that `mv` and
/// the like copy the data themselves (nothing was written).
fn copy_refused_is_cross_device(e: FsError) -> FsError {
    match e {
        FsError::NotSupported => FsError::CrossDevice,
        e => e,
    }
}

fn check_new_name(name: &str) -> FsResult<()> {
    match invalid_name(name) {
        None => Ok(()),
        Some(_) if name.len() > NAME_MAX => Err(FsError::NameTooLong),
        Some(_) => Err(FsError::Invalid),
    }
}

impl<C: ObjectClient> Fs<C> {
    pub(super) fn check_writable(&self) -> FsResult<()> {
        if self.config.read_only {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// The key prefix of directory `ino`.
    fn dir_key(&self, ino: u64) -> FsResult<String> {
        let t = lock(&self.inodes);
        let node = t.get(ino).ok_or(FsError::NotFound)?;
        if node.attr.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        Ok(node.key.clone())
    }

    fn new_attr(&self, kind: Kind, mode: u32, umask: u32, caller: Caller) -> Attr {
        let now = SystemTime::now();
        Attr {
            kind,
            size: 0,
            mtime: now,
            atime: now,
            rdev: 0,
            perm: (mode & !umask & 0o7777) as u16,
            uid: caller.uid,
            gid: caller.gid,
        }
    }

    /// Records a node this mount just made (counting one kernel reference).
    fn add_child(
        &self,
        parent: u64,
        name: &str,
        attr: Attr,
        etag: Option<String>,
    ) -> FsResult<Entry> {
        let mut t = lock(&self.inodes);
        let until = Instant::now() + self.config.metadata_ttl;
        if let Some(old) = t.child(parent, name).map(|n| n.ino) {
            t.detach(old);
        }
        let info = ChildInfo {
            attr,
            etag,
            modified: None,
            exact: true,
            xattrs: Some(Xattrs::default()),
        };
        let ino = t
            .upsert_child(parent, name, info, until)
            .ok_or(FsError::NotFound)?;
        t.remember(ino);
        Ok(Entry { ino, attr })
    }

    /// Creates and opens a new regular file. Its object is written at the
    /// first flush, even when nothing was written.
    pub async fn create(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        umask: u32,
        flags: CreateFlags,
        caller: Caller,
    ) -> FsResult<(Entry, Opened)> {
        self.check_writable()?;
        check_new_name(name)?;
        let key = format!("{}{name}", self.dir_key(parent)?);
        if let Some(info) = self.created_elsewhere(parent, name, &key).await? {
            if flags.exclusive {
                return Err(FsError::Exists);
            }
            return self
                .open_created_elsewhere(parent, name, &info, flags.truncate)
                .await;
        }
        let attr = self.new_attr(Kind::File, mode, umask, caller);
        let entry = self.add_child(parent, name, attr, None)?;
        self.cancel_pending_delete(&key);
        let mut state = WriteState::clean(None, attr, Some(Xattrs::default()));
        state.content = Content::Stream(self.new_stream(&key, state.object_attrs()));
        state.data_dirty = true;
        self.writes.insert_new(entry.ino, state);
        self.mark_pending(entry.ino, attr);
        let object = ObjectVersion {
            key: key.as_str().into(),
            etag: "".into(),
            size: 0,
        };
        let fh = self.add_handle(entry.ino, object, true);
        Ok((
            entry,
            Opened {
                fh,
                keep_cache: false,
                changed: false,
            },
        ))
    }

    /// Creates a node that is not opened: a regular file, FIFO, socket or
    /// device node, stored as an empty object whose mode carries the type.
    pub async fn mknod(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        umask: u32,
        rdev: u32,
        caller: Caller,
    ) -> FsResult<Entry> {
        self.check_writable()?;
        check_new_name(name)?;
        let kind = match Kind::from_mode(mode) {
            None => Kind::File,
            Some(Kind::Dir | Kind::Symlink) => return Err(FsError::Invalid),
            Some(kind) => kind,
        };
        let mut attr = self.new_attr(kind, mode, umask, caller);
        if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
            attr.rdev = rdev;
        }
        self.store_node(parent, name, attr, Bytes::new()).await
    }

    /// Writes a node that needs no open handle (special files, symlinks) as
    /// one object carrying its attributes.
    async fn store_node(
        &self,
        parent: u64,
        name: &str,
        attr: Attr,
        body: Bytes,
    ) -> FsResult<Entry> {
        let key = format!("{}{name}", self.dir_key(parent)?);
        let attrs = ObjectAttrs {
            content_type: None,
            meta: to_meta(&attr),
        };
        let put = self.client.put(&key, body, &attrs).await?;
        self.cancel_pending_delete(&key);
        self.add_child(parent, name, attr, Some(put.etag))
    }

    /// Creates a directory: a `name/` marker object.
    pub async fn mkdir(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        umask: u32,
        caller: Caller,
    ) -> FsResult<Entry> {
        self.check_writable()?;
        check_new_name(name)?;
        let key = format!("{}{name}/", self.dir_key(parent)?);
        let attr = self.new_attr(Kind::Dir, mode, umask, caller);
        let attrs = ObjectAttrs {
            content_type: Some(DIR_CONTENT_TYPE.into()),
            meta: to_meta(&attr),
        };
        self.client.put(&key, Bytes::new(), &attrs).await?;
        let entry = self.add_child(parent, name, attr, None)?;
        // A new directory is empty: no need to list it, and it is about to
        // be filled.
        let now = Instant::now();
        let mut t = lock(&self.inodes);
        t.finish_listing(entry.ino, &[], now + self.config.metadata_ttl);
        if let Some(dir) = t.get_mut(entry.ino) {
            dir.last_miss = Some(now);
        }
        Ok(entry)
    }

    /// Creates a symlink: an object whose body is the target (cosfs layout).
    pub async fn symlink(
        &self,
        parent: u64,
        name: &str,
        target: &str,
        caller: Caller,
    ) -> FsResult<Entry> {
        self.check_writable()?;
        check_new_name(name)?;
        let mut attr = self.new_attr(Kind::Symlink, 0o777, 0, caller);
        attr.size = target.len() as u64;
        let body = Bytes::copy_from_slice(target.as_bytes());
        self.store_node(parent, name, attr, body).await
    }

    /// Finds `parent/name` without counting a kernel reference.
    async fn existing(&self, parent: u64, name: &str) -> FsResult<Entry> {
        let entry = self.lookup(parent, name).await?;
        lock(&self.inodes).forget(entry.ino, 1);
        Ok(entry)
    }

    /// Removes a file. If it is open, its object is deleted at the last close.
    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        self.check_writable()?;
        let entry = self.existing(parent, name).await?;
        if entry.attr.kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        let key = self.key_of(entry.ino)?;
        if let Some(state) = self.writes.get(entry.ino) {
            state.lock().await.unlinked = true;
        }
        let open = lock(&self.open_counts)
            .get(&entry.ino)
            .copied()
            .unwrap_or(0)
            > 0;
        if open {
            lock(&self.pending_deletes).insert(entry.ino, key.clone());
        } else {
            self.client.delete(&key).await?;
        }
        self.cache.invalidate(&key);
        let mut t = lock(&self.inodes);
        t.detach(entry.ino);
        t.mark_missing(parent, name, Instant::now() + self.config.negative_ttl);
        Ok(())
    }

    /// Deletes the object of an unlinked file once its last handle closed.
    pub(super) async fn delete_if_pending(&self, ino: u64) {
        let Some(key) = lock(&self.pending_deletes).remove(&ino) else {
            return;
        };
        debug!("last handle of unlinked {key:?} closed; deleting it");
        if let Err(e) = self.client.delete(&key).await {
            warn!("could not delete unlinked {key:?}: {e}");
        }
    }

    /// A new object under `key` supersedes a delayed delete of the old one.
    fn cancel_pending_delete(&self, key: &str) {
        lock(&self.pending_deletes).retain(|_, k| k != key);
    }

    /// Fails with ENOTEMPTY unless directory `ino` (prefix `key`) is empty.
    async fn check_empty(&self, ino: u64, key: &str) -> FsResult<()> {
        if lock(&self.inodes).has_pending_below(ino) {
            return Err(FsError::NotEmpty);
        }
        let req = ListRequest {
            prefix: key.to_string(),
            delimiter: None,
            marker: String::new(),
            max_keys: 2,
        };
        let page = self.client.list_page(&req).await?;
        if page.objects.iter().any(|o| o.key != key) || !page.common_prefixes.is_empty() {
            return Err(FsError::NotEmpty);
        }
        Ok(())
    }

    /// Removes an empty directory (its marker).
    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        self.check_writable()?;
        let entry = self.existing(parent, name).await?;
        if entry.attr.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        let key = self.key_of(entry.ino)?;
        self.check_empty(entry.ino, &key).await?;
        self.client.delete(&key).await?;
        let mut t = lock(&self.inodes);
        t.detach(entry.ino);
        t.mark_missing(parent, name, Instant::now() + self.config.negative_ttl);
        Ok(())
    }

    /// Renames a file or directory (copy, then delete).
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        no_replace: bool,
    ) -> FsResult<()> {
        self.check_writable()?;
        check_new_name(new_name)?;
        let src = self.existing(parent, name).await?;
        let target = match self.existing(new_parent, new_name).await {
            Ok(t) => Some(t),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let is_dir = src.attr.kind == Kind::Dir;
        if let Some(t) = &target {
            if no_replace {
                return Err(FsError::Exists);
            }
            if t.ino == src.ino {
                return Ok(());
            }
            match (is_dir, t.attr.kind == Kind::Dir) {
                (true, false) => return Err(FsError::NotDir),
                (false, true) => return Err(FsError::IsDir),
                (true, true) => self.check_empty(t.ino, &self.key_of(t.ino)?).await?,
                (false, false) => {}
            }
        }
        let src_key = self.key_of(src.ino)?;
        let parent_key = self.dir_key(new_parent)?;
        if is_dir {
            self.sync_below(&src_key).await?;
            self.rename_prefix(&src_key, &format!("{parent_key}{new_name}/"))
                .await
                .map_err(copy_refused_is_cross_device)?;
        } else {
            self.sync_file(src.ino).await?;
            let dst_key = format!("{parent_key}{new_name}");
            self.copy_object(&src_key, &dst_key, src.attr.size, target.is_none())
                .await
                .map_err(copy_refused_is_cross_device)?;
            self.client.delete(&src_key).await?;
            self.cancel_pending_delete(&dst_key);
            self.cache.invalidate(&dst_key);
        }
        self.cache.invalidate(&src_key);
        let mut t = lock(&self.inodes);
        t.rename(src.ino, new_parent, new_name);
        t.mark_missing(parent, name, Instant::now() + self.config.negative_ttl);
        Ok(())
    }

    /// Uploads pending changes of one file before its key changes.
    async fn sync_file(&self, ino: u64) -> FsResult<()> {
        match self.writes.get(ino) {
            Some(state) => self.sync(&mut *state.lock().await, ino).await,
            None => Ok(()),
        }
    }

    /// Uploads pending changes of every file under `prefix`.
    async fn sync_below(&self, prefix: &str) -> FsResult<()> {
        let inos: Vec<u64> = {
            let t = lock(&self.inodes);
            self.writes
                .inos()
                .into_iter()
                .filter(|ino| t.get(*ino).is_some_and(|n| n.key.starts_with(prefix)))
                .collect()
        };
        for ino in inos {
            self.sync_file(ino).await?;
        }
        Ok(())
    }

    /// Server-side copy of the source's current version (a rename moves
    /// what is there now, so no precondition); multipart copy above COS's
    /// 5 GB single-copy limit. A copy answered with something that is not a
    /// copy result may have written something else at `dst`: it is removed
    /// when `dst_is_new` (nothing of the user's was there).
    async fn copy_object(&self, src: &str, dst: &str, size: u64, dst_is_new: bool) -> FsResult<()> {
        if size <= MAX_PART_SIZE {
            let copied = self
                .client
                .copy(
                    src,
                    dst,
                    None,
                    MetadataDirective::Copy,
                    &ObjectAttrs::default(),
                    size,
                )
                .await;
            if let (Err(e @ CosError::InvalidResponse(_)), true) = (&copied, dst_is_new) {
                warn!("removing {dst:?}, which the failed copy from {src:?} may have written: {e}");
                if let Err(e) = self.client.delete(dst).await {
                    warn!("could not remove {dst:?}: {e}");
                }
            }
            copied?;
            return Ok(());
        }
        let info = self.client.head(src).await?;
        let attrs = ObjectAttrs {
            content_type: info.content_type,
            meta: info.meta,
        };
        let part = fixed_part_size(1 << 30, info.size);
        let upload_id = self.client.create_multipart(dst, &attrs).await?;
        let ranges: Vec<(u32, std::ops::Range<u64>)> = (0..info.size.div_ceil(part))
            .map(|i| (i as u32 + 1, i * part..((i + 1) * part).min(info.size)))
            .collect();
        let etag = info.etag.clone();
        let result = async {
            let (upload_id, etag) = (&upload_id, &etag);
            let mut parts: Vec<_> = stream::iter(ranges)
                .map(|(n, r)| async move {
                    self.client
                        .upload_part_copy(dst, upload_id, n, src, Some(etag), r)
                        .await
                })
                .buffer_unordered(4)
                .try_collect()
                .await?;
            parts.sort_by_key(|p: &crate::cos::PartInfo| p.part_number);
            self.client.complete_multipart(dst, upload_id, &parts).await
        }
        .await;
        if let Err(e) = &result {
            crate::upload::abort(self.client.as_ref(), dst, &upload_id, e).await;
        }
        result?;
        Ok(())
    }

    /// Renames every key under `src` to the same key under `dst`: all
    /// copies first (in parallel), then the deletes.
    async fn rename_prefix(&self, src: &str, dst: &str) -> FsResult<()> {
        let mut keys = Vec::new();
        let mut walker = ListWalker::new(src, None);
        while let Some(page) = walker.next_page(&*self.client).await? {
            keys.extend(page.objects.into_iter().map(|o| (o.key, o.size)));
        }
        let copies: Vec<(String, String, u64)> = keys
            .iter()
            .map(|(key, size)| (key.clone(), format!("{dst}{}", &key[src.len()..]), *size))
            .collect();
        stream::iter(copies)
            .map(|(from, to, size)| async move {
                match self.copy_object(&from, &to, size, true).await {
                    Err(FsError::NotFound) if from.ends_with('/') => {
                        self.recreate_marker(&from, &to).await
                    }
                    copied => copied,
                }
            })
            .buffer_unordered(RENAME_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        if !keys.iter().any(|(k, _)| k == src) {
            // An implicit directory: give the new one a marker only if it
            // would otherwise vanish (it has no keys).
            if keys.is_empty() {
                let attrs = ObjectAttrs {
                    content_type: Some(DIR_CONTENT_TYPE.into()),
                    meta: Default::default(),
                };
                self.client.put(dst, Bytes::new(), &attrs).await?;
            }
        }
        // Markers go after what they hold, deepest first: a server that
        // keeps `dir/` keys as folders (SeaweedFS) deletes only empty ones.
        let (markers, files): (Vec<String>, Vec<String>) = keys
            .into_iter()
            .map(|(k, _)| k)
            .partition(|k| k.ends_with('/'));
        let mut levels: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for marker in markers {
            levels
                .entry(marker.matches('/').count())
                .or_default()
                .push(marker);
        }
        let batches = files.chunks(DELETE_BATCH).map(<[String]>::to_vec).chain(
            levels.into_values().rev().flat_map(|level| {
                level
                    .chunks(DELETE_BATCH)
                    .map(<[String]>::to_vec)
                    .collect::<Vec<_>>()
            }),
        );
        for batch in batches {
            let failed = self.client.delete_many(&batch).await?;
            if let Some(f) = failed.first() {
                warn!(
                    "renaming {src:?}: could not delete {:?}: {} {}",
                    f.key, f.code, f.message
                );
                return Err(FsError::Remote(crate::cos::CosError::service(
                    500, &f.code, &f.message,
                )));
            }
        }
        Ok(())
    }

    /// Writes the directory marker `dst` with what marker `src` holds: for
    /// servers that keep `dir/` keys as folders which cannot be copied
    /// (SeaweedFS answers NoSuchKey).
    async fn recreate_marker(&self, src: &str, dst: &str) -> FsResult<()> {
        let attrs = match self.client.head(src).await {
            Ok(info) => ObjectAttrs {
                content_type: info.content_type,
                meta: info.meta,
            },
            Err(e) if e.is_not_found() => ObjectAttrs::default(),
            Err(e) => return Err(e.into()),
        };
        let attrs = ObjectAttrs {
            content_type: attrs.content_type.or(Some(DIR_CONTENT_TYPE.into())),
            ..attrs
        };
        self.client.put(dst, Bytes::new(), &attrs).await?;
        Ok(())
    }

    /// Changes size, mode, owner or times.
    pub async fn setattr(&self, ino: u64, changes: SetAttr) -> FsResult<Attr> {
        let kind = lock(&self.inodes)
            .get(ino)
            .ok_or(FsError::NotFound)?
            .attr
            .kind;
        if changes.size.is_none() && !changes.changes_meta() {
            return self.getattr(ino).await;
        }
        self.check_writable()?;
        if kind == Kind::Dir {
            if changes.size.is_some() {
                return Err(FsError::IsDir);
            }
            return self.set_dir_attr(ino, changes).await;
        }
        let state = self.write_state(ino, false).await?;
        let mut st = state.lock().await;
        if let Some(size) = changes.size {
            if kind != Kind::File {
                return Err(FsError::Invalid);
            }
            self.truncate_state(&mut st, ino, size).await?;
        }
        if changes.changes_meta() {
            changes.apply(&mut st.attr);
            st.mtime_set |= changes.mtime.is_some();
            st.meta_dirty = true;
            self.mark_pending(ino, st.attr);
        }
        let attr = st.attr;
        if self.writes.writers(ino) == 0 {
            let result = self.sync(&mut st, ino).await;
            drop(st);
            self.retire(ino, &state);
            result?;
        }
        Ok(attr)
    }

    /// Rewrites a directory marker with new attributes (creating it for an
    /// implicit directory).
    async fn set_dir_attr(&self, ino: u64, changes: SetAttr) -> FsResult<Attr> {
        let (key, mut attr, known) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            (node.key.clone(), node.attr, node.etag.clone())
        };
        changes.apply(&mut attr);
        self.rewrite_marker(&key, &attr, known.as_deref(), None)
            .await?;
        if let Some(node) = lock(&self.inodes).get_mut(ino) {
            node.attr = attr;
        }
        Ok(attr)
    }
}
