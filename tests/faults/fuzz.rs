//! No panic reachable from the network or from object keys: property tests
//! (proptest) of everything that reads input someone else wrote: the XML
//! parser and the list decoder (answers from COS), the server's
//! Authorization parser, authentication and routing (requests from
//! anyone), key → URL and key → file name mapping (keys from anyone), and
//! random raw requests against a running `cosmount serve`.
//!
//! Each property runs `COSMOUNT_FUZZ_CASES` cases (default 1,000: a few
//! seconds each). A failure proptest finds is saved, shrunk, in
//! `tests/faults/fuzz.proptest-regressions` and replayed first on later
//! runs; keep that file small. The known-nasty inputs below are checked
//! on every run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

use cosmount::cos::path::{decode, encode_key};
use cosmount::cos::sign::{KeyTime, StringToSign, parse_authorization, sign};
use cosmount::cos::xml::{self, ListBucketResult};
use cosmount::cos::{ListEntry, ListPage};
use cosmount::creds::Credentials;
use cosmount::fs::dir::{DirListing, NAME_MAX, invalid_name};
use cosmount::server::auth::{Keyring, SignedParts, authenticate};
use cosmount::server::router::{Query, classify, route};
use hyper::{HeaderMap, Method};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, FileFailurePersistence};

use crate::common::{Public, ServerOptions, TestServer};

fn config() -> Config {
    let cases = std::env::var("COSMOUNT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/faults/fuzz.proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// Strings made of the characters that break parsers and paths.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z0-9]{1,8}",
        Just("/".to_string()),
        Just("//".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%".to_string()),
        "%[0-9A-Fa-f]{2}",
        Just("%FF%FE".to_string()),
        Just("%C3%28".to_string()),
        Just("%00".to_string()),
        Just("\0".to_string()),
        "[\\x01-\\x1f\\x7f]",
        Just("&amp;".to_string()),
        Just("<x>".to_string()),
        Just("]]>".to_string()),
        Just("+ ?#;=&".to_string()),
        "\\PC{1,4}",
        Just("\u{feff}\u{202e}\u{fffd}".to_string()),
        Just("x".repeat(300)),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

const TAGS: &[&str] = &[
    "ListBucketResult",
    "Name",
    "Prefix",
    "Marker",
    "MaxKeys",
    "Delimiter",
    "IsTruncated",
    "NextMarker",
    "EncodingType",
    "Contents",
    "Key",
    "LastModified",
    "ETag",
    "Size",
    "StorageClass",
    "CommonPrefixes",
    "Error",
    "Code",
    "Message",
    "ListMultipartUploadsResult",
    "Upload",
    "UploadId",
    "Initiated",
    "NextKeyMarker",
    "NextUploadIdMarker",
    "MaxUploads",
    "ListPartsResult",
    "Part",
    "PartNumber",
    "NextPartNumberMarker",
    "MaxParts",
    "DeleteResult",
    "Deleted",
    "CompleteMultipartUploadResult",
    "CopyObjectResult",
    "CRC64",
];

/// XML-like documents built from COS's element names with hostile text:
/// numbers out of range, bad dates, entities, CDATA, unclosed tags.
fn xml_doc() -> impl Strategy<Value = String> {
    let tag = prop::sample::select(TAGS);
    let text = prop_oneof![
        hostile(),
        "-?[0-9]{1,30}",
        Just("true".to_string()),
        Just("false".to_string()),
        Just("2020-12-10T03:37:30.000Z".to_string()),
        Just("9999-99-99T99:99:99Z".to_string()),
        Just("&#0;&#xD800;&bogus;".to_string()),
        Just("<![CDATA[<Key>]]>".to_string()),
        Just("url".to_string()),
    ];
    let leaf = (tag.clone(), text).prop_map(|(t, x)| format!("<{t}>{x}</{t}>"));
    let doc = leaf.prop_recursive(4, 64, 8, move |inner| {
        (tag.clone(), prop::collection::vec(inner, 0..8), any::<u8>()).prop_map(|(t, kids, cut)| {
            let body = kids.concat();
            match cut % 16 {
                0 => format!("<{t}>{body}"), // unclosed
                1 => format!("<{t} a=\"&\">{body}</{t}>"),
                _ => format!("<{t}>{body}</{t}>"),
            }
        })
    });
    (doc, any::<bool>()).prop_map(|(d, decl)| match decl {
        true => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{d}"),
        false => d,
    })
}

/// Parses `body` as every wire type the client reads, and converts what
/// parses into domain types.
fn parse_everything(body: &[u8]) {
    if let Ok(list) = xml::from_xml::<ListBucketResult>(body) {
        let _ = list.into_page();
    }
    if let Ok(uploads) = xml::from_xml::<xml::ListMultipartUploadsResult>(body) {
        let _ = uploads.uploads();
    }
    if let Ok(parts) = xml::from_xml::<xml::ListPartsResult>(body) {
        let _ = parts.parts();
    }
    let _ = xml::from_xml::<xml::ErrorBody>(body);
    let _ = xml::from_xml::<xml::DeleteResult>(body);
    let _ = xml::from_xml::<xml::CompleteMultipartUploadResult>(body);
    let _ = xml::from_xml::<xml::CopyObjectResult>(body);
    let _ = xml::from_xml::<xml::InitiateMultipartUploadResult>(body);
    let _ = xml::is_error_body(body);
}

fn contents() -> impl Strategy<Value = xml::Contents> {
    (hostile(), hostile(), hostile(), any::<u64>()).prop_map(|(key, last_modified, etag, size)| {
        xml::Contents {
            key,
            last_modified,
            etag,
            size,
            storage_class: String::new(),
        }
    })
}

fn list_result() -> impl Strategy<Value = ListBucketResult> {
    (
        prop::collection::vec(contents(), 0..6),
        prop::collection::vec(hostile(), 0..6),
        prop::option::of(hostile()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(contents, prefixes, next_marker, url, truncated)| ListBucketResult {
                name: "b-1".into(),
                encoding_type: url.then(|| "url".to_string()),
                max_keys: 1000,
                is_truncated: truncated,
                next_marker,
                common_prefixes: prefixes
                    .into_iter()
                    .map(|prefix| xml::CommonPrefix { prefix })
                    .collect(),
                contents,
                ..ListBucketResult::default()
            },
        )
}

fn page() -> impl Strategy<Value = ListPage> {
    let entry = hostile().prop_map(|key| ListEntry {
        key,
        size: 1,
        etag: "e".into(),
        last_modified: SystemTime::UNIX_EPOCH,
        storage_class: Default::default(),
    });
    (
        prop::collection::vec(entry, 0..12),
        prop::collection::vec(hostile(), 0..12),
    )
        .prop_map(|(objects, common_prefixes)| ListPage {
            objects,
            common_prefixes,
            next_marker: None,
            truncated: false,
        })
}

/// Authorization values: random fields in random order, some repeated.
fn authorization() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("q-sign-algorithm=sha1".to_string()),
        hostile().prop_map(|v| format!("q-sign-algorithm={v}")),
        Just("q-ak=AKIDfuzz".to_string()),
        hostile().prop_map(|v| format!("q-ak={v}")),
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| format!("q-key-time={a};{b}")),
        hostile().prop_map(|v| format!("q-key-time={v}")),
        hostile().prop_map(|v| format!("q-sign-time={v}")),
        Just("q-header-list=host;x-cos-a;x-cos-a;range".to_string()),
        hostile().prop_map(|v| format!("q-header-list={v}")),
        hostile().prop_map(|v| format!("q-url-param-list={v}")),
        "[0-9a-f]{0,50}".prop_map(|v| format!("q-signature={v}")),
        hostile(),
    ];
    prop::collection::vec(field, 0..10).prop_map(|f| f.join("&"))
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ])
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop::sample::select(vec![
        "host",
        "range",
        "x-cos-copy-source",
        "x-cos-copy-source-range",
        "x-cos-security-token",
        "content-length",
        "content-md5",
        "if-match",
        "x-cos-meta-mode",
        "x-cos-a",
    ]);
    prop::collection::vec((name, "[ -~]{0,40}"), 0..8).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            if let Ok(v) = v.parse() {
                h.append(n, v);
            }
        }
        h
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn xml_parsers_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..600)) {
        parse_everything(&body);
    }

    #[test]
    fn xml_parsers_never_panic_on_cos_shaped_documents(doc in xml_doc()) {
        parse_everything(doc.as_bytes());
    }

    #[test]
    fn list_pages_decode_or_fail_cleanly(result in list_result()) {
        let encoded = result.encoding_type.is_some();
        let keys: Vec<String> = result.contents.iter().map(|c| c.key.clone()).collect();
        if let Ok(page) = result.into_page() {
            if !encoded {
                for o in &page.objects {
                    prop_assert!(keys.contains(&o.key));
                }
            }
        }
    }

    #[test]
    fn authorization_parsing_and_checking_never_panic(
        value in authorization(),
        method in method(),
        path in hostile(),
        params in prop::collection::vec((hostile(), hostile()), 0..4),
        mut headers in headers(),
        now in any::<u32>(),
    ) {
        let _ = parse_authorization(&value);
        let _ = KeyTime::parse(&value);
        let keyring = Keyring::new([
            Credentials::permanent("AKIDfuzz", "secret"),
            Credentials::temporary(
                "AKIDtemp",
                "secret",
                "token",
                SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
            ),
        ]);
        if let Ok(v) = value.parse() {
            headers.insert("authorization", v);
        }
        let parts = SignedParts {
            method: method.as_str(),
            path: &path,
            params: &params,
            headers: &headers,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(now));
        let _ = authenticate(&keyring, &parts, now);
    }

    #[test]
    fn a_valid_signature_still_passes_with_hostile_paths_and_params(
        path in hostile(),
        params in prop::collection::vec(("[a-z-]{1,10}", hostile()), 0..4),
    ) {
        let path = format!("/{path}");
        let key_time = KeyTime { start: 1_000, end: 2_000_000_000 };
        let to_sign = StringToSign { method: "get", path: &path, params: &params, headers: &[] };
        let sig = sign(&to_sign, "AKIDfuzz", "secret", key_time);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", sig.authorization.parse().unwrap());
        let keyring = Keyring::new([Credentials::permanent("AKIDfuzz", "secret")]);
        let parts = SignedParts { method: "GET", path: &path, params: &params, headers: &headers };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        prop_assert!(authenticate(&keyring, &parts, now).is_ok());
    }

    #[test]
    fn routing_never_panics_and_keeps_keys_verbatim(
        method in method(),
        host in prop::option::of(hostile()),
        path in hostile(),
        query in hostile(),
        headers in headers(),
    ) {
        let buckets = vec!["b-1250000000".to_string(), "c-1".to_string()];
        let _ = Query::parse(Some(&query));
        let _ = cosmount::server::router::decode(&path);
        if let Ok(target) = route(host.as_deref(), &format!("/{path}"), &buckets) {
            prop_assert!(path.ends_with(&target.key), "the key is the rest of the path");
            let q = Query::parse(Some(&query)).unwrap_or_default();
            let _ = classify(&method, &target.key, &q, &headers);
        }
    }

    #[test]
    fn keys_survive_urls_and_no_dot_segment_reaches_a_url_parser(key in hostile()) {
        match encode_key(&key) {
            Ok(encoded) => {
                prop_assert_eq!(decode(&encoded).unwrap(), key);
                for segment in encoded.split('/') {
                    prop_assert!(segment != "." && segment != "..", "{}", encoded);
                }
            }
            Err(_) => prop_assert!(key.is_empty() || key == "." || key == ".."),
        }
    }

    #[test]
    fn listed_names_are_always_valid_file_names(prefix in hostile(), page in page()) {
        let mut listing = DirListing::default();
        listing.add_page(&prefix, &page);
        for name in listing.entries.keys() {
            prop_assert!(invalid_name(name).is_none(), "{:?}", name);
            prop_assert!(!name.contains('/'), "{:?} has a slash", name);
            prop_assert!(!name.is_empty() && name.len() <= NAME_MAX);
        }
    }
}

#[test]
fn known_nasty_inputs() {
    for body in [
        &b""[..],
        b"<",
        b"<?xml",
        b"<ListBucketResult><MaxKeys>-1</MaxKeys></ListBucketResult>",
        b"<ListBucketResult><Name/><MaxKeys>99999999999999999999</MaxKeys><IsTruncated>maybe</IsTruncated></ListBucketResult>",
        b"<ListBucketResult><Name>b</Name><MaxKeys>1</MaxKeys><IsTruncated>true</IsTruncated><EncodingType>url</EncodingType><Contents><Key>%FF%FE</Key><LastModified>x</LastModified><ETag>\"</ETag><Size>1</Size></Contents></ListBucketResult>",
        b"<Error><Code>&#0;</Code></Error>",
        b"\xff\xfe<\x00E\x00",
    ] {
        parse_everything(body);
    }
    assert!(parse_authorization("q-sign-algorithm=sha1&q-key-time=1").is_none());
    assert!(KeyTime::parse(";").is_none());
    for name in ["", ".", "..", "a/b", "\0", &"x".repeat(256)] {
        assert!(invalid_name(name).is_some(), "{name:?}");
    }
}

/// Random raw requests at a running server: whatever arrives, the server
/// answers or closes the connection, never panics, and keeps serving.
#[test]
fn random_requests_never_crash_the_server() {
    let cases = std::env::var("COSMOUNT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000usize);
    for public in [Some(Public::ReadWrite), None] {
        let server = TestServer::with(ServerOptions {
            public,
            log_filter: Some("warn".into()),
            ..ServerOptions::default()
        });
        let mut runner = proptest::test_runner::TestRunner::new(Config {
            cases: cases as u32,
            failure_persistence: None,
            ..Config::default()
        });
        let request = (
            method(),
            hostile(),
            hostile(),
            authorization(),
            headers(),
            hostile(),
        );
        for _ in 0..cases {
            let tree = request.new_tree(&mut runner).unwrap();
            let (method, path, query, auth, headers, body) = tree.current();
            let mut req = format!("{method} /{path}?{query} HTTP/1.1\r\nHost: b\r\n");
            req.push_str(&format!("Authorization: {auth}\r\n"));
            for (n, v) in &headers {
                if n != "content-length" && n != "host" {
                    req.push_str(&format!("{n}: {}\r\n", v.to_str().unwrap_or("")));
                }
            }
            req.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ));
            send(server.addr(), req.as_bytes());
        }
        // Still serving, and nothing panicked on the way.
        let alive = send(
            server.addr(),
            b"HEAD / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        );
        assert!(
            alive.starts_with(b"HTTP/1.1 "),
            "the server stopped answering"
        );
        let log = server.log_text();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    }
}

/// Sends raw bytes and reads whatever comes back (bounded by a timeout).
fn send(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}
