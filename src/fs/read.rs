//! Reads through open handles: from the version the handle opened, via
//! the block cache, or, while the file has changes in progress, from those
//! changes (a stream is staged first, so a read sees every byte written
//! before it). A version replaced under a handle reads as `ESTALE`, never
//! as a mix of two versions.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use super::write::{Content, local_io};
use super::{Fs, FsError, FsResult, lock};
use crate::cache::{ObjectVersion, ReadAhead};
use crate::cos::ObjectClient;
use crate::upload::staged::{Piece, StagedFile};

impl<C: ObjectClient> Fs<C> {
    /// Reads from an open file.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let file = lock(&self.files)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle)?;
        let Some(state) = self.writes.get(file.ino) else {
            if file.object.etag.is_empty() {
                // Opened while the file was being written: read what was
                // uploaded since.
                let current = self.current_version(file.ino)?;
                return self
                    .read_version(&current, offset, u64::from(size), &file.reader)
                    .await;
            }
            // At the key the file has now: a rename copies the version
            // this handle reads to its new key.
            let object = match lock(&self.inodes).get(file.ino) {
                Some(node) if *node.key != *file.object.key => ObjectVersion {
                    key: node.key.as_str().into(),
                    ..file.object.clone()
                },
                _ => file.object.clone(),
            };
            return self
                .read_version(&object, offset, u64::from(size), &file.reader)
                .await;
        };
        let mut st = state.lock().await;
        if matches!(st.content, Content::Stream(_)) {
            self.stage(&mut st, file.ino).await?;
        }
        match &st.content {
            Content::Failed(e) => Err(e.clone()),
            Content::Staged(staged) => {
                self.read_staged(staged, offset, u64::from(size), &file.reader)
                    .await
            }
            _ => match &st.base {
                Some(base) => {
                    self.read_version(base, offset, u64::from(size), &file.reader)
                        .await
                }
                None => Ok(Bytes::new()),
            },
        }
    }

    /// `len` bytes of `obj` at `offset`, through the block cache; a version
    /// that is no longer the object's (412) is `Stale`.
    async fn read_version(
        &self,
        obj: &ObjectVersion,
        offset: u64,
        len: u64,
        reader: &Mutex<ReadAhead>,
    ) -> FsResult<Bytes> {
        self.cache
            .read(obj, offset, len, reader)
            .await
            .map_err(|e| {
                if e.status() == Some(412) {
                    FsError::Stale
                } else {
                    e.into()
                }
            })
    }

    /// `len` bytes of a staged file at `offset`: written pieces from the
    /// staging file, the others from its base, holes as zeros.
    async fn read_staged(
        &self,
        staged: &StagedFile,
        offset: u64,
        len: u64,
        reader: &Mutex<ReadAhead>,
    ) -> FsResult<Bytes> {
        let mut out = BytesMut::new();
        for piece in staged.pieces(offset..offset + len) {
            match piece {
                Piece::Local(r) => out.extend_from_slice(&staged.read_local(r).map_err(local_io)?),
                Piece::Base(r) => {
                    let base = staged.base().expect("base pieces exist only with a base");
                    out.extend_from_slice(
                        &self
                            .read_version(base, r.start, r.end - r.start, reader)
                            .await?,
                    );
                }
                Piece::Zero(r) => out.resize(out.len() + (r.end - r.start) as usize, 0),
            }
        }
        Ok(out.freeze())
    }
}
