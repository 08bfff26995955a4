//! The HTTP endpoint of `--metrics-listen`: `GET /metrics` (Prometheus
//! text format 0.0.4) and `GET /status` (JSON). One task per connection on
//! the mount's runtime; nothing here can block a file operation.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use log::{debug, info};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::MountView;

/// The content type Prometheus expects of the text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The running endpoint; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` and serves `view` on the current runtime.
    pub async fn start(addr: SocketAddr, view: Arc<MountView>) -> Result<MetricsServer, String> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} for --metrics-listen: {e}"))?;
        let addr = listener.local_addr().unwrap_or(addr);
        info!("metrics at http://{addr}/metrics, status at http://{addr}/status");
        let task = tokio::spawn(accept(listener, view));
        Ok(MetricsServer { addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, view: Arc<MountView>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, view.clone()));
            }
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                debug!("metrics endpoint cannot accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers the requests of one connection (TCP or the control socket).
pub(super) async fn serve_connection<S>(stream: S, view: Arc<MountView>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let view = view.clone();
        async move { Ok::<_, Infallible>(answer(&view, &req)) }
    });
    if let Err(e) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        debug!("metrics connection: {e}");
    }
}

fn answer(view: &Arc<MountView>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, PROMETHEUS_TEXT, view.metrics_text()),
        (&Method::GET, "/status") => (
            StatusCode::OK,
            "application/json",
            format!("{:#}\n", view.status_json()),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: GET /metrics or /status\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
