//! A conference host's forwarded stream on the classic path, on loopback: a sender's
//! pictures, received by the host (a receive-only stream, tapped), go out again unchanged
//! through a `ClassicForwarder` over SDES-SRTP to a receiver that decodes them. The host asks
//! a new source for a keyframe and forwards from it on; the receiver's own keyframe request
//! reaches the sender through the host; when the stream passes to another sender the
//! receiver sees that one's pictures next, each run of frames unbroken.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use callisto_media::session::{
    ClassicForwarder, ClassicVideoConfig, ClassicVideoSession, KeyframeSource, MediaDirection,
    SrtpKeys,
};
use callisto_media::video::h264::PacketizationMode;
use callisto_media::video::{read_stamp, CallbackSink, NullVideoSink, TestPattern, VideoFormat};
use callisto_media::webrtc::VideoTap;

#[path = "support/srtp_pair.rs"]
mod support_srtp;

const MODE: PacketizationMode = PacketizationMode::NonInterleaved;

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// A stream on `socket` to `peer` (payload type 96, or 97 for the forwarded leg).
fn config(
    socket: UdpSocket,
    peer: &UdpSocket,
    payload_type: u8,
    direction: MediaDirection,
    srtp: Option<SrtpKeys>,
) -> ClassicVideoConfig {
    ClassicVideoConfig {
        rtp_socket: socket,
        rtcp_socket: None,
        remote_rtp: peer.local_addr().unwrap(),
        remote_rtcp: None,
        payload_type,
        packetization: MODE,
        max_bitrate: 800_000,
        srtp,
        direction,
        cname: format!("forward-{payload_type}@callisto.test"),
        level: None,
        nack: false,
    }
}

/// A sender of test pattern `identity` and the host's receive-only stream of it, whose
/// packets go to `tap`; returns both and what asks the sender for a keyframe.
fn sender(identity: u16, tap: VideoTap) -> (ClassicVideoSession, ClassicVideoSession) {
    let (ours, hosts) = (bind(), bind());
    let format = VideoFormat::new(320, 240, 30).unwrap();
    let sending = ClassicVideoSession::start(
        config(
            ours.try_clone().unwrap(),
            &hosts,
            96,
            MediaDirection::SENDONLY,
            None,
        ),
        Box::new(TestPattern::new(format, identity).unwrap()),
        Box::new(NullVideoSink::default()),
    )
    .unwrap();
    let host = ClassicVideoSession::receive_only(
        config(hosts, &ours, 96, MediaDirection::RECVONLY, None),
        Box::new(NullVideoSink::default()),
    )
    .unwrap();
    host.tap_video(tap);
    (sending, host)
}

#[test]
fn a_forwarded_stream_reaches_the_receiver_and_its_keyframe_requests_the_sender() {
    let (host_keys, receiver_keys) = support_srtp::srtp_pair(0xf0d);
    let (host_socket, receiver_socket) = (bind(), bind());
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&stamps);
    let mut receiver = ClassicVideoSession::receive_only(
        config(
            receiver_socket.try_clone().unwrap(),
            &host_socket,
            97,
            MediaDirection::RECVONLY,
            Some(receiver_keys),
        ),
        Box::new(CallbackSink::new(move |frame| {
            seen.lock().unwrap().push(read_stamp(frame));
        })),
    )
    .unwrap();

    // Which sender's packets the host forwards now (none at first).
    let forwarding = Arc::new(AtomicU16::new(0));
    let outlet: Arc<Mutex<Option<callisto_media::session::ForwardOutlet>>> = Arc::default();
    let tap_for = |identity: u16| -> VideoTap {
        let (forwarding, outlet) = (Arc::clone(&forwarding), Arc::clone(&outlet));
        Arc::new(move |packet| {
            if forwarding.load(Ordering::Acquire) == identity {
                if let Some(outlet) = outlet.lock().unwrap().as_ref() {
                    outlet.send(packet);
                }
            }
        })
    };
    let (mut seven, mut host_seven) = sender(7, tap_for(7));
    let (mut nine, mut host_nine) = sender(9, tap_for(9));
    let requests = Arc::new(AtomicUsize::new(0));
    let asks = |session: &ClassicVideoSession| -> KeyframeSource {
        let (requests, ask) = (Arc::clone(&requests), session.keyframe_requester());
        Arc::new(move || {
            requests.fetch_add(1, Ordering::AcqRel);
            ask();
        })
    };
    let mut forwarder = ClassicForwarder::start(
        config(
            host_socket,
            &receiver_socket,
            97,
            MediaDirection::SENDONLY,
            Some(host_keys),
        ),
        asks(&host_seven),
    )
    .unwrap();
    *outlet.lock().unwrap() = Some(forwarder.outlet());
    // The first packets forwarded are mid-stream: they wait for the keyframe the host asks
    // the sender for.
    thread::sleep(Duration::from_millis(700));
    forwarding.store(7, Ordering::Release);
    thread::sleep(Duration::from_millis(1_200));
    let asked = requests.load(Ordering::Acquire);
    assert!(asked >= 1, "the host asked the new source for a keyframe");
    // Its keyframe came: the host asks no more.
    thread::sleep(Duration::from_millis(600));
    assert_eq!(requests.load(Ordering::Acquire), asked);
    // The receiver's own request (a PLI) goes through the host to the sender.
    receiver.request_keyframe();
    thread::sleep(Duration::from_millis(300));
    let relayed = requests.load(Ordering::Acquire) - asked;
    assert!(
        relayed >= 1,
        "the receiver's keyframe request reached the sender"
    );
    // The stream passes to the other sender.
    forwarder.set_source(asks(&host_nine));
    forwarding.store(9, Ordering::Release);
    thread::sleep(Duration::from_millis(1_500));
    forwarder.stop();
    let sent = forwarder.packets_sent();
    receiver.stop();
    for session in [&mut seven, &mut host_seven, &mut nine, &mut host_nine] {
        session.stop();
    }

    let read: Vec<(u16, u32)> = stamps
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|s| (s.identity, s.frame))
        .collect();
    let switch = read
        .iter()
        .position(|(who, _)| *who == 9)
        .unwrap_or(read.len());
    let (first, then) = read.split_at(switch);
    println!(
        "{sent} packets forwarded; {} pictures of 7, {} of 9; {asked} requests by the host, \
         {relayed} relayed",
        first.len(),
        then.len()
    );
    assert!(first.len() >= 20, "{read:?}");
    assert!(then.len() >= 20, "{read:?}");
    assert!(first.iter().all(|(who, _)| *who == 7), "{read:?}");
    assert!(then.iter().all(|(who, _)| *who == 9), "{read:?}");
    for run in [first, then] {
        for pair in run.windows(2) {
            assert_eq!(pair[1].1, pair[0].1 + 1, "consecutive frames: {pair:?}");
        }
    }
}
