//! A call that receives several video streams: a conference server (a bare `webrtc` peer
//! made here, on loopback) offers audio and three `m=video` sections — alice's stream
//! both ways, bob's and carol's send-only — each with its participant in `a=msid` and a test
//! pattern stamped with the participant's identity. Callisto answers with one sink per
//! stream and must decode each participant in the sink that carries the participant's name,
//! while its own picture reaches the server on the stream that goes both ways. Then dave
//! joins: the server offers again with a fourth stream, and Callisto's answer to the new
//! offer brings dave's pictures into a sink of their own. Then one participant leaves: a
//! third offer with that stream inactive finishes its sink. Then it comes back on the same
//! m-line (and track): a fourth offer sends it again, and a new sink shows it. The
//! participant of the first m-line (the call's own stream) leaves and comes back too, and the
//! server gives that m-line to someone else: the session tells of each change. A participant
//! that comes back on its m-line under a new SSRC, sending no keyframe until asked, is shown
//! only if the keyframe requests name the new SSRC.
//!
//! And the host's side of it: a host with a session per participant forwards alice's video to
//! bob without decoding or encoding it (a tap on alice's session, a forwarded track on bob's
//! announced with a new offer); bob's request for a keyframe reaches alice through the host.
//! When alice leaves and carol joins, carol's stream takes the m-line alice's had, and bob's
//! own new offers meanwhile are answered with the track inactive, then sending carol.

#[path = "support/multistream_server.rs"]
mod multistream_server;
#[path = "support/video_session.rs"]
mod video_session;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callisto_media::audio::{NullSink, ToneSource};
use callisto_media::video::{
    read_stamp, TestPattern, VideoError, VideoFormat, VideoFrame, VideoSink,
};
use callisto_media::webrtc::{
    ForwardedVideo, RemoteStreams, RemoteVideoStream, VideoConfig, WebRtcConfig, WebRtcMedia,
    WebRtcSession, WebRtcVideoMedia,
};
use multistream_server::{
    add_send_only, first_transceiver, labelled_track, send_pattern, send_pattern_with, server,
    server_offer, server_reoffer, server_track, Keyframes,
};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use tokio::sync::watch;
use video_session::{AUDIO, ONE_AT_A_TIME};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

/// The server's participants: their names (the `a=msid` stream ids) and identities.
const PARTICIPANTS: [(&str, u16); 3] = [("alice", 1), ("bob", 2), ("carol", 3)];
/// The participant who joins later.
const DAVE: (&str, u16) = ("dave", 4);
/// Callisto's own identity.
const OURS: u16 = 9;

/// What one sink saw: the identities read in its pictures, and whether it was finished;
/// for the call's own sink, what the session said of the call's own stream (ended: `None`;
/// sent again: its stream id).
#[derive(Debug, Default)]
struct Sightings {
    identities: Mutex<Vec<u16>>,
    finished: AtomicBool,
    first_changes: Mutex<Vec<Option<String>>>,
}

type Seen = Arc<Sightings>;

/// A sink that reads each picture's stamp into `seen`.
struct StampReader(Seen);

impl VideoSink for StampReader {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        if let Some(stamp) = read_stamp(frame) {
            self.0.identities.lock().unwrap().push(stamp.identity);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        self.0.finished.store(true, Ordering::Relaxed);
        Ok(())
    }
}

fn stamp_reader(seen: &Seen) -> Box<dyn VideoSink> {
    Box::new(StampReader(Arc::clone(seen)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stream_of_a_multistream_offer_is_decoded_into_its_own_sink_and_new_offers_add_and_end_streams(
) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let config = video_config();

    // The server: Opus and H.264, alice both ways, bob and carol send-only.
    let ours_received = Arc::new(AtomicU64::new(0));
    let (server, mut gathered) = server(&config, Arc::clone(&ours_received)).await;
    let mut senders = Vec::new();
    let mut send_only = BTreeMap::new();
    let mut alice_sender = None;
    for (i, (name, identity)) in PARTICIPANTS.into_iter().enumerate() {
        let ssrc = 0x5e_0001 + i as u32;
        let track = server_track(name, RtpCodecKind::Video, ssrc);
        let local = Arc::clone(&track) as Arc<dyn TrackLocal>;
        if i == 0 {
            alice_sender = Some(server.add_track(local).await.unwrap());
        } else {
            send_only.insert(name, add_send_only(&server, local).await);
        }
        senders.push((track, identity, ssrc));
    }
    let alice_sender = alice_sender.expect("alice sends on the first m-line");
    let offer = server_offer(&server, &mut gathered).await;
    assert_eq!(offer.matches("m=video").count(), 3, "{offer}");

    // Callisto: its own pattern, one stamp reader per stream.
    let (session, first, more) = callisto(OURS).await;
    let answer = session.accept_offer(&offer).await.unwrap();
    server
        .set_remote_description(RTCSessionDescription::answer(answer.clone()).unwrap())
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    // The stream of the first m-line (the call's own) starts last: it is the call's own
    // all the same, whatever arrives before it.
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, (track, identity, ssrc))| {
            let stopped = stopped.clone();
            tokio::spawn(async move {
                if i == 0 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                send_pattern(track, identity, ssrc, stopped).await;
            })
        })
        .collect();
    session.wait_connected().await.unwrap();

    // Every stream decodes for a while.
    let started = Instant::now();
    loop {
        let decoded = session.stats().more_video.len() == 2
            && session
                .stats()
                .more_video
                .iter()
                .all(|(_, video)| video.frames_decoded >= 30)
            && first.identities.lock().unwrap().len() >= 30;
        if decoded {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not every stream decoded: {:?}",
            session.stats().more_video
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Dave joins: a new offer with his stream, answered in the running session.
    let dave_ssrc = 0x5e_0004;
    let dave = server_track(DAVE.0, RtpCodecKind::Video, dave_ssrc);
    add_send_only(&server, Arc::clone(&dave) as Arc<dyn TrackLocal>).await;
    let (reoffer, reanswer) = server_reoffer(&server, &session).await;
    assert_eq!(reoffer.matches("m=video").count(), 4, "{reoffer}");
    let dave_sending = tokio::spawn(send_pattern(dave, DAVE.1, dave_ssrc, stopped.clone()));
    let joined = Instant::now();
    loop {
        let more_video = session.stats().more_video;
        if more_video.len() == 3 && more_video[2].1.frames_decoded >= 30 {
            break;
        }
        assert!(
            joined.elapsed() < Duration::from_secs(10),
            "dave's stream not decoded: {more_video:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let streams = session.remote_video_streams();

    // The participant of the first m-line (the call's own stream) leaves: the server offers
    // that m-line receive-only. The session says so, and no longer lists the stream.
    let first_sent = first_transceiver(&server, &alice_sender).await;
    first_sent
        .set_direction(RTCRtpTransceiverDirection::Recvonly)
        .await
        .unwrap();
    server_reoffer(&server, &session).await;
    let changes = || first.first_changes.lock().unwrap().clone();
    assert_eq!(changes(), [None], "alice left");
    let listed: Vec<String> = session
        .remote_video_streams()
        .into_iter()
        .map(|s| s.stream_id)
        .collect();
    assert!(!listed.iter().any(|s| s == "alice"), "{listed:?}");
    // She comes back on it, and her pictures come to the call's own sink again.
    let pictures = first.identities.lock().unwrap().len();
    first_sent
        .set_direction(RTCRtpTransceiverDirection::Sendrecv)
        .await
        .unwrap();
    server_reoffer(&server, &session).await;
    assert_eq!(changes(), [None, Some("alice".into())], "alice is back");
    let back = Instant::now();
    while first.identities.lock().unwrap().len() < pictures + 30 {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "alice's pictures after her return: {}",
            first.identities.lock().unwrap().len() - pictures
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The server gives the m-line to someone else: a new stream id on the same track (the
    // sender gets a track relabelled, as a Callisto host does; packets still go out through
    // the track first bound).
    let relabel = |stream_id: &str| {
        let alice = format!("alice-{}", RtpCodecKind::Video);
        let track = labelled_track(stream_id, &alice, RtpCodecKind::Video, 0x5e_0001);
        let sender = Arc::clone(&alice_sender);
        async move { sender.replace_track(track).await.unwrap() }
    };
    relabel("erin").await;
    server_reoffer(&server, &session).await;
    assert_eq!(
        changes(),
        [None, Some("alice".into()), Some("erin".into())],
        "erin on alice's m-line"
    );
    relabel("alice").await;
    server_reoffer(&server, &session).await;
    assert_eq!(
        changes().last(),
        Some(&Some("alice".into())),
        "alice's again"
    );

    // One of the send-only participants that came as a further stream leaves: the server
    // offers again with that stream inactive, and its sink is finished.
    let leaving = streams
        .iter()
        .skip(1)
        .map(|s| s.stream_id.clone())
        .find(|name| send_only.contains_key(name.as_str()))
        .expect("a send-only participant among the further streams");
    send_only[leaving.as_str()]
        .set_direction(RTCRtpTransceiverDirection::Inactive)
        .await
        .unwrap();
    server_reoffer(&server, &session).await;
    let still: Vec<String> = session
        .stats()
        .more_video
        .iter()
        .map(|(s, _)| s.stream_id.clone())
        .collect();
    assert_eq!(still.len(), 2, "{leaving} left, {still:?} stay");
    assert!(!still.contains(&leaving), "{leaving} left, {still:?} stay");
    assert!(
        more.lock().unwrap()[&leaving]
            .finished
            .load(Ordering::Relaxed),
        "{leaving}'s sink is finished"
    );
    let left = Arc::clone(&more.lock().unwrap()[&leaving]);

    // The participant comes back on the same m-line (the server's track, and so its track id,
    // unchanged): a fourth offer sends it again, and a new sink shows it.
    send_only[leaving.as_str()]
        .set_direction(RTCRtpTransceiverDirection::Sendonly)
        .await
        .unwrap();
    let (return_offer, _) = server_reoffer(&server, &session).await;
    assert_eq!(return_offer.matches("m=video").count(), 4, "{return_offer}");
    let back = sees(&session, &more, &leaving, Some(&left)).await;
    let after_return: Vec<String> = session
        .stats()
        .more_video
        .iter()
        .map(|(s, _)| s.stream_id.clone())
        .collect();
    stop.send_replace(true);
    dave_sending.await.unwrap();
    for task in sending {
        task.await.unwrap();
    }
    let stats = session.close().await;
    server.close().await.unwrap();

    println!("answer:\n{answer}");
    println!("streams: {streams:?}");
    for (stream, video) in &stats.more_video {
        println!(
            "{}: {} pictures, {} lost",
            stream.stream_id, video.frames_decoded, video.lost
        );
    }
    // The answer takes all three: one both ways, two receive-only.
    assert_eq!(answer.matches("m=video").count(), 3, "{answer}");
    assert_eq!(answer.matches("a=recvonly").count(), 2, "{answer}");
    // The answer to the new offer takes dave's stream too, and keeps the connection.
    assert_eq!(reanswer.matches("m=video").count(), 4, "{reanswer}");
    assert_eq!(reanswer.matches("a=recvonly").count(), 3, "{reanswer}");
    assert!(reanswer.contains("a=candidate"), "{reanswer}");
    // Each stream's pictures are its participant's, and the labels say whose.
    assert_eq!(streams.len(), 4, "{streams:?}");
    let names: BTreeMap<&str, u16> = PARTICIPANTS.into_iter().chain([DAVE]).collect();
    let first_name = streams[0].stream_id.as_str();
    assert_eq!(
        first_name, PARTICIPANTS[0].0,
        "the first m-line's stream is the call's"
    );
    let identities = |seen: &Seen| {
        let seen = seen.identities.lock().unwrap();
        let mut kinds: Vec<u16> = seen.clone();
        kinds.dedup();
        (seen.len(), kinds)
    };
    let (count, kinds) = identities(&first);
    assert!(count >= 30, "{first_name}: {count} pictures");
    assert_eq!(
        kinds,
        [names[first_name]],
        "the call's own stream is {first_name}'s"
    );
    // The participant that came back is shown again in a sink of its own, under its name.
    assert_eq!(after_return.len(), 3, "{leaving} is back: {after_return:?}");
    assert!(after_return.contains(&leaving), "{after_return:?}");
    let (count, kinds) = identities(&back);
    assert!(count >= 30, "{leaving} back: {count} pictures");
    assert_eq!(kinds, [names[leaving.as_str()]], "{leaving}'s stream, back");
    assert!(left.finished.load(Ordering::Relaxed));
    let more = more.lock().unwrap();
    assert_eq!(more.len(), 3, "{:?}", more.keys());
    for (name, seen) in more.iter() {
        let (count, kinds) = identities(seen);
        assert!(count >= 30, "{name}: {count} pictures");
        assert_eq!(kinds, [names[name.as_str()]], "{name}'s stream");
    }
    let all: Vec<&str> = streams.iter().map(|s| s.stream_id.as_str()).collect();
    for (name, _) in PARTICIPANTS.into_iter().chain([DAVE]) {
        assert!(all.contains(&name), "{name} missing from {all:?}");
    }
    // Our picture went out on the stream that goes both ways.
    assert!(
        ours_received.load(Ordering::Relaxed) > 30,
        "the server received {} of our video packets",
        ours_received.load(Ordering::Relaxed)
    );
}

/// Loopback, with 320x240 video at 30 fps.
fn video_config() -> WebRtcConfig {
    WebRtcConfig {
        video: Some(VideoConfig {
            width: 320,
            height: 240,
            fps: 30,
            max_bitrate: 500_000,
        }),
        ..WebRtcConfig::loopback()
    }
}

/// A stamp reader for each further stream, by the name it came under; what the session says
/// of the call's own stream goes to `first`.
struct StreamReaders {
    first: Seen,
    more: Arc<Mutex<BTreeMap<String, Seen>>>,
}

impl RemoteStreams for StreamReaders {
    fn sink(&mut self, known: &[RemoteVideoStream]) -> Box<dyn VideoSink> {
        let seen = Seen::default();
        let name = known
            .last()
            .map(|s| s.stream_id.clone())
            .unwrap_or_default();
        self.more.lock().unwrap().insert(name, Arc::clone(&seen));
        stamp_reader(&seen)
    }

    fn first_changed(&mut self, first: Option<&RemoteVideoStream>) {
        let change = first.map(|stream| stream.stream_id.clone());
        self.first.first_changes.lock().unwrap().push(change);
    }
}

/// A Callisto session at 320x240 sending the pattern stamped `identity`: its own stream's
/// stamps, and each further stream's by the name it came under.
async fn callisto(identity: u16) -> (WebRtcSession, Seen, Arc<Mutex<BTreeMap<String, Seen>>>) {
    let first: Seen = Arc::default();
    let more: Arc<Mutex<BTreeMap<String, Seen>>> = Arc::default();
    let more_sinks = Arc::clone(&more);
    let format = VideoFormat::new(320, 240, 30).unwrap();
    let media = WebRtcMedia {
        audio_source: Box::new(ToneSource::with_dbfs(AUDIO, 440.0, -12.0)),
        audio_sink: Box::new(NullSink::new(AUDIO)),
        video: Some(WebRtcVideoMedia {
            source: Box::new(TestPattern::new(format, identity).unwrap()),
            sink: stamp_reader(&first),
            more_streams: Some(Box::new(StreamReaders {
                first: Arc::clone(&first),
                more: more_sinks,
            })),
        }),
    };
    let config = video_config();
    let session = WebRtcSession::new(config, media).await.unwrap();
    (session, first, more)
}

/// Connects `caller` to `callee`.
async fn connect(caller: &WebRtcSession, callee: &WebRtcSession) {
    let offer = caller.create_offer().await.unwrap();
    let answer = callee.accept_offer(&offer).await.unwrap();
    caller.apply_answer(&answer).await.unwrap();
    let (a, b) = tokio::join!(caller.wait_connected(), callee.wait_connected());
    a.unwrap();
    b.unwrap();
}

/// `host` forwards a stream labelled `label` whose keyframe requests are counted in
/// `requests` and go to `sender` (the host's session that receives it).
async fn forward_from(
    host: &WebRtcSession,
    label: &str,
    sender: &Arc<WebRtcSession>,
    requests: &Arc<AtomicU64>,
) -> ForwardedVideo {
    let sender = Arc::downgrade(sender);
    let requests = Arc::clone(requests);
    host.forward_video(label, move || {
        requests.fetch_add(1, Ordering::Relaxed);
        if let Some(sender) = sender.upgrade() {
            sender.request_keyframe();
        }
    })
    .await
    .unwrap()
}

/// Waits up to 10 s for 30 pictures in the sink `session` made for `name`'s stream (a sink
/// other than `replacing`, when given).
async fn sees(
    session: &WebRtcSession,
    sinks: &Mutex<BTreeMap<String, Seen>>,
    name: &str,
    replacing: Option<&Seen>,
) -> Seen {
    let started = Instant::now();
    loop {
        let seen = sinks.lock().unwrap().get(name).cloned();
        let new = seen.filter(|seen| replacing.is_none_or(|old| !Arc::ptr_eq(seen, old)));
        if let Some(seen) = new.filter(|seen| seen.identities.lock().unwrap().len() >= 30) {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} is not seen: {:?}",
            session.stats().more_video
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The direction attribute of each video m-line of `sdp`, in order.
fn video_directions(sdp: &str) -> Vec<&str> {
    sdp.split("\nm=")
        .filter(|section| section.starts_with("video"))
        .filter_map(|section| {
            section.lines().find_map(|line| {
                let attribute = line.trim().strip_prefix("a=")?;
                ["sendrecv", "sendonly", "recvonly", "inactive"]
                    .into_iter()
                    .find(|d| attribute == *d)
            })
        })
        .collect()
}

/// A new offer from `offerer` to `answerer` in a running call, answered and applied: the
/// offer and the answer.
async fn renegotiate(offerer: &WebRtcSession, answerer: &WebRtcSession) -> (String, String) {
    let offer = offerer.create_reoffer().await.unwrap();
    let answer = answerer.accept_reoffer(&offer).await.unwrap();
    offerer.apply_reanswer(&answer).await.unwrap();
    (offer, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_forwards_one_participants_video_to_another_without_re_encoding() {
    let _serial = ONE_AT_A_TIME.lock().await;
    const ALICE: u16 = 1;
    const BOB: u16 = 2;
    const HOST: u16 = 7;
    let (alice, _, _) = callisto(ALICE).await;
    let (bob, bob_sees_host, bob_sees_more) = callisto(BOB).await;
    let (to_alice, _, _) = callisto(HOST).await;
    let (to_bob, _, _) = callisto(HOST).await;
    let to_alice = Arc::new(to_alice);
    connect(&alice, &to_alice).await;
    connect(&bob, &to_bob).await;

    // Alice's stream, forwarded to bob; his keyframe requests go to alice.
    let keyframe_requests = Arc::new(AtomicU64::new(0));
    let forwarded = forward_from(&to_bob, "alice", &to_alice, &keyframe_requests).await;
    assert_eq!(forwarded.label(), "alice");
    // What alice's tap feeds: the stream the host forwards to bob at the time.
    let feeding: Arc<Mutex<Option<ForwardedVideo>>> = Arc::new(Mutex::new(Some(forwarded)));
    let feed = Arc::clone(&feeding);
    to_alice.tap_video(Arc::new(move |packet| {
        if let Some(forwarded) = feed.lock().unwrap().as_ref() {
            forwarded.send(packet);
        }
    }));
    let (reoffer, _) = renegotiate(&to_bob, &bob).await;
    assert_eq!(reoffer.matches("m=video").count(), 2, "{reoffer}");
    assert!(reoffer.contains("a=msid:alice "), "{reoffer}");

    // Alice's encoder makes a keyframe every 10 s by itself: bob sees her at once only
    // because his request for one went through the host.
    let started = Instant::now();
    let alices = sees(&bob, &bob_sees_more, "alice", None).await;
    let alice_seen_after = started.elapsed();
    assert!(
        alice_seen_after < Duration::from_secs(5),
        "{alice_seen_after:?}"
    );

    // Alice leaves: her track at bob's turns inactive and bob's sink for her is finished.
    let leaving = feeding.lock().unwrap().take().unwrap();
    to_bob.stop_forwarding(&leaving).await;
    let (leave_offer, _) = renegotiate(&to_bob, &bob).await;
    assert_eq!(
        leave_offer.matches("a=inactive").count(),
        1,
        "{leave_offer}"
    );
    assert!(
        bob.stats().more_video.is_empty(),
        "{:?}",
        bob.stats().more_video
    );
    assert!(
        alices.finished.load(Ordering::Relaxed),
        "alice's sink at bob"
    );
    // Bob offers while the track is retired: the host answers it inactive.
    let (_, retired_answer) = renegotiate(&bob, &to_bob).await;
    assert_eq!(
        video_directions(&retired_answer),
        ["sendrecv", "inactive"],
        "{retired_answer}"
    );

    // Carol joins (here alice's pictures under carol's name): the host reuses the m-line
    // alice left, and bob shows carol in a new sink.
    let requests_before = keyframe_requests.load(Ordering::Relaxed);
    let carol = forward_from(&to_bob, "carol", &to_alice, &keyframe_requests).await;
    *feeding.lock().unwrap() = Some(carol);
    let (join_offer, _) = renegotiate(&to_bob, &bob).await;
    assert_eq!(join_offer.matches("m=video").count(), 2, "{join_offer}");
    assert!(join_offer.contains("a=msid:carol "), "{join_offer}");
    let joined = Instant::now();
    let carols = sees(&bob, &bob_sees_more, "carol", None).await;
    let carol_seen_after = joined.elapsed();
    // Bob offers anew (a session refresh, say): the host's answer goes on sending carol.
    let (_, refresh_answer) = renegotiate(&bob, &to_bob).await;
    assert_eq!(
        video_directions(&refresh_answer),
        ["sendrecv", "sendonly"],
        "{refresh_answer}"
    );
    assert!(refresh_answer.contains("a=msid:carol "), "{refresh_answer}");
    let before_refresh = carols.identities.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_refresh = carols.identities.lock().unwrap().len();
    let bob_streams = bob.remote_video_streams();
    let requests_for_carol = keyframe_requests.load(Ordering::Relaxed) - requests_before;

    let host_stats = to_alice.stats();
    let forwarding_stats = to_bob.stats();
    for session in [alice, bob] {
        session.close().await;
    }
    let to_alice = Arc::into_inner(to_alice).expect("only the test holds the session");
    to_alice.close().await;
    to_bob.close().await;

    let identities = |seen: &Seen| {
        let mut kinds = seen.identities.lock().unwrap().clone();
        kinds.dedup();
        kinds
    };
    assert_eq!(identities(&alices), [ALICE], "alice's stream at bob");
    assert_eq!(
        identities(&carols),
        [ALICE],
        "the stream bob sees as carol's"
    );
    let names: Vec<&str> = bob_streams.iter().map(|s| s.stream_id.as_str()).collect();
    assert_eq!(names.len(), 2, "the host's own and carol's: {names:?}");
    assert_eq!(names[1], "carol", "{names:?}");
    assert_eq!(
        identities(&bob_sees_host),
        [HOST],
        "the host's own stream at bob"
    );
    assert!(keyframe_requests.load(Ordering::Relaxed) >= 1);
    assert!(
        after_refresh >= before_refresh + 5,
        "carol after bob's offer: {before_refresh} then {after_refresh} pictures"
    );
    // Bob's requests about the reused track reach the stream it carries now: he sees carol
    // long before alice's encoder would make a keyframe by itself.
    assert!(
        carol_seen_after < Duration::from_secs(5),
        "{carol_seen_after:?}"
    );
    assert!(
        requests_for_carol >= 1,
        "{requests_for_carol} requests for carol"
    );
    // The host forwarded: nothing of alice's was encoded on bob's session, which sends only
    // the host's own picture at its own rate.
    let host_video = host_stats.video.expect("video from alice");
    assert!(host_video.keyframe_requests_sent >= 1, "{host_video:?}");
    let sent = forwarding_stats.video.expect("the host's video to bob");
    println!(
        "alice at bob after {alice_seen_after:?}; the host's session with bob sent {} frames \
         of its own",
        sent.frames_sent
    );
}

/// Waits (up to 10 s) until `seen`'s sink has shown `pictures` pictures.
async fn shown(seen: &Seen, pictures: usize) -> bool {
    for _ in 0..100 {
        if seen.identities.lock().unwrap().len() >= pictures {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_to_a_restated_offer_tells_which_of_the_peers_streams_it_sends() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (alice, alice_sees, _) = callisto(1).await;
    let (bob, _, _) = callisto(2).await;
    connect(&alice, &bob).await;
    assert!(shown(&alice_sees, 10).await, "bob's pictures reach alice");
    let changes = || alice_sees.first_changes.lock().unwrap().clone();
    // Bob stops sending (an inactive hold): alice's answer ends his stream. Then he withdraws
    // the offer (its re-INVITE was cancelled), and alice's restated offer is answered by his
    // session as it was: the answer sends his stream again, and alice follows it.
    let hold = bob
        .hold_offer(true)
        .await
        .unwrap()
        .replace("a=sendonly", "a=inactive");
    alice.accept_reoffer(&hold).await.unwrap();
    assert_eq!(changes(), [None], "bob's stream ended");
    bob.cancel_reoffer().await.unwrap();
    let offer = alice.restate_offer().await.unwrap();
    let answer = bob.accept_reoffer(&offer).await.unwrap();
    alice.apply_reanswer(&answer).await.unwrap();
    let back = changes();
    assert_eq!(back.len(), 2, "{back:?}");
    assert!(back[1].is_some(), "bob's stream sent again: {back:?}");
    // Alice's own hold, answered receive-only, pauses bob's stream: it does not end it.
    for hold in [true, false] {
        let offer = alice.hold_offer(hold).await.unwrap();
        let answer = bob.accept_reoffer(&offer).await.unwrap();
        alice.apply_reanswer(&answer).await.unwrap();
    }
    assert_eq!(changes(), back, "a hold and its end change nothing");
    alice.close().await;
    bob.close().await;
}

/// A participant comes back on the m-line it had, under its track id but a new SSRC (a server
/// that gives a returning participant a new sender there): the library takes the stream on the
/// track it opened for that m-line before. The stream sends no keyframe by itself, so it is
/// seen only if Callisto's keyframe requests name the new SSRC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sent_again_under_a_new_ssrc_is_asked_for_keyframes_under_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    const ALICE_SSRC: u32 = 0x5e_0001;
    const BOB_SSRC: u32 = 0x5e_0002;
    const NEW_SSRC: u32 = 0x5e_0b0b;
    let (server, mut gathered) = server(&video_config(), Arc::default()).await;
    let alice = server_track("alice", RtpCodecKind::Video, ALICE_SSRC);
    server
        .add_track(Arc::clone(&alice) as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    let bob = server_track("bob", RtpCodecKind::Video, BOB_SSRC);
    let bob_sent = add_send_only(&server, Arc::clone(&bob) as Arc<dyn TrackLocal>).await;
    let offer = server_offer(&server, &mut gathered).await;
    let (session, _, more) = callisto(OURS).await;
    let answer = session.accept_offer(&offer).await.unwrap();
    server
        .set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let (stop_bob, bob_stopped) = watch::channel(false);
    let alice_sending = tokio::spawn(send_pattern(alice, 1, ALICE_SSRC, stopped.clone()));
    let bob_sending = tokio::spawn(send_pattern(Arc::clone(&bob), 2, BOB_SSRC, bob_stopped));
    session.wait_connected().await.unwrap();
    let before = sees(&session, &more, "bob", None).await;

    // bob leaves, and comes back under a new SSRC: the sender's encoding and its track's
    // coding (by which the library finds the track feedback is about) both change. Packets
    // and feedback still go through the track first bound.
    stop_bob.send_replace(true);
    bob_sending.await.unwrap();
    bob_sent
        .set_direction(RTCRtpTransceiverDirection::Inactive)
        .await
        .unwrap();
    server_reoffer(&server, &session).await;
    assert!(before.finished.load(Ordering::Relaxed), "bob left");
    bob_sent
        .set_direction(RTCRtpTransceiverDirection::Sendonly)
        .await
        .unwrap();
    let sender = bob_sent.sender().await.unwrap().expect("bob's sender");
    let renewed = server_track("bob", RtpCodecKind::Video, NEW_SSRC);
    sender.replace_track(renewed).await.unwrap();
    let mut parameters = sender.get_parameters().await.unwrap();
    parameters.encodings[0].rtp_coding_parameters.ssrc = Some(NEW_SSRC);
    sender.set_parameters(parameters, None).await.unwrap();
    let (offer, _) = server_reoffer(&server, &session).await;
    assert!(offer.contains(&format!("a=ssrc:{NEW_SSRC} ")), "{offer}");
    let requests = Arc::new(AtomicU64::new(0));
    let keyframes = Keyframes::OnRequest(Arc::clone(&requests));
    let bob_back = tokio::spawn(send_pattern_with(bob, 2, NEW_SSRC, stopped, keyframes));
    let back = sees(&session, &more, "bob", Some(&before)).await;
    stop.send_replace(true);
    alice_sending.await.unwrap();
    bob_back.await.unwrap();
    session.close().await;
    server.close().await.unwrap();

    assert!(requests.load(Ordering::Relaxed) > 0, "no keyframe request");
    let identities = back.identities.lock().unwrap();
    assert!(identities.iter().all(|id| *id == 2), "{identities:?}");
}
