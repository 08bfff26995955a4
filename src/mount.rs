//! Mounting: mountpoint checks (including stale mounts left by a dead
//! daemon), daemonizing with success or failure reported to the parent
//! through a pipe, readiness notified to systemd (`Type=notify`), the fuser
//! session with several threads, the read-ahead setting of the mount's bdi,
//! clean unmount on SIGTERM/SIGINT, debug logging toggled by SIGUSR2 and
//! the audit log reopened on SIGHUP.
//! Signal handlers are installed before readiness is reported, so a signal
//! sent as soon as `mount` returns is never fatal.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::{Config, MountOption, Session, SessionACL};
use log::{debug, info, warn};
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::cos::ObjectClient;
use crate::fs::Fs;
use crate::fuse::{DirectIo, FuseAdapter, Observers};

/// Threads reading FUSE requests unless `--fuse-threads` says otherwise.
pub const DEFAULT_FUSE_THREADS: usize = 4;

/// Kernel-facing mount settings.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// Source name shown in `mount` output (the bucket).
    pub source: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Let other users in.
    pub allow_other: bool,
    /// Let root in.
    pub allow_root: bool,
    /// Let the kernel check permissions against mode/uid/gid.
    pub default_permissions: bool,
    /// Threads reading FUSE requests.
    pub fuse_threads: usize,
    /// Kernel read-ahead of the mount, in KiB.
    pub read_ahead_kb: u32,
    /// When files are opened with FOPEN_DIRECT_IO (no kernel page cache).
    pub direct_io: DirectIo,
}

/// Canonicalizes the mountpoint and checks it can be mounted on: it exists,
/// is a directory and is not mounted already. A stale FUSE mount of a dead
/// daemon ("Transport endpoint is not connected") is lazily unmounted first.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf, String> {
    if let Err(e) = std::fs::metadata(path) {
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            info!(
                "{} is a stale mount of a dead filesystem; unmounting it first",
                path.display()
            );
            lazy_unmount(path)?;
        } else if e.kind() == io::ErrorKind::NotFound {
            return Err(format!(
                "mountpoint {} does not exist; create it with `mkdir -p {}`",
                path.display(),
                path.display()
            ));
        } else {
            return Err(format!("cannot use mountpoint {}: {e}", path.display()));
        }
    }
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("cannot use mountpoint {}: {e}", path.display()))?;
    if !canonical.is_dir() {
        return Err(format!("mountpoint {} is not a directory", path.display()));
    }
    if mount_device(&canonical).is_some() {
        return Err(format!(
            "mountpoint {} is already mounted; unmount it first with `umount {}`",
            canonical.display(),
            canonical.display()
        ));
    }
    Ok(canonical)
}

/// Detaches the mount on `path` from the namespace (it goes once unused):
/// `umount2(MNT_DETACH)`, else `fusermount3 -uz`. Used for a stale mount
/// at start-up and a busy one at SIGTERM.
fn lazy_unmount(path: &Path) -> Result<(), String> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("mountpoint {} contains a NUL byte", path.display()))?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        return Ok(());
    }
    let status = std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(path)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!(
            "could not detach the mount on {}; run `fusermount3 -uz {}`",
            path.display(),
            path.display()
        )),
    }
}

/// The `major:minor` of the filesystem mounted exactly at `path`, from
/// `/proc/self/mountinfo` (no request to the mount itself).
pub fn mount_device(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let wanted = path.to_str()?;
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.len() > 4 && unescape_mountinfo(fields[4]) == wanted).then(|| fields[2].to_string())
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parent side of daemonizing: the child reports readiness through it.
pub struct Readiness {
    pipe: Option<File>,
}

impl Readiness {
    /// Foreground mode: nothing to report to.
    pub fn foreground() -> Readiness {
        Readiness { pipe: None }
    }

    /// The mount is live: systemd hears `READY=1` (when it asked), the
    /// parent exits 0 and the daemon detaches from the terminal.
    pub fn ready(&mut self) {
        notify_systemd("READY=1");
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"ok\n");
            detach_stdio();
        }
    }

    /// Mounting failed: the parent prints `message` and exits 1.
    pub fn fail(&mut self, message: &str) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(message.as_bytes());
        }
    }

    /// Whether a parent is waiting.
    pub fn is_daemon(&self) -> bool {
        self.pipe.is_some()
    }
}

/// Sends `state` (e.g. `READY=1`) to systemd's `$NOTIFY_SOCKET` when it is
/// set, as sd_notify(3) does: one datagram to a path or, with a leading
/// `@`, an abstract socket. Failures are logged and otherwise ignored.
pub fn notify_systemd(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    match send_notification(target.as_encoded_bytes(), state) {
        Ok(()) => debug!("told systemd {state}"),
        Err(e) => warn!("cannot notify systemd at {}: {e}", target.to_string_lossy()),
    }
}

fn send_notification(target: &[u8], state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::SocketAddr;
    let addr = match target.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(target))?,
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// Forks; the parent waits for the child's verdict and exits with it, the
/// child (new session leader) returns its [`Readiness`]. Must be called
/// before any thread is started.
pub fn daemonize() -> io::Result<Readiness> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe(2) to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned here only.
    let (read_end, write_end) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: the process is single-threaded here (documented precondition),
    // so the child may continue running arbitrary Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // SAFETY: setsid has no memory-safety preconditions.
            unsafe { libc::setsid() };
            Ok(Readiness {
                pipe: Some(write_end),
            })
        }
        _ => {
            drop(write_end);
            std::process::exit(wait_for_child(read_end));
        }
    }
}

fn wait_for_child(mut pipe: File) -> i32 {
    let mut verdict = String::new();
    let _ = pipe.read_to_string(&mut verdict);
    if verdict == "ok\n" {
        return 0;
    }
    if verdict.is_empty() {
        verdict =
            "the cosmount daemon exited before the mount was ready (run with -f to see why)".into();
    }
    eprintln!("cosmount: {}", verdict.trim_end());
    1
}

/// Points stdin/stdout at /dev/null, and stderr too unless it is a file
/// (a `--log-file`), so a daemon never writes to a closed terminal.
fn detach_stdio() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let stderr_is_file = std::fs::metadata("/proc/self/fd/2")
        .map(|m| m.is_file())
        .unwrap_or(false);
    for fd in [0, 1, 2] {
        if fd == 2 && stderr_is_file {
            continue;
        }
        // SAFETY: both descriptors are open; dup2 atomically replaces `fd`.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
}

/// Mounts `fs` and serves it until it is unmounted (by `umount`, or by
/// SIGTERM/SIGINT), each request counted (and audited) by `observers`.
/// `on_ready` runs once the mount is live.
pub fn serve<C: ObjectClient>(
    fs: Arc<Fs<C>>,
    runtime: &tokio::runtime::Runtime,
    opts: &MountOptions,
    observers: Arc<Observers>,
    on_ready: impl FnOnce(),
) -> io::Result<()> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(opts.source.clone()),
        // fuser's own mount(2) (as root) drops `Subtype`, so the type would
        // read plain `fuse`; as a kernel option the kernel names the type
        // `fuse.cosmount`, and fusermount3 (non-root) takes it as well.
        MountOption::CUSTOM("subtype=cosmount".into()),
        MountOption::NoAtime,
        if opts.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if opts.default_permissions {
        config.mount_options.push(MountOption::DefaultPermissions);
    }
    config.acl = match (opts.allow_other, opts.allow_root) {
        (true, _) => SessionACL::All,
        (false, true) => SessionACL::RootAndOwner,
        _ => SessionACL::Owner,
    };
    config.n_threads = Some(opts.fuse_threads.max(1));
    config.clone_fd = true;
    let tasks = TaskTracker::new();
    let adapter = FuseAdapter::new(
        fs.clone(),
        runtime.handle().clone(),
        tasks.clone(),
        opts.direct_io,
        observers.clone(),
    );
    let notifier = adapter.notifier_slot();
    // Before the mount appears: a SIGTERM right after it unmounts cleanly
    // instead of killing the daemon and leaving a dead mount.
    let stop = {
        let _entered = runtime.enter();
        spawn_debug_toggle();
        spawn_audit_reopen(observers.audit_log().cloned());
        stop_signals()
    };
    let mut session = Session::new(adapter, &opts.mountpoint, &config)?;
    let _ = notifier.set(session.notifier());
    set_read_ahead(&opts.mountpoint, opts.read_ahead_kb);
    info!("mounted {} on {}", opts.source, opts.mountpoint.display());
    let mut unmounter = session.unmount_callable();
    let mountpoint = opts.mountpoint.clone();
    runtime.spawn(async move {
        wait_for_stop_signal(stop).await;
        info!("stop signal received; unmounting");
        notify_systemd("STOPPING=1");
        if let Err(e) = unmounter.unmount() {
            // Busy (a process works in it): gone from the namespace now,
            // the daemon ends once the last user lets go.
            warn!("unmount failed ({e}); detaching the mount lazily");
            if let Err(e) = lazy_unmount(&mountpoint) {
                warn!("{e}");
            }
        }
    });
    on_ready();
    let result = session.run();
    info!(
        "unmounted {}; uploading what is still pending",
        opts.mountpoint.display()
    );
    tasks.close();
    runtime.block_on(async {
        tasks.wait().await;
        fs.sync_all().await;
    });
    result
}

type StopSignals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

/// SIGTERM and SIGINT handlers; must run inside the runtime.
fn stop_signals() -> StopSignals {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => {
            warn!("cannot install signal handlers; stop with `umount`");
            None
        }
    }
}

async fn wait_for_stop_signal(signals: StopSignals) {
    let Some((mut term, mut int)) = signals else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// SIGHUP reopens the audit log (after logrotate moved it away); without
/// one it is ignored (logrotate signals every cosmount process, and
/// SIGHUP's default would end the mount).
fn spawn_audit_reopen(audit: Option<Arc<AuditLog>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot install the SIGHUP handler; the audit log is not reopened");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(audit) = audit.clone() else {
                debug!("SIGHUP ignored: no audit log to reopen");
                continue;
            };
            info!("SIGHUP: reopening the audit log");
            // Waits while the audit queue is full: not on a runtime thread.
            let _ = tokio::task::spawn_blocking(move || audit.reopen()).await;
        }
    });
}

/// SIGUSR2 toggles debug logging (see [`crate::logging::toggle_debug`]);
/// must run inside the runtime.
fn spawn_debug_toggle() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut usr2) = signal(SignalKind::user_defined2()) else {
        warn!("cannot install the SIGUSR2 handler; the log level is fixed");
        return;
    };
    tokio::spawn(async move {
        while usr2.recv().await.is_some() {
            let level = crate::logging::toggle_debug();
            info!("SIGUSR2: log level of cosmount is now {level}");
        }
    });
}

/// fuser cannot raise the kernel's read-ahead in `init`; write it to the
/// mount's bdi instead.
fn set_read_ahead(mountpoint: &Path, kb: u32) {
    let Some(device) = mount_device(mountpoint) else {
        debug!(
            "no mountinfo entry for {}; read-ahead left as is",
            mountpoint.display()
        );
        return;
    };
    let path = format!("/sys/class/bdi/{device}/read_ahead_kb");
    match std::fs::write(&path, kb.to_string()) {
        Ok(()) => debug!("set {path} to {kb}"),
        Err(e) => debug!("cannot set {path}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send_notification(path.as_os_str().as_encoded_bytes(), "READY=1").unwrap();
        let mut buf = [0; 32];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("cosmount-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send_notification(format!("@{name}").as_bytes(), "STOPPING=1").unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/x\\134y"), "/x\\y");
    }

    #[test]
    fn finds_the_root_mount_and_rejects_missing_mountpoints() {
        assert!(mount_device(Path::new("/")).is_some());
        let err = check_mountpoint(Path::new("/definitely/not/here")).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        assert!(
            check_mountpoint(Path::new("/"))
                .unwrap_err()
                .contains("already mounted")
        );
    }
}
