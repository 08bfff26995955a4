//! What a file's object keeps across the mount's writes besides its bytes,
//! metadata and storage class: its Content-Type, Cache-Control and the
//! other standard headers, and its encryption. A PUT of new content drops
//! whatever it does not name again, so a website's `index.html` edited
//! through the mount would turn into an `application/octet-stream`
//! download without its cache rules. Only a HEAD (or GET) tells them;
//! listings do not.

use super::attr::{Attr, to_meta};
use super::xattr::Xattrs;
use crate::cos::{Encryption, ObjectAttrs, ObjectHeaders, ObjectInfo, StorageClass};

/// The type of content nothing is known about: what new files whose name
/// says no type get (named, as cosfs and s3fs do: some servers, SeaweedFS
/// among them, guess a type from the first bytes when none is named).
const UNKNOWN_TYPE: &str = "application/octet-stream";

/// How a file's object is stored, which rewrites of its content name again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// Content-Type (`None`: the server's default).
    pub content_type: Option<String>,
    /// Cache-Control and the other standard headers.
    pub headers: ObjectHeaders,
    /// Server-side encryption.
    pub encryption: Encryption,
}

impl Kept {
    /// The headers a whole write of a file with these settings, attributes
    /// `attr`, extended attributes `xattrs` (when known) and storage class
    /// `class` names: what this mount writes every file with.
    pub fn object_attrs(
        &self,
        attr: &Attr,
        xattrs: Option<&Xattrs>,
        class: &StorageClass,
    ) -> ObjectAttrs {
        let mut meta = to_meta(attr);
        if let Some(x) = xattrs {
            x.store(&mut meta);
        }
        ObjectAttrs {
            content_type: self.content_type.clone(),
            headers: self.headers.clone(),
            meta,
            storage_class: class.clone(),
            encryption: self.encryption.clone(),
        }
    }

    /// As the object's HEAD or GET describes it.
    pub fn of(info: &ObjectInfo) -> Kept {
        Kept {
            content_type: info.content_type.clone(),
            headers: info.headers.clone(),
            encryption: info.encryption.clone(),
        }
    }

    /// What a new file named `name` gets: the type its extension names
    /// (else [`UNKNOWN_TYPE`]), and the mount's encryption.
    pub fn for_new_file(name: &str) -> Kept {
        Kept {
            content_type: Some(type_of_name(name).unwrap_or(UNKNOWN_TYPE).into()),
            headers: ObjectHeaders::new(),
            encryption: Encryption::MountDefault,
        }
    }
}

/// The Content-Type a file name's extension says, as cosfs and s3fs give
/// new and renamed files.
pub fn type_of_name(name: &str) -> Option<&'static str> {
    mime_guess::from_path(name).first_raw()
}

/// Whether a Content-Type tells nothing of the content: absent, or what
/// servers give an object written without one. A file written under a
/// temporary name (`sed -i`, rsync, editors that save by rename) has such
/// a type, and takes the one its final name says.
pub fn says_nothing(content_type: Option<&str>) -> bool {
    matches!(
        content_type,
        None | Some("" | UNKNOWN_TYPE | "binary/octet-stream")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_are_typed_by_their_extension() {
        let typed = |name| Kept::for_new_file(name).content_type.unwrap();
        assert_eq!(typed("index.html"), "text/html");
        assert_eq!(typed("photo.JPG"), "image/jpeg");
        assert_eq!(typed("Makefile"), UNKNOWN_TYPE);
        assert_eq!(typed("data.unknown-ext"), UNKNOWN_TYPE);
        assert!(says_nothing(Some("application/octet-stream")));
        assert!(!says_nothing(Some("text/html; charset=utf-8")));
    }
}
