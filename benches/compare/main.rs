//! cosmount side by side with s3fs and rclone mount, in one run on one
//! bucket on loopback: `cosmount serve` (anonymous, `--public-read-write`)
//! or, with `--server seaweedfs`, SeaweedFS with S3 authentication on,
//! where every peer and the raw client sign with one key pair (SigV4):
//! sequential reads (1 reader; 4 readers on 4 files), time to first byte,
//! 4 KiB random reads (fio), a sequential write including close, `ls -l`
//! of a large folder (cold and warm), `find` over a tree, and an untar of
//! small files, plus raw HTTP to the server as the ceiling and each mount
//! daemon's CPU seconds and peak RSS from `/proc`. Workloads run in turn on
//! every peer (interleaved per repetition, so load drifting on a shared
//! machine hits all alike); the median of the repetitions is reported.
//! Prints one Markdown table and writes it to `target/bench/compare.md`
//! (`compare-quick.md` with `--quick`).
//!
//! Run it as root with `scripts/bench [--quick]`, which installs s3fs,
//! rclone and fio when missing. Options: `--quick`, `--runs N`,
//! `--out FILE`, `--peers cosmount,s3fs,rclone`, `--only TEXT` (workloads
//! whose name contains TEXT), `--cache-size SIZE` (cosmount's, for a
//! sweep), `--server cosmount|seaweedfs` (the server every peer mounts).
//! `cargo test --all-targets` builds this target and runs it without
//! `--bench`; it then only says how to run it.

mod nullfs;
mod peers;
mod raw;
mod report;
mod server;
mod sys;
#[path = "../../tests/common/weed_command.rs"]
mod weed_command;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use peers::{Kind, MountEnv, PeakRss, Variant};
use report::{Better, Cell, Col, Table};
use server::{Server, ServerKind};
use sys::{Measured, Skip, median};
use workloads::{Bench, Sizes};

/// Parsed command line.
struct Options {
    quick: bool,
    runs: Option<usize>,
    out: Option<PathBuf>,
    peers: Vec<Kind>,
    only: Option<String>,
    /// cosmount's `--cache-size`, when not its default.
    cache_size: Option<cosmount::units::Size>,
    /// The server every peer mounts.
    server: ServerKind,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            quick: false,
            runs: None,
            out: None,
            peers: Kind::ALL.to_vec(),
            only: None,
            cache_size: None,
            server: ServerKind::Cosmount,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--bench" => {}
                "--quick" => o.quick = true,
                "--runs" => {
                    let n = value()?;
                    o.runs = Some(n.parse().ok().filter(|&n| n > 0).ok_or("--runs: a count")?);
                }
                "--out" => o.out = Some(PathBuf::from(value()?)),
                "--only" => o.only = Some(value()?),
                "--server" => {
                    let name = value()?;
                    o.server = ServerKind::parse(&name)
                        .ok_or(format!("--server: cosmount or seaweedfs, not {name}"))?;
                }
                "--cache-size" => {
                    o.cache_size = Some(cosmount::units::parse_size("--cache-size", &value()?)?)
                }
                "--peers" => {
                    o.peers = value()?
                        .split(',')
                        .map(|p| Kind::parse(p).ok_or(format!("unknown peer {p}")))
                        .collect::<Result<_, _>>()?;
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(o)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("compare: run `scripts/bench [--quick]` (root) to benchmark");
        return ExitCode::SUCCESS;
    }
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("compare: some cells were not measured (see the table's notes)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A raw-HTTP measurement: one value per row (`None`: no counterpart).
type RawRun<'b> = Box<dyn Fn() -> Measured<Vec<Option<f64>>> + 'b>;
/// A peer measurement (peer, repetition): one value per row.
type PeerRun<'b> = Box<dyn Fn(Kind, usize) -> Measured<Vec<f64>> + 'b>;

/// One workload: the rows it fills, its raw counterpart and its peer run.
struct Workload<'b> {
    name: String,
    rows: Vec<usize>,
    raw: Option<RawRun<'b>>,
    peer: PeerRun<'b>,
}

fn run(opts: &Options) -> Result<bool, String> {
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let sizes = Sizes {
        runs: opts.runs.unwrap_or(sizes.runs),
        ..sizes
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bench_dir = manifest.join("target/bench");
    std::fs::create_dir_all(&bench_dir).map_err(|e| e.to_string())?;
    let out = opts.out.clone().unwrap_or_else(|| {
        let quick = if opts.quick { "-quick" } else { "" };
        let server = match opts.server {
            ServerKind::Cosmount => "",
            ServerKind::Seaweedfs => "-seaweedfs",
        };
        bench_dir.join(format!("compare{quick}{server}.md"))
    });
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(&bench_dir)
        .map_err(|e| e.to_string())?;
    let cosmount = PathBuf::from(env!("CARGO_BIN_EXE_cosmount"));
    let server = Server::start(opts.server, &cosmount, &work.path().join("root"))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let client = raw::client(&server.url, server.bucket, server.keys).map_err(skip_text)?;
    eprintln!("seeding {} ...", server.url);
    rt.block_on(workloads::seed(&client, &sizes))
        .map_err(skip_text)?;
    let (tarball, tar_files) =
        workloads::make_tarball(work.path(), sizes.untar).map_err(skip_text)?;
    let peaks = PeakRss::default();
    let bench = Bench {
        sizes: sizes.clone(),
        env: MountEnv {
            cosmount: &cosmount,
            url: &server.url,
            bucket: server.bucket,
            keys: server.keys,
            cache_size: opts.cache_size,
            work: work.path(),
            peaks: &peaks,
        },
        rt: &rt,
        client: &client,
        server: &server,
        tarball,
        tar_files,
    };

    let mut table = Table::default();
    let list = workload_list(&bench, &mut table);
    for w in &list {
        if opts
            .only
            .as_ref()
            .is_some_and(|o| !w.name.contains(o.as_str()))
        {
            continue;
        }
        peaks.set_workload(&w.name);
        run_workload(&mut table, w, &opts.peers, sizes.runs);
    }
    let rss_row = table.row(
        "Daemon peak RSS, max over all its mounts in this run".into(),
        "MiB",
        Better::Lower,
        false,
    );
    let mut rss_notes = Vec::new();
    for &p in &opts.peers {
        let cell = match peaks.get(p) {
            Some((mib, workload)) => {
                rss_notes.push(format!("{} {mib:.0} MiB in `{workload}`", p.name()));
                Cell::Value(mib)
            }
            None => Cell::Failed("no mount measured".into()),
        };
        table.set(rss_row, Col::Peer(p), cell);
    }

    let by_workload = peaks.cosmount_by_workload();
    if !by_workload.is_empty() {
        // The promise: the --cache-size plus a small overhead.
        let budget =
            opts.cache_size
                .map_or(cosmount::fs::FsConfig::default().memory_bytes, |s| s.0) as f64
                / (1u64 << 20) as f64;
        let limit = budget + 48.0;
        let over = by_workload.iter().filter(|(_, mib)| *mib > limit).count();
        let list: Vec<String> = by_workload
            .iter()
            .map(|(w, mib)| format!("`{w}` {mib:.0}"))
            .collect();
        rss_notes.push(format!(
            "cosmount's peak RSS per workload in MiB (promise: --cache-size {budget:.0} MiB + 48 = {limit:.0}; {over} over): {}",
            list.join(", ")
        ));
    }

    let hedges_row = table.row(
        "Hedged requests sent (stalls detected), over all cosmount mounts".into(),
        "count",
        Better::Lower,
        false,
    );
    for &p in &opts.peers {
        let cell = match (p, peaks.client_counter("hedges")) {
            (Kind::Cosmount, Some(hedges)) => {
                let stalls = peaks.client_counter("stalls").unwrap_or(0);
                let won = peaks.client_counter("hedges_won").unwrap_or(0);
                rss_notes.push(format!(
                    "cosmount sent {hedges} hedges ({won} answered first) and abandoned {stalls} stalled attempts"
                ));
                Cell::Value(hedges as f64)
            }
            (Kind::Cosmount, None) => Cell::Failed("no client counters logged".into()),
            _ => Cell::NotApplicable,
        };
        table.set(hedges_row, Col::Peer(p), cell);
    }

    let failures = if opts.only.is_some() {
        Vec::new()
    } else {
        table.failures(&opts.peers)
    };
    let doc = document(opts, &bench, &table, &failures, &rss_notes);
    println!("{doc}");
    std::fs::write(&out, &doc).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("written to {}", out.display());
    Ok(failures.is_empty())
}

fn skip_text(s: Skip) -> String {
    match s {
        Skip::NotApplicable(w) => w.to_string(),
        Skip::Failed(w) => w,
    }
}

/// Declares the rows and the workloads that fill them.
fn workload_list<'b>(b: &'b Bench<'b>, t: &mut Table) -> Vec<Workload<'b>> {
    let s = &b.sizes;
    let big = s.big_label();
    let n = s.readers;
    let mut row = |label: String, unit, better| t.row(label, unit, better, true);
    let seq1 = row(
        format!("Sequential read {big}, 1 reader (cold)"),
        "MiB/s",
        Better::Higher,
    );
    let seq4 = row(
        format!("Sequential read {n} × {big}, {n} readers (cold)"),
        "MiB/s",
        Better::Higher,
    );
    let ttfb = row(
        "Time to first byte: open + first 4 KiB read, fresh mount (cold)".into(),
        "ms",
        Better::Lower,
    );
    let rand1 = row(
        format!("Random 4 KiB reads in a {big} file, 1 job, fio psync (cold)"),
        "IOPS",
        Better::Higher,
    );
    let rand4 = row(
        format!("Random 4 KiB reads in a {big} file, 4 jobs (cold)"),
        "IOPS",
        Better::Higher,
    );
    let w_close = row(
        format!("Sequential write {big} (dd bs=1M), until close returns"),
        "MiB/s",
        Better::Higher,
    );
    let w_durable = row(
        format!("Sequential write {big}, until complete on the server"),
        "MiB/s",
        Better::Higher,
    );
    let ls = sys::thousands(s.ls);
    let ls_rows = [
        row(
            format!("ls -l of {ls} objects, exact metadata, cold"),
            "ms",
            Better::Lower,
        ),
        row(
            format!("ls -l of {ls} objects, exact metadata, warm"),
            "ms",
            Better::Lower,
        ),
        row(
            format!(
                "ls -l of {ls} objects, listing only (cosmount --fast-list, rclone --use-server-modtime), cold"
            ),
            "ms",
            Better::Lower,
        ),
        row(
            format!("ls -l of {ls} objects, listing only, warm"),
            "ms",
            Better::Lower,
        ),
    ];
    let (top, sub, _) = s.tree;
    let dirs = top + top * sub;
    let find_rows = [
        row(
            format!(
                "find over {} files in {dirs} folders, cold",
                sys::thousands(s.tree_files())
            ),
            "s",
            Better::Lower,
        ),
        row("find over the same tree, warm".into(), "s", Better::Lower),
    ];
    let untar = sys::thousands(s.untar);
    let untar_rows = [
        row(
            format!("untar {untar} small files (tar -xf), until tar exits"),
            "s",
            Better::Lower,
        ),
        row(
            format!("untar {untar} small files, until all are complete on the server"),
            "s",
            Better::Lower,
        ),
        t.row(
            format!("untar {untar} small files: server requests per file"),
            "req",
            Better::Lower,
            false,
        ),
        t.row(
            format!(
                "untar {untar} small files until complete, against the floor (raw PUTs + tar into a FUSE filesystem that stores nothing)"
            ),
            "s",
            Better::Lower,
            true,
        ),
        t.row(
            format!(
                "untar {untar} small files: server CPU per file until tar exits (what each request costs the server)"
            ),
            "ms",
            Better::Lower,
            true,
        ),
    ];
    let untar_nocto_rows = [
        t.row(
            format!("untar {untar} small files, cosmount -o nocto, until tar exits"),
            "s",
            Better::Lower,
            false,
        ),
        t.row(
            "untar, cosmount -o nocto, until complete on the server".into(),
            "s",
            Better::Lower,
            false,
        ),
        t.row(
            "untar, cosmount -o nocto: server requests per file".into(),
            "req",
            Better::Lower,
            false,
        ),
    ];
    let observed_rows = [
        t.row(
            format!(
                "untar {untar} small files, cosmount with metrics and audit log, until tar exits"
            ),
            "s",
            Better::Lower,
            false,
        ),
        t.row(
            "untar, cosmount with metrics and audit log, until complete on the server".into(),
            "s",
            Better::Lower,
            false,
        ),
        t.row(
            format!(
                "Random 4 KiB reads in a {big} file, 1 job, cosmount with metrics and audit log"
            ),
            "IOPS",
            Better::Higher,
            false,
        ),
    ];
    let disk_rows = [
        t.row(
            format!("Random 4 KiB reads in a {big} file, 1 job, disk cache on: first pass (cold)"),
            "IOPS",
            Better::Higher,
            false,
        ),
        t.row(
            "Random 4 KiB reads, 1 job, disk cache on: second pass, same mount, page cache dropped"
                .into(),
            "IOPS",
            Better::Higher,
            false,
        ),
        t.row(
            format!("Random 4 KiB reads in a {big} file, 4 jobs, disk cache on: first pass (cold)"),
            "IOPS",
            Better::Higher,
            false,
        ),
        t.row(
            "Random 4 KiB reads, 4 jobs, disk cache on: second pass".into(),
            "IOPS",
            Better::Higher,
            false,
        ),
        t.row(
            format!("Sequential read {big}, disk cache on: first read (cold)"),
            "MiB/s",
            Better::Higher,
            false,
        ),
        t.row(
            "Sequential re-read, disk cache on, same mount, page cache dropped".into(),
            "MiB/s",
            Better::Higher,
            false,
        ),
    ];
    let cat = sys::thousands(b.cat_files_count());
    let cat_rows = [
        t.row(
            format!("find -type f -exec cat over {cat} files, fresh mount"),
            "s",
            Better::Lower,
            false,
        ),
        t.row(
            format!("find -exec cat over {cat} files: server requests per file"),
            "req",
            Better::Lower,
            false,
        ),
        t.row(
            format!("find -exec cat over {cat} files, cosmount -o nocto"),
            "s",
            Better::Lower,
            false,
        ),
        t.row(
            "find -exec cat, cosmount -o nocto: server requests per file".into(),
            "req",
            Better::Lower,
            false,
        ),
    ];

    let cpu_read = t.row(
        format!("Daemon CPU per GiB read: sequential {big}, 1 reader"),
        "s/GiB",
        Better::Lower,
        false,
    );
    let cpu_write = t.row(
        format!("Daemon CPU per GiB written: sequential {big}, until complete"),
        "s/GiB",
        Better::Lower,
        false,
    );

    vec![
        Workload {
            name: "seq-read-1".into(),
            rows: vec![seq1, cpu_read],
            raw: Some(Box::new(move || b.raw_seq_read(1))),
            peer: Box::new(move |k, _| b.seq_read(k, 1)),
        },
        Workload {
            name: "seq-read-4".into(),
            rows: vec![seq4],
            raw: Some(Box::new(move || b.raw_seq_read(n).map(|v| v[..1].to_vec()))),
            peer: Box::new(move |k, _| b.seq_read(k, n).map(|v| v[..1].to_vec())),
        },
        Workload {
            name: "first-byte".into(),
            rows: vec![ttfb],
            raw: Some(Box::new(move || b.raw_first_byte())),
            peer: Box::new(move |k, _| b.first_byte(k)),
        },
        Workload {
            name: "random-1".into(),
            rows: vec![rand1],
            raw: Some(Box::new(move || b.raw_random_read(1))),
            peer: Box::new(move |k, _| b.random_read(k, Variant::Default, 1)),
        },
        Workload {
            name: "random-4".into(),
            rows: vec![rand4],
            raw: Some(Box::new(move || b.raw_random_read(4))),
            peer: Box::new(move |k, _| b.random_read(k, Variant::Default, 4)),
        },
        Workload {
            name: "write".into(),
            rows: vec![w_close, w_durable, cpu_write],
            raw: Some(Box::new(move || b.raw_write())),
            peer: Box::new(move |k, rep| b.write(k, rep)),
        },
        Workload {
            name: "ls-exact".into(),
            rows: ls_rows[..2].to_vec(),
            raw: Some(Box::new(move || b.raw_ls_exact())),
            peer: Box::new(move |k, _| b.ls(k, Variant::Default)),
        },
        Workload {
            name: "ls-listing-only".into(),
            rows: ls_rows[2..].to_vec(),
            raw: Some(Box::new(move || b.raw_ls())),
            peer: Box::new(move |k, _| b.ls(k, Variant::ListingOnly)),
        },
        Workload {
            name: "find".into(),
            rows: find_rows.to_vec(),
            raw: Some(Box::new(move || b.raw_find())),
            peer: Box::new(move |k, _| b.find(k)),
        },
        Workload {
            name: "untar".into(),
            rows: untar_rows.to_vec(),
            raw: Some(Box::new(move || b.raw_untar())),
            peer: Box::new(move |k, rep| b.untar(k, Variant::Default, rep)),
        },
        Workload {
            name: "untar-nocto".into(),
            rows: untar_nocto_rows.to_vec(),
            raw: None,
            peer: Box::new(move |k, rep| {
                b.untar(k, Variant::TtlOnly, rep).map(|v| v[..3].to_vec())
            }),
        },
        Workload {
            name: "untar-observed".into(),
            rows: observed_rows[..2].to_vec(),
            raw: None,
            peer: Box::new(move |k, rep| {
                b.untar(k, Variant::Observed, rep).map(|v| v[..2].to_vec())
            }),
        },
        Workload {
            name: "random-1-observed".into(),
            rows: observed_rows[2..].to_vec(),
            raw: None,
            peer: Box::new(move |k, _| b.random_read(k, Variant::Observed, 1)),
        },
        Workload {
            name: "random-1-disk".into(),
            rows: disk_rows[..2].to_vec(),
            raw: None,
            peer: Box::new(move |k, _| b.random_read_twice(k, 1)),
        },
        Workload {
            name: "random-4-disk".into(),
            rows: disk_rows[2..4].to_vec(),
            raw: None,
            peer: Box::new(move |k, _| b.random_read_twice(k, 4)),
        },
        Workload {
            name: "seq-reread-disk".into(),
            rows: disk_rows[4..].to_vec(),
            raw: None,
            peer: Box::new(move |k, _| b.seq_reread(k)),
        },
        Workload {
            name: "cat-files".into(),
            rows: cat_rows[..2].to_vec(),
            raw: None,
            peer: Box::new(move |k, _| b.cat_files(k, Variant::Default)),
        },
        Workload {
            name: "cat-files-nocto".into(),
            rows: cat_rows[2..].to_vec(),
            raw: None,
            peer: Box::new(move |k, _| b.cat_files(k, Variant::TtlOnly)),
        },
    ]
}

/// Runs `w` `runs` times on raw HTTP and every peer (interleaved) and
/// stores the medians.
fn run_workload(table: &mut Table, w: &Workload, peers: &[Kind], runs: usize) {
    let mut values: Vec<(Col, Vec<Vec<f64>>)> = Vec::new();
    let mut errors: Vec<(Col, Skip)> = Vec::new();
    let mut raw_values: Vec<Vec<Option<f64>>> = Vec::new();
    for rep in 0..runs {
        if let Some(raw) = &w.raw
            && !errors.iter().any(|(c, _)| *c == Col::Raw)
        {
            match raw() {
                Ok(v) => raw_values.push(v),
                Err(e) => errors.push((Col::Raw, e)),
            }
            eprintln!(
                "[{}] raw, run {}/{runs}: {:?}",
                w.name,
                rep + 1,
                raw_values.last()
            );
        }
        for &p in peers {
            let col = Col::Peer(p);
            if errors.iter().any(|(c, _)| *c == col) {
                continue;
            }
            let result = (w.peer)(p, rep);
            eprintln!(
                "[{}] {}, run {}/{runs}: {result:?}",
                w.name,
                p.name(),
                rep + 1
            );
            match result {
                Ok(v) => match values.iter_mut().find(|(c, _)| *c == col) {
                    Some((_, all)) => all.push(v),
                    None => values.push((col, vec![v])),
                },
                Err(e) => errors.push((col, e)),
            }
        }
    }
    for (i, &row) in w.rows.iter().enumerate() {
        for (col, e) in &errors {
            let cell = Cell::from(Err::<f64, _>(e.clone()));
            table.set(row, *col, cell);
        }
        for (col, all) in &values {
            let v: Vec<f64> = all.iter().filter_map(|r| r.get(i).copied()).collect();
            table.set(row, *col, Cell::from(Ok::<_, Skip>(median(&v))));
        }
        let raw: Vec<f64> = raw_values
            .iter()
            .filter_map(|r| r.get(i).copied().flatten())
            .collect();
        if !raw.is_empty() {
            table.set(row, Col::Raw, Cell::Value(median(&raw)));
        }
    }
}

/// The report: how it was run, the table, what each peer was given.
fn document(
    opts: &Options,
    bench: &Bench,
    table: &Table,
    failures: &[String],
    rss_notes: &[String],
) -> String {
    let (sizes, server, cosmount) = (&bench.sizes, bench.server, bench.env.cosmount);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let git = sys::version(
        "git",
        &[
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "describe",
            "--always",
            "--dirty",
        ],
    );
    let mut d = String::new();
    d.push_str("# cosmount vs s3fs vs rclone mount\n\n");
    d.push_str(&format!(
        "`scripts/bench{}` on {} — {cores} vCPUs, **a shared VM: other builds compete for the CPU**, \
         so compare columns within one run, not across runs. Kernel {}. Median of {} run(s) per cell.\n\n",
        if opts.quick { " --quick" } else { "" },
        sys::version("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        sys::version("uname", &["-r"]),
        sizes.runs,
    ));
    d.push_str(&format!(
        "Versions: {} ({git}), {}, {}, {}.\n\n",
        sys::version(cosmount.to_str().unwrap_or("cosmount"), &["--version"]),
        sys::version("s3fs", &["--version"]),
        sys::version("rclone", &["version"]),
        sys::version("fio", &["--version"]),
    ));
    d.push_str(&table.render(&opts.peers));
    d.push_str(
        "\nRatios are cosmount's advantage: above 1 means cosmount is better (faster, more \
         throughput, fewer seconds, less memory); against raw HTTP it is the fraction of the \
         ceiling reached.\n\n",
    );
    if !rss_notes.is_empty() {
        d.push_str(&format!(
            "Peak RSS was reached by {}.\n\n",
            rss_notes.join(", ")
        ));
    }
    d.push_str(
        "**Cold**: a fresh mount, then `sync; echo 3 > /proc/sys/vm/drop_caches`, then the \
         server's own files of the objects read back in: the mount's side (page cache, its \
         caches) is cold, the server (standing in for COS) serves from memory for every peer \
         alike. **Warm**: the same command again at once on the same mount. Writes start on a \
         fresh mount after `sync`; \"complete on the server\" is polled with HEAD/List from \
         outside the mount (rclone uploads after close, after its `--vfs-write-back` delay, 5 s \
         by default). Raw HTTP: cosmount's own client in the bench process, with the \
         peers' credentials (none on `cosmount serve`, SigV4 on SeaweedFS): 8 MiB \
         ranged GETs with 4 in flight per object, a multipart upload with 8 MiB parts 4 in \
         flight, 4 KiB ranged GETs at random offsets (1 or 4 in flight), one listing (all \
         pages), one listing per folder for the tree, one PUT per file in turn for the \
         tarball. Sequential reads are `dd bs=1M of=/dev/null`, the write `dd if=/dev/zero \
         bs=1M`; random reads are `fio --rw=randread --bs=4k --ioengine=psync` (buffered) for \
         the given seconds; CPU and peak RSS are the daemon's, from `/proc/PID/stat` and \
         `VmHWM`.\n\n",
    );
    d.push_str("Settings:\n\n");
    d.push_str(&format!("- server: {}\n", server.describe()));
    d.push_str(
        "- untar: `tar -xf` as root for every peer: owners, modes and times are set through \
         the mount; the floor adds to the raw PUTs the same `tar -xf` into a FUSE filesystem \
         that keeps only names and attributes (in the bench process, cosmount's session \
         settings): the kernel round trips no FUSE mounter can avoid\n",
    );
    for &p in &opts.peers {
        d.push_str(&format!("- {}: {}\n", p.name(), p.settings(&bench.env)));
    }
    d.push_str(&format!(
        "\nSizes: large objects {} each, {} objects in the `ls -l` folder, {} + {} folders and {} files for find, {} small files in the tarball (100–4,099 bytes), fio {} s per run.\n",
        sizes.big_label(),
        sys::thousands(sizes.ls),
        sizes.tree.0,
        sizes.tree.0 * sizes.tree.1,
        sys::thousands(sizes.tree_files()),
        sys::thousands(sizes.untar),
        sizes.fio_secs,
    ));
    if !failures.is_empty() {
        d.push_str("\nNot measured:\n\n");
        for f in failures {
            d.push_str(&format!("- {f}\n"));
        }
    }
    d
}
