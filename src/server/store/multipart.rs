//! Multipart uploads of a bucket: one folder per upload under `uploads/`
//! holding `upload` (key, headers, start time) and one `part-NNNNN` file per
//! part (data plus its record, same format as objects). Upload ids are
//! random hex made here; a request's id is only ever looked up in the map,
//! never joined to a path. A completing upload refuses new parts and aborts
//! until it is done (or has failed and is reopened).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use log::warn;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::file::{self, Digests, TempFile};
use super::{Attrs, Bucket, ObjectMeta};
use crate::cos::crc64;

/// What an upload was initiated with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadRecord {
    /// The key the upload will create.
    pub key: String,
    /// Its id.
    pub upload_id: String,
    /// Headers of the future object.
    pub attrs: Attrs,
    /// When it was initiated.
    pub initiated: SystemTime,
}

/// One uploaded part.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartRecord {
    /// 1-based part number.
    pub part_number: u32,
    /// Size in bytes.
    pub size: u64,
    /// MD5 hex of the part, without quotes.
    pub etag: String,
    /// CRC-64/XZ of the part.
    pub crc64: u64,
    /// When it was uploaded.
    pub last_modified: SystemTime,
}

/// Why an upload operation could not run.
#[derive(Debug)]
pub enum UploadError {
    /// No upload with this id for this key.
    NoSuchUpload,
    /// The upload is being completed right now.
    Completing,
    /// The disk failed.
    Io(io::Error),
}

impl From<io::Error> for UploadError {
    fn from(e: io::Error) -> Self {
        UploadError::Io(e)
    }
}

/// In-memory state of one upload.
pub(super) struct UploadState {
    record: UploadRecord,
    parts: BTreeMap<u32, PartRecord>,
    completing: bool,
}

/// Loads every upload folder under `uploads/`.
pub(super) fn load_uploads(dir: &Path) -> io::Result<HashMap<String, UploadState>> {
    let mut uploads = HashMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        match load_upload(&path) {
            Ok(state) => {
                uploads.insert(state.record.upload_id.clone(), state);
            }
            Err(e) => warn!("skipping upload folder {}: {e}", path.display()),
        }
    }
    Ok(uploads)
}

fn load_upload(dir: &Path) -> io::Result<UploadState> {
    let stored = file::open::<UploadRecord>(&dir.join("upload"))?.ok_or(io::ErrorKind::NotFound)?;
    if dir.file_name().and_then(|n| n.to_str()) != Some(stored.record.upload_id.as_str()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "upload id does not match its folder",
        ));
    }
    let mut parts = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("part-"))
        {
            let part = file::open::<PartRecord>(&path)?.ok_or(io::ErrorKind::NotFound)?;
            parts.insert(part.record.part_number, part.record);
        }
    }
    Ok(UploadState {
        record: stored.record,
        parts,
        completing: false,
    })
}

/// The multipart ETag: MD5 of the parts' binary MD5s, then `-N`.
pub fn multipart_etag(parts: &[PartRecord]) -> String {
    let mut md5 = Md5::new();
    for p in parts {
        md5.update(hex::decode(&p.etag).unwrap_or_default());
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}

impl Bucket {
    /// Starts an upload for `key`.
    pub fn initiate(&self, key: &str, attrs: Attrs) -> io::Result<UploadRecord> {
        let record = UploadRecord {
            key: key.to_string(),
            upload_id: format!("{:032x}", rand::random::<u128>()),
            attrs,
            initiated: SystemTime::now(),
        };
        let dir = self.upload_dir(&record.upload_id);
        fs::create_dir(&dir)?;
        file::write_record_file(
            &self.dir.join("tmp"),
            &dir.join("upload"),
            &record,
            self.sync,
        )?;
        let state = UploadState {
            record: record.clone(),
            parts: BTreeMap::new(),
            completing: false,
        };
        self.lock_uploads().insert(record.upload_id.clone(), state);
        Ok(record)
    }

    /// The upload `id` for `key`.
    pub fn upload(&self, id: &str, key: &str) -> Result<UploadRecord, UploadError> {
        let uploads = self.lock_uploads();
        let state = uploads
            .get(id)
            .filter(|s| s.record.key == key)
            .ok_or(UploadError::NoSuchUpload)?;
        Ok(state.record.clone())
    }

    /// Publishes `temp` (holding the part's data, whose `digests` the caller
    /// took) as part `part_number` of upload `id`, replacing an earlier
    /// upload of it.
    pub fn put_part(
        &self,
        id: &str,
        key: &str,
        part_number: u32,
        temp: TempFile,
        digests: Digests,
    ) -> Result<PartRecord, UploadError> {
        let record = PartRecord {
            part_number,
            size: digests.size,
            etag: hex::encode(digests.md5),
            crc64: digests.crc64,
            last_modified: SystemTime::now(),
        };
        let sealed = temp.seal(&record, self.sync)?;
        let mut uploads = self.lock_uploads();
        let state = uploads
            .get_mut(id)
            .filter(|s| s.record.key == key)
            .ok_or(UploadError::NoSuchUpload)?;
        if state.completing {
            return Err(UploadError::Completing);
        }
        sealed.rename_to(&self.part_path(id, part_number))?;
        state.parts.insert(part_number, record.clone());
        Ok(record)
    }

    /// The parts uploaded so far, ascending.
    pub fn parts(&self, id: &str, key: &str) -> Result<Vec<PartRecord>, UploadError> {
        let uploads = self.lock_uploads();
        let state = uploads
            .get(id)
            .filter(|s| s.record.key == key)
            .ok_or(UploadError::NoSuchUpload)?;
        Ok(state.parts.values().cloned().collect())
    }

    /// Marks upload `id` as completing and returns its record and parts.
    /// Follow with [`Bucket::finish_complete`] or [`Bucket::cancel_complete`].
    pub fn begin_complete(
        &self,
        id: &str,
        key: &str,
    ) -> Result<(UploadRecord, BTreeMap<u32, PartRecord>), UploadError> {
        let mut uploads = self.lock_uploads();
        let state = uploads
            .get_mut(id)
            .filter(|s| s.record.key == key)
            .ok_or(UploadError::NoSuchUpload)?;
        if state.completing {
            return Err(UploadError::Completing);
        }
        state.completing = true;
        Ok((state.record.clone(), state.parts.clone()))
    }

    /// Reopens an upload whose completion failed.
    pub fn cancel_complete(&self, id: &str) {
        if let Some(state) = self.lock_uploads().get_mut(id) {
            state.completing = false;
        }
    }

    /// Concatenates `parts` (validated by the caller, ascending) into the
    /// object, publishes it and removes the upload. Reopens the upload on
    /// failure.
    pub fn finish_complete(
        &self,
        upload: &UploadRecord,
        parts: &[PartRecord],
    ) -> io::Result<Arc<ObjectMeta>> {
        let result = self.assemble(upload, parts);
        match &result {
            Ok(_) => {
                self.lock_uploads().remove(&upload.upload_id);
                fs::remove_dir_all(self.upload_dir(&upload.upload_id))?;
            }
            Err(_) => self.cancel_complete(&upload.upload_id),
        }
        result
    }

    fn assemble(&self, upload: &UploadRecord, parts: &[PartRecord]) -> io::Result<Arc<ObjectMeta>> {
        let mut temp = self.temp()?;
        let mut crc = 0;
        for (i, part) in parts.iter().enumerate() {
            let path = self.part_path(&upload.upload_id, part.part_number);
            let stored = file::open::<PartRecord>(&path)?.ok_or(io::ErrorKind::NotFound)?;
            if stored.record != *part {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "part changed while completing",
                ));
            }
            temp.append_raw(&stored.file, 0, part.size)?;
            crc = if i == 0 {
                part.crc64
            } else {
                crc64::combine(crc, part.crc64, part.size)
            };
        }
        let meta = ObjectMeta {
            size: temp.size(),
            etag: multipart_etag(parts),
            crc64: crc,
            last_modified: SystemTime::now(),
            attrs: upload.attrs.clone(),
        };
        self.commit(temp, &upload.key, meta)
    }

    /// Aborts upload `id`, deleting its parts.
    pub fn abort(&self, id: &str, key: &str) -> Result<(), UploadError> {
        {
            let mut uploads = self.lock_uploads();
            let state = uploads
                .get(id)
                .filter(|s| s.record.key == key)
                .ok_or(UploadError::NoSuchUpload)?;
            if state.completing {
                return Err(UploadError::Completing);
            }
            uploads.remove(id);
        }
        fs::remove_dir_all(self.upload_dir(id))?;
        Ok(())
    }

    /// Every upload in progress, by key then upload id.
    pub fn uploads(&self) -> Vec<UploadRecord> {
        let mut all: Vec<UploadRecord> = self
            .lock_uploads()
            .values()
            .map(|s| s.record.clone())
            .collect();
        all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        all
    }

    fn upload_dir(&self, id: &str) -> PathBuf {
        self.dir.join("uploads").join(id)
    }

    fn part_path(&self, id: &str, part_number: u32) -> PathBuf {
        self.upload_dir(id).join(format!("part-{part_number:05}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(bucket: &Bucket, id: &str, n: u32, data: &[u8]) -> PartRecord {
        let mut t = bucket.temp().unwrap();
        t.write_data(data).unwrap();
        let d = t.digests();
        bucket.put_part(id, "k", n, t, d).unwrap()
    }

    #[test]
    fn uploads_complete_into_one_object_and_survive_restarts() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("b-1");
        let bucket = Bucket::open(&dir, "b-1", false).unwrap();
        let up = bucket.initiate("k", Attrs::default()).unwrap();
        part(&bucket, &up.upload_id, 2, b"world");
        part(&bucket, &up.upload_id, 1, b"hello ");
        assert!(matches!(
            bucket.upload(&up.upload_id, "other"),
            Err(UploadError::NoSuchUpload)
        ));
        drop(bucket);

        let bucket = Bucket::open(&dir, "b-1", false).unwrap();
        assert_eq!(bucket.uploads(), vec![up.clone()]);
        let (record, parts) = bucket.begin_complete(&up.upload_id, "k").unwrap();
        let parts: Vec<PartRecord> = parts.into_values().collect();
        assert!(matches!(
            bucket.abort(&up.upload_id, "k"),
            Err(UploadError::Completing)
        ));
        let meta = bucket.finish_complete(&record, &parts).unwrap();
        assert_eq!(meta.size, 11);
        assert_eq!(meta.crc64, crc64::checksum(b"hello world"));
        assert!(meta.etag.ends_with("-2"));
        let s = bucket.open_object("k").unwrap().unwrap();
        assert_eq!(file::read_range(&s.file, 0, 11).unwrap(), b"hello world");
        assert!(bucket.uploads().is_empty());
        assert_eq!(fs::read_dir(dir.join("uploads")).unwrap().count(), 0);
    }

    #[test]
    fn abort_removes_the_parts() {
        let root = tempfile::tempdir().unwrap();
        let bucket = Bucket::open(&root.path().join("b-1"), "b-1", false).unwrap();
        let up = bucket.initiate("k", Attrs::default()).unwrap();
        part(&bucket, &up.upload_id, 1, b"x");
        bucket.abort(&up.upload_id, "k").unwrap();
        assert!(matches!(
            bucket.parts(&up.upload_id, "k"),
            Err(UploadError::NoSuchUpload)
        ));
        assert_eq!(
            fs::read_dir(root.path().join("b-1/uploads"))
                .unwrap()
                .count(),
            0
        );
    }
}
