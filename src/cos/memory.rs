//! An in-memory [`ObjectClient`] for fast, deterministic fs-core tests, with
//! per-operation call counters and failure injection. Never the proof that
//! a feature works against COS: integration tests use `cosmount serve`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{
    CosError, CosResult, DeleteFailure, Encryption, GetObject, GetOptions, ListEntry, ListPage,
    ListRequest, MetadataDirective, ObjectAttrs, ObjectClient, ObjectInfo, PartInfo, PutResult,
    StorageClass, UploadInfo, crc64,
};

#[derive(Clone, Debug)]
struct Stored {
    data: Bytes,
    info: ObjectInfo,
}

#[derive(Debug, Default)]
struct Upload {
    key: String,
    attrs: ObjectAttrs,
    parts: BTreeMap<u32, Bytes>,
    initiated: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, Stored>,
    uploads: HashMap<String, Upload>,
    calls: HashMap<&'static str, u64>,
    /// Errors to return from the next calls of an operation.
    failures: HashMap<&'static str, Vec<CosError>>,
}

/// A bucket held in memory.
#[derive(Debug, Default)]
pub struct MemoryClient {
    state: Mutex<State>,
    next_id: AtomicU64,
}

fn not_found() -> CosError {
    CosError::service(404, "NoSuchKey", "The specified key does not exist.")
}

fn source_changed() -> CosError {
    CosError::service(412, "PreconditionFailed", "copy source changed")
}

fn no_upload() -> CosError {
    CosError::service(404, "NoSuchUpload", "The specified upload does not exist.")
}

impl MemoryClient {
    /// An empty bucket.
    pub fn new() -> MemoryClient {
        MemoryClient::default()
    }

    /// How many times `op` (e.g. `"head"`, `"list_page"`) was called.
    pub fn calls(&self, op: &str) -> u64 {
        self.lock().calls.get(op).copied().unwrap_or(0)
    }

    /// Makes the next call of `op` fail with `error` (queued in order).
    pub fn fail_next(&self, op: &'static str, error: CosError) {
        self.lock().failures.entry(op).or_default().push(error);
    }

    /// The stored bytes of `key`.
    pub fn object(&self, key: &str) -> Option<Bytes> {
        self.lock().objects.get(key).map(|s| s.data.clone())
    }

    /// Every stored key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Keys of uploads in progress.
    pub fn pending_uploads(&self) -> usize {
        self.lock().uploads.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call and returns the injected failure, if any.
    fn enter(&self, op: &'static str) -> CosResult<std::sync::MutexGuard<'_, State>> {
        let mut state = self.lock();
        *state.calls.entry(op).or_default() += 1;
        if let Some(queue) = state.failures.get_mut(op) {
            if !queue.is_empty() {
                return Err(queue.remove(0));
            }
        }
        Ok(state)
    }

    fn new_id(&self) -> String {
        format!("{:016x}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

fn store(
    state: &mut State,
    key: &str,
    data: Bytes,
    attrs: &ObjectAttrs,
    etag: String,
) -> PutResult {
    let crc = crc64::checksum(&data);
    let info = ObjectInfo {
        size: data.len() as u64,
        etag: etag.clone(),
        last_modified: SystemTime::now(),
        crc64: Some(crc),
        content_type: Some(
            attrs
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        ),
        headers: attrs.headers.clone(),
        meta: attrs.meta.clone(),
        storage_class: StorageClass::from_server(
            attrs.storage_class.to_send(&StorageClass::MountDefault),
        ),
        encryption: match &attrs.encryption {
            Encryption::MountDefault => Encryption::Plain,
            named => named.clone(),
        },
    };
    state.objects.insert(key.to_string(), Stored { data, info });
    PutResult {
        etag,
        crc64: Some(crc),
    }
}

fn store_part(
    state: &mut State,
    key: &str,
    upload_id: &str,
    part_number: u32,
    body: Bytes,
) -> CosResult<PartInfo> {
    let upload = state
        .uploads
        .get_mut(upload_id)
        .filter(|u| u.key == key)
        .ok_or_else(no_upload)?;
    let info = PartInfo {
        part_number,
        etag: etag_of(&body),
        size: body.len() as u64,
        crc64: Some(crc64::checksum(&body)),
    };
    upload.parts.insert(part_number, body);
    Ok(info)
}

fn etag_of(data: &[u8]) -> String {
    format!("{:016x}{:016x}", crc64::checksum(data), data.len())
}

impl ObjectClient for MemoryClient {
    async fn head_bucket(&self) -> CosResult<()> {
        self.enter("head_bucket").map(|_| ())
    }

    async fn head(&self, key: &str) -> CosResult<ObjectInfo> {
        let state = self.enter("head")?;
        let mut info = state
            .objects
            .get(key)
            .map(|s| s.info.clone())
            .ok_or_else(|| CosError::service(404, "", ""))?;
        // Last-Modified headers tell whole seconds; listings tell more.
        info.last_modified = whole_seconds(info.last_modified);
        Ok(info)
    }

    async fn get(&self, key: &str, opts: &GetOptions) -> CosResult<GetObject> {
        let state = self.enter("get")?;
        let stored = state.objects.get(key).ok_or_else(not_found)?;
        if let Some(etag) = &opts.if_match {
            if *etag != stored.info.etag {
                return Err(CosError::service(412, "PreconditionFailed", "ETag changed"));
            }
        }
        let len = stored.data.len() as u64;
        let body = match &opts.range {
            None => stored.data.clone(),
            Some(r) if r.start >= len && len > 0 => {
                return Err(CosError::service(
                    416,
                    "InvalidRange",
                    "range not satisfiable",
                ));
            }
            Some(r) => stored
                .data
                .slice(r.start.min(len) as usize..r.end.min(len) as usize),
        };
        Ok(GetObject {
            info: stored.info.clone(),
            body,
        })
    }

    async fn put(&self, key: &str, body: Bytes, attrs: &ObjectAttrs) -> CosResult<PutResult> {
        let mut state = self.enter("put")?;
        let etag = etag_of(&body);
        Ok(store(&mut state, key, body, attrs, etag))
    }

    async fn delete(&self, key: &str) -> CosResult<()> {
        self.enter("delete")?.objects.remove(key);
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> CosResult<Vec<DeleteFailure>> {
        let mut state = self.enter("delete_many")?;
        for key in keys {
            state.objects.remove(key);
        }
        Ok(Vec::new())
    }

    async fn list_page(&self, req: &ListRequest) -> CosResult<ListPage> {
        let state = self.enter("list_page")?;
        let max = req.max_keys.clamp(1, 1000) as usize;
        let mut page = ListPage::default();
        let mut count = 0;
        let mut last = String::new();
        let candidates = state
            .objects
            .range(req.prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&req.prefix))
            .filter(|(k, _)| **k > req.marker);
        for (key, stored) in candidates {
            let rest = &key[req.prefix.len()..];
            let group = req
                .delimiter
                .as_deref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    rest.find(d)
                        .map(|i| format!("{}{}", req.prefix, &rest[..i + d.len()]))
                });
            if let Some(prefix) = &group {
                if page.common_prefixes.last() == Some(prefix) || *prefix <= req.marker {
                    continue;
                }
            }
            if count == max {
                page.truncated = true;
                page.next_marker = Some(last);
                return Ok(page);
            }
            count += 1;
            match group {
                Some(prefix) => {
                    last = prefix.clone();
                    page.common_prefixes.push(prefix);
                }
                None => {
                    last = key.clone();
                    page.objects.push(ListEntry {
                        key: key.clone(),
                        size: stored.info.size,
                        etag: stored.info.etag.clone(),
                        last_modified: stored.info.last_modified,
                        storage_class: stored.info.storage_class.clone(),
                    });
                }
            }
        }
        Ok(page)
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        src_etag: Option<&str>,
        directive: MetadataDirective,
        attrs: &ObjectAttrs,
        _src_size: u64,
    ) -> CosResult<PutResult> {
        let mut state = self.enter("copy")?;
        let source = state.objects.get(src).cloned().ok_or_else(not_found)?;
        if src_etag.is_some_and(|e| e != source.info.etag) {
            return Err(source_changed());
        }
        let attrs = match directive {
            // As COS: the copy is in the class and encryption the
            // request names.
            MetadataDirective::Copy => ObjectAttrs {
                content_type: source.info.content_type.clone(),
                headers: source.info.headers.clone(),
                meta: source.info.meta.clone(),
                storage_class: attrs.storage_class.clone(),
                encryption: attrs.encryption.clone(),
            },
            MetadataDirective::Replaced => attrs.clone(),
        };
        Ok(store(
            &mut state,
            dst,
            source.data,
            &attrs,
            source.info.etag,
        ))
    }

    async fn create_multipart(&self, key: &str, attrs: &ObjectAttrs) -> CosResult<String> {
        let mut state = self.enter("create_multipart")?;
        let id = self.new_id();
        state.uploads.insert(
            id.clone(),
            Upload {
                key: key.to_string(),
                attrs: attrs.clone(),
                parts: BTreeMap::new(),
                initiated: Some(SystemTime::now()),
            },
        );
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> CosResult<PartInfo> {
        let mut state = self.enter("upload_part")?;
        store_part(&mut state, key, upload_id, part_number, body)
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src: &str,
        src_etag: Option<&str>,
        range: Range<u64>,
    ) -> CosResult<PartInfo> {
        let mut state = self.enter("upload_part_copy")?;
        let stored = state.objects.get(src).ok_or_else(not_found)?;
        if src_etag.is_some_and(|e| e != stored.info.etag) {
            return Err(source_changed());
        }
        let source = stored.data.clone();
        if range.end > source.len() as u64 || range.start >= range.end {
            return Err(CosError::service(
                416,
                "InvalidRange",
                "copy range not satisfiable",
            ));
        }
        let body = source.slice(range.start as usize..range.end as usize);
        store_part(&mut state, key, upload_id, part_number, body)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> CosResult<PutResult> {
        let mut state = self.enter("complete_multipart")?;
        let upload = state
            .uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .ok_or_else(no_upload)?;
        let mut data = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let body = upload
                .parts
                .get(&part.part_number)
                .filter(|b| etag_of(b) == part.etag)
                .ok_or_else(|| {
                    CosError::service(400, "InvalidPart", "part missing or ETag differs")
                })?;
            if i + 1 < parts.len() && body.len() < 1024 * 1024 {
                return Err(CosError::service(
                    400,
                    "EntityTooSmall",
                    "part smaller than 1 MB",
                ));
            }
            data.extend_from_slice(body);
        }
        let attrs = upload.attrs.clone();
        state.uploads.remove(upload_id);
        let etag = format!("{}-{}", etag_of(&data), parts.len());
        Ok(store(&mut state, key, Bytes::from(data), &attrs, etag))
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> CosResult<()> {
        self.enter("abort_multipart")?.uploads.remove(upload_id);
        Ok(())
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> CosResult<Vec<PartInfo>> {
        let state = self.enter("list_parts")?;
        let upload = state
            .uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .ok_or_else(no_upload)?;
        Ok(upload
            .parts
            .iter()
            .map(|(n, b)| PartInfo {
                part_number: *n,
                etag: etag_of(b),
                size: b.len() as u64,
                crc64: Some(crc64::checksum(b)),
            })
            .collect())
    }

    async fn list_uploads(&self, prefix: &str) -> CosResult<Vec<UploadInfo>> {
        let state = self.enter("list_uploads")?;
        let mut uploads: Vec<UploadInfo> = state
            .uploads
            .iter()
            .filter(|(_, u)| u.key.starts_with(prefix))
            .map(|(id, u)| UploadInfo {
                key: u.key.clone(),
                upload_id: id.clone(),
                initiated: u.initiated.unwrap_or(SystemTime::UNIX_EPOCH),
            })
            .collect();
        uploads.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        Ok(uploads)
    }
}

/// `t` without its fraction of a second.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn lists_with_delimiter_and_pages() {
        run(async {
            let c = MemoryClient::new();
            for key in ["a/1", "a/2", "b", "c/x/y", "d"] {
                c.put(key, Bytes::from_static(b"x"), &ObjectAttrs::default())
                    .await
                    .unwrap();
            }
            let mut req = ListRequest {
                prefix: String::new(),
                delimiter: Some("/".into()),
                marker: String::new(),
                max_keys: 2,
            };
            let p1 = c.list_page(&req).await.unwrap();
            assert_eq!(p1.common_prefixes, vec!["a/"]);
            assert_eq!(p1.objects[0].key, "b");
            assert!(p1.truncated);
            req.marker = p1.next_marker.unwrap();
            let p2 = c.list_page(&req).await.unwrap();
            assert_eq!(p2.common_prefixes, vec!["c/"]);
            assert_eq!(p2.objects[0].key, "d");
            assert!(!p2.truncated);
            assert_eq!(c.calls("list_page"), 2);
        });
    }

    #[test]
    fn injected_failures_come_first() {
        run(async {
            let c = MemoryClient::new();
            c.fail_next("head", CosError::service(500, "InternalError", ""));
            assert_eq!(c.head("k").await.unwrap_err().code(), "InternalError");
            assert!(c.head("k").await.unwrap_err().is_not_found());
        });
    }
}
