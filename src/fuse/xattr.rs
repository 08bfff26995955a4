//! Extended attribute requests (off with `noxattr`: ENOSYS, so the kernel
//! stops asking).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use fuser::{INodeNo, ReplyEmpty, ReplyXattr};

use super::FuseAdapter;
use super::op::Op;
use super::reply::{reply_empty, reply_xattr};
use crate::audit::AuditOp;
use crate::cos::ObjectClient;
use crate::fs::xattr::SetMode;

impl<C: ObjectClient> FuseAdapter<C> {
    /// getxattr: the value, or its size when `size` is 0.
    pub(super) fn get_xattr(
        &self,
        op: Op,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        if !self.fs.xattrs_enabled() {
            // Kernel contract: ENOSYS means "never ask again".
            return reply.error(op.refuse(libc::ENOSYS));
        }
        let name = name.as_bytes().to_vec();
        self.spawn(op, |fs, op| async move {
            reply_xattr(reply, size, op, ino.0, fs.getxattr(ino.0, &name).await);
        });
    }

    /// listxattr: the stored names, NUL-terminated.
    pub(super) fn list_xattr(&self, op: Op, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if !self.fs.xattrs_enabled() {
            return reply.error(op.refuse(libc::ENOSYS));
        }
        self.spawn(op, |fs, op| async move {
            reply_xattr(reply, size, op, ino.0, fs.listxattr(ino.0).await);
        });
    }

    /// setxattr, with `XATTR_CREATE`/`XATTR_REPLACE` from `flags`.
    pub(super) fn set_xattr(
        &self,
        mut op: Op,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        reply: ReplyEmpty,
    ) {
        if !self.fs.xattrs_enabled() {
            return reply.error(op.refuse(libc::ENOSYS));
        }
        let (name, value) = (name.as_bytes().to_vec(), value.to_vec());
        let mode = SetMode::from_flags(flags);
        if op.audits(false) {
            let path = self.fs.mount_path(ino.0, None);
            op.audit(AuditOp::Setxattr, path, None, None);
        }
        self.spawn(op, |fs, op| async move {
            let result = fs.setxattr(ino.0, &name, &value, mode).await;
            reply_empty(reply, op, ino.0, result);
        });
    }

    /// removexattr.
    pub(super) fn remove_xattr(&self, mut op: Op, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if !self.fs.xattrs_enabled() {
            return reply.error(op.refuse(libc::ENOSYS));
        }
        let name = name.as_bytes().to_vec();
        if op.audits(false) {
            let path = self.fs.mount_path(ino.0, None);
            op.audit(AuditOp::Removexattr, path, None, None);
        }
        self.spawn(op, |fs, op| async move {
            reply_empty(reply, op, ino.0, fs.removexattr(ino.0, &name).await);
        });
    }
}
