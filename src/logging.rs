//! Where a mount's log goes and how loud it is, for a service: our crate's
//! level can be switched at runtime (SIGUSR2 toggles debug) without a
//! restart, and a daemon without a log file writes to syslog. The logger
//! that formats and writes records is built in `main.rs`; this module only
//! wraps it with the level switch and offers the syslog sink it writes to.
//!
//! Syslog is a datagram per record to `/dev/log` in the BSD format
//! (`<PRI>cosmount[PID]: message`, no timestamp: syslogd and journald stamp
//! records on receipt). That is what glibc's `syslog(3)` sends; doing it
//! here keeps the formatting with the other targets and lets tests point
//! `COSMOUNT_SYSLOG_SOCKET` at their own socket.

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

/// The syslog socket unless `COSMOUNT_SYSLOG_SOCKET` names another.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// The syslog facility of a mount daemon (`LOG_DAEMON`).
const FACILITY_DAEMON: u8 = 3 << 3;

/// Our crate's current level, as `LevelFilter as usize`.
static CURRENT: AtomicUsize = AtomicUsize::new(LevelFilter::Info as usize);
/// The level asked for on the command line; SIGUSR2 toggles back to it.
static CONFIGURED: OnceLock<LevelFilter> = OnceLock::new();

/// Wraps a logger so that records of this crate are filtered by a level
/// that can change at runtime; other crates' records are left to `inner`.
struct Switchable {
    inner: Box<dyn Log>,
}

fn is_ours(target: &str) -> bool {
    target == "cosmount" || target.starts_with("cosmount::")
}

fn current() -> LevelFilter {
    LevelFilter::iter()
        .nth(CURRENT.load(Ordering::Relaxed))
        .unwrap_or(LevelFilter::Info)
}

impl Log for Switchable {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (!is_ours(metadata.target()) || metadata.level() <= current())
            && self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs `inner` as the process logger with this crate at `level`.
/// `inner` must pass our records up to `max(level, Debug)` so that
/// [`toggle_debug`] can let them through; `inner_max` is its own maximum.
pub fn install(
    inner: Box<dyn Log>,
    inner_max: LevelFilter,
    level: LevelFilter,
) -> Result<(), String> {
    let _ = CONFIGURED.set(level);
    CURRENT.store(level as usize, Ordering::Relaxed);
    log::set_boxed_logger(Box::new(Switchable { inner })).map_err(|e| e.to_string())?;
    log::set_max_level(inner_max.max(level));
    Ok(())
}

/// Switches this crate's logging between debug and the configured level
/// (when that is below debug); returns the level now in force.
pub fn toggle_debug() -> LevelFilter {
    let configured = CONFIGURED.get().copied().unwrap_or(LevelFilter::Info);
    let next = if current() == configured && configured < LevelFilter::Debug {
        LevelFilter::Debug
    } else {
        configured
    };
    CURRENT.store(next as usize, Ordering::Relaxed);
    next
}

/// The `<PRI>` of a record at `level` from a daemon.
pub fn syslog_priority(level: log::Level) -> u8 {
    let severity = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    FACILITY_DAEMON | severity
}

/// The journald priority prefix (`<N>`, sd-daemon(3)) of a record at `level`.
pub fn journal_priority(level: log::Level) -> u8 {
    syslog_priority(level) & 7
}

/// Whether stderr is connected to the journal (systemd sets
/// `JOURNAL_STREAM=DEV:INODE` of the stream it hands a service).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(wanted) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2")
        .map(|m| format!("{}:{}", m.dev(), m.ino()) == wanted.to_string_lossy())
        .unwrap_or(false)
}

/// A `Write` that sends each write as one syslog datagram. The socket is
/// opened on first use (after daemonizing) and reopened once when a send
/// fails (syslogd restarted); records are dropped when no syslog listens,
/// and when its queue is full: a filesystem must not stall on its log.
pub struct SyslogWriter {
    path: PathBuf,
    socket: Option<UnixDatagram>,
}

impl SyslogWriter {
    /// A writer to `$COSMOUNT_SYSLOG_SOCKET`, else [`SYSLOG_SOCKET`].
    pub fn new() -> SyslogWriter {
        let path = std::env::var_os("COSMOUNT_SYSLOG_SOCKET")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSLOG_SOCKET));
        SyslogWriter { path, socket: None }
    }

    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.connect(&self.path)?;
            socket.set_nonblocking(true)?;
            self.socket = Some(socket);
        }
        let socket = self.socket.as_ref().expect("connected above");
        socket.send(datagram).map(drop)
    }
}

impl Default for SyslogWriter {
    fn default() -> Self {
        SyslogWriter::new()
    }
}

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let datagram = buf.strip_suffix(b"\n").unwrap_or(buf);
        match self.send(datagram) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                self.socket = None;
                let _ = self.send(datagram);
            }
            _ => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_use_the_daemon_facility() {
        assert_eq!(syslog_priority(log::Level::Error), 27);
        assert_eq!(syslog_priority(log::Level::Info), 30);
        assert_eq!(syslog_priority(log::Level::Trace), 31);
        assert_eq!(journal_priority(log::Level::Warn), 4);
    }

    #[test]
    fn targets_of_this_crate_are_ours() {
        assert!(is_ours("cosmount"));
        assert!(is_ours("cosmount::fs"));
        assert!(!is_ours("cosmountain"));
        assert!(!is_ours("hyper::proto"));
    }

    #[test]
    fn toggle_switches_between_debug_and_the_configured_level() {
        assert_eq!(current(), LevelFilter::Info);
        assert_eq!(toggle_debug(), LevelFilter::Debug);
        assert_eq!(current(), LevelFilter::Debug);
        assert_eq!(toggle_debug(), LevelFilter::Info);
        assert_eq!(current(), LevelFilter::Info);
    }

    #[test]
    fn syslog_writer_sends_one_datagram_per_write_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let listener = UnixDatagram::bind(&path).unwrap();
        let mut writer = SyslogWriter { path, socket: None };
        writer.write_all(b"<30>cosmount[1]: hello\n").unwrap();
        let mut buf = [0; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<30>cosmount[1]: hello");
        // Nobody reads: the queue fills and records are dropped, not waited on.
        for _ in 0..5000 {
            writer.write_all(b"<31>cosmount[1]: flood\n").unwrap();
        }
        drop(listener);
        writer.write_all(b"dropped, not an error\n").unwrap();
    }
}
