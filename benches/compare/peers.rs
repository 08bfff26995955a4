//! The three mounters and how each is mounted on the served bucket, in the
//! foreground as a child process so its pid gives CPU time and peak RSS.
//! Each gets its documented throughput settings ([`Kind::settings`] lists
//! them in the report), and the server's keys when it has some (each
//! peer's own way: environment, passwd file, remote config), so all sign
//! alike or none does. A [`Mount`] unmounts on drop, even on failure.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::server::{Keys, S3_REGION};
use crate::sys::{self, Measured, ProcStats, Skip, failed};

/// A mounter under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// This project.
    Cosmount,
    /// s3fs-fuse (the engine under Tencent's cosfs).
    S3fs,
    /// `rclone mount` with an S3 remote.
    Rclone,
}

/// Which settings a workload mounts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The peer's throughput settings, exact metadata.
    Default,
    /// Listings without a request per entry: cosmount `--fast-list`, rclone
    /// `--use-server-modtime`; s3fs has no such mode.
    ListingOnly,
    /// Opens trust cached attributes for the TTL: cosmount `-o nocto`; s3fs
    /// and rclone have only this mode (their default rows).
    TtlOnly,
    /// cosmount's defaults with `--metrics-listen` and `--audit-log` on:
    /// what watching a mount costs.
    Observed,
    /// Each peer's local-disk data cache on: cosmount `--cache-dir`, s3fs
    /// `use_cache`, rclone `--vfs-cache-mode full`.
    DiskCache,
}

/// rclone's remote, configured through the environment.
const RCLONE_REMOTE: &str = "BENCH";

/// What cosmount logs when it speaks COS to a server that is not COS
/// (`cos::dialect`): on a signed S3 server the dialect must have been
/// inferred as S3 instead.
const NOT_COS: &str = "does not speak COS";

impl Kind {
    /// All peers, in column order.
    pub const ALL: [Kind; 3] = [Kind::Cosmount, Kind::S3fs, Kind::Rclone];

    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cosmount => "cosmount",
            Kind::S3fs => "s3fs",
            Kind::Rclone => "rclone",
        }
    }

    /// Parses a column name.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Options besides the endpoint, bucket and mount point.
    fn options(self, variant: Variant) -> Option<Vec<&'static str>> {
        let mut opts = match self {
            // cosmount's defaults (1 s metadata TTL; rclone caches
            // directories for 5 minutes, s3fs stats for 900 s, by default).
            Kind::Cosmount => vec![],
            Kind::S3fs => vec![
                "-o",
                "parallel_count=8,multipart_size=16,max_stat_cache_size=200000,enable_noobj_cache",
            ],
            Kind::Rclone => vec![
                "--vfs-cache-mode",
                "writes",
                "--s3-upload-concurrency",
                "8",
                "--s3-chunk-size",
                "16M",
                "--vfs-fast-fingerprint",
                "--dir-cache-time",
                "5m",
            ],
        };
        match (self, variant) {
            (_, Variant::Default) => {}
            (Kind::Cosmount, Variant::ListingOnly) => opts.push("--fast-list"),
            (Kind::Rclone, Variant::ListingOnly) => opts.push("--use-server-modtime"),
            (Kind::S3fs, Variant::ListingOnly) => return None,
            (Kind::Cosmount, Variant::TtlOnly) => opts.push("--no-close-to-open"),
            (_, Variant::TtlOnly) => return None,
            (Kind::Cosmount, Variant::Observed) => opts.extend(["--metrics-listen", "127.0.0.1:0"]),
            (_, Variant::Observed) => return None,
            // The folders are added by `command`, which knows them.
            (Kind::Cosmount | Kind::S3fs, Variant::DiskCache) => {}
            (Kind::Rclone, Variant::DiskCache) => {
                opts.retain(|o| *o != "writes");
                opts.insert(1, "full");
            }
        }
        Some(opts)
    }

    /// The settings, as the report lists them.
    pub fn settings(self, env: &MountEnv) -> String {
        let (url, bucket, signed) = (env.url, env.bucket, env.keys.is_some());
        let opts = |v| self.options(v).unwrap_or_default().join(" ");
        match self {
            Kind::Cosmount => format!(
                "`{}cosmount {}--endpoint {url} --path-style {}{} {bucket} MNT -f`{}; \
                 listing-only rows add `--fast-list`, nocto rows `--no-close-to-open`, \
                 observed rows `--metrics-listen 127.0.0.1:0 --audit-log FILE`, \
                 disk-cache rows `--cache-dir DIR`",
                if signed {
                    "AWS_ACCESS_KEY_ID=KEY AWS_SECRET_ACCESS_KEY=SECRET "
                } else {
                    ""
                },
                if signed { "" } else { "--anonymous " },
                opts(Variant::Default),
                env.cache_size
                    .map_or(String::new(), |s| format!(" --cache-size={s}")),
                if signed {
                    " (no `--provider`: every mount inferred S3's dialect from the endpoint's \
                     `x-amz-request-id` and signed with SigV4; the bench checks that its log \
                     never says it \"does not speak COS\")"
                } else {
                    ""
                },
            ),
            Kind::S3fs => format!(
                "`s3fs {bucket} MNT -f -o {},use_path_request_style,url={url},\
                 tmpdir=DIR,{}` (no listing-only mode); disk-cache rows add `use_cache=DIR`",
                if signed {
                    format!("passwd_file=FILE (KEY:SECRET, mode 600),sigv4,endpoint={S3_REGION}")
                } else {
                    "public_bucket=1".to_string()
                },
                opts(Variant::Default).trim_start_matches("-o ")
            ),
            Kind::Rclone => format!(
                "remote `type=s3 provider={} endpoint={url} env_auth=false {}list_version=1 \
                 no_check_bucket=true force_path_style=true`{}; `rclone mount {RCLONE_REMOTE}:{bucket} MNT \
                 --cache-dir DIR {}`; listing-only rows add `--use-server-modtime`, disk-cache rows \
                 use `--vfs-cache-mode full`",
                rclone_provider(signed),
                if signed {
                    "access_key_id=KEY secret_access_key=SECRET "
                } else {
                    ""
                },
                if signed { "" } else { " (no keys: anonymous)" },
                opts(Variant::Default)
            ),
        }
    }

    /// Program, arguments and extra environment to mount the bucket;
    /// `NotApplicable` when the peer has no such mode.
    fn command(
        self,
        env: &MountEnv,
        mnt: &Path,
        scratch: &Path,
        variant: Variant,
    ) -> Measured<Command> {
        let (url, bucket, keys) = (env.url, env.bucket, env.keys);
        let opts = self
            .options(variant)
            .ok_or(Skip::NotApplicable("no such mode"))?;
        let mut cmd;
        match self {
            Kind::Cosmount => {
                cmd = Command::new(env.cosmount);
                if keys.is_none() {
                    cmd.arg("--anonymous");
                }
                cmd.args(["--endpoint", url, "--path-style"])
                    .args(&opts)
                    .args(env.cache_size.map(|s| format!("--cache-size={s}")))
                    .arg("--staging-dir")
                    .arg(scratch)
                    .arg(bucket)
                    .arg(mnt)
                    .arg("-f");
                if variant == Variant::Observed {
                    cmd.arg("--audit-log").arg(scratch.join("audit.log"));
                }
                if variant == Variant::DiskCache {
                    cmd.arg("--cache-dir").arg(scratch.join("cache"));
                }
            }
            Kind::S3fs => {
                let auth = match keys {
                    Some(k) => {
                        let file = scratch.join("passwd");
                        s3fs_passwd(&file, k)
                            .map_err(|e| Skip::Failed(format!("s3fs passwd file: {e}")))?;
                        format!("passwd_file={},sigv4,endpoint={S3_REGION}", file.display())
                    }
                    None => "public_bucket=1".to_string(),
                };
                cmd = Command::new("s3fs");
                cmd.arg(bucket).arg(mnt).arg("-f").arg("-o").arg(format!(
                    "{auth},use_path_request_style,url={url},tmpdir={},dbglevel=err",
                    scratch.display()
                ));
                if variant == Variant::DiskCache {
                    cmd.arg("-o")
                        .arg(format!("use_cache={}", scratch.join("cache").display()));
                }
                cmd.args(&opts);
            }
            Kind::Rclone => {
                cmd = Command::new("rclone");
                let var = |name: &str| format!("RCLONE_CONFIG_{RCLONE_REMOTE}_{name}");
                for (name, value) in [
                    ("TYPE", "s3"),
                    ("PROVIDER", rclone_provider(keys.is_some())),
                    ("ENDPOINT", url),
                    ("ENV_AUTH", "false"),
                    ("LIST_VERSION", "1"),
                    ("NO_CHECK_BUCKET", "true"),
                    ("FORCE_PATH_STYLE", "true"),
                ] {
                    cmd.env(var(name), value);
                }
                if let Some(k) = keys {
                    cmd.env(var("ACCESS_KEY_ID"), k.id);
                    cmd.env(var("SECRET_ACCESS_KEY"), k.secret);
                }
                cmd.arg("mount")
                    .arg(format!("{RCLONE_REMOTE}:{bucket}"))
                    .arg(mnt)
                    .arg("--cache-dir")
                    .arg(scratch)
                    .args(&opts);
            }
        }
        // This machine's AWS_CA_BUNDLE (and any keys) must not reach the
        // peers: the server is on plain HTTP, and its keys are the only ones.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(name);
            }
        }
        if let (Kind::Cosmount, Some(k)) = (self, keys) {
            cmd.env("AWS_ACCESS_KEY_ID", k.id)
                .env("AWS_SECRET_ACCESS_KEY", k.secret);
        }
        Ok(cmd)
    }
}

/// rclone's `provider`: SeaweedFS's own when signed against it, `Other`
/// for `cosmount serve` (anonymous).
fn rclone_provider(signed: bool) -> &'static str {
    if signed { "SeaweedFS" } else { "Other" }
}

/// Writes s3fs's `passwd_file` (`KEY:SECRET`), mode 600 as s3fs demands.
fn s3fs_passwd(file: &Path, keys: Keys) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?
        .write_all(format!("{}:{}\n", keys.id, keys.secret).as_bytes())
}

/// The largest peak RSS seen per peer, over every mount of the run, and the
/// workload it was seen in.
#[derive(Debug, Default)]
pub struct PeakRss {
    current: RefCell<String>,
    peaks: RefCell<HashMap<Kind, (f64, String)>>,
    /// cosmount's peak per workload, in the order the workloads ran.
    cosmount_by_workload: RefCell<Vec<(String, f64)>>,
    /// cosmount's `COS client:` counters summed over its mounts.
    client: RefCell<HashMap<String, u64>>,
}

impl PeakRss {
    /// Names the workload the next mounts belong to.
    pub fn set_workload(&self, name: &str) {
        *self.current.borrow_mut() = name.to_string();
    }

    fn record(&self, kind: Kind, mib: f64) {
        if kind == Kind::Cosmount {
            let current = self.current.borrow();
            let mut by = self.cosmount_by_workload.borrow_mut();
            match by.iter_mut().find(|(w, _)| *w == *current) {
                Some((_, peak)) => *peak = peak.max(mib),
                None => by.push((current.clone(), mib)),
            }
        }
        let mut peaks = self.peaks.borrow_mut();
        let peak = peaks.entry(kind).or_insert((0.0, String::new()));
        if mib > peak.0 {
            *peak = (mib, self.current.borrow().clone());
        }
    }

    /// Adds the counters of a `COS client: name=N ...` log line.
    fn record_client(&self, log: &str) {
        let Some(line) = log.lines().rev().find_map(|l| l.split_once("COS client: ")) else {
            return;
        };
        let mut client = self.client.borrow_mut();
        for (name, value) in line.1.split(' ').filter_map(|kv| kv.split_once('=')) {
            *client.entry(name.to_string()).or_default() += value.parse().unwrap_or(0);
        }
    }

    /// A `COS client:` counter (`hedges`, `stalls`...) summed over the
    /// cosmount mounts that logged one.
    pub fn client_counter(&self, name: &str) -> Option<u64> {
        self.client.borrow().get(name).copied()
    }

    /// cosmount's peak RSS in MiB per workload, in the order they ran.
    pub fn cosmount_by_workload(&self) -> Vec<(String, f64)> {
        self.cosmount_by_workload.borrow().clone()
    }

    /// The peak for `kind` and its workload, if any mount of it was measured.
    pub fn get(&self, kind: Kind) -> Option<(f64, String)> {
        self.peaks.borrow().get(&kind).cloned()
    }
}

/// What every mount needs to know.
pub struct MountEnv<'a> {
    /// The cosmount binary.
    pub cosmount: &'a Path,
    /// The server's URL.
    pub url: &'a str,
    /// The served bucket.
    pub bucket: &'a str,
    /// The keys every peer signs with, `None` when anonymous.
    pub keys: Option<Keys>,
    /// cosmount's `--cache-size`, when not its default.
    pub cache_size: Option<cosmount::units::Size>,
    /// Where mount points and scratch folders go.
    pub work: &'a Path,
    /// Peak RSS per peer.
    pub peaks: &'a PeakRss,
}

/// A live mount; unmounted on drop.
pub struct Mount<'a> {
    kind: Kind,
    child: Child,
    dir: tempfile::TempDir,
    peaks: &'a PeakRss,
}

impl<'a> Mount<'a> {
    /// Lines in the audit log of an [`Variant::Observed`] mount so far.
    pub fn audit_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("scratch").join("audit.log"))
            .map_or(0, |text| text.lines().count())
    }

    /// Mounts `kind` and waits until the kernel lists the mount.
    pub fn start(env: &MountEnv<'a>, kind: Kind, variant: Variant) -> Measured<Mount<'a>> {
        let dir = tempfile::Builder::new()
            .prefix(kind.name())
            .tempdir_in(env.work)
            .map_err(|e| Skip::Failed(format!("temp dir: {e}")))?;
        let (mnt, scratch) = (dir.path().join("mnt"), dir.path().join("scratch"));
        for d in [&mnt, &scratch] {
            std::fs::create_dir(d).map_err(|e| Skip::Failed(format!("mkdir: {e}")))?;
        }
        let mut cmd = kind.command(env, &mnt, &scratch, variant)?;
        let log = std::fs::File::create(dir.path().join("log"))
            .map_err(|e| Skip::Failed(format!("log: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Skip::Failed(format!("log: {e}")))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| Skip::Failed(format!("start {}: {e}", kind.name())))?;
        let mut mount = Mount {
            kind,
            child,
            dir,
            peaks: env.peaks,
        };
        let mut exited = None;
        let up = sys::wait_for(
            "mount",
            Duration::from_secs(30),
            Duration::from_millis(20),
            || {
                if let Ok(Some(status)) = mount.child.try_wait() {
                    exited = Some(status);
                    return true;
                }
                sys::is_mounted(&mnt)
            },
        );
        if let Some(status) = exited {
            return failed(format!(
                "{} exited with {status} before mounting: {}",
                kind.name(),
                mount.log_tail()
            ));
        }
        up.map_err(|_| {
            Skip::Failed(format!(
                "{} did not mount: {}",
                kind.name(),
                mount.log_tail()
            ))
        })?;
        mount.check_dialect(env)?;
        Ok(mount)
    }

    /// On a signed (S3) server, fails a cosmount mount whose log says it
    /// took the server for COS's dialect: mounting HEADs the bucket, so
    /// the verdict is in the log by now.
    fn check_dialect(&self, env: &MountEnv) -> Measured<()> {
        if self.kind != Kind::Cosmount || env.keys.is_none() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        match log.lines().find(|l| l.contains(NOT_COS)) {
            Some(line) => failed(format!("cosmount spoke COS to an S3 server: {line}")),
            None => Ok(()),
        }
    }

    /// The mount point.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// CPU time and peak RSS of the daemon so far.
    pub fn stats(&self) -> Measured<ProcStats> {
        sys::proc_stats(self.child.id())
            .ok_or_else(|| Skip::Failed(format!("{} daemon is gone", self.kind.name())))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        if let Some(stats) = sys::proc_stats(self.child.id()) {
            self.peaks.record(self.kind, stats.peak_rss_mib);
        }
        // SAFETY: kill(2) on our own child's pid; every peer unmounts on SIGTERM.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let mut gone = false;
        let _ = sys::wait_for(
            "unmount",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || {
                gone = matches!(self.child.try_wait(), Ok(Some(_)));
                gone
            },
        );
        if self.kind == Kind::Cosmount && gone {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            self.peaks.record_client(&log);
        }
        let mnt = self.path();
        if sys::is_mounted(&mnt) {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
        if !gone {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
