//! The on-disk object format: `data || JSON record || u32 LE record length ||
//! MAGIC`. Data starts at offset 0 so ranges are plain offsets, and the record
//! (key and metadata) travels in the same file, so one `rename` publishes
//! both atomically. Files are only ever created under a temporary name and
//! renamed into place; a published file is never modified.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cos::crc64::Crc64;

/// Marks the end of every file written by the store.
const MAGIC: &[u8; 8] = b"COSMNT01";
/// Bytes after the record: its length and the magic.
const FOOTER: u64 = 4 + MAGIC.len() as u64;
/// Largest record accepted when reading (keys ≤ 850 bytes, meta ≤ 2 KiB,
/// JSON escaping at most ×6).
const MAX_RECORD: u64 = 64 * 1024;

/// What the writer learned about the bytes it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    /// Number of data bytes.
    pub size: u64,
    /// MD5 of the data.
    pub md5: [u8; 16],
    /// CRC-64/XZ of the data.
    pub crc64: u64,
}

/// A file being written under a temporary name; removed on drop unless
/// [`TempFile::seal`] closed it.
pub struct TempFile {
    path: PathBuf,
    file: File,
    md5: Md5,
    crc: Crc64,
    size: u64,
    persisted: bool,
}

impl TempFile {
    /// Creates a new, uniquely named file in `dir`.
    pub fn create(dir: &Path) -> io::Result<TempFile> {
        let path = dir.join(format!("{:032x}.tmp", rand::random::<u128>()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempFile {
            path,
            file,
            md5: Md5::new(),
            crc: Crc64::default(),
            size: 0,
            persisted: false,
        })
    }

    /// Appends data bytes, hashing them.
    pub fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.md5.update(data);
        self.crc.update(data);
        self.size += data.len() as u64;
        Ok(())
    }

    /// Appends `len` data bytes read from `src` at `offset` (kernel-side copy
    /// where possible), hashing them.
    pub fn copy_from(&mut self, src: &File, offset: u64, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; (1 << 20).min(len as usize)];
        let mut done = 0;
        while done < len {
            let n = buf.len().min((len - done) as usize);
            src.read_exact_at(&mut buf[..n], offset + done)?;
            self.write_data(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    /// Appends already-hashed bytes with a kernel-side copy: the caller
    /// supplies the digests (multipart assembly reuses part CRCs).
    pub fn append_raw(&mut self, src: &File, offset: u64, len: u64) -> io::Result<()> {
        let mut reader = src;
        reader.seek(SeekFrom::Start(offset))?;
        let copied = io::copy(&mut Read::take(reader, len), &mut self.file)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "source file is shorter than its record",
            ));
        }
        self.size += len;
        Ok(())
    }

    /// Digests of everything written with [`TempFile::write_data`]; call it
    /// once, after the last write (it resets the hashers).
    pub fn digests(&mut self) -> Digests {
        Digests {
            size: self.size,
            md5: std::mem::take(&mut self.md5).finalize().into(),
            crc64: std::mem::take(&mut self.crc).finish(),
        }
    }

    /// Bytes of data written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the record and closes the file; with `sync`, everything
    /// reaches the disk. The result still has its temporary name.
    pub fn seal<R: Serialize>(mut self, record: &R, sync: bool) -> io::Result<Sealed> {
        let json = serde_json::to_vec(record).map_err(io::Error::other)?;
        self.file.write_all(&json)?;
        self.file.write_all(&(json.len() as u32).to_le_bytes())?;
        self.file.write_all(MAGIC)?;
        if sync {
            self.file.sync_all()?;
        }
        self.persisted = true;
        Ok(Sealed {
            path: std::mem::take(&mut self.path),
            renamed: false,
        })
    }
}

/// A complete file under its temporary name; removed on drop unless
/// [`Sealed::rename_to`] published it.
pub struct Sealed {
    path: PathBuf,
    renamed: bool,
}

impl Sealed {
    /// Atomically publishes the file as `dest`, replacing any previous one.
    pub fn rename_to(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A published file: its data length and its record.
pub struct Stored<R> {
    /// The open file (data at offset 0).
    pub file: File,
    /// Number of data bytes.
    pub data_len: u64,
    /// The record written with the data.
    pub record: R,
}

/// Opens a published file and reads its record; `None` when it is absent.
pub fn open<R: DeserializeOwned>(path: &Path) -> io::Result<Option<Stored<R>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (data_len, record) = read_record(&file)?;
    Ok(Some(Stored {
        file,
        data_len,
        record,
    }))
}

/// Reads the record at the end of `file`; returns (data length, record).
pub fn read_record<R: DeserializeOwned>(file: &File) -> io::Result<(u64, R)> {
    let len = file.metadata()?.len();
    if len < FOOTER {
        return Err(corrupt("file is shorter than its footer"));
    }
    let mut footer = [0u8; FOOTER as usize];
    file.read_exact_at(&mut footer, len - FOOTER)?;
    if &footer[4..] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let record_len = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) as u64;
    if record_len > MAX_RECORD || record_len + FOOTER > len {
        return Err(corrupt("bad record length"));
    }
    let data_len = len - FOOTER - record_len;
    let mut json = vec![0u8; record_len as usize];
    file.read_exact_at(&mut json, data_len)?;
    let record = serde_json::from_slice(&json).map_err(|e| corrupt(&e.to_string()))?;
    Ok((data_len, record))
}

/// Reads `len` bytes at `offset`.
pub fn read_range(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Writes a small record-only file atomically (temp name, then rename).
pub fn write_record_file<R: Serialize>(
    tmp_dir: &Path,
    dest: &Path,
    record: &R,
    sync: bool,
) -> io::Result<()> {
    TempFile::create(tmp_dir)?
        .seal(record, sync)?
        .rename_to(dest)
}

fn corrupt(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt store file: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_data_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TempFile::create(dir.path()).unwrap();
        t.write_data(b"hello ").unwrap();
        t.write_data(b"world").unwrap();
        let d = t.digests();
        assert_eq!(d.size, 11);
        assert_eq!(d.crc64, crate::cos::crc64::checksum(b"hello world"));
        assert_eq!(hex::encode(d.md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        let dest = dir.path().join("obj");
        t.seal(&"the \u{1} record".to_string(), true)
            .unwrap()
            .rename_to(&dest)
            .unwrap();
        let s: Stored<String> = open(&dest).unwrap().unwrap();
        assert_eq!(s.data_len, 11);
        assert_eq!(s.record, "the \u{1} record");
        assert_eq!(read_range(&s.file, 6, 5).unwrap(), b"world");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        assert!(
            open::<String>(&dir.path().join("missing"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn dropping_an_unpersisted_file_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TempFile::create(dir.path()).unwrap();
        t.write_data(b"partial").unwrap();
        drop(t);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn rejects_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        fs::write(&p, b"not a store file at all").unwrap();
        assert!(open::<String>(&p).is_err());
    }
}
