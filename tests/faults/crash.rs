//! `kill -9` of the daemon during a write-heavy workload: every file whose
//! close returned success is intact, no object is partial, the dead mount
//! point takes a new mount without `fusermount -u`, and the new mount
//! aborts the multipart uploads the dead one left (`--abort-stale-uploads`).
//! Also `cosmount cleanup`, which lists and aborts such uploads by hand.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cosmount::cos::{ListWalker, ObjectAttrs, ObjectClient, crc64};

use crate::common::mount::{TestMount, server_args, wait_for};
use crate::common::{BUCKET, TestServer};

/// The writer runs in its own process: a file open in this (multi-threaded,
/// forking) test process would be flushed whenever another test's
/// fork+exec closes its inherited copy of the descriptor.
const WRITER: &str = r#"
import os, sys
root = sys.argv[1]
base = bytes(range(251)) * (3_200_000 // 251 + 2)
def content(i):
    n = [10_000, 300_000, 1_500_000, 3_000_000][i % 4] + i
    return base[i % 251:i % 251 + n]
def write_all(fd, data):
    off = 0
    while off < len(data):
        off += os.write(fd, data[off:off + (1 << 20)])
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
held = os.open(os.path.join(root, "held-open.bin"), flags, 0o644)
write_all(held, bytes(3 << 20))
print("held", flush=True)
i = 0
while True:
    name = "f%05d" % i
    try:
        fd = os.open(os.path.join(root, name), flags, 0o644)
        write_all(fd, content(i))
        os.close(fd)
    except OSError as e:
        print("error", name, e, flush=True)
        break
    print("ok", i, flush=True)
    i += 1
"#;

/// What the writer writes as file `i`.
fn content(i: usize) -> Vec<u8> {
    let n = [10_000, 300_000, 1_500_000, 3_000_000][i % 4] + i;
    (0..n).map(|j| ((i + j) % 251) as u8).collect()
}

/// Every key in the bucket with its CRC64.
fn bucket(server: &TestServer, rt: &tokio::runtime::Runtime) -> BTreeMap<String, Option<u64>> {
    let client = server.client();
    rt.block_on(async {
        let mut all = BTreeMap::new();
        let mut walker = ListWalker::new("", None);
        while let Some(page) = walker.next_page(&client).await.unwrap() {
            for o in page.objects {
                let crc = client.head(&o.key).await.unwrap().crc64;
                all.insert(o.key, crc);
            }
        }
        all
    })
}

#[test]
fn kill_9_loses_no_acknowledged_file_and_the_mountpoint_takes_a_new_mount() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut m = TestMount::start(&server, &["--part-size", "1MiB"]);
    let mut writer = Command::new("python3")
        .args(["-c", WRITER])
        .arg(m.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let (tx, rx) = mpsc::channel();
    let stdout = writer.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The held-open file's first parts are uploading when the daemon
    // dies, so a multipart upload is left behind.
    let mut acknowledged: Vec<usize> = Vec::new();
    let mut held = false;
    while acknowledged.len() < 30 {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the writer goes on");
        match line.split_once(' ') {
            Some(("ok", i)) => acknowledged.push(i.parse::<usize>().unwrap()),
            _ if line == "held" => held = true,
            _ => panic!("writer: {line}"),
        }
    }
    assert!(held);
    m.kill9();
    let _ = writer.wait();
    acknowledged.extend(
        rx.try_iter()
            .filter_map(|l| l.strip_prefix("ok ")?.parse::<usize>().ok()),
    );
    let err = std::fs::metadata(m.path()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    let left = rt.block_on(server.client().list_uploads("")).unwrap();
    assert!(
        left.iter().any(|u| u.key == "held-open.bin"),
        "the held-open file left a multipart upload: {left:?}"
    );

    // No `fusermount -u`: the new daemon detaches the dead mount itself.
    m.restart(&["--abort-stale-uploads", "0s"]);
    assert!(
        m.log_text().contains("stale mount"),
        "the dead mount was noticed"
    );
    let client = server.client();
    wait_for("the stale uploads to be aborted", || {
        rt.block_on(client.list_uploads("")).unwrap().is_empty()
    });
    for &i in &acknowledged {
        let name = format!("f{i:05}");
        let got = std::fs::read(m.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == content(i), "{name} is not what was written");
    }
    // Whatever else is in the bucket is whole: an upload that completed
    // just before the kill, never a part of one.
    for (key, crc) in bucket(&server, &rt) {
        let i: usize = key
            .strip_prefix('f')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected object {key:?}"));
        assert_eq!(crc, Some(crc64::checksum(&content(i))), "{key} is partial");
    }
    eprintln!(
        "{} files acknowledged before the kill; {} upload(s) left, aborted at remount",
        acknowledged.len(),
        left.len()
    );
}

fn cleanup(server: &TestServer, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .arg("cleanup")
        .args(args)
        .args(server_args(server))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn cleanup_lists_and_aborts_leftover_uploads_under_a_prefix() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    let attrs = ObjectAttrs::default();
    rt.block_on(async {
        for key in ["data/a.bin", "data/sub/b.bin", "other/c.bin"] {
            client.create_multipart(key, &attrs).await.unwrap();
        }
    });
    let spec = format!("{BUCKET}:/data");
    let (ok, text) = cleanup(&server, &[&spec]);
    assert!(ok, "{text}");
    assert!(
        text.ends_with("0 upload(s)\n"),
        "young uploads are kept by default: {text}"
    );
    let (ok, text) = cleanup(&server, &[&spec, "--older-than", "0", "--dry-run"]);
    assert!(
        ok && text.contains("data/sub/b.bin") && !text.contains("other/"),
        "{text}"
    );
    assert!(text.ends_with("2 upload(s) would be aborted\n"), "{text}");
    assert_eq!(rt.block_on(client.list_uploads("")).unwrap().len(), 3);
    let (ok, text) = cleanup(&server, &[&spec, "--older-than", "0"]);
    assert!(
        ok && text.ends_with("2 upload(s) aborted, 0 failed\n"),
        "{text}"
    );
    let left = rt.block_on(client.list_uploads("")).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, "other/c.bin");
    // A mount aborts stale uploads under its prefix only.
    let m = TestMount::start_bucket(
        &server,
        &format!("{BUCKET}:/other"),
        &["--abort-stale-uploads", "0s"],
    );
    wait_for("the mount to abort other/c.bin", || {
        rt.block_on(client.list_uploads("")).unwrap().is_empty()
    });
    drop(m);
}
