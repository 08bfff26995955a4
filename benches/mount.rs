//! Mount benchmarks against `cosmount serve` (separate processes, loopback):
//! sequential reads of 1 GiB (1 reader; 4 readers on 4 files) next to raw
//! ranged GETs of the same objects, `ls -l` of 10,000 objects in both
//! listing modes, peak RSS while reading with a 64 MiB cache, a 1 GiB
//! sequential write next to a raw multipart PUT, and an untar of 2,000
//! small files. Medians of 3 runs; the page cache is dropped before cold
//! runs. Prints a Markdown table and writes it to `target/bench-mount.md`.
//!
//! `cargo bench --bench mount` (needs root and /dev/fuse). `cargo test
//! --all-targets` runs bench targets too, without `--bench`: this one then
//! only says how to run it, rather than moving gigabytes in a debug build.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use cosmount::cos::client::{ClientConfig, HttpClient};
use cosmount::cos::endpoint::{Endpoint, Style};
use cosmount::cos::{GetOptions, ObjectAttrs, ObjectClient, PartInfo};
use cosmount::creds::{CredentialStore, Credentials};

const BUCKET: &str = "bench-1250000000";
const ID: &str = "AKIDbenchmount";
const KEY: &str = "bench-mount-secret";
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const RUNS: usize = 3;

struct Row {
    workload: String,
    raw: Option<f64>,
    mount: f64,
    unit: &'static str,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("mount: run `cargo bench --bench mount` (root) to benchmark");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cosmount"));
    let work = tempfile::tempdir().expect("temp dir");
    let (mut server, addr) = start_server(&bin, work.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = client(&addr);
    let mut rows = Vec::new();

    runtime.block_on(seed(&client));
    let mount_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--endpoint",
            &format!("http://{addr}"),
            "--region",
            "ap-guangzhou",
            "--secret-id",
            ID,
            "--secret-key",
            KEY,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // Sequential reads, cold: page cache dropped, fresh mount each run.
    let raw1 = median(|| runtime.block_on(raw_read(&client, &["obj0"])));
    let raw4 = median(|| runtime.block_on(raw_read(&client, &["obj0", "obj1", "obj2", "obj3"])));
    let one = median(|| {
        let m = Mount::start(&bin, work.path(), &mount_args(&[]));
        drop_caches();
        let t = timed(|| dd_read(&[m.path().join("obj0")]));
        GIB as f64 / MIB as f64 / t
    });
    let four = median(|| {
        let m = Mount::start(&bin, work.path(), &mount_args(&[]));
        drop_caches();
        let files: Vec<PathBuf> = (0..4).map(|i| m.path().join(format!("obj{i}"))).collect();
        let t = timed(|| dd_read(&files));
        4.0 * GIB as f64 / MIB as f64 / t
    });
    rows.push(Row {
        workload: "sequential read 1 GiB, 1 reader (cold)".into(),
        raw: Some(raw1),
        mount: one,
        unit: "MiB/s",
    });
    rows.push(Row {
        workload: "sequential read 4×1 GiB, 4 readers (cold)".into(),
        raw: Some(raw4),
        mount: four,
        unit: "MiB/s",
    });

    // Peak RSS of the daemon while reading 1 GiB with a 64 MiB cache.
    let rss = {
        let m = Mount::start(&bin, work.path(), &mount_args(&["--cache-size", "64MiB"]));
        drop_caches();
        dd_read(&[m.path().join("obj1")]);
        m.peak_rss_mib()
    };
    rows.push(Row {
        workload: "daemon peak RSS reading 1 GiB, --cache-size 64MiB".into(),
        raw: None,
        mount: rss,
        unit: "MiB",
    });

    // ls -l of 10,000 objects.
    for (mode, flags) in [("exact", &[][..]), ("--fast-list", &["--fast-list"][..])] {
        let mut extra = vec!["--metadata-ttl", "60s"];
        extra.extend_from_slice(flags);
        let (cold, warm) = {
            let mut cold = Vec::new();
            let mut warm = Vec::new();
            for _ in 0..RUNS {
                let m = Mount::start(&bin, work.path(), &mount_args(&extra));
                cold.push(timed(|| ls_l(&m.path().join("many"))) * 1000.0);
                warm.push(timed(|| ls_l(&m.path().join("many"))) * 1000.0);
            }
            (med(cold), med(warm))
        };
        rows.push(Row {
            workload: format!("ls -l 10,000 objects, {mode}, cold"),
            raw: None,
            mount: cold,
            unit: "ms",
        });
        rows.push(Row {
            workload: format!("ls -l 10,000 objects, {mode}, warm"),
            raw: None,
            mount: warm,
            unit: "ms",
        });
    }

    // Writes.
    let raw_put = median(|| runtime.block_on(raw_write(&client)));
    let write = median(|| {
        let m = Mount::start(&bin, work.path(), &mount_args(&[]));
        let t = timed(|| {
            sh(&format!(
                "dd if=/dev/zero of='{}' bs=1M count=1024 2>/dev/null",
                m.path().join("written").display()
            ))
        });
        GIB as f64 / MIB as f64 / t
    });
    rows.push(Row {
        workload: "sequential write 1 GiB incl. close".into(),
        raw: Some(raw_put),
        mount: write,
        unit: "MiB/s",
    });
    let tarball = make_tarball(work.path());
    let untar = median(|| {
        let m = Mount::start(&bin, work.path(), &mount_args(&[]));
        let dir = m.path().join(format!("untar-{}", rand::random::<u32>()));
        std::fs::create_dir(&dir).expect("mkdir");
        timed(|| {
            sh(&format!(
                "cd '{}' && tar xf '{}'",
                dir.display(),
                tarball.display()
            ))
        })
    });
    rows.push(Row {
        workload: "untar 2,000 small files".into(),
        raw: None,
        mount: untar,
        unit: "s",
    });

    let table = render(&rows);
    println!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-mount.md");
    std::fs::write(&out, &table).expect("write the table");
    println!("written to {}", out.display());
    let _ = server.kill();
}

fn render(rows: &[Row]) -> String {
    let mut t = String::from(
        "| workload | raw HTTP | cosmount | unit | cosmount / raw |\n|---|---:|---:|---|---:|\n",
    );
    for r in rows {
        let raw = r.raw.map_or("—".to_string(), |v| format!("{v:.0}"));
        let ratio = r
            .raw
            .map_or("—".to_string(), |v| format!("{:.2}", r.mount / v));
        t.push_str(&format!(
            "| {} | {raw} | {:.1} | {} | {ratio} |\n",
            r.workload, r.mount, r.unit
        ));
    }
    t
}

fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median(mut f: impl FnMut() -> f64) -> f64 {
    med((0..RUNS).map(|_| f()).collect())
}

fn timed(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn sh(script: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .expect("sh");
    assert!(status.success(), "`{script}` failed");
}

fn drop_caches() {
    sh("sync; echo 3 > /proc/sys/vm/drop_caches");
}

fn dd_read(files: &[PathBuf]) {
    let script: Vec<String> = files
        .iter()
        .map(|f| format!("dd if='{}' of=/dev/null bs=1M 2>/dev/null &", f.display()))
        .collect();
    sh(&format!("{} wait", script.join(" ")));
}

fn ls_l(dir: &Path) {
    sh(&format!("ls -l '{}' > /dev/null", dir.display()));
}

fn start_server(bin: &Path, work: &Path) -> (Child, String) {
    let mut child = Command::new(bin)
        .args(["serve", "--root"])
        .arg(work.join("root"))
        .args(["--bucket", BUCKET, "--secret-id", ID, "--secret-key", KEY])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cosmount serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .trim_start_matches("listening on http://")
        .to_string();
    (child, addr)
}

fn client(addr: &str) -> HttpClient {
    let endpoint = Endpoint::custom(
        &format!("http://{addr}"),
        BUCKET,
        "ap-guangzhou",
        Style::VirtualHosted,
    )
    .expect("endpoint");
    HttpClient::new(
        ClientConfig::new(endpoint),
        Arc::new(CredentialStore::fixed(Credentials::permanent(ID, KEY))),
    )
    .expect("client")
}

async fn seed(client: &HttpClient) {
    for i in 0..4 {
        put_multipart(client, &format!("obj{i}"), GIB).await;
    }
    futures_util::stream::iter(0..10_000)
        .map(|i| async move {
            client
                .put(
                    &format!("many/f{i:05}"),
                    Bytes::from_static(b"x"),
                    &ObjectAttrs::default(),
                )
                .await
                .expect("put");
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

async fn put_multipart(client: &HttpClient, key: &str, size: u64) {
    let part = 8 * MIB;
    let body = Bytes::from(vec![0x5a; part as usize]);
    let id = client
        .create_multipart(key, &ObjectAttrs::default())
        .await
        .expect("initiate");
    let mut parts: Vec<PartInfo> = futures_util::stream::iter(0..size / part)
        .map(|n| {
            let (body, id) = (body.clone(), id.clone());
            async move {
                client
                    .upload_part(key, &id, n as u32 + 1, body)
                    .await
                    .expect("part")
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    parts.sort_by_key(|p| p.part_number);
    client
        .complete_multipart(key, &id, &parts)
        .await
        .expect("complete");
}

/// Reads objects with 8 MiB ranged GETs, 4 in flight per object; MiB/s.
async fn raw_read(client: &HttpClient, keys: &[&str]) -> f64 {
    drop_caches();
    let start = Instant::now();
    let reads = keys.iter().map(|key| async move {
        futures_util::stream::iter(0..GIB / (8 * MIB))
            .map(|i| async move {
                let opts = GetOptions {
                    range: Some(i * 8 * MIB..(i + 1) * 8 * MIB),
                    ..GetOptions::default()
                };
                client.get(key, &opts).await.expect("get").body.len()
            })
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await
    });
    futures_util::future::join_all(reads).await;
    (keys.len() as u64 * GIB) as f64 / MIB as f64 / start.elapsed().as_secs_f64()
}

async fn raw_write(client: &HttpClient) -> f64 {
    let start = Instant::now();
    put_multipart(client, "raw-written", GIB).await;
    GIB as f64 / MIB as f64 / start.elapsed().as_secs_f64()
}

fn make_tarball(work: &Path) -> PathBuf {
    let src = work.join("tarsrc");
    for i in 0..2000 {
        let dir = src.join(format!("d{}", i % 40));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("f{i}")), vec![b'x'; 100 + i % 4000]).expect("write");
    }
    let tarball = work.join("small.tar");
    sh(&format!(
        "cd '{}' && tar cf '{}' .",
        src.display(),
        tarball.display()
    ));
    tarball
}

/// A foreground mount as a child process, unmounted on drop.
struct Mount {
    child: Child,
    dir: tempfile::TempDir,
}

impl Mount {
    fn start(bin: &Path, work: &Path, args: &[String]) -> Mount {
        let dir = tempfile::tempdir_in(work).expect("temp dir");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir");
        let child = Command::new(bin)
            .args(args)
            .arg(BUCKET)
            .arg(&mnt)
            .arg("-f")
            .stderr(Stdio::null())
            .spawn()
            .expect("mount");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .contains(mnt.to_str().unwrap())
        {
            assert!(Instant::now() < deadline, "mount did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mount { child, dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kib / 1024.0
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
