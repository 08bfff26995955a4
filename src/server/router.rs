//! Request routing: which bucket (Host's first label, else the first path
//! segment, else the only bucket), which key (the percent-decoded rest of the
//! path, byte for byte: no `.`/`..` or `//` normalisation) and which COS
//! operation (method + key presence + sub-resource parameters).

use hyper::{HeaderMap, Method, StatusCode};
use percent_encoding::percent_decode_str;

use super::error::ApiError;
use crate::cos::bucket;

/// The COS operations the server implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `HEAD /`.
    HeadBucket,
    /// `GET /`.
    ListObjects,
    /// `GET /?uploads`.
    ListMultipartUploads,
    /// `POST /?delete`.
    DeleteMultipleObjects,
    /// `HEAD /key`.
    HeadObject,
    /// `GET /key`.
    GetObject,
    /// `PUT /key`.
    PutObject,
    /// `PUT /key` with `x-cos-copy-source` (or S3's `x-amz-copy-source`).
    CopyObject,
    /// `DELETE /key`.
    DeleteObject,
    /// `POST /key?uploads`.
    InitiateMultipartUpload,
    /// `PUT /key?partNumber&uploadId`.
    UploadPart,
    /// `PUT /key?partNumber&uploadId` with `x-cos-copy-source` (or
    /// `x-amz-copy-source`).
    UploadPartCopy,
    /// `POST /key?uploadId`.
    CompleteMultipartUpload,
    /// `DELETE /key?uploadId`.
    AbortMultipartUpload,
    /// `GET /key?uploadId`.
    ListParts,
}

impl Op {
    /// Every operation, in a fixed order (the stats order).
    pub const ALL: [Op; 15] = [
        Op::HeadObject,
        Op::GetObject,
        Op::PutObject,
        Op::ListObjects,
        Op::HeadBucket,
        Op::DeleteObject,
        Op::DeleteMultipleObjects,
        Op::CopyObject,
        Op::InitiateMultipartUpload,
        Op::UploadPart,
        Op::UploadPartCopy,
        Op::CompleteMultipartUpload,
        Op::AbortMultipartUpload,
        Op::ListParts,
        Op::ListMultipartUploads,
    ];

    /// The operation's name as COS documents it (and as `/stats` reports it).
    pub fn name(self) -> &'static str {
        match self {
            Op::HeadBucket => "HeadBucket",
            Op::ListObjects => "ListObjects",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::DeleteMultipleObjects => "DeleteMultipleObjects",
            Op::HeadObject => "HeadObject",
            Op::GetObject => "GetObject",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::DeleteObject => "DeleteObject",
            Op::InitiateMultipartUpload => "InitiateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
        }
    }

    /// Index into [`Op::ALL`].
    pub fn index(self) -> usize {
        Op::ALL.iter().position(|&o| o == self).unwrap_or(0)
    }

    /// True for operations that only read (what `public-read` allows).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Op::HeadBucket | Op::ListObjects | Op::HeadObject | Op::GetObject
        )
    }
}

/// Decoded query parameters, in request order; a valueless one has `""`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// (name, value) pairs, percent-decoded (`+` is a space).
    pub pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string. A `+` means a space, as in HTML forms:
    /// python-requests (and so the official SDK) sends spaces that way, and
    /// encodes a literal `+` as `%2B`.
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let mut pairs = Vec::new();
        for piece in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            pairs.push((decode_form(name)?, decode_form(value)?));
        }
        Ok(Query { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn decode_form(s: &str) -> Result<String, ApiError> {
    decode(&s.replace('+', " "))
}

/// Percent-decodes a path component into UTF-8 (`+` stays `+`).
pub fn decode(s: &str) -> Result<String, ApiError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::bad_request("InvalidURI", "The URI does not decode to UTF-8."))
}

/// Where a request goes: bucket and key (empty for bucket operations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The bucket.
    pub bucket: String,
    /// The object key, or `""`.
    pub key: String,
}

/// Picks the bucket and key of a request from its Host and decoded path.
pub fn route(host: Option<&str>, path: &str, buckets: &[String]) -> Result<Target, ApiError> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let label = host
        .and_then(|h| crate::cos::endpoint::host_without_port(h).split('.').next())
        .unwrap_or_default();
    if buckets.iter().any(|b| b == label) {
        return Ok(target(label, rest));
    }
    let (first, after) = rest.split_once('/').unwrap_or((rest, ""));
    if buckets.iter().any(|b| b == first) {
        return Ok(target(first, after));
    }
    match buckets {
        // A Host that names some other bucket is an unknown bucket, not a
        // custom domain.
        [only] if !bucket::is_valid_name(label) => Ok(target(only, rest)),
        _ => Err(ApiError::no_such_bucket()),
    }
}

fn target(bucket: &str, key: &str) -> Target {
    Target {
        bucket: bucket.to_string(),
        key: key.to_string(),
    }
}

/// Sub-resources of the COS API this server does not implement.
const UNSUPPORTED: &[&str] = &[
    "acl",
    "append",
    "cors",
    "inventory",
    "lifecycle",
    "logging",
    "policy",
    "referer",
    "replication",
    "restore",
    "select",
    "tagging",
    "versioning",
    "versions",
    "website",
];

/// The header prefix a copy request spells its copy headers with: `x-cos-`
/// when it sends `x-cos-copy-source`, else `x-amz-` when it sends S3's
/// `x-amz-copy-source` (COS accepts both families; S3 clients such as
/// rclone and s3fs send the second). `None`: not a copy.
pub fn copy_headers(headers: &HeaderMap) -> Option<&'static str> {
    ["x-cos-", "x-amz-"]
        .into_iter()
        .find(|family| headers.contains_key(format!("{family}copy-source").as_str()))
}

/// Classifies a request into an operation.
pub fn classify(
    method: &Method,
    key: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Op, ApiError> {
    if let Some(sub) = UNSUPPORTED.iter().find(|s| query.has(s)) {
        return Err(ApiError::not_implemented(&format!(
            "The ?{sub} sub-resource"
        )));
    }
    let copy = copy_headers(headers).is_some();
    let op = if key.is_empty() {
        match *method {
            Method::HEAD => Op::HeadBucket,
            Method::GET if query.has("uploads") => Op::ListMultipartUploads,
            Method::GET => Op::ListObjects,
            Method::POST if query.has("delete") => Op::DeleteMultipleObjects,
            Method::PUT | Method::DELETE => {
                return Err(ApiError::not_implemented("Creating or deleting buckets"));
            }
            _ => return Err(method_not_allowed()),
        }
    } else {
        let part = query.has("partNumber") && query.has("uploadId");
        match *method {
            Method::HEAD => Op::HeadObject,
            Method::GET if query.has("uploadId") => Op::ListParts,
            Method::GET => Op::GetObject,
            Method::PUT if part && copy => Op::UploadPartCopy,
            Method::PUT if part => Op::UploadPart,
            Method::PUT if copy => Op::CopyObject,
            Method::PUT => Op::PutObject,
            Method::POST if query.has("uploads") => Op::InitiateMultipartUpload,
            Method::POST if query.has("uploadId") => Op::CompleteMultipartUpload,
            Method::DELETE if query.has("uploadId") => Op::AbortMultipartUpload,
            Method::DELETE => Op::DeleteObject,
            _ => return Err(method_not_allowed()),
        }
    };
    Ok(op)
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn routes_virtual_hosted_path_style_and_custom_domain() {
        let one = buckets(&["b-1250000000"]);
        let two = buckets(&["b-1250000000", "c-1"]);
        let vh = Some("b-1250000000.cos.ap-guangzhou.myqcloud.com");
        assert_eq!(
            route(vh, "/a/b", &two).unwrap(),
            target("b-1250000000", "a/b")
        );
        assert_eq!(route(vh, "/", &two).unwrap(), target("b-1250000000", ""));
        assert_eq!(
            route(Some("c-1:8080"), "/x", &two).unwrap(),
            target("c-1", "x")
        );
        assert_eq!(
            route(Some("127.0.0.1:9"), "/c-1/k/../x", &two).unwrap(),
            target("c-1", "k/../x")
        );
        assert_eq!(
            route(Some("127.0.0.1:9"), "/c-1", &two).unwrap(),
            target("c-1", "")
        );
        assert_eq!(
            route(Some("127.0.0.1:9"), "/k//x/", &one).unwrap(),
            target("b-1250000000", "k//x/")
        );
        assert_eq!(route(None, "/", &one).unwrap(), target("b-1250000000", ""));
        assert_eq!(
            route(Some("127.0.0.1"), "/x", &two).unwrap_err().code,
            "NoSuchBucket"
        );
        let other = Some("other-1250000000.cos.ap-guangzhou.myqcloud.com");
        assert_eq!(route(other, "/x", &one).unwrap_err().code, "NoSuchBucket");
    }

    #[test]
    fn copy_headers_pick_one_spelling() {
        let mut h = HeaderMap::new();
        assert_eq!(copy_headers(&h), None);
        h.insert("x-amz-copy-source", "b/k".parse().unwrap());
        assert_eq!(copy_headers(&h), Some("x-amz-"));
        h.insert("x-cos-copy-source", "b/k".parse().unwrap());
        assert_eq!(copy_headers(&h), Some("x-cos-"), "COS's own spelling wins");
    }

    #[test]
    fn decodes_queries_like_forms() {
        let q = Query::parse(Some("prefix=a%2Fb+c%2B&uploads&marker=&x=%E4%B8%AD")).unwrap();
        assert_eq!(q.get("prefix"), Some("a/b c+"));
        assert_eq!(q.get("uploads"), Some(""));
        assert_eq!(q.get("marker"), Some(""));
        assert_eq!(q.get("x"), Some("中"));
        assert!(!q.has("delimiter"));
        assert!(Query::parse(Some("a=%FF")).is_err());
    }

    #[test]
    fn classifies_operations() {
        let h = HeaderMap::new();
        let mut copy = HeaderMap::new();
        copy.insert("x-cos-copy-source", "b/k".parse().unwrap());
        let mut s3_copy = HeaderMap::new();
        s3_copy.insert("x-amz-copy-source", "b/k".parse().unwrap());
        let q = |s| Query::parse(Some(s)).unwrap();
        let none = Query::default();
        assert_eq!(
            classify(&Method::GET, "", &none, &h).unwrap(),
            Op::ListObjects
        );
        assert_eq!(
            classify(&Method::GET, "", &q("uploads"), &h).unwrap(),
            Op::ListMultipartUploads
        );
        assert_eq!(
            classify(&Method::POST, "", &q("delete"), &h).unwrap(),
            Op::DeleteMultipleObjects
        );
        assert_eq!(
            classify(&Method::HEAD, "", &none, &h).unwrap(),
            Op::HeadBucket
        );
        assert_eq!(
            classify(&Method::PUT, "k", &none, &h).unwrap(),
            Op::PutObject
        );
        assert_eq!(
            classify(&Method::PUT, "k", &none, &copy).unwrap(),
            Op::CopyObject
        );
        assert_eq!(
            classify(&Method::PUT, "k", &none, &s3_copy).unwrap(),
            Op::CopyObject
        );
        let part = q("partNumber=1&uploadId=x");
        assert_eq!(
            classify(&Method::PUT, "k", &part, &h).unwrap(),
            Op::UploadPart
        );
        assert_eq!(
            classify(&Method::PUT, "k", &part, &copy).unwrap(),
            Op::UploadPartCopy
        );
        assert_eq!(
            classify(&Method::PUT, "k", &part, &s3_copy).unwrap(),
            Op::UploadPartCopy
        );
        assert_eq!(
            classify(&Method::POST, "k", &q("uploads"), &h).unwrap(),
            Op::InitiateMultipartUpload
        );
        assert_eq!(
            classify(&Method::POST, "k", &q("uploadId=x"), &h).unwrap(),
            Op::CompleteMultipartUpload
        );
        assert_eq!(
            classify(&Method::DELETE, "k", &q("uploadId=x"), &h).unwrap(),
            Op::AbortMultipartUpload
        );
        assert_eq!(
            classify(&Method::GET, "k", &q("uploadId=x"), &h).unwrap(),
            Op::ListParts
        );
        assert_eq!(
            classify(&Method::DELETE, "k", &none, &h).unwrap(),
            Op::DeleteObject
        );
        assert_eq!(
            classify(&Method::GET, "k", &q("acl"), &h).unwrap_err().code,
            "NotImplemented"
        );
        assert_eq!(
            classify(&Method::PATCH, "k", &none, &h).unwrap_err().code,
            "MethodNotAllowed"
        );
        assert_eq!(
            Op::ALL.iter().map(|o| o.index()).collect::<Vec<_>>(),
            (0..15).collect::<Vec<_>>()
        );
    }
}
