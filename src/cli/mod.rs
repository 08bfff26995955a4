//! The command line: clap definitions only, raw flags grouped by heading,
//! each already of its type (sizes, durations, choices), exactly as clap
//! parses them. `config/` turns them into each layer's settings and is the
//! only place they are checked against each other.

mod mount;
mod options;
mod serve;
mod value;

use clap::{Args, Parser, Subcommand};

pub use mount::{DirectIoMode, LogLevel, MountArgs};
pub use options::expand_mount_options;
pub use serve::{FaultKinds, ServeArgs};

use crate::cleanup::DEFAULT_STALE_AGE;
use crate::units::Span;
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
