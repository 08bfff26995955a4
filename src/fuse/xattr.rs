//! Extended attribute requests (off with `noxattr`: ENOSYS, so the kernel
//! stops asking).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use fuser::{Errno, INodeNo, ReplyEmpty, ReplyXattr};

use super::FuseAdapter;
use super::reply::{reply_empty, reply_xattr};
use crate::cos::ObjectClient;
use crate::fs::xattr::SetMode;

impl<C: ObjectClient> FuseAdapter<C> {
    /// getxattr: the value, or its size when `size` is 0.
    pub(super) fn get_xattr(&self, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if !self.fs.xattrs_enabled() {
            // Kernel contract: ENOSYS means "never ask again".
            return reply.error(Errno::ENOSYS);
        }
        let name = name.as_bytes().to_vec();
        self.spawn(|fs| async move {
            reply_xattr(
                reply,
                size,
                "getxattr",
                ino.0,
                fs.getxattr(ino.0, &name).await,
            );
        });
    }

    /// listxattr: the stored names, NUL-terminated.
    pub(super) fn list_xattr(&self, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if !self.fs.xattrs_enabled() {
            return reply.error(Errno::ENOSYS);
        }
        self.spawn(|fs| async move {
            reply_xattr(reply, size, "listxattr", ino.0, fs.listxattr(ino.0).await);
        });
    }

    /// setxattr, with `XATTR_CREATE`/`XATTR_REPLACE` from `flags`.
    pub(super) fn set_xattr(
        &self,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        reply: ReplyEmpty,
    ) {
        if !self.fs.xattrs_enabled() {
            return reply.error(Errno::ENOSYS);
        }
        let (name, value) = (name.as_bytes().to_vec(), value.to_vec());
        let mode = SetMode::from_flags(flags);
        self.spawn(|fs| async move {
            let result = fs.setxattr(ino.0, &name, &value, mode).await;
            reply_empty(reply, "setxattr", ino.0, result);
        });
    }

    /// removexattr.
    pub(super) fn remove_xattr(&self, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if !self.fs.xattrs_enabled() {
            return reply.error(Errno::ENOSYS);
        }
        let name = name.as_bytes().to_vec();
        self.spawn(|fs| async move {
            reply_empty(
                reply,
                "removexattr",
                ino.0,
                fs.removexattr(ino.0, &name).await,
            );
        });
    }
}
