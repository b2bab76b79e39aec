//! The window lives in `callisto-desktop`: `callisto` without a command becomes it, and the
//! headless commands run without the window toolkit's code and libraries. (One trace stays: a
//! dependency of the toolkit opens libX11 and libxcb from a load-time constructor, which every
//! binary of the package links.)

mod support;

use std::error::Error;
use std::process::Command;
use std::time::Duration;

use support::callisto::{binary, output_within, Callisto};

type TestResult = Result<(), Box<dyn Error>>;

#[test]
fn callisto_without_a_command_is_the_window() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut command = Command::new(binary());
    command
        .arg("--config")
        .arg(dir.path().join("app.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET");
    let output = output_within(&mut command, Duration::from_secs(20))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The window's own complaint: it started, and found no display.
    assert!(
        stderr.contains("callisto: cannot open the window: "),
        "{stderr}"
    );
    assert!(stderr.contains("DISPLAY"), "{stderr}");
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    Ok(())
}

#[test]
fn the_window_binary_offers_no_command() -> TestResult {
    let desktop = env!("CARGO_BIN_EXE_callisto-desktop");
    let help = output_within(Command::new(desktop).arg("--help"), Duration::from_secs(20))?;
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    assert!(text.contains("--dial"), "{text}");
    for command in [
        "register",
        "call ",
        "answer",
        "conference",
        "devices",
        "Commands:",
    ] {
        assert!(!text.contains(command), "`{command}` in its help: {text}");
    }
    let refused = output_within(Command::new(desktop).arg("answer"), Duration::from_secs(20))?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unexpected argument 'answer'"), "{stderr}");
    Ok(())
}

#[test]
fn a_headless_command_loads_no_font_or_graphics_library() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut bob = Callisto::answer(dir.path(), "127.0.0.1:0", &["--count", "1"])?;
    bob.expect("listening", Duration::from_secs(10))?;
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", bob.pid()))?;
    bob.kill()?;
    let _ = bob.wait(Duration::from_secs(10));
    for library in ["libfontconfig", "libfreetype", "libpng", "libEGL", "libGL"] {
        assert!(
            !maps.contains(library),
            "{library} is mapped in `callisto answer`"
        );
    }
    assert!(maps.contains("libopus"), "the maps were read: {maps}");
    Ok(())
}
