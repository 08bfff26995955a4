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

use crate::cos::ObjectClient;
use crate::fs::{CreateFlags, Entry, FsError, OpenMode, SetAttr};

mod adapter;
mod convert;
mod listing;
mod reply;
mod xattr;

pub use adapter::FuseAdapter;
pub use convert::DirectIo;
use convert::{caller, file_attr, fopen_flags, time_or_now, use_direct_io, utf8_name};
use reply::{errno, panic_if_asked, reply_empty, reply_entry};

impl<C: ObjectClient> Filesystem for FuseAdapter<C> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP;
        if let Err(missing) = config.add_capabilities(wanted) {
            debug!("kernel lacks FUSE capabilities {missing:?}");
        }
        self.direct_mmap = config
            .capabilities()
            .contains(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(errno("lookup", parent.0, &e)),
        };
        let ttl = self.ttl;
        self.spawn(|fs| async move {
            panic_if_asked(&name);
            match fs.lookup(parent.0, &name).await {
                Ok(e) => reply.entry(&ttl, &file_attr(&e), Generation(0)),
                Err(e) => reply.error(errno("lookup", parent.0, &e)),
            }
        });
    }

    // batch_forget: fuser's default calls `forget` per node (its element
    // type is not exported, so it cannot be overridden).
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ttl = self.ttl;
        self.spawn(|fs| async move {
            match fs.getattr(ino.0).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&Entry { ino: ino.0, attr })),
                Err(e) => reply.error(errno("getattr", ino.0, &e)),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.spawn(|fs| async move {
            match fs.readlink(ino.0).await {
                Ok(target) => reply.data(target.as_bytes()),
                Err(e) => reply.error(errno("readlink", ino.0, &e)),
            }
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mode = OpenMode {
            write: flags.acc_mode() != OpenAccMode::O_RDONLY,
            truncate: flags.0 & libc::O_TRUNC != 0,
        };
        let (direct_io, direct_mmap) = (self.direct_io, self.direct_mmap);
        let notifier = self.notifier.clone();
        self.spawn(|fs| async move {
            match fs.open(ino.0, mode).await {
                Ok(opened) => {
                    if let (true, Some(n)) = (opened.changed, notifier.get()) {
                        // Another client changed it: the kernel's size and
                        // times are stale (its pages go with keep_cache off).
                        if let Err(e) = n.inval_inode(ino, -1, 0) {
                            debug!("invalidating inode {}: {e}", ino.0);
                        }
                    }
                    let size = fs.cached_attr(ino.0).map_or(0, |a| a.size);
                    let direct = use_direct_io(direct_io, direct_mmap, size);
                    reply.opened(
                        FileHandle(opened.fh),
                        fopen_flags(opened.keep_cache, direct),
                    )
                }
                Err(e) => reply.error(errno("open", ino.0, &e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.spawn(|fs| async move {
            match fs.read(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno("read", ino.0, &e)),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(|fs| async move {
            reply_empty(reply, "release", ino.0, fs.release(fh.0).await);
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.spawn(|fs| async move {
            match fs.write(fh.0, offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno("write", ino.0, &e)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.spawn(|fs| async move {
            reply_empty(reply, "flush", ino.0, fs.flush(fh.0).await);
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(|fs| async move {
            reply_empty(reply, "fsync", ino.0, fs.fsync(fh.0).await);
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
        let flags = CreateFlags {
            exclusive: flags & libc::O_EXCL != 0,
            truncate: flags & libc::O_TRUNC != 0,
        };
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(errno("create", parent.0, &e)),
        };
        let (ttl, caller) = (self.ttl, caller(req));
        let direct_io = use_direct_io(self.direct_io, self.direct_mmap, 0);
        self.spawn(|fs| async move {
            match fs.create(parent.0, &name, mode, umask, flags, caller).await {
                Ok((entry, opened)) => reply.created(
                    &ttl,
                    &file_attr(&entry),
                    Generation(0),
                    FileHandle(opened.fh),
                    fopen_flags(false, direct_io),
                ),
                Err(e) => reply.error(errno("create", parent.0, &e)),
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
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(errno("mknod", parent.0, &e)),
        };
        let (ttl, caller) = (self.ttl, caller(req));
        self.spawn(|fs| async move {
            reply_entry(
                reply,
                ttl,
                "mknod",
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
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(errno("mkdir", parent.0, &e)),
        };
        let (ttl, caller) = (self.ttl, caller(req));
        self.spawn(|fs| async move {
            reply_entry(
                reply,
                ttl,
                "mkdir",
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
        let (name, target) = match (utf8_name(link_name), utf8_name(target.as_os_str())) {
            (Ok(name), Ok(target)) => (name, target),
            (Err(e), _) | (_, Err(e)) => return reply.error(errno("symlink", parent.0, &e)),
        };
        let (ttl, caller) = (self.ttl, caller(req));
        self.spawn(|fs| async move {
            reply_entry(
                reply,
                ttl,
                "symlink",
                parent.0,
                fs.symlink(parent.0, &name, &target, caller).await,
            );
        });
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // link(2): EPERM when the filesystem has no hard links.
        debug!(
            "link ino={}: hard links are not supported on an object store",
            ino.0
        );
        reply.error(Errno::from_i32(FsError::NotPermitted.to_errno()));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(errno("unlink", parent.0, &e)),
        };
        self.spawn(|fs| async move {
            reply_empty(reply, "unlink", parent.0, fs.unlink(parent.0, &name).await);
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match utf8_name(name) {
            Ok(name) => name,
            Err(e) => return reply.error(errno("rmdir", parent.0, &e)),
        };
        self.spawn(|fs| async move {
            reply_empty(reply, "rmdir", parent.0, fs.rmdir(parent.0, &name).await);
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        // rename(2): a flag the filesystem does not support is EINVAL.
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(errno("rename", parent.0, &FsError::Invalid));
        }
        let (name, newname) = match (utf8_name(name), utf8_name(newname)) {
            (Ok(name), Ok(newname)) => (name, newname),
            (Err(e), _) | (_, Err(e)) => return reply.error(errno("rename", parent.0, &e)),
        };
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.spawn(|fs| async move {
            match fs
                .rename(parent.0, &name, newparent.0, &newname, no_replace)
                .await
            {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno("rename", parent.0, &e)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
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
        let changes = SetAttr {
            size,
            mode,
            uid,
            gid,
            mtime: mtime.map(time_or_now),
            atime: atime.map(time_or_now),
        };
        let ttl = self.ttl;
        self.spawn(|fs| async move {
            match fs.setattr(ino.0, changes).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&Entry { ino: ino.0, attr })),
                Err(e) => reply.error(errno("setattr", ino.0, &e)),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno("opendir", ino.0, &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.read_dir(ino, fh, offset, reply);
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.read_dir_plus(ino, fh, offset, reply);
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
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

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.get_xattr(ino, name, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.list_xattr(ino, size, reply);
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.set_xattr(ino, name, value, flags, reply);
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove_xattr(ino, name, reply);
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

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.fs.cached_attr(ino.0) {
            Some(_) => reply.ok(),
            None => {
                // The kernel asks only about inodes it holds: worth a warning.
                warn!("access on unknown inode {}", ino.0);
                reply.error(Errno::from_i32(FsError::NotFound.to_errno()));
            }
        }
    }
}
