//! `cam_role`: temporary keys of a CAM role attached to a CVM instance, from
//! the instance metadata service (`GET <endpoint>/<ROLE>`, plain HTTP).
//! The base URL is an option so tests and `cosmount serve` can stand in for
//! the real service. An answer whose `Code` is not `Success` is a failure
//! even with HTTP 200; `ExpiredTime` (else `Expiration`) gives the expiry.

use std::time::Duration;

use serde::Deserialize;

use super::clock::{from_unix, parse_time};
use super::error::describe_json_error;
use super::{Credentials, CredsError, FetchFuture, Provider, http};

/// Where the metadata service lists role credentials on a CVM instance.
pub const DEFAULT_CAM_ROLE_ENDPOINT: &str =
    "http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials";

/// Which role, and where to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CamRoleConfig {
    /// The role name.
    pub role: String,
    /// Base URL; the role name is appended as one more path segment.
    pub endpoint: String,
}

impl CamRoleConfig {
    /// The URL answering with the role's credentials.
    pub fn url(&self) -> String {
        format!("{}/{}", self.endpoint.trim_end_matches('/'), self.role)
    }
}

/// Fetches a role's keys from the metadata service.
pub struct CamRoleProvider {
    config: CamRoleConfig,
    http: reqwest::Client,
}

impl CamRoleProvider {
    /// A provider for `config`.
    pub fn new(config: CamRoleConfig) -> Result<CamRoleProvider, CredsError> {
        let name = format!("cam_role {}", config.role);
        http::parse_url("cam_role_endpoint", &config.endpoint)?;
        let http = http::client(Duration::from_secs(10), false, &name)?;
        Ok(CamRoleProvider { config, http })
    }

    async fn get(&self) -> Result<Credentials, CredsError> {
        let (name, url) = (self.name(), self.config.url());
        let resp = self.http.get(&url).send().await.map_err(|e| {
            CredsError::unavailable(
                &name,
                format!(
                    "cannot reach the metadata service at {url} ({}): cam_role works only on a CVM instance; elsewhere use keys, or point cam_role_endpoint at a metadata service",
                    http::describe(e)
                ),
            )
        })?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(CredsError::refused(
                &name,
                format!(
                    "metadata service at {url} answered 404: is the role attached to this instance?"
                ),
            ));
        }
        if !(200..300).contains(&status) {
            return Err(CredsError::refused(
                &name,
                format!("metadata service at {url} answered {status}: try again later"),
            ));
        }
        let body = resp.bytes().await.map_err(|e| {
            CredsError::unavailable(
                &name,
                format!("reading the answer from {url}: {}", http::describe(e)),
            )
        })?;
        parse_role_credentials(&body, &name)
    }
}

impl Provider for CamRoleProvider {
    fn name(&self) -> String {
        format!("cam_role {}", self.config.role)
    }

    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(self.get())
    }
}

/// The metadata service's answer (deliberately not `Debug`: it holds keys).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentials {
    code: Option<String>,
    message: Option<String>,
    tmp_secret_id: Option<String>,
    tmp_secret_key: Option<String>,
    token: Option<String>,
    expired_time: Option<u64>,
    expiration: Option<String>,
}

/// Parses a metadata answer; `origin` names the source in errors.
pub fn parse_role_credentials(body: &[u8], origin: &str) -> Result<Credentials, CredsError> {
    let answer: RoleCredentials = serde_json::from_slice(body).map_err(|e| {
        CredsError::invalid(
            origin,
            format!(
                "the metadata service's answer is {}",
                describe_json_error(&e)
            ),
        )
    })?;
    match answer.code.as_deref() {
        Some("Success") => {}
        code => {
            let message = answer.message.as_deref().unwrap_or("no message");
            return Err(CredsError::refused(
                origin,
                format!(
                    "the metadata service answered Code {} ({message}): check the role name and that the role is attached to this instance",
                    code.unwrap_or("(none)")
                ),
            ));
        }
    }
    let missing = |field: &str| {
        CredsError::invalid(
            origin,
            format!("the metadata service's answer has no {field}"),
        )
    };
    let expires_at = match (answer.expired_time, answer.expiration.as_deref()) {
        (Some(secs), _) => from_unix(secs),
        (None, Some(text)) => parse_time(text).ok_or_else(|| missing("valid Expiration"))?,
        (None, None) => return Err(missing("ExpiredTime")),
    };
    Ok(Credentials::temporary(
        &answer.tmp_secret_id.ok_or_else(|| missing("TmpSecretId"))?,
        &answer
            .tmp_secret_key
            .ok_or_else(|| missing("TmpSecretKey"))?,
        &answer.token.ok_or_else(|| missing("Token"))?,
        expires_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::clock::unix_seconds;
    use crate::creds::testutil::serve;

    const ANSWER: &str = r#"{"TmpSecretId":"AKIDrole","TmpSecretKey":"ROLEKEY","ExpiredTime":1615590047,"Expiration":"2021-03-12T23:00:47Z","Token":"ROLETOKEN","Code":"Success"}"#;

    #[test]
    fn parses_the_documented_answer() {
        let c = parse_role_credentials(ANSWER.as_bytes(), "cam_role r").unwrap();
        assert_eq!(c.secret_id, "AKIDrole");
        assert_eq!(c.secret_key, "ROLEKEY");
        assert_eq!(c.session_token.as_deref(), Some("ROLETOKEN"));
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 1615590047);
        let without_expired_time = ANSWER.replace(r#""ExpiredTime":1615590047,"#, "");
        let c = parse_role_credentials(without_expired_time.as_bytes(), "cam_role r").unwrap();
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 1615590047);
    }

    #[test]
    fn a_code_other_than_success_is_a_failure() {
        let body = r#"{"Code":"Failed","Message":"role not found","TmpSecretId":"A","TmpSecretKey":"SECRET","Token":"T","ExpiredTime":1}"#;
        let e = parse_role_credentials(body.as_bytes(), "cam_role r").unwrap_err();
        assert!(matches!(e, CredsError::Refused { .. }));
        let text = e.to_string();
        assert!(
            text.starts_with(
                "cam_role r: the metadata service answered Code Failed (role not found)"
            ),
            "{text}"
        );
        assert!(!text.contains("SECRET"));
        let no_code = ANSWER.replace(r#","Code":"Success""#, "");
        assert!(
            parse_role_credentials(no_code.as_bytes(), "x")
                .unwrap_err()
                .to_string()
                .contains("Code (none)")
        );
    }

    #[test]
    fn missing_fields_and_bad_json_are_named() {
        let body = ANSWER.replace(r#""Token":"ROLETOKEN","#, "");
        let e = parse_role_credentials(body.as_bytes(), "cam_role r").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cam_role r: the metadata service's answer has no Token"
        );
        let e = parse_role_credentials(b"<html>", "cam_role r").unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let body = r#"{"Code":"Success","TmpSecretId":"A","TmpSecretKey":123,"Token":"T","ExpiredTime":1}"#;
        let e = parse_role_credentials(body.as_bytes(), "cam_role r").unwrap_err();
        assert!(!e.to_string().contains("123"), "{e}");
    }

    fn provider(base: &str) -> CamRoleProvider {
        CamRoleProvider::new(CamRoleConfig {
            role: "mount-role".into(),
            endpoint: format!("{base}/latest/meta-data/cam/security-credentials/"),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn fetches_from_a_local_metadata_service() {
        let (base, requests) = serve(vec![(200, ANSWER.to_string())]).await;
        let c = provider(&base).fetch().await.unwrap();
        assert_eq!(c.secret_id, "AKIDrole");
        let requests = requests.await.unwrap();
        assert_eq!(
            requests[0].request_line(),
            "GET /latest/meta-data/cam/security-credentials/mount-role HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn explains_a_404_and_an_unreachable_service() {
        let (base, _requests) = serve(vec![(404, String::new())]).await;
        let e = provider(&base).fetch().await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cam_role mount-role: metadata service at {base}/latest/meta-data/cam/security-credentials/mount-role answered 404: is the role attached to this instance?"
            )
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = provider(&closed).fetch().await.unwrap_err();
        assert!(matches!(e, CredsError::Unavailable { .. }));
        assert!(
            e.to_string().contains("cannot reach the metadata service"),
            "{e}"
        );
    }
}
