//! The admin endpoint (only with `--admin-listen`), for tests: request
//! counters (`/stats`), authentication counters (`/stats/auth`), the keys the
//! STS emulation issued (`/sts/issued`, secrets included: this port exists
//! for tests), fault injection later. A small router over (method, path).

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::Value;

use super::State;
use super::body::{self, Body};

/// Serves one admin request.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let answer = match (req.method(), req.uri().path()) {
        (&Method::GET, "/stats") => json(StatusCode::OK, &state.stats.to_json()),
        (&Method::GET, "/stats/auth") => json(StatusCode::OK, &state.stats.auth_json()),
        (&Method::GET, "/sts/issued") => match &state.sts {
            Some(sts) => json(StatusCode::OK, &super::sts::issued_json(sts)),
            None => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": "the STS emulation is off (--sts-ttl)"}),
            ),
        },
        (&Method::POST, "/stats/reset") => {
            state.stats.reset();
            json(StatusCode::OK, &serde_json::json!({}))
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "no such admin endpoint"}),
        ),
    };
    Ok(answer)
}

fn json(status: StatusCode, value: &Value) -> Response<Body> {
    let text = value.to_string();
    let mut answer = Response::new(body::full(text));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    answer
}
