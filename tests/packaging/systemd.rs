//! The systemd units as installed by the package: `systemd-analyze verify`
//! accepts them, and the service template's command line, run the way
//! systemd runs a `Type=notify` service, mounts in the foreground, reports
//! `READY=1` once the mount is live and unmounts on SIGTERM (`systemctl
//! stop`).

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::{installed, quote};
use crate::common::{BUCKET, REGION, SECRET_ID, SECRET_KEY, TestServer};

const TEMPLATE: &str = include_str!("../../packaging/systemd/cosmount@.service");
const MOUNT_UNIT: &str = include_str!("../../packaging/systemd/mnt-cos.mount");

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    let pkg = installed();
    let dir = tempfile::tempdir().unwrap();
    let d = quote(dir.path().display().to_string());
    // The installed files are the repository's; the mount unit keeps its
    // name, which systemd checks against Where=.
    let shipped = pkg.sh_ok(&format!(
        "cat /lib/systemd/system/cosmount@.service\n\
         cp /usr/share/doc/cosmount/examples/mnt-cos.mount {d}/\n"
    ));
    assert_eq!(shipped, TEMPLATE);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mnt-cos.mount")).unwrap(),
        MOUNT_UNIT
    );
    for needed in [
        "After=network-online.target",
        "Wants=network-online.target",
        "_netdev",
    ] {
        assert!(MOUNT_UNIT.contains(needed), "mnt-cos.mount lacks {needed}");
    }
    let out = pkg.sh(&format!(
        "systemd-analyze verify cosmount@.service cosmount@mnt-cos.service {d}/mnt-cos.mount"
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cosmount") || l.contains("mnt-cos"))
        .collect();
    assert!(ours.is_empty(), "verify warns about our units:\n{stderr}");

    // The same checks catch broken units, so the pass above means something:
    // a missing binary fails verify, a bad value is a warning about our unit.
    let broken = dir.path().join("cosmount@.service");
    let verify_broken = |text: String| {
        std::fs::write(&broken, text).unwrap();
        let out = pkg.sh(&format!(
            "systemd-analyze verify {}",
            quote(broken.display().to_string())
        ));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = verify_broken(TEMPLATE.replace("/usr/bin/cosmount", "/usr/bin/nope"));
    assert!(!ok && stderr.contains("/usr/bin/nope"), "{stderr}");
    let (_, stderr) = verify_broken(TEMPLATE.replace("Type=notify", "Type=notfy"));
    assert!(stderr.contains("cosmount@"), "{stderr}");
}

/// The ExecStart= of the template with the specifiers and variables
/// systemd would substitute, split into words as systemd does.
fn exec_start(mountpoint: &Path, conf: &[(&str, String)]) -> Vec<String> {
    let line = TEMPLATE
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    line.split_whitespace()
        .map(|word| {
            let mut word = word.replace("%f", &mountpoint.display().to_string());
            for (name, value) in conf {
                word = word.replace(&format!("${{{name}}}"), value);
            }
            word
        })
        .collect()
}

/// Waits for one datagram on `socket`.
fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            panic!("no notification within the timeout")
        }
        Err(e) => panic!("recv: {e}"),
    }
}

#[test]
fn service_template_mounts_in_the_foreground_and_notifies_ready() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, format!("{BUCKET}:{SECRET_ID}:{SECRET_KEY}\n")).unwrap();
    std::fs::set_permissions(&passwd, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let options = format!(
        "url={},region={REGION},passwd_file={}",
        server.url(),
        passwd.display()
    );
    let argv = exec_start(&mnt, &[("BUCKET", BUCKET.into()), ("OPTIONS", options)]);
    assert_eq!(argv[..2], ["/usr/bin/cosmount", "-f"]);

    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let exec: Vec<String> = argv.iter().map(quote).collect();
    let mut child = installed()
        .command(&format!("exec {}", exec.join(" ")))
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert_eq!(receive(&notify), "READY=1");
    // Mounted (in the child's namespace) when READY=1 arrives, and still
    // running: a Type=notify service must not fork away.
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let mounted = mountinfo.lines().any(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        fields.get(4) == Some(&mnt.to_str().unwrap()) && l.contains(" - fuse.cosmount ")
    });
    assert!(mounted, "not mounted at READY=1:\n{mountinfo}");
    assert!(child.try_wait().unwrap().is_none(), "cosmount -f exited");

    // `systemctl stop`: SIGTERM, then STOPPING=1 and a clean exit.
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(receive(&notify), "STOPPING=1");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}: {stderr}", out.status);
    assert!(
        stderr.contains(&format!("mounted {BUCKET} on {}", mnt.display())),
        "the foreground log goes to stderr: {stderr}"
    );
}
