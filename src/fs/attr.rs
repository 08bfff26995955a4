//! File attributes and their storage in object metadata. Mode, uid, gid and
//! mtime use cosfs's names and encodings (`x-cos-meta-mode` holds the full
//! decimal `st_mode` including the type bits), so buckets written by cosfs
//! look the same here and the other way round.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cos::{ObjectInfo, UserMeta};

/// Metadata names (after `x-cos-meta-`).
pub const META_MODE: &str = "mode";
/// Owner uid.
pub const META_UID: &str = "uid";
/// Owner gid.
pub const META_GID: &str = "gid";
/// Modification time, whole Unix seconds (cosfs reads digits only).
pub const META_MTIME: &str = "mtime";
/// Our own header with the modification time to the nanosecond
/// (`SECS.NNNNNNNNN`), which cosfs ignores; used only while its seconds
/// agree with `mtime` (another tool that sets `mtime` wins).
pub const META_PRECISE_MTIME: &str = "cosmount-mtime";
/// Access time, whole Unix seconds (s3fs's name), stored only when it
/// differs from the modification time.
pub const META_ATIME: &str = "atime";
/// Access time to the nanosecond, as [`META_PRECISE_MTIME`].
pub const META_PRECISE_ATIME: &str = "cosmount-atime";
/// Device number of a character or block device node (s3fs's name).
pub const META_RDEV: &str = "rdev";

/// The headers [`to_meta`] writes or leaves out: a rewrite drops the old
/// values first, so one left out is not kept from before.
pub const MANAGED_META: [&str; 5] = [
    META_PRECISE_MTIME,
    META_ATIME,
    META_PRECISE_ATIME,
    META_RDEV,
    META_MTIME,
];

/// Content type of directory markers (as cosfs writes them).
pub const DIR_CONTENT_TYPE: &str = "application/x-directory";

const S_ISUID: u16 = 0o4000;
const S_ISGID: u16 = 0o2000;
const S_IXGRP: u16 = 0o0010;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;

/// What kind of node an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory: a `dir/` marker or a common prefix.
    Dir,
    /// Symbolic link: the body is the target.
    Symlink,
    /// Named pipe (mkfifo), stored as an empty object.
    Fifo,
    /// Unix socket node.
    Socket,
    /// Character device node.
    CharDevice,
    /// Block device node.
    BlockDevice,
}

impl Kind {
    /// The kind encoded in `st_mode`'s type bits, if any.
    pub fn from_mode(mode: u32) -> Option<Kind> {
        match mode & S_IFMT {
            S_IFREG => Some(Kind::File),
            S_IFDIR => Some(Kind::Dir),
            S_IFLNK => Some(Kind::Symlink),
            S_IFIFO => Some(Kind::Fifo),
            S_IFSOCK => Some(Kind::Socket),
            S_IFCHR => Some(Kind::CharDevice),
            S_IFBLK => Some(Kind::BlockDevice),
            _ => None,
        }
    }

    /// The type bits of `st_mode`.
    pub fn type_bits(self) -> u32 {
        match self {
            Kind::File => S_IFREG,
            Kind::Dir => S_IFDIR,
            Kind::Symlink => S_IFLNK,
            Kind::Fifo => S_IFIFO,
            Kind::Socket => S_IFSOCK,
            Kind::CharDevice => S_IFCHR,
            Kind::BlockDevice => S_IFBLK,
        }
    }
}

/// The attributes the filesystem reports for one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Node kind.
    pub kind: Kind,
    /// Size in bytes (symlinks: target length).
    pub size: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// Access time (set by `utimensat`; reads do not change it).
    pub atime: SystemTime,
    /// Device number (character and block device nodes).
    pub rdev: u32,
    /// Permission bits (`0o7777`).
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// What a change does to a file's set-user-ID and set-group-ID bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetIdBits {
    /// They stay.
    #[default]
    Keep,
    /// They go, as Linux takes them from a file that changes owner, or is
    /// written or truncated by someone without `CAP_FSETID`: set-user-ID
    /// always, set-group-ID when the group may execute. Directories keep
    /// theirs.
    Drop,
}

impl SetIdBits {
    /// What truncating (or writing) as `uid` does: root keeps the bits
    /// (this filesystem knows the caller's uid, not its capabilities).
    pub fn on_change_by(uid: u32) -> SetIdBits {
        if uid == 0 {
            SetIdBits::Keep
        } else {
            SetIdBits::Drop
        }
    }
}

impl Attr {
    /// Applies `bits` to the mode; whether it changed.
    pub fn apply_set_id(&mut self, bits: SetIdBits) -> bool {
        if bits == SetIdBits::Keep || self.kind == Kind::Dir {
            return false;
        }
        let before = self.perm;
        self.perm &= !S_ISUID;
        if self.perm & S_IXGRP != 0 {
            self.perm &= !S_ISGID;
        }
        self.perm != before
    }
}

/// Attribute changes requested by setattr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New mode (permission bits are used).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
    /// New access time.
    pub atime: Option<SystemTime>,
    /// What the change does to the set-ID bits (a chown, or a truncate by
    /// someone without `CAP_FSETID`, takes them away).
    pub set_id: SetIdBits,
}

impl SetAttr {
    /// Whether anything stored in metadata changes.
    pub fn changes_meta(&self) -> bool {
        self.mode.is_some()
            || self.uid.is_some()
            || self.gid.is_some()
            || self.mtime.is_some()
            || self.atime.is_some()
    }

    /// Applies the changes other than the size to `attr`.
    pub fn apply(&self, attr: &mut Attr) {
        if let Some(mode) = self.mode {
            attr.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = self.uid {
            attr.uid = uid;
        }
        if let Some(gid) = self.gid {
            attr.gid = gid;
        }
        if let Some(mtime) = self.mtime {
            attr.mtime = mtime;
        }
        if let Some(atime) = self.atime {
            attr.atime = atime;
        }
    }
}

/// How attributes missing from metadata are filled in, from mount options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// Owner of nodes without `uid` metadata, and of all nodes if forced.
    pub uid: u32,
    /// Group of nodes without `gid` metadata, and of all nodes if forced.
    pub gid: u32,
    /// Ignore stored uid/gid (the `uid=`/`gid=` options were given).
    pub force_owner: bool,
    /// Permissions of files without `mode` metadata.
    pub file_mode: u16,
    /// Permissions of directories without `mode` metadata.
    pub dir_mode: u16,
    /// Bits removed from every mode.
    pub umask: u16,
}

impl Default for Ownership {
    fn default() -> Self {
        Ownership {
            uid: 0,
            gid: 0,
            force_owner: false,
            file_mode: 0o644,
            dir_mode: 0o755,
            umask: 0o022,
        }
    }
}

impl Ownership {
    /// Attributes of a directory that has no metadata (implicit, or the root).
    pub fn dir(&self, mtime: SystemTime) -> Attr {
        Attr {
            kind: Kind::Dir,
            size: 0,
            mtime,
            atime: mtime,
            rdev: 0,
            perm: self.dir_mode & !self.umask,
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// Attributes of a file known only from a listing (size and time).
    pub fn listed_file(&self, size: u64, mtime: SystemTime) -> Attr {
        Attr {
            kind: Kind::File,
            size,
            mtime,
            atime: mtime,
            rdev: 0,
            perm: self.file_mode & !self.umask,
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// Attributes from HEAD: metadata wins over defaults. `dir_key` says the
    /// key ends with `/`.
    pub fn from_info(&self, info: &ObjectInfo, dir_key: bool) -> Attr {
        let mode = meta_u32(&info.meta, META_MODE);
        let is_dir_type = info.content_type.as_deref() == Some("application/x-directory");
        let kind = match mode.and_then(Kind::from_mode) {
            Some(k) if dir_key => {
                if k == Kind::Dir {
                    k
                } else {
                    Kind::Dir
                }
            }
            Some(k) => k,
            None if dir_key || is_dir_type => Kind::Dir,
            None => Kind::File,
        };
        let default_perm = if kind == Kind::Dir {
            self.dir_mode
        } else {
            self.file_mode
        };
        let perm = mode.map(|m| (m & 0o7777) as u16).unwrap_or(default_perm) & !self.umask;
        let owner = |name: &str, default: u32| {
            if self.force_owner {
                default
            } else {
                meta_u32(&info.meta, name).unwrap_or(default)
            }
        };
        let mtime = stored_mtime(&info.meta).unwrap_or(info.last_modified);
        let is_device = matches!(kind, Kind::CharDevice | Kind::BlockDevice);
        Attr {
            kind,
            size: if kind == Kind::Dir { 0 } else { info.size },
            mtime,
            atime: stored_time(&info.meta, META_ATIME, META_PRECISE_ATIME).unwrap_or(mtime),
            rdev: if is_device {
                meta_u32(&info.meta, META_RDEV).unwrap_or(0)
            } else {
                0
            },
            perm,
            uid: owner(META_UID, self.uid),
            gid: owner(META_GID, self.gid),
        }
    }
}

/// The metadata that stores `attr` (cosfs encoding, plus the precise
/// mtime when it has a fraction).
pub fn to_meta(attr: &Attr) -> UserMeta {
    let mut meta = UserMeta::new();
    let mode = attr.kind.type_bits() | u32::from(attr.perm);
    meta.insert(META_MODE.into(), mode.to_string());
    meta.insert(META_UID.into(), attr.uid.to_string());
    meta.insert(META_GID.into(), attr.gid.to_string());
    put_time(&mut meta, META_MTIME, META_PRECISE_MTIME, attr.mtime);
    if attr.atime != attr.mtime {
        put_time(&mut meta, META_ATIME, META_PRECISE_ATIME, attr.atime);
    }
    if matches!(attr.kind, Kind::CharDevice | Kind::BlockDevice) {
        meta.insert(META_RDEV.into(), attr.rdev.to_string());
    }
    meta
}

/// Stores `t` as whole seconds in `name`, and to the nanosecond in
/// `precise` when it has a fraction.
fn put_time(meta: &mut UserMeta, name: &str, precise: &str, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    meta.insert(name.into(), since.as_secs().to_string());
    if since.subsec_nanos() != 0 {
        let nanos = since.subsec_nanos();
        meta.insert(precise.into(), format!("{}.{nanos:09}", since.as_secs()));
    }
}

fn meta_u32(meta: &UserMeta, name: &str) -> Option<u32> {
    meta.get(name)?.trim().parse().ok()
}

/// The modification time in `meta`: our precise header while it agrees
/// with `x-cos-meta-mtime`, else that (whole seconds; older cosmount
/// versions wrote a fraction there).
pub fn stored_mtime(meta: &UserMeta) -> Option<SystemTime> {
    stored_time(meta, META_MTIME, META_PRECISE_MTIME)
}

/// A time stored by [`put_time`] (or by another tool, in `name` alone).
fn stored_time(meta: &UserMeta, name: &str, precise: &str) -> Option<SystemTime> {
    let coarse = parse_time(meta.get(name)?)?;
    let precise = meta.get(precise).and_then(|v| parse_time(v));
    Some(match precise {
        Some(t) if same_second(t, coarse) => t,
        _ => coarse,
    })
}

fn same_second(a: SystemTime, b: SystemTime) -> bool {
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok();
    secs(a) == secs(b)
}

/// Unix seconds, possibly with a fraction.
fn parse_time(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: u64 = secs.parse().ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        let scale = 10u32.pow(9 - digits.len() as u32);
        digits.parse::<u32>().ok()? * scale
    };
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(meta: &[(&str, &str)], content_type: &str) -> ObjectInfo {
        ObjectInfo {
            size: 42,
            etag: "e".into(),
            last_modified: UNIX_EPOCH + Duration::from_secs(1000),
            crc64: None,
            content_type: Some(content_type.into()),
            headers: Default::default(),
            meta: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            storage_class: Default::default(),
            encryption: Default::default(),
        }
    }

    #[test]
    fn reads_cosfs_metadata() {
        let own = Ownership {
            uid: 1,
            gid: 2,
            umask: 0,
            ..Ownership::default()
        };
        let a = own.from_info(
            &info(
                &[
                    ("mode", "33188"),
                    ("uid", "1000"),
                    ("gid", "1001"),
                    ("mtime", "1600000000"),
                ],
                "text/plain",
            ),
            false,
        );
        assert_eq!(
            (a.kind, a.perm, a.uid, a.gid, a.size),
            (Kind::File, 0o644, 1000, 1001, 42)
        );
        assert_eq!(a.mtime, UNIX_EPOCH + Duration::from_secs(1_600_000_000));
        let l = own.from_info(
            &info(&[("mode", "41471")], "application/octet-stream"),
            false,
        );
        assert_eq!((l.kind, l.perm), (Kind::Symlink, 0o777));
        let d = own.from_info(&info(&[("mode", "16877")], "application/x-directory"), true);
        assert_eq!((d.kind, d.perm, d.size), (Kind::Dir, 0o755, 0));
    }

    #[test]
    fn falls_back_to_mount_options() {
        let own = Ownership {
            uid: 7,
            gid: 8,
            file_mode: 0o640,
            umask: 0o027,
            ..Ownership::default()
        };
        let a = own.from_info(&info(&[], "text/plain"), false);
        assert_eq!((a.kind, a.perm, a.uid, a.gid), (Kind::File, 0o640, 7, 8));
        assert_eq!(a.mtime, UNIX_EPOCH + Duration::from_secs(1000));
        let d = own.from_info(&info(&[], "application/x-directory"), false);
        assert_eq!(d.kind, Kind::Dir);
        let forced = Ownership {
            force_owner: true,
            ..own
        };
        assert_eq!(forced.from_info(&info(&[("uid", "5")], "x"), false).uid, 7);
    }

    #[test]
    fn parses_fractional_mtime_and_round_trips() {
        let m: UserMeta = [("mtime".to_string(), "1600000000.5".to_string())].into();
        assert_eq!(
            stored_mtime(&m),
            Some(UNIX_EPOCH + Duration::new(1_600_000_000, 500_000_000))
        );
        let attr = Attr {
            kind: Kind::Fifo,
            size: 0,
            mtime: UNIX_EPOCH + Duration::from_secs(5),
            atime: UNIX_EPOCH + Duration::from_secs(5),
            rdev: 0,
            perm: 0o600,
            uid: 3,
            gid: 4,
        };
        let own = Ownership {
            umask: 0,
            ..Ownership::default()
        };
        let stored = |a: &Attr| ObjectInfo {
            meta: to_meta(a),
            ..info(&[], "x")
        };
        assert_eq!(
            own.from_info(&stored(&attr), false),
            Attr { size: 42, ..attr }
        );
        let precise = Attr {
            mtime: UNIX_EPOCH + Duration::new(7, 1),
            atime: UNIX_EPOCH + Duration::new(7, 1),
            ..attr
        };
        let meta = to_meta(&precise);
        assert_eq!(meta["mtime"], "7");
        assert_eq!(meta["cosmount-mtime"], "7.000000001");
        assert_eq!(own.from_info(&stored(&precise), false).mtime, precise.mtime);
        assert_eq!(to_meta(&attr)["mtime"], "5");
        assert!(!to_meta(&attr).contains_key("cosmount-mtime"));
        // Another tool set a new mtime: our precise header no longer counts.
        let mut foreign = to_meta(&precise);
        foreign.insert("mtime".into(), "9".into());
        assert_eq!(
            stored_mtime(&foreign),
            Some(UNIX_EPOCH + Duration::from_secs(9))
        );
    }

    #[test]
    fn dropping_set_id_bits_follows_linux() {
        let file = |perm| Attr {
            kind: Kind::File,
            size: 0,
            mtime: UNIX_EPOCH,
            atime: UNIX_EPOCH,
            rdev: 0,
            perm,
            uid: 0,
            gid: 0,
        };
        let after = |mut attr: Attr, bits| (attr.apply_set_id(bits), attr.perm);
        assert_eq!(after(file(0o6777), SetIdBits::Drop), (true, 0o777));
        // Set-group-ID without group execute marks mandatory locking: kept.
        assert_eq!(after(file(0o6767), SetIdBits::Drop), (true, 0o2767));
        assert_eq!(after(file(0o2767), SetIdBits::Drop), (false, 0o2767));
        assert_eq!(after(file(0o6777), SetIdBits::Keep), (false, 0o6777));
        let dir = Attr {
            kind: Kind::Dir,
            ..file(0o2775)
        };
        assert_eq!(after(dir, SetIdBits::Drop), (false, 0o2775));
        assert_eq!(SetIdBits::on_change_by(0), SetIdBits::Keep);
        assert_eq!(SetIdBits::on_change_by(1000), SetIdBits::Drop);
    }
}
