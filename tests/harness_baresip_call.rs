//! Calls between two baresip phones through the test Kamailio: the proof that the harness can
//! place, carry, observe and end calls, and the reference behaviour Callisto's calls must match
//! against the same peers.
//!
//! Alice plays a 440 Hz tone, Bob a 1270 Hz tone (not a harmonic of 440). Each records what it
//! hears; a call carried audio when the other side's tone dominates at least 90 % of the call
//! (FFT peak within 2 %) and the own tone is absent. Signalling is checked on both phones'
//! events and on the proxy's log.

mod support;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use support::baresip::Baresip;
use support::baresip_events::{AudioDirection, BaresipEvent};
use support::baresip_phone::{AnswerMode, Codec, PhoneConfig, SrtpMode};
use support::kamailio::{Kamailio, KamailioConfig};
use support::kamailio_calls::CallTimeline;
use support::measure::SendTrace;
use support::wav;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(5);
const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1270.0;
/// How long calls whose audio is checked last.
const CALL_TIME: Duration = Duration::from_millis(2500);
/// The own tone must stay below this mean level (−40 dBFS).
const LEAK_LEVEL: f32 = 0.01;

/// Kamailio with users alice and bob, and a phone for each, registered.
struct Rig {
    // Fields drop in this order: the phones unregister while the proxy still answers.
    alice: Baresip,
    bob: Baresip,
    kamailio: Kamailio,
    _tones: tempfile::TempDir,
}

impl Rig {
    fn start(
        kamailio: KamailioConfig,
        alice: impl FnOnce(PhoneConfig) -> PhoneConfig,
        bob: impl FnOnce(PhoneConfig) -> PhoneConfig,
    ) -> Result<Rig, Box<dyn Error>> {
        let kamailio = Kamailio::start(KamailioConfig {
            users: vec![
                ("alice".to_owned(), "alice-secret".to_owned()),
                ("bob".to_owned(), "bob-secret".to_owned()),
            ],
            ..kamailio
        })?;
        let port = kamailio.config().udp_port;
        let tones = tempfile::Builder::new()
            .prefix("callisto-tones-")
            .tempdir()?;
        let alice_wav = tone_file(tones.path(), "alice", ALICE_HZ)?;
        let bob_wav = tone_file(tones.path(), "bob", BOB_HZ)?;
        let alice = Baresip::start_phone(alice(
            PhoneConfig::registered("alice", "alice-secret", port).playing(&alice_wav),
        ))?;
        let bob = Baresip::start_phone(bob(
            PhoneConfig::registered("bob", "bob-secret", port).playing(&bob_wav)
        ))?;
        alice.wait_for_registered(WAIT)?;
        bob.wait_for_registered(WAIT)?;
        Ok(Rig {
            kamailio,
            alice,
            bob,
            _tones: tones,
        })
    }

    /// Bob's address at the proxy.
    fn bob_uri(&self) -> String {
        format!("sip:bob@127.0.0.1:{}", self.kamailio.config().udp_port)
    }

    /// Alice calls Bob; returns when both report the call established.
    fn connect(&self) -> Result<Instant, Box<dyn Error>> {
        self.alice.dial(&self.bob_uri())?;
        let alice = self.alice.wait_for_event(is_established, WAIT)?;
        let bob = self.bob.wait_for_event(is_established, WAIT)?;
        Ok(alice.at.max(bob.at))
    }

    /// `hanger` hangs up; returns when both report the call closed.
    fn hang_up(&self, hanger: &Baresip) -> Result<Instant, Box<dyn Error>> {
        let other = if std::ptr::eq(hanger, &self.alice) {
            &self.bob
        } else {
            &self.alice
        };
        hang_up(hanger, other)
    }

    fn timeline(&self) -> Result<CallTimeline, Box<dyn Error>> {
        Ok(
            CallTimeline::first_call(&self.kamailio.call_log())
                .ok_or("no call in the proxy log")?,
        )
    }
}

fn tone_file(dir: &Path, name: &str, hz: f32) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{name}-{hz}.wav"));
    // Longer than any call here, so the source never runs dry.
    wav::write_tone(&path, hz, 8000, 1, 20.0)?;
    Ok(path)
}

fn is_established(event: &BaresipEvent) -> bool {
    matches!(event, BaresipEvent::Established { .. })
}

/// `hanger` hangs up on `other`; returns when `hanger` reports hanging up and `other` the
/// call closed by its peer. (`Terminated` is no end marker: baresip 1.0 does not print it for a
/// call shorter than a second.)
fn hang_up(hanger: &Baresip, other: &Baresip) -> Result<Instant, Box<dyn Error>> {
    let at = Instant::now();
    hanger.hang_up()?;
    hanger.wait_for_event(|e| matches!(e, BaresipEvent::HungUp { .. }), WAIT)?;
    other.wait_for_event(
        |e| matches!(e, BaresipEvent::Closed { reason, .. } if reason == "Connection reset by peer"),
        WAIT,
    )?;
    Ok(at)
}

/// Asserts that `phone`'s last call carried `expected_hz` for at least 90 % of `call` and no
/// trace of `own_hz`.
fn assert_hears(
    who: &str,
    phone: &Baresip,
    call: Duration,
    expected_hz: f32,
    own_hz: f32,
) -> TestResult {
    let recording = phone.last_heard()?;
    let heard = wav::heard(&recording, expected_hz, own_hz)?;
    let with_tone = f64::from(heard.coverage) * heard.seconds;
    println!("{who} heard {expected_hz} Hz: {heard:?} in a {call:?} call");
    assert!(
        heard.coverage >= 0.9 && with_tone >= 0.9 * call.as_secs_f64(),
        "{who} heard {expected_hz} Hz for {with_tone:.2} s of a {call:?} call: {heard:?} ({})",
        recording.display()
    );
    assert!(
        heard.own_level < LEAK_LEVEL,
        "{who} hears its own {own_hz} Hz: {heard:?}"
    );
    Ok(())
}

/// The codec both phones' encoders use.
fn assert_codec(rig: &Rig, codec: Codec) {
    for phone in [&rig.alice, &rig.bob] {
        let encoders: Vec<String> = phone
            .events()
            .into_iter()
            .filter_map(|timed| match timed.event {
                BaresipEvent::Codec {
                    direction: AudioDirection::Encode,
                    name,
                    ..
                } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(encoders, vec![codec.encoding_name().to_owned()]);
    }
}

/// A call with `codec` only, both tones checked, hung up by `alice_hangs_up` or Bob.
fn call_with_codec(codec: Codec, alice_hangs_up: bool) -> TestResult {
    let rig = Rig::start(
        KamailioConfig::default(),
        |alice| alice.codecs(&[codec]),
        |bob| bob.codecs(&[codec]),
    )?;
    let established = rig.connect()?;
    thread::sleep(CALL_TIME);
    let hanger = if alice_hangs_up { &rig.alice } else { &rig.bob };
    let ended = rig.hang_up(hanger)?;
    let call = ended.duration_since(established);

    assert_codec(&rig, codec);
    assert_hears("alice", &rig.alice, call, BOB_HZ, ALICE_HZ)?;
    assert_hears("bob", &rig.bob, call, ALICE_HZ, BOB_HZ)?;

    let timeline = rig.timeline()?;
    assert_eq!(timeline.final_status, Some(200));
    assert!(
        timeline.ringing.is_some() && timeline.acked.is_some(),
        "{timeline:?}"
    );
    let log = rig.kamailio.call_log();
    let answer = log
        .iter()
        .find_map(|line| line.reply(200, "INVITE"))
        .ok_or("no 200 to the INVITE")?;
    let sdp = answer.sdp.as_ref().ok_or("200 without SDP")?;
    assert_eq!(sdp.audio_protocol(), Some("RTP/AVP"));
    assert!(!sdp.crypto, "{sdp:?}");
    let payload_types = sdp.audio_payload_types();
    if let Some(pt) = codec.static_payload_type() {
        assert_eq!(payload_types.first(), Some(&pt), "{sdp:?}");
    }
    assert!(
        !payload_types.contains(&0) || codec == Codec::Pcmu,
        "{sdp:?}"
    );
    assert!(
        !payload_types.contains(&8) || codec == Codec::Pcma,
        "{sdp:?}"
    );

    // Both report the call's end with its duration (it lasted more than a second).
    let (hanger, other) = if alice_hangs_up {
        (&rig.alice, &rig.bob)
    } else {
        (&rig.bob, &rig.alice)
    };
    let (_, bye_source) = timeline.bye.ok_or("no BYE through the proxy")?;
    let hanger_port = hanger.config().sip_port;
    assert_eq!(bye_source, format!("127.0.0.1:{hanger_port}"));
    for (phone, peer) in [(hanger, other), (other, hanger)] {
        let peer_aor = peer.aor().ok_or("no AOR")?;
        phone.wait_for_event(
            |e| matches!(e, BaresipEvent::Terminated { peer, .. } if peer.starts_with(&peer_aor)),
            WAIT,
        )?;
    }
    Ok(())
}

#[test]
fn pcmu_call_carries_both_tones_and_alice_hangs_up() -> TestResult {
    call_with_codec(Codec::Pcmu, true)
}

#[test]
fn pcma_call_carries_both_tones_and_bob_hangs_up() -> TestResult {
    call_with_codec(Codec::Pcma, false)
}

#[test]
fn opus_call_carries_both_tones() -> TestResult {
    call_with_codec(Codec::Opus, true)
}

#[test]
fn mandatory_srtp_on_both_sides_carries_both_tones() -> TestResult {
    let rig = Rig::start(
        KamailioConfig::default(),
        |alice| alice.codecs(&[Codec::Pcmu]).srtp(SrtpMode::Mandatory),
        |bob| bob.codecs(&[Codec::Pcmu]).srtp(SrtpMode::Mandatory),
    )?;
    let established = rig.connect()?;
    thread::sleep(CALL_TIME);
    let call = rig.hang_up(&rig.alice)?.duration_since(established);

    for phone in [&rig.alice, &rig.bob] {
        let suite =
            phone.wait_for_event(|e| matches!(e, BaresipEvent::SrtpEnabled { .. }), WAIT)?;
        assert_eq!(
            suite.event,
            BaresipEvent::SrtpEnabled {
                suite: "AES_CM_128_HMAC_SHA1_80".to_owned()
            }
        );
    }
    let log = rig.kamailio.call_log();
    let offer = log
        .iter()
        .find_map(|line| line.request("INVITE"))
        .and_then(|invite| invite.sdp.clone())
        .ok_or("INVITE without SDP")?;
    let answer = log
        .iter()
        .find_map(|line| line.reply(200, "INVITE"))
        .and_then(|ok| ok.sdp.clone())
        .ok_or("200 without SDP")?;
    assert_eq!(offer.audio_protocol(), Some("RTP/SAVP"), "{offer:?}");
    assert_eq!(answer.audio_protocol(), Some("RTP/SAVP"), "{answer:?}");
    assert!(offer.crypto && answer.crypto, "{offer:?} {answer:?}");
    // Encrypted both ways, yet each side decodes the other's tone.
    assert_hears("alice", &rig.alice, call, BOB_HZ, ALICE_HZ)?;
    assert_hears("bob", &rig.bob, call, ALICE_HZ, BOB_HZ)?;
    Ok(())
}

#[test]
fn dtmf_digits_sent_by_alice_over_optional_srtp_are_reported_by_bob() -> TestResult {
    let rig = Rig::start(
        KamailioConfig::default(),
        |alice| {
            alice
                .codecs(&[Codec::Pcmu])
                .srtp(SrtpMode::Optional)
                .recording(false)
        },
        |bob| {
            bob.codecs(&[Codec::Pcmu])
                .srtp(SrtpMode::Optional)
                .recording(false)
        },
    )?;
    rig.connect()?;
    // Best-effort SRTP: offered on RTP/AVP with keys, taken up by both.
    for phone in [&rig.alice, &rig.bob] {
        phone.wait_for_event(|e| matches!(e, BaresipEvent::SrtpEnabled { .. }), WAIT)?;
    }
    let offer = rig
        .kamailio
        .call_log()
        .iter()
        .find_map(|line| line.request("INVITE").and_then(|i| i.sdp.clone()))
        .ok_or("INVITE without SDP")?;
    assert_eq!(offer.audio_protocol(), Some("RTP/AVP"), "{offer:?}");
    assert!(offer.crypto, "{offer:?}");
    let digits = "159*#0";
    rig.alice.send_dtmf(digits)?;
    let released = rig.bob.wait_for_events(
        digits.len(),
        |e| matches!(e, BaresipEvent::DtmfReceived { end: true, .. }),
        WAIT,
    )?;
    assert_eq!(released.len(), digits.len());
    assert_eq!(rig.bob.dtmf_received(), digits);
    let pressed: String = rig
        .bob
        .events()
        .into_iter()
        .filter_map(|timed| match timed.event {
            BaresipEvent::DtmfReceived { digit, end: false } => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(pressed, digits, "one key-down per digit");
    let sent: String = rig
        .alice
        .events()
        .into_iter()
        .filter_map(|timed| match timed.event {
            BaresipEvent::DtmfSent { digit } => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(sent, digits);
    assert!(rig.alice.send_dtmf("12x").is_err(), "not a DTMF digit");
    // RFC 4733 events travel in RTP: no SIP INFO passed the proxy.
    assert!(rig
        .kamailio
        .call_log()
        .iter()
        .all(|line| line.request("INFO").is_none()));
    rig.hang_up(&rig.alice)?;
    Ok(())
}

#[test]
fn hold_and_resume_reinvite_through_the_proxy_and_pause_the_audio() -> TestResult {
    let rig = Rig::start(
        KamailioConfig::default(),
        |alice| alice.codecs(&[Codec::Pcmu]),
        |bob| bob.codecs(&[Codec::Pcmu]),
    )?;
    let traces = tempfile::tempdir()?;
    let mut alice_sends = SendTrace::attach(rig.alice.pid(), &traces.path().join("alice"))?;
    let mut bob_sends = SendTrace::attach(rig.bob.pid(), &traces.path().join("bob"))?;
    let established = rig.connect()?;
    let talk = Duration::from_millis(1000);
    thread::sleep(talk);
    let talked = established.elapsed();
    rig.alice.hold()?;
    rig.alice
        .wait_for_event(|e| matches!(e, BaresipEvent::Hold { .. }), WAIT)?;
    rig.bob
        .wait_for_event(|e| matches!(e, BaresipEvent::Reinvited), WAIT)?;
    thread::sleep(Duration::from_millis(1000));
    rig.alice.resume()?;
    rig.alice
        .wait_for_event(|e| matches!(e, BaresipEvent::Resume { .. }), WAIT)?;
    rig.bob
        .wait_for_events(2, |e| matches!(e, BaresipEvent::Reinvited), WAIT)?;
    thread::sleep(talk);
    rig.hang_up(&rig.alice)?;
    alice_sends.stop()?;
    bob_sends.stop()?;

    // Signalling: two re-INVITEs from Alice through the proxy (record-routed), sendonly then
    // sendrecv, answered recvonly then sendrecv.
    let log = rig.kamailio.call_log();
    let reinvites: Vec<_> = log
        .iter()
        .filter_map(|line| line.request("INVITE"))
        .filter(|invite| invite.to_tag.is_some())
        .collect();
    let offered: Vec<&str> = reinvites
        .iter()
        .filter_map(|invite| invite.sdp.as_ref().map(|sdp| sdp.direction.as_str()))
        .collect();
    assert_eq!(offered, ["sendonly", "sendrecv"], "{reinvites:?}");
    let alice_address = format!("127.0.0.1:{}", rig.alice.config().sip_port);
    assert!(reinvites
        .iter()
        .all(|invite| invite.source == alice_address));
    let answers: Vec<_> = log
        .iter()
        .filter_map(|line| line.reply(200, "INVITE"))
        .filter(|ok| ok.cseq >= reinvites[0].cseq)
        .collect();
    let answered: Vec<&str> = answers
        .iter()
        .filter_map(|ok| ok.sdp.as_ref().map(|sdp| sdp.direction.as_str()))
        .collect();
    assert_eq!(answered, ["recvonly", "sendrecv"], "{answers:?}");
    let timeline = rig.timeline()?;
    let (bye_at, _) = timeline.bye.ok_or("no BYE")?;

    // Media, on the wire: both phones send RTP before the hold, neither while held (baresip
    // stops sending on both ends of a hold), both again after the resume. The held phase is
    // read with a margin at both ends: the proxy's timestamps are when it relayed the answer
    // and received the resuming re-INVITE, and a loaded machine can let a phone's packet that
    // was due at either moment leave a little before or after it.
    let margin = Duration::from_millis(100);
    let held_margin = Duration::from_millis(250);
    let phases = [
        (
            "talking",
            timeline.answered.ok_or("no answer")?,
            reinvites[0].at,
        ),
        (
            "held",
            answers[0].at + held_margin,
            reinvites[1].at - held_margin,
        ),
        ("resumed", answers[1].at + margin, bye_at),
    ];
    for (who, trace) in [("alice", &alice_sends), ("bob", &bob_sends)] {
        let sent = trace.datagrams()?;
        let rates: Vec<(&str, f64)> = phases
            .iter()
            .map(|(phase, from, to)| {
                let count = sent
                    .iter()
                    .filter(|d| d.is_rtp() && d.at >= *from && d.at < *to)
                    .count();
                let seconds = to.duration_since(*from).unwrap_or_default().as_secs_f64();
                (*phase, count as f64 / seconds.max(1e-3))
            })
            .collect();
        println!("{who} RTP packets per second: {rates:?}");
        // Each trace is one phone's: only Alice sent the re-INVITEs.
        let sent_reinvite = sent.iter().any(|d| d.head.starts_with(b"INVITE "));
        assert_eq!(sent_reinvite, who == "alice", "{who}'s trace");
        assert!(rates[0].1 > 40.0 && rates[2].1 > 40.0, "{who}: {rates:?}");
        // On failure, when each RTP packet between the hold's answer and the resume left.
        let around_hold: Vec<i128> = sent
            .iter()
            .filter(|d| d.is_rtp() && d.at >= answers[0].at && d.at < reinvites[1].at)
            .map(|d| millis_between(answers[0].at, d.at))
            .collect();
        assert_eq!(
            rates[1].1,
            0.0,
            "{who} sent RTP while held: {rates:?}; ms after the hold's answer: {around_hold:?}, \
             the resume at {} ms",
            millis_between(answers[0].at, reinvites[1].at)
        );
    }
    // Before the hold each heard the other's tone (the recordings end at the first re-INVITE).
    for (who, phone, expected, own) in [
        ("alice", &rig.alice, BOB_HZ, ALICE_HZ),
        ("bob", &rig.bob, ALICE_HZ, BOB_HZ),
    ] {
        let heard = wav::heard(&phone.last_heard()?, expected, own)?;
        assert!(
            heard.coverage >= 0.9 && heard.seconds >= 0.7 * talked.as_secs_f64(),
            "{who}: {heard:?} after {talked:?}"
        );
        assert!(heard.own_level < LEAK_LEVEL, "{who}: {heard:?}");
    }
    Ok(())
}

#[test]
fn cancel_before_answer_reaches_the_callee_through_the_proxy() -> TestResult {
    let rig = Rig::start(
        KamailioConfig::default(),
        |alice| alice,
        |bob| bob.answer(AnswerMode::Manual),
    )?;
    rig.alice.dial(&rig.bob_uri())?;
    rig.bob
        .wait_for_event(|e| matches!(e, BaresipEvent::Incoming { .. }), WAIT)?;
    rig.alice.wait_for_event(
        |e| matches!(e, BaresipEvent::Progress { status: 180, .. }),
        WAIT,
    )?;
    rig.alice.hang_up()?;
    rig.bob.wait_for_event(
        |e| matches!(e, BaresipEvent::Closed { reason, .. } if reason == "Connection reset by peer"),
        WAIT,
    )?;
    let terminated = rig
        .kamailio
        .wait_for_call_log(|line| line.reply(487, "INVITE").is_some(), WAIT)
        .ok_or("no 487 to the INVITE")?;
    let timeline = rig.timeline()?;
    assert!(timeline.cancel.is_some(), "{timeline:?}");
    assert_eq!(timeline.final_status, Some(487));
    assert!(timeline.answered.is_none());
    assert!(terminated.at() >= timeline.invite);
    for phone in [&rig.alice, &rig.bob] {
        assert!(
            phone
                .events()
                .iter()
                .all(|timed| !is_established(&timed.event)),
            "{}",
            phone.log_tail(20)
        );
    }
    Ok(())
}

#[test]
fn calling_an_unknown_user_gets_404_from_the_proxy() -> TestResult {
    let rig = Rig::start(KamailioConfig::default(), |alice| alice, |bob| bob)?;
    let carol = format!("sip:carol@127.0.0.1:{}", rig.kamailio.config().udp_port);
    rig.alice.dial(&carol)?;
    let closed = rig
        .alice
        .wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
    assert!(
        matches!(&closed.event, BaresipEvent::Closed { reason, .. } if reason.starts_with("404")),
        "{closed:?}"
    );
    let log = rig.kamailio.call_log();
    let not_found = log
        .iter()
        .find_map(|line| line.reply(404, "INVITE"))
        .ok_or("no 404")?;
    assert!(not_found.local);
    assert!(
        rig.bob.events().is_empty()
            || rig.bob.events().iter().all(|timed| {
                !matches!(
                    timed.event,
                    BaresipEvent::Incoming { .. } | BaresipEvent::Answering { .. }
                )
            })
    );
    Ok(())
}

#[test]
fn authenticated_invite_is_challenged_then_connected() -> TestResult {
    let rig = Rig::start(
        KamailioConfig {
            authenticate_calls: true,
            ..KamailioConfig::default()
        },
        |alice| alice.codecs(&[Codec::Pcma]).recording(false),
        |bob| bob.codecs(&[Codec::Pcma]).recording(false),
    )?;
    rig.connect()?;
    let log = rig.kamailio.call_log();
    let invites: Vec<_> = log
        .iter()
        .filter_map(|line| line.request("INVITE"))
        .filter(|invite| invite.to_tag.is_none())
        .collect();
    assert_eq!(invites.len(), 2, "{invites:?}");
    assert!(!invites[0].authorized && invites[1].authorized);
    let challenge = log
        .iter()
        .find_map(|line| line.reply(407, "INVITE"))
        .ok_or("no 407")?;
    assert!(challenge.local);
    assert_eq!(rig.timeline()?.final_status, Some(200));
    rig.hang_up(&rig.bob)?;
    Ok(())
}

#[test]
fn phones_without_registration_call_each_other_directly() -> TestResult {
    let tones = tempfile::tempdir()?;
    let alice = Baresip::start_phone(PhoneConfig::direct("alice").playing(&tone_file(
        tones.path(),
        "alice",
        ALICE_HZ,
    )?))?;
    let bob = Baresip::start_phone(PhoneConfig::direct("bob").playing(&tone_file(
        tones.path(),
        "bob",
        BOB_HZ,
    )?))?;
    let bob_uri = bob.aor().ok_or("no AOR")?;
    assert_eq!(
        bob_uri,
        format!("sip:bob@127.0.0.1:{}", bob.config().sip_port)
    );
    alice.dial(&bob_uri)?;
    let established = alice.wait_for_event(is_established, WAIT)?.at;
    bob.wait_for_event(is_established, WAIT)?;
    thread::sleep(Duration::from_millis(1500));
    let ended = hang_up(&bob, &alice)?;
    let call = ended.duration_since(established);
    assert_hears("alice", &alice, call, BOB_HZ, ALICE_HZ)?;
    assert_hears("bob", &bob, call, ALICE_HZ, BOB_HZ)?;
    Ok(())
}

/// Milliseconds from `from` to `to` (negative when `to` is earlier).
fn millis_between(from: SystemTime, to: SystemTime) -> i128 {
    match to.duration_since(from) {
        Ok(after) => after.as_millis() as i128,
        Err(before) => -(before.duration().as_millis() as i128),
    }
}
