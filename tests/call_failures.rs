//! How `callisto call` fails, run as a user runs it (no `--json`): the exit code and the plain
//! sentence for a callee that never answers (3) and for a password the callee's side refuses
//! (2); and how an answer whose media cannot start is taken back. Every address is on
//! loopback.

mod support;

use std::error::Error;
use std::net::UdpSocket;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::callisto::{binary, output_within, Callisto};
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

/// An answer whose media cannot start (here: its recording cannot be written) is taken back at
/// once: the answerer says why and exits with an error, and the caller gets the BYE, which
/// waits for the ACK of the 2xx (RFC 3261 §15), even though the answerer is stopping.
#[test]
fn an_answer_whose_media_cannot_start_is_hung_up_and_says_why() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    std::fs::create_dir_all(&alice_dir)?;
    std::fs::create_dir_all(&bob_dir)?;
    let unwritable = dir.path().join("missing").join("heard.wav");
    let unwritable = unwritable.to_str().ok_or("a UTF-8 path")?;
    let mut bob = Callisto::answer(
        &bob_dir,
        "127.0.0.1:0",
        &[
            "--user",
            "sip:bob@127.0.0.1",
            "--count",
            "1",
            "--record-audio",
            unwritable,
        ],
    )?;
    let uri = format!("sip:bob@127.0.0.1:{}", bob.listening_port(LIMIT)?);

    let started = Instant::now();
    let args = ["--user", "sip:alice@127.0.0.1", "--duration", "20"];
    let output = output_within(&mut call(&alice_dir, &uri, &args), LIMIT)?;
    let (stdout, stderr) = printed(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Call ended by the other side"),
        "{stdout}\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the call stayed up for {:?}: {stdout}",
        started.elapsed()
    );
    let failed = bob.expect("call_failed", LIMIT)?;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot record to"), "{failed}");
    assert!(!bob.wait(LIMIT)?.success(), "{}", bob.stderr());
    Ok(())
}
