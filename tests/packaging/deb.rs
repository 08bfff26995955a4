//! The Debian package, installed with dpkg, used the way an administrator
//! would: `mount -t fuse.cosmount` through mount.fuse3, an fstab line, a
//! wrong key, and `umount` ending the daemon.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};

use super::{installed, quote};
use crate::common::mount::{daemons_for, wait_for};
use crate::common::{BUCKET, REGION, SECRET_ID, SECRET_KEY, TestServer};

/// A server with a small tree, a cosfs passwd file and a mountpoint.
struct Setup {
    server: TestServer,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let server = TestServer::start();
        let client = server.client();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            for (key, body) in [
                ("hello.txt", &b"hello from cos\n"[..]),
                ("docs/guide.md", b"# Guide\n"),
            ] {
                client
                    .put(key, Bytes::from_static(body), &ObjectAttrs::default())
                    .await
                    .unwrap();
            }
        });
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        let setup = Setup { server, dir };
        setup.passwd("passwd", SECRET_KEY);
        setup
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Writes a cosfs passwd file (mode 600) holding `key` for the bucket.
    fn passwd(&self, name: &str, key: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("# test keys\n{BUCKET}:{SECRET_ID}:{key}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// The `-o` options of a mount of the test bucket with `passwd`.
    fn options(&self, passwd: &Path) -> String {
        format!(
            "_netdev,allow_other,url={},region={REGION},passwd_file={}",
            self.server.url(),
            passwd.display()
        )
    }

    /// Fails unless no process mentions the mountpoint any more.
    fn assert_no_daemon(&self) {
        let needle = self.mnt().display().to_string();
        wait_for("the daemon to exit", || daemons_for(&needle).is_empty());
    }
}

/// Prints the executable of the daemon serving `mnt` (its argv is
/// `cosmount BUCKET MNT -o ...`, as mount.fuse3 runs it).
fn daemon_exe_script(mnt: &str) -> String {
    format!(
        "for p in /proc/[0-9]*; do\n\
         if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^cosmount {BUCKET} {mnt} '; then\n\
         echo exe=$(readlink $p/exe); fi; done\n"
    )
}

#[test]
fn package_installs_with_dpkg_and_depends_on_fuse3() {
    let pkg = installed();
    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&pkg.deb)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "cosmount");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    let depends = field("Depends");
    assert!(depends.starts_with("fuse3"), "{depends}");
    assert!(depends.contains("libc6"), "{depends}");
    let log = &pkg.install_log;
    assert!(log.contains("Status: install ok installed"), "{log}");
    for path in [
        "/usr/bin/cosmount",
        "/usr/share/man/man1/cosmount.1.gz",
        "/lib/systemd/system/cosmount@.service",
        "/usr/share/doc/cosmount/examples/mnt-cos.mount",
        "/usr/share/doc/cosmount/examples/fstab",
        "/usr/share/doc/cosmount/examples/passwd-cosfs",
        "/usr/share/doc/cosmount/examples/cosmount@.conf",
        "/usr/share/doc/cosmount/copyright",
        "/etc/logrotate.d/cosmount",
    ] {
        assert!(
            log.lines().any(|l| l == path),
            "{path} not installed:\n{log}"
        );
    }
    // The installed binary runs, and `man cosmount` finds the page.
    let out = pkg.sh_ok("cosmount --version\nman -w cosmount\n");
    assert!(
        out.contains(&format!("cosmount {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("/usr/share/man/man1/cosmount.1.gz"), "{out}");
    // The sample passwd file holds no usable keys and says where real ones go.
    let sample = pkg.sh_ok("cat /usr/share/doc/cosmount/examples/passwd-cosfs");
    assert!(sample.contains("not real keys"), "{sample}");
    assert!(sample.contains("install -m 600"), "{sample}");
    // logrotate accepts the audit-log rules the package installs (a dry run).
    let rules = Command::new("logrotate")
        .arg("-d")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/logrotate/cosmount"
        ))
        .output()
        .expect("logrotate (Debian package `logrotate`)");
    let said = String::from_utf8_lossy(&rules.stderr);
    assert!(rules.status.success(), "{said}");
    assert!(said.contains("/var/log/cosmount/*.audit.log"), "{said}");
}

#[test]
fn mount_t_fuse_cosmount_reads_and_umount_ends_the_daemon() {
    let setup = Setup::new();
    let mnt = setup.mnt().display().to_string();
    let passwd = setup.dir.path().join("passwd");
    let copy = setup.dir.path().join("copy.txt");
    let script = format!(
        "mount -t fuse.cosmount {BUCKET} {m} -o {opts}\n\
         findmnt -n -o FSTYPE,SOURCE {m}\n\
         {exe}\
         ls {m}\n\
         ls {m}/docs\n\
         cat {m}/hello.txt\n\
         cp {m}/docs/guide.md {copy}\n\
         umount {m}\n\
         findmnt {m} || echo unmounted\n",
        m = quote(&mnt),
        opts = quote(setup.options(&passwd)),
        exe = daemon_exe_script(&mnt),
        copy = quote(copy.display().to_string()),
    );
    let out = installed().sh_ok(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["fuse.cosmount", BUCKET]
    );
    assert!(out.contains("exe=/usr/bin/cosmount\n"), "{out}");
    assert!(out.contains("docs\nhello.txt\n"), "{out}");
    assert!(out.contains("guide.md\n"), "{out}");
    assert!(out.contains("hello from cos\n"), "{out}");
    assert_eq!(std::fs::read(&copy).unwrap(), b"# Guide\n");
    assert!(out.ends_with("unmounted\n"), "{out}");
    setup.assert_no_daemon();
}

#[test]
fn fstab_line_mounts_and_unmounts() {
    let setup = Setup::new();
    let mnt = setup.mnt().display().to_string();
    let fstab = setup.dir.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# a test fstab\n{BUCKET} {mnt} fuse.cosmount {} 0 0\n",
            setup.options(&setup.dir.path().join("passwd"))
        ),
    )
    .unwrap();
    // `mount MOUNTPOINT` and `mount -a`, each with the test fstab.
    let script = format!(
        "mount -T {f} {m}\n\
         findmnt -n -o FSTYPE {m}\n\
         cat {m}/hello.txt\n\
         umount {m}\n\
         mount --fstab {f} -a\n\
         findmnt -n -o FSTYPE {m}\n\
         ls {m}\n\
         umount {m}\n",
        f = quote(fstab.display().to_string()),
        m = quote(&mnt),
    );
    let out = installed().sh_ok(&script);
    assert_eq!(
        out,
        "fuse.cosmount\nhello from cos\nfuse.cosmount\ndocs\nhello.txt\n"
    );
    setup.assert_no_daemon();
}

#[test]
fn wrong_key_fails_the_mount_with_one_line() {
    let setup = Setup::new();
    let mnt = setup.mnt().display().to_string();
    let wrong = setup.passwd("wrong", "not-the-key");
    let script = format!(
        "mount -t fuse.cosmount {BUCKET} {m} -o {opts}\n",
        m = quote(&mnt),
        opts = quote(setup.options(&wrong)),
    );
    let out = installed().sh(&script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mount succeeded: {stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "cosmount: the SecretKey (from passwd file {}) does not match the SecretId: check the key pair",
            wrong.display()
        )
    );
    setup.assert_no_daemon();
}
