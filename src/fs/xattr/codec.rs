//! Extended attributes as cosfs stores them: one `x-cos-meta-xattr` header
//! holding the URL encoding (cosfs's `urlEncode`: `A-Z a-z 0-9 / . - _ ~`
//! kept, every other byte `%XX`) of `{"NAME":"BASE64",...}` with names in
//! byte order. Also which names are stored at all: `user.*` is; the
//! read-only `user.cos.*` names show the object's checksums; `security.*`,
//! `trusted.*` and `system.*` are not stored (an object store has no SELinux
//! labels, no root-only namespace and no ACL it could enforce).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};

use crate::cos::UserMeta;
use crate::fs::FsError;

/// Metadata name (after `x-cos-meta-`) of the attribute set.
pub const META_XATTR: &str = "xattr";

/// What cosfs's `urlEncode` leaves as it is, besides letters and digits.
const COSFS_URL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// Read-only name: the object's ETag.
pub const ETAG_NAME: &[u8] = b"user.cos.etag";
/// Read-only name: the object's CRC64-ECMA, as COS reports it.
pub const CRC64_NAME: &[u8] = b"user.cos.crc64ecma";

/// How a name is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// Stored in the object's metadata.
    User,
    /// A read-only checksum of the object: shown, never listed or stored.
    Checksum(Checksum),
    /// Not stored anywhere (`security.*`, `trusted.*`, `system.*`):
    /// unsupported, as on a filesystem without SELinux labels or ACLs.
    Unstored,
}

/// A checksum shown as a read-only attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// `user.cos.etag`.
    Etag,
    /// `user.cos.crc64ecma`.
    Crc64,
}

/// The namespace of `name`. Stored names must survive cosfs's reader,
/// which splits at `,` and `:` and strips `"`: such names are refused.
pub fn namespace(name: &[u8]) -> Result<Namespace, FsError> {
    if name == ETAG_NAME {
        return Ok(Namespace::Checksum(Checksum::Etag));
    }
    if name == CRC64_NAME {
        return Ok(Namespace::Checksum(Checksum::Crc64));
    }
    if !name.starts_with(b"user.") {
        return Ok(Namespace::Unstored);
    }
    if name.len() == b"user.".len() || name.iter().any(|b| b",:\"\0".contains(b)) {
        return Err(FsError::Invalid);
    }
    Ok(Namespace::User)
}

/// How `setxattr` treats an existing attribute (its `flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// Create or replace.
    Any,
    /// `XATTR_CREATE`: fail with EEXIST when it exists.
    Create,
    /// `XATTR_REPLACE`: fail with ENODATA when it does not.
    Replace,
}

impl SetMode {
    /// From the kernel's flags.
    pub fn from_flags(flags: i32) -> SetMode {
        if flags & libc::XATTR_CREATE != 0 {
            SetMode::Create
        } else if flags & libc::XATTR_REPLACE != 0 {
            SetMode::Replace
        } else {
            SetMode::Any
        }
    }
}

/// The stored attributes of one object, by name in byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Xattrs(BTreeMap<Vec<u8>, Vec<u8>>);

impl Xattrs {
    /// The attributes in `meta`, read as cosfs reads them; pairs whose
    /// value is not base64 are skipped.
    pub fn from_meta(meta: &UserMeta) -> Xattrs {
        meta.get(META_XATTR)
            .map(|v| Xattrs::decode(v))
            .unwrap_or_default()
    }

    fn decode(header: &str) -> Xattrs {
        let text: Vec<u8> = percent_decode_str(header).collect();
        let (Some(start), Some(end)) = (
            text.iter().position(|&b| b == b'{'),
            text.iter().rposition(|&b| b == b'}'),
        ) else {
            return Xattrs::default();
        };
        let mut map = BTreeMap::new();
        for pair in text
            .get(start + 1..end)
            .unwrap_or_default()
            .split(|&b| b == b',')
        {
            let Some(colon) = pair.iter().position(|&b| b == b':') else {
                continue;
            };
            let unquote =
                |s: &[u8]| -> Vec<u8> { s.iter().copied().filter(|&b| b != b'"').collect() };
            let name = unquote(&pair[..colon]);
            let Ok(value) = STANDARD.decode(unquote(&pair[colon + 1..])) else {
                continue;
            };
            if !name.is_empty() {
                map.insert(name, value);
            }
        }
        Xattrs(map)
    }

    /// The header value, byte for byte as cosfs writes it; `None` when
    /// there are no attributes (the header is then left out).
    pub fn encode(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut json = vec![b'{'];
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.push(b'"');
            json.extend_from_slice(name);
            json.extend_from_slice(b"\":\"");
            json.extend_from_slice(STANDARD.encode(value).as_bytes());
            json.push(b'"');
        }
        json.push(b'}');
        Some(percent_encode(&json, COSFS_URL).to_string())
    }

    /// Stores the encoding in `meta` (or removes the header when empty).
    pub fn store(&self, meta: &mut UserMeta) {
        match self.encode() {
            Some(v) => meta.insert(META_XATTR.into(), v),
            None => meta.remove(META_XATTR),
        };
    }

    /// The value of `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.0.get(name).map(Vec::as_slice)
    }

    /// Sets `name` as `mode` allows.
    pub fn set(&mut self, name: &[u8], value: &[u8], mode: SetMode) -> Result<(), FsError> {
        match (mode, self.0.contains_key(name)) {
            (SetMode::Create, true) => Err(FsError::Exists),
            (SetMode::Replace, false) => Err(FsError::NoAttribute),
            _ => {
                self.0.insert(name.to_vec(), value.to_vec());
                Ok(())
            }
        }
    }

    /// Removes `name`; ENODATA when it is not there.
    pub fn remove(&mut self, name: &[u8]) -> Result<(), FsError> {
        self.0.remove(name).map(|_| ()).ok_or(FsError::NoAttribute)
    }

    /// The names as `listxattr` returns them: each followed by a NUL.
    pub fn list(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for name in self.0.keys() {
            out.extend_from_slice(name);
            out.push(0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&[u8], &[u8])]) -> Xattrs {
        let mut x = Xattrs::default();
        for (n, v) in pairs {
            x.set(n, v, SetMode::Any).unwrap();
        }
        x
    }

    #[test]
    fn encodes_as_cosfs_does() {
        // The two examples of cos-protocol.md section g.
        assert_eq!(
            set(&[(b"user.k", b"v1")]).encode().unwrap(),
            "%7B%22user.k%22%3A%22djE%3D%22%7D"
        );
        assert_eq!(
            set(&[(b"user.k", b"v1"), (b"user.bin", &[0x00, 0xFF])])
                .encode()
                .unwrap(),
            "%7B%22user.bin%22%3A%22AP8%3D%22%2C%22user.k%22%3A%22djE%3D%22%7D"
        );
        assert_eq!(
            set(&[(b"user.e", b"")]).encode().unwrap(),
            "%7B%22user.e%22%3A%22%22%7D"
        );
        assert_eq!(Xattrs::default().encode(), None);
    }

    #[test]
    fn decodes_what_it_encodes_and_what_cosfs_wrote() {
        let x = set(&[
            (b"user.k", b"v1"),
            (b"user.bin", &[0x00, 0xFF]),
            (b"user.e", b""),
        ]);
        let meta: UserMeta = [(META_XATTR.to_string(), x.encode().unwrap())].into();
        assert_eq!(Xattrs::from_meta(&meta), x);
        let cosfs: UserMeta = [(
            META_XATTR.to_string(),
            "%7B%22user.bin%22%3A%22AP8%3D%22%2C%22user.k%22%3A%22djE%3D%22%7D".to_string(),
        )]
        .into();
        let read = Xattrs::from_meta(&cosfs);
        assert_eq!(read.get(b"user.k"), Some(&b"v1"[..]));
        assert_eq!(read.get(b"user.bin"), Some(&[0x00, 0xFF][..]));
        assert_eq!(Xattrs::from_meta(&UserMeta::new()), Xattrs::default());
        let junk: UserMeta = [(META_XATTR.to_string(), "%7Bnot json".to_string())].into();
        assert_eq!(Xattrs::from_meta(&junk), Xattrs::default());
    }

    #[test]
    fn flags_and_namespaces() {
        let mut x = set(&[(b"user.a", b"1")]);
        assert_eq!(
            x.set(b"user.a", b"2", SetMode::Create),
            Err(FsError::Exists)
        );
        assert_eq!(
            x.set(b"user.b", b"2", SetMode::Replace),
            Err(FsError::NoAttribute)
        );
        x.set(b"user.a", b"3", SetMode::Replace).unwrap();
        assert_eq!(x.get(b"user.a"), Some(&b"3"[..]));
        assert_eq!(x.list(), b"user.a\0");
        assert_eq!(x.remove(b"user.b"), Err(FsError::NoAttribute));
        x.remove(b"user.a").unwrap();
        assert_eq!(namespace(b"user.x"), Ok(Namespace::User));
        assert_eq!(namespace(b"user.a:b"), Err(FsError::Invalid));
        assert_eq!(
            namespace(b"user.cos.etag"),
            Ok(Namespace::Checksum(Checksum::Etag))
        );
        assert_eq!(namespace(b"security.selinux"), Ok(Namespace::Unstored));
        assert_eq!(
            namespace(b"system.posix_acl_access"),
            Ok(Namespace::Unstored)
        );
        assert_eq!(SetMode::from_flags(libc::XATTR_CREATE), SetMode::Create);
    }
}
