//! The name of the process behind an audited request, from
//! `/proc/<pid>/comm`. Looked up on the writer thread, never on the FUSE
//! thread that answered the request, and cached per pid so that a process
//! doing thousands of operations costs one read. An entry is trusted for a
//! short time only: a pid's name changes on exec (a shell forks, then
//! becomes `cp`), and pids are reused after a process exits.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;

/// How many pids the cache remembers.
const CAPACITY: NonZeroUsize = NonZeroUsize::new(256).unwrap();
/// How long a looked-up name is used before `/proc` is read again.
const TTL: Duration = Duration::from_secs(1);

/// Process names by pid, read at most once per [`TTL`].
pub(super) struct CommCache {
    entries: LruCache<u32, (Instant, Option<String>)>,
}

impl CommCache {
    /// An empty cache.
    pub(super) fn new() -> Self {
        CommCache {
            entries: LruCache::new(CAPACITY),
        }
    }

    /// The name of process `pid` as of `now`, or None when it cannot be
    /// read (the process has exited, or `/proc` is not mounted).
    pub(super) fn get(&mut self, pid: u32, now: Instant) -> Option<&str> {
        let fresh = self
            .entries
            .peek(&pid)
            .is_some_and(|(read, _)| now.saturating_duration_since(*read) < TTL);
        if !fresh {
            self.entries.put(pid, (now, read_comm(pid)));
        }
        self.entries.get(&pid).and_then(|(_, name)| name.as_deref())
    }
}

/// Reads `/proc/<pid>/comm` without its trailing newline. The kernel lets
/// a process set any bytes as its name; invalid UTF-8 is replaced.
fn read_comm(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let name = String::from_utf8_lossy(&raw);
    Some(name.strip_suffix('\n').unwrap_or(&name).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel shows as this test binary's name: the executable's
    /// file name cut to 15 bytes (`TASK_COMM_LEN` less the NUL).
    fn own_comm() -> String {
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_str().unwrap();
        name[..name.len().min(15)].to_string()
    }

    #[test]
    fn own_pid_gives_the_test_binary_name() {
        let mut cache = CommCache::new();
        let now = Instant::now();
        assert_eq!(
            cache.get(std::process::id(), now),
            Some(own_comm().as_str())
        );
    }

    #[test]
    fn unreadable_pid_gives_none() {
        // Above the kernel's pid_max limit (2^22), so never a live process.
        let mut cache = CommCache::new();
        assert_eq!(cache.get(u32::MAX, Instant::now()), None);
    }

    #[test]
    fn cached_within_the_ttl_and_read_again_after() {
        let mut cache = CommCache::new();
        let pid = std::process::id();
        let start = Instant::now();
        cache
            .entries
            .put(pid, (start, Some("stale-name".to_string())));
        assert_eq!(cache.get(pid, start + TTL / 2), Some("stale-name"));
        assert_eq!(cache.get(pid, start + TTL), Some(own_comm().as_str()));
    }
}
