//! The HTTP client against the embedded server with fault injection, in
//! process: every fault kind is survived (retried within the deadline, the
//! bytes exact), damaged bodies are never returned, skew is corrected, and
//! an outage fails operations at their deadline instead of hanging.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cosmount::cos::client::{ClientConfig, HttpClient, RetryCause};
use cosmount::cos::endpoint::{Endpoint, Style};
use cosmount::cos::{
    CosError, GetOptions, ListWalker, MetadataDirective, ObjectAttrs, ObjectClient, crc64,
};
use cosmount::creds::{CredentialStore, Credentials};
use cosmount::retry::RetryPolicy;
use cosmount::server::{FaultConfig, FaultKind, RunningServer, Server, ServerConfig};
use serde_json::Value;

use crate::common::raw_request;

const BUCKET: &str = "faults-1250000000";

struct Faulty {
    server: RunningServer,
    _root: tempfile::TempDir,
}

impl Faulty {
    async fn start(faults: FaultConfig) -> Faulty {
        let root = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            root: root.path().join("root"),
            buckets: vec![BUCKET.into()],
            keys: vec![Credentials::permanent("AKIDfaults", "faults-secret")],
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            faults,
            ..ServerConfig::default()
        };
        let server = Server::start(config).await.unwrap();
        Faulty {
            server,
            _root: root,
        }
    }

    /// A client with short per-attempt deadlines and quick retries.
    fn client(&self, request_timeout: Duration, op_timeout: Duration) -> HttpClient {
        let url = format!("http://{}", self.server.addr());
        let endpoint =
            Endpoint::custom(&url, BUCKET, "ap-guangzhou", Style::VirtualHosted).unwrap();
        let mut config = ClientConfig::new(endpoint);
        config.request_timeout = request_timeout;
        config.op_timeout = op_timeout;
        config.retry = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(100),
        };
        let creds = CredentialStore::fixed(Credentials::permanent("AKIDfaults", "faults-secret"));
        HttpClient::new(config, Arc::new(creds)).unwrap()
    }

    /// An admin request (blocking, off the runtime's threads).
    async fn admin(&self, method: &str, path: &str) -> Value {
        let addr = self.server.admin_addr().unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let r = tokio::task::spawn_blocking(move || raw_request(addr, req.as_bytes()))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.head);
        serde_json::from_slice(&r.body).unwrap()
    }
}

fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn config(rate: f64, kinds: &[FaultKind], seed: u64) -> FaultConfig {
    FaultConfig {
        rate,
        seed,
        kinds: kinds.to_vec(),
        delay: Duration::from_millis(50),
        stall: Duration::from_secs(3),
        skew: Duration::from_secs(3600),
        ..FaultConfig::default()
    }
}

/// Puts, reads whole and in ranges, lists, copies, completes multipart
/// uploads and deletes, checking every byte.
async fn workload(c: &HttpClient, round: u64) {
    let attrs = ObjectAttrs::default();
    for i in 0..6 {
        let key = format!("r{round}/small-{i}");
        let body = data(1000 + i * 777, round * 100 + i as u64);
        c.put(&key, body.clone(), &attrs).await.unwrap();
        assert_eq!(
            c.get(&key, &GetOptions::default()).await.unwrap().body,
            body
        );
        let range = GetOptions {
            range: Some(100..900),
            ..GetOptions::default()
        };
        assert_eq!(
            c.get(&key, &range).await.unwrap().body,
            body.slice(100..900)
        );
        assert_eq!(c.head(&key).await.unwrap().size, body.len() as u64);
    }
    let key = format!("r{round}/multi");
    let id = c.create_multipart(&key, &attrs).await.unwrap();
    let mut parts = Vec::new();
    let mut whole = Vec::new();
    for n in 1..=3u32 {
        let part = data(
            if n < 3 { 1 << 20 } else { 4321 },
            round * 10 + u64::from(n),
        );
        whole.extend_from_slice(&part);
        parts.push(c.upload_part(&key, &id, n, part).await.unwrap());
    }
    let done = c.complete_multipart(&key, &id, &parts).await.unwrap();
    assert!(done.etag.ends_with("-3"), "{}", done.etag);
    let got = c.get(&key, &GetOptions::default()).await.unwrap().body;
    assert_eq!(crc64::checksum(&got), crc64::checksum(&whole));
    c.copy(
        &key,
        &format!("{key}-copy"),
        None,
        MetadataDirective::Copy,
        &attrs,
        0,
    )
    .await
    .unwrap();
    let mut walker = ListWalker::new(&format!("r{round}/"), Some("/"));
    let mut listed = 0;
    while let Some(page) = walker.next_page(c).await.unwrap() {
        listed += page.objects.len();
    }
    assert_eq!(listed, 8);
    c.delete(&format!("{key}-copy")).await.unwrap();
    let err = c.head(&format!("{key}-copy")).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind_is_survived_with_exact_bytes() {
    let f = Faulty::start(config(0.3, &FaultKind::ALL, 42)).await;
    let c = f.client(Duration::from_millis(800), Duration::from_secs(60));
    for round in 0..4 {
        workload(&c, round).await;
    }
    let faults = f.admin("GET", "/faults").await;
    let injected = &faults["injected"];
    eprintln!("faults: {faults}\nclient: {}", c.stats().summary());
    for kind in ["500", "503", "skew", "reset", "delay"] {
        assert!(
            injected[kind].as_u64().unwrap() > 0,
            "no {kind} injected: {faults}"
        );
    }
    let stats = c.stats();
    assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(stats.retries_for(RetryCause::ServerError) > 0);
    assert!(stats.retries_for(RetryCause::SlowDown) > 0);
    assert!(stats.retries_for(RetryCause::ClockSkew) > 0);
    assert!(stats.retries_for(RetryCause::Connection) > 0);
    assert!(c.clock_offset().abs() < 60, "offset {}", c.clock_offset());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_and_truncated_bodies_are_never_returned() {
    let f = Faulty::start(config(1.0, &[FaultKind::Corrupt, FaultKind::Truncate], 1)).await;
    let c = f.client(Duration::from_secs(5), Duration::from_secs(20));
    f.admin("POST", "/faults?rate=0").await;
    let body = data(300_000, 9);
    c.put("k", body.clone(), &ObjectAttrs::default())
        .await
        .unwrap();
    f.admin("POST", "/faults?rate=1").await;
    // Every answer damaged: the operation fails; no damaged bytes come out.
    let err = c.get("k", &GetOptions::default()).await.unwrap_err();
    assert!(
        matches!(err, CosError::Integrity(_) | CosError::Transport { .. }),
        "{err}"
    );
    f.admin("POST", "/faults?rate=0.5").await;
    for _ in 0..10 {
        assert_eq!(c.get("k", &GetOptions::default()).await.unwrap().body, body);
        let range = GetOptions {
            range: Some(1000..250_000),
            ..GetOptions::default()
        };
        assert_eq!(
            c.get("k", &range).await.unwrap().body,
            body.slice(1000..250_000)
        );
    }
    let faults = f.admin("GET", "/faults").await;
    assert!(
        faults["injected"]["corrupt"].as_u64().unwrap() > 0,
        "{faults}"
    );
    assert!(
        faults["injected"]["truncate"].as_u64().unwrap() > 0,
        "{faults}"
    );
    let stats = c.stats();
    assert!(
        stats.retries_for(RetryCause::Integrity) > 0,
        "{}",
        stats.summary()
    );
    assert!(
        stats.retries_for(RetryCause::Connection) > 0,
        "{}",
        stats.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_cost_one_attempt_and_skew_is_corrected() {
    let f = Faulty::start(config(0.3, &[FaultKind::Stall, FaultKind::Skew], 3)).await;
    let c = f.client(Duration::from_millis(300), Duration::from_secs(30));
    for i in 0..8 {
        let key = format!("s{i}");
        c.put(&key, data(2000, i), &ObjectAttrs::default())
            .await
            .unwrap();
        assert_eq!(
            c.get(&key, &GetOptions::default()).await.unwrap().body,
            data(2000, i)
        );
    }
    let stats = c.stats();
    // A stalled request is answered by its hedge (whatever the hedge
    // answers decides) or abandoned at its deadline and retried.
    let hedged = stats.hedges.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        hedged + stats.retries_for(RetryCause::Timeout) > 0,
        "{}",
        stats.summary()
    );
    assert!(
        stats.retries_for(RetryCause::ClockSkew) > 0,
        "{}",
        stats.summary()
    );
    assert!(c.clock_offset().abs() < 60, "offset {}", c.clock_offset());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_operations_at_their_deadline_and_then_ends() {
    let f = Faulty::start(config(0.0, FaultKind::DEFAULT, 0)).await;
    let mut c = f.client(Duration::from_secs(5), Duration::from_secs(1));
    c.put("k", data(10, 1), &ObjectAttrs::default())
        .await
        .unwrap();
    let outage = f.admin("POST", "/outage?secs=30").await;
    assert_eq!(outage["outage"]["active"], true);
    for _ in 0..3 {
        let started = Instant::now();
        let err = c.head("k").await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, CosError::Transport { .. }), "{err}");
        assert!(took < Duration::from_secs(3), "failed after {took:?}");
    }
    f.admin("POST", "/outage?secs=0").await;
    assert_eq!(c.head("k").await.unwrap().size, 10);
    let faults = f.admin("GET", "/faults").await;
    assert!(
        faults["outage"]["refused"].as_u64().unwrap() >= 3,
        "{faults}"
    );
    c = f.client(Duration::from_secs(5), Duration::from_secs(1));
    assert_eq!(
        c.get("k", &GetOptions::default()).await.unwrap().body,
        data(10, 1)
    );
}
