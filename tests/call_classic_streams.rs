//! Callisto in a conference that a bridge hosts on the classic path: the bridge — a scripted
//! user agent here, whose video comes from classic video sessions of Callisto's media library —
//! offers the call's own video and one further `m=video` per other participant, labelled after
//! them. `callisto answer` receives each further stream on a port of its own and records it
//! beside the call's recording; a re-INVITE that drops one ends that stream, the rest go on.
//! Every picture's stamp says who sent it. All on loopback, no proxy.

mod support;

use std::error::Error;
use std::net::UdpSocket;
use std::path::Path;
use std::thread;
use std::time::Duration;

use callisto_media::session::{ClassicVideoConfig, ClassicVideoSession, MediaDirection};
use callisto_media::video::h264::PacketizationMode;
use callisto_media::video::{NullVideoSink, TestPattern, VideoFormat};
use callisto_signaling::sdp::{parse, MediaKind};
use support::callisto::Callisto;
use support::sip_uas::ScriptedUas;
use support::video::stamp_run;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// The bridge's description: PCMU audio on `audio`, then an H.264 m-line per
/// `(port, label, direction)`.
fn bridge_sdp(version: u32, audio: u16, videos: &[(u16, &str, &str)]) -> String {
    let mut sdp = format!(
        "v=0\r\no=bridge 77 {version} IN IP4 127.0.0.1\r\ns=conference\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=audio {audio} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    for (port, label, direction) in videos {
        sdp.push_str(&format!(
            "m=video {port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n\
             a=rtcp-mux\r\na=label:{label}\r\na={direction}\r\n"
        ));
    }
    sdp
}

/// One of the bridge's video streams: the test pattern stamped `identity`, from `socket` to
/// `to` (a port of the answerer on 127.0.0.1).
fn bridge_stream(socket: UdpSocket, to: u16, identity: u16) -> ClassicVideoSession {
    let format = VideoFormat::new(320, 240, 30).expect("format");
    let config = ClassicVideoConfig {
        rtp_socket: socket,
        rtcp_socket: None,
        remote_rtp: ([127, 0, 0, 1], to).into(),
        remote_rtcp: None,
        payload_type: 96,
        packetization: PacketizationMode::NonInterleaved,
        max_bitrate: 500_000,
        srtp: None,
        direction: MediaDirection::SENDRECV,
        cname: format!("bridge-{identity}@callisto.test"),
    };
    ClassicVideoSession::start(
        config,
        Box::new(TestPattern::new(format, identity).expect("pattern")),
        Box::new(NullVideoSink::new()),
    )
    .expect("bridge stream starts")
}

/// What a recording shows: its identities, and how many stamped pictures.
fn recorded(path: &Path) -> Result<(Vec<u16>, usize), Box<dyn Error>> {
    let run = stamp_run(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((run.identities, run.stamped))
}

#[test]
fn a_bridges_participants_arrive_as_streams_of_their_own_until_one_leaves() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = support::free_port();
    let recording = dir.path().join("bob.y4m");
    let mut bob = Callisto::answer(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &[
            "--codecs",
            "pcmu",
            "--srtp",
            "off",
            "--count",
            "1",
            "--video",
            "pattern",
            "--video-size",
            "320x240",
            "--pattern-id",
            "2",
            "--record-video",
            recording.to_str().ok_or("path")?,
        ],
    )?;
    bob.expect("listening", WAIT)?;

    let audio = UdpSocket::bind("127.0.0.1:0")?;
    let video: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let ports: Vec<u16> = video
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    let audio_port = audio.local_addr()?.port();
    let mut bridge = ScriptedUas::bind("bridge", port)?;
    let offer = bridge_sdp(
        1,
        audio_port,
        &[
            (ports[0], "host", "sendrecv"),
            (ports[1], "alice", "sendonly"),
            (ports[2], "carol", "sendonly"),
        ],
    );
    let call = bridge.place_call(&format!("sip:bob@127.0.0.1:{port}"), &offer, WAIT)?;
    bob.expect("answered", WAIT)?;
    let answer = parse(call.answer.body())?;
    let answered: Vec<(u16, String)> = answer
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .map(|m| {
            let direction = m.direction().map(|d| d.to_string()).unwrap_or_default();
            (m.port, direction)
        })
        .collect();
    assert_eq!(answered.len(), 3, "{}", call.answer.body());
    assert!(answered.iter().all(|(port, _)| *port != 0), "{answered:?}");
    assert_eq!(
        answered.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
        ["sendrecv", "recvonly", "recvonly"]
    );

    // The host's picture on the call's own stream, alice's and carol's on theirs.
    let mut streams: Vec<ClassicVideoSession> = video
        .into_iter()
        .zip(&answered)
        .zip([10, 11, 12])
        .map(|((socket, (to, _)), identity)| bridge_stream(socket, *to, identity))
        .collect();
    thread::sleep(Duration::from_secs(3));

    // carol leaves: her m-line is disabled, the others stay as they were.
    let reoffer = bridge_sdp(
        2,
        audio_port,
        &[
            (ports[0], "host", "sendrecv"),
            (ports[1], "alice", "sendonly"),
            (0, "carol", "sendonly"),
        ],
    );
    let reply = bridge.reinvite(&call, &reoffer, WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    let reanswer = parse(reply.body())?;
    let video_ports: Vec<u16> = reanswer
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .map(|m| m.port)
        .collect();
    assert_eq!(
        video_ports,
        [answered[0].0, answered[1].0, 0],
        "each stream kept its port; carol's is gone"
    );
    let mut carol = streams.pop().ok_or("carol")?;
    thread::sleep(Duration::from_millis(1_500));
    let carol_sent = carol.stop();
    thread::sleep(Duration::from_millis(1_000));

    let reply = bridge.request_in_dialog(&call, "BYE", None, WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    let ended = bob.expect("call_ended", WAIT)?;
    let host_stats = streams[0].stop();
    for stream in &mut streams[1..] {
        stream.stop();
    }
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());

    // The summary lists the further streams still received when the call ended.
    let listed = &ended["video"]["streams"];
    let names: Vec<&str> = listed
        .as_array()
        .ok_or("streams")?
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["alice"], "{ended}");
    assert!(listed[0]["frames_decoded"].as_u64() > Some(60), "{ended}");

    // Each recording holds its sender alone: the host on the call's own, alice and carol
    // beside it; carol's stopped when she left, well before the call ended.
    let (own, _) = recorded(&recording)?;
    assert_eq!(own, [10]);
    let (alice, alice_frames) = recorded(&dir.path().join("bob.alice.y4m"))?;
    assert_eq!(alice, [11]);
    let (carol, carol_frames) = recorded(&dir.path().join("bob.carol.y4m"))?;
    assert_eq!(carol, [12]);
    println!(
        "alice: {alice_frames} pictures, carol: {carol_frames} (she sent {})",
        carol_sent.frames_sent
    );
    assert!(carol_frames >= 60, "carol: {carol_frames} pictures");
    assert!(
        alice_frames >= carol_frames + 45,
        "alice ({alice_frames}) went on after carol ({carol_frames}) left"
    );
    // And bob's own picture reached the host.
    assert!(host_stats.frames_decoded >= 60, "{host_stats:?}");
    Ok(())
}
