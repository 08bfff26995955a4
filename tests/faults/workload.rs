//! The fault workload, shared by the CI test (`tests/faults/mount.rs`) and
//! the harness (`benches/faults.rs`, run by `scripts/faults`): write files
//! of seeded sizes (log-uniform between a minimum and a maximum, so small
//! and large files both count) through a mount, read them back and compare
//! every byte, rename some, delete some, and check the bucket holds exactly
//! what the application was told it holds. Every failed call is an
//! application-visible error; every byte that differs is a corrupted byte.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to do.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Files written.
    pub files: usize,
    /// Smallest file.
    pub min_size: u64,
    /// Largest file.
    pub max_size: u64,
    /// Seed of sizes and contents.
    pub seed: u64,
    /// Threads working at once.
    pub threads: usize,
    /// Files renamed (the first ones).
    pub renames: usize,
    /// Files deleted (the ones after the renamed).
    pub deletes: usize,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Calls that failed, with what and why.
    pub errors: Vec<String>,
    /// Bytes read back that differ from what was written (a length
    /// difference counts its bytes).
    pub corrupted_bytes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes read and compared.
    pub bytes_read: u64,
    /// Wall time of each phase.
    pub phases: Vec<(&'static str, Duration)>,
}

/// Where file `i` is written.
pub fn path_of(i: usize) -> String {
    format!("d{:02}/f{i:04}.bin", i % 10)
}

/// Where file `i` is after the rename phase.
pub fn renamed_path(i: usize) -> String {
    format!("renamed/f{i:04}.bin")
}

impl Workload {
    /// The size of file `i`: log-uniform in `min_size..=max_size`.
    pub fn size(&self, i: usize) -> u64 {
        let mut rng = Rng::new(self.seed, i as u64, 1);
        let (lo, hi) = ((self.min_size as f64).ln(), (self.max_size as f64).ln());
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo + u * (hi - lo)).exp() as u64).clamp(self.min_size, self.max_size)
    }

    /// The content of file `i`.
    pub fn content(&self, i: usize) -> Vec<u8> {
        let len = self.size(i) as usize;
        let mut rng = Rng::new(self.seed, i as u64, 2);
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&rng.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Key → content of every file the bucket must hold at the end.
    pub fn final_paths(&self) -> BTreeMap<String, usize> {
        (0..self.files)
            .filter(|&i| !self.is_deleted(i))
            .map(|i| {
                let path = if i < self.renames {
                    renamed_path(i)
                } else {
                    path_of(i)
                };
                (path, i)
            })
            .collect()
    }

    fn is_deleted(&self, i: usize) -> bool {
        (self.renames..self.renames + self.deletes).contains(&i)
    }

    /// Creates the directories.
    pub fn prepare(&self, root: &Path, out: &mut Outcome) {
        let dirs = (0..10)
            .map(|d| format!("d{d:02}"))
            .chain(["renamed".into()]);
        for dir in dirs {
            if let Err(e) = fs::create_dir_all(root.join(&dir)) {
                out.errors.push(format!("mkdir {dir}: {e}"));
            }
        }
    }

    /// Writes every file (each closed with its result checked).
    pub fn write(&self, root: &Path, out: &mut Outcome) {
        let started = Instant::now();
        let written = Mutex::new(0u64);
        let errors = self.parallel(self.files, |i| {
            let data = self.content(i);
            write_file(&root.join(path_of(i)), &data)?;
            *written.lock().unwrap() += data.len() as u64;
            Ok(())
        });
        out.errors.extend(errors);
        out.bytes_written += written.into_inner().unwrap();
        out.phases.push(("write", started.elapsed()));
    }

    /// Reads every file back where it was written and compares it.
    pub fn read_written(&self, root: &Path, out: &mut Outcome) {
        let paths = (0..self.files).map(|i| (path_of(i), i)).collect();
        self.read(root, out, paths, "read");
    }

    /// Reads every file that must exist at the end and compares it.
    pub fn read_final(&self, root: &Path, out: &mut Outcome) {
        let paths = self.final_paths().into_iter().collect();
        self.read(root, out, paths, "verify");
    }

    fn read(
        &self,
        root: &Path,
        out: &mut Outcome,
        paths: Vec<(String, usize)>,
        phase: &'static str,
    ) {
        let started = Instant::now();
        let tally = Mutex::new((0u64, 0u64));
        let errors = self.parallel(paths.len(), |n| {
            let (path, i) = &paths[n];
            let got = read_file(&root.join(path)).map_err(|e| format!("read {path}: {e}"))?;
            let bad = differing_bytes(&got, &self.content(*i));
            let mut t = tally.lock().unwrap();
            t.0 += got.len() as u64;
            t.1 += bad;
            Ok(())
        });
        let (read, bad) = tally.into_inner().unwrap();
        out.bytes_read += read;
        out.corrupted_bytes += bad;
        out.errors.extend(errors);
        out.phases.push((phase, started.elapsed()));
    }

    /// Renames the first `renames` files into `renamed/`.
    pub fn rename(&self, root: &Path, out: &mut Outcome) {
        let started = Instant::now();
        let errors = self.parallel(self.renames, |i| {
            fs::rename(root.join(path_of(i)), root.join(renamed_path(i)))
                .map_err(|e| format!("rename {}: {e}", path_of(i)))
        });
        out.errors.extend(errors);
        out.phases.push(("rename", started.elapsed()));
    }

    /// Deletes the `deletes` files after the renamed ones.
    pub fn delete(&self, root: &Path, out: &mut Outcome) {
        let started = Instant::now();
        let errors = self.parallel(self.deletes, |n| {
            let path = path_of(self.renames + n);
            fs::remove_file(root.join(&path)).map_err(|e| format!("unlink {path}: {e}"))?;
            match fs::metadata(root.join(&path)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("stat {path} after unlink: {e}")),
                Ok(_) => Err(format!("{path} still exists after unlink")),
            }
        });
        out.errors.extend(errors);
        out.phases.push(("delete", started.elapsed()));
    }

    /// Runs `job(0..n)` on the workload's threads; returns the errors.
    fn parallel(&self, n: usize, job: impl Fn(usize) -> Result<(), String> + Sync) -> Vec<String> {
        let errors = Mutex::new(Vec::new());
        let threads = self.threads.max(1);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (job, errors) = (&job, &errors);
                s.spawn(move || {
                    for i in (t..n).step_by(threads) {
                        if let Err(e) = job(i) {
                            errors.lock().unwrap().push(e);
                        }
                    }
                });
            }
        });
        errors.into_inner().unwrap()
    }
}

/// Creates `path` with `data`: written in 1 MiB calls, then closed with
/// the result of close(2) checked (that is where an upload fails).
pub fn write_file(path: &Path, data: &[u8]) -> Result<(), String> {
    let name = path.display();
    let mut f = File::create(path).map_err(|e| format!("create {name}: {e}"))?;
    for chunk in data.chunks(1 << 20) {
        f.write_all(chunk)
            .map_err(|e| format!("write {name}: {e}"))?;
    }
    // SAFETY: closing a descriptor we own exactly once.
    if unsafe { libc::close(f.into_raw_fd()) } != 0 {
        return Err(format!("close {name}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Reads a whole file in 1 MiB calls.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Bytes of `got` that differ from `want`, the length difference included.
pub fn differing_bytes(got: &[u8], want: &[u8]) -> u64 {
    if got == want {
        return 0;
    }
    let common = got.iter().zip(want).filter(|(a, b)| a != b).count() as u64;
    common + got.len().abs_diff(want.len()) as u64
}

/// xorshift64*, seeded by (seed, file, stream): fast and reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, file: u64, stream: u64) -> Rng {
        let mut x = seed ^ file.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stream.rotate_left(32);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((x ^ (x >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn sizes_are_seeded_and_log_uniform() {
    let w = Workload {
        files: 1000,
        min_size: 1 << 10,
        max_size: 8 << 20,
        seed: 1,
        threads: 1,
        renames: 100,
        deletes: 100,
    };
    let sizes: Vec<u64> = (0..1000).map(|i| w.size(i)).collect();
    assert_eq!(sizes, (0..1000).map(|i| w.size(i)).collect::<Vec<_>>());
    assert!(sizes.iter().all(|&s| (1 << 10..=8 << 20).contains(&s)));
    let small = sizes.iter().filter(|&&s| s < 64 << 10).count();
    assert!((350..650).contains(&small), "{small} of 1000 under 64 KiB");
    assert_eq!(w.content(3).len() as u64, w.size(3));
    assert_eq!(w.final_paths().len(), 900);
}
