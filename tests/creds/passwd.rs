//! cosfs passwd files that group or others can read are refused before
//! mounting, with the file's name and the `chmod 600` that fixes it, both
//! when named with `--passwd-file` and when found at `~/.passwd-cosfs`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::mount::{TestMount, is_mounted};
use crate::common::{BUCKET, REGION, SECRET_ID, SECRET_KEY, TestServer};

fn write_passwd(path: &Path, mode: u32) {
    std::fs::write(path, format!("{SECRET_ID}:{SECRET_KEY}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Mounts in the default (daemon) mode with `HOME=home`; returns (exit code, stderr).
fn mount(args: &[String], home: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(args)
        .env("HOME", home)
        .env_remove("COS_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_readable_passwd_file_is_refused_with_chmod_advice() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let named = dir.path().join("passwd-cosfs");
    write_passwd(&named, 0o644);
    let base = [
        "--endpoint".to_string(),
        server.url(),
        "--region".into(),
        REGION.into(),
    ];
    let with_file = [
        &base[..],
        &["--passwd-file".into(), named.display().to_string()],
        &[BUCKET.into(), mnt.display().to_string()],
    ]
    .concat();
    let (code, stderr) = mount(&with_file, &home);
    assert_ne!(code, 0, "{stderr}");
    assert!(!is_mounted(&mnt));
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    let fix = format!("chmod 600 {}", named.display());
    assert!(stderr.contains(&fix), "wanted {fix:?} in {stderr:?}");
    assert!(stderr.contains("mode 644"), "{stderr}");

    let default_file = home.join(".passwd-cosfs");
    write_passwd(&default_file, 0o640);
    let without = [&base[..], &[BUCKET.into(), mnt.display().to_string()]].concat();
    let (code, stderr) = mount(&without, &home);
    assert_ne!(code, 0, "{stderr}");
    let fix = format!("chmod 600 {}", default_file.display());
    assert!(stderr.contains(&fix), "wanted {fix:?} in {stderr:?}");

    // Fixed as advised, the same file mounts.
    std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ok = [
        &base[..],
        &["--passwd-file".into(), named.display().to_string()],
    ]
    .concat();
    let m = TestMount::start_raw(BUCKET, &ok);
    assert!(std::fs::read_dir(m.path()).is_ok());
}
