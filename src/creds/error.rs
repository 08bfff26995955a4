//! Credential errors. Every message names the source it is about and, where
//! the user can act, says what to do; none ever quotes a secret or a
//! response body (which may hold one).

use std::fmt;

/// Why credentials could not be chosen, fetched or refreshed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredsError {
    /// The options do not name a usable source: missing or half-given keys,
    /// a bad passwd file, an unknown source name, a bad value.
    Config(String),
    /// A source could not be reached or run: network failure, timeout, a
    /// command that could not start.
    Unavailable {
        /// The source, e.g. `cam_role ROLE`.
        origin: String,
        /// What happened and what to do.
        message: String,
    },
    /// A source answered with a refusal: an HTTP error, `Code` other than
    /// `Success`, an STS `Error`, a command's non-zero exit.
    Refused {
        /// The source.
        origin: String,
        /// What it said and what to do.
        message: String,
    },
    /// A source answered with something unusable: bad JSON, missing
    /// fields, credentials already expired.
    Invalid {
        /// The source.
        origin: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// These credentials are fixed: there is no source to refresh them from.
    NotRefreshable,
}

impl CredsError {
    /// A [`CredsError::Unavailable`] for `origin`.
    pub fn unavailable(origin: &str, message: impl Into<String>) -> CredsError {
        CredsError::Unavailable {
            origin: origin.to_string(),
            message: message.into(),
        }
    }

    /// A [`CredsError::Refused`] for `origin`.
    pub fn refused(origin: &str, message: impl Into<String>) -> CredsError {
        CredsError::Refused {
            origin: origin.to_string(),
            message: message.into(),
        }
    }

    /// A [`CredsError::Invalid`] for `origin`.
    pub fn invalid(origin: &str, message: impl Into<String>) -> CredsError {
        CredsError::Invalid {
            origin: origin.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CredsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredsError::Config(m) => f.write_str(m),
            CredsError::Unavailable { origin, message }
            | CredsError::Refused { origin, message }
            | CredsError::Invalid { origin, message } => write!(f, "{origin}: {message}"),
            CredsError::NotRefreshable => {
                f.write_str("the credentials are fixed and cannot be refreshed")
            }
        }
    }
}

impl std::error::Error for CredsError {}

/// A JSON parse error in words that never quote the input: serde's
/// "invalid type" messages would otherwise echo a value, which may be a key.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("missing field") {
        return text;
    }
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "JSON of the wrong shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    match e.line() {
        // Errors found after parsing (`serde_json::from_value`) have no position.
        0 => kind.to_string(),
        line => format!("{kind} at line {line} column {}", e.column()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_never_quote_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct K {
            key: u64,
        }
        let e = serde_json::from_str::<K>(r#"{"key":"hunter2"}"#).unwrap_err();
        let shown = describe_json_error(&e);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("wrong shape"), "{shown}");
        let e = serde_json::from_str::<K>("{}").unwrap_err();
        assert!(describe_json_error(&e).contains("missing field `key`"));
        let e = serde_json::from_str::<K>("{").unwrap_err();
        assert!(describe_json_error(&e).contains("truncated"));
    }

    #[test]
    fn display_names_the_origin() {
        let e = CredsError::refused("cam_role r", "answered 404");
        assert_eq!(e.to_string(), "cam_role r: answered 404");
    }
}
