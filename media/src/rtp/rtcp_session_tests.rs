use super::*;
use crate::rtp::receiver_stats::ReceiverStatsConfig;
use crate::rtp::rtcp_packet::{RTCP_APP, RTCP_XR};

const LOCAL: u32 = 0x0101_0101;
const REMOTE: u32 = 0x0202_0202;

fn session(now: Instant, seed: u64) -> RtcpSession {
    let mut rng = SmallRng::seed_from_u64(seed);
    RtcpSession::new(RtcpConfig::new("alice@callisto"), LOCAL, now, &mut rng)
}

/// A wallclock that advances with the virtual clock.
fn wall(t0: Instant, now: Instant) -> NtpTime {
    NtpTime::from_unix(Duration::from_secs(1_700_000_000)).plus(now - t0)
}

fn block_about_us(
    fraction_lost: u8,
    total_lost: u32,
    jitter: u32,
    lsr: u32,
    delay: u32,
) -> ReceptionReport {
    ReceptionReport {
        ssrc: LOCAL,
        fraction_lost,
        total_lost,
        last_sequence_number: 4242,
        jitter,
        last_sender_report: lsr,
        delay,
    }
}

fn rr_from_remote(blocks: Vec<ReceptionReport>) -> Bytes {
    let rr = ReceiverReport {
        ssrc: REMOTE,
        reports: blocks,
        profile_extensions: Bytes::new(),
    };
    build_compound(&[&rr]).unwrap()
}

#[test]
fn reports_follow_randomised_five_second_intervals() {
    let t0 = Instant::now();
    let mut s = session(t0, 11);
    let first = s.poll_timeout().unwrap() - t0;
    assert!(
        first >= Duration::from_millis(1250) && first < Duration::from_millis(3750),
        "first report after half an interval, randomised: {first:?}"
    );
    assert_eq!(
        s.poll_transmit(t0, wall(t0, t0), None, None),
        None,
        "not due yet"
    );

    let mut now = t0;
    let mut gaps = Vec::new();
    for _ in 0..400 {
        let due = s.poll_timeout().unwrap();
        let previous = now;
        now = due;
        assert!(s.poll_transmit(now, wall(t0, now), None, None).is_some());
        gaps.push(now - previous);
    }
    for gap in &gaps[1..] {
        assert!(*gap >= Duration::from_millis(2500) && *gap < Duration::from_millis(7500));
    }
    let mean = gaps[1..].iter().sum::<Duration>() / (gaps.len() as u32 - 1);
    assert!(
        mean > Duration::from_millis(4700) && mean < Duration::from_millis(5300),
        "mean interval {mean:?}"
    );
    assert!(gaps[1..].iter().any(|g| *g < Duration::from_secs(4)));
    assert!(gaps[1..].iter().any(|g| *g > Duration::from_secs(6)));
}

#[test]
fn sr_only_when_we_sent_since_the_last_report() {
    let t0 = Instant::now();
    let mut s = session(t0, 1);
    let mut sender = RtpSender::with_start(LOCAL, 0, 1000, 111, 48_000);
    let mut recv = ReceiverStats::new(ReceiverStatsConfig::new(48_000));

    let due = s.poll_timeout().unwrap();
    let out = s
        .poll_transmit(due, wall(t0, due), Some(&sender), Some(&mut recv))
        .unwrap();
    let parsed = parse_compound(&out).unwrap();
    assert!(
        matches!(&parsed[0], RtcpPacket::ReceiverReport(rr) if rr.ssrc == LOCAL && rr.reports.is_empty())
    );
    match &parsed[1] {
        RtcpPacket::SourceDescription(sdes) => {
            assert_eq!(sdes.chunks[0].source, LOCAL);
            assert_eq!(sdes.chunks[0].items[0].sdes_type, SdesType::SdesCname);
            assert_eq!(sdes.chunks[0].items[0].text.as_ref(), b"alice@callisto");
        }
        other => panic!("expected SDES, got {other:?}"),
    }

    // Send 10 packets and hear 10 from the remote, then report: SR with one block.
    let mut now = due;
    for i in 0..10u16 {
        now += Duration::from_millis(20);
        sender.audio_packet(now, &[0; 50], 960);
        recv.on_header(now, REMOTE, 100 + i, 960 * u32::from(i), 50);
    }
    let due = s.poll_timeout().unwrap().max(now);
    let ntp = wall(t0, due);
    let out = s
        .poll_transmit(due, ntp, Some(&sender), Some(&mut recv))
        .unwrap();
    match &parse_compound(&out).unwrap()[0] {
        RtcpPacket::SenderReport(sr) => {
            assert_eq!(sr.ssrc, LOCAL);
            assert_eq!(sr.ntp_time, ntp.0);
            assert_eq!((sr.packet_count, sr.octet_count), (10, 500));
            let expected_rtp = sender.sender_info(due).unwrap().rtp_time;
            assert_eq!(sr.rtp_time, expected_rtp);
            assert_eq!(sr.reports.len(), 1);
            assert_eq!(sr.reports[0].ssrc, REMOTE);
            assert_eq!(sr.reports[0].last_sequence_number, 109);
            assert_eq!(
                sr.reports[0].last_sender_report, 0,
                "no SR from the remote yet"
            );
        }
        other => panic!("expected SR, got {other:?}"),
    }

    // Nothing sent or received since: an RR without blocks.
    let due = s.poll_timeout().unwrap();
    let out = s
        .poll_transmit(due, wall(t0, due), Some(&sender), Some(&mut recv))
        .unwrap();
    assert!(
        matches!(&parse_compound(&out).unwrap()[0], RtcpPacket::ReceiverReport(rr) if rr.reports.is_empty())
    );
    assert_eq!((s.counters().sent, s.counters().sent_sr), (3, 1));
}

#[test]
fn rtt_from_known_lsr_and_dlsr() {
    let t0 = Instant::now();
    let mut s = session(t0, 2);
    let arrival = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    // Our SR left at arrival − 1.3 s; the peer held it 1 s: RTT is 300 ms.
    let lsr = arrival
        .middle_32()
        .wrapping_sub(duration_to_ntp_short(Duration::from_millis(1300)));
    let dlsr = duration_to_ntp_short(Duration::from_secs(1));
    let packet = rr_from_remote(vec![block_about_us(0, 0, 0, lsr, dlsr)]);
    s.handle_rtcp(t0, arrival, &packet).unwrap();
    let rtt = s.rtt().unwrap();
    assert!(
        rtt.abs_diff(Duration::from_millis(300)) < Duration::from_micros(50),
        "{rtt:?}"
    );
    assert_eq!(s.remote_reception().unwrap().rtt, Some(rtt));

    assert_eq!(round_trip(arrival, 0, dlsr), None, "no LSR, no RTT");
    assert_eq!(
        round_trip(arrival, arrival.middle_32(), dlsr),
        None,
        "negative RTT (clocks disagree) is ignored"
    );
    // A DLSR counted with a millisecond timer, 3 ms longer than the round trip left: too
    // short to measure, not a disagreement.
    let just_sent = arrival
        .middle_32()
        .wrapping_sub(duration_to_ntp_short(Duration::from_millis(1000)));
    let rounded_up = duration_to_ntp_short(Duration::from_millis(1003));
    assert_eq!(
        round_trip(arrival, just_sent, rounded_up),
        Some(Duration::ZERO)
    );
    let too_far = duration_to_ntp_short(Duration::from_millis(1030));
    assert_eq!(round_trip(arrival, just_sent, too_far), None);
}

#[test]
fn rtt_between_two_sessions_over_a_50ms_path() {
    let t0 = Instant::now();
    let one_way = Duration::from_millis(50);
    let mut a = session(t0, 3);
    let mut b = RtcpSession::new(
        RtcpConfig::new("bob@callisto"),
        REMOTE,
        t0,
        &mut SmallRng::seed_from_u64(4),
    );
    let mut a_sender = RtpSender::with_start(LOCAL, 0, 0, 0, 8_000);
    let mut b_recv = ReceiverStats::new(ReceiverStatsConfig::new(8_000));
    let mut now = t0;
    for i in 0..50u16 {
        now += Duration::from_millis(20);
        a_sender.audio_packet(now, &[0; 160], 160);
        b_recv.on_header(now + one_way, LOCAL, i, 160 * u32::from(i), 160);
    }
    // A reports (SR); B receives it 50 ms later.
    let at = now.max(a.poll_timeout().unwrap());
    let sr = a
        .poll_transmit(at, wall(t0, at), Some(&a_sender), None)
        .unwrap();
    let at_b = at + one_way;
    b.handle_rtcp(at_b, wall(t0, at_b), &sr).unwrap();
    assert!(matches!(
        b.poll_event(),
        Some(RtcpEvent::SenderReport { ssrc: LOCAL, .. })
    ));
    assert!(matches!(
        b.poll_event(),
        Some(RtcpEvent::Cname { ssrc: LOCAL, .. })
    ));
    // B reports 1.7 s later; A receives it 50 ms after that.
    let b_at = at_b + Duration::from_millis(1700);
    let rr = b.close(b_at, wall(t0, b_at), None, Some(&mut b_recv), Some("bye"));
    let a_at = b_at + one_way;
    a.handle_rtcp(a_at, wall(t0, a_at), &rr).unwrap();
    let rtt = a.rtt().unwrap();
    assert!(
        rtt.abs_diff(2 * one_way) < Duration::from_micros(100),
        "{rtt:?}"
    );
    let reception = a.remote_reception().unwrap();
    assert_eq!(reception.reporter_ssrc, REMOTE);
    assert_eq!(reception.extended_highest_sequence, 49);
    assert_eq!(a.remote_cname(), Some((REMOTE, "bob@callisto")));
    let events: Vec<RtcpEvent> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.contains(&RtcpEvent::Bye {
        ssrc: REMOTE,
        reason: Some("bye".into())
    }));
}

#[test]
fn exposes_remote_loss_and_jitter() {
    let t0 = Instant::now();
    let mut s = session(t0, 5);
    let packet = rr_from_remote(vec![
        block_about_us(64, 10, 480, 0, 0),
        ReceptionReport {
            ssrc: 0x9999,
            ..block_about_us(255, 999, 1, 0, 0)
        },
    ]);
    s.handle_rtcp(t0, wall(t0, t0), &packet).unwrap();
    let r = s.remote_reception().unwrap();
    assert_eq!(
        (r.fraction_lost, r.cumulative_lost, r.jitter),
        (64, 10, 480)
    );
    assert_eq!(r.loss_ratio(), 0.25);
    assert_eq!(r.jitter_ms(48_000), 10.0);
    assert_eq!(r.rtt, None);
    assert_eq!(s.rtt(), None);
    // Only the block about our SSRC becomes an event.
    assert!(matches!(
        s.poll_event(),
        Some(RtcpEvent::ReceptionReport(_))
    ));
    assert_eq!(s.poll_event(), None);

    // A negative cumulative loss (duplicates) is sign-extended from 24 bits.
    let packet = rr_from_remote(vec![block_about_us(0, 0x00ff_fffe, 0, 0, 0)]);
    s.handle_rtcp(t0, wall(t0, t0), &packet).unwrap();
    assert_eq!(s.remote_reception().unwrap().cumulative_lost, -2);
}

#[test]
fn close_sends_bye_and_stops() {
    let t0 = Instant::now();
    let mut s = session(t0, 6);
    let out = s.close(t0, wall(t0, t0), None, None, Some("hung up"));
    let parsed = parse_compound(&out).unwrap();
    assert_eq!(parsed.len(), 3);
    match &parsed[2] {
        RtcpPacket::Goodbye(bye) => {
            assert_eq!(bye.sources, vec![LOCAL]);
            assert_eq!(bye.reason.as_ref(), b"hung up");
        }
        other => panic!("expected BYE, got {other:?}"),
    }
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    let later = t0 + Duration::from_secs(60);
    assert_eq!(s.poll_transmit(later, wall(t0, later), None, None), None);
}

#[test]
fn ignores_unknown_types_and_counts_garbage() {
    let t0 = Instant::now();
    let mut s = session(t0, 7);
    let mut packet = rr_from_remote(vec![block_about_us(1, 1, 1, 0, 0)]).to_vec();
    packet.extend([0x80, RTCP_APP, 0, 2, 0, 0, 0, 1, b'a', b'b', b'c', b'd']);
    packet.extend([0x80, RTCP_XR, 0, 1, 0, 0, 0, 1]);
    s.handle_rtcp(t0, wall(t0, t0), &packet).unwrap();
    assert_eq!(s.counters().ignored, 2);
    assert_eq!(s.remote_reception().unwrap().fraction_lost, 1);

    assert!(s
        .handle_rtcp(t0, wall(t0, t0), &packet[..packet.len() - 2])
        .is_err());
    assert!(s.handle_rtcp(t0, wall(t0, t0), &[]).is_err());
    assert_eq!(s.counters().malformed, 2);
    assert_eq!(s.counters().received, 1);
}

#[test]
fn long_cname_is_cut_at_a_character_boundary() {
    let t0 = Instant::now();
    let cname = "é".repeat(200);
    let mut s = RtcpSession::new(
        RtcpConfig::new(cname),
        LOCAL,
        t0,
        &mut SmallRng::seed_from_u64(8),
    );
    let out = s.close(t0, wall(t0, t0), None, None, None);
    match &parse_compound(&out).unwrap()[1] {
        RtcpPacket::SourceDescription(sdes) => {
            let text = std::str::from_utf8(&sdes.chunks[0].items[0].text).unwrap();
            assert_eq!(text.len(), 254);
        }
        other => panic!("expected SDES, got {other:?}"),
    }
}

#[test]
fn nack_remb_and_transport_feedback_become_events() {
    use crate::congestion::TransportFeedbackBuilder;
    use crate::rtp::nack::build_nack;
    use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;

    let t0 = Instant::now();
    let mut s = session(t0, 9);
    let nack = build_nack(REMOTE, LOCAL, &[65_535, 1, 40]);
    let remb = ReceiverEstimatedMaximumBitrate {
        sender_ssrc: REMOTE,
        bitrate: 750_000.0,
        ssrcs: vec![LOCAL],
    };
    let mut builder = TransportFeedbackBuilder::new(REMOTE, LOCAL, Duration::from_millis(100));
    builder.on_packet_received(7, t0);
    builder.on_packet_received(9, t0 + Duration::from_millis(3));
    let twcc = builder
        .poll_feedback(t0 + Duration::from_millis(100))
        .unwrap();
    let packet = build_compound(&[&nack, &remb, &twcc]).unwrap();
    s.handle_rtcp(t0, wall(t0, t0), &packet).unwrap();
    let events: Vec<RtcpEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[0],
        RtcpEvent::Nack {
            media_ssrc: LOCAL,
            sequences: vec![65_535, 1, 40],
        }
    );
    assert_eq!(
        events[1],
        RtcpEvent::Remb {
            bitrate_bps: 750_000,
            ssrcs: vec![LOCAL],
        }
    );
    match &events[2] {
        RtcpEvent::TransportFeedback(feedback) => {
            let summary: Vec<(u16, bool)> = feedback
                .iter()
                .map(|f| (f.sequence, f.arrival.is_some()))
                .collect();
            assert_eq!(summary, vec![(7, true), (8, false), (9, true)]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.counters().ignored, 0);
}
