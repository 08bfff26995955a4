//! Durable bucket storage under `ROOT/<bucket>/`. Keys never become paths:
//! each object lives in `objects/<hh>/<sha256(key)>` with its key and
//! metadata in the file's trailing record ([`file`]), so no key (`../x`,
//! NUL, 850 bytes, ...) can address anything outside the bucket folder.
//! Writes stream into `tmp/` and are renamed into place while the bucket's
//! index lock is held, so the on-disk state and the in-memory sorted index
//! ([`BTreeMap`], rebuilt at startup) change together and a crash never
//! leaves a partial object. Readers open the file and trust its record, so a
//! concurrent overwrite or delete never mixes two versions.

pub mod file;
pub mod multipart;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use log::warn;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use file::{Digests, Stored, TempFile};
use multipart::UploadState;

use super::listing::{self, ListParams, Listing};

/// Headers stored with an object and sent back on HEAD/GET.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attrs {
    /// Content-Type.
    pub content_type: String,
    /// `x-cos-meta-*` headers: lowercase suffix → value.
    pub meta: BTreeMap<String, String>,
    /// Cache-Control, Content-Disposition, Content-Encoding, Expires
    /// (lowercase name → value), when they were set.
    pub headers: BTreeMap<String, String>,
}

/// Everything known about a stored object except its bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes (MD5 hex, or `<hex>-N` for multipart).
    pub etag: String,
    /// CRC-64/XZ of the bytes.
    pub crc64: u64,
    /// When the object was written.
    pub last_modified: SystemTime,
    /// Stored headers.
    pub attrs: Attrs,
}

/// The record at the end of an object file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// The object key.
    pub key: String,
    /// Its metadata.
    pub meta: ObjectMeta,
}

/// One bucket: its folder, its sorted key index and its multipart uploads.
pub struct Bucket {
    name: String,
    dir: PathBuf,
    sync: bool,
    index: RwLock<BTreeMap<String, Arc<ObjectMeta>>>,
    uploads: Mutex<HashMap<String, UploadState>>,
}

/// All buckets under one root.
pub struct Store {
    buckets: HashMap<String, Arc<Bucket>>,
}

impl Store {
    /// Opens (creating when missing) each named bucket under `root` and
    /// loads its index. `sync` makes every write reach the disk before it is
    /// acknowledged.
    pub fn open(root: &Path, names: &[String], sync: bool) -> io::Result<Store> {
        let mut buckets = HashMap::new();
        for name in names {
            let bucket = Bucket::open(&root.join(name), name, sync)?;
            buckets.insert(name.clone(), Arc::new(bucket));
        }
        Ok(Store { buckets })
    }

    /// The bucket called `name`.
    pub fn bucket(&self, name: &str) -> Option<&Arc<Bucket>> {
        self.buckets.get(name)
    }
}

/// Hex SHA-256 of a key: the object's file name.
fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Bucket {
    /// Opens a bucket folder, creating its layout, clearing leftover temporary
    /// files and loading the index and the uploads in progress.
    pub fn open(dir: &Path, name: &str, sync: bool) -> io::Result<Bucket> {
        for sub in ["objects", "uploads", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        for entry in fs::read_dir(dir.join("tmp"))? {
            let _ = fs::remove_file(entry?.path());
        }
        let bucket = Bucket {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            sync,
            index: RwLock::new(load_index(&dir.join("objects"))?),
            uploads: Mutex::new(multipart::load_uploads(&dir.join("uploads"))?),
        };
        Ok(bucket)
    }

    /// The bucket's name (`name-appid`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.read_index().len()
    }

    /// True when the bucket holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Metadata of `key` from the index (no file I/O).
    pub fn head(&self, key: &str) -> Option<Arc<ObjectMeta>> {
        self.read_index().get(key).cloned()
    }

    /// Opens the object `key`; its record is the truth for that open file
    /// even if the key is overwritten or deleted meanwhile.
    pub fn open_object(&self, key: &str) -> io::Result<Option<Stored<ObjectRecord>>> {
        let stored = file::open::<ObjectRecord>(&self.object_path(key))?;
        Ok(stored.filter(|s| s.record.key == key && s.data_len == s.record.meta.size))
    }

    /// A new temporary file in this bucket's folder.
    pub fn temp(&self) -> io::Result<TempFile> {
        TempFile::create(&self.dir.join("tmp"))
    }

    /// Publishes `temp` as `key`, replacing any previous object.
    pub fn commit(
        &self,
        temp: TempFile,
        key: &str,
        meta: ObjectMeta,
    ) -> io::Result<Arc<ObjectMeta>> {
        let path = self.object_path(key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let record = ObjectRecord {
            key: key.to_string(),
            meta,
        };
        let sealed = temp.seal(&record, self.sync)?;
        let meta = Arc::new(record.meta);
        {
            let mut index = self.write_index();
            sealed.rename_to(&path)?;
            index.insert(key.to_string(), meta.clone());
        }
        self.sync_dir(&path)?;
        Ok(meta)
    }

    /// Deletes `key`; deleting a missing key succeeds.
    pub fn delete(&self, key: &str) -> io::Result<()> {
        let path = self.object_path(key);
        let removed = {
            let mut index = self.write_index();
            let removed = match fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            index.remove(key);
            removed
        };
        if removed {
            self.sync_dir(&path)
        } else {
            Ok(())
        }
    }

    /// One page of a listing.
    pub fn list(&self, params: &ListParams) -> Listing<Arc<ObjectMeta>> {
        listing::list(&self.read_index(), params)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if self.sync => fs::File::open(parent)?.sync_all(),
            _ => Ok(()),
        }
    }

    /// Where the object `key` is stored: a hash, never the key itself.
    fn object_path(&self, key: &str) -> PathBuf {
        let hash = key_hash(key);
        self.dir.join("objects").join(&hash[..2]).join(hash)
    }

    fn read_index(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<ObjectMeta>>> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<ObjectMeta>>> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_uploads(&self) -> MutexGuard<'_, HashMap<String, UploadState>> {
        self.uploads.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads the record of every object file under `objects/`.
fn load_index(objects: &Path) -> io::Result<BTreeMap<String, Arc<ObjectMeta>>> {
    let mut index = BTreeMap::new();
    for shard in fs::read_dir(objects)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in fs::read_dir(shard.path())? {
            let path = entry?.path();
            match load_object(&path) {
                Ok((key, meta)) => {
                    index.insert(key, Arc::new(meta));
                }
                Err(e) => warn!("skipping {}: {e}", path.display()),
            }
        }
    }
    Ok(index)
}

fn load_object(path: &Path) -> io::Result<(String, ObjectMeta)> {
    let stored = file::open::<ObjectRecord>(path)?.ok_or(io::ErrorKind::NotFound)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name != key_hash(&stored.record.key) || stored.data_len != stored.record.meta.size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record does not match the file",
        ));
    }
    Ok((stored.record.key, stored.record.meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size: u64) -> ObjectMeta {
        ObjectMeta {
            size,
            etag: "e".into(),
            crc64: 0,
            last_modified: SystemTime::UNIX_EPOCH,
            attrs: Attrs::default(),
        }
    }

    fn put(bucket: &Bucket, key: &str, data: &[u8]) {
        let mut t = bucket.temp().unwrap();
        t.write_data(data).unwrap();
        bucket.commit(t, key, meta(data.len() as u64)).unwrap();
    }

    /// Every file under `dir`, relative.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn hostile_keys_stay_inside_the_bucket_folder() {
        let root = tempfile::tempdir().unwrap();
        let bucket = Bucket::open(&root.path().join("b-1"), "b-1", false).unwrap();
        let long = "x/".repeat(425);
        let keys = [
            "../x",
            "a/../../b",
            "%2e%2e/x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/",
            "a",
            "\0nul",
            "\n",
            &long,
        ];
        for k in keys {
            put(&bucket, k, k.as_bytes());
        }
        for path in files(root.path()) {
            assert!(
                path.starts_with(root.path().join("b-1/objects")),
                "{path:?}"
            );
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}"
            );
        }
        for k in keys {
            let s = bucket.open_object(k).unwrap().unwrap();
            assert_eq!(
                file::read_range(&s.file, 0, s.data_len).unwrap(),
                k.as_bytes()
            );
        }
        assert_eq!(bucket.len(), keys.len());
    }

    #[test]
    fn index_survives_a_reopen_and_deletes_stick() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("b-1");
        {
            let bucket = Bucket::open(&dir, "b-1", true).unwrap();
            put(&bucket, "keep", b"1");
            put(&bucket, "gone", b"22");
            put(&bucket, "keep", b"333");
            bucket.delete("gone").unwrap();
            bucket.delete("never-existed").unwrap();
            fs::write(dir.join("tmp/stray.tmp"), b"crashed mid-PUT").unwrap();
        }
        let bucket = Bucket::open(&dir, "b-1", false).unwrap();
        assert_eq!(bucket.len(), 1);
        assert_eq!(bucket.head("keep").unwrap().size, 3);
        assert!(bucket.head("gone").is_none());
        assert_eq!(
            fs::read_dir(dir.join("tmp")).unwrap().count(),
            0,
            "temp files are cleared"
        );
    }
}
