//! The COS operations, one function each, grouped by what they act on:
//! [`bucket`] (HEAD, list, delete-multiple, list uploads), [`object`]
//! (HEAD, GET, PUT, copy, DELETE) and [`multipart`]. Blocking disk work
//! beyond a small read runs on tokio's blocking pool.

pub mod bucket;
pub mod multipart;
pub mod object;

use std::sync::Arc;

use base64::Engine;
use hyper::body::Incoming;
use hyper::{HeaderMap, Response, StatusCode, header};

use super::State;
use super::body::Body;
use super::error::ApiError;
use super::router::{self, Op, Query, decode};
use super::store::{Bucket, Digests, TempFile};

/// Largest object key, in bytes.
pub const MAX_KEY_BYTES: usize = 850;
/// Largest single PUT or part.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Everything a handler needs to know about one request.
pub struct Ctx<'a> {
    /// Server state.
    pub state: &'a State,
    /// The addressed bucket.
    pub bucket: &'a Arc<Bucket>,
    /// The object key (`""` for bucket operations).
    pub key: &'a str,
    /// Decoded query parameters.
    pub query: &'a Query,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

impl Ctx<'_> {
    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails with KeyTooLong for keys COS would refuse to create.
    pub fn check_new_key(&self) -> Result<(), ApiError> {
        if self.key.len() > MAX_KEY_BYTES {
            return Err(ApiError::bad_request(
                "KeyTooLong",
                format!("Your key is too long: at most {MAX_KEY_BYTES} bytes."),
            ));
        }
        Ok(())
    }

    /// The body length the client announced, required for uploads.
    pub fn content_length(&self) -> Result<Option<u64>, ApiError> {
        match self.header("content-length") {
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid_argument("Content-Length is not a number.")),
            None if self.headers.contains_key(header::TRANSFER_ENCODING) => Ok(None),
            None => Err(ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
            )),
        }
    }

    /// The decoded `Content-MD5`, when sent.
    pub fn content_md5(&self) -> Result<Option<[u8; 16]>, ApiError> {
        let Some(v) = self.header("content-md5") else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok());
        bytes.map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "InvalidDigest",
                "The Content-MD5 you specified is not valid.",
            )
        })
    }

    /// A copy header (`copy-source-range`, `metadata-directive`, ...) in the
    /// spelling the request's copy source uses (`x-cos-` or `x-amz-`).
    pub fn copy_header(&self, suffix: &str) -> Option<&str> {
        let family = router::copy_headers(self.headers)?;
        self.header(&format!("{family}{suffix}"))
    }

    /// The prefix of the copy-source preconditions (`x-cos-copy-source-if-match`
    /// or `x-amz-copy-source-if-match`, ...).
    pub fn copy_condition_prefix(&self) -> String {
        let family = router::copy_headers(self.headers).unwrap_or("x-cos-");
        format!("{family}copy-source-")
    }

    /// The bucket and key named by `x-cos-copy-source` (or `x-amz-copy-source`).
    pub fn copy_source(&self) -> Result<(Arc<Bucket>, String), ApiError> {
        let value = self.copy_header("copy-source").ok_or_else(|| {
            ApiError::invalid_argument("x-cos-copy-source is missing or not ASCII.")
        })?;
        let (bucket, key) = parse_copy_source(value)?;
        let bucket = self
            .state
            .store
            .bucket(&bucket)
            .ok_or_else(ApiError::no_such_bucket)?;
        if self.state.deny_anonymous(Op::GetObject, self.anonymous()) {
            return Err(ApiError::access_denied(
                "Access to the copy source is denied.",
            ));
        }
        Ok((bucket.clone(), key))
    }

    fn anonymous(&self) -> bool {
        !self.headers.contains_key(header::AUTHORIZATION) && !self.query.has("q-sign-algorithm")
    }
}

/// Receives an object or part body (≤ 5 GB) into a temporary file and
/// checks it against `Content-MD5`.
pub async fn receive_body(ctx: &Ctx<'_>, body: Incoming) -> Result<(TempFile, Digests), ApiError> {
    let length = ctx.content_length()?;
    if length.is_some_and(|n| n > MAX_PUT_BYTES) {
        return Err(ApiError::bad_request(
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size of 5 GB.",
        ));
    }
    let expected = ctx.content_md5()?;
    let mut temp = super::body::receive(body, ctx.bucket.temp()?, length, MAX_PUT_BYTES).await?;
    let digests = temp.digests();
    if expected.is_some_and(|md5| md5 != digests.md5) {
        return Err(ApiError::bad_request(
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
        ));
    }
    Ok((temp, digests))
}

/// Splits `x-cos-copy-source` into bucket and key. Accepts the documented
/// `<bucket>.cos.<region>.myqcloud.com/<url-encoded key>` form and cosfs's
/// `/<bucket>/<key>` form (itself possibly URL-encoded); a trailing
/// `?versionId=` is ignored.
pub fn parse_copy_source(value: &str) -> Result<(String, String), ApiError> {
    let value = value.trim();
    let value = value.split_once("?versionId=").map_or(value, |(v, _)| v);
    let bad = || {
        ApiError::invalid_argument(
            "x-cos-copy-source must be <bucket>.cos.<region>.myqcloud.com/<key>.",
        )
    };
    let (bucket, key) = if value.starts_with('/')
        || value
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("%2f"))
    {
        let decoded = decode(value)?;
        let (bucket, key) = decoded[1..].split_once('/').ok_or_else(bad)?;
        (bucket.to_string(), key.to_string())
    } else {
        let (host, key) = value.split_once('/').ok_or_else(bad)?;
        (
            host.split('.').next().unwrap_or_default().to_string(),
            decode(key)?,
        )
    };
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok((bucket, key))
}

/// Runs blocking disk work on the blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&std::io::Error::other(e)))?
}

/// Runs the handler of `op`.
pub async fn dispatch(op: Op, ctx: &Ctx<'_>, body: Incoming) -> Result<Response<Body>, ApiError> {
    match op {
        Op::HeadBucket => bucket::head(ctx),
        Op::ListObjects => bucket::list_objects(ctx),
        Op::ListMultipartUploads => bucket::list_uploads(ctx),
        Op::DeleteMultipleObjects => bucket::delete_multiple(ctx, body).await,
        Op::HeadObject => object::head(ctx),
        Op::GetObject => object::get(ctx),
        Op::PutObject => object::put(ctx, body).await,
        Op::CopyObject => object::copy(ctx).await,
        Op::DeleteObject => object::delete(ctx).await,
        Op::InitiateMultipartUpload => multipart::initiate(ctx).await,
        Op::UploadPart => multipart::upload_part(ctx, body).await,
        Op::UploadPartCopy => multipart::upload_part_copy(ctx).await,
        Op::CompleteMultipartUpload => multipart::complete(ctx, body).await,
        Op::AbortMultipartUpload => multipart::abort(ctx).await,
        Op::ListParts => multipart::list_parts(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_copy_source_forms() {
        let p = |v| parse_copy_source(v).unwrap();
        assert_eq!(
            p("b-1.cos.ap-guangzhou.myqcloud.com/a%20b/c"),
            ("b-1".into(), "a b/c".into())
        );
        assert_eq!(
            p("b-1.cos.r.myqcloud.com/x?versionId=7"),
            ("b-1".into(), "x".into())
        );
        assert_eq!(
            p("b-1.cos.r.myqcloud.com/%E4%B8%AD/.%2F..%2Fz"),
            ("b-1".into(), "中/./../z".into())
        );
        assert_eq!(p("/b-1/dir/f%2Bg"), ("b-1".into(), "dir/f+g".into()));
        assert_eq!(p("%2Fb-1%2Fdir%2Ff"), ("b-1".into(), "dir/f".into()));
        assert!(parse_copy_source("b-1.cos.r.myqcloud.com/").is_err());
        assert!(parse_copy_source("nokey").is_err());
    }
}
