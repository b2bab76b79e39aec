//! Two browser softphones (headless Chromium + JsSIP, `tests/support/browser.rs`) registered
//! to Kamailio over WebSocket call each other with audio and video: the browser-to-browser
//! baseline that Callisto's WebRTC calls are compared with.
//!
//! Media is checked by content and by the pages' own `getStats()`: each side decodes the other's
//! 640x480 fake camera at its frame rate, and hears the other's tone (a WAV file played by the
//! fake microphone, found again by an analyser on the received track). Call setup (call() to the
//! first decoded frame) and the CPU of both Chromium process trees over 10 s of call are printed
//! as one JSON line, `BROWSER-BASELINE {…}`; they are figures, not assertions.

mod support;

use std::error::Error;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use support::browser::{Browser, BrowserConfig};
use support::kamailio::{Kamailio, KamailioConfig};
use support::sip_uas::{webrtc_audio_answer, ScriptedUas};

type TestResult = Result<(), Box<dyn Error>>;

/// The tone each browser's microphone plays.
const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1000.0;
/// How long the measured stretch of the call lasts.
const MEASURED_CALL: Duration = Duration::from_secs(10);
/// Up to here a call and its first frame must have come; generous for a loaded machine.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// One test at a time: two Chromiums already load the machine's cores, and the measured test
/// must not share them with another call.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialised() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kamailio with a WS listener and two users.
fn kamailio() -> Result<Kamailio, Box<dyn Error>> {
    Ok(Kamailio::start(
        KamailioConfig::websocket_for_alice_and_bob(),
    )?)
}

/// A browser whose microphone plays `hz`, registered as `user`.
fn registered_browser(
    kamailio: &Kamailio,
    config: BrowserConfig,
    user: &str,
    password: &str,
    hz: f32,
    dir: &Path,
) -> Result<Browser, Box<dyn Error>> {
    let ws = kamailio.ws_url();
    Ok(Browser::registered(config, &ws, (user, password), hz, dir)?)
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// Checks what `browser` receives: video decoded at the fake camera's size, the codec wanted,
/// audio with energy, and the tone `hz` as the loudest frequency; over loopback.
fn check_media(browser: &mut Browser, video_codec: &str, hz: f32) -> Result<Value, Box<dyn Error>> {
    let stats = browser.wait_for_stats(CALL_TIMEOUT, "received media", |stats| {
        number(&stats["inbound_video"]["framesDecoded"]) > 30.0
            && number(&stats["inbound_audio"]["totalAudioEnergy"]) > 0.0
            && (number(&stats["remote_audio_peak"]["hz"]) - f64::from(hz)).abs() < 30.0
    })?;
    let video = &stats["inbound_video"];
    assert_eq!(video["frameWidth"], 640, "{}: {stats}", browser.name());
    assert_eq!(video["frameHeight"], 480, "{}: {stats}", browser.name());
    assert_eq!(video["codec"], video_codec, "{}: {stats}", browser.name());
    assert_eq!(
        stats["inbound_audio"]["codec"],
        "audio/opus",
        "{}: {stats}",
        browser.name()
    );
    let pair = &stats["candidate_pair"];
    assert_eq!(
        pair["local"]["address"],
        "127.0.0.1",
        "{}: {stats}",
        browser.name()
    );
    assert_eq!(
        pair["remote"]["address"],
        "127.0.0.1",
        "{}: {stats}",
        browser.name()
    );
    assert_eq!(
        stats["transport"]["dtlsState"],
        "connected",
        "{}: {stats}",
        browser.name()
    );
    Ok(stats)
}

/// Frames decoded per second over a stretch, from two statistics snapshots.
fn decoded_fps(before: &Value, after: &Value, seconds: f64) -> f64 {
    (number(&after["inbound_video"]["framesDecoded"])
        - number(&before["inbound_video"]["framesDecoded"]))
        / seconds
}

#[test]
fn browsers_call_each_other_with_audio_and_video_over_websocket() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let mut alice = registered_browser(
        &kamailio,
        BrowserConfig::new("alice"),
        "alice",
        "alice-secret",
        ALICE_HZ,
        dir.path(),
    )?;
    let mut bob = registered_browser(
        &kamailio,
        BrowserConfig::auto_answering("bob"),
        "bob",
        "bob-secret",
        BOB_HZ,
        dir.path(),
    )?;

    // Alice calls bob, who answers at once with video; both put H.264 Constrained Baseline
    // first, Callisto's video codec, so the figures compare with Callisto's calls.
    alice.call_preferring_h264("sip:bob@127.0.0.1", true, true)?;
    let incoming = bob.wait_for_event("incoming", CALL_TIMEOUT)?;
    assert_eq!(incoming["video"], true, "{incoming}");
    assert!(
        incoming["from"]
            .as_str()
            .is_some_and(|from| from.contains("alice")),
        "{incoming}"
    );
    let confirmed = alice.wait_for_confirmed(CALL_TIMEOUT)?;
    bob.wait_for_confirmed(CALL_TIMEOUT)?;
    // Bob's page sent its 200 OK (camera opened, ICE gathered, answer made) at `accepted`.
    let accepted = bob.wait_for_event("accepted", CALL_TIMEOUT)?;
    let first_frame = alice.wait_for_event("first_frame", CALL_TIMEOUT)?;
    let first_audio = alice.wait_for_event("first_audio", CALL_TIMEOUT)?;
    bob.wait_for_event("first_frame", CALL_TIMEOUT)?;

    for (browser, hz) in [(&mut alice, BOB_HZ), (&mut bob, ALICE_HZ)] {
        let stats = check_media(browser, "video/H264", hz)?;
        let fmtp = stats["inbound_video"]["codec_fmtp"]
            .as_str()
            .unwrap_or_default();
        assert!(fmtp.contains("packetization-mode=1"), "{stats}");
        assert!(fmtp.contains("profile-level-id=42e01f"), "{stats}");
        assert_eq!(stats["outbound_video"]["codec"], "video/H264", "{stats}");
    }

    // The measured stretch: CPU of both Chromium trees, frames decoded on both sides.
    let alice_before = alice.stats()?;
    let bob_before = bob.stats()?;
    let alice_cpu = alice.chromium_cpu_time();
    let bob_cpu = bob.chromium_cpu_time();
    let started = Instant::now();
    std::thread::sleep(MEASURED_CALL);
    let wall = started.elapsed().as_secs_f64();
    let alice_cpu = alice.chromium_cpu_time().saturating_sub(alice_cpu);
    let bob_cpu = bob.chromium_cpu_time().saturating_sub(bob_cpu);
    let alice_after = alice.stats()?;
    let bob_after = bob.stats()?;
    let alice_fps = decoded_fps(&alice_before, &alice_after, wall);
    let bob_fps = decoded_fps(&bob_before, &bob_after, wall);
    // Decoding keeps up with the 30 fps camera on both sides (a frame rate far below means
    // frames were lost or the pipeline stalled, not a slow machine).
    assert!(
        alice_fps > 25.0,
        "alice decoded {alice_fps:.1} fps: {alice_after}"
    );
    assert!(bob_fps > 25.0, "bob decoded {bob_fps:.1} fps: {bob_after}");

    let figures = serde_json::json!({
        "scenario": "browser-to-browser",
        "video_codec": alice_after["inbound_video"]["codec"],
        "setup_ms": {
            "call_to_invite_sent": round1(
                number(&first_frame["ms_since_start"]) - number(&first_frame["ms_since_invite"])
            ),
            "invite_to_confirmed": confirmed["ms_since_invite"],
            "callee_incoming_to_200_sent": round1(
                number(&accepted["page_ms"]) - number(&incoming["page_ms"])
            ),
            "callee_media_open_to_200_sent": accepted["ms_since_start"],
            "invite_to_first_audio": first_audio["ms_since_invite"],
            "invite_to_first_frame": first_frame["ms_since_invite"],
            "confirmed_to_first_frame": first_frame["ms_since_confirmed"],
        },
        "decoded_fps": { "alice": round1(alice_fps), "bob": round1(bob_fps) },
        "cpu_percent_of_one_core": {
            "alice_chromium": round1(100.0 * alice_cpu.as_secs_f64() / wall),
            "bob_chromium": round1(100.0 * bob_cpu.as_secs_f64() / wall),
        },
        "measured_seconds": round1(wall),
        "alice_inbound_video": alice_after["inbound_video"],
        "alice_outbound_video": alice_after["outbound_video"],
    });
    println!("BROWSER-BASELINE {figures}");

    alice.hang_up()?;
    let ended = bob.wait_for_event("ended", CALL_TIMEOUT)?;
    assert_eq!(ended["originator"], "remote", "{ended}");
    alice.wait_for_event("ended", CALL_TIMEOUT)?;
    Ok(())
}

#[test]
fn browser_answers_a_browser_by_hand_with_chromium_default_codecs() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let mut alice = registered_browser(
        &kamailio,
        BrowserConfig::new("alice"),
        "alice",
        "alice-secret",
        ALICE_HZ,
        dir.path(),
    )?;
    // Bob's offer gathers a transport per media kind (balanced bundle policy): his page then
    // waits for the end of ICE gathering instead of the first candidate.
    let mut bob = registered_browser(
        &kamailio,
        BrowserConfig {
            bundle_policy: "balanced",
            ..BrowserConfig::new("bob")
        },
        "bob",
        "bob-secret",
        BOB_HZ,
        dir.path(),
    )?;

    // Bob calls alice with Chromium's codec order (VP8 first); alice rings, then answers.
    bob.call("sip:alice@127.0.0.1", true)?;
    let incoming = alice.wait_for_event("incoming", CALL_TIMEOUT)?;
    assert!(
        incoming["from"]
            .as_str()
            .is_some_and(|from| from.contains("bob")),
        "{incoming}"
    );
    let progress = bob.wait_for_event("progress", CALL_TIMEOUT)?;
    assert_eq!(progress["status"], 180, "{progress}");
    alice.answer(true)?;
    bob.wait_for_confirmed(CALL_TIMEOUT)?;
    alice.wait_for_confirmed(CALL_TIMEOUT)?;

    for (browser, hz) in [(&mut bob, ALICE_HZ), (&mut alice, BOB_HZ)] {
        let stats = check_media(browser, "video/VP8", hz)?;
        assert_eq!(stats["outbound_video"]["codec"], "video/VP8", "{stats}");
    }

    // The callee ends the call this time: the BYE crosses the proxy the other way.
    alice.hang_up()?;
    let ended = bob.wait_for_event("ended", CALL_TIMEOUT)?;
    assert_eq!(ended["originator"], "remote", "{ended}");
    alice.wait_for_event("ended", CALL_TIMEOUT)?;
    assert_eq!(bob.stats()?["in_call"], false);
    Ok(())
}

#[test]
fn browser_call_to_an_unregistered_user_fails_with_404() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let mut alice = registered_browser(
        &kamailio,
        BrowserConfig::new("alice"),
        "alice",
        "alice-secret",
        ALICE_HZ,
        dir.path(),
    )?;
    alice.call("sip:bob@127.0.0.1", true)?;
    let failed = alice.wait_for_event("failed", CALL_TIMEOUT)?;
    assert_eq!(failed["status"], 404, "{failed}");
    assert_eq!(failed["originator"], "remote", "{failed}");

    alice.unregister()?;
    let unregistered = alice.wait_for_event("unregistered", CALL_TIMEOUT)?;
    assert_eq!(unregistered["status"], 200, "{unregistered}");

    // A wrong password is a registration failure, reported as such.
    let mut mallory = Browser::start(BrowserConfig::new("mallory"))?;
    let error = mallory
        .register(&kamailio.ws_url(), "sip:bob@127.0.0.1", "wrong")
        .expect_err("a wrong password must not register");
    assert!(error.to_string().contains("registration_failed"), "{error}");
    Ok(())
}

#[test]
fn a_missing_chromium_fails_and_names_the_install_step() {
    let config = BrowserConfig {
        chromium: Some("/nonexistent/chromium".into()),
        ..BrowserConfig::new("nobody")
    };
    let error = Browser::start(config)
        .err()
        .expect("no browser can start without Chromium");
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
    let message = error.to_string();
    assert!(message.contains("/nonexistent/chromium"), "{message}");
    assert!(
        message.contains("scripts/install-deps.sh test"),
        "{message}"
    );
}

#[test]
fn stopping_a_browser_leaves_none_of_its_processes() -> TestResult {
    let _one = serialised();
    let mut browser = Browser::start(BrowserConfig::new("short-lived"))?;
    let pids = browser.chromium_pids();
    assert!(
        pids.len() >= 2,
        "Chromium runs a browser and a renderer: {pids:?}"
    );
    let node = browser.pid();
    browser.stop();
    for pid in pids.into_iter().chain([node]) {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = state
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
        assert!(!alive, "process {pid} outlived the browser: {state}");
    }
    Ok(())
}

/// The proxy between a browser on WebSocket and a phone on UDP: the INVITE crosses with two
/// Record-Route entries (one per transport), the browser's ACK reaches the UDP phone, and the
/// phone's BYE, sent along the route set to the browser's Contact, reaches the
/// browser over its WebSocket (the alias Kamailio put in that Contact). Then the other way:
/// the browser's BYE reaches the phone.
#[test]
fn calls_cross_between_websocket_and_udp_in_both_directions_of_the_dialog() -> TestResult {
    let _one = serialised();
    let kamailio = kamailio()?;
    let dir = tempfile::tempdir()?;
    let mut alice = registered_browser(
        &kamailio,
        BrowserConfig::new("alice"),
        "alice",
        "alice-secret",
        ALICE_HZ,
        dir.path(),
    )?;
    let mut bob = ScriptedUas::bind("bob", kamailio.config().udp_port)?;
    bob.register("bob-secret", CALL_TIMEOUT)?;

    for phone_hangs_up in [true, false] {
        alice.call("sip:bob@127.0.0.1", false)?;
        let call = bob.accept_call(CALL_TIMEOUT, webrtc_audio_answer)?;
        let record_routes = call.invite.headers("Record-Route");
        assert_eq!(record_routes.len(), 2, "{}", call.invite.text);
        assert!(
            record_routes.iter().any(|rr| rr.contains("transport=ws")),
            "{}",
            call.invite.text
        );
        // The browser's Contact (its `.invalid` URI, or the GRUU the registrar gave it) carries
        // the alias of its WebSocket connection.
        let contact = call.invite.header("Contact").unwrap_or_default();
        assert!(contact.contains(";alias=127.0.0.1~"), "{contact}");
        alice.wait_for_confirmed(CALL_TIMEOUT)?;
        if phone_hangs_up {
            let reply = bob.hang_up(&call, CALL_TIMEOUT)?;
            assert_eq!(reply.status(), Some(200), "{}", reply.text);
        } else {
            alice.hang_up()?;
            let bye = bob.accept_bye(CALL_TIMEOUT)?;
            assert_eq!(bye.header("Call-ID"), call.invite.header("Call-ID"));
        }
        let ended = alice.wait_for_event("ended", CALL_TIMEOUT)?;
        let originator = if phone_hangs_up { "remote" } else { "local" };
        assert_eq!(ended["originator"], originator, "{ended}");
    }
    Ok(())
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
