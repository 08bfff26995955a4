//! Multipart uploads left behind: by a daemon killed while parts were
//! uploading, by an abort that failed, or by an Initiate whose answer was
//! lost (the client retried and started another). They hold no visible
//! object (an object appears only at Complete) but their parts are billed
//! as storage. `cosmount cleanup BUCKET[:/PREFIX]` lists and aborts them;
//! a mount aborts those under its prefix that are older than
//! `--abort-stale-uploads` (24 h by default, so uploads other clients are
//! running are left alone).

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, StreamExt};
use log::{info, warn};

use crate::config::MountConfig;
use crate::cos::client::HttpClient;
use crate::cos::{CosResult, ObjectClient, UploadInfo};

/// Aborts at once, at most.
const PARALLEL: usize = 16;

/// The uploads under `prefix` initiated before `cutoff`.
pub async fn stale<C: ObjectClient>(
    client: &C,
    prefix: &str,
    cutoff: SystemTime,
) -> CosResult<Vec<UploadInfo>> {
    let mut uploads = client.list_uploads(prefix).await?;
    uploads.retain(|u| u.initiated < cutoff && u.key.starts_with(prefix));
    Ok(uploads)
}

/// Aborts `uploads`; returns those that could not be aborted, with why.
pub async fn abort_all<C: ObjectClient>(
    client: &C,
    uploads: &[UploadInfo],
) -> Vec<(UploadInfo, String)> {
    let results: Vec<Result<(), (UploadInfo, String)>> = stream::iter(uploads.to_vec())
        .map(|u| async move {
            match client.abort_multipart(&u.key, &u.upload_id).await {
                Ok(()) => Ok(()),
                Err(e) => Err((u, e.to_string())),
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    results.into_iter().filter_map(Result::err).collect()
}

/// At mount: aborts the uploads under `prefix` initiated more than `age`
/// before `started` (the mount's start, so none of its own), logging what
/// it did. Runs in the background; a failure only costs a warning.
pub async fn at_mount<C: ObjectClient>(
    client: Arc<C>,
    prefix: String,
    started: SystemTime,
    age: Duration,
) {
    let cutoff = started.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
    let uploads = match stale(client.as_ref(), &prefix, cutoff).await {
        Ok(u) => u,
        Err(e) => {
            warn!("cannot list leftover multipart uploads under {prefix:?}: {e}");
            return;
        }
    };
    if uploads.is_empty() {
        return;
    }
    let failed = abort_all(client.as_ref(), &uploads).await;
    info!(
        "aborted {} multipart upload(s) under {prefix:?} left for more than {age:?} (by a crash or a lost answer)",
        uploads.len() - failed.len()
    );
    for (u, e) in failed {
        warn!(
            "cannot abort multipart upload {} of {:?}: {e}",
            u.upload_id, u.key
        );
    }
}

/// `cosmount cleanup` for a configured bucket: its uploads under the
/// prefix initiated more than `older_than` ago, listed and (unless
/// `dry_run`) aborted. True when nothing failed.
pub async fn command(
    config: &MountConfig,
    older_than: Duration,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<bool, String> {
    let creds = config.credentials.store().await?;
    let endpoint = config.target.endpoint(&config.bucket, &config.region)?;
    let client = HttpClient::new(config.client_config(endpoint), Arc::new(creds))
        .map_err(|e| e.to_string())?;
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    run(&client, &config.fs.prefix, cutoff, dry_run, out)
        .await
        .map_err(|e| format!("cannot write the report: {e}"))
}

/// `cosmount cleanup`: prints one line per upload initiated before
/// `cutoff` under `prefix`, aborts them unless `dry_run`, and says what it
/// did. True when nothing failed.
pub async fn run<C: ObjectClient>(
    client: &C,
    prefix: &str,
    cutoff: SystemTime,
    dry_run: bool,
    out: &mut dyn Write,
) -> io::Result<bool> {
    let uploads = match stale(client, prefix, cutoff).await {
        Ok(u) => u,
        Err(e) => {
            writeln!(out, "FAIL: cannot list multipart uploads: {e}")?;
            return Ok(false);
        }
    };
    let now = SystemTime::now();
    for u in &uploads {
        let age = now.duration_since(u.initiated).unwrap_or_default();
        writeln!(
            out,
            "{}\t{}\tinitiated {} ago",
            u.upload_id,
            u.key.escape_debug(),
            humantime::format_duration(Duration::from_secs(age.as_secs()))
        )?;
    }
    if dry_run || uploads.is_empty() {
        writeln!(
            out,
            "{} upload(s){}",
            uploads.len(),
            if dry_run { " would be aborted" } else { "" }
        )?;
        return Ok(true);
    }
    let failed = abort_all(client, &uploads).await;
    for (u, e) in &failed {
        writeln!(
            out,
            "FAIL: {} of {}: {e}",
            u.upload_id,
            u.key.escape_debug()
        )?;
    }
    writeln!(
        out,
        "{} upload(s) aborted, {} failed",
        uploads.len() - failed.len(),
        failed.len()
    )?;
    Ok(failed.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::ObjectAttrs;
    use crate::cos::memory::MemoryClient;

    #[tokio::test]
    async fn aborts_only_old_uploads_under_the_prefix() {
        let client = MemoryClient::new();
        let attrs = ObjectAttrs::default();
        client.create_multipart("p/a", &attrs).await.unwrap();
        client.create_multipart("p/b", &attrs).await.unwrap();
        client.create_multipart("other", &attrs).await.unwrap();
        let future = SystemTime::now() + Duration::from_secs(60);
        assert!(
            stale(&client, "p/", SystemTime::now() - Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "young uploads are kept"
        );
        let mut out = Vec::new();
        assert!(run(&client, "p/", future, true, &mut out).await.unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("2 upload(s) would be aborted\n"), "{text}");
        assert_eq!(client.pending_uploads(), 3, "a dry run aborts nothing");
        let mut out = Vec::new();
        assert!(run(&client, "p/", future, false, &mut out).await.unwrap());
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("2 upload(s) aborted, 0 failed\n")
        );
        assert_eq!(
            client.pending_uploads(),
            1,
            "the one outside the prefix stays"
        );
    }
}
