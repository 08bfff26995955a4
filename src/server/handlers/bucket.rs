//! Bucket operations: HEAD Bucket, GET Bucket (List Objects v1), Delete
//! Multiple Objects and List Multipart Uploads.

use hyper::body::Incoming;
use hyper::{Response, header};
use md5::{Digest, Md5};

use super::{Ctx, blocking};
use crate::cos::xml::{
    self, CommonPrefix, Contents, DeleteError, DeleteObject, DeleteRequest, DeleteResult,
    ListBucketResult, ListMultipartUploadsResult, Upload,
};
use crate::server::body::{self, Body};
use crate::server::error::ApiError;
use crate::server::listing::ListParams;
use crate::server::response::{self, iso, list_encode, quoted};

/// Most keys one Delete Multiple request may name.
const MAX_DELETE_KEYS: usize = 1000;
/// Largest Delete Multiple body.
const MAX_DELETE_BODY: u64 = 4 << 20;

/// HEAD Bucket.
pub fn head(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let builder = Response::builder()
        .header("x-cos-bucket-region", ctx.state.region.as_str())
        .header(header::CONTENT_LENGTH, 0);
    response::build(builder, body::empty())
}

/// `max-keys`-style limit: default and cap 1000.
fn limit(ctx: &Ctx, name: &str) -> Result<usize, ApiError> {
    match ctx.query.get(name).filter(|v| !v.is_empty()) {
        None => Ok(1000),
        Some(v) => v.parse::<usize>().map(|n| n.min(1000)).map_err(|_| {
            ApiError::invalid_argument(format!("{name} must be a number between 0 and 1000."))
        }),
    }
}

/// True when `encoding-type=url` was asked for (the only value allowed).
fn url_encoding(ctx: &Ctx) -> Result<bool, ApiError> {
    match ctx.query.get("encoding-type") {
        None | Some("") => Ok(false),
        Some("url") => Ok(true),
        Some(_) => Err(ApiError::invalid_argument("encoding-type must be url.")),
    }
}

/// GET Bucket (List Objects v1).
pub fn list_objects(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let encode = url_encoding(ctx)?;
    let params = ListParams {
        prefix: ctx.query.get("prefix").unwrap_or_default().to_string(),
        delimiter: ctx.query.get("delimiter").unwrap_or_default().to_string(),
        marker: ctx.query.get("marker").unwrap_or_default().to_string(),
        max_keys: limit(ctx, "max-keys")?,
    };
    let page = ctx.bucket.list(&params);
    let e = |s: &str| list_encode(s, encode);
    let result = ListBucketResult {
        name: ctx.bucket.name().to_string(),
        encoding_type: encode.then(|| "url".to_string()),
        prefix: e(&params.prefix),
        marker: e(&params.marker),
        max_keys: params.max_keys as u32,
        delimiter: (!params.delimiter.is_empty()).then(|| params.delimiter.clone()),
        is_truncated: page.truncated,
        next_marker: page.next_marker.as_deref().map(e),
        common_prefixes: page
            .prefixes
            .iter()
            .map(|p| CommonPrefix { prefix: e(p) })
            .collect(),
        contents: page
            .objects
            .iter()
            .map(|(key, meta)| Contents {
                key: e(key),
                last_modified: iso(meta.last_modified),
                etag: quoted(&meta.etag),
                size: meta.size,
                storage_class: response::storage_class(&meta.attrs),
            })
            .collect(),
    };
    response::xml(&result)
}

/// POST /?delete: deletes up to 1000 keys; `Content-MD5` is required.
pub async fn delete_multiple(ctx: &Ctx<'_>, body: Incoming) -> Result<Response<Body>, ApiError> {
    let md5 = ctx.content_md5()?.ok_or_else(|| {
        ApiError::bad_request(
            "MissingContentMD5",
            "Missing required header for this request: Content-MD5.",
        )
    })?;
    let data = body::collect(body, MAX_DELETE_BODY).await?;
    if <[u8; 16]>::from(Md5::digest(&data)) != md5 {
        return Err(ApiError::bad_request(
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
        ));
    }
    let request: DeleteRequest =
        xml::from_xml(&data).map_err(|e| ApiError::malformed_xml(e.to_string()))?;
    if request.object.is_empty() || request.object.len() > MAX_DELETE_KEYS {
        return Err(ApiError::malformed_xml(
            "A Delete request names 1 to 1000 keys.",
        ));
    }
    let bucket = ctx.bucket.clone();
    let result = blocking(move || {
        let mut result = DeleteResult::default();
        for DeleteObject { key } in request.object {
            match bucket.delete(&key) {
                Ok(()) if request.quiet => {}
                Ok(()) => result.deleted.push(DeleteObject { key }),
                Err(e) => {
                    let err = ApiError::internal(&e);
                    result.error.push(DeleteError {
                        key,
                        code: err.code.to_string(),
                        message: err.message,
                    });
                }
            }
        }
        Ok(result)
    })
    .await?;
    response::xml(&result)
}

/// GET /?uploads: uploads in progress, by key then upload id.
pub fn list_uploads(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let encode = url_encoding(ctx)?;
    let prefix = ctx.query.get("prefix").unwrap_or_default();
    let key_marker = ctx.query.get("key-marker").unwrap_or_default();
    let id_marker = ctx.query.get("upload-id-marker").unwrap_or_default();
    let max = limit(ctx, "max-uploads")?;
    let after_marker = |key: &str, id: &str| {
        if id_marker.is_empty() {
            key > key_marker
        } else {
            (key, id) > (key_marker, id_marker)
        }
    };
    let mut matching = ctx
        .bucket
        .uploads()
        .into_iter()
        .filter(|u| u.key.starts_with(prefix) && after_marker(&u.key, &u.upload_id));
    let page: Vec<_> = matching.by_ref().take(max).collect();
    let truncated = matching.next().is_some();
    let last = page.last().filter(|_| truncated);
    let result = ListMultipartUploadsResult {
        bucket: ctx.bucket.name().to_string(),
        encoding_type: encode.then(|| "url".to_string()),
        key_marker: list_encode(key_marker, encode),
        upload_id_marker: id_marker.to_string(),
        next_key_marker: last.map(|u| list_encode(&u.key, encode)),
        next_upload_id_marker: last.map(|u| u.upload_id.clone()),
        prefix: list_encode(prefix, encode),
        max_uploads: max as u32,
        is_truncated: truncated,
        upload: page
            .iter()
            .map(|u| Upload {
                key: list_encode(&u.key, encode),
                upload_id: u.upload_id.clone(),
                initiated: iso(u.initiated),
                storage_class: "STANDARD".to_string(),
            })
            .collect(),
    };
    response::xml(&result)
}
