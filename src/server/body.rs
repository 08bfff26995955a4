//! Bodies in and out. Responses are boxed bodies; large object reads stream
//! from a blocking reader thread through a small bounded channel, so a 1 GiB
//! GET holds a few MiB at most. Request bodies stream into a [`TempFile`]
//! (hashing MD5 and CRC64 on the way) from a blocking writer thread; small
//! ones are written in place.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::StatusCode;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::sync::mpsc;

use super::error::ApiError;
use super::store::TempFile;

/// The body of every response.
pub type Body = BoxBody<Bytes, io::Error>;

/// Reads up to this much in place; above it, a reader thread streams.
const INLINE_READ: u64 = 256 * 1024;
/// Chunk size of streamed reads.
const CHUNK: u64 = 512 * 1024;
/// Chunks buffered between the reader thread and the connection.
const DEPTH: usize = 4;
/// A request body that sends nothing for this long is abandoned.
const BODY_IDLE: Duration = Duration::from_secs(120);

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body from bytes in memory.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// `len` bytes of `file` from `offset`: read now when small, otherwise
/// streamed by a reader thread.
pub fn file_range(file: File, offset: u64, len: u64) -> io::Result<Body> {
    if len <= INLINE_READ {
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, offset)?;
        return Ok(full(buf));
    }
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::task::spawn_blocking(move || stream_file(&file, offset, len, &tx));
    Ok(FileStream { rx, remaining: len }.boxed())
}

fn stream_file(file: &File, offset: u64, len: u64, tx: &mpsc::Sender<io::Result<Bytes>>) {
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        let mut buf = vec![0u8; n as usize];
        let chunk = file
            .read_exact_at(&mut buf, offset + done)
            .map(|()| Bytes::from(buf));
        let failed = chunk.is_err();
        if tx.blocking_send(chunk).is_err() || failed {
            return; // the client went away, or the error was passed on
        }
        done += n;
    }
}

/// A body fed by a reader thread.
struct FileStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl hyper::body::Body for FileStream {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "object reader stopped early",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Writes a request body into `temp`, refusing more than `limit` bytes.
/// Small bodies (`Content-Length` ≤ 1 MiB) are written in place; larger or
/// chunked ones go through a writer thread.
pub async fn receive(
    body: Incoming,
    mut temp: TempFile,
    length: Option<u64>,
    limit: u64,
) -> Result<TempFile, ApiError> {
    if length.is_some_and(|n| n <= 1 << 20) {
        let data = collect(body, limit).await?;
        temp.write_data(&data)?;
        return Ok(temp);
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<TempFile> {
        while let Some(chunk) = rx.blocking_recv() {
            temp.write_data(&chunk)?;
        }
        Ok(temp)
    });
    let fed = feed(body, &tx, limit).await;
    drop(tx);
    let temp = writer
        .await
        .map_err(|e| ApiError::internal(&io::Error::other(e)))?;
    fed?;
    Ok(temp?)
}

async fn feed(mut body: Incoming, tx: &mpsc::Sender<Bytes>, limit: u64) -> Result<(), ApiError> {
    let mut total = 0u64;
    while let Some(frame) = next_frame(&mut body).await? {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > limit {
            return Err(too_large(limit));
        }
        if tx.send(data).await.is_err() {
            break; // the writer failed; its error is reported
        }
    }
    Ok(())
}

/// Reads a whole (small) request body into memory.
pub async fn collect(mut body: Incoming, limit: u64) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    while let Some(frame) = next_frame(&mut body).await? {
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.into())
}

async fn next_frame(body: &mut Incoming) -> Result<Option<Frame<Bytes>>, ApiError> {
    match tokio::time::timeout(BODY_IDLE, body.frame()).await {
        Err(_) => Err(ApiError::bad_request(
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )),
        Ok(None) => Ok(None),
        Ok(Some(Ok(frame))) => Ok(Some(frame)),
        Ok(Some(Err(e))) => Err(ApiError::bad_request(
            "IncompleteBody",
            format!("The request body could not be read: {e}"),
        )),
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "EntityTooLarge",
        format!("Your proposed upload exceeds the maximum allowed size of {limit} bytes."),
    )
}
