//! The video thread's tests: scaling, a replaced source, a paused shared feed, keyframes
//! asked for and made across a lossy link, payloads that are not H.264, packetization mode 0,
//! hold.

use super::*;
use crate::video::{read_stamp, TestPattern, VideoFormat, VideoFrame};

#[test]
fn frames_are_scaled_by_halves_to_the_advised_size() {
    let mut pattern = TestPattern::new(VideoFormat::new(640, 480, 30).unwrap(), 5).unwrap();
    let frame = pattern.next_frame().unwrap().unwrap();
    for (w, h) in [(640, 480), (320, 240), (160, 120), (426, 240)] {
        let scaled = scale_to(frame.clone(), w, h).unwrap();
        assert_eq!((scaled.width(), scaled.height()), (w, h));
        assert_eq!(scaled.timestamp(), frame.timestamp());
    }
    // Halving twice is what one 4:1 resize would give, near enough to read the stamp.
    let quarter = scale_to(frame, 320, 240).unwrap();
    assert_eq!(read_stamp(&quarter).map(|s| s.identity), Some(5));
}

/// Collects what the thread sends.
struct Captured(Arc<Mutex<Vec<RtpPacket>>>);

impl VideoOutput for Captured {
    fn send_rtp(&mut self, packet: RtpPacket) {
        lock(&self.0).push(packet);
    }
    fn send_pli(&mut self) {}
    fn send_nack(&mut self, _sequences: Vec<u16>) {}
}

#[test]
fn a_replaced_source_is_sent_from_a_keyframe_with_timestamps_going_on() {
    let pattern = |identity, fps| {
        let format = VideoFormat::new(160, 120, fps).unwrap();
        Box::new(TestPattern::new(format, identity).unwrap()) as Box<dyn VideoSource>
    };
    let switch = crate::video::VideoSwitch::new();
    let sink = Box::new(crate::video::NullVideoSink::new());
    let (source, sink) = switch.install(pattern(1, 30), sink);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let config = thread_config();
    let channels = VideoChannels {
        inbox: std::sync::mpsc::channel(),
        output: Box::new(Captured(sent.clone())),
    };
    let mut thread =
        VideoThread::start(config, Some(Box::new(source)), Box::new(sink), channels).unwrap();
    thread::sleep(Duration::from_millis(300));
    // The new source's pictures are of another rate and start their clock at zero.
    drop(switch.replace(pattern(2, 15), None).unwrap());
    thread::sleep(Duration::from_millis(400));
    thread.stop();

    let seen = decoded(&lock(&sent));
    let switched = seen.iter().position(|(_, id, _)| *id == Some(2));
    let switched = switched.expect("the new source is sent");
    assert!(switched >= 3, "{seen:?}");
    assert!(seen[..switched].iter().all(|(_, id, _)| *id == Some(1)));
    assert!(seen[switched..].iter().all(|(_, id, _)| *id == Some(2)));
    assert!(seen[switched].2, "the new source starts at a keyframe");
    for pair in seen.windows(2) {
        let step = pair[1].0.wrapping_sub(pair[0].0);
        assert!(
            (1_000..=12_000).contains(&step),
            "timestamps go on by a frame's time: {seen:?}"
        );
    }
}

/// A thread sending `source` as `config` says into a capture of its RTP packets, its peer's
/// pictures (none) going nowhere.
fn sending_thread(
    config: VideoThreadConfig,
    source: Box<dyn VideoSource>,
) -> (VideoThread, Arc<Mutex<Vec<RtpPacket>>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let channels = VideoChannels {
        inbox: std::sync::mpsc::channel(),
        output: Box::new(Captured(sent.clone())),
    };
    let sink = Box::new(crate::video::NullVideoSink::new());
    let thread = VideoThread::start(config, Some(source), sink, channels).unwrap();
    (thread, sent)
}

/// In packetization mode 0 the thread sends a 640x480 picture at 1 Mbps (keyframes of tens of
/// kilobytes) as single NAL unit packets only — no STAP-A (24) or FU-A (28) — each within the
/// MTU, and every picture decodes whole.
#[test]
fn mode_0_sends_single_nal_units_that_fit_a_packet() {
    let format = VideoFormat::new(640, 480, 30).unwrap();
    let source = Box::new(TestPattern::new(format, 3).unwrap());
    let config = VideoThreadConfig {
        max_bitrate: 1_000_000,
        packetization: PacketizationMode::SingleNalUnit,
        ..thread_config()
    };
    let (mut thread, sent) = sending_thread(config, source);
    thread::sleep(Duration::from_millis(1_000));
    thread.stop();

    let packets = lock(&sent);
    let types: Vec<u8> = packets.iter().map(|p| p.payload[0] & 0x1f).collect();
    assert!(
        types.iter().all(|t| (1..=23).contains(t)),
        "NAL unit types sent: {types:?}"
    );
    let largest = packets.iter().map(|p| p.payload.len()).max().unwrap_or(0);
    assert!(largest <= RTP_PAYLOAD_MTU, "{largest}");
    let seen = decoded(&packets);
    assert!(seen.len() >= 10, "{} pictures", seen.len());
    assert!(seen[0].2, "the first picture is a keyframe");
    // A keyframe needs several slices in this mode.
    assert!(packets.len() > 2 * seen.len(), "{} packets", packets.len());
    assert!(seen.iter().all(|(_, id, _)| *id == Some(3)), "{seen:?}");
}

/// A mode 0 call merged into a conference: the mosaic's units it is given instead, cut for
/// mode 1 at first, are cut for mode 0 from then on, so every packet is a single NAL unit
/// within the MTU and the new pictures (the host's, identity 2) decode.
#[test]
fn a_mode_0_call_given_a_shared_feed_asks_for_units_cut_for_mode_0() {
    use crate::conference::{ConferenceBridge, MixerConfig};
    let format = VideoFormat::new(640, 480, 30).unwrap();
    let bridge = ConferenceBridge::start(MixerConfig::default(), |_| {}).unwrap();
    let mosaic = bridge.mosaic(format).unwrap();
    mosaic.set_local(Box::new(TestPattern::new(format, 2).unwrap()));
    let (leg, _tile) = mosaic.join(7, format);
    let leg = leg.encoded(false, 1_000_000);
    let feed = leg.encoded_feed().expect("a feed");
    let switch = crate::video::VideoSwitch::new();
    let sink = Box::new(crate::video::NullVideoSink::new());
    let (source, _sink) = switch.install(Box::new(TestPattern::new(format, 1).unwrap()), sink);
    let config = VideoThreadConfig {
        max_bitrate: 1_000_000,
        packetization: PacketizationMode::SingleNalUnit,
        ..thread_config()
    };
    let (mut thread, sent) = sending_thread(config, Box::new(source));
    thread::sleep(Duration::from_millis(300));
    drop(switch.replace(Box::new(leg), None).unwrap());
    // Ten of the host's pictures (or a bound a busy machine does not come near).
    let hosts = |packets: &[RtpPacket]| {
        decoded(packets)
            .iter()
            .filter(|(_, id, _)| *id == Some(2))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hosts(&lock(&sent)) < 10 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    thread.stop();

    assert!(feed.single_nal());
    let packets = lock(&sent);
    let types: Vec<u8> = packets.iter().map(|p| p.payload[0] & 0x1f).collect();
    assert!(types.iter().all(|t| (1..=23).contains(t)), "{types:?}");
    let largest = packets.iter().map(|p| p.payload.len()).max().unwrap_or(0);
    assert!(largest <= RTP_PAYLOAD_MTU, "{largest}");
    assert!(hosts(&packets) >= 10, "{:?}", decoded(&packets));
}

/// On hold (the direction does not send) nothing is encoded or sent, though the source's
/// frames are still read at their rate; on resume the first picture sent is a keyframe, and
/// it is the source's picture of that moment.
#[test]
fn on_hold_nothing_is_encoded_and_the_resume_starts_at_a_keyframe() {
    let format = VideoFormat::new(160, 120, 30).unwrap();
    let source = Box::new(TestPattern::new(format, 4).unwrap());
    let sending = Arc::new(AtomicBool::new(true));
    let config = VideoThreadConfig {
        sending: Arc::clone(&sending),
        ..thread_config()
    };
    let (mut thread, sent) = sending_thread(config, source);
    thread::sleep(Duration::from_millis(300));
    sending.store(false, Ordering::Release);
    thread::sleep(Duration::from_millis(200));
    let before_hold = lock(&sent).len();
    let frames_before = thread.stats().frames_sent;
    thread::sleep(Duration::from_millis(600));
    assert_eq!(lock(&sent).len(), before_hold, "nothing sent on hold");
    assert_eq!(thread.stats().frames_sent, frames_before, "nothing encoded");
    sending.store(true, Ordering::Release);
    thread::sleep(Duration::from_millis(300));
    thread.stop();

    let packets = lock(&sent);
    let held = decoded(&packets[..before_hold]);
    let resumed = decoded(&packets[before_hold..]);
    assert!(
        !held.is_empty() && !resumed.is_empty(),
        "{held:?} {resumed:?}"
    );
    assert!(resumed[0].2, "the resume starts at a keyframe: {resumed:?}");
    // At least the 600 ms of the source's frames that went by unsent: the RTP clock went on
    // by as much (more on a busy machine, where the thread may skip ahead).
    let gap = resumed[0].0.wrapping_sub(held[held.len() - 1].0);
    assert!(
        (54_000..=270_000).contains(&gap),
        "{gap} ticks across the hold"
    );
}

/// A source of units encoded elsewhere, paused at will.
struct FeedSource {
    feed: EncodedFeed,
    paused: Arc<AtomicBool>,
}

impl VideoSource for FeedSource {
    fn format(&self) -> VideoFormat {
        self.feed.format()
    }
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, crate::video::VideoError> {
        Ok(None)
    }
    fn encoded_feed(&self) -> Option<EncodedFeed> {
        Some(self.feed.clone())
    }
    fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
}

/// Decodes what was sent: each picture's RTP timestamp, stamp identity (`None` for a
/// picture without a stamp, which must then be black) and whether it was a keyframe.
fn decoded(packets: &[RtpPacket]) -> Vec<(u32, Option<u16>, bool)> {
    let mut depacketizer = H264Depacketizer::new(DepacketizerConfig::default());
    let mut decoder = H264Decoder::new().unwrap();
    let mut seen = Vec::new();
    for packet in packets {
        let header = &packet.header;
        depacketizer
            .handle_packet(
                header.sequence_number,
                header.timestamp,
                header.marker,
                &packet.payload,
            )
            .unwrap();
        while let Some(DepacketizerOutput::AccessUnit(unit)) = depacketizer.poll_output() {
            let frame = decoder
                .decode_nalus(&unit.nalus, Duration::ZERO)
                .unwrap()
                .expect("every unit decodes");
            let identity = read_stamp(&frame).map(|s| s.identity);
            if identity.is_none() {
                let mean =
                    frame.y().iter().map(|&y| u64::from(y)).sum::<u64>() / frame.y().len() as u64;
                assert!(mean < 24, "a picture without a stamp is black: {mean}");
            }
            seen.push((unit.timestamp, identity, unit.is_keyframe));
        }
    }
    seen
}

fn thread_config() -> VideoThreadConfig {
    VideoThreadConfig {
        max_bitrate: 200_000,
        ssrc: 7,
        payload_type: 96,
        packetization: PacketizationMode::NonInterleaved,
        connected: Arc::new(AtomicBool::new(true)),
        sending: Arc::new(AtomicBool::new(true)),
        controller: None,
        nack: false,
        level: None,
    }
}

#[test]
fn a_paused_feed_sends_black_keyframes_then_the_feed_again() {
    let format = VideoFormat::new(160, 120, 30).unwrap();
    let feed = EncodedFeed::new(format, false, 200_000);
    let paused = Arc::new(AtomicBool::new(true));
    let source = FeedSource {
        feed: feed.clone(),
        paused: paused.clone(),
    };
    let sent = Arc::new(Mutex::new(Vec::new()));
    let channels = VideoChannels {
        inbox: std::sync::mpsc::channel(),
        output: Box::new(Captured(sent.clone())),
    };
    let sink = Box::new(crate::video::NullVideoSink::new());
    let mut thread =
        VideoThread::start(thread_config(), Some(Box::new(source)), sink, channels).unwrap();
    thread::sleep(Duration::from_millis(1_200));
    assert!(
        !feed.is_active(),
        "a paused sender takes nothing from its feed"
    );
    paused.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !feed.is_active() {
        assert!(Instant::now() < deadline, "the sender takes its feed again");
        thread::sleep(Duration::from_millis(5));
    }
    let mut encoder =
        new_encoder(format, 200_000, PacketizationMode::NonInterleaved, None).unwrap();
    let mut pattern = TestPattern::new(format, 3).unwrap();
    for _ in 0..8 {
        let picture = pattern.next_frame().unwrap().unwrap();
        if let Some(unit) = encoder.encode(&picture).unwrap() {
            feed.shared.push(false, &Arc::new(unit));
        }
        thread::sleep(Duration::from_millis(33));
    }
    thread::sleep(Duration::from_millis(50));
    thread.stop();

    let seen = decoded(&lock(&sent));
    let black = seen.iter().take_while(|(_, id, _)| id.is_none()).count();
    // One at once and one a second later (unless the machine is slow).
    assert!((1..=2).contains(&black), "black keyframes: {seen:?}");
    assert_eq!(seen.len(), black + 8, "then the feed's units: {seen:?}");
    assert!(
        seen[..black].iter().all(|(_, _, key)| *key),
        "every black picture is a keyframe"
    );
    assert!(seen[black..].iter().all(|(_, id, _)| *id == Some(3)));
    for pair in seen.windows(2) {
        let step = pair[1].0.wrapping_sub(pair[0].0);
        assert!(
            (1_000..=100_000).contains(&step),
            "timestamps go on: {seen:?}"
        );
    }
}

#[test]
fn a_shared_feed_is_asked_for_the_picture_size_and_rate_its_controller_advises() {
    use crate::congestion::CongestionConfig;
    let format = VideoFormat::new(320, 240, 30).unwrap();
    // A start at the floor: the controller advises a smaller picture than the feed's, at
    // half its rate.
    let controller = SharedController::new(CongestionConfig {
        min_bps: 20_000,
        max_bps: 500_000,
        start_bps: 20_000,
        max_width: 320,
        max_height: 240,
        max_fps: 30,
    });
    let advice = controller.lock().layer_advice();
    assert!(advice.width < 320 && advice.fps < 30, "{advice:?}");
    let feed = EncodedFeed::new(format, false, 500_000);
    let source = FeedSource {
        feed: feed.clone(),
        paused: Arc::new(AtomicBool::new(false)),
    };
    let sent = Arc::new(Mutex::new(Vec::new()));
    let channels = VideoChannels {
        inbox: std::sync::mpsc::channel(),
        output: Box::new(Captured(sent.clone())),
    };
    let config = VideoThreadConfig {
        controller: Some(controller),
        ..thread_config()
    };
    let sink = Box::new(crate::video::NullVideoSink::new());
    let mut thread = VideoThread::start(config, Some(Box::new(source)), sink, channels).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !feed.is_active() {
        assert!(Instant::now() < deadline, "the sender takes its feed");
        thread::sleep(Duration::from_millis(5));
    }
    let mut encoder =
        new_encoder(format, 300_000, PacketizationMode::NonInterleaved, None).unwrap();
    let mut pattern = TestPattern::new(format, 3).unwrap();
    let picture = pattern.next_frame().unwrap().unwrap();
    let unit = encoder.encode(&picture).unwrap().expect("a keyframe");
    feed.shared.push(false, &Arc::new(unit));
    while lock(&sent).is_empty() {
        assert!(Instant::now() < deadline, "the unit is sent");
        thread::sleep(Duration::from_millis(5));
    }
    let stats = thread.stop();
    assert_eq!(feed.size(), (advice.width, advice.height));
    assert_eq!(feed.rate(), advice.fps);
    assert_eq!(stats.send_resolution, (advice.width, advice.height));
}

/// Carries a sender's RTP to a receiver's inbox, losing what `lose` picks.
struct LossyLink {
    to: Sender<VideoInput>,
    lose: Box<dyn FnMut(&RtpPacket) -> bool + Send>,
}

impl VideoOutput for LossyLink {
    fn send_rtp(&mut self, packet: RtpPacket) {
        if !(self.lose)(&packet) {
            let _ = self.to.send(VideoInput::Rtp {
                at: Instant::now(),
                packet,
            });
        }
    }
    fn send_pli(&mut self) {}
    fn send_nack(&mut self, _sequences: Vec<u16>) {}
}

/// Carries a receiver's PLIs to the sender's inbox, losing the first `lose` of them.
struct Feedback {
    to: Sender<VideoInput>,
    lose: usize,
}

impl VideoOutput for Feedback {
    fn send_rtp(&mut self, _packet: RtpPacket) {}
    fn send_pli(&mut self) {
        if self.lose > 0 {
            self.lose -= 1;
            return;
        }
        let _ = self.to.send(VideoInput::KeyframeRequested);
    }
    fn send_nack(&mut self, _sequences: Vec<u16>) {}
}

/// Records the frame number of each picture's stamp.
struct Stamps(Arc<Mutex<Vec<Option<u32>>>>);

impl VideoSink for Stamps {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), crate::video::VideoError> {
        lock(&self.0).push(read_stamp(frame).map(|s| s.frame));
        Ok(())
    }
}

/// Whether an RTP payload starts a keyframe (an SPS or IDR slice, alone or first in a STAP-A,
/// or an FU-A of an IDR slice).
fn starts_keyframe(payload: &[u8]) -> bool {
    let kind = match payload.first().map(|b| b & 0x1f) {
        Some(24) => payload.get(3).map(|b| b & 0x1f),
        Some(28) => payload.get(1).map(|b| b & 0x1f),
        other => other,
    };
    matches!(kind, Some(5 | 7))
}

/// A video thread that only receives, sending its feedback to `output`: its inbox, the
/// thread, and the stamps of the pictures it decodes.
/// What [`stamped_receiver`] gives: the receiver's inbox, the thread, and its stamps.
type StampedReceiver = (
    std::sync::mpsc::Sender<VideoInput>,
    VideoThread,
    Arc<Mutex<Vec<Option<u32>>>>,
);

fn stamped_receiver(output: Box<dyn VideoOutput>) -> StampedReceiver {
    let (to_receiver, inbox) = std::sync::mpsc::channel();
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let receiver = VideoThread::start(
        thread_config(),
        None,
        Box::new(Stamps(stamps.clone())),
        VideoChannels {
            inbox: (to_receiver.clone(), inbox),
            output,
        },
    )
    .unwrap();
    (to_receiver, receiver, stamps)
}

/// A 160x120 pattern sent until 80 frames are out across a link that loses the RTP `lose`
/// picks and the first `lost_plis` PLIs; what the sender and receiver counted and the frame
/// number of each picture decoded.
fn lossy_call(
    lose: impl FnMut(&RtpPacket) -> bool + Send + 'static,
    lost_plis: usize,
) -> (VideoStats, VideoStats, Vec<Option<u32>>) {
    let (to_sender, sender_inbox) = std::sync::mpsc::channel();
    let (to_receiver, mut receiver, stamps) = stamped_receiver(Box::new(Feedback {
        to: to_sender.clone(),
        lose: lost_plis,
    }));
    let format = VideoFormat::new(160, 120, 30).unwrap();
    let mut sender = VideoThread::start(
        thread_config(),
        Some(Box::new(TestPattern::new(format, 1).unwrap())),
        Box::new(crate::video::NullVideoSink::new()),
        VideoChannels {
            inbox: (to_sender, sender_inbox),
            output: Box::new(LossyLink {
                to: to_receiver,
                lose: Box::new(lose),
            }),
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sender.stats().frames_sent < 80 {
        assert!(Instant::now() < deadline, "the sender sends");
        thread::sleep(Duration::from_millis(10));
    }
    let sent = sender.stop();
    thread::sleep(Duration::from_millis(100));
    let received = receiver.stop();
    let stamps = lock(&stamps).clone();
    println!(
        "requests sent {}, received {}; keyframes sent {}; pictures {}",
        received.keyframe_requests_sent,
        sent.keyframe_requests_received,
        sent.keyframes_sent,
        stamps.len()
    );
    (sent, received, stamps)
}

/// The last 20 pictures are consecutive: the picture was whole again well before the end.
fn ends_whole(stamps: &[Option<u32>]) {
    assert!(stamps.len() >= 40, "{stamps:?}");
    for pair in stamps[stamps.len() - 20..].windows(2) {
        assert_eq!(pair[1], pair[0].map(|f| f + 1), "{stamps:?}");
    }
}

/// Counts the pictures of a stream by RTP timestamp (the first is picture 0).
struct PictureCounter {
    picture: u32,
    last_timestamp: Option<u32>,
}

impl PictureCounter {
    fn count(&mut self, packet: &RtpPacket) -> u32 {
        let timestamp = packet.header.timestamp;
        if self.last_timestamp.is_some_and(|t| t != timestamp) {
            self.picture += 1;
        }
        self.last_timestamp = Some(timestamp);
        self.picture
    }
}

#[test]
fn a_receiver_asks_until_a_keyframe_repairs_its_picture_and_the_sender_paces_them() {
    use rand::SeedableRng;
    // Pictures 10 to 40 lose a tenth of their packets (seeded), and the first keyframe after
    // picture 10 — the answer to the first request — is lost whole.
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut pictures = PictureCounter {
        picture: 0,
        last_timestamp: None,
    };
    let mut lost_keyframe = None;
    let lose = move |packet: &RtpPacket| {
        let picture = pictures.count(packet);
        let timestamp = packet.header.timestamp;
        if picture > 10 && lost_keyframe.is_none() && starts_keyframe(&packet.payload) {
            lost_keyframe = Some(timestamp);
        }
        lost_keyframe == Some(timestamp) || ((10..40).contains(&picture) && rng.gen_bool(0.1))
    };
    let (sent, received, stamps) = lossy_call(lose, 0);
    // The lost answer was asked for again, and every request reached the sender.
    assert!(received.keyframe_requests_sent >= 2, "{received:?}");
    assert_eq!(
        sent.keyframe_requests_received,
        received.keyframe_requests_sent
    );
    // ... which made keyframes for them, but not one per request: those made for requests
    // are at least 300 ms apart.
    assert!(sent.keyframes_sent >= 3, "{sent:?}");
    assert!(sent.keyframes_sent <= 1 + 80 / 9, "{sent:?}");
    // The asking stops once the picture is whole: at most one request per 250 ms.
    assert!(received.keyframe_requests_sent <= 12, "{received:?}");
    ends_whole(&stamps);
}

#[test]
fn a_lost_request_is_made_again_until_the_keyframe_comes() {
    // One packet of picture 10 is lost, and so is the PLI that asks for its repair: only
    // asking again brings the keyframe before the 10 s safety net.
    let mut pictures = PictureCounter {
        picture: 0,
        last_timestamp: None,
    };
    let mut lost = false;
    let lose = move |packet: &RtpPacket| {
        let hit = pictures.count(packet) == 10 && !lost;
        lost |= hit;
        hit
    };
    let (sent, received, stamps) = lossy_call(lose, 1);
    assert!(received.keyframe_requests_sent >= 2, "{received:?}");
    assert_eq!(
        sent.keyframe_requests_received,
        received.keyframe_requests_sent - 1
    );
    assert!(sent.keyframes_sent >= 2, "{sent:?}");
    // Once the keyframe decoded, the asking stopped.
    assert!(received.keyframe_requests_sent <= 3, "{received:?}");
    ends_whole(&stamps);
}

#[test]
fn payloads_that_are_not_h264_are_counted_and_the_stream_goes_on() {
    let (to_receiver, mut receiver, stamps) =
        stamped_receiver(Box::new(Captured(Arc::new(Mutex::new(Vec::new())))));
    // A pattern's first pictures, with two payloads that are no H.264 among them: an empty
    // one and one whose forbidden bit is set.
    let format = VideoFormat::new(160, 120, 30).unwrap();
    let mut pattern = TestPattern::new(format, 1).unwrap();
    let mut encoder = H264Encoder::new(crate::video::h264::H264EncoderConfig::new(
        160, 120, 30, 200_000,
    ))
    .unwrap();
    let packetizer = H264Packetizer::new(PacketizationMode::NonInterleaved, 1_200).unwrap();
    let mut sequence = 0u16;
    let mut send = |payload: Vec<u8>, timestamp: u32, marker: bool| {
        let packet = RtpPacket {
            header: RtpHeader {
                version: 2,
                marker,
                payload_type: 96,
                sequence_number: sequence,
                timestamp,
                ssrc: 9,
                ..RtpHeader::default()
            },
            payload: Bytes::from(payload),
        };
        sequence += 1;
        let at = Instant::now();
        to_receiver.send(VideoInput::Rtp { at, packet }).unwrap();
    };
    for picture in 0..10u32 {
        let frame = pattern.next_frame().unwrap().unwrap();
        let unit = encoder.encode(&frame).unwrap().unwrap();
        let payloads = packetizer.packetize(&unit.nalus).unwrap();
        let last = payloads.len() - 1;
        for (i, payload) in payloads.into_iter().enumerate() {
            send(payload, picture * 3_000, i == last);
        }
        if picture == 4 {
            send(Vec::new(), picture * 3_000 + 1_500, true);
            send(vec![0x85, 0, 0], picture * 3_000 + 1_500, true);
        }
    }
    // Stop comes down the same channel, after every packet.
    let stats = receiver.stop();
    println!("{stats:?}");
    assert_eq!(stats.payloads_refused, 2);
    assert_eq!(
        stats.frames_decoded, 10,
        "every picture decoded around them"
    );
    assert_eq!(lock(&stamps).len(), 10);
}
