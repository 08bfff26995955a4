//! The official Tencent COS Python SDK (`cos-python-sdk-v5`) as a client of
//! `cosmount serve`: runs `tests/python/test_sdk.py` with the interpreter of
//! `<repo>/.venv` (made by `scripts/test.sh`). A missing venv fails the test:
//! SDK compatibility is a promise, not an optional extra.

use std::path::Path;
use std::process::Command;

use crate::common::{BUCKET, SECRET_ID, SECRET_KEY, TestServer};

#[test]
fn the_official_python_sdk_works_against_the_server() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = repo.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: create it with `python3 -m venv .venv && .venv/bin/pip install cos-python-sdk-v5` \
         (scripts/test.sh does this)",
        python.display()
    );
    let server = TestServer::start();
    let output = Command::new(&python)
        .arg(repo.join("tests/python/test_sdk.py"))
        .env("COSMOUNT_TEST_ADDR", server.addr().to_string())
        .env("COSMOUNT_TEST_BUCKET", BUCKET)
        .env("COSMOUNT_TEST_SECRET_ID", SECRET_ID)
        .env("COSMOUNT_TEST_SECRET_KEY", SECRET_KEY)
        .output()
        .expect("run the Python SDK test");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "Python SDK test failed ({}):\n{report}",
        output.status
    );
    assert!(report.contains("Ran 5 tests"), "{report}");
}
