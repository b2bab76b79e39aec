//! Whole calls between two session cores over the simulated network, in virtual time: tones
//! both ways for every codec, a lossy jittery network, hold and resume on the wire, media
//! timeout and BYE, latching, codec change, DTMF, and hostile input. Each test prints what it
//! measured (`cargo test -p callisto-media --test session_sim -- --nocapture`).

#[path = "support/srtp_pair.rs"]
mod srtp_pair;
#[path = "support/tone_analysis.rs"]
mod tone_analysis;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use callisto_media::audio::{
    AudioFormat, Burst, BurstSource, MemorySink, SharedSamples, ToneSource,
};
use callisto_media::codec::AudioCodecKind;
use callisto_media::netsim::NetworkConditions;
use callisto_media::rtp::{parse_rtp, SrtpProfile};
use callisto_media::session::{
    AudioStreamConfig, MediaDirection, MediaEvent, MediaUpdate, Side, SimulatedCall,
    SimulatedEndpoint, SrtpKeys,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tone_analysis::{coverage, onset};

const DEVICE: AudioFormat = AudioFormat::MONO_48K;
const HZ_A: f64 = 440.0;
const HZ_B: f64 = 1_000.0;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn tone_side(stream: AudioStreamConfig, hz: f64) -> (SimulatedEndpoint, SharedSamples) {
    let sink = MemorySink::new(DEVICE);
    let shared = sink.shared();
    let source = ToneSource::with_dbfs(DEVICE, hz, -12.0);
    (
        SimulatedEndpoint::new(stream, Box::new(source), Box::new(sink)),
        shared,
    )
}

/// Keys for both sides of an SDES call: A's view and B's view.
fn srtp_keys(profile: SrtpProfile) -> (SrtpKeys, SrtpKeys) {
    srtp_pair::srtp_pair_with(profile, 0x1a2b)
}

/// A call with A sending 440 Hz and B 1000 Hz.
fn tone_call(
    stream: AudioStreamConfig,
    srtp: Option<SrtpProfile>,
    network: NetworkConditions,
    seed: u64,
) -> (SimulatedCall, SharedSamples, SharedSamples) {
    let (mut a, heard_by_a) = tone_side(stream, HZ_A);
    let (mut b, heard_by_b) = tone_side(stream, HZ_B);
    if let Some(profile) = srtp {
        let (ka, kb) = srtp_keys(profile);
        a.srtp = Some(ka);
        b.srtp = Some(kb);
    }
    let call = SimulatedCall::new(a, b, network, network, seed).unwrap();
    (call, heard_by_a, heard_by_b)
}

#[test]
fn tones_cross_for_every_codec_and_srtp_suite() {
    let cases = [
        (AudioCodecKind::Pcmu, None),
        (AudioCodecKind::Pcma, None),
        (AudioCodecKind::Opus, None),
        (AudioCodecKind::Opus, Some(SrtpProfile::AesCm128HmacSha1_80)),
        (AudioCodecKind::Pcmu, Some(SrtpProfile::AesCm128HmacSha1_32)),
    ];
    for (codec, srtp) in cases {
        let network = NetworkConditions::clean(ms(20));
        let (mut call, heard_by_a, heard_by_b) =
            tone_call(AudioStreamConfig::new(codec), srtp, network, 7);
        call.run_for(Duration::from_secs(2));
        let at_a = coverage(&heard_by_a.samples(), 48_000, 10, HZ_B, HZ_A);
        let at_b = coverage(&heard_by_b.samples(), 48_000, 10, HZ_A, HZ_B);
        let (sa, sb) = (call.a().stats(), call.b().stats());
        println!(
            "{codec} srtp {srtp:?}: A hears B in {}/{} frames, B hears A in {}/{}; \
             tx {}/{} rx {}/{} concealed {}/{} discarded {}/{}",
            at_a.expected,
            at_a.frames,
            at_b.expected,
            at_b.frames,
            sa.tx_packets,
            sb.tx_packets,
            sa.rx_packets,
            sb.rx_packets,
            sa.concealed_frames,
            sb.concealed_frames,
            sa.discarded,
            sb.discarded
        );
        for (side, c) in [("A", at_a), ("B", at_b)] {
            assert!(
                c.frames >= 85,
                "{codec}: {side} recorded {} frames",
                c.frames
            );
            assert!(c.ratio() >= 0.95, "{codec} {srtp:?}: {side} {c:?}");
            assert_eq!(c.unexpected, 0, "{codec}: {side} hears its own tone");
        }
        assert_eq!(sa.codec, codec.encoding_name());
        assert_eq!(sa.srtp, srtp.is_some());
        assert_eq!(sa.discarded + sb.discarded, 0);
        assert_eq!(sa.remote_ssrc, Some(sb.local_ssrc));
        assert_eq!(sb.remote_ssrc, Some(sa.local_ssrc));
        assert!((99..=101).contains(&sa.tx_packets), "{}", sa.tx_packets);
        assert!(sb.rx_packets + 2 >= sa.tx_packets);
    }
}

#[test]
fn a_lossy_jittery_network_keeps_audio_continuous_and_delay_bounded() {
    let network = NetworkConditions {
        latency: ms(30),
        jitter: ms(40),
        loss: 0.05,
        reorder: 0.05,
        reorder_delay: ms(30),
        ..NetworkConditions::clean(ms(30))
    };
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    let (mut call, _, heard_by_b) =
        tone_call(stream, Some(SrtpProfile::AesCm128HmacSha1_80), network, 11);
    // Settle, then measure 60 s of call.
    call.run_for(Duration::from_secs(2));
    let settled = call.b().stats();
    let mut delays = Vec::new();
    for _ in 0..600 {
        call.run_for(ms(100));
        delays.push(call.b().stats().jitter_buffer_delay_ms);
    }
    let end = call.b().stats();
    let decoded = end.decoded_frames - settled.decoded_frames;
    let fec = end.fec_recovered_frames - settled.fec_recovered_frames;
    let concealed = end.concealed_frames - settled.concealed_frames;
    let continuity = (decoded + fec) as f64 / (decoded + fec + concealed) as f64;
    let max_delay = delays.iter().copied().fold(0.0, f64::max);
    let mean_delay = delays.iter().sum::<f64>() / delays.len() as f64;
    let (ab, _) = call.network_stats();
    let heard = coverage(&heard_by_b.samples(), 48_000, 100, HZ_A, HZ_B);
    println!(
        "5 % loss, 5 % reordering, 40 ms jitter, 60 s: network lost {} of {} (A to B); \
         decoded {decoded}, FEC {fec}, concealed {concealed}: continuity {:.2} %; \
         jitter-buffer delay mean {mean_delay:.1} ms, max {max_delay:.1} ms; \
         lost (RTCP) {}, jitter {:.1} ms, rtt {:?} ms; tone in {:.1} % of frames",
        ab.lost,
        ab.sent,
        continuity * 100.0,
        end.lost,
        end.jitter_ms,
        end.rtt_ms,
        heard.ratio() * 100.0
    );
    assert!(continuity >= 0.97, "continuity {continuity}");
    assert!(fec > 0, "FEC never recovered a frame");
    assert!(max_delay <= 200.0, "delay reached {max_delay} ms");
    assert!(heard.ratio() >= 0.9, "{heard:?}");
    let rtt = end.rtt_ms.expect("RTCP measured no round trip");
    // Two one-way trips of 30 ms latency plus queueing.
    assert!((55.0..200.0).contains(&rtt), "rtt {rtt} ms");
    assert!(end.lost > 0 && end.jitter_ms > 1.0);
}

/// RTP headers of the voice packets a side sent, in order.
fn sent_headers(call: &SimulatedCall, side: Side) -> Vec<(Duration, u32, u16, u32, bool)> {
    call.sent(side)
        .iter()
        .filter_map(|sent| {
            let packet = parse_rtp(&sent.payload).ok()?;
            // RTCP (rtcp-mux) parses as RTP with a payload type in 72..=76 after the marker.
            (packet.header.payload_type == 0).then(|| {
                let h = &packet.header;
                (
                    sent.at - call.start(),
                    h.ssrc,
                    h.sequence_number,
                    h.timestamp,
                    h.marker,
                )
            })
        })
        .collect()
}

#[test]
fn hold_and_resume_keep_ssrc_and_sequence_and_mark_the_resume() {
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let (mut a, heard_by_a) = tone_side(stream, HZ_A);
    a.options.rtcp_interval = ms(400);
    let (b, _) = tone_side(stream, HZ_B);
    let network = NetworkConditions::clean(ms(10));
    let mut call = SimulatedCall::new(a, b, network, network, 3).unwrap();
    call.record_transmits(true);
    call.run_for(Duration::from_secs(1));
    let hold = |direction| MediaUpdate {
        remote_rtp: SimulatedCall::ADDR_B,
        remote_rtcp: None,
        direction,
        stream,
        srtp: None,
    };
    let before = call.a().stats();
    call.update(Side::A, hold(MediaDirection::INACTIVE))
        .unwrap();
    call.run_for(Duration::from_secs(1));
    let during = call.a().stats();
    call.update(Side::A, hold(MediaDirection::SENDRECV))
        .unwrap();
    call.run_for(Duration::from_secs(1));
    let after = call.a().stats();

    let headers = sent_headers(&call, Side::A);
    let ssrc = headers[0].1;
    assert!(headers.iter().all(|h| h.1 == ssrc), "SSRC changed");
    for pair in headers.windows(2) {
        assert_eq!(
            pair[1].2,
            pair[0].2.wrapping_add(1),
            "sequence gap at {:?}",
            pair[1].0
        );
    }
    let resumed = headers
        .iter()
        .position(|h| h.0 >= Duration::from_secs(2))
        .unwrap();
    let (last_held, first_resumed) = (headers[resumed - 1], headers[resumed]);
    let gap_ms = u64::from(first_resumed.3.wrapping_sub(last_held.3)) / 8;
    println!(
        "hold 1 s: last packet before at {:?} (seq {}), first after at {:?} (seq {}, marker {}), \
         timestamp gap {gap_ms} ms; tx {} → {} → {}, rx {} → {} → {}, RTCP sent {} → {}",
        last_held.0,
        last_held.2,
        first_resumed.0,
        first_resumed.2,
        first_resumed.4,
        before.tx_packets,
        during.tx_packets,
        after.tx_packets,
        before.rx_packets,
        during.rx_packets,
        after.rx_packets,
        before.rtcp_sent,
        during.rtcp_sent
    );
    assert!(last_held.0 < Duration::from_secs(1) + ms(20));
    assert!(
        first_resumed.4,
        "no marker on the first packet after resume"
    );
    assert!(
        headers.iter().filter(|h| h.4).count() == 2,
        "marker only at start and resume"
    );
    assert!((990..=1_030).contains(&gap_ms), "timestamp gap {gap_ms} ms");
    assert!(during.tx_packets - before.tx_packets <= 1);
    assert!(after.tx_packets - during.tx_packets >= 49);
    // Received RTP is still counted while not played, and RTCP continues.
    assert!(during.rx_packets - before.rx_packets >= 49);
    assert!(during.rtcp_sent > before.rtcp_sent);
    // A's loudspeaker is silent in the middle of the hold, and hears B before and after.
    let heard = heard_by_a.samples();
    let silent = &heard[48_000 + 4_800..2 * 48_000 - 4_800];
    assert!(silent.iter().all(|&x| x == 0), "sound during hold");
    assert!(coverage(&heard[..48_000], 48_000, 10, HZ_B, HZ_A).ratio() > 0.9);
    assert!(coverage(&heard[2 * 48_000..], 48_000, 10, HZ_B, HZ_A).ratio() > 0.85);
}

#[test]
fn an_rfc_2543_hold_sends_nothing_to_the_null_address() {
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let (a, _) = tone_side(stream, HZ_A);
    let (b, _) = tone_side(stream, HZ_B);
    let network = NetworkConditions::clean(ms(10));
    let mut call = SimulatedCall::new(a, b, network, network, 31).unwrap();
    call.run_for(ms(500));
    // B puts A on hold the RFC 2543 way: B stops sending, and its SDP says c=IN IP4 0.0.0.0
    // (with sendrecv): A must send nothing there, RTCP included.
    let b_hold = MediaUpdate {
        remote_rtp: SimulatedCall::ADDR_A,
        remote_rtcp: None,
        direction: MediaDirection::RECVONLY,
        stream,
        srtp: None,
    };
    call.update(Side::B, b_hold).unwrap();
    call.run_for(ms(100));
    let null: SocketAddr = "0.0.0.0:40002".parse().unwrap();
    let update = MediaUpdate {
        remote_rtp: null,
        remote_rtcp: None,
        direction: MediaDirection::RECVONLY,
        stream,
        srtp: None,
    };
    call.update(Side::A, update).unwrap();
    call.record_transmits(true);
    call.run_for(Duration::from_secs(12));
    assert_eq!(call.a().remote_rtp(), null);
    assert!(call.sent(Side::A).is_empty(), "{:?}", call.sent(Side::A));
    assert!(!call.sent(Side::B).is_empty(), "B's RTCP continues");
}

#[test]
fn media_timeout_comes_once_per_silence_and_bye_is_reported() {
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    let (mut a, _) = tone_side(stream, HZ_A);
    a.options.media_timeout = Duration::from_secs(1);
    let (mut b, _) = tone_side(stream, HZ_B);
    // B's reports must not count as media during the test's silences.
    b.options.rtcp_interval = Duration::from_secs(60);
    let network = NetworkConditions::clean(ms(5));
    let mut call = SimulatedCall::new(a, b, network, network, 5).unwrap();
    let b_direction = |direction| MediaUpdate {
        remote_rtp: SimulatedCall::ADDR_A,
        remote_rtcp: None,
        direction,
        stream,
        srtp: None,
    };
    let timeouts = |call: &SimulatedCall| {
        call.events(Side::A)
            .iter()
            .filter(|(_, e)| *e == MediaEvent::MediaTimeout)
            .map(|(at, _)| *at - call.start())
            .collect::<Vec<_>>()
    };
    call.run_for(Duration::from_secs(1));
    call.update(Side::B, b_direction(MediaDirection::RECVONLY))
        .unwrap();
    call.run_for(Duration::from_secs(2));
    assert_eq!(timeouts(&call).len(), 1);
    call.update(Side::B, b_direction(MediaDirection::SENDRECV))
        .unwrap();
    call.run_for(Duration::from_secs(1));
    call.update(Side::B, b_direction(MediaDirection::RECVONLY))
        .unwrap();
    call.run_for(Duration::from_secs(3));
    let seen = timeouts(&call);
    println!("media timeouts at {seen:?}");
    assert_eq!(seen.len(), 2);
    assert!(
        seen[0] >= Duration::from_secs(2) && seen[0] <= ms(2_060),
        "{seen:?}"
    );
    assert!(
        seen[1] >= Duration::from_secs(5) && seen[1] <= ms(5_060),
        "{seen:?}"
    );

    // Not receiving: no timeout however long the silence.
    let a_direction = MediaUpdate {
        remote_rtp: SimulatedCall::ADDR_B,
        remote_rtcp: None,
        direction: MediaDirection::SENDONLY,
        stream,
        srtp: None,
    };
    call.update(Side::A, a_direction).unwrap();
    call.run_for(Duration::from_secs(5));
    assert_eq!(timeouts(&call).len(), 2);

    call.close(Side::B);
    call.run_for(ms(100));
    let byes = call
        .events(Side::A)
        .iter()
        .filter(|(_, e)| *e == MediaEvent::RemoteBye)
        .count();
    assert_eq!(byes, 1);
    let firsts = call
        .events(Side::A)
        .iter()
        .filter(|(_, e)| matches!(e, MediaEvent::FirstPacket { .. }))
        .count();
    assert_eq!(firsts, 1);
    assert!(call.b().is_closed());
}

#[test]
fn symmetric_rtp_latches_to_the_source_of_authenticated_packets_only() {
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    let (ka, kb) = srtp_keys(SrtpProfile::AesCm128HmacSha1_80);
    let (mut a, heard_by_a) = tone_side(stream, HZ_A);
    a.srtp = Some(ka);
    let (mut b, _) = tone_side(stream, HZ_B);
    b.srtp = Some(kb);
    // B is told a wrong address (A sits behind a NAT): nothing B sends arrives until it latches.
    b.direction = MediaDirection::SENDRECV;
    let network = NetworkConditions::clean(ms(15));
    let mut call = SimulatedCall::new(a, b, network, network, 9).unwrap();
    let wrong: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let update = MediaUpdate {
        remote_rtp: wrong,
        remote_rtcp: None,
        direction: MediaDirection::SENDRECV,
        stream,
        srtp: call_keys_b(),
    };
    call.update(Side::B, update).unwrap();
    // An attacker's packets from another address before A's arrive: they must not latch.
    let attacker: SocketAddr = "127.0.0.1:6666".parse().unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    for _ in 0..20 {
        let mut forged = vec![0x80, 111];
        forged.extend((0..60).map(|_| rng.gen::<u8>()));
        call.inject(Side::B, attacker, &forged);
    }
    assert_eq!(call.b().remote_rtp(), wrong);
    call.run_for(Duration::from_secs(2));
    let stats = call.b().stats();
    println!(
        "latching: B sends to {} after 2 s, {} datagrams went to the wrong address, \
         discarded {}",
        stats.remote_addr,
        call.misdirected(),
        stats.discarded
    );
    assert_eq!(stats.remote_addr, SimulatedCall::ADDR_A);
    assert_eq!(stats.discarded, 20);
    assert!(
        call.misdirected() <= 2,
        "{} misdirected",
        call.misdirected()
    );
    let at_a = coverage(&heard_by_a.samples(), 48_000, 10, HZ_B, HZ_A);
    assert!(at_a.ratio() >= 0.95, "{at_a:?}");
}

fn call_keys_b() -> Option<SrtpKeys> {
    Some(srtp_keys(SrtpProfile::AesCm128HmacSha1_80).1)
}

#[test]
fn replays_tampered_packets_and_garbage_are_discarded_and_counted() {
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    let (mut call, _, heard_by_b) = tone_call(
        stream,
        Some(SrtpProfile::AesCm128HmacSha1_80),
        NetworkConditions::clean(ms(10)),
        13,
    );
    call.record_transmits(true);
    call.run_for(Duration::from_secs(1));
    let genuine: Vec<Bytes> = call
        .sent(Side::A)
        .iter()
        .map(|s| s.payload.clone())
        .collect();
    let third: SocketAddr = "127.0.0.1:7777".parse().unwrap();
    let mut rng = SmallRng::seed_from_u64(99);
    let mut injected = 0;
    for round in 0..100 {
        call.run_for(ms(20));
        // A replay of a recent packet, a tampered copy, random bytes, a truncated header,
        // and a plain packet with a foreign SSRC.
        let recent = &genuine[genuine.len() - 1 - round % 10];
        let mut tampered = recent.to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x40;
        let garbage: Vec<u8> = (0..rng.gen_range(1..200)).map(|_| rng.gen()).collect();
        let truncated = recent[..rng.gen_range(1..12)].to_vec();
        let mut foreign = recent[..12].to_vec();
        foreign[8..12].copy_from_slice(&rng.gen::<u32>().to_be_bytes());
        foreign.extend_from_slice(&[0u8; 40]);
        for datagram in [recent.to_vec(), tampered, garbage, truncated, foreign] {
            call.inject(Side::B, third, &datagram);
            injected += 1;
        }
    }
    call.run_for(Duration::from_secs(1));
    let stats = call.b().stats();
    let heard = coverage(&heard_by_b.samples(), 48_000, 10, HZ_A, HZ_B);
    println!(
        "hostile input: {injected} injected, {} discarded; B still sends to {}, hears A in \
         {:.1} % of frames",
        stats.discarded,
        stats.remote_addr,
        heard.ratio() * 100.0
    );
    assert_eq!(stats.discarded, injected);
    assert_eq!(stats.remote_addr, SimulatedCall::ADDR_A);
    assert!(heard.ratio() >= 0.95, "{heard:?}");
    assert_eq!(stats.concealed_frames, 0);
}

#[test]
fn random_datagrams_never_stop_a_session() {
    for srtp in [None, Some(SrtpProfile::AesCm128HmacSha1_32)] {
        let stream = AudioStreamConfig::new(AudioCodecKind::Pcma);
        let (mut call, _, heard_by_b) =
            tone_call(stream, srtp, NetworkConditions::clean(ms(10)), 21);
        let mut rng = SmallRng::seed_from_u64(4242);
        let third: SocketAddr = "127.0.0.1:7778".parse().unwrap();
        for _ in 0..200 {
            call.run_for(ms(10));
            for _ in 0..50 {
                let len = rng.gen_range(0..300);
                let mut datagram: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                // Half look like RTP or RTCP, to get past the first checks.
                if len >= 2 && rng.gen_bool(0.5) {
                    datagram[0] = 0x80 | (datagram[0] & 0x3f);
                    if rng.gen_bool(0.3) {
                        datagram[1] = rng.gen_range(200..=206);
                    }
                }
                call.inject(Side::B, third, &datagram);
            }
        }
        let stats = call.b().stats();
        let heard = coverage(&heard_by_b.samples(), 48_000, 10, HZ_A, HZ_B);
        println!(
            "10 000 random datagrams, SRTP {srtp:?}: discarded {}, latched {}, tone in {:.1} %",
            stats.discarded,
            stats.remote_addr,
            heard.ratio() * 100.0
        );
        assert!(stats.discarded >= 9_000);
        if srtp.is_some() {
            assert_eq!(stats.discarded, 10_000);
        }
        assert_eq!(stats.remote_addr, SimulatedCall::ADDR_A);
        assert!(heard.ratio() >= 0.9, "{heard:?}");
    }
}

#[test]
fn a_codec_change_keeps_the_stream_and_the_tone() {
    let opus = AudioStreamConfig::new(AudioCodecKind::Opus);
    let pcmu = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let (mut call, heard_by_a, heard_by_b) =
        tone_call(opus, None, NetworkConditions::clean(ms(10)), 17);
    call.record_transmits(true);
    call.run_for(Duration::from_secs(1));
    for (side, remote) in [
        (Side::A, SimulatedCall::ADDR_B),
        (Side::B, SimulatedCall::ADDR_A),
    ] {
        let update = MediaUpdate {
            remote_rtp: remote,
            remote_rtcp: None,
            direction: MediaDirection::SENDRECV,
            stream: pcmu,
            srtp: None,
        };
        call.update(side, update).unwrap();
    }
    call.run_for(Duration::from_secs(1));
    let stats = call.a().stats();
    let packets: Vec<_> = call
        .sent(Side::A)
        .iter()
        .filter_map(|s| parse_rtp(&s.payload).ok())
        .filter(|p| matches!(p.header.payload_type, 0 | 111))
        .collect();
    let switch = packets
        .iter()
        .position(|p| p.header.payload_type == 0)
        .unwrap();
    assert!(packets.iter().all(|p| p.header.ssrc == stats.local_ssrc));
    assert_eq!(
        packets[switch].header.sequence_number,
        packets[switch - 1].header.sequence_number.wrapping_add(1)
    );
    assert!(packets[switch].header.marker);
    assert_eq!(stats.codec, "PCMU");
    let a_after = coverage(
        &heard_by_a.samples()[48_000 + 4_800..],
        48_000,
        0,
        HZ_B,
        HZ_A,
    );
    let b_after = coverage(
        &heard_by_b.samples()[48_000 + 4_800..],
        48_000,
        0,
        HZ_A,
        HZ_B,
    );
    println!(
        "Opus → PCMU after 1 s: A hears B in {:.1} %, B hears A in {:.1} % of later frames",
        a_after.ratio() * 100.0,
        b_after.ratio() * 100.0
    );
    assert!(a_after.ratio() > 0.9 && b_after.ratio() > 0.9);
}

#[test]
fn dtmf_digits_arrive_in_order_with_their_durations() {
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus).with_telephone_event(101);
    let (mut call, _, _) = tone_call(stream, None, NetworkConditions::clean(ms(20)), 23);
    call.run_for(ms(500));
    call.send_dtmf(Side::A, "123#", ms(100)).unwrap();
    assert!(call.send_dtmf(Side::A, "12x", ms(100)).is_err());
    call.run_for(Duration::from_secs(2));
    let digits: Vec<(char, Duration)> = call
        .events(Side::B)
        .iter()
        .filter_map(|(_, e)| match e {
            MediaEvent::Dtmf { digit, duration } => Some((*digit, *duration)),
            _ => None,
        })
        .collect();
    println!("DTMF received: {digits:?}");
    let keys: String = digits.iter().map(|(d, _)| *d).collect();
    assert_eq!(keys, "123#");
    assert!(digits.iter().all(|(_, d)| *d == ms(100)));
    assert_eq!(call.b().stats().discarded, 0);
}

#[test]
fn mouth_to_ear_in_virtual_time() {
    for codec in [AudioCodecKind::Opus, AudioCodecKind::Pcmu] {
        let stream = AudioStreamConfig::new(codec);
        // A burst at 3 s, on a frame boundary, once the jitter buffer has settled from its
        // start-up delay to its minimum.
        let burst = Burst::millis(DEVICE, 3_000, 100, 1_000.0, 0.5);
        let source = BurstSource::new(DEVICE, burst);
        let sink = MemorySink::new(DEVICE);
        let heard = sink.shared();
        let a = SimulatedEndpoint::new(stream, Box::new(source), Box::new(MemorySink::new(DEVICE)));
        let b_source = ToneSource::new(DEVICE, HZ_B, 0.0);
        let b = SimulatedEndpoint::new(stream, Box::new(b_source), Box::new(sink));
        let network = NetworkConditions::clean(Duration::ZERO);
        let mut call = SimulatedCall::new(a, b, network, network, 29).unwrap();
        call.run_for(Duration::from_secs(4));
        let at = onset(&heard.samples(), 1_000).unwrap() as u64;
        // The sink's sample n plays at n / 48 kHz; the source's frame k was read at tick k.
        let frame = 960;
        let tick_to_write_ms = (at / frame - burst.start / frame) * 20;
        let sample_ms = (at - burst.start) as f64 / 48.0 + 20.0;
        println!(
            "{codec}, clean network, virtual time: burst written {tick_to_write_ms} ms after its \
             send tick; {sample_ms:.1} ms from capture to playout at sample accuracy"
        );
        let delay = call.b().stats().jitter_buffer_delay_ms;
        assert_eq!(delay, 20.0, "{codec}: the jitter buffer did not settle");
        assert_eq!(tick_to_write_ms, 20, "{codec}");
    }
}

#[test]
fn fec_follows_the_loss_the_peer_reports() {
    let stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    let configured = stream.encoder.packet_loss_percent;
    assert!(configured > 0);
    // A clean network: the first reports show no loss, and FEC stops costing anything.
    let (mut call, _, _) = tone_call(stream, None, NetworkConditions::clean(ms(20)), 31);
    assert_eq!(
        call.a().send_pipeline().expected_loss_percent(),
        configured,
        "before any report, the configured hint"
    );
    call.run_for(Duration::from_secs(15));
    assert!(call.a().stats().rtcp_received > 0);
    assert_eq!(call.a().send_pipeline().expected_loss_percent(), 0);
    assert_eq!(call.b().send_pipeline().expected_loss_percent(), 0);
    // 20 % loss from A to B: B's reports size A's FEC for it; B's stream reaches A intact.
    let lossy = NetworkConditions {
        loss: 0.2,
        ..NetworkConditions::clean(ms(20))
    };
    call.set_conditions(lossy, NetworkConditions::clean(ms(20)));
    call.run_for(Duration::from_secs(15));
    let hint = call.a().send_pipeline().expected_loss_percent();
    println!("A's hint at 20 % loss: {hint} %");
    assert!((8..=40).contains(&hint), "{hint} %");
    assert_eq!(call.b().send_pipeline().expected_loss_percent(), 0);
}
