//! Thin entry: parse the command line, start the logger, build the config,
//! call into the library, and turn an error into a message and exit code.

use std::process::ExitCode;

use std::io::{self, Write};

use clap::Parser;
use cosmount::cli::{
    CleanupArgs, Cli, Command, MountArgs, ServeArgs, StatusArgs, expand_mount_options,
};
use cosmount::config::{LogConfig, MountConfig, log_config, server_config};
use cosmount::cos::provider::probe_blocking;
use cosmount::creds::select::Surroundings;
use cosmount::logging;
use cosmount::mount::{Readiness, check_mountpoint, daemonize};

fn main() -> ExitCode {
    let args = match expand_mount_options(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => return usage_error(&e),
    };
    let cli = Cli::parse_from(args);
    match cli.command {
        None => mount(&cli.mount),
        Some(Command::Check(args)) => check(&args),
        Some(Command::Cleanup(args)) => cleanup(&args),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Status(args)) => status(&args),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("cosmount: {message}");
    ExitCode::from(2)
}

fn mount(args: &MountArgs) -> ExitCode {
    let log = log_config(args);
    let mut config = match MountConfig::from_args(args) {
        Ok(config) => config,
        Err(e) => return usage_error(&e),
    };
    if let Err(e) = init_logger(&log, !config.foreground) {
        return usage_error(&e);
    }
    log_panics();
    config.mount.mountpoint = match check_mountpoint(&config.mount.mountpoint) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("cosmount: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut readiness = if config.foreground {
        Readiness::foreground()
    } else {
        match daemonize() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cosmount: cannot start the daemon: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    log_notes(&config);
    match cosmount::app::run_mount(&config, &mut readiness) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if readiness.is_daemon() {
                // The waiting parent prints it; the log (file or syslog)
                // keeps it for boot-time mounts nobody watches.
                log::error!("{message}");
                readiness.fail(&message);
            } else {
                log::error!("{message}");
                if log.file.is_some() {
                    eprintln!("cosmount: {message}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// Warnings about the configuration, once the logger runs.
fn log_notes(config: &MountConfig) {
    for note in &config.credential_notes {
        log::warn!("{note}");
    }
}

/// Panics also go to the log: a daemon's stderr is /dev/null.
fn log_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!("{info}");
        default_hook(info);
    }));
}

/// Runs `cosmount check`: exit 0 only when a mount would work.
fn check(args: &MountArgs) -> ExitCode {
    let (config, runtime) = match start_command("check", args) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let mut out = io::stdout().lock();
    let report = runtime.block_on(cosmount::check::run(&config, &mut out));
    report_exit(report.map_err(|e| format!("cannot write the report: {e}")))
}

/// Runs `cosmount cleanup`: exit 0 when every upload found was aborted.
fn cleanup(args: &CleanupArgs) -> ExitCode {
    let (config, runtime) = match start_command("cleanup", &args.mount) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let mut out = io::stdout().lock();
    let run = cosmount::cleanup::command(&config, args.older_than.0, args.dry_run, &mut out);
    report_exit(runtime.block_on(run))
}

/// Runs `cosmount status`: asks the mount's control socket.
fn status(args: &StatusArgs) -> ExitCode {
    match cosmount::metrics::ask_status(&args.mountpoint) {
        Ok(status) if args.json => {
            println!("{status:#}");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            print!("{}", cosmount::metrics::describe_status(&status));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cosmount: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Validates the options of a one-shot command (`check`, `cleanup`) and
/// starts its logging and I/O runtime, or gives the exit code of why it
/// cannot run.
fn start_command(
    name: &str,
    args: &MountArgs,
) -> Result<(MountConfig, tokio::runtime::Runtime), ExitCode> {
    let log = log_config(args);
    let config = MountConfig::for_command(name, args, &Surroundings::of_process(), &probe_blocking)
        .map_err(|e| usage_error(&e))?;
    init_logger(&log, false).map_err(|e| usage_error(&e))?;
    log_notes(&config);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("cosmount: cannot start the I/O runtime: {e}");
        ExitCode::FAILURE
    })?;
    Ok((config, runtime))
}

/// Exit 0 when a command's report says all is well.
fn report_exit(result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cosmount: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs our own crate at the chosen level and dependencies at warn (all at
/// trace): to the log file if given, else to stderr in the foreground (with
/// journald priority prefixes when stderr is the journal) and to syslog as a
/// daemon. Our records pass the builder up to debug so that SIGUSR2 can
/// switch debug on (`cosmount::logging`).
fn init_logger(log: &LogConfig, daemon: bool) -> Result<(), String> {
    let mut builder = env_logger::Builder::new();
    if log.level == log::LevelFilter::Trace {
        builder.filter_level(log.level);
    } else {
        // fuser warns when it cannot unmount what umount(8) already removed.
        builder
            .filter_level(log::LevelFilter::Warn)
            .filter_module("fuser::session", log::LevelFilter::Error)
            .filter_module("cosmount", log.level.max(log::LevelFilter::Debug));
    }
    builder.parse_default_env().format_timestamp_millis();
    if let Some(path) = &log.file {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
        builder.target(env_logger::Target::Pipe(Box::new(file)));
    } else if daemon {
        builder
            .target(env_logger::Target::Pipe(Box::new(
                logging::SyslogWriter::new(),
            )))
            .format(|buf, record| {
                let pri = logging::syslog_priority(record.level());
                let pid = std::process::id();
                writeln!(buf, "<{pri}>cosmount[{pid}]: {}", record.args())
            });
    } else if logging::stderr_is_journal() {
        builder.format(|buf, record| {
            let pri = logging::journal_priority(record.level());
            writeln!(buf, "<{pri}>{}", record.args())
        });
    }
    let logger = builder.build();
    let max = logger.filter();
    logging::install(Box::new(logger), max, log.level)
}

/// The server logs to stderr, our crate at info unless `RUST_LOG` asks for
/// more (tests run it at trace to show that no secret is ever logged).
fn serve_log_config() -> LogConfig {
    let mut from_env =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    LogConfig {
        level: from_env.build().filter(),
        file: None,
    }
}

/// Runs `cosmount serve` until SIGTERM or SIGINT.
fn serve(args: ServeArgs) -> ExitCode {
    if let Err(e) = init_logger(&serve_log_config(), false) {
        return usage_error(&e);
    }
    let config = match server_config(args) {
        Ok(config) => config,
        Err(e) => return usage_error(&e),
    };
    match serve_until_signal(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cosmount: {e}");
            let usage = e.kind() == io::ErrorKind::InvalidInput;
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Serves, printing the addresses on stdout, until SIGTERM or SIGINT.
fn serve_until_signal(config: cosmount::server::ServerConfig) -> io::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // logrotate's `pkill -HUP -x cosmount` reaches the server too: a
        // handler keeps SIGHUP from being fatal (the server has no audit log).
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move { while hangup.recv().await.is_some() {} });
        let server = cosmount::server::Server::start(config).await?;
        let mut out = io::stdout().lock();
        writeln!(out, "listening on http://{}", server.addr())?;
        if let Some(admin) = server.admin_addr() {
            writeln!(out, "admin on http://{admin}")?;
        }
        if let Some(sts) = server.sts_addr() {
            writeln!(out, "sts on http://{sts}")?;
        }
        out.flush()?;
        drop(out);
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        log::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}
