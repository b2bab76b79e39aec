//! Two WebRTC sessions with H.264 video through a loopback UDP relay that loses or limits
//! (every socket on 127.0.0.1): NACK and the reorder buffer must recover seeded losses, and
//! the bitrate controller must bring the sender under a bottleneck so that pictures flow
//! again. Figures are printed (`-- --nocapture`).

#[path = "support/udp_relay.rs"]
mod udp_relay;
#[path = "support/video_session.rs"]
mod video_session;

use std::time::{Duration, Instant};

use callisto_media::video::PatternStamp;
use callisto_media::webrtc::{VideoStats, WebRtcSession, WebRtcStats};
use udp_relay::{PathConfig, Relay};
use video_session::{video_session, Stamps, ONE_AT_A_TIME};

/// Connects A and B through a relay with the given paths.
async fn call_through(
    a_to_b: PathConfig,
    b_to_a: PathConfig,
    max_bitrate: u32,
) -> (WebRtcSession, WebRtcSession, Relay, Stamps) {
    let (a, _) = video_session(1, max_bitrate).await;
    let (b, seen_by_b) = video_session(2, max_bitrate).await;
    let relay = Relay::start(a_to_b, b_to_a).await;
    let offer = a.create_offer().await.unwrap();
    let answer = b
        .accept_offer(&Relay::rewrite_candidates(&offer, relay.front_a))
        .await
        .unwrap();
    relay.connect(
        Relay::candidate_addr(&offer),
        Relay::candidate_addr(&answer),
    );
    a.apply_answer(&Relay::rewrite_candidates(&answer, relay.front_b))
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(a.wait_connected(), b.wait_connected());
    ra.unwrap();
    rb.unwrap();
    (a, b, relay, seen_by_b)
}

fn video(stats: &WebRtcStats) -> &VideoStats {
    stats.video.as_ref().expect("video stats")
}

/// 4 % of RTP lost each way: NACKs bring the packets back before the reorder buffer gives
/// up, so nearly every frame A sends is decoded at B, in order, with few keyframe requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_recovers_seeded_loss() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let lossy = |seed| PathConfig {
        loss: 0.04,
        seed,
        ..PathConfig::clean()
    };
    let (a, b, relay, seen_by_b) = call_through(lossy(7), lossy(8), 1_000_000).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    let (va, vb) = (video(&stats_a), video(&stats_b));
    let ab = relay.a_to_b.snapshot();
    println!("relay a->b (rtp forwarded, lost, video lost, queue drops, other): {ab:?}");
    println!("relay b->a: {:?}", relay.b_to_a.snapshot());
    println!("a: {va:?}");
    println!("b: {vb:?}");
    let ratio = vb.frames_decoded as f64 / va.frames_sent as f64;
    println!(
        "b decoded {} of {} frames a sent ({:.1} %), {} PLIs, {} NACKs, {} retransmissions",
        vb.frames_decoded,
        va.frames_sent,
        ratio * 100.0,
        vb.keyframe_requests_sent,
        vb.nacks_sent,
        vb.retransmissions_received
    );
    assert!(ab.2 >= 8, "the relay lost too little video to test: {ab:?}");
    assert!(vb.nacks_sent > 0 && va.nacks_received > 0, "{vb:?} {va:?}");
    assert!(
        vb.retransmissions_received as f64 >= 0.8 * ab.2 as f64,
        "most lost packets must come back: {} of {}",
        vb.retransmissions_received,
        ab.2
    );
    assert!(ratio >= 0.9, "decoded {ratio}");
    assert!(vb.keyframe_requests_sent <= 3, "{vb:?}");
    // The pictures B shows are A's, in order.
    let stamps: Vec<PatternStamp> = seen_by_b
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .copied()
        .collect();
    assert!(stamps.len() as f64 >= 0.9 * vb.frames_decoded as f64);
    assert!(stamps.iter().all(|s| s.identity == 1));
    assert!(stamps.windows(2).all(|w| w[1].frame > w[0].frame));
}

/// A 400 kbps bottleneck from A to B: A's target falls below it, the frame size steps down,
/// and B's decoded frame rate recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_falls_under_a_bottleneck_and_frames_flow_again() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let limited = PathConfig {
        rate_bps: Some(400_000),
        queue_limit: Duration::from_millis(300),
        ..PathConfig::clean()
    };
    let (a, b, relay, _) = call_through(limited, PathConfig::clean(), 1_000_000).await;
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(12) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (va, vb) = (a.stats().video.unwrap(), b.stats().video.unwrap());
        println!(
            "{:>5.1} s: a target {:>7} bps, sends {:?}, b decoded {}",
            started.elapsed().as_secs_f64(),
            va.target_bitrate_bps,
            va.send_resolution,
            vb.frames_decoded
        );
        samples.push((Instant::now(), va.target_bitrate_bps, vb.frames_decoded));
    }
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    let (va, vb) = (video(&stats_a), video(&stats_b));
    println!(
        "relay a->b (rtp forwarded, lost, video lost, queue drops, other): {:?}",
        relay.a_to_b.snapshot()
    );
    println!("a: {va:?}");
    println!("b: {vb:?}");
    let lowest = samples.iter().map(|s| s.1).min().unwrap();
    assert!(
        lowest < 400_000,
        "the target never fell below the bottleneck: {lowest}"
    );
    // Once settled (the last 6 s), the target stays under the bottleneck on average: AIMD
    // probes above it now and then and comes back.
    let settled: Vec<u64> = samples[samples.len() - 12..].iter().map(|s| s.1).collect();
    let mean = settled.iter().sum::<u64>() as f64 / settled.len() as f64;
    println!("a's mean target over the last 6 s: {mean:.0} bps");
    assert!(mean < 400_000.0, "{settled:?}");
    assert!(va.layer_changes >= 1, "{va:?}");
    // The last three seconds: frames decoded per second.
    let (end, _, decoded_end) = samples[samples.len() - 1];
    let (begin, _, decoded_begin) = samples[samples.len() - 7];
    let fps = (decoded_end - decoded_begin) as f64 / end.duration_since(begin).as_secs_f64();
    println!("b decodes {fps:.1} fps over the last 3 s");
    assert!(fps >= 20.0, "{fps} fps");
}

/// A 100 kbps ceiling on a clean path: the target never exceeds it, and the 640x480 source is
/// sent at the size that suits it (160x120: 320x240 would need ~127 kbps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_holds_and_sets_the_frame_size() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, b, _relay, _) = call_through(PathConfig::clean(), PathConfig::clean(), 100_000).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    let (va, vb) = (video(&stats_a), video(&stats_b));
    println!("a: {va:?}");
    println!("b: {vb:?}");
    assert_eq!(va.target_bitrate_bps, 100_000);
    assert_eq!(va.send_resolution, (160, 120));
    assert_eq!(vb.receive_resolution, Some((160, 120)));
    assert!(vb.frames_decoded >= 60, "{vb:?}");
    assert!(
        va.send_bitrate_bps < 150_000.0,
        "sent {} bps",
        va.send_bitrate_bps
    );
}
