//! The COS protocol layer: one trait, [`ObjectClient`], whose methods mirror
//! COS verbs, with an HTTP implementation ([`client::HttpClient`]) and an
//! in-memory one ([`memory::MemoryClient`]) for fast fs-core tests.
//! Nothing here knows about files, inodes or FUSE.

pub mod bucket;
pub mod class;
pub mod client;
pub mod crc64;
pub mod dialect;
pub mod encryption;
pub mod endpoint;
pub mod error;
pub mod memory;
pub mod path;
pub mod provider;
pub mod sign;
pub mod sigv4;
pub mod xml;

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;

pub use class::StorageClass;
pub use encryption::Encryption;
pub use error::CosError;
pub use provider::Provider;

/// Result of every COS operation.
pub type CosResult<T> = Result<T, CosError>;

/// Prefix of COS's user metadata headers (S3's, `x-amz-meta-`, is as long).
pub const META_PREFIX: &str = "x-cos-meta-";

/// User metadata: header suffix after `x-cos-meta-` or `x-amz-meta-`
/// (lowercase) → value.
pub type UserMeta = BTreeMap<String, String>;

/// The standard HTTP headers an object keeps besides Content-Type (lower
/// case): a write that does not name them again (a PUT, a copy with
/// `Replaced`) drops them.
pub const OBJECT_HEADERS: [&str; 5] = [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// The [`OBJECT_HEADERS`] an object has: name → value.
pub type ObjectHeaders = BTreeMap<String, String>;

/// COS's (and S3's) limit on all user metadata headers of one object together.
pub const MAX_META_BYTES: usize = 2048;

/// The bytes `meta` takes against [`MAX_META_BYTES`]: every header's full
/// name and value.
pub fn meta_size(meta: &UserMeta) -> usize {
    meta.iter()
        .map(|(k, v)| META_PREFIX.len() + k.len() + v.len())
        .sum()
}

/// What HEAD (or a GET) tells about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// ETag with its quotes removed.
    pub etag: String,
    /// Last-Modified.
    pub last_modified: SystemTime,
    /// `x-cos-hash-crc64ecma`, when the server sent one.
    pub crc64: Option<u64>,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Cache-Control and the other [`OBJECT_HEADERS`].
    pub headers: ObjectHeaders,
    /// `x-cos-meta-*` headers.
    pub meta: UserMeta,
    /// `x-cos-storage-class` (absent: STANDARD).
    pub storage_class: StorageClass,
    /// `x-cos-server-side-encryption` and its KMS key (absent: plain).
    pub encryption: Encryption,
}

impl ObjectInfo {
    /// What a write of this object must name for it to stay as it is:
    /// its content type and other headers, metadata, storage class and
    /// encryption.
    pub fn into_attrs(self) -> ObjectAttrs {
        ObjectAttrs {
            content_type: self.content_type,
            headers: self.headers,
            meta: self.meta,
            storage_class: self.storage_class,
            encryption: self.encryption,
        }
    }
}

/// A GET response: the bytes asked for and the object they belong to.
#[derive(Clone, Debug)]
pub struct GetObject {
    /// The object (its total size, not the range's).
    pub info: ObjectInfo,
    /// The requested bytes.
    pub body: Bytes,
}

/// Options of a GET.
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    /// Byte range (end exclusive); `None` reads the whole object.
    pub range: Option<Range<u64>>,
    /// Send `If-Match`: fail with 412 when the ETag changed.
    pub if_match: Option<String>,
    /// Where the body's memory comes from (a pool of reusable buffers);
    /// `None` allocates.
    pub buffers: Option<std::sync::Arc<dyn BodyBuffers>>,
}

/// A source of reusable body buffers, so bulk reads recycle memory instead
/// of churning the allocator.
pub trait BodyBuffers: Send + Sync + std::fmt::Debug {
    /// An empty buffer with room for at least `len` bytes.
    fn buffer(&self, len: usize) -> Vec<u8>;
    /// Shares a filled buffer; its memory returns to the source when the
    /// last clone is dropped.
    fn freeze(&self, buf: Vec<u8>) -> Bytes;
}

/// Headers that describe a new object (PUT, copy with `Replaced`, initiate).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectAttrs {
    /// Content-Type; `None` lets the server pick its default.
    pub content_type: Option<String>,
    /// Cache-Control and the other [`OBJECT_HEADERS`].
    pub headers: ObjectHeaders,
    /// `x-cos-meta-*` headers.
    pub meta: UserMeta,
    /// The storage class to ask for (a copy's: the source's).
    pub storage_class: StorageClass,
    /// The encryption to ask for (a copy's: the source's).
    pub encryption: Encryption,
}

/// What a successful write returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutResult {
    /// ETag without quotes.
    pub etag: String,
    /// CRC64 the server computed, already checked against ours when known.
    pub crc64: Option<u64>,
}

/// One object in a listing page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Full key, decoded.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// LastModified.
    pub last_modified: SystemTime,
    /// StorageClass.
    pub storage_class: StorageClass,
}

/// One page of List Objects (v1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ListEntry>,
    /// Common prefixes (end with the delimiter), in order.
    pub common_prefixes: Vec<String>,
    /// Marker for the next page when truncated.
    pub next_marker: Option<String>,
    /// Whether more pages follow.
    pub truncated: bool,
}

/// Parameters of one List Objects request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys by this delimiter (usually `/`).
    pub delimiter: Option<String>,
    /// Start after this key.
    pub marker: String,
    /// At most this many entries (objects + prefixes), ≤ 1000.
    pub max_keys: u32,
}

/// Whether a copy keeps the source's metadata or replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataDirective {
    /// Keep the source object's headers.
    Copy,
    /// Use the headers sent with the copy.
    Replaced,
}

/// A part of a multipart upload, as uploaded or listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// 1-based part number.
    pub part_number: u32,
    /// ETag without quotes.
    pub etag: String,
    /// Size in bytes (0 when not known).
    pub size: u64,
    /// CRC64 of the part, when the server sent one.
    pub crc64: Option<u64>,
}

/// An upload in progress, from List Multipart Uploads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    /// Key being uploaded.
    pub key: String,
    /// Its upload id.
    pub upload_id: String,
    /// When it was initiated.
    pub initiated: SystemTime,
}

/// A key that Delete Multiple could not delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The key.
    pub key: String,
    /// COS error code.
    pub code: String,
    /// COS message.
    pub message: String,
}

/// The COS verbs a filesystem needs. All futures are `Send` so callers can
/// spawn them.
pub trait ObjectClient: Send + Sync + 'static {
    /// HEAD Bucket: does the bucket exist and may we use it.
    fn head_bucket(&self) -> impl Future<Output = CosResult<()>> + Send;
    /// HEAD Object.
    fn head(&self, key: &str) -> impl Future<Output = CosResult<ObjectInfo>> + Send;
    /// GET Object, whole or a range.
    fn get(
        &self,
        key: &str,
        opts: &GetOptions,
    ) -> impl Future<Output = CosResult<GetObject>> + Send;
    /// PUT Object.
    fn put(
        &self,
        key: &str,
        body: Bytes,
        attrs: &ObjectAttrs,
    ) -> impl Future<Output = CosResult<PutResult>> + Send;
    /// DELETE Object (deleting a missing key succeeds).
    fn delete(&self, key: &str) -> impl Future<Output = CosResult<()>> + Send;
    /// Delete Multiple Objects (≤ 1000 keys); returns the keys that failed.
    fn delete_many(
        &self,
        keys: &[String],
    ) -> impl Future<Output = CosResult<Vec<DeleteFailure>>> + Send;
    /// One page of GET Bucket (List Objects v1), keys decoded.
    fn list_page(&self, req: &ListRequest) -> impl Future<Output = CosResult<ListPage>> + Send;
    /// PUT Object - Copy within the bucket; with `src_etag`, fails with 412
    /// (writing nothing) when the source is no longer that version. Refused
    /// with [`CosError::Unsupported`], unsent, by a client that cannot tell
    /// that the server speaks COS. `src_size` (the source's size, as far as
    /// known) tells how long the server may work before it answers.
    fn copy(
        &self,
        src: &str,
        dst: &str,
        src_etag: Option<&str>,
        directive: MetadataDirective,
        attrs: &ObjectAttrs,
        src_size: u64,
    ) -> impl Future<Output = CosResult<PutResult>> + Send;
    /// Initiate Multipart Upload; returns the upload id.
    fn create_multipart(
        &self,
        key: &str,
        attrs: &ObjectAttrs,
    ) -> impl Future<Output = CosResult<String>> + Send;
    /// Upload Part.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> impl Future<Output = CosResult<PartInfo>> + Send;
    /// Upload Part - Copy of `range` (end exclusive) of `src`; with
    /// `src_etag`, fails with 412 when the source changed.
    fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src: &str,
        src_etag: Option<&str>,
        range: Range<u64>,
    ) -> impl Future<Output = CosResult<PartInfo>> + Send;
    /// Complete Multipart Upload with the parts in ascending order.
    fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> impl Future<Output = CosResult<PutResult>> + Send;
    /// Abort Multipart Upload.
    fn abort_multipart(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = CosResult<()>> + Send;
    /// List Parts (all pages).
    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = CosResult<Vec<PartInfo>>> + Send;
    /// List Multipart Uploads under `prefix` (all pages).
    fn list_uploads(&self, prefix: &str)
    -> impl Future<Output = CosResult<Vec<UploadInfo>>> + Send;
}

/// Walks the pages of one listing, so call sites never handle markers.
#[derive(Clone, Debug)]
pub struct ListWalker {
    req: ListRequest,
    done: bool,
}

impl ListWalker {
    /// A walk over `prefix`, grouped by `delimiter` when given, 1000 per page.
    pub fn new(prefix: &str, delimiter: Option<&str>) -> ListWalker {
        ListWalker {
            req: ListRequest {
                prefix: prefix.to_string(),
                delimiter: delimiter.map(str::to_string),
                marker: String::new(),
                max_keys: 1000,
            },
            done: false,
        }
    }

    /// The next page, or `None` after the last.
    pub async fn next_page<C: ObjectClient>(&mut self, client: &C) -> CosResult<Option<ListPage>> {
        if self.done {
            return Ok(None);
        }
        let page = client.list_page(&self.req).await?;
        let marker = page.next_marker.clone().or_else(|| {
            // Without NextMarker, the last key or prefix continues the walk.
            let last_key = page.objects.last().map(|o| &o.key);
            let last_prefix = page.common_prefixes.last();
            last_key.max(last_prefix).cloned()
        });
        match marker {
            Some(m) if page.truncated && m > self.req.marker => self.req.marker = m,
            _ => self.done = true,
        }
        Ok(Some(page))
    }
}
