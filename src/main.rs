//! The `callisto` binary: parse the command line, set up logging, run the command.

use std::path::PathBuf;
use std::process::ExitCode;

use callisto::app::AppSetup;
use callisto::cli::{Cli, Command, DevicesArgs};
use callisto::config::Config;
use callisto::{call, register};
use clap::Parser;

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Some(Command::Devices(args)) = &cli.command {
        return list_devices(args);
    }
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
    let Some(command) = cli.command else {
        return open_window(
            started,
            config_path,
            cli.data_dir.or_else(callisto::app::default_data_dir),
            cli.dial,
        );
    };
    // The headless commands refuse a broken configuration file; the window moves it aside.
    let config = match Config::load(&config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("callisto: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
    };
    // Calls may carry WebRTC sessions, whose peer connections need a multi-threaded runtime;
    // registering alone runs on one thread.
    let calls = matches!(
        command,
        Command::Call(_) | Command::Answer(_) | Command::Conference(_)
    );
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
    let args = match command {
        Command::Register(args) => args,
        Command::Devices(args) => return list_devices(&args),
        Command::Call(args) => {
            return runtime.block_on(call::run_call(
                args,
                config,
                selected.as_deref(),
                data_dir.as_deref(),
            ))
        }
        Command::Answer(args) => {
            return runtime.block_on(call::run_answer(
                args,
                config,
                selected.as_deref(),
                data_dir.as_deref(),
            ))
        }
        Command::Conference(args) => {
            return runtime.block_on(call::run_conference(
                args,
                config,
                selected.as_deref(),
                data_dir.as_deref(),
            ))
        }
    };
    runtime.block_on(register::run(
        args,
        config,
        selected.as_deref(),
        data_dir.as_deref(),
    ))
}

/// `callisto` with no command: the desktop window. A damaged configuration file is moved
/// aside (never overwritten) and the window says so.
fn open_window(
    started: std::time::Instant,
    config_path: PathBuf,
    data_dir: Option<PathBuf>,
    dial: Option<String>,
) -> ExitCode {
    let (config, notice) = match Config::load_or_quarantine(&config_path) {
        Ok(loaded) => {
            let notice = loaded
                .quarantined
                .map(|moved| {
                    format!(
                        "The settings file was damaged ({}); it was moved to {} and the defaults are in use.",
                        moved.reason,
                        moved.moved_to.display()
                    )
                })
                .unwrap_or_default();
            (loaded.config, notice)
        }
        Err(error) => {
            eprintln!("callisto: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
    };
    let setup = AppSetup {
        config,
        config_path,
        data_dir,
        notice,
        started,
        dial,
    };
    match callisto::ui::run_window(setup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("callisto: {message}");
            ExitCode::from(register::exit::OTHER)
        }
    }
}

/// `callisto devices`: one line per sound device, inputs first, `*` marking the defaults.
fn list_devices(args: &DevicesArgs) -> ExitCode {
    let devices = match callisto_media::device::audio_devices() {
        Ok(devices) => devices,
        Err(error) => {
            eprintln!("callisto: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
    };
    for device in &devices {
        if args.json {
            let line = serde_json::json!({
                "name": device.name,
                "id": device.id,
                "direction": device.direction.to_string(),
                "default": device.is_default,
                "host": device.host,
            });
            println!("{line}");
        } else {
            let default = if device.is_default { "*" } else { " " };
            println!(
                "{default} {:<6}  {}  ({})",
                device.direction.to_string(),
                device.name,
                device.id
            );
        }
    }
    if devices.is_empty() && !args.json {
        println!("No sound devices.");
    }
    ExitCode::SUCCESS
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
