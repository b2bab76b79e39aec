//! Callisto calls Callisto through Kamailio on the WebRTC path (ICE, DTLS-SRTP, Opus and
//! H.264 640x480 both ways) while the kernel drops 2 % of the H.264 RTP packets on loopback,
//! both ways (`support::packet_loss`, nftables in the test's network namespace). Each side
//! asks for what it lost (NACK) and the other resends it, so each recording's frame counters
//! stay consecutive but where a repair came too late (then a keyframe is asked for), and both
//! decode at the pattern's rate.
//!
//! A binary of its own: the loss applies to the whole namespace, so no other test may run
//! beside it.

mod support;

use std::error::Error;
use std::time::Duration;

use serde_json::Value;

use support::kamailio::{Kamailio, KamailioConfig};
use support::packet_loss::LossyLoopback;
use support::video::stamp_run;
use support::video_call::{alice_calls_bob_on_webrtc, number, recording};

const WAIT: Duration = Duration::from_secs(10);
/// Callisto's H.264 payload type on the WebRTC path (packetization mode 1).
const H264: u8 = 125;
const LOSS_PERCENT: u8 = 2;

/// One side's summary and recording: what it lost it asked for again, and it decoded the
/// other's pattern at the pattern's rate with few gaps in its counters.
fn check_repaired(
    who: &str,
    ended: &Value,
    dir: &std::path::Path,
    peer: u16,
) -> Result<(), Box<dyn Error>> {
    let video = &ended["video"];
    assert_eq!(video["receive_resolution"], "640x480", "{who}: {ended}");
    assert!(number(&video["fps"]) >= 25.0, "{who}: {ended}");
    assert!(
        number(&video["nacked"]) >= 1.0,
        "{who} asked for nothing: {ended}"
    );
    let run = stamp_run(&recording(dir, who, "y4m"))?;
    println!("{who} saw {run:?}");
    assert!(run.frames >= 100, "{who}: {run:?}");
    assert_eq!(run.identities, vec![peer], "{who}: {run:?}");
    assert!(run.stamped * 100 >= run.frames * 98, "{who}: {run:?}");
    // Without repair about one picture in ten would be damaged at this loss (a keyframe
    // spans several packets); a repair that comes too late skips to the next keyframe.
    assert!(run.gaps <= 3, "{who}: {run:?}");
    Ok(())
}

#[test]
fn a_lossy_path_is_repaired_by_nack_both_ways() -> Result<(), Box<dyn Error>> {
    let kamailio = Kamailio::start(KamailioConfig::websocket_for_alice_and_bob())?;
    let dir = tempfile::tempdir()?;
    let mut lossy = None;
    let (mut alice, mut bob, answered) =
        alice_calls_bob_on_webrtc(&kamailio, dir.path(), (440.0, 1000.0), "5", || {
            lossy = Some(LossyLoopback::start(H264, LOSS_PERCENT)?);
            Ok(())
        })?;
    let lossy = lossy.ok_or("no loss rule")?;
    assert_eq!(answered["media"], "webrtc", "{answered}");
    let alice_ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    let dropped = lossy.dropped()?;
    drop(lossy);
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    println!("dropped {dropped} H.264 packets\nalice {alice_ended}\nbob {bob_ended}");
    // About 20 of some 1000 are dropped; 5 is far below what chance gives.
    assert!(dropped >= 5, "the path lost only {dropped} packets");
    check_repaired("alice", &alice_ended, dir.path(), 2)?;
    check_repaired("bob", &bob_ended, dir.path(), 1)?;
    Ok(())
}
