//! An outage while files are being written: calls made while the server
//! is down fail (EIO, or ETIMEDOUT when an attempt was cut short) within
//! about `--op-timeout` instead of hanging, calls begun after the outage
//! succeed, and every file whose close succeeded is in the bucket with the
//! right bytes.

use std::time::Duration;

use super::harness::run_outage;

#[test]
fn an_outage_fails_calls_within_the_deadline_and_loses_nothing() {
    let op_timeout = Duration::from_secs(3);
    let r = run_outage(
        Duration::from_secs(8),
        op_timeout,
        Duration::from_secs(2),
        Duration::from_secs(3),
        3,
    );
    let overlapping = r
        .attempts
        .iter()
        .filter(|a| a.ended >= r.window.0 && a.started < r.window.1);
    for a in overlapping {
        eprintln!(
            "{} {:.1?}..{:.1?} slowest call {:.1?}: {:?}",
            a.path, a.started, a.ended, a.slowest_call, a.error
        );
    }
    let during: Vec<_> = r.during().collect();
    let slowest = during
        .iter()
        .map(|a| a.slowest_call)
        .max()
        .unwrap_or_default();
    eprintln!(
        "outage {:.1?}..{:.1?}: {} files tried within it, slowest call {slowest:.1?}; {} requests refused; {} files after",
        r.window.0,
        r.window.1,
        during.len(),
        r.refused,
        r.after().count()
    );
    assert!(!during.is_empty(), "files were tried during the outage");
    for a in &during {
        let errno = a.error.as_ref().and_then(|e| e.raw_os_error());
        assert!(
            matches!(errno, Some(libc::EIO | libc::ETIMEDOUT)),
            "{}: {:?}",
            a.path,
            a.error
        );
    }
    // One COS operation per call, each bounded by the deadline; generous
    // slack for a loaded machine, but nothing like a hang.
    assert!(slowest < 2 * op_timeout, "a call took {slowest:?}");
    let after: Vec<_> = r.after().collect();
    assert!(!after.is_empty());
    for a in after {
        assert!(
            a.error.is_none(),
            "{} after the outage: {:?}",
            a.path,
            a.error
        );
    }
    assert!(r.lost.is_empty(), "acknowledged but missing: {:?}", r.lost);
}
