//! The HTTP implementation of [`ObjectClient`]: one `reqwest::Client` (one
//! connection pool) per process, every request signed at send time with the
//! credentials current at that moment and re-signed on each retry.
//! Each COS verb is described as a [`Call`](call::Call) here; `execute`
//! sends it, `response` judges the answer, `pages` walks paged listings and
//! `stats` counts.

mod call;
mod execute;
mod latency;
mod pages;
mod progress;
mod response;
mod stats;
mod throttle;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use log::warn;
use md5::{Digest, Md5};
use reqwest::Method;
use reqwest::header::HeaderMap;

use self::call::Call;
use self::latency::{Deadlines, Latencies};
use self::response::{
    check_get, content_range_total, copy_result, etag, header_u64, object_info, verify_crc,
};
pub use self::stats::{Answer, AttemptLabels, ClientStats, RetryCause};
use self::throttle::Throttle;
use super::dialect::{ServerDialect, ServerKind};
use super::endpoint::{self, Endpoint};
use super::provider::{Header, Provider};
use super::xml::{self, unquote_etag};
use super::{
    CosError, CosResult, DeleteFailure, Encryption, GetObject, GetOptions, ListPage, ListRequest,
    MetadataDirective, ObjectAttrs, ObjectClient, ObjectInfo, PartInfo, PutResult, StorageClass,
    UploadInfo, crc64,
};
use crate::creds::CredentialStore;
use crate::retry::RetryPolicy;

/// Copies of at most this many bytes are hedged: a duplicate costs the
/// server little, and sends the same source to the same destination.
/// Larger copies are not: the server's time grows with the object, and a
/// duplicate doubles its work.
const MAX_HEDGED_COPY: u64 = 16 << 20;

/// What deleting one key of a Delete Multiple costs the server, in bytes
/// copied (its first-byte deadline grows with the keys, as a copy's
/// grows with its bytes).
const DELETE_WORK: u64 = 64 << 10;

/// How the client connects and retries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Where the bucket lives.
    pub endpoint: Endpoint,
    /// Retry policy for retryable failures.
    pub retry: RetryPolicy,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the first byte of an answer once the request was
    /// handed over: the ceiling of the deadline learned from recent
    /// answers of the same kind (of every kind while that one was seen
    /// too rarely; never below 1 s), used as is until enough were seen. Copy and Complete get time for the bytes they copy on
    /// top.
    pub request_timeout: Duration,
    /// Longest time a body (request or answer) may send nothing before
    /// the attempt is abandoned: the ceiling of the learned limit for
    /// answers, the base of the one for uploads.
    pub stall_timeout: Duration,
    /// Deadline of one operation: every attempt and every wait between
    /// attempts. When it passes, the operation fails with its last error
    /// (a timeout when an attempt was cut short), so no caller waits longer.
    pub op_timeout: Duration,
    /// Send requests for the endpoint's host to this address instead of
    /// resolving it (tests, private gateways).
    pub resolve: Option<std::net::SocketAddr>,
    /// The dialect requests are written and signed in.
    pub provider: Provider,
    /// The class of objects written without one of their own
    /// (`--storage-class`): [`StorageClass::MountDefault`] names none.
    pub storage_class: StorageClass,
    /// The encryption of objects written without one of their own
    /// (`--sse`): [`Encryption::MountDefault`] names none.
    pub encryption: Encryption,
}

impl ClientConfig {
    /// The default [`connect_timeout`](ClientConfig::connect_timeout).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default [`request_timeout`](ClientConfig::request_timeout).
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default [`stall_timeout`](ClientConfig::stall_timeout).
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);
    /// The shortest learned first-byte deadline.
    pub const MIN_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(1);
    /// The default [`op_timeout`](ClientConfig::op_timeout).
    pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(120);

    /// Defaults for an endpoint: [`RetryPolicy::default`] and the
    /// `DEFAULT_*` timeouts.
    pub fn new(endpoint: Endpoint) -> ClientConfig {
        ClientConfig {
            endpoint,
            retry: RetryPolicy::default(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            stall_timeout: Self::DEFAULT_STALL_TIMEOUT,
            op_timeout: Self::DEFAULT_OP_TIMEOUT,
            resolve: None,
            provider: Provider::Cos,
            storage_class: StorageClass::MountDefault,
            encryption: Encryption::MountDefault,
        }
    }
}

/// COS over HTTP(S).
pub struct HttpClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    creds: Arc<CredentialStore>,
    retry: RetryPolicy,
    stall_timeout: Duration,
    op_timeout: Duration,
    /// Recent latencies: the first-byte deadlines and hedge delays.
    latencies: Latencies,
    /// Seconds to add to the local clock, learned from RequestTimeTooSkewed.
    clock_offset: AtomicI64,
    /// The first correction was logged as a warning; later ones at debug.
    skew_warned: AtomicBool,
    /// The dialect requests are written in.
    provider: Provider,
    /// The class of objects written without one of their own.
    storage_class: StorageClass,
    /// The encryption of objects written without one of their own.
    encryption: Encryption,
    /// Whether the server proved it speaks COS (COS copies wait for that).
    dialect: ServerDialect,
    /// Requests in flight, limited once the server asked for less traffic.
    throttle: Throttle,
    stats: ClientStats,
}

impl HttpClient {
    /// Builds the client and its connection pool.
    pub fn new(config: ClientConfig, creds: Arc<CredentialStore>) -> CosResult<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .user_agent(concat!("cosmount/", env!("CARGO_PKG_VERSION")));
        if let Some(addr) = config.resolve {
            let domain = endpoint::host_without_port(&config.endpoint.host);
            builder = builder.resolve(domain, addr);
        }
        let http = builder
            .build()
            .map_err(|e| CosError::InvalidRequest(format!("cannot build HTTP client: {e}")))?;
        let dialect = ServerDialect::new(format!(
            "{}://{}",
            config.endpoint.scheme, config.endpoint.host
        ));
        Ok(HttpClient {
            http,
            provider: config.provider,
            storage_class: config.storage_class,
            encryption: config.encryption,
            dialect,
            throttle: Throttle::new(),
            endpoint: config.endpoint,
            creds,
            retry: config.retry,
            stall_timeout: config.stall_timeout,
            op_timeout: config.op_timeout,
            latencies: Latencies::new(Deadlines {
                floor: ClientConfig::MIN_FIRST_BYTE_TIMEOUT.min(config.request_timeout),
                ceiling: config.request_timeout,
            }),
            clock_offset: AtomicI64::new(0),
            skew_warned: AtomicBool::new(false),
            stats: ClientStats::default(),
        })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Request counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The credentials requests are signed with.
    pub fn credentials(&self) -> &CredentialStore {
        &self.creds
    }

    /// What the answers so far proved about the server.
    pub fn server_kind(&self) -> ServerKind {
        self.dialect.kind()
    }

    /// The dialect requests are written in.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The name of `header` in this client's dialect.
    fn header(&self, header: Header) -> &'static str {
        self.provider.header(header)
    }

    /// Names the storage class and encryption `attrs` ask for (the
    /// mount's when they ask for none): what every write, copies included,
    /// must name for the object to keep them. STANDARD and plain go unnamed.
    fn with_storage<'a>(&self, mut call: Call<'a>, attrs: &ObjectAttrs) -> Call<'a> {
        if let Some(class) = attrs.storage_class.to_send(&self.storage_class) {
            call = call.header(self.header(Header::StorageClass), class);
        }
        for (name, value) in attrs.encryption.headers(&self.encryption, self.provider) {
            call = call.header(name, value);
        }
        call
    }

    /// `Ok` when a server-side copy means what we mean: always in S3's
    /// dialect (every S3 server knows `x-amz-copy-source`); in COS's, once
    /// the server proved it speaks COS, asking it (HEAD Bucket) when no
    /// answer decided yet; otherwise the refusal of `op`.
    async fn require_copy(&self, op: &str) -> CosResult<()> {
        if self.provider == Provider::S3 {
            return Ok(());
        }
        if self.dialect.kind() == ServerKind::Undecided {
            // Any answer teaches; its own outcome does not matter here.
            let _ = self.head_bucket().await;
        }
        let verdict = self.dialect.require_cos(op);
        if let (Err(e), ServerKind::Undecided) = (&verdict, self.dialect.kind()) {
            // A server that is not COS was named once already; this one
            // answered nothing that decides (only 5xx or no answer).
            warn!("{e}");
        }
        verdict
    }

    /// `call` reading object `src` (only the version `src_etag`, when
    /// given), in this client's dialect.
    fn copy_from<'a>(
        &self,
        call: Call<'a>,
        src: &str,
        src_etag: Option<&str>,
    ) -> CosResult<Call<'a>> {
        let call = call.header(
            self.header(Header::CopySource),
            self.endpoint.copy_source(src, self.provider)?,
        );
        Ok(match src_etag {
            Some(etag) => call.header(
                self.header(Header::CopySourceIfMatch),
                format!("\"{etag}\""),
            ),
            None => call,
        })
    }

    /// A PUT whose answer must carry our CRC64 when it carries one: a
    /// mismatch means the stored bytes are damaged, and sending them again
    /// replaces them.
    async fn put_like(&self, call: Call<'_>, local_crc: u64) -> CosResult<PutResult> {
        let key = call.key.unwrap_or("/");
        let check = |headers: &HeaderMap, _: &Bytes| {
            verify_crc(key, header_u64(headers, "x-cos-hash-crc64ecma"), local_crc)
        };
        let reply = self.execute(&call.check(&check)).await?;
        Ok(PutResult {
            etag: etag(&reply.headers),
            crc64: header_u64(&reply.headers, "x-cos-hash-crc64ecma"),
        })
    }

    /// Complete was sent before and its answer lost: if the object now has a
    /// multipart ETag with the same part count, the first attempt won.
    async fn completed_earlier(&self, key: &str, parts: &[PartInfo]) -> Option<PutResult> {
        let info = self.head(key).await.ok()?;
        info.etag
            .ends_with(&format!("-{}", parts.len()))
            .then_some(PutResult {
                etag: info.etag,
                crc64: info.crc64,
            })
    }
}

impl ObjectClient for HttpClient {
    async fn head_bucket(&self) -> CosResult<()> {
        self.execute(&Call::new("head_bucket", Method::HEAD, None).hedged())
            .await
            .map(|_| ())
    }

    async fn head(&self, key: &str) -> CosResult<ObjectInfo> {
        let reply = self
            .execute(&Call::new("head", Method::HEAD, Some(key)).hedged())
            .await?;
        let size = header_u64(&reply.headers, "content-length").unwrap_or(0);
        Ok(object_info(&reply.headers, size, self.provider))
    }

    async fn get(&self, key: &str, opts: &GetOptions) -> CosResult<GetObject> {
        let mut call = Call::new("get", Method::GET, Some(key)).hedged();
        if let Some(r) = &opts.range {
            if r.start >= r.end {
                return Err(CosError::InvalidRequest(format!("empty range {r:?}")));
            }
            call = call.header("range", format!("bytes={}-{}", r.start, r.end - 1));
        }
        if let Some(etag) = &opts.if_match {
            call = call.header("if-match", format!("\"{etag}\""));
        }
        call.buffers = opts.buffers.clone();
        let range = opts.range.clone();
        let check =
            |headers: &HeaderMap, body: &Bytes| check_get(key, range.as_ref(), headers, body);
        let reply = self.execute(&call.check(&check)).await?;
        let mut body = reply.body;
        let total = content_range_total(&reply.headers);
        let size = total.unwrap_or(body.len() as u64);
        let info = object_info(&reply.headers, size, self.provider);
        if let (Some(r), None) = (&opts.range, total) {
            // The server ignored Range and sent the whole object.
            let end = r.end.min(body.len() as u64) as usize;
            body = body.slice((r.start as usize).min(end)..end);
        }
        Ok(GetObject { info, body })
    }

    async fn put(&self, key: &str, body: Bytes, attrs: &ObjectAttrs) -> CosResult<PutResult> {
        let local = crc64::checksum(&body);
        let call = self
            .with_storage(Call::new("put", Method::PUT, Some(key)), attrs)
            .hedged()
            .attrs(attrs, self.provider)
            .body(body);
        self.put_like(call, local).await
    }

    async fn delete(&self, key: &str) -> CosResult<()> {
        match self
            .execute(&Call::new("delete", Method::DELETE, Some(key)).hedged())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_many(&self, keys: &[String]) -> CosResult<Vec<DeleteFailure>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let request = xml::DeleteRequest {
            quiet: true,
            object: keys
                .iter()
                .map(|k| xml::DeleteObject { key: k.clone() })
                .collect(),
        };
        let body = Bytes::from(xml::to_xml(&request));
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        let call = Call::new("delete_many", Method::POST, None)
            .param("delete", "")
            .header("content-type", "application/xml")
            .header("content-md5", md5)
            .server_work(keys.len() as u64 * DELETE_WORK)
            .body(body);
        let reply = self.execute(&call).await?;
        let result: xml::DeleteResult = xml::from_xml(&reply.body)?;
        Ok(result
            .error
            .into_iter()
            .map(|e| DeleteFailure {
                key: e.key,
                code: e.code,
                message: e.message,
            })
            .collect())
    }

    async fn list_page(&self, req: &ListRequest) -> CosResult<ListPage> {
        let call = Call::new("list", Method::GET, None)
            .hedged()
            .param("prefix", req.prefix.clone())
            .param("delimiter", req.delimiter.clone().unwrap_or_default())
            .param("marker", req.marker.clone())
            .param("max-keys", req.max_keys.clamp(1, 1000).to_string())
            .param("encoding-type", "url");
        let reply = self.execute(&call).await?;
        xml::from_xml::<xml::ListBucketResult>(&reply.body)?.into_page()
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
        self.require_copy("server-side copy").await?;
        let call = Call::new("copy", Method::PUT, Some(dst))
            .server_work(src_size)
            .xml();
        let mut call = self.copy_from(call, src, src_etag)?;
        if src_size <= MAX_HEDGED_COPY {
            call = call.hedged();
        }
        call = call.header(
            self.header(Header::MetadataDirective),
            self.provider.directive(directive),
        );
        // Named whatever the directive: a copy that names no class is
        // STANDARD, one that names no encryption is plain.
        call = self.with_storage(call, attrs);
        if directive == MetadataDirective::Replaced {
            call = call.attrs(attrs, self.provider);
        }
        let reply = self.execute(&call).await?;
        let result: xml::CopyObjectResult = copy_result(src, dst, &reply.body)?;
        let crc64 = header_u64(&reply.headers, "x-cos-hash-crc64ecma")
            .or_else(|| result.crc64.and_then(|c| c.parse().ok()));
        Ok(PutResult {
            etag: unquote_etag(&result.etag),
            crc64,
        })
    }

    async fn create_multipart(&self, key: &str, attrs: &ObjectAttrs) -> CosResult<String> {
        let call = self
            .with_storage(
                Call::new("create_multipart", Method::POST, Some(key)),
                attrs,
            )
            .param("uploads", "")
            .attrs(attrs, self.provider)
            .xml();
        let reply = self.execute(&call).await?;
        let result: xml::InitiateMultipartUploadResult = xml::from_xml(&reply.body)?;
        Ok(result.upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> CosResult<PartInfo> {
        let size = body.len() as u64;
        let local = crc64::checksum(&body);
        let call = Call::new("upload_part", Method::PUT, Some(key))
            .hedged()
            .param("partNumber", part_number.to_string())
            .param("uploadId", upload_id)
            .body(body);
        let put = self.put_like(call, local).await?;
        Ok(PartInfo {
            part_number,
            etag: put.etag,
            size,
            crc64: Some(local),
        })
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src: &str,
        src_etag: Option<&str>,
        range: std::ops::Range<u64>,
    ) -> CosResult<PartInfo> {
        self.require_copy("server-side part copy").await?;
        let call = Call::new("upload_part_copy", Method::PUT, Some(key))
            .param("partNumber", part_number.to_string())
            .param("uploadId", upload_id)
            .header(
                self.header(Header::CopySourceRange),
                format!("bytes={}-{}", range.start, range.end - 1),
            )
            .server_work(range.end - range.start)
            .xml();
        let call = self.copy_from(call, src, src_etag)?;
        let reply = self.execute(&call).await?;
        let result: xml::CopyPartResult = copy_result(src, key, &reply.body)?;
        Ok(PartInfo {
            part_number,
            etag: unquote_etag(&result.etag),
            size: range.end - range.start,
            crc64: header_u64(&reply.headers, "x-cos-hash-crc64ecma"),
        })
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> CosResult<PutResult> {
        let request = xml::CompleteMultipartUpload {
            part: parts
                .iter()
                .map(|p| xml::CompletePart {
                    part_number: p.part_number,
                    etag: format!("\"{}\"", p.etag),
                })
                .collect(),
        };
        let call = Call::new("complete_multipart", Method::POST, Some(key))
            .param("uploadId", upload_id)
            .header("content-type", "application/xml")
            .body(Bytes::from(xml::to_xml(&request)))
            .server_work(parts.iter().map(|p| p.size).sum())
            .xml();
        let result = match self.execute(&call).await {
            Ok(reply) => {
                let body: xml::CompleteMultipartUploadResult = xml::from_xml(&reply.body)?;
                PutResult {
                    etag: unquote_etag(&body.etag),
                    crc64: header_u64(&reply.headers, "x-cos-hash-crc64ecma"),
                }
            }
            Err(e) if e.code() == "NoSuchUpload" => {
                match self.completed_earlier(key, parts).await {
                    Some(result) => result,
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if let Some(expected) = combined_crc(parts) {
            verify_crc(key, result.crc64, expected)?;
        }
        Ok(result)
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> CosResult<()> {
        let call =
            Call::new("abort_multipart", Method::DELETE, Some(key)).param("uploadId", upload_id);
        match self.execute(&call).await {
            Err(e) if e.code() != "NoSuchUpload" => Err(e),
            _ => Ok(()),
        }
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> CosResult<Vec<PartInfo>> {
        self.collect(&pages::Parts { key, upload_id }).await
    }

    async fn list_uploads(&self, prefix: &str) -> CosResult<Vec<UploadInfo>> {
        self.collect(&pages::Uploads { prefix }).await
    }
}

/// The CRC64 of the whole object from its parts' CRCs, when all are known.
fn combined_crc(parts: &[PartInfo]) -> Option<u64> {
    let mut iter = parts.iter();
    let first = iter.next()?;
    let mut crc = first.crc64?;
    for p in iter {
        crc = crc64::combine(crc, p.crc64?, p.size);
    }
    Some(crc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::endpoint::Style;
    use crate::creds::Credentials;
    use crate::creds::testutil::{serve, serve_as_cos};

    fn fixed(base: &str) -> HttpClient {
        let endpoint = Endpoint::custom(base, "b-1", "ap-x", Style::PathStyle).unwrap();
        let store = CredentialStore::fixed(Credentials::permanent("AKID", "KEY"));
        HttpClient::new(ClientConfig::new(endpoint), Arc::new(store)).unwrap()
    }

    async fn copy_k(c: &HttpClient) -> CosResult<PutResult> {
        c.copy(
            "k",
            "k2",
            None,
            MetadataDirective::Copy,
            &ObjectAttrs::default(),
            0,
        )
        .await
    }

    #[tokio::test]
    async fn a_copy_is_never_sent_to_a_server_that_is_not_cos() {
        // The probe (HEAD Bucket) is answered without any COS header.
        let (base, requests) = serve(vec![(200, String::new())]).await;
        let c = fixed(&base);
        let e = copy_k(&c).await.unwrap_err();
        assert!(matches!(e, CosError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains(&base), "{e}");
        let sent = requests.await.unwrap();
        assert_eq!(sent.len(), 1, "only the probe went out");
        assert!(sent[0].head.starts_with("HEAD /b-1/ "), "{}", sent[0].head);
        assert!(matches!(c.server_kind(), ServerKind::Other(_)));
    }

    #[tokio::test]
    async fn a_copy_answered_without_a_copy_result_fails() {
        let (base, requests) = serve_as_cos(vec![(200, String::new()), (200, String::new())]).await;
        let c = fixed(&base);
        let e = copy_k(&c).await.unwrap_err();
        assert!(matches!(e, CosError::InvalidResponse(_)), "{e}");
        let sent = requests.await.unwrap();
        assert_eq!(sent.len(), 2, "the probe and one copy, not retried");
        assert!(sent[1].head.starts_with("PUT /b-1/k2 "), "{}", sent[1].head);
        assert_eq!(c.server_kind(), ServerKind::Cos);
    }
}
