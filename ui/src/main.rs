//! `callisto-desktop`: the window. `callisto` without a command starts it in its own place
//! (same process, same arguments); the headless commands stay in `callisto`. The start-up time
//! the window logs counts from this program's start, after `callisto`'s hand-over (a few
//! milliseconds).

use std::path::PathBuf;
use std::process::ExitCode;

use callisto::app::AppSetup;
use callisto::cli::{init_logging, DesktopCli};
use callisto::config::Config;
use callisto::register;
use clap::Parser;

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = DesktopCli::parse().window;
    init_logging(cli.verbose);
    let config_path = match cli.config_path() {
        Ok(path) => path,
        Err(error) => {
            eprintln!("callisto: {error}");
            return ExitCode::from(register::exit::OTHER);
        }
    };
    open_window(
        started,
        config_path,
        cli.data_dir.or_else(callisto::app::default_data_dir),
        cli.dial,
    )
}

/// The desktop window. A damaged configuration file is moved aside (never overwritten) and the
/// window says so.
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
    match callisto_ui::run_window(setup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("callisto: {message}");
            ExitCode::from(register::exit::OTHER)
        }
    }
}
