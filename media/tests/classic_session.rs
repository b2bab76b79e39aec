//! Classic sessions on real threads and loopback UDP sockets: tones both ways for every codec
//! and SRTP suite, symmetric RTP, hold and resume on the wire, DTMF, hostile datagrams, RTCP on
//! its own sockets, and the mouth-to-ear delay. Every socket binds 127.0.0.1. Figures are
//! printed (`cargo test -p callisto-media --test classic_session -- --nocapture`).

#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/mouth_to_ear.rs"]
mod mouth_to_ear;
#[path = "support/srtp_pair.rs"]
mod srtp_pair;
#[path = "support/tone_analysis.rs"]
mod tone_analysis;

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callisto_media::audio::{
    AudioFormat, AudioSink, AudioSource, MemorySink, NullSink, SharedSamples, ToneSource,
    WavRecorder,
};
use callisto_media::codec::{AudioCodecKind, EncoderConfig};
use callisto_media::rtp::{parse_rtp, RtpSender, SrtpProfile};
use callisto_media::session::{
    AudioStreamConfig, ClassicSession, ClassicSessionConfig, MediaDirection, MediaEvent,
    MediaUpdate, SessionError, SessionOptions, SrtpKeys,
};
use loopback::{addr, bind, session_config as config};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tone_analysis::coverage;

const DEVICE: AudioFormat = AudioFormat::MONO_48K;
const HZ_A: f64 = 440.0;
const HZ_B: f64 = 1_000.0;
/// Frames skipped at the start of a recording before tones are checked (start-up).
const START_UP_FRAMES: usize = 15;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn srtp_keys(profile: SrtpProfile) -> (SrtpKeys, SrtpKeys) {
    srtp_pair::srtp_pair_with(profile, 0x5eed)
}

fn tone(hz: f64) -> Box<dyn AudioSource> {
    Box::new(ToneSource::with_dbfs(DEVICE, hz, -12.0))
}

fn memory_sink() -> (Box<dyn AudioSink>, SharedSamples) {
    let sink = MemorySink::new(DEVICE);
    let shared = sink.shared();
    (Box::new(sink), shared)
}

fn events(session: &ClassicSession) -> Vec<MediaEvent> {
    std::iter::from_fn(|| session.try_event()).collect()
}

/// A and B exchange tones for two seconds; each must hear the other's and not its own.
fn exchange_tones(stream: AudioStreamConfig, srtp: Option<SrtpProfile>) {
    let (sa, sb) = (bind(), bind());
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let (ka, kb) = match srtp.map(srtp_keys) {
        Some((ka, kb)) => (Some(ka), Some(kb)),
        None => (None, None),
    };
    let (sink_a, heard_by_a) = memory_sink();
    let (sink_b, heard_by_b) = memory_sink();
    let a = ClassicSession::start(config(sa, addr_b, stream, ka, "a@test"), tone(HZ_A), sink_a)
        .unwrap();
    let b = ClassicSession::start(config(sb, addr_a, stream, kb, "b@test"), tone(HZ_B), sink_b)
        .unwrap();
    thread::sleep(Duration::from_secs(2));
    let stats_a = a.stop();
    thread::sleep(ms(100));
    let events_b = events(&b);
    let stats_b = b.stop();

    // The last 200 ms of each recording may follow the peer's stop.
    let played = |shared: &SharedSamples| {
        let mut samples = shared.samples();
        samples.truncate(samples.len().saturating_sub(10 * 960));
        samples
    };
    let at_a = coverage(&played(&heard_by_a), 48_000, START_UP_FRAMES, HZ_B, HZ_A);
    let at_b = coverage(&played(&heard_by_b), 48_000, START_UP_FRAMES, HZ_A, HZ_B);
    println!(
        "{} srtp {srtp:?}: A hears B in {}/{} frames, B hears A in {}/{}; A tx {} rx {} \
         concealed {} jb {:.0} ms; B tx {} rx {} concealed {} jb {:.0} ms",
        stream.codec,
        at_a.expected,
        at_a.frames,
        at_b.expected,
        at_b.frames,
        stats_a.tx_packets,
        stats_a.rx_packets,
        stats_a.concealed_frames,
        stats_a.jitter_buffer_delay_ms,
        stats_b.tx_packets,
        stats_b.rx_packets,
        stats_b.concealed_frames,
        stats_b.jitter_buffer_delay_ms
    );
    for (side, c) in [("A", at_a), ("B", at_b)] {
        assert!(c.frames >= 70, "{side}: only {} frames", c.frames);
        assert!(c.ratio() >= 0.9, "{side}: {c:?}");
        assert_eq!(c.unexpected, 0, "{side} hears its own tone: {c:?}");
    }
    for stats in [&stats_a, &stats_b] {
        assert_eq!(stats.codec, stream.codec.encoding_name());
        assert_eq!(stats.srtp, srtp.is_some());
        assert_eq!(stats.discarded, 0);
        assert!(
            stats.tx_packets >= 90 && stats.rx_packets >= 90,
            "{stats:?}"
        );
        assert!(stats.first_rtp_sent_at.is_some() && stats.first_rtp_received_at.is_some());
    }
    assert!(matches!(events_b[0], MediaEvent::FirstPacket { .. }));
    assert!(
        events_b.contains(&MediaEvent::RemoteBye),
        "B saw no BYE: {events_b:?}"
    );
}

#[test]
fn pcmu_tones_cross() {
    exchange_tones(AudioStreamConfig::new(AudioCodecKind::Pcmu), None);
}

#[test]
fn pcma_tones_cross() {
    exchange_tones(AudioStreamConfig::new(AudioCodecKind::Pcma), None);
}

#[test]
fn opus_tones_cross() {
    exchange_tones(AudioStreamConfig::new(AudioCodecKind::Opus), None);
}

#[test]
fn opus_with_srtp_80_tones_cross() {
    exchange_tones(
        AudioStreamConfig::new(AudioCodecKind::Opus),
        Some(SrtpProfile::AesCm128HmacSha1_80),
    );
}

#[test]
fn opus_with_srtp_32_tones_cross() {
    exchange_tones(
        AudioStreamConfig::new(AudioCodecKind::Opus),
        Some(SrtpProfile::AesCm128HmacSha1_32),
    );
}

#[test]
fn a_recording_is_finished_with_a_final_header_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let (sa, sb) = (bind(), bind());
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcma);
    let recorder = WavRecorder::create(&path, AudioFormat::MONO_16K).unwrap();
    let a = ClassicSession::start(
        config(sa, addr_b, stream, None, "a"),
        tone(HZ_A),
        Box::new(recorder),
    )
    .unwrap();
    let b = ClassicSession::start(
        config(sb, addr_a, stream, None, "b"),
        tone(HZ_B),
        Box::new(NullSink::new(DEVICE)),
    )
    .unwrap();
    thread::sleep(Duration::from_secs(1));
    b.stop();
    let stats = a.stop();
    let reader = hound::WavReader::open(&path).unwrap();
    let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
    let frames = samples.len() / 320;
    println!(
        "recording: {frames} frames of 20 ms for a session of {} packets sent",
        stats.tx_packets
    );
    assert_eq!(samples.len() % 320, 0);
    assert!((48..=56).contains(&frames), "{frames} frames");
    let heard = coverage(&samples, 16_000, START_UP_FRAMES, HZ_B, HZ_A);
    assert!(heard.ratio() > 0.9, "{heard:?}");
}

#[test]
fn symmetric_rtp_follows_the_peer_behind_a_nat() {
    // B was told a wrong address (what A's NAT did not keep); A's packets come from A's real
    // socket, and B must follow them there.
    let black_hole = bind();
    black_hole.set_read_timeout(Some(ms(10))).unwrap();
    let (sa, sb) = (bind(), bind());
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    let (sink_a, heard_by_a) = memory_sink();
    let (sink_b, _) = memory_sink();
    let b = ClassicSession::start(
        config(sb, addr(&black_hole), stream, None, "b"),
        tone(HZ_B),
        sink_b,
    )
    .unwrap();
    thread::sleep(ms(200));
    let a =
        ClassicSession::start(config(sa, addr_b, stream, None, "a"), tone(HZ_A), sink_a).unwrap();
    thread::sleep(Duration::from_secs(2));
    let stats_b = b.stats();
    a.stop();
    b.stop();
    let mut lost = 0;
    let mut buf = [0u8; 2048];
    while black_hole.recv_from(&mut buf).is_ok() {
        lost += 1;
    }
    let heard = coverage(&heard_by_a.samples(), 48_000, START_UP_FRAMES, HZ_B, HZ_A);
    println!(
        "latching: B sends to {} (A is {addr_a}); {lost} datagrams went to the announced \
         address first; A hears B in {:.1} % of frames",
        stats_b.remote_addr,
        heard.ratio() * 100.0
    );
    assert_eq!(stats_b.remote_addr, addr_a);
    assert!(lost >= 5, "B never sent to the announced address");
    assert!(heard.ratio() >= 0.9, "{heard:?}");
}

/// Datagrams received, with when (since the test's start).
type Received = Arc<Mutex<Vec<(Duration, Vec<u8>)>>>;

/// A raw RTP peer: sends a PCMU tone to the session every 20 ms and records what it receives.
struct RawPeer {
    received: Received,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl RawPeer {
    fn start(socket: UdpSocket, session: SocketAddr, start: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        socket.set_read_timeout(Some(ms(20))).unwrap();
        let sender = socket.try_clone().unwrap();
        let (stop_tx, stop_rx) = (Arc::clone(&stop), Arc::clone(&stop));
        let log = Arc::clone(&received);
        let send = thread::spawn(move || {
            let mut rtp = RtpSender::with_start(0xfeed_beef, 1_000, 0, 0, 8_000);
            let mut encoder = AudioCodecKind::Pcmu
                .make_encoder(&EncoderConfig::mono())
                .unwrap();
            let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_8K, HZ_B, -12.0);
            let mut pcm = [0i16; 160];
            let mut payload = Vec::new();
            let mut next = Instant::now();
            while !stop_tx.load(Ordering::Relaxed) {
                tone.read(&mut pcm).unwrap();
                payload.clear();
                encoder.encode(&pcm, &mut payload).unwrap();
                let packet = rtp.audio_packet(next, &payload, 160);
                let _ = sender.send_to(&packet, session);
                next += ms(20);
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        let recv = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop_rx.load(Ordering::Relaxed) {
                if let Ok((n, _)) = socket.recv_from(&mut buf) {
                    log.lock()
                        .unwrap()
                        .push((start.elapsed(), buf[..n].to_vec()));
                }
            }
        });
        RawPeer {
            received,
            stop,
            threads: vec![send, recv],
        }
    }

    fn finish(self) -> Vec<(Duration, Vec<u8>)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.received)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

#[test]
fn hold_and_resume_on_the_wire() {
    let (sa, peer) = (bind(), bind());
    let (addr_a, addr_peer) = (addr(&sa), addr(&peer));
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let (sink, heard) = memory_sink();
    let options = SessionOptions {
        rtcp_interval: ms(400),
        ..SessionOptions::default()
    };
    let start = Instant::now();
    let a = ClassicSession::start_with(
        config(sa, addr_peer, stream, None, "a"),
        tone(HZ_A),
        sink,
        options,
    )
    .unwrap();
    let peer = RawPeer::start(peer, addr_a, start);
    let update = |direction| MediaUpdate {
        remote_rtp: addr_peer,
        remote_rtcp: None,
        direction,
        stream,
        srtp: None,
    };
    let at = |t: u64| thread::sleep((start + ms(t)).saturating_duration_since(Instant::now()));
    at(1_000);
    let before = a.stats();
    a.update(update(MediaDirection::INACTIVE));
    at(1_900);
    let during = a.stats();
    at(2_000);
    a.update(update(MediaDirection::SENDRECV));
    at(3_000);
    let after = a.stop();
    let received = peer.finish();

    let rtp: Vec<_> = received
        .iter()
        .filter_map(|(t, bytes)| parse_rtp(bytes).ok().map(|p| (*t, p.header)))
        .filter(|(_, h)| h.payload_type == 0)
        .collect();
    let rtcp_during_hold = received
        .iter()
        .filter(|(t, b)| *t > ms(1_100) && *t < ms(2_000) && b.len() > 1 && b[1] >= 200)
        .count();
    let ssrc = rtp[0].1.ssrc;
    assert!(rtp.iter().all(|(_, h)| h.ssrc == ssrc), "SSRC changed");
    for pair in rtp.windows(2) {
        assert_eq!(
            pair[1].1.sequence_number,
            pair[0].1.sequence_number.wrapping_add(1),
            "sequence gap at {:?}",
            pair[1].0
        );
    }
    let resumed = rtp.iter().position(|(t, _)| *t >= ms(1_500)).unwrap();
    let (held, back) = (&rtp[resumed - 1], &rtp[resumed]);
    let gap_ms = u64::from(back.1.timestamp.wrapping_sub(held.1.timestamp)) / 8;
    println!(
        "hold: last packet at {:?}, next at {:?} with marker {} and a {gap_ms} ms timestamp \
         gap; tx {} → {} → {}, rx {} → {} → {}; {rtcp_during_hold} RTCP packets during hold",
        held.0,
        back.0,
        back.1.marker,
        before.tx_packets,
        during.tx_packets,
        after.tx_packets,
        before.rx_packets,
        during.rx_packets,
        after.rx_packets
    );
    assert!(held.0 < ms(1_100) && back.0 >= ms(2_000));
    assert!(back.1.marker, "no marker after resume");
    assert_eq!(rtp.iter().filter(|(_, h)| h.marker).count(), 2);
    assert!((960..=1_100).contains(&gap_ms), "timestamp gap {gap_ms} ms");
    assert!(during.tx_packets - before.tx_packets <= 2);
    assert!(after.tx_packets - during.tx_packets >= 40);
    assert!(
        during.rx_packets - before.rx_packets >= 35,
        "not counted on hold"
    );
    assert!(rtcp_during_hold >= 1, "RTCP stopped during hold");
    assert_eq!(during.direction, MediaDirection::INACTIVE);

    let samples = heard.samples();
    let second = 48_000;
    let hold_middle = &samples[second * 6 / 5..second * 9 / 5];
    assert!(hold_middle.iter().all(|&x| x == 0), "sound during hold");
    let before_hold = coverage(&samples[..second], 48_000, START_UP_FRAMES, HZ_B, HZ_A);
    let after_hold = coverage(&samples[second * 23 / 10..], 48_000, 0, HZ_B, HZ_A);
    assert!(before_hold.ratio() > 0.9, "{before_hold:?}");
    assert!(after_hold.ratio() > 0.9, "{after_hold:?}");
}

#[test]
fn dtmf_digits_reach_the_peer_in_order() {
    let (sa, sb) = (bind(), bind());
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus).with_telephone_event(101);
    let a = ClassicSession::start(
        config(sa, addr_b, stream, None, "a"),
        tone(HZ_A),
        Box::new(NullSink::new(DEVICE)),
    )
    .unwrap();
    // B hands its events to a handler on its media thread.
    let (events_tx, events_rx) = std::sync::mpsc::channel();
    let b = ClassicSession::start_with_handler(
        config(sb, addr_a, stream, None, "b"),
        tone(HZ_B),
        Box::new(NullSink::new(DEVICE)),
        SessionOptions::default(),
        move |event| {
            let _ = events_tx.send(event);
        },
    )
    .unwrap();
    thread::sleep(ms(300));
    a.send_dtmf("123#", ms(100));
    assert!(matches!(
        a.try_send_dtmf("1x", ms(100)),
        Err(SessionError::Dtmf(_))
    ));
    let mut digits = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while digits.len() < 4 && Instant::now() < deadline {
        if let Ok(MediaEvent::Dtmf { digit, duration }) = events_rx.recv_timeout(ms(100)) {
            digits.push((digit, duration));
        }
    }
    let stats_a = a.stop();
    assert!(b.try_event().is_none(), "events went to the handler");
    b.stop();
    println!("DTMF: {digits:?}; A sent {} packets", stats_a.tx_packets);
    let keys: String = digits.iter().map(|(d, _)| *d).collect();
    assert_eq!(keys, "123#");
    assert!(digits.iter().all(|(_, d)| *d == ms(100)), "{digits:?}");

    // Without a negotiated telephone-event type, the engine must use SIP INFO.
    let (sc, sd) = (bind(), bind());
    let plain = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let c = ClassicSession::start(
        config(sc, addr(&sd), plain, None, "c"),
        tone(HZ_A),
        Box::new(NullSink::new(DEVICE)),
    )
    .unwrap();
    assert!(matches!(
        c.try_send_dtmf("1", ms(100)),
        Err(SessionError::NoTelephoneEvent)
    ));
    c.stop();
}

/// A relay between A and B that keeps the last packets it forwarded from A.
fn relay(
    socket: UdpSocket,
    a: SocketAddr,
    b: SocketAddr,
    stop: Arc<AtomicBool>,
    recent: Arc<Mutex<VecDeque<Vec<u8>>>>,
) -> thread::JoinHandle<()> {
    socket.set_read_timeout(Some(ms(20))).unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let to = if from == a { b } else { a };
            let _ = socket.send_to(&buf[..n], to);
            if from == a && buf[1] < 200 {
                let mut recent = recent.lock().unwrap();
                recent.push_back(buf[..n].to_vec());
                if recent.len() > 20 {
                    recent.pop_front();
                }
            }
        }
    })
}

#[test]
fn hostile_datagrams_are_discarded_and_audio_continues() {
    for srtp in [None, Some(SrtpProfile::AesCm128HmacSha1_80)] {
        let (sa, sb, relay_socket, attacker) = (bind(), bind(), bind(), bind());
        let (addr_a, addr_b, addr_relay) = (addr(&sa), addr(&sb), addr(&relay_socket));
        let (ka, kb) = match srtp.map(srtp_keys) {
            Some((ka, kb)) => (Some(ka), Some(kb)),
            None => (None, None),
        };
        let stream = AudioStreamConfig::new(AudioCodecKind::Opus);
        let stop = Arc::new(AtomicBool::new(false));
        let recent = Arc::new(Mutex::new(VecDeque::new()));
        let relay = relay(
            relay_socket,
            addr_a,
            addr_b,
            Arc::clone(&stop),
            Arc::clone(&recent),
        );
        let (sink_b, heard_by_b) = memory_sink();
        let a = ClassicSession::start(
            config(sa, addr_relay, stream, ka, "a"),
            tone(HZ_A),
            Box::new(NullSink::new(DEVICE)),
        )
        .unwrap();
        let b = ClassicSession::start(config(sb, addr_relay, stream, kb, "b"), tone(HZ_B), sink_b)
            .unwrap();
        thread::sleep(ms(500));

        let mut rng = SmallRng::seed_from_u64(77);
        let mut injected = 0u64;
        for _ in 0..60 {
            let genuine = recent.lock().unwrap().front().cloned().unwrap();
            let mut datagrams = Vec::new();
            // Garbage, and a truncated header.
            let garbage: Vec<u8> = (0..rng.gen_range(20..200)).map(|_| rng.gen()).collect();
            datagrams.push(garbage);
            datagrams.push(genuine[..rng.gen_range(1..12)].to_vec());
            // A foreign SSRC with a random sequence number.
            let mut foreign = genuine[..12].to_vec();
            foreign[2..4].copy_from_slice(&rng.gen::<u16>().to_be_bytes());
            foreign[8..12].copy_from_slice(&rng.gen::<u32>().to_be_bytes());
            foreign.extend((0..40).map(|_| rng.gen::<u8>()));
            datagrams.push(foreign);
            if srtp.is_some() {
                // A replay of a packet B already has, and a copy with a broken tag.
                let mut tampered = genuine.clone();
                let last = tampered.len() - 1;
                tampered[last] ^= 0x01;
                datagrams.push(genuine);
                datagrams.push(tampered);
            }
            for datagram in datagrams {
                attacker.send_to(&datagram, addr_b).unwrap();
                injected += 1;
            }
            thread::sleep(ms(20));
        }
        thread::sleep(ms(500));
        let stats_b = b.stop();
        a.stop();
        stop.store(true, Ordering::Relaxed);
        relay.join().unwrap();
        let heard = coverage(&heard_by_b.samples(), 48_000, START_UP_FRAMES, HZ_A, HZ_B);
        println!(
            "hostile datagrams, SRTP {srtp:?}: {injected} injected, {} discarded; B sends to {} \
             (the relay is {addr_relay}); B hears A in {:.1} % of frames, concealed {}",
            stats_b.discarded,
            stats_b.remote_addr,
            heard.ratio() * 100.0,
            stats_b.concealed_frames
        );
        assert_eq!(stats_b.discarded, injected);
        assert_eq!(stats_b.remote_addr, addr_relay);
        assert!(heard.ratio() >= 0.9, "{heard:?}");
    }
}

#[test]
fn rtcp_on_its_own_sockets_measures_the_round_trip() {
    let (sa, sb, ra, rb) = (bind(), bind(), bind(), bind());
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let options = SessionOptions {
        rtcp_interval: ms(300),
        ..SessionOptions::default()
    };
    let session = |rtp: UdpSocket, rtcp: UdpSocket, peer_rtp, peer_rtcp, name: &str| {
        let config = ClassicSessionConfig {
            rtcp_socket: Some(rtcp),
            remote_rtcp: Some(peer_rtcp),
            ..config(rtp, peer_rtp, stream, None, name)
        };
        ClassicSession::start_with(config, tone(HZ_A), Box::new(NullSink::new(DEVICE)), options)
            .unwrap()
    };
    let (addr_sa, addr_sb, addr_ra, addr_rb) = (addr(&sa), addr(&sb), addr(&ra), addr(&rb));
    let a = session(sa, ra, addr_sb, addr_rb, "a");
    let b = session(sb, rb, addr_sa, addr_ra, "b");
    thread::sleep(Duration::from_secs(2));
    let (stats_a, stats_b) = (a.stop(), b.stop());
    println!(
        "separate RTCP sockets: A sent {} and received {} reports, rtt {:?} ms; B rtt {:?} ms",
        stats_a.rtcp_sent, stats_a.rtcp_received, stats_a.rtt_ms, stats_b.rtt_ms
    );
    for stats in [&stats_a, &stats_b] {
        assert!(stats.rtcp_received >= 2, "{stats:?}");
        let rtt = stats.rtt_ms.expect("no round trip measured");
        assert!((0.0..50.0).contains(&rtt), "rtt {rtt} ms");
        assert_eq!(stats.discarded, 0);
    }
}

#[test]
fn an_unusable_configuration_is_refused_at_start() {
    let (sa, sb) = (bind(), bind());
    let mut stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    stream.ptime_ms = 25;
    let refused = ClassicSession::start(
        config(sa, addr(&sb), stream, None, "a"),
        tone(HZ_A),
        Box::new(NullSink::new(DEVICE)),
    );
    assert!(matches!(refused, Err(SessionError::Codec(_))));
    let clash = AudioStreamConfig::new(AudioCodecKind::Opus).with_telephone_event(111);
    let refused = ClassicSession::start(
        config(sb, "127.0.0.1:9".parse().unwrap(), clash, None, "b"),
        tone(HZ_A),
        Box::new(NullSink::new(DEVICE)),
    );
    assert!(matches!(refused, Err(SessionError::PayloadTypeClash(111))));
}

#[test]
fn mouth_to_ear_on_loopback() {
    let measured = mouth_to_ear::measure(AudioCodecKind::Opus, None, 7, Duration::from_millis(10));
    println!(
        "mouth-to-ear on loopback (Opus, capture to playout): {:.1?} ms, jitter buffer at \
         {:.0} ms, B's ticks {:.1} ms after A's",
        measured.delays_ms, measured.jitter_buffer_ms, measured.phase_ms
    );

    assert!(
        measured.delays_ms.len() >= 5,
        "{} bursts heard",
        measured.delays_ms.len()
    );
    let median = measured.median_ms().unwrap();
    println!("mouth-to-ear median {median:.1} ms");
    // A sanity bound, not the target: `cargo bench -p callisto-media --bench audio_call`
    // measures the delay against it.
    assert!(median < 150.0, "median {median} ms");
}
