//! Seeded garbage and mutation fuzzing of every RTP-side parser: no input may panic, and no
//! altered SRTP/SRTCP packet may authenticate.

use std::time::{Duration, Instant};

use bytes::Bytes;
use callisto_media::rtp::demux::Demuxer;
use callisto_media::rtp::dtmf::{DtmfReceiver, TelephoneEvent};
use callisto_media::rtp::dtmf_relay::DtmfRelay;
use callisto_media::rtp::ntp::NtpTime;
use callisto_media::rtp::packet::{parse_rtp, validate_rtp_header, RtpPacket};
use callisto_media::rtp::receiver_stats::{ReceiverStats, ReceiverStatsConfig};
use callisto_media::rtp::rtcp_packet::parse_compound;
use callisto_media::rtp::rtcp_session::{RtcpConfig, RtcpSession};
use callisto_media::rtp::sender::RtpSender;
use callisto_media::rtp::srtp::{SrtpKeyMaterial, SrtpProfile, SrtpSession};
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};

const ROUNDS: usize = 20_000;

fn random_bytes(rng: &mut SmallRng, max: usize) -> Vec<u8> {
    let len = rng.gen_range(0..=max);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    // Bias half of them into the RTP/RTCP first-byte range so they get past the demultiplexer.
    if !v.is_empty() && rng.gen_bool(0.5) {
        v[0] = 0x80 | (v[0] & 0x3f);
    }
    v
}

/// Flips bits, truncates, extends, or rewrites one header field.
fn mutate(rng: &mut SmallRng, original: &[u8]) -> Vec<u8> {
    let mut v = original.to_vec();
    for _ in 0..rng.gen_range(1..=3) {
        match rng.gen_range(0..6) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if !v.is_empty() => {
                let keep = rng.gen_range(0..v.len());
                v.truncate(keep);
            }
            2 => v.extend((0..rng.gen_range(1..16)).map(|_| rng.r#gen::<u8>())),
            3 if !v.is_empty() => v[0] ^= [0x20, 0x10, 0x0f, 0x1f][rng.gen_range(0..4)],
            4 if v.len() >= 4 => {
                v[2] = rng.r#gen();
                v[3] = rng.r#gen();
            }
            _ if !v.is_empty() => {
                let last = v.len() - 1;
                v[last] = rng.r#gen();
            }
            _ => v.push(rng.r#gen()),
        }
    }
    v
}

fn valid_rtp_samples() -> Vec<Vec<u8>> {
    let plain = RtpSender::with_start(0x1234, 7, 99, 111, 48_000)
        .audio_packet(Instant::now(), &[0x55; 40], 960)
        .to_vec();
    // CSRCs, a one-byte extension block and padding.
    let mut rich = vec![0xb2, 0x6f, 0, 9, 0, 0, 1, 0, 0, 0, 0x12, 0x34];
    rich.extend([0, 0, 0, 1, 0, 0, 0, 2]);
    rich.extend([0xbe, 0xde, 0, 2, 0x10, 0xff, 0x22, 1, 2, 3, 0, 0]);
    rich.extend([9; 13]);
    rich.extend([0, 0, 3]);
    assert!(parse_rtp(&rich).is_ok());
    vec![plain, rich]
}

fn valid_rtcp_sample(now: Instant) -> Vec<u8> {
    let mut session = RtcpSession::new(
        RtcpConfig::new("fuzz@callisto"),
        0x1234,
        now,
        &mut SmallRng::seed_from_u64(1),
    );
    let mut sender = RtpSender::with_start(0x1234, 0, 0, 0, 8_000);
    let mut stats = ReceiverStats::new(ReceiverStatsConfig::new(8_000));
    for i in 0..10u16 {
        sender.audio_packet(now, &[0; 160], 160);
        stats.on_header(now, 0x9999, i, 160 * u32::from(i), 160);
    }
    let mut v = session
        .close(
            now,
            NtpTime(0x1234_5678_9abc_def0),
            Some(&sender),
            Some(&mut stats),
            Some("end"),
        )
        .to_vec();
    // An XR and an APP after the BYE.
    v.extend([0x80, 207, 0, 3, 0, 0, 0x12, 0x34, 4, 0, 0, 2, 1, 2, 3, 4]);
    v.extend([0x81, 204, 0, 2, 0, 0, 0x12, 0x34, b'a', b'b', b'c', b'd']);
    assert!(parse_compound(&v).is_ok());
    v
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = SmallRng::seed_from_u64(0xf022);
    let now = Instant::now();
    let mut demux = Demuxer::new();
    let mut rtcp = RtcpSession::new(RtcpConfig::new("x"), 1, now, &mut rng);
    let (a, b) = keys();
    let mut srtp = SrtpSession::new(SrtpProfile::AesCm128HmacSha1_80, &a, &b).unwrap();
    let mut dtmf = DtmfReceiver::new(8_000);
    let mut stats = ReceiverStats::new(ReceiverStatsConfig::new(8_000));
    let mut accepted_rtp = 0;
    for i in 0..ROUNDS {
        let bytes = random_bytes(&mut rng, 200);
        let _ = demux.demux(&bytes);
        let _ = validate_rtp_header(&bytes);
        if let Ok(p) = demux.parse_rtp(&bytes) {
            accepted_rtp += 1;
            assert!(p.payload.len() < bytes.len());
            let _ = dtmf.handle_packet(&p);
            let at = now + Duration::from_millis(i as u64);
            stats.on_packet(at, &p);
        }
        let _ = parse_compound(&bytes);
        let _ = rtcp.handle_rtcp(now, NtpTime(i as u64), &bytes);
        assert!(srtp.unprotect_rtp(&bytes).is_err());
        assert!(srtp.unprotect_rtcp(&bytes).is_err());
        let _ = TelephoneEvent::parse(&bytes);
        let _ = DtmfRelay::parse(&String::from_utf8_lossy(&bytes));
    }
    assert!(
        accepted_rtp > 100,
        "the generator reaches the parser's accepting paths"
    );
    assert_eq!(
        demux.counters().rtp
            + demux.counters().rtcp
            + demux.counters().refused
            + demux.counters().stun
            + demux.counters().dtls
            + demux.counters().zrtp
            + demux.counters().turn_channel,
        ROUNDS as u64
    );
    assert_eq!(stats.counters().packets, accepted_rtp);
    let c = srtp.counters();
    assert_eq!(
        c.auth_failed + c.too_short + c.malformed + c.replayed + c.other,
        2 * ROUNDS as u64
    );
    while rtcp.poll_event().is_some() {}
    while dtmf.poll_event().is_some() {}
}

#[test]
fn mutated_rtp_and_rtcp_never_panic() {
    let mut rng = SmallRng::seed_from_u64(0x3a7e);
    let now = Instant::now();
    let rtp_samples = valid_rtp_samples();
    let rtcp_sample = valid_rtcp_sample(now);
    let mut rtcp = RtcpSession::new(RtcpConfig::new("x"), 0x9999, now, &mut rng);
    let mut dtmf = DtmfReceiver::new(48_000);
    let mut rtp_ok = 0;
    let mut rtcp_ok = 0;
    for _ in 0..ROUNDS {
        let original = &rtp_samples[rng.gen_range(0..rtp_samples.len())];
        let m = mutate(&mut rng, original);
        if let Ok(p) = parse_rtp(&m) {
            rtp_ok += 1;
            let _ = dtmf.handle_packet(&RtpPacket {
                header: p.header,
                payload: p.payload,
            });
        }
        let m = mutate(&mut rng, &rtcp_sample);
        if parse_compound(&m).is_ok() {
            rtcp_ok += 1;
        }
        let _ = rtcp.handle_rtcp(now, NtpTime(0), &m);
        while rtcp.poll_event().is_some() {}
    }
    // Mutations keep some packets valid and break others: both paths are exercised.
    assert!(rtp_ok > 100 && rtp_ok < ROUNDS, "{rtp_ok}");
    assert!(rtcp_ok > 100 && rtcp_ok < ROUNDS, "{rtcp_ok}");
    assert_eq!(
        rtcp.counters().received + rtcp.counters().malformed,
        ROUNDS as u64
    );
}

fn keys() -> (SrtpKeyMaterial, SrtpKeyMaterial) {
    let mut rng = StdRng::seed_from_u64(99);
    (
        SrtpKeyMaterial::generate(&mut rng),
        SrtpKeyMaterial::generate(&mut rng),
    )
}

#[test]
fn mutated_srtp_never_authenticates() {
    let mut rng = SmallRng::seed_from_u64(0x5e1f);
    let (a, b) = keys();
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ] {
        let mut alice = SrtpSession::new(profile, &a, &b).unwrap();
        let mut bob = SrtpSession::new(profile, &b, &a).unwrap();
        let mut sender = RtpSender::with_start(0xA11CE, 0, 0, 0, 8_000);
        let now = Instant::now();
        let rtcp_plain = valid_rtcp_sample(now);
        for round in 0..ROUNDS / 2 {
            let plain = sender.audio_packet(now, &[round as u8; 60], 160);
            let wire = alice.protect_rtp(&plain).unwrap();
            let m = mutate(&mut rng, &wire);
            if m != wire.as_ref() {
                assert!(bob.unprotect_rtp(&m).is_err(), "altered SRTP accepted");
            }
            // The genuine packet still authenticates after the forgery.
            assert_eq!(bob.unprotect_rtp(&wire).unwrap(), plain);

            let wire = alice.protect_rtcp(&rtcp_plain).unwrap();
            let m = mutate(&mut rng, &wire);
            if m != wire.as_ref() {
                assert!(bob.unprotect_rtcp(&m).is_err(), "altered SRTCP accepted");
            }
            assert_eq!(
                bob.unprotect_rtcp(&wire).unwrap(),
                Bytes::from(rtcp_plain.clone())
            );
        }
        assert_eq!(bob.counters().rtp_unprotected, (ROUNDS / 2) as u64);
    }
}

/// A compound of video feedback: NACK, TWCC, REMB, PLI and FIR.
fn valid_video_feedback_sample(now: Instant) -> Vec<u8> {
    use callisto_media::congestion::TransportFeedbackBuilder;
    use callisto_media::rtp::keyframe::KeyframeRequest;
    use callisto_media::rtp::nack::build_nack;
    use callisto_media::rtp::rtcp_packet::build_compound;
    use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;

    let mut builder = TransportFeedbackBuilder::new(1, 2, Duration::from_millis(100));
    for (i, sequence) in [10u16, 11, 13, 20, 21].into_iter().enumerate() {
        builder.on_packet_received(sequence, now + Duration::from_millis(7 * i as u64));
    }
    let twcc = builder
        .poll_feedback(now + Duration::from_millis(100))
        .expect("a report is due");
    let remb = ReceiverEstimatedMaximumBitrate {
        sender_ssrc: 1,
        bitrate: 1_500_000.0,
        ssrcs: vec![2, 3],
    };
    let mut v = build_compound(&[&build_nack(1, 2, &[5, 7, 30, 65_535]), &twcc, &remb])
        .expect("feedback marshals")
        .to_vec();
    v.extend_from_slice(&KeyframeRequest::Pli.build(1, 2).expect("PLI marshals"));
    v.extend_from_slice(
        &KeyframeRequest::Fir { sequence: 3 }
            .build(1, 2)
            .expect("FIR marshals"),
    );
    assert_eq!(parse_compound(&v).map(|p| p.len()), Ok(5));
    v
}

#[test]
fn mutated_video_feedback_never_panics() {
    use callisto_media::congestion::{
        feedback_from_twcc, BitrateController, CongestionConfig, PacketFeedback,
    };
    use callisto_media::rtp::nack::{
        nacked_sequences, RetransmissionBuffer, RetransmissionConfig, MAX_NACKED_PER_PACKET,
    };
    use callisto_media::rtp::rtcp_packet::RtcpPacket;

    let mut rng = SmallRng::seed_from_u64(0x71dc);
    let now = Instant::now();
    let sample = valid_video_feedback_sample(now);
    let mut controller = BitrateController::new(CongestionConfig::default());
    let mut buffer = RetransmissionBuffer::new(RetransmissionConfig::default());
    for sequence in 0..100u16 {
        controller.on_packet_sent(sequence, 1_200, now);
        buffer.on_packet_sent(sequence, Bytes::from_static(&[0; 100]), now);
    }
    let mut parsed = 0;
    let mut feedback_seen = 0;
    for round in 0..ROUNDS {
        let at = now + Duration::from_millis(round as u64);
        let m = mutate(&mut rng, &sample);
        let Ok(packets) = parse_compound(&m) else {
            continue;
        };
        parsed += 1;
        for packet in packets {
            match packet {
                RtcpPacket::Nack(nack) => {
                    let sequences = nacked_sequences(&nack);
                    assert!(sequences.len() <= MAX_NACKED_PER_PACKET);
                    buffer.on_nack(&sequences, at);
                }
                RtcpPacket::TransportFeedback(twcc) => {
                    let feedback: Vec<PacketFeedback> = feedback_from_twcc(&twcc);
                    assert!(feedback.len() <= usize::from(twcc.packet_status_count));
                    controller.on_transport_feedback(&feedback, at);
                    feedback_seen += 1;
                }
                RtcpPacket::Remb(remb) => controller.on_remb(remb.bitrate as u64, at),
                _ => {}
            }
        }
        let target = controller.target_bitrate();
        assert!((50_000..=2_500_000).contains(&target), "{target}");
    }
    assert!(parsed > 100 && parsed < ROUNDS, "{parsed}");
    assert!(feedback_seen > 100, "{feedback_seen}");
}
