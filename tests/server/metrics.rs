//! `GET /metrics` on the admin port of the real `cosmount serve`: after a
//! few real requests its text passes `promtool check metrics` and counts
//! exactly what was sent. promtool is a prerequisite (Debian package
//! `prometheus`, installed by `scripts/test.sh`): missing, the test fails.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::common::{BUCKET, ServerOptions, TestServer, http_get, promtool_check, raw_request};
use cosmount::cos::{GetOptions, ObjectAttrs, ObjectClient};

/// The value of the sample `name{labels}` (exactly those labels).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (found, rest) = series.split_once('{').unwrap_or((series, "}"));
            let pairs: BTreeMap<&str, &str> = rest
                .strip_suffix('}')?
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            (found == name && pairs == wanted).then(|| value.parse().ok())?
        })
}

/// Sends a hand-written GET of `/BUCKET/key` with `extra` headers; returns
/// the status.
fn raw_get(server: &TestServer, key: &str, extra: &str) -> u16 {
    let req = format!(
        "GET /{BUCKET}/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    );
    raw_request(server.addr(), req.as_bytes()).status
}

#[tokio::test]
async fn metrics_count_real_requests_and_pass_promtool() {
    let server = TestServer::with(ServerOptions {
        extra_args: vec!["--fault-kinds".into(), "503".into()],
        ..ServerOptions::default()
    });
    let client = server.client();
    for i in 0..3 {
        let body = Bytes::from(format!("object {i}"));
        client
            .put(&format!("m/{i}"), body, &ObjectAttrs::default())
            .await
            .unwrap();
    }
    for i in 0..2 {
        client
            .get(&format!("m/{i}"), &GetOptions::default())
            .await
            .unwrap();
    }
    let missing = client.head("m/missing").await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");
    assert_eq!(raw_get(&server, "m/0", ""), 403, "anonymous");
    let unknown_key = "Authorization: q-sign-algorithm=sha1&q-ak=AKIDnobody&q-sign-time=1;9999999999\
        &q-key-time=1;9999999999&q-header-list=&q-url-param-list=&q-signature=00\r\n";
    assert_eq!(raw_get(&server, "m/0", unknown_key), 403, "unknown key");
    server.admin_post("/faults?rate=1");
    assert_eq!(raw_get(&server, "m/0", ""), 503, "injected SlowDown");
    server.admin_post("/faults?rate=0");

    let r = http_get(server.admin_addr(), "/metrics");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        r.head
    );
    let text = String::from_utf8(r.body).expect("metrics are UTF-8");
    promtool_check(&text);

    let requests = |op, status| {
        sample(
            &text,
            "cosmount_server_requests_total",
            &[("op", op), ("status", status)],
        )
    };
    assert_eq!(requests("PutObject", "200"), Some(3.0), "{text}");
    assert_eq!(requests("GetObject", "200"), Some(2.0), "{text}");
    assert_eq!(requests("HeadObject", "404"), Some(1.0), "{text}");
    assert_eq!(requests("GetObject", "403"), Some(2.0), "{text}");
    assert_eq!(requests("unknown", "503"), Some(1.0), "{text}");
    let put_latency = sample(
        &text,
        "cosmount_server_request_duration_seconds_count",
        &[("op", "PutObject")],
    );
    assert_eq!(put_latency, Some(3.0), "{text}");
    let auth = server.admin_json("/stats/auth");
    let principal = |p| sample(&text, "cosmount_server_auth_total", &[("principal", p)]);
    assert_eq!(principal("anonymous"), Some(1.0), "{text}");
    assert_eq!(principal("permanent"), auth["permanent"].as_f64(), "{text}");
    let rejected = sample(
        &text,
        "cosmount_server_auth_rejected_total",
        &[("code", "InvalidAccessKeyId")],
    );
    assert_eq!(rejected, Some(1.0), "{text}");
    let injected = |kind| {
        sample(
            &text,
            "cosmount_server_faults_injected_total",
            &[("kind", kind)],
        )
    };
    assert_eq!(injected("503"), Some(1.0), "{text}");
    assert_eq!(injected("reset"), Some(0.0), "{text}");
    assert_eq!(server.stats()["PutObject"], 3, "the JSON counters agree");
}
