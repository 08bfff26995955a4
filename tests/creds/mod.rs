//! Credentials, endpoints and `cosmount check` end to end: the real binary
//! against `cosmount serve` with its STS/metadata emulation (`--sts-ttl`).

mod check;
mod endpoints;
mod leaks;
mod passwd;
mod rotation;
mod sts;

use crate::common::{ServerOptions, TestServer};

/// `http://127.0.0.1:PORT/latest/meta-data/cam/security-credentials` of a
/// server started with `--sts-ttl`.
pub fn metadata_url(server: &TestServer) -> String {
    format!(
        "{}/latest/meta-data/cam/security-credentials",
        server.sts_url()
    )
}

/// A server emulating STS with keys living `ttl` seconds, logging each
/// issued key (info) besides warnings.
pub fn sts_server(ttl: u64) -> TestServer {
    TestServer::with(ServerOptions {
        sts_ttl: Some(ttl),
        log_filter: Some("warn,cosmount::server::sts=info".into()),
        ..ServerOptions::default()
    })
}

/// Lines of `log` saying a key was issued to `caller` (e.g. `cam_role NAME`).
pub fn issued_to(log: &str, caller: &str) -> usize {
    let wanted = format!(" to {caller}");
    log.lines()
        .filter(|l| l.contains("sts: issued temporary key") && l.contains(&wanted))
        .count()
}

/// Waits (polling, up to 10 s) until the server's log shows `n` keys issued
/// to `caller`: its stderr arrives through a pipe, after the answer.
pub fn wait_for_issued(server: &TestServer, caller: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while issued_to(&server.log_text(), caller) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} key(s) for {caller} never logged:\n{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
