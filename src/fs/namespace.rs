//! Changes to the namespace: create, mknod, mkdir, symlink, unlink, rmdir
//! and setattr (rename has its own module). Directories are `dir/`
//! markers.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use log::{debug, warn};

use super::attr::{Attr, Kind, SetAttr, SetIdBits, to_meta};
use super::dir::{NAME_MAX, invalid_name};
use super::inode::ChildInfo;
use super::kept::Kept;
use super::write::{Content, WriteState};
use super::xattr::Xattrs;
use super::{Caller, CreateFlags, Entry, Fs, FsError, FsResult, OpenMode, Opened, lock};
use crate::cache::ObjectVersion;
use crate::cos::{ListRequest, ObjectAttrs, ObjectClient, StorageClass};

pub(super) fn check_new_name(name: &str) -> FsResult<()> {
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
    pub(super) fn dir_key(&self, ino: u64) -> FsResult<String> {
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
            storage_class: StorageClass::MountDefault,
            kept: (attr.kind == Kind::File).then(|| Kept::for_new_file(name)),
        };
        let ino = t
            .upsert_child(parent, name, info, until)
            .ok_or(FsError::NotFound)?;
        t.remember(ino);
        self.snapshots.made(parent, name);
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
        let parent_key = self.dir_key(parent)?;
        let key = format!("{parent_key}{name}");
        if let Some(info) = self.created_elsewhere(parent, &parent_key, name).await? {
            if flags.exclusive {
                let until = Instant::now() + self.config.metadata_ttl;
                lock(&self.inodes).upsert_child(parent, name, self.file_info(&info), until);
                return Err(FsError::Exists);
            }
            let mode = OpenMode {
                write: true,
                truncate: flags.truncate,
                append: false,
                caller: None,
                set_id: SetIdBits::on_change_by(caller.uid),
            };
            return self.open_created_elsewhere(parent, name, &info, mode).await;
        }
        let attr = self.new_attr(Kind::File, mode, umask, caller);
        let entry = self.add_child(parent, name, attr, None)?;
        self.cancel_pending_delete(&key);
        let mut state = WriteState::clean(
            None,
            attr,
            Some(Xattrs::default()),
            StorageClass::MountDefault,
            Kept::for_new_file(name),
        );
        state.content = Content::Stream(self.new_stream(&key, state.object_attrs()));
        state.data_dirty = true;
        self.writes.insert_new(entry.ino, state);
        self.mark_pending(entry.ino, attr);
        let object = ObjectVersion {
            key: key.as_str().into(),
            etag: "".into(),
            size: 0,
        };
        let fh = self.add_handle(entry.ino, object, true, false);
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
            meta: to_meta(&attr),
            ..ObjectAttrs::default()
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
        let (put, snapshot) = tokio::join!(
            self.put_marker(&key, &attr, None),
            self.new_folder_snapshot(&key)
        );
        let entry = self.add_child(parent, name, attr, Some(put?.etag))?;
        if let Some(snapshot) = snapshot {
            self.snapshots.keep(entry.ino, snapshot);
        }
        // A new directory is empty: no need to list it, and it is about to
        // be filled.
        let now = Instant::now();
        let mut t = lock(&self.inodes);
        t.finish_listing(entry.ino, &[], now + self.config.metadata_ttl);
        if let Some(dir) = t.get_mut(entry.ino) {
            dir.last_miss = Some(now);
            dir.own_marker = true;
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
    pub(super) async fn existing(&self, parent: u64, name: &str) -> FsResult<Entry> {
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
    pub(super) fn cancel_pending_delete(&self, key: &str) {
        lock(&self.pending_deletes).retain(|_, k| k != key);
    }

    /// Fails with ENOTEMPTY unless directory `ino` (prefix `key`) is empty.
    pub(super) async fn check_empty(&self, ino: u64, key: &str) -> FsResult<()> {
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
        let set_id_dropped = st.attr.apply_set_id(changes.set_id);
        if changes.changes_meta() || set_id_dropped {
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
    /// implicit directory). A marker this mount wrote, within the TTL, is
    /// written afresh (one request), or not at all when the change leaves
    /// its attributes as they are (tar's `chown` to the owner a folder
    /// already has); any other is read first, so that metadata others put
    /// on it is kept.
    async fn set_dir_attr(&self, ino: u64, changes: SetAttr) -> FsResult<Attr> {
        let (key, mut attr, known, own) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            let own = (node.own_marker && node.is_fresh(Instant::now()))
                .then(|| node.xattrs.clone())
                .flatten();
            (node.key.clone(), node.attr, node.etag.clone(), own)
        };
        let before = attr;
        changes.apply(&mut attr);
        if own.is_some() && attr == before {
            return Ok(attr);
        }
        let written = match &own {
            Some(xattrs) => Some(self.put_marker(&key, &attr, Some(xattrs)).await?),
            _ => {
                self.rewrite_marker(&key, &attr, known.as_deref(), None)
                    .await?;
                None
            }
        };
        if let Some(node) = lock(&self.inodes).get_mut(ino) {
            node.attr = attr;
            if let Some(put) = written {
                node.etag = Some(put.etag);
                node.valid_until = Instant::now() + self.config.metadata_ttl;
            }
        }
        Ok(attr)
    }
}
