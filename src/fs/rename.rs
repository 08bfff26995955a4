//! Rename: a server-side copy and a delete (per key for directories, all
//! copies before any delete), which is not atomic: a failure in the middle
//! leaves both names, never neither. Markers a server cannot copy are
//! written anew, and deleted after what they hold.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use log::warn;

use super::attr::{DIR_CONTENT_TYPE, Kind};
use super::inode::Node;
use super::kept;
use super::namespace::check_new_name;
use super::{Fs, FsError, FsResult, lock};
use crate::cos::{
    CosError, ListEntry, ListWalker, MetadataDirective, ObjectAttrs, ObjectClient, StorageClass,
};
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

impl<C: ObjectClient> Fs<C> {
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
        let mut retyped = None;
        if is_dir {
            self.sync_below(&src_key).await?;
            self.rename_prefix(src.ino, &src_key, &format!("{parent_key}{new_name}/"))
                .await
                .map_err(copy_refused_is_cross_device)?;
        } else {
            self.sync_file(src.ino).await?;
            let dst_key = format!("{parent_key}{new_name}");
            let stored = self.stored_as(src.ino);
            let new_type = match src.attr.kind {
                Kind::File => kept::type_of_name(new_name),
                _ => None,
            };
            let dst_is_new = target.is_none();
            retyped = self
                .copy_object(
                    &src_key,
                    &dst_key,
                    src.attr.size,
                    stored,
                    new_type,
                    dst_is_new,
                )
                .await
                .map_err(copy_refused_is_cross_device)?;
            self.rekey_changes(src.ino, &dst_key).await;
            self.client.delete(&src_key).await?;
            self.cancel_pending_delete(&dst_key);
            self.cache.invalidate(&dst_key);
        }
        self.cache.invalidate(&src_key);
        self.snapshots.made(new_parent, new_name);
        let moved = {
            let mut t = lock(&self.inodes);
            t.rename(src.ino, new_parent, new_name);
            if let (Some(kept), Some(new_type)) =
                (t.get_mut(src.ino).and_then(|n| n.kept.as_mut()), retyped)
            {
                kept.content_type = Some(new_type);
            }
            t.mark_missing(parent, name, Instant::now() + self.config.negative_ttl);
            // Files being changed under a renamed directory.
            let new_prefix = format!("{parent_key}{new_name}/");
            let changing = if is_dir {
                self.writes.inos()
            } else {
                Vec::new()
            };
            changing
                .into_iter()
                .filter_map(|ino| t.get(ino).map(|n| (ino, n.key.clone())))
                .filter(|(_, key)| key.starts_with(&new_prefix))
                .collect::<Vec<_>>()
        };
        for (ino, key) in moved {
            self.rekey_changes(ino, &key).await;
        }
        Ok(())
    }

    /// Points the change state of `ino`, if one is open (a writer that has
    /// not closed, a close not yet released), at the key its object was
    /// copied to: its reads and uploads of unchanged parts come from there.
    async fn rekey_changes(&self, ino: u64, key: &str) {
        if let Some(state) = self.writes.get(ino) {
            if let Some(base) = &mut state.lock().await.base {
                base.key = key.into();
            }
        }
    }

    /// What this mount knows of how `ino`'s object is stored: all of it
    /// within the TTL after writing it, as with a directory marker.
    fn stored_as(&self, ino: u64) -> Stored {
        let t = lock(&self.inodes);
        let Some(node) = t.get(ino) else {
            return Stored::Unknown;
        };
        match (node.own_headers(Instant::now()), &node.etag) {
            (Some(written), Some(etag)) => Stored::Written(written, etag.clone()),
            _ => storage_of(node, node.storage_class.clone()),
        }
    }

    /// How each of `listed` (the keys under directory `dir`) is stored,
    /// where this mount knows that version exactly (an `ls -l` read it):
    /// the copy of an object known so needs no HEAD.
    fn stored_below(&self, dir: u64, listed: &[ListEntry]) -> Vec<Stored> {
        let t = lock(&self.inodes);
        let mut known: HashMap<&str, &Node> = HashMap::new();
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            for &ino in t.get(d).map(|n| n.children.values()).into_iter().flatten() {
                if let Some(node) = t.get(ino) {
                    if node.attr.kind == Kind::Dir {
                        dirs.push(ino);
                    }
                    known.insert(&node.key, node);
                }
            }
        }
        listed
            .iter()
            .map(|o| match known.get(o.key.as_str()) {
                Some(node) if node.knows_version(&o.etag, o.last_modified) => {
                    storage_of(node, o.storage_class.clone())
                }
                _ => Stored::Unknown,
            })
            .collect()
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
    /// 5 GB single-copy limit. The copy is stored as the source is
    /// (`stored`, else asked with a HEAD), which COS would otherwise reset
    /// to STANDARD and unencrypted. A source whose type says nothing gets
    /// `new_type` (what the new name says, as cosfs and s3fs do): the copy
    /// then replaces the metadata with the source's as this mount wrote it
    /// or a HEAD just read it, on condition that it is still that version
    /// (else the type stays). Returns the type given.
    /// A copy answered with something that is not a copy result may have
    /// written something else at `dst`: it is removed when `dst_is_new`
    /// (nothing of the user's was there).
    async fn copy_object(
        &self,
        src: &str,
        dst: &str,
        size: u64,
        stored: Stored,
        new_type: Option<&str>,
        dst_is_new: bool,
    ) -> FsResult<Option<String>> {
        let retype = |attrs: &ObjectAttrs| {
            new_type
                .filter(|_| kept::says_nothing(attrs.content_type.as_deref()))
                .map(String::from)
        };
        if size <= MAX_PART_SIZE {
            let (mut attrs, read) = match stored {
                Stored::Written(attrs, etag) => (attrs, Some(etag)),
                Stored::Settings(attrs) if retype(&attrs).is_none() => (attrs, None),
                _ => {
                    let info = self.client.head(src).await?;
                    let etag = info.etag.clone();
                    (info.into_attrs(), Some(etag))
                }
            };
            let mut retyped = retype(&attrs);
            let copied = match (&retyped, &read) {
                (Some(new_type), Some(etag)) => {
                    attrs.content_type = Some(new_type.clone());
                    let replaced = MetadataDirective::Replaced;
                    match self
                        .client
                        .copy(src, dst, Some(etag), replaced, &attrs, size)
                        .await
                    {
                        Err(e) if e.status() == Some(412) => {
                            retyped = None;
                            self.client
                                .copy(src, dst, None, MetadataDirective::Copy, &attrs, size)
                                .await
                        }
                        copied => copied,
                    }
                }
                _ => {
                    self.client
                        .copy(src, dst, None, MetadataDirective::Copy, &attrs, size)
                        .await
                }
            };
            if let (Err(e @ CosError::InvalidResponse(_)), true) = (&copied, dst_is_new) {
                warn!("removing {dst:?}, which the failed copy from {src:?} may have written: {e}");
                if let Err(e) = self.client.delete(dst).await {
                    warn!("could not remove {dst:?}: {e}");
                }
            }
            copied?;
            return Ok(retyped);
        }
        let info = self.client.head(src).await?;
        let (size, etag) = (info.size, info.etag.clone());
        let mut attrs = info.into_attrs();
        let retyped = retype(&attrs);
        if let Some(new_type) = &retyped {
            attrs.content_type = Some(new_type.clone());
        }
        let part = fixed_part_size(1 << 30, size);
        let upload_id = self.client.create_multipart(dst, &attrs).await?;
        let ranges: Vec<(u32, std::ops::Range<u64>)> = (0..size.div_ceil(part))
            .map(|i| (i as u32 + 1, i * part..((i + 1) * part).min(size)))
            .collect();
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
        Ok(retyped)
    }

    /// Renames every key under `src` (directory `dir`'s) to the same key
    /// under `dst`: all copies first (in parallel), then the deletes.
    async fn rename_prefix(&self, dir: u64, src: &str, dst: &str) -> FsResult<()> {
        let mut keys = Vec::new();
        let mut walker = ListWalker::new(src, None);
        while let Some(page) = walker.next_page(&*self.client).await? {
            keys.extend(page.objects);
        }
        // A copy of an object this mount does not know exactly HEADs it
        // first: a listing does not name the encryption.
        let stored = self.stored_below(dir, &keys);
        let copies: Vec<(String, String, u64, Stored)> = keys
            .iter()
            .zip(stored)
            .map(|(o, stored)| {
                let to = format!("{dst}{}", &o.key[src.len()..]);
                (o.key.clone(), to, o.size, stored)
            })
            .collect();
        stream::iter(copies)
            .map(|(from, to, size, stored)| async move {
                match self.copy_object(&from, &to, size, stored, None, true).await {
                    Err(FsError::NotFound) if from.ends_with('/') => {
                        self.recreate_marker(&from, &to).await
                    }
                    copied => copied.map(|_| ()),
                }
            })
            .buffer_unordered(RENAME_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        if !keys.iter().any(|o| o.key == src) {
            // An implicit directory: give the new one a marker only if it
            // would otherwise vanish (it has no keys).
            if keys.is_empty() {
                let attrs = ObjectAttrs {
                    content_type: Some(DIR_CONTENT_TYPE.into()),
                    ..ObjectAttrs::default()
                };
                self.client.put(dst, Bytes::new(), &attrs).await?;
            }
        }
        // Markers go after what they hold, deepest first: a server that
        // keeps `dir/` keys as folders (SeaweedFS) deletes only empty ones.
        let (markers, files): (Vec<String>, Vec<String>) = keys
            .into_iter()
            .map(|o| o.key)
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
        let mut attrs = match self.client.head(src).await {
            Ok(info) => info.into_attrs(),
            Err(e) if e.is_not_found() => ObjectAttrs::default(),
            Err(e) => return Err(e.into()),
        };
        attrs
            .content_type
            .get_or_insert_with(|| DIR_CONTENT_TYPE.into());
        self.client.put(dst, Bytes::new(), &attrs).await?;
        Ok(())
    }
}

/// What this mount knows of how an object is stored, which a copy must
/// name to keep it so.
enum Stored {
    /// Nothing: a HEAD asks.
    Unknown,
    /// Its type, class and encryption: all a copy that keeps the metadata
    /// names.
    Settings(ObjectAttrs),
    /// All its headers as this mount wrote them, and the version written:
    /// what a copy that replaces the metadata sends.
    Written(ObjectAttrs, String),
}

/// What a copy of `node`'s object must name to store it as it is (with
/// storage class `class`), if the node holds what only a HEAD tells.
fn storage_of(node: &Node, class: StorageClass) -> Stored {
    match &node.kept {
        Some(kept) => Stored::Settings(ObjectAttrs {
            content_type: kept.content_type.clone(),
            storage_class: class,
            encryption: kept.encryption.clone(),
            ..ObjectAttrs::default()
        }),
        None => Stored::Unknown,
    }
}
