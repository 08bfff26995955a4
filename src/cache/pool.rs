//! Reusable block buffers. Every full-size block's memory comes from here
//! and returns here when its last `Bytes` clone is dropped (a shorter body,
//! such as a small file or an object's tail, gets a buffer of its own
//! length, so the memory budget counts what it really holds), so a long read
//! recycles the same pages instead of churning the allocator: resident
//! memory stays near the budget, and no time is spent faulting in fresh
//! pages (which costs ~2 ms per MiB on this kind of VM).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::cos::BodyBuffers;

/// Most idle block memory a read pool keeps: enough for the churn between
/// an eviction and the next fetch, which takes the freed buffer at once.
/// Idle buffers are outside the memory budget (it counts buffers in use),
/// so this bound is part of what the daemon may hold beyond it.
pub const MAX_IDLE_BLOCK_BYTES: u64 = 16 << 20;

/// Free buffers of one size.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    buffer_size: usize,
    max_free: usize,
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
    /// A pool of `buffer_size` buffers keeping at most `max_free` idle ones.
    pub fn new(buffer_size: usize, max_free: usize) -> Arc<BufferPool> {
        Arc::new(BufferPool {
            free: Mutex::new(Vec::new()),
            buffer_size,
            max_free,
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
        let pool = BufferPool::new(1024, 2);
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
}
