//! Two classic video sessions on loopback (every socket on 127.0.0.1): the stamped test pattern
//! crosses both ways over plain RTP and SDES-SRTP, in packetization modes 1 and 0, verified by
//! the stamps read back from the decoded pictures; a keyframe request reaches the sender; a
//! renegotiated H.264 level is followed.

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callisto_media::session::{
    ClassicVideoConfig, ClassicVideoSession, MediaDirection, SrtpKeys, VideoUpdate,
};
use callisto_media::video::h264::{H264Level, PacketizationMode};
use callisto_media::video::{read_stamp, CallbackSink, PatternStamp, TestPattern, VideoFormat};

#[path = "support/srtp_pair.rs"]
mod support_srtp;

type Stamps = Arc<Mutex<Vec<Option<PatternStamp>>>>;

/// One at a time: two video calls at once on a shared 2-core machine measure the machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn srtp_pair() -> (SrtpKeys, SrtpKeys) {
    support_srtp::srtp_pair(0x71de0)
}

/// A sendrecv stream on `socket` to `peer`, payload type 96, CNAME after `identity`.
fn config(
    socket: UdpSocket,
    peer: &UdpSocket,
    identity: u16,
    mode: PacketizationMode,
    srtp: Option<SrtpKeys>,
) -> ClassicVideoConfig {
    ClassicVideoConfig {
        rtp_socket: socket,
        rtcp_socket: None,
        remote_rtp: peer.local_addr().unwrap(),
        remote_rtcp: None,
        payload_type: 96,
        packetization: mode,
        max_bitrate: 1_000_000,
        srtp,
        direction: MediaDirection::SENDRECV,
        cname: format!("video-{identity}@callisto.test"),
        level: None,
        nack: false,
    }
}

fn session(
    socket: UdpSocket,
    peer: &UdpSocket,
    identity: u16,
    mode: PacketizationMode,
    srtp: Option<SrtpKeys>,
) -> (ClassicVideoSession, Stamps) {
    let stamps: Stamps = Arc::default();
    let seen = Arc::clone(&stamps);
    let format = VideoFormat::new(640, 480, 30).unwrap();
    let config = config(socket, peer, identity, mode, srtp);
    let session = ClassicVideoSession::start(
        config,
        Box::new(TestPattern::new(format, identity).unwrap()),
        Box::new(CallbackSink::new(move |frame| {
            seen.lock().unwrap().push(read_stamp(frame));
        })),
    )
    .unwrap();
    (session, stamps)
}

fn check_stamps(who: &str, stamps: &[Option<PatternStamp>], peer: u16) {
    let read: Vec<PatternStamp> = stamps
        .iter()
        .map(|s| s.expect("a readable stamp"))
        .collect();
    assert!(read.len() >= 10, "{who}: only {} pictures", read.len());
    assert!(read.iter().all(|s| s.identity == peer), "{who}: {read:?}");
    for pair in read.windows(2) {
        assert_eq!(pair[1].frame, pair[0].frame + 1, "{who}: {pair:?}");
    }
    println!(
        "{who}: {} pictures from frame {}",
        read.len(),
        read[0].frame
    );
}

fn call(mode: PacketizationMode, srtp: bool) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let a_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a_keys, b_keys) = if srtp {
        let (a, b) = srtp_pair();
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let (mut a, seen_by_a) = session(a_socket.try_clone().unwrap(), &b_socket, 1, mode, a_keys);
    let (mut b, seen_by_b) = session(b_socket, &a_socket, 2, mode, b_keys);
    thread::sleep(Duration::from_millis(2_500));
    b.request_keyframe();
    // a answers with an IDR at its next picture. Two busy cores can hold both threads back
    // for a few hundred milliseconds, so the test waits for it (at most 5 s), then lets b
    // decode it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.stats().keyframes_sent < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    let a_stats = a.stop();
    let b_stats = b.stop();
    check_stamps("a", &seen_by_a.lock().unwrap(), 2);
    check_stamps("b", &seen_by_b.lock().unwrap(), 1);
    for (who, stats) in [("a", &a_stats), ("b", &b_stats)] {
        println!("{who}: {stats:?}");
        assert_eq!(stats.codec, "H264");
        assert_eq!(stats.receive_resolution, Some((640, 480)));
        assert_eq!(stats.lost, 0, "{who}");
        assert_eq!(stats.decode_errors, 0, "{who}");
    }
    assert!(a_stats.keyframe_requests_received >= 1, "b's PLI reached a");
    assert!(
        a_stats.keyframes_sent >= 2,
        "a answered the PLI with an IDR"
    );
    assert_eq!(a.transport_counters().discarded, 0);
}

#[test]
fn pattern_crosses_both_ways_in_mode_1() {
    call(PacketizationMode::NonInterleaved, false);
}

#[test]
fn pattern_crosses_both_ways_in_mode_0_over_srtp() {
    call(PacketizationMode::SingleNalUnit, true);
}

#[test]
fn latching_follows_the_peer_and_hold_stops_sending() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let a_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // a is told a wrong address for b: it must find b where b's packets come from.
    let nowhere = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut a, seen_by_a) = session(
        a_socket.try_clone().unwrap(),
        &nowhere,
        1,
        PacketizationMode::NonInterleaved,
        None,
    );
    let (mut b, seen_by_b) = session(
        b_socket,
        &a_socket,
        2,
        PacketizationMode::NonInterleaved,
        None,
    );
    thread::sleep(Duration::from_millis(1_500));
    assert!(a.transport_counters().latches >= 1);
    assert!(!seen_by_b.lock().unwrap().is_empty(), "a latched onto b");
    // b holds a: b stops sending, a stops receiving pictures.
    b.update(VideoUpdate {
        remote_rtp: a_socket.local_addr().unwrap(),
        remote_rtcp: None,
        direction: MediaDirection::RECVONLY,
        srtp: None,
        nack: false,
        level: None,
    })
    .unwrap();
    thread::sleep(Duration::from_millis(300));
    let before = seen_by_a.lock().unwrap().len();
    thread::sleep(Duration::from_millis(700));
    let after = seen_by_a.lock().unwrap().len();
    assert!(before > 0);
    assert_eq!(before, after, "no pictures while held");
    a.stop();
    b.stop();
}

#[test]
fn a_receive_only_stream_decodes_what_comes_and_sends_no_pictures() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sender_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mode = PacketizationMode::NonInterleaved;
    let (mut sender, seen_by_sender) = session(
        sender_socket.try_clone().unwrap(),
        &receiver_socket,
        7,
        mode,
        None,
    );
    let stamps: Stamps = Arc::default();
    let seen = Arc::clone(&stamps);
    // Told sendrecv, as a conference's further stream may be: it still sends no pictures.
    let mut receiver = ClassicVideoSession::receive_only(
        config(receiver_socket, &sender_socket, 8, mode, None),
        Box::new(CallbackSink::new(move |frame| {
            seen.lock().unwrap().push(read_stamp(frame));
        })),
    )
    .unwrap();
    thread::sleep(Duration::from_millis(1_500));
    let received = receiver.stop();
    sender.stop();
    check_stamps("receiver", &stamps.lock().unwrap(), 7);
    assert_eq!(received.frames_sent, 0);
    assert!(seen_by_sender.lock().unwrap().is_empty());
}

/// A renegotiation that names level 1.2 (as a desk phone's re-INVITE may) makes a send what
/// that level decodes, 320x240 within its 384 kbit/s, from its next picture on; one that
/// names none brings 640x480 and the bitrate back.
#[test]
fn a_renegotiated_level_is_followed() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let a_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mode = PacketizationMode::NonInterleaved;
    let b_addr = b_socket.local_addr().unwrap();
    let (mut a, _) = session(a_socket.try_clone().unwrap(), &b_socket, 1, mode, None);
    let (mut b, _) = session(b_socket, &a_socket, 2, mode, None);
    // Updated to `level`, until both ends show `size` and a's bitrate is within `kbps` (or a
    // bound a busy machine does not come near): what they showed last.
    let level = |level: Option<H264Level>, size: (u32, u32), kbps: std::ops::Range<f64>| {
        a.update(VideoUpdate {
            remote_rtp: b_addr,
            remote_rtcp: None,
            direction: MediaDirection::SENDRECV,
            srtp: None,
            nack: false,
            level,
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            thread::sleep(Duration::from_millis(100));
            let (sent, received) = (a.stats(), b.stats());
            let shown = (
                sent.send_resolution,
                received.receive_resolution,
                sent.send_bitrate_bps / 1000.0,
            );
            let there = shown.0 == size && shown.1 == Some(size) && kbps.contains(&shown.2);
            if there || Instant::now() > deadline {
                return shown;
            }
        }
    };
    thread::sleep(Duration::from_millis(500));
    let first = b.stats().receive_resolution;
    let (lowered_sent, lowered_received, lowered_kbps) =
        level(Some(H264Level::L1_2), (320, 240), 0.0..400.0);
    let (raised_sent, raised_received, raised_kbps) = level(None, (640, 480), 420.0..2_000.0);
    a.stop();
    let stats_b = b.stop();
    println!("lowered: {lowered_kbps:.0} kbit/s; raised: {raised_kbps:.0} kbit/s");
    assert_eq!(first, Some((640, 480)));
    assert_eq!(
        (lowered_sent, lowered_received),
        ((320, 240), Some((320, 240)))
    );
    assert!(
        lowered_kbps < 400.0,
        "{lowered_kbps} kbit/s within level 1.2"
    );
    assert_eq!(
        (raised_sent, raised_received),
        ((640, 480), Some((640, 480)))
    );
    assert!(raised_kbps >= 420.0, "{raised_kbps} kbit/s after the raise");
    assert_eq!(stats_b.decode_errors, 0);
}
