//! What the filesystem holds right now, read on demand (metrics, status).

use super::{Fs, lock};
use crate::cache::{CacheStats, DiskTier};
use crate::cos::ObjectClient;

/// A snapshot of the filesystem's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsGauges {
    /// Inodes known to the kernel (and to us).
    pub inodes: u64,
    /// Open file handles.
    pub open_files: u64,
    /// Open directory handles.
    pub open_dirs: u64,
    /// Files with changes not yet uploaded, or being uploaded.
    pub files_changing: u64,
    /// Bytes of the memory budget (`--cache-size`).
    pub budget_bytes: u64,
    /// Bytes of the budget in use (cached blocks and write buffers).
    pub budget_used_bytes: u64,
    /// Bytes of cached read blocks.
    pub cached_bytes: u64,
    /// Bytes in the staging folder.
    pub staging_bytes: u64,
    /// HEADs a listing may have in flight now (the learned window).
    pub head_window: u64,
}

impl<C: ObjectClient> Fs<C> {
    /// What the filesystem holds now.
    pub fn gauges(&self) -> FsGauges {
        FsGauges {
            inodes: lock(&self.inodes).len() as u64,
            open_files: lock(&self.files).len() as u64,
            open_dirs: lock(&self.dirs).len() as u64,
            files_changing: self.writes.len() as u64,
            budget_bytes: self.budget.total(),
            budget_used_bytes: self.budget.total() - self.budget.available(),
            cached_bytes: self.cache.held_bytes(),
            staging_bytes: self.staging.used(),
            head_window: self.head_window.size() as u64,
        }
    }

    /// The read cache's disk tier, if `--cache-dir` gave one.
    pub fn disk_cache(&self) -> Option<&DiskTier> {
        self.cache.disk()
    }

    /// The read cache's counters.
    pub fn cache_stats(&self) -> &CacheStats {
        self.cache.stats()
    }
}
