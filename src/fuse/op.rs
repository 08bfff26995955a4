//! One kernel request being answered ([`Op`]): when it ends (dropped, once
//! its reply is sent), its latency and result go to the operation metrics
//! and, for a change (or, with `--audit-reads`, an open for reading), one
//! line to the audit log.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Instant, SystemTime};

use fuser::{Errno, Request};
use log::debug;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::audit::{AuditEvent, AuditLog, AuditOp};
use crate::fs::FsError;
use crate::sync::lock;

/// Recent failures kept for `/status`.
const RECENT_ERRORS: usize = 16;

/// Requests by operation and result, with their latency in seconds.
pub type OpFamily = Family<OpLabels, Histogram, fn() -> Histogram>;

/// Labels of one kernel request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// The FUSE operation (`lookup`, `read`, ...).
    pub op: &'static str,
    /// `ok`, or the errno's name (`ENOENT`, ...).
    pub result: ErrnoName,
}

/// An errno as its name in labels and audit lines; 0 is `ok`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ErrnoName(pub i32);

impl EncodeLabelValue for ErrnoName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        match self.0 {
            0 => encoder.write_str("ok"),
            code => write!(encoder, "{:?}", nix::errno::Errno::from_raw(code)),
        }
    }
}

/// Latency buckets of kernel requests: 100 µs to about 50 s.
fn op_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 3.0, 13))
}

/// One failure the mount logged as a warning.
#[derive(Clone, Debug)]
pub struct RecentError {
    /// When it happened.
    pub time: SystemTime,
    /// The operation and what went wrong.
    pub message: String,
}

/// Where finished requests are counted and audited.
pub struct Observers {
    /// Requests by operation and result.
    pub ops: OpFamily,
    /// Bytes the applications read.
    pub read_bytes: Counter,
    /// Bytes the applications wrote.
    pub written_bytes: Counter,
    audit: Option<Arc<AuditLog>>,
    /// Bytes written through each handle since its last flush, and who
    /// wrote them, while the audit log is on.
    written_by_handle: std::sync::Mutex<HashMap<u64, (u64, Sender)>>,
    recent_errors: std::sync::Mutex<VecDeque<RecentError>>,
}

impl Observers {
    /// Observers counting requests, writing audit lines to `audit` if given.
    pub fn new(audit: Option<Arc<AuditLog>>) -> Observers {
        Observers {
            ops: Family::new_with_constructor(op_histogram),
            read_bytes: Counter::default(),
            written_bytes: Counter::default(),
            audit,
            written_by_handle: Default::default(),
            recent_errors: Default::default(),
        }
    }

    /// The audit log, if one is kept.
    pub fn audit_log(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// The last failures worth a warning, oldest first.
    pub fn recent_errors(&self) -> Vec<RecentError> {
        lock(&self.recent_errors).iter().cloned().collect()
    }

    /// Counts `n` bytes written by `sender` through handle `fh`.
    pub(super) fn wrote(&self, fh: u64, n: u64, sender: Sender) {
        self.written_bytes.inc_by(n);
        if self.audit.is_some() {
            let mut written = lock(&self.written_by_handle);
            let entry = written.entry(fh).or_insert((0, sender));
            entry.0 += n;
        }
    }

    /// Bytes written through `fh` since its last flush, and their writer
    /// (`None` if nothing was written); the count starts again.
    pub(super) fn flushed(&self, fh: u64) -> Option<(u64, Sender)> {
        self.audit.as_ref()?;
        lock(&self.written_by_handle).remove(&fh)
    }

    fn remember_error(&self, message: String) {
        let mut recent = lock(&self.recent_errors);
        if recent.len() == RECENT_ERRORS {
            recent.pop_front();
        }
        recent.push_back(RecentError {
            time: SystemTime::now(),
            message,
        });
    }
}

/// Who sent a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Sender {
    uid: u32,
    gid: u32,
    pid: u32,
}

impl Sender {
    /// The sender of `req`.
    pub(super) fn of(req: &Request) -> Sender {
        Sender {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        }
    }
}

struct Audited {
    op: AuditOp,
    path: String,
    new_path: Option<String>,
    bytes: Option<u64>,
}

/// One request in flight; counted (and audited) when dropped, which
/// handlers of changes do before they reply, so that the audit log has the
/// line before the application has the result.
pub(super) struct Op {
    name: &'static str,
    sender: Sender,
    started: Instant,
    started_at: SystemTime,
    errno: AtomicI32,
    observers: Arc<Observers>,
    audited: Option<Audited>,
}

impl Op {
    pub(super) fn new(name: &'static str, sender: Sender, observers: Arc<Observers>) -> Op {
        Op {
            name,
            sender,
            started: Instant::now(),
            started_at: SystemTime::now(),
            errno: AtomicI32::new(0),
            observers,
            audited: None,
        }
    }

    /// Whether an audit line would be written for this kind of request
    /// (`reads`: an open for reading, audited only with `--audit-reads`).
    pub(super) fn audits(&self, reads: bool) -> bool {
        self.observers
            .audit
            .as_ref()
            .is_some_and(|log| !reads || log.audits_reads())
    }

    /// Writes an audit line for this request when it ends, in the name of
    /// `writer` (a close's line names the process that wrote).
    pub(super) fn audit_as(&mut self, writer: Sender, op: AuditOp, path: String, bytes: u64) {
        self.sender = writer;
        self.audit(op, path, None, Some(bytes));
    }

    /// Writes an audit line for this request when it ends.
    pub(super) fn audit(
        &mut self,
        op: AuditOp,
        path: String,
        new_path: Option<String>,
        bytes: Option<u64>,
    ) {
        self.audited = Some(Audited {
            op,
            path,
            new_path,
            bytes,
        });
    }

    /// Ends the request with the failure `err` of inode `ino`, logged once
    /// at the level it deserves, and returns its errno for the reply (the
    /// request is counted and audited before the caller learns the result).
    pub(super) fn fail(self, ino: u64, err: &FsError) -> Errno {
        self.fail_on(Target::Ino(ino), err)
    }

    /// [`fail`](Self::fail) of a request about `name` in directory
    /// `parent` (the log names the name).
    pub(super) fn fail_in(self, parent: u64, name: &str, err: &FsError) -> Errno {
        self.fail_on(Target::Name(parent, name), err)
    }

    fn fail_on(self, target: Target<'_>, err: &FsError) -> Errno {
        let code = err.to_errno();
        let op = self.name;
        if err.is_routine() {
            debug!("{op} {target}: {err}");
        } else {
            let kind = format!("errno {code} {}", err.cos_code());
            crate::warn_limited!(&kind, "{op} {target} failed with errno {code}: {err}");
            self.observers
                .remember_error(format!("{op} {target}: {err}"));
        }
        self.errno.store(code, Ordering::Relaxed);
        Errno::from_i32(code)
    }

    /// Ends the request with an errno that is the answer by contract
    /// (nothing to log).
    pub(super) fn refuse(self, code: i32) -> Errno {
        self.errno.store(code, Ordering::Relaxed);
        Errno::from_i32(code)
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let code = self.errno.load(Ordering::Relaxed);
        self.observers
            .ops
            .get_or_create(&OpLabels {
                op: self.name,
                result: ErrnoName(code),
            })
            .observe(elapsed.as_secs_f64());
        let (Some(audited), Some(log)) = (self.audited.take(), &self.observers.audit) else {
            return;
        };
        log.record(AuditEvent {
            op: audited.op,
            path: audited.path,
            new_path: audited.new_path,
            uid: self.sender.uid,
            gid: self.sender.gid,
            pid: self.sender.pid,
            result: if code == 0 { Ok(()) } else { Err(code) },
            bytes: audited.bytes,
            started: self.started_at,
            duration: elapsed,
        });
    }
}

/// What a failed request was about, formatted only when logged.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Inode `ino`.
    Ino(u64),
    /// A name in a directory.
    Name(u64, &'a str),
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Ino(ino) => write!(f, "ino={ino}"),
            Target::Name(parent, name) => write!(f, "of {name:?} in ino={parent}"),
        }
    }
}
