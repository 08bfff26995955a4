//! Multipart uploads: initiate, upload part, upload part - copy, complete
//! (parts ascending, every part but the last ≥ 1 MiB, ETag `"<hex>-N"`,
//! CRC64 of the whole object), abort, list parts.

use hyper::body::Incoming;
use hyper::{Response, StatusCode, header};

use super::{Ctx, blocking, receive_body};
use crate::cos::xml::{
    self, CompleteMultipartUpload, CompleteMultipartUploadResult, CopyPartResult,
    InitiateMultipartUploadResult, ListPartsResult, ListedPart,
};
use crate::server::body::{self, Body};
use crate::server::conditional::{self, Precondition};
use crate::server::error::ApiError;
use crate::server::response::{self, attrs_from, iso, list_encode, quoted};
use crate::server::store::multipart::{PartRecord, UploadError};

/// Smallest part allowed anywhere but last.
const MIN_PART_BYTES: u64 = 1 << 20;
/// Largest Complete request body.
const MAX_COMPLETE_BODY: u64 = 4 << 20;

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::NoSuchUpload => ApiError::no_such_upload(),
            UploadError::Completing => ApiError::new(
                StatusCode::CONFLICT,
                "UploadConflict",
                "The upload is being completed by another request.",
            ),
            UploadError::Io(e) => ApiError::internal(&e),
        }
    }
}

fn upload_id<'a>(ctx: &'a Ctx) -> &'a str {
    ctx.query.get("uploadId").unwrap_or_default()
}

fn part_number(ctx: &Ctx) -> Result<u32, ApiError> {
    ctx.query
        .get("partNumber")
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_argument("partNumber must be an integer between 1 and 10000.")
        })
}

/// POST /key?uploads.
pub async fn initiate(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.check_new_key()?;
    let attrs = attrs_from(ctx.headers)?;
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.to_string());
    let record = blocking(move || Ok(bucket.initiate(&key, attrs)?)).await?;
    response::xml(&InitiateMultipartUploadResult {
        bucket: ctx.bucket.name().to_string(),
        key: ctx.key.to_string(),
        upload_id: record.upload_id,
    })
}

/// PUT /key?partNumber=N&uploadId=ID.
pub async fn upload_part(ctx: &Ctx<'_>, body: Incoming) -> Result<Response<Body>, ApiError> {
    let number = part_number(ctx)?;
    ctx.bucket.upload(upload_id(ctx), ctx.key)?;
    let (temp, digests) = receive_body(ctx, body).await?;
    let (bucket, key, id) = (
        ctx.bucket.clone(),
        ctx.key.to_string(),
        upload_id(ctx).to_string(),
    );
    let part = blocking(move || Ok(bucket.put_part(&id, &key, number, temp, digests)?)).await?;
    let builder = Response::builder()
        .header("x-cos-hash-crc64ecma", part.crc64)
        .header(header::ETAG, quoted(&part.etag))
        .header(header::CONTENT_LENGTH, 0);
    response::build(builder, body::empty())
}

/// `x-cos-copy-source-range: bytes=first-last` (inclusive) within `size`,
/// as (offset, length); the whole object when absent.
fn source_range(value: Option<&str>, size: u64) -> Result<(u64, u64), ApiError> {
    let Some(value) = value else {
        return Ok((0, size));
    };
    let bad = || ApiError::invalid_argument("x-cos-copy-source-range must be bytes=first-last.");
    let (a, b) = value
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let (first, last): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if first > last || last >= size {
        return Err(ApiError::invalid_range());
    }
    Ok((first, last - first + 1))
}

/// PUT /key?partNumber=N&uploadId=ID with `x-cos-copy-source` (or
/// `x-amz-copy-source`, with `x-amz-copy-source-range`).
pub async fn upload_part_copy(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let number = part_number(ctx)?;
    ctx.bucket.upload(upload_id(ctx), ctx.key)?;
    let (src_bucket, src_key) = ctx.copy_source()?;
    let headers = ctx.headers.clone();
    let conditions = ctx.copy_condition_prefix();
    let range = ctx.copy_header("copy-source-range").map(str::to_string);
    let (bucket, key, id) = (
        ctx.bucket.clone(),
        ctx.key.to_string(),
        upload_id(ctx).to_string(),
    );
    let part = blocking(move || {
        let src = src_bucket
            .open_object(&src_key)?
            .ok_or_else(ApiError::no_such_key)?;
        let meta = &src.record.meta;
        if conditional::evaluate(&headers, &conditions, &meta.etag, meta.last_modified)
            != Precondition::Pass
        {
            return Err(ApiError::precondition_failed());
        }
        let (offset, len) = source_range(range.as_deref(), meta.size)?;
        let mut temp = bucket.temp()?;
        temp.copy_from(&src.file, offset, len)?;
        let digests = temp.digests();
        Ok(bucket.put_part(&id, &key, number, temp, digests)?)
    })
    .await?;
    let result = CopyPartResult {
        etag: quoted(&part.etag),
        last_modified: iso(part.last_modified),
    };
    let mut answer = response::xml(&result)?;
    answer
        .headers_mut()
        .insert("x-cos-hash-crc64ecma", part.crc64.into());
    Ok(answer)
}

/// Checks the requested parts against the uploaded ones.
fn choose_parts(
    requested: &CompleteMultipartUpload,
    uploaded: &std::collections::BTreeMap<u32, PartRecord>,
) -> Result<Vec<PartRecord>, ApiError> {
    if requested.part.is_empty() {
        return Err(ApiError::malformed_xml(
            "The Complete request names no part.",
        ));
    }
    let mut chosen = Vec::with_capacity(requested.part.len());
    for (i, p) in requested.part.iter().enumerate() {
        if i > 0 && p.part_number <= requested.part[i - 1].part_number {
            return Err(ApiError::bad_request(
                "InvalidPartOrder",
                "The list of parts was not in ascending order.",
            ));
        }
        let part = uploaded
            .get(&p.part_number)
            .filter(|u| xml::unquote_etag(&p.etag).eq_ignore_ascii_case(&u.etag))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidPart",
                    format!(
                        "Part {} was not uploaded or its ETag does not match.",
                        p.part_number
                    ),
                )
            })?;
        chosen.push(part.clone());
    }
    if let Some(small) = chosen[..chosen.len() - 1]
        .iter()
        .find(|p| p.size < MIN_PART_BYTES)
    {
        return Err(ApiError::bad_request(
            "EntityTooSmall",
            format!(
                "Part {} is smaller than the minimum allowed size of 1 MB.",
                small.part_number
            ),
        ));
    }
    Ok(chosen)
}

/// POST /key?uploadId=ID.
pub async fn complete(ctx: &Ctx<'_>, body: Incoming) -> Result<Response<Body>, ApiError> {
    let id = upload_id(ctx).to_string();
    ctx.bucket.upload(&id, ctx.key)?;
    let data = body::collect(body, MAX_COMPLETE_BODY).await?;
    let requested: CompleteMultipartUpload =
        xml::from_xml(&data).map_err(|e| ApiError::malformed_xml(e.to_string()))?;
    let (upload, uploaded) = ctx.bucket.begin_complete(&id, ctx.key)?;
    let parts = match choose_parts(&requested, &uploaded) {
        Ok(parts) => parts,
        Err(e) => {
            ctx.bucket.cancel_complete(&id);
            return Err(e);
        }
    };
    let bucket = ctx.bucket.clone();
    let meta = blocking(move || Ok(bucket.finish_complete(&upload, &parts)?)).await?;
    let location = format!(
        "http://{}.cos.{}.myqcloud.com/{}",
        ctx.bucket.name(),
        ctx.state.region,
        list_encode(ctx.key, true)
    );
    let result = CompleteMultipartUploadResult {
        location,
        bucket: ctx.bucket.name().to_string(),
        key: ctx.key.to_string(),
        etag: quoted(&meta.etag),
    };
    let mut answer = response::xml(&result)?;
    answer
        .headers_mut()
        .insert("x-cos-hash-crc64ecma", meta.crc64.into());
    Ok(answer)
}

/// DELETE /key?uploadId=ID.
pub async fn abort(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let (bucket, key, id) = (
        ctx.bucket.clone(),
        ctx.key.to_string(),
        upload_id(ctx).to_string(),
    );
    blocking(move || Ok(bucket.abort(&id, &key)?)).await?;
    response::no_content(StatusCode::NO_CONTENT)
}

/// GET /key?uploadId=ID.
pub fn list_parts(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let parts = ctx.bucket.parts(upload_id(ctx), ctx.key)?;
    let bad = |name: &str| ApiError::invalid_argument(format!("{name} must be a number."));
    let marker: u32 = match ctx
        .query
        .get("part-number-marker")
        .filter(|v| !v.is_empty())
    {
        Some(v) => v.parse().map_err(|_| bad("part-number-marker"))?,
        None => 0,
    };
    let max: usize = match ctx.query.get("max-parts").filter(|v| !v.is_empty()) {
        Some(v) => v.parse::<usize>().map_err(|_| bad("max-parts"))?.min(1000),
        None => 1000,
    };
    let mut after = parts.into_iter().filter(|p| p.part_number > marker);
    let page: Vec<PartRecord> = after.by_ref().take(max).collect();
    let truncated = after.next().is_some();
    let encode = ctx.query.get("encoding-type") == Some("url");
    let result = ListPartsResult {
        bucket: ctx.bucket.name().to_string(),
        key: list_encode(ctx.key, encode),
        upload_id: upload_id(ctx).to_string(),
        part_number_marker: marker,
        next_part_number_marker: page.last().map_or(marker, |p| p.part_number),
        max_parts: max as u32,
        is_truncated: truncated,
        part: page
            .iter()
            .map(|p| ListedPart {
                part_number: p.part_number,
                last_modified: iso(p.last_modified),
                etag: quoted(&p.etag),
                size: p.size,
            })
            .collect(),
    };
    response::xml(&result)
}
