//! Each way of addressing a bucket mounts against `cosmount serve`: a custom
//! endpoint path-style, COS's own domains virtual-hosted (the Host header
//! names the bucket), path-style and accelerate, sent to loopback with
//! `--resolve`; anonymous mounts of a public bucket; and the static-website
//! domain, which never lists and refuses writes with EROFS. The server
//! serves two buckets, so a request whose path does not name the bucket
//! reaches the right one only through its Host.

use std::collections::BTreeSet;

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};
use cosmount::creds::Credentials;

use crate::common::mount::TestMount;
use crate::common::{BUCKET, Public, REGION, SECRET_ID, SECRET_KEY, ServerOptions, TestServer};

const OTHER: &str = "other-1250000000";

fn keys() -> Vec<String> {
    vec![
        "--secret-id".into(),
        SECRET_ID.into(),
        "--secret-key".into(),
        SECRET_KEY.into(),
    ]
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `--resolve HOST:ADDR` sending HOST to the server.
fn resolve(server: &TestServer, host: &str) -> Vec<String> {
    vec!["--resolve".into(), format!("{host}:{}", server.addr())]
}

fn put(server: &TestServer, bucket: &str, files: &[(&str, &str)]) {
    let client =
        server.client_virtual_hosted(bucket, Some(Credentials::permanent(SECRET_ID, SECRET_KEY)));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (key, body) in files {
            let body = Bytes::from(body.to_string());
            client
                .put(key, body, &ObjectAttrs::default())
                .await
                .unwrap();
        }
    });
}

fn names(m: &TestMount) -> BTreeSet<String> {
    std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn two_buckets(options: ServerOptions) -> TestServer {
    let server = TestServer::with(ServerOptions {
        buckets: vec![BUCKET.into(), OTHER.into()],
        ..options
    });
    put(&server, BUCKET, &[("in-test.txt", "test bucket\n")]);
    put(&server, OTHER, &[("in-other.txt", "other bucket\n")]);
    server
}

/// Mounts OTHER with `addressing`, checks it shows OTHER's files only.
fn mounts_other(addressing: &[String]) {
    let all = [addressing, &keys()[..]].concat();
    let m = TestMount::start_raw(OTHER, &all);
    assert_eq!(
        names(&m),
        BTreeSet::from(["in-other.txt".to_string()]),
        "{addressing:?}"
    );
    assert_eq!(m.sh_ok("cat in-other.txt"), "other bucket\n");
}

#[test]
fn path_style_virtual_hosted_and_accelerate_mounts_reach_the_right_bucket() {
    let server = two_buckets(ServerOptions::default());
    let url = server.url();
    mounts_other(&args(&[
        "--endpoint",
        &url,
        "--path-style",
        "--region",
        REGION,
    ]));
    let virtual_hosted = format!("{OTHER}.cos.{REGION}.myqcloud.com");
    mounts_other(
        &[
            args(&["--region", REGION, "--http"]),
            resolve(&server, &virtual_hosted),
        ]
        .concat(),
    );
    let path_style = format!("cos.{REGION}.myqcloud.com");
    mounts_other(
        &[
            args(&["--region", REGION, "--http", "--path-style"]),
            resolve(&server, &path_style),
        ]
        .concat(),
    );
    let accelerate = format!("{OTHER}.cos.accelerate.myqcloud.com");
    mounts_other(
        &[
            args(&["--region", REGION, "--http", "--accelerate"]),
            resolve(&server, &accelerate),
        ]
        .concat(),
    );
    // The server never saw a request for the other bucket.
    server.reset_stats();
    let m = TestMount::start_raw(
        BUCKET,
        &[
            args(&["--region", REGION, "--http"]),
            resolve(&server, &format!("{BUCKET}.cos.{REGION}.myqcloud.com")),
            keys(),
        ]
        .concat(),
    );
    assert_eq!(names(&m), BTreeSet::from(["in-test.txt".to_string()]));
}

#[test]
fn anonymous_mount_reads_a_public_bucket() {
    let server = two_buckets(ServerOptions::public(Public::Read));
    server.reset_stats();
    let m = TestMount::start_raw(
        BUCKET,
        &args(&[
            "--endpoint",
            &server.url(),
            "--path-style",
            "--region",
            REGION,
            "--anonymous",
        ]),
    );
    assert_eq!(names(&m), BTreeSet::from(["in-test.txt".to_string()]));
    assert_eq!(m.sh_ok("cat in-test.txt"), "test bucket\n");
    let auth = server.admin_json("/stats/auth");
    assert!(auth["anonymous"].as_u64().unwrap() >= 3, "{auth}");
    assert_eq!(auth["permanent"], 0, "{auth}");

    // Writes are refused (403): each fails where the application sees it,
    // and the same refusal is warned about a few times, not once per file
    // and operation (the rest are logged at debug level).
    for i in 0..8 {
        // bash names the errno (dash says "I/O error" for any).
        let write = m.sh(&format!("bash -c 'echo x > new{i}'"));
        let stderr = String::from_utf8_lossy(&write.stderr);
        assert!(stderr.contains("Permission denied"), "{stderr}");
    }
    let log = m.log_text();
    let uploads = |level: &str| {
        log.lines()
            .filter(|l| l.contains(level) && l.contains("uploading \"new"))
            .count()
    };
    assert_eq!((uploads(" WARN "), uploads(" DEBUG ")), (5, 3), "{log}");
    assert!(!log.contains("Authorization"));
}

#[test]
fn website_mount_looks_up_by_head_never_lists_and_is_read_only() {
    let server = TestServer::with(ServerOptions::public(Public::Read));
    put(
        &server,
        BUCKET,
        &[
            ("index.html", "<h1>home</h1>\n"),
            ("docs/", ""),
            ("docs/page.html", "<p>page</p>\n"),
            ("hidden.txt", "not looked up\n"),
        ],
    );
    server.reset_stats();
    let website = format!("{BUCKET}.cos-website.{REGION}.myqcloud.com");
    let m = TestMount::start_raw(
        BUCKET,
        &[
            args(&["--region", REGION, "--http", "--website", "--anonymous"]),
            resolve(&server, &website),
        ]
        .concat(),
    );
    assert_eq!(
        m.sh_ok("cat index.html docs/page.html"),
        "<h1>home</h1>\n<p>page</p>\n"
    );
    assert_eq!(
        names(&m),
        BTreeSet::from(["docs".to_string(), "index.html".to_string()]),
        "only names looked up so far"
    );
    assert!(m.sh("cat missing.html").status.code() != Some(0));
    let write = std::fs::write(m.join("new.html"), b"x").unwrap_err();
    assert_eq!(write.raw_os_error(), Some(libc::EROFS), "{write}");
    let mkdir = std::fs::create_dir(m.join("newdir")).unwrap_err();
    assert_eq!(mkdir.raw_os_error(), Some(libc::EROFS), "{mkdir}");
    let stats = server.stats();
    assert_eq!(stats["ListObjects"], 0, "{stats}");
    assert!(stats["HeadObject"].as_u64().unwrap() >= 4, "{stats}");
}
