//! The `callisto` binary: parse the command line, set up logging, run the command. Without a
//! command it becomes `callisto-desktop`, the window, which lives in a binary of its own so
//! that the headless commands — a call, a conference bridge left running — carry no window
//! toolkit: none of its code or relocations, no font or graphics library.

use std::path::PathBuf;
use std::process::ExitCode;

use callisto::cli::{init_logging, Cli, Command, DevicesArgs};
use callisto::config::Config;
use callisto::{call, register};
use clap::Parser;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let Some(command) = cli.command.take() else {
        return open_window();
    };
    init_logging(cli.window.verbose);
    if let Command::Devices(args) = &command {
        return list_devices(args);
    }
    let config_path = match cli.window.config_path() {
        Ok(path) => path,
        Err(error) => {
            eprintln!("callisto: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
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
    let data_dir = cli.window.data_dir.clone();
    let selected = cli.window.account.clone();
    let args = match command {
        Command::Register(args) => args,
        Command::Devices(args) => return list_devices(&args),
        Command::Call(args) => {
            return on_workers(&runtime, async move {
                call::run_call(args, config, selected.as_deref(), data_dir.as_deref()).await
            })
        }
        Command::Answer(args) => {
            return on_workers(&runtime, async move {
                call::run_answer(args, config, selected.as_deref(), data_dir.as_deref()).await
            })
        }
        Command::Conference(args) => {
            return on_workers(&runtime, async move {
                call::run_conference(args, config, selected.as_deref(), data_dir.as_deref()).await
            })
        }
    };
    runtime.block_on(register::run(
        args,
        config,
        selected.as_deref(),
        data_dir.as_deref(),
    ))
}

/// Runs a call command as a task on the runtime's workers rather than on the main thread: the
/// command and the engine then hand each other events and commands (an incoming call and its
/// answer) on the worker that is running, where a task on the main thread had to be woken
/// across threads each way.
fn on_workers(
    runtime: &tokio::runtime::Runtime,
    command: impl std::future::Future<Output = ExitCode> + Send + 'static,
) -> ExitCode {
    runtime.block_on(async {
        tokio::spawn(command)
            .await
            .unwrap_or_else(|_| ExitCode::from(register::exit::OTHER))
    })
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

/// `callisto` with no command: the window, `callisto-desktop` beside this program (on `PATH`
/// only when this program cannot tell where it is), in this process on Unix (the same PID,
/// the same `argv`, `argv[0]` included, so the window's X11 class stays `callisto`).
fn open_window() -> ExitCode {
    let desktop = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(DESKTOP),
        Err(_) => PathBuf::from(DESKTOP),
    };
    if desktop.is_absolute() && !desktop.exists() {
        eprintln!(
            "callisto: cannot open the window: {} is missing (`make run`, or `cargo build \
             --bins`, builds it beside callisto)",
            desktop.display()
        );
        return ExitCode::from(register::exit::OTHER);
    }
    let mut window = std::process::Command::new(&desktop);
    window.args(std::env::args_os().skip(1));
    #[cfg(unix)]
    let error = {
        use std::os::unix::process::CommandExt;
        window
            .arg0(
                std::env::args_os()
                    .next()
                    .unwrap_or_else(|| "callisto".into()),
            )
            .exec()
    };
    #[cfg(not(unix))]
    let error = match window.status() {
        Ok(status) => {
            return status
                .code()
                .map_or(ExitCode::FAILURE, |c| ExitCode::from(c as u8))
        }
        Err(error) => error,
    };
    eprintln!(
        "callisto: cannot open the window ({} did not start: {error})",
        desktop.display()
    );
    ExitCode::from(register::exit::OTHER)
}

/// The window's program.
const DESKTOP: &str = "callisto-desktop";
