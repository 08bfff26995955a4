//! Extended attributes of files and directories: read from the object's
//! metadata (one HEAD when not known), changed like a mode (through the
//! file's change state, so an open file uploads them with its content).

mod codec;

pub use codec::{Checksum, Namespace, SetMode, Xattrs, namespace};

use std::time::Instant;

use super::attr::Kind;
use super::{Fs, FsError, FsResult, lock};
use crate::cos::{MAX_META_BYTES, ObjectClient, meta_size};

impl<C: ObjectClient> Fs<C> {
    /// Whether extended attributes are served (`noxattr` turns them off).
    pub fn xattrs_enabled(&self) -> bool {
        self.config.xattrs
    }

    /// The value of attribute `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &[u8]) -> FsResult<Vec<u8>> {
        match namespace(name)? {
            Namespace::Unstored => Err(FsError::NotSupported),
            Namespace::Checksum(which) => self.checksum(ino, which).await,
            Namespace::User => self
                .xattrs(ino)
                .await?
                .get(name)
                .map(<[u8]>::to_vec)
                .ok_or(FsError::NoAttribute),
        }
    }

    /// The stored names of `ino`, each followed by a NUL (the read-only
    /// checksum names are not listed, so copies do not carry them).
    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        Ok(self.xattrs(ino).await?.list())
    }

    /// Sets attribute `name` of `ino`.
    pub async fn setxattr(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        mode: SetMode,
    ) -> FsResult<()> {
        match namespace(name)? {
            Namespace::Unstored => Err(FsError::NotSupported),
            Namespace::Checksum(_) => Err(FsError::NotPermitted),
            Namespace::User => self.change_xattrs(ino, |x| x.set(name, value, mode)).await,
        }
    }

    /// Removes attribute `name` of `ino`.
    pub async fn removexattr(&self, ino: u64, name: &[u8]) -> FsResult<()> {
        match namespace(name)? {
            Namespace::Unstored => Err(FsError::NotSupported),
            Namespace::Checksum(_) => Err(FsError::NotPermitted),
            Namespace::User => self.change_xattrs(ino, |x| x.remove(name)).await,
        }
    }

    /// The attributes of `ino`: pending local ones, else those known from
    /// a fresh HEAD, else one HEAD now.
    async fn xattrs(&self, ino: u64) -> FsResult<Xattrs> {
        if let Some(state) = self.writes.get(ino) {
            if let Some(x) = &state.lock().await.xattrs {
                return Ok(x.clone());
            }
        }
        let (key, kind) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            // Directories are read from their marker each time.
            let fresh = node.pending || (node.exact && node.is_fresh(Instant::now()));
            match &node.xattrs {
                Some(x) if fresh && node.attr.kind != Kind::Dir => return Ok(x.clone()),
                _ => {}
            }
            (node.key.clone(), node.attr.kind)
        };
        if kind == Kind::Dir {
            return self.marker_xattrs(&key).await;
        }
        let info = self.client.head(&key).await?;
        self.refresh_node(ino, &info);
        Ok(Xattrs::from_meta(&info.meta))
    }

    /// A directory's attributes, from its marker (none without one).
    async fn marker_xattrs(&self, key: &str) -> FsResult<Xattrs> {
        if key.is_empty() {
            return Ok(Xattrs::default());
        }
        match self.client.head(key).await {
            Ok(info) => Ok(Xattrs::from_meta(&info.meta)),
            Err(e) if e.is_not_found() => Ok(Xattrs::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change` to the attributes of `ino` and stores them: at
    /// once (a metadata self-copy) unless the file is open for writing,
    /// whose last close uploads them with the content.
    async fn change_xattrs(
        &self,
        ino: u64,
        change: impl FnOnce(&mut Xattrs) -> FsResult<()>,
    ) -> FsResult<()> {
        self.check_writable()?;
        let (key, attr, known) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            (node.key.clone(), node.attr, node.etag.clone())
        };
        if attr.kind == Kind::Dir {
            let mut x = self.marker_xattrs(&key).await?;
            change(&mut x)?;
            if let Some(node) = lock(&self.inodes).get_mut(ino) {
                node.own_marker = false;
            }
            return self
                .rewrite_marker(&key, &attr, known.as_deref(), Some(&x))
                .await;
        }
        let state = self.write_state(ino, false).await?;
        let mut st = state.lock().await;
        let before = st.xattrs.clone();
        let mut x = match &before {
            Some(x) => x.clone(),
            None => Xattrs::from_meta(&self.client.head(&key).await?.meta),
        };
        change(&mut x)?;
        st.xattrs = Some(x);
        if meta_size(&st.object_attrs().meta) > MAX_META_BYTES {
            st.xattrs = before;
            return Err(FsError::TooBig);
        }
        st.meta_dirty = true;
        self.mark_pending(ino, st.attr);
        if self.writes.writers(ino) == 0 {
            let result = self.sync(&mut st, ino).await;
            if result.is_err() {
                st.xattrs = before;
            }
            drop(st);
            self.retire(ino, &state);
            result?;
        }
        Ok(())
    }

    /// A read-only checksum of the object in the bucket.
    async fn checksum(&self, ino: u64, which: Checksum) -> FsResult<Vec<u8>> {
        let (key, kind) = {
            let t = lock(&self.inodes);
            let node = t.get(ino).ok_or(FsError::NotFound)?;
            (node.key.clone(), node.attr.kind)
        };
        if kind == Kind::Dir {
            return Err(FsError::NoAttribute);
        }
        let info = self.client.head(&key).await?;
        match which {
            Checksum::Etag => Ok(info.etag.into_bytes()),
            Checksum::Crc64 => info
                .crc64
                .map(|c| c.to_string().into_bytes())
                .ok_or(FsError::NoAttribute),
        }
    }
}
