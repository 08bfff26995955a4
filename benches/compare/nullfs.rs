//! A FUSE filesystem that stores nothing: it keeps names and attributes in
//! memory and drops every byte written. `tar -xf` into it costs only the
//! kernel round trips tar causes (lookup, create, write, three setattrs,
//! flush, ...), the part of an untar no FUSE mounter can avoid on this
//! machine; raw PUTs plus that time is the floor for a mount whose close
//! waits for the upload. Mounted with cosmount's session settings.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags,
    ReplyAttr, ReplyCreate, ReplyEmpty, ReplyEntry, ReplyWrite, ReplyXattr, Request, Session,
    TimeOrNow, WriteFlags,
};

/// The null filesystem mounted on `mountpoint` (unmounted by
/// [`BackgroundSession::umount_and_join`]).
pub fn mount(mountpoint: &Path) -> std::io::Result<BackgroundSession> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("cosmount-bench-null".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    config.n_threads = Some(cosmount::mount::DEFAULT_FUSE_THREADS);
    config.clone_fd = true;
    let fs = NullFs {
        ttl: cosmount::fs::FsConfig::default().metadata_ttl,
        nodes: Mutex::default(),
    };
    Session::new(fs, mountpoint, &config)?.spawn()
}

/// Names and attributes, no data.
struct NullFs {
    /// Attribute and entry lifetime: cosmount's default `--metadata-ttl`.
    ttl: Duration,
    nodes: Mutex<Nodes>,
}

#[derive(Default)]
struct Nodes {
    last_ino: u64,
    names: HashMap<(u64, String), u64>,
    attrs: HashMap<u64, FileAttr>,
}

fn new_attr(ino: u64, kind: FileType, mode: u32, req: &Request) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind,
        perm: (mode & 0o7777) as u16,
        nlink: 1,
        uid: req.uid(),
        gid: req.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl NullFs {
    fn add(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        kind: FileType,
        mode: u32,
    ) -> FileAttr {
        let mut n = self.nodes.lock().unwrap();
        n.last_ino = n.last_ino.max(INodeNo::ROOT.0) + 1;
        let ino = n.last_ino;
        n.names
            .insert((parent.0, name.to_string_lossy().into()), ino);
        let attr = new_attr(ino, kind, mode, req);
        n.attrs.insert(ino, attr);
        attr
    }

    fn attr(&self, req: &Request, ino: INodeNo) -> Option<FileAttr> {
        if ino == INodeNo::ROOT {
            return Some(new_attr(ino.0, FileType::Directory, 0o755, req));
        }
        self.nodes.lock().unwrap().attrs.get(&ino.0).copied()
    }
}

impl Filesystem for NullFs {
    /// As cosmount: set-ID bits are the filesystem's to drop, which spares
    /// the kernel a GETATTR before each chown (a round trip a mounter can
    /// avoid is not part of the floor).
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.add_capabilities(InitFlags::FUSE_HANDLE_KILLPRIV_V2);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let n = self.nodes.lock().unwrap();
        let key = (parent.0, name.to_string_lossy().into_owned());
        match n.names.get(&key).and_then(|ino| n.attrs.get(ino)) {
            Some(attr) => reply.entry(&self.ttl, attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(req, ino) {
            Some(attr) => reply.attr(&self.ttl, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut n = self.nodes.lock().unwrap();
        let Some(attr) = n.attrs.get_mut(&ino.0) else {
            drop(n);
            return self.getattr(req, ino, None, reply);
        };
        if let Some(mode) = mode {
            attr.perm = (mode & 0o7777) as u16;
        }
        if (uid.is_some() || gid.is_some()) && attr.kind != FileType::Directory {
            // What a chown does to set-ID bits (tar sets none here).
            attr.perm &= !0o4000;
            if attr.perm & 0o010 != 0 {
                attr.perm &= !0o2000;
            }
        }
        attr.uid = uid.unwrap_or(attr.uid);
        attr.gid = gid.unwrap_or(attr.gid);
        attr.size = size.unwrap_or(attr.size);
        match mtime {
            Some(TimeOrNow::SpecificTime(t)) => attr.mtime = t,
            Some(TimeOrNow::Now) => attr.mtime = SystemTime::now(),
            None => {}
        }
        reply.attr(&self.ttl, attr);
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
        let attr = self.add(req, parent, name, FileType::Directory, mode & !umask);
        reply.entry(&self.ttl, &attr, Generation(0));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let attr = self.add(req, parent, name, FileType::RegularFile, mode & !umask);
        reply.created(
            &self.ttl,
            &attr,
            Generation(0),
            FileHandle(attr.ino.0),
            FopenFlags::empty(),
        );
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if let Some(attr) = self.nodes.lock().unwrap().attrs.get_mut(&ino.0) {
            attr.size = attr.size.max(offset + data.len() as u64);
        }
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    /// Answered like cosmount (which supports extended attributes): the
    /// kernel keeps asking for `security.capability` on writes and chown.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENODATA);
    }
}
