//! The command line of a one-process SeaweedFS (master, volume server,
//! filer and S3 gateway) on loopback, anonymous or signed with one key
//! pair, shared by the tests' `Seaweed` and `scripts/bench --server
//! seaweedfs` (which includes this file by path).

use std::path::Path;
use std::process::Command;

/// The access key of a signed SeaweedFS ([`require_signatures`]).
pub const S3_KEY_ID: &str = "AKIAcosmountTEST0000";

/// The secret key of a signed SeaweedFS ([`require_signatures`]).
pub const S3_SECRET: &str = "cosmount-s3-test-secret-0000";

/// Ports `weed server` listens on; [`S3_PORT`] indexes the S3 gateway's.
pub const WEED_PORTS: usize = 10;

/// Index of the S3 gateway's port in the ports given to [`weed_server`].
pub const S3_PORT: usize = 6;

/// `weed server -s3` over `dir`, listening on `ports` (at least
/// [`WEED_PORTS`] free loopback ports), without telemetry.
pub fn weed_server(weed: &Path, dir: &Path, ports: &[u16]) -> Command {
    let p = ports;
    let mut cmd = Command::new(weed);
    cmd.arg("server")
        .arg(format!("-dir={}", dir.display()))
        .args([
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-s3",
        ])
        .arg(format!("-master.port={}", p[0]))
        .arg(format!("-master.port.grpc={}", p[1]))
        .arg(format!("-volume.port={}", p[2]))
        .arg(format!("-volume.port.grpc={}", p[3]))
        .arg(format!("-filer.port={}", p[4]))
        .arg(format!("-filer.port.grpc={}", p[5]))
        .arg(format!("-s3.port={}", p[S3_PORT]))
        .arg(format!("-s3.port.grpc={}", p[7]))
        .arg(format!("-s3.port.iceberg={}", p[8]))
        .arg(format!("-s3.port.lance={}", p[9]));
    cmd
}

/// Turns S3 authentication on for `cmd` (a [`weed_server`]): writes an
/// identities file at `config` with one identity, [`S3_KEY_ID`] /
/// [`S3_SECRET`], allowed everything, and points the gateway at it. Only
/// requests signed with that pair are served then.
pub fn require_signatures(cmd: &mut Command, config: &Path) -> std::io::Result<()> {
    let identities = serde_json::json!({"identities": [{
        "name": "cosmount-test",
        "credentials": [{"accessKey": S3_KEY_ID, "secretKey": S3_SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]});
    std::fs::write(config, identities.to_string())?;
    cmd.arg(format!("-s3.config={}", config.display()));
    Ok(())
}
