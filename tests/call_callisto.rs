//! Callisto calls Callisto directly (no registrar): `callisto answer` on a known port,
//! `callisto call sip:bob@127.0.0.1:PORT`. Each plays its own tone and records the other's.

mod support;

use std::error::Error;
use std::time::Duration;

use support::callisto::Callisto;
use support::{video, wav};

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(5);

/// Bob answering on a free loopback port with his 1270 Hz tone, recording what he hears to
/// `dir/bob.wav`, with `extra` options: bob, the URI that calls him, and alice's folder.
fn answering_bob(
    dir: &std::path::Path,
    extra: &[&str],
) -> Result<(Callisto, String, std::path::PathBuf), Box<dyn Error>> {
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let (bob_dir, alice_dir) = (dir.join("bob"), dir.join("alice"));
    std::fs::create_dir_all(&bob_dir)?;
    std::fs::create_dir_all(&alice_dir)?;
    let bob_rec = dir.join("bob.wav").to_string_lossy().into_owned();
    let mut args = vec!["--audio", "tone:1270", "--record-audio", &bob_rec];
    args.extend(extra);
    let mut bob = Callisto::answer(&bob_dir, &listen, &args)?;
    bob.expect("listening", WAIT)?;
    Ok((bob, format!("sip:bob@127.0.0.1:{port}"), alice_dir))
}

fn direct_call(codecs: &str, srtp: &str) -> TestResult {
    direct_call_playing(codecs, srtp, "tone:440")
}

/// As [`direct_call`], alice sending `audio` (a 440 Hz tone one way or another).
fn direct_call_playing(codecs: &str, srtp: &str, audio: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let bob_rec = dir.path().join("bob.wav");
    let alice_rec = dir.path().join("alice.wav");
    let (mut bob, uri, alice_dir) =
        answering_bob(dir.path(), &["--codecs", codecs, "--srtp", srtp])?;
    let mut alice = Callisto::call(
        &alice_dir,
        &uri,
        &[
            "--audio",
            audio,
            "--record-audio",
            &alice_rec.to_string_lossy(),
            "--codecs",
            codecs,
            "--srtp",
            srtp,
            "--duration",
            "2.5",
        ],
    )?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["srtp"], srtp == "mandatory", "{answered}");
    let ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    println!("alice: {ended}\nbob: {bob_ended}");
    assert_eq!(ended["by"], "local");
    assert_eq!(bob_ended["by"], "remote");
    for summary in [&ended, &bob_ended] {
        let audio = &summary["audio"];
        assert!(
            audio["rx_packets"].as_u64().unwrap_or(0) >= 100,
            "{summary}"
        );
        assert_eq!(audio["lost"], 0, "{summary}");
        assert_eq!(audio["discarded"], 0, "{summary}");
        // Jitter is measured from the first packets on; the round trip needs an RTCP report
        // each way, which a 2.5 s call may not have had yet, so it is a figure or null.
        assert!(
            audio["jitter_ms"].as_f64().is_some_and(|j| j >= 0.0),
            "{summary}"
        );
        assert!(
            audio["rtt_ms"].is_null() || audio["rtt_ms"].as_f64().is_some_and(|r| r >= 0.0),
            "{summary}"
        );
        assert!(
            summary["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{summary}"
        );
        assert!(
            summary["duration_s"].as_f64().is_some_and(|d| d >= 2.0),
            "{summary}"
        );
    }
    assert!(ended["setup_ms"].as_f64().is_some(), "{ended}");
    for (who, path, expected, own) in [
        ("alice", &alice_rec, 1270.0, 440.0),
        ("bob", &bob_rec, 440.0, 1270.0),
    ] {
        let wav::Heard {
            coverage,
            own_level,
            seconds,
        } = wav::heard(path, expected, own)?;
        println!("{who}: coverage {coverage:.3} own {own_level:.4} over {seconds:.2} s");
        assert!(
            coverage >= 0.9 && seconds >= 2.0,
            "{who}: {coverage} over {seconds} s"
        );
        assert!(own_level < 0.01, "{who} hears itself: {own_level}");
    }
    Ok(())
}

#[test]
fn opus_with_mandatory_srtp() -> TestResult {
    direct_call("opus", "mandatory")
}

#[test]
fn pcmu_in_the_clear() -> TestResult {
    direct_call("pcmu", "off")
}

/// A WAV file at 11 025 Hz (no whole number of samples in a 20 ms frame) plays as any other.
#[test]
fn a_wav_file_at_11025_hz_is_heard() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("tone-11025.wav");
    wav::write_tone(&file, 440.0, 11_025, 1, 1.0)?;
    direct_call_playing("pcmu", "off", &file.to_string_lossy())
}

#[test]
fn an_offer_without_a_common_codec_is_refused_with_488() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let bob_dir = dir.path().join("bob");
    let alice_dir = dir.path().join("alice");
    std::fs::create_dir_all(&bob_dir)?;
    std::fs::create_dir_all(&alice_dir)?;
    let mut bob = Callisto::answer(&bob_dir, &listen, &["--codecs", "pcma"])?;
    bob.expect("listening", WAIT)?;
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let mut alice = Callisto::call(&alice_dir, &uri, &["--codecs", "pcmu"])?;
    let failed = alice.expect("call_failed", WAIT)?;
    assert_eq!(failed["code"], 488, "{failed}");
    assert_eq!(failed["cause"], "not acceptable", "{failed}");
    // Bob's refusal said why, and alice tells it.
    assert_eq!(failed["warning"], "No common codec", "{failed}");
    assert_eq!(alice.wait(WAIT)?.code(), Some(4));
    Ok(())
}

/// Alice hangs up: both report the end and exit cleanly.
fn alice_hangs_up(alice: &mut Callisto, bob: &mut Callisto) -> TestResult {
    alice.control("hangup")?;
    alice.expect("call_ended", WAIT)?;
    bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    Ok(())
}

/// Alice holds her video call with bob for 1.5 s and resumes it: bob's recording of alice's
/// tone has a gap as long as the hold (alice sends nothing he could hear meanwhile, though
/// her hold offer is `sendonly`), and the tone before and after it; his video recording shows
/// her pattern, then a second or more of pictures without it, then her pattern again.
fn held_side_hears_nothing(extra: &[&str]) -> TestResult {
    let dir = tempfile::tempdir()?;
    let bob_rec = dir.path().join("bob.wav");
    let bob_video = dir.path().join("bob.y4m");
    let video_path = bob_video.to_string_lossy().into_owned();
    let (mut bob, uri, alice_dir) = answering_bob(
        dir.path(),
        &[
            "--video",
            "pattern",
            "--pattern-id",
            "4",
            "--record-video",
            &video_path,
        ],
    )?;
    let mut args = vec![
        "--audio",
        "tone:440",
        "--video",
        "pattern",
        "--pattern-id",
        "3",
    ];
    args.extend(extra);
    let mut alice = Callisto::call(&alice_dir, &uri, &args)?;
    alice.expect("answered", WAIT)?;
    std::thread::sleep(Duration::from_millis(1_000));
    alice.control("hold")?;
    alice.expect("held", WAIT)?;
    std::thread::sleep(Duration::from_millis(1_500));
    alice.control("resume")?;
    alice.expect("resumed", WAIT)?;
    std::thread::sleep(Duration::from_millis(1_000));
    alice_hangs_up(&mut alice, &mut bob)?;
    let (with_tone, gap) = wav::tone_gap(&bob_rec, 440.0)?;
    println!("bob heard alice for {with_tone:.1} s, with a gap of {gap:.1} s");
    assert!(gap >= 1.2, "a gap of {gap} s for a hold of 1.5 s");
    assert!(with_tone >= 1.2, "alice heard for {with_tone} s");
    let seen: Vec<bool> = video::stamps(&bob_video)?
        .iter()
        .map(|stamp| stamp.is_some_and(|s| s.identity == 3))
        .collect();
    let (Some(first), Some(last)) = (seen.iter().position(|s| *s), seen.iter().rposition(|s| *s))
    else {
        return Err(format!("bob never saw alice: {} pictures", seen.len()).into());
    };
    let dark = seen[first..=last]
        .split(|s| *s)
        .map(<[bool]>::len)
        .max()
        .unwrap_or(0);
    println!(
        "bob saw alice in {} of {} pictures, {dark} in a row without her",
        seen.iter().filter(|s| **s).count(),
        seen.len()
    );
    assert!(
        dark >= 30,
        "{dark} pictures in a row without alice for a hold of 1.5 s"
    );
    Ok(())
}

#[test]
fn a_held_peer_hears_nothing_of_us() -> TestResult {
    held_side_hears_nothing(&[])
}

#[test]
fn a_held_peer_hears_nothing_of_us_over_webrtc() -> TestResult {
    held_side_hears_nothing(&["--media", "webrtc"])
}

/// Alice and bob hold their call at the same moment, and resume it at the same moment: the
/// re-INVITEs cross (each side refuses the other's with 491, RFC 3261 14.1) or one overtakes
/// the other while that side is making its own offer. Either way each hold, and then each
/// resume, goes through: the side whose offer waits when the other's arrives answers that
/// one first and makes its own again.
fn both_hold_and_resume_at_once(extra: &[&str]) -> TestResult {
    // The owner of the Call-ID waits up to 4 s before trying again (RFC 3261 14.1).
    let settle = Duration::from_secs(12);
    let dir = tempfile::tempdir()?;
    let (mut bob, uri, alice_dir) = answering_bob(dir.path(), extra)?;
    let mut alice = Callisto::call(&alice_dir, &uri, extra)?;
    alice.expect("answered", WAIT)?;
    std::thread::sleep(Duration::from_millis(1_000));
    for (press, event) in [("hold", "held"), ("resume", "resumed")] {
        alice.control(press)?;
        bob.control(press)?;
        for (who, phone) in [("alice", &mut alice), ("bob", &mut bob)] {
            let own = phone.expect_matching(event, |e| e["by"] == "local", settle);
            assert!(own.is_ok(), "{who}: {own:?}");
        }
    }
    alice_hangs_up(&mut alice, &mut bob)?;
    Ok(())
}

#[test]
fn holds_and_resumes_pressed_on_both_sides_at_once_all_go_through() -> TestResult {
    both_hold_and_resume_at_once(&[])
}

#[test]
fn holds_and_resumes_pressed_on_both_sides_at_once_all_go_through_over_webrtc() -> TestResult {
    both_hold_and_resume_at_once(&["--media", "webrtc"])
}

/// A Y4M file as the camera: alice plays a 2 s file of the pattern stamped 6 in a loop for
/// 4 s on the WebRTC path; bob's recording holds her pictures alone, more of them than the
/// file has, their counters stepping by one but where the file starts again.
#[test]
fn a_y4m_file_is_sent_as_the_picture_in_a_loop() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("alice-camera.y4m");
    video::write_pattern(&file, 6, 2)?;
    let seen = dir.path().join("bob-saw.y4m");
    let seen_arg = seen.to_string_lossy().into_owned();
    let (mut bob, uri, alice_dir) = answering_bob(
        dir.path(),
        &["--video", "pattern", "--record-video", &seen_arg],
    )?;
    let file_arg = file.to_string_lossy().into_owned();
    let mut alice = Callisto::call(
        &alice_dir,
        &uri,
        &[
            "--media",
            "webrtc",
            "--audio",
            "tone:440",
            "--video",
            &file_arg,
            "--duration",
            "4",
        ],
    )?;
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["video"], true, "{answered}");
    alice.expect("call_ended", WAIT)?;
    bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    let run = video::stamp_run(&seen)?;
    println!("bob saw {run:?}");
    assert_eq!(run.identities, vec![6], "{run:?}");
    assert!(run.stamped * 100 >= run.frames * 98, "{run:?}");
    assert!(run.frames > video::PATTERN_CYCLE, "{run:?}");
    let restarts = run.frames.div_ceil(video::PATTERN_CYCLE);
    assert!(run.gaps >= 1 && run.gaps <= restarts, "{run:?}");
    Ok(())
}
