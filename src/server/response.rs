//! Building responses: object headers, XML bodies, COS error documents, and
//! the headers every response carries (`x-cos-request-id`, `Server`) plus the
//! header-spelling map that makes hyper write `Content-Length`, `ETag`, ...
//! in COS's case.

use std::time::SystemTime;

use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use percent_encoding::{AsciiSet, utf8_percent_encode};
use serde::Serialize;

use super::body::{self, Body};
use super::error::ApiError;
use super::store::{Attrs, ObjectMeta};
use crate::cos::sign::UNRESERVED;
use crate::cos::{MAX_META_BYTES, META_PREFIX, OBJECT_HEADERS, class, meta_size, xml};

/// The header naming an object's storage class, kept with the object
/// unless it says STANDARD (which COS leaves unsaid).
const STORAGE_CLASS: &str = "x-cos-storage-class";
/// The headers naming an object's server-side encryption (SSE-COS,
/// SSE-KMS and its key), kept with the object.
const ENCRYPTION: &str = "x-cos-server-side-encryption";
const KMS_KEY_ID: &str = "x-cos-server-side-encryption-cos-kms-key-id";
/// The encryptions COS accepts (`cos/kms` may name its key).
const ENCRYPTIONS: [&str; 3] = ["AES256", "SM4", "cos/kms"];
/// SSE-C's headers start so.
const CUSTOMER_KEYS: &str = "x-cos-server-side-encryption-customer-";

/// Bytes escaped in listed keys with `encoding-type=url` (`/` stays).
const LIST_KEY: &AsciiSet = &UNRESERVED.remove(b'/');

/// Builds a response, turning an invalid header into a 500.
pub fn build(
    builder: hyper::http::response::Builder,
    body: Body,
) -> Result<Response<Body>, ApiError> {
    builder
        .body(body)
        .map_err(|e| ApiError::internal(&std::io::Error::other(e)))
}

/// A 200 with an XML document.
pub fn xml<T: Serialize>(value: &T) -> Result<Response<Body>, ApiError> {
    let text = xml::to_xml(value);
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::CONTENT_LENGTH, text.len());
    build(builder, body::full(text))
}

/// A response with no body (`Content-Length: 0`).
pub fn no_content(status: StatusCode) -> Result<Response<Body>, ApiError> {
    let mut builder = Response::builder().status(status);
    if status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED {
        builder = builder.header(header::CONTENT_LENGTH, 0);
    }
    build(builder, body::empty())
}

/// Quotes an ETag for a header or XML.
pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// The headers that describe an object (not its length).
pub fn object_headers(
    mut builder: hyper::http::response::Builder,
    meta: &ObjectMeta,
) -> hyper::http::response::Builder {
    builder = builder
        .header(header::CONTENT_TYPE, meta.attrs.content_type.as_str())
        .header(header::ETAG, quoted(&meta.etag))
        .header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(meta.last_modified),
        )
        .header(header::ACCEPT_RANGES, "bytes")
        .header("x-cos-hash-crc64ecma", meta.crc64);
    for (name, value) in &meta.attrs.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    for (suffix, value) in &meta.attrs.meta {
        builder = builder.header(format!("{META_PREFIX}{suffix}"), value.as_str());
    }
    builder
}

/// Reads the headers a new object keeps: Content-Type (default
/// `application/octet-stream`), `x-cos-meta-*` (≤ 2 KiB) and the other object headers.
pub fn attrs_from(headers: &HeaderMap) -> Result<Attrs, ApiError> {
    let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let mut attrs = Attrs {
        content_type: headers
            .get(header::CONTENT_TYPE)
            .map(text)
            .unwrap_or_else(|| "application/octet-stream".to_string()),
        ..Attrs::default()
    };
    set_class_and_encryption(&mut attrs, headers)?;
    for (name, value) in headers {
        if let Some(suffix) = name.as_str().strip_prefix(META_PREFIX) {
            attrs.meta.insert(suffix.to_string(), text(value));
        } else if OBJECT_HEADERS.contains(&name.as_str()) {
            attrs.headers.insert(name.as_str().to_string(), text(value));
        }
    }
    if meta_size(&attrs.meta) > MAX_META_BYTES {
        return Err(ApiError::bad_request(
            "MetadataTooLarge",
            format!(
                "Your metadata headers exceed the maximum allowed metadata size of {MAX_META_BYTES} bytes."
            ),
        ));
    }
    Ok(attrs)
}

/// Sets the storage class and encryption the request names (none:
/// STANDARD, plain), as COS does for PUT, initiate and copy alike.
pub fn set_class_and_encryption(attrs: &mut Attrs, headers: &HeaderMap) -> Result<(), ApiError> {
    set_storage_class(attrs, headers)?;
    set_encryption(attrs, headers)
}

fn set_storage_class(attrs: &mut Attrs, headers: &HeaderMap) -> Result<(), ApiError> {
    attrs.headers.remove(STORAGE_CLASS);
    let Some(value) = headers.get(STORAGE_CLASS) else {
        return Ok(());
    };
    let class = String::from_utf8_lossy(value.as_bytes()).to_ascii_uppercase();
    let known =
        class::WRITABLE.contains(&class.as_str()) || class::ARCHIVED.contains(&class.as_str());
    if !known {
        return Err(ApiError::invalid_argument(format!(
            "The storage class you specified is not valid: {class}."
        )));
    }
    if class != "STANDARD" {
        attrs.headers.insert(STORAGE_CLASS.to_string(), class);
    }
    Ok(())
}

fn set_encryption(attrs: &mut Attrs, headers: &HeaderMap) -> Result<(), ApiError> {
    attrs.headers.remove(ENCRYPTION);
    attrs.headers.remove(KMS_KEY_ID);
    if headers
        .keys()
        .any(|k| k.as_str().starts_with(CUSTOMER_KEYS))
    {
        return Err(ApiError::invalid_argument(
            "cosmount serve does not support server-side encryption with customer keys (SSE-C).",
        ));
    }
    let Some(value) = headers.get(ENCRYPTION) else {
        return Ok(());
    };
    let algorithm = String::from_utf8_lossy(value.as_bytes()).into_owned();
    if !ENCRYPTIONS.contains(&algorithm.as_str()) {
        return Err(ApiError::invalid_argument(format!(
            "The encryption method specified is not supported: {algorithm}."
        )));
    }
    if let (Some(key), "cos/kms") = (headers.get(KMS_KEY_ID), algorithm.as_str()) {
        let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
        attrs.headers.insert(KMS_KEY_ID.to_string(), key);
    }
    attrs.headers.insert(ENCRYPTION.to_string(), algorithm);
    Ok(())
}

/// An object's storage class as listings name it.
pub fn storage_class(attrs: &Attrs) -> String {
    attrs
        .headers
        .get(STORAGE_CLASS)
        .cloned()
        .unwrap_or_else(|| "STANDARD".to_string())
}

/// A key, prefix or marker as listed: percent-encoded (keeping `/`) when
/// the request asked for `encoding-type=url`.
pub fn list_encode(s: &str, url: bool) -> String {
    if url {
        utf8_percent_encode(s, LIST_KEY).to_string()
    } else {
        s.to_string()
    }
}

/// The `<Error>` document for a failed request (no body for HEAD).
pub fn error(err: &ApiError, resource: &str, request_id: &str, head: bool) -> Response<Body> {
    let doc = xml::ErrorBody {
        code: err.code.to_string(),
        message: err.message.clone(),
        resource: resource.to_string(),
        request_id: request_id.to_string(),
    };
    let text = xml::to_xml(&doc);
    let builder = Response::builder()
        .status(err.status)
        .header(header::CONTENT_TYPE, "application/xml")
        .header("x-cos-trace-id", request_id);
    let (builder, body) = if head {
        (builder.header(header::CONTENT_LENGTH, 0), body::empty())
    } else {
        (
            builder.header(header::CONTENT_LENGTH, text.len()),
            body::full(text),
        )
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(body::empty()))
}

/// ISO-8601 time as listings show it.
pub fn iso(t: SystemTime) -> String {
    xml::iso8601(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_object_attributes_from_request_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-cos-meta-mode", "33188".parse().unwrap());
        h.insert("cache-control", "no-cache".parse().unwrap());
        h.insert("x-cos-acl", "private".parse().unwrap());
        let a = attrs_from(&h).unwrap();
        assert_eq!(a.content_type, "application/octet-stream");
        assert_eq!(a.meta.get("mode").map(String::as_str), Some("33188"));
        assert_eq!(a.headers.len(), 1);
        h.insert("x-cos-meta-big", "x".repeat(3000).parse().unwrap());
        assert_eq!(attrs_from(&h).unwrap_err().code, "MetadataTooLarge");
    }

    #[test]
    fn encodes_listed_keys_keeping_slashes() {
        assert_eq!(
            list_encode("a b/+%/中\u{1}", true),
            "a%20b/%2B%25/%E4%B8%AD%01"
        );
        assert_eq!(list_encode("a b", false), "a b");
    }
}
