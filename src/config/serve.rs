//! `cosmount serve`'s flags become a [`ServerConfig`]: the keys it accepts,
//! anonymous access, STS emulation and fault injection.

use std::net::SocketAddr;

use crate::cli::ServeArgs;
use crate::creds::Credentials;
use crate::server::{Access, FaultConfig, ServerConfig, StsEmulation};

/// Where STS and metadata emulation listen without `--sts-listen`.
const STS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The validated server configuration.
pub fn server_config(args: ServeArgs) -> Result<ServerConfig, String> {
    let faults = fault_config(&args)?;
    let keys = match (args.secret_id, args.secret_key) {
        (Some(id), Some(key)) => vec![Credentials::permanent(&id, &key)],
        (None, None) => Vec::new(),
        (Some(_), None) => return Err("--secret-id needs --secret-key".into()),
        (None, Some(_)) => return Err("--secret-key needs --secret-id".into()),
    };
    let access = match (args.public_read, args.public_read_write) {
        (_, true) => Access::PublicReadWrite,
        (true, false) => Access::PublicRead,
        (false, false) => Access::Private,
    };
    Ok(ServerConfig {
        root: args.root,
        listen: args.listen,
        admin_listen: args.admin_listen,
        buckets: args.buckets,
        keys,
        access,
        region: args.region,
        fsync: args.fsync,
        sts: args.sts_ttl.map(|secs| StsEmulation {
            listen: args.sts_listen.unwrap_or(STS_LISTEN),
            ttl: std::time::Duration::from_secs(secs),
        }),
        faults,
    })
}

fn fault_config(args: &ServeArgs) -> Result<FaultConfig, String> {
    let config = FaultConfig {
        rate: args.fault_rate.unwrap_or(0.0),
        seed: args.fault_seed.unwrap_or_else(rand::random),
        kinds: args.fault_kinds.0.clone(),
        delay: args.fault_delay.0,
        stall: args.fault_stall.0,
        skew: args.fault_skew.0,
        throttle_uploads: args.throttle_uploads.map(|s| s.0),
    };
    config.validate()?;
    Ok(config)
}
