//! A response body damaged at one byte: the connection breaks there, the
//! body ends early, stalls and then breaks, or carries one flipped byte
//! (and is otherwise whole). A damaged body never looks whole to a client
//! that checks `Content-Length` and CRC64.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::server::body::Body;

/// What happens at byte `cut` of a damaged body.
pub(super) enum Cut {
    /// The connection breaks.
    Reset,
    /// The body ends early (shorter than its Content-Length).
    End,
    /// Nothing more is sent for this long, then the connection breaks.
    Stall(Duration),
    /// The byte is flipped; the body is otherwise whole.
    Flip,
}

/// A response body damaged at byte `cut`.
pub(super) struct Damaged {
    pub(super) inner: Body,
    pub(super) sent: u64,
    pub(super) cut: u64,
    pub(super) mode: Cut,
    pub(super) sleep: Option<Pin<Box<Sleep>>>,
}

impl hyper::body::Body for Damaged {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.sent >= this.cut && !matches!(this.mode, Cut::Flip) {
            return this.broken(cx);
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let Ok(mut data) = frame.into_data() else {
            return Poll::Ready(Some(Err(io::Error::other("unexpected trailers"))));
        };
        let start = this.sent;
        let len = data.len() as u64;
        match this.mode {
            Cut::Flip if (start..start + len).contains(&this.cut) => {
                let mut copy = BytesMut::from(&data[..]);
                copy[(this.cut - start) as usize] ^= 0x5a;
                data = copy.freeze();
            }
            Cut::Flip => {}
            _ if start + len > this.cut => data.truncate((this.cut - start) as usize),
            _ => {}
        }
        this.sent += data.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.mode, Cut::Flip) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Damaged {
    /// After the cut: fail, end, or wait and then fail.
    fn broken(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let reset = || {
            Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fault injection: connection reset in the body",
            ))))
        };
        match self.mode {
            Cut::End => Poll::Ready(None),
            Cut::Reset | Cut::Flip => reset(),
            Cut::Stall(d) => {
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(d)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => reset(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
