//! `cosmount serve`'s flags: the embedded COS-compatible server, its STS
//! emulation and its fault injection. Defaults are shown from
//! [`ServerConfig`]'s and [`FaultConfig`]'s own.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::value::{Checked, SIZE, SPAN};
use crate::server::{FaultConfig, FaultKind, ServerConfig};
use crate::units::{Size, Span};

/// `--fault-kinds 500,reset`: the kinds, in [`FaultKind::ALL`]'s order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultKinds(pub Vec<FaultKind>);

impl fmt::Display for FaultKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|k| k.name()).collect();
        f.write_str(&names.join(","))
    }
}

const FAULT_KINDS: Checked<FaultKinds> = Checked::new(|name, text| {
    FaultKind::parse_list(text)
        .map(FaultKinds)
        .map_err(|e| format!("{name}: {e}"))
});

/// `cosmount serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder that holds the buckets (created if its parent exists).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,

    /// Address to serve COS on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value_t = ServerConfig::default().listen)]
    pub listen: SocketAddr,

    /// Bucket to serve, as NAME-APPID; created if missing. Repeat for more.
    /// Without it, the buckets already in DIR are served.
    #[arg(long = "bucket", value_name = "NAME-APPID")]
    pub buckets: Vec<String>,

    /// SecretId accepted in request signatures.
    #[arg(long, value_name = "ID", env = "COSMOUNT_SERVE_SECRET_ID")]
    pub secret_id: Option<String>,

    /// SecretKey of --secret-id.
    #[arg(
        long,
        value_name = "KEY",
        env = "COSMOUNT_SERVE_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// Allow anonymous HEAD, GET and list.
    #[arg(long, conflicts_with = "public_read_write")]
    pub public_read: bool,

    /// Allow anonymous reads and writes.
    #[arg(long)]
    pub public_read_write: bool,

    /// Also serve the admin endpoint (request counters) on this address.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Region named in copy sources and error documents.
    #[arg(long, value_name = "REGION", default_value_t = ServerConfig::default().region)]
    pub region: String,

    /// fsync every object before answering (slower; survives power loss).
    #[arg(long)]
    pub fsync: bool,

    /// Emulate STS (AssumeRole, GetFederationToken) and the CVM metadata
    /// service (cam_role) on --sts-listen, issuing temporary keys that
    /// expire after SECS seconds (for tests).
    #[arg(long, value_name = "SECS", help_heading = "Temporary credentials")]
    pub sts_ttl: Option<u64>,

    /// Address of the STS and metadata emulation [default: 127.0.0.1:0].
    #[arg(
        long,
        value_name = "ADDR",
        requires = "sts_ttl",
        help_heading = "Temporary credentials"
    )]
    pub sts_listen: Option<SocketAddr>,

    /// Fraction of requests (0 to 1) that get a fault: an error answer, a
    /// dropped connection, a truncated body, added latency or a stall (for
    /// reliability tests). Off by default. Counters: `GET /faults` on
    /// --admin-listen, which also takes `POST /outage?secs=N`.
    #[arg(long, value_name = "P", help_heading = "Fault injection")]
    pub fault_rate: Option<f64>,

    /// Seed of the fault RNG [default: random, printed in the log].
    #[arg(long, value_name = "N", help_heading = "Fault injection")]
    pub fault_seed: Option<u64>,

    /// Faults to pick from: 500, 503, skew, reset, truncate, delay, stall,
    /// corrupt (whole-object GETs only), or all.
    #[arg(
        long,
        value_name = "LIST",
        value_parser = FAULT_KINDS,
        default_value_t = FaultKinds(FaultKind::DEFAULT.to_vec()),
        help_heading = "Fault injection"
    )]
    pub fault_kinds: FaultKinds,

    /// Longest latency a `delay` fault adds.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(FaultConfig::default().delay),
        help_heading = "Fault injection"
    )]
    pub fault_delay: Span,

    /// How long a `stall` sends nothing before closing the connection
    /// (make it longer than the client's --request-timeout).
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(FaultConfig::default().stall),
        help_heading = "Fault injection"
    )]
    pub fault_stall: Span,

    /// How far a `skew` fault's Date header is ahead of the time the
    /// request was signed at.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(FaultConfig::default().skew),
        help_heading = "Fault injection"
    )]
    pub fault_skew: Span,

    /// Read each connection no faster than RATE bytes per second (e.g.
    /// `64KiB`): uploads crawl as over a thin link.
    #[arg(
        long,
        value_name = "RATE",
        value_parser = SIZE,
        help_heading = "Fault injection"
    )]
    pub throttle_uploads: Option<Size>,
}
