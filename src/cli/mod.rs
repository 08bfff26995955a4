//! The command line: clap definitions only, raw flags grouped by heading,
//! each already of its type (sizes, durations, choices), exactly as clap
//! parses them. `config/` turns them into each layer's settings and is the
//! only place they are checked against each other.

mod mount;
mod options;
mod serve;
mod value;

use clap::{Args, Parser, Subcommand};

pub use mount::{DirectIoMode, LogLevel, MountArgs, ProviderArg};
pub use options::expand_mount_options;
pub use serve::{FaultKinds, ServeArgs};

use crate::units::Span;
use crate::upload::DEFAULT_STALE_AGE;
use value::SPAN;

/// Mount a Tencent Cloud COS bucket as a local filesystem.
#[derive(Debug, Parser)]
#[command(
    name = "cosmount",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "cosmount [OPTIONS] <BUCKET[:/PREFIX]> <MOUNTPOINT> [-o OPT[=VAL],...]\n       \
                      cosmount [OPTIONS] --local <DIR> <MOUNTPOINT>\n       cosmount <COMMAND> ..."
)]
pub struct Cli {
    /// Other commands.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Mount options.
    #[command(flatten)]
    pub mount: MountArgs,
}

/// Subcommands besides mounting.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded COS-compatible server over a local folder.
    Serve(Box<ServeArgs>),
    /// Test whether BUCKET can be mounted with these options: DNS, network
    /// (private or public), TCP latency, credentials, HEAD Bucket and List.
    #[command(override_usage = "cosmount check <BUCKET[:/PREFIX]> [OPTIONS] [-o OPT[=VAL],...]")]
    Check(Box<MountArgs>),
    /// List, and abort, the multipart uploads left under BUCKET[:/PREFIX]
    /// by a crash or a lost answer (their parts are billed as storage).
    #[command(
        override_usage = "cosmount cleanup <BUCKET[:/PREFIX]> [--older-than AGE] [--dry-run] [OPTIONS] [-o OPT[=VAL],...]"
    )]
    Cleanup(Box<CleanupArgs>),
    /// Show what the mount at MOUNTPOINT is doing now: bucket, endpoint,
    /// credentials and their expiry, open files, uploads, cache, errors.
    Status(StatusArgs),
}

/// `cosmount status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The mountpoint of a running cosmount.
    pub mountpoint: std::path::PathBuf,

    /// Print the status document as JSON (the same as `/status` on
    /// `--metrics-listen`).
    #[arg(long)]
    pub json: bool,
}

/// `cosmount cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only uploads initiated longer ago than AGE (`0` for all; a younger
    /// upload may still be running somewhere).
    #[arg(
        long,
        value_name = "AGE",
        value_parser = SPAN,
        default_value_t = Span(DEFAULT_STALE_AGE)
    )]
    pub older_than: Span,

    /// List the uploads that would be aborted; abort nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The bucket and how to reach it: the mount's options.
    #[command(flatten)]
    pub mount: MountArgs,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::server::FaultKind;
    use crate::units::{AgeLimit, Mode, Size};

    fn mount(args: &[&str]) -> Result<MountArgs, String> {
        let full = [&["cosmount", "b-1", "/m"][..], args].concat();
        Cli::try_parse_from(full)
            .map(|c| c.mount)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_come_typed_from_the_layers() {
        let m = mount(&[]).unwrap();
        assert_eq!(m.cache_size, Size(128 << 20));
        assert_eq!(m.request_timeout, Span(Duration::from_secs(10)));
        assert_eq!(m.stall_timeout, Span(Duration::from_secs(5)));
        assert_eq!(m.abort_stale_uploads, AgeLimit(Some(DEFAULT_STALE_AGE)));
        assert_eq!(m.direct_io, DirectIoMode::Auto);
        let serve = Cli::try_parse_from(["cosmount", "serve", "--root", "/r"]).unwrap();
        let Some(Command::Serve(s)) = serve.command else {
            panic!("not serve")
        };
        assert_eq!(s.fault_kinds, FaultKinds(FaultKind::DEFAULT.to_vec()));
        assert_eq!(s.fault_stall, Span(Duration::from_secs(65)));
    }

    #[test]
    fn choices_parse_as_before() {
        let m = mount(&["--log-level", "WARN", "--direct-io", "--umask", "027"]).unwrap();
        assert_eq!(m.log_level, Some(LogLevel::Warn));
        assert_eq!(m.direct_io, DirectIoMode::Always);
        assert_eq!(m.umask, Some(Mode(0o27)));
        assert_eq!(
            mount(&["--log-level", "off"]).unwrap().log_level,
            Some(LogLevel::Off)
        );
        let m = mount(&[
            "--abort-stale-uploads",
            "never",
            "--credential-source",
            "environment",
        ]);
        let m = m.unwrap();
        assert_eq!(m.abort_stale_uploads, AgeLimit(None));
        assert_eq!(m.credential_source, Some(crate::creds::SourceKind::Env));
    }

    #[test]
    fn bad_values_keep_their_messages() {
        let e = mount(&["--block-size", "big"]).unwrap_err();
        assert!(
            e.contains("--block-size \"big\" is not a size such as 64MiB"),
            "{e}"
        );
        let e = Cli::try_parse_from(["cosmount", "serve", "--root", "/r", "--fault-kinds", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--fault-kinds: unknown fault kind \"x\""), "{e}");
    }
}
