//! Callisto's WebRTC path end to end (ICE, DTLS-SRTP, BUNDLE, Opus and H.264), through
//! Kamailio:
//!
//! - Callisto calls Callisto with video both ways; each side's recording holds the other's
//!   test pattern with consecutive frame counters, at the pattern's frame rate.
//! - A browser softphone (headless Chromium + JsSIP over WebSocket) and Callisto call each
//!   other both ways: the browser's `getStats()` shows decoded H.264 and Opus audio from
//!   Callisto, Callisto's summary shows decoded frames and audio from the browser. The
//!   browser holds the call and takes it back (re-INVITEs with new offers), and Callisto
//!   reports both; then Callisto holds it and takes it back, and the browser reports both.
//! - A desk phone (baresip, classic RTP only) refuses Callisto's WebRTC offer with 488 and
//!   Callisto calls again on the classic path by itself.
//! - A Callisto registered over WebSocket places its call over that connection, presenting
//!   the flow's `.invalid` Contact, and the proxy routes the dialog back to it.
//!
//! The tests run one at a time: each runs two video encoders and decoders in real time.

mod support;

use std::error::Error;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use support::baresip::Baresip;
use support::baresip_phone::{Codec, PhoneConfig};
use support::browser::{Browser, BrowserConfig};
use support::kamailio::{Kamailio, KamailioConfig};
use support::video::stamp_run;
use support::video_call::{alice_calls_bob_on_webrtc, aor, callisto, number, recording};
use support::wav;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);
const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1000.0;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialised() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kamailio with alice and bob, a WebSocket listener for browsers.
fn kamailio() -> Result<Kamailio, Box<dyn Error>> {
    Ok(Kamailio::start(
        KamailioConfig::websocket_for_alice_and_bob(),
    )?)
}

/// The checks on one side's `call_ended` summary and recordings: it decoded the other's
/// video (H.264, 640x480, at least 25 fps, consecutive frame counters with the other's
/// identity) and heard the other's tone.
fn check_received(
    who: &str,
    ended: &Value,
    dir: &Path,
    peer_identity: u16,
    peer_hz: f32,
    own_hz: f32,
) -> TestResult {
    let video = &ended["video"];
    assert_eq!(video["codec"], "H264", "{who}: {ended}");
    assert_eq!(video["receive_resolution"], "640x480", "{who}: {ended}");
    assert!(number(&video["fps"]) >= 25.0, "{who}: {ended}");
    assert_eq!(ended["audio"]["codec"], "opus", "{who}: {ended}");
    assert!(ended["audio"]["srtp"] == true, "{who}: {ended}");
    let run = stamp_run(&recording(dir, who, "y4m"))?;
    println!("{who} saw {run:?}");
    assert!(run.frames >= 60, "{who}: {run:?}");
    assert_eq!(run.identities, vec![peer_identity], "{who}: {run:?}");
    assert!(run.stamped * 100 >= run.frames * 98, "{who}: {run:?}");
    assert_eq!(run.gaps, 0, "{who}: {run:?}");
    // The summary counts what the recording holds.
    assert_eq!(
        number(&video["frames_decoded"]),
        run.frames as f64,
        "{who}: {ended}"
    );
    let heard = wav::heard(&recording(dir, who, "wav"), peer_hz, own_hz)?;
    println!("{who} heard {heard:?}");
    assert!(heard.coverage >= 0.9, "{who}: {heard:?}");
    Ok(())
}

/// One side's video summary against the other's: what `sender` sent, `receiver` decoded (but
/// for the pictures in flight when the call ended) at the rate it was sent; nothing lost or
/// asked for again on loopback, every payload taken.
fn check_summaries_agree(sender: &Value, receiver: &Value) {
    let (sent, received) = (&sender["video"], &receiver["video"]);
    let both = format!("sender {sender}\nreceiver {receiver}");
    assert_eq!(sent["resolution"], received["receive_resolution"], "{both}");
    let (frames_sent, frames_decoded) = (
        number(&sent["frames_sent"]),
        number(&received["frames_decoded"]),
    );
    assert!(
        frames_decoded <= frames_sent && frames_sent - frames_decoded <= 10.0,
        "{both}"
    );
    let (sent_kbps, received_kbps) = (
        number(&sent["bitrate_kbps"]),
        number(&received["receive_kbps"]),
    );
    assert!(sent_kbps >= 100.0, "{both}");
    assert!(
        (received_kbps - sent_kbps).abs() <= sent_kbps * 0.25,
        "{both}"
    );
    for field in ["lost", "nacked", "payloads_refused"] {
        assert_eq!(received[field], 0, "{field}: {both}");
    }
}

#[test]
fn callisto_calls_callisto_with_video_both_ways() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let (mut alice, mut bob, answered) =
        alice_calls_bob_on_webrtc(&kamailio, dir.path(), (ALICE_HZ, BOB_HZ), "3", || Ok(()))?;
    assert_eq!(answered["media"], "webrtc", "{answered}");
    assert_eq!(answered["video"], true, "{answered}");
    let alice_ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    println!(
        "WEBRTC-SETUP {{\"invite_to_first_frame_ms\":{},\"setup_ms\":{}}}",
        alice_ended["video"]["first_frame_ms"], alice_ended["setup_ms"]
    );
    check_received("alice", &alice_ended, dir.path(), 2, BOB_HZ, ALICE_HZ)?;
    check_received("bob", &bob_ended, dir.path(), 1, ALICE_HZ, BOB_HZ)?;
    // Alice's side: she stops sending when she hangs up, so what she sent bob decoded. (Bob
    // sends on until her BYE reaches him, which her summary does not see.)
    check_summaries_agree(&alice_ended, &bob_ended);
    // Both went through the proxy as WebRTC offers and answers.
    let invite = kamailio
        .call_log()
        .iter()
        .find_map(|line| line.request("INVITE").cloned())
        .ok_or("no INVITE")?;
    assert_eq!(
        invite.sdp.as_ref().and_then(|s| s.audio_protocol()),
        Some("UDP/TLS/RTP/SAVPF")
    );
    Ok(())
}

/// A browser softphone registered as `user` (password `USER-secret`) over WebSocket, whose
/// microphone plays `hz`.
fn browser(
    kamailio: &Kamailio,
    config: BrowserConfig,
    user: &str,
    hz: f32,
    dir: &Path,
) -> Result<Browser, Box<dyn Error>> {
    let password = format!("{user}-secret");
    let ws = kamailio.ws_url();
    Ok(Browser::registered(
        config,
        &ws,
        (user, &password),
        hz,
        dir,
    )?)
}

/// The browser decodes Callisto's H.264 pattern and receives its Opus audio.
fn check_browser_received(browser: &mut Browser) -> Result<Value, Box<dyn Error>> {
    let stats = browser.wait_for_stats(WAIT, "Callisto's media", |stats| {
        number(&stats["inbound_video"]["framesDecoded"]) > 30.0
            && number(&stats["inbound_audio"]["packetsReceived"]) > 50.0
    })?;
    assert_eq!(stats["inbound_video"]["codec"], "video/H264", "{stats}");
    assert_eq!(stats["inbound_video"]["frameWidth"], 640, "{stats}");
    assert_eq!(stats["inbound_audio"]["codec"], "audio/opus", "{stats}");
    Ok(stats)
}

/// Callisto decoded the browser's H.264 video and received its Opus audio.
fn check_callisto_received(ended: &Value) {
    assert_eq!(ended["video"]["codec"], "H264", "{ended}");
    assert!(number(&ended["video"]["frames_decoded"]) > 30.0, "{ended}");
    assert_eq!(ended["audio"]["codec"], "opus", "{ended}");
    assert!(number(&ended["audio"]["rx_packets"]) > 50.0, "{ended}");
}

#[test]
fn callisto_calls_a_browser_with_video() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let mut bob = browser(
        &kamailio,
        BrowserConfig::auto_answering("bob"),
        "bob",
        BOB_HZ,
        dir.path(),
    )?;
    let bob_uri = aor(&kamailio, "bob");
    let mut alice = callisto(
        &kamailio,
        dir.path(),
        "alice",
        &["call", &bob_uri],
        ALICE_HZ,
        1,
        &["--media", "webrtc", "--duration", "4"],
    )?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["video"], true, "{answered}");
    let stats = check_browser_received(&mut bob)?;
    println!("browser stats: {stats}");
    let ended = alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    check_callisto_received(&ended);
    bob.wait_for_event("ended", WAIT)?;
    Ok(())
}

#[test]
fn a_browser_calls_callisto_with_video() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let mut bob = callisto(&kamailio, dir.path(), "bob", &["answer"], BOB_HZ, 2, &[])?;
    bob.expect("registered", WAIT)?;
    let mut alice = browser(
        &kamailio,
        BrowserConfig::new("alice"),
        "alice",
        ALICE_HZ,
        dir.path(),
    )?;
    alice.call_preferring_h264(&aor(&kamailio, "bob"), true, true)?;
    let answered = bob.expect("answered", WAIT)?;
    assert_eq!(answered["media"], "webrtc", "{answered}");
    alice.wait_for_confirmed(WAIT)?;
    check_browser_received(&mut alice)?;
    // The browser holds the call and takes it back: two re-INVITEs with new offers, which
    // Callisto answers in the running session.
    let held = alice.hold(true)?;
    assert_eq!(held["held"], true, "{held}");
    let event = bob.expect("held", WAIT)?;
    assert_eq!(event["by"], "remote", "{event}");
    let resumed = alice.hold(false)?;
    assert_eq!(resumed["held"], false, "{resumed}");
    let event = bob.expect("resumed", WAIT)?;
    assert_eq!(event["by"], "remote", "{event}");
    for name in ["hold", "unhold"] {
        let event = alice.wait_for_event(name, WAIT)?;
        assert_eq!(event["originator"], "local", "{event}");
    }
    // Callisto holds the call and takes it back: its own re-INVITEs, made by its session.
    let local = |event: &Value| event["by"] == "local";
    bob.control("hold")?;
    bob.expect_matching("held", local, WAIT)?;
    let event = alice.wait_for_event("hold", WAIT)?;
    assert_eq!(event["originator"], "remote", "{event}");
    bob.control("resume")?;
    bob.expect_matching("resumed", local, WAIT)?;
    let event = alice.wait_for_event("unhold", WAIT)?;
    assert_eq!(event["originator"], "remote", "{event}");
    // A little more call, so that both sides have seen a good second of each other.
    std::thread::sleep(Duration::from_millis(1500));
    alice.hang_up()?;
    let ended = bob.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote", "{ended}");
    check_callisto_received(&ended);
    let bob_heard = recording(dir.path(), "bob", "wav");
    let heard = wav::heard(&bob_heard, ALICE_HZ, BOB_HZ)?;
    let (with_tone, gap) = wav::tone_gap(&bob_heard, ALICE_HZ)?;
    println!("bob heard {heard:?}: the tone for {with_tone:.1} s, with a gap of {gap:.1} s");
    // The recording holds two holds, whose lengths vary from run to run, so what counts is
    // how long bob heard alice: before the holds, and the 1.5 s after them.
    assert!(with_tone >= 1.5, "{heard:?}: {with_tone} s of alice");
    assert!(heard.own_level < 0.01, "{heard:?}");
    Ok(())
}

#[test]
fn a_desk_phone_refusing_webrtc_gets_a_classic_call() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let tone = dir.path().join("bob.wav");
    wav::write_tone(&tone, BOB_HZ, 8000, 1, 10.0)?;
    let bob = Baresip::start_phone(
        PhoneConfig::registered("bob", "bob-secret", kamailio.config().udp_port)
            .codecs(&[Codec::Pcmu])
            .playing(&tone),
    )?;
    bob.wait_for_registered(WAIT)?;
    let bob_uri = aor(&kamailio, "bob");
    let mut alice = callisto(
        &kamailio,
        dir.path(),
        "alice",
        &["call", &bob_uri],
        ALICE_HZ,
        1,
        &["--media", "webrtc", "--duration", "2"],
    )?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["media"], "classic", "{answered}");
    let ended = alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(number(&ended["audio"]["rx_packets"]) > 50.0, "{ended}");
    // The proxy saw the WebRTC offer refused with 488, then the classic offer.
    let log = kamailio.call_log();
    let protocols: Vec<String> = log
        .iter()
        .filter_map(|line| line.request("INVITE"))
        .filter_map(|invite| invite.sdp.as_ref()?.audio_protocol().map(str::to_owned))
        .collect();
    assert_eq!(
        protocols.first().map(String::as_str),
        Some("UDP/TLS/RTP/SAVPF"),
        "{protocols:?}"
    );
    assert!(
        protocols.iter().any(|p| p == "RTP/AVP" || p == "RTP/SAVP"),
        "{protocols:?}"
    );
    assert!(log.iter().any(|line| line.reply(488, "INVITE").is_some()));
    Ok(())
}

#[test]
fn a_callisto_registered_over_websocket_calls_through_the_proxy() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let ws_registrar = format!(
        "sip:127.0.0.1:{};transport=ws",
        kamailio.config().ws_port.unwrap_or_default()
    );
    // bob answers over UDP; alice registers over WebSocket, as a browser softphone does.
    let mut bob = callisto(
        &kamailio,
        dir.path(),
        "bob",
        &["answer", "--count", "2"],
        BOB_HZ,
        2,
        &[],
    )?;
    bob.expect("registered", WAIT)?;
    let bob_uri = aor(&kamailio, "bob");
    let mut alice = callisto(
        &kamailio,
        dir.path(),
        "alice",
        &["call", &bob_uri],
        ALICE_HZ,
        1,
        &[
            "--media",
            "webrtc",
            "--duration",
            "2",
            "--registrar",
            &ws_registrar,
        ],
    )?;
    alice.expect("registered", WAIT)?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["media"], "webrtc", "{answered}");
    let ended = alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(number(&ended["video"]["frames_decoded"]) > 30.0, "{ended}");
    // The INVITE came to the proxy over WebSocket, with the flow's .invalid Contact.
    let invite = kamailio
        .call_log()
        .iter()
        .filter_map(|line| line.request("INVITE").cloned())
        .find(|invite| invite.from.contains("alice"))
        .ok_or("no INVITE from alice")?;
    assert!(invite.proto.eq_ignore_ascii_case("ws"), "{invite:?}");
    Ok(())
}
