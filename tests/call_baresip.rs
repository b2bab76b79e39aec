//! Callisto and a desk phone (baresip) through Kamailio: calls both ways with PCMU, PCMA and
//! Opus, SDES-SRTP, DTMF both ways, hold and resume from each side (silence while held, the
//! tones back after), BYE from each side, CANCEL
//! from each side before the answer, early media before the answer, an INVITE the proxy
//! challenges.
//!
//! Callisto (alice) sends 440 Hz, baresip (bob) 1270 Hz; each records what it hears. A call
//! carried audio when the other side's tone dominates at least 90 % of the recording (FFT peak
//! within 2 %), the recording holds it for at least 90 % of the call's 2.5 s, and the own tone
//! is absent.

mod support;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use support::baresip::Baresip;
use support::baresip_events::BaresipEvent;
use support::baresip_phone::{AnswerMode, Codec, PhoneConfig, SrtpMode};
use support::callisto::Callisto;
use support::kamailio::{Kamailio, KamailioConfig};
use support::wav;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(5);
const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1270.0;
/// How long the two-way calls last: as the `--duration` argument, and in seconds.
const CALL_SECS: &str = "2.5";
const CALL_SECONDS: f64 = 2.5;
const LEAK_LEVEL: f32 = 0.01;

/// Kamailio with alice and bob, baresip registered as bob, a directory for Callisto's files.
struct Rig {
    bob: Baresip,
    kamailio: Kamailio,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start(
        kamailio: KamailioConfig,
        bob: impl FnOnce(PhoneConfig) -> PhoneConfig,
    ) -> Result<Rig, Box<dyn Error>> {
        let kamailio = Kamailio::start(KamailioConfig {
            users: vec![
                ("alice".to_owned(), "alice-secret".to_owned()),
                ("bob".to_owned(), "bob-secret".to_owned()),
            ],
            ..kamailio
        })?;
        let dir = tempfile::Builder::new()
            .prefix("callisto-call-")
            .tempdir()?;
        let tone = dir.path().join("bob.wav");
        wav::write_tone(&tone, BOB_HZ, 8000, 1, 20.0)?;
        let port = kamailio.config().udp_port;
        let bob = Baresip::start_phone(bob(
            PhoneConfig::registered("bob", "bob-secret", port).playing(&tone)
        ))?;
        bob.wait_for_registered(WAIT)?;
        Ok(Rig { bob, kamailio, dir })
    }

    fn registrar(&self) -> String {
        format!("sip:127.0.0.1:{}", self.kamailio.config().udp_port)
    }

    fn recording(&self) -> PathBuf {
        self.dir.path().join("alice-heard.wav")
    }

    /// `callisto COMMAND` as alice, registered, playing 440 Hz and recording.
    fn callisto(&self, command: &[&str], extra: &[&str]) -> std::io::Result<Callisto> {
        let registrar = self.registrar();
        let recording = self.recording();
        // The AOR names the proxy's port, as the phones' do: the proxy knows it as its own.
        let user = self.alice_uri();
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
            "--json",
        ]);
        let recording = recording.to_string_lossy().into_owned();
        args.extend(["--record-audio", &recording]);
        args.extend(extra);
        Callisto::start(self.dir.path(), &args)
    }

    fn bob_uri(&self) -> String {
        "sip:bob@127.0.0.1".to_owned()
    }

    /// Alice's address of record, which baresip also dials (it sends to the URI's host and
    /// port: the proxy's).
    fn alice_uri(&self) -> String {
        format!("sip:alice@127.0.0.1:{}", self.kamailio.config().udp_port)
    }
}

fn assert_heard(who: &str, recording: &Path, expected_hz: f32, own_hz: f32) -> TestResult {
    let heard = wav::heard(recording, expected_hz, own_hz)?;
    println!("{who} heard {expected_hz} Hz: {heard:?}");
    // The tone for at least 90 % of the call (2.5 s), not merely of what was recorded.
    let with_tone = heard.seconds * f64::from(heard.coverage);
    assert!(
        heard.coverage >= 0.9 && with_tone >= 0.9 * CALL_SECONDS,
        "{who} heard {expected_hz} Hz too little: {with_tone:.2} s in {heard:?} ({})",
        recording.display()
    );
    assert!(
        heard.own_level < LEAK_LEVEL,
        "{who} hears its own {own_hz} Hz: {heard:?}"
    );
    Ok(())
}

/// How long a call runs before a hold, while held, and after the resume.
const HOLD_SPELL: Duration = Duration::from_millis(1_500);

/// The other side's tone in `recording` before and after a hold of [`HOLD_SPELL`], and a gap
/// of most of the hold between (Callisto's recording runs on through silence).
fn assert_silent_while_held(who: &str, recording: &Path, hz: f32) -> TestResult {
    let (with_tone, gap) = wav::tone_gap(recording, hz)?;
    println!("{who} heard {hz} Hz for {with_tone:.1} s, with a gap of {gap:.1} s");
    let spell = HOLD_SPELL.as_secs_f64();
    assert!(
        gap >= 0.8 * spell,
        "{who}: a gap of {gap} s for a hold of {spell} s"
    );
    assert!(
        gap <= spell + 1.0,
        "{who}: a gap of {gap} s for a hold of {spell} s"
    );
    assert!(
        with_tone >= 1.2 * spell,
        "{who} heard {hz} Hz for {with_tone} s"
    );
    Ok(())
}

/// baresip heard Callisto's tone before the hold. (What it hears after the resume cannot be
/// checked this way: baresip 1.0's `sndfile` recording of a call ends at its first re-INVITE —
/// so it does when baresip holds and resumes a call with baresip — while a capture on `lo`
/// shows Callisto's RTP to it running on with the same SSRC, sequence and timestamps.)
fn assert_baresip_heard_before_the_hold(rig: &Rig, hz: f32) -> TestResult {
    let (with_tone, _) = wav::tone_gap(&rig.bob.last_heard()?, hz)?;
    println!("bob heard {hz} Hz for {with_tone:.1} s");
    let spell = HOLD_SPELL.as_secs_f64();
    assert!(
        with_tone >= 0.8 * spell,
        "bob heard {hz} Hz for {with_tone} s"
    );
    Ok(())
}

fn is_established(event: &BaresipEvent) -> bool {
    matches!(event, BaresipEvent::Established { .. })
}

fn codec_flag(codec: Codec) -> &'static str {
    match codec {
        Codec::Pcmu => "pcmu",
        Codec::Pcma => "pcma",
        Codec::Opus => "opus",
    }
}

/// Callisto calls baresip and hangs up after 2.5 s; both tones are checked.
fn callisto_calls(codec: Codec, srtp: SrtpMode) -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| {
        bob.codecs(&[codec]).srtp(srtp)
    })?;
    let srtp_flag = match srtp {
        SrtpMode::Off => "off",
        SrtpMode::Optional => "optional",
        SrtpMode::Mandatory => "mandatory",
    };
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(
        &["call", &uri],
        &[
            "--codecs",
            codec_flag(codec),
            "--srtp",
            srtp_flag,
            "--duration",
            CALL_SECS,
        ],
    )?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(
        answered["codec"].as_str().map(str::to_ascii_lowercase),
        Some(codec_flag(codec).to_owned())
    );
    assert_eq!(answered["srtp"], srtp == SrtpMode::Mandatory);
    let ended = alice.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "local", "{ended}");
    let status = alice.wait(WAIT)?;
    assert!(status.success(), "{status:?}\n{}", alice.stderr());
    let audio = &ended["audio"];
    assert!(audio["rx_packets"].as_u64().unwrap_or(0) > 100, "{ended}");
    assert!(audio["tx_packets"].as_u64().unwrap_or(0) > 100, "{ended}");

    rig.bob
        .wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
    assert_heard("alice", &rig.recording(), BOB_HZ, ALICE_HZ)?;
    assert_heard("bob", &rig.bob.last_heard()?, ALICE_HZ, BOB_HZ)?;
    Ok(())
}

/// baresip calls Callisto, which answers; baresip hangs up after 2.5 s.
fn baresip_calls(codec: Codec, srtp: SrtpMode) -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| {
        bob.codecs(&[codec]).srtp(srtp)
    })?;
    let srtp_flag = if srtp == SrtpMode::Mandatory {
        "mandatory"
    } else {
        "optional"
    };
    let mut alice = rig.callisto(
        &["answer"],
        &["--codecs", "opus,pcmu,pcma", "--srtp", srtp_flag],
    )?;
    alice.expect("registered", WAIT)?;
    rig.bob.dial(&rig.alice_uri())?;
    alice.expect("incoming", WAIT)?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(
        answered["codec"].as_str().map(str::to_ascii_lowercase),
        Some(codec_flag(codec).to_owned())
    );
    assert_eq!(answered["srtp"], srtp == SrtpMode::Mandatory);
    rig.bob.wait_for_event(is_established, WAIT)?;
    thread::sleep(Duration::from_secs_f64(CALL_SECONDS));
    rig.bob.hang_up()?;
    let ended = alice.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote", "{ended}");
    let status = alice.wait(WAIT)?;
    assert!(status.success(), "{status:?}\n{}", alice.stderr());
    assert_heard("alice", &rig.recording(), BOB_HZ, ALICE_HZ)?;
    assert_heard("bob", &rig.bob.last_heard()?, ALICE_HZ, BOB_HZ)?;
    Ok(())
}

#[test]
fn callisto_calls_baresip_with_pcmu() -> TestResult {
    callisto_calls(Codec::Pcmu, SrtpMode::Off)
}

#[test]
fn callisto_calls_baresip_with_pcma() -> TestResult {
    callisto_calls(Codec::Pcma, SrtpMode::Off)
}

#[test]
fn callisto_calls_baresip_with_opus() -> TestResult {
    callisto_calls(Codec::Opus, SrtpMode::Off)
}

#[test]
fn callisto_calls_baresip_with_mandatory_srtp() -> TestResult {
    callisto_calls(Codec::Opus, SrtpMode::Mandatory)
}

#[test]
fn baresip_calls_callisto_with_pcmu() -> TestResult {
    baresip_calls(Codec::Pcmu, SrtpMode::Off)
}

#[test]
fn baresip_calls_callisto_with_pcma() -> TestResult {
    baresip_calls(Codec::Pcma, SrtpMode::Off)
}

#[test]
fn baresip_calls_callisto_with_opus() -> TestResult {
    baresip_calls(Codec::Opus, SrtpMode::Off)
}

#[test]
fn baresip_calls_callisto_with_mandatory_srtp() -> TestResult {
    baresip_calls(Codec::Pcmu, SrtpMode::Mandatory)
}

/// A call long enough for RTCP reports both ways (every ~5 s, baresip's on RTCP's own port,
/// SRTCP-protected) and for one of baresip's to answer one of ours (a round trip needs that):
/// the summary carries the round trip, jitter and loss they measured.
#[test]
fn the_summary_carries_what_rtcp_measured() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| {
        bob.codecs(&[Codec::Opus]).srtp(SrtpMode::Mandatory)
    })?;
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(
        &["call", &uri],
        &[
            "--codecs",
            "opus",
            "--srtp",
            "mandatory",
            "--duration",
            "12",
        ],
    )?;
    alice.expect("answered", WAIT)?;
    let ended = alice.expect("call_ended", Duration::from_secs(18))?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    let audio = &ended["audio"];
    println!("{audio}");
    // Measured at all, and no more than a loaded machine's loopback can take.
    let rtt = audio["rtt_ms"].as_f64();
    assert!(rtt.is_some_and(|ms| (0.0..500.0).contains(&ms)), "{ended}");
    let jitter = audio["jitter_ms"].as_f64();
    assert!(
        jitter.is_some_and(|ms| (0.0..20.0).contains(&ms)),
        "{ended}"
    );
    assert_eq!(audio["lost"], 0, "{ended}");
    Ok(())
}

#[test]
fn dtmf_goes_both_ways() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| bob.codecs(&[Codec::Pcmu]))?;
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(&["call", &uri], &["--dtmf", "159#", "--duration", "3"])?;
    alice.expect("answered", WAIT)?;
    rig.bob.wait_for_event(is_established, WAIT)?;
    thread::sleep(Duration::from_millis(1500));
    rig.bob.send_dtmf("27*")?;
    alice.expect("call_ended", WAIT)?;
    assert_eq!(rig.bob.dtmf_received(), "159#");
    let digits: String = alice
        .events(Duration::ZERO)
        .iter()
        .filter(|e| e["event"] == "dtmf")
        .filter_map(|e| e["digit"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(digits, "27*");
    Ok(())
}

#[test]
fn callisto_holds_and_resumes() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| bob.codecs(&[Codec::Pcma]))?;
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(&["call", &uri], &[])?;
    alice.expect("answered", WAIT)?;
    rig.bob.wait_for_event(is_established, WAIT)?;
    thread::sleep(HOLD_SPELL);
    alice.control("hold")?;
    let held = alice.expect("held", WAIT)?;
    assert_eq!(held["by"], "local");
    thread::sleep(HOLD_SPELL);
    alice.control("resume")?;
    let resumed = alice.expect("resumed", WAIT)?;
    assert_eq!(resumed["by"], "local");
    thread::sleep(HOLD_SPELL);
    alice.control("hangup")?;
    alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success());
    rig.bob
        .wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
    assert_silent_while_held("alice", &rig.recording(), BOB_HZ)?;
    assert_baresip_heard_before_the_hold(&rig, ALICE_HZ)?;
    // The proxy saw the hold offer (sendonly, answered recvonly) and the resume (sendrecv).
    let directions: Vec<String> = rig
        .kamailio
        .call_log()
        .iter()
        .filter_map(|line| line.request("INVITE"))
        .filter_map(|invite| invite.sdp.as_ref().map(|s| s.direction.clone()))
        .collect();
    assert!(
        directions.iter().any(|d| d == "sendonly")
            && directions.last().map(String::as_str) == Some("sendrecv"),
        "{directions:?}"
    );
    Ok(())
}

#[test]
fn baresip_holds_and_resumes() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| bob.codecs(&[Codec::Pcmu]))?;
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(&["call", &uri], &[])?;
    alice.expect("answered", WAIT)?;
    rig.bob.wait_for_event(is_established, WAIT)?;
    thread::sleep(HOLD_SPELL);
    rig.bob.hold()?;
    let held = alice.expect("held", WAIT)?;
    assert_eq!(held["by"], "remote");
    thread::sleep(HOLD_SPELL);
    rig.bob.resume()?;
    let resumed = alice.expect("resumed", WAIT)?;
    assert_eq!(resumed["by"], "remote");
    thread::sleep(HOLD_SPELL);
    rig.bob.hang_up()?;
    let ended = alice.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote");
    assert!(alice.wait(WAIT)?.success());
    assert_silent_while_held("alice", &rig.recording(), BOB_HZ)?;
    assert_baresip_heard_before_the_hold(&rig, ALICE_HZ)?;
    Ok(())
}

/// The proxy saw a CANCEL and the callee's 487 for the INVITE.
fn assert_cancelled_at_the_proxy(rig: &Rig) {
    let log = rig.kamailio.call_log();
    assert!(
        log.iter().any(|line| line.request("CANCEL").is_some()),
        "{log:?}"
    );
    assert!(
        log.iter().any(|line| line.reply(487, "INVITE").is_some()),
        "{log:?}"
    );
}

#[test]
fn callisto_cancels_before_the_answer() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| {
        bob.codecs(&[Codec::Pcmu]).answer(AnswerMode::Manual)
    })?;
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(&["call", &uri], &[])?;
    alice.expect("ringing", WAIT)?;
    alice.control("hangup")?;
    let ended = alice.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "local", "{ended}");
    assert_eq!(ended["duration_s"], 0.0, "{ended}");
    let status = alice.wait(WAIT)?;
    assert_eq!(
        status.code(),
        Some(4),
        "a call that never connected is not a success"
    );
    assert_cancelled_at_the_proxy(&rig);
    Ok(())
}

#[test]
fn baresip_cancels_before_callisto_answers() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| bob.codecs(&[Codec::Pcmu]))?;
    // Callisto rings for a minute before it would answer.
    let mut alice = rig.callisto(&["answer"], &["--answer-after", "60"])?;
    alice.expect("registered", WAIT)?;
    rig.bob.dial(&rig.alice_uri())?;
    alice.expect("incoming", WAIT)?;
    thread::sleep(Duration::from_millis(300));
    rig.bob.hang_up()?;
    let ended = alice.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote", "{ended}");
    assert_eq!(ended["duration_s"], 0.0, "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cancel")),
        "{ended}"
    );
    let status = alice.wait(WAIT)?;
    assert!(
        !status.success(),
        "a call that never connected is not a success"
    );
    // The CANCEL came through the proxy, and Callisto ended the INVITE with a 487.
    assert_cancelled_at_the_proxy(&rig);
    Ok(())
}

#[test]
fn a_challenged_invite_is_answered_with_credentials() -> TestResult {
    let rig = Rig::start(
        KamailioConfig {
            authenticate_calls: true,
            ..KamailioConfig::default()
        },
        |bob| bob.codecs(&[Codec::Pcmu]),
    )?;
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(&["call", &uri], &["--duration", "1"])?;
    alice.expect("answered", WAIT)?;
    alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success());
    let log = rig.kamailio.call_log();
    assert!(
        log.iter().any(|line| line.reply(407, "INVITE").is_some()),
        "{log:?}"
    );
    Ok(())
}

#[test]
fn calling_an_unknown_user_fails_in_plain_words() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| bob)?;
    let mut alice = rig.callisto(&["call", "sip:nobody@127.0.0.1"], &[])?;
    let failed = alice.expect("call_failed", WAIT)?;
    assert_eq!(failed["code"], 404, "{failed}");
    assert_eq!(failed["cause"], "not found", "{failed}");
    assert_eq!(alice.wait(WAIT)?.code(), Some(4));
    Ok(())
}

/// baresip (`answermode=early`) answers the INVITE with 183 and its SDP at once and sends the
/// 200 only when told. The 183's SDP starts Callisto's media before the answer: baresip
/// receives Callisto's RTP while the call is still early, and the recording runs from the 183.
/// (baresip 1.0 itself starts sending only with its 200, so its tone fills the answered part.)
#[test]
fn early_media_starts_with_the_183() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |bob| {
        bob.codecs(&[Codec::Pcmu]).answer(AnswerMode::Early)
    })?;
    let uri = rig.bob_uri();
    let mut alice = rig.callisto(&["call", &uri], &["--duration", "1.5"])?;
    alice.expect_matching("ringing", |v| v["early_media"] == true, WAIT)?;
    thread::sleep(Duration::from_millis(1500));
    assert!(alice
        .events(Duration::ZERO)
        .iter()
        .all(|v| v["event"] != "answered"));
    let early_rtp = rig
        .bob
        .log_lines()
        .iter()
        .any(|l| l.contains("incoming rtp for 'audio' established"));
    assert!(early_rtp, "baresip got no RTP before answering");
    rig.bob.answer()?;
    alice.expect("answered", WAIT)?;
    let ended = alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    let heard = wav::heard(&rig.recording(), BOB_HZ, ALICE_HZ)?;
    println!("{heard:?} {ended}");
    assert!(
        heard.seconds >= 2.7,
        "recording did not start with the 183: {heard:?}"
    );
    assert!(
        (0.35..0.7).contains(&heard.coverage),
        "bob's tone should fill the answered half: {heard:?}"
    );
    Ok(())
}
