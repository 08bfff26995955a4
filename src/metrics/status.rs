//! The status document: what the mount is doing now, in plain words.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::MountView;
use crate::creds::clock::format_time;

/// The status of `view` as JSON.
pub fn status(view: &MountView) -> Value {
    let g = view.fs.gauges();
    let creds = view.client.credentials();
    let current = creds.snapshot();
    let (refreshed, failed, last_refresh_error) = creds.refreshes();
    let stats = view.client.stats();
    let errors: Vec<Value> = view
        .observers
        .recent_errors()
        .into_iter()
        .map(|e| json!({"time": format_time(e.time), "error": e.message}))
        .collect();
    json!({
        "bucket": view.bucket,
        "endpoint": view.client.endpoint().host,
        "credentials": {
            "kind": match &current {
                None => "anonymous",
                Some(c) if c.session_token.is_some() => "temporary",
                Some(_) => "permanent",
            },
            "source": creds.source(),
            "secret_id": current.as_ref().map(|c| c.short_id()),
            "expires": current.as_ref().and_then(|c| c.expires_at).map(format_time),
            "expires_in_seconds": current.as_ref().and_then(|c| c.expires_at).map(|t| {
                t.duration_since(SystemTime::now()).map_or(0, |d| d.as_secs())
            }),
            "refreshes": refreshed,
            "refresh_failures": failed,
            "last_refresh_error": last_refresh_error,
        },
        "files": {
            "inodes": g.inodes,
            "open_files": g.open_files,
            "open_dirs": g.open_dirs,
            "changing": g.files_changing,
        },
        "memory": {
            "budget_bytes": g.budget_bytes,
            "used_bytes": g.budget_used_bytes,
            "cached_bytes": g.cached_bytes,
        },
        "staging_bytes": g.staging_bytes,
        "cos": {
            "requests": stats.requests.load(std::sync::atomic::Ordering::Relaxed),
            "summary": stats.summary(),
        },
        "recent_errors": errors,
    })
}
