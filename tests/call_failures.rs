//! How `callisto call` fails, run as a user runs it (no `--json`): the exit code and the plain
//! sentence for a callee that never answers (3) and for a password the callee's side refuses
//! (2). Every address is on loopback.

mod support;

use std::error::Error;
use std::net::UdpSocket;
use std::process::{Command, Output};
use std::time::Duration;

use support::callisto::{binary, output_within};
use support::sip_registrar::ScriptedRegistrar;

type TestResult = Result<(), Box<dyn Error>>;

const LIMIT: Duration = Duration::from_secs(30);

/// `callisto call URI` with `args`, its configuration and data in `dir`, listening on a free
/// loopback port.
fn call(dir: &std::path::Path, uri: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("call")
        .arg(uri)
        .arg("--config")
        .arg(dir.join("callisto.toml"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("CALLISTO_LOG");
    command
}

/// What a run printed on its standard output and error.
fn printed(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_callee_that_never_answers_fails_with_exit_3_and_a_sentence() -> TestResult {
    let dir = tempfile::tempdir()?;
    // T1 of 50 ms: the INVITE gives up after 64·T1 = 3.2 s instead of 32 s.
    std::fs::write(dir.path().join("callisto.toml"), "[timers]\nt1_ms = 50\n")?;
    // Held and never read: the INVITEs land, no ICMP says the port is closed, nothing answers.
    let silent = UdpSocket::bind("127.0.0.1:0")?;
    let uri = format!("sip:bob@127.0.0.1:{}", silent.local_addr()?.port());
    let output = output_within(&mut call(dir.path(), &uri, &[]), LIMIT)?;
    let (stdout, stderr) = printed(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("The call failed: no answer from the network."),
        "{stdout}\n{stderr}"
    );
    assert!(!stdout.contains('{'), "no JSON without --json: {stdout}");
    Ok(())
}

#[test]
fn a_refused_password_fails_the_call_with_exit_2_and_a_sentence() -> TestResult {
    let dir = tempfile::tempdir()?;
    let registrar = ScriptedRegistrar::granting_and_challenging_calls(3600)?;
    let args = [
        "--user",
        "sip:alice@127.0.0.1",
        "--password",
        "not-it",
        "--registrar",
        &registrar.uri(),
    ];
    let output = output_within(&mut call(dir.path(), "sip:bob@127.0.0.1", &args), LIMIT)?;
    let (stdout, stderr) = printed(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("The call failed: authentication failed"),
        "{stdout}\n{stderr}"
    );
    // The challenge is answered once, with credentials, and the second refusal is final.
    let invites = registrar.answered("INVITE");
    let cseqs: Vec<&str> = invites
        .iter()
        .filter_map(|invite| invite.header("CSeq"))
        .collect();
    let mut distinct = cseqs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "INVITE CSeqs {cseqs:?}");
    assert!(
        invites
            .iter()
            .any(|invite| invite.header("Authorization").is_some()),
        "no INVITE carried credentials"
    );
    assert!(!stdout.contains("not-it") && !stderr.contains("not-it"));
    Ok(())
}
