//! The provider seam: anything that can hand out credentials on demand.
//! Providers fetch; they never schedule. When to fetch is the refresher's
//! business (`refresh.rs`), so every source gets the same timing rules.

use std::future::Future;
use std::pin::Pin;

use super::{Credentials, CredsError};

/// The future a [`Provider::fetch`] returns.
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, CredsError>> + Send + 'a>>;

/// A source of credentials: a passwd file, the metadata service, STS, a
/// command.
pub trait Provider: Send + Sync {
    /// Names the source for logs and errors, e.g. `cam_role ROLE`.
    fn name(&self) -> String;

    /// Fetches the credentials the source holds now; temporary ones carry
    /// `expires_at`.
    fn fetch(&self) -> FetchFuture<'_>;
}
