//! The disk tier (`--cache-dir`): a second read and a remount read from
//! disk (GETs counted at the server), a damaged block file is refetched,
//! a replaced object never serves its old blocks, the folder stays within
//! `--disk-cache-size`, a full cache disk only warns, and one folder serves
//! one mount.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};

use crate::common::mount::{TestMount, server_args};
use crate::common::{BUCKET, TestServer, pattern, sdk};

const MIB: usize = 1 << 20;

fn put(server: &TestServer, key: &str, data: &[u8]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(
        server
            .client()
            .put(key, Bytes::from(data.to_vec()), &ObjectAttrs::default()),
    )
    .unwrap();
}

fn count(server: &TestServer, op: &str) -> u64 {
    server.stats()[op].as_u64().unwrap_or(0)
}

/// Reads `rel` through the mount after emptying the kernel's page cache,
/// so every byte is asked of the daemon.
fn read_cold(m: &TestMount, rel: &str) -> Vec<u8> {
    std::fs::write("/proc/sys/vm/drop_caches", "1").expect("drop the page cache (needs root)");
    std::fs::read(m.join(rel)).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode()
}

/// The block files in a bucket's cache folder, and their total size.
fn block_files(dir: &Path) -> (Vec<PathBuf>, u64) {
    let mut files = Vec::new();
    for sub in std::fs::read_dir(dir.join("blocks")).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    (files, bytes)
}

#[test]
fn second_reads_and_remounts_read_from_disk_and_damage_is_refetched() {
    let server = TestServer::start();
    let data = pattern(64 * MIB, 1);
    put(&server, "big.bin", &data);
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("cache");
    let dir_arg = dir.to_str().unwrap();
    // A memory cache a quarter of the file: the second pass cannot come
    // from memory.
    let args = ["--cache-dir", dir_arg, "--cache-size", "16MiB"];
    let mut m = TestMount::start(&server, &args);
    assert!(read_cold(&m, "big.bin") == data, "first pass");
    // The blocks live in a folder of the bucket's own, made private.
    let own = dir.join(BUCKET);
    assert_eq!(mode_of(&own) & 0o777, 0o700);
    server.reset_stats();
    assert!(read_cold(&m, "big.bin") == data, "second pass");
    assert_eq!(count(&server, "GetObject"), 0, "second pass from disk");

    // One folder, one mount: a second mount is refused, saying why.
    let other = tempfile::tempdir().unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_cosmount"))
        .args(server_args(&server))
        .args(["--cache-dir", dir_arg, "-f", BUCKET])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is in use by another cosmount mount"),
        "{stderr}"
    );
    m.stop();

    // Flip one byte of one block file; a remount finds the rest on disk.
    let (files, _) = block_files(&own);
    assert_eq!(files.len(), 64, "a file per 1 MiB block");
    let victim = &files[files.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() - MIB / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(victim, bytes).unwrap();
    // The remount has default options but --cache-dir: the blocks found on
    // disk are what it reads.
    server.reset_stats();
    let m = TestMount::start(&server, &["--cache-dir", dir_arg]);
    assert!(read_cold(&m, "big.bin") == data, "after a remount");
    assert_eq!(
        count(&server, "GetObject"),
        1,
        "only the damaged block is fetched again"
    );
    assert_eq!(
        count(&server, "HeadObject"),
        1,
        "the remount's lookup, which the open's close-to-open check trusts"
    );
    let log = m.log_text();
    assert_eq!(log.matches("is damaged").count(), 1, "{log}");
    let status = m.sh_ok(&format!(
        "{} status {}",
        env!("CARGO_BIN_EXE_cosmount"),
        m.path().display()
    ));
    assert!(status.contains("1 damaged blocks refetched"), "{status}");
}

#[test]
fn a_replaced_object_is_never_served_from_its_old_blocks() {
    let server = TestServer::start();
    let old = pattern(8 * MIB, 2);
    sdk::put(&server, "doc.bin", &old);
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    let m = TestMount::start(&server, &["--cache-dir", dir]);
    assert!(read_cold(&m, "doc.bin") == old);
    let new = pattern(8 * MIB, 3);
    sdk::put(&server, "doc.bin", &new);
    assert!(
        read_cold(&m, "doc.bin") == new,
        "the open sees the new ETag"
    );
    let mut m = m;
    m.stop();
    let m = TestMount::start(&server, &["--cache-dir", dir]);
    assert!(read_cold(&m, "doc.bin") == new, "and so does a remount");
}

#[test]
fn the_folder_keeps_its_bound_and_a_full_disk_only_warns() {
    let server = TestServer::start();
    let data = pattern(24 * MIB, 4);
    put(&server, "f.bin", &data);
    // A shared folder, like /tmp: its mode is left alone.
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let dir = cache.path().to_str().unwrap();
    let mut m = TestMount::start(&server, &["--cache-dir", dir, "--disk-cache-size", "8MiB"]);
    assert!(read_cold(&m, "f.bin") == data);
    assert_eq!(mode_of(cache.path()) & 0o7777, 0o1777);
    let (_, held) = block_files(&cache.path().join(BUCKET));
    assert!(held <= 8 * MIB as u64, "{held} bytes on disk");
    assert!(held >= 6 * MIB as u64, "the bound is used: {held} bytes");
    m.stop();

    // A 3 MiB disk under a 10 GiB default bound.
    let tiny = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::mount(tiny.path(), "3m");
    let m = TestMount::start(&server, &["--cache-dir", tmpfs.0.to_str().unwrap()]);
    assert!(read_cold(&m, "f.bin") == data, "reads go on");
    assert!(read_cold(&m, "f.bin") == data, "and again");
    let log = m.log_text();
    assert_eq!(log.matches("the disk is full").count(), 1, "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

/// A tmpfs of a given size, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs (needs root)");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
