//! Reading: a large object sequentially and at 2,000 seeded random ranges,
//! and an object replaced behind the mount's back (new content after the
//! TTL, never a mix of versions).

use std::os::unix::fs::FileExt;
use std::time::Duration;

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};
use rand::{Rng, SeedableRng};

use crate::common::mount::{TestMount, wait_for};
use crate::common::{TestServer, pattern};

const BIG: usize = 300 << 20;

#[test]
fn large_object_sequential_and_random_reads() {
    let server = TestServer::start();
    let data = pattern(BIG, 7);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = server.client();
        client
            .put(
                "big.bin",
                Bytes::from(data.clone()),
                &ObjectAttrs::default(),
            )
            .await
            .unwrap();
    });
    let m = TestMount::start(&server, &["--cache-size", "64MiB"]);
    let file = std::fs::File::open(m.join("big.bin")).unwrap();
    assert_eq!(file.metadata().unwrap().len(), BIG as u64);

    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..2000 {
        let len = rng.random_range(1..=buf.len());
        let offset = rng.random_range(0..BIG - len) as u64;
        file.read_exact_at(&mut buf[..len], offset).unwrap();
        assert!(
            buf[..len] == data[offset as usize..offset as usize + len],
            "range {offset}+{len}"
        );
    }
    let mut tail = [0u8; 100];
    let n = file.read_at(&mut tail, BIG as u64 - 10).unwrap();
    assert_eq!(&tail[..n], &data[BIG - 10..]);

    let copy = std::fs::read(m.join("big.bin")).unwrap();
    assert!(copy == data, "sequential read of all 300 MiB");
}

/// Four sequential readers whose read-ahead together wants more than the
/// whole cache: every byte arrives, and nobody waits forever for memory
/// that only the cache could give back.
#[test]
fn four_readers_share_a_small_cache() {
    const SIZE: usize = 24 << 20;
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    let files: Vec<Vec<u8>> = (0..4).map(|i| pattern(SIZE, 100 + i)).collect();
    for (i, data) in files.iter().enumerate() {
        rt.block_on(client.put(
            &format!("r{i}"),
            Bytes::from(data.clone()),
            &ObjectAttrs::default(),
        ))
        .unwrap();
    }
    let m = TestMount::start(&server, &["--cache-size", "8MiB", "--direct-io", "never"]);
    let (done, finished) = std::sync::mpsc::channel();
    for i in 0..4 {
        let (path, done) = (m.join(&format!("r{i}")), done.clone());
        std::thread::spawn(move || {
            let _ = done.send((i, std::fs::read(path)));
        });
    }
    for _ in 0..4 {
        let (i, read) = finished
            .recv_timeout(Duration::from_secs(120))
            .expect("a reader is stuck");
        assert!(read.unwrap() == files[i], "file r{i} read back whole");
    }
}

#[test]
fn a_replaced_object_is_read_whole_after_the_ttl() {
    let server = TestServer::start();
    let old = pattern(3 << 20, 1);
    let new = pattern(3 << 20, 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    rt.block_on(client.put("f", Bytes::from(old.clone()), &ObjectAttrs::default()))
        .unwrap();
    let m = TestMount::start(&server, &["--metadata-ttl", "1s"]);
    let file = std::fs::File::open(m.join("f")).unwrap();
    let mut first = vec![0u8; 1 << 20];
    file.read_exact_at(&mut first, 0).unwrap();
    assert!(first[..] == old[..1 << 20]);
    rt.block_on(client.put("f", Bytes::from(new.clone()), &ObjectAttrs::default()))
        .unwrap();
    // The open handle belongs to the old version: the rest of it is either
    // the old bytes (cached or prefetched) or ESTALE, never the new ones.
    let mut rest = vec![0u8; 2 << 20];
    match file.read_exact_at(&mut rest, 1 << 20) {
        Ok(()) => assert!(
            rest[..] == old[1 << 20..],
            "an open file never mixes versions"
        ),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}"),
    }
    drop(file);
    wait_for("a new open to read the new version after the TTL", || {
        std::fs::read(m.join("f")).unwrap() == new
    });
}

#[test]
fn direct_io_mounts_read_write_and_mmap() {
    let server = TestServer::start();
    let m = TestMount::start(&server, &["-o", "direct_io"]);
    let data = pattern(5 << 20, 11);
    std::fs::write(m.join("d.bin"), &data).unwrap();
    assert!(std::fs::read(m.join("d.bin")).unwrap() == data);
    let out = m.sh_ok(
        "python3 -c \"import mmap; f=open('d.bin','rb'); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); print(len(m), m[12345])\"",
    );
    assert_eq!(out.trim(), format!("{} {}", data.len(), data[12345]));
}

/// GETs the server answered since its counters were reset.
fn gets(server: &TestServer) -> u64 {
    server.stats()["GetObject"].as_u64().unwrap_or(0)
}

/// Close-to-open asks the bucket at every `open`; for a small file opened
/// for reading the question is the GET its first read needs, so `cat` of
/// files `ls -l` showed costs one request each, not a HEAD and a GET, and
/// still shows what another client wrote since. A file read before asks
/// with a HEAD (its bytes are cached, here or in the kernel).
#[test]
fn reading_small_files_costs_one_request_each() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    let put = |key: &str, body: String| {
        rt.block_on(client.put(key, Bytes::from(body), &ObjectAttrs::default()))
            .unwrap();
    };
    let body = |i: usize| format!("file {i}\n").repeat(i + 1);
    for i in 0..20 {
        put(&format!("small/f{i:02}"), body(i));
    }
    put("small/other", "first".into());
    let m = TestMount::start(&server, &[]);
    m.sh_ok("ls -l small >/dev/null");
    let asked = |s: &TestServer| {
        let count = |op: &str| s.stats()[op].as_u64().unwrap_or(0);
        (count("HeadObject"), count("GetObject"))
    };
    server.reset_stats();
    let all: String = (0..20).map(body).collect();
    assert_eq!(m.sh_ok("cat small/f*"), all);
    assert_eq!(asked(&server), (0, 20), "{}", server.stats());

    put("small/other", "changed elsewhere".into());
    server.reset_stats();
    assert_eq!(m.sh_ok("cat small/other"), "changed elsewhere");
    assert_eq!(asked(&server), (0, 1), "{}", server.stats());

    server.reset_stats();
    assert_eq!(m.sh_ok("cat small/f03"), body(3));
    assert_eq!(asked(&server), (1, 0), "{}", server.stats());
}

/// A sequential reader fetches in runs that grow with its read-ahead
/// window: `dd bs=1M` of 64 MiB (1 MiB reads, one at a time with direct
/// I/O) costs 10 GETs, of 1, 1, 1, 1, 2, 4, 8, 16, 16 and 14 MiB (runs are
/// half the window, which doubles per read up to 32 MiB, and start once
/// they fit in it whole), where it cost one per block; reading it again
/// within the cache costs none. A random reader still sends one GET per
/// read, of just the pages it asked for.
#[test]
fn sequential_reads_fetch_in_runs_and_random_reads_in_pages() {
    const SIZE: usize = 64 << 20;
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    let data = pattern(SIZE, 21);
    for key in ["seq.bin", "rnd.bin"] {
        rt.block_on(client.put(key, Bytes::from(data.clone()), &ObjectAttrs::default()))
            .unwrap();
    }
    let m = TestMount::start(&server, &["--direct-io", "always"]);
    let copy = m.path().with_file_name("copy.bin");
    let dd = format!("dd if=seq.bin of={} bs=1M 2>&1", copy.display());
    let _ = std::fs::metadata(m.join("seq.bin")).unwrap();
    server.reset_stats();
    m.sh_ok(&dd);
    let first = gets(&server);
    assert!(
        std::fs::read(&copy).unwrap() == data,
        "the bytes are the object's"
    );
    assert!(first <= 12, "{first} GETs for 64 MiB read sequentially");
    m.sh_ok(&dd);
    assert_eq!(gets(&server), first, "the second read comes from the cache");
    assert!(std::fs::read(&copy).unwrap() == data);

    let file = std::fs::File::open(m.join("rnd.bin")).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut blocks: Vec<usize> = (2..64).step_by(3).collect();
    rand::seq::SliceRandom::shuffle(&mut blocks[..], &mut rng);
    server.reset_stats();
    let mut buf = [0u8; 4096];
    for block in &blocks {
        let offset = (block << 20) + rng.random_range(0..(1 << 20) - buf.len());
        file.read_exact_at(&mut buf, offset as u64).unwrap();
        assert!(buf[..] == data[offset..offset + buf.len()], "at {offset}");
    }
    assert_eq!(
        gets(&server),
        blocks.len() as u64,
        "one GET per random read"
    );
    println!("sequential: {first} GETs for 64 MiB");
}
