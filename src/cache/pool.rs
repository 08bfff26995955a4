//! Reusable block buffers. Every full-size block's memory comes from here
//! and returns here when its last `Bytes` clone is dropped (a shorter body,
//! such as a small file or an object's tail, gets a buffer of its own
//! length, so the memory budget counts what it really holds), so a long read
//! recycles the same pages instead of churning the allocator: resident
//! memory stays near the budget, and no time is spent faulting in fresh
//! pages (which costs ~2 ms per MiB on this kind of VM). The most a pool
//! may keep idle is reserved from the memory budget for its lifetime, so
//! idle buffers are inside `--cache-size` too.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::budget::{MemoryBudget, Reservation};
use crate::cos::BodyBuffers;

/// Most of the budget one pool may hold back for idle buffers.
const MAX_IDLE_SHARE: u64 = 8;

/// Free buffers of one size.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    buffer_size: usize,
    max_free: usize,
    /// The budget held for `max_free` idle buffers.
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
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

impl BufferPool {
    /// A pool of `buffer_size` buffers keeping at most `max_free` idle ones
    /// (fewer when that would take more than an eighth of `budget`), whose
    /// memory it reserves from `budget` now.
    pub fn new(budget: &MemoryBudget, buffer_size: usize, max_free: usize) -> Arc<BufferPool> {
        let size = buffer_size.max(1) as u64;
        let max_free = (max_free as u64).min(budget.total() / MAX_IDLE_SHARE / size);
        let held = (max_free > 0)
            .then(|| budget.try_reserve(max_free * size))
            .flatten();
        let max_free = if held.is_some() { max_free as usize } else { 0 };
        Arc::new(BufferPool {
            free: Mutex::new(Vec::new()),
            buffer_size,
            max_free,
            _held: held,
        })
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() != self.buffer_size {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.max_free {
            free.push(buf);
        }
    }

    /// Idle buffers held.
    pub fn idle(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Hands out pooled buffers; `Arc` so frozen bytes can find their way home.
#[derive(Debug, Clone)]
pub struct PoolBuffers(pub Arc<BufferPool>);

impl BodyBuffers for PoolBuffers {
    fn buffer(&self, len: usize) -> Vec<u8> {
        if len != self.0.buffer_size {
            return Vec::with_capacity(len);
        }
        let idle = self.0.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.unwrap_or_else(|| Vec::with_capacity(len))
    }

    fn freeze(&self, buf: Vec<u8>) -> Bytes {
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
        assert_eq!(pool.max_free, 4);
        let small = MemoryBudget::new(8 << 20);
        let pool = BufferPool::new(&small, 1 << 20, 4);
        assert_eq!(pool.max_free, 1, "at most an eighth of the budget");
        assert_eq!(small.available(), 7 << 20);
        drop(pool);
        assert_eq!(small.available(), 8 << 20, "returned with the pool");
    }
}
