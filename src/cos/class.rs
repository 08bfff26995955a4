//! Storage classes. COS (and S3) give an object STANDARD unless a write
//! names another class, and a copy is no exception: a metadata rewrite or
//! a rename that does not name the source's class moves the object to
//! STANDARD. So copies name the class the source is in, and new objects
//! the mount's `--storage-class` (cosfs's `storage_class=`).

/// The classes a mount may write new objects in. The archive classes are
/// left out: their objects cannot be read until restored.
pub const WRITABLE: [&str; 6] = [
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "MAZ_STANDARD",
    "MAZ_STANDARD_IA",
    "MAZ_INTELLIGENT_TIERING",
];

/// Classes whose objects must be restored before they can be read.
pub const ARCHIVED: [&str; 3] = ["ARCHIVE", "DEEP_ARCHIVE", "MAZ_ARCHIVE"];

/// An object's storage class, or the one a write asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StorageClass {
    /// Unknown, or written by this mount: the mount's `--storage-class`.
    #[default]
    MountDefault,
    /// STANDARD: what a server gives an object when a write names none.
    Standard,
    /// Another class, as the server names it (upper case).
    Named(String),
}

impl StorageClass {
    /// The class a header or listing names (`None`, empty: STANDARD).
    pub fn from_server(name: Option<&str>) -> StorageClass {
        match name.map(str::trim) {
            None | Some("") => StorageClass::Standard,
            Some(n) if n.eq_ignore_ascii_case("STANDARD") => StorageClass::Standard,
            Some(n) => StorageClass::Named(n.to_ascii_uppercase()),
        }
    }

    /// A class for `--storage-class` (any case): one of [`WRITABLE`].
    pub fn parse_writable(name: &str) -> Result<StorageClass, String> {
        let upper = name.trim().to_ascii_uppercase();
        if ARCHIVED.contains(&upper.as_str()) {
            return Err(format!(
                "storage class {name:?} cannot be written through a mount: its objects cannot be read \
                 until restored; move objects there with a lifecycle rule instead"
            ));
        }
        if !WRITABLE.contains(&upper.as_str()) {
            return Err(format!(
                "unknown storage class {name:?}: use one of {}",
                WRITABLE.join(", ").to_ascii_lowercase()
            ));
        }
        Ok(StorageClass::from_server(Some(&upper)))
    }

    /// The class to name in a request, with `mount` standing for
    /// [`MountDefault`](Self::MountDefault): `None` sends no header (STANDARD).
    pub fn to_send<'a>(&'a self, mount: &'a StorageClass) -> Option<&'a str> {
        let class = match self {
            StorageClass::MountDefault => mount,
            own => own,
        };
        match class {
            StorageClass::Named(n) => Some(n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_read_and_named_as_cos_does() {
        assert_eq!(StorageClass::from_server(None), StorageClass::Standard);
        assert_eq!(
            StorageClass::from_server(Some("standard_ia")),
            StorageClass::Named("STANDARD_IA".into())
        );
        let ia = StorageClass::parse_writable("standard_ia").unwrap();
        assert_eq!(StorageClass::MountDefault.to_send(&ia), Some("STANDARD_IA"));
        assert_eq!(StorageClass::Standard.to_send(&ia), None);
        assert_eq!(
            StorageClass::MountDefault.to_send(&StorageClass::MountDefault),
            None
        );
        assert!(StorageClass::parse_writable("archive").is_err());
        assert!(StorageClass::parse_writable("cold").is_err());
    }
}
