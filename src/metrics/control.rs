//! The control socket: every mount answers `GET /status` (and `/metrics`)
//! over a Unix socket named after its mountpoint, under `/run/cosmount/`
//! as root (else `$XDG_RUNTIME_DIR/cosmount/`), so `cosmount status
//! MOUNTPOINT` works without `--metrics-listen`. The folder is 0700: only
//! the mount's owner (and root) may ask.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::debug;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use super::MountView;
use super::serve::serve_connection;

/// The listening socket; removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
    task: JoinHandle<()>,
}

/// The folder of control sockets for this user.
fn socket_dir() -> Option<PathBuf> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Some(PathBuf::from("/run/cosmount"));
    }
    std::env::var_os("XDG_RUNTIME_DIR").map(|dir| Path::new(&dir).join("cosmount"))
}

/// The socket of the mount at `mountpoint` (absolute), named the way
/// systemd names mount units (`/mnt/cos` → `mnt-cos.sock`).
pub fn socket_path(mountpoint: &Path) -> Option<PathBuf> {
    Some(socket_dir()?.join(format!("{}.sock", escape_path(mountpoint))))
}

/// systemd-escape --path: `/` between components becomes `-`; bytes other
/// than ASCII letters, digits, `_` and a non-leading `.` become `\xNN`.
fn escape_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return "-".to_string();
    }
    let mut out = String::new();
    for (i, byte) in trimmed.bytes().enumerate() {
        match byte {
            b'/' => out.push('-'),
            b'.' if i > 0 => out.push('.'),
            b if b.is_ascii_alphanumeric() || b == b'_' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

impl ControlSocket {
    /// Listens for `view`'s mount at `mountpoint`; `None` (logged at debug
    /// level) when no socket folder can be used.
    pub fn start(mountpoint: &Path, view: Arc<MountView>) -> Option<ControlSocket> {
        let path = socket_path(mountpoint)?;
        match Self::bind(&path) {
            Ok(listener) => {
                debug!("control socket at {}", path.display());
                let task = tokio::spawn(accept(listener, view));
                Some(ControlSocket { path, task })
            }
            Err(e) => {
                debug!(
                    "no control socket ({}: {e}); `cosmount status` cannot reach this mount",
                    path.display()
                );
                None
            }
        }
    }

    fn bind(path: &Path) -> std::io::Result<UnixListener> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        // Left by a daemon that died: the mountpoint check already
        // established that nothing is mounted there now.
        let _ = std::fs::remove_file(path);
        UnixListener::bind(path)
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept(listener: UnixListener, view: Arc<MountView>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, view.clone()));
            }
            Err(e) => {
                debug!("control socket cannot accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// How long `cosmount status` waits for a mount's answer.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks the mount at `mountpoint` for its status document.
pub fn ask_status(mountpoint: &Path) -> Result<serde_json::Value, String> {
    let mountpoint = absolute_without_entering(mountpoint)?;
    let path = socket_path(&mountpoint).ok_or_else(|| {
        "XDG_RUNTIME_DIR is not set, so there is no control socket to ask; run as the \
         mount's user in a login session, or as root"
            .to_string()
    })?;
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        format!(
            "no cosmount answers for {} ({}: {e}); is it mounted, by this user?",
            mountpoint.display(),
            path.display()
        )
    })?;
    let asked = stream
        .set_read_timeout(Some(ASK_TIMEOUT))
        .and_then(|()| stream.write_all(b"GET /status HTTP/1.0\r\nHost: cosmount\r\n\r\n"));
    let mut answer = Vec::new();
    asked
        .and_then(|()| stream.read_to_end(&mut answer))
        .map_err(|e| format!("the mount at {} did not answer: {e}", mountpoint.display()))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or("the mount's answer was cut short")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        let line = head.lines().next().unwrap_or_default();
        return Err(format!("the mount answered {line}"));
    }
    serde_json::from_str(body).map_err(|e| format!("the mount's status is not JSON: {e}"))
}

/// `path` made absolute with symlinks resolved up to its last component,
/// which is not entered: a hung mount must not hang `cosmount status`.
fn absolute_without_entering(path: &Path) -> Result<PathBuf, String> {
    let absolute =
        std::path::absolute(path).map_err(|e| format!("cannot use {}: {e}", path.display()))?;
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .map_err(|e| format!("cannot use {}: {e}", path.display())),
        _ => Ok(absolute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_systemd() {
        assert_eq!(escape_path(Path::new("/mnt/cos")), "mnt-cos");
        assert_eq!(escape_path(Path::new("/")), "-");
        assert_eq!(
            escape_path(Path::new("/data/my-bucket/.x")),
            "data-my\\x2dbucket-.x"
        );
        assert_eq!(escape_path(Path::new("/a b")), "a\\x20b");
    }
}
