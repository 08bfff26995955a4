//! The adapter's state and how a request's work runs: polled once on the
//! FUSE thread, then, if it must wait, as a tracked task of the runtime.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::task::Context;
use std::time::Duration;

use fuser::{FileHandle, INodeNo, Notifier, Request};
use futures_util::FutureExt;
use log::{debug, error};
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

use super::DirectIo;
use super::op::{Observers, Op, Sender};
use super::reply::panic_message;
use super::write_buffers::WriteBuffers;
use crate::audit::AuditOp;
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
    /// Where finished requests are counted and audited.
    pub(super) observers: Arc<Observers>,
    /// Reused buffers for write requests' data.
    pub(super) write_buffers: Arc<WriteBuffers>,
}

impl<C: ObjectClient> FuseAdapter<C> {
    /// An adapter running `fs` on `runtime`; every request's task is
    /// tracked by `tasks`, so unmount can wait for uploads in flight, and
    /// counted (and audited) by `observers`.
    pub fn new(
        fs: Arc<Fs<C>>,
        runtime: Handle,
        tasks: TaskTracker,
        direct_io: DirectIo,
        observers: Arc<Observers>,
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
            observers,
            write_buffers: Arc::default(),
        }
    }

    /// A request of kind `name` from `req`'s sender, counted when dropped.
    pub(super) fn op(&self, name: &'static str, req: &Request) -> Op {
        Op::new(name, Sender::of(req), self.observers.clone())
    }

    /// Where the session's notifier goes once the session exists.
    pub fn notifier_slot(&self) -> Arc<OnceLock<Notifier>> {
        self.notifier.clone()
    }

    /// Makes `op` (a flush or release of `fh`) write the `write-close`
    /// audit line when data was written through `fh` since its last flush:
    /// in the writer's name, with the upload's result.
    pub(super) fn audit_write_close(&self, op: &mut Op, ino: INodeNo, fh: FileHandle) {
        if let Some((bytes, writer)) = self.observers.flushed(fh.0) {
            let path = self.fs.mount_path(ino.0, None);
            op.audit_as(writer, AuditOp::WriteClose, path, bytes);
        }
    }

    /// Runs a request's work: polled once right here, so work that needs
    /// no network (a write into a buffer, a setattr of an open file, a
    /// cached read) replies without a hop to another thread; anything that
    /// must wait goes on as a tracked task of the runtime.
    pub(super) fn spawn<F: Future<Output = ()> + Send + 'static>(
        &self,
        op: Op,
        work: impl FnOnce(Arc<Fs<C>>, Op) -> F,
    ) {
        let _runtime = self.runtime.enter();
        let _tracked = self.tasks.token();
        let mut task = Box::pin(
            AssertUnwindSafe(work(self.fs.clone(), op))
                .catch_unwind()
                .map(|result| {
                    if let Err(panic) = result {
                        error!(
                            "a request panicked and was answered EIO; the mount goes on: {}",
                            panic_message(&*panic)
                        );
                    }
                }),
        );
        let mut first_poll = Context::from_waker(futures_util::task::noop_waker_ref());
        if task.as_mut().poll(&mut first_poll).is_pending() {
            self.tasks.spawn_on(task, &self.runtime);
        }
    }
}

/// Makes the kernel forget the attributes it cached for `ino` (once the
/// session exists), so the next `stat` asks.
pub(super) fn forget_attrs(notifier: &OnceLock<Notifier>, ino: INodeNo) {
    if let Some(notifier) = notifier.get() {
        if let Err(e) = notifier.inval_inode(ino, -1, 0) {
            debug!("invalidating inode {}: {e}", ino.0);
        }
    }
}
