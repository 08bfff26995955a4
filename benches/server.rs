//! Throughput of `cosmount serve` through the real HTTP client, both in one
//! process over loopback: requests/second of 4 KiB GETs (1 and 16 in
//! flight), MiB/s of one 256 MiB PUT and GET (page cache warm, no fsync),
//! and the time of one delimited listing past a group of 100,000 keys (one
//! step over the group, not a scan).
//!
//! `cargo bench --bench server` (release build). Prints a table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use cosmount::cos::client::{ClientConfig, HttpClient};
use cosmount::cos::endpoint::{Endpoint, Style};
use cosmount::cos::{GetOptions, ObjectAttrs, ObjectClient};
use cosmount::creds::{CredentialStore, Credentials};
use cosmount::server::listing::{self, ListParams};
use cosmount::server::{Server, ServerConfig};

const BUCKET: &str = "bench-1250000000";
const SMALL: usize = 4 * 1024;
const LARGE: usize = 256 * 1024 * 1024;
const SMALL_RUN: Duration = Duration::from_secs(3);

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("server: run `cargo bench --bench server` to benchmark");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let root = tempfile::tempdir().expect("temp dir");
    let creds = Credentials::permanent("AKIDbench", "bench-secret");
    let server = Server::start(ServerConfig {
        root: root.path().to_path_buf(),
        buckets: vec![BUCKET.to_string()],
        keys: vec![creds.clone()],
        ..ServerConfig::default()
    })
    .await
    .expect("start the server");
    let url = format!("http://{}", server.addr());
    let endpoint =
        Endpoint::custom(&url, BUCKET, "ap-guangzhou", Style::VirtualHosted).expect("endpoint");
    let client = HttpClient::new(
        ClientConfig::new(endpoint),
        Arc::new(CredentialStore::fixed(creds)),
    )
    .expect("client");

    println!("{:<34} {:>14}", "cosmount serve, loopback", "result");
    let small = Bytes::from(vec![7u8; SMALL]);
    client
        .put("small", small, &ObjectAttrs::default())
        .await
        .expect("put small");
    for in_flight in [1, 16] {
        let rate = small_gets(&client, in_flight).await;
        println!(
            "{:<34} {:>10.0} req/s",
            format!("GET 4 KiB, {in_flight} in flight"),
            rate
        );
    }

    let large = Bytes::from((0..LARGE).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let started = Instant::now();
    client
        .put("large", large.clone(), &ObjectAttrs::default())
        .await
        .expect("put large");
    println!(
        "{:<34} {:>10.0} MiB/s",
        "PUT 256 MiB (1 request)",
        mib_per_s(started.elapsed())
    );
    let started = Instant::now();
    let got = client
        .get("large", &GetOptions::default())
        .await
        .expect("get large");
    let elapsed = started.elapsed();
    assert_eq!(got.body.len(), LARGE);
    println!(
        "{:<34} {:>10.0} MiB/s",
        "GET 256 MiB (1 request)",
        mib_per_s(elapsed)
    );
    server.shutdown().await;
    println!(
        "{:<34} {:>10.1} µs",
        "list past 100,000 grouped keys",
        grouped_listing_micros()
    );
}

/// Mean time of a delimited listing whose first group holds 100,000 keys.
fn grouped_listing_micros() -> f64 {
    let mut index: BTreeMap<String, ()> =
        (0..100_000).map(|i| (format!("big/{i:06}"), ())).collect();
    index.insert("after".into(), ());
    let params = ListParams {
        prefix: String::new(),
        delimiter: "/".into(),
        marker: String::new(),
        max_keys: 1000,
    };
    let rounds = 1000;
    let started = Instant::now();
    for _ in 0..rounds {
        let listing = listing::list(&index, &params);
        assert_eq!(listing.prefixes, ["big/"]);
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

/// GETs of the small object with `in_flight` requests at a time.
async fn small_gets(client: &HttpClient, in_flight: usize) -> f64 {
    // Warm the connection pool.
    for _ in 0..in_flight {
        client
            .get("small", &GetOptions::default())
            .await
            .expect("get");
    }
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < SMALL_RUN {
        futures_util::stream::iter(0..in_flight * 20)
            .for_each_concurrent(in_flight, |_| async {
                let got = client
                    .get("small", &GetOptions::default())
                    .await
                    .expect("get");
                assert_eq!(got.body.len(), SMALL);
            })
            .await;
        done += in_flight * 20;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

fn mib_per_s(elapsed: Duration) -> f64 {
    LARGE as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}
