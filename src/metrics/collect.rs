//! The mount's metrics in the Prometheus text format: the layers'
//! prometheus-client families registered as they are, and a collector for
//! what is read at scrape time (gauges, and counters kept as atomics).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::MountView;
use crate::cos::client::RetryCause;

/// Encodes every metric of `view`.
pub fn encode(view: &Arc<MountView>) -> String {
    let mut registry = Registry::with_prefix("cosmount");
    let obs = &view.observers;
    registry.register(
        "fuse_request_duration_seconds",
        "Kernel requests by operation and result (ok or errno name), with latency",
        obs.ops.clone(),
    );
    registry.register(
        "read_bytes",
        "Bytes the applications read",
        obs.read_bytes.clone(),
    );
    registry.register(
        "written_bytes",
        "Bytes the applications wrote",
        obs.written_bytes.clone(),
    );
    let stats = view.client.stats();
    registry.register(
        "cos_request_duration_seconds",
        "COS request attempts by operation and HTTP status (stalled, none: no answer), with latency",
        stats.attempts.clone(),
    );
    registry.register(
        "cos_operations_in_flight",
        "COS operations in progress (retries included) by operation; uploads are put, upload_part and complete_multipart",
        stats.in_flight.clone(),
    );
    registry.register(
        "cos_sent_bytes",
        "Request body bytes of answered COS attempts",
        stats.bytes_sent.clone(),
    );
    registry.register(
        "cos_received_bytes",
        "Answer body bytes received from COS",
        stats.bytes_received.clone(),
    );
    let cache = view.fs.cache_stats();
    registry.register(
        "cache_hits",
        "Blocks found in the memory cache (or being fetched)",
        cache.hits.clone(),
    );
    registry.register(
        "cache_misses",
        "Blocks fetched, and random reads sent past the memory cache",
        cache.misses.clone(),
    );
    registry.register(
        "cache_evictions",
        "Blocks given back under memory pressure",
        cache.evictions.clone(),
    );
    if let Some(disk) = view.fs.disk_cache() {
        let d = disk.stats();
        registry.register(
            "disk_cache_hits",
            "Reads answered from the disk tier (--cache-dir)",
            d.hits.clone(),
        );
        registry.register(
            "disk_cache_misses",
            "Blocks fetched from the bucket because they were not on disk",
            d.misses.clone(),
        );
        registry.register(
            "disk_cache_corrupt",
            "Cached blocks that failed their checksum (removed and fetched again)",
            d.corrupt.clone(),
        );
        registry.register(
            "disk_cache_write_errors",
            "Blocks that could not be written to the disk tier",
            d.write_errors.clone(),
        );
    }
    registry.register_collector(Box::new(ScrapeTime(view.clone())));
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

/// What is read at each scrape.
struct ScrapeTime(Arc<MountView>);

impl std::fmt::Debug for ScrapeTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeTime")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ScrapeTime {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let view = &self.0;
        let stats = view.client.stats();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let mut retries = encoder.encode_descriptor(
            "cos_retries",
            "COS attempts retried, by the cause of the failure before them",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for cause in RetryCause::ALL {
            let labels = [("cause", cause.name())];
            ConstCounter::new(stats.retries_for(cause)).encode(retries.encode_family(&labels)?)?;
        }
        let e = &mut encoder;
        counter(
            e,
            "cos_stalls",
            "COS attempts abandoned for lack of progress",
            load(&stats.stalls),
        )?;
        counter(
            e,
            "cos_hedges",
            "Duplicate COS requests sent for a slow answer",
            load(&stats.hedges),
        )?;
        counter(
            e,
            "cos_hedges_won",
            "Hedges that answered first",
            load(&stats.hedges_won),
        )?;
        counter(
            e,
            "cos_failed_operations",
            "COS operations that failed after their last attempt",
            load(&stats.failed),
        )?;
        let g = view.fs.gauges();
        gauge(e, "inodes", "Inodes the kernel holds", g.inodes as i64)?;
        gauge(e, "open_files", "Open file handles", g.open_files as i64)?;
        gauge(e, "open_dirs", "Open directory handles", g.open_dirs as i64)?;
        gauge(
            e,
            "files_changing",
            "Files with changes not yet uploaded, or being uploaded",
            g.files_changing as i64,
        )?;
        gauge(
            e,
            "memory_budget_bytes",
            "The memory budget (--cache-size)",
            g.budget_bytes as i64,
        )?;
        gauge(
            e,
            "memory_used_bytes",
            "Memory budget in use by cached blocks, write buffers and idle buffers kept for reuse",
            g.budget_used_bytes as i64,
        )?;
        gauge(
            e,
            "cache_bytes",
            "Bytes of cached read blocks",
            g.cached_bytes as i64,
        )?;
        gauge(
            e,
            "staging_bytes",
            "Bytes in the staging folder",
            g.staging_bytes as i64,
        )?;
        gauge(
            e,
            "listing_head_window",
            "HEADs an exact listing may have in flight now, learned from how fast they finish",
            g.head_window as i64,
        )?;
        if let Some(disk) = view.fs.disk_cache() {
            gauge(
                e,
                "disk_cache_bytes",
                "Bytes of block files in the disk tier",
                disk.bytes() as i64,
            )?;
            gauge(
                e,
                "disk_cache_limit_bytes",
                "The disk tier's bound (--disk-cache-size, lowered when the disk filled)",
                disk.max_bytes() as i64,
            )?;
        }
        let creds = view.client.credentials();
        if let Some(expires) = creds.snapshot().and_then(|c| c.expires_at) {
            let left = expires
                .duration_since(SystemTime::now())
                .map_or(0, |d| d.as_secs() as i64);
            gauge(
                e,
                "credentials_expiry_seconds",
                "Seconds until the current temporary credentials expire",
                left,
            )?;
        }
        let (refreshed, failed, _) = creds.refreshes();
        let mut refreshes = e.encode_descriptor(
            "credential_refreshes",
            "Credential refresh attempts by result",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        ConstCounter::new(refreshed).encode(refreshes.encode_family(&[("result", "ok")])?)?;
        ConstCounter::new(failed).encode(refreshes.encode_family(&[("result", "failed")])?)?;
        if let Some(audit) = view.observers.audit_log() {
            counter(e, "audit_lines", "Audit lines written", audit.written())?;
            counter(
                e,
                "audit_dropped_lines",
                "Audit lines dropped (queue full or file not writable)",
                audit.dropped(),
            )?;
        }
        Ok(())
    }
}
