//! The write path: a new or truncated file written front to back streams
//! as a multipart upload; anything else goes to a staging file. flush,
//! fsync and the last close upload. A failed upload is returned to the
//! application and leaves no partial object; a failed stream loses its
//! data, so the content stays `Failed` for every later call, while a
//! staging file is kept for the next flush to retry. After an upload the
//! state is clean on the new object, which the inode then names.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use log::{debug, warn};

use super::attr::{Attr, DIR_CONTENT_TYPE, MANAGED_META, SetIdBits, stored_mtime, to_meta};
use super::kept::Kept;
use super::xattr::Xattrs;
use super::{Fs, FsError, FsResult, SharedWrite, Written, lock};
use crate::cache::ObjectVersion;
use crate::cos::{
    CosError, MAX_META_BYTES, MetadataDirective, ObjectAttrs, ObjectClient, PutResult,
    StorageClass, meta_size,
};
use crate::upload::staged::StagedFile;
use crate::upload::stream::StreamUpload;
use crate::upload::upload_staged;

/// Where the new content of a changed file is.
pub(super) enum Content<C> {
    /// Nothing changed since `base`.
    Clean,
    /// Written front to back: parts are uploading (boxed: the largest
    /// state by far).
    Stream(Box<StreamUpload<C>>),
    /// Changed elsewhere: held in a staging file.
    Staged(StagedFile),
    /// An upload failed and the data is gone: every later write, flush and
    /// fsync reports this.
    Failed(FsError),
}

/// The changes in progress on one file (shared by all its handles).
pub(super) struct WriteState<C> {
    /// The object as it is in COS now (`None`: not created yet).
    pub(super) base: Option<ObjectVersion>,
    pub(super) content: Content<C>,
    /// Attributes as the application sees them.
    pub(super) attr: Attr,
    /// The content must be uploaded.
    pub(super) data_dirty: bool,
    /// Only the metadata must be rewritten.
    pub(super) meta_dirty: bool,
    /// Unlinked: nothing is uploaded any more.
    pub(super) unlinked: bool,
    /// The modification time was set explicitly (utimens) since the
    /// content started streaming.
    pub(super) mtime_set: bool,
    /// Extended attributes the object gets (`None`: not known, keep the
    /// object's own on a metadata rewrite).
    pub(super) xattrs: Option<Xattrs>,
    /// The class the object is in, which a rewrite keeps.
    pub(super) storage_class: StorageClass,
    /// The object's content type, headers and encryption, which a
    /// rewrite keeps.
    pub(super) kept: Kept,
}

impl<C> WriteState<C> {
    /// The state of a file that exists as `base`, unchanged.
    pub(super) fn clean(
        base: Option<ObjectVersion>,
        attr: Attr,
        xattrs: Option<Xattrs>,
        storage_class: StorageClass,
        kept: Kept,
    ) -> WriteState<C> {
        WriteState {
            xattrs,
            storage_class,
            kept,
            mtime_set: false,
            base,
            content: Content::Clean,
            attr,
            data_dirty: false,
            meta_dirty: false,
            unlinked: false,
        }
    }

    fn is_dirty(&self) -> bool {
        self.data_dirty || self.meta_dirty
    }

    /// The headers the object gets.
    pub(super) fn object_attrs(&self) -> ObjectAttrs {
        self.kept
            .object_attrs(&self.attr, self.xattrs.as_ref(), &self.storage_class)
    }
}

impl<C: ObjectClient> WriteState<C> {
    /// The headers a stream finishes with. A multipart upload got its
    /// headers at its start: unless the time was set explicitly, the object
    /// keeps the mtime it started with (a self-copy per large file just to
    /// move the time by the upload's duration is not worth it).
    fn stream_attrs(&mut self) -> ObjectAttrs {
        if let (Content::Stream(stream), false) = (&self.content, self.mtime_set) {
            let started = stream.attrs().meta.clone();
            if let (true, Some(mtime)) = (stream.has_uploaded_parts(), stored_mtime(&started)) {
                self.attr.mtime = mtime;
            }
        }
        self.object_attrs()
    }
}

/// Warns that uploading `key` failed with `err` (`more` said after
/// "failed"), within the per-kind limit of upload failures.
fn warn_upload_failed(key: &str, err: &FsError, more: &str) {
    let kind = format!("upload {}", err.cos_code());
    crate::warn_limited!(&kind, "uploading {key:?} failed{more}: {err}");
}

pub(super) fn local_io(e: std::io::Error) -> FsError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        crate::warn_limited!("staging disk full", "{e}");
        FsError::NoSpace
    } else {
        FsError::LocalIo(e.to_string())
    }
}

impl<C: ObjectClient> Fs<C> {
    /// The change state of `ino`, created (clean, on the current object) if
    /// needed; counts a writer when `writer` is set.
    pub(super) async fn write_state(&self, ino: u64, writer: bool) -> FsResult<SharedWrite<C>> {
        if self.writes.get(ino).is_none() {
            self.revalidate(ino, false, None, false).await?;
        }
        let (base, attr, xattrs, class, kept) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            let base = node.etag.clone().map(|etag| ObjectVersion {
                key: node.key.as_str().into(),
                etag: etag.into(),
                size: node.attr.size,
            });
            let class = node.storage_class.clone();
            // Known: the node was just revalidated (a HEAD or GET), or
            // this mount made it.
            let kept = node.kept.clone().unwrap_or_default();
            (base, node.attr, node.xattrs.clone(), class, kept)
        };
        Ok(self.writes.get_or_insert(ino, writer, || {
            WriteState::clean(base, attr, xattrs, class, kept)
        }))
    }

    /// Writes to an open file at `offset`, or at its end for a handle
    /// opened with `O_APPEND` (`set_id`: what the write does to the set-ID
    /// bits).
    pub async fn write(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        set_id: SetIdBits,
    ) -> FsResult<Written> {
        let file = lock(&self.files)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle)?;
        if !file.writable {
            return Err(FsError::BadHandle);
        }
        let state = self.writes.get(file.ino).ok_or(FsError::BadHandle)?;
        let mut st = state.lock().await;
        let offset = if file.append { st.attr.size } else { offset };
        if let Content::Clean = st.content {
            let base_size = st.base.as_ref().map_or(0, |b| b.size);
            if base_size == 0 && offset == 0 {
                let key = self.key_of(file.ino)?;
                let attrs = st.object_attrs();
                st.content = Content::Stream(self.new_stream(&key, attrs));
            } else {
                self.stage(&mut st, file.ino).await?;
            }
        }
        if matches!(&st.content, Content::Stream(s) if s.size() != offset) {
            self.stage(&mut st, file.ino).await?;
        }
        match &mut st.content {
            Content::Failed(e) => return Err(e.clone()),
            Content::Stream(stream) => match stream.write(data).await {
                Ok(true) => {}
                Ok(false) => {
                    debug!(
                        "memory budget exhausted; inode {} continues in a staging file",
                        file.ino
                    );
                    self.stage(&mut st, file.ino).await?;
                    if let Content::Staged(staged) = &mut st.content {
                        staged.write(offset, data).map_err(local_io)?;
                    }
                }
                Err(e) => {
                    let key = stream.key().to_string();
                    return Err(self.fail(&mut st, &key, e).await);
                }
            },
            Content::Staged(staged) => staged.write(offset, data).map_err(local_io)?,
            Content::Clean => unreachable!("a clean file became a stream or a staging file above"),
        }
        st.attr.size = st.attr.size.max(offset + data.len() as u64);
        st.attr.mtime = SystemTime::now();
        st.meta_dirty |= st.attr.apply_set_id(set_id);
        st.data_dirty = true;
        self.mark_pending(file.ino, st.attr);
        Ok(Written {
            len: data.len() as u32,
            offset,
        })
    }

    pub(super) fn new_stream(&self, key: &str, attrs: ObjectAttrs) -> Box<StreamUpload<C>> {
        Box::new(StreamUpload::new(
            self.client.clone(),
            self.budget.clone(),
            self.part_buffers.clone(),
            key,
            attrs,
            self.config.upload.clone(),
        ))
    }

    /// Marks the content of `key` lost after a failed upload and aborts
    /// what remains.
    async fn fail(&self, st: &mut WriteState<C>, key: &str, error: CosError) -> FsError {
        if let Content::Stream(stream) = std::mem::replace(&mut st.content, Content::Clean) {
            stream.abort().await;
        }
        let err = FsError::from(error);
        warn_upload_failed(key, &err, "; the file's new content is lost");
        st.content = Content::Failed(err.clone());
        err
    }

    /// Moves the content into a staging file: a clean file starts one over
    /// its base; a stream hands over its buffer, or, when parts already went
    /// up, completes (the object then holds what was written so far) and
    /// becomes the base.
    pub(super) async fn stage(&self, st: &mut WriteState<C>, ino: u64) -> FsResult<()> {
        match std::mem::replace(&mut st.content, Content::Clean) {
            Content::Clean => {
                st.content = Content::Staged(
                    StagedFile::new(self.staging.clone(), st.base.clone()).map_err(local_io)?,
                );
            }
            Content::Stream(stream) => {
                if let Some(buffered) = stream.buffered().map(<[u8]>::to_vec) {
                    stream.abort().await;
                    let mut staged =
                        StagedFile::new(self.staging.clone(), None).map_err(local_io)?;
                    staged.write(0, &buffered).map_err(local_io)?;
                    st.content = Content::Staged(staged);
                    return Ok(());
                }
                let size = stream.size();
                let key = stream.key().to_string();
                match stream.finish(&st.stream_attrs()).await {
                    Ok(put) => {
                        let base = self.uploaded(ino, &key, &put, st, size, false);
                        st.content = Content::Staged(
                            StagedFile::new(self.staging.clone(), Some(base)).map_err(local_io)?,
                        );
                        st.data_dirty = true;
                    }
                    Err(e) => {
                        let err = FsError::from(e);
                        st.content = Content::Failed(err.clone());
                        return Err(err);
                    }
                }
            }
            other => st.content = other,
        }
        Ok(())
    }

    /// Applies a size change to the content.
    pub(super) async fn truncate_state(
        &self,
        st: &mut WriteState<C>,
        ino: u64,
        size: u64,
    ) -> FsResult<()> {
        if let Content::Failed(e) = &st.content {
            return Err(e.clone());
        }
        if size == st.attr.size {
            return Ok(());
        }
        if size == 0 {
            if let Content::Stream(stream) = std::mem::replace(&mut st.content, Content::Clean) {
                stream.abort().await;
            }
            let key = self.key_of(ino)?;
            st.content = Content::Stream(self.new_stream(&key, st.object_attrs()));
        } else {
            self.stage(st, ino).await?;
            if let Content::Staged(staged) = &mut st.content {
                staged.truncate(size).map_err(local_io)?;
            }
        }
        st.attr.size = size;
        st.attr.mtime = SystemTime::now();
        st.data_dirty = true;
        self.mark_pending(ino, st.attr);
        Ok(())
    }

    /// Records local attributes in the inode and protects them from listings.
    pub(super) fn mark_pending(&self, ino: u64, attr: Attr) {
        if let Some(node) = lock(&self.inodes).get_mut(ino) {
            node.attr = attr;
            node.pending = true;
        }
    }

    /// Uploads outstanding changes of `ino` (flush, fsync, last close).
    pub(super) async fn sync(&self, st: &mut WriteState<C>, ino: u64) -> FsResult<()> {
        if st.unlinked {
            if let Content::Stream(stream) = std::mem::replace(&mut st.content, Content::Clean) {
                stream.abort().await;
            }
            st.data_dirty = false;
            st.meta_dirty = false;
            return Ok(());
        }
        if let Content::Failed(e) = &st.content {
            return Err(e.clone());
        }
        if !st.is_dirty() {
            return Ok(());
        }
        let key = self.key_of(ino)?;
        let attrs = st.stream_attrs();
        let size = st.attr.size;
        // Whether this upload writes every header: a single PUT or an
        // upload of staged content (not a multipart stream, which may keep
        // the ones it started with, nor a metadata rewrite, which keeps
        // others').
        let mut whole = match &st.content {
            Content::Stream(stream) => !stream.has_uploaded_parts(),
            Content::Clean => st.data_dirty,
            _ => true,
        };
        let result = match std::mem::replace(&mut st.content, Content::Clean) {
            Content::Stream(stream) => match stream.finish(&attrs).await {
                Ok(put) => Ok(put),
                Err(e) => return Err(self.fail(st, &key, e).await),
            },
            Content::Staged(staged) => {
                let r = upload_staged(
                    &self.client,
                    &self.budget,
                    &key,
                    &staged,
                    &attrs,
                    &self.config.upload,
                )
                .await;
                if r.is_err() {
                    st.content = Content::Staged(staged);
                }
                r.map_err(FsError::from)
            }
            Content::Clean if st.data_dirty => self
                .client
                .put(&key, Bytes::new(), &attrs)
                .await
                .map_err(FsError::from),
            Content::Clean => {
                let known = st.base.as_ref().map(|b| b.etag.to_string());
                let written = known
                    .as_deref()
                    .and_then(|etag| Some((self.written_as(ino, etag)?, etag)));
                let r = match written {
                    Some((written, etag)) => self
                        .rewrite_own_meta(&key, written, etag, &st.attr, st.xattrs.as_ref())
                        .await
                        .map(|(put, all)| {
                            whole = all;
                            put
                        }),
                    None => {
                        self.rewrite_meta(&key, &st.attr, known.as_deref(), st.xattrs.as_ref())
                            .await
                    }
                };
                // A metadata change that failed was reported: drop it
                // rather than try it again at every flush and at unmount.
                st.meta_dirty &= r.is_ok();
                r
            }
            Content::Failed(e) => Err(e),
        };
        match result {
            Ok(put) => {
                self.uploaded(ino, &key, &put, st, size, whole);
                Ok(())
            }
            Err(e) if e.is_routine() => {
                debug!("uploading {key:?} failed: {e}");
                Err(e)
            }
            Err(e) => {
                warn_upload_failed(&key, &e, "");
                Err(e)
            }
        }
    }

    /// Rewrites an object's metadata in place (self-copy, `Replaced`),
    /// keeping its content type and foreign metadata. `known` is the ETag
    /// the mount's attributes came from: when the object is no longer that
    /// version (another client wrote it), nothing is written and the
    /// change fails with `ESTALE`, so a newer version never gets this
    /// mount's stale times and sizes. The copy is conditional on the
    /// version just read for the same reason.
    pub(super) async fn rewrite_meta(
        &self,
        key: &str,
        attr: &Attr,
        known: Option<&str>,
        xattrs: Option<&Xattrs>,
    ) -> FsResult<PutResult> {
        let info = self.client.head(key).await?;
        if key.ends_with('/') {
            self.marker_meta.read_back(key, &info.meta);
        }
        if known.is_some_and(|etag| etag != info.etag) {
            debug!(
                "{key:?} changed since it was read (ETag {} now); its attributes are not rewritten",
                info.etag
            );
            return Err(FsError::Stale);
        }
        let (etag, size) = (info.etag.clone(), info.size);
        let attrs = with_attributes(info.into_attrs(), attr, xattrs)?;
        Ok(self
            .client
            .copy(
                key,
                key,
                Some(&etag),
                MetadataDirective::Replaced,
                &attrs,
                size,
            )
            .await?)
    }

    /// Rewrites the metadata of an object this mount wrote whole as
    /// `written`, version `etag`, without asking what it holds: one
    /// request, conditional on that version. When another client wrote it
    /// since, does what [`rewrite_meta`](Self::rewrite_meta) does (which
    /// finds the new version and fails `ESTALE`). True when every header
    /// written is known (the first way).
    async fn rewrite_own_meta(
        &self,
        key: &str,
        written: ObjectAttrs,
        etag: &str,
        attr: &Attr,
        xattrs: Option<&Xattrs>,
    ) -> FsResult<(PutResult, bool)> {
        let attrs = with_attributes(written, attr, xattrs)?;
        let copied = self
            .client
            .copy(
                key,
                key,
                Some(etag),
                MetadataDirective::Replaced,
                &attrs,
                attr.size,
            )
            .await;
        match copied {
            Ok(put) => Ok((put, true)),
            Err(e) if e.status() == Some(412) => {
                let put = self.rewrite_meta(key, attr, Some(etag), xattrs).await?;
                Ok((put, false))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The headers this mount wrote `ino`'s object with, whole, if it did
    /// so within the TTL and the object is still version `known`.
    fn written_as(&self, ino: u64, known: &str) -> Option<ObjectAttrs> {
        let t = lock(&self.inodes);
        let node = t.get(ino).filter(|n| n.etag.as_deref() == Some(known))?;
        node.own_headers(Instant::now())
    }

    /// Rewrites the marker `key` of a directory with `attr` (and `xattrs`
    /// when given), creating it for an implicit directory.
    pub(super) async fn rewrite_marker(
        &self,
        key: &str,
        attr: &Attr,
        known: Option<&str>,
        xattrs: Option<&Xattrs>,
    ) -> FsResult<()> {
        if key.is_empty() {
            return Err(FsError::NotPermitted);
        }
        match self.rewrite_meta(key, attr, known, xattrs).await {
            Err(FsError::NotFound) => self.put_marker(key, attr, xattrs).await.map(|_| ()),
            other => other.map(|_| ()),
        }
    }

    /// Writes the marker `key` of a directory afresh: its attributes,
    /// `xattrs` when given, and nothing else.
    pub(super) async fn put_marker(
        &self,
        key: &str,
        attr: &Attr,
        xattrs: Option<&Xattrs>,
    ) -> FsResult<PutResult> {
        let mut meta = to_meta(attr);
        if let Some(x) = xattrs {
            x.store(&mut meta);
        }
        if meta_size(&meta) > MAX_META_BYTES {
            return Err(FsError::TooBig);
        }
        let attrs = ObjectAttrs {
            content_type: Some(DIR_CONTENT_TYPE.into()),
            meta,
            ..ObjectAttrs::default()
        };
        let put = self.client.put(key, Bytes::new(), &attrs).await?;
        self.marker_meta.wrote(key);
        Ok(put)
    }

    /// The upload of `key` succeeded: the state is clean on the new object,
    /// all of whose headers are the state's when `whole`.
    fn uploaded(
        &self,
        ino: u64,
        key: &str,
        put: &PutResult,
        st: &mut WriteState<C>,
        size: u64,
        whole: bool,
    ) -> ObjectVersion {
        let base = ObjectVersion {
            key: key.into(),
            etag: put.etag.as_str().into(),
            size,
        };
        st.base = Some(base.clone());
        st.data_dirty = false;
        st.meta_dirty = false;
        self.cache.invalidate(key);
        lock(&self.cached_etags).insert(ino, put.etag.clone());
        if let Some(node) = lock(&self.inodes).get_mut(ino) {
            node.attr = st.attr;
            node.attr.size = size;
            node.etag = Some(put.etag.clone());
            node.modified = None;
            node.exact = true;
            node.pending = false;
            // A whole upload wrote what the state holds, so the node holds
            // it too ([`Node::own_headers`] rebuilds it).
            node.own_object = whole;
            if whole {
                node.kept = Some(st.kept.clone());
                node.storage_class = st.storage_class.clone();
            }
            if whole || st.xattrs.is_some() {
                node.xattrs = st.xattrs.clone();
            }
            node.valid_until = Instant::now() + self.config.metadata_ttl;
            self.snapshots.made(node.parent, &node.name);
        }
        debug!("uploaded {key:?} ({size} bytes, ETag {})", put.etag);
        base
    }

    /// flush: called at every close(2) of a handle; uploads changes.
    pub async fn flush(&self, fh: u64) -> FsResult<()> {
        let Some(file) = lock(&self.files).get(&fh).cloned() else {
            return Ok(());
        };
        match self.writes.get(file.ino) {
            Some(state) if file.writable => self.sync(&mut *state.lock().await, file.ino).await,
            _ => Ok(()),
        }
    }

    /// fsync: uploads changes of the file now.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        self.flush(fh).await
    }

    /// Forgets a state nobody writes through any more, unless it still has
    /// changes to upload (a failed upload that a later fsync may retry).
    pub(super) fn retire(&self, ino: u64, state: &SharedWrite<C>) {
        let retired = self.writes.retire(ino, state, |st| {
            !st.is_dirty() || st.unlinked || matches!(st.content, Content::Failed(_))
        });
        if retired {
            // Whatever was not uploaded is gone: believe COS again.
            if let Some(node) = lock(&self.inodes).get_mut(ino) {
                if node.pending {
                    node.pending = false;
                    node.exact = false;
                    node.valid_until = Instant::now();
                }
            }
        }
    }

    /// Uploads every change still pending (at unmount).
    pub async fn sync_all(&self) {
        for (ino, state) in self.writes.all() {
            if let Err(e) = self.sync(&mut *state.lock().await, ino).await {
                warn!("changes to inode {ino} could not be uploaded at unmount: {e}");
            }
        }
    }
}

/// `attrs` with the mount's own metadata replaced by `attr`'s and
/// `xattrs` (when given), within COS's limit on metadata.
fn with_attributes(
    mut attrs: ObjectAttrs,
    attr: &Attr,
    xattrs: Option<&Xattrs>,
) -> FsResult<ObjectAttrs> {
    for name in MANAGED_META {
        attrs.meta.remove(name);
    }
    attrs.meta.extend(to_meta(attr));
    if let Some(x) = xattrs {
        x.store(&mut attrs.meta);
    }
    if meta_size(&attrs.meta) > MAX_META_BYTES {
        return Err(FsError::TooBig);
    }
    Ok(attrs)
}
