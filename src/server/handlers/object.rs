//! Object operations: HEAD, GET (ranges, preconditions, `response-*`
//! overrides), PUT (streamed to disk, MD5 and CRC64 computed on the way,
//! `Content-MD5` checked), PUT - Copy and DELETE.

use std::time::SystemTime;

use hyper::body::Incoming;
use hyper::header::{self, HeaderName};
use hyper::{Response, StatusCode};

use super::{Ctx, blocking, receive_body};
use crate::cos::xml::CopyObjectResult;
use crate::server::body::{self, Body};
use crate::server::conditional::{self, Precondition, RangeRequest};
use crate::server::error::ApiError;
use crate::server::response::{self, attrs_from, iso, object_headers, quoted};
use crate::server::store::ObjectMeta;

/// `response-*` query parameters and the header each one overrides.
const OVERRIDES: [(&str, HeaderName); 6] = [
    ("response-content-type", header::CONTENT_TYPE),
    ("response-content-language", header::CONTENT_LANGUAGE),
    ("response-expires", header::EXPIRES),
    ("response-cache-control", header::CACHE_CONTROL),
    ("response-content-disposition", header::CONTENT_DISPOSITION),
    ("response-content-encoding", header::CONTENT_ENCODING),
];

/// Answers a failed or 304 precondition.
fn precondition(ctx: &Ctx, meta: &ObjectMeta) -> Result<Option<Response<Body>>, ApiError> {
    match conditional::evaluate(ctx.headers, "", &meta.etag, meta.last_modified) {
        Precondition::Pass => Ok(None),
        Precondition::Failed => Err(ApiError::precondition_failed()),
        Precondition::NotModified => {
            let builder = Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::ETAG, quoted(&meta.etag))
                .header(
                    header::LAST_MODIFIED,
                    httpdate::fmt_http_date(meta.last_modified),
                );
            response::build(builder, body::empty()).map(Some)
        }
    }
}

/// HEAD Object, answered from the index. A missing key is a bodiless 404.
pub fn head(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let meta = ctx.bucket.head(ctx.key).ok_or_else(ApiError::no_such_key)?;
    if let Some(answer) = precondition(ctx, &meta)? {
        return Ok(answer);
    }
    let builder =
        object_headers(Response::builder(), &meta).header(header::CONTENT_LENGTH, meta.size);
    response::build(builder, body::empty())
}

/// GET Object. The open file's record is the truth: a concurrent overwrite
/// or delete never mixes versions.
pub fn get(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let stored = ctx
        .bucket
        .open_object(ctx.key)?
        .ok_or_else(ApiError::no_such_key)?;
    let meta = &stored.record.meta;
    if let Some(answer) = precondition(ctx, meta)? {
        return Ok(answer);
    }
    let class = response::storage_class(&meta.attrs);
    if crate::cos::class::ARCHIVED.contains(&class.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "InvalidObjectState",
            format!(
                "The operation is not valid for the object's storage class ({class}): restore it first."
            ),
        ));
    }
    let range = match ctx.header("range") {
        Some(r) => conditional::parse_range(r, meta.size),
        None => RangeRequest::Whole,
    };
    let mut builder = object_headers(Response::builder(), meta);
    let (offset, len) = match range {
        RangeRequest::Whole => (0, meta.size),
        RangeRequest::Bytes(start, end) => {
            builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", meta.size),
            );
            (start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => return Err(ApiError::invalid_range()),
    };
    for (param, name) in OVERRIDES {
        if let Some(v) = ctx.query.get(param) {
            if let Some(h) = builder.headers_mut() {
                h.remove(&name);
            }
            builder = builder.header(name, v);
        }
    }
    builder = builder.header(header::CONTENT_LENGTH, len);
    response::build(builder, body::file_range(stored.file, offset, len)?)
}

/// PUT Object: streams the body to a temporary file, checks `Content-MD5`,
/// then publishes it atomically.
pub async fn put(ctx: &Ctx<'_>, body: Incoming) -> Result<Response<Body>, ApiError> {
    ctx.check_new_key()?;
    let attrs = attrs_from(ctx.headers)?;
    let (temp, digests) = receive_body(ctx, body).await?;
    let meta = ObjectMeta {
        size: digests.size,
        etag: hex::encode(digests.md5),
        crc64: digests.crc64,
        last_modified: SystemTime::now(),
        attrs,
    };
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.to_string());
    let meta = blocking(move || Ok(bucket.commit(temp, &key, meta)?)).await?;
    let builder = Response::builder()
        .header(header::ETAG, quoted(&meta.etag))
        .header("x-cos-hash-crc64ecma", meta.crc64)
        .header(header::CONTENT_LENGTH, 0);
    response::build(builder, body::empty())
}

/// The metadata directive: `Copy` (default) or `Replaced` (any case;
/// cosfs's and S3's `REPLACE` too), spelled like the copy source.
fn replaces_metadata(ctx: &Ctx) -> Result<bool, ApiError> {
    match ctx
        .copy_header("metadata-directive")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("copy") => Ok(false),
        Some("replaced" | "replace") => Ok(true),
        Some(other) => Err(ApiError::invalid_argument(format!(
            "Unknown x-cos-metadata-directive {other:?}: use Copy or Replaced."
        ))),
    }
}

/// PUT Object - Copy: the source's bytes under a new key, with the source's
/// headers (`Copy`) or the request's (`Replaced`).
pub async fn copy(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.check_new_key()?;
    let (src_bucket, src_key) = ctx.copy_source()?;
    let new_attrs = if replaces_metadata(ctx)? {
        Some(attrs_from(ctx.headers)?)
    } else {
        None
    };
    let headers = ctx.headers.clone();
    let conditions = ctx.copy_condition_prefix();
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.to_string());
    let meta = blocking(move || {
        let src = src_bucket
            .open_object(&src_key)?
            .ok_or_else(ApiError::no_such_key)?;
        let src_meta = src.record.meta;
        match conditional::evaluate(
            &headers,
            &conditions,
            &src_meta.etag,
            src_meta.last_modified,
        ) {
            Precondition::Pass => {}
            _ => return Err(ApiError::precondition_failed()),
        }
        let mut temp = bucket.temp()?;
        temp.append_raw(&src.file, 0, src_meta.size)?;
        let mut attrs = new_attrs.unwrap_or(src_meta.attrs.clone());
        // Whatever the directive, the copy is in the class and encryption
        // the request names.
        response::set_class_and_encryption(&mut attrs, &headers)?;
        let meta = ObjectMeta {
            last_modified: SystemTime::now(),
            attrs,
            ..src_meta
        };
        Ok(bucket.commit(temp, &key, meta)?)
    })
    .await?;
    let result = CopyObjectResult {
        etag: quoted(&meta.etag),
        last_modified: iso(meta.last_modified),
        crc64: Some(meta.crc64.to_string()),
    };
    let mut answer = response::xml(&result)?;
    answer
        .headers_mut()
        .insert("x-cos-hash-crc64ecma", meta.crc64.into());
    Ok(answer)
}

/// DELETE Object: 204 whether or not the key existed.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.to_string());
    blocking(move || Ok(bucket.delete(&key)?)).await?;
    response::no_content(StatusCode::NO_CONTENT)
}
