//! Staging files: the new content of a file changed anywhere but at its
//! end, held on local disk. Only written ranges are stored (sparse file);
//! the rest still comes from the base object (the version that was open),
//! or reads as zeros past a truncation. The staging folder has a size bound
//! shared by all staged files.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ranges::RangeSet;
use crate::cache::ObjectVersion;

/// The folder staging files live in, and its size bound.
#[derive(Debug)]
pub struct StagingArea {
    dir: PathBuf,
    limit: u64,
    used: AtomicU64,
}

/// Where a byte range of a staged file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Written locally: in the staging file.
    Local(Range<u64>),
    /// Unchanged: the same range of the base object.
    Base(Range<u64>),
    /// Past a truncation or a hole: zeros.
    Zero(Range<u64>),
}

impl StagingArea {
    /// A staging area in `dir` (created if missing) holding at most `limit` bytes.
    pub fn new(dir: &Path, limit: u64) -> io::Result<Arc<StagingArea>> {
        std::fs::create_dir_all(dir)?;
        Ok(Arc::new(StagingArea {
            dir: dir.to_path_buf(),
            limit,
            used: AtomicU64::new(0),
        }))
    }

    /// Bytes held right now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn charge(&self, bytes: u64) -> io::Result<()> {
        let mut current = self.used.load(Ordering::Relaxed);
        loop {
            let next = current + bytes;
            if next > self.limit {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "the staging folder {} is full ({} bytes in use)",
                        self.dir.display(),
                        current
                    ),
                ));
            }
            match self
                .used
                .compare_exchange(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    fn refund(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The new content of one file.
#[derive(Debug)]
pub struct StagedFile {
    area: Arc<StagingArea>,
    file: File,
    base: Option<ObjectVersion>,
    /// Bytes of the base still valid at their offsets (shrinks on truncate).
    base_len: u64,
    size: u64,
    dirty: RangeSet,
    charged: u64,
}

impl StagedFile {
    /// A staged copy of `base` (or of an empty file), nothing written yet.
    pub fn new(area: Arc<StagingArea>, base: Option<ObjectVersion>) -> io::Result<StagedFile> {
        let file = tempfile::tempfile_in(&area.dir)?;
        let size = base.as_ref().map_or(0, |b| b.size);
        Ok(StagedFile {
            area,
            file,
            base_len: size,
            base,
            size,
            dirty: RangeSet::default(),
            charged: 0,
        })
    }

    /// Current size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object the unchanged ranges come from.
    pub fn base(&self) -> Option<&ObjectVersion> {
        self.base.as_ref()
    }

    /// Writes `data` at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset + data.len() as u64;
        let mut grown = self.dirty.clone();
        grown.insert(offset..end);
        let extra = grown.total().saturating_sub(self.charged);
        self.area.charge(extra)?;
        if let Err(e) = self.file.write_all_at(data, offset) {
            self.area.refund(extra);
            return Err(e);
        }
        self.charged += extra;
        self.dirty = grown;
        self.size = self.size.max(end);
        Ok(())
    }

    /// Sets the size; bytes past it are gone, growth reads as zeros.
    pub fn truncate(&mut self, size: u64) -> io::Result<()> {
        self.dirty.truncate(size);
        self.base_len = self.base_len.min(size);
        self.size = size;
        self.file.set_len(size)?;
        let held = self.dirty.total();
        if held < self.charged {
            self.area.refund(self.charged - held);
            self.charged = held;
        }
        Ok(())
    }

    /// Where each part of `range` (clamped to the size) comes from.
    pub fn pieces(&self, range: Range<u64>) -> Vec<Piece> {
        let range = range.start.min(self.size)..range.end.min(self.size);
        let mut out = Vec::new();
        for (r, dirty) in self.dirty.split(range) {
            if dirty {
                out.push(Piece::Local(r));
                continue;
            }
            if r.start < self.base_len {
                let split = r.end.min(self.base_len);
                out.push(Piece::Base(r.start..split));
                if split < r.end {
                    out.push(Piece::Zero(split..r.end));
                }
            } else if !r.is_empty() {
                out.push(Piece::Zero(r));
            }
        }
        out
    }

    /// Whether `range` is exactly the base's bytes (nothing written, not
    /// truncated away), so it can be copied server-side.
    pub fn is_unchanged(&self, range: &Range<u64>) -> bool {
        range.end <= self.base_len && !self.dirty.overlaps(range)
    }

    /// Reads locally written bytes.
    pub fn read_local(&self, range: Range<u64>) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; (range.end - range.start) as usize];
        self.file.read_exact_at(&mut buf, range.start)?;
        Ok(buf)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        self.area.refund(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(size: u64) -> ObjectVersion {
        ObjectVersion {
            key: "k".into(),
            etag: "e".into(),
            size,
        }
    }

    #[test]
    fn tracks_pieces_through_writes_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::new(dir.path(), 1 << 20).unwrap();
        let mut f = StagedFile::new(area.clone(), Some(base(100))).unwrap();
        f.write(10, b"hello").unwrap();
        assert_eq!(
            f.pieces(0..100),
            vec![
                Piece::Base(0..10),
                Piece::Local(10..15),
                Piece::Base(15..100)
            ]
        );
        assert_eq!(f.read_local(10..15).unwrap(), b"hello");
        f.truncate(50).unwrap();
        f.truncate(80).unwrap();
        assert_eq!(
            f.pieces(0..200),
            vec![
                Piece::Base(0..10),
                Piece::Local(10..15),
                Piece::Base(15..50),
                Piece::Zero(50..80)
            ]
        );
        assert!(f.is_unchanged(&(20..50)));
        assert!(!f.is_unchanged(&(20..51)));
        assert!(!f.is_unchanged(&(0..20)));
        f.write(120, b"x").unwrap();
        assert_eq!(f.size(), 121);
        assert_eq!(area.used(), 6);
        drop(f);
        assert_eq!(area.used(), 0);
    }

    #[test]
    fn refuses_writes_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::new(dir.path(), 10).unwrap();
        let mut f = StagedFile::new(area.clone(), None).unwrap();
        f.write(0, b"12345678").unwrap();
        f.write(0, b"1234").unwrap();
        let err = f.write(8, b"abc").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(area.used(), 8);
    }
}
