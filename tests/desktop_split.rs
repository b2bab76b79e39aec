//! The window lives in `callisto-desktop` (the `callisto-ui` package, `ui/`): `callisto` without a
//! command becomes it, and the headless commands run without the window toolkit's code and
//! libraries. (`ui/tests/window_binary.rs` checks the window's binary itself; it also makes
//! `cargo test` build it for the test here.)

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
fn a_headless_command_loads_no_font_or_graphics_library() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut bob = Callisto::answer(dir.path(), "127.0.0.1:0", &["--count", "1"])?;
    bob.expect("listening", Duration::from_secs(10))?;
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", bob.pid()))?;
    bob.kill()?;
    let _ = bob.wait(Duration::from_secs(10));
    for library in [
        "libfontconfig",
        "libfreetype",
        "libpng",
        "libEGL",
        "libGL",
        "libX11",
        "libxcb",
        "libwayland",
    ] {
        assert!(
            !maps.contains(library),
            "{library} is mapped in `callisto answer`"
        );
    }
    assert!(maps.contains("libopus"), "the maps were read: {maps}");
    Ok(())
}
