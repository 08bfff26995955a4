//! Credentials: the keys requests are signed with, and the store requests
//! take a cheap snapshot from. Secrets never appear in `Debug` output.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

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

/// The credentials current right now; `None` inside means anonymous.
pub struct CredentialStore {
    current: RwLock<Option<Arc<Credentials>>>,
}

impl CredentialStore {
    /// Anonymous requests: no Authorization header.
    pub fn anonymous() -> CredentialStore {
        CredentialStore {
            current: RwLock::new(None),
        }
    }

    /// Fixed credentials.
    pub fn fixed(creds: Credentials) -> CredentialStore {
        CredentialStore {
            current: RwLock::new(Some(Arc::new(creds))),
        }
    }

    /// A snapshot for one request.
    pub fn snapshot(&self) -> Option<Arc<Credentials>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the current credentials.
    pub fn replace(&self, creds: Credentials) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(creds));
    }
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("current", &self.snapshot())
            .finish()
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
}
