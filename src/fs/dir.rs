//! Directory contents from listing pages: which keys become which names,
//! which keys cannot be names, and what happens when a file and a
//! directory share a name (the directory wins; the file is reported).

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::cos::{ListPage, StorageClass};

/// Longest file name Linux accepts.
pub const NAME_MAX: usize = 255;

/// Why a key cannot be shown as a file name.
pub fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it has an empty path segment")
    } else if name == "." || name == ".." {
        Some("its name is . or ..")
    } else if name.len() > NAME_MAX {
        Some("its name is longer than 255 bytes")
    } else if name.contains('\0') {
        Some("its name contains a NUL byte")
    } else if name.contains('/') {
        // Only a listing that did not group by `/` (or a prefix of `//`
        // at the root) gets here; the kernel takes no `/` in a name.
        Some("its name contains a slash")
    } else {
        None
    }
}

/// One name in a directory, as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// A common prefix (or marker): a directory.
    Dir,
    /// An object.
    Object {
        /// Size in bytes.
        size: u64,
        /// ETag.
        etag: String,
        /// LastModified.
        last_modified: SystemTime,
        /// StorageClass.
        storage_class: StorageClass,
    },
}

/// Accumulates the pages of one directory listing.
#[derive(Debug, Default)]
pub struct DirListing {
    /// Entries by name.
    pub entries: BTreeMap<String, Listed>,
    /// Problems to report: (key, reason).
    pub skipped: Vec<(String, String)>,
    /// The directory's own marker object (`prefix` itself) was listed.
    pub has_marker: bool,
}

impl DirListing {
    /// Adds one page listed with `prefix` and delimiter `/`.
    pub fn add_page(&mut self, prefix: &str, page: &ListPage) {
        for common in &page.common_prefixes {
            let Some(name) = common
                .strip_prefix(prefix)
                .and_then(|n| n.strip_suffix('/'))
            else {
                continue;
            };
            if let Some(reason) = invalid_name(name) {
                self.skipped.push((common.clone(), reason.to_string()));
                continue;
            }
            if let Some(Listed::Object { .. }) = self.entries.get(name) {
                self.skipped
                    .push((format!("{prefix}{name}"), shadowed(common)));
            }
            self.entries.insert(name.to_string(), Listed::Dir);
        }
        for object in &page.objects {
            let Some(name) = object.key.strip_prefix(prefix) else {
                continue;
            };
            if name.is_empty() {
                self.has_marker = true;
                continue;
            }
            if let Some(reason) = invalid_name(name) {
                self.skipped.push((object.key.clone(), reason.to_string()));
                continue;
            }
            if self.entries.get(name) == Some(&Listed::Dir) {
                self.skipped
                    .push((object.key.clone(), shadowed(&format!("{}/", object.key))));
                continue;
            }
            self.entries.insert(
                name.to_string(),
                Listed::Object {
                    size: object.size,
                    etag: object.etag.clone(),
                    last_modified: object.last_modified,
                    storage_class: object.storage_class.clone(),
                },
            );
        }
    }
}

fn shadowed(dir: &str) -> String {
    format!("directory {dir:?} has the same name and wins")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::ListEntry;

    fn obj(key: &str) -> ListEntry {
        ListEntry {
            key: key.into(),
            size: 3,
            etag: "e".into(),
            last_modified: SystemTime::UNIX_EPOCH,
            storage_class: StorageClass::Standard,
        }
    }

    #[test]
    fn builds_entries_and_skips_bad_names() {
        let long = "x".repeat(256);
        let page = ListPage {
            objects: vec![
                obj("d/"),
                obj("d/a"),
                obj("d/b"),
                obj(&format!("d/{long}")),
                obj("d/."),
            ],
            common_prefixes: vec!["d/b/".into(), "d/c/".into(), "d//".into()],
            next_marker: None,
            truncated: false,
        };
        let mut l = DirListing::default();
        l.add_page("d/", &page);
        assert!(l.has_marker);
        let names: Vec<&str> = l.entries.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(
            l.entries["b"],
            Listed::Dir,
            "the directory wins over the file"
        );
        assert_eq!(l.skipped.len(), 4, "{:?}", l.skipped);
        assert!(
            l.skipped
                .iter()
                .any(|(k, r)| k == "d/b" && r.contains("wins"))
        );
    }

    #[test]
    fn names_never_contain_a_slash() {
        let page = ListPage {
            objects: vec![obj("x/y"), obj("z")],
            common_prefixes: vec!["//".into(), "a/b/".into()],
            next_marker: None,
            truncated: false,
        };
        let mut l = DirListing::default();
        l.add_page("", &page);
        let names: Vec<&str> = l.entries.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["z"]);
        assert_eq!(l.skipped.len(), 3, "{:?}", l.skipped);
    }

    #[test]
    fn a_later_page_cannot_overturn_a_directory() {
        let mut l = DirListing::default();
        l.add_page(
            "",
            &ListPage {
                objects: vec![obj("a")],
                ..ListPage::default()
            },
        );
        l.add_page(
            "",
            &ListPage {
                common_prefixes: vec!["a/".into()],
                ..ListPage::default()
            },
        );
        assert_eq!(l.entries["a"], Listed::Dir);
    }
}
