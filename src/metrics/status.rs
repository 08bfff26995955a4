//! The status document: what the mount is doing now, in plain words.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::MountView;
use crate::creds::clock::format_time;

/// The client operations that move data up, and those that read.
const UPLOADS: [&str; 4] = [
    "put",
    "upload_part",
    "upload_part_copy",
    "complete_multipart",
];
const READS: [&str; 3] = ["get", "head", "list"];

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
        "disk_cache": view.fs.disk_cache().map(|d| json!({
            "dir": d.dir().display().to_string(),
            "bytes": d.bytes(),
            "limit_bytes": d.max_bytes(),
            "hits": d.stats().hits.get(),
            "misses": d.stats().misses.get(),
            "corrupt": d.stats().corrupt.get(),
        })),
        "staging_bytes": g.staging_bytes,
        "cos": {
            "uploads_in_flight": stats.in_flight_of(&UPLOADS),
            "reads_in_flight": stats.in_flight_of(&READS),
            "requests": stats.requests.load(std::sync::atomic::Ordering::Relaxed),
            "summary": stats.summary(),
        },
        "recent_errors": errors,
    })
}

/// The status document in plain words, one fact per line, for
/// `cosmount status`.
pub fn describe(status: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let mib = |v: &Value| format!("{:.1} MiB", v.as_f64().unwrap_or(0.0) / 1048576.0);
    let creds = &status["credentials"];
    let files = &status["files"];
    let memory = &status["memory"];
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<13} {value}\n"));
    line("bucket:", text(&status["bucket"]));
    line("endpoint:", text(&status["endpoint"]));
    let mut who = text(&creds["kind"]);
    if !creds["source"].is_null() {
        who.push_str(&format!(" from {}", text(&creds["source"])));
    }
    if !creds["secret_id"].is_null() {
        who.push_str(&format!(" (SecretId {})", text(&creds["secret_id"])));
    }
    line("credentials:", who);
    if !creds["expires"].is_null() {
        line(
            "expires:",
            format!(
                "{} (in {} s); refreshed {} times, {} failed",
                text(&creds["expires"]),
                text(&creds["expires_in_seconds"]),
                text(&creds["refreshes"]),
                text(&creds["refresh_failures"]),
            ),
        );
    }
    if !creds["last_refresh_error"].is_null() {
        line("last refresh:", text(&creds["last_refresh_error"]));
    }
    line(
        "files:",
        format!(
            "{} open, {} directories open, {} being written or uploaded, {} inodes known",
            text(&files["open_files"]),
            text(&files["open_dirs"]),
            text(&files["changing"]),
            text(&files["inodes"]),
        ),
    );
    line(
        "memory:",
        format!(
            "{} of {} in use ({} cached blocks)",
            mib(&memory["used_bytes"]),
            mib(&memory["budget_bytes"]),
            mib(&memory["cached_bytes"]),
        ),
    );
    let disk = &status["disk_cache"];
    if !disk.is_null() {
        line(
            "disk cache:",
            format!(
                "{} of {} in {} ({} hits, {} misses, {} damaged blocks refetched)",
                mib(&disk["bytes"]),
                mib(&disk["limit_bytes"]),
                text(&disk["dir"]),
                text(&disk["hits"]),
                text(&disk["misses"]),
                text(&disk["corrupt"]),
            ),
        );
    }
    line("staging:", mib(&status["staging_bytes"]));
    let cos = &status["cos"];
    line(
        "in flight:",
        format!(
            "{} uploads (PUT, parts, completes), {} reads (GET, HEAD, List)",
            text(&cos["uploads_in_flight"]),
            text(&cos["reads_in_flight"]),
        ),
    );
    line("COS:", text(&cos["summary"]));
    match status["recent_errors"].as_array() {
        Some(errors) if !errors.is_empty() => {
            out.push_str("recent errors:\n");
            for e in errors {
                out.push_str(&format!("  {}  {}\n", text(&e["time"]), text(&e["error"])));
            }
        }
        _ => out.push_str("recent errors: none\n"),
    }
    out
}
