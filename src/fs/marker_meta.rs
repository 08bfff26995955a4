//! Whether the server keeps the metadata written on folder markers. Some
//! S3 servers (SeaweedFS) store a `dir/` object as a bare folder and drop
//! its headers: folder modes, owners and times then fall back to the
//! defaults once the attribute TTL has passed. Nothing is asked to find
//! out: the last markers this mount wrote are remembered until one of them
//! is read back, and one that comes back without the metadata written on
//! it is said once, as a warning.

use std::collections::VecDeque;
use std::sync::Mutex;

use log::warn;

use super::attr::META_MODE;
use crate::cos::UserMeta;
use crate::sync::lock;

/// Markers remembered while no verdict is in.
const WATCHED: usize = 16;

/// The verdict on the server's folder markers, from the first one read back.
#[derive(Debug)]
pub(super) struct MarkerMetaWatch {
    /// The last markers written with metadata; `None` once decided.
    written: Mutex<Option<VecDeque<String>>>,
}

impl MarkerMetaWatch {
    /// Nothing known yet.
    pub(super) fn new() -> MarkerMetaWatch {
        MarkerMetaWatch {
            written: Mutex::new(Some(VecDeque::new())),
        }
    }

    /// This mount wrote the marker `key` with its folder's metadata.
    pub(super) fn wrote(&self, key: &str) {
        let mut written = lock(&self.written);
        if let Some(keys) = written.as_mut() {
            keys.retain(|k| k != key);
            if keys.len() == WATCHED {
                keys.pop_front();
            }
            keys.push_back(key.to_string());
        }
    }

    /// The marker `key` was read back with `meta`: if this mount wrote it,
    /// that decides, and a marker without its mode is said once.
    pub(super) fn read_back(&self, key: &str, meta: &UserMeta) {
        let mut written = lock(&self.written);
        if !written
            .as_ref()
            .is_some_and(|keys| keys.iter().any(|k| k == key))
        {
            return;
        }
        *written = None;
        if !meta.contains_key(META_MODE) {
            warn!(
                "the folder marker {key:?} came back without the mode, owner and times this mount wrote on it: \
                 the server keeps no metadata on `dir/` objects (SeaweedFS does this), or another client \
                 rewrote the marker. Folder modes, owners and times show the defaults (--dir-mode, --uid, \
                 --gid, the marker's time) once --metadata-ttl has passed; files keep theirs"
            );
        }
    }

    /// Whether a marker read back has decided.
    #[cfg(test)]
    pub(super) fn decided(&self) -> bool {
        lock(&self.written).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> UserMeta {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_marker_this_mount_wrote_decides() {
        let watch = MarkerMetaWatch::new();
        watch.read_back("other/", &meta(&[]));
        assert!(!watch.decided(), "a marker others wrote says nothing");
        watch.wrote("a/");
        watch.wrote("b/");
        watch.read_back("a/", &meta(&[("mode", "16877")]));
        assert!(watch.decided());
        watch.wrote("c/");
        watch.read_back("c/", &meta(&[]));
        assert!(watch.decided());
    }

    #[test]
    fn the_oldest_markers_are_forgotten() {
        let watch = MarkerMetaWatch::new();
        for i in 0..=WATCHED {
            watch.wrote(&format!("d{i}/"));
        }
        watch.read_back("d0/", &meta(&[]));
        assert!(!watch.decided());
        watch.read_back(&format!("d{WATCHED}/"), &meta(&[]));
        assert!(watch.decided());
    }
}
