//! Running as a system service: the Debian package, mount(8) and fstab
//! through mount.fuse3, the systemd units, the man page, and logging fit
//! for a service.
//!
//! The package is built from the test binary by `packaging/build-deb.sh`
//! and installed with a real `dpkg -i`, but into a scratch root: a private
//! mount namespace whose `/usr`, `/etc` and `/var` are overlays with their
//! writes kept in a temporary folder. Later steps run in fresh namespaces
//! that see the installed files at their real paths (`/usr/bin/cosmount`,
//! where mount(8) looks for helpers, the man page, the systemd units), so
//! the host's package database and `/usr` are never touched and parallel
//! tests do not interfere. FUSE mounts made inside such a namespace are
//! visible only there, so scripts check them with `findmnt` themselves.

mod deb;
mod man;
mod service;
mod systemd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The package, built and installed once per test run.
pub struct Installed {
    /// The .deb file.
    pub deb: PathBuf,
    /// What `dpkg -i` and `dpkg -s` printed.
    pub install_log: String,
    layers: PathBuf,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// The overlaid trees of the scratch root.
const TREES: [&str; 3] = ["usr", "etc", "var"];

/// Builds the .deb and installs it into the scratch root (once).
pub fn installed() -> &'static Installed {
    INSTALLED.get_or_init(Installed::build_and_install)
}

impl Installed {
    /// Statics are never dropped, so the scratch root lives in cargo's
    /// test scratch folder and the next run replaces it.
    fn build_and_install() -> Installed {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packaging");
        let _ = std::fs::remove_dir_all(&dir);
        let deb = build_deb(&dir.join("out"));
        let layers = dir.join("layers");
        let mut setup = String::from("set -e\n");
        for tree in TREES {
            let (upper, work) = (layers.join(tree), layers.join(format!("{tree}.work")));
            std::fs::create_dir_all(&upper).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            setup.push_str(&format!(
                "mount -t overlay overlay -o lowerdir=/{tree},upperdir={},workdir={} /{tree}\n",
                upper.display(),
                work.display()
            ));
        }
        let script = format!(
            "{setup}dpkg -i {}\ndpkg -s cosmount\ndpkg -L cosmount\n",
            deb.display()
        );
        let out = unshared(&script)
            .output()
            .expect("run unshare (util-linux)");
        let install_log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "dpkg -i failed:\n{install_log}");
        Installed {
            deb,
            install_log,
            layers,
        }
    }

    /// Runs `script` with `sh -e` in a fresh mount namespace where the
    /// package's files are in `/usr` (read-only) and `/run/mount` (mount's
    /// utab) is private.
    pub fn sh(&self, script: &str) -> Output {
        self.command(script)
            .output()
            .expect("run unshare (util-linux)")
    }

    /// The command [`sh`](Self::sh) runs, to spawn it instead.
    pub fn command(&self, script: &str) -> Command {
        let setup = format!(
            "set -e\nmount -t overlay overlay -o lowerdir={}:/usr /usr\n\
             mkdir -p /run/mount\nmount -t tmpfs tmpfs /run/mount\n",
            self.layers.join("usr").display()
        );
        unshared(&format!("{setup}{script}"))
    }

    /// Like [`sh`](Self::sh), failing the test unless the script succeeds;
    /// returns its stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "script failed with {}:\n{script}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `sh -c script` in a new private mount namespace; unshare and sh exec,
/// so the last command of the script can `exec` into the child's pid.
fn unshared(script: &str) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(script);
    command
}

/// Runs `packaging/build-deb.sh` on the test binary; returns the .deb.
fn build_deb(out: &Path) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb.sh");
    let built = Command::new(script)
        .args(["--binary", env!("CARGO_BIN_EXE_cosmount"), "--out"])
        .arg(out)
        // gzip: xz would spend half a minute on the debug binary.
        .args(["--compression", "gzip"])
        .output()
        .expect("run packaging/build-deb.sh");
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(
        built.status.success(),
        "build-deb.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    PathBuf::from(stdout.trim().lines().last().expect("the .deb path"))
}

/// Single-quotes `s` for a shell script.
pub fn quote(s: impl AsRef<str>) -> String {
    format!("'{}'", s.as_ref().replace('\'', "'\\''"))
}
