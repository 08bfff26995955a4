//! The workloads, each run the same way on every peer: a fresh mount per
//! repetition, the page cache dropped first when the row says "cold", and
//! ordinary tools (`dd`, `ls`, `find`, `tar`, `fio`) doing the work. Each
//! also has a raw-HTTP counterpart where one makes sense. Results are
//! checked (byte and entry counts) so a fast wrong answer cannot pass.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cosmount::cos::ObjectClient;
use cosmount::cos::client::HttpClient;

use crate::peers::{Kind, Mount, MountEnv, Variant};
use crate::server::Server;
use crate::sys::{self, Measured, Skip, failed, median, timed};
use crate::{nullfs, raw};

const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// Deadline of one tool run.
const TOOL_LIMIT: Duration = Duration::from_secs(1200);

/// How big everything is.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Size of each large object (sequential, random and first-byte reads).
    pub big: u64,
    /// Large objects, one per concurrent reader.
    pub readers: usize,
    /// Objects in the `ls -l` folder.
    pub ls: usize,
    /// The `find` tree: top folders × sub-folders × files per sub-folder.
    pub tree: (usize, usize, usize),
    /// Files in the tarball.
    pub untar: usize,
    /// Files the cat workload reads (whole folders of the tree, at least).
    pub cat: usize,
    /// Seconds of each fio run.
    pub fio_secs: u64,
    /// Repetitions of each measurement.
    pub runs: usize,
}

impl Sizes {
    /// The sizes the issue asks for.
    pub fn full() -> Sizes {
        Sizes {
            big: 1 << 30,
            readers: 4,
            ls: 10_000,
            tree: (20, 10, 100),
            untar: 2_000,
            cat: 2_000,
            fio_secs: 10,
            runs: 3,
        }
    }

    /// Small sizes for a run of a few minutes (CI).
    pub fn quick() -> Sizes {
        Sizes {
            big: 64 << 20,
            readers: 4,
            ls: 1_000,
            tree: (10, 10, 20),
            untar: 200,
            cat: 200,
            fio_secs: 2,
            runs: 1,
        }
    }

    /// "1 GiB" or "64 MiB".
    pub fn big_label(&self) -> String {
        if self.big >= 1 << 30 {
            format!("{} GiB", self.big >> 30)
        } else {
            format!("{} MiB", self.big >> 20)
        }
    }

    /// Entries `find` prints below the tree's root.
    pub fn tree_entries(&self) -> usize {
        let (a, b, c) = self.tree;
        a + a * b + a * b * c
    }

    /// Files in the tree.
    pub fn tree_files(&self) -> usize {
        let (a, b, c) = self.tree;
        a * b * c
    }

    /// Keys of the large objects.
    pub fn big_keys(&self) -> Vec<String> {
        (0..self.readers).map(|i| format!("big/r{i}")).collect()
    }
}

/// Everything a workload needs.
pub struct Bench<'a> {
    /// Sizes.
    pub sizes: Sizes,
    /// How to mount.
    pub env: MountEnv<'a>,
    /// Runtime for the raw client.
    pub rt: &'a tokio::runtime::Runtime,
    /// Raw client of the bucket.
    pub client: &'a HttpClient,
    /// The server: request counts, warming.
    pub server: &'a Server,
    /// The tarball, and (path, size) of each file in it.
    pub tarball: PathBuf,
    /// Files of the tarball.
    pub tar_files: Vec<(String, usize)>,
}

impl Bench<'_> {
    fn mount(&self, kind: Kind, variant: Variant) -> Measured<Mount<'_>> {
        Mount::start(&self.env, kind, variant)
    }

    /// Cold start: drops the page cache, then reads the server's own files
    /// of `keys` back in, so "cold" means the mount's side is cold while the
    /// server (standing in for COS) serves from memory for every peer alike.
    fn cold(&self, keys: &[String]) -> Measured<()> {
        sys::drop_caches()?;
        self.server.warm(keys)
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    // ---- sequential reads ----

    /// `readers` concurrent `dd bs=1M` of the large objects, cold; aggregate
    /// MiB/s and daemon CPU seconds per GiB.
    pub fn seq_read(&self, kind: Kind, readers: usize) -> Measured<Vec<f64>> {
        let keys = &self.sizes.big_keys()[..readers];
        let m = self.mount(kind, Variant::Default)?;
        self.cold(keys)?;
        let files: Vec<PathBuf> = keys.iter().map(|k| m.path().join(k)).collect();
        let before = m.stats()?;
        let (secs, bytes) = timed(|| dd_read(&files))?;
        let cpu = m.stats()?.cpu_secs - before.cpu_secs;
        let want = self.sizes.big * readers as u64;
        if bytes != want {
            return failed(format!("read {bytes} bytes, not {want}"));
        }
        Ok(vec![
            bytes as f64 / MIB as f64 / secs,
            cpu / (bytes as f64 / GIB),
        ])
    }

    /// Raw counterpart of [`Bench::seq_read`].
    pub fn raw_seq_read(&self, readers: usize) -> Measured<Vec<Option<f64>>> {
        let keys = &self.sizes.big_keys()[..readers];
        self.cold(keys)?;
        let rate = self.block_on(raw::read(self.client, keys, self.sizes.big))?;
        Ok(vec![Some(rate), None])
    }

    // ---- time to first byte ----

    /// open + read of the first 4 KiB of each large object on a fresh,
    /// cold mount (lookups included); median ms.
    pub fn first_byte(&self, kind: Kind) -> Measured<Vec<f64>> {
        let keys = self.sizes.big_keys();
        let m = self.mount(kind, Variant::Default)?;
        self.cold(&keys)?;
        let mut ms = Vec::new();
        for key in &keys {
            let start = Instant::now();
            let mut file = std::fs::File::open(m.path().join(key))
                .map_err(|e| Skip::Failed(format!("open {key}: {e}")))?;
            let mut buf = vec![0u8; 4096];
            let n = file
                .read(&mut buf)
                .map_err(|e| Skip::Failed(format!("read {key}: {e}")))?;
            ms.push(start.elapsed().as_secs_f64() * 1000.0);
            if n == 0 || buf[..n] != raw::pattern(n)[..] {
                return failed(format!("{key}: the first {n} bytes are not the object's"));
            }
        }
        Ok(vec![median(&ms)])
    }

    /// Raw counterpart of [`Bench::first_byte`].
    pub fn raw_first_byte(&self) -> Measured<Vec<Option<f64>>> {
        let keys = self.sizes.big_keys();
        self.cold(&keys)?;
        Ok(vec![Some(
            self.block_on(raw::first_byte(self.client, &keys))?,
        )])
    }

    // ---- random reads ----

    /// fio 4 KiB random reads (psync, buffered) over the first large
    /// object, `jobs` jobs, cold; IOPS.
    pub fn random_read(&self, kind: Kind, variant: Variant, jobs: usize) -> Measured<Vec<f64>> {
        let key = &self.sizes.big_keys()[0];
        let m = self.mount(kind, variant)?;
        self.cold(std::slice::from_ref(key))?;
        Ok(vec![self.fio_random(&m, key, jobs)?])
    }

    /// [`Bench::random_read`] with the peers' disk caches on, twice on one
    /// mount with the page cache dropped between: first-pass and
    /// second-pass IOPS.
    pub fn random_read_twice(&self, kind: Kind, jobs: usize) -> Measured<Vec<f64>> {
        let key = &self.sizes.big_keys()[0];
        let m = self.mount(kind, Variant::DiskCache)?;
        self.cold(std::slice::from_ref(key))?;
        let first = self.fio_random(&m, key, jobs)?;
        self.cold(std::slice::from_ref(key))?;
        let second = self.fio_random(&m, key, jobs)?;
        Ok(vec![first, second])
    }

    /// A sequential `dd` of the first large object with the peers' disk
    /// caches on, cold, then again on the same mount after dropping the
    /// page cache: MiB/s of each.
    pub fn seq_reread(&self, kind: Kind) -> Measured<Vec<f64>> {
        let key = &self.sizes.big_keys()[0];
        let m = self.mount(kind, Variant::DiskCache)?;
        let files = [m.path().join(key)];
        let mut rates = Vec::new();
        for _ in 0..2 {
            self.cold(std::slice::from_ref(key))?;
            let (secs, bytes) = timed(|| dd_read(&files))?;
            if bytes != self.sizes.big {
                return failed(format!("read {bytes} bytes, not {}", self.sizes.big));
            }
            rates.push(bytes as f64 / MIB as f64 / secs);
        }
        Ok(rates)
    }

    /// fio 4 KiB random reads of `key` through `m` for the configured time.
    fn fio_random(&self, m: &Mount<'_>, key: &str, jobs: usize) -> Measured<f64> {
        let out = sys::sh(
            &format!(
                "fio --name=rand --filename='{}' --readonly --rw=randread --bs=4k \
                 --ioengine=psync --numjobs={jobs} --group_reporting --time_based \
                 --runtime={} --size={} --output-format=json",
                m.path().join(key).display(),
                self.sizes.fio_secs,
                self.sizes.big
            ),
            TOOL_LIMIT,
        )?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| Skip::Failed(format!("fio output: {e}")))?;
        let job = &json["jobs"][0];
        if job["error"].as_i64() != Some(0) {
            return failed(format!("fio error {}", job["error"]));
        }
        match job["read"]["iops"].as_f64() {
            Some(iops) if iops > 0.0 => Ok(iops),
            _ => failed("fio reported no reads"),
        }
    }

    /// Raw counterpart of [`Bench::random_read`]: `jobs` requests in flight.
    pub fn raw_random_read(&self, jobs: usize) -> Measured<Vec<Option<f64>>> {
        let key = &self.sizes.big_keys()[0];
        self.cold(std::slice::from_ref(key))?;
        let iops = self.block_on(raw::random_reads(
            self.client,
            key,
            self.sizes.big,
            jobs,
            self.sizes.fio_secs as f64,
        ))?;
        Ok(vec![Some(iops)])
    }

    // ---- sequential write ----

    /// `dd bs=1M` of a large file from /dev/zero: MiB/s until dd exits
    /// (close included), MiB/s until the object is complete on the server,
    /// and daemon CPU seconds per GiB up to then. The object is deleted.
    pub fn write(&self, kind: Kind, rep: usize) -> Measured<Vec<f64>> {
        let key = format!("written/{}-{rep}", kind.name());
        let m = self.mount(kind, Variant::Default)?;
        sys::sh("sync", TOOL_LIMIT)?;
        std::fs::create_dir_all(m.path().join("written"))
            .map_err(|e| Skip::Failed(format!("mkdir: {e}")))?;
        let before = m.stats()?;
        let start = Instant::now();
        sys::sh(
            &format!(
                "dd if=/dev/zero of='{}' bs=1M count={} 2>&1",
                m.path().join(&key).display(),
                self.sizes.big / MIB
            ),
            TOOL_LIMIT,
        )?;
        let closed = start.elapsed().as_secs_f64();
        let size = self.sizes.big;
        sys::wait_for("upload", TOOL_LIMIT, Duration::from_millis(20), || {
            self.block_on(self.client.head(&key))
                .is_ok_and(|info| info.size == size)
        })?;
        let durable = start.elapsed().as_secs_f64();
        let cpu = m.stats()?.cpu_secs - before.cpu_secs;
        drop(m);
        self.block_on(self.client.delete(&key))
            .map_err(|e| Skip::Failed(e.to_string()))?;
        let mib = size as f64 / MIB as f64;
        Ok(vec![mib / closed, mib / durable, cpu / (size as f64 / GIB)])
    }

    /// Raw counterpart of [`Bench::write`]: a multipart upload.
    pub fn raw_write(&self) -> Measured<Vec<Option<f64>>> {
        sys::sh("sync", TOOL_LIMIT)?;
        let rate = self.block_on(raw::write(self.client, "written/raw", self.sizes.big))?;
        Ok(vec![Some(rate), Some(rate), None])
    }

    // ---- listing ----

    /// `ls -l` of the flat folder on a fresh mount after dropping caches,
    /// then again at once; ms cold and warm.
    pub fn ls(&self, kind: Kind, variant: Variant) -> Measured<Vec<f64>> {
        let m = self.mount(kind, variant)?;
        let dir = m.path().join("ls");
        self.cold(&[])?;
        let mut out = Vec::new();
        for _ in 0..2 {
            let (secs, lines) = timed(|| {
                let o = sys::sh(&format!("ls -l '{}'", dir.display()), TOOL_LIMIT)?;
                Ok(o.stdout.iter().filter(|&&b| b == b'\n').count())
            })?;
            if lines != self.sizes.ls + 1 {
                return failed(format!(
                    "ls -l printed {lines} lines, not {}",
                    self.sizes.ls + 1
                ));
            }
            out.push(secs * 1000.0);
        }
        Ok(out)
    }

    /// Raw counterpart of [`Bench::ls`] listing only: one listing, all
    /// pages.
    pub fn raw_ls(&self) -> Measured<Vec<Option<f64>>> {
        let ms = self.block_on(raw::list(self.client, "ls/", self.sizes.ls))?;
        Ok(vec![Some(ms), Some(ms)])
    }

    /// Raw counterpart of [`Bench::ls`] with exact metadata: the listing
    /// and a HEAD per object, as many at once as cosmount starts with.
    pub fn raw_ls_exact(&self) -> Measured<Vec<Option<f64>>> {
        let concurrency = cosmount::fs::head_window::START;
        let ms = self.block_on(raw::list_and_head(
            self.client,
            "ls/",
            self.sizes.ls,
            concurrency,
        ))?;
        Ok(vec![Some(ms), Some(ms)])
    }

    /// `find` over the tree, cold then warm; seconds.
    pub fn find(&self, kind: Kind) -> Measured<Vec<f64>> {
        let m = self.mount(kind, Variant::Default)?;
        let dir = m.path().join("tree");
        self.cold(&[])?;
        let mut out = Vec::new();
        for _ in 0..2 {
            let (secs, lines) = timed(|| {
                let o = sys::sh(&format!("find '{}'", dir.display()), TOOL_LIMIT)?;
                Ok(o.stdout.iter().filter(|&&b| b == b'\n').count())
            })?;
            let want = self.sizes.tree_entries() + 1;
            if lines != want {
                return failed(format!("find printed {lines} lines, not {want}"));
            }
            out.push(secs);
        }
        Ok(out)
    }

    /// Raw counterpart of [`Bench::find`]: one listing per folder.
    pub fn raw_find(&self) -> Measured<Vec<Option<f64>>> {
        let (secs, n) = self.block_on(raw::walk(self.client, "tree/"))?;
        if n != self.sizes.tree_entries() {
            return failed(format!("raw walk saw {n} entries"));
        }
        Ok(vec![Some(secs), Some(secs)])
    }

    // ---- untar ----

    /// Requests the server answered so far.
    fn requests(&self) -> Measured<u64> {
        self.server.requests()
    }

    /// `tar -xf` of the small-file tarball into a new folder, owners, modes
    /// and times included (tar runs as root): seconds until tar exits,
    /// until every file is complete on the server, the server's requests
    /// per file (the completion check's own listings excluded), that time
    /// again (the floor row's), and the server's CPU per file until tar
    /// exits (a mount that uploads after close has not sent all by then).
    pub fn untar(&self, kind: Kind, variant: Variant, rep: usize) -> Measured<Vec<f64>> {
        let prefix = format!("untar-{}-{variant:?}-{rep}", kind.name());
        let m = self.mount(kind, variant)?;
        sys::sh("sync", TOOL_LIMIT)?;
        let dir = m.path().join(&prefix);
        std::fs::create_dir(&dir).map_err(|e| Skip::Failed(format!("mkdir: {e}")))?;
        let before = self.requests()?;
        let cpu_before = self.server.cpu_secs()?;
        let start = Instant::now();
        self.extract_into(&dir)?;
        let tar = start.elapsed().as_secs_f64();
        let server_cpu = self.server.cpu_secs()? - cpu_before;
        let mut checks = 0u64;
        let want_bytes: usize = self.tar_files.iter().map(|f| f.1).sum();
        let want = (self.tar_files.len(), want_bytes as u64);
        let list_prefix = format!("{prefix}/");
        sys::wait_for(
            "untarred files on the server",
            TOOL_LIMIT,
            Duration::from_millis(50),
            || {
                checks += 1;
                let keys = self
                    .block_on(raw::list_keys_sizes(self.client, &list_prefix))
                    .unwrap_or_default();
                let files = keys.iter().filter(|(k, _)| !k.ends_with('/'));
                (files.clone().count(), files.map(|f| f.1).sum::<u64>()) == want
            },
        )?;
        let durable = start.elapsed().as_secs_f64();
        if variant == Variant::Observed && m.audit_lines() < self.tar_files.len() {
            return failed(format!(
                "the audit log has {} lines for {} files",
                m.audit_lines(),
                self.tar_files.len()
            ));
        }
        drop(m);
        // Each completion check lists the prefix: a page per 1,000 keys.
        let check_pages = checks * (self.tar_files.len() as u64 / 1000 + 1);
        let made = (self.requests()? - before).saturating_sub(check_pages);
        self.block_on(raw::delete_prefix(self.client, &list_prefix))?;
        Ok(vec![
            tar,
            durable,
            made as f64 / self.tar_files.len() as f64,
            durable,
            self.per_file_ms(server_cpu),
        ])
    }

    /// `tar -xf` of the tarball into `dir` (as root: owners, modes, times).
    fn extract_into(&self, dir: &Path) -> Measured<()> {
        let script = format!(
            "tar -xf '{}' -C '{}'",
            self.tarball.display(),
            dir.display()
        );
        sys::sh(&script, TOOL_LIMIT).map(|_| ())
    }

    /// The top folders of the tree the cat workload reads, and their
    /// file count.
    fn cat_set(&self) -> (Vec<String>, usize) {
        let (top, b, c) = self.sizes.tree;
        let folders = top.min(self.sizes.cat.div_ceil(b * c)).max(1);
        let dirs = (0..folders).map(|i| format!("tree/d{i:02}")).collect();
        (dirs, folders * b * c)
    }

    /// Files in [`Bench::cat_set`].
    pub fn cat_files_count(&self) -> usize {
        self.cat_set().1
    }

    /// `find -type f -exec cat` over part of the tree on a fresh mount:
    /// seconds, and the server's requests per file.
    pub fn cat_files(&self, kind: Kind, variant: Variant) -> Measured<Vec<f64>> {
        let m = self.mount(kind, variant)?;
        self.cold(&[])?;
        let (dirs, files) = self.cat_set();
        let paths: Vec<String> = dirs
            .iter()
            .map(|d| format!("'{}'", m.path().join(d).display()))
            .collect();
        let before = self.requests()?;
        let (secs, bytes) = timed(|| {
            let o = sys::sh(
                &format!("find {} -type f -exec cat {{}} + | wc -c", paths.join(" ")),
                TOOL_LIMIT,
            )?;
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
        })?;
        if bytes != files.to_string() {
            return failed(format!("cat read {bytes} bytes, not {files}"));
        }
        let made = self.requests()?.saturating_sub(before);
        Ok(vec![secs, made as f64 / files as f64])
    }

    /// Raw counterpart of [`Bench::untar`]: the files PUT one at a time;
    /// then the floor for a mount, those PUTs plus tar's kernel round trips
    /// into a FUSE filesystem that stores nothing.
    pub fn raw_untar(&self) -> Measured<Vec<Option<f64>>> {
        let cpu_before = self.server.cpu_secs()?;
        let secs = self.block_on(raw::put_files(self.client, "untar-raw/", &self.tar_files))?;
        let server_cpu = self.server.cpu_secs()? - cpu_before;
        self.block_on(raw::delete_prefix(self.client, "untar-raw/"))?;
        let round_trips = self.untar_into_null_fuse()?;
        Ok(vec![
            Some(secs),
            Some(secs),
            None,
            Some(secs + round_trips),
            Some(self.per_file_ms(server_cpu)),
        ])
    }

    /// `secs` per file of the tarball, in milliseconds.
    fn per_file_ms(&self, secs: f64) -> f64 {
        1000.0 * secs / self.tar_files.len() as f64
    }

    /// Seconds `tar -xf` takes into a fresh [`nullfs`] mount.
    fn untar_into_null_fuse(&self) -> Measured<f64> {
        let dir = tempfile::Builder::new()
            .prefix("null-fuse-")
            .tempdir_in(self.env.work)
            .map_err(|e| Skip::Failed(format!("null FUSE mount point: {e}")))?;
        let session =
            nullfs::mount(dir.path()).map_err(|e| Skip::Failed(format!("null FUSE mount: {e}")))?;
        let (secs, extracted) = timed(|| Ok(self.extract_into(dir.path())))?;
        session
            .umount_and_join()
            .map_err(|e| Skip::Failed(format!("null FUSE unmount: {e}")))?;
        extracted.map(|_| secs)
    }
}

/// Reads `files` with one `dd bs=1M` each, all at once; bytes read.
fn dd_read(files: &[PathBuf]) -> Measured<u64> {
    let children = files
        .iter()
        .map(|f| {
            Command::new("timeout")
                .arg(TOOL_LIMIT.as_secs().to_string())
                .arg("dd")
                .arg(format!("if={}", f.display()))
                .args(["of=/dev/null", "bs=1M"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Skip::Failed(format!("dd: {e}")))
        })
        .collect::<Measured<Vec<_>>>()?;
    let mut total = 0;
    for child in children {
        let out = child
            .wait_with_output()
            .map_err(|e| Skip::Failed(format!("dd: {e}")))?;
        let text = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return failed(format!("dd: {}", text.trim()));
        }
        total += text
            .lines()
            .find(|l| l.contains(" bytes"))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| Skip::Failed(format!("dd said {text:?}")))?;
    }
    Ok(total)
}

/// Writes the small-file tree the untar workload extracts: `count` files of
/// 100 to 4,099 bytes in 40 folders; returns the tarball and its files.
pub fn make_tarball(work: &Path, count: usize) -> Measured<(PathBuf, Vec<(String, usize)>)> {
    let src = work.join("tarsrc");
    let mut files = Vec::new();
    for i in 0..count {
        let name = format!("d{:02}/f{i:04}", i % 40);
        let len = 100 + (i * 7919) % 4000;
        let path = src.join(&name);
        std::fs::create_dir_all(path.parent().unwrap_or(&src))
            .and_then(|_| std::fs::write(&path, &raw::pattern(len)[..]))
            .map_err(|e| Skip::Failed(format!("tarball source: {e}")))?;
        files.push((name, len));
    }
    let tarball = work.join("small.tar");
    sys::sh(
        &format!(
            "cd '{}' && tar -cf '{}' d*",
            src.display(),
            tarball.display()
        ),
        TOOL_LIMIT,
    )?;
    Ok((tarball, files))
}

/// Seeds the bucket: the large objects, the flat `ls/` folder and the
/// `tree/` for find.
pub async fn seed(client: &HttpClient, sizes: &Sizes) -> Measured<()> {
    for key in sizes.big_keys() {
        raw::put_large(client, &key, sizes.big).await?;
    }
    let one = raw::pattern(1);
    raw::put_many(client, sizes.ls, |i| format!("ls/f{i:05}"), |_| one.clone()).await?;
    let (_, b, c) = sizes.tree;
    raw::put_many(
        client,
        sizes.tree_files(),
        |i| {
            let (top, rest) = (i / (b * c), i % (b * c));
            format!("tree/d{top:02}/d{:02}/f{:03}", rest / c, rest % c)
        },
        |_| one.clone(),
    )
    .await
}
