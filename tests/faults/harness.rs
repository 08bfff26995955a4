//! Runs the [`Workload`] through real mounts of a `cosmount serve` that
//! injects faults, then checks the bucket directly and gathers what the
//! table shows: faults injected by kind (the server's `/faults`), retries
//! by cause (the `COS client:` line each daemon logs at unmount), errors
//! and corrupted bytes seen by the application, objects missing, extra or
//! damaged in the bucket, multipart uploads left over, the daemons' peak
//! RSS and the time taken. Shared by the CI test and `scripts/faults`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cosmount::cos::{ListWalker, ObjectClient, crc64};

use super::workload::{Outcome, Workload};
use crate::common::mount::TestMount;
use crate::common::{BUCKET, ServerOptions, TestServer, raw_request};

/// How the server misbehaves and how the mounts are set up.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Fraction of requests with a fault.
    pub fault_rate: f64,
    /// Seed of the fault RNG.
    pub fault_seed: u64,
    /// `--fault-stall` (longer than `--request-timeout` below).
    pub stall: String,
    /// `--fault-delay`.
    pub delay: String,
    /// Mount options.
    pub mount_args: Vec<String>,
    /// Log level of the mounts (`trace` for the secret check).
    pub log_level: String,
}

/// Everything the table shows.
#[derive(Debug, Default)]
pub struct Report {
    /// What the application saw.
    pub outcome: Outcome,
    /// Requests the server received.
    pub requests: u64,
    /// Faults injected, by kind.
    pub injected: BTreeMap<String, u64>,
    /// Retries the daemons made, by cause (summed over both mounts).
    pub retries: BTreeMap<String, u64>,
    /// Objects in the bucket at the end.
    pub objects: usize,
    /// Expected objects missing from the bucket.
    pub missing: Vec<String>,
    /// Objects that should not be there.
    pub unexpected: Vec<String>,
    /// Objects whose CRC64 differs from what was written.
    pub damaged: Vec<String>,
    /// Multipart uploads left (an Initiate whose answer was lost).
    pub leftover_uploads: usize,
    /// Uploads left after `cosmount cleanup --older-than 0` ran.
    pub uploads_after_cleanup: usize,
    /// Highest VmHWM of the daemons, in KiB.
    pub peak_rss_kib: u64,
    /// VmHWM of each daemon (the writing mount, then the reading one), KiB.
    pub rss_kib: Vec<u64>,
    /// Wall time of the whole run.
    pub duration: Duration,
    /// The daemons' logs.
    pub logs: Vec<String>,
    /// The server's `/faults` answer.
    pub faults_json: serde_json::Value,
}

/// Counters of the `COS client:` line that are not retries by cause.
const NOT_RETRIES: [&str; 6] = [
    "requests",
    "retries",
    "failed",
    "stalls",
    "hedges",
    "hedges_won",
];

impl Report {
    /// The time of each phase: `write 1.0 s, read 2.0 s, ...`.
    pub fn phase_times(&self) -> String {
        let phases: Vec<String> = self
            .outcome
            .phases
            .iter()
            .map(|(p, d)| format!("{p} {:.1} s", d.as_secs_f64()))
            .collect();
        phases.join(", ")
    }

    /// A client counter summed over the mounts (`stalls`, `hedges`...).
    pub fn counter(&self, name: &str) -> u64 {
        self.retries.get(name).copied().unwrap_or(0)
    }

    /// Total faults injected.
    pub fn faults(&self) -> u64 {
        self.injected.values().sum()
    }

    /// Total retries.
    pub fn retries_total(&self) -> u64 {
        self.retries
            .iter()
            .filter(|(k, _)| !NOT_RETRIES.contains(&k.as_str()))
            .map(|(_, v)| v)
            .sum()
    }
}

/// Starts the faulty server.
pub fn faulty_server(setup: &Setup) -> TestServer {
    TestServer::with(ServerOptions {
        extra_args: vec![
            "--fault-rate".into(),
            setup.fault_rate.to_string(),
            "--fault-seed".into(),
            setup.fault_seed.to_string(),
            "--fault-stall".into(),
            setup.stall.clone(),
            "--fault-delay".into(),
            setup.delay.clone(),
        ],
        log_filter: Some("warn".into()),
        ..ServerOptions::default()
    })
}

/// Spellings of secrets and signatures that must never be logged.
pub fn forbidden() -> [&'static str; 5] {
    [
        crate::common::SECRET_KEY,
        "q-signature",
        "q-sign-algorithm",
        "q-key-time",
        "Signature=",
    ]
}

/// Log lines holding a secret, a token or a signature.
pub fn secret_lines(logs: &[String]) -> usize {
    logs.iter()
        .flat_map(|l| l.lines())
        .filter(|line| forbidden().iter().any(|s| line.contains(s)))
        .count()
}

/// Runs the workload: one mount writes, a fresh one (cold cache) reads,
/// renames, deletes and reads what remains; then the bucket is checked
/// with faults off.
pub fn run(setup: &Setup, w: &Workload) -> Report {
    let started = Instant::now();
    let server = faulty_server(setup);
    let mut report = Report::default();
    let mut out = Outcome::default();
    let args: Vec<&str> = setup.mount_args.iter().map(String::as_str).collect();

    let writer = mount(&server, &args, &setup.log_level);
    w.prepare(&writer.path(), &mut out);
    w.write(&writer.path(), &mut out);
    finish(writer, &mut report);

    let reader = mount(&server, &args, &setup.log_level);
    w.read_written(&reader.path(), &mut out);
    w.rename(&reader.path(), &mut out);
    w.delete(&reader.path(), &mut out);
    w.read_final(&reader.path(), &mut out);
    finish(reader, &mut report);

    report.faults_json = admin(&server, "GET", "/faults");
    admin(&server, "POST", "/faults?rate=0");
    check_bucket(&server, w, &mut report);
    report.uploads_after_cleanup = cleanup(&server);
    report.requests = report.faults_json["requests"].as_u64().unwrap_or(0);
    if let Some(kinds) = report.faults_json["injected"].as_object() {
        for (kind, n) in kinds {
            report
                .injected
                .insert(kind.clone(), n.as_u64().unwrap_or(0));
        }
    }
    report.outcome = out;
    report.duration = started.elapsed();
    report
}

/// A mount of the test bucket with `args`, logging at `level`.
pub fn mount(server: &TestServer, args: &[&str], level: &str) -> TestMount {
    let mut all = crate::common::mount::server_args(server);
    all.extend(args.iter().map(|s| s.to_string()));
    TestMount::start_logged(BUCKET, &all, level)
}

/// Stops a mount, adding its peak RSS, retry counters and log.
pub fn finish(mut m: TestMount, report: &mut Report) {
    let rss = peak_rss_kib(m.pid());
    report.peak_rss_kib = report.peak_rss_kib.max(rss);
    report.rss_kib.push(rss);
    let status = m.stop();
    let log = m.log_text();
    assert!(status.success(), "the mount exited with {status}");
    let line = log
        .lines()
        .rev()
        .find_map(|l| l.split_once("COS client: ").map(|(_, s)| s.to_string()))
        .expect("the daemon logs its client counters at unmount");
    for (name, value) in line.split(' ').filter_map(|kv| kv.split_once('=')) {
        *report.retries.entry(name.to_string()).or_default() += value.parse().unwrap_or(0);
    }
    report.logs.push(log);
}

/// VmHWM (peak resident set) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A request to the server's admin port.
pub fn admin(server: &TestServer, method: &str, path: &str) -> serde_json::Value {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let r = raw_request(server.admin_addr(), req.as_bytes());
    assert_eq!(r.status, 200, "{}", r.head);
    serde_json::from_slice(&r.body).expect("admin answers are JSON")
}

/// Runs `cosmount cleanup --older-than 0` on the bucket; returns the
/// uploads left afterwards.
fn cleanup(server: &TestServer) -> usize {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(["cleanup", BUCKET, "--older-than", "0"])
        .args(crate::common::mount::server_args(server))
        .output()
        .expect("cosmount cleanup");
    assert!(out.status.success(), "cleanup failed: {out:?}");
    let client = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(client.list_uploads("")).unwrap().len()
}

/// Lists the bucket and HEADs every object: exactly the expected keys,
/// each with the CRC64 of what was written.
fn check_bucket(server: &TestServer, w: &Workload, report: &mut Report) {
    let client = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let expected = w.final_paths();
    let mut found = BTreeSet::new();
    rt.block_on(async {
        let mut walker = ListWalker::new("", None);
        while let Some(page) = walker.next_page(&client).await.unwrap() {
            found.extend(page.objects.into_iter().map(|o| o.key));
        }
        for (key, &i) in &expected {
            if !found.contains(key) {
                report.missing.push(key.clone());
                continue;
            }
            let info = client.head(key).await.unwrap();
            let content = w.content(i);
            if info.size != content.len() as u64 || info.crc64 != Some(crc64::checksum(&content)) {
                report.damaged.push(key.clone());
            }
        }
        report.leftover_uploads = client.list_uploads("").await.unwrap().len();
    });
    report.objects = found.iter().filter(|k| !k.ends_with('/')).count();
    report.unexpected = found
        .into_iter()
        .filter(|k| !k.ends_with('/') && !expected.contains_key(k))
        .collect();
}

/// The report as Markdown tables.
pub fn render(setup: &Setup, w: &Workload, r: &Report) -> String {
    let mut t = String::new();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    t.push_str(&format!(
        "Workload: {} files of {}–{} (log-uniform, seed {}), {} threads: write (mount 1); read back and compare, rename {}, delete {}, read the rest (mount 2, cold cache); then the bucket is checked directly.\n",
        w.files,
        size(w.min_size),
        size(w.max_size),
        w.seed,
        w.threads,
        w.renames,
        w.deletes
    ));
    t.push_str(&format!(
        "Server: `--fault-rate {} --fault-seed {} --fault-stall {} --fault-delay {}`; mounts: `{}`.\n\n",
        setup.fault_rate,
        setup.fault_seed,
        setup.stall,
        setup.delay,
        setup.mount_args.join(" ")
    ));
    t.push_str(
        "| fault injected | count | | client retry cause | count |\n|---|---:|---|---|---:|\n",
    );
    let kinds: Vec<(&String, &u64)> = r.injected.iter().collect();
    let causes = [
        "server_error",
        "slow_down",
        "timeout",
        "connection",
        "integrity",
        "clock_skew",
        "credentials",
    ];
    for row in 0..kinds.len().max(causes.len()) {
        let (k, n) = kinds
            .get(row)
            .map_or((String::new(), String::new()), |(k, n)| {
                (k.to_string(), n.to_string())
            });
        let (c, m) = causes.get(row).map_or((String::new(), String::new()), |c| {
            (
                c.to_string(),
                r.retries.get(*c).copied().unwrap_or(0).to_string(),
            )
        });
        t.push_str(&format!("| {k} | {n} | | {c} | {m} |\n"));
    }
    t.push_str(&format!(
        "| **total** | **{}** of {} requests | | **total** | **{}** |\n\n",
        r.faults(),
        r.requests,
        r.retries_total()
    ));
    t.push_str("| result | value |\n|---|---|\n");
    t.push_str(&format!(
        "| application-visible errors | {} |\n| corrupted bytes | {} (of {:.0} MiB read back) |\n",
        r.outcome.errors.len(),
        r.outcome.corrupted_bytes,
        mib(r.outcome.bytes_read)
    ));
    t.push_str(&format!(
        "| operations failed after retries (client) | {} |\n",
        r.retries.get("failed").copied().unwrap_or(0)
    ));
    t.push_str(&format!(
        "| attempts abandoned for no progress (client) | {} |\n| hedges sent (won) | {} ({}) |\n",
        r.counter("stalls"),
        r.counter("hedges"),
        r.counter("hedges_won")
    ));
    t.push_str(&format!(
        "| bucket at the end | {} objects: {} missing, {} unexpected, {} with a wrong CRC64 |\n",
        r.objects,
        r.missing.len(),
        r.unexpected.len(),
        r.damaged.len()
    ));
    t.push_str(&format!(
        "| multipart uploads left over (Initiate answers lost) | {}; after `cosmount cleanup --older-than 0`: {} |\n",
        r.leftover_uploads, r.uploads_after_cleanup
    ));
    let lines: usize = r.logs.iter().map(|l| l.lines().count()).sum();
    t.push_str(&format!(
        "| daemon log lines with a secret, token or signature | {} (of {lines}, level {}) |\n",
        secret_lines(&r.logs),
        setup.log_level
    ));
    let per_mount: Vec<String> = r
        .rss_kib
        .iter()
        .map(|k| format!("{:.0}", *k as f64 / 1024.0))
        .collect();
    t.push_str(&format!(
        "| daemon peak RSS | {:.0} MiB (writing mount, reading mount: {} MiB) |\n",
        r.peak_rss_kib as f64 / 1024.0,
        per_mount.join(", ")
    ));
    t.push_str(&format!(
        "| duration | {:.1} s ({}) |\n",
        r.duration.as_secs_f64(),
        r.phase_times()
    ));
    t
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// One file written during the outage scenario.
#[derive(Debug)]
pub struct Attempt {
    /// The file.
    pub path: String,
    /// When its create began, from the start of the run.
    pub started: Duration,
    /// When its close returned (or the failing call), from the start.
    pub ended: Duration,
    /// The slowest of its create, write and close calls.
    pub slowest_call: Duration,
    /// The error of the call that failed, if one did.
    pub error: Option<std::io::Error>,
}

/// What the outage scenario saw.
#[derive(Debug, Default)]
pub struct OutageReport {
    /// Every file attempted, in start order.
    pub attempts: Vec<Attempt>,
    /// When the outage began and ended, from the start of the run.
    pub window: (Duration, Duration),
    /// Files whose close succeeded but which are missing or wrong in the bucket.
    pub lost: Vec<String>,
    /// Requests the server refused during the outage.
    pub refused: u64,
}

impl OutageReport {
    /// Attempts made entirely while the server was down.
    pub fn during(&self) -> impl Iterator<Item = &Attempt> {
        let (start, end) = self.window;
        self.attempts
            .iter()
            .filter(move |a| a.started >= start && a.ended < end)
    }

    /// Attempts that began after the outage ended.
    pub fn after(&self) -> impl Iterator<Item = &Attempt> {
        let end = self.window.1;
        self.attempts.iter().filter(move |a| a.started >= end)
    }
}

/// Writers keep creating files while the server refuses every request for
/// `outage` (starting after `lead`), and go on for `tail` after it ends.
/// The mount's operations have `op_timeout`; every acknowledged file is
/// checked in the bucket at the end.
pub fn run_outage(
    outage: Duration,
    op_timeout: Duration,
    lead: Duration,
    tail: Duration,
    threads: usize,
) -> OutageReport {
    let server = TestServer::with(ServerOptions {
        log_filter: Some("warn".into()),
        ..ServerOptions::default()
    });
    let op = format!("{}ms", op_timeout.as_millis());
    // Names and folders stay cached (--metadata-ttl) so each call is one
    // FUSE request; an expired path component costs one request more.
    let args = [
        "--op-timeout",
        &op,
        "--retries",
        "1000",
        "--request-timeout",
        &op,
        "--metadata-ttl",
        "1h",
    ];
    let level = match std::env::var_os("FAULTS_DEBUG") {
        Some(_) => "debug",
        None => "info",
    };
    let m = mount(&server, &args, level);
    let started = Instant::now();
    let stop_at = lead + outage + tail;
    let attempts = std::sync::Mutex::new(Vec::new());
    let w = Workload {
        files: 0,
        min_size: 1 << 10,
        max_size: 1 << 20,
        seed: 5,
        threads,
        renames: 0,
        deletes: 0,
    };
    let mut report = OutageReport::default();
    // One folder per writer: creates in one folder queue on its lock in
    // the kernel, which would add up the waits of several calls.
    for t in 0..threads {
        std::fs::create_dir(m.path().join(format!("w{t}"))).unwrap();
    }
    std::thread::scope(|s| {
        for t in 0..threads {
            let (m, w, attempts) = (&m, &w, &attempts);
            s.spawn(move || {
                let mut n = 0;
                while started.elapsed() < stop_at {
                    let i = t + n * threads;
                    n += 1;
                    let attempt =
                        timed_write(&m.path(), &format!("w{t}/f{i:05}"), &w.content(i), started);
                    attempts.lock().unwrap().push((i, attempt));
                }
            });
        }
        std::thread::sleep(lead);
        admin(
            &server,
            "POST",
            &format!("/outage?secs={}", outage.as_secs_f64()),
        );
        // The outage holds once the server has answered: a call begun
        // while the request was on its way may still have gone through.
        report.window.0 = started.elapsed();
        std::thread::sleep(outage);
        report.window.1 = started.elapsed();
    });
    if let Some(path) = std::env::var_os("FAULTS_DEBUG") {
        std::fs::write(path, m.log_text()).unwrap();
    }
    drop(m);
    let faults = admin(&server, "GET", "/faults");
    report.refused = faults["outage"]["refused"].as_u64().unwrap_or(0);
    let mut all = attempts.into_inner().unwrap();
    all.sort_by_key(|(_, a)| a.started);
    let client = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (i, a) in &all {
        if a.error.is_none() {
            let want = crc64::checksum(&w.content(*i));
            let got = rt
                .block_on(client.head(&a.path))
                .ok()
                .and_then(|info| info.crc64);
            if got != Some(want) {
                report.lost.push(a.path.clone());
            }
        }
    }
    report.attempts = all.into_iter().map(|(_, a)| a).collect();
    report
}

/// Creates, writes and closes one file, timing each call.
fn timed_write(dir: &std::path::Path, name: &str, data: &[u8], epoch: Instant) -> Attempt {
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    let started = epoch.elapsed();
    let mut slowest = Duration::ZERO;
    let mut timed = |t: Instant| slowest = slowest.max(t.elapsed());
    let t = Instant::now();
    let created = std::fs::File::create(dir.join(name));
    timed(t);
    let error = match created {
        Err(e) => Some(e),
        Ok(mut f) => {
            let t = Instant::now();
            let written = f.write_all(data);
            timed(t);
            let t = Instant::now();
            // SAFETY: closing a descriptor we own exactly once.
            let closed = match unsafe { libc::close(f.into_raw_fd()) } {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            };
            timed(t);
            written.and(closed).err()
        }
    };
    Attempt {
        path: name.to_string(),
        started,
        ended: epoch.elapsed(),
        slowest_call: slowest,
        error,
    }
}
