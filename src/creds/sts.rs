//! STS AssumeRole: trade permanent keys for a role's temporary ones, signed
//! with TC3-HMAC-SHA256 (`tc3.rs`). The endpoint is an option so tests and
//! `cosmount serve` can stand in for `sts.tencentcloudapi.com` over plain
//! HTTP. `Response.Error` is checked before anything else, whatever the
//! HTTP status, because STS reports most failures with a 200.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::clock::{from_unix, parse_time, unix_seconds};
use super::error::describe_json_error;
use super::tc3::{self, Tc3Request};
use super::{Clock, Credentials, CredsError, FetchFuture, Provider, http};

/// Tencent Cloud's STS endpoint.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.tencentcloudapi.com/";
/// The STS API version.
pub const STS_VERSION: &str = "2018-08-13";
/// `RoleSessionName` when none is given.
pub const DEFAULT_SESSION_NAME: &str = "cosmount";
/// `DurationSeconds` when none is given (STS's own default).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(7200);
/// The longest `DurationSeconds` STS accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(43200);

const CONTENT_TYPE: &str = "application/json";

/// What to ask STS for, and the permanent keys to ask with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeRoleConfig {
    /// `RoleArn`, e.g. `qcs::cam::uin/100000000001:roleName/NAME`.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// STS endpoint URL.
    pub endpoint: String,
    /// `X-TC-Region`.
    pub region: String,
    /// `DurationSeconds`.
    pub duration: Duration,
    /// The keys that call STS (never sent to COS).
    pub base: Credentials,
    /// Where `base` came from, for messages.
    pub base_origin: String,
}

/// An AssumeRole request with its headers; `Host` is left to the HTTP
/// client, which sends exactly [`AssumeRoleProvider`]'s signed host.
pub struct SignedRequest {
    /// Headers to send, Authorization included.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

/// Calls AssumeRole.
pub struct AssumeRoleProvider {
    config: AssumeRoleConfig,
    url: reqwest::Url,
    host: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl AssumeRoleProvider {
    /// A provider for `config`; `clock` gives `X-TC-Timestamp`.
    pub fn new(
        config: AssumeRoleConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<AssumeRoleProvider, CredsError> {
        let url = http::parse_url("sts_endpoint", &config.endpoint)?;
        let host = host_header(&url);
        let name = format!("sts AssumeRole {}", config.role_arn);
        let http = http::client(Duration::from_secs(30), !http::is_loopback(&url), &name)?;
        Ok(AssumeRoleProvider {
            config,
            url,
            host,
            http,
            clock,
        })
    }

    async fn assume(&self) -> Result<Credentials, CredsError> {
        let name = self.name();
        let request = build_request(&self.config, &self.host, unix_seconds(self.clock.now()));
        let mut req = self.http.post(self.url.clone()).body(request.body);
        for (header, value) in request.headers {
            req = req.header(header, value);
        }
        let resp = req.send().await.map_err(|e| {
            CredsError::unavailable(
                &name,
                format!(
                    "cannot reach STS at {} ({}): check the network or sts_endpoint",
                    self.url,
                    http::describe(e)
                ),
            )
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| {
            CredsError::unavailable(
                &name,
                format!("reading STS's answer: {}", http::describe(e)),
            )
        })?;
        parse_response(status, &body, &name, &self.config.base_origin)
    }
}

impl Provider for AssumeRoleProvider {
    fn name(&self) -> String {
        format!("sts AssumeRole {}", self.config.role_arn)
    }

    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(self.assume())
    }
}

/// The Host header a client sends for `url`: the host, plus the port when
/// it is not the scheme's default.
pub fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Builds and signs an AssumeRole call at `timestamp` for `host`.
pub fn build_request(config: &AssumeRoleConfig, host: &str, timestamp: u64) -> SignedRequest {
    let body = serde_json::json!({
        "RoleArn": config.role_arn,
        "RoleSessionName": config.session_name,
        "DurationSeconds": config.duration.as_secs(),
    })
    .to_string();
    let req = Tc3Request {
        service: "sts",
        host,
        content_type: CONTENT_TYPE,
        payload: body.as_bytes(),
        timestamp,
    };
    let signature = tc3::sign(&req, &config.base.secret_id, &config.base.secret_key);
    let mut headers = vec![
        ("content-type", CONTENT_TYPE.to_string()),
        ("x-tc-action", "AssumeRole".to_string()),
        ("x-tc-version", STS_VERSION.to_string()),
        ("x-tc-timestamp", timestamp.to_string()),
        ("x-tc-region", config.region.clone()),
        ("authorization", signature.authorization),
    ];
    if let Some(token) = &config.base.session_token {
        headers.push(("x-tc-token", token.clone()));
    }
    SignedRequest { headers, body }
}

/// STS's `Response` on success (not `Debug`: it holds keys).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    credentials: StsCredentials,
    expired_time: Option<u64>,
    expiration: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    tmp_secret_id: String,
    tmp_secret_key: String,
    token: String,
}

/// Reads STS's answer: `Response.Error` first (even on 200), then the
/// credentials. `base_origin` says which keys to check on auth failures.
pub fn parse_response(
    status: u16,
    body: &[u8],
    origin: &str,
    base_origin: &str,
) -> Result<Credentials, CredsError> {
    let json: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if status != 200 => {
            return Err(CredsError::refused(
                origin,
                format!("STS answered HTTP {status} without a JSON body: check sts_endpoint"),
            ));
        }
        Err(e) => {
            return Err(CredsError::invalid(
                origin,
                format!("STS's answer is {}", describe_json_error(&e)),
            ));
        }
    };
    let response = &json["Response"];
    if let Some(error) = response.get("Error") {
        let code = error["Code"].as_str().unwrap_or("(no code)");
        let message = error["Message"].as_str().unwrap_or("no message");
        let request_id = response["RequestId"].as_str().unwrap_or("none");
        return Err(CredsError::refused(
            origin,
            format!(
                "STS answered {code}: {message} (request id {request_id}): {}",
                advice(code, base_origin)
            ),
        ));
    }
    if status != 200 {
        return Err(CredsError::refused(
            origin,
            format!("STS answered HTTP {status}: check sts_endpoint"),
        ));
    }
    let answer: AssumeRoleResponse = serde_json::from_value(response.clone()).map_err(|e| {
        CredsError::invalid(
            origin,
            format!("STS's Response is {}", describe_json_error(&e)),
        )
    })?;
    let expires_at = match (
        answer.expired_time,
        answer.expiration.as_deref().and_then(parse_time),
    ) {
        (Some(secs), _) => from_unix(secs),
        (None, Some(t)) => t,
        (None, None) => {
            return Err(CredsError::invalid(
                origin,
                "STS's Response has no ExpiredTime",
            ));
        }
    };
    let c = answer.credentials;
    Ok(Credentials::temporary(
        &c.tmp_secret_id,
        &c.tmp_secret_key,
        &c.token,
        expires_at,
    ))
}

/// What to do about an STS error code.
fn advice(code: &str, base_origin: &str) -> String {
    if code.contains("Unauthorized") {
        format!(
            "the keys from {base_origin} may not assume this role: check the role's trust policy and that the keys may call sts:AssumeRole"
        )
    } else if code.starts_with("AuthFailure") {
        format!("check the SecretId/SecretKey from {base_origin} and the local clock")
    } else if code.starts_with("InvalidParameter") || code.starts_with("ResourceNotFound") {
        "check role_arn, role_session_name and sts_duration".to_string()
    } else {
        "see Tencent Cloud's STS error codes".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::SystemClock;
    use crate::creds::testutil::serve;

    const OK: &str = r#"{"Response":{"Credentials":{"Token":"STSTOKEN","TmpSecretId":"AKIDsts","TmpSecretKey":"STSKEY"},"ExpiredTime":1615590047,"Expiration":"2021-03-12T23:00:47Z","RequestId":"r-1"}}"#;

    fn config(endpoint: &str) -> AssumeRoleConfig {
        AssumeRoleConfig {
            role_arn: "qcs::cam::uin/100000000001:roleName/cosfs-mount".into(),
            session_name: "cosfs-session".into(),
            endpoint: endpoint.into(),
            region: "ap-guangzhou".into(),
            duration: DEFAULT_DURATION,
            base: Credentials::permanent(
                "AKIDexampleSecretIdForVectors0000000",
                "exampleSecretKeyForVectors000000",
            ),
            base_origin: "the command line".into(),
        }
    }

    #[test]
    fn parses_success_and_checks_error_first() {
        let c = parse_response(200, OK.as_bytes(), "sts", "cli").unwrap();
        assert_eq!(
            (c.secret_id.as_str(), c.secret_key.as_str()),
            ("AKIDsts", "STSKEY")
        );
        assert_eq!(c.session_token.as_deref(), Some("STSTOKEN"));
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 1615590047);
        let err = r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad signature"},"RequestId":"r-2","Credentials":{"Token":"T","TmpSecretId":"A","TmpSecretKey":"K"},"ExpiredTime":1}}"#;
        let e = parse_response(
            200,
            err.as_bytes(),
            "sts AssumeRole x",
            "environment COS_SECRET_ID/COS_SECRET_KEY",
        )
        .unwrap_err();
        assert!(matches!(e, CredsError::Refused { .. }));
        assert_eq!(
            e.to_string(),
            "sts AssumeRole x: STS answered AuthFailure.SignatureFailure: bad signature (request id r-2): check the SecretId/SecretKey from environment COS_SECRET_ID/COS_SECRET_KEY and the local clock"
        );
        let denied = err.replace(
            "AuthFailure.SignatureFailure",
            "AuthFailure.UnauthorizedOperation",
        );
        let e = parse_response(400, denied.as_bytes(), "sts", "cli")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trust policy"), "{e}");
    }

    #[test]
    fn bad_answers_are_explained() {
        let e = parse_response(502, b"<html>bad gateway</html>", "sts", "cli")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "sts: STS answered HTTP 502 without a JSON body: check sts_endpoint"
        );
        let e = parse_response(200, b"{\"Response\":{}}", "sts", "cli")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `Credentials`"), "{e}");
        let no_expiry = OK.replace(
            r#""ExpiredTime":1615590047,"Expiration":"2021-03-12T23:00:47Z","#,
            "",
        );
        let e = parse_response(200, no_expiry.as_bytes(), "sts", "cli")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no ExpiredTime"), "{e}");
        let e = parse_response(200, b"nope", "sts", "cli")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn builds_the_sdk_request() {
        let c = config(DEFAULT_STS_ENDPOINT);
        let url = reqwest::Url::parse(DEFAULT_STS_ENDPOINT).unwrap();
        assert_eq!(host_header(&url), "sts.tencentcloudapi.com");
        let req = build_request(&c, "sts.tencentcloudapi.com", 1700000000);
        let header = |n: &str| {
            req.headers
                .iter()
                .find(|(h, _)| *h == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-tc-action"), Some("AssumeRole"));
        assert_eq!(header("x-tc-version"), Some("2018-08-13"));
        assert_eq!(header("x-tc-region"), Some("ap-guangzhou"));
        assert_eq!(header("x-tc-token"), None);
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body["RoleArn"],
            "qcs::cam::uin/100000000001:roleName/cosfs-mount"
        );
        assert_eq!(body["DurationSeconds"], 7200);
        let auth = header("authorization").unwrap();
        assert!(auth.starts_with("TC3-HMAC-SHA256 Credential=AKIDexampleSecretIdForVectors0000000/2023-11-14/sts/tc3_request, SignedHeaders=content-type;host, Signature="), "{auth}");
        let with_port = reqwest::Url::parse("http://127.0.0.1:8080/sts").unwrap();
        assert_eq!(host_header(&with_port), "127.0.0.1:8080");
    }

    #[tokio::test]
    async fn assumes_a_role_at_a_local_endpoint() {
        let (base, requests) = serve(vec![(200, OK.to_string())]).await;
        let mut c = config(&format!("{base}/"));
        c.base.session_token = Some("CALLERTOKEN".into());
        let p = AssumeRoleProvider::new(c.clone(), Arc::new(SystemClock)).unwrap();
        let creds = p.fetch().await.unwrap();
        assert_eq!(creds.secret_id, "AKIDsts");
        let r = &requests.await.unwrap()[0];
        assert_eq!(r.request_line(), "POST / HTTP/1.1");
        assert_eq!(r.header("x-tc-token").as_deref(), Some("CALLERTOKEN"));
        // What the server received verifies against the signer.
        let host = r.header("host").unwrap();
        assert_eq!(host, base.trim_start_matches("http://"));
        let timestamp: u64 = r.header("x-tc-timestamp").unwrap().parse().unwrap();
        let expected = tc3::sign(
            &Tc3Request {
                service: "sts",
                host: &host,
                content_type: &r.header("content-type").unwrap(),
                payload: &r.body,
                timestamp,
            },
            &c.base.secret_id,
            &c.base.secret_key,
        );
        assert_eq!(r.header("authorization").unwrap(), expected.authorization);
    }

    #[tokio::test]
    async fn reports_sts_errors_sent_with_200() {
        let err = r#"{"Response":{"Error":{"Code":"InvalidParameter.RoleArn","Message":"role not found"},"RequestId":"r-3"}}"#;
        let (base, _requests) = serve(vec![(200, err.to_string())]).await;
        let p = AssumeRoleProvider::new(config(&base), Arc::new(SystemClock)).unwrap();
        let e = p.fetch().await.unwrap_err().to_string();
        assert!(e.starts_with("sts AssumeRole qcs::cam::uin/100000000001:roleName/cosfs-mount: STS answered InvalidParameter.RoleArn: role not found (request id r-3): check role_arn"), "{e}");
        assert!(!e.contains("exampleSecretKey"));
    }
}
