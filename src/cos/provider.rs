//! The two dialects a bucket can be spoken to in: COS's own
//! (`q-sign-algorithm=sha1`, `x-cos-*` headers, CRC-64 on every object) and
//! S3's (SigV4, `x-amz-*` headers), which AWS S3, Ceph RGW, MinIO,
//! SeaweedFS and COS's S3-compatible endpoint all speak. The requests are
//! the same verbs with other header names and values; the filesystem above
//! never sees which.
//!
//! Which one a mount speaks: `--provider`, else the endpoint's domain (COS
//! domains, `amazonaws.com`), else what a custom endpoint's own answer
//! carries (`x-cos-request-id` or `x-amz-request-id`), asked once at mount
//! with an unsigned GET (see [`probe`]); a server that does not answer is
//! taken for COS, the mount's historical default, and the mount then says
//! why it cannot reach it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::MetadataDirective;

/// The dialect requests are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Tencent Cloud COS (and `cosmount serve`).
    #[default]
    Cos,
    /// Any S3-compatible store.
    S3,
}

/// A header whose name depends on the dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// The server's id of one request (in every answer).
    RequestId,
    /// The session token of temporary keys.
    SecurityToken,
    /// The object a copy reads.
    CopySource,
    /// A copy's precondition on the source's ETag.
    CopySourceIfMatch,
    /// The byte range an Upload Part - Copy reads.
    CopySourceRange,
    /// Whether a copy keeps or replaces the metadata.
    MetadataDirective,
    /// An object's storage class.
    StorageClass,
    /// An object's server-side encryption algorithm.
    Encryption,
    /// The key of an object encrypted with SSE-KMS.
    KmsKeyId,
}

impl Provider {
    /// The name `--provider` takes.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cos => "cos",
            Provider::S3 => "s3",
        }
    }

    /// The prefix of user metadata headers (both are 11 bytes long, which
    /// [`meta_size`](super::meta_size) counts on).
    pub fn meta_prefix(self) -> &'static str {
        match self {
            Provider::Cos => "x-cos-meta-",
            Provider::S3 => "x-amz-meta-",
        }
    }

    /// The name of `header` in this dialect.
    pub fn header(self, header: Header) -> &'static str {
        use Header::*;
        let (cos, s3) = match header {
            RequestId => ("x-cos-request-id", "x-amz-request-id"),
            SecurityToken => ("x-cos-security-token", "x-amz-security-token"),
            CopySource => ("x-cos-copy-source", "x-amz-copy-source"),
            CopySourceIfMatch => ("x-cos-copy-source-if-match", "x-amz-copy-source-if-match"),
            CopySourceRange => ("x-cos-copy-source-range", "x-amz-copy-source-range"),
            MetadataDirective => ("x-cos-metadata-directive", "x-amz-metadata-directive"),
            StorageClass => ("x-cos-storage-class", "x-amz-storage-class"),
            Encryption => (
                "x-cos-server-side-encryption",
                "x-amz-server-side-encryption",
            ),
            KmsKeyId => (
                "x-cos-server-side-encryption-cos-kms-key-id",
                "x-amz-server-side-encryption-aws-kms-key-id",
            ),
        };
        match self {
            Provider::Cos => cos,
            Provider::S3 => s3,
        }
    }

    /// The value of the metadata directive header.
    pub fn directive(self, directive: MetadataDirective) -> &'static str {
        match (self, directive) {
            (Provider::Cos, MetadataDirective::Copy) => "Copy",
            (Provider::Cos, MetadataDirective::Replaced) => "Replaced",
            (Provider::S3, MetadataDirective::Copy) => "COPY",
            (Provider::S3, MetadataDirective::Replaced) => "REPLACE",
        }
    }

    /// The dialect a host name implies: COS's domains, and AWS's.
    pub fn of_host(host: &str) -> Option<Provider> {
        let name = super::endpoint::host_without_port(host).to_ascii_lowercase();
        if name.ends_with(".myqcloud.com") || name.ends_with(".tencentcos.cn") {
            Some(Provider::Cos)
        } else if name.ends_with(".amazonaws.com") || name.ends_with(".amazonaws.com.cn") {
            Some(Provider::S3)
        } else {
            None
        }
    }

    /// The dialect an answer's headers prove, if any: COS stamps every
    /// answer with `x-cos-request-id`, S3 servers with `x-amz-request-id`.
    pub fn of_answer(headers: &HeaderMap) -> Option<Provider> {
        if headers.contains_key(Provider::Cos.header(Header::RequestId)) {
            Some(Provider::Cos)
        } else if headers.contains_key(Provider::S3.header(Header::RequestId)) {
            Some(Provider::S3)
        } else {
            None
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long the probe of a custom endpoint may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the server at `url` (`scheme://host[:port]`, reached at
/// `resolve` when given) which dialect it speaks: one unsigned GET of `/`,
/// whose answer (a bucket list, or an access-denied error) carries the
/// server's request-id header. `Ok(None)` when no answer came (the mount
/// then reports why when it tries the bucket); an error when the answer
/// proves neither dialect.
pub async fn probe(url: &str, resolve: Option<SocketAddr>) -> Result<Option<Provider>, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .user_agent(concat!("cosmount/", env!("CARGO_PKG_VERSION")));
    let host = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some(addr) = resolve {
        builder = builder.resolve(super::endpoint::host_without_port(host), addr);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let root = format!("{}/", url.trim_end_matches('/'));
    let Ok(answer) = client.get(&root).send().await else {
        return Ok(None);
    };
    match Provider::of_answer(answer.headers()) {
        Some(p) => Ok(Some(p)),
        None => Err(format!(
            "{url} answered HTTP {} without x-cos-request-id or x-amz-request-id, so whether it speaks COS or S3 is unknown: add --provider cos or --provider s3",
            answer.status().as_u16()
        )),
    }
}

/// [`probe`] from outside an async runtime (config is built before the
/// runtime starts).
pub fn probe_blocking(url: &str, resolve: Option<SocketAddr>) -> Result<Option<Provider>, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?
        .block_on(probe(url, resolve))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_imply_their_dialect() {
        for (host, want) in [
            ("b-1.cos.ap-beijing.myqcloud.com", Some(Provider::Cos)),
            ("cos.ap-guangzhou.myqcloud.com:443", Some(Provider::Cos)),
            (
                "b-1.cos-internal.ap-shanghai.tencentcos.cn",
                Some(Provider::Cos),
            ),
            ("bucket.s3.us-east-1.amazonaws.com", Some(Provider::S3)),
            ("s3.cn-north-1.amazonaws.com.cn", Some(Provider::S3)),
            ("127.0.0.1:9000", None),
            ("minio.example.com", None),
        ] {
            assert_eq!(Provider::of_host(host), want, "{host}");
        }
    }

    #[test]
    fn answers_prove_their_dialect() {
        let mut h = HeaderMap::new();
        assert_eq!(Provider::of_answer(&h), None);
        h.insert("x-amz-request-id", "1".parse().unwrap());
        assert_eq!(Provider::of_answer(&h), Some(Provider::S3));
        h.insert("x-cos-request-id", "2".parse().unwrap());
        assert_eq!(Provider::of_answer(&h), Some(Provider::Cos));
    }

    #[test]
    fn headers_and_directives_follow_the_dialect() {
        assert_eq!(Provider::S3.header(Header::CopySource), "x-amz-copy-source");
        assert_eq!(
            Provider::Cos.header(Header::SecurityToken),
            "x-cos-security-token"
        );
        assert_eq!(
            Provider::S3.directive(MetadataDirective::Replaced),
            "REPLACE"
        );
        assert_eq!(
            Provider::Cos.directive(MetadataDirective::Replaced),
            "Replaced"
        );
        assert_eq!(
            Provider::Cos.meta_prefix().len(),
            Provider::S3.meta_prefix().len()
        );
    }

    #[tokio::test]
    async fn a_probe_reads_the_request_id_header() {
        let (base, _requests) = crate::creds::testutil::serve_with(
            vec![(403, String::new())],
            "x-amz-request-id: abc\r\n",
        )
        .await;
        assert_eq!(probe(&base, None).await, Ok(Some(Provider::S3)));
        let (base, _requests) =
            crate::creds::testutil::serve_with(vec![(200, String::new())], "").await;
        let e = probe(&base, None).await.unwrap_err();
        assert!(e.contains("--provider cos or --provider s3"), "{e}");
        let closed = "http://127.0.0.1:1";
        assert_eq!(probe(closed, None).await, Ok(None));
    }
}
