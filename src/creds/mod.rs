//! Credentials: the keys requests are signed with, where they come from
//! (providers, chosen in `select.rs`), and the store requests take a cheap
//! snapshot from while a background task keeps temporary keys fresh.
//!
//! Invariant: no `Debug`/`Display` of anything here, and no log line, shows
//! a SecretKey, a session token or an Authorization value.

pub mod aws;
pub mod clock;
pub mod env;
pub mod error;
pub mod http;
pub mod metadata;
pub mod passwd;
pub mod process;
pub mod profile;
pub mod provider;
pub mod refresh;
pub mod select;
pub mod source;
pub mod store;
pub mod sts;
pub mod tc3;
mod tencent;
#[cfg(test)]
pub(crate) mod testutil;

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

pub use clock::{Clock, SystemClock, TokioClock};
pub use error::CredsError;
pub use provider::{FetchFuture, Provider};
pub use refresh::RefreshPolicy;
pub use select::{CredentialOptions, KeyFamily, ProviderSpec, Selected};
pub use source::SourceKind;
pub use store::CredentialStore;

/// A SecretId/SecretKey pair, plus a session token and expiry for temporary keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// SecretId (`q-ak`); not secret.
    pub secret_id: String,
    /// SecretKey; never logged.
    pub secret_key: String,
    /// STS session token, sent as `x-cos-security-token`; never logged.
    pub session_token: Option<String>,
    /// When temporary credentials stop working.
    pub expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Permanent keys.
    pub fn permanent(secret_id: &str, secret_key: &str) -> Credentials {
        Credentials {
            secret_id: secret_id.to_string(),
            secret_key: secret_key.to_string(),
            session_token: None,
            expires_at: None,
        }
    }

    /// Temporary keys with a session token and an expiry.
    pub fn temporary(
        secret_id: &str,
        secret_key: &str,
        token: &str,
        expires_at: SystemTime,
    ) -> Credentials {
        Credentials {
            secret_id: secret_id.to_string(),
            secret_key: secret_key.to_string(),
            session_token: Some(token.to_string()),
            expires_at: Some(expires_at),
        }
    }

    /// The SecretId shortened for logs: `AKID…xyz`.
    pub fn short_id(&self) -> String {
        let chars: Vec<char> = self.secret_id.chars().collect();
        if chars.len() <= 8 {
            return self.secret_id.clone();
        }
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 3..].iter().collect();
        format!("{head}…{tail}")
    }

    /// True when `expires_at` is set and not after `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A one-line summary without secrets: `SecretId AKID…xyz, expires at …`.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretId {}", self.short_id())?;
        match self.expires_at {
            Some(t) => write!(f, ", expires at {}", clock::format_time(t)),
            None => f.write_str(", no expiry"),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"******")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "******"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A secret string (a SecretKey or token as typed on the command line)
/// whose `Debug` and `Display` print `******`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: &str) -> Secret {
        Secret(value.to_string())
    }

    /// The secret itself, for the code that signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Secret, Infallible> {
        Ok(Secret::new(s))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"******\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut c = Credentials::permanent("AKIDxyz", "topsecretkey");
        c.session_token = Some("tokentokentoken".into());
        let shown = format!("{:?}", CredentialStore::fixed(c));
        assert!(shown.contains("AKIDxyz"));
        assert!(!shown.contains("topsecretkey"));
        assert!(!shown.contains("tokentoken"));
    }

    #[test]
    fn secrets_print_as_stars() {
        let s: Secret = "hunter2".parse().unwrap();
        assert_eq!(
            format!("{s} {s:?} {:?}", Some(s.clone())),
            "****** \"******\" Some(\"******\")"
        );
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn display_is_a_redacted_summary() {
        let c = Credentials::temporary(
            "AKIDabcdefghijxyz",
            "topsecretkey",
            "tokentoken",
            clock::from_unix(1615590047),
        );
        let shown = format!("{c}");
        assert_eq!(shown, "SecretId AKID…xyz, expires at 2021-03-12T23:00:47Z");
        assert_eq!(Credentials::permanent("short", "k").short_id(), "short");
        assert!(c.is_expired_at(clock::from_unix(1615590047)));
        assert!(!c.is_expired_at(clock::from_unix(1615590046)));
    }
}
