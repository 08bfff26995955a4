//! Lookups: what a name in a directory is (a directory, which wins, a file,
//! or nothing), answered from the inode table while it is trusted, else by
//! asking the bucket as cheaply as what is already known allows:
//! - a name never seen: a HEAD of `name` beside a one-key listing of
//!   `name/` (then a HEAD of the marker for its mode);
//! - in a directory being filled (a name was just found free there): a
//!   recent snapshot of the whole directory (`snapshot.rs`), one listing
//!   for many names; in a directory too large for one page, one listing
//!   of `name` as a prefix, which answers "free" alone;
//! - a directory seen before: one listing of `name/`, whose first entry
//!   says whether the marker is still the version whose attributes are
//!   known (a chmod elsewhere rewrites it, and so changes its time);
//! - a file seen before: a HEAD (the full question only when it is gone);
//!   in a directory where other such lookups came just before (`find -exec
//!   cat`, `cp -r` of a tree listed more than a TTL ago), a recent snapshot
//!   of the whole directory, which shows whether it is still the version
//!   whose attributes are known.

use std::time::{Duration, Instant};

use log::debug;

use super::attr::Kind;
use super::dir::{self, invalid_name};
use super::inode::ChildInfo;
use super::kept::Kept;
use super::snapshot::Held;
use super::{Entry, Fs, FsError, FsResult};
use crate::cos::{CosResult, ListPage, ListRequest, ObjectClient, ObjectInfo, StorageClass};
use crate::sync::lock;

/// A directory where a lookup found a name free this recently is being
/// filled (tar, cp -r): its lookups ask with one listing first.
const FILLING: Duration = Duration::from_secs(2);

/// Keys in the listing of one name as a prefix: names that sort between
/// `name` and `name/` (`name.txt`, `name-2`) fit before it gives up.
const NAME_LISTING_KEYS: u32 = 64;

/// What the bucket is asked about a name.
enum Question {
    /// Everything: file, directory or nothing.
    Full,
    /// Free, most likely (the directory is being filled).
    Free,
    /// Still the directory whose attributes (and marker version) these are.
    StillDir(ChildInfo),
    /// Still a file: asked with a HEAD, as `getattr` asks.
    StillFile,
    /// Still the file whose attributes (and version) these are, asked of a
    /// snapshot of the directory.
    StillListed(ChildInfo),
}

impl<C: ObjectClient> Fs<C> {
    /// Finds `name` in directory `parent` and counts one kernel reference.
    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Entry> {
        self.lookup_for(parent, name, None).await
    }

    /// [`Fs::lookup`] for process `caller`, when known: a file whose
    /// attributes it fetches is remembered as just checked for that
    /// process's open.
    pub async fn lookup_for(
        &self,
        parent: u64,
        name: &str,
        caller: Option<u32>,
    ) -> FsResult<Entry> {
        if let Some(reason) = invalid_name(name) {
            debug!("lookup of {name:?}: {reason}");
            return Err(if name.len() > dir::NAME_MAX {
                FsError::NameTooLong
            } else {
                FsError::NotFound
            });
        }
        let now = Instant::now();
        let (parent_key, question) = {
            let mut t = lock(&self.inodes);
            let p = t.get(parent).ok_or(FsError::NotFound)?;
            if p.attr.kind != Kind::Dir {
                return Err(FsError::NotDir);
            }
            let parent_key = p.key.clone();
            let recent = |at: Instant| now.duration_since(at) < FILLING;
            let filling = p.last_miss.is_some_and(recent);
            // Another file's recheck just came: more are coming (a file
            // polled alone keeps its HEAD).
            let rechecking = p
                .last_recheck
                .as_ref()
                .is_some_and(|(at, other)| recent(*at) && other != name);
            let mut question = if filling {
                Question::Free
            } else {
                Question::Full
            };
            if let Some(child) = t.child(parent, name) {
                if child.pending || (child.is_fresh(now) && (child.exact || self.config.fast_list))
                {
                    let entry = Entry {
                        ino: child.ino,
                        attr: child.attr,
                    };
                    t.remember(entry.ino);
                    return Ok(entry);
                }
                if child.attr.kind == Kind::Dir && child.exact {
                    question = Question::StillDir(child.known());
                } else if child.exact && child.etag.is_some() {
                    if rechecking {
                        question = Question::StillListed(child.known());
                    } else if !filling {
                        question = Question::StillFile;
                    }
                    if let Some(p) = t.get_mut(parent) {
                        p.last_recheck = Some((now, name.to_string()));
                    }
                }
            } else if t.is_missing(parent, name, now) {
                return Err(FsError::NotFound);
            }
            (parent_key, question)
        };
        // When the bucket's answer describes it (a snapshot may be older).
        let mut seen = Instant::now();
        let found = match question {
            _ if self.config.no_listing => {
                self.resolve_by_head(&format!("{parent_key}{name}")).await?
            }
            Question::Full => self.resolve(&parent_key, name).await?,
            Question::Free => {
                let (found, at) = self.resolve_filling(parent, &parent_key, name).await?;
                seen = at;
                found
            }
            Question::StillDir(known) => self.revalidate_dir(&parent_key, name, known).await?,
            Question::StillFile => self.recheck_file_by_head(&parent_key, name).await?,
            Question::StillListed(known) => {
                let (found, at) = self.recheck_file(parent, &parent_key, name, known).await?;
                seen = at;
                found
            }
        };
        let mut t = lock(&self.inodes);
        match found {
            None => {
                t.mark_missing(parent, name, seen + self.config.negative_ttl);
                if let Some(p) = t.get_mut(parent) {
                    p.last_miss = Some(Instant::now());
                }
                Err(FsError::NotFound)
            }
            Some(info) => {
                let attr = info.attr;
                let ino = t
                    .upsert_child(parent, name, info, seen + self.config.metadata_ttl)
                    .ok_or(FsError::NotFound)?;
                t.remember(ino);
                if let (Some(pid), Some(node)) = (caller, t.get_mut(ino)) {
                    if node.exact && node.attr.kind != Kind::Dir && node.etag.is_some() {
                        // The open checks how recent the answer is.
                        node.looked_up_by = Some((pid, seen));
                    }
                }
                Ok(Entry { ino, attr })
            }
        }
    }

    /// Asks COS what `parent_key + name` is: a directory (marker or prefix,
    /// which wins), a file, or nothing.
    async fn resolve(&self, parent_key: &str, name: &str) -> FsResult<Option<ChildInfo>> {
        let key = format!("{parent_key}{name}");
        let prefix = format!("{key}/");
        let list_req = one_key(&prefix);
        let (file, listed) = tokio::join!(self.client.head(&key), self.client.list_page(&list_req));
        match self.dir_from_listing(&prefix, &listed?, None).await? {
            Some(dir) => {
                if file.is_ok() {
                    self.warn_once(
                        &key,
                        &format!("directory {prefix:?} has the same name and wins"),
                    );
                }
                Ok(Some(dir))
            }
            None => self.file_answer(file),
        }
    }

    /// [`resolve`](Self::resolve) in a directory being filled, and when
    /// the answer was seen: a snapshot of the whole directory sent within
    /// the negative TTL (one listing answers for many new names); a
    /// directory too large for one page asks about the name alone.
    async fn resolve_filling(
        &self,
        parent: u64,
        parent_key: &str,
        name: &str,
    ) -> FsResult<(Option<ChildInfo>, Instant)> {
        let now = Instant::now();
        let since = now.checked_sub(self.config.negative_ttl).unwrap_or(now);
        let Some(seen) = self.dir_snapshot(parent, parent_key, since, name).await? else {
            return Ok((self.resolve_by_listing(parent_key, name).await?, now));
        };
        let found = match seen.held {
            Held::Free => return Ok((None, seen.snapshot.taken)),
            Held::File => {
                self.file_answer(self.client.head(&format!("{parent_key}{name}")).await)?
            }
            Held::Dir | Held::Unknown | Held::Made => self.resolve(parent_key, name).await?,
        };
        Ok((found, Instant::now()))
    }

    /// [`resolve`](Self::resolve) for a name last seen as the file `known`,
    /// and when the answer was seen: a snapshot of the directory sent
    /// within the negative TTL (one listing for the lookups that follow)
    /// that shows the same version keeps the known attributes; another
    /// version costs a HEAD, and anything else the full question. A
    /// directory too large for a snapshot asks with a HEAD.
    async fn recheck_file(
        &self,
        parent: u64,
        parent_key: &str,
        name: &str,
        known: ChildInfo,
    ) -> FsResult<(Option<ChildInfo>, Instant)> {
        let now = Instant::now();
        let since = now.checked_sub(self.config.negative_ttl).unwrap_or(now);
        let Some(seen) = self.dir_snapshot(parent, parent_key, since, name).await? else {
            return Ok((self.recheck_file_by_head(parent_key, name).await?, now));
        };
        let asked = Instant::now();
        let found = match seen.held {
            Held::Free => return Ok((None, seen.snapshot.taken)),
            Held::File => match seen.snapshot.version(name) {
                Some((etag, modified)) if known.knows_version(etag, modified) => {
                    return Ok((Some(known), seen.snapshot.taken));
                }
                _ => self.file_answer(self.client.head(&format!("{parent_key}{name}")).await)?,
            },
            Held::Dir | Held::Unknown | Held::Made => self.resolve(parent_key, name).await?,
        };
        Ok((found, asked))
    }

    /// [`resolve`](Self::resolve) for a name last seen as a file: a HEAD;
    /// only a file gone since takes the full question (a directory may
    /// have the name now).
    async fn recheck_file_by_head(
        &self,
        parent_key: &str,
        name: &str,
    ) -> FsResult<Option<ChildInfo>> {
        match self.client.head(&format!("{parent_key}{name}")).await {
            Ok(info) => Ok(Some(self.file_info(&info))),
            Err(e) if e.is_not_found() => self.resolve(parent_key, name).await,
            Err(e) => Err(e.into()),
        }
    }

    /// [`resolve`](Self::resolve) in a directory being filled: one listing
    /// of the name as a prefix tells a free name (the common case there)
    /// with one request; a file then gets its HEAD, and a directory, or a
    /// listing that stopped before `name/` could sort, the full question.
    async fn resolve_by_listing(
        &self,
        parent_key: &str,
        name: &str,
    ) -> FsResult<Option<ChildInfo>> {
        let key = format!("{parent_key}{name}");
        let listed = self
            .client
            .list_page(&ListRequest {
                prefix: key.clone(),
                delimiter: Some("/".into()),
                marker: String::new(),
                max_keys: NAME_LISTING_KEYS,
            })
            .await?;
        let dir = format!("{key}/");
        if listed.truncated || listed.common_prefixes.contains(&dir) {
            return self.resolve(parent_key, name).await;
        }
        if !listed.objects.iter().any(|o| o.key == key) {
            return Ok(None);
        }
        self.file_answer(self.client.head(&key).await)
    }

    /// [`resolve`](Self::resolve) for a name last seen as the directory
    /// `known`: one listing of `name/` says it still is one (a file of the
    /// same name would lose to it anyway); only a marker of another
    /// version costs its HEAD, and a directory gone the full question.
    async fn revalidate_dir(
        &self,
        parent_key: &str,
        name: &str,
        known: ChildInfo,
    ) -> FsResult<Option<ChildInfo>> {
        let prefix = format!("{parent_key}{name}/");
        let listed = self.client.list_page(&one_key(&prefix)).await?;
        match self.dir_from_listing(&prefix, &listed, Some(known)).await? {
            Some(dir) => Ok(Some(dir)),
            None => self.resolve(parent_key, name).await,
        }
    }

    /// The directory `prefix` as a one-key listing of it shows it: none
    /// (nothing under the prefix), or one whose attributes come from its
    /// marker: those of `known` when the marker is still that version,
    /// else a HEAD's (the defaults without a marker, or with `fast_list`).
    async fn dir_from_listing(
        &self,
        prefix: &str,
        listed: &ListPage,
        known: Option<ChildInfo>,
    ) -> FsResult<Option<ChildInfo>> {
        if listed.objects.is_empty() && listed.common_prefixes.is_empty() {
            return Ok(None);
        }
        // The marker sorts first under its prefix.
        let marker = listed.objects.first().filter(|o| o.key == prefix);
        let info = match marker {
            None => self.implicit_dir(),
            Some(_) if self.config.fast_list => self.implicit_dir(),
            Some(m) => match known.filter(|k| k.knows_version(&m.etag, m.last_modified)) {
                Some(unchanged) => unchanged,
                None => match self.client.head(prefix).await {
                    Ok(info) => self.dir_info(prefix, &info),
                    Err(e) if e.is_not_found() => self.implicit_dir(),
                    Err(e) => return Err(e.into()),
                },
            },
        };
        Ok(Some(info))
    }

    /// What a HEAD of a file's key says: the file, or nothing (404).
    pub(super) fn file_answer(&self, head: CosResult<ObjectInfo>) -> FsResult<Option<ChildInfo>> {
        match head {
            Ok(info) => Ok(Some(self.file_info(&info))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// [`resolve`](Self::resolve) without listing: HEAD the key and its
    /// marker `key/` at once; the marker (a directory) wins, as in listings.
    /// Directories without a marker cannot be found this way.
    async fn resolve_by_head(&self, key: &str) -> FsResult<Option<ChildInfo>> {
        let marker_key = format!("{key}/");
        let (file, marker) = tokio::join!(self.client.head(key), self.client.head(&marker_key));
        match marker {
            Ok(info) => return Ok(Some(self.dir_info(&marker_key, &info))),
            Err(e) if !e.is_not_found() => return Err(e.into()),
            Err(_) => {}
        }
        self.file_answer(file)
    }

    /// A file as its HEAD describes it.
    pub(super) fn file_info(&self, info: &ObjectInfo) -> ChildInfo {
        ChildInfo {
            attr: self.config.ownership.from_info(info, false),
            etag: Some(info.etag.clone()),
            modified: Some(info.last_modified),
            exact: true,
            xattrs: Some(super::xattr::Xattrs::from_meta(&info.meta)),
            storage_class: info.storage_class.clone(),
            kept: Some(Kept::of(info)),
        }
    }

    /// A directory as the HEAD of its marker `key` describes it; the
    /// marker's version is kept to tell later whether it changed.
    pub(super) fn dir_info(&self, key: &str, marker: &ObjectInfo) -> ChildInfo {
        self.marker_meta.read_back(key, &marker.meta);
        ChildInfo {
            attr: self.config.ownership.from_info(marker, true),
            etag: Some(marker.etag.clone()),
            modified: Some(marker.last_modified),
            exact: true,
            xattrs: None,
            storage_class: marker.storage_class.clone(),
            kept: None,
        }
    }

    /// A directory without a marker (or whose marker is not looked at).
    pub(super) fn implicit_dir(&self) -> ChildInfo {
        ChildInfo {
            attr: self.config.ownership.dir(self.started),
            etag: None,
            modified: None,
            exact: true,
            xattrs: None,
            storage_class: StorageClass::MountDefault,
            kept: None,
        }
    }
}

/// A listing of at most one key under `prefix`, grouped by `/`.
fn one_key(prefix: &str) -> ListRequest {
    ListRequest {
        prefix: prefix.to_string(),
        delimiter: Some("/".into()),
        marker: String::new(),
        max_keys: 1,
    }
}
