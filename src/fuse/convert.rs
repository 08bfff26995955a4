//! Conversions between the fs core's values and the kernel's: attributes,
//! file types, open flags (with the direct-I/O policy), callers and names.
//! Pure functions, no I/O.

use std::ffi::OsStr;
use std::time::SystemTime;

use fuser::{FileAttr, FileType, FopenFlags, INodeNo, Request, TimeOrNow};

use crate::fs::attr::{Attr, Kind};
use crate::fs::{Caller, Entry, FsError};

/// When to bypass the kernel page cache (FOPEN_DIRECT_IO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectIo {
    /// For large files, when the kernel lets direct-I/O files be mmapped.
    Auto,
    /// For every file.
    Always,
    /// Never.
    Never,
}

/// Files this large are opened with direct I/O in `DirectIo::Auto`: their
/// sequential reads skip the page cache, whose fresh pages cost more than
/// the copy itself on small VMs.
const AUTO_DIRECT_IO_SIZE: u64 = 32 << 20;

/// Whether a file of `size` bytes is opened with direct I/O.
pub(super) fn use_direct_io(mode: DirectIo, direct_mmap: bool, size: u64) -> bool {
    match mode {
        DirectIo::Always => true,
        DirectIo::Never => false,
        DirectIo::Auto => direct_mmap && size >= AUTO_DIRECT_IO_SIZE,
    }
}

/// Block size reported in `st_blksize`: large, so tools read in big chunks.
const BLKSIZE: u32 = 1 << 20;

/// Converts fs attributes to the kernel's.
pub(super) fn file_attr(entry: &Entry) -> FileAttr {
    let Attr {
        kind,
        size,
        mtime,
        atime,
        rdev,
        perm,
        uid,
        gid,
    } = entry.attr;
    FileAttr {
        ino: INodeNo(entry.ino),
        size,
        blocks: size.div_ceil(512),
        atime,
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind: file_type(kind),
        perm,
        nlink: if kind == Kind::Dir { 2 } else { 1 },
        uid,
        gid,
        rdev,
        flags: 0,
        blksize: BLKSIZE,
    }
}

pub(super) fn file_type(kind: Kind) -> FileType {
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

pub(super) fn fopen_flags(keep_cache: bool, direct_io: bool) -> FopenFlags {
    match (direct_io, keep_cache) {
        (true, _) => FopenFlags::FOPEN_DIRECT_IO,
        (false, true) => FopenFlags::FOPEN_KEEP_CACHE,
        (false, false) => FopenFlags::empty(),
    }
}

pub(super) fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
    }
}

/// `name` (or a symlink target) as UTF-8, or the error every handler
/// answers for one that is not.
pub(super) fn utf8_name(name: &OsStr) -> Result<String, FsError> {
    // A name that is not UTF-8 can be no COS key: it can neither exist nor
    // be made, so every call says EINVAL (the name is the bad argument);
    // ENOENT would tell a create that the parent directory is missing.
    name.to_str().map(str::to_string).ok_or(FsError::Invalid)
}

/// A time from `utimensat`, `UTIME_NOW` being now.
pub(super) fn time_or_now(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_name_that_is_not_utf8_is_einval_for_every_call() {
        assert_eq!(utf8_name(OsStr::new("a")), Ok("a".to_string()));
        let err = utf8_name(OsStr::from_bytes(b"a\xff")).unwrap_err();
        assert_eq!(err.to_errno(), libc::EINVAL);
    }
}
