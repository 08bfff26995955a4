//! Processes and the kernel: shell commands with a deadline, dropping the
//! page cache, and a daemon's CPU time and peak RSS from `/proc`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Why a cell has no number.
#[derive(Clone, Debug)]
pub enum Skip {
    /// The peer has no such mode (shown as `n/a`).
    NotApplicable(&'static str),
    /// The measurement failed (shown as `FAILED`, listed under the table).
    Failed(String),
}

/// Result of one measurement.
pub type Measured<T> = Result<T, Skip>;

/// Shorthand for a failure.
pub fn failed<T>(why: impl Into<String>) -> Measured<T> {
    Err(Skip::Failed(why.into()))
}

/// Runs `script` with `sh -c` under `timeout`, failing on a non-zero exit.
pub fn sh(script: &str, limit: Duration) -> Measured<Output> {
    let out = Command::new("timeout")
        .arg(format!("{}", limit.as_secs().max(1)))
        .args(["sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Skip::Failed(format!("`{script}`: {e}")))?;
    if !out.status.success() {
        return failed(format!(
            "`{script}` exited with {}: {}",
            out.status,
            first_lines(&String::from_utf8_lossy(&out.stderr), 3)
        ));
    }
    Ok(out)
}

/// The first `n` lines of `text` joined with ` | `, and how many more there
/// were (a tool that fails on every file says so once per file).
fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    let mut shown = lines[..lines.len().min(n)].join(" | ");
    if lines.len() > n {
        shown.push_str(&format!(" | ({} more lines)", lines.len() - n));
    }
    shown
}

/// Seconds `f` takes.
pub fn timed<T>(f: impl FnOnce() -> Measured<T>) -> Measured<(f64, T)> {
    let start = Instant::now();
    let value = f()?;
    Ok((start.elapsed().as_secs_f64(), value))
}

/// Writes dirty pages back and drops the page, dentry and inode caches.
pub fn drop_caches() -> Measured<()> {
    sh(
        "sync; echo 3 > /proc/sys/vm/drop_caches",
        Duration::from_secs(300),
    )
    .map(|_| ())
}

/// Polls `done` every `every` until it is true or `limit` passes.
pub fn wait_for(
    what: &str,
    limit: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) -> Measured<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return failed(format!("{what}: not done after {limit:?}"));
        }
        std::thread::sleep(every);
    }
    Ok(())
}

/// True when `dir` is a mount point (an entry of `/proc/self/mountinfo`).
pub fn is_mounted(dir: &Path) -> bool {
    let Some(dir) = dir.to_str() else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(dir))
}

/// CPU time and memory of a running process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    /// User + system CPU seconds of all its threads so far.
    pub cpu_secs: f64,
    /// Peak resident set size (VmHWM), MiB.
    pub peak_rss_mib: f64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime
    // and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(ProcStats {
        cpu_secs: ticks / hz,
        peak_rss_mib: kib / 1024.0,
    })
}

/// The first line of `program args` (a version string), or `?`.
pub fn version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "?".to_string())
}

/// Median of `values` (the upper one of an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `n` with thousands separated by commas.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
