//! The monitoring part of a mount's configuration: the metrics endpoint
//! and the audit log.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::MountArgs;

/// Where the mount reports what it does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Monitoring {
    /// Address of the `/metrics` and `/status` endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// The audit log's file (absolute).
    pub audit_log: Option<PathBuf>,
    /// Audit opens for reading too.
    pub audit_reads: bool,
}

/// Reads the monitoring options: a non-loopback metrics address only with
/// `--metrics-allow-remote`.
pub fn monitoring(args: &MountArgs) -> Result<Monitoring, String> {
    if let Some(addr) = args.metrics_listen {
        if !addr.ip().is_loopback() && !args.metrics_allow_remote {
            return Err(format!(
                "--metrics-listen {addr} is reachable from other hosts; use a loopback address such as 127.0.0.1:{}, or add --metrics-allow-remote",
                addr.port()
            ));
        }
    }
    let audit_log = match &args.audit_log {
        Some(path) => Some(
            std::path::absolute(path)
                .map_err(|e| format!("cannot use --audit-log {}: {e}", path.display()))?,
        ),
        None => None,
    };
    Ok(Monitoring {
        metrics_listen: args.metrics_listen,
        audit_log,
        audit_reads: args.audit_reads,
    })
}
