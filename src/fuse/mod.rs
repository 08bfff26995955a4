//! The only fuser adapter: each handler converts arguments and polls the fs
//! core's work once; what is not done at once (anything waiting on the
//! network or the memory budget) goes on as a task of the shared tokio
//! runtime and replies from there, so no FUSE thread ever waits on the
//! network and many requests run at once.
//! A task that panics drops its reply, which fuser answers with EIO; the
//! panic is logged and the mount goes on (no lock is held across it that
//! poisoning would break: the fs core's locks ignore poisoning).

use std::ffi::OsStr;
use std::path::Path;
use std::time::SystemTime;

use fuser::{
    BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use log::{debug, warn};

use crate::audit::AuditOp;
use crate::cos::ObjectClient;
use crate::fs::{CreateFlags, Entry, FsError, OpenMode, SetAttr, SetIdBits};

mod adapter;
mod convert;
mod listing;
mod op;
mod reply;
mod write_buffers;
mod xattr;

pub use adapter::FuseAdapter;
use adapter::forget_attrs;
pub use convert::DirectIo;
use convert::{caller, file_attr, fopen_flags, time_or_now, use_direct_io, utf8_name};
use op::Sender;
pub use op::{ErrnoName, Observers, OpFamily, OpLabels, RecentError};
use reply::{panic_if_asked, reply_empty, reply_entry};

impl<C: ObjectClient> Filesystem for FuseAdapter<C> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // One at a time: fuser adds none of a set when the kernel lacks
        // one of them (DIRECT_IO_ALLOW_MMAP is new in Linux 6.6).
        for wanted in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP,
            // The set-ID bits are ours to drop (on write, truncate and
            // chown): the kernel then skips a GETATTR before each chown
            // and, past a file's first write, the `security.capability`
            // question before every write.
            InitFlags::FUSE_HANDLE_KILLPRIV_V2,
        ] {
            if let Err(missing) = config.add_capabilities(wanted) {
                debug!("kernel lacks FUSE capability {missing:?}");
            }
        }
        self.direct_mmap = config
            .capabilities()
            .contains(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let op = self.op("lookup", req);
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(op.fail(parent.0, &e)),
        };
        let (ttl, pid) = (self.ttl, req.pid());
        self.spawn(op, |fs, op| async move {
            panic_if_asked(&name);
            match fs.lookup_for(parent.0, &name, Some(pid)).await {
                Ok(e) => reply.entry(&ttl, &file_attr(&e), Generation(0)),
                Err(e) => reply.error(op.fail_in(parent.0, &name, &e)),
            }
        });
    }

    // batch_forget: fuser's default calls `forget` per node (its element
    // type is not exported, so it cannot be overridden).
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let op = self.op("getattr", req);
        let ttl = self.ttl;
        self.spawn(op, |fs, op| async move {
            match fs.getattr(ino.0).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&Entry { ino: ino.0, attr })),
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let op = self.op("readlink", req);
        self.spawn(op, |fs, op| async move {
            match fs.readlink(ino.0).await {
                Ok(target) => reply.data(target.as_bytes()),
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut op = self.op("open", req);
        let mode = OpenMode {
            write: flags.acc_mode() != OpenAccMode::O_RDONLY,
            truncate: flags.0 & libc::O_TRUNC != 0,
            append: flags.0 & libc::O_APPEND != 0,
            caller: Some(req.pid()),
            set_id: SetIdBits::on_change_by(req.uid()),
        };
        if mode.truncate && op.audits(false) {
            op.audit(
                AuditOp::Truncate,
                self.fs.mount_path(ino.0, None),
                None,
                Some(0),
            );
        } else if !mode.write && op.audits(true) {
            op.audit(
                AuditOp::OpenRead,
                self.fs.mount_path(ino.0, None),
                None,
                None,
            );
        }
        let (direct_io, direct_mmap) = (self.direct_io, self.direct_mmap);
        let notifier = self.notifier.clone();
        self.spawn(op, |fs, op| async move {
            match fs.open(ino.0, mode).await {
                Ok(opened) => {
                    if opened.changed {
                        // Another client changed it: the kernel's size and
                        // times are stale (its pages go with keep_cache off).
                        forget_attrs(&notifier, ino);
                    }
                    let size = fs.cached_attr(ino.0).map_or(0, |a| a.size);
                    let direct = use_direct_io(direct_io, direct_mmap, size);
                    drop(op);
                    reply.opened(
                        FileHandle(opened.fh),
                        fopen_flags(opened.keep_cache, direct),
                    )
                }
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let op = self.op("read", req);
        let observers = self.observers.clone();
        self.spawn(op, |fs, op| async move {
            match fs.read(fh.0, offset, size).await {
                Ok(data) => {
                    observers.read_bytes.inc_by(data.len() as u64);
                    reply.data(&data)
                }
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut op = self.op("release", req);
        self.audit_write_close(&mut op, ino, fh);
        self.spawn(op, |fs, op| async move {
            reply_empty(reply, op, ino.0, fs.release(fh.0).await);
        });
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let op = self.op("write", req);
        let set_id = if write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID) {
            SetIdBits::Drop
        } else {
            SetIdBits::Keep
        };
        // The kernel keeps its cached mode after a write: told to forget
        // it when this write takes set-ID bits away.
        let drops_set_id = set_id == SetIdBits::Drop
            && self
                .fs
                .cached_attr(ino.0)
                .is_some_and(|mut attr| attr.apply_set_id(set_id));
        let sender = Sender::of(req);
        let data = self.write_buffers.copy_of(data);
        let buffers = self.write_buffers.clone();
        let observers = self.observers.clone();
        let notifier = self.notifier.clone();
        self.spawn(op, |fs, op| async move {
            let result = fs.write(fh.0, offset, &data, set_id).await;
            buffers.give_back(data);
            match result {
                Ok(written) => {
                    observers.wrote(fh.0, u64::from(written.len), sender);
                    // The kernel keeps the size it computed from its offset
                    // (and, until it learns the true size, which drops them,
                    // the pages it wrote there).
                    if drops_set_id || written.offset != offset {
                        forget_attrs(&notifier, ino);
                    }
                    reply.written(written.len)
                }
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let mut op = self.op("flush", req);
        self.audit_write_close(&mut op, ino, fh);
        self.spawn(op, |fs, op| async move {
            reply_empty(reply, op, ino.0, fs.flush(fh.0).await);
        });
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let op = self.op("fsync", req);
        self.spawn(op, |fs, op| async move {
            reply_empty(reply, op, ino.0, fs.fsync(fh.0).await);
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut op = self.op("create", req);
        let flags = CreateFlags {
            exclusive: flags & libc::O_EXCL != 0,
            truncate: flags & libc::O_TRUNC != 0,
        };
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(op.fail(parent.0, &e)),
        };
        if op.audits(false) {
            let path = self.fs.mount_path(parent.0, Some(&name));
            op.audit(AuditOp::Create, path, None, None);
        }
        let (ttl, caller) = (self.ttl, caller(req));
        let direct_io = use_direct_io(self.direct_io, self.direct_mmap, 0);
        self.spawn(op, |fs, op| async move {
            match fs.create(parent.0, &name, mode, umask, flags, caller).await {
                Ok((entry, opened)) => {
                    drop(op);
                    reply.created(
                        &ttl,
                        &file_attr(&entry),
                        Generation(0),
                        FileHandle(opened.fh),
                        fopen_flags(false, direct_io),
                    )
                }
                Err(e) => reply.error(op.fail(parent.0, &e)),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let mut op = self.op("mknod", req);
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(op.fail(parent.0, &e)),
        };
        if op.audits(false) {
            let path = self.fs.mount_path(parent.0, Some(&name));
            op.audit(AuditOp::Mknod, path, None, None);
        }
        let (ttl, caller) = (self.ttl, caller(req));
        self.spawn(op, |fs, op| async move {
            reply_entry(
                reply,
                ttl,
                op,
                parent.0,
                fs.mknod(parent.0, &name, mode, umask, rdev, caller).await,
            );
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut op = self.op("mkdir", req);
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(op.fail(parent.0, &e)),
        };
        if op.audits(false) {
            let path = self.fs.mount_path(parent.0, Some(&name));
            op.audit(AuditOp::Mkdir, path, None, None);
        }
        let (ttl, caller) = (self.ttl, caller(req));
        self.spawn(op, |fs, op| async move {
            reply_entry(
                reply,
                ttl,
                op,
                parent.0,
                fs.mkdir(parent.0, &name, mode, umask, caller).await,
            );
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut op = self.op("symlink", req);
        let (name, target) = match (utf8_name(link_name), utf8_name(target.as_os_str())) {
            (Ok(name), Ok(target)) => (name, target),
            (Err(e), _) | (_, Err(e)) => return reply.error(op.fail(parent.0, &e)),
        };
        if op.audits(false) {
            let path = self.fs.mount_path(parent.0, Some(&name));
            op.audit(AuditOp::Symlink, path, Some(target.clone()), None);
        }
        let (ttl, caller) = (self.ttl, caller(req));
        self.spawn(op, |fs, op| async move {
            reply_entry(
                reply,
                ttl,
                op,
                parent.0,
                fs.symlink(parent.0, &name, &target, caller).await,
            );
        });
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut op = self.op("link", req);
        if op.audits(false) {
            let path = self.fs.mount_path(ino.0, None);
            let new_path = utf8_name(newname)
                .map(|name| self.fs.mount_path(newparent.0, Some(&name)))
                .ok();
            op.audit(AuditOp::Link, path, new_path, None);
        }
        // link(2): EPERM when the filesystem has no hard links.
        debug!(
            "link ino={}: hard links are not supported on an object store",
            ino.0
        );
        reply.error(op.refuse(FsError::NotPermitted.to_errno()));
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut op = self.op("unlink", req);
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(op.fail(parent.0, &e)),
        };
        if op.audits(false) {
            let path = self.fs.mount_path(parent.0, Some(&name));
            op.audit(AuditOp::Unlink, path, None, None);
        }
        self.spawn(op, |fs, op| async move {
            reply_empty(reply, op, parent.0, fs.unlink(parent.0, &name).await);
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut op = self.op("rmdir", req);
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(op.fail(parent.0, &e)),
        };
        if op.audits(false) {
            let path = self.fs.mount_path(parent.0, Some(&name));
            op.audit(AuditOp::Rmdir, path, None, None);
        }
        self.spawn(op, |fs, op| async move {
            reply_empty(reply, op, parent.0, fs.rmdir(parent.0, &name).await);
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut op = self.op("rename", req);
        // rename(2): a flag the filesystem does not support is EINVAL.
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(op.fail(parent.0, &FsError::Invalid));
        }
        let (name, newname) = match (utf8_name(name), utf8_name(newname)) {
            (Ok(name), Ok(newname)) => (name, newname),
            (Err(e), _) | (_, Err(e)) => return reply.error(op.fail(parent.0, &e)),
        };
        if op.audits(false) {
            let path = self.fs.mount_path(parent.0, Some(&name));
            let new_path = self.fs.mount_path(newparent.0, Some(&newname));
            op.audit(AuditOp::Rename, path, Some(new_path), None);
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.spawn(op, |fs, op| async move {
            match fs
                .rename(parent.0, &name, newparent.0, &newname, no_replace)
                .await
            {
                Ok(()) => {
                    drop(op);
                    reply.ok()
                }
                Err(e) => reply.error(op.fail(parent.0, &e)),
            }
        });
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut op = self.op("setattr", req);
        if op.audits(false) {
            let path = self.fs.mount_path(ino.0, None);
            match size {
                Some(size) => op.audit(AuditOp::Truncate, path, None, Some(size)),
                None => op.audit(AuditOp::Setattr, path, None, None),
            }
        }
        let changes = SetAttr {
            size,
            mode,
            uid,
            gid,
            mtime: mtime.map(time_or_now),
            atime: atime.map(time_or_now),
            // What the kernel's FATTR_KILL_SUIDGID would say (fuser does
            // not pass it on): a chown always, a truncate without
            // CAP_FSETID.
            set_id: if uid.is_some() || gid.is_some() {
                SetIdBits::Drop
            } else if size.is_some() {
                SetIdBits::on_change_by(req.uid())
            } else {
                SetIdBits::Keep
            },
        };
        let ttl = self.ttl;
        self.spawn(op, |fs, op| async move {
            match fs.setattr(ino.0, changes).await {
                Ok(attr) => {
                    drop(op);
                    reply.attr(&ttl, &file_attr(&Entry { ino: ino.0, attr }))
                }
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let op = self.op("opendir", req);
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(op.fail(ino.0, &e)),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let op = self.op("readdir", req);
        self.read_dir(op, ino, fh, offset, reply);
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let op = self.op("readdirplus", req);
        self.read_dir_plus(op, ino, fh, offset, reply);
    }

    fn releasedir(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _op = self.op("releasedir", req);
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _op = self.op("statfs", req);
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks,
            s.free,
            s.free,
            s.files,
            s.files,
            s.block_size,
            s.name_max,
            s.block_size,
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let op = self.op("getxattr", req);
        self.get_xattr(op, ino, name, size, reply);
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let op = self.op("listxattr", req);
        self.list_xattr(op, ino, size, reply);
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let op = self.op("setxattr", req);
        self.set_xattr(op, ino, name, value, flags, reply);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let op = self.op("removexattr", req);
        self.remove_xattr(op, ino, name, reply);
    }

    // Requests an object store has nothing to do for: answered quietly
    // (fuser's defaults log each at WARN, and programs that probe for a
    // terminal send an ioctl on every open). Kernel contracts, not fs
    // errors: ENOTTY is what isatty() expects; ENOSYS makes the kernel
    // stop asking and fall back (lseek, copy_file_range, fallocate).
    fn ioctl(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        debug!("ioctl {cmd:#x} on inode {}: not supported", ino.0);
        reply.error(Errno::ENOTTY);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: ReplyLseek,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    /// Directory changes are durable when their call returns.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn access(&self, req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let op = self.op("access", req);
        match self.fs.cached_attr(ino.0) {
            Some(_) => reply.ok(),
            None => {
                // The kernel asks only about inodes it holds: worth a warning.
                warn!("access on unknown inode {}", ino.0);
                reply.error(op.refuse(FsError::NotFound.to_errno()));
            }
        }
    }
}
