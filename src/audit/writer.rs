//! The audit writer thread: the only owner of the file. Lines, reopens and
//! flushes arrive in one queue, so each takes effect in the order it was
//! asked for (a line recorded before a reopen lands in the old file).
//!
//! Lines are batched in memory: after the first line of a burst the thread
//! waits [`GATHER`] for the rest, then writes them together (sooner when a
//! batch grows large), so a busy mount costs one wakeup and one write per
//! interval rather than per line, and every line reaches the file within
//! milliseconds of being recorded. The counters say what happened to every line: `written` once
//! all of its bytes reached the file, `dropped` otherwise. A write that
//! stops mid-line leaves a torn line; the next write starts with a newline
//! so that the torn part stays alone on its line and the lines after it
//! parse. Failures never stop the thread: one warning, repeated at most
//! once per reopen, and the lines are counted as dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use super::AuditEvent;
use super::comm::CommCache;
use super::line::push_line;

/// A batch this large is written without waiting for the queue to empty.
const BATCH_BYTES: usize = 64 * 1024;
/// How long the thread lets a burst of lines gather before writing it.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// What the writer thread is asked to do, in order.
pub(super) enum Msg {
    /// Write this event's line.
    Line(AuditEvent),
    /// Open the path again (after logrotate renamed the file).
    Reopen,
    /// Write everything before this message, sync, then answer.
    Flush(Sender<()>),
}

/// What happened to the lines so far, shared with [`super::AuditLog`].
#[derive(Default)]
pub(super) struct Counters {
    /// Lines whose every byte reached the file.
    pub(super) written: AtomicU64,
    /// Lines lost: queue full, or the file could not be written.
    pub(super) dropped: AtomicU64,
}

impl Counters {
    /// Counts one line lost before it reached the writer thread.
    pub(super) fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Opens (creating it readable by its owner only) the audit file for appending.
pub(super) fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// The writer thread's state.
pub(super) struct Writer {
    path: PathBuf,
    file: File,
    /// Whole lines not yet written, `pending` of them.
    batch: Vec<u8>,
    pending: u64,
    /// The last write stopped in the middle of a line.
    torn: bool,
    /// A warning was logged since the last reopen.
    warned: bool,
    comms: CommCache,
    counters: Arc<Counters>,
}

impl Writer {
    /// A writer appending to `file`, which was opened from `path`.
    pub(super) fn new(path: PathBuf, file: File, counters: Arc<Counters>) -> Self {
        Writer {
            path,
            file,
            batch: Vec::with_capacity(BATCH_BYTES),
            pending: 0,
            torn: false,
            warned: false,
            comms: CommCache::new(),
            counters,
        }
    }

    /// Serves the queue until every sender is gone, then writes what is
    /// left and syncs.
    pub(super) fn run(mut self, queue: Receiver<Msg>) {
        while let Ok(msg) = queue.recv() {
            self.handle(msg);
            std::thread::sleep(GATHER);
            while let Ok(msg) = queue.try_recv() {
                self.handle(msg);
            }
            self.write_batch();
        }
        self.write_batch();
        self.sync();
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Line(event) => self.push(&event),
            Msg::Reopen => {
                self.write_batch();
                self.reopen();
            }
            Msg::Flush(done) => {
                self.write_batch();
                self.sync();
                // The caller may have given up waiting; nothing to do then.
                let _ = done.send(());
            }
        }
    }

    fn push(&mut self, event: &AuditEvent) {
        let comm = self.comms.get(event.pid, Instant::now());
        push_line(&mut self.batch, event, comm);
        self.pending += 1;
        if self.batch.len() >= BATCH_BYTES {
            self.write_batch();
        }
    }

    /// Writes the batch and counts each of its lines as written or dropped.
    fn write_batch(&mut self) {
        if self.pending == 0 {
            return;
        }
        let (done, result) = match self.end_torn_line() {
            Ok(()) => write_some(&mut self.file, &self.batch),
            Err(e) => (0, Err(e)),
        };
        let whole = self.batch[..done].iter().filter(|&&b| b == b'\n').count() as u64;
        if done > 0 {
            self.torn = self.batch[done - 1] != b'\n';
        }
        self.counters.written.fetch_add(whole, Ordering::Relaxed);
        let lost = self.pending - whole;
        self.counters.dropped.fetch_add(lost, Ordering::Relaxed);
        self.batch.clear();
        self.pending = 0;
        if let Err(e) = result {
            self.warn(&format!(
                "cannot write ({e}); {lost} audit lines dropped, and later ones are dropped \
                 too until it can be written"
            ));
        }
    }

    /// Ends the line a failed write left unfinished.
    fn end_torn_line(&mut self) -> io::Result<()> {
        if self.torn {
            self.file.write_all(b"\n")?;
            self.torn = false;
        }
        Ok(())
    }

    /// Switches to a fresh open of the path; when that fails, keeps writing
    /// to the file it had, so no line is lost to a failed rotation.
    fn reopen(&mut self) {
        self.warned = false;
        match open_file(&self.path) {
            Ok(file) => {
                self.file = file;
                self.torn = false;
            }
            Err(e) => self.warn(&format!(
                "cannot reopen ({e}); still writing to the file it had open"
            )),
        }
    }

    /// Asks the kernel to put what was written on disk. Files that cannot
    /// be synced (a pipe, a character device) answer EINVAL, which is fine.
    fn sync(&mut self) {
        match self.file.sync_data() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
            Err(e) => self.warn(&format!("cannot sync ({e})")),
        }
    }

    /// Logs the first problem since the last reopen; later ones are only
    /// counted, so a full disk cannot flood the log.
    fn warn(&mut self, problem: &str) {
        if !self.warned {
            self.warned = true;
            log::warn!(
                "audit log {}: {problem}; not warning again until it is reopened (SIGHUP)",
                self.path.display()
            );
        }
    }
}

/// Writes as much of `buf` as the file takes: the number of bytes written,
/// and the error that stopped it early.
fn write_some(out: &mut impl Write, buf: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < buf.len() {
        match out.write(&buf[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `room` bytes, then fails every write with ENOSPC.
    struct Filling {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Filling {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.taken.len() == self.room {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.room - self.taken.len());
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_some_reports_how_far_it_got() {
        let mut out = Filling {
            taken: Vec::new(),
            room: 5,
        };
        let (done, result) = write_some(&mut out, b"abc\ndef\n");
        assert_eq!(done, 5);
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(out.taken, b"abc\nd");
    }

    #[test]
    fn write_some_writes_everything_when_there_is_room() {
        let mut out = Filling {
            taken: Vec::new(),
            room: 100,
        };
        let (done, result) = write_some(&mut out, b"abc\ndef\n");
        assert_eq!(done, 8);
        assert!(result.is_ok());
    }
}
