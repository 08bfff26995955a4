//! Replies to the kernel: the common reply shapes, and the panic helpers of the
//! request tasks.

use std::time::Duration;

use fuser::{Generation, ReplyEmpty, ReplyEntry, ReplyXattr};

use super::convert::file_attr;
use super::op::Op;
use crate::fs::{Entry, FsError};

/// The text of a panic payload.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Test hook, in debug builds only: a lookup of the name in
/// `COSMOUNT_TEST_PANIC_ON` panics inside its request task, so tests can
/// show that a panicking request does not take the mount down.
#[cfg(debug_assertions)]
pub(super) fn panic_if_asked(name: &str) {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let wanted = NAME.get_or_init(|| std::env::var("COSMOUNT_TEST_PANIC_ON").ok());
    if wanted.as_deref() == Some(name) {
        panic!("test hook: lookup of {name:?}");
    }
}

#[cfg(not(debug_assertions))]
pub(super) fn panic_if_asked(_: &str) {}

pub(super) fn reply_empty(reply: ReplyEmpty, op: Op, ino: u64, result: Result<(), FsError>) {
    match result {
        Ok(()) => {
            drop(op);
            reply.ok()
        }
        Err(e) => reply.error(op.fail(ino, &e)),
    }
}

pub(super) fn reply_entry(
    reply: ReplyEntry,
    ttl: Duration,
    op: Op,
    parent: u64,
    result: Result<Entry, FsError>,
) {
    match result {
        Ok(e) => {
            drop(op);
            reply.entry(&ttl, &file_attr(&e), Generation(0))
        }
        Err(e) => reply.error(op.fail(parent, &e)),
    }
}

/// Answers getxattr/listxattr: the size when asked for it (`size` 0), the
/// bytes when they fit, ERANGE when they do not.
pub(super) fn reply_xattr(
    reply: ReplyXattr,
    size: u32,
    op: Op,
    ino: u64,
    result: Result<Vec<u8>, FsError>,
) {
    match result {
        Ok(value) if size == 0 => reply.size(value.len() as u32),
        Ok(value) if value.len() <= size as usize => reply.data(&value),
        Ok(_) => reply.error(op.refuse(libc::ERANGE)),
        // Common answers, not worth a log line: a missing attribute, and
        // a namespace the bucket does not store (the kernel asks for
        // `security.capability` before writes and chowns; `ls -l` asks
        // each entry's label and ACL until told they are unsupported).
        Err(FsError::NoAttribute) => reply.error(op.refuse(libc::ENODATA)),
        Err(FsError::NotSupported) => reply.error(op.refuse(libc::EOPNOTSUPP)),
        Err(e) => reply.error(op.fail(ino, &e)),
    }
}
