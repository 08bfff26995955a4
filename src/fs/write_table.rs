//! The table of files with changes in progress. Each entry counts the
//! handles open for writing under the same (synchronous) lock that finds the
//! entry, so a close racing with an open (the kernel releases files in the
//! background) can never retire a state that a new writer just picked up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::write::WriteState;
use super::{SharedWrite, lock};

struct Entry<C> {
    state: SharedWrite<C>,
    writers: usize,
}

/// Change states by inode.
pub(super) struct WriteTable<C> {
    entries: Mutex<HashMap<u64, Entry<C>>>,
}

impl<C> Default for WriteTable<C> {
    fn default() -> Self {
        WriteTable {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<C> WriteTable<C> {
    /// Files with changes in progress.
    pub(super) fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// The state of `ino`, if it has one.
    pub(super) fn get(&self, ino: u64) -> Option<SharedWrite<C>> {
        lock(&self.entries).get(&ino).map(|e| e.state.clone())
    }

    /// The state of `ino`, created with `make` when missing; counts a
    /// writer when `writer` is set.
    pub(super) fn get_or_insert(
        &self,
        ino: u64,
        writer: bool,
        make: impl FnOnce() -> WriteState<C>,
    ) -> SharedWrite<C> {
        let mut entries = lock(&self.entries);
        let entry = entries.entry(ino).or_insert_with(|| Entry {
            state: Arc::new(tokio::sync::Mutex::new(make())),
            writers: 0,
        });
        if writer {
            entry.writers += 1;
        }
        entry.state.clone()
    }

    /// Installs a fresh state (a new file) with one writer.
    pub(super) fn insert_new(&self, ino: u64, state: WriteState<C>) -> SharedWrite<C> {
        let state = Arc::new(tokio::sync::Mutex::new(state));
        lock(&self.entries).insert(
            ino,
            Entry {
                state: state.clone(),
                writers: 1,
            },
        );
        state
    }

    /// Undoes one writer; returns the state and whether it was the last.
    pub(super) fn drop_writer(&self, ino: u64) -> Option<(SharedWrite<C>, bool)> {
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(&ino)?;
        entry.writers = entry.writers.saturating_sub(1);
        Some((entry.state.clone(), entry.writers == 0))
    }

    /// Handles open for writing on `ino`.
    pub(super) fn writers(&self, ino: u64) -> usize {
        lock(&self.entries).get(&ino).map_or(0, |e| e.writers)
    }

    /// Removes `state` of `ino` if no writer holds it and `done` says it has
    /// nothing left to upload (checked without waiting: a busy state stays).
    /// Returns whether it was removed.
    pub(super) fn retire(
        &self,
        ino: u64,
        state: &SharedWrite<C>,
        done: impl FnOnce(&WriteState<C>) -> bool,
    ) -> bool {
        let mut entries = lock(&self.entries);
        let Some(entry) = entries.get(&ino) else {
            return false;
        };
        if entry.writers > 0 || !Arc::ptr_eq(&entry.state, state) {
            return false;
        }
        let Ok(st) = state.try_lock() else {
            return false;
        };
        if !done(&st) {
            return false;
        }
        drop(st);
        entries.remove(&ino);
        true
    }

    /// Every state (for unmount).
    pub(super) fn all(&self) -> Vec<(u64, SharedWrite<C>)> {
        lock(&self.entries)
            .iter()
            .map(|(i, e)| (*i, e.state.clone()))
            .collect()
    }

    /// Inodes with a state.
    pub(super) fn inos(&self) -> Vec<u64> {
        lock(&self.entries).keys().copied().collect()
    }
}
