//! `cosmount status MOUNTPOINT`: a live mount without `--metrics-listen`
//! answers on its control socket, in plain words and as JSON; the socket
//! goes away with the mount.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::mount::TestMount;
use crate::common::{BUCKET, SECRET_KEY, TestServer};

fn status(mountpoint: &Path, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosmount"));
    cmd.arg("status").arg(mountpoint);
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn status_of_a_live_mount_through_its_control_socket() {
    let server = TestServer::start();
    let mut mount = TestMount::start(&server, &[]);
    std::fs::write(mount.join("kept.bin"), vec![7u8; 300_000]).unwrap();
    let held = std::fs::File::open(mount.join("kept.bin")).unwrap();

    let plain = status(&mount.path(), false);
    let words = text(&plain);
    assert!(plain.status.success(), "cosmount status failed: {words}");
    assert!(
        words.contains(&format!("bucket:       {BUCKET}")),
        "{words}"
    );
    assert!(
        words.contains("credentials:  permanent (SecretId"),
        "{words}"
    );
    assert!(words.contains("files:        1 open"), "{words}");
    assert!(words.contains("in flight:    0 uploads"), "{words}");
    assert!(words.contains("recent errors: none"), "{words}");
    assert!(
        !words.contains(SECRET_KEY),
        "the secret key in status: {words}"
    );

    // A relative path names the same mount.
    let parent = mount.path().parent().unwrap().to_path_buf();
    let name = mount.path().file_name().unwrap().to_owned();
    let json = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .current_dir(&parent)
        .args(["status", "--json"])
        .arg(&name)
        .output()
        .unwrap();
    assert!(json.status.success(), "status --json: {}", text(&json));
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["bucket"], BUCKET);
    assert_eq!(doc["endpoint"], server.addr().to_string(), "{doc:#}");
    assert_eq!(doc["files"]["open_files"], 1, "{doc:#}");
    assert!(doc["cos"]["requests"].as_u64().unwrap() >= 1, "{doc:#}");
    drop(held);

    // Root's sockets live under /run/cosmount, readable by root only.
    let dir = Path::new("/run/cosmount");
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
    let mountpoint = mount.path();
    let escaped = mountpoint
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "-");
    let sockets = |dir: &Path| -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(&escaped)
            })
            .count()
    };
    assert_eq!(sockets(dir), 1);

    assert!(mount.stop().success());
    assert_eq!(sockets(dir), 0, "the socket outlived its mount");
    let gone = status(&mountpoint, false);
    assert!(!gone.status.success());
    let message = text(&gone);
    assert!(
        message.contains(&mountpoint.display().to_string()) && message.contains("is it mounted"),
        "{message}"
    );
}
