//! The only fuser adapter: each handler converts arguments, hands the work
//! to the fs core on the shared tokio runtime and replies from there, so no
//! FUSE thread ever waits on the network and many requests run at once.

use std::ffi::OsStr;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use log::{debug, warn};
use tokio::runtime::Handle;

use crate::cos::ObjectClient;
use crate::fs::attr::{Attr, Kind};
use crate::fs::{Entry, Fs, FsError};

/// Block size reported in `st_blksize`: large, so tools read in big chunks.
const BLKSIZE: u32 = 1 << 20;

/// The kernel-facing filesystem.
pub struct FuseAdapter<C> {
    fs: Arc<Fs<C>>,
    runtime: Handle,
    ttl: Duration,
}

impl<C: ObjectClient> FuseAdapter<C> {
    /// An adapter running `fs` on `runtime`.
    pub fn new(fs: Arc<Fs<C>>, runtime: Handle) -> FuseAdapter<C> {
        let ttl = fs.config().metadata_ttl;
        FuseAdapter { fs, runtime, ttl }
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, work: impl FnOnce(Arc<Fs<C>>) -> F) {
        self.runtime.spawn(work(self.fs.clone()));
    }
}

/// Converts fs attributes to the kernel's.
fn file_attr(entry: &Entry) -> FileAttr {
    let Attr {
        kind,
        size,
        mtime,
        perm,
        uid,
        gid,
    } = entry.attr;
    FileAttr {
        ino: INodeNo(entry.ino),
        size,
        blocks: size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind: file_type(kind),
        perm,
        nlink: if kind == Kind::Dir { 2 } else { 1 },
        uid,
        gid,
        rdev: 0,
        flags: 0,
        blksize: BLKSIZE,
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
    }
}

/// Logs a failed operation once, at the level its error deserves.
fn errno(op: &str, ino: u64, err: &FsError) -> Errno {
    let code = err.to_errno();
    if err.is_routine() {
        debug!("{op} ino={ino}: {err}");
    } else {
        warn!("{op} ino={ino} failed with errno {code}: {err}");
    }
    Errno::from_i32(code)
}

impl<C: ObjectClient> Filesystem for FuseAdapter<C> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_ASYNC_READ;
        if let Err(missing) = config.add_capabilities(wanted) {
            debug!("kernel lacks FUSE capabilities {missing:?}");
        }
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str().map(str::to_string) else {
            return reply.error(Errno::ENOENT);
        };
        let ttl = self.ttl;
        self.spawn(|fs| async move {
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
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        self.spawn(|fs| async move {
            match fs.open(ino.0, write).await {
                Ok(opened) => {
                    let flags = if opened.keep_cache {
                        FopenFlags::FOPEN_KEEP_CACHE
                    } else {
                        FopenFlags::empty()
                    };
                    reply.opened(FileHandle(opened.fh), flags);
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
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
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
        mut reply: ReplyDirectory,
    ) {
        self.spawn(|fs| async move {
            match fs.readdir(ino.0, fh.0, offset).await {
                Ok(entries) => {
                    for e in entries.iter().skip(offset as usize) {
                        if reply.add(
                            INodeNo(e.entry.ino),
                            e.offset,
                            file_type(e.entry.attr.kind),
                            &e.name,
                        ) {
                            break;
                        }
                    }
                    reply.ok();
                }
                Err(e) => reply.error(errno("readdir", ino.0, &e)),
            }
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let ttl = self.ttl;
        self.spawn(|fs| async move {
            match fs.readdir(ino.0, fh.0, offset).await {
                Ok(entries) => {
                    for e in entries.iter().skip(offset as usize) {
                        let attr = file_attr(&e.entry);
                        if reply.add(
                            INodeNo(e.entry.ino),
                            e.offset,
                            &e.name,
                            &ttl,
                            &attr,
                            Generation(0),
                        ) {
                            break;
                        }
                        // The kernel takes a reference on every entry but . and ..
                        if e.name != "." && e.name != ".." {
                            fs.remember(e.entry.ino);
                        }
                    }
                    reply.ok();
                }
                Err(e) => reply.error(errno("readdirplus", ino.0, &e)),
            }
        });
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

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::from_i32(libc::ENODATA));
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0)
        } else {
            reply.data(&[])
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.fs.cached_attr(ino.0) {
            Some(_) => reply.ok(),
            None => {
                warn!("access on unknown inode {}", ino.0);
                reply.error(Errno::ENOENT);
            }
        }
    }
}
