//! STS and instance-metadata emulation (`cosmount serve --sts-ttl SECS`), for
//! tests of temporary credentials. On its own address it answers:
//!
//! - `POST /` API 3.0 calls `AssumeRole` and `GetFederationToken`, TC3-signed
//!   with one of the server's permanent keys and checked with the client's
//!   own signer ([`crate::creds::tc3`]); answers and errors are shaped like
//!   Tencent's (`{"Response":{...,"RequestId"}}`, errors with HTTP 200);
//! - `GET /latest/meta-data/cam/security-credentials/` (one role name) and
//!   `GET .../security-credentials/<ROLE>` (any role), like the CVM
//!   metadata service.
//!
//! Every answer with credentials issues a fresh temporary key that expires
//! after the configured lifetime (shorter if the caller asks): it goes into
//! the COS port's [`Keyring`] with its token and expiry, so bucket requests
//! must carry that token and get `400 ExpiredToken` afterwards. Issued keys
//! are logged by SecretId only; the full keys are kept for the admin
//! endpoint (`GET /sts/issued`), so tests can look for them in logs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, header};
use log::{debug, info};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

use super::auth::Keyring;
use super::body::{self, Body};
use crate::creds::Credentials;
use crate::creds::clock::{format_time, from_unix, unix_seconds};
use crate::creds::sts::STS_VERSION;
use crate::creds::tc3::{self, Tc3Request};

/// Where the metadata service lists role credentials.
pub const METADATA_PATH: &str = "/latest/meta-data/cam/security-credentials";
/// The role name `GET .../security-credentials/` lists.
pub const LISTED_ROLE: &str = "cosmount-role";
/// How far `X-TC-Timestamp` may be from the server's clock (as at Tencent).
const MAX_SKEW: Duration = Duration::from_secs(300);
/// Largest API request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Expired keys stay in the keyring this long, so late requests get
/// `ExpiredToken` rather than `InvalidAccessKeyId`.
const KEEP_EXPIRED: Duration = Duration::from_secs(3600);

/// The emulation's settings (`--sts-listen`, `--sts-ttl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsEmulation {
    /// Address of the STS and metadata endpoint (port 0 picks one).
    pub listen: SocketAddr,
    /// Lifetime of issued keys (a caller may ask for less).
    pub ttl: Duration,
}

/// One issued key, for the admin endpoint.
#[derive(Clone)]
pub struct Issued {
    /// The keys, token and expiry.
    pub credentials: Credentials,
    /// Who asked: `cam_role ROLE`, `AssumeRole ARN (SESSION)`, ...
    pub caller: String,
}

/// The emulator's state.
pub struct Sts {
    keyring: Arc<Keyring>,
    /// The keys allowed to call the API (the server's permanent keys).
    callers: HashMap<String, Credentials>,
    ttl: Duration,
    issued: Mutex<Vec<Issued>>,
}

/// A failed API call: Tencent's error code and message.
#[derive(Debug, PartialEq, Eq)]
struct ApiCallError {
    code: &'static str,
    message: String,
}

fn fail(code: &'static str, message: impl Into<String>) -> ApiCallError {
    ApiCallError {
        code,
        message: message.into(),
    }
}

impl Sts {
    /// An emulator issuing keys into `keyring`; `callers` may sign API calls.
    pub fn new(keyring: Arc<Keyring>, callers: &[Credentials], ttl: Duration) -> Sts {
        Sts {
            keyring,
            callers: callers
                .iter()
                .filter(|c| c.session_token.is_none())
                .map(|c| (c.secret_id.clone(), c.clone()))
                .collect(),
            ttl,
            issued: Mutex::new(Vec::new()),
        }
    }

    /// Every key issued so far, oldest first.
    pub fn issued(&self) -> Vec<Issued> {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Issues a temporary key living `life` (at most the configured
    /// lifetime) and accepts it on the COS port.
    fn issue(&self, caller: &str, life: Option<Duration>) -> Credentials {
        let life = life
            .map_or(self.ttl, |l| l.min(self.ttl))
            .max(Duration::from_secs(1));
        let now = SystemTime::now();
        let expires_at = from_unix(unix_seconds(now) + life.as_secs());
        let creds = Credentials::temporary(
            &format!("AKIDtmp{}", random_text(28)),
            &random_text(32),
            &random_text(96),
            expires_at,
        );
        self.keyring.insert(creds.clone());
        self.keyring
            .remove_expired_before(now.checked_sub(KEEP_EXPIRED).unwrap_or(now));
        info!(
            "sts: issued temporary key {} to {caller}, expires at {} (in {}s)",
            creds.secret_id,
            format_time(expires_at),
            life.as_secs()
        );
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.push(Issued {
            credentials: creds.clone(),
            caller: caller.to_string(),
        });
        creds
    }
}

/// Serves one request on the STS/metadata port.
pub async fn handle(sts: Arc<Sts>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let answer = match (&parts.method, path.as_str()) {
        (&Method::POST, "/") => match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => api_call(&sts, &parts.headers, &collected.to_bytes()),
            Err(_) => api_error(&fail(
                "InvalidParameter",
                "The request body is unreadable or larger than 64 KiB.",
            )),
        },
        (&Method::GET, p) => metadata(&sts, p),
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    };
    debug!(
        "sts: {} {path} -> {}",
        parts.method,
        answer.status().as_u16()
    );
    Ok(answer)
}

/// The metadata service: the role list, or one role's credentials.
fn metadata(sts: &Sts, path: &str) -> Response<Body> {
    let Some(rest) = path.strip_prefix(METADATA_PATH) else {
        return text(StatusCode::NOT_FOUND, "Not Found");
    };
    let role = rest.trim_start_matches('/');
    if role.is_empty() {
        return text(StatusCode::OK, LISTED_ROLE);
    }
    if role.contains('/') {
        return text(StatusCode::NOT_FOUND, "Not Found");
    }
    let c = sts.issue(&format!("cam_role {role}"), None);
    let expires = c.expires_at.unwrap_or_else(SystemTime::now);
    json_response(&json!({
        "TmpSecretId": c.secret_id,
        "TmpSecretKey": c.secret_key,
        "ExpiredTime": unix_seconds(expires),
        "Expiration": format_time(expires),
        "Token": c.session_token,
        "Code": "Success",
    }))
}

/// An API 3.0 call: check the signature, then run the action.
fn api_call(sts: &Sts, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let result = verify(sts, headers, body, SystemTime::now()).and_then(|caller| {
        let params: Value = serde_json::from_slice(body)
            .map_err(|_| fail("InvalidParameter", "The request body is not a JSON object."))?;
        if !params.is_object() {
            return Err(fail(
                "InvalidParameter",
                "The request body is not a JSON object.",
            ));
        }
        match header_text(headers, "x-tc-action") {
            Some("AssumeRole") => assume_role(sts, &params, &caller),
            Some("GetFederationToken") => federation_token(sts, &params, &caller),
            Some(other) => Err(fail(
                "InvalidAction",
                format!("The action {other} does not exist in STS (emulated: AssumeRole, GetFederationToken)."),
            )),
            None => Err(missing("X-TC-Action")),
        }
    });
    match result {
        Ok(response) => json_response(&json!({ "Response": response })),
        Err(e) => api_error(&e),
    }
}

/// Checks the TC3-HMAC-SHA256 signature; returns the caller's SecretId.
fn verify(
    sts: &Sts,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<String, ApiCallError> {
    for required in ["X-TC-Version", "X-TC-Region", "X-TC-Timestamp"] {
        if header_text(headers, required).is_none() {
            return Err(missing(required));
        }
    }
    if header_text(headers, "x-tc-version") != Some(STS_VERSION) {
        return Err(fail(
            "InvalidParameterValue",
            format!("X-TC-Version must be {STS_VERSION}."),
        ));
    }
    let auth = header_text(headers, header::AUTHORIZATION.as_str())
        .ok_or_else(|| fail("AuthFailure.SignatureFailure", "The request is not signed."))?;
    let fields = parse_authorization(auth).ok_or_else(|| {
        fail(
            "AuthFailure.InvalidAuthorization",
            "The Authorization header is malformed: expected TC3-HMAC-SHA256 Credential=ID/DATE/sts/tc3_request, SignedHeaders=content-type;host, Signature=HEX.",
        )
    })?;
    let timestamp: u64 = header_text(headers, "x-tc-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| fail("InvalidParameterValue", "X-TC-Timestamp is not a number."))?;
    let skew = unix_seconds(now).abs_diff(timestamp);
    if skew > MAX_SKEW.as_secs() {
        return Err(fail(
            "AuthFailure.SignatureExpire",
            format!(
                "The request timestamp is {skew}s away from the server time (at most 300s allowed)."
            ),
        ));
    }
    let caller = sts.callers.get(&fields.secret_id).ok_or_else(|| {
        fail(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, or it is a temporary key (only permanent keys may call this emulator).",
        )
    })?;
    let request = Tc3Request {
        service: "sts",
        host: header_text(headers, "host").unwrap_or_default(),
        content_type: header_text(headers, "content-type").unwrap_or_default(),
        payload: body,
        timestamp,
    };
    let expected = tc3::sign(&request, &caller.secret_id, &caller.secret_key);
    if fields.scope_service != "sts"
        || !constant_time_eq(expected.signature.as_bytes(), fields.signature.as_bytes())
    {
        return Err(fail(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ));
    }
    Ok(fields.secret_id)
}

/// The fields of a TC3 Authorization value.
struct Tc3Fields {
    secret_id: String,
    scope_service: String,
    signature: String,
}

fn parse_authorization(value: &str) -> Option<Tc3Fields> {
    let rest = value.strip_prefix(tc3::ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in rest.split(',').map(str::trim) {
        let (name, v) = field.split_once('=')?;
        match name {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    if signed_headers? != "content-type;host" {
        return None;
    }
    let mut scope = credential?.split('/');
    let secret_id = scope.next()?.to_string();
    let _date = scope.next()?;
    let scope_service = scope.next()?.to_string();
    (scope.next()? == "tc3_request" && scope.next().is_none()).then_some(())?;
    Some(Tc3Fields {
        secret_id,
        scope_service,
        signature: signature?.to_string(),
    })
}

/// `AssumeRole`: `RoleArn`, `RoleSessionName`, optional `DurationSeconds`.
fn assume_role(sts: &Sts, params: &Value, caller: &str) -> Result<Value, ApiCallError> {
    let arn = required_text(params, "RoleArn")?;
    if !arn.starts_with("qcs::cam::") {
        return Err(fail(
            "InvalidParameter.ResourceError",
            format!("RoleArn {arn:?} is not of the form qcs::cam::uin/UIN:roleName/NAME."),
        ));
    }
    let session = required_text(params, "RoleSessionName")?;
    let session_ok = (2..=128).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !session_ok {
        return Err(fail(
            "InvalidParameterValue",
            "RoleSessionName must be 2-128 characters from [\\w+=,.@-].",
        ));
    }
    let duration = duration_param(params, 43200)?;
    let c = sts.issue(
        &format!("AssumeRole {arn} (session {session}, caller {caller})"),
        duration,
    );
    Ok(credentials_response(&c))
}

/// `GetFederationToken`: `Name`, `Policy`, optional `DurationSeconds`.
fn federation_token(sts: &Sts, params: &Value, caller: &str) -> Result<Value, ApiCallError> {
    let name = required_text(params, "Name")?;
    required_text(params, "Policy")?;
    let duration = duration_param(params, 129600)?.or(Some(Duration::from_secs(1800)));
    let c = sts.issue(
        &format!("GetFederationToken {name} (caller {caller})"),
        duration,
    );
    Ok(credentials_response(&c))
}

fn credentials_response(c: &Credentials) -> Value {
    let expires = c.expires_at.unwrap_or_else(SystemTime::now);
    json!({
        "Credentials": {
            "Token": c.session_token,
            "TmpSecretId": c.secret_id,
            "TmpSecretKey": c.secret_key,
        },
        "ExpiredTime": unix_seconds(expires),
        "Expiration": format_time(expires),
        "RequestId": request_id(),
    })
}

fn required_text<'a>(params: &'a Value, name: &str) -> Result<&'a str, ApiCallError> {
    match params.get(name) {
        None | Some(Value::Null) => Err(missing(name)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(fail(
            "InvalidParameterValue",
            format!("{name} must be a non-empty string."),
        )),
    }
}

fn duration_param(params: &Value, max: u64) -> Result<Option<Duration>, ApiCallError> {
    match params.get("DurationSeconds") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(secs) if (1..=max).contains(&secs) => Ok(Some(Duration::from_secs(secs))),
            _ => Err(fail(
                "InvalidParameterValue",
                format!("DurationSeconds must be a whole number from 1 to {max}."),
            )),
        },
    }
}

fn missing(name: &str) -> ApiCallError {
    fail(
        "MissingParameter",
        format!("The request is missing a required parameter `{name}`."),
    )
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Tencent answers API errors with HTTP 200 and `Response.Error`.
fn api_error(e: &ApiCallError) -> Response<Body> {
    json_response(&json!({
        "Response": {
            "Error": { "Code": e.code, "Message": e.message },
            "RequestId": request_id(),
        }
    }))
}

fn json_response(value: &Value) -> Response<Body> {
    let text = value.to_string();
    let mut answer = Response::new(body::full(Bytes::from(text)));
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    answer
}

fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut answer = Response::new(body::full(Bytes::from_static(message.as_bytes())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    answer
}

/// A UUID-shaped request id.
fn request_id() -> String {
    let h = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn random_text(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The issued keys as the admin endpoint shows them (secrets included:
/// the admin port exists for tests only).
pub fn issued_json(sts: &Sts) -> Value {
    let keys: Vec<Value> = sts
        .issued()
        .iter()
        .map(|i| {
            json!({
                "SecretId": i.credentials.secret_id,
                "SecretKey": i.credentials.secret_key,
                "Token": i.credentials.session_token,
                "ExpiredTime": i.credentials.expires_at.map(unix_seconds),
                "Caller": i.caller,
            })
        })
        .collect();
    Value::Array(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::sts::{AssumeRoleConfig, build_request, parse_response};

    const ID: &str = "AKIDpermanent0001";
    const KEY: &str = "permanent-secret-key";
    const HOST: &str = "127.0.0.1:9999";

    fn sts(ttl: u64) -> Sts {
        let ring = Arc::new(Keyring::new([Credentials::permanent(ID, KEY)]));
        Sts::new(
            ring,
            &[Credentials::permanent(ID, KEY)],
            Duration::from_secs(ttl),
        )
    }

    fn config(key: &str) -> AssumeRoleConfig {
        AssumeRoleConfig {
            role_arn: "qcs::cam::uin/100000000001:roleName/mount".into(),
            session_name: "cosmount".into(),
            endpoint: format!("http://{HOST}/"),
            region: "ap-guangzhou".into(),
            duration: Duration::from_secs(7200),
            base: Credentials::permanent(ID, key),
            base_origin: "the command line".into(),
        }
    }

    /// Sends what the client's AssumeRole provider sends, at `timestamp`.
    fn call(sts: &Sts, key: &str, timestamp: u64) -> (Response<Body>, HeaderMap, String) {
        let req = build_request(&config(key), HOST, timestamp);
        let mut headers = HeaderMap::new();
        headers.insert("host", HOST.parse().unwrap());
        for (n, v) in &req.headers {
            headers.insert(*n, v.parse().unwrap());
        }
        let answer = api_call(sts, &headers, req.body.as_bytes());
        (answer, headers, req.body)
    }

    async fn body_json(answer: Response<Body>) -> Value {
        let bytes = answer.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn assume_role_issues_keys_the_client_parses_and_the_keyring_knows() {
        let sts = sts(20);
        let now = unix_seconds(SystemTime::now());
        let (answer, _, _) = call(&sts, KEY, now);
        let json = body_json(answer).await;
        let text = json.to_string();
        let creds = parse_response(200, text.as_bytes(), "sts", "cli").unwrap();
        let expires = unix_seconds(creds.expires_at.unwrap());
        assert!(
            (now + 19..=now + 21).contains(&expires),
            "{expires} vs {now}"
        );
        assert!(creds.secret_id.starts_with("AKIDtmp"));
        assert!(json["Response"]["RequestId"].as_str().unwrap().len() == 36);
        let issued = sts.issued();
        assert_eq!(issued.len(), 1);
        assert_eq!(issued[0].credentials, creds);
        assert!(
            issued[0].caller.contains("session cosmount"),
            "{}",
            issued[0].caller
        );
        assert!(sts.keyring.is_temporary(&creds.secret_id));
    }

    #[tokio::test]
    async fn bad_signatures_keys_and_clocks_are_refused_in_tencents_shape() {
        let sts = sts(20);
        let now = unix_seconds(SystemTime::now());
        let code = |answer| async move {
            let json = body_json(answer).await;
            assert!(json["Response"]["RequestId"].is_string());
            json["Response"]["Error"]["Code"]
                .as_str()
                .unwrap_or("none")
                .to_string()
        };
        assert_eq!(
            code(call(&sts, "wrong", now).0).await,
            "AuthFailure.SignatureFailure"
        );
        assert_eq!(
            code(call(&sts, KEY, now - 600).0).await,
            "AuthFailure.SignatureExpire"
        );
        let (_, mut headers, body) = call(&sts, KEY, now);
        headers.insert("x-tc-action", "Frobnicate".parse().unwrap());
        assert_eq!(
            code(api_call(&sts, &headers, body.as_bytes())).await,
            "InvalidAction"
        );
        let tampered = body.replace("mount", "other");
        headers.insert("x-tc-action", "AssumeRole".parse().unwrap());
        assert_eq!(
            code(api_call(&sts, &headers, tampered.as_bytes())).await,
            "AuthFailure.SignatureFailure"
        );
        headers.insert("authorization", "TC3-HMAC-SHA256 nonsense".parse().unwrap());
        assert_eq!(
            code(api_call(&sts, &headers, body.as_bytes())).await,
            "AuthFailure.InvalidAuthorization"
        );
        headers.remove("x-tc-region");
        assert_eq!(
            code(api_call(&sts, &headers, body.as_bytes())).await,
            "MissingParameter"
        );
        let mut unknown = config(KEY);
        unknown.base.secret_id = "AKIDnobody".into();
        let req = build_request(&unknown, HOST, now);
        let mut headers = HeaderMap::new();
        headers.insert("host", HOST.parse().unwrap());
        for (n, v) in &req.headers {
            headers.insert(*n, v.parse().unwrap());
        }
        assert_eq!(
            code(api_call(&sts, &headers, req.body.as_bytes())).await,
            "AuthFailure.SecretIdNotFound"
        );
        assert_eq!(sts.issued().len(), 1, "only the one good call issued a key");
    }

    #[tokio::test]
    async fn federation_tokens_need_name_and_policy_and_respect_shorter_durations() {
        let sts = sts(3600);
        let now = unix_seconds(SystemTime::now());
        let sign = |body: &str, action: &str| {
            let req = Tc3Request {
                service: "sts",
                host: HOST,
                content_type: "application/json",
                payload: body.as_bytes(),
                timestamp: now,
            };
            let mut headers = HeaderMap::new();
            headers.insert("host", HOST.parse().unwrap());
            headers.insert("content-type", "application/json".parse().unwrap());
            headers.insert("x-tc-action", action.parse().unwrap());
            headers.insert("x-tc-version", STS_VERSION.parse().unwrap());
            headers.insert("x-tc-region", "ap-guangzhou".parse().unwrap());
            headers.insert("x-tc-timestamp", now.to_string().parse().unwrap());
            let auth = tc3::sign(&req, ID, KEY).authorization;
            headers.insert("authorization", auth.parse().unwrap());
            api_call(&sts, &headers, body.as_bytes())
        };
        let json = body_json(sign(
            r#"{"Name":"web","Policy":"%7B%7D","DurationSeconds":600}"#,
            "GetFederationToken",
        ))
        .await;
        let expires = json["Response"]["ExpiredTime"].as_u64().unwrap();
        assert!((now + 599..=now + 601).contains(&expires), "{json}");
        assert!(json["Response"]["Credentials"]["Token"].is_string());
        let json = body_json(sign(r#"{"Name":"web"}"#, "GetFederationToken")).await;
        assert_eq!(json["Response"]["Error"]["Code"], "MissingParameter");
        let json = body_json(sign(
            r#"{"RoleArn":"qcs::cam::uin/1:roleName/r","RoleSessionName":"x"}"#,
            "AssumeRole",
        ))
        .await;
        assert_eq!(json["Response"]["Error"]["Code"], "InvalidParameterValue");
    }

    #[tokio::test]
    async fn metadata_lists_a_role_and_issues_keys_for_any_role() {
        let sts = sts(20);
        let list = metadata(&sts, "/latest/meta-data/cam/security-credentials/");
        let bytes = list.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], LISTED_ROLE.as_bytes());
        let answer = metadata(&sts, "/latest/meta-data/cam/security-credentials/any-role");
        let json = body_json(answer).await;
        assert_eq!(json["Code"], "Success");
        let text = json.to_string();
        let creds =
            crate::creds::metadata::parse_role_credentials(text.as_bytes(), "cam_role").unwrap();
        assert!(sts.keyring.is_temporary(&creds.secret_id));
        assert_eq!(sts.issued()[0].caller, "cam_role any-role");
        assert_eq!(
            metadata(&sts, "/latest/other").status(),
            StatusCode::NOT_FOUND
        );
    }
}
