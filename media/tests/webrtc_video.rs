//! Two WebRTC sessions with audio and H.264 video on loopback (every socket on 127.0.0.1):
//! a stamped test pattern at 640x480 both ways (or as small as a peer's level asks), verified
//! by the stamps read back from the decoded pictures. Figures are printed
//! (`-- --nocapture`), not asserted beyond what the content proves.

#[path = "support/video_session.rs"]
mod video_session;

use std::time::{Duration, Instant};

use callisto_media::audio::{NullSink, ToneSource};
use callisto_media::video::PatternStamp;
use callisto_media::webrtc::peer::H264_PAYLOAD_TYPE;
use callisto_media::webrtc::{WebRtcConfig, WebRtcMedia, WebRtcSession};
use video_session::{session_with, video_session, AUDIO, ONE_AT_A_TIME};

/// The decoded stamps must all be the peer's, and its frame counter must rise by one each
/// time: no picture lost, repeated or reordered.
fn check_stamps(who: &str, stamps: &[Option<PatternStamp>], peer: u16) {
    let read: Vec<PatternStamp> = stamps
        .iter()
        .map(|s| s.expect("a readable stamp"))
        .collect();
    assert!(read.len() >= 60, "{who}: only {} pictures", read.len());
    assert!(read.iter().all(|s| s.identity == peer), "{who}: {read:?}");
    for pair in read.windows(2) {
        assert_eq!(pair[1].frame, pair[0].frame + 1, "{who}: {pair:?}");
    }
    println!(
        "{who}: {} pictures, frames {}..={}",
        read.len(),
        read[0].frame,
        read[read.len() - 1].frame
    );
}

/// Waits until both sessions have ICE and DTLS up.
async fn connected(a: &WebRtcSession, b: &WebRtcSession) {
    let (ra, rb) = tokio::join!(a.wait_connected(), b.wait_connected());
    ra.unwrap();
    rb.unwrap();
}

/// A offers, B answers, both connect; returns the offer and the answer.
async fn connect(a: &WebRtcSession, b: &WebRtcSession) -> (String, String) {
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    a.apply_answer(&answer).await.unwrap();
    connected(a, b).await;
    (offer, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_pattern_crosses_both_ways_at_640x480() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, seen_by_a) = video_session(1, 1_000_000).await;
    let (b, seen_by_b) = video_session(2, 1_000_000).await;
    let started = Instant::now();
    let (offer, answer) = connect(&a, &b).await;
    let connected = started.elapsed();
    let first_picture = loop {
        if b.stats().video.is_some_and(|v| v.frames_decoded > 0) {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no picture");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // B asks for a keyframe: A's encoder must answer with an IDR.
    b.request_keyframe();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    println!("connected after {connected:?}, first picture at b after {first_picture:?}");
    println!("a: {:?}", stats_a.video);
    println!("b: {:?}", stats_b.video);

    for sdp in [&offer, &answer] {
        for needle in [
            "m=video",
            "H264/90000",
            "packetization-mode=1",
            "profile-level-id=42e01f",
            "nack pli",
            "ccm fir",
            "goog-remb",
            "transport-cc",
        ] {
            assert!(sdp.contains(needle), "SDP lacks {needle}:\n{sdp}");
        }
    }
    let (va, vb) = (
        stats_a.video.as_ref().unwrap(),
        stats_b.video.as_ref().unwrap(),
    );
    // One request, or two when the keyframe took longer than the requester's first wait
    // (250 ms) to decode; each reached A, which answered each with a keyframe unless the
    // second came within 300 ms of the first.
    assert!(
        (1..=2).contains(&vb.keyframe_requests_sent),
        "{}",
        vb.keyframe_requests_sent
    );
    assert_eq!(va.keyframe_requests_received, vb.keyframe_requests_sent);
    assert!(
        (2..=1 + vb.keyframe_requests_sent).contains(&va.keyframes_sent),
        "the first frame and the requested ones: {}",
        va.keyframes_sent
    );
    // Audio and video share one CNAME, so the peer can synchronise them.
    let cnames: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.split_once(" cname:").map(|(_, c)| c))
        .collect();
    assert!(cnames.len() >= 2, "{cnames:?}");
    assert!(cnames.windows(2).all(|w| w[0] == w[1]), "{cnames:?}");
    check_stamps("a", &seen_by_a.lock().unwrap(), 2);
    check_stamps("b", &seen_by_b.lock().unwrap(), 1);
    for (who, stats) in [("a", &stats_a), ("b", &stats_b)] {
        let video = stats.video.as_ref().expect("video stats");
        assert_eq!(video.codec, "H264");
        assert_eq!(video.receive_resolution, Some((640, 480)), "{who}");
        assert!(video.decode_fps >= 25.0, "{who}: {} fps", video.decode_fps);
        assert_eq!(video.decode_errors, 0, "{who}");
        assert!(
            stats.audio.as_ref().is_some_and(|a| a.decoded_frames > 100),
            "{who}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_only_answerer_leaves_the_call_audio_only() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, seen_by_a) = video_session(1, 1_000_000).await;
    let b = WebRtcSession::new(
        WebRtcConfig::loopback(),
        WebRtcMedia {
            audio_source: Box::new(ToneSource::with_dbfs(AUDIO, 880.0, -12.0)),
            audio_sink: Box::new(NullSink::new(AUDIO)),
            video: None,
        },
    )
    .await
    .unwrap();
    let offer = a.create_offer().await.unwrap();
    assert!(offer.contains("m=video"));
    let answer = b.accept_offer(&offer).await.unwrap();
    a.apply_answer(&answer).await.unwrap();
    connected(&a, &b).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    println!("answer:\n{answer}");
    println!("a video: {:?}", stats_a.video);
    for (who, stats) in [("a", &stats_a), ("b", &stats_b)] {
        let audio = stats.audio.as_ref().expect("audio");
        assert!(audio.decoded_frames > 30, "{who}: {}", audio.decoded_frames);
    }
    assert!(stats_b.video.is_none());
    assert!(
        stats_a.video.is_none(),
        "no video thread for a declined m-line"
    );
    assert!(seen_by_a.lock().unwrap().is_empty());
}

/// A peer whose description names level 1.2 (`42e00c`: 396 macroblocks a picture, 6000 a
/// second) is sent what that level decodes: 320x240 at 20 fps from a 640x480 30 fps pattern,
/// while the peer's own pictures to us, within our level 3.1, stay 640x480.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_names_a_low_level_is_sent_pictures_within_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, seen_by_a) = video_session(1, 1_000_000).await;
    let (b, seen_by_b) = video_session(2, 1_000_000).await;
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    assert!(answer.contains("profile-level-id=42e01f"), "{answer}");
    let low = answer.replace("profile-level-id=42e01f", "profile-level-id=42e00c");
    a.apply_answer(&low).await.unwrap();
    connected(&a, &b).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    let (va, vb) = (
        stats_a.video.as_ref().unwrap(),
        stats_b.video.as_ref().unwrap(),
    );
    println!("a: {va:?}");
    println!("b: {vb:?}");
    assert_eq!(va.send_resolution, (320, 240));
    assert_eq!(vb.receive_resolution, Some((320, 240)));
    assert!(
        (15.0..=21.0).contains(&vb.decode_fps),
        "b decodes {} fps",
        vb.decode_fps
    );
    assert_eq!(vb.decode_errors, 0);
    assert_eq!(va.receive_resolution, Some((640, 480)));
    assert!(va.decode_fps >= 25.0, "a decodes {} fps", va.decode_fps);
    // The pictures are whole: b reads a's stamps at the smaller size.
    let stamps = seen_by_b.lock().unwrap();
    assert!(stamps.iter().flatten().all(|s| s.identity == 1));
    let read = stamps.iter().flatten().count();
    assert!(read >= 40, "{read} stamps read");
    assert!(!seen_by_a.lock().unwrap().is_empty());
}

/// A peer that names level 1.2 in a re-offer is sent what that level decodes from then on, and
/// 640x480 again once a later re-offer names level 3.1 once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_renegotiated_is_followed_both_ways() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, _) = video_session(1, 1_000_000).await;
    let (b, _) = video_session(2, 1_000_000).await;
    connect(&a, &b).await;
    // B re-offers naming `profile_level_id`; A answers, and its pictures to B follow.
    let reoffer = |profile_level_id: &'static str| {
        let (a, b) = (&a, &b);
        async move {
            let offer = b.create_reoffer().await.unwrap();
            assert!(offer.contains("profile-level-id=42e01f"), "{offer}");
            let offer = offer.replace("profile-level-id=42e01f", profile_level_id);
            let answer = a.accept_reoffer(&offer).await.unwrap();
            b.apply_reanswer(&answer).await.unwrap();
            // Until both ends show the size of the level (or a bound a busy machine does not
            // come near): what they showed last.
            let want = if profile_level_id.ends_with("0c") {
                (320, 240)
            } else {
                (640, 480)
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let shown = (
                    a.stats().video.unwrap().send_resolution,
                    b.stats().video.unwrap().receive_resolution,
                );
                if shown == (want, Some(want)) || Instant::now() > deadline {
                    return shown;
                }
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let first = b.stats().video.unwrap().receive_resolution;
    let lowered = reoffer("profile-level-id=42e00c").await;
    let raised = reoffer("profile-level-id=42e01f").await;
    let stats_b = b.close().await;
    a.close().await;
    let vb = stats_b.video.unwrap();
    println!("b: {vb:?}");
    assert_eq!(first, Some((640, 480)));
    assert_eq!(lowered, ((320, 240), Some((320, 240))));
    assert_eq!(raised, ((640, 480), Some((640, 480))));
    assert_eq!(vb.decode_errors, 0);
}

/// `sdp` without payload type `pt` in its video section: the peer does not have that format.
fn without_video_format(sdp: &str, pt: u8) -> String {
    let pt = pt.to_string();
    let mut in_video = false;
    let mut lines = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
        }
        if in_video {
            if line.starts_with("m=video") {
                let kept: Vec<&str> = line.split(' ').filter(|field| *field != pt).collect();
                lines.push(kept.join(" "));
                continue;
            }
            let names_pt = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"].iter().any(|prefix| {
                line.strip_prefix(prefix)
                    .is_some_and(|rest| rest.split(' ').next() == Some(pt.as_str()))
            });
            if names_pt {
                continue;
            }
        }
        lines.push(line.to_owned());
    }
    lines.join("\r\n") + "\r\n"
}

/// A peer that offers H.264 only in packetization mode 0 gets video in mode 0 both ways: the
/// answer keeps that format alone, and every picture arrives whole and in order at 640x480
/// (the video thread's own test shows what mode 0 puts on the wire).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_takes_only_mode_0_gets_video_in_mode_0() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, seen_by_a) = video_session(1, 1_000_000).await;
    let (b, seen_by_b) = video_session(2, 1_000_000).await;
    let offer = a.create_offer().await.unwrap();
    assert!(offer.contains("packetization-mode=0"), "{offer}");
    let mode_0_only = without_video_format(&offer, H264_PAYLOAD_TYPE);
    assert!(
        !mode_0_only.contains("packetization-mode=1"),
        "{mode_0_only}"
    );
    let answer = b.accept_offer(&mode_0_only).await.unwrap();
    println!("answer:\n{answer}");
    assert!(answer.contains("packetization-mode=0"), "{answer}");
    assert!(!answer.contains("packetization-mode=1"), "{answer}");
    a.apply_answer(&answer).await.unwrap();
    connected(&a, &b).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    check_stamps("a", &seen_by_a.lock().unwrap(), 2);
    check_stamps("b", &seen_by_b.lock().unwrap(), 1);
    for (who, stats) in [("a", &stats_a), ("b", &stats_b)] {
        let video = stats.video.as_ref().expect("video stats");
        println!("{who}: {video:?}");
        assert_eq!(video.receive_resolution, Some((640, 480)), "{who}");
        assert_eq!(video.decode_errors, 0, "{who}");
        assert_eq!(video.payloads_refused, 0, "{who}");
    }
}

/// A conference leg whose peer offers H.264 only in packetization mode 0: the leg's mosaic,
/// encoded on the mosaic's thread and cut for mode 1 at first (as the host's engine makes a
/// WebRTC leg's), is cut for mode 0 once the call chose it, so the peer decodes every picture
/// it is sent whole: the host's picture (the mosaic leaves out the peer's own). What the peer
/// sends reaches the leg's tile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_leg_that_takes_only_mode_0_is_sent_the_mosaic_in_mode_0() {
    use callisto_media::conference::{ConferenceBridge, MixerConfig};
    use callisto_media::video::{TestPattern, VideoFormat};
    let _serial = ONE_AT_A_TIME.lock().await;
    let format = VideoFormat::new(640, 480, 30).unwrap();
    let bridge = ConferenceBridge::start(MixerConfig::default(), |_| {}).unwrap();
    let mosaic = bridge.mosaic(format).unwrap();
    mosaic.set_local(Box::new(TestPattern::new(format, 3).unwrap()));
    let (source, tile) = mosaic.join(7, format);
    let leg = session_with(
        Box::new(source.encoded(false, 1_000_000)),
        Box::new(tile),
        1_000_000,
    )
    .await;
    let (peer, seen_by_peer) = video_session(1, 1_000_000).await;
    let offer = peer.create_offer().await.unwrap();
    let answer = leg
        .accept_offer(&without_video_format(&offer, H264_PAYLOAD_TYPE))
        .await
        .unwrap();
    assert!(!answer.contains("packetization-mode=1"), "{answer}");
    peer.apply_answer(&answer).await.unwrap();
    connected(&peer, &leg).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pictures_in_mosaic = mosaic.pictures();
    let stats = peer.close().await;
    leg.close().await;
    let video = stats.video.expect("video stats");
    println!("peer: {video:?}");
    let stamps = seen_by_peer.lock().unwrap();
    let hosts = stamps.iter().flatten().filter(|s| s.identity == 3).count();
    assert!(
        hosts >= 40,
        "{hosts} of {} pictures show the host",
        stamps.len()
    );
    assert_eq!(hosts, stamps.len(), "every picture whole: {stamps:?}");
    assert_eq!(video.decode_errors, 0);
    assert_eq!(video.payloads_refused, 0);
    // The host's picture and the peer's tile.
    assert_eq!(pictures_in_mosaic, 2);
}

/// What a stranger sends to a WebRTC session's port: one datagram of each kind RFC 7983 tells
/// apart (STUN, DTLS, RTP, RTCP) and some that are none of them.
fn stranger_datagrams(round: u32) -> Vec<Vec<u8>> {
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&round.to_be_bytes().repeat(3));
    let dtls = [
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
        vec![0xab; 16],
    ]
    .concat();
    let mut rtp = vec![
        0x80,
        0x7d,
        0,
        round as u8,
        0,
        0,
        0,
        1,
        0xde,
        0xad,
        0xbe,
        0xef,
    ];
    rtp.extend_from_slice(&[0x7c, 0x85, 0x88, 0x84]);
    let rtcp = [
        vec![0x80, 200, 0, 6, 0xde, 0xad, 0xbe, 0xef],
        vec![0x55; 20],
    ]
    .concat();
    let junk = (0..(round % 1_400 + 1))
        .map(|i| (i * 31 + round) as u8)
        .collect();
    vec![stun, dtls, rtp, rtcp, junk, vec![], vec![0xff; 9]]
}

/// While a video call runs, a stranger at another loopback address and port sends STUN with
/// no credentials, a DTLS record, plain RTP and RTCP with a made-up SSRC, and junk to the
/// session's ICE port, two hundred rounds: the session keeps its selected pair, and every
/// picture still arrives whole and in order; closing takes no longer than usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_s_packets_are_dropped_and_the_call_goes_on() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, seen_by_a) = video_session(1, 1_000_000).await;
    let (b, seen_by_b) = video_session(2, 1_000_000).await;
    connect(&a, &b).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = b.stats();
    let (target, peer) = (before.local_addr.unwrap(), before.remote_addr.unwrap());
    // Connected, so that a closed port would show: the next send fails with "connection
    // refused".
    let stranger = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    stranger.connect(target).await.unwrap();
    for round in 0..200u32 {
        for datagram in stranger_datagrams(round) {
            stranger.send(&datagram).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = b.stats();
    assert_eq!(after.remote_addr, Some(peer), "b's selected pair moved");
    let started = Instant::now();
    let stats_b = b.close().await;
    let closing = started.elapsed();
    a.close().await;
    println!("b closed in {closing:?}: {:?}", stats_b.video);
    assert!(closing < Duration::from_secs(3), "{closing:?}");
    check_stamps("a", &seen_by_a.lock().unwrap(), 2);
    check_stamps("b", &seen_by_b.lock().unwrap(), 1);
    assert_eq!(stats_b.video.unwrap().decode_errors, 0);
}

/// A holds B (sendonly): B, who now only receives, encodes nothing while held — its frames
/// sent stay put — and resumes with a keyframe that A decodes, the pictures going on whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_peer_encodes_nothing_and_resumes_at_a_keyframe() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, seen_by_a) = video_session(1, 1_000_000).await;
    let (b, _) = video_session(2, 1_000_000).await;
    connect(&a, &b).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let hold = |on: bool| {
        let (a, b) = (&a, &b);
        async move {
            let offer = a.hold_offer(on).await.unwrap();
            let answer = b.accept_reoffer(&offer).await.unwrap();
            a.apply_reanswer(&answer).await.unwrap();
        }
    };
    hold(true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held_at = b.stats().video.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = b.stats().video.unwrap();
    assert_eq!(still.frames_sent, held_at.frames_sent, "b encodes on hold");
    let decoded_on_hold = a.stats().video.unwrap().frames_decoded;
    hold(false).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let stats_b = b.close().await;
    let stats_a = a.close().await;
    let (va, vb) = (stats_a.video.unwrap(), stats_b.video.unwrap());
    println!("a: {va:?}\nb: {vb:?}");
    // b's first picture after the resume is a keyframe. (Whether a asked for one is not
    // checked: a hold stops b's packets at once, so the picture under way can be cut short,
    // and a then asks — seen once in a loaded CI run.)
    assert!(
        vb.keyframes_sent > held_at.keyframes_sent,
        "the resume starts at a keyframe"
    );
    assert!(va.frames_decoded >= decoded_on_hold + 20, "{va:?}");
    assert_eq!(va.decode_errors, 0);
    let stamps = seen_by_a.lock().unwrap();
    assert!(stamps.iter().flatten().all(|s| s.identity == 2));
}

/// A holds B and B's answer is `inactive` (B holds A as well): A, whose stream is send-only,
/// sends to a peer that takes nothing, so A encodes nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_answered_inactive_stops_our_encoder_too() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (a, _) = video_session(1, 1_000_000).await;
    let (b, _) = video_session(2, 1_000_000).await;
    connect(&a, &b).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let offer = a.hold_offer(true).await.unwrap();
    let answer = b.accept_reoffer(&offer).await.unwrap();
    assert!(answer.contains("a=recvonly"), "{answer}");
    a.apply_reanswer(&answer.replace("a=recvonly", "a=inactive"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held_at = a.stats().video.unwrap().frames_sent;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = a.stats().video.unwrap().frames_sent;
    a.close().await;
    b.close().await;
    assert_eq!(still, held_at, "a encodes for a peer that takes nothing");
}
