//! [`TestMount`]: the real `cosmount` binary mounting a [`TestServer`]'s
//! bucket on a temporary directory, in the foreground as a child process so
//! the test controls its life; unmounted (SIGTERM, then a lazy unmount as a
//! last resort) on drop, even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::{BUCKET, REGION, SECRET_ID, SECRET_KEY, TestServer};

/// A live mount.
pub struct TestMount {
    child: Option<Child>,
    dir: tempfile::TempDir,
    log: PathBuf,
    /// What started it: bucket, arguments, log level, environment (for
    /// `restart`).
    started_with: (String, Vec<String>, String, Vec<(String, String)>),
}

/// The arguments that point `cosmount` at `server` with the test keys.
pub fn server_args(server: &TestServer) -> Vec<String> {
    vec![
        "--endpoint".into(),
        server.url(),
        "--region".into(),
        REGION.into(),
        "--secret-id".into(),
        SECRET_ID.into(),
        "--secret-key".into(),
        SECRET_KEY.into(),
    ]
}

impl TestMount {
    /// Mounts the test bucket of `server` with extra `args`.
    pub fn start(server: &TestServer, args: &[&str]) -> TestMount {
        TestMount::start_bucket(server, BUCKET, args)
    }

    /// Mounts `bucket` (may carry `:/prefix`) of `server` with extra `args`.
    pub fn start_bucket(server: &TestServer, bucket: &str, args: &[&str]) -> TestMount {
        let mut all = server_args(server);
        all.extend(args.iter().map(|s| s.to_string()));
        TestMount::start_raw(bucket, &all)
    }

    /// Mounts with exactly these arguments (plus `-f`, the log file and the
    /// mountpoint), failing the test if the mount does not come up.
    pub fn start_raw(bucket: &str, args: &[String]) -> TestMount {
        TestMount::start_logged(bucket, args, "debug")
    }

    /// Like [`start_raw`](Self::start_raw), logging at `level` (`trace`...).
    pub fn start_logged(bucket: &str, args: &[String], level: &str) -> TestMount {
        TestMount::start_env(bucket, args, level, &[])
    }

    /// Like [`start_logged`](Self::start_logged), with more environment
    /// variables for the daemon.
    pub fn start_env(
        bucket: &str,
        args: &[String],
        level: &str,
        env: &[(&str, &str)],
    ) -> TestMount {
        let dir = tempfile::tempdir().expect("temp dir");
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).unwrap();
        let log = dir.path().join("cosmount.log");
        let mut mount = TestMount {
            child: None,
            dir,
            log,
            started_with: (
                bucket.to_string(),
                args.to_vec(),
                level.to_string(),
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        };
        mount.spawn();
        mount
    }

    fn spawn(&mut self) {
        let (bucket, args, level, env) = &self.started_with;
        let child = Command::new(env!("CARGO_BIN_EXE_cosmount"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .arg(bucket)
            .arg(self.path())
            .args(["-f", "--log-level", level, "--log-file"])
            .arg(&self.log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start cosmount");
        self.child = Some(child);
        self.wait_until_mounted();
    }

    /// Kills the daemon with SIGKILL, leaving its mount dead ("Transport
    /// endpoint is not connected").
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Starts the daemon again on the same mountpoint with the same
    /// arguments plus `extra`, as a user would after a crash (no
    /// `fusermount -u` first).
    pub fn restart(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "the daemon still runs");
        self.started_with
            .1
            .extend(extra.iter().map(|s| s.to_string()));
        self.spawn();
    }

    fn wait_until_mounted(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        // A dead mount stays in mountinfo but cannot be stat'ed.
        let live = |p: &Path| is_mounted(p) && std::fs::metadata(p).is_ok();
        while !live(&self.path()) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "cosmount exited with {status} before mounting:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mount did not appear in 20 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The mountpoint.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// A path inside the mount.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// What the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A counter of the `COS client:` summary the daemon logs when it
    /// stops (`requests`, `retries`, `hedges`, `stalls`, `failed`...).
    pub fn client_counter(&self, name: &str) -> u64 {
        let log = self.log_text();
        let line = log
            .lines()
            .rev()
            .find_map(|l| l.split_once("COS client: ").map(|(_, s)| s.to_string()))
            .unwrap_or_else(|| panic!("no COS client summary in the log:\n{log}"));
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Runs a shell command with the mountpoint as working directory.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(self.path())
            .output()
            .expect("run sh")
    }

    /// Like [`sh`](Self::sh) but fails the test unless it succeeds; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` failed with {}:\nstdout: {}\nstderr: {}\nlog tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log_text(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends SIGTERM and waits for the daemon to unmount and exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "cosmount ignored SIGTERM for 60 s:\n{}",
                    tail(&self.log_text(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
        let path = self.path();
        if is_mounted(&path) {
            let _ = Command::new("umount").arg("-l").arg(&path).status();
        }
    }
}

/// Whether `path` is a mountpoint right now (from /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let wanted = path.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

/// Pids of live (not zombie) processes whose command line mentions `needle`.
pub fn daemons_for(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.split(' ').nth(2) == Some("Z");
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Polls `done` every 50 ms; fails the test after 20 s.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
