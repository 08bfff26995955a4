//! One bucket shared with cosfs, SDK users and other mounts: extended
//! attributes in cosfs's encoding, read-only checksums, whole-second
//! mtimes for cosfs, close-to-open freshness, and no log noise for the
//! requests a bucket has no use for (ioctl).

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};

use crate::common::mount::TestMount;
use crate::common::{TestServer, sdk};

/// `user.k` = `v1` and `user.bin` = 0x00 0xFF as cosfs 1.0.25 stores them:
/// the URL encoding (`A-Z a-z 0-9 / . - _ ~` kept, `%XX` otherwise) of
/// `{"user.bin":"AP8=","user.k":"djE="}` (names byte-sorted, values base64).
const COSFS_TWO_ATTRS: &str = "%7B%22user.bin%22%3A%22AP8%3D%22%2C%22user.k%22%3A%22djE%3D%22%7D";

/// The stored `x-cos-meta-xattr` of `key`, as the SDK reads it.
fn xattr_header(server: &TestServer, key: &str) -> Option<String> {
    sdk::head(server, &[key])[key]["x-cos-meta-xattr"]
        .as_str()
        .map(String::from)
}

/// Runs `script` in the mount, which must succeed; its output, trimmed.
fn run(m: &TestMount, script: &str) -> String {
    m.sh_ok(script).trim().to_string()
}

/// Runs a Python snippet in the mount; its stdout.
fn py(m: &TestMount, code: &str) -> String {
    run(m, &format!("python3 -c '{code}'"))
}

#[test]
fn xattrs_are_stored_as_cosfs_stores_them() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    run(
        &m,
        "echo data > f && setfattr -n user.k -v v1 f && setfattr -n user.bin -v 0x00ff f",
    );
    assert_eq!(xattr_header(&server, "f").as_deref(), Some(COSFS_TWO_ATTRS));
    assert_eq!(
        run(&m, "getfattr -d -e hex f | sort"),
        "# file: f\nuser.bin=0x00ff\nuser.k=0x7631"
    );
    assert_eq!(std::fs::read(m.join("f")).unwrap(), b"data\n");

    // What cosfs wrote is read here (a fresh mount, no cache).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let attrs = ObjectAttrs {
        meta: [("xattr".to_string(), COSFS_TWO_ATTRS.to_string())].into(),
        ..ObjectAttrs::default()
    };
    rt.block_on(
        server
            .client()
            .put("theirs", Bytes::from_static(b"x"), &attrs),
    )
    .unwrap();
    let other = TestMount::start(&server, &[]);
    assert_eq!(run(&other, "getfattr --only-values -n user.k theirs"), "v1");

    // XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one.
    let flags = py(
        &m,
        "import os, errno
for name, flag in ((b\"user.k\", os.XATTR_CREATE), (b\"user.new\", os.XATTR_REPLACE)):
    try:
        os.setxattr(\"f\", name, b\"z\", flag); print(\"ok\")
    except OSError as e:
        print(errno.errorcode[e.errno])",
    );
    assert_eq!(flags, "EEXIST\nENODATA");
    run(&m, "setfattr -x user.bin f");
    assert_eq!(
        xattr_header(&server, "f").as_deref(),
        Some("%7B%22user.k%22%3A%22djE%3D%22%7D")
    );
    run(&m, "setfattr -x user.k f");
    assert_eq!(xattr_header(&server, "f"), None);
    assert!(m.sh("getfattr -n user.k f").status.code() != Some(0));

    // 2 KB of metadata at most: refused whole, nothing changes.
    run(&m, "setfattr -n user.small -v 1 f");
    let before = xattr_header(&server, "f");
    let big = "a".repeat(2100);
    let out = m.sh(&format!("setfattr -n user.big -v {big} f"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Argument list too long"),
        "{out:?}"
    );
    assert_eq!(xattr_header(&server, "f"), before);

    // Namespaces the bucket does not store.
    let out = m.sh("setfattr -n security.test -v 1 f");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not supported"));
    let out = m.sh("setfattr -n trusted.test -v 1 f");
    assert!(!out.status.success());

    // Directories carry attributes on their marker.
    run(&m, "mkdir d && setfattr -n user.k -v v1 d");
    assert_eq!(
        xattr_header(&server, "d/").as_deref(),
        Some("%7B%22user.k%22%3A%22djE%3D%22%7D")
    );
    assert_eq!(run(&m, "getfattr --only-values -n user.k d"), "v1");
    // chmod keeps them (a self-copy that keeps every other header).
    run(&m, "chmod 600 f && chmod 700 d");
    assert_eq!(run(&m, "getfattr --only-values -n user.small f"), "1");
    assert!(xattr_header(&server, "d/").is_some());
}

#[test]
fn checksums_are_read_only_attributes_not_listed() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    run(&m, "printf hello > f");
    let head = &sdk::head(&server, &["f"])["f"];
    let etag = head["etag"].as_str().unwrap().trim_matches('"').to_string();
    let crc = head["x-cos-hash-crc64ecma"].as_str().unwrap().to_string();
    assert_eq!(run(&m, "getfattr --only-values -n user.cos.etag f"), etag);
    assert_eq!(
        run(&m, "getfattr --only-values -n user.cos.crc64ecma f"),
        crc
    );
    assert_eq!(run(&m, "getfattr -d f"), "");
    let out = m.sh("setfattr -n user.cos.etag -v x f");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
}

#[test]
fn cp_rsync_and_tar_carry_user_xattrs() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), b"alpha").unwrap();
    std::fs::write(src.join("sub/b"), vec![9u8; 300_000]).unwrap();
    let ok = Command::new("sh")
        .arg("-c")
        .arg("setfattr -n user.color -v blue a && setfattr -n user.bin -v 0x00ff01 sub/b && setfattr -n user.dir -v yes sub")
        .current_dir(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // The same listing of names and values, in a folder of the mount or
    // anywhere else.
    let dump_cmd = "getfattr -R -d -e hex . 2>/dev/null | grep -v '^$' | sort";
    let dump = |dir: &str| run(&m, &format!("cd {dir} && {dump_cmd}"));
    let local_dump = Command::new("sh")
        .arg("-c")
        .arg(dump_cmd)
        .current_dir(&src)
        .output()
        .unwrap();
    let expected = String::from_utf8(local_dump.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(expected.contains("user.dir=0x796573"), "{expected}");

    run(&m, &format!("cp -a {} cp", src.display()));
    assert_eq!(dump("cp"), expected);
    run(&m, &format!("rsync -aX {}/ rs/", src.display()));
    assert_eq!(dump("rs"), expected);
    let tar = local.path().join("t.tar");
    run(&m, &format!("tar --xattrs -cf {} -C rs .", tar.display()));
    run(
        &m,
        &format!(
            "mkdir tx && tar --xattrs --xattrs-include='user.*' -xf {} -C tx",
            tar.display()
        ),
    );
    assert_eq!(dump("tx"), expected);
    // And back out of the mount.
    let back = local.path().join("back");
    run(&m, &format!("rsync -aX rs/ {}/", back.display()));
    let out = Command::new("getfattr")
        .args(["--only-values", "-n", "user.color"])
        .arg(back.join("a"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"blue");
}

#[test]
fn every_object_carries_whole_second_mtimes() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    run(
        &m,
        "echo f > file && mkdir dir && ln -s file link && mkfifo fifo && mknod dev c 1 3 \
         && head -c 20000000 /dev/urandom > streamed && echo r > old && mv old renamed \
         && echo c > moded && chmod 600 moded && touch -d @1500000000 touched",
    );
    let keys = [
        "file", "dir/", "link", "fifo", "dev", "streamed", "renamed", "moded", "touched",
    ];
    let heads = sdk::head(&server, &keys);
    for key in keys {
        let mtime = heads[key]["x-cos-meta-mtime"]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: no x-cos-meta-mtime in {}", heads[key]));
        assert!(
            !mtime.is_empty() && mtime.bytes().all(|b| b.is_ascii_digit()),
            "{key}: x-cos-meta-mtime {mtime:?}"
        );
    }
    assert_eq!(heads["touched"]["x-cos-meta-mtime"], "1500000000");
    assert_eq!(heads["dev"]["x-cos-meta-rdev"], "259", "makedev(1, 3)");

    // Distinct atime and mtime, device numbers and the set-ID bits that
    // chown clears, as a fresh mount reads them back.
    run(
        &m,
        "touch -a -d @1400000000 touched && chmod 6755 moded && chown 1:1 moded",
    );
    let fresh = TestMount::start(&server, &[]);
    assert_eq!(
        run(&fresh, "stat -c '%X %Y' touched"),
        "1400000000 1500000000"
    );
    assert_eq!(run(&fresh, "stat -c '%t %T' dev"), "1 3");
    assert_eq!(run(&fresh, "stat -c '%a %u %g' moded"), "755 1 1");
    // Sub-second precision survives in our own header.
    let meta = std::fs::metadata(m.join("file")).unwrap();
    let precise = heads["file"]["x-cos-meta-cosmount-mtime"].as_str().unwrap();
    assert_eq!(
        precise,
        format!("{}.{:09}", meta.mtime(), meta.mtime_nsec())
    );
}

/// Requests the server counted since the last reset.
fn requests(server: &TestServer) -> u64 {
    server
        .stats()
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_u64())
        .sum()
}

#[test]
fn the_next_open_sees_what_another_client_closed() {
    let server = TestServer::start();
    let a = TestMount::start(&server, &[]);
    let b = TestMount::start(&server, &[]);
    run(&a, "echo v1 > f");
    assert_eq!(run(&b, "cat f"), "v1");
    run(&a, "echo v2 > f");
    server.reset_stats();
    assert_eq!(run(&b, "cat f"), "v2");
    let per_open = requests(&server);
    println!("requests for one open+read of a changed file: {per_open}");
    assert!(per_open <= 2, "{}", server.stats());

    server.reset_stats();
    assert_eq!(run(&b, "cat f"), "v2");
    println!(
        "requests for one open+read of an unchanged file: {}",
        requests(&server)
    );
    assert_eq!(server.stats()["HeadObject"], 1, "{}", server.stats());

    sdk::put(&server, "f", b"from the SDK\n");
    assert_eq!(run(&b, "cat f"), "from the SDK");
    // Files this mount listed but never opened, grown elsewhere: the first
    // open reads all of them (the size the kernel has from the listing is
    // stale), whether it asks with a GET (small) or a HEAD (large).
    sdk::put(&server, "small", b"short\n");
    sdk::put(&server, "large", &[b'x'; 2 << 20]);
    run(&b, "ls -l small large");
    sdk::put(&server, "small", b"much longer than before\n");
    sdk::put(&server, "large", &[b'y'; 3 << 20]);
    assert_eq!(run(&b, "cat small"), "much longer than before");
    assert_eq!(run(&b, "wc -c < large"), (3 << 20).to_string());
    run(&a, "rm f");
    let out = b.sh("cat f");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file or directory"),
        "{out:?}"
    );

    // nocto: the open trusts the cache for the TTL.
    let c = TestMount::start(&server, &["-o", "nocto", "--metadata-ttl", "1h"]);
    run(&a, "echo one > g");
    assert_eq!(run(&c, "cat g"), "one");
    server.reset_stats();
    assert_eq!(run(&c, "cat g"), "one");
    assert_eq!(server.stats()["HeadObject"], 0, "{}", server.stats());
}

/// Two servers appending to one log in turn (open, append, close): each
/// append lands after the other's, also when this mount's kernel still has
/// the size from before the other's (listed a moment ago).
#[test]
fn appends_from_two_mounts_in_turn_keep_every_line() {
    let server = TestServer::start();
    let a = TestMount::start(&server, &[]);
    let b = TestMount::start(&server, &[]);
    run(&a, "echo line1 > log");
    run(&b, "ls -l log");
    run(&a, "echo line2 from a >> log");
    run(&b, "echo line3 from b >> log");
    let expected = "line1\nline2 from a\nline3 from b";
    assert_eq!(run(&b, "stat -c %s log"), (expected.len() + 1).to_string());
    assert_eq!(run(&b, "cat log"), expected);
    assert_eq!(run(&a, "cat log"), expected);
    run(&a, "echo line4 from a >> log");
    run(&b, "printf 'line5 from b\n' >> log");
    let expected = format!("{expected}\nline4 from a\nline5 from b");
    assert_eq!(run(&b, "cat log"), expected);
    // Whole pages appended where b's kernel did not expect them: what b
    // reads next is the file, not pages it kept from its own write.
    run(&b, "cat log >/dev/null");
    run(&a, "echo line6 from a >> log");
    run(&b, "seq 3000 >> log");
    let numbers: Vec<String> = (1..=3000).map(|i| i.to_string()).collect();
    let expected = format!("{expected}\nline6 from a\n{}", numbers.join("\n"));
    assert_eq!(run(&b, "cat log"), expected);
    assert_eq!(run(&a, "cat log"), expected);
}

#[test]
fn terminal_probes_do_not_reach_the_log() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    run(&m, "echo x > f");
    let isatty = py(
        &m,
        "import os; f = open(\"f\"); print(f.isatty(), f.read().strip())",
    );
    assert_eq!(isatty, "False x");
    run(
        &m,
        "cp f g && python3 -c 'import shutil; shutil.copyfile(\"f\", \"h\")'",
    );
    let log = m.log_text();
    assert!(!log.contains("Not Implemented"), "{log}");
    assert!(!log.contains(" WARN "), "{log}");
}

#[test]
fn creating_a_name_another_client_created_opens_theirs() {
    let server = TestServer::start();
    // Long TTLs: this mount would believe the names missing for an hour.
    let b = TestMount::start(&server, &["--metadata-ttl", "1h", "--negative-ttl", "1h"]);
    assert!(!b.sh("stat appended excl").status.success());
    sdk::put(&server, "appended", b"theirs\n");
    sdk::put(&server, "excl", b"keep me\n");
    run(&b, "echo mine >> appended");
    assert_eq!(run(&b, "cat appended"), "theirs\nmine");
    let out = b.sh("set -C; echo clobber > excl");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("File exists"),
        "{out:?}"
    );
    assert_eq!(server.object("excl"), b"keep me\n");
}

/// A folder this mount is filling answers "free" from one listing shared
/// by the names created within 100 ms; a name another client created
/// before the open is still opened (or refused with `O_EXCL`), not
/// replaced.
#[test]
fn filling_a_folder_still_sees_names_another_client_created() {
    let server = TestServer::start();
    let b = TestMount::start(&server, &[]);
    b.sh_ok("mkdir filled && for i in 1 2 3 4 5; do echo $i > filled/mine$i; done");
    sdk::put(&server, "filled/theirs", b"keep me\n");
    sdk::put(&server, "filled/appended", b"theirs\n");
    let out = b.sh("set -C; echo clobber > filled/theirs");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("File exists"),
        "{out:?}"
    );
    run(&b, "echo mine >> filled/appended");
    assert_eq!(run(&b, "cat filled/appended"), "theirs\nmine");
    run(&b, "echo 6 > filled/mine6");
    assert_eq!(
        run(&b, "ls filled | tr '\\n' ' '"),
        "appended mine1 mine2 mine3 mine4 mine5 mine6 theirs"
    );
    assert_eq!(server.object("filled/theirs"), b"keep me\n");
}

#[test]
fn names_this_mount_made_in_a_folder_being_filled_stay_found() {
    // A folder being filled answers lookups from one listing of it (sent
    // within --negative-ttl); a name this mount made there after that
    // listing was sent must still be found. Attributes expire at once
    // (--metadata-ttl 0) and the listing stays usable (--negative-ttl 1h),
    // so every lookup below meets the old listing; each `stat` of a free
    // name keeps the folder "being filled".
    let server = TestServer::start();
    let m = TestMount::start(&server, &["--metadata-ttl", "0", "--negative-ttl", "1h"]);
    run(
        &m,
        "mkdir filling && echo moved > src && ! stat filling/free1",
    );
    run(&m, "mv src filling/moved && echo new > filling/new");
    run(&m, "ln -s moved filling/link && mkdir filling/sub");
    let found = run(
        &m,
        "for f in moved new link; do stat filling/free-$f >/dev/null 2>&1; cat filling/$f; done; \
         stat filling/free3 >/dev/null 2>&1; stat -c %F filling/sub",
    );
    assert_eq!(found, "moved\nnew\nmoved\ndirectory");
}
