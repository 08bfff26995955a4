//! Request authentication: `q-sign-algorithm=sha1` signatures checked with
//! the shared signer ([`crate::cos::sign`]) over exactly the headers and
//! parameters the client listed, against a [`Keyring`] of SecretId →
//! credentials (permanent keys, and temporary STS keys with a session token
//! and an expiry, issued by `sts.rs`). Secrets and signatures are never logged.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::{HeaderMap, StatusCode};

use super::error::ApiError;
use crate::cos::sign::{self, AuthorizationFields, StringToSign};
use crate::creds::Credentials;

/// How far in the future a signature may start (client clock ahead of ours).
const MAX_SKEW_SECS: u64 = 15 * 60;

/// The keys the server accepts, by SecretId.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: RwLock<HashMap<String, Credentials>>,
}

impl Keyring {
    /// A keyring holding `keys`.
    pub fn new(keys: impl IntoIterator<Item = Credentials>) -> Keyring {
        let ring = Keyring::default();
        for k in keys {
            ring.insert(k);
        }
        ring
    }

    /// Adds or replaces the key with this SecretId.
    pub fn insert(&self, creds: Credentials) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.insert(creds.secret_id.clone(), creds);
    }

    /// Removes a key.
    pub fn remove(&self, secret_id: &str) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(secret_id);
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// True when `secret_id` is a temporary key (one with a session token).
    pub fn is_temporary(&self, secret_id: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(secret_id)
            .is_some_and(|c| c.session_token.is_some())
    }

    /// Forgets temporary keys that expired before `time`.
    pub fn remove_expired_before(&self, time: SystemTime) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, c| c.expires_at.is_none_or(|e| e >= time));
    }

    fn lookup(&self, secret_id: &str) -> Option<Credentials> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(secret_id)
            .cloned()
    }
}

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// No signature.
    Anonymous,
    /// A valid signature made with this SecretId.
    Key(String),
}

/// The parts of a request a signature covers.
#[derive(Clone, Copy, Debug)]
pub struct SignedParts<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The decoded request path (`/key`, `/bucket/key` or `/`).
    pub path: &'a str,
    /// Decoded query parameters.
    pub params: &'a [(String, String)],
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// Checks the request's signature (Authorization header, or the
/// query-string form of pre-signed URLs) at time `now`.
pub fn authenticate(
    keyring: &Keyring,
    req: &SignedParts,
    now: SystemTime,
) -> Result<Principal, ApiError> {
    let Some(authorization) = authorization(req) else {
        return Ok(Principal::Anonymous);
    };
    let fields = sign::parse_authorization(&authorization)
        .ok_or_else(|| ApiError::access_denied("The Authorization header is malformed."))?;
    let creds = keyring.lookup(&fields.secret_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The SecretId you provided does not exist in our records.",
        )
    })?;
    check_window(&fields, now)?;
    check_token(&creds, req, now)?;
    let expected = expected_signature(&fields, &creds, req)?;
    if !constant_time_eq(expected.as_bytes(), fields.signature.as_bytes()) {
        return Err(signature_mismatch());
    }
    Ok(Principal::Key(fields.secret_id))
}

/// The Authorization value, from the header or rebuilt from `q-*` params.
fn authorization(req: &SignedParts) -> Option<String> {
    if let Some(v) = req.headers.get(hyper::header::AUTHORIZATION) {
        return Some(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let fields: Vec<String> = req
        .params
        .iter()
        .filter(|(n, _)| n.starts_with("q-"))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let presigned = req.params.iter().any(|(n, _)| n == "q-sign-algorithm");
    presigned.then(|| fields.join("&"))
}

fn check_window(fields: &AuthorizationFields, now: SystemTime) -> Result<(), ApiError> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if fields.key_time.end < now {
        return Err(ApiError::access_denied("Request has expired"));
    }
    if fields.key_time.start > now + MAX_SKEW_SECS {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        ));
    }
    Ok(())
}

/// Temporary keys need their session token, and expire.
fn check_token(creds: &Credentials, req: &SignedParts, now: SystemTime) -> Result<(), ApiError> {
    let Some(token) = &creds.session_token else {
        return Ok(());
    };
    let sent = req
        .headers
        .get("x-cos-security-token")
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| param(req, "x-cos-security-token").map(|v| v.as_bytes().to_vec()));
    if !sent.is_some_and(|s| constant_time_eq(&s, token.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "InvalidToken",
            "The provided token is malformed or otherwise invalid.",
        ));
    }
    if creds.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::bad_request(
            "ExpiredToken",
            "The provided token has expired.",
        ));
    }
    Ok(())
}

fn param<'a>(req: &'a SignedParts, name: &str) -> Option<&'a str> {
    req.params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Signs what the request's lists name, as the client must have.
fn expected_signature(
    fields: &AuthorizationFields,
    creds: &Credentials,
    req: &SignedParts,
) -> Result<String, ApiError> {
    let mut headers = Vec::new();
    for name in dedup(&fields.header_list) {
        let (n, v) = req
            .headers
            .iter()
            .find(|(n, _)| sign::url_encode(n.as_str()).eq_ignore_ascii_case(name))
            .ok_or_else(signature_mismatch)?;
        headers.push((
            n.as_str().to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    let mut params = Vec::new();
    for name in dedup(&fields.url_param_list) {
        let before = params.len();
        for (n, v) in req.params {
            if sign::url_encode(n).to_ascii_lowercase() == *name {
                params.push((n.clone(), v.clone()));
            }
        }
        if params.len() == before {
            return Err(signature_mismatch());
        }
    }
    let to_sign = StringToSign {
        method: req.method,
        path: req.path,
        params: &params,
        headers: &headers,
    };
    Ok(sign::sign(
        &to_sign,
        &fields.secret_id,
        &creds.secret_key,
        fields.key_time,
    )
    .signature)
}

fn dedup(names: &[String]) -> Vec<&String> {
    let mut out: Vec<&String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn signature_mismatch() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    )
}

/// Compares without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::sign::KeyTime;

    const NOW: u64 = 1_700_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(NOW)
    }

    fn ring() -> Keyring {
        Keyring::new([Credentials::permanent("AKID", "secret")])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    /// Signs like a client: the given headers and params, with `key`.
    fn signed(
        key: &str,
        path: &str,
        params: &[(String, String)],
        h: &[(&str, &str)],
        window: KeyTime,
    ) -> HeaderMap {
        let signed: Vec<(String, String)> = h
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let to_sign = StringToSign {
            method: "GET",
            path,
            params,
            headers: &signed,
        };
        let auth = sign::sign(&to_sign, "AKID", key, window).authorization;
        let mut all = headers(h);
        all.insert(hyper::header::AUTHORIZATION, auth.parse().unwrap());
        all
    }

    fn window() -> KeyTime {
        KeyTime {
            start: NOW - 60,
            end: NOW + 3600,
        }
    }

    fn check(
        h: &HeaderMap,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Principal, ApiError> {
        let parts = SignedParts {
            method: "GET",
            path,
            params,
            headers: h,
        };
        authenticate(&ring(), &parts, now())
    }

    #[test]
    fn accepts_a_good_signature_over_headers_and_params() {
        let params = vec![
            ("prefix".to_string(), "a b/中".to_string()),
            ("uploads".to_string(), String::new()),
        ];
        let h = signed(
            "secret",
            "/k y",
            &params,
            &[("host", "b-1.cos.x"), ("x-cos-meta-a", "V")],
            window(),
        );
        assert_eq!(
            check(&h, "/k y", &params).unwrap(),
            Principal::Key("AKID".into())
        );
    }

    #[test]
    fn rejects_wrong_key_path_and_tampered_values() {
        let h = signed("wrong", "/k", &[], &[("host", "h")], window());
        assert_eq!(
            check(&h, "/k", &[]).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        let h = signed("secret", "/k", &[], &[("host", "h")], window());
        assert_eq!(
            check(&h, "/other", &[]).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        let mut tampered = h.clone();
        tampered.insert("host", "evil".parse().unwrap());
        assert_eq!(
            check(&tampered, "/k", &[]).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
    }

    #[test]
    fn a_listed_but_missing_header_or_param_fails() {
        let params = vec![("marker".to_string(), "m".to_string())];
        let h = signed(
            "secret",
            "/",
            &params,
            &[("host", "h"), ("range", "bytes=0-1")],
            window(),
        );
        let mut no_range = h.clone();
        no_range.remove("range");
        assert_eq!(
            check(&no_range, "/", &params).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            check(&h, "/", &[]).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        assert!(check(&h, "/", &params).is_ok());
    }

    #[test]
    fn reports_expiry_unknown_keys_and_garbage() {
        let old = KeyTime {
            start: NOW - 7200,
            end: NOW - 3600,
        };
        let h = signed("secret", "/", &[], &[("host", "h")], old);
        let e = check(&h, "/", &[]).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("AccessDenied", "Request has expired")
        );
        let future = KeyTime {
            start: NOW + 7200,
            end: NOW + 9000,
        };
        let h = signed("secret", "/", &[], &[("host", "h")], future);
        assert_eq!(
            check(&h, "/", &[]).unwrap_err().code,
            "RequestTimeTooSkewed"
        );
        let h = headers(&[(
            "authorization",
            "q-sign-algorithm=sha1&q-ak=NOPE&q-sign-time=1;2&q-key-time=1;2&q-header-list=&q-url-param-list=&q-signature=x",
        )]);
        assert_eq!(check(&h, "/", &[]).unwrap_err().code, "InvalidAccessKeyId");
        let h = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=x")]);
        assert_eq!(check(&h, "/", &[]).unwrap_err().code, "AccessDenied");
        assert_eq!(
            check(&HeaderMap::new(), "/", &[]).unwrap(),
            Principal::Anonymous
        );
    }

    #[test]
    fn accepts_presigned_query_strings() {
        let params = vec![(
            "response-content-type".to_string(),
            "text/plain".to_string(),
        )];
        let to_sign = StringToSign {
            method: "GET",
            path: "/k",
            params: &params,
            headers: &[],
        };
        let auth = sign::sign(&to_sign, "AKID", "secret", window()).authorization;
        let mut all = params.clone();
        for field in auth.split('&') {
            let (n, v) = field.split_once('=').unwrap();
            all.push((n.to_string(), v.to_string()));
        }
        assert_eq!(
            check(&HeaderMap::new(), "/k", &all).unwrap(),
            Principal::Key("AKID".into())
        );
    }

    #[test]
    fn temporary_keys_need_their_token() {
        let ring = Keyring::new([Credentials {
            secret_id: "AKID".into(),
            secret_key: "secret".into(),
            session_token: Some("tok".into()),
            expires_at: Some(now() + std::time::Duration::from_secs(60)),
        }]);
        let with = signed(
            "secret",
            "/",
            &[],
            &[("host", "h"), ("x-cos-security-token", "tok")],
            window(),
        );
        let without = signed("secret", "/", &[], &[("host", "h")], window());
        let parts = |h| SignedParts {
            method: "GET",
            path: "/",
            params: &[],
            headers: h,
        };
        assert!(authenticate(&ring, &parts(&with), now()).is_ok());
        assert_eq!(
            authenticate(&ring, &parts(&without), now())
                .unwrap_err()
                .code,
            "InvalidToken"
        );
        let later = now() + std::time::Duration::from_secs(120);
        assert_eq!(
            authenticate(&ring, &parts(&with), later).unwrap_err().code,
            "ExpiredToken"
        );
    }
}
