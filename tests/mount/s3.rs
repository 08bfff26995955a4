//! S3 targets: a real SeaweedFS with S3 authentication on, mounted with
//! default options and nothing said about the dialect (the endpoint's own
//! answer tells it), signed with SigV4. Ordinary tools work on it as on
//! COS, and boto3, the AWS SDK, sees what the mount wrote with s3fs's
//! metadata (`x-amz-meta-mode`, `-uid`, `-gid`, `-mtime`, `-xattr`), and the
//! other way round. (SeaweedFS keeps no user metadata on `dir/` objects:
//! directory modes and times are not compared.)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::common::mount::TestMount;
use crate::common::seaweed::{S3_KEY_ID, S3_SECRET, Seaweed};

/// An S3 bucket name: no COS appid.
const BUCKET: &str = "bench";

/// Mount arguments for `sw`: its endpoint, path-style; keys from the
/// environment ([`aws_keys`]), dialect and region left to the mount.
fn s3_args(sw: &Seaweed) -> Vec<String> {
    vec!["--endpoint".into(), sw.url(), "--path-style".into()]
}

/// The AWS variables carrying the test keys.
fn aws_keys() -> [(&'static str, &'static str); 2] {
    [
        ("AWS_ACCESS_KEY_ID", S3_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
    ]
}

fn mount(sw: &Seaweed) -> TestMount {
    TestMount::start_env(BUCKET, &s3_args(sw), "debug", &aws_keys())
}

/// A tree of `files` files (some nested) with modes, owners and old times.
fn tree(dir: &Path, files: usize) {
    for i in 0..files {
        let sub = dir.join(format!("d{}", i % 5)).join(format!("e{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        let f = sub.join(format!("f{i:04}"));
        std::fs::write(&f, format!("file {i}\n").repeat(i % 40 + 1)).unwrap();
        std::fs::set_permissions(
            &f,
            std::fs::Permissions::from_mode(0o600 + (i as u32 % 3) * 0o40),
        )
        .unwrap();
        std::os::unix::fs::chown(&f, Some(1000 + (i as u32 % 2)), Some(100)).unwrap();
    }
    let ok = Command::new("sh")
        .arg("-c")
        .arg("find . -exec touch -h -d @1500000000 {} +")
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// `(mode, uid, gid, mtime)` of every regular file under `dir`, by path.
fn file_stats(dir: &Path) -> Vec<(String, u32, u32, u32, i64)> {
    let out = Command::new("find")
        .arg(".")
        .args(["-type", "f", "-printf", "%P\n"])
        .current_dir(dir)
        .output()
        .unwrap();
    let mut paths: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(dir.join(&p)).unwrap();
            (p, m.mode(), m.uid(), m.gid(), m.mtime())
        })
        .collect()
}

#[test]
fn a_signed_s3_mount_carries_trees_tar_rsync_and_metadata() {
    let sw = Seaweed::start_signed(BUCKET);
    let mut m = mount(&sw);
    let log = m.log_text();
    assert!(!log.contains("does not speak COS"), "{log}");

    // cp -r and diff -r of a tree.
    let src = tempfile::tempdir().unwrap();
    tree(src.path(), 60);
    m.sh_ok(&format!(
        "cp -r {}/. copied && ls -la copied > /dev/null",
        src.path().display()
    ));
    let diff = Command::new("diff")
        .arg("-r")
        .arg(src.path())
        .arg(m.join("copied"))
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );

    // tar keeps modes, owners and times (as root, tar restores owners).
    let tar = tempfile::tempdir().unwrap();
    let archive = tar.path().join("t.tar");
    assert!(
        Command::new("tar")
            .arg("-cf")
            .arg(&archive)
            .arg(".")
            .current_dir(src.path())
            .status()
            .unwrap()
            .success()
    );
    m.sh_ok(&format!(
        "mkdir untarred && tar -xf {} -C untarred",
        archive.display()
    ));
    assert_eq!(file_stats(&m.join("untarred")), file_stats(src.path()));

    // rsync -a twice: the second run finds nothing to send. (SeaweedFS
    // keeps no metadata on `dir/` objects, so directory times are not
    // compared: with s3fs's layout the same holds for any mounter.)
    m.sh_ok(&format!("rsync -a {}/ synced/", src.path().display()));
    let again = m.sh_ok(&format!("rsync -aiO {}/ synced/", src.path().display()));
    assert_eq!(again.trim(), "", "the second rsync sent: {again}");
    assert_eq!(file_stats(&m.join("synced")), file_stats(src.path()));

    // chmod, chown, touch and xattrs are metadata copies on S3 too.
    m.sh_ok("echo hello > one && chmod 640 one && chown 1234:4321 one && touch -d @1600000000 one");
    m.sh_ok("setfattr -n user.colour -v blue one && setfattr -n user.bin -v 0x00ff one");
    let one = std::fs::metadata(m.join("one")).unwrap();
    assert_eq!(
        (one.mode() & 0o7777, one.uid(), one.gid(), one.mtime()),
        (0o640, 1234, 4321, 1_600_000_000)
    );
    assert_eq!(m.sh_ok("getfattr --only-values -n user.colour one"), "blue");

    // A 500-file tree renamed (a copy and a delete per key).
    let many = tempfile::tempdir().unwrap();
    for i in 0..500 {
        std::fs::write(many.path().join(format!("n{i:03}")), format!("{i}")).unwrap();
    }
    m.sh_ok(&format!(
        "cp -r {} tree && mv tree moved",
        many.path().display()
    ));
    assert_eq!(m.sh_ok("ls moved | wc -l").trim(), "500");
    assert_eq!(
        m.sh_ok("ls tree 2>&1 | head -1 | grep -c 'No such'").trim(),
        "1"
    );
    assert_eq!(m.sh_ok("cat moved/n123 moved/n499"), "123499");

    // What boto3 sees: the object, with s3fs's metadata headers.
    m.stop();
    let head = sw.boto_head(&["one", "moved/n007", "untarred/d0/e0/f0000"]);
    let meta = &head["one"]["metadata"];
    assert_eq!(head["one"]["size"], 6);
    assert_eq!(meta["mode"], "33184", "{head}");
    assert_eq!(
        (&meta["uid"], &meta["gid"]),
        (&"1234".into(), &"4321".into())
    );
    assert_eq!(meta["mtime"], "1600000000");
    assert_eq!(
        meta["xattr"],
        "%7B%22user.bin%22%3A%22AP8%3D%22%2C%22user.colour%22%3A%22Ymx1ZQ%3D%3D%22%7D",
        "{head}"
    );
    assert_eq!(head["moved/n007"]["size"], 1);
    assert_eq!(head["untarred/d0/e0/f0000"]["metadata"]["uid"], "1000");
}

#[test]
fn objects_boto3_writes_with_s3fs_metadata_show_their_attributes() {
    let sw = Seaweed::start_signed(BUCKET);
    sw.boto_put(
        "from-s3fs.txt",
        b"written by another tool\n",
        &serde_json::json!({"mode": "33261", "uid": "1001", "gid": "1002", "mtime": "1700000000"}),
    );
    // s3fs 1.9x writes fractional mtimes: the seconds are kept.
    sw.boto_put(
        "fraction.txt",
        b"x",
        &serde_json::json!({"mtime": "1700000001.250000000"}),
    );
    sw.boto_put(
        "with-xattr.txt",
        b"y",
        &serde_json::json!({"xattr": "%7B%22user.k%22%3A%22djE%3D%22%7D"}),
    );
    let m = mount(&sw);
    let f = std::fs::metadata(m.join("from-s3fs.txt")).unwrap();
    assert_eq!(
        (f.mode(), f.uid(), f.gid(), f.mtime(), f.len()),
        (0o100755, 1001, 1002, 1_700_000_000, 24)
    );
    assert_eq!(
        std::fs::metadata(m.join("fraction.txt")).unwrap().mtime(),
        1_700_000_001
    );
    assert_eq!(
        m.sh_ok("getfattr --only-values -n user.k with-xattr.txt"),
        "v1"
    );
    assert_eq!(
        std::fs::read_to_string(m.join("from-s3fs.txt")).unwrap(),
        "written by another tool\n"
    );

    // New files are typed by their name, a draft moved into place by its
    // final one (named, else SeaweedFS guesses text/plain from the bytes).
    m.sh_ok("printf 'p{}' > draft && mv draft site.css && echo 1 > Makefile");
    let head = sw.boto_head(&["site.css", "Makefile"]);
    assert_eq!(head["site.css"]["content_type"], "text/css", "{head}");
    let untyped = &head["Makefile"]["content_type"];
    assert_eq!(untyped, "application/octet-stream", "{head}");

    // SeaweedFS drops the metadata of `dir/` objects: the mount says so,
    // once, when a folder marker it wrote comes back without it. (The
    // sleep lets the default 1 s attribute TTL run out: nothing else
    // makes the mount read the marker back.)
    m.sh_ok("mkdir private && chmod 700 private && mkdir private/inner");
    let mode = |path: &str| std::fs::metadata(m.join(path)).unwrap().mode() & 0o7777;
    assert_eq!(mode("private"), 0o700);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!((mode("private"), mode("private/inner")), (0o755, 0o755));
    let log = m.log_text();
    assert_eq!(
        log.matches("came back without the mode, owner and times")
            .count(),
        1,
        "{log}"
    );

    // `cosmount check` says which dialect and signature it used.
    let check = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .arg("check")
        .arg(BUCKET)
        .args(s3_args(&sw))
        .envs(aws_keys())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("s3 (SigV4 signatures"), "{report}");
    assert!(report.contains("AWS_ACCESS_KEY_ID"), "{report}");
}

#[test]
fn a_wrong_secret_fails_the_mount_with_one_clear_line() {
    let sw = Seaweed::start_signed(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(s3_args(&sw))
        .args([BUCKET, &dir.path().display().to_string()])
        .env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("does not match") && lines[0].contains("AWS_SECRET_ACCESS_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}
