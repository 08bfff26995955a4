//! A [`MemoryClient`] as the cache sees the HTTP client: every GET body
//! lands in the caller's buffers (the memory client hands out slices of
//! what it stores), the ranges asked for are recorded, and GETs can be held
//! at a gate so tests can see what waits on a GET in flight.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::cos::memory::MemoryClient;
use crate::cos::{
    CosResult, DeleteFailure, GetObject, GetOptions, ListPage, ListRequest, MetadataDirective,
    ObjectAttrs, ObjectClient, ObjectInfo, PartInfo, PutResult, UploadInfo,
};

/// The memory client, with GETs recorded and gated.
#[derive(Debug)]
pub struct TestClient {
    /// The bucket.
    pub inner: MemoryClient,
    ranges: Mutex<Vec<Range<u64>>>,
    gate: Semaphore,
    waiting: AtomicU64,
}

impl TestClient {
    /// An empty bucket whose GETs pass freely.
    pub fn new() -> TestClient {
        TestClient {
            inner: MemoryClient::new(),
            ranges: Mutex::new(Vec::new()),
            gate: Semaphore::new(Semaphore::MAX_PERMITS),
            waiting: AtomicU64::new(0),
        }
    }

    /// Holds every GET from now on until [`release`](Self::release).
    pub fn close_gate(&self) {
        let open = self.gate.available_permits();
        self.gate.forget_permits(open);
    }

    /// Lets `n` held (or future) GETs through.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// GETs waiting at the gate now.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::SeqCst)
    }

    /// The ranges GETs asked for, in order.
    pub fn ranges(&self) -> Vec<Range<u64>> {
        self.ranges.lock().unwrap().clone()
    }
}

impl ObjectClient for TestClient {
    async fn head_bucket(&self) -> CosResult<()> {
        self.inner.head_bucket().await
    }

    async fn head(&self, key: &str) -> CosResult<ObjectInfo> {
        self.inner.head(key).await
    }

    async fn get(&self, key: &str, opts: &GetOptions) -> CosResult<GetObject> {
        if let Some(r) = &opts.range {
            self.ranges.lock().unwrap().push(r.clone());
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.gate.acquire().await.expect("never closed");
        permit.forget();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut got = self.inner.get(key, opts).await?;
        if let Some(buffers) = &opts.buffers {
            let mut buf = buffers.buffer(got.body.len());
            buf.extend_from_slice(&got.body);
            got.body = buffers.freeze(buf);
        }
        Ok(got)
    }

    async fn put(&self, key: &str, body: Bytes, attrs: &ObjectAttrs) -> CosResult<PutResult> {
        self.inner.put(key, body, attrs).await
    }

    async fn delete(&self, key: &str) -> CosResult<()> {
        self.inner.delete(key).await
    }

    async fn delete_many(&self, keys: &[String]) -> CosResult<Vec<DeleteFailure>> {
        self.inner.delete_many(keys).await
    }

    async fn list_page(&self, req: &ListRequest) -> CosResult<ListPage> {
        self.inner.list_page(req).await
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        src_etag: Option<&str>,
        directive: MetadataDirective,
        attrs: &ObjectAttrs,
        src_size: u64,
    ) -> CosResult<PutResult> {
        self.inner
            .copy(src, dst, src_etag, directive, attrs, src_size)
            .await
    }

    async fn create_multipart(&self, key: &str, attrs: &ObjectAttrs) -> CosResult<String> {
        self.inner.create_multipart(key, attrs).await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> CosResult<PartInfo> {
        self.inner
            .upload_part(key, upload_id, part_number, body)
            .await
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src: &str,
        src_etag: Option<&str>,
        range: Range<u64>,
    ) -> CosResult<PartInfo> {
        self.inner
            .upload_part_copy(key, upload_id, part_number, src, src_etag, range)
            .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> CosResult<PutResult> {
        self.inner.complete_multipart(key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> CosResult<()> {
        self.inner.abort_multipart(key, upload_id).await
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> CosResult<Vec<PartInfo>> {
        self.inner.list_parts(key, upload_id).await
    }

    async fn list_uploads(&self, prefix: &str) -> CosResult<Vec<UploadInfo>> {
        self.inner.list_uploads(prefix).await
    }
}
