//! COS XML bodies. Wire structs (named and shaped exactly like the XML, used
//! by the client to parse and by the embedded server to render) and the
//! conversions into domain types. Timestamps: ISO-8601 in listings.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use log::{debug, warn};
use serde::{Deserialize, Serialize};

use super::{CosError, ListEntry, ListPage, PartInfo, StorageClass, UploadInfo, path};

/// `<Error>`: the body of every failed request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "Error", rename_all = "PascalCase")]
pub struct ErrorBody {
    /// Error code, e.g. `NoSuchKey`.
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// The resource the request addressed.
    #[serde(default)]
    pub resource: String,
    /// Request id.
    #[serde(default)]
    pub request_id: String,
}

/// `<ListBucketResult>` (GET Bucket, List Objects v1).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "ListBucketResult", rename_all = "PascalCase")]
pub struct ListBucketResult {
    /// Bucket name.
    pub name: String,
    /// `url` when keys are percent-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// The request's prefix.
    #[serde(default)]
    pub prefix: String,
    /// The request's marker.
    #[serde(default)]
    pub marker: String,
    /// The request's max-keys.
    pub max_keys: u32,
    /// The request's delimiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// Marker of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    /// Grouped prefixes.
    #[serde(default)]
    pub common_prefixes: Vec<CommonPrefix>,
    /// Objects.
    #[serde(default)]
    pub contents: Vec<Contents>,
}

/// `<CommonPrefixes>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct CommonPrefix {
    /// The prefix, ending with the delimiter.
    pub prefix: String,
}

/// `<Contents>`: one object of a listing.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Contents {
    /// Key.
    pub key: String,
    /// ISO-8601 time.
    pub last_modified: String,
    /// Quoted ETag.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Storage class.
    #[serde(default)]
    pub storage_class: String,
}

/// `<InitiateMultipartUploadResult>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "InitiateMultipartUploadResult", rename_all = "PascalCase")]
pub struct InitiateMultipartUploadResult {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The new upload id.
    pub upload_id: String,
}

/// `<CompleteMultipartUpload>`: the request body of Complete.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "CompleteMultipartUpload", rename_all = "PascalCase")]
pub struct CompleteMultipartUpload {
    /// Parts, ascending.
    #[serde(default)]
    pub part: Vec<CompletePart>,
}

/// One `<Part>` of a Complete request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct CompletePart {
    /// Part number.
    pub part_number: u32,
    /// Quoted ETag.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// `<CompleteMultipartUploadResult>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "CompleteMultipartUploadResult", rename_all = "PascalCase")]
pub struct CompleteMultipartUploadResult {
    /// Object URL.
    #[serde(default)]
    pub location: String,
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Quoted ETag (`"…-N"`).
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// `<CopyObjectResult>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "CopyObjectResult", rename_all = "PascalCase")]
pub struct CopyObjectResult {
    /// Quoted ETag.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// ISO-8601 time.
    pub last_modified: String,
    /// CRC64 (decimal), when known.
    #[serde(default, rename = "CRC64", skip_serializing_if = "Option::is_none")]
    pub crc64: Option<String>,
}

/// A copy's result, which names the ETag of what was written.
pub trait HasEtag {
    /// The quoted ETag (empty when the answer had none).
    fn etag(&self) -> &str;
}

impl HasEtag for CopyObjectResult {
    fn etag(&self) -> &str {
        &self.etag
    }
}

impl HasEtag for CopyPartResult {
    fn etag(&self) -> &str {
        &self.etag
    }
}

/// `<CopyPartResult>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "CopyPartResult", rename_all = "PascalCase")]
pub struct CopyPartResult {
    /// Quoted ETag.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// ISO-8601 time.
    pub last_modified: String,
}

/// `<ListPartsResult>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "ListPartsResult", rename_all = "PascalCase")]
pub struct ListPartsResult {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// The request's marker.
    #[serde(default)]
    pub part_number_marker: u32,
    /// Marker of the next page.
    #[serde(default)]
    pub next_part_number_marker: u32,
    /// The request's max-parts.
    pub max_parts: u32,
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// Parts.
    #[serde(default)]
    pub part: Vec<ListedPart>,
}

/// One `<Part>` of List Parts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ListedPart {
    /// Part number.
    pub part_number: u32,
    /// ISO-8601 time.
    pub last_modified: String,
    /// Quoted ETag.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
}

/// `<ListMultipartUploadsResult>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "ListMultipartUploadsResult", rename_all = "PascalCase")]
pub struct ListMultipartUploadsResult {
    /// Bucket.
    pub bucket: String,
    /// `url` when keys are percent-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// The request's key marker.
    #[serde(default)]
    pub key_marker: String,
    /// The request's upload id marker.
    #[serde(default)]
    pub upload_id_marker: String,
    /// Key marker of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_key_marker: Option<String>,
    /// Upload id marker of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_upload_id_marker: Option<String>,
    /// The request's prefix.
    #[serde(default)]
    pub prefix: String,
    /// The request's max-uploads.
    pub max_uploads: u32,
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// Uploads.
    #[serde(default)]
    pub upload: Vec<Upload>,
}

/// One `<Upload>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Upload {
    /// Key.
    pub key: String,
    /// Upload id.
    #[serde(alias = "UploadID")]
    pub upload_id: String,
    /// ISO-8601 time.
    pub initiated: String,
    /// Storage class.
    #[serde(default)]
    pub storage_class: String,
}

/// `<Delete>`: the request body of Delete Multiple.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "Delete", rename_all = "PascalCase")]
pub struct DeleteRequest {
    /// Only report failures.
    #[serde(default)]
    pub quiet: bool,
    /// Keys to delete.
    #[serde(default)]
    pub object: Vec<DeleteObject>,
}

/// One `<Object>` of a Delete request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteObject {
    /// Key.
    pub key: String,
}

/// `<DeleteResult>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename = "DeleteResult", rename_all = "PascalCase")]
pub struct DeleteResult {
    /// Deleted keys (verbose mode).
    #[serde(default)]
    pub deleted: Vec<DeleteObject>,
    /// Keys that failed.
    #[serde(default)]
    pub error: Vec<DeleteError>,
}

/// One `<Error>` of a Delete result.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteError {
    /// Key.
    pub key: String,
    /// Error code.
    pub code: String,
    /// Message.
    #[serde(default)]
    pub message: String,
}

/// Parses a wire struct, naming the struct in the error.
pub fn from_xml<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, CosError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| CosError::InvalidResponse("XML body is not UTF-8".into()))?;
    quick_xml::de::from_str(text).map_err(|e| {
        CosError::InvalidResponse(format!(
            "cannot parse {}: {e}",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("XML")
        ))
    })
}

/// Renders a wire struct with the XML declaration.
pub fn to_xml<T: Serialize>(value: &T) -> String {
    let body = quick_xml::se::to_string(value).expect("wire structs always serialize");
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")
}

/// True when `body` is an `<Error>` document (a 200 can carry one).
pub fn is_error_body(body: &[u8]) -> bool {
    let head = &body[..body.len().min(256)];
    String::from_utf8_lossy(head)
        .trim_start_matches(|c: char| c.is_whitespace())
        .contains("<Error>")
        && !String::from_utf8_lossy(head).contains("<DeleteResult")
}

/// Formats a time as COS lists it: `2020-12-10T03:37:30.000Z`.
pub fn iso8601(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an ISO-8601 listing time.
pub fn parse_iso8601(s: &str) -> Result<SystemTime, CosError> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .map_err(|_| CosError::InvalidResponse(format!("bad timestamp {s:?}")))
}

/// Removes the quotes around an ETag.
pub fn unquote_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

impl ListBucketResult {
    /// Converts to a domain page, percent-decoding when `EncodingType` is
    /// `url`. An entry whose key does not decode to UTF-8 cannot be named
    /// or addressed: it is left out with a warning, the rest of the page
    /// kept. A LastModified that does not parse reads as the epoch.
    pub fn into_page(self) -> Result<ListPage, CosError> {
        let encoded = self.encoding_type.as_deref() == Some("url");
        let decode = |s: String| if encoded { path::decode(&s) } else { Ok(s) };
        let objects = self
            .contents
            .into_iter()
            .filter_map(|c| {
                let key = skip_undecodable(decode(c.key))?;
                let last_modified = parse_iso8601(&c.last_modified).unwrap_or_else(|_| {
                    debug!("{key:?} is listed with LastModified {:?}", c.last_modified);
                    SystemTime::UNIX_EPOCH
                });
                Some(ListEntry {
                    key,
                    size: c.size,
                    etag: unquote_etag(&c.etag),
                    last_modified,
                    storage_class: StorageClass::from_server(Some(&c.storage_class)),
                })
            })
            .collect();
        let common_prefixes = self
            .common_prefixes
            .into_iter()
            .filter_map(|p| skip_undecodable(decode(p.prefix)))
            .collect();
        // A marker that does not decode cannot be sent back; the walk then
        // continues from the last key it could read.
        let next_marker = self
            .next_marker
            .filter(|m| !m.is_empty())
            .and_then(|m| skip_undecodable(decode(m)));
        Ok(ListPage {
            objects,
            common_prefixes,
            next_marker,
            truncated: self.is_truncated,
        })
    }
}

/// Listed names that are not UTF-8 once decoded: warned about (the first
/// [`UNDECODABLE_WARNINGS`] of the process; the rest at debug) and skipped.
fn skip_undecodable(decoded: Result<String, CosError>) -> Option<String> {
    static WARNED: AtomicU32 = AtomicU32::new(0);
    match decoded {
        Ok(s) => Some(s),
        Err(e) if WARNED.fetch_add(1, Ordering::Relaxed) < UNDECODABLE_WARNINGS => {
            warn!("a listed key is skipped: {e}");
            None
        }
        Err(e) => {
            debug!("a listed key is skipped: {e}");
            None
        }
    }
}

/// Warnings about undecodable listed keys before they go to debug level.
const UNDECODABLE_WARNINGS: u32 = 100;

impl ListPartsResult {
    /// Converts the parts to domain parts.
    pub fn parts(&self) -> Vec<PartInfo> {
        self.part
            .iter()
            .map(|p| PartInfo {
                part_number: p.part_number,
                etag: unquote_etag(&p.etag),
                size: p.size,
                crc64: None,
            })
            .collect()
    }
}

impl ListMultipartUploadsResult {
    /// Converts the uploads to domain uploads. One whose key does not
    /// decode is skipped (it could not be addressed); one whose Initiated
    /// does not parse reads as initiated now, so no age-based cleanup
    /// takes it for stale.
    pub fn uploads(&self) -> Result<Vec<UploadInfo>, CosError> {
        let encoded = self.encoding_type.as_deref() == Some("url");
        Ok(self
            .upload
            .iter()
            .filter_map(|u| {
                let key = match encoded {
                    true => skip_undecodable(path::decode(&u.key))?,
                    false => u.key.clone(),
                };
                Some(UploadInfo {
                    key,
                    upload_id: u.upload_id.clone(),
                    initiated: parse_iso8601(&u.initiated).unwrap_or_else(|_| SystemTime::now()),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn parses_a_listing_with_url_encoding() {
        let page: ListBucketResult = from_xml(&fixture("list-encoded.xml")).unwrap();
        let page = page.into_page().unwrap();
        assert!(page.truncated);
        assert_eq!(page.next_marker.as_deref(), Some("dir/a b"));
        assert_eq!(page.common_prefixes, vec!["dir/sub/", "dir/中文/"]);
        assert_eq!(page.objects.len(), 2);
        assert_eq!(page.objects[0].key, "dir/a b");
        assert_eq!(page.objects[0].etag, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(page.objects[1].key, "dir/x+y%");
        assert_eq!(page.objects[1].size, 1234);
        assert_eq!(
            page.objects[1].last_modified,
            parse_iso8601("2020-12-10T03:37:30.000Z").unwrap()
        );
    }

    #[test]
    fn parses_an_empty_listing() {
        let page: ListBucketResult = from_xml(&fixture("list-empty.xml")).unwrap();
        let page = page.into_page().unwrap();
        assert!(!page.truncated);
        assert!(page.objects.is_empty() && page.common_prefixes.is_empty());
    }

    #[test]
    fn parses_errors_and_detects_error_bodies() {
        let body = fixture("error-nosuchkey.xml");
        assert!(is_error_body(&body));
        let e: ErrorBody = from_xml(&body).unwrap();
        assert_eq!(e.code, "NoSuchKey");
        assert_eq!(e.request_id, "NjQ2NzZmZDhfOTJiMjU4NjRfNmE2ZV8xMjM0");
        assert!(!is_error_body(&fixture("complete-result.xml")));
    }

    #[test]
    fn parses_multipart_bodies() {
        let r: CompleteMultipartUploadResult = from_xml(&fixture("complete-result.xml")).unwrap();
        assert_eq!(unquote_etag(&r.etag), "aa259a62513358f69e98e72e59856d88-3");
        let parts: ListPartsResult = from_xml(&fixture("list-parts.xml")).unwrap();
        assert_eq!(parts.parts().len(), 2);
        assert_eq!(parts.parts()[1].size, 1048576);
        let uploads: ListMultipartUploadsResult = from_xml(&fixture("list-uploads.xml")).unwrap();
        assert_eq!(uploads.uploads().unwrap()[0].key, "big file");
    }

    #[test]
    fn round_trips_request_bodies() {
        let req = CompleteMultipartUpload {
            part: vec![
                CompletePart {
                    part_number: 1,
                    etag: "\"a\"".into(),
                },
                CompletePart {
                    part_number: 2,
                    etag: "\"b\"".into(),
                },
            ],
        };
        let xml = to_xml(&req);
        assert!(
            xml.contains("<Part><PartNumber>1</PartNumber><ETag>"),
            "{xml}"
        );
        assert_eq!(
            from_xml::<CompleteMultipartUpload>(xml.as_bytes()).unwrap(),
            req
        );
        let del = DeleteRequest {
            quiet: true,
            object: vec![DeleteObject {
                key: "a&b<c".into(),
            }],
        };
        assert_eq!(
            from_xml::<DeleteRequest>(to_xml(&del).as_bytes()).unwrap(),
            del
        );
    }

    #[test]
    fn undecodable_keys_and_bad_times_spoil_only_their_entry() {
        let body = "<ListBucketResult><Name>b</Name><EncodingType>url</EncodingType>\
            <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextMarker>%FF</NextMarker>\
            <CommonPrefixes><Prefix>%C3%28/</Prefix></CommonPrefixes>\
            <CommonPrefixes><Prefix>ok/</Prefix></CommonPrefixes>\
            <Contents><Key>bad%FF</Key><LastModified>x</LastModified><ETag>\"e\"</ETag><Size>1</Size></Contents>\
            <Contents><Key>fine</Key><LastModified>yesterday</LastModified><ETag>\"e\"</ETag><Size>2</Size></Contents>\
            </ListBucketResult>";
        let page = from_xml::<ListBucketResult>(body.as_bytes())
            .unwrap()
            .into_page()
            .unwrap();
        assert_eq!(page.common_prefixes, vec!["ok/"]);
        assert_eq!(page.objects.len(), 1);
        assert_eq!(page.objects[0].key, "fine");
        assert_eq!(page.objects[0].last_modified, SystemTime::UNIX_EPOCH);
        assert_eq!(page.next_marker, None);
        assert!(page.truncated);
    }

    #[test]
    fn formats_listing_times() {
        let t = parse_iso8601("2020-12-10T03:37:30.000Z").unwrap();
        assert_eq!(iso8601(t), "2020-12-10T03:37:30.000Z");
    }
}
