//! The write path. A file written sequentially from offset 0 streams: parts
//! go up in parallel while the application writes ([`stream`]). Any other
//! change is held in a staging file and uploaded whole on flush ([`staged`]),
//! reusing unchanged ranges of a large object by server-side part copies.
//! Either way the object appears atomically (one PUT or one Complete) and a
//! failed multipart upload is aborted, so no partial object is ever visible.

pub mod ranges;
pub mod staged;
pub mod stream;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self as futures_stream, StreamExt, TryStreamExt};
use log::{debug, warn};

use crate::cache::MemoryBudget;
use crate::cos::{CosError, CosResult, GetOptions, ObjectAttrs, ObjectClient, PartInfo, PutResult};
use staged::{Piece, StagedFile};

/// Uploads older than this are stale unless told otherwise
/// (`--abort-stale-uploads`, `cosmount cleanup --older-than`).
pub const DEFAULT_STALE_AGE: Duration = Duration::from_secs(24 * 3600);

/// COS's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 1 << 20;
/// COS's largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// COS's part count limit.
pub const MAX_PARTS: u64 = 10_000;

/// Write-path sizes.
#[derive(Clone, Debug)]
pub struct UploadConfig {
    /// Part size of multipart uploads (grows for very large files).
    pub part_size: u64,
    /// Parts uploading at once per file.
    pub part_concurrency: usize,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            part_size: 8 << 20,
            part_concurrency: 4,
        }
    }
}

/// Size of part `number` (1-based) of a stream of unknown length: the base
/// size doubles every 100 parts (up to 5 GiB), so 10,000 parts reach COS's
/// 48.82 TB object limit while files up to 800 MiB keep the base size.
pub fn stream_part_size(base: u64, number: u32) -> u64 {
    let doublings = u64::from(number.saturating_sub(1)) / 100;
    (base << doublings.min(20)).clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// Part size for an object of known `total` size: `base`, or larger so
/// that no more than 10,000 parts are needed (rounded up to whole MiB).
pub fn fixed_part_size(base: u64, total: u64) -> u64 {
    let needed = total.div_ceil(MAX_PARTS).next_multiple_of(MIN_PART_SIZE);
    base.max(needed).clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// Uploads the content of a staged file as `key`: one PUT when small,
/// otherwise a multipart upload where parts identical to the base object
/// are copied server-side and the rest is assembled and uploaded.
pub async fn upload_staged<C: ObjectClient>(
    client: &Arc<C>,
    budget: &MemoryBudget,
    key: &str,
    staged: &StagedFile,
    attrs: &ObjectAttrs,
    config: &UploadConfig,
) -> CosResult<PutResult> {
    let size = staged.size();
    if size <= config.part_size {
        let _reservation = budget.reserve(size).await;
        let body = assemble(client, staged, 0..size).await?;
        return client.put(key, body, attrs).await;
    }
    let part_size = fixed_part_size(config.part_size, size);
    let ranges: Vec<(u32, Range<u64>)> = (0..size.div_ceil(part_size))
        .map(|i| (i as u32 + 1, i * part_size..((i + 1) * part_size).min(size)))
        .collect();
    let upload_id = client.create_multipart(key, attrs).await?;
    let result = async {
        let mut parts: Vec<PartInfo> = futures_stream::iter(ranges)
            .map(|(number, range)| {
                upload_staged_part(client, budget, key, &upload_id, staged, number, range)
            })
            .buffer_unordered(config.part_concurrency.max(1))
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number);
        client.complete_multipart(key, &upload_id, &parts).await
    }
    .await;
    if let Err(e) = &result {
        abort(client.as_ref(), key, &upload_id, e).await;
    }
    result
}

async fn upload_staged_part<C: ObjectClient>(
    client: &Arc<C>,
    budget: &MemoryBudget,
    key: &str,
    upload_id: &str,
    staged: &StagedFile,
    number: u32,
    range: Range<u64>,
) -> CosResult<PartInfo> {
    if let Some(base) = staged.base().filter(|_| staged.is_unchanged(&range)) {
        debug!("part {number} of {key:?} is unchanged: copying {range:?} server-side");
        match client
            .upload_part_copy(
                key,
                upload_id,
                number,
                &base.key,
                Some(&base.etag),
                range.clone(),
            )
            .await
        {
            // A server that cannot copy gets the bytes (read back from it).
            Err(CosError::Unsupported(_)) => {}
            copied => return copied,
        }
    }
    let _reservation = budget.reserve(range.end - range.start).await;
    let body = assemble(client, staged, range).await?;
    client.upload_part(key, upload_id, number, body).await
}

/// The bytes of `range` of a staged file: local writes, base ranges
/// (fetched with If-Match so a changed base fails instead of mixing) and zeros.
pub async fn assemble<C: ObjectClient>(
    client: &Arc<C>,
    staged: &StagedFile,
    range: Range<u64>,
) -> CosResult<Bytes> {
    let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
    for piece in staged.pieces(range) {
        match piece {
            Piece::Local(r) => {
                let data = staged.read_local(r).map_err(|e| {
                    CosError::InvalidRequest(format!("cannot read the staging file: {e}"))
                })?;
                out.extend_from_slice(&data);
            }
            Piece::Base(r) => {
                let base = staged.base().expect("base pieces exist only with a base");
                let opts = GetOptions {
                    range: Some(r.clone()),
                    if_match: Some(base.etag.to_string()),
                    buffers: None,
                };
                let got = client.get(&base.key, &opts).await?;
                if got.body.len() as u64 != r.end - r.start {
                    return Err(CosError::Integrity(format!(
                        "{:?} is shorter than when it was opened",
                        base.key
                    )));
                }
                out.extend_from_slice(&got.body);
            }
            Piece::Zero(r) => out.resize(out.len() + (r.end - r.start) as usize, 0),
        }
    }
    Ok(out.freeze())
}

/// Aborts a failed multipart upload so no parts linger.
pub async fn abort<C: ObjectClient>(client: &C, key: &str, upload_id: &str, cause: &CosError) {
    warn!("upload of {key:?} failed ({cause}); aborting multipart upload {upload_id}");
    if let Err(e) = client.abort_multipart(key, upload_id).await {
        warn!(
            "could not abort multipart upload {upload_id} of {key:?}: {e}; `cosmount cleanup` can remove it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ObjectVersion;
    use crate::cos::memory::MemoryClient;
    use staged::StagingArea;

    const MB: u64 = 1 << 20;

    #[test]
    fn part_sizes_respect_cos_limits() {
        assert_eq!(stream_part_size(8 * MB, 1), 8 * MB);
        assert_eq!(stream_part_size(8 * MB, 100), 8 * MB);
        assert_eq!(stream_part_size(8 * MB, 101), 16 * MB);
        assert_eq!(stream_part_size(8 * MB, 10_000), MAX_PART_SIZE);
        let total: u64 = (1..=10_000).map(|n| stream_part_size(8 * MB, n)).sum();
        assert!(
            total >= 48_820_000_000_000,
            "10,000 parts reach the 48.82 TB object limit"
        );
        assert_eq!(fixed_part_size(8 * MB, 1 << 30), 8 * MB);
        let big = 200u64 << 30;
        assert!(big.div_ceil(fixed_part_size(8 * MB, big)) <= MAX_PARTS);
        assert_eq!(fixed_part_size(8 * MB, big) % MB, 0);
    }

    #[tokio::test]
    async fn staged_upload_copies_unchanged_parts() {
        let client = Arc::new(MemoryClient::new());
        let original: Vec<u8> = (0..5 * MB).map(|i| (i % 253) as u8).collect();
        let put = client
            .put(
                "big",
                Bytes::from(original.clone()),
                &ObjectAttrs::default(),
            )
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::new(dir.path(), 1 << 30).unwrap();
        let base = ObjectVersion {
            key: "big".into(),
            etag: put.etag.into(),
            size: 5 * MB,
        };
        let mut staged = StagedFile::new(area, Some(base)).unwrap();
        staged.write(2 * MB + 7, b"patch").unwrap();
        staged.write(5 * MB, b"tail").unwrap();
        let config = UploadConfig {
            part_size: MB,
            part_concurrency: 2,
        };
        let budget = MemoryBudget::new(64 * MB);
        upload_staged(
            &client,
            &budget,
            "big",
            &staged,
            &ObjectAttrs::default(),
            &config,
        )
        .await
        .unwrap();
        let mut expected = original;
        expected[(2 * MB + 7) as usize..(2 * MB + 12) as usize].copy_from_slice(b"patch");
        expected.extend_from_slice(b"tail");
        assert_eq!(client.object("big").unwrap(), Bytes::from(expected));
        assert_eq!(
            client.calls("upload_part_copy"),
            4,
            "parts 1, 2, 4, 5 unchanged"
        );
        assert_eq!(
            client.calls("upload_part"),
            2,
            "the patched part and the tail"
        );
    }

    #[tokio::test]
    async fn failed_uploads_are_aborted_and_leave_nothing() {
        let client = Arc::new(MemoryClient::new());
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::new(dir.path(), 1 << 30).unwrap();
        let mut staged = StagedFile::new(area, None).unwrap();
        staged.write(0, &vec![7u8; 3 * MB as usize]).unwrap();
        client.fail_next(
            "upload_part",
            CosError::service(500, "InternalError", "boom"),
        );
        let config = UploadConfig {
            part_size: MB,
            part_concurrency: 1,
        };
        let budget = MemoryBudget::new(64 * MB);
        let err = upload_staged(
            &client,
            &budget,
            "f",
            &staged,
            &ObjectAttrs::default(),
            &config,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "InternalError");
        assert!(client.object("f").is_none());
        assert_eq!(client.pending_uploads(), 0);
    }
}
