//! What an answer says: a service error (with the clock skew it may
//! reveal), a transport failure, or a body that is checked before use. A
//! body that fails a check (length, range, CRC64) is damage: retried,
//! never returned.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use log::error;
use reqwest::Method;
use reqwest::header::HeaderMap;

use super::progress::{Progress, Stall};
use crate::cos::provider::{Header, Provider};
use crate::cos::xml::{self, unquote_etag};
use crate::cos::{
    BodyBuffers, CosError, CosResult, Encryption, OBJECT_HEADERS, ObjectInfo, StorageClass,
    UserMeta, crc64,
};

/// A successful answer.
pub(super) struct Reply {
    /// Its HTTP status (2xx).
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body (empty for HEAD).
    pub body: Bytes,
}

/// A failed attempt; `skew` carries the server's time when it said our
/// clock is off.
pub(super) struct AttemptError {
    /// What went wrong.
    pub error: CosError,
    /// The server's time, when the answer was a clock-skew refusal.
    pub skew: Option<SystemTime>,
    /// The attempt was abandoned because it stopped making progress.
    pub stalled: bool,
}

impl AttemptError {
    /// Whether another attempt may succeed (a clock-skew refusal is
    /// retried with the server's time).
    pub fn is_retryable(&self) -> bool {
        self.skew.is_some() || self.error.is_retryable()
    }
}

impl From<CosError> for AttemptError {
    fn from(error: CosError) -> Self {
        AttemptError {
            error,
            skew: None,
            stalled: false,
        }
    }
}

impl From<Stall> for AttemptError {
    fn from(stall: Stall) -> Self {
        AttemptError {
            error: CosError::Transport {
                message: stall.to_string(),
                timeout: true,
            },
            skew: None,
            stalled: true,
        }
    }
}

/// COS refuses signatures whose time is more than 15 minutes off.
const SKEW_LIMIT_SECS: i64 = 15 * 60;

/// A HEAD cannot carry an error code: a bare 403 whose `Date` is further
/// from the time we sign with than COS allows is taken for clock skew.
fn bodiless_skew(error: &CosError, server_time: SystemTime, clock_offset: i64) -> bool {
    let signing = unix_seconds(SystemTime::now()) as i64 + clock_offset;
    error.status() == Some(403)
        && error.code().is_empty()
        && (unix_seconds(server_time) as i64 - signing).abs() > SKEW_LIMIT_SECS
}

/// The error of an answer with status `status` (or an `<Error>` body),
/// judged against the clock we signed with (`clock_offset`).
pub(super) fn service_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    clock_offset: i64,
) -> AttemptError {
    let request_id = request_id(headers);
    let parsed: Option<xml::ErrorBody> = if body.is_empty() {
        None
    } else {
        xml::from_xml(body).ok()
    };
    let (code, message) = match parsed {
        Some(e) => (e.code, e.message),
        None => (String::new(), reason(status).to_string()),
    };
    let error = CosError::Service {
        status,
        code,
        message,
        request_id: request_id.clone(),
    };
    let date = header_str(headers, "date").and_then(|d| httpdate::parse_http_date(&d).ok());
    let skew = date.filter(|&d| error.is_clock_skew() || bodiless_skew(&error, d, clock_offset));
    let error = match (&error, skew) {
        (CosError::Service { code, .. }, Some(_)) if code.is_empty() => CosError::Service {
            status,
            code: "RequestTimeTooSkewed".into(),
            message: "a 403 without a body whose Date is far from our clock".into(),
            request_id,
        },
        _ => error,
    };
    AttemptError {
        error,
        skew,
        stalled: false,
    }
}

/// The server's id of the request: COS's `x-cos-request-id` or S3's
/// `x-amz-request-id`.
fn request_id(headers: &HeaderMap) -> Option<String> {
    [Provider::Cos, Provider::S3]
        .into_iter()
        .find_map(|p| header_str(headers, p.header(Header::RequestId)))
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// A failure to send or to receive, with its whole chain of causes.
pub(super) fn transport_error(e: reqwest::Error) -> AttemptError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    CosError::Transport {
        message,
        timeout: e.is_timeout(),
    }
    .into()
}

/// Most bytes reserved up front for a body, whatever Content-Length says.
const MAX_PREALLOCATION: usize = 16 << 20;

/// Reads a response body into one buffer sized from Content-Length (bounded:
/// the header comes from the network; from `buffers` when given), so a body
/// never sits in memory twice and a 1 MiB block costs no allocator churn.
/// A body that sends nothing for `idle` is abandoned. Returns the body and
/// the longest silence within it.
pub(super) async fn read_body(
    mut resp: reqwest::Response,
    buffers: Option<&dyn BodyBuffers>,
    idle: Duration,
    progress: &Progress,
) -> Result<(Bytes, Duration), AttemptError> {
    let expected = (resp.content_length().unwrap_or(0) as usize).min(MAX_PREALLOCATION);
    let mut body = match buffers {
        Some(b) => b.buffer(expected),
        None => Vec::with_capacity(expected),
    };
    let mut longest_gap = Duration::ZERO;
    loop {
        let waited = tokio::time::Instant::now();
        let chunk = tokio::time::timeout(idle, resp.chunk())
            .await
            .map_err(|_| Stall::Answer(idle))?;
        longest_gap = longest_gap.max(waited.elapsed());
        progress.received();
        match chunk.map_err(transport_error)? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    let body = match buffers {
        Some(b) => b.freeze(body),
        None => Bytes::from(body),
    };
    Ok((body, longest_gap))
}

/// A body shorter or longer than Content-Length is damaged, never used.
pub(super) fn check_length(headers: &HeaderMap, body: &Bytes, method: &Method) -> CosResult<()> {
    if *method == Method::HEAD {
        return Ok(());
    }
    match header_u64(headers, "content-length") {
        Some(n) if n != body.len() as u64 => Err(CosError::Integrity(format!(
            "body has {} bytes, Content-Length says {n}",
            body.len()
        ))),
        _ => Ok(()),
    }
}

/// A GET's body is what was asked for: a range has the range's length
/// (the object may be shorter); a whole object, also as a range that
/// covers it or a range the server answered with the whole object,
/// matches the object's CRC64 when COS sent one. Anything else is damage,
/// retried and never returned.
pub(super) fn check_get(
    key: &str,
    range: Option<&std::ops::Range<u64>>,
    headers: &HeaderMap,
    body: &Bytes,
) -> CosResult<()> {
    if let (Some(r), Some(total)) = (range, content_range_total(headers)) {
        let expected = r.end.min(total).saturating_sub(r.start);
        if body.len() as u64 != expected {
            return Err(CosError::Integrity(format!(
                "range {r:?} of {key:?} returned {} bytes, expected {expected}",
                body.len()
            )));
        }
        if body.len() as u64 != total {
            return Ok(());
        }
    }
    match header_u64(headers, "x-cos-hash-crc64ecma") {
        Some(remote) => verify_crc(key, Some(remote), crc64::checksum(body)),
        None => Ok(()),
    }
}

/// Fails with [`CosError::Integrity`] when COS's CRC64 (if any) differs
/// from ours.
pub(super) fn verify_crc(key: &str, remote: Option<u64>, local: u64) -> CosResult<()> {
    match remote {
        Some(remote) if remote != local => Err(CosError::Integrity(format!(
            "CRC64 of {key:?} is {remote} at COS but {local} locally"
        ))),
        _ => Ok(()),
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A header read as a decimal number.
pub(super) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|v| v.trim().parse().ok())
}

/// The ETag header without its quotes (empty when missing).
pub(super) fn etag(headers: &HeaderMap) -> String {
    header_str(headers, "etag")
        .map(|e| unquote_etag(&e))
        .unwrap_or_default()
}

/// Reads object attributes from HEAD/GET headers in `provider`'s dialect;
/// `size` is the object's.
pub(super) fn object_info(headers: &HeaderMap, size: u64, provider: Provider) -> ObjectInfo {
    let meta_prefix = provider.meta_prefix();
    let last_modified = header_str(headers, "last-modified")
        .and_then(|d| httpdate::parse_http_date(&d).ok())
        .unwrap_or(UNIX_EPOCH);
    let meta: UserMeta = headers
        .iter()
        .filter_map(|(name, value)| {
            let suffix = name.as_str().strip_prefix(meta_prefix)?;
            Some((suffix.to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    ObjectInfo {
        size,
        etag: etag(headers),
        last_modified,
        crc64: header_u64(headers, "x-cos-hash-crc64ecma"),
        content_type: header_str(headers, "content-type"),
        headers: OBJECT_HEADERS
            .iter()
            .filter_map(|&name| Some((name.to_string(), header_str(headers, name)?)))
            .collect(),
        meta,
        storage_class: StorageClass::from_server(
            header_str(headers, provider.header(Header::StorageClass)).as_deref(),
        ),
        encryption: Encryption::from_server(
            header_str(headers, provider.header(Header::Encryption)).as_deref(),
            header_str(headers, provider.header(Header::KmsKeyId)).as_deref(),
        ),
    }
}

/// Total object size from `Content-Range: bytes a-b/total`.
pub(super) fn content_range_total(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, "content-range")?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

/// The result of a copy (`CopyObjectResult` or `CopyPartResult`). An answer
/// that is not one, with an ETag, means the server may have taken the copy
/// for something else, such as an upload of nothing over `dst`: said loudly,
/// and an `InvalidResponse` so the caller can clean up.
pub(super) fn copy_result<T>(src: &str, dst: &str, body: &[u8]) -> CosResult<T>
where
    T: for<'de> serde::Deserialize<'de> + xml::HasEtag,
{
    let parsed = xml::from_xml::<T>(body).and_then(|r| match r.etag().is_empty() {
        true => Err(CosError::InvalidResponse(
            "the copy result has no ETag".into(),
        )),
        false => Ok(r),
    });
    if let Err(e) = &parsed {
        error!(
            "copying {src:?} to {dst:?}: the server answered success without a copy result ({e}); it may have written something else at {dst:?}"
        );
    }
    parsed
}

/// Whole seconds since the Unix epoch (0 before it).
pub(super) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_headers(content_range: &str, crc: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-range", content_range.parse().unwrap());
        headers.insert("x-cos-hash-crc64ecma", crc.to_string().parse().unwrap());
        headers
    }

    #[test]
    fn a_range_that_covers_the_object_is_checked_against_its_crc64() {
        let body = Bytes::from_static(b"0123456789");
        let crc = crc64::checksum(&body);
        let whole = 0..10;
        assert!(
            check_get(
                "k",
                Some(&whole),
                &reply_headers("bytes 0-9/10", crc),
                &body
            )
            .is_ok()
        );
        let damaged = check_get(
            "k",
            Some(&whole),
            &reply_headers("bytes 0-9/10", crc ^ 1),
            &body,
        );
        assert!(
            matches!(damaged, Err(CosError::Integrity(_))),
            "{damaged:?}"
        );
        // A block of a larger object: the header's CRC64 is the object's.
        let part = Bytes::from_static(b"01234");
        let headers = reply_headers("bytes 0-4/10", crc);
        assert!(check_get("k", Some(&(0..5)), &headers, &part).is_ok());
        let short = check_get("k", Some(&(0..8)), &headers, &part);
        assert!(matches!(short, Err(CosError::Integrity(_))), "{short:?}");
    }
}
