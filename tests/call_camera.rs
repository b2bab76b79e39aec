//! `--video camera` when the camera cannot be used: Callisto calls Callisto directly over the
//! WebRTC path asking for a camera this machine does not have. The call still completes, the
//! caller reports why there is no camera (a `camera_unavailable` line naming it, and the same
//! on standard error), and the callee decodes the placeholder picture — recognised by content
//! in its recording — at the placeholder's low frame rate.

mod support;

use std::error::Error;
use std::time::Duration;

use callisto_media::video::camera::{cameras, placeholder_frame, PLACEHOLDER_FPS};
use callisto_media::video::{VideoSource, Y4mEnd, Y4mSource};
use support::callisto::Callisto;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// The mean absolute luma difference between two pictures of the same size.
fn luma_distance(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len().max(1) as f64
}

#[test]
fn a_call_without_a_camera_sends_the_placeholder_and_says_why() -> TestResult {
    // Ask for the camera when there is none; on a machine with cameras, for one past the last,
    // so the camera is missing either way.
    let listed = cameras()?;
    let (video, expected_reason) = match listed.iter().map(|c| c.index).max() {
        None => ("camera".to_owned(), "no camera found".to_owned()),
        Some(last) => (
            format!("camera:{}", last + 1),
            format!("there is no camera number {}", last + 1),
        ),
    };
    let dir = tempfile::tempdir()?;
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    std::fs::create_dir_all(&alice_dir)?;
    std::fs::create_dir_all(&bob_dir)?;
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let bob_video = dir.path().join("bob-heard.y4m");
    let mut bob = Callisto::answer(
        &bob_dir,
        &listen,
        &[
            "--audio",
            "tone:1000",
            "--video",
            "pattern",
            "--record-video",
            &bob_video.to_string_lossy(),
        ],
    )?;
    bob.expect("listening", WAIT)?;
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let mut alice = Callisto::call(
        &alice_dir,
        &uri,
        &[
            "--media",
            "webrtc",
            "--audio",
            "tone:440",
            "--video",
            &video,
            "--duration",
            "3",
        ],
    )?;
    let unavailable = alice.expect("camera_unavailable", WAIT)?;
    assert_eq!(
        unavailable["reason"],
        expected_reason.as_str(),
        "{unavailable}"
    );
    assert_eq!(unavailable["sending"], "placeholder", "{unavailable}");
    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["media"], "webrtc", "{answered}");
    assert_eq!(answered["video"], true, "{answered}");
    let alice_ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    println!("alice: {alice_ended}\nbob: {bob_ended}");
    assert!(
        alice.stderr().contains(&expected_reason),
        "stderr: {}",
        alice.stderr()
    );

    // Alice sent the placeholder at its rate and size; Bob decoded it.
    assert_eq!(
        alice_ended["video"]["resolution"], "640x480",
        "{alice_ended}"
    );
    let decoded = bob_ended["video"]["frames_decoded"].as_u64().unwrap_or(0);
    let most = u64::from(PLACEHOLDER_FPS) * 4;
    assert!(
        (u64::from(PLACEHOLDER_FPS)..=most).contains(&decoded),
        "{bob_ended}"
    );
    assert_eq!(
        bob_ended["video"]["receive_resolution"], "640x480",
        "{bob_ended}"
    );

    // What Bob recorded is the placeholder picture, within the codec's error.
    let placeholder = placeholder_frame(640, 480)?;
    let mut recording = Y4mSource::open(&bob_video, Y4mEnd::Stop)?;
    let (mut frames, mut alike) = (0, 0);
    while let Some(frame) = recording.next_frame()? {
        frames += 1;
        if luma_distance(frame.y(), placeholder.y()) < 4.0 {
            alike += 1;
        }
    }
    println!("bob recorded {frames} frames, {alike} of them the placeholder");
    assert!(frames >= PLACEHOLDER_FPS as usize, "{frames}");
    assert!(alike * 10 >= frames * 9, "{alike} of {frames}");
    Ok(())
}
