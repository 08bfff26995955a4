//! Server-side copies (chmod, chown, utimens, rename, in-place edits of
//! large files) never destroy data: in COS's dialect they are refused up
//! front on a server that is not COS (a real SeaweedFS mounted with
//! `--provider cos`), and a self-copy never rewrites a
//! version the mount did not see (another client writing through the
//! official Python SDK).

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::common::mount::TestMount;
use crate::common::seaweed::Seaweed;
use crate::common::{REGION, TestServer, sdk};

const SW_BUCKET: &str = "plain-1250000000";

/// A mount told the server speaks COS (`--provider cos`) when it does not.
fn seaweed_args(sw: &Seaweed) -> Vec<String> {
    [
        "--endpoint",
        &sw.url(),
        "--path-style",
        "--anonymous",
        "--region",
        REGION,
        "--provider",
        "cos",
    ]
    .map(String::from)
    .to_vec()
}

/// Runs `script` in the mount; it must fail, saying `message`.
fn refused(m: &TestMount, script: &str, message: &str) {
    let out = m.sh(script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "`{script}` succeeded; log:\n{}",
        m.log_text()
    );
    assert!(stderr.contains(message), "`{script}`: {stderr}");
}

/// A tar of two files and a directory with modes and old times.
fn archive(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("t/sub")).unwrap();
    std::fs::write(src.join("t/one"), b"first file\n").unwrap();
    std::fs::write(src.join("t/sub/two"), vec![7u8; 100_000]).unwrap();
    let tar = dir.join("t.tar");
    let ok = Command::new("sh")
        .arg("-c")
        .arg("chmod 640 t/one && chmod 700 t/sub && touch -d @1400000000 t/one t/sub/two t/sub t && tar -cf ../t.tar t")
        .current_dir(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the tar");
    tar
}

#[test]
fn a_server_that_is_not_cos_refuses_copies_and_keeps_every_byte() {
    let sw = Seaweed::start(SW_BUCKET);
    let m = TestMount::start_raw(SW_BUCKET, &seaweed_args(&sw));
    m.sh_ok("echo precious-data > f.txt && printf abc > a.txt && mkdir d && echo inner > d/g.txt");

    refused(&m, "chmod 600 f.txt", "Operation not supported");
    refused(&m, "chown 1:1 f.txt", "Operation not supported");
    refused(&m, "touch -d @1500000000 f.txt", "Operation not supported");
    // A folder this mount just made has no copy to refuse: its marker is
    // written afresh.
    m.sh_ok("chmod 700 d");
    // rename(2) answers EXDEV, so mv copies the data itself and succeeds
    // (it may warn that times and modes were not kept).
    refused(
        &m,
        "python3 -c 'import os; os.rename(\"a.txt\", \"r.txt\")'",
        "Invalid cross-device link",
    );
    m.sh_ok("mv a.txt b.txt && mv d d2");

    let tmp = tempfile::tempdir().unwrap();
    let tar = archive(tmp.path());
    // tar needs no copy: a file's owner, mode and times travel with its
    // upload, and the folders are this mount's own markers.
    m.sh_ok(&format!("tar -xf {}", tar.display()));

    // An in-place edit of a multipart-sized file: unchanged parts cannot
    // be copied server-side, so they are read back and uploaded.
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(m.join("big"), &big).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(m.join("big"))
        .unwrap();
    f.seek(SeekFrom::Start(10 << 20)).unwrap();
    f.write_all(b"EDITED").unwrap();
    drop(f);
    let mut edited = big.clone();
    edited[10 << 20..(10 << 20) + 6].copy_from_slice(b"EDITED");

    // Reads, listings, cp and rm go on working.
    assert_eq!(
        m.sh_ok("cat f.txt b.txt d2/g.txt"),
        "precious-data\nabcinner\n"
    );
    m.sh_ok("cp f.txt copy.txt && rm copy.txt && ls -la . d2 t t/sub >/dev/null");
    assert_eq!(std::fs::read(m.join("big")).unwrap(), edited);

    // What the server holds, read straight from it.
    let expected: &[(&str, &[u8])] = &[
        ("f.txt", b"precious-data\n"),
        ("b.txt", b"abc"),
        ("d2/g.txt", b"inner\n"),
        ("t/one", b"first file\n"),
        ("t/sub/two", &[7u8; 100_000]),
        ("big", &edited),
    ];
    for (key, bytes) in expected {
        let stored = sw.object(key).unwrap_or_else(|| panic!("{key} is missing"));
        assert!(
            stored == *bytes,
            "{key} holds {} bytes, not what was written",
            stored.len()
        );
    }
    for gone in ["a.txt", "d/g.txt", "copy.txt"] {
        assert_eq!(sw.object(gone), None, "{gone} should be gone");
    }
    for (key, size) in sw.listing() {
        assert!(
            size > 0 || key.ends_with('/'),
            "a 0-byte object {key:?} was left"
        );
    }

    let log = m.log_text();
    let warning = format!("the server at {} does not speak COS", sw.url());
    assert_eq!(log.matches(&warning).count(), 1, "{log}");
    let line = log.lines().find(|l| l.contains(&warning)).unwrap();
    for phrase in [
        "x-amz-request-id",
        "Server: SeaweedFS",
        "supported on Tencent Cloud COS and `cosmount serve`",
        "--provider s3",
    ] {
        assert!(line.contains(phrase), "wanted {phrase:?} in {line}");
    }

    let check = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .arg("check")
        .arg(SW_BUCKET)
        .args(seaweed_args(&sw))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("NOT COS (it answered HTTP"), "{report}");
    assert!(
        report.contains("refuses chmod, chown, touch -d and rename"),
        "{report}"
    );
}

#[test]
fn chmod_never_rewrites_a_version_another_client_wrote_since() {
    let server = TestServer::start();
    // A long TTL keeps the mount's view of the first version while the
    // other client writes: the window the precondition guards.
    let m = TestMount::start(&server, &["--metadata-ttl", "1h"]);
    std::fs::write(m.join("f"), b"mine").unwrap();
    assert_eq!(std::fs::metadata(m.join("f")).unwrap().len(), 4);

    let theirs = b"written by another client";
    let etag = sdk::put(&server, "f", theirs);
    // The first attempt sees a version it did not know and writes nothing
    // (ESTALE); the kernel revalidates and retries once, and the retry
    // changes the mode of their version, keeping their bytes.
    m.sh_ok("chmod 600 f");
    let log = m.log_text();
    assert!(
        log.contains(&format!(
            "\"f\" changed since it was read (ETag {etag} now)"
        )),
        "{log}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    let got = rt
        .block_on(cosmount::cos::ObjectClient::get(
            &client,
            "f",
            &Default::default(),
        ))
        .unwrap();
    assert_eq!(&got.body[..], theirs);
    assert_eq!(got.info.meta.get("mode").map(String::as_str), Some("33152"));
    let after = std::fs::metadata(m.join("f")).unwrap();
    assert_eq!(
        (after.len(), after.mode() & 0o777),
        (theirs.len() as u64, 0o600)
    );
    assert_eq!(std::fs::read(m.join("f")).unwrap(), theirs);
}

#[test]
fn objects_keep_how_they_are_stored_and_new_ones_get_the_mounts_settings() {
    let server = TestServer::start();
    let ia_aes = [
        "StorageClass=STANDARD_IA",
        "ServerSideEncryption=AES256",
        "ContentType=text/markdown",
        "CacheControl=max-age=60",
    ];
    sdk::put_with(&server, "ia.txt", b"infrequent\n", &ia_aes);
    let ia_kms = [
        "StorageClass=STANDARD_IA",
        "ServerSideEncryption=cos/kms",
        "SSEKMSKeyId=key-a",
        "ContentType=text/csv",
        "ContentDisposition=attachment",
    ];
    sdk::put_with(&server, "tree/a", b"a", &ia_kms);
    sdk::put_with(
        &server,
        "tree/b",
        b"b",
        &["StorageClass=INTELLIGENT_TIERING"],
    );
    sdk::put_with(
        &server,
        "cold.txt",
        b"archived\n",
        &["StorageClass=ARCHIVE"],
    );
    let m = TestMount::start(
        &server,
        &["-o", "storage_class=maz_standard,use_sse=kmsid:key-m"],
    );

    // Copies name the class and encryption their object has (COS would
    // make them STANDARD and unencrypted otherwise), and rewrites its
    // Content-Type and other headers (a PUT or a metadata rewrite drops
    // what it does not name): chmod, touch, xattrs, renames of a file and
    // of a folder, and an edit of the content.
    m.sh_ok("chmod 600 ia.txt && touch -d @1600000000 ia.txt && setfattr -n user.k -v v ia.txt");
    m.sh_ok("mv ia.txt moved.txt && mv tree renamed && echo more >> renamed/a");
    // New objects, folders and the largest files' multipart uploads get
    // the mount's class and encryption, and files the type their name
    // says (application/octet-stream without an extension).
    m.sh_ok("echo new > new.txt && mkdir newdir && head -c 20000000 /dev/zero > newdir/big");
    // A file written under a name that says no type takes the one its new
    // name says: a draft moved into place, and sed -i's temporary file.
    m.sh_ok("printf '<p>x</p>' > draft && mv draft page.html && sed -i s/x/y/ page.html");
    let head = sdk::head(
        &server,
        &[
            "moved.txt",
            "renamed/a",
            "renamed/b",
            "new.txt",
            "newdir/",
            "newdir/big",
            "page.html",
        ],
    );
    let header = |key: &str, name: &str, absent: &str| {
        head[key][name].as_str().unwrap_or(absent).to_string()
    };
    let class = |key: &str| header(key, "x-cos-storage-class", "STANDARD");
    let sse = |key: &str| {
        let algorithm = header(key, "x-cos-server-side-encryption", "none");
        let kms_key = header(key, "x-cos-server-side-encryption-cos-kms-key-id", "");
        format!("{algorithm} {kms_key}").trim().to_string()
    };
    assert_eq!(class("moved.txt"), "STANDARD_IA", "{head}");
    assert_eq!(sse("moved.txt"), "AES256", "{head}");
    assert_eq!(head["moved.txt"]["x-cos-meta-mode"], "33152", "{head}");
    assert_eq!(head["moved.txt"]["content-type"], "text/markdown", "{head}");
    assert_eq!(head["moved.txt"]["cache-control"], "max-age=60", "{head}");
    assert_eq!(class("renamed/a"), "STANDARD_IA", "{head}");
    assert_eq!(sse("renamed/a"), "cos/kms key-a", "{head}");
    assert_eq!(head["renamed/a"]["content-type"], "text/csv", "{head}");
    assert_eq!(
        head["renamed/a"]["content-disposition"], "attachment",
        "{head}"
    );
    assert_eq!(class("renamed/b"), "INTELLIGENT_TIERING", "{head}");
    assert_eq!(sse("renamed/b"), "none", "{head}");
    for key in ["new.txt", "newdir/", "newdir/big"] {
        assert_eq!(class(key), "MAZ_STANDARD", "{key}: {head}");
        assert_eq!(sse(key), "cos/kms key-m", "{key}: {head}");
    }
    assert_eq!(head["new.txt"]["content-type"], "text/plain", "{head}");
    assert_eq!(head["page.html"]["content-type"], "text/html", "{head}");
    assert_eq!(m.sh_ok("cat page.html"), "<p>y</p>");
    let untyped = &head["newdir/big"]["content-type"];
    assert_eq!(untyped, "application/octet-stream", "{head}");
    assert_eq!(m.sh_ok("cat renamed/a"), "amore\n");

    // An archived object is listed, and reading it fails with the
    // server's reason in the log: restore it first.
    assert_eq!(std::fs::metadata(m.join("cold.txt")).unwrap().len(), 9);
    let read = std::fs::read(m.join("cold.txt")).unwrap_err();
    assert_eq!(read.raw_os_error(), Some(libc::EACCES), "{read}");
    let log = m.log_text();
    assert!(
        log.contains("InvalidObjectState") && log.contains("restore it first"),
        "{log}"
    );
}
