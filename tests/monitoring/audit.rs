//! The audit log of a real mount: a scripted sequence of changes (one of
//! them failing) gives exactly the lines a model of the sequence predicts;
//! SIGHUP after a rename (logrotate) loses no line; no secret appears in
//! the audit log, the debug log, `/metrics` or `/status`.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::mount::{TestMount, wait_for};
use crate::common::{SECRET_KEY, TestServer, free_ports, http_get};

/// One line the model predicts: op, path, new path, result, bytes.
type Expected = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<u64>,
);

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn summary(line: &Value) -> (String, String, Option<String>, String, Option<u64>) {
    (
        line["op"].as_str().unwrap().to_string(),
        line["path"].as_str().unwrap().to_string(),
        line["new_path"].as_str().map(str::to_string),
        line["result"].as_str().unwrap().to_string(),
        line["bytes"].as_u64(),
    )
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let (path, name) = (
        CString::new(path.as_os_str().as_encoded_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

fn audited_mount(server: &TestServer, audit: &Path, extra: &[&str]) -> TestMount {
    let audit = audit.to_str().unwrap();
    let mut args = vec!["--audit-log", audit];
    args.extend_from_slice(extra);
    TestMount::start(server, &args)
}

/// Waits until the audit log holds `n` lines.
fn wait_for_lines(path: &Path, n: usize) {
    wait_for(&format!("{n} audit lines in {}", path.display()), || {
        lines(path).len() >= n
    });
}

#[test]
fn audit_lines_follow_the_operations() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("mount.audit.log");
    let m = audited_mount(&server, &audit, &[]);
    let p = |rel: &str| -> PathBuf { m.join(rel) };

    let mut expected: Vec<Expected> = Vec::new();
    let mut file = std::fs::File::create(p("a.txt")).unwrap();
    file.write_all(b"hello").unwrap();
    drop(file);
    expected.push(("create", "/a.txt", None, "ok", None));
    expected.push(("write-close", "/a.txt", None, "ok", Some(5)));
    std::fs::create_dir(p("d")).unwrap();
    expected.push(("mkdir", "/d", None, "ok", None));
    std::fs::rename(p("a.txt"), p("d/b.txt")).unwrap();
    expected.push(("rename", "/a.txt", Some("/d/b.txt"), "ok", None));
    std::fs::set_permissions(p("d/b.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    expected.push(("setattr", "/d/b.txt", None, "ok", None));
    std::fs::OpenOptions::new()
        .write(true)
        .open(p("d/b.txt"))
        .unwrap()
        .set_len(2)
        .unwrap();
    expected.push(("truncate", "/d/b.txt", None, "ok", Some(2)));
    std::os::unix::fs::symlink("b.txt", p("d/link")).unwrap();
    expected.push(("symlink", "/d/link", Some("b.txt"), "ok", None));
    set_xattr(&p("d/b.txt"), "user.note", b"kept");
    expected.push(("setxattr", "/d/b.txt", None, "ok", None));
    let err = std::fs::remove_dir(p("d")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
    expected.push(("rmdir", "/d", None, "ENOTEMPTY", None));
    std::fs::remove_file(p("d/link")).unwrap();
    expected.push(("unlink", "/d/link", None, "ok", None));
    std::fs::remove_file(p("d/b.txt")).unwrap();
    expected.push(("unlink", "/d/b.txt", None, "ok", None));
    std::fs::remove_dir(p("d")).unwrap();
    expected.push(("rmdir", "/d", None, "ok", None));

    wait_for_lines(&audit, expected.len());
    let got = lines(&audit);
    let summaries: Vec<_> = got.iter().map(summary).collect();
    let wanted: Vec<_> = expected
        .iter()
        .map(|(op, path, new_path, result, bytes)| {
            (
                op.to_string(),
                path.to_string(),
                new_path.map(str::to_string),
                result.to_string(),
                *bytes,
            )
        })
        .collect();
    assert_eq!(summaries, wanted);
    // FUSE names the calling thread (its id is the pid of a
    // single-threaded program).
    // SAFETY: gettid cannot fail.
    let me = unsafe { libc::gettid() };
    for line in &got {
        assert_eq!(line["pid"].as_i64(), Some(i64::from(me)), "{line}");
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!(line["uid"].as_u64(), Some(u64::from(uid)), "{line}");
        assert_eq!(line["gid"].as_u64(), Some(u64::from(gid)), "{line}");
        assert!(line["duration_us"].is_u64(), "{line}");
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
    }
}

#[test]
fn sighup_reopens_the_audit_log_without_losing_a_line() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("mount.audit.log");
    let rotated = dir.path().join("mount.audit.log.1");
    let port = free_ports(1)[0].to_string();
    let listen = format!("127.0.0.1:{port}");
    let m = audited_mount(
        &server,
        &audit,
        &["--audit-reads", "--metrics-listen", &listen],
    );
    for i in 0..50 {
        std::fs::write(m.join(&format!("f{i}")), b"x").unwrap();
    }
    // Rotation as logrotate does it: rename, then SIGHUP; files keep
    // changing all along.
    std::fs::rename(&audit, &rotated).unwrap();
    for i in 50..60 {
        std::fs::write(m.join(&format!("f{i}")), b"x").unwrap();
    }
    // SAFETY: signalling the daemon this test started.
    assert_eq!(unsafe { libc::kill(m.pid() as i32, libc::SIGHUP) }, 0);
    wait_for("the reopened audit log", || audit.exists());
    for i in 60..100 {
        std::fs::write(m.join(&format!("f{i}")), b"x").unwrap();
    }
    assert_eq!(std::fs::read(m.join("f7")).unwrap(), b"x");
    // 100 files: create and write-close each, then one open for reading.
    let total = 201;
    wait_for("every audit line", || {
        lines(&audit).len() + lines(&rotated).len() >= total
    });
    let (old, new) = (lines(&rotated), lines(&audit));
    assert_eq!(old.len() + new.len(), total);
    assert!(
        old.len() >= 100,
        "lines before the rename stay in the old file"
    );
    let creates: Vec<String> = old
        .iter()
        .chain(&new)
        .filter(|l| l["op"] == "create")
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    let wanted: Vec<String> = (0..100).map(|i| format!("/f{i}")).collect();
    assert_eq!(creates, wanted, "every create, once, in order");
    let last = new.last().unwrap();
    assert_eq!(
        (last["op"].as_str(), last["path"].as_str()),
        (Some("open-read"), Some("/f7")),
        "lines are written before the application has its answer"
    );

    let get = |path: &str| {
        String::from_utf8_lossy(&http_get(listen.parse().unwrap(), path).body).into_owned()
    };
    let metrics = get("/metrics");
    assert!(
        metrics.contains(&format!("cosmount_audit_lines_total {total}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("cosmount_audit_dropped_lines_total 0"),
        "{metrics}"
    );
    let status = get("/status");
    assert!(status.contains("\"bucket\""), "{status}");
    for (name, text) in [
        ("audit log", std::fs::read_to_string(&audit).unwrap()),
        (
            "rotated audit log",
            std::fs::read_to_string(&rotated).unwrap(),
        ),
        ("debug log", m.log_text()),
        ("/metrics", metrics),
        ("/status", status),
    ] {
        assert!(
            !text.contains(SECRET_KEY),
            "the secret key is in the {name}"
        );
    }
}

#[test]
fn metrics_refuse_a_remote_address_unless_asked() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args([
            "--local",
            "/nonexistent",
            "/nonexistent",
            "--metrics-listen",
            "0.0.0.0:9464",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--metrics-listen 0.0.0.0:9464 is reachable from other hosts")
            && stderr.contains("--metrics-allow-remote"),
        "{stderr}"
    );
}
