//! Security promises: other users are kept out unless `--allow-other`,
//! and then the kernel checks mode bits (`default_permissions`) unless
//! that is explicitly turned off; TLS certificates are verified (a
//! self-signed endpoint is refused with a clear message); the embedded
//! server refuses unsigned or badly signed writes to a private bucket.
//! (Also proven elsewhere: passwd files readable by others are refused,
//! `tests/creds/passwd.rs`; no secret in trace logs, `tests/creds/leaks.rs`
//! and `tests/faults/mount.rs`; no key reaches outside `--root`,
//! `tests/server/raw.rs`.)

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};

use crate::common::mount::TestMount;
use crate::common::{BUCKET, REGION, SECRET_ID, SECRET_KEY, TestServer, raw_request};

/// The unprivileged user the tests act as.
const NOBODY: &str = "65534";

/// Runs `argv` as uid/gid 65534 with no supplementary groups.
fn as_nobody(argv: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .args(argv)
        .output()
        .expect("setpriv (util-linux)")
}

fn denied(out: &Output) -> bool {
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Permission denied")
}

fn mode(m: u32) -> ObjectAttrs {
    ObjectAttrs {
        meta: BTreeMap::from([
            ("mode".to_string(), m.to_string()),
            ("uid".to_string(), "0".to_string()),
            ("gid".to_string(), "0".to_string()),
        ]),
        ..ObjectAttrs::default()
    }
}

/// A mount whose folders other users may walk to.
fn mount(server: &TestServer, args: &[&str]) -> TestMount {
    let m = TestMount::start(server, args);
    let parent = m.path().parent().unwrap().to_path_buf();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    m
}

#[test]
fn other_users_need_allow_other_and_then_meet_the_mode_bits() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    rt.block_on(async {
        let body = Bytes::from_static(b"hello\n");
        client
            .put("public.txt", body.clone(), &mode(0o100644))
            .await
            .unwrap();
        client
            .put("private.txt", body, &mode(0o100600))
            .await
            .unwrap();
    });
    let path = |m: &TestMount, name: &str| m.join(name).display().to_string();

    // Default: no allow_other, nobody else may even look.
    let m = mount(&server, &[]);
    assert!(denied(&as_nobody(&[
        "stat",
        &m.path().display().to_string()
    ])));
    assert!(denied(&as_nobody(&["cat", &path(&m, "public.txt")])));
    assert_eq!(
        std::fs::read(m.join("private.txt")).unwrap(),
        b"hello\n",
        "root can"
    );
    drop(m);

    // allow_other: in, but the kernel checks the mode bits.
    let m = mount(&server, &["--allow-other"]);
    let public = as_nobody(&["cat", &path(&m, "public.txt")]);
    assert!(public.status.success(), "{public:?}");
    assert_eq!(public.stdout, b"hello\n");
    assert!(denied(&as_nobody(&["cat", &path(&m, "private.txt")])));
    assert!(
        denied(&as_nobody(&["touch", &path(&m, "new.txt")])),
        "root's folder"
    );
    assert!(!m.join("new.txt").exists());
    drop(m);

    // Only an explicit --no-default-permissions turns the check off.
    let m = mount(&server, &["--allow-other", "--no-default-permissions"]);
    let private = as_nobody(&["cat", &path(&m, "private.txt")]);
    assert!(private.status.success(), "{private:?}");
}

/// The set-ID bits go as Linux takes them (the mount drops them itself:
/// it tells the kernel it handles them, `FUSE_HANDLE_KILLPRIV_V2`): when
/// someone else writes or truncates a file (set-group-ID only when the
/// group may execute), not when root does; the mount shows it at once and
/// stores it. (A chown: `tests/mount/sharing.rs`.)
#[test]
fn set_id_bits_go_when_others_write_or_truncate_a_file() {
    let server = TestServer::start();
    let m = mount(&server, &["--allow-other"]);
    let dir = m.join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let files = [
        ("appended", 0o6777, "echo x >> appended", 0o777),
        ("truncated", 0o6777, "truncate -s 0 truncated", 0o777),
        ("opened-empty", 0o6777, ": > opened-empty", 0o777),
        ("locking", 0o2767, "echo x >> locking", 0o2767),
    ];
    for (name, mode, _, _) in files {
        std::fs::write(dir.join(name), "data\n").unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let by_root = dir.join("by-root");
    std::fs::write(&by_root, "data\n").unwrap();
    std::fs::set_permissions(&by_root, std::fs::Permissions::from_mode(0o6755)).unwrap();
    let mode_of =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    for (name, _, script, want) in files {
        let cd = format!("cd '{}' && {script}", dir.display());
        let out = as_nobody(&["sh", "-c", &cd]);
        assert!(out.status.success(), "{script}: {out:?}");
        assert_eq!(mode_of(&dir.join(name)), want, "{script}, as seen at once");
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&by_root)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"more\n"))
        .unwrap();
    assert_eq!(mode_of(&by_root), 0o6755, "root keeps them");
    drop(m);
    let fresh = TestMount::start(&server, &[]);
    for (name, _, script, want) in files {
        assert_eq!(
            mode_of(&fresh.join(&format!("shared/{name}"))),
            want,
            "{script}, stored"
        );
    }
    assert_eq!(mode_of(&fresh.join("shared/by-root")), 0o6755);
}

/// `openssl s_server` with a fresh self-signed certificate for 127.0.0.1.
struct SelfSigned {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl SelfSigned {
    fn start() -> SelfSigned {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(made.status.success(), "{made:?}");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s_server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        SelfSigned {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_self_signed_https_endpoint_is_refused_with_a_clear_message() {
    let tls = SelfSigned::start();
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();
    let endpoint = format!("https://127.0.0.1:{}", tls.port);
    let out = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args([BUCKET, &mountpoint.display().to_string()])
        .args(["--endpoint", &endpoint, "--region", REGION])
        .args(["--secret-id", SECRET_ID, "--secret-key", SECRET_KEY])
        .args(["--retries", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("certificate") && stderr.contains("not trusted"),
        "the reason is named: {stderr}"
    );
    assert!(!stderr.contains(SECRET_KEY));
    let check = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(["check", BUCKET, "--endpoint", &endpoint, "--region", REGION])
        .args(["--secret-id", SECRET_ID, "--secret-key", SECRET_KEY])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{report}");
    assert!(report.contains("certificate"), "{report}");
}

#[test]
fn unsigned_or_badly_signed_writes_to_a_private_bucket_are_refused() {
    let server = TestServer::start();
    let requests: [&[u8]; 5] = [
        b"PUT /sneaky HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        b"POST /sneaky?uploads HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"PUT /sneaky HTTP/1.1\r\nHost: h\r\nx-cos-copy-source: test-1250000000.cos.ap-guangzhou.myqcloud.com/x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"DELETE /sneaky HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        b"PUT /sneaky HTTP/1.1\r\nHost: h\r\nAuthorization: q-sign-algorithm=sha1&q-ak=AKIDcosmountTEST0000&q-sign-time=1;9999999999&q-key-time=1;9999999999&q-header-list=&q-url-param-list=&q-signature=0000\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    ];
    for req in requests {
        let r = raw_request(server.addr(), req);
        assert_eq!(r.status, 403, "{}", r.head);
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            body.contains("AccessDenied") || body.contains("SignatureDoesNotMatch"),
            "{body}"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    assert!(
        rt.block_on(client.head("sneaky"))
            .unwrap_err()
            .is_not_found()
    );
    assert!(rt.block_on(client.list_uploads("")).unwrap().is_empty());
}
