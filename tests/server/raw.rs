//! `cosmount serve` over hand-written HTTP: paths no client library would
//! send (traversal attempts, control characters, huge keys) must neither
//! escape `--root` nor crash the server, and responses must spell headers
//! the way COS does. Also the process contract: startup lines, errors, and
//! exit status 0 on SIGTERM.

use std::path::{Path, PathBuf};

use crate::common::{BUCKET, Public, ServerOptions, TestServer, raw_request};

fn put(server: &TestServer, path: &str, body: &str) -> u16 {
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_request(server.addr(), req.as_bytes()).status
}

fn get(server: &TestServer, path: &str) -> (u16, Vec<u8>) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let r = raw_request(server.addr(), req.as_bytes());
    (r.status, r.body)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn no_request_path_reaches_outside_the_root() {
    let server = TestServer::with(ServerOptions::public(Public::ReadWrite));
    let outside = server.outside_root().to_path_buf();
    let canary = outside.join("canary");
    std::fs::write(&canary, "CANARY-SECRET").unwrap();
    let before: Vec<PathBuf> = files(&outside)
        .into_iter()
        .filter(|p| !p.starts_with(server.root()))
        .collect();
    let long = format!("/{}", "k".repeat(850));
    let paths = [
        "/../canary",
        "/../x",
        "/%2e%2e/canary",
        "/%2e%2e/x",
        "/a/../../b",
        "/a/../../canary",
        "/..%2F..%2Fetc/passwd",
        "/..%2f..%2f..%2fcanary",
        "/%2E%2E%2F%2E%2E%2Fcanary",
        "/./canary",
        "/%00nul",
        "/ctl%01%0A%0D",
        "/%2F%2F/abs",
        "//etc/passwd",
        long.as_str(),
    ];
    for path in paths {
        let status = put(&server, path, "PAYLOAD");
        assert!(status == 200 || status == 400, "PUT {path}: {status}");
        if status == 200 {
            let (status, body) = get(&server, path);
            assert_eq!(
                (status, body.as_slice()),
                (200, b"PAYLOAD".as_slice()),
                "GET {path}"
            );
        }
    }
    for path in [
        "/../canary",
        "/%2e%2e/canary",
        "/..%2f..%2f..%2fcanary",
        "/../../etc/passwd",
    ] {
        let (_, body) = get(&server, &format!("{path}-never-written"));
        assert!(
            !String::from_utf8_lossy(&body).contains("CANARY"),
            "GET {path}"
        );
        let (_, body) = get(&server, "/etc/passwd");
        assert!(
            !String::from_utf8_lossy(&body).contains("root:"),
            "GET /etc/passwd"
        );
    }
    // A key of 851 bytes is refused; 850 bytes (above) worked.
    assert_eq!(put(&server, &format!("/{}", "k".repeat(851)), "x"), 400);
    // Hyper refuses raw control characters in the request line before we see it.
    let raw =
        b"PUT /raw\x01ctl HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx";
    assert_eq!(raw_request(server.addr(), raw).status, 400);

    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "CANARY-SECRET");
    let after: Vec<PathBuf> = files(&outside)
        .into_iter()
        .filter(|p| !p.starts_with(server.root()))
        .collect();
    assert_eq!(before, after, "files appeared outside the root");
    for f in files(server.root()) {
        let rel = f.strip_prefix(server.root()).unwrap();
        let parts: Vec<_> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(parts[0], BUCKET, "{rel:?}");
        assert!(
            matches!(parts[1].as_str(), "objects" | "uploads"),
            "{rel:?}"
        );
        assert!(
            parts.iter().all(|p| p != ".." && !p.contains("canary")),
            "{rel:?}"
        );
    }
    let r = raw_request(
        server.addr(),
        b"GET /?encoding-type=url HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let listing = String::from_utf8_lossy(&r.body);
    assert!(listing.contains("<Key>../canary</Key>"), "{listing}");
    assert!(listing.contains("<Key>a/../../b</Key>"), "{listing}");
    assert!(listing.contains("<Key>%00nul</Key>"), "{listing}");
}

#[test]
fn responses_spell_headers_like_cos() {
    let server = TestServer::with(ServerOptions::public(Public::ReadWrite));
    let req = b"PUT /obj HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nx-cos-meta-Mode: 33188\r\nConnection: close\r\n\r\nhello";
    let r = raw_request(server.addr(), req);
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.header("ETag").is_some(), "{}", r.head);
    assert!(r.header("x-cos-hash-crc64ecma").is_some(), "{}", r.head);
    let r = raw_request(
        server.addr(),
        b"GET /obj HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"ell");
    for name in [
        "Content-Length",
        "Content-Type",
        "ETag",
        "Last-Modified",
        "Content-Range",
        "Accept-Ranges",
        "Date",
        "Server",
    ] {
        assert!(
            r.header(name).is_some(),
            "{name} missing or misspelled in\n{}",
            r.head
        );
    }
    for name in [
        "x-cos-request-id",
        "x-cos-hash-crc64ecma",
        "x-cos-meta-mode",
    ] {
        assert!(
            r.header(name).is_some(),
            "{name} missing or misspelled in\n{}",
            r.head
        );
    }
    assert_eq!(r.header("Content-Range"), Some("bytes 1-3/5"));
    assert_eq!(r.header("x-cos-meta-mode"), Some("33188"));
    let r = raw_request(
        server.addr(),
        b"HEAD /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    assert!(r.header("x-cos-request-id").is_some());
    let r = raw_request(
        server.addr(),
        b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains("<Code>NoSuchKey</Code>") && body.contains("<RequestId>"),
        "{body}"
    );
    assert_eq!(r.header("Content-Type"), Some("application/xml"));
}

#[test]
fn sigterm_exits_cleanly_and_bad_arguments_give_one_line_errors() {
    let mut server = TestServer::start();
    assert!(server.terminate().success());

    let fail = |options: ServerOptions| match TestServer::try_with(options) {
        Ok(s) => panic!("the server started on {}", s.addr()),
        Err(e) => e,
    };
    let bad_bucket = fail(ServerOptions {
        buckets: vec!["NoAppid".into()],
        ..ServerOptions::default()
    });
    assert!(
        bad_bucket.contains("cosmount: bad bucket name \"NoAppid\""),
        "{bad_bucket}"
    );
    let no_key = fail(ServerOptions {
        keys: None,
        extra_args: vec!["--secret-id".into(), "AKID".into()],
        ..ServerOptions::default()
    });
    assert!(
        no_key.contains("cosmount: --secret-id needs --secret-key"),
        "{no_key}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let bad_root = fail(ServerOptions {
        root: Some(file),
        ..ServerOptions::default()
    });
    assert!(bad_root.contains("is not a folder"), "{bad_root}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let busy_port = fail(ServerOptions {
        listen: format!("127.0.0.1:{port}"),
        ..ServerOptions::default()
    });
    assert!(
        busy_port.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{busy_port}"
    );
    for e in [bad_bucket, no_key, bad_root, busy_port] {
        assert!(!e.contains("panicked"), "{e}");
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    }
}

fn send(server: &TestServer, head: &str, body: &str) -> crate::common::RawResponse {
    let req = format!("{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n{body}");
    raw_request(server.addr(), req.as_bytes())
}

#[test]
fn cosfs_copy_forms_and_request_validation() {
    let server = TestServer::with(ServerOptions::public(Public::ReadWrite));
    assert_eq!(put(&server, "/src%20key", "data"), 200);
    let copy = send(
        &server,
        &format!(
            "PUT /dst HTTP/1.1\r\nContent-Length: 0\r\nx-cos-copy-source: /{BUCKET}/src%20key\r\n\
             x-cos-metadata-directive: REPLACE\r\nx-cos-meta-mode: 33261"
        ),
        "",
    );
    assert_eq!(copy.status, 200, "{}", String::from_utf8_lossy(&copy.body));
    assert!(String::from_utf8_lossy(&copy.body).contains("<CopyObjectResult>"));
    let head = send(&server, "HEAD /dst HTTP/1.1", "");
    assert_eq!(
        head.header("x-cos-meta-mode"),
        Some("33261"),
        "{}",
        head.head
    );
    let bad = send(
        &server,
        "PUT /dst2 HTTP/1.1\r\nContent-Length: 0\r\nx-cos-copy-source: /nobody-1/x",
        "",
    );
    assert_eq!(bad.status, 404);
    let missing = send(
        &server,
        &format!(
            "PUT /dst2 HTTP/1.1\r\nContent-Length: 0\r\nx-cos-copy-source: {BUCKET}.cos.ap-guangzhou.myqcloud.com/none"
        ),
        "",
    );
    assert!(String::from_utf8_lossy(&missing.body).contains("NoSuchKey"));

    let body = "<Delete><Object><Key>dst</Key></Object></Delete>";
    let no_md5 = send(
        &server,
        &format!("POST /?delete HTTP/1.1\r\nContent-Length: {}", body.len()),
        body,
    );
    assert_eq!(no_md5.status, 400);
    assert!(String::from_utf8_lossy(&no_md5.body).contains("MissingContentMD5"));
    let bad_md5 = send(
        &server,
        "PUT /k HTTP/1.1\r\nContent-Length: 4\r\nContent-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==",
        "data",
    );
    assert!(String::from_utf8_lossy(&bad_md5.body).contains("BadDigest"));
    assert_eq!(
        send(&server, "HEAD /k HTTP/1.1", "").status,
        404,
        "a bad digest stores nothing"
    );
    let no_length = send(&server, "PUT /k HTTP/1.1", "");
    assert_eq!(no_length.status, 411);
    let acl = send(&server, "GET /k?acl HTTP/1.1", "");
    assert_eq!(acl.status, 501);
}

/// The text between `<tag>` and `</tag>` in an XML body.
fn xml_field(body: &[u8], tag: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let start = text.find(&format!("<{tag}>")).expect(tag) + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>")).expect(tag) + start;
    text[start..end].to_string()
}

/// S3 clients spell the copy headers `x-amz-*` (rclone's set-modtime copy,
/// byte for byte): they must copy, never store the empty request body.
#[test]
fn s3_spelled_copies_copy() {
    let server = TestServer::with(ServerOptions::public(Public::ReadWrite));
    assert_eq!(put(&server, "/src%20key", "data"), 200);
    let copy = send(
        &server,
        &format!(
            "PUT /{BUCKET}/src%20key HTTP/1.1\r\nContent-Length: 0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nX-Amz-Acl: private\r\n\
             X-Amz-Copy-Source: {BUCKET}/src%20key\r\nX-Amz-Meta-Mtime: 1577836800\r\n\
             X-Amz-Metadata-Directive: REPLACE"
        ),
        "",
    );
    assert_eq!(copy.status, 200, "{}", String::from_utf8_lossy(&copy.body));
    assert!(String::from_utf8_lossy(&copy.body).contains("<CopyObjectResult>"));
    assert_eq!(get(&server, "/src%20key"), (200, b"data".to_vec()));
    let head = send(&server, "HEAD /src%20key HTTP/1.1", "");
    assert_eq!(
        head.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );

    let failed = send(
        &server,
        &format!(
            "PUT /dst HTTP/1.1\r\nContent-Length: 0\r\nx-amz-copy-source: /{BUCKET}/src%20key\r\n\
             x-amz-copy-source-if-match: \"not-the-etag\""
        ),
        "",
    );
    assert_eq!(failed.status, 412);

    let init = send(
        &server,
        "POST /dst?uploads HTTP/1.1\r\nContent-Length: 0",
        "",
    );
    let id = xml_field(&init.body, "UploadId");
    let part = send(
        &server,
        &format!(
            "PUT /dst?partNumber=1&uploadId={id} HTTP/1.1\r\nContent-Length: 0\r\n\
             x-amz-copy-source: {BUCKET}/src%20key\r\nx-amz-copy-source-range: bytes=1-2"
        ),
        "",
    );
    assert_eq!(part.status, 200, "{}", String::from_utf8_lossy(&part.body));
    let etag = xml_field(&part.body, "ETag");
    let done = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let complete = send(
        &server,
        &format!(
            "POST /dst?uploadId={id} HTTP/1.1\r\nContent-Length: {}",
            done.len()
        ),
        &done,
    );
    assert_eq!(
        complete.status,
        200,
        "{}",
        String::from_utf8_lossy(&complete.body)
    );
    assert_eq!(get(&server, "/dst"), (200, b"at".to_vec()));
}
