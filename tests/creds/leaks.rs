//! No secret reaches a log: trace-level logs (ours and every dependency's
//! that logs: reqwest, fuser, rustls; hyper would too) of mounts that rotate temporary keys from the
//! metadata service and from STS AssumeRole, and the server's own trace log,
//! contain no SecretKey, no token and no signature.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};

use super::metadata_url;
use crate::common::mount::TestMount;
use crate::common::{BUCKET, REGION, SECRET_ID, SECRET_KEY, ServerOptions, TestServer};

/// How long the mounts are used; keys live 4 s, so they rotate often.
const WORKLOAD: Duration = Duration::from_secs(12);

fn seed(server: &TestServer) {
    let client = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (key, len) in [
            ("a.txt", 10),
            ("docs/b.md", 3000),
            ("docs/deep/c.bin", 2 << 20),
        ] {
            let body = Bytes::from(vec![b'x'; len]);
            client
                .put(key, body, &ObjectAttrs::default())
                .await
                .unwrap();
        }
    });
}

fn mount(server: &TestServer, credentials: &[String]) -> TestMount {
    let mut args = vec![
        "--endpoint".to_string(),
        server.url(),
        "--region".into(),
        REGION.into(),
        "--metadata-ttl".into(),
        "0".into(),
    ];
    args.extend_from_slice(credentials);
    TestMount::start_logged(BUCKET, &args, "trace")
}

/// What must never appear in a log: the permanent SecretKey, and every key
/// and token the server issued.
fn secrets(server: &TestServer) -> Vec<String> {
    let mut all = vec![SECRET_KEY.to_string()];
    let issued = server.admin_json("/sts/issued");
    for key in issued.as_array().unwrap() {
        all.push(key["SecretKey"].as_str().unwrap().to_string());
        all.push(key["Token"].as_str().unwrap().to_string());
    }
    all
}

fn assert_clean(name: &str, log: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{name} log contains a secret ({} characters)",
            secret.len()
        );
    }
    for signature in [
        "q-signature",
        "q-sign-algorithm",
        "Signature=",
        "TC3-HMAC-SHA256 Credential",
    ] {
        assert!(
            !log.contains(signature),
            "{name} log contains {signature:?}"
        );
    }
}

#[test]
fn trace_logs_of_a_rotating_workload_hold_no_secret() {
    let mut server = TestServer::with(ServerOptions {
        sts_ttl: Some(4),
        log_filter: Some("trace".into()),
        ..ServerOptions::default()
    });
    seed(&server);
    let cam_role = mount(
        &server,
        &[
            "--cam-role".into(),
            "leak-test".into(),
            "--cam-role-endpoint".into(),
            metadata_url(&server),
        ],
    );
    let assume_role = mount(
        &server,
        &[
            "--secret-id".into(),
            SECRET_ID.into(),
            "--secret-key".into(),
            SECRET_KEY.into(),
            "--role-arn".into(),
            "qcs::cam::uin/100000000001:roleName/leak-test".into(),
            "--sts-endpoint".into(),
            format!("{}/", server.sts_url()),
        ],
    );
    let deadline = Instant::now() + WORKLOAD;
    while Instant::now() < deadline {
        for m in [&cam_role, &assume_role] {
            m.sh_ok("ls -laR . > /dev/null && cat a.txt docs/b.md > /dev/null && tail -c 100000 docs/deep/c.bin > /dev/null && stat docs/deep > /dev/null");
            // A failing write is part of a full workload too.
            let _ = m.sh("echo x > new.txt");
        }
        thread::sleep(Duration::from_millis(200));
    }
    let mut logs = Vec::new();
    for (name, mut m) in [
        ("cam_role mount", cam_role),
        ("AssumeRole mount", assume_role),
    ] {
        assert!(m.stop().success(), "{name} unmounts");
        logs.push((name, m.log_text()));
    }
    let secrets = secrets(&server);
    // The permanent key, plus a key and a token per issue: 2 mounts, 2+ issues each.
    let issues = (secrets.len() - 1) / 2;
    assert!(issues >= 4, "keys rotated: {issues} issued");
    for (name, log) in &logs {
        assert!(
            log.matches("rotated credentials").count() >= 2,
            "{name}: rotations are logged"
        );
        // hyper logs through `tracing`, which this build does not bridge to
        // `log`: were that turned on, its lines would be checked too.
        for dependency in ["TRACE reqwest", "DEBUG fuser::request"] {
            assert!(
                log.contains(dependency),
                "{name}: no {dependency:?} lines: is trace on?"
            );
        }
        assert_clean(name, log, &secrets);
    }
    // The whole server log: stop it and wait for its last line.
    assert!(server.terminate().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log_text().contains("shutting down") {
        assert!(Instant::now() < deadline, "the server's log never ended");
        thread::sleep(Duration::from_millis(20));
    }
    assert_clean("server", &server.log_text(), &secrets);
}
