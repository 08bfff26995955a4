//! What operators see of a running mount: Prometheus metrics at `/metrics`
//! and a plain JSON status at `/status`, served on `--metrics-listen` and
//! on the mount's control socket (`cosmount status`).
//! The layers count for themselves (the FUSE adapter's requests, the
//! client's attempts, the cache's hits); this module only gathers them.

mod collect;
mod control;
mod serve;
mod status;

use std::sync::Arc;

use crate::cos::client::HttpClient;
use crate::fs::Fs;
use crate::fuse::Observers;

pub use control::{ControlSocket, ask_status, socket_path};
pub use serve::MetricsServer;
pub use status::describe as describe_status;

/// Everything of one mount that metrics and status read.
pub struct MountView {
    /// The filesystem.
    pub fs: Arc<Fs<HttpClient>>,
    /// The COS client.
    pub client: Arc<HttpClient>,
    /// The kernel requests' counters and the audit log.
    pub observers: Arc<Observers>,
    /// The bucket, as given.
    pub bucket: String,
}

impl MountView {
    /// The Prometheus text format of every metric.
    pub fn metrics_text(self: &Arc<Self>) -> String {
        collect::encode(self)
    }

    /// The status document.
    pub fn status_json(&self) -> serde_json::Value {
        status::status(self)
    }
}
