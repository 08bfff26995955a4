//! The fault harness (`scripts/faults`): the fault workload of
//! `tests/faults/` at full size through real mounts of a `cosmount serve`
//! that injects faults into 10 % of requests, then an outage while files are
//! being written, each followed by a table: faults injected by kind next to
//! the retries the client made by cause, application-visible errors,
//! corrupted bytes, the bucket's state, leftover multipart uploads, the
//! daemons' peak RSS and the time taken. Writes the tables to
//! `target/faults.md` (the daemons' logs to `target/faults-logs/`) and
//! exits non-zero when an error, a corrupted byte
//! or a lost file was seen.
//!
//! `cargo bench --bench faults -- [--files N] [--min-size B] [--max-size B]
//! [--seed N] [--threads N] [--rate P] [--fault-seed N] [--renames N]
//! [--deletes N] [--outage SECS] [--op-timeout SECS] [--log-level L]
//! [--mount-arg ARG]... [--defaults]`; `--defaults` mounts with no option
//! at all against stalls of 65 s and runs the workload without faults
//! first, for the time beside it (no outage run).
//! (needs root and /dev/fuse).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/faults/harness.rs"]
mod harness;
#[path = "../tests/faults/workload.rs"]
mod workload;

use std::time::Duration;

use harness::{Setup, run, run_outage};
use workload::Workload;

struct Args {
    workload: Workload,
    setup: Setup,
    outage: u64,
    op_timeout: u64,
    /// `--defaults`: default mount options against 65 s stalls, beside the
    /// same workload without faults.
    defaults: bool,
}

fn parse() -> Args {
    let mut a = Args {
        workload: Workload {
            files: 1000,
            min_size: 1 << 10,
            max_size: 8 << 20,
            seed: 1,
            threads: 8,
            renames: 100,
            deletes: 100,
        },
        setup: Setup {
            fault_rate: 0.1,
            fault_seed: 1,
            stall: "4s".into(),
            delay: "500ms".into(),
            mount_args: ["--request-timeout", "3s", "--part-size", "2MiB"]
                .map(String::from)
                .to_vec(),
            log_level: "info".into(),
        },
        outage: 30,
        op_timeout: 10,
        defaults: false,
    };
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        let number =
            |v: String| -> u64 { v.parse().unwrap_or_else(|_| panic!("bad number {v:?}")) };
        match flag.as_str() {
            "--files" => a.workload.files = number(value()) as usize,
            "--min-size" => a.workload.min_size = number(value()),
            "--max-size" => a.workload.max_size = number(value()),
            "--seed" => a.workload.seed = number(value()),
            "--threads" => a.workload.threads = number(value()) as usize,
            "--renames" => a.workload.renames = number(value()) as usize,
            "--deletes" => a.workload.deletes = number(value()) as usize,
            "--rate" => a.setup.fault_rate = value().parse().expect("--rate P"),
            "--fault-seed" => a.setup.fault_seed = number(value()),
            "--log-level" => a.setup.log_level = value(),
            "--outage" => a.outage = number(value()),
            "--op-timeout" => a.op_timeout = number(value()),
            "--mount-arg" => a.setup.mount_args.push(value()),
            "--defaults" => {
                a.defaults = true;
                a.setup.mount_args.clear();
                a.setup.stall = "65s".into();
                a.setup.delay = "1s".into();
                a.outage = 0;
            }
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        a.workload.renames + a.workload.deletes <= a.workload.files,
        "more renames and deletes than files"
    );
    a
}

/// The default-options comparison: the workload's time without faults and
/// with them, and what the client did about the stalls.
fn defaults_table(clean: &harness::Report, faulty: &harness::Report) -> String {
    let secs = |r: &harness::Report| r.duration.as_secs_f64();
    let mut t = String::from(
        "Default mount options (no timeout flag), the same workload without faults and with `--fault-rate 0.1` (stalls of 65 s):\n\n| run | time | phases | errors | corrupted bytes | stalls injected | attempts abandoned | hedges sent (won) | requests |\n|---|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, r) in [("no faults", clean), ("faults", faulty)] {
        t.push_str(&format!(
            "| {name} | {:.1} s | {} | {} | {} | {} | {} | {} ({}) | {} |\n",
            secs(r),
            r.phase_times(),
            r.outcome.errors.len(),
            r.outcome.corrupted_bytes,
            r.injected.get("stall").copied().unwrap_or(0),
            r.counter("stalls"),
            r.counter("hedges"),
            r.counter("hedges_won"),
            r.counter("requests")
        ));
    }
    t.push_str(&format!(
        "\nWith faults ÷ without: **{:.2} ×** (target ≤ 3 ×).\n\n",
        secs(faulty) / secs(clean).max(0.001)
    ));
    t
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("faults: run `scripts/faults` (root) for the fault harness");
        return;
    }
    let args = parse();
    let (w, setup) = (&args.workload, &args.setup);
    eprintln!(
        "fault workload: {} files, fault rate {}",
        w.files, setup.fault_rate
    );
    let baseline = args.defaults.then(|| {
        eprintln!("the same workload without faults first");
        let clean = Setup {
            fault_rate: 0.0,
            ..setup.clone()
        };
        run(&clean, w)
    });
    let report = run(setup, w);
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/target/faults-logs");
    let _ = std::fs::create_dir_all(logs);
    for (i, log) in report.logs.iter().enumerate() {
        let _ = std::fs::write(format!("{logs}/mount-{}.log", i + 1), log);
    }
    let mut text = String::from("## Fault workload\n\n");
    if let Some(clean) = &baseline {
        text.push_str(&defaults_table(clean, &report));
    }
    text.push_str(&harness::render(setup, w, &report));
    let mut failed = !report.outcome.errors.is_empty()
        || report.outcome.corrupted_bytes > 0
        || !report.missing.is_empty()
        || !report.unexpected.is_empty()
        || !report.damaged.is_empty()
        || harness::secret_lines(&report.logs) > 0;
    for e in report.outcome.errors.iter().take(20) {
        text.push_str(&format!("\n- error: {e}"));
    }
    if args.outage > 0 {
        eprintln!(
            "outage: {} s with --op-timeout {} s",
            args.outage, args.op_timeout
        );
        let op = Duration::from_secs(args.op_timeout);
        let r = run_outage(
            Duration::from_secs(args.outage),
            op,
            Duration::from_secs(5),
            Duration::from_secs(args.op_timeout + 5),
            4,
        );
        let during: Vec<_> = r.during().collect();
        let failed_during = during.iter().filter(|a| a.error.is_some()).count();
        let slowest = during
            .iter()
            .map(|a| a.slowest_call)
            .max()
            .unwrap_or_default();
        let after: Vec<_> = r.after().collect();
        let after_failed = after.iter().filter(|a| a.error.is_some()).count();
        let acknowledged = r.attempts.iter().filter(|a| a.error.is_none()).count();
        let errnos: std::collections::BTreeSet<String> = during
            .iter()
            .filter_map(|a| a.error.as_ref())
            .map(|e| e.to_string())
            .collect();
        text.push_str(&format!(
            "\n## Outage\n\nThe server refuses every request (`POST /outage?secs={}`) while 4 writers create 1 KiB–1 MiB files; mount: `--op-timeout {}s --retries 1000 --request-timeout {}s --metadata-ttl 1h`.\n\n| result | value |\n|---|---|\n",
            args.outage, args.op_timeout, args.op_timeout
        ));
        text.push_str(&format!(
            "| files tried entirely within the outage | {} ({} failed: {}) |\n",
            during.len(),
            failed_during,
            errnos.into_iter().collect::<Vec<_>>().join(", ")
        ));
        text.push_str(&format!(
            "| slowest call among them | {:.1} s (deadline {} s) |\n",
            slowest.as_secs_f64(),
            args.op_timeout
        ));
        text.push_str(&format!(
            "| files begun after the outage | {} ({} failed) |\n",
            after.len(),
            after_failed
        ));
        text.push_str(&format!(
            "| files acknowledged (close returned 0) | {}, missing or wrong in the bucket: {} |\n",
            acknowledged,
            r.lost.len()
        ));
        text.push_str(&format!(
            "| requests refused by the server | {} |\n",
            r.refused
        ));
        failed |= failed_during < during.len() || after_failed > 0 || !r.lost.is_empty();
    }
    println!("{text}");
    let out = concat!(env!("CARGO_MANIFEST_DIR"), "/target/faults.md");
    if let Err(e) = std::fs::write(out, &text) {
        eprintln!("cannot write {out}: {e}");
    }
    if failed {
        eprintln!("FAILED: errors, corruption or lost files (see above)");
        std::process::exit(1);
    }
}
