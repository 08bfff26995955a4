//! Buffers for the data of write requests. A write that must wait (for
//! the memory budget, or its upload part's turn) outlives the FUSE
//! thread's borrow of the data, so each write's data is copied; reusing a
//! few buffers keeps that copy from mapping and faulting in fresh pages for
//! every request (the allocator maps buffers of 1 MiB and more on their
//! own, and unmaps them when freed: see `app::keep_malloc_within_budget`).

use std::sync::Mutex;

use crate::sync::lock;

/// Idle buffers kept: a few writes in flight at once is the common case.
const MAX_IDLE: usize = 4;

/// Reusable buffers for write requests' data.
#[derive(Debug, Default)]
pub struct WriteBuffers {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl WriteBuffers {
    /// A copy of `data`, in a reused buffer when one is idle.
    pub fn copy_of(&self, data: &[u8]) -> Vec<u8> {
        let mut buf = lock(&self.idle).pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        buf
    }

    /// Keeps `buf` for a later write, if fewer than [`MAX_IDLE`] are idle.
    pub fn give_back(&self, buf: Vec<u8>) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_serves_the_next_write() {
        let buffers = WriteBuffers::default();
        let first = buffers.copy_of(&[7; 4096]);
        let at = first.as_ptr();
        buffers.give_back(first);
        let second = buffers.copy_of(&[8; 100]);
        assert_eq!((second.as_ptr(), &second[..]), (at, &[8; 100][..]));
    }
}
