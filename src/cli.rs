//! The command line: clap definitions (raw flags) and their conversion into
//! the library's plain config structs, plus the runners that print what a
//! user needs to see. Library code never sees clap.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use cosmount::creds::Credentials;
use cosmount::server::{Access, Server, ServerConfig};

/// Mount a Tencent Cloud COS bucket as a local filesystem.
#[derive(Debug, Parser)]
#[command(name = "cosmount", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded COS-compatible server over a local folder.
    Serve(ServeArgs),
}

/// `cosmount serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder that holds the buckets (created if its parent exists).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,

    /// Address to serve COS on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Bucket to serve, as NAME-APPID; created if missing. Repeat for more.
    /// Without it, the buckets already in DIR are served.
    #[arg(long = "bucket", value_name = "NAME-APPID")]
    pub buckets: Vec<String>,

    /// SecretId accepted in request signatures.
    #[arg(long, value_name = "ID", env = "COSMOUNT_SERVE_SECRET_ID")]
    pub secret_id: Option<String>,

    /// SecretKey of --secret-id.
    #[arg(
        long,
        value_name = "KEY",
        env = "COSMOUNT_SERVE_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// Allow anonymous HEAD, GET and list.
    #[arg(long, conflicts_with = "public_read_write")]
    pub public_read: bool,

    /// Allow anonymous reads and writes.
    #[arg(long)]
    pub public_read_write: bool,

    /// Also serve the admin endpoint (request counters) on this address.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Region named in copy sources and error documents.
    #[arg(long, value_name = "REGION", default_value = "ap-guangzhou")]
    pub region: String,

    /// fsync every object before answering (slower; survives power loss).
    #[arg(long)]
    pub fsync: bool,
}

/// A failed command: a one-line message and an exit code.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong.
    pub message: String,
    /// Process exit code.
    pub code: u8,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        let code = if e.kind() == io::ErrorKind::InvalidInput {
            2
        } else {
            1
        };
        CliError {
            message: e.to_string(),
            code,
        }
    }
}

impl ServeArgs {
    /// The validated server configuration.
    pub fn into_config(self) -> Result<ServerConfig, CliError> {
        let keys = match (self.secret_id, self.secret_key) {
            (Some(id), Some(key)) => vec![Credentials::permanent(&id, &key)],
            (None, None) => Vec::new(),
            (Some(_), None) => return Err(usage("--secret-id needs --secret-key")),
            (None, Some(_)) => return Err(usage("--secret-key needs --secret-id")),
        };
        let access = match (self.public_read, self.public_read_write) {
            (_, true) => Access::PublicReadWrite,
            (true, false) => Access::PublicRead,
            (false, false) => Access::Private,
        };
        Ok(ServerConfig {
            root: self.root,
            listen: self.listen,
            admin_listen: self.admin_listen,
            buckets: self.buckets,
            keys,
            access,
            region: self.region,
            fsync: self.fsync,
        })
    }
}

fn usage(message: &str) -> CliError {
    CliError {
        message: message.to_string(),
        code: 2,
    }
}

/// Runs `cosmount serve` until SIGTERM or SIGINT.
pub fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = args.into_config()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let server = Server::start(config).await?;
        let mut out = io::stdout().lock();
        writeln!(out, "listening on http://{}", server.addr())?;
        if let Some(admin) = server.admin_addr() {
            writeln!(out, "admin on http://{admin}")?;
        }
        out.flush()?;
        drop(out);
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        log::info!("shutting down");
        server.shutdown().await;
        Ok::<(), CliError>(())
    })
}
