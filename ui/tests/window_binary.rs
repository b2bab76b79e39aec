//! `callisto-desktop`, the window's binary, has the window's options and none of the headless
//! commands (those are `callisto`'s). Being an integration test of this package, it also makes
//! `cargo test` build `callisto-desktop`, which the top-level tests start through `callisto`.

use std::error::Error;
use std::process::Command;

type TestResult = Result<(), Box<dyn Error>>;

#[test]
fn the_window_binary_offers_no_command() -> TestResult {
    let desktop = env!("CARGO_BIN_EXE_callisto-desktop");
    let help = Command::new(desktop).arg("--help").output()?;
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
    let refused = Command::new(desktop).arg("answer").output()?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unexpected argument 'answer'"), "{stderr}");
    Ok(())
}
