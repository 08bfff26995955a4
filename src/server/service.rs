//! One request, start to finish: decode the path, route to a bucket,
//! classify the operation, count it, authenticate and authorize, run the
//! handler, and stamp the answer (`x-cos-request-id`, `Server`, COS header
//! spelling). Errors become COS `<Error>` documents here, in one place.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};
use log::debug;

use super::State;
use super::auth::{self, Principal, SignedParts};
use super::body::Body;
use super::error::ApiError;
use super::faults::{Dropped, Refusal};
use super::handlers::{self, Ctx};
use super::metrics::Status;
use super::response;
use super::router::{self, Op, Query, Target};
use super::stats::AuthOutcome;

/// What routing found out, for the answer and the log line.
#[derive(Default)]
struct Routed {
    op: Option<Op>,
    target: Option<Target>,
}

/// Serves one request on the COS port, with whatever fault injection
/// (`faults.rs`) decides for it, and counts its answer (operation, status,
/// time until its head was ready); `Err` closes the connection unanswered.
pub async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let started = Instant::now();
    let head = req.method() == Method::HEAD;
    let plan = state
        .faults
        .plan(req.method(), req.headers(), req.uri().query());
    let (answer, op) = match plan.before(req.body_mut()).await {
        Err(dropped) => (Err(dropped), None),
        Ok(Some(refusal)) => (Ok(refuse(&state, refusal, head)), None),
        Ok(None) => {
            let (answer, op) = respond(&state, req).await;
            let answer = plan
                .after(answer, head, |refusal| refuse(&state, refusal, head))
                .await;
            (answer, op)
        }
    };
    let status = match &answer {
        Ok(answer) => Status::Code(answer.status().as_u16()),
        Err(_) => Status::Dropped,
    };
    state.stats.answers().count(op, status, started.elapsed());
    answer
}

/// Serves one request: route, authenticate, run, answer (with the
/// operation, once routing classified it).
async fn respond(state: &Arc<State>, req: Request<Incoming>) -> (Response<Body>, Option<Op>) {
    let started = Instant::now();
    let request_id = state.next_request_id();
    let head = req.method() == Method::HEAD;
    let mut routed = Routed::default();
    let result = serve(state, req, &mut routed).await;
    let resource = resource(state, routed.target.as_ref());
    let mut answer = match result {
        Ok(answer) => answer,
        Err(e) => response::error(&e, &resource, &request_id, head),
    };
    stamp(state, &mut answer, &request_id);
    debug!(
        "{} {:?} -> {} in {:?}",
        routed.op.map_or("-", Op::name),
        resource,
        answer.status().as_u16(),
        started.elapsed()
    );
    (answer, routed.op)
}

/// The error document of an injected fault, stamped like any answer.
fn refuse(state: &State, refusal: Refusal, head: bool) -> Response<Body> {
    let request_id = state.next_request_id();
    let mut answer = response::error(&refusal.error, "", &request_id, head);
    stamp(state, &mut answer, &request_id);
    if let Some(date) = refusal.date {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(date)) {
            answer.headers_mut().insert(header::DATE, v);
        }
    }
    debug!(
        "injected {} {}",
        refusal.error.status.as_u16(),
        refusal.error.code
    );
    answer
}

async fn serve(
    state: &State,
    req: Request<Incoming>,
    routed: &mut Routed,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = router::decode(parts.uri.path())?;
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(parts.uri.host());
    let target = router::route(host, &path, &state.bucket_names)?;
    routed.target = Some(target.clone());
    let query = Query::parse(parts.uri.query())?;
    let op = router::classify(&parts.method, &target.key, &query, &parts.headers)?;
    routed.op = Some(op);
    state.stats.count(op);
    let signed = SignedParts {
        method: parts.method.as_str(),
        path: &path,
        params: &query.pairs,
        headers: &parts.headers,
    };
    let authenticated = auth::authenticate(&state.keyring, &signed, SystemTime::now());
    state.stats.count_auth(match &authenticated {
        Ok(Principal::Anonymous) => AuthOutcome::Anonymous,
        Ok(Principal::Key(id)) if state.keyring.is_temporary(id) => AuthOutcome::Temporary,
        Ok(Principal::Key(_)) => AuthOutcome::Permanent,
        Err(e) => AuthOutcome::Rejected(e.code),
    });
    let principal = authenticated?;
    if state.deny_anonymous(op, principal == Principal::Anonymous) {
        return Err(ApiError::access_denied("Access Denied."));
    }
    let bucket = state
        .store
        .bucket(&target.bucket)
        .ok_or_else(ApiError::no_such_bucket)?;
    let ctx = Ctx {
        state,
        bucket,
        key: &target.key,
        query: &query,
        headers: &parts.headers,
    };
    handlers::dispatch(op, &ctx, body).await
}

/// The `<Resource>` of an error: the object's address at COS.
fn resource(state: &State, target: Option<&Target>) -> String {
    match target {
        Some(t) => format!("{}.cos.{}.myqcloud.com/{}", t.bucket, state.region, t.key),
        None => String::new(),
    }
}

/// Headers every answer carries, and COS's header spelling.
fn stamp(state: &State, answer: &mut Response<Body>, request_id: &str) {
    let headers = answer.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-cos-request-id", v);
    }
    headers.insert(header::SERVER, HeaderValue::from_static("tencent-cos"));
    *answer.extensions_mut() = state.header_case.clone();
}
