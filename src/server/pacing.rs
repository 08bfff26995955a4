//! A connection whose incoming bytes are read no faster than a set rate
//! (`cosmount serve --throttle-uploads RATE`, a test hook): what a client
//! sees over a thin link, since the socket buffers fill and its writes
//! advance at that pace. Writes pass through unpaced.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Reads are cut to this share of a second's worth of bytes, so the pace
/// is steady rather than a burst per second.
const SLICES_PER_SECOND: u64 = 10;

/// The receive buffer of a paced connection: on a thin link the backlog
/// waits in the sender's buffer, not the receiver's, so the sender sees
/// its writes advance at the link's pace.
const PACED_RECEIVE_BUFFER: libc::c_int = 64 << 10;

/// Shrinks the receive buffer of `stream` when it is paced.
pub fn prepare(stream: &tokio::net::TcpStream, rate: Option<u64>) {
    use std::os::fd::AsRawFd;
    if rate.is_none() {
        return;
    }
    let size = PACED_RECEIVE_BUFFER;
    // SAFETY: setsockopt on a socket fd `stream` owns, with a pointer to
    // a c_int and its exact length.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::warn!(
            "cannot shrink a paced connection's receive buffer: {}",
            io::Error::last_os_error()
        );
    }
}

/// `inner`, read at most `rate` bytes per second when a rate is set.
pub struct Paced<S> {
    inner: S,
    rate: Option<u64>,
    wait: Option<Pin<Box<Sleep>>>,
}

impl<S> Paced<S> {
    /// `inner` paced to `rate` bytes/s (`None`: not paced).
    pub fn new(inner: S, rate: Option<u64>) -> Paced<S> {
        Paced {
            inner,
            rate: rate.filter(|&r| r > 0),
            wait: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(rate) = self.rate else {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        };
        if let Some(wait) = self.wait.as_mut() {
            ready!(wait.as_mut().poll(cx));
            self.wait = None;
        }
        let slice = (rate / SLICES_PER_SECOND).max(1) as usize;
        let mut limited = buf.take(slice.min(buf.remaining()));
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        // SAFETY: `limited` wrote `n` initialized bytes into `buf`'s
        // unfilled part, which it borrows.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        let pause = Duration::from_secs_f64(n as f64 / rate as f64);
        self.wait = Some(Box::pin(tokio::time::sleep(pause)));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reads_keep_to_the_rate() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&[1u8; 64 << 10]).await.unwrap();
        drop(client);
        let mut paced = Paced::new(server, Some(16 << 10));
        let started = tokio::time::Instant::now();
        let mut all = Vec::new();
        paced.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len(), 64 << 10);
        let took = started.elapsed().as_secs_f64();
        assert!((3.5..=4.5).contains(&took), "{took}");
    }
}
