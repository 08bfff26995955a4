//! The fault workload through real mounts, small enough for CI: with 10 %
//! of requests failing in every way the server can fail (stalls of 65 s
//! included, with the client's default timeouts), the application
//! sees no error and no wrong byte, the bucket holds exactly what it was
//! told, and the daemons' trace logs hold no secret.

use super::harness::{self, Setup};
use super::workload::Workload;

#[test]
fn ten_percent_faults_cause_no_error_and_no_corruption() {
    let setup = Setup {
        fault_rate: 0.1,
        fault_seed: 7,
        // Stalls outlast any timeout the client has: only its progress
        // deadlines and hedges, with their default settings, keep the
        // workload moving.
        stall: "65s".into(),
        delay: "300ms".into(),
        mount_args: ["--part-size", "1MiB", "--cache-size", "64MiB"]
            .map(String::from)
            .to_vec(),
        log_level: "trace".into(),
    };
    let w = Workload {
        files: 60,
        min_size: 1 << 10,
        max_size: 3 << 20,
        seed: 7,
        threads: 4,
        renames: 10,
        deletes: 10,
    };
    let r = harness::run(&setup, &w);
    eprintln!("{}", harness::render(&setup, &w, &r));
    for log in &r.logs {
        for line in log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        {
            eprintln!("{line}");
        }
    }
    assert!(
        r.outcome.errors.is_empty(),
        "application-visible errors: {:#?}",
        r.outcome.errors
    );
    assert_eq!(r.outcome.corrupted_bytes, 0);
    assert_eq!(
        (&r.missing, &r.unexpected, &r.damaged),
        (&vec![], &vec![], &vec![]),
        "the bucket holds exactly what was written"
    );
    // The memory budget (--cache-size 64MiB) bounds blocks and write
    // buffers; the rest is the runtime and requests in flight.
    assert!(
        r.peak_rss_kib < (64 + 64) << 10,
        "peak RSS {} KiB",
        r.peak_rss_kib
    );
    assert!(
        r.faults() > 0 && r.retries_total() > 0,
        "faults were injected and retried"
    );
    for (i, log) in r.logs.iter().enumerate() {
        assert!(log.contains(" TRACE "), "mount {i} logged at trace level");
    }
    assert_eq!(harness::secret_lines(&r.logs), 0, "no secret in the logs");
    assert_eq!(
        r.uploads_after_cleanup, 0,
        "cleanup aborts what faults left"
    );
}
