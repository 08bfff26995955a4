//! The `cosmount` binary: parse the command line, start the logger, run the
//! command, turn its error into a one-line message and an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = match cli.command {
        cli::Command::Serve(args) => cli::serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cosmount: {e}");
            ExitCode::from(e.code)
        }
    }
}
