//! The admin endpoint (only with `--admin-listen`), for tests: request
//! counters (`/stats`), authentication counters (`/stats/auth`), all of
//! them for Prometheus (`/metrics`, text format 0.0.4), the keys the
//! STS emulation issued (`/sts/issued`, secrets included: this port exists
//! for tests), fault injection (`GET /faults` counts injected faults by
//! kind, `POST /faults?rate=P` changes the rate, `POST /outage?secs=N`
//! refuses every COS request for N seconds, 0 ends it, `POST
//! /stall?request=get|part&secs=N` stalls the next object GET or Upload
//! Part for N seconds). A small router over
//! (method, path).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::Value;

use super::State;
use super::body::{self, Body};
use super::faults::StallTarget;
use super::router::Query;

/// Serves one admin request.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let answer = match (req.method(), req.uri().path()) {
        (&Method::GET, "/stats") => json(StatusCode::OK, &state.stats.to_json()),
        (&Method::GET, "/stats/auth") => json(StatusCode::OK, &state.stats.auth_json()),
        (&Method::GET, "/metrics") => metrics(&state),
        (&Method::GET, "/sts/issued") => match &state.sts {
            Some(sts) => json(StatusCode::OK, &super::sts::issued_json(sts)),
            None => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": "the STS emulation is off (--sts-ttl)"}),
            ),
        },
        (&Method::POST, "/stats/reset") => {
            state.stats.reset();
            state.faults.reset();
            json(StatusCode::OK, &serde_json::json!({}))
        }
        (&Method::GET, "/faults") => json(StatusCode::OK, &state.faults.to_json()),
        (&Method::POST, "/faults") => match number(req.uri().query(), "rate") {
            Some(rate) if (0.0..=1.0).contains(&rate) => {
                state.faults.set_rate(rate);
                json(StatusCode::OK, &state.faults.to_json())
            }
            _ => bad_request("give ?rate=P with P between 0 and 1"),
        },
        (&Method::POST, "/stall") => arm(&state, req.uri().query()),
        (&Method::POST, "/outage") => match number(req.uri().query(), "secs") {
            Some(secs) if (0.0..=1e6).contains(&secs) => {
                state
                    .faults
                    .start_outage(std::time::Duration::from_secs_f64(secs));
                json(StatusCode::OK, &state.faults.to_json())
            }
            _ => bad_request("give ?secs=N (0 ends the outage)"),
        },
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "no such admin endpoint"}),
        ),
    };
    Ok(answer)
}

/// `POST /stall?request=get|part&secs=N`: the next request of that kind
/// stalls for N seconds.
fn arm(state: &State, query: Option<&str>) -> Response<Body> {
    let target = Query::parse(query)
        .ok()
        .and_then(|q| q.get("request").and_then(StallTarget::parse));
    match (target, number(query, "secs")) {
        (Some(target), Some(secs)) if (0.0..=1e6).contains(&secs) => {
            state.faults.arm(target, Duration::from_secs_f64(secs));
            json(StatusCode::OK, &state.faults.to_json())
        }
        _ => bad_request("give ?request=get|part&secs=N"),
    }
}

/// `GET /metrics`: every counter in the Prometheus text format.
fn metrics(state: &State) -> Response<Body> {
    let Ok(text) = super::metrics::encode(&state.stats, &state.faults) else {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": "the metrics could not be encoded"}),
        );
    };
    let mut answer = Response::new(body::full(text));
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    answer
}

/// The number in query parameter `name`.
fn number(query: Option<&str>, name: &str) -> Option<f64> {
    Query::parse(query).ok()?.get(name)?.parse().ok()
}

fn bad_request(message: &str) -> Response<Body> {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": message }),
    )
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
