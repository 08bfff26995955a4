//! Mount lifecycle: the parent exits 0 only once the mount works, and
//! non-zero with a one-line reason otherwise; SIGTERM and umount leave
//! neither a mount nor a daemon behind; `-o` options as mount(8) passes them.

use std::path::Path;
use std::process::Command;

use crate::common::mount::{TestMount, daemons_for, is_mounted, server_args, wait_for};
use crate::common::{BUCKET, REGION, SECRET_ID, TestServer};

/// Runs `cosmount ARGS` in the default (daemon) mode; returns (exit code, stderr).
fn run(args: &[String]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mount_args(server: &TestServer, bucket: &str, mountpoint: &Path) -> Vec<String> {
    let mut args = server_args(server);
    args.push(bucket.into());
    args.push(mountpoint.display().to_string());
    args
}

#[test]
fn daemon_reports_success_and_umount_ends_it() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let (code, stderr) = run(&mount_args(&server, BUCKET, &mnt));
    assert_eq!(code, 0, "{stderr}");
    assert!(is_mounted(&mnt), "mounted when the parent exits 0");
    assert!(std::fs::read_dir(&mnt).unwrap().next().is_none());
    let needle = mnt.display().to_string();
    assert_eq!(daemons_for(&needle).len(), 1, "one daemon");
    assert!(Command::new("umount").arg(&mnt).status().unwrap().success());
    wait_for("the daemon to exit after umount", || {
        daemons_for(&needle).is_empty()
    });
    assert!(!is_mounted(&mnt));
}

#[test]
fn mount_failures_give_one_line_reasons() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let expect = |args: Vec<String>, phrase: &str| {
        let (code, stderr) = run(&args);
        if code == 0 {
            let _ = Command::new("umount").arg(&mnt).status();
        }
        assert_ne!(code, 0, "expected failure for {args:?}");
        assert!(stderr.contains(phrase), "wanted {phrase:?} in {stderr:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
        assert!(!is_mounted(&mnt));
    };
    let mut missing = mount_args(&server, "missing-1250000000", &mnt);
    missing.push("--path-style".into());
    expect(missing, "does not exist");
    let mut wrong_key = mount_args(&server, BUCKET, &mnt);
    let at = wrong_key.iter().position(|a| a == "--secret-key").unwrap();
    wrong_key[at + 1] = "not-the-key".into();
    expect(wrong_key, "does not match the SecretId");
    let mut wrong_id = mount_args(&server, BUCKET, &mnt);
    let at = wrong_id.iter().position(|a| a == SECRET_ID).unwrap();
    wrong_id[at] = "AKIDunknown".into();
    expect(wrong_id, "not known to COS");
    expect(
        mount_args(&server, BUCKET, &dir.path().join("nope")),
        "does not exist; create it",
    );
    expect(mount_args(&server, "Bad_Bucket", &mnt), "<name>-<appid>");
    let dead = vec![
        "--endpoint".into(),
        "http://127.0.0.1:9".into(),
        "--region".into(),
        REGION.into(),
        "--anonymous".into(),
        "--retries".into(),
        "1".into(),
        BUCKET.into(),
        mnt.display().to_string(),
    ];
    expect(dead, "cannot reach");
    let busy = TestMount::start(&server, &[]);
    expect(mount_args(&server, BUCKET, &busy.path()), "already mounted");
}

#[test]
fn sigterm_unmounts_cleanly() {
    let server = TestServer::start();
    let mut m = TestMount::start(&server, &[]);
    let path = m.path();
    assert!(m.stop().success());
    assert!(!is_mounted(&path), "no mount left after SIGTERM");
}

/// SIGTERM while a process works in the mount (its current directory is
/// there, so `umount` answers EBUSY, as systemd's stop of a busy mount
/// meets): the mount is detached at once and the daemon exits once the
/// process leaves, instead of staying mounted until it is killed, which
/// left a dead mount behind.
#[test]
fn sigterm_of_a_busy_mount_detaches_it_and_exits_when_it_is_free() {
    let server = TestServer::start();
    let mut m = TestMount::start(&server, &[]);
    let path = m.path();
    let mut holder = Command::new("sh")
        .args(["-c", "read line"])
        .current_dir(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // SAFETY: kill(2) on the pid of the daemon the mount runs.
    unsafe { libc::kill(m.pid() as libc::pid_t, libc::SIGTERM) };
    wait_for("the busy mount to be detached", || !is_mounted(&path));
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert!(m.stop().success(), "{}", m.log_text());
}

#[test]
fn options_inside_dash_o_work_like_mount_passes_them() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let opts = format!(
        "rw,nosuid,nodev,_netdev,noauto,x-systemd.automount,url={},region={REGION},secret_id={SECRET_ID},secret_key={},ro,uid=4242,fast_list,metadata_ttl=5s",
        server.url(),
        crate::common::SECRET_KEY
    );
    let (code, stderr) = run(&[BUCKET.into(), mnt.display().to_string(), "-o".into(), opts]);
    assert_eq!(code, 0, "{stderr}");
    let meta = std::fs::metadata(&mnt).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), 4242);
    assert!(
        std::fs::write(mnt.join("x"), b"y").is_err(),
        "ro mount refuses writes"
    );
    assert!(Command::new("umount").arg(&mnt).status().unwrap().success());
    let (code, stderr) = run(&[
        BUCKET.into(),
        mnt.display().to_string(),
        "-o".into(),
        "frobnicate=1".into(),
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown mount option `frobnicate`"),
        "{stderr}"
    );
}
