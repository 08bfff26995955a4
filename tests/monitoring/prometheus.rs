//! A real Prometheus server scrapes a default mount every second while it
//! lists 1,000 objects, reads 64 MiB twice and writes 32 MiB; the values
//! its query API returns match the workload. `promtool check metrics`
//! accepts a scrape.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};
use futures_util::stream::{self, StreamExt};

use crate::common::mount::{TestMount, wait_for};
use crate::common::{TestServer, free_ports, http_get, promtool_check};

const MIB: u64 = 1 << 20;
const LISTED: usize = 1000;

/// A Prometheus server scraping one target every second, stopped on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: cosmount\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_ports(1)[0]).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .expect("start prometheus (Debian package `prometheus`; scripts/test.sh installs it)");
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        wait_for("Prometheus to be ready", || {
            std::net::TcpStream::connect(addr).is_ok() && prometheus.get("/-/ready").0 == 200
        });
        prometheus
    }

    fn get(&self, path_and_query: &str) -> (u16, String) {
        let response = http_get(self.addr, path_and_query);
        (
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        )
    }

    /// The values of an instant query, by their label sets.
    fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let encoded =
            percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC);
        let (status, body) = self.get(&format!("/api/v1/query?query={encoded}"));
        assert_eq!(status, 200, "query {promql}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        answer["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("query {promql}: {body}"))
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// The one value of `promql` (0 when the query has no result).
    fn value(&self, promql: &str) -> f64 {
        let values = self.query(promql);
        assert!(values.len() <= 1, "{promql}: {values:?}");
        values.first().map_or(0.0, |(_, v)| *v)
    }

    /// Waits for a scrape that began after now.
    fn scraped_now(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        wait_for("a scrape after the workload step", || {
            self.value("timestamp(cosmount_read_bytes_total)") > now.as_secs_f64()
        });
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn seed(server: &TestServer) {
    let client = server.client();
    let data = Bytes::from((0..64 * MIB).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    client
        .put("big.bin", data, &ObjectAttrs::default())
        .await
        .unwrap();
    stream::iter(0..LISTED)
        .map(|i| {
            let client = &client;
            async move {
                let key = format!("many/f{i:04}");
                client
                    .put(&key, Bytes::from_static(b"x"), &ObjectAttrs::default())
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

/// The kernel keeps file pages across opens while the object is
/// unchanged; dropping them makes the second pass reach the mount.
fn drop_page_cache() {
    std::fs::write("/proc/sys/vm/drop_caches", "1").expect("drop the page cache (needs root)");
}

fn read_all(path: &Path) -> u64 {
    let data = std::fs::read(path).unwrap();
    data.len() as u64
}

#[test]
fn prometheus_sees_what_the_workload_did() {
    let server = TestServer::start();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seed(&server));
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_ports(1)[0]).parse().unwrap();
    let listen = metrics.to_string();
    // A long TTL keeps the directory's lookup (a LIST of its own) from
    // being repeated while Prometheus scrapes.
    let m = TestMount::start(
        &server,
        &["--metrics-listen", &listen, "--metadata-ttl", "10m"],
    );
    let prometheus = Prometheus::start(metrics);
    assert!(m.join("many").is_dir());
    prometheus.scraped_now();
    let lists = r#"sum(cosmount_cos_request_duration_seconds_count{op="list"})"#;
    let lists_before = prometheus.value(lists);

    let listed = std::fs::read_dir(m.join("many")).unwrap().count();
    assert_eq!(listed, LISTED);
    prometheus.scraped_now();
    assert_eq!(
        prometheus.value(lists) - lists_before,
        1.0,
        "one LIST per 1,000 keys"
    );

    assert_eq!(read_all(&m.join("big.bin")), 64 * MIB);
    drop_page_cache();
    prometheus.scraped_now();
    let hits = "cosmount_cache_hits_total";
    let misses = "cosmount_cache_misses_total";
    let (hits_first, misses_first) = (prometheus.value(hits), prometheus.value(misses));
    assert_eq!(read_all(&m.join("big.bin")), 64 * MIB);
    let written = vec![7u8; (32 * MIB) as usize];
    std::fs::write(m.join("written.bin"), &written).unwrap();
    prometheus.scraped_now();

    let read = prometheus.value("cosmount_read_bytes_total");
    let expected = (128 * MIB) as f64;
    assert!(
        (read - expected).abs() <= expected * 0.01,
        "bytes read {read}, expected 128 MiB"
    );
    assert_eq!(
        prometheus.value("cosmount_written_bytes_total"),
        (32 * MIB) as f64
    );
    assert!(
        prometheus.value(hits) - hits_first >= 64.0,
        "the second pass hits all 64 blocks"
    );
    assert_eq!(
        prometheus.value(misses) - misses_first,
        0.0,
        "the second pass fetches nothing"
    );
    // (EOPNOTSUPP: the kernel's questions for `security.capability`.)
    let failed = prometheus.query(
        r#"cosmount_fuse_request_duration_seconds_count{result!~"ok|ENOENT|ENODATA|EOPNOTSUPP"}"#,
    );
    assert!(failed.is_empty(), "failed kernel requests: {failed:?}");
    assert_eq!(
        prometheus.value("cosmount_cos_failed_operations_total"),
        0.0
    );
    assert_eq!(prometheus.value("sum(cosmount_cos_retries_total)"), 0.0);
    assert_eq!(
        prometheus
            .value(r#"sum(cosmount_cos_request_duration_seconds_count{op="get",status!~"2.."})"#),
        0.0
    );

    let scrape = http_get(metrics, "/metrics");
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    promtool_check(&String::from_utf8_lossy(&scrape.body));
}
