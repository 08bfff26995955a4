//! Directory listings: from COS (List pages, plus HEADs in parallel where
//! exact attributes are wanted) or from the inode table while a listing is
//! fresh; readdir and readdirplus both read a snapshot taken at offset 0.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};

use super::attr::Kind;
use super::dir::{DirListing, Listed};
use super::inode::ChildInfo;
use super::{DirEntry, Entry, Fs, FsError, FsResult, lock};
use crate::cos::{ListPage, ListWalker, ObjectClient};

/// An open directory: the snapshot of its entries taken at offset 0.
#[derive(Default)]
pub(super) struct DirHandle {
    entries: Option<Arc<Vec<DirEntry>>>,
}

impl<C: ObjectClient> Fs<C> {
    /// Opens a directory.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        let t = lock(&self.inodes);
        let node = t.get(ino).ok_or(FsError::NotFound)?;
        if node.attr.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        drop(t);
        let fh = self
            .next_handle
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.dirs).insert(fh, Arc::default());
        Ok(fh)
    }

    /// Entries of directory `ino` after `offset` (0 starts a new listing).
    pub async fn readdir(&self, ino: u64, fh: u64, offset: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        let handle = lock(&self.dirs)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle)?;
        let mut handle = handle.lock().await;
        if offset == 0 || handle.entries.is_none() {
            handle.entries = Some(Arc::new(self.list_dir(ino).await?));
        }
        Ok(handle.entries.clone().unwrap_or_default())
    }

    /// Counts a kernel reference taken by readdirplus.
    pub fn remember(&self, ino: u64) {
        lock(&self.inodes).remember(ino);
    }

    /// Closes a directory handle.
    pub fn releasedir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
    }

    /// The full contents of directory `ino`, from the inode table while its
    /// listing is fresh, else from COS.
    async fn list_dir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let (prefix, fresh) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            if node.attr.kind != Kind::Dir {
                return Err(FsError::NotDir);
            }
            (node.key.clone(), node.is_listed(Instant::now()))
        };
        if !fresh && !self.config.no_listing {
            self.fetch_listing(ino, &prefix).await?;
        }
        let t = lock(&self.inodes);
        let node = t.get(ino).ok_or(FsError::NotFound)?;
        let parent = t.get(node.parent).unwrap_or(node);
        let mut entries = vec![
            (
                ".".to_string(),
                Entry {
                    ino,
                    attr: node.attr,
                },
            ),
            (
                "..".to_string(),
                Entry {
                    ino: parent.ino,
                    attr: parent.attr,
                },
            ),
        ];
        for (name, child) in &node.children {
            if let Some(c) = t.get(*child) {
                entries.push((
                    name.clone(),
                    Entry {
                        ino: c.ino,
                        attr: c.attr,
                    },
                ));
            }
        }
        Ok(entries
            .into_iter()
            .enumerate()
            .map(|(i, (name, entry))| DirEntry {
                name,
                entry,
                offset: i as u64 + 1,
            })
            .collect())
    }

    /// Lists `prefix` from COS, HEADs what needs exact attributes, and
    /// installs the result as the directory's children.
    async fn fetch_listing(&self, ino: u64, prefix: &str) -> FsResult<()> {
        let mut listing = DirListing::default();
        let heads = if self.config.fast_list {
            let mut walker = ListWalker::new(prefix, Some("/"));
            while let Some(page) = walker.next_page(&*self.client).await? {
                listing.add_page(prefix, &page);
            }
            HashMap::new()
        } else {
            self.list_and_head(ino, prefix, &mut listing).await?
        };
        for (key, reason) in &listing.skipped {
            self.warn_once(key, reason);
        }
        let until = Instant::now() + self.config.metadata_ttl;
        let mut t = lock(&self.inodes);
        let mut names = Vec::with_capacity(listing.entries.len());
        for (name, listed) in listing.entries {
            let head = match listed {
                Listed::Dir => heads.get(&format!("{prefix}{name}/")),
                Listed::Object { .. } => heads.get(&format!("{prefix}{name}")),
            };
            let info = match (listed, head) {
                (_, Some(Some(info))) => info.clone(),
                (Listed::Dir, _) => self.implicit_dir(),
                (
                    Listed::Object {
                        size,
                        etag,
                        last_modified,
                        storage_class,
                    },
                    _,
                ) => {
                    let known = t
                        .child(ino, &name)
                        .filter(|n| n.knows_version(&etag, last_modified));
                    match known {
                        Some(node) => ChildInfo {
                            attr: node.attr,
                            etag: Some(etag),
                            modified: Some(last_modified),
                            exact: true,
                            xattrs: node.xattrs.clone(),
                            storage_class,
                            kept: node.kept.clone(),
                        },
                        None => ChildInfo {
                            attr: self.config.ownership.listed_file(size, last_modified),
                            etag: Some(etag),
                            modified: Some(last_modified),
                            exact: false,
                            xattrs: None,
                            storage_class,
                            kept: None,
                        },
                    }
                }
            };
            t.upsert_child(ino, &name, info, until);
            names.push(name);
        }
        t.finish_listing(ino, &names, until);
        Ok(())
    }

    /// Lists `prefix` into `listing`, all pages, and HEADs, in parallel and
    /// while later pages are still being listed, every object whose
    /// metadata this mount does not know yet and every subdirectory's
    /// marker. Answers by key; `None` means no such object (an implicit
    /// directory's marker, or a file deleted meanwhile). A name a later page
    /// shows as a directory keeps its file HEAD unused.
    async fn list_and_head(
        &self,
        ino: u64,
        prefix: &str,
        listing: &mut DirListing,
    ) -> FsResult<HashMap<String, Option<ChildInfo>>> {
        let (wanted, asked) = tokio::sync::mpsc::unbounded_channel::<String>();
        let walk = async move {
            let mut walker = ListWalker::new(prefix, Some("/"));
            while let Some(page) = walker.next_page(&*self.client).await? {
                listing.add_page(prefix, &page);
                for key in self.unknown_keys(ino, prefix, &page, listing) {
                    // The receiver lives until this walk ends.
                    let _ = wanted.send(key);
                }
            }
            Ok::<_, FsError>(())
        };
        let keys = stream::unfold(asked, |mut asked| async move {
            asked.recv().await.map(|key| (key, asked))
        });
        let heads = keys
            .map(|key| async move {
                let _slot = self.head_window.admit().await;
                // Boxed: the HEADs waiting for room stay a few bytes each,
                // not a whole request's state.
                let result = Box::pin(self.client.head(&key)).await;
                (key, result)
            })
            // More than the window, so that HEADs wait for room in it: the
            // window measures the server only while it is full.
            .buffer_unordered(2 * self.config.head_concurrency.max(1))
            .map(|(key, result)| {
                let info = match result {
                    Ok(info) if key.ends_with('/') => Some(self.dir_info(&key, &info)),
                    Ok(info) => Some(self.file_info(&info)),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(FsError::from(e)),
                };
                Ok((key, info))
            })
            .collect::<Vec<FsResult<(String, Option<ChildInfo>)>>>();
        let ((), heads) = tokio::try_join!(walk, async { Ok(heads.await) })?;
        heads.into_iter().collect()
    }

    /// The keys of `page` (already added to `listing`) whose answers this
    /// mount needs: markers of directories, and objects of a version it
    /// does not know.
    fn unknown_keys(
        &self,
        ino: u64,
        prefix: &str,
        page: &ListPage,
        listing: &DirListing,
    ) -> Vec<String> {
        let t = lock(&self.inodes);
        let dirs = page.common_prefixes.iter().filter(|p| {
            p.strip_prefix(prefix)
                .and_then(|n| n.strip_suffix('/'))
                .is_some_and(|name| listing.entries.get(name) == Some(&Listed::Dir))
        });
        let files = page.objects.iter().filter_map(|o| {
            let name = o.key.strip_prefix(prefix)?;
            let Some(Listed::Object {
                etag,
                last_modified,
                ..
            }) = listing.entries.get(name)
            else {
                return None;
            };
            let known = t
                .child(ino, name)
                .is_some_and(|n| n.knows_version(etag, *last_modified));
            (!known).then(|| o.key.clone())
        });
        dirs.cloned().chain(files).collect()
    }
}
