//! The HTTP/1.1 plumbing: accept loops on the shared tokio runtime (one task
//! per connection, keep-alive, graceful shutdown), and the header-spelling
//! map. hyper writes response header names in lowercase unless a response
//! carries its private case map; that map can only be obtained by letting
//! hyper parse a request, so at startup one synthetic request spelled the
//! way COS spells its response headers is parsed over an in-memory pipe and
//! its extensions are kept and cloned onto every response. Names absent from
//! the map (`x-cos-*`) are written lowercase, as COS does.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::http::Extensions;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use log::{debug, warn};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::body::Body;
use super::pacing::{self, Paced};

/// Standard response headers as COS spells them.
const COS_SPELLING: &[&str] = &[
    "Accept-Ranges",
    "Cache-Control",
    "Connection",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Range",
    "Content-Type",
    "Date",
    "ETag",
    "Expires",
    "Last-Modified",
    "Location",
    "Server",
];

/// How long open connections may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// hyper's header-case map for COS's spelling, as response extensions.
pub async fn cos_header_case() -> io::Result<Extensions> {
    let mut request = String::from("GET / HTTP/1.1\r\nHost: spelling\r\n");
    for name in COS_SPELLING {
        request.push_str(&format!("{name}: x\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    let (mut client, server) = tokio::io::duplex(4096);
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let service = service_fn(move |req: Request<Incoming>| {
        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(req.extensions().clone());
        }
        async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) }
    });
    let conn = http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(server), service);
    let task = tokio::spawn(conn);
    client.write_all(request.as_bytes()).await?;
    let extensions = rx
        .await
        .map_err(|_| io::Error::other("hyper did not parse the header-spelling request"))?;
    drop(client);
    task.abort();
    Ok(extensions)
}

/// Serves HTTP/1.1 on `listener` with `handler` until `stop` turns true,
/// then lets open connections finish (up to a deadline); with `pace`,
/// reads each connection at most that many bytes per second.
/// A handler's `Err` closes the connection without an answer.
pub fn serve<F, Fut, E>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    pace: Option<u64>,
    handler: F,
) -> JoinHandle<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).keep_alive(true);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        pacing::prepare(&stream, pace);
                        let stream = Paced::new(stream, pace);
                        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(handler.clone()));
                        let conn = graceful.watch(conn);
                        tokio::spawn(async move {
                            if let Err(e) = conn.await {
                                debug!("connection from {peer} ended: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stop.changed() => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(DRAIN, graceful.shutdown())
            .await
            .is_err()
        {
            warn!("connections still open {DRAIN:?} after shutdown began; closing them");
        }
    })
}
