//! The audit log: one JSON line per changing operation on the mount (and,
//! with `--audit-reads`, per open for reading), saying who did what to which
//! path and how it ended.
//!
//! Recording must never slow down or fail a filesystem request, so
//! [`AuditLog::record`] only puts the event in a bounded queue; a dedicated
//! thread formats the lines, looks up process names and writes the file.
//! When the queue is full or the file cannot be written, lines are dropped
//! and counted ([`AuditLog::dropped`]), never waited for. Rotation is
//! logrotate's rename plus a SIGHUP that calls [`AuditLog::reopen`]
//! (`packaging/logrotate/cosmount`); a reopen is queued behind the lines
//! recorded before it, so none is lost or lands in the wrong file.
//!
//! A line, with the fields always in this order ("new_path", "comm" and
//! "bytes" appear only when known; "result" is "ok" or the errno's name):
//!
//! ```text
//! {"time":"2026-12-03T08:30:00.123Z","op":"rename","path":"/a.txt","new_path":"/b.txt","uid":1000,"gid":1000,"pid":4242,"comm":"mv","result":"ENOENT","duration_us":812}
//! ```
//!
//! An event holds only what the kernel told us about a request (paths,
//! ids, result, sizes, times); keep credentials and object-store details
//! out of it.

mod comm;
mod line;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use writer::{Counters, Msg, Writer};

/// How many events may wait for the writer thread before new ones are
/// dropped: a few seconds of the busiest metadata traffic, about 1 MiB.
const QUEUE_EVENTS: usize = 8192;

/// What the audit line says the operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOp {
    /// A regular file created by `create`.
    Create,
    /// A node created by `mknod`.
    Mknod,
    /// A directory created.
    Mkdir,
    /// A symbolic link created; its target is the event's `new_path`.
    Symlink,
    /// A hard link created; the new name is the event's `new_path`.
    Link,
    /// A file or link removed.
    Unlink,
    /// A directory removed.
    Rmdir,
    /// A rename; the new name is the event's `new_path`.
    Rename,
    /// Attributes changed (mode, owner, times), other than the size.
    Setattr,
    /// The size changed by `truncate`; the new size is the event's `bytes`.
    Truncate,
    /// An extended attribute set.
    Setxattr,
    /// An extended attribute removed.
    Removexattr,
    /// A file handle that wrote was closed; `bytes` is what it wrote.
    WriteClose,
    /// A file opened for reading (only with `--audit-reads`).
    OpenRead,
}

impl AuditOp {
    /// The name written in the line's "op" field.
    pub fn name(self) -> &'static str {
        match self {
            AuditOp::Create => "create",
            AuditOp::Mknod => "mknod",
            AuditOp::Mkdir => "mkdir",
            AuditOp::Symlink => "symlink",
            AuditOp::Link => "link",
            AuditOp::Unlink => "unlink",
            AuditOp::Rmdir => "rmdir",
            AuditOp::Rename => "rename",
            AuditOp::Setattr => "setattr",
            AuditOp::Truncate => "truncate",
            AuditOp::Setxattr => "setxattr",
            AuditOp::Removexattr => "removexattr",
            AuditOp::WriteClose => "write-close",
            AuditOp::OpenRead => "open-read",
        }
    }
}

/// One audited request, as the FUSE layer answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// What was done.
    pub op: AuditOp,
    /// The path inside the mount, starting with '/'.
    pub path: String,
    /// Rename's and link's new name, symlink's target.
    pub new_path: Option<String>,
    /// The caller's user id, as the kernel reported it.
    pub uid: u32,
    /// The caller's group id.
    pub gid: u32,
    /// The caller's process id; its name is looked up on the writer thread.
    pub pid: u32,
    /// `Ok`, or the errno the request was answered with: written by name
    /// ("ENOENT"), or as "errno N" for a number without one.
    pub result: Result<(), i32>,
    /// write-close: bytes written through the handle; truncate: the new size.
    pub bytes: Option<u64>,
    /// When the request arrived.
    pub started: SystemTime,
    /// How long answering it took.
    pub duration: Duration,
}

/// An open audit log and its writer thread. Dropping it writes out what is
/// queued, syncs, and joins the thread.
pub struct AuditLog {
    reads: bool,
    /// None only while dropping, so that the thread sees the queue close.
    queue: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl AuditLog {
    /// Opens `path` for appending (creating it with mode 0600) and starts
    /// the writer thread; `reads` is whether opens for reading are audited.
    /// The path is made absolute so that reopening finds the same file
    /// whatever the working directory is then. Call it after daemonizing:
    /// the thread would not survive a fork. The error names the path and
    /// what to do about it.
    pub fn open(path: &Path, reads: bool) -> Result<Arc<AuditLog>, String> {
        let path = std::path::absolute(path).map_err(|e| open_error(path, &e))?;
        let file = writer::open_file(&path).map_err(|e| open_error(&path, &e))?;
        let counters = Arc::new(Counters::default());
        let writer = Writer::new(path, file, Arc::clone(&counters));
        let (queue, receiver) = mpsc::sync_channel(QUEUE_EVENTS);
        let thread = thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| format!("cannot start the audit log writer thread: {e}"))?;
        Ok(Arc::new(AuditLog {
            reads,
            queue: Some(queue),
            thread: Some(thread),
            counters,
        }))
    }

    /// Whether opens for reading are audited (`--audit-reads`).
    pub fn audits_reads(&self) -> bool {
        self.reads
    }

    /// Queues one line. Never blocks and never fails: when the queue is
    /// full (or the writer is gone) the line is dropped and counted.
    pub fn record(&self, event: AuditEvent) {
        let queued = self
            .queue
            .as_ref()
            .is_some_and(|queue| queue.try_send(Msg::Line(event)).is_ok());
        if !queued {
            self.counters.drop_one();
        }
    }

    /// Reopens the file by its path, for SIGHUP after logrotate renamed it.
    /// Lines recorded before the call go to the old file, later ones to the
    /// new; none is lost. Waits only for room in the queue, not for the
    /// reopen itself.
    pub fn reopen(&self) {
        if let Some(queue) = &self.queue {
            // A send fails only when the writer thread is gone; nothing to reopen then.
            let _ = queue.send(Msg::Reopen);
        }
    }

    /// Lines written to the file so far.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Lines dropped so far: queue full, or the file could not be written.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Writes out everything recorded before the call and waits until it
    /// is on disk (at unmount, and in tests).
    pub fn flush(&self) {
        let Some(queue) = &self.queue else { return };
        let (done, wait) = mpsc::channel();
        if queue.send(Msg::Flush(done)).is_ok() {
            // An error means the writer thread is gone: nothing left to wait for.
            let _ = wait.recv();
        }
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("reads", &self.reads)
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the queue makes the thread write what is left and return.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::warn!("the audit log writer thread panicked; its last lines may be lost");
            }
        }
    }
}

/// The message for a log file that cannot be opened: the path, the reason
/// and what to do.
fn open_error(path: &Path, error: &io::Error) -> String {
    let hint = match error.kind() {
        io::ErrorKind::NotFound => "create its directory first",
        io::ErrorKind::PermissionDenied => {
            "make it (or its directory) writable by this user, or choose another path"
        }
        io::ErrorKind::IsADirectory => "name a file, not a directory",
        io::ErrorKind::ReadOnlyFilesystem => "choose a path on a writable filesystem",
        _ => "choose another path",
    };
    format!(
        "cannot open the audit log {}: {error}; {hint}",
        path.display()
    )
}
