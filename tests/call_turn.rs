//! Callisto calls Callisto on the WebRTC path through a TURN server only: coturn (Debian's
//! `coturn`, `tests/support/coturn.rs`) on loopback with a static user, both Callistos with
//! `--turn … --relay-only`.
//!
//! With the ICE transport policy `relay`, each side gathers one relay candidate (a coturn
//! allocation) and nothing else, so the only pair ICE can check is relay ↔ relay: the test
//! checks that audio and video flowed both ways, that each side's selected pair joins two
//! of coturn's relay addresses, and that coturn's log shows the allocations. A wrong TURN
//! password leaves no candidate at all: the call fails instead of falling back to host
//! addresses.

mod support;

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use support::callisto::Callisto;
use support::coturn::{Coturn, TURN_PASSWORD, TURN_USER};
use support::wav;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(15);

/// One call at a time: each runs two video encoders and decoders in real time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialised() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// A Callisto in its own directory under `dir`, with a tone, the test pattern and the TURN
/// flags.
fn callisto(
    dir: &Path,
    name: &str,
    command: &[&str],
    turn: &[String],
    hz: u32,
    identity: u16,
) -> std::io::Result<Callisto> {
    let home = dir.join(name);
    std::fs::create_dir_all(&home)?;
    let tone = format!("tone:{hz}");
    let identity = identity.to_string();
    let mut args: Vec<&str> = command.to_vec();
    args.extend([
        "--media",
        "webrtc",
        "--audio",
        &tone,
        "--video",
        "pattern",
        "--pattern-id",
        &identity,
        "--json",
    ]);
    args.extend(turn.iter().map(String::as_str));
    Callisto::start(&home, &args)
}

fn address(value: &Value) -> Option<SocketAddr> {
    value.as_str()?.parse().ok()
}

/// One side's summary: media both ways, and a selected pair of two coturn relay addresses.
fn check_relayed(who: &str, ended: &Value, coturn: &Coturn) {
    assert!(
        number(&ended["audio"]["rx_packets"]) > 50.0,
        "{who}: {ended}"
    );
    assert!(
        number(&ended["audio"]["tx_packets"]) > 50.0,
        "{who}: {ended}"
    );
    assert_eq!(ended["video"]["codec"], "H264", "{who}: {ended}");
    assert!(
        number(&ended["video"]["frames_decoded"]) > 30.0,
        "{who}: {ended}"
    );
    let ice = &ended["ice"];
    assert_eq!(ice["local_type"], "relay", "{who}: {ended}");
    for end in ["local", "remote"] {
        let addr = address(&ice[end]).unwrap_or_else(|| panic!("{who}: no {end} in {ended}"));
        assert!(
            coturn.is_relay_address(addr),
            "{who}: {end} {addr} is not one of coturn's relay addresses {:?}: {ended}",
            coturn.relay_ports()
        );
    }
}

/// Bob answers at a port of his own, recording what he hears ([`bob_heard`]); alice calls
/// him there for `seconds`. Both use coturn with `password`, relay candidates only.
fn alice_calls_bob(
    dir: &Path,
    coturn: &Coturn,
    password: &str,
    seconds: &str,
) -> Result<(Callisto, Callisto), Box<dyn Error>> {
    let turn = coturn.relay_only_flags(password);
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let heard = bob_heard(dir);
    let heard = heard.to_str().ok_or("a temporary path that is not UTF-8")?;
    let answer = ["answer", "--listen", &listen, "--record-audio", heard];
    let mut bob = callisto(dir, "bob", &answer, &turn, 1000, 2)?;
    bob.expect("listening", WAIT)?;
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let alice = callisto(
        dir,
        "alice",
        &[
            "call",
            &uri,
            "--listen",
            "127.0.0.1:0",
            "--duration",
            seconds,
        ],
        &turn,
        440,
        1,
    )?;
    Ok((bob, alice))
}

fn bob_heard(dir: &Path) -> PathBuf {
    dir.join("bob-heard.wav")
}

#[test]
fn callisto_calls_callisto_through_coturn_with_relay_candidates_only() -> TestResult {
    let _one = serialised();
    let coturn = Coturn::start()?;
    let dir = tempfile::tempdir()?;
    let (mut bob, mut alice) = alice_calls_bob(dir.path(), &coturn, TURN_PASSWORD, "4")?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["media"], "webrtc", "{answered}");
    let alice_ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    println!("alice: {alice_ended}\nbob: {bob_ended}");
    check_relayed("alice", &alice_ended, &coturn);
    check_relayed("bob", &bob_ended, &coturn);
    // Each side's remote end is the other's relay address, not its own.
    assert_eq!(alice_ended["ice"]["local"], bob_ended["ice"]["remote"]);
    assert_eq!(alice_ended["ice"]["remote"], bob_ended["ice"]["local"]);
    let allocations = coturn.allocations();
    assert!(
        allocations >= 2,
        "{allocations} allocations:\n{}",
        coturn.log_tail(60)
    );
    Ok(())
}

/// A hold and a resume on a relayed call: each re-INVITE sets a new local description, which
/// makes the peer connection gather again while the call runs on its relay. The relay must
/// survive it: coturn makes no further allocation, and alice's tone reaches bob after the
/// resume as before the hold.
#[test]
fn a_relayed_call_keeps_its_allocations_through_hold_and_resume() -> TestResult {
    let _one = serialised();
    let coturn = Coturn::start()?;
    let dir = tempfile::tempdir()?;
    let (mut bob, mut alice) = alice_calls_bob(dir.path(), &coturn, TURN_PASSWORD, "7")?;
    alice.expect("answered", WAIT)?;
    std::thread::sleep(Duration::from_millis(1500));
    let allocations = coturn.allocations();
    let local = |event: &Value| event["by"] == "local";
    let remote = |event: &Value| event["by"] == "remote";
    alice.control("hold")?;
    alice.expect_matching("held", local, WAIT)?;
    bob.expect_matching("held", remote, WAIT)?;
    std::thread::sleep(Duration::from_millis(1000));
    alice.control("resume")?;
    alice.expect_matching("resumed", local, WAIT)?;
    bob.expect_matching("resumed", remote, WAIT)?;
    let alice_ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    check_relayed("alice", &alice_ended, &coturn);
    check_relayed("bob", &bob_ended, &coturn);
    assert_eq!(
        coturn.allocations(),
        allocations,
        "hold and resume allocated again:\n{}",
        coturn.log_tail(60)
    );
    // About 1.5 s of alice before the hold and 3 s after the resume; a relay lost at the
    // hold would leave only the first stretch.
    let (with_tone, gap) = wav::tone_gap(&bob_heard(dir.path()), 440.0)?;
    println!("bob heard alice for {with_tone:.1} s, with a gap of {gap:.1} s");
    assert!(
        with_tone >= 3.0,
        "bob heard alice for {with_tone:.1} s only"
    );
    Ok(())
}

/// With a wrong TURN password coturn refuses the allocations: neither side has a candidate,
/// and relay-only means no host address is tried either, so no media flows (and no pair is
/// selected) even though both Callistos sit on the same loopback interface.
#[test]
fn relay_only_with_a_refused_allocation_never_falls_back_to_host_addresses() -> TestResult {
    let _one = serialised();
    let coturn = Coturn::start()?;
    let dir = tempfile::tempdir()?;
    let (mut bob, mut alice) = alice_calls_bob(dir.path(), &coturn, "not-the-password", "2")?;
    let alice_ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    bob.wait(WAIT)?;
    alice.wait(WAIT)?;
    for (who, ended) in [("alice", &alice_ended), ("bob", &bob_ended)] {
        assert_eq!(ended["audio"]["rx_packets"], 0, "{who}: {ended}");
        assert_eq!(ended["video"]["frames_decoded"], 0, "{who}: {ended}");
        assert!(ended["ice"].is_null(), "{who}: {ended}");
    }
    assert_eq!(coturn.allocations(), 0, "{}", coturn.log_tail(40));
    // Each side's authenticated request (its user name given) was refused.
    let user = format!("user <{TURN_USER}>");
    let refused = coturn
        .log_lines()
        .iter()
        .filter(|line| line.contains(&user) && line.contains("error 401"))
        .count();
    assert!(refused >= 2, "{}", coturn.log_tail(40));
    Ok(())
}
