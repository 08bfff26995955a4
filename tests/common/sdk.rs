//! The official COS Python SDK as another client of the test server
//! (`scripts/test.sh` installs it in `.venv`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{BUCKET, SECRET_ID, SECRET_KEY, TestServer};

/// Runs `tests/python/SCRIPT ARGS` against `server` with `stdin`; its output.
fn run(server: &TestServer, script: &str, args: &[&str], stdin: &[u8]) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(repo.join(".venv/bin/python"))
        .arg(repo.join("tests/python").join(script))
        .args(args)
        .env("COSMOUNT_TEST_ADDR", server.addr().to_string())
        .env("COSMOUNT_TEST_BUCKET", BUCKET)
        .env("COSMOUNT_TEST_SECRET_ID", SECRET_ID)
        .env("COSMOUNT_TEST_SECRET_KEY", SECRET_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Python SDK (scripts/test.sh installs it in .venv)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `body` as `key` through the SDK; its ETag.
pub fn put(server: &TestServer, key: &str, body: &[u8]) -> String {
    run(server, "sdk_put.py", &[key], body)
}

/// Writes `body` as `key` through the SDK with put_object's own
/// `Name=Value` arguments (`StorageClass=STANDARD_IA`,
/// `ServerSideEncryption=AES256`, ...).
pub fn put_with(server: &TestServer, key: &str, body: &[u8], args: &[&str]) -> String {
    let argv: Vec<&str> = [key].into_iter().chain(args.iter().copied()).collect();
    run(server, "sdk_put.py", &argv, body)
}

/// The `x-cos-meta-*` headers, ETag, CRC64, storage class (absent:
/// STANDARD), encryption headers (absent: none), Content-Type and the
/// other standard object headers of `keys` as the SDK reads them, by key
/// (header names in lower case).
pub fn head(server: &TestServer, keys: &[&str]) -> serde_json::Value {
    serde_json::from_str(&run(server, "sdk_head.py", keys, b"")).expect("sdk_head.py prints JSON")
}
