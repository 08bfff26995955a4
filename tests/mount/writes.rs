//! Writing through the mount with ordinary tools: copying trees in, tar,
//! rsync, editor saves, appends, random writes and truncation, a 2 GiB file,
//! directory renames, attributes that persist, and upload failures that
//! reach the application instead of being lost.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use cosmount::cos::{ObjectClient, crc64};
use rand::{Rng, SeedableRng};

use crate::common::mount::TestMount;
use crate::common::{SECRET_ID, SECRET_KEY, TestServer};

fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cp_r_of_a_source_tree_is_identical() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    sh(&format!(
        "cp -r '{}/src' '{}/tests' '{}/'",
        src.display(),
        src.display(),
        m.path().display()
    ));
    sh(&format!(
        "diff -r '{}/src' '{}/src'",
        src.display(),
        m.path().display()
    ));
    sh(&format!(
        "diff -r '{}/tests' '{}/tests'",
        src.display(),
        m.path().display()
    ));
    drop(m);
    let fresh = TestMount::start(&server, &[]);
    sh(&format!(
        "diff -r '{}/src' '{}/src'",
        src.display(),
        fresh.path().display()
    ));
}

/// A tree of `files` files with varied modes and mtimes, symlinks and empty dirs.
fn make_tree(root: &Path, files: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for i in 0..files {
        let dir = root.join(format!("d{}/s{}", i % 20, i % 7));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("f{i}.txt"));
        let len = rng.random_range(0..3000);
        fs::write(&path, vec![b'a' + (i % 26) as u8; len]).unwrap();
        fs::set_permissions(
            &path,
            fs::Permissions::from_mode([0o644, 0o600, 0o755, 0o444][i % 4]),
        )
        .unwrap();
    }
    for i in 0..10 {
        fs::create_dir_all(root.join(format!("empty{i}"))).unwrap();
        std::os::unix::fs::symlink(format!("d{i}/s0"), root.join(format!("link{i}"))).unwrap();
    }
    sh(&format!(
        "cd '{}' && find . -exec touch -h -d '2021-03-04 05:06:07' {{}} +",
        root.display()
    ));
}

#[test]
fn tar_roundtrip_of_2000_files_keeps_modes_times_and_links() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    make_tree(&tree, 2000);
    let archive = tmp.path().join("in.tar");
    sh(&format!(
        "cd '{}' && tar cf '{}' .",
        tree.display(),
        archive.display()
    ));
    sh(&format!(
        "mkdir '{}/x' && cd '{}/x' && tar xpf '{}'",
        m.path().display(),
        m.path().display(),
        archive.display()
    ));
    let back = tmp.path().join("out.tar");
    sh(&format!(
        "cd '{}/x' && tar cf '{}' .",
        m.path().display(),
        back.display()
    ));
    let listing = |a: &Path| {
        let mut lines: Vec<String> = sh(&format!("tar tvf '{}'", a.display()))
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let (want, got) = (listing(&archive), listing(&back));
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g);
    }
}

#[test]
fn rsync_twice_transfers_nothing_the_second_time() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let tmp = tempfile::tempdir().unwrap();
    make_tree(tmp.path(), 200);
    let rsync = |what: &str| {
        sh(&format!(
            "rsync -a --stats '{}/' '{}/dst/' | grep 'regular files transferred'",
            tmp.path().display(),
            m.path().display()
        ))
        .contains(what)
    };
    assert!(rsync(": 200"), "first run copies everything");
    assert!(
        rsync(": 0"),
        "second run copies nothing: mtimes and modes persisted"
    );
    drop(m);
    let fresh = TestMount::start(&server, &[]);
    let out = sh(&format!(
        "rsync -a --stats '{}/' '{}/dst/' | grep 'regular files transferred'",
        tmp.path().display(),
        fresh.path().display()
    ));
    assert!(out.contains(": 0"), "and through a fresh mount: {out}");
}

/// A file renamed while it is open (a writer that has not closed, a
/// reader, a writer in a renamed folder) is read and written at its new
/// name: reads used to go to the old key, deleted by the rename (ENOENT).
#[test]
fn files_renamed_while_open_are_read_and_written_at_their_new_names() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let mut writer = File::create(m.join("draft")).unwrap();
    writer.write_all(b"hello").unwrap();
    writer.sync_all().unwrap();
    fs::rename(m.join("draft"), m.join("final")).unwrap();
    assert_eq!(fs::read(m.join("final")).unwrap(), b"hello");
    writer.write_all(b" world").unwrap();
    drop(writer);
    assert_eq!(fs::read(m.join("final")).unwrap(), b"hello world");

    let reader = File::open(m.join("final")).unwrap();
    fs::rename(m.join("final"), m.join("moved")).unwrap();
    let mut buf = [0u8; 11];
    reader.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"hello world");
    drop(reader);

    fs::create_dir(m.join("dir")).unwrap();
    let mut inside = File::create(m.join("dir/log")).unwrap();
    inside.write_all(b"one").unwrap();
    inside.sync_all().unwrap();
    fs::rename(m.join("dir"), m.join("dir2")).unwrap();
    assert_eq!(fs::read(m.join("dir2/log")).unwrap(), b"one");
    inside.write_all(b",two").unwrap();
    drop(inside);
    assert_eq!(fs::read(m.join("dir2/log")).unwrap(), b"one,two");
    drop(m);
    let other = TestMount::start(&server, &[]);
    assert_eq!(other.sh_ok("cat moved dir2/log"), "hello worldone,two");
    assert_eq!(other.sh_ok("ls"), "dir2\nmoved\n");
}

#[test]
fn editor_saves_and_appends_are_exact() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let doc = m.join("doc.txt");
    fs::write(&doc, "version 1\n").unwrap();
    for version in 2..=5 {
        let tmp = m.join(".doc.txt.swp");
        let mut f = File::create(&tmp).unwrap();
        writeln!(f, "version {version}").unwrap();
        f.sync_all().unwrap();
        drop(f);
        fs::rename(&tmp, &doc).unwrap();
    }
    assert_eq!(fs::read_to_string(&doc).unwrap(), "version 5\n");
    assert!(!m.join(".doc.txt.swp").exists());
    m.sh_ok("for i in $(seq 1 100); do echo \"line $i\" >> log; done");
    let expected: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(fs::read_to_string(m.join("log")).unwrap(), expected);
    drop(m);
    let fresh = TestMount::start(&server, &[]);
    assert_eq!(fs::read_to_string(fresh.join("log")).unwrap(), expected);
    assert_eq!(
        fs::read_to_string(fresh.join("doc.txt")).unwrap(),
        "version 5\n"
    );
}

#[test]
fn random_writes_and_truncation_match_a_local_file() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("f");
    let remote = m.join("f");
    for path in [&local, &remote] {
        sh(&format!(
            "head -c 67108864 /dev/zero | tr '\\0' 'z' > '{}'",
            path.display()
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for step in 0..40 {
        let script = match step % 10 {
            7 => format!("truncate -s {} F", rng.random_range(1..80u64 << 20)),
            9 => format!("truncate -s {} F", rng.random_range(1..70u64 << 20)),
            _ => {
                let (seek, count) = (rng.random_range(0..70_000u64), rng.random_range(1..200u64));
                format!("dd if=/dev/urandom of=F.src bs=1024 count={count} 2>/dev/null; true")
                    + &format!("; dd if=F.src of=F bs=1024 seek={seek} conv=notrunc 2>/dev/null")
            }
        };
        // Same bytes on both sides: generate once locally, apply to both.
        let script = script.replace("F.src", &format!("{}/chunk", tmp.path().display()));
        let local_script = script
            .replace(" F", &format!(" '{}'", local.display()))
            .replace("of=F ", &format!("of='{}' ", local.display()));
        let remote_script = script
            .replace("dd if=/dev/urandom", "true ||")
            .replace(" F", &format!(" '{}'", remote.display()))
            .replace("of=F ", &format!("of='{}' ", remote.display()));
        sh(&local_script);
        sh(&remote_script);
    }
    let (a, b) = (fs::read(&local).unwrap(), fs::read(&remote).unwrap());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "contents differ");
    drop(m);
    let fresh = TestMount::start(&server, &[]);
    assert!(
        fs::read(fresh.join("f")).unwrap() == a,
        "the bucket holds the same bytes"
    );
}

#[test]
fn a_2_gib_file_written_with_dd_is_one_verified_object() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    sh(&format!(
        "dd if=/dev/zero bs=1M count=2048 2>/dev/null | tr '\\0' 'q' | dd of='{}' bs=1M iflag=fullblock 2>/dev/null",
        m.join("two-gib").display()
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let info = rt.block_on(server.client().head("two-gib")).unwrap();
    assert_eq!(info.size, 2 << 30);
    let mut crc = crc64::Crc64::default();
    let chunk = vec![b'q'; 1 << 20];
    for _ in 0..2048 {
        crc.update(&chunk);
    }
    assert_eq!(info.crc64, Some(crc.finish()), "CRC64 of the whole object");
    // 100 parts of 8 MiB, then 16 MiB parts: 178 parts in all.
    let parts = (1..).scan(0u64, |done, n| {
        (*done < 2 << 30).then(|| *done += cosmount::upload::stream_part_size(8 << 20, n))
    });
    assert!(
        info.etag.ends_with(&format!("-{}", parts.count())),
        "one multipart object: {}",
        info.etag
    );
}

#[test]
fn directories_links_and_attributes() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    m.sh_ok("mkdir -p tree/a/b/c && for i in $(seq 1 500); do echo $i > tree/a/f$i; done && echo deep > tree/a/b/c/g");
    m.sh_ok("mv tree moved");
    assert!(!m.join("tree").exists());
    assert_eq!(fs::read_dir(m.join("moved/a")).unwrap().count(), 501);
    assert_eq!(fs::read_to_string(m.join("moved/a/f250")).unwrap(), "250\n");
    assert_eq!(
        fs::read_to_string(m.join("moved/a/b/c/g")).unwrap(),
        "deep\n"
    );
    m.sh_ok("mkdir -p x/y/z && rmdir x/y/z x/y x");
    assert!(!m.join("x").exists());
    let nonempty = m.sh("rmdir moved/a");
    assert!(
        !nonempty.status.success()
            && String::from_utf8_lossy(&nonempty.stderr).contains("not empty")
    );
    m.sh_ok("rm -r moved && ln -s target-name link");
    assert_eq!(
        fs::read_link(m.join("link")).unwrap().to_str(),
        Some("target-name")
    );
    let hard = m.sh("echo x > h && ln h h2");
    assert!(!hard.status.success(), "hard links are refused");
    m.sh_ok("chmod 640 h && chown 1234:5678 h && touch -d '2020-01-02 03:04:05 UTC' h");

    drop(m);
    let fresh = TestMount::start(&server, &[]);
    let meta = fs::metadata(fresh.join("h")).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid(), meta.mtime()),
        (0o640, 1234, 5678, 1_577_934_245)
    );
    assert_eq!(
        fs::read_link(fresh.join("link")).unwrap().to_str(),
        Some("target-name")
    );
    assert!(!fresh.join("moved").exists());

    // The official SDK sees the same metadata under cosfs's names.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let script = format!(
        "from qcloud_cos import CosConfig, CosS3Client\n\
         c = CosS3Client(CosConfig(Region='ap-guangzhou', SecretId='{SECRET_ID}', SecretKey='{SECRET_KEY}', IP='127.0.0.1', Port={}, Scheme='http'))\n\
         h = c.head_object(Bucket='{}', Key='h')\n\
         print(h['x-cos-meta-mode'], h['x-cos-meta-uid'], h['x-cos-meta-gid'], h['x-cos-meta-mtime'])\n",
        server.addr().port(),
        crate::common::BUCKET
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .output()
        .expect("the venv from scripts/test.sh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "33184 1234 5678 1577934245",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn open_files_stay_readable_after_unlink() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(m.join("victim"), &data).unwrap();
    let file = File::open(m.join("victim")).unwrap();
    fs::remove_file(m.join("victim")).unwrap();
    assert!(!m.join("victim").exists());
    let mut buf = vec![0u8; data.len()];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf == data);
    drop(file);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gone = rt.block_on(server.client().head("victim"));
    assert!(
        gone.unwrap_err().is_not_found(),
        "deleted at the last close"
    );
}

#[test]
fn o_creat_excl_read_only_then_chmod_rename_unlink() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let path = m.join("ro");
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    drop(f);
    assert!(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .is_err(),
        "O_EXCL on an existing file"
    );
    m.sh_ok("touch empty && mkfifo pipe && chmod 600 ro && mv ro ro2 && rm ro2");
    let fifo = fs::symlink_metadata(m.join("pipe")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    drop(m);
    let fresh = TestMount::start(&server, &[]);
    assert_eq!(fs::metadata(fresh.join("empty")).unwrap().len(), 0);
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::symlink_metadata(fresh.join("pipe"))
            .unwrap()
            .file_type()
    ));
    assert!(!fresh.join("ro2").exists());
}

#[test]
fn upload_failures_reach_the_application_and_leave_nothing() {
    let mut server = TestServer::start();
    let m = TestMount::start(&server, &["--retries", "2", "--request-timeout", "5s"]);
    let mut small = File::create(m.join("small")).unwrap();
    small.write_all(b"never stored").unwrap();
    let mut big = File::create(m.join("big")).unwrap();
    big.write_all(&vec![7u8; 20 << 20]).unwrap(); // two parts are already uploading
    let mut synced = File::create(m.join("synced")).unwrap();
    synced.write_all(b"x").unwrap();
    let status = server.terminate();
    assert!(status.success());
    assert!(
        synced.sync_all().is_err(),
        "fsync reports the failed upload"
    );
    // SAFETY: closing a descriptor we own exactly once.
    let close = |f: File| unsafe { libc::close(f.into_raw_fd()) };
    assert_eq!(close(small), -1, "close reports the failed upload");
    assert_eq!(close(big), -1, "close reports the failed multipart upload");
    server.restart();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    for key in ["small", "big", "synced"] {
        assert!(
            rt.block_on(client.head(key)).unwrap_err().is_not_found(),
            "{key} must not exist"
        );
    }
}
