//! The global memory budget shared by cached read blocks and write buffers:
//! every buffer holds permits for its size, so the sum of all of them never
//! exceeds the configured `--cache-size`. When the budget is used up, the
//! read cache gives blocks back first (its registered evictor); only then
//! do callers wait, for memory returned or for a block the cache can give
//! back (memory a fetch held becomes evictable only once its block is
//! cached, so waiting on returned memory alone could wait forever).

use std::sync::{Arc, OnceLock};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Budget granularity: 64 KiB.
const UNIT: u64 = 64 * 1024;

/// Frees one cached item; returns false when nothing is left to free.
pub type Evictor = Box<dyn Fn() -> bool + Send + Sync>;

/// A byte budget in 64 KiB units.
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_units: u64,
    evictor: OnceLock<Evictor>,
    evictable: Notify,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total", &self.total())
            .field("available", &self.available())
            .finish()
    }
}

/// Memory held against the budget; returned on drop.
#[derive(Debug)]
pub struct Reservation {
    permit: OwnedSemaphorePermit,
}

impl Reservation {
    /// Holds `other`'s memory too, to return both together.
    pub fn merge(&mut self, other: Reservation) {
        self.permit.merge(other.permit);
    }
}

impl MemoryBudget {
    /// A budget of `bytes` (at least one unit).
    pub fn new(bytes: u64) -> MemoryBudget {
        let total_units = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        MemoryBudget {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            evictor: OnceLock::new(),
            evictable: Notify::new(),
        }
    }

    /// Registers the cache that gives memory back under pressure (once).
    pub fn set_evictor(&self, evictor: Evictor) {
        let _ = self.evictor.set(evictor);
    }

    /// Tells waiting callers that the evictor has something to give back.
    pub fn evictable_added(&self) {
        self.evictable.notify_waiters();
    }

    /// Total bytes of the budget.
    pub fn total(&self) -> u64 {
        self.total_units * UNIT
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }

    fn units(&self, bytes: u64) -> u32 {
        bytes.div_ceil(UNIT).clamp(1, self.total_units) as u32
    }

    /// Reserves `bytes` now, or returns `None` when the budget is short.
    pub fn try_reserve(&self, bytes: u64) -> Option<Reservation> {
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(self.units(bytes))
            .ok()?;
        Some(Reservation { permit })
    }

    /// Reserves `bytes`, evicting cached blocks first, then waiting until
    /// enough is returned or the cache has something new to evict.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        loop {
            let evictable = self.evictable.notified();
            tokio::pin!(evictable);
            // Registered before looking, so a block cached meanwhile is seen.
            evictable.as_mut().enable();
            if let Some(r) = self.try_reserve(bytes) {
                return r;
            }
            if self.evict_one() {
                continue;
            }
            tokio::select! {
                permit = self.permits.clone().acquire_many_owned(self.units(bytes)) => {
                    let permit = permit.expect("the budget's semaphore is never closed");
                    return Reservation { permit };
                }
                () = evictable => {}
            }
        }
    }

    fn evict_one(&self) -> bool {
        self.evictor.get().is_some_and(|evict| evict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_return_on_drop() {
        let b = MemoryBudget::new(4 * UNIT);
        let r1 = b.try_reserve(3 * UNIT).unwrap();
        assert!(b.try_reserve(2 * UNIT).is_none());
        drop(r1);
        assert_eq!(b.available(), 4 * UNIT);
        let _big = b.reserve(100 * UNIT).await; // clamped to the whole budget
        assert_eq!(b.available(), 0);
    }

    #[tokio::test]
    async fn reserve_evicts_before_waiting() {
        let b = Arc::new(MemoryBudget::new(4 * UNIT));
        let held = Arc::new(std::sync::Mutex::new(vec![
            b.try_reserve(2 * UNIT).unwrap(),
            b.try_reserve(2 * UNIT).unwrap(),
        ]));
        let cache = held.clone();
        b.set_evictor(Box::new(move || cache.lock().unwrap().pop().is_some()));
        let _r = b.reserve(3 * UNIT).await;
        assert!(held.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_waiter_takes_memory_that_becomes_evictable() {
        // The whole budget is held by a fetch in flight; once its block is
        // cached (evictable, not returned), the waiter must get it.
        let b = Arc::new(MemoryBudget::new(2 * UNIT));
        let cached = Arc::new(std::sync::Mutex::new(Vec::new()));
        let cache = cached.clone();
        b.set_evictor(Box::new(move || cache.lock().unwrap().pop().is_some()));
        let fetching = b.try_reserve(2 * UNIT).unwrap();
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.reserve(UNIT).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        cached.lock().unwrap().push(fetching);
        b.evictable_added();
        let reserved = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        assert!(reserved.is_ok(), "the waiter was never woken");
        assert!(
            cached.lock().unwrap().is_empty(),
            "the cached block was evicted"
        );
    }
}
