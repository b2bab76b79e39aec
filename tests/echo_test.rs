//! The echo test: `callisto call echo` reaches the service Callisto runs in-process and gets
//! back what it sends, one second later — the tone in the recording starts after a second of
//! silence, and the decoded pictures are the caller's own test pattern, its frame counters
//! about 30 frames (one second at 30 fps) behind the frames they arrive as. No server, no
//! account; once on the classic path, once on the WebRTC path.

mod support;

use std::error::Error;
use std::time::Duration;

use callisto_media::analysis::{first_burst_onset, tone_coverage};
use support::callisto::Callisto;
use support::{video, wav};

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);
const PATTERN_ID: u16 = 7;

fn echo_test(profile: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let heard = dir.path().join("heard.wav");
    let seen = dir.path().join("seen.y4m");
    let pattern_id = PATTERN_ID.to_string();
    let mut caller = Callisto::call(
        dir.path(),
        "sip:echo@localhost",
        &[
            "--media",
            profile,
            "--audio",
            "tone:440",
            "--record-audio",
            &heard.to_string_lossy(),
            "--video",
            "pattern",
            "--pattern-id",
            &pattern_id,
            "--record-video",
            &seen.to_string_lossy(),
            "--duration",
            "3.5",
        ],
    )?;
    let answered = caller.expect("answered", WAIT)?;
    assert_eq!(answered["media"], profile, "{answered}");
    assert_eq!(answered["video"], true, "{answered}");
    let ended = caller.expect("call_ended", WAIT)?;
    assert!(caller.wait(WAIT)?.success(), "{}", caller.stderr());
    println!("{ended}");
    assert_eq!(ended["by"], "local", "{ended}");

    // What was heard: a second of silence, then the caller's own tone.
    let audio = wav::read_mono(&heard)?;
    let rate = audio.sample_rate;
    let onset =
        first_burst_onset(&audio.samples, rate, 440.0, 0.05).ok_or("the tone never came back")?;
    let after = &audio.samples[(onset.as_secs_f64() * f64::from(rate)) as usize..];
    let coverage = tone_coverage(after, rate, 440.0, 0.02, 50, 0.05);
    println!(
        "{profile}: the tone came back after {:.0} ms, in {:.3} of what followed ({:.2} s recorded)",
        onset.as_secs_f64() * 1000.0,
        coverage,
        audio.seconds()
    );
    assert!(
        (0.95..1.4).contains(&onset.as_secs_f64()),
        "the echo's delay is {onset:?}"
    );
    assert!(coverage >= 0.9, "{coverage}");

    // What was seen: black while the first second is on its way, then our own pattern, each
    // picture about a second older than the frame it arrives as.
    let stamps = video::stamps(&seen)?;
    let lags: Vec<i64> = stamps
        .iter()
        .enumerate()
        .filter_map(|(index, stamp)| {
            let stamp = stamp.as_ref()?;
            assert_eq!(stamp.identity, PATTERN_ID, "frame {index}");
            Some(index as i64 - i64::from(stamp.frame))
        })
        .collect();
    let first = stamps
        .iter()
        .position(Option::is_some)
        .ok_or("no picture came back")?;
    println!(
        "{profile}: {} frames, the first own picture at frame {first}, lags {:?}…{:?}",
        stamps.len(),
        lags.iter().min(),
        lags.iter().max()
    );
    assert!(lags.len() >= 45, "{} own pictures came back", lags.len());
    assert!(
        (28..=40).contains(&first),
        "the first own picture is frame {first}"
    );
    let median = {
        let mut sorted = lags.clone();
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    };
    assert!(
        (28..=40).contains(&median),
        "the pictures lag {median} frames"
    );
    Ok(())
}

#[test]
fn the_echo_test_sends_back_voice_and_picture_a_second_later() -> TestResult {
    echo_test("classic")
}

#[test]
fn the_echo_test_works_on_the_webrtc_path() -> TestResult {
    echo_test("webrtc")
}
