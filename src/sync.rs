//! Locking that survives a panicked holder: the state behind our mutexes
//! is counters and caches, always consistent between statements, so a
//! poisoned lock is taken over rather than spreading the panic. Depends on
//! nothing else in the crate, so any layer may call it.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking it over if a holder panicked.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
