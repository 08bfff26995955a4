//! Logging fit for a service, with the binary under test: a daemon logs to
//! syslog, SIGUSR2 toggles debug logging at runtime, and in the foreground
//! under systemd stderr carries journald priority prefixes.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::mount::{daemons_for, is_mounted, server_args, wait_for};
use crate::common::{BUCKET, TestServer};

/// A datagram socket standing in for `/dev/log` or `$NOTIFY_SOCKET`.
struct Listener(UnixDatagram);

impl Listener {
    fn bind(path: &Path) -> Listener {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Listener(socket)
    }

    /// The next message; fails the test after 20 s of silence.
    fn next(&self) -> String {
        let mut buf = vec![0; 65536];
        match self.0.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) if e.kind() == ErrorKind::WouldBlock => panic!("no message in 20 s"),
            Err(e) => panic!("recv: {e}"),
        }
    }

    /// Messages up to and including the first containing `needle`.
    fn until(&self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let message = self.next();
            let done = message.contains(needle);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        if is_mounted(self.0) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
}

fn sigusr2(pid: u32) {
    // SAFETY: kill(2) with a valid signal number; `pid` is our daemon.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR2) };
}

#[test]
fn daemon_logs_to_syslog_and_sigusr2_toggles_debug() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let syslog_path = dir.path().join("log");
    let syslog = Listener::bind(&syslog_path);
    let out = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(server_args(&server))
        .arg(BUCKET)
        .arg(&mnt)
        .env("COSMOUNT_SYSLOG_SOCKET", &syslog_path)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _unmount = Unmount(&mnt);

    // `<30>` is facility daemon, severity info; the pid is the daemon's.
    let mounted = syslog.until("mounted ").pop().unwrap();
    let prefix = mounted.split(": ").next().unwrap().to_string();
    let pid: u32 = prefix
        .strip_prefix("<30>cosmount[")
        .and_then(|p| p.strip_suffix(']'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a syslog line: {mounted:?}"));
    assert_eq!(
        mounted,
        format!("{prefix}: mounted {BUCKET} on {}", mnt.display())
    );

    // At info, a failed lookup is not logged; after SIGUSR2 it is, at debug
    // (`<31>`); after a second SIGUSR2 it is not again. The level messages
    // are info, so everything between them arrived in order.
    let _ = std::fs::metadata(mnt.join("quiet-before"));
    sigusr2(pid);
    let before = syslog.until("is now DEBUG");
    assert!(
        !before.iter().any(|m| m.contains("quiet-before")),
        "{before:?}"
    );
    let _ = std::fs::metadata(mnt.join("loud-during"));
    sigusr2(pid);
    let during = syslog.until("is now INFO");
    assert!(
        during
            .iter()
            .any(|m| m.starts_with("<31>cosmount[") && m.contains("loud-during")),
        "no debug message about the lookup: {during:?}"
    );
    let _ = std::fs::metadata(mnt.join("quiet-after"));
    sigusr2(pid);
    let after = syslog.until("is now DEBUG");
    assert!(
        !after.iter().any(|m| m.contains("quiet-after")),
        "{after:?}"
    );

    assert!(Command::new("umount").arg(&mnt).status().unwrap().success());
    let needle = mnt.display().to_string();
    wait_for("the daemon to exit", || daemons_for(&needle).is_empty());
    let last = syslog.until("unmounted");
    assert!(last.last().unwrap().starts_with("<30>"), "{last:?}");
}

#[test]
fn foreground_stderr_to_the_journal_carries_priorities() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // systemd hands a service a stream whose device:inode is JOURNAL_STREAM.
    let log_path = dir.path().join("journal");
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = log.metadata().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(server_args(&server))
        .args(["-f", BUCKET])
        .arg(&mnt)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _unmount = Unmount(&mnt);
    wait_for("the mount", || is_mounted(&mnt));
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains(&format!("<6>mounted {BUCKET} on {}\n", mnt.display())),
        "{text}"
    );
    assert!(
        text.contains("<6>stop signal received; unmounting\n"),
        "{text}"
    );
}
