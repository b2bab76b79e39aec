//! Callisto in a conference that a bridge hosts on the classic path: the bridge — a scripted
//! user agent here, whose video comes from classic video sessions of Callisto's media library —
//! offers the call's own video and one further `m=video` per other participant, labelled after
//! them. `callisto answer` receives each further stream on a port of its own and records it
//! beside the call's recording; a re-INVITE that adds one starts it on a new port, one that
//! drops one ends that stream, and the rest go on; a hold by the bridge pauses them all, and
//! they go on when it resumes.
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

/// The bridge's description: PCMU audio on `audio` (`sendrecv`, or `inactive` while the
/// bridge holds the call), then an H.264 m-line per `(port, label, direction)`.
fn bridge_sdp(version: u32, audio: (u16, &str), videos: &[(u16, &str, &str)]) -> String {
    let (audio, audio_direction) = audio;
    let mut sdp = format!(
        "v=0\r\no=bridge 77 {version} IN IP4 127.0.0.1\r\ns=conference\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=audio {audio} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={audio_direction}\r\n"
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
        level: None,
        nack: false,
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
fn a_bridges_participants_arrive_as_streams_of_their_own_as_they_join_and_leave() -> TestResult {
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
    let audio_line = (audio.local_addr()?.port(), "sendrecv");
    let mut sockets: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let ports: Vec<u16> = sockets
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    let mut bridge = ScriptedUas::bind("bridge", port)?;
    let host = (ports[0], "host", "sendrecv");
    let offer = bridge_sdp(1, audio_line, &[host, (ports[1], "alice", "sendonly")]);
    let call = bridge.place_call(&format!("sip:bob@127.0.0.1:{port}"), &offer, WAIT)?;
    bob.expect("answered", WAIT)?;
    let answered = video_lines(call.answer.body())?;
    assert_eq!(
        answered.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
        ["sendrecv", "recvonly"],
        "{}",
        call.answer.body()
    );
    assert!(answered.iter().all(|(port, _)| *port != 0), "{answered:?}");
    // The host's picture on the call's own stream, alice's on hers.
    let carol_socket = sockets.pop().ok_or("socket")?;
    let mut streams: Vec<ClassicVideoSession> = sockets
        .into_iter()
        .zip(&answered)
        .zip([10, 11])
        .map(|((socket, (to, _)), identity)| bridge_stream(socket, *to, identity))
        .collect();
    thread::sleep(Duration::from_secs(2));

    // carol joins on a new m-line: a port of her own, the others keep theirs.
    let joined = [
        host,
        (ports[1], "alice", "sendonly"),
        (ports[2], "carol", "sendonly"),
    ];
    let reply = bridge.reinvite(&call, &bridge_sdp(2, audio_line, &joined), WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    let with_carol = video_lines(reply.body())?;
    assert_eq!(with_carol.len(), 3, "{}", reply.body());
    assert_eq!(with_carol[..2], answered[..], "{}", reply.body());
    assert_eq!(with_carol[2].1, "recvonly");
    assert!(
        ![0, answered[0].0, answered[1].0].contains(&with_carol[2].0),
        "{with_carol:?}"
    );
    streams.push(bridge_stream(carol_socket, with_carol[2].0, 12));
    thread::sleep(Duration::from_secs(2));

    // The bridge holds the call (everything inactive), then resumes it: the further streams
    // pause and go on, each on its own tile and recording (none starts afresh).
    let held = [
        (ports[0], "host", "inactive"),
        (ports[1], "alice", "inactive"),
        (ports[2], "carol", "inactive"),
    ];
    let hold = bridge_sdp(3, (audio_line.0, "inactive"), &held);
    let reply = bridge.reinvite(&call, &hold, WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    let ports_held: Vec<u16> = video_lines(reply.body())?.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        ports_held,
        with_carol.iter().map(|(p, _)| *p).collect::<Vec<_>>()
    );
    thread::sleep(Duration::from_millis(500));
    let reply = bridge.reinvite(&call, &bridge_sdp(4, audio_line, &joined), WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    assert_eq!(video_lines(reply.body())?, with_carol, "{}", reply.body());
    let carol_recording = dir.path().join("bob.carol.y4m");
    let carol_before_resume = std::fs::metadata(&carol_recording)?.len();
    thread::sleep(Duration::from_secs(1));

    // alice leaves: her m-line is disabled, the others stay as they were.
    let left = [
        host,
        (0, "alice", "sendonly"),
        (ports[2], "carol", "sendonly"),
    ];
    let reply = bridge.reinvite(&call, &bridge_sdp(5, audio_line, &left), WAIT)?;
    let sent_before_leaving = streams[1].stats().frames_sent;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    let ports_now: Vec<u16> = video_lines(reply.body())?.iter().map(|(p, _)| *p).collect();
    assert_eq!(ports_now, [answered[0].0, 0, with_carol[2].0]);
    // The bridge goes on sending alice's pictures for a while: nobody shows them.
    thread::sleep(Duration::from_millis(1_500));
    let alice_sent = streams[1].stop();
    thread::sleep(Duration::from_millis(1_000));

    let reply = bridge.request_in_dialog(&call, "BYE", None, WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    let ended = bob.expect("call_ended", WAIT)?;
    let host_stats = streams[0].stop();
    streams[2].stop();
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());

    // The summary lists the further streams still received when the call ended.
    let listed = &ended["video"]["streams"];
    let names: Vec<&str> = listed
        .as_array()
        .ok_or("streams")?
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["carol"], "{ended}");
    assert!(listed[0]["frames_decoded"].as_u64() > Some(60), "{ended}");

    // Each recording holds its sender alone: the host on the call's own, alice and carol
    // beside it; alice's stopped when she left, though her pictures kept coming.
    let (own, _) = recorded(&recording)?;
    assert_eq!(own, [10]);
    let (alice, alice_frames) = recorded(&dir.path().join("bob.alice.y4m"))?;
    assert_eq!(alice, [11]);
    let (carol, carol_frames) = recorded(&carol_recording)?;
    assert_eq!(carol, [12]);
    // Her pictures came back on it after the resume: at least a second's worth (320x240 I420
    // frames of 115,200 bytes and a 6-byte header).
    let after_resume = std::fs::metadata(&carol_recording)?.len() - carol_before_resume;
    assert!(
        after_resume >= 30 * 115_206,
        "{after_resume} bytes of carol's recording after the resume"
    );
    // The hold started no stream afresh: no second recording for anyone.
    let mut recordings: Vec<String> = std::fs::read_dir(dir.path())?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".y4m"))
        .collect();
    recordings.sort();
    assert_eq!(recordings, ["bob.alice.y4m", "bob.carol.y4m", "bob.y4m"]);
    println!(
        "alice: {alice_frames} pictures shown, {sent_before_leaving} sent before she left and {} \
         in all; carol: {carol_frames}",
        alice_sent.frames_sent
    );
    assert!(
        alice_frames >= 60 && carol_frames >= 60,
        "{alice_frames}, {carol_frames}"
    );
    // What was on its way when the answer went out may still be shown (a few pictures).
    assert!(
        alice_frames <= sent_before_leaving as usize + 10,
        "alice's stream ended when she left ({alice_frames} shown, {sent_before_leaving} sent \
         before)"
    );
    assert!(
        alice_sent.frames_sent > sent_before_leaving + 10,
        "{alice_sent:?}"
    );
    // And bob's own picture reached the host.
    assert!(host_stats.frames_decoded >= 60, "{host_stats:?}");
    Ok(())
}

/// Each video m-line of an SDP body as (port, direction).
fn video_lines(body: &str) -> Result<Vec<(u16, String)>, Box<dyn Error>> {
    Ok(parse(body)?
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .map(|m| {
            let direction = m.direction().map(|d| d.to_string()).unwrap_or_default();
            (m.port, direction)
        })
        .collect())
}
