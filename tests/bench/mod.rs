//! The side-by-side benchmark (`scripts/bench`, `benches/compare/`) in its
//! `--quick` mode, on `cosmount serve` and on SeaweedFS, so the harness
//! cannot rot: every cell of the table must be measured. No speed is
//! asserted. Needs root, /dev/fuse and apt (the script installs s3fs,
//! rclone and fio when missing).

use std::process::Command;

/// Cells a row may hold besides numbers: `n/a` (a peer without that mode)
/// and `—` (no raw-HTTP counterpart, or a ratio that cannot be formed).
fn is_measured(cell: &str) -> bool {
    let cell = cell.trim().trim_end_matches('×');
    cell == "n/a" || cell == "—" || cell.replace(',', "").parse::<f64>().is_ok()
}

/// Runs `scripts/bench --quick` with `args` and checks that the table has
/// `columns` columns and every cell of them was measured; the report.
fn quick_comparison(args: &[&str], columns: usize) -> String {
    let out = tempfile::tempdir().expect("temp dir");
    let report = out.path().join("compare.md");
    // Build the harness in this test run's profile: its dependencies are
    // already compiled, so only the bench target itself is new.
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench"))
        .args(["--quick", "--out"])
        .arg(&report)
        .args(args)
        .env("COSMOUNT_BENCH_PROFILE", profile)
        .status()
        .expect("run scripts/bench");
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(
        status.success(),
        "scripts/bench --quick {args:?} failed: {status}\n{text}"
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| workload"))
        .collect();
    assert_eq!(rows.len(), 38, "one row per workload:\n{text}");
    assert!(
        text.contains("| Hedged requests sent"),
        "the hedge count row:\n{text}"
    );
    assert!(
        text.contains("against the floor (raw PUTs + tar into a FUSE filesystem"),
        "the untar floor row:\n{text}"
    );
    assert!(
        text.contains("server CPU per file until tar exits"),
        "the untar server CPU row:\n{text}"
    );
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
        assert_eq!(cells.len(), columns, "{row}");
        // workload, unit, raw, cosmount, then the other peers and ratios.
        assert!(
            cells[3].trim().replace(',', "").parse::<f64>().is_ok(),
            "cosmount measured: {row}"
        );
        for cell in &cells[2..] {
            assert!(is_measured(cell), "`{cell}` in {row}");
        }
    }
    assert!(!text.contains("Not measured"), "{text}");
    text
}

#[test]
fn quick_comparison_measures_every_cell() {
    // workload, unit, raw, cosmount, s3fs, rclone, then three ratios.
    quick_comparison(&[], 9);
}

/// The same workloads on SeaweedFS, a server we did not write, with S3
/// authentication on: the raw client and cosmount sign with SigV4, and
/// cosmount infers S3's dialect by itself (a mount that took the server
/// for COS fails its cells). Cosmount and raw HTTP only, to keep the
/// suite's time.
#[test]
fn quick_comparison_on_seaweedfs_measures_every_cell() {
    // workload, unit, raw, cosmount, cosmount ÷ raw.
    let text = quick_comparison(&["--server", "seaweedfs", "--peers", "cosmount"], 5);
    assert!(text.contains("S3 authentication on"), "{text}");
    assert!(!text.contains("--anonymous"), "cosmount signs: {text}");
}
