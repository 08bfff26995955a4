//! Directory listings: plain entries and entries with attributes.

use fuser::{FileHandle, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus};

use super::FuseAdapter;
use super::convert::{file_attr, file_type};
use super::op::Op;
use crate::cos::ObjectClient;

impl<C: ObjectClient> FuseAdapter<C> {
    /// readdir: entries from `offset`, as many as fit.
    pub(super) fn read_dir(
        &self,
        op: Op,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.spawn(op, |fs, op| async move {
            match fs.readdir(ino.0, fh.0, offset).await {
                Ok(entries) => {
                    for e in entries.iter().skip(offset as usize) {
                        if reply.add(
                            INodeNo(e.entry.ino),
                            e.offset,
                            file_type(e.entry.attr.kind),
                            &e.name,
                        ) {
                            break;
                        }
                    }
                    reply.ok();
                }
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }

    /// readdirplus: entries with attributes; each but `.` and `..`
    /// takes a kernel reference.
    pub(super) fn read_dir_plus(
        &self,
        op: Op,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let ttl = self.ttl;
        self.spawn(op, |fs, op| async move {
            match fs.readdir(ino.0, fh.0, offset).await {
                Ok(entries) => {
                    for e in entries.iter().skip(offset as usize) {
                        let attr = file_attr(&e.entry);
                        if reply.add(
                            INodeNo(e.entry.ino),
                            e.offset,
                            &e.name,
                            &ttl,
                            &attr,
                            Generation(0),
                        ) {
                            break;
                        }
                        // The kernel takes a reference on every entry but . and ..
                        if e.name != "." && e.name != ".." {
                            fs.remember(e.entry.ino);
                        }
                    }
                    reply.ok();
                }
                Err(e) => reply.error(op.fail(ino.0, &e)),
            }
        });
    }
}
