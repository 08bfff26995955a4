//! The errors the server answers with: HTTP status plus COS error code and
//! message, rendered as COS's `<Error>` XML by the service layer.

use std::io;

use hyper::StatusCode;
use log::warn;

/// A failed request, as COS reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// COS error code, e.g. `NoSuchKey`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with the given code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 InvalidArgument.
    pub fn invalid_argument(message: impl Into<String>) -> ApiError {
        ApiError::bad_request("InvalidArgument", message)
    }

    /// 403 AccessDenied.
    pub fn access_denied(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// 404 NoSuchKey.
    pub fn no_such_key() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }

    /// 404 NoSuchBucket.
    pub fn no_such_bucket() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        )
    }

    /// 404 NoSuchUpload.
    pub fn no_such_upload() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist.",
        )
    }

    /// 412 PreconditionFailed.
    pub fn precondition_failed() -> ApiError {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the preconditions you specified did not hold.",
        )
    }

    /// 416 InvalidRange.
    pub fn invalid_range() -> ApiError {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range is not satisfiable.",
        )
    }

    /// 400 MalformedXML.
    pub fn malformed_xml(message: impl Into<String>) -> ApiError {
        ApiError::bad_request("MalformedXML", message)
    }

    /// 501 NotImplemented.
    pub fn not_implemented(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("{what} is not implemented by cosmount serve."),
        )
    }

    /// 500 InternalError for a local failure, logged here once.
    pub fn internal(e: &io::Error) -> ApiError {
        warn!("internal error: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }
}

impl From<io::Error> for ApiError {
    fn from(e: io::Error) -> Self {
        ApiError::internal(&e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}
