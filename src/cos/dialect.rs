//! Whether the server of a mount that speaks COS's dialect really is COS,
//! learned from its answers.
//!
//! A server-side copy is a `PUT` whose meaning lives in `x-cos-copy-source`
//! and `x-cos-metadata-directive`. A server that does not know those headers
//! (any plain S3 server, a misconfigured gateway) takes it for the upload of
//! an empty body and replaces the object with nothing. So a copy is sent only
//! to a server that has shown it is COS: COS and `cosmount serve` stamp every
//! answer with `x-cos-request-id`; an S3 server sends `x-amz-request-id` and
//! no COS header. The first answer that decides is final: a COS answer
//! proves COS; any other answer below 500 proves something else (a 5xx
//! without the header may come from a proxy in front, and decides nothing).

use std::sync::OnceLock;

use log::warn;
use reqwest::header::HeaderMap;

use super::CosError;

/// The header COS puts on every answer, errors included.
pub const COS_REQUEST_ID: &str = "x-cos-request-id";

/// What the answers so far say about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// Nothing decisive yet.
    Undecided,
    /// An answer carried `x-cos-request-id`.
    Cos,
    /// An answer without any COS header: what it said instead.
    Other(String),
}

/// The servers a mount writes to with server-side copies, for messages.
pub const SUPPORTED_SERVERS: &str = "Tencent Cloud COS and `cosmount serve`";

/// The verdict on one endpoint's server, set once by the first deciding answer.
#[derive(Debug)]
pub struct ServerDialect {
    /// `scheme://host` of the endpoint, for messages.
    endpoint: String,
    verdict: OnceLock<ServerKind>,
}

impl ServerDialect {
    /// Nothing known yet about the server at `endpoint` (`scheme://host`).
    pub fn new(endpoint: String) -> ServerDialect {
        ServerDialect {
            endpoint,
            verdict: OnceLock::new(),
        }
    }

    /// What the answers so far proved.
    pub fn kind(&self) -> ServerKind {
        self.verdict.get().cloned().unwrap_or(ServerKind::Undecided)
    }

    /// Learns from one answer; the first answer that proves something is
    /// final, and proving it is not COS logs one warning.
    pub fn observe(&self, status: u16, headers: &HeaderMap) {
        if self.verdict.get().is_some() {
            return;
        }
        let Some(kind) = judge(status, headers) else {
            return;
        };
        if self.verdict.set(kind.clone()).is_ok() {
            if let ServerKind::Other(what) = kind {
                warn!("{}", self.not_cos_message(&what));
            }
        }
    }

    /// `Ok` when the server proved it is COS; otherwise the refusal of an
    /// operation (`op`, e.g. "copy") that needs COS's server-side copy.
    pub fn require_cos(&self, op: &str) -> Result<(), CosError> {
        match self.kind() {
            ServerKind::Cos => Ok(()),
            ServerKind::Undecided => Err(CosError::Unsupported(format!(
                "{op} refused: the server at {} has not yet shown that it speaks COS (no answer with {COS_REQUEST_ID}), and a server-side copy sent to another server can replace the object with an empty one",
                self.endpoint
            ))),
            ServerKind::Other(what) => Err(CosError::Unsupported(format!(
                "{op} refused: the server at {} does not speak COS ({what})",
                self.endpoint
            ))),
        }
    }

    /// The warning logged once when the server proves not to be COS.
    pub fn not_cos_message(&self, what: &str) -> String {
        format!(
            "the server at {} does not speak COS ({what}). Reads, listings, new files and deletes work; chmod, chown, touch -d/utimens and rename need COS's server-side copy, which such a server takes for an upload of nothing, so they are refused (EOPNOTSUPP, EXDEV for rename: mv then copies the data itself) and nothing is overwritten. Writes with server-side copies are supported on {SUPPORTED_SERVERS}; for an S3-compatible server, mount with --provider s3 (SigV4 and S3's own copies).",
            self.endpoint
        )
    }
}

/// What one answer proves, if anything.
fn judge(status: u16, headers: &HeaderMap) -> Option<ServerKind> {
    if headers.contains_key(COS_REQUEST_ID) {
        return Some(ServerKind::Cos);
    }
    if status >= 500 {
        return None;
    }
    let mut what = format!("it answered HTTP {status} without {COS_REQUEST_ID}");
    if headers.contains_key("x-amz-request-id") {
        what.push_str(", with S3's x-amz-request-id");
    }
    if let Some(server) = headers.get("server").and_then(|v| v.to_str().ok()) {
        what.push_str(&format!(", Server: {server}"));
    }
    Some(ServerKind::Other(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_cos_request_id_proves_cos_even_on_errors() {
        let d = ServerDialect::new("http://127.0.0.1:1".into());
        assert_eq!(d.kind(), ServerKind::Undecided);
        d.observe(404, &headers(&[(COS_REQUEST_ID, "abc")]));
        assert_eq!(d.kind(), ServerKind::Cos);
        assert!(d.require_cos("copy").is_ok());
    }

    #[test]
    fn an_s3_answer_proves_another_server_and_is_final() {
        let d = ServerDialect::new("http://127.0.0.1:1".into());
        d.observe(
            200,
            &headers(&[("x-amz-request-id", "1"), ("server", "SeaweedFS 4.48")]),
        );
        d.observe(200, &headers(&[(COS_REQUEST_ID, "abc")]));
        let ServerKind::Other(what) = d.kind() else {
            panic!("{:?}", d.kind());
        };
        assert_eq!(
            what,
            "it answered HTTP 200 without x-cos-request-id, with S3's x-amz-request-id, Server: SeaweedFS 4.48"
        );
        let e = d.require_cos("chmod").unwrap_err();
        assert!(matches!(e, CosError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("http://127.0.0.1:1"), "{e}");
    }

    #[test]
    fn a_bare_5xx_decides_nothing() {
        let d = ServerDialect::new("http://127.0.0.1:1".into());
        d.observe(502, &HeaderMap::new());
        assert_eq!(d.kind(), ServerKind::Undecided);
        assert!(d.require_cos("copy").is_err());
    }
}
