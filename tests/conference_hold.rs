//! Participants that put their conference call on hold for longer than the legs' 10 s media
//! timeout stay in the conference: a hold is not a participant gone. dave (classic path) and
//! erin (WebRTC path) hold for 12 s and resume; both are still in the host's roster at the
//! end, everyone hears the others again, and meanwhile the host wrote no RTP to erin's
//! receive-only stream. A binary of its own: its timing is the point.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::conference::{assert_hears, each_call, Room, TestResult};

const WAIT: Duration = Duration::from_secs(8);

#[test]
fn participants_on_hold_past_the_media_timeout_stay_in_the_conference() -> TestResult {
    let room = Room::new()?;
    let (mut host, listen) = room.host(&["conference", "--host", "--duration", "22"])?;
    host.expect("conference", WAIT)?;
    let uri = format!("sip:conference@{listen}");
    let mut dave = room.call("dave", &uri, 1060, &["--media", "classic"])?;
    let mut erin = room.call("erin", &uri, 1230, &["--media", "webrtc"])?;
    for peer in [&mut dave, &mut erin] {
        peer.expect("answered", WAIT)?;
    }
    each_call(&mut host, "joined", 2, WAIT)?;
    for peer in [&mut dave, &mut erin] {
        peer.control("hold")?;
        peer.expect("held", WAIT)?;
    }
    let held = Instant::now();
    thread::sleep(Duration::from_secs(12));
    for peer in [&mut dave, &mut erin] {
        peer.control("resume")?;
        peer.expect("resumed", WAIT)?;
    }
    println!(
        "resumed after {:.1} s on hold",
        held.elapsed().as_secs_f64()
    );
    // Nobody was dropped: both are in the roster when the conference ends, and each side
    // hears the others again.
    let ended = host.expect("conference_ended", Duration::from_secs(15))?;
    assert!(host.wait(WAIT)?.success(), "{}", host.stderr());
    for peer in [&mut dave, &mut erin] {
        peer.expect("call_ended", WAIT)?;
        assert!(peer.wait(WAIT)?.success(), "{}", peer.stderr());
    }
    // While a participant held, the host sent nothing on its leg's receive-only streams
    // (the WebRTC driver refuses and logs each packet written to one).
    assert!(
        !host.stderr().contains("unknown sender id"),
        "the host wrote RTP to a stream that does not send: {}",
        host.stderr()
    );
    let roster = ended["roster"].as_array().map(Vec::len);
    assert_eq!(roster, Some(3), "the host and both participants: {ended}");
    assert_eq!(ended["joined"].as_array().map(Vec::len), Some(2), "{ended}");
    let window = (5.0, 4.0);
    assert_hears(
        "host",
        &room.recording("host"),
        440.0,
        &[1060.0, 1230.0],
        window,
    )?;
    assert_hears(
        "dave",
        &room.recording("dave"),
        1060.0,
        &[440.0, 1230.0],
        window,
    )?;
    assert_hears(
        "erin",
        &room.recording("erin"),
        1230.0,
        &[440.0, 1060.0],
        window,
    )?;
    Ok(())
}
