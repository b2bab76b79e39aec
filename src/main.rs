//! The `callisto` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use callisto::cli::{Cli, Command, RegisterArgs};
use callisto::config::Config;
use callisto::{call, register};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let config_path = match cli
        .config
        .clone()
        .map(Ok)
        .unwrap_or_else(Config::default_path)
    {
        Ok(path) => path,
        Err(error) => {
            eprintln!("callisto: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
    };
    let config = match Config::load(&config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("callisto: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
    };
    // Calls may carry WebRTC sessions, whose peer connections need a multi-threaded runtime;
    // registering alone runs on one thread.
    let calls = matches!(cli.command, Some(Command::Call(_) | Command::Answer(_)));
    let runtime = if calls {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("callisto: cannot start: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
    };
    let data_dir = cli.data_dir.clone();
    let selected = cli.account.clone();
    let args = match cli.command {
        Some(Command::Register(args)) => args,
        Some(Command::Call(args)) => {
            return runtime.block_on(call::run_call(
                args,
                config,
                selected.as_deref(),
                data_dir.as_deref(),
            ))
        }
        Some(Command::Answer(args)) => {
            return runtime.block_on(call::run_answer(
                args,
                config,
                selected.as_deref(),
                data_dir.as_deref(),
            ))
        }
        // Until the desktop window exists, the app registers the configured accounts and reports.
        None => {
            println!(
                "Callisto {}: registering the accounts in {} (Ctrl-C to stop).",
                env!("CARGO_PKG_VERSION"),
                config_path.display()
            );
            RegisterArgs::default()
        }
    };
    runtime.block_on(register::run(
        args,
        config,
        selected.as_deref(),
        data_dir.as_deref(),
    ))
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLISTO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
