//! What a listing costs: request counts from the server for `ls -l` in the
//! exact (default) and `--fast-list` modes, nothing at all within the TTL,
//! how many HEADs an exact listing keeps in flight on a far server, the
//! kernel round trips of `ls -l`'s label and ACL questions, what renaming
//! a listed folder and rsync's renames spare, and what finding that new
//! names are free costs.

use bytes::Bytes;
use cosmount::cos::{Encryption, ObjectAttrs, ObjectClient};
use futures_util::stream::{self, StreamExt};

use crate::common::mount::TestMount;
use crate::common::{ServerOptions, TestServer, free_ports, http_get};

const FILES: usize = 5000;

async fn seed(server: &TestServer) {
    seed_folder(server, "big", FILES).await;
}

/// Puts `files` small objects in `folder`.
async fn seed_folder(server: &TestServer, folder: &str, files: usize) {
    let client = server.client();
    stream::iter(0..files)
        .map(|i| {
            let client = &client;
            async move {
                let key = format!("{folder}/file-{i:05}");
                client
                    .put(
                        &key,
                        Bytes::from(vec![b'x'; i % 100]),
                        &ObjectAttrs::default(),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

fn count(server: &TestServer, op: &str) -> u64 {
    server.stats()[op]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {op}"))
}

fn total(server: &TestServer) -> u64 {
    server
        .stats()
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

/// The requests of a cold `ls -l` of `big` (lists, HEADs, hedges the mount
/// sent: a hedge repeats a slow request, so a loaded machine may add a few)
/// and of a second one at once (all requests).
fn ls_l_costs(server: &TestServer, mode: &[&str]) -> (u64, u64, u64, u64) {
    let mut args = vec!["--metadata-ttl", "10m"];
    args.extend_from_slice(mode);
    let mut m = TestMount::start(server, &args);
    m.sh_ok("stat big > /dev/null");
    server.reset_stats();
    let out = m.sh_ok("ls -l big | wc -l");
    assert_eq!(
        out.trim(),
        (FILES + 1).to_string(),
        "total line plus one per file"
    );
    let (lists, heads) = (count(server, "ListObjects"), count(server, "HeadObject"));
    server.reset_stats();
    m.sh_ok("ls -l big > /dev/null");
    let again = total(server);
    m.stop();
    (lists, heads, m.client_counter("hedges"), again)
}

#[test]
fn ls_l_request_counts_per_listing_mode() {
    let server = TestServer::start();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seed(&server));

    let (lists, heads, hedges, again) = ls_l_costs(&server, &["--fast-list"]);
    assert!(
        (5..=5 + hedges).contains(&lists) && heads == 0,
        "fast list: 5 pages (and {hedges} hedges), no HEAD: {lists} lists, {heads} HEADs"
    );
    assert_eq!(again, 0, "a second ls -l within the TTL sends nothing");

    let (lists, heads, hedges, again) = ls_l_costs(&server, &[]);
    let files = FILES as u64;
    assert!(
        lists >= 5 && heads >= files && lists + heads <= 5 + files + hedges,
        "exact mode: 5 pages and one HEAD per object (and {hedges} hedges): {lists} lists, {heads} HEADs"
    );
    assert_eq!(again, 0, "a second ls -l within the TTL sends nothing");
}

/// `ls -l` asks each entry's SELinux label and ACL (`lgetxattr`,
/// `getxattr`): the bucket stores neither, and answering "unsupported"
/// lets `ls` stop asking for the rest of the mount, where "none here"
/// cost two kernel round trips per entry (20,000 of them, most of a warm
/// `ls -l` of 10,000 files).
#[test]
fn ls_l_stops_asking_for_labels_and_acls_after_the_first_entry() {
    let server = TestServer::start();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seed_folder(&server, "t", 300));
    let listen = format!("127.0.0.1:{}", free_ports(1)[0]);
    let m = TestMount::start(&server, &["--metrics-listen", &listen]);
    let getxattrs = || -> f64 {
        let metrics = http_get(listen.parse().unwrap(), "/metrics");
        String::from_utf8_lossy(&metrics.body)
            .lines()
            .filter(|l| {
                l.starts_with(r#"cosmount_fuse_request_duration_seconds_count{op="getxattr""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for pass in ["cold", "warm"] {
        let before = getxattrs();
        assert_eq!(m.sh_ok("ls -l t | wc -l").trim(), "301");
        let asked = getxattrs() - before;
        assert!(asked <= 4.0, "{pass} ls -l of 300 files: {asked} getxattr");
    }
    let out = m.sh("getfattr -n security.selinux t/file-00001");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not supported"),
        "{out:?}"
    );
}

/// A server far away (every answer delayed by up to 800 ms, 400 on
/// average, under the client's 1 s first-byte deadline: HEADs finish far
/// slower than this machine's CPUs allow, even beside other tests) gets a
/// wider window of listing HEADs than the 64 a mount starts with: the
/// window doubles when HEADs finish faster with it. The log names the
/// windows tried (`-d`).
#[test]
fn a_far_server_gets_a_wider_window_of_listing_heads() {
    let root = tempfile::tempdir().unwrap();
    let options = ServerOptions {
        root: Some(root.path().to_path_buf()),
        ..ServerOptions::default()
    };
    {
        let near = TestServer::with(options.clone());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(seed_folder(&near, "far", 2400));
    }
    let delay = [
        "--fault-rate",
        "1",
        "--fault-kinds",
        "delay",
        "--fault-delay",
        "800ms",
    ];
    let far = TestServer::with(ServerOptions {
        extra_args: delay.iter().map(|a| a.to_string()).collect(),
        ..options
    });
    let listen = format!("127.0.0.1:{}", free_ports(1)[0]);
    let m = TestMount::start(&far, &["--metrics-listen", &listen, "-d"]);
    assert_eq!(m.sh_ok("ls -l far | wc -l").trim(), "2401");
    let metrics = http_get(listen.parse().unwrap(), "/metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    let window: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cosmount_listing_head_window "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no window in the metrics:\n{text}"));
    assert!(
        window > 64,
        "the window stayed at {window}; windows tried:\n{}",
        m.log_text()
            .lines()
            .filter(|l| l.contains("HEAD window") || l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// New names in a directory that already exists (`cp` of 100 files into
/// it): the first name costs its HEAD and a one-key listing; after it, a
/// listing of the whole directory answers for the names created within
/// 100 ms (lookups and the creates' close-to-open check alike), so each
/// file costs its PUT and a share of a listing.
#[test]
fn copying_into_an_existing_directory_costs_about_one_request_per_file() {
    let server = TestServer::start();
    crate::common::sdk::put(&server, "dest/existing", b"x");
    let src = tempfile::tempdir().unwrap();
    for i in 0..100 {
        std::fs::write(src.path().join(format!("f{i:03}")), format!("{i}")).unwrap();
    }
    let m = TestMount::start(&server, &[]);
    m.sh_ok("stat dest > /dev/null");
    server.reset_stats();
    m.sh_ok(&format!("cp {}/* dest/", src.path().display()));
    let (lists, heads, puts) = (
        count(&server, "ListObjects"),
        count(&server, "HeadObject"),
        count(&server, "PutObject"),
    );
    println!("cp of 100 new files: {lists} LIST, {heads} HEAD, {puts} PUT");
    assert_eq!(puts, 100);
    assert_eq!(heads, 1, "only the first name's lookup asks with a HEAD");
    assert!(lists < 50, "{lists} listings: one serves several names");
    assert_eq!(total(&server), lists + heads + puts, "{}", server.stats());
    assert_eq!(m.sh_ok("cat dest/f042"), "42");
}

/// Renaming a folder copies each object as it is stored (a copy that
/// names no encryption is stored in plain, on COS): an object whose
/// version an `ls -l` read exactly needs no HEAD first; one known from
/// the rename's own listing only is asked. Encrypted and plain objects
/// stay so either way.
#[test]
fn renaming_a_listed_folder_heads_none_of_its_files() {
    const FILES: usize = 12;
    let server = TestServer::start();
    let client = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sealed = ObjectAttrs {
        encryption: Encryption::Aes256,
        ..ObjectAttrs::default()
    };
    let plain = ObjectAttrs::default();
    let keys: Vec<String> = ["listed", "unlisted"]
        .iter()
        .flat_map(|d| (0..FILES).map(move |i| format!("{d}/sub{}/f{i:02}", i % 2)))
        .collect();
    rt.block_on(async {
        for (i, key) in keys.iter().enumerate() {
            let attrs = if i % 3 == 0 { &sealed } else { &plain };
            client
                .put(key, Bytes::from(key.clone()), attrs)
                .await
                .unwrap();
        }
    });
    let m = TestMount::start(&server, &[]);
    m.sh_ok("ls -lR listed > /dev/null && stat unlisted > /dev/null");
    let mut heads = Vec::new();
    for dir in ["listed", "unlisted"] {
        server.reset_stats();
        m.sh_ok(&format!("mv {dir} {dir}-moved"));
        assert_eq!(
            count(&server, "CopyObject"),
            FILES as u64,
            "{}",
            server.stats()
        );
        heads.push(count(&server, "HeadObject"));
    }
    println!("HEADs of the renames (listed, unlisted): {heads:?}");
    // Besides the files', the kernel's lookup of the new name may HEAD it.
    assert!(heads[0] <= 1, "listed: {heads:?}");
    assert!(heads[1] >= FILES as u64, "unlisted: {heads:?}");
    m.sh_ok("cat listed-moved/sub0/f00 unlisted-moved/sub1/f11 > /dev/null");
    rt.block_on(async {
        for (i, key) in keys.iter().enumerate() {
            let (dir, rest) = key.split_once('/').unwrap();
            let moved = client.head(&format!("{dir}-moved/{rest}")).await.unwrap();
            let expected = if i % 3 == 0 {
                Encryption::Aes256
            } else {
                Encryption::Plain
            };
            assert_eq!(moved.encryption, expected, "{key}");
        }
    });
}

/// `rsync -a` into the mount writes each file under a temporary name
/// with no type, sets its mode and times, and renames it: the mount wrote
/// that object whole a moment before, so neither the metadata rewrites
/// nor the rename's new type (what the real name says) HEAD it first
/// (nine requests per file before, six now: the PUT, three copies, the
/// delete, and the HEAD of the `open` rsync reads it back with). What
/// rsync set is what a fresh mount sees.
#[test]
fn rsync_into_the_mount_heads_only_what_it_reopens() {
    const FILES: u64 = 20;
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        let path = src.path().join(format!("f{i:02}.txt"));
        std::fs::write(&path, format!("{i}")).unwrap();
    }
    // The shortcut holds for --metadata-ttl after each upload (1 s by
    // default, far more than rsync takes between a file's steps); a
    // longer TTL keeps a loaded test machine's pauses out of the counts.
    let m = TestMount::start(&server, &["--metadata-ttl", "1m"]);
    m.sh_ok("mkdir dst");
    server.reset_stats();
    m.sh_ok(&format!("rsync -a {}/ dst/", src.path().display()));
    let stats = server.stats();
    println!("rsync -a of {FILES} files: {stats}");
    assert_eq!(count(&server, "PutObject"), FILES, "{stats}");
    assert_eq!(count(&server, "CopyObject"), 3 * FILES, "{stats}");
    assert!(count(&server, "HeadObject") <= FILES + 1, "{stats}");
    assert!(total(&server) <= 6 * FILES + 3, "{stats}");
    drop(m);
    let other = TestMount::start(&server, &[]);
    let changes = other.sh_ok(&format!("rsync -ani {}/ dst/", src.path().display()));
    assert_eq!(changes.trim(), "", "a second rsync finds nothing to do");
    let client = server.client();
    let head = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(client.head("dst/f07.txt"))
        .unwrap();
    assert_eq!(head.content_type.as_deref(), Some("text/plain"));
}

/// `tar -xf` as root (owners, modes, times) of 400 new files in 8 new
/// folders into a folder this mount made: free names are confirmed by one
/// listing of the folder for many names (close-to-open holds: see
/// `sharing.rs`), and the folders' modes and times are written without
/// reading their markers first. About one request per file, and
/// what tar set is what another mount sees.
#[test]
fn untar_of_new_files_costs_about_one_request_per_file() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    for i in 0..400 {
        let path = src.path().join(format!("d{}/f{i:03}", i % 8));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{i}")).unwrap();
    }
    let tarball = src.path().join("t.tar");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && chmod 750 d3 && chmod 640 d3/f123 && touch -d @1400000000 d3/f123 d3 \
             && tar -cf t.tar d*",
            src.path().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let m = TestMount::start(&server, &[]);
    m.sh_ok("mkdir untarred");
    server.reset_stats();
    m.sh_ok(&format!(
        "tar -xf {} -C untarred && sync",
        tarball.display()
    ));
    let stats = server.stats();
    println!("untar of 400 files: {stats}");
    for op in ["HeadObject", "CopyObject"] {
        assert_eq!(count(&server, op), 0, "{op}: {stats}");
    }
    // Each file, each folder marker, and each folder's mode and times (tar
    // makes folders 700 until it sets their owner, which as root is the
    // owner they already have: that chown costs nothing).
    assert_eq!(count(&server, "PutObject"), 400 + 8 + 8 * 2, "{stats}");
    let all = total(&server);
    assert!(all <= 500, "{all} requests: {stats}");
    drop(m);
    let other = TestMount::start(&server, &[]);
    assert_eq!(
        other.sh_ok("cd untarred/d3 && stat -c '%a %Y' . f123 && cat f123"),
        "750 1400000000\n640 1400000000\n123"
    );
}

/// `mkdir` lists the new folder beside its marker's PUT (besides the
/// kernel's lookup of the name, a HEAD and a one-key listing): the
/// creating `open` of its first file then finds a listing sent within
/// close-to-open's 100 ms instead of waiting for one (what it then asks
/// depends on timing: `a_new_folders_first_files_are_created_without_waiting_for_a_listing`
/// in the fs unit tests shows it asks nothing).
#[test]
fn mkdir_lists_the_new_folder_with_its_marker() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &[]);
    server.reset_stats();
    m.sh_ok("mkdir fresh");
    let stats = server.stats();
    let asked = ["HeadObject", "ListObjects", "PutObject"].map(|op| count(&server, op));
    // (Not the total: the mount's start-up check for stale uploads may
    // still be on its way.)
    assert_eq!(asked, [1, 2, 1], "{stats}");
    drop(m);
    let nocto = TestMount::start(&server, &["-o", "nocto"]);
    server.reset_stats();
    nocto.sh_ok("mkdir other");
    let stats = server.stats();
    assert_eq!(
        count(&server, "ListObjects"),
        1,
        "no creating open asks: {stats}"
    );
}

/// `cat` of every file of a folder listed more than a TTL before the
/// files are opened (as the bench's `find -exec cat` of 2,000 files
/// outlasts the default 1 s), by name, so that no listing refreshes them
/// first: the first expired file is rechecked with a HEAD, the others
/// with one listing of the folder, not a HEAD and a listing of `name/`
/// each (41 LIST and 40 HEAD before), and each small file's open
/// asks with the GET its read needs. With default options; the TTL has to
/// run out, so the test waits for it.
#[test]
fn reading_a_listed_folder_after_its_ttl_costs_one_request_per_file() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed_folder(&server, "t", 40));
    let m = TestMount::start(&server, &[]);
    m.sh_ok("ls -l t >/dev/null");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    server.reset_stats();
    let bytes: usize = (0..40).sum();
    let cat = "cd t && cat $(printf 'file-%05d ' $(seq 0 39)) | wc -c";
    assert_eq!(m.sh_ok(cat).trim(), bytes.to_string());
    let (lists, heads, gets) = (
        count(&server, "ListObjects"),
        count(&server, "HeadObject"),
        count(&server, "GetObject"),
    );
    println!("cat of 40 files: {lists} LIST, {heads} HEAD, {gets} GET");
    // The first name asks with a HEAD (a file seen before); the empty file
    // is opened after it and takes that answer (nothing to read).
    assert_eq!(gets, 39, "{}", server.stats());
    assert!(heads <= 3, "{}", server.stats());
    assert!(lists <= 4, "{}", server.stats());
}
