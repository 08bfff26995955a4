//! `cosmount check` against `cosmount serve`: exit 0 with a full report
//! when a mount would work; otherwise non-zero with the cause in plain
//! words on the last line (`FAIL: ...`).

use std::process::Command;
use std::time::{Duration, Instant};

use cosmount::cos::{ListRequest, ObjectClient};
use cosmount::creds::Provider;
use cosmount::creds::metadata::{CamRoleConfig, CamRoleProvider};

use super::{metadata_url, sts_server};
use crate::common::{BUCKET, Public, REGION, SECRET_ID, SECRET_KEY, ServerOptions, TestServer};

/// Runs `cosmount check ARGS`; returns (exit code, stdout, stderr).
fn check(args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .arg("check")
        .args(args)
        .env_remove("COS_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn endpoint(server: &TestServer, bucket: &str) -> Vec<String> {
    vec![
        bucket.into(),
        "--endpoint".into(),
        server.url(),
        "--region".into(),
        REGION.into(),
    ]
}

fn keys(id: &str, key: &str) -> Vec<String> {
    vec![
        "--secret-id".into(),
        id.into(),
        "--secret-key".into(),
        key.into(),
    ]
}

/// The last line of the report.
fn verdict(stdout: &str) -> &str {
    stdout.lines().last().unwrap_or_default()
}

fn expect_fail(args: &[String], phrases: &[&str]) -> String {
    let (code, out, err) = check(args);
    assert_eq!(code, 1, "{args:?}:\n{out}{err}");
    let last = verdict(&out);
    assert!(last.starts_with("FAIL:"), "{out}");
    for phrase in phrases {
        assert!(
            last.contains(phrase),
            "wanted {phrase:?} in {last:?}\n{out}"
        );
    }
    out
}

#[test]
fn good_credentials_pass_with_a_full_report() {
    let server = TestServer::start();
    let (code, out, err) =
        check(&[endpoint(&server, BUCKET), keys(SECRET_ID, SECRET_KEY)].concat());
    assert_eq!(code, 0, "{out}{err}");
    for phrase in [
        "127.0.0.1: loopback (this machine) (literal address)",
        "requests stay on this machine",
        "5/5 connections, min ",
        ", median ",
        "the command line: SecretId AKID…000, no expiry",
        "our clock agrees with the server's",
        "speaks COS (answers carry x-cos-request-id)",
        "refused (403): the bucket is private",
        "ok in ",
        "(0 entries on the first page of one)",
    ] {
        assert!(out.contains(phrase), "wanted {phrase:?} in\n{out}");
    }
    assert!(verdict(&out).starts_with("OK:"), "{out}");
    assert!(!out.contains(SECRET_KEY) && !err.contains(SECRET_KEY));

    // The real virtual-hosted name, sent to loopback by --resolve.
    let host = format!("{BUCKET}.cos.{REGION}.myqcloud.com");
    let args = [
        vec![
            BUCKET.to_string(),
            "--region".into(),
            REGION.into(),
            "--http".into(),
        ],
        vec!["--resolve".into(), format!("{host}:{}", server.addr())],
        keys(SECRET_ID, SECRET_KEY),
    ]
    .concat();
    let (code, out, err) = check(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "http://{host}/ (virtual-hosted, {host} resolved by --resolve)"
        )),
        "{out}"
    );
    assert!(out.contains("(from --resolve)"), "{out}");
}

#[test]
fn wrong_key_wrong_bucket_and_stopped_server_fail_with_reasons() {
    let mut server = TestServer::start();
    expect_fail(
        &[endpoint(&server, BUCKET), keys(SECRET_ID, "not-the-key")].concat(),
        &["the SecretKey (from the command line) does not match the SecretId"],
    );
    expect_fail(
        &[endpoint(&server, BUCKET), keys("AKIDnobody", SECRET_KEY)].concat(),
        &["the SecretId (from the command line) is not known to COS"],
    );
    let missing = [
        endpoint(&server, "missing-1250000000"),
        vec!["--path-style".into()],
        keys(SECRET_ID, SECRET_KEY),
    ]
    .concat();
    expect_fail(
        &missing,
        &[
            "bucket missing-1250000000 does not exist in region ap-guangzhou",
            "check the bucket name and --region",
        ],
    );
    let args = [endpoint(&server, BUCKET), keys(SECRET_ID, SECRET_KEY)].concat();
    assert!(server.terminate().success());
    let out = expect_fail(
        &args,
        &[
            "cannot connect to 127.0.0.1",
            "Connection refused",
            "that the server is running",
        ],
    );
    assert!(out.contains("cannot connect: Connection refused"), "{out}");
}

#[test]
fn public_buckets_and_anonymous_access_are_explained() {
    let public = TestServer::with(ServerOptions::public(Public::Read));
    let (code, out, err) = check(&[endpoint(&public, BUCKET), vec!["--anonymous".into()]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("allowed: the bucket is public"), "{out}");
    assert!(
        verdict(&out).contains("anonymous requests can read and list this public bucket"),
        "{out}"
    );
    expect_fail(
        &[endpoint(&public, BUCKET), keys(SECRET_ID, "not-the-key")].concat(),
        &[
            "does not match the SecretId",
            "the bucket is public, so --anonymous would work for reading",
        ],
    );
    let private = TestServer::start();
    expect_fail(
        &[endpoint(&private, BUCKET), vec!["--anonymous".into()]].concat(),
        &["access to bucket test-1250000000 was denied (anonymous requests)"],
    );
}

#[test]
fn an_expired_session_token_is_named() {
    let server = sts_server(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let creds = rt
        .block_on(
            CamRoleProvider::new(CamRoleConfig {
                role: "check".into(),
                endpoint: metadata_url(&server),
            })
            .unwrap()
            .fetch(),
        )
        .unwrap();
    let client = server.client_for(BUCKET, Some(creds.clone()));
    let one = ListRequest {
        max_keys: 1,
        ..ListRequest::default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while rt.block_on(client.list_page(&one)).is_ok() {
        assert!(Instant::now() < deadline, "the key never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    let args = [
        endpoint(&server, BUCKET),
        keys(&creds.secret_id, &creds.secret_key),
        vec![
            "--session-token".into(),
            creds.session_token.clone().unwrap(),
        ],
    ]
    .concat();
    let out = expect_fail(
        &args,
        &["the session token (from the command line) has expired or is invalid"],
    );
    assert!(out.contains("ExpiredToken"), "{out}");
    assert!(!out.contains(&creds.secret_key));
}
