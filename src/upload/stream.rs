//! Streaming uploads for files written sequentially from offset 0: data is
//! buffered one part at a time (memory drawn from the global budget, so
//! writers wait rather than exhaust memory), full parts upload in the
//! background while the application keeps writing, and `finish` only waits
//! for the tail. Small files go up as a single PUT.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use log::debug;
use tokio::task::JoinHandle;

use super::{UploadConfig, abort, stream_part_size};
use crate::cache::pool::PoolBuffers;
use crate::cache::{MemoryBudget, Reservation};
use crate::cos::BodyBuffers;
use crate::cos::{CosError, CosResult, ObjectAttrs, ObjectClient, PartInfo, PutResult};

/// Budget is taken in steps of this size as the buffer fills.
const RESERVE_STEP: u64 = 1 << 20;
/// How long a small file waits for memory before it goes to disk instead.
const SPILL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// An upload in progress of a file being written front to back.
pub struct StreamUpload<C> {
    client: Arc<C>,
    budget: Arc<MemoryBudget>,
    key: String,
    attrs: ObjectAttrs,
    config: UploadConfig,
    /// Where whole part buffers come from, so large files recycle them.
    part_buffers: PoolBuffers,
    buffer: Vec<u8>,
    reservations: Vec<Reservation>,
    reserved: u64,
    size: u64,
    upload_id: Option<String>,
    next_part: u32,
    inflight: VecDeque<JoinHandle<CosResult<PartInfo>>>,
    parts: Vec<PartInfo>,
}

impl<C: ObjectClient> StreamUpload<C> {
    /// A new, empty upload of `key` with `attrs`.
    pub fn new(
        client: Arc<C>,
        budget: Arc<MemoryBudget>,
        part_buffers: PoolBuffers,
        key: &str,
        attrs: ObjectAttrs,
        config: UploadConfig,
    ) -> Self {
        StreamUpload {
            client,
            budget,
            key: key.to_string(),
            attrs,
            config,
            part_buffers,
            buffer: Vec::new(),
            reservations: Vec::new(),
            reserved: 0,
            size: 0,
            upload_id: None,
            next_part: 1,
            inflight: VecDeque::new(),
            parts: Vec::new(),
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The key being written.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The attributes the object will get.
    pub fn attrs(&self) -> &ObjectAttrs {
        &self.attrs
    }

    /// Whether parts have gone to COS already (the data is no longer all here).
    pub fn has_uploaded_parts(&self) -> bool {
        self.upload_id.is_some()
    }

    /// Everything written, when no part was uploaded yet.
    pub fn buffered(&self) -> Option<&[u8]> {
        (!self.has_uploaded_parts()).then_some(&self.buffer[..])
    }

    /// Appends `data` (the caller checked it continues the stream).
    /// Returns `Ok(false)`, writing nothing, when no part went up yet and
    /// the memory budget stays exhausted for a second: the caller then moves
    /// the file to a staging file on disk instead of waiting (many files
    /// open for writing at once must not wait for each other forever).
    pub async fn write(&mut self, mut data: &[u8]) -> CosResult<bool> {
        let needed = self.buffer.len() as u64 + data.len() as u64;
        if !self.reserve_for(needed).await {
            return Ok(false);
        }
        while !data.is_empty() {
            let part_len = stream_part_size(self.config.part_size, self.next_part);
            let room = (part_len - self.buffer.len() as u64) as usize;
            let take = room.min(data.len());
            self.grow_for(part_len, take);
            self.buffer.extend_from_slice(&data[..take]);
            self.size += take as u64;
            data = &data[take..];
            if self.buffer.len() as u64 == part_len {
                self.seal_part().await?;
            }
        }
        Ok(true)
    }

    /// Makes room for `incoming` more bytes. A small file's buffer grows as
    /// needed; once the file passes 1 MiB (or its first part), the buffer
    /// is a whole part, taken from the pool when it has the pool's size.
    fn grow_for(&mut self, part_len: u64, incoming: usize) {
        let wanted = self.buffer.len() + incoming;
        if wanted <= self.buffer.capacity()
            || (self.next_part == 1 && wanted as u64 <= RESERVE_STEP)
        {
            return;
        }
        let mut part = if part_len == self.config.part_size {
            self.part_buffers.buffer(part_len as usize)
        } else {
            Vec::with_capacity(part_len as usize)
        };
        part.extend_from_slice(&self.buffer);
        self.buffer = part;
    }

    /// Shares the buffer as a body; a pooled buffer returns to the pool
    /// once the upload dropped it.
    fn take_body(&mut self) -> Bytes {
        let buffer = std::mem::take(&mut self.buffer);
        if buffer.capacity() as u64 == self.config.part_size {
            self.part_buffers.freeze(buffer)
        } else {
            Bytes::from(buffer)
        }
    }

    /// Holds budget for `needed` buffered bytes; gives up after a second
    /// only while nothing was uploaded (see [`write`](Self::write)).
    async fn reserve_for(&mut self, needed: u64) -> bool {
        while self.reserved < needed {
            let reservation = if self.has_uploaded_parts() {
                self.budget.reserve(RESERVE_STEP).await
            } else {
                match tokio::time::timeout(SPILL_PATIENCE, self.budget.reserve(RESERVE_STEP)).await
                {
                    Ok(r) => r,
                    Err(_) => return false,
                }
            };
            self.reservations.push(reservation);
            self.reserved += RESERVE_STEP;
        }
        true
    }

    /// Hands the full buffer to a background part upload, waiting for the
    /// oldest part when too many are in flight.
    async fn seal_part(&mut self) -> CosResult<()> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.client.create_multipart(&self.key, &self.attrs).await?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let body = self.take_body();
        // The part takes the budget that covers it; the rest stays for the
        // bytes already accepted beyond it.
        let steps = (body.len() as u64).div_ceil(RESERVE_STEP) as usize;
        let reservations: Vec<Reservation> = self
            .reservations
            .drain(..steps.min(self.reservations.len()))
            .collect();
        self.reserved = self.reservations.len() as u64 * RESERVE_STEP;
        let (client, key, number) = (self.client.clone(), self.key.clone(), self.next_part);
        self.next_part += 1;
        self.inflight.push_back(tokio::spawn(async move {
            let result = client.upload_part(&key, &upload_id, number, body).await;
            drop(reservations);
            result
        }));
        while self.inflight.len() >= self.config.part_concurrency.max(1) {
            self.join_oldest().await?;
        }
        Ok(())
    }

    async fn join_oldest(&mut self) -> CosResult<()> {
        let Some(task) = self.inflight.pop_front() else {
            return Ok(());
        };
        let part = task
            .await
            .map_err(|e| CosError::InvalidRequest(format!("part upload task failed: {e}")))??;
        self.parts.push(part);
        Ok(())
    }

    /// Uploads the tail and makes the object visible: one PUT when no part
    /// went up yet, otherwise the last part and Complete. A failure aborts
    /// the multipart upload.
    pub async fn finish(mut self, attrs: &ObjectAttrs) -> CosResult<PutResult> {
        let Some(upload_id) = self.upload_id.clone() else {
            let body = self.take_body();
            return self.client.put(&self.key, body, attrs).await;
        };
        let result = self.complete(&upload_id).await;
        if let Err(e) = &result {
            abort(self.client.as_ref(), &self.key, &upload_id, e).await;
        }
        let put = result?;
        if *attrs != self.attrs {
            // Attributes changed while the parts were uploading (chmod,
            // utimens): rewritten on the version just completed. A server
            // that cannot copy keeps the content with the first attributes
            // (it said why once); the data is durable either way.
            let copy = self
                .client
                .copy(
                    &self.key,
                    &self.key,
                    Some(&put.etag),
                    crate::cos::MetadataDirective::Replaced,
                    attrs,
                    self.size,
                )
                .await;
            return match copy {
                Err(CosError::Unsupported(why)) => {
                    debug!(
                        "{:?} keeps the attributes it was created with: {why}",
                        self.key
                    );
                    Ok(put)
                }
                other => other,
            };
        }
        Ok(put)
    }

    async fn complete(&mut self, upload_id: &str) -> CosResult<PutResult> {
        if !self.buffer.is_empty() {
            let body = self.take_body();
            let part = self
                .client
                .upload_part(&self.key, upload_id, self.next_part, body)
                .await?;
            self.parts.push(part);
        }
        while !self.inflight.is_empty() {
            self.join_oldest().await?;
        }
        self.parts.sort_by_key(|p| p.part_number);
        self.client
            .complete_multipart(&self.key, upload_id, &self.parts)
            .await
    }

    /// Gives up: stops part uploads and aborts the multipart upload.
    pub async fn abort(mut self) {
        for task in self.inflight.drain(..) {
            task.abort();
        }
        if let Some(id) = self.upload_id.take() {
            let cause = CosError::InvalidRequest("the file was discarded".into());
            abort(self.client.as_ref(), &self.key, &id, &cause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::memory::MemoryClient;

    const MB: u64 = 1 << 20;

    fn stream(client: &Arc<MemoryClient>, budget: u64) -> StreamUpload<MemoryClient> {
        let config = UploadConfig {
            part_size: MB,
            part_concurrency: 2,
        };
        StreamUpload::new(
            client.clone(),
            Arc::new(MemoryBudget::new(budget)),
            // The pool's idle parts are held from a budget of their own.
            PoolBuffers(crate::cache::pool::BufferPool::new(
                &MemoryBudget::new(32 * MB),
                MB as usize,
                4,
            )),
            "k",
            ObjectAttrs::default(),
            config,
        )
    }

    #[tokio::test]
    async fn small_files_are_one_put() {
        let client = Arc::new(MemoryClient::new());
        let mut s = stream(&client, 8 * MB);
        s.write(b"hello ").await.unwrap();
        s.write(b"world").await.unwrap();
        assert_eq!(s.buffered(), Some(&b"hello world"[..]));
        s.finish(&ObjectAttrs::default()).await.unwrap();
        assert_eq!(
            client.object("k").unwrap(),
            Bytes::from_static(b"hello world")
        );
        assert_eq!(
            (client.calls("put"), client.calls("create_multipart")),
            (1, 0)
        );
    }

    #[tokio::test]
    async fn large_files_stream_in_parts_within_the_budget() {
        let client = Arc::new(MemoryClient::new());
        let mut s = stream(&client, 4 * MB);
        let data: Vec<u8> = (0..5 * MB + 123).map(|i| (i % 199) as u8).collect();
        for chunk in data.chunks(100_000) {
            s.write(chunk).await.unwrap();
        }
        assert!(s.has_uploaded_parts());
        s.finish(&ObjectAttrs::default()).await.unwrap();
        assert_eq!(client.object("k").unwrap(), Bytes::from(data));
        assert_eq!(client.calls("upload_part"), 6);
        assert_eq!(client.pending_uploads(), 0);
    }

    #[tokio::test]
    async fn a_failed_part_fails_the_upload_and_aborts_it() {
        let client = Arc::new(MemoryClient::new());
        client.fail_next(
            "upload_part",
            CosError::service(500, "InternalError", "boom"),
        );
        let mut s = stream(&client, 8 * MB);
        let data = vec![1u8; 3 * MB as usize];
        let write = s.write(&data).await;
        let result = match write {
            Ok(_) => s.finish(&ObjectAttrs::default()).await.map(|_| ()),
            Err(e) => {
                s.abort().await;
                Err(e)
            }
        };
        assert_eq!(result.unwrap_err().code(), "InternalError");
        assert!(client.object("k").is_none(), "no partial object");
        assert_eq!(client.pending_uploads(), 0);
    }

    #[tokio::test]
    async fn changed_attributes_are_applied_after_completion() {
        let client = Arc::new(MemoryClient::new());
        let mut s = stream(&client, 8 * MB);
        s.write(&vec![0u8; 2 * MB as usize]).await.unwrap();
        let attrs = ObjectAttrs {
            meta: [("mode".to_string(), "33152".to_string())].into(),
            ..ObjectAttrs::default()
        };
        s.finish(&attrs).await.unwrap();
        assert_eq!(client.head("k").await.unwrap().meta["mode"], "33152");
    }
}
