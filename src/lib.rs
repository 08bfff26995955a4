//! cosmount: mount a Tencent Cloud COS bucket as a local filesystem.
//!
//! ```text
//!   kernel (FUSE) ─► fuse.rs ─► fs/ ─► cache/ (reads), upload (writes)
//!                                 │
//!                                 ▼
//!                               cos/  (ObjectClient: HTTP, retries, XML, errors;
//!                                 │    provider: the cos or s3 dialect)
//!                                 ├─► cos/sign, cos/sigv4  (pure signers)
//!                                 └─► creds/    (credential providers, refresher)
//!   server/  embedded COS-compatible server (`cosmount serve`, `--local DIR`),
//!            with STS/metadata emulation for temporary-credential tests
//!   check.rs `cosmount check`: DNS, network kind, TCP, credentials, HEAD/List
//!   cleanup.rs `cosmount cleanup` and the mount's abort of stale multipart uploads
//!
//!   cli/ (clap: typed flags) ─► config/ (checks, each layer's settings)
//!      └──────► units.rs (sizes, durations, modes) ◄──┘
//! ```
//!
//! Dependency rules: `cos/` never imports `fs`, `fuser` or `libc`; `fs/` and
//! `cache/` use the [`cos::ObjectClient`] trait, never the HTTP client
//! directly; only `fuse.rs` and `mount.rs` touch fuser's session and reply
//! types; clap lives in `cli/` and `main.rs`, env_logger in `main.rs` (which
//! hands the logger it builds to `logging`). `cli/` never imports `config/`;
//! `config/` is the only place options are validated, and each default is
//! written once, in the layer that uses it.
//! `server/` shares the signer and XML wire types with `cos/` and nothing
//! with `fs/`.

pub mod app;
pub mod audit;
pub mod cache;
pub mod check;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod cos;
pub mod creds;
pub mod fs;
pub mod fuse;
pub mod log_limit;
pub mod logging;
pub mod metrics;
pub mod mount;
pub mod retry;
pub mod server;
pub mod sync;
pub mod units;
pub mod upload;
