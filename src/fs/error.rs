//! Filesystem errors and the one place that turns them into errno values.

use std::fmt;

use crate::cos::CosError;

/// Why a filesystem operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No such file or directory.
    NotFound,
    /// A path component is not a directory.
    NotDir,
    /// The node is a directory.
    IsDir,
    /// The directory is not empty.
    NotEmpty,
    /// The name already exists.
    Exists,
    /// The mount (or endpoint) is read-only.
    ReadOnly,
    /// A name longer than 255 bytes.
    NameTooLong,
    /// An argument the filesystem cannot accept.
    Invalid,
    /// The object changed while it was open.
    Stale,
    /// The file handle is unknown.
    BadHandle,
    /// Not supported on an object store (e.g. hard links), or by this
    /// server (a server-side copy on a server that is not COS).
    NotSupported,
    /// A rename the server cannot do; the caller may copy instead.
    CrossDevice,
    /// Permission denied.
    AccessDenied,
    /// Operation not permitted.
    NotPermitted,
    /// No such extended attribute.
    NoAttribute,
    /// The object's metadata would exceed COS's 2 KB.
    TooBig,
    /// The staging folder is full.
    NoSpace,
    /// Local disk trouble (staging files).
    LocalIo(String),
    /// COS failed.
    Remote(CosError),
}

impl FsError {
    /// The errno reported to the application.
    pub fn to_errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::Exists => libc::EEXIST,
            FsError::ReadOnly => libc::EROFS,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::Invalid => libc::EINVAL,
            FsError::Stale => libc::ESTALE,
            FsError::BadHandle => libc::EBADF,
            FsError::NotSupported => libc::ENOTSUP,
            FsError::CrossDevice => libc::EXDEV,
            FsError::AccessDenied => libc::EACCES,
            FsError::NotPermitted => libc::EPERM,
            FsError::NoAttribute => libc::ENODATA,
            FsError::TooBig => libc::E2BIG,
            FsError::NoSpace => libc::ENOSPC,
            FsError::LocalIo(_) => libc::EIO,
            FsError::Remote(e) => cos_errno(e),
        }
    }

    /// The COS error code of a failed request (`AccessDenied`, ...), or `""`.
    pub fn cos_code(&self) -> &str {
        match self {
            FsError::Remote(e) => e.code(),
            _ => "",
        }
    }

    /// Whether this is routine traffic (`debug!`) rather than a failure (`warn!`).
    pub fn is_routine(&self) -> bool {
        !matches!(self, FsError::Remote(_) | FsError::LocalIo(_))
            || matches!(self, FsError::Remote(e) if e.is_not_found())
    }
}

fn cos_errno(e: &CosError) -> i32 {
    match e {
        CosError::Service { status, code, .. } => match (*status, code.as_str()) {
            (_, "NoSuchKey") | (404, "") => libc::ENOENT,
            (
                _,
                "AccessDenied" | "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "ExpiredToken",
            ) => libc::EACCES,
            (_, "PreconditionFailed") | (412, _) => libc::ESTALE,
            (_, "KeyTooLong") => libc::ENAMETOOLONG,
            (_, "EntityTooLarge") => libc::EFBIG,
            (_, "MetadataTooLarge") => libc::E2BIG,
            (_, "InvalidRange") | (416, _) => libc::EINVAL,
            (403, _) => libc::EACCES,
            _ => libc::EIO,
        },
        CosError::Transport { timeout: true, .. } => libc::ETIMEDOUT,
        CosError::Transport { .. } | CosError::Integrity(_) | CosError::InvalidResponse(_) => {
            libc::EIO
        }
        CosError::InvalidRequest(_) => libc::EINVAL,
        CosError::Unsupported(_) => libc::ENOTSUP,
    }
}

impl From<CosError> for FsError {
    fn from(e: CosError) -> Self {
        if e.is_not_found() {
            FsError::NotFound
        } else if matches!(e, CosError::Unsupported(_)) {
            // Refused before sending; the client logged why, once.
            FsError::NotSupported
        } else {
            FsError::Remote(e)
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::Remote(e) => write!(f, "{e}"),
            FsError::LocalIo(m) => write!(f, "local I/O error: {m}"),
            other => write!(f, "{}", std::io::Error::from_raw_os_error(other.to_errno())),
        }
    }
}

impl std::error::Error for FsError {}

/// Result of filesystem operations.
pub type FsResult<T> = Result<T, FsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_cos_errors_to_errno() {
        let svc = |s, c: &str| FsError::Remote(CosError::service(s, c, ""));
        assert_eq!(
            FsError::from(CosError::service(404, "NoSuchKey", "")),
            FsError::NotFound
        );
        assert_eq!(svc(403, "AccessDenied").to_errno(), libc::EACCES);
        assert_eq!(svc(412, "PreconditionFailed").to_errno(), libc::ESTALE);
        assert_eq!(svc(500, "InternalError").to_errno(), libc::EIO);
        let timeout = CosError::Transport {
            message: "t".into(),
            timeout: true,
        };
        assert_eq!(FsError::Remote(timeout).to_errno(), libc::ETIMEDOUT);
        assert_eq!(FsError::NotEmpty.to_errno(), libc::ENOTEMPTY);
    }
}
