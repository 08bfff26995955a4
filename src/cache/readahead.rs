//! Sequential-read detection for one open file. A reader that keeps reading
//! where it left off gets a read-ahead window that doubles up to a maximum;
//! a jump elsewhere resets it, so random readers fetch only what they touch.
//! Reads that arrive slightly out of order (the kernel issues several at
//! once) still count as sequential.

use std::sync::atomic::{AtomicU64, Ordering};

/// Source of reader ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Read-ahead state of one reader, in blocks (not `Clone`: its id is its own).
#[derive(Debug)]
pub struct ReadAhead {
    id: u64,
    next_offset: u64,
    window: u64,
    max_window: u64,
    block_size: u64,
}

impl ReadAhead {
    /// A reader starting at offset 0 with a window of up to `max_window` blocks.
    pub fn new(block_size: u64, max_window: u64) -> ReadAhead {
        ReadAhead {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            next_offset: 0,
            window: 0,
            max_window,
            block_size,
        }
    }

    /// Tells this reader apart from every other.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Records a read of `len` bytes at `offset` and returns how many blocks
    /// past it to prefetch.
    pub fn observe(&mut self, offset: u64, len: u64) -> u64 {
        let slack = self.block_size.max(self.window * self.block_size);
        let sequential = offset + slack >= self.next_offset && offset <= self.next_offset + slack;
        self.window = if sequential {
            (self.window * 2).clamp(1, self.max_window.max(1))
        } else {
            0
        };
        self.next_offset = self.next_offset.max(offset + len);
        if !sequential {
            self.next_offset = offset + len;
        }
        self.window.min(self.max_window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn window_grows_for_sequential_reads() {
        let mut r = ReadAhead::new(MB, 8);
        let windows: Vec<u64> = (0..6)
            .map(|i| r.observe(i * 128 * 1024, 128 * 1024))
            .collect();
        assert_eq!(windows, vec![1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn random_reads_get_no_readahead() {
        let mut r = ReadAhead::new(MB, 8);
        r.observe(0, 4096);
        assert_eq!(r.observe(500 * MB, 4096), 0);
        assert_eq!(r.observe(100 * MB, 4096), 0);
        assert_eq!(r.observe(100 * MB + 4096, 4096), 1, "sequential again");
    }

    #[test]
    fn tolerates_slightly_out_of_order_reads() {
        let mut r = ReadAhead::new(MB, 16);
        r.observe(0, MB);
        r.observe(MB, MB);
        assert!(r.observe(3 * MB, MB) > 0);
        assert!(r.observe(2 * MB, MB) > 0);
    }

    #[test]
    fn zero_max_window_disables_prefetch() {
        let mut r = ReadAhead::new(MB, 0);
        assert_eq!(r.observe(0, MB), 0);
        assert_eq!(r.observe(MB, MB), 0);
    }
}
