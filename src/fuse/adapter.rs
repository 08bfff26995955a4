//! The adapter's state and how a request's work runs: polled once on the
//! FUSE thread, then, if it must wait, as a tracked task of the runtime.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::task::Context;
use std::time::Duration;

use fuser::Notifier;
use futures_util::FutureExt;
use log::error;
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

use super::DirectIo;
use super::reply::panic_message;
use crate::cos::ObjectClient;
use crate::fs::Fs;

/// The kernel-facing filesystem.
pub struct FuseAdapter<C> {
    pub(super) fs: Arc<Fs<C>>,
    pub(super) runtime: Handle,
    pub(super) tasks: TaskTracker,
    pub(super) ttl: Duration,
    pub(super) direct_io: DirectIo,
    /// The kernel lets files opened with direct I/O be mmapped.
    pub(super) direct_mmap: bool,
    /// Tells the kernel to drop what it cached of an inode; set once the
    /// session exists.
    pub(super) notifier: Arc<OnceLock<Notifier>>,
}

impl<C: ObjectClient> FuseAdapter<C> {
    /// An adapter running `fs` on `runtime`; every request's task is
    /// tracked by `tasks`, so unmount can wait for uploads in flight.
    pub fn new(
        fs: Arc<Fs<C>>,
        runtime: Handle,
        tasks: TaskTracker,
        direct_io: DirectIo,
    ) -> FuseAdapter<C> {
        let ttl = fs.config().metadata_ttl;
        FuseAdapter {
            fs,
            runtime,
            tasks,
            ttl,
            direct_io,
            direct_mmap: false,
            notifier: Arc::default(),
        }
    }

    /// Where the session's notifier goes once the session exists.
    pub fn notifier_slot(&self) -> Arc<OnceLock<Notifier>> {
        self.notifier.clone()
    }

    /// Runs a request's work: polled once right here, so work that needs
    /// no network (a write into a buffer, a setattr of an open file, a
    /// cached read) replies without a hop to another thread; anything that
    /// must wait goes on as a tracked task of the runtime.
    pub(super) fn spawn<F: Future<Output = ()> + Send + 'static>(
        &self,
        work: impl FnOnce(Arc<Fs<C>>) -> F,
    ) {
        let _runtime = self.runtime.enter();
        let _tracked = self.tasks.token();
        let mut task = Box::pin(AssertUnwindSafe(work(self.fs.clone())).catch_unwind().map(
            |result| {
                if let Err(panic) = result {
                    error!(
                        "a request panicked and was answered EIO; the mount goes on: {}",
                        panic_message(&*panic)
                    );
                }
            },
        ));
        let mut first_poll = Context::from_waker(futures_util::task::noop_waker_ref());
        if task.as_mut().poll(&mut first_poll).is_pending() {
            self.tasks.spawn_on(task, &self.runtime);
        }
    }
}
