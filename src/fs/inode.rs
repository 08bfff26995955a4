//! The inode table: inode number ↔ (parent, name, key, kind, attributes),
//! with the kernel's lookup counts. Inode numbers are never reused, so a
//! generation of 0 is always right. A directory's children are kept in name
//! order and, after a complete listing, say authoritatively which names
//! exist until the listing expires.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use super::attr::{Attr, Kind};
use super::kept::Kept;
use super::xattr::Xattrs;
use crate::cos::{ObjectAttrs, StorageClass};

/// The root directory's inode number.
pub const ROOT_INO: u64 = 1;

/// One node the kernel may know about.
#[derive(Clone, Debug)]
pub struct Node {
    /// Inode number.
    pub ino: u64,
    /// Parent directory (the root is its own parent).
    pub parent: u64,
    /// Name in the parent.
    pub name: String,
    /// Object key (files) or prefix ending in `/` (directories; the root's
    /// prefix is the mount prefix, possibly empty).
    pub key: String,
    /// Current attributes.
    pub attr: Attr,
    /// ETag of the object backing a file, when known.
    pub etag: Option<String>,
    /// Last-Modified of that object: with the ETag, names one version.
    pub modified: Option<SystemTime>,
    /// Attributes came from HEAD (metadata known), not only a listing.
    pub exact: bool,
    /// Extended attributes, when known (from HEAD or this mount's writes).
    pub xattrs: Option<Xattrs>,
    /// The object's storage class, as the last answer named it.
    pub storage_class: StorageClass,
    /// Files: what the object keeps across rewrites, when known (from
    /// HEAD or this mount's writes; a listing does not say).
    pub kept: Option<Kept>,
    /// Attributes are trusted until then.
    pub valid_until: Instant,
    /// The process whose lookup just asked the bucket for these
    /// attributes, and when: its open may take them as its close-to-open
    /// check (once).
    pub looked_up_by: Option<(u32, Instant)>,
    /// Still reachable by name from its parent.
    pub attached: bool,
    /// Has local changes not uploaded yet: its attributes are the truth and
    /// a listing that lacks it does not remove it.
    pub pending: bool,
    /// Directories: children by name.
    pub children: BTreeMap<String, u64>,
    /// Directories: `children` is a complete listing until then.
    pub listed_until: Option<Instant>,
    /// Directories: names known not to exist, until the given time.
    pub missing: HashMap<String, Instant>,
    /// Directories: when a lookup here (or its mkdir) last found a name
    /// free.
    pub last_miss: Option<Instant>,
    /// Directories: when a lookup here last found a known file's
    /// attributes expired, and the file's name.
    pub last_recheck: Option<(Instant, String)>,
    /// Directories: this mount wrote the marker as it is known (all its
    /// metadata is this node's), so a change may write it afresh without
    /// asking what else it holds. Any answer from the bucket clears it.
    pub own_marker: bool,
    /// Files: this mount wrote the whole object (a PUT or an upload, not a
    /// metadata rewrite that keeps others' headers) with the headers this
    /// node holds ([`Node::own_headers`]), and no answer from the bucket
    /// has said otherwise since.
    pub own_object: bool,
    lookups: u64,
}

impl Node {
    /// The key a child named `name` would have (`dir` for directories).
    pub fn child_key(&self, name: &str, kind: Kind) -> String {
        match kind {
            Kind::Dir => format!("{}{name}/", self.key),
            _ => format!("{}{name}", self.key),
        }
    }

    /// Whether a listed object (`etag`, `modified`) is the version whose
    /// exact attributes this node already holds.
    pub fn knows_version(&self, etag: &str, modified: SystemTime) -> bool {
        knows_version(
            self.exact,
            self.etag.as_deref(),
            self.modified,
            etag,
            modified,
        )
    }

    /// What this node knows, as a child's answer.
    pub fn known(&self) -> ChildInfo {
        ChildInfo {
            attr: self.attr,
            etag: self.etag.clone(),
            modified: self.modified,
            exact: self.exact,
            xattrs: self.xattrs.clone(),
            storage_class: self.storage_class.clone(),
            kept: self.kept.clone(),
        }
    }

    /// The headers this mount wrote its object with, within the TTL of
    /// writing it whole ([`own_object`](Self::own_object)).
    pub fn own_headers(&self, now: Instant) -> Option<ObjectAttrs> {
        if !self.own_object || !self.is_fresh(now) {
            return None;
        }
        let kept = self.kept.as_ref()?;
        Some(kept.object_attrs(&self.attr, self.xattrs.as_ref(), &self.storage_class))
    }

    /// Whether the attributes are still trusted at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.valid_until
    }

    /// Whether `children` is a complete, unexpired listing at `now`.
    pub fn is_listed(&self, now: Instant) -> bool {
        self.listed_until.is_some_and(|t| now < t)
    }
}

/// Whether two Last-Modified times are the same to the second (a HEAD's
/// header tells whole seconds, a listing may tell milliseconds): with the
/// ETag, what says two answers describe the same object version.
pub fn same_second(a: Option<SystemTime>, b: Option<SystemTime>) -> bool {
    let seconds = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    };
    a.map(seconds) == b.map(seconds)
}

/// What is known about a child from a listing or a HEAD.
#[derive(Clone, Debug)]
pub struct ChildInfo {
    /// Attributes.
    pub attr: Attr,
    /// ETag (files).
    pub etag: Option<String>,
    /// Last-Modified (files).
    pub modified: Option<SystemTime>,
    /// From HEAD (true) or a listing (false).
    pub exact: bool,
    /// Extended attributes (from HEAD only).
    pub xattrs: Option<Xattrs>,
    /// Storage class (files and markers).
    pub storage_class: StorageClass,
    /// Files: what the object keeps across rewrites (from HEAD or this
    /// mount's writes only).
    pub kept: Option<Kept>,
}

impl ChildInfo {
    /// Whether a listed object (`etag`, `modified`) is the version whose
    /// exact attributes these are.
    pub fn knows_version(&self, etag: &str, modified: SystemTime) -> bool {
        knows_version(
            self.exact,
            self.etag.as_deref(),
            self.modified,
            etag,
            modified,
        )
    }
}

/// Whether exact attributes of version (`known_etag`, `known_modified`)
/// describe the listed version (`etag`, `modified`): a metadata change
/// keeps the ETag but not the time.
fn knows_version(
    exact: bool,
    known_etag: Option<&str>,
    known_modified: Option<SystemTime>,
    etag: &str,
    modified: SystemTime,
) -> bool {
    exact && known_etag == Some(etag) && same_second(known_modified, Some(modified))
}

/// All nodes, by inode number.
#[derive(Debug)]
pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
}

impl InodeTable {
    /// A table holding only the root, whose prefix is `root_key`.
    pub fn new(root_key: &str, root_attr: Attr, now: Instant) -> InodeTable {
        let root = Node {
            ino: ROOT_INO,
            parent: ROOT_INO,
            name: String::new(),
            key: root_key.to_string(),
            attr: root_attr,
            etag: None,
            modified: None,
            exact: true,
            xattrs: None,
            storage_class: StorageClass::MountDefault,
            kept: None,
            valid_until: now,
            looked_up_by: None,
            attached: true,
            pending: false,
            children: BTreeMap::new(),
            listed_until: None,
            missing: HashMap::new(),
            last_miss: None,
            last_recheck: None,
            own_marker: false,
            own_object: false,
            lookups: 1,
        };
        InodeTable {
            nodes: HashMap::from([(ROOT_INO, root)]),
            next_ino: ROOT_INO + 1,
        }
    }

    /// The node `ino`.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The node `ino`, mutably.
    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino)
    }

    /// The child `name` of `parent`, if attached.
    pub fn child(&self, parent: u64, name: &str) -> Option<&Node> {
        let ino = *self.nodes.get(&parent)?.children.get(name)?;
        self.nodes.get(&ino)
    }

    /// Records `info` for `parent/name`, creating the node if needed, and
    /// returns its inode number (`None`: `parent` is not in the table). A
    /// node of another kind under that name is detached and replaced. Exact
    /// attributes are not downgraded by a listing that shows the same ETag.
    pub fn upsert_child(
        &mut self,
        parent: u64,
        name: &str,
        info: ChildInfo,
        valid_until: Instant,
    ) -> Option<u64> {
        let parent_node = self.nodes.get_mut(&parent)?;
        parent_node.missing.remove(name);
        let key = parent_node.child_key(name, info.attr.kind);
        if let Some(&ino) = parent_node.children.get(name) {
            let node = self
                .nodes
                .get_mut(&ino)
                .expect("children point at live nodes");
            if node.attr.kind == info.attr.kind {
                let same_version =
                    node.etag == info.etag && same_second(node.modified, info.modified);
                if info.exact || !node.exact || !same_version {
                    node.attr = info.attr;
                    node.exact = info.exact;
                    node.etag = info.etag;
                    node.modified = info.modified;
                    node.xattrs = info.xattrs;
                    node.kept = info.kept;
                    node.own_marker = false;
                    node.own_object = false;
                }
                // A lifecycle rule changes the class, not the version.
                node.storage_class = info.storage_class;
                node.valid_until = valid_until;
                return Some(ino);
            }
            self.detach(ino);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                ino,
                parent,
                name: name.to_string(),
                key,
                attr: info.attr,
                etag: info.etag,
                modified: info.modified,
                exact: info.exact,
                xattrs: info.xattrs,
                storage_class: info.storage_class,
                kept: info.kept,
                valid_until,
                looked_up_by: None,
                attached: true,
                pending: false,
                children: BTreeMap::new(),
                listed_until: None,
                missing: HashMap::new(),
                last_miss: None,
                last_recheck: None,
                own_marker: false,
                own_object: false,
                lookups: 0,
            },
        );
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name.to_string(), ino);
        }
        Some(ino)
    }

    /// Remembers that `parent/name` does not exist until `until`.
    pub fn mark_missing(&mut self, parent: u64, name: &str, until: Instant) {
        if let Some(&ino) = self.nodes.get(&parent).and_then(|p| p.children.get(name)) {
            self.detach(ino);
        }
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.missing.insert(name.to_string(), until);
        }
    }

    /// Whether the server said `parent/name` does not exist within
    /// `window` before `now` (negative entries last `ttl`).
    pub fn absence_confirmed(
        &self,
        parent: u64,
        name: &str,
        now: Instant,
        ttl: Duration,
        window: Duration,
    ) -> bool {
        self.nodes
            .get(&parent)
            .and_then(|p| p.missing.get(name))
            .is_some_and(|until| *until + window >= now + ttl)
    }

    /// Whether `parent/name` is known not to exist at `now`.
    pub fn is_missing(&self, parent: u64, name: &str, now: Instant) -> bool {
        let Some(p) = self.nodes.get(&parent) else {
            return false;
        };
        p.missing.get(name).is_some_and(|t| now < *t)
            || (p.is_listed(now) && !p.children.contains_key(name))
    }

    /// Installs a complete listing of `parent`: children not in `names` are
    /// detached, and the listing is trusted until `until`.
    pub fn finish_listing(&mut self, parent: u64, names: &[String], until: Instant) {
        let Some(p) = self.nodes.get(&parent) else {
            return;
        };
        let keep: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        let gone: Vec<u64> = p
            .children
            .iter()
            .filter(|(name, _)| !keep.contains(name.as_str()))
            .map(|(_, ino)| *ino)
            .filter(|ino| !self.nodes.get(ino).is_some_and(|n| n.pending))
            .collect();
        for ino in gone {
            self.detach(ino);
        }
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.listed_until = Some(until);
            p.missing.clear();
        }
    }

    /// Moves `ino` to `new_parent/new_name` (replacing whatever was there),
    /// re-keying it and, for a directory, everything below it.
    pub fn rename(&mut self, ino: u64, new_parent: u64, new_name: &str) {
        if let Some(&old) = self
            .nodes
            .get(&new_parent)
            .and_then(|p| p.children.get(new_name))
        {
            if old != ino {
                self.detach(old);
            }
        }
        let Some(node) = self.nodes.get(&ino) else {
            return;
        };
        let (old_parent, old_name, kind) = (node.parent, node.name.clone(), node.attr.kind);
        if let Some(p) = self.nodes.get_mut(&old_parent) {
            if p.children.get(&old_name) == Some(&ino) {
                p.children.remove(&old_name);
            }
        }
        let Some(parent) = self.nodes.get_mut(&new_parent) else {
            return;
        };
        parent.missing.remove(new_name);
        parent.children.insert(new_name.to_string(), ino);
        let key = parent.child_key(new_name, kind);
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.parent = new_parent;
            node.name = new_name.to_string();
            node.attached = true;
        }
        self.rekey(ino, key);
    }

    fn rekey(&mut self, ino: u64, key: String) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        node.key = key;
        let children: Vec<(String, u64)> =
            node.children.iter().map(|(n, i)| (n.clone(), *i)).collect();
        let node = &self.nodes[&ino];
        let keys: Vec<(u64, String)> = children
            .into_iter()
            .filter_map(|(name, child)| {
                Some((
                    child,
                    node.child_key(&name, self.nodes.get(&child)?.attr.kind),
                ))
            })
            .collect();
        for (child, key) in keys {
            self.rekey(child, key);
        }
    }

    /// Whether any node below directory `ino` has local changes.
    pub fn has_pending_below(&self, ino: u64) -> bool {
        self.nodes.get(&ino).is_some_and(|n| {
            n.children.values().any(|c| {
                self.nodes
                    .get(c)
                    .is_some_and(|c| c.pending || self.has_pending_below(c.ino))
            })
        })
    }

    /// Forgets a directory's listing so the next access lists again.
    pub fn invalidate_listing(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.listed_until = None;
        }
    }

    /// Unlinks a node from its parent's children; it lives on while the
    /// kernel still holds lookups on it.
    pub fn detach(&mut self, ino: u64) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        node.attached = false;
        let (parent, name, lookups) = (node.parent, node.name.clone(), node.lookups);
        if let Some(p) = self.nodes.get_mut(&parent) {
            if p.children.get(&name) == Some(&ino) {
                p.children.remove(&name);
            }
        }
        if lookups == 0 && ino != ROOT_INO {
            self.remove(ino);
        }
    }

    /// The kernel learned about `ino` once more (lookup, readdirplus, create).
    pub fn remember(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.lookups += 1;
        }
    }

    /// The kernel dropped `n` references; detached nodes without references go.
    pub fn forget(&mut self, ino: u64, n: u64) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups == 0 && !node.attached && ino != ROOT_INO {
            self.remove(ino);
        }
    }

    fn remove(&mut self, ino: u64) {
        if let Some(node) = self.nodes.remove(&ino) {
            for child in node.children.values() {
                if let Some(c) = self.nodes.get_mut(child) {
                    c.attached = false;
                }
            }
        }
    }

    /// Number of nodes held (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root is held.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::attr::Ownership;
    use std::time::Duration;

    fn file(size: u64, etag: &str, exact: bool) -> ChildInfo {
        ChildInfo {
            attr: Ownership::default().listed_file(size, SystemTime::UNIX_EPOCH),
            etag: Some(etag.into()),
            modified: None,
            exact,
            xattrs: None,
            storage_class: StorageClass::Standard,
            kept: None,
        }
    }

    fn table() -> (InodeTable, Instant) {
        let now = Instant::now();
        (
            InodeTable::new(
                "pre/",
                Ownership::default().dir(SystemTime::UNIX_EPOCH),
                now,
            ),
            now,
        )
    }

    #[test]
    fn upsert_keeps_inode_numbers_and_exact_attributes() {
        let (mut t, now) = table();
        let later = now + Duration::from_secs(1);
        let mut exact = file(5, "e1", true);
        exact.attr.perm = 0o600;
        let a = t.upsert_child(ROOT_INO, "a", exact, later).unwrap();
        assert_eq!(t.get(a).unwrap().key, "pre/a");
        let b = t
            .upsert_child(ROOT_INO, "a", file(5, "e1", false), later)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            t.get(a).unwrap().attr.perm,
            0o600,
            "same ETag keeps HEAD attributes"
        );
        t.upsert_child(ROOT_INO, "a", file(9, "e2", false), later)
            .unwrap();
        assert_eq!(t.get(a).unwrap().attr.size, 9);
        assert!(!t.get(a).unwrap().exact);
    }

    #[test]
    fn upsert_under_an_unknown_parent_is_none() {
        let (mut t, now) = table();
        assert_eq!(t.upsert_child(99, "a", file(1, "e", true), now), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn kind_change_replaces_the_node() {
        let (mut t, now) = table();
        let f = t
            .upsert_child(ROOT_INO, "x", file(1, "e", true), now)
            .unwrap();
        t.remember(f);
        let dir = ChildInfo {
            attr: Ownership::default().dir(SystemTime::UNIX_EPOCH),
            etag: None,
            modified: None,
            exact: false,
            xattrs: None,
            storage_class: StorageClass::Standard,
            kept: None,
        };
        let d = t.upsert_child(ROOT_INO, "x", dir, now).unwrap();
        assert_ne!(f, d);
        assert_eq!(t.get(d).unwrap().key, "pre/x/");
        assert!(
            !t.get(f).unwrap().attached,
            "old node lives while referenced"
        );
        t.forget(f, 1);
        assert!(t.get(f).is_none());
    }

    #[test]
    fn rename_rekeys_a_subtree() {
        let (mut t, now) = table();
        let dir_info = || ChildInfo {
            attr: Ownership::default().dir(SystemTime::UNIX_EPOCH),
            etag: None,
            modified: None,
            exact: true,
            xattrs: None,
            storage_class: StorageClass::Standard,
            kept: None,
        };
        let a = t.upsert_child(ROOT_INO, "a", dir_info(), now).unwrap();
        let b = t.upsert_child(a, "b", dir_info(), now).unwrap();
        let f = t.upsert_child(b, "f", file(1, "e", true), now).unwrap();
        let target = t
            .upsert_child(ROOT_INO, "z", file(1, "e", true), now)
            .unwrap();
        t.rename(a, ROOT_INO, "z");
        assert_eq!(t.get(f).unwrap().key, "pre/z/b/f");
        assert_eq!(t.get(b).unwrap().key, "pre/z/b/");
        assert!(t.get(target).is_none(), "the replaced node is gone");
        assert!(t.child(ROOT_INO, "a").is_none());
        assert_eq!(t.child(ROOT_INO, "z").unwrap().ino, a);
        t.get_mut(f).unwrap().pending = true;
        assert!(t.has_pending_below(a));
        t.finish_listing(b, &[], now + std::time::Duration::from_secs(1));
        assert!(
            t.child(b, "f").is_some(),
            "a listing does not drop pending files"
        );
    }

    #[test]
    fn listings_and_negative_entries() {
        let (mut t, now) = table();
        let until = now + Duration::from_secs(10);
        t.upsert_child(ROOT_INO, "keep", file(1, "e", false), until)
            .unwrap();
        let gone = t
            .upsert_child(ROOT_INO, "gone", file(1, "e", false), until)
            .unwrap();
        t.finish_listing(ROOT_INO, &["keep".to_string()], until);
        assert!(
            t.get(gone).is_none(),
            "unreferenced vanished child is dropped"
        );
        assert!(t.is_missing(ROOT_INO, "gone", now));
        assert!(!t.is_missing(ROOT_INO, "keep", now));
        assert!(!t.is_missing(ROOT_INO, "gone", until), "listing expired");
        t.mark_missing(ROOT_INO, "keep", until);
        assert!(t.child(ROOT_INO, "keep").is_none());
    }
}
