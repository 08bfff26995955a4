//! Typed COS errors: service errors (from the COS error XML) apart from
//! transport and integrity failures, with one place that decides what is
//! worth retrying.

use std::fmt;

/// Everything a COS operation can fail with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CosError {
    /// The service answered with an error status or an `<Error>` body.
    Service {
        /// HTTP status.
        status: u16,
        /// COS error `Code` (empty for bodiless answers such as HEAD 404).
        code: String,
        /// COS error `Message`.
        message: String,
        /// `x-cos-request-id`, for support tickets.
        request_id: Option<String>,
    },
    /// No usable answer: connect failure, reset, timeout.
    Transport {
        /// What went wrong.
        message: String,
        /// True when the deadline passed.
        timeout: bool,
    },
    /// The answer arrived but is damaged: CRC64 mismatch, short body.
    Integrity(String),
    /// The answer could not be understood (bad XML, missing header).
    InvalidResponse(String),
    /// The request was refused before sending (e.g. an unusable key).
    InvalidRequest(String),
    /// The server cannot do this safely (a server-side copy on a server
    /// that has not shown it speaks COS); nothing was sent.
    Unsupported(String),
}

impl CosError {
    /// A service error with the given status and code.
    pub fn service(status: u16, code: &str, message: &str) -> CosError {
        CosError::Service {
            status,
            code: code.to_string(),
            message: message.to_string(),
            request_id: None,
        }
    }

    /// The HTTP status of a service error.
    pub fn status(&self) -> Option<u16> {
        match self {
            CosError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The COS error code of a service error, or `""`.
    pub fn code(&self) -> &str {
        match self {
            CosError::Service { code, .. } => code,
            _ => "",
        }
    }

    /// True for 404 NoSuchKey (or a bodiless 404 from HEAD).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) && matches!(self.code(), "" | "NoSuchKey" | "NoSuchResource")
    }

    /// True when the temporary credentials were rejected as expired or
    /// invalid, so a credential refresh may help.
    pub fn is_credential_expired(&self) -> bool {
        matches!(
            self.code(),
            "ExpiredToken" | "InvalidToken" | "TokenExpired"
        ) || (self.code() == "AccessDenied" && self.message_contains("expired"))
    }

    /// True when the server says our clock is off.
    pub fn is_clock_skew(&self) -> bool {
        self.code() == "RequestTimeTooSkewed"
    }

    /// Whether the same request may succeed if sent again.
    pub fn is_retryable(&self) -> bool {
        match self {
            CosError::Service { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "RequestTimeout" | "SlowDown" | "PathConflict" | "UploadConflict"
                    )
            }
            CosError::Transport { .. } => !self.is_certificate_error(),
            CosError::Integrity(_) => true,
            CosError::InvalidResponse(_)
            | CosError::InvalidRequest(_)
            | CosError::Unsupported(_) => false,
        }
    }

    /// True when TLS refused the server's certificate: sending again
    /// cannot help.
    pub fn is_certificate_error(&self) -> bool {
        matches!(self, CosError::Transport { message, .. } if message.contains("invalid peer certificate"))
    }

    fn message_contains(&self, needle: &str) -> bool {
        match self {
            CosError::Service { message, .. } => message.to_ascii_lowercase().contains(needle),
            _ => false,
        }
    }
}

impl fmt::Display for CosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CosError::Service {
                status,
                code,
                message,
                request_id,
            } => {
                write!(f, "COS answered {status}")?;
                if !code.is_empty() {
                    write!(f, " {code}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                if let Some(id) = request_id {
                    write!(f, " (request id {id})")?;
                }
                Ok(())
            }
            CosError::Transport { message, .. } => write!(f, "network error: {message}"),
            CosError::Integrity(m) => write!(f, "data integrity check failed: {m}"),
            CosError::InvalidResponse(m) => write!(f, "unexpected response from COS: {m}"),
            CosError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            CosError::Unsupported(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for CosError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_errors() {
        assert!(CosError::service(500, "InternalError", "").is_retryable());
        assert!(CosError::service(503, "SlowDown", "").is_retryable());
        assert!(CosError::service(400, "RequestTimeout", "").is_retryable());
        assert!(!CosError::service(404, "NoSuchKey", "").is_retryable());
        assert!(!CosError::service(403, "SignatureDoesNotMatch", "").is_retryable());
        assert!(CosError::Integrity("crc".into()).is_retryable());
        let transport = |m: &str| CosError::Transport {
            message: m.into(),
            timeout: false,
        };
        assert!(transport("connection reset by peer").is_retryable());
        let tls = transport("client error (Connect): invalid peer certificate: UnknownIssuer");
        assert!(tls.is_certificate_error() && !tls.is_retryable());
    }

    #[test]
    fn recognises_not_found_and_expiry() {
        assert!(CosError::service(404, "", "").is_not_found());
        assert!(!CosError::service(404, "NoSuchBucket", "").is_not_found());
        assert!(CosError::service(400, "ExpiredToken", "").is_credential_expired());
        assert!(
            CosError::service(403, "AccessDenied", "Request has expired").is_credential_expired()
        );
        assert!(!CosError::service(403, "AccessDenied", "no").is_credential_expired());
    }
}
