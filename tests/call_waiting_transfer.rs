//! Call waiting and blind transfer with desk phones (baresip) through Kamailio.
//!
//! - A second call to Callisto while it is in a call rings; answering it puts the first on
//!   hold (a `sendonly` re-INVITE), and the first is resumed once the second is over.
//! - Callisto as transferor: it REFERs bob to carol, reports bob's NOTIFY progress, and leaves
//!   the call when carol answered.
//! - Callisto as transferee: bob REFERs Callisto to carol; Callisto calls carol as the same
//!   account, tells bob how it went (NOTIFY sipfrag), and its call with bob ends.
//!
//! Callisto (alice) plays 440 Hz, bob 1270 Hz, carol 2200 Hz.

mod support;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use support::baresip::Baresip;
use support::baresip_events::BaresipEvent;
use support::baresip_phone::{Codec, PhoneConfig};
use support::callisto::Callisto;
use support::kamailio::{Kamailio, KamailioConfig};
use support::wav;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(5);
const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1270.0;
const CAROL_HZ: f32 = 2200.0;

/// Kamailio with alice, bob and carol; baresip registered as bob and as carol.
struct Rig {
    bob: Baresip,
    carol: Baresip,
    kamailio: Kamailio,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Result<Rig, Box<dyn Error>> {
        let kamailio = Kamailio::start(KamailioConfig {
            users: ["alice", "bob", "carol"]
                .iter()
                .map(|u| (u.to_string(), format!("{u}-secret")))
                .collect(),
            ..KamailioConfig::default()
        })?;
        let dir = tempfile::Builder::new()
            .prefix("callisto-waiting-")
            .tempdir()?;
        let port = kamailio.config().udp_port;
        let phone = |user: &str, hz: f32| -> Result<Baresip, Box<dyn Error>> {
            let tone = dir.path().join(format!("{user}.wav"));
            wav::write_tone(&tone, hz, 8000, 1, 30.0)?;
            let phone = Baresip::start_phone(
                PhoneConfig::registered(user, &format!("{user}-secret"), port)
                    .codecs(&[Codec::Pcmu])
                    .playing(&tone),
            )?;
            phone.wait_for_registered(WAIT)?;
            Ok(phone)
        };
        let bob = phone("bob", BOB_HZ)?;
        let carol = phone("carol", CAROL_HZ)?;
        Ok(Rig {
            bob,
            carol,
            kamailio,
            dir,
        })
    }

    /// A user's address as the phones dial it: at the proxy's address and port.
    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.kamailio.config().udp_port)
    }

    fn recording(&self) -> PathBuf {
        self.dir.path().join("alice-heard.wav")
    }

    /// `callisto COMMAND` as alice, registered, playing 440 Hz and recording.
    fn callisto(&self, command: &[&str]) -> std::io::Result<Callisto> {
        let registrar = format!("sip:127.0.0.1:{}", self.kamailio.config().udp_port);
        let user = self.uri("alice");
        let recording = self.recording().to_string_lossy().into_owned();
        let mut args: Vec<&str> = command.to_vec();
        args.extend([
            "--user",
            &user,
            "--password",
            "alice-secret",
            "--registrar",
            &registrar,
            "--listen",
            "127.0.0.1:0",
            "--audio",
            "tone:440",
            "--codecs",
            "pcmu",
            "--record-audio",
            &recording,
            "--json",
        ]);
        Callisto::start(self.dir.path(), &args)
    }

    /// The SDP directions of the INVITEs the proxy saw in the call with `call_id`.
    fn directions(&self, call_id: &str) -> Vec<String> {
        self.kamailio
            .call_log()
            .iter()
            .filter(|line| line.call_id() == call_id)
            .filter_map(|line| line.request("INVITE"))
            .filter_map(|invite| invite.sdp.as_ref().map(|s| s.direction.clone()))
            .collect()
    }

    /// The Call-IDs of the calls `user` took part in, in the order the proxy first saw them.
    fn call_ids_from(&self, user: &str) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for line in self.kamailio.call_log() {
            let Some(invite) = line.request("INVITE") else {
                continue;
            };
            if invite.from.contains(&format!("sip:{user}@"))
                && !ids.iter().any(|id| id == line.call_id())
            {
                ids.push(line.call_id().to_owned());
            }
        }
        ids
    }
}

fn established_with(user: &'static str) -> impl Fn(&BaresipEvent) -> bool {
    move |event| matches!(event, BaresipEvent::Established { peer } if peer.contains(user))
}

fn assert_heard(who: &str, recording: &Path, expected_hz: f32, own_hz: f32) -> TestResult {
    let heard = wav::heard(recording, expected_hz, own_hz)?;
    println!("{who} heard {expected_hz} Hz: {heard:?}");
    assert!(
        heard.coverage >= 0.9 && heard.seconds >= 1.5,
        "{who} heard {expected_hz} Hz too little: {heard:?} ({})",
        recording.display()
    );
    Ok(())
}

#[test]
fn a_second_call_waits_while_the_first_is_held() -> TestResult {
    let rig = Rig::start()?;
    let mut alice = rig.callisto(&["answer", "--count", "2"])?;
    alice.expect("registered", WAIT)?;
    rig.bob.dial(&rig.uri("alice"))?;
    let first = alice.expect("answered", WAIT)?["call"].clone();
    rig.bob.wait_for_event(established_with("alice"), WAIT)?;
    thread::sleep(Duration::from_millis(300));

    rig.carol.dial(&rig.uri("alice"))?;
    let incoming = alice.expect_matching("incoming", |v| v["call"] != first, WAIT)?;
    let second = incoming["call"].clone();
    // Answering the waiting call holds the first one.
    let held = alice.expect("held", WAIT)?;
    assert_eq!(held["call"], first, "{held}");
    assert_eq!(held["by"], "local");
    alice.expect_call("answered", &second, WAIT)?;
    rig.carol.wait_for_event(established_with("alice"), WAIT)?;
    thread::sleep(Duration::from_millis(2000));

    alice.control(&format!("hangup {second}"))?;
    alice.expect_call("call_ended", &second, WAIT)?;
    alice.control(&format!("resume {first}"))?;
    alice.expect_call("resumed", &first, WAIT)?;
    alice.control("hangup")?;
    alice.expect_call("call_ended", &first, WAIT)?;
    let status = alice.wait(WAIT)?;
    assert!(status.success(), "{status:?}\n{}", alice.stderr());

    // bob's call went sendonly (held by alice) and back to sendrecv.
    let bob_call = rig.call_ids_from("bob");
    let directions = rig.directions(bob_call.first().ok_or("no call from bob")?);
    assert!(
        directions.iter().any(|d| d == "sendonly")
            && directions.last().map(String::as_str) == Some("sendrecv"),
        "{directions:?}"
    );
    // carol talked with alice while bob waited.
    rig.carol
        .wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
    assert_heard("carol", &rig.carol.last_heard()?, ALICE_HZ, CAROL_HZ)?;
    Ok(())
}

#[test]
fn callisto_transfers_a_call_to_another_phone() -> TestResult {
    let rig = Rig::start()?;
    let mut alice = rig.callisto(&["call", &rig.uri("bob")])?;
    let call = alice.expect("answered", WAIT)?["call"].clone();
    rig.bob.wait_for_event(established_with("alice"), WAIT)?;
    thread::sleep(Duration::from_millis(300));

    alice.control(&format!("transfer {}", rig.uri("carol")))?;
    // bob calls carol; alice hears how it goes and leaves once carol answered.
    let done = alice.expect_matching("transfer", |v| v["finished"] == true, WAIT)?;
    assert_eq!(done["call"], call, "{done}");
    assert_eq!(done["code"], 200, "{done}");
    alice.expect_call("call_ended", &call, WAIT)?;
    let status = alice.wait(WAIT)?;
    assert!(status.success(), "{status:?}\n{}", alice.stderr());
    rig.carol.wait_for_event(established_with("bob"), WAIT)?;
    thread::sleep(Duration::from_millis(300));
    rig.carol.hang_up()?;
    Ok(())
}

#[test]
fn callisto_follows_a_transfer_to_another_phone() -> TestResult {
    let rig = Rig::start()?;
    let mut alice = rig.callisto(&["answer"])?;
    alice.expect("registered", WAIT)?;
    rig.bob.dial(&rig.uri("alice"))?;
    let original = alice.expect("answered", WAIT)?["call"].clone();
    rig.bob.wait_for_event(established_with("alice"), WAIT)?;
    thread::sleep(Duration::from_millis(300));

    rig.bob.command(&format!("transfer {}", rig.uri("carol")))?;
    let requested = alice.expect("transfer_requested", WAIT)?;
    assert_eq!(requested["call"], original);
    assert_eq!(requested["target"], rig.uri("carol"));
    let new_call = requested["new_call"].clone();
    alice.expect_call("answered", &new_call, WAIT)?;
    rig.carol.wait_for_event(established_with("alice"), WAIT)?;
    // The call with bob ends once carol answered.
    alice.expect_call("call_ended", &original, WAIT)?;
    thread::sleep(Duration::from_millis(2000));
    alice.control("hangup")?;
    alice.expect_call("call_ended", &new_call, WAIT)?;
    let status = alice.wait(WAIT)?;
    assert!(status.success(), "{status:?}\n{}", alice.stderr());
    // The new call was placed as alice, through the proxy, and carried audio.
    assert!(
        rig.call_ids_from("alice").len() == 1,
        "{:?}",
        rig.kamailio.call_log()
    );
    rig.carol
        .wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
    assert_heard("carol", &rig.carol.last_heard()?, ALICE_HZ, CAROL_HZ)?;
    Ok(())
}
