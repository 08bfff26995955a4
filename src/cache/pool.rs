//! Reusable body buffers. Every block's memory comes from here and returns
//! here when its last `Bytes` clone is dropped, so a long read recycles the
//! same pages instead of churning the allocator: resident memory stays near
//! the budget, and no time is spent faulting in fresh pages (which costs
//! ~2 ms per MiB on this kind of VM). A pool keeps buffers whose size is a
//! multiple of its unit up to its largest size (a block, or a run of
//! blocks fetched by one GET); any other length (a small file, an object's
//! tail) gets a buffer of its own length and is freed, so the memory budget
//! counts what it really holds. The most a pool may keep idle is reserved
//! from the memory budget for its lifetime, so idle buffers are inside
//! `--cache-size` too; past it, the buffers idle the longest are freed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::budget::{MemoryBudget, Reservation};
use crate::cos::BodyBuffers;

/// Most of the budget one pool may hold back for idle buffers.
const MAX_IDLE_SHARE: u64 = 8;

/// Free buffers, the longest idle first.
#[derive(Debug, Default)]
struct Idle {
    buffers: VecDeque<Vec<u8>>,
    bytes: usize,
}

/// Free buffers of the sizes a pool keeps.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Idle>,
    /// Kept sizes are multiples of this...
    unit: usize,
    /// ...up to this.
    largest: usize,
    /// Most idle bytes kept (what `_held` reserves).
    max_idle: usize,
    /// Bytes of the buffers on loan now.
    loaned: AtomicU64,
    /// The budget held for `max_idle` idle bytes.
    _held: Option<Reservation>,
}

/// A buffer on loan: returned to its pool when dropped.
struct Loan {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Loan {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        self.pool
            .loaned
            .fetch_sub(self.buf.capacity() as u64, Ordering::Relaxed);
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

impl BufferPool {
    /// A pool of `buffer_size` buffers keeping at most `max_free` idle ones
    /// (fewer when that would take more than an eighth of `budget`), whose
    /// memory it reserves from `budget` now.
    pub fn new(budget: &MemoryBudget, buffer_size: usize, max_free: usize) -> Arc<BufferPool> {
        let size = buffer_size.max(1);
        BufferPool::sized(budget, size, size, max_free.saturating_mul(size))
    }

    /// A pool of buffers whose sizes are multiples of `unit` up to
    /// `largest`, keeping at most `max_idle` idle bytes (less when that
    /// would take more than an eighth of `budget`), which it reserves from
    /// `budget` now.
    pub fn sized(
        budget: &MemoryBudget,
        unit: usize,
        largest: usize,
        max_idle: usize,
    ) -> Arc<BufferPool> {
        let unit = unit.max(1);
        let share = (budget.total() / MAX_IDLE_SHARE) as usize;
        let max_idle = max_idle.min(share) / unit * unit;
        let held = (max_idle > 0)
            .then(|| budget.try_reserve(max_idle as u64))
            .flatten();
        Arc::new(BufferPool {
            free: Mutex::new(Idle::default()),
            unit,
            largest: largest.max(unit),
            max_idle: if held.is_some() { max_idle } else { 0 },
            loaned: AtomicU64::new(0),
            _held: held,
        })
    }

    /// Whether buffers of `capacity` are kept for reuse.
    fn keeps(&self, capacity: usize) -> bool {
        capacity > 0
            && capacity % self.unit == 0
            && capacity <= self.largest
            && capacity <= self.max_idle
    }

    /// Keeps `buf` for reuse if it is of a kept size and there is room.
    pub fn give_back(&self, mut buf: Vec<u8>) {
        if !self.keeps(buf.capacity()) {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.bytes += buf.capacity();
        free.buffers.push_back(buf);
        while free.bytes > self.max_idle {
            let oldest = free.buffers.pop_front().expect("bytes counts buffers");
            free.bytes -= oldest.capacity();
        }
    }

    /// An idle buffer of exactly `len` bytes, the most recently returned.
    pub fn take(&self, len: usize) -> Option<Vec<u8>> {
        if !self.keeps(len) {
            return None;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let at = free.buffers.iter().rposition(|b| b.capacity() == len)?;
        let buf = free.buffers.remove(at)?;
        free.bytes -= buf.capacity();
        Some(buf)
    }

    /// Idle buffers held.
    pub fn idle(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.buffers.len()
    }

    /// Bytes of idle buffers held.
    pub fn idle_bytes(&self) -> u64 {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.bytes as u64
    }

    /// Bytes of the buffers on loan now (frozen and not yet dropped).
    pub fn loaned_bytes(&self) -> u64 {
        self.loaned.load(Ordering::Relaxed)
    }

    /// Bytes held back from the budget for idle buffers.
    pub fn held_bytes(&self) -> u64 {
        self.max_idle as u64
    }
}

/// Hands out pooled buffers; `Arc` so frozen bytes can find their way home.
#[derive(Debug, Clone)]
pub struct PoolBuffers(pub Arc<BufferPool>);

impl BodyBuffers for PoolBuffers {
    fn buffer(&self, len: usize) -> Vec<u8> {
        self.0.take(len).unwrap_or_else(|| Vec::with_capacity(len))
    }

    fn freeze(&self, buf: Vec<u8>) -> Bytes {
        self.0
            .loaned
            .fetch_add(buf.capacity() as u64, Ordering::Relaxed);
        Bytes::from_owner(Loan {
            buf,
            pool: self.0.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_last_clone_drops() {
        let pool = BufferPool::new(&MemoryBudget::new(1 << 20), 1024, 2);
        let buffers = PoolBuffers(pool.clone());
        let mut buf = buffers.buffer(1024);
        buf.extend_from_slice(&[7; 1024]);
        let ptr = buf.as_ptr();
        let bytes = buffers.freeze(buf);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.idle(), 0, "a slice still holds it");
        drop(slice);
        assert_eq!(pool.idle(), 1);
        let reused = buffers.buffer(1024);
        assert_eq!(reused.as_ptr(), ptr, "the same memory is reused");
        assert_eq!(
            buffers.buffer(10).capacity(),
            10,
            "a short body gets a buffer of its own size, not a pooled one"
        );
        assert!(
            buffers.buffer(5000).capacity() >= 5000,
            "oversized requests are allocated"
        );
    }

    #[test]
    fn idle_buffers_are_inside_the_budget() {
        let budget = MemoryBudget::new(64 << 20);
        let pool = BufferPool::new(&budget, 1 << 20, 4);
        assert_eq!(budget.available(), 60 << 20, "4 idle MiB held back");
        assert_eq!(pool.held_bytes(), 4 << 20);
        let small = MemoryBudget::new(8 << 20);
        let pool = BufferPool::new(&small, 1 << 20, 4);
        assert_eq!(
            pool.held_bytes(),
            1 << 20,
            "at most an eighth of the budget"
        );
        assert_eq!(small.available(), 7 << 20);
        drop(pool);
        assert_eq!(small.available(), 8 << 20, "returned with the pool");
    }

    #[test]
    fn run_sized_buffers_are_kept_up_to_the_idle_bound() {
        const MB: usize = 1 << 20;
        let budget = MemoryBudget::new(128 << 20);
        let pool = BufferPool::sized(&budget, MB, 16 * MB, 16 * MB);
        let buffers = PoolBuffers(pool.clone());
        let filled = |len: usize| {
            let mut buf = buffers.buffer(len);
            buf.resize(len, 1);
            buffers.freeze(buf)
        };
        let (run, block) = (filled(16 * MB), filled(MB));
        let odd = filled(MB + 10);
        assert_eq!(pool.loaned_bytes(), (18 * MB + 10) as u64);
        let blocks: Vec<Bytes> = (0..16).map(|i| run.slice(i * MB..(i + 1) * MB)).collect();
        drop((run, odd));
        assert_eq!(pool.idle(), 0, "its blocks still hold the run");
        drop(blocks);
        assert_eq!(pool.idle_bytes(), 16 * MB as u64);
        drop(block);
        assert_eq!(
            pool.idle_bytes(),
            MB as u64,
            "past the bound, the longest idle is freed"
        );
        assert_eq!(pool.loaned_bytes(), 0);
        let again = filled(16 * MB);
        let again_ptr = again.as_ptr();
        drop(again);
        assert_eq!(pool.idle_bytes(), 16 * MB as u64, "the 1 MiB one went");
        let reused = buffers.buffer(16 * MB);
        assert_eq!(reused.as_ptr(), again_ptr, "reused");
    }
}
