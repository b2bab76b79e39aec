use super::*;
use crate::rtp::rtcp_packet::{build_compound, parse_compound, RtcpPacket};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn gaps_wait_for_the_reorder_window_and_cross_the_wrap() {
    let t0 = Instant::now();
    let mut nack = NackGenerator::new(NackConfig::default());
    assert_eq!(nack.on_packet(65_533, t0), NackArrival::New);
    // 65534, 65535, 0 and 2 go missing across the wrap.
    assert_eq!(nack.on_packet(1, t0), NackArrival::New);
    assert_eq!(nack.on_packet(3, t0), NackArrival::New);
    assert_eq!(nack.missing(), 4);
    assert_eq!(nack.poll_timeout(), Some(t0 + ms(10)));
    assert_eq!(nack.poll_nack(t0 + ms(5)), None);
    // 0 was only reordered: it arrives inside the window and is never asked for.
    assert_eq!(nack.on_packet(0, t0 + ms(6)), NackArrival::Reordered);
    let asked = nack.poll_nack(t0 + ms(10)).unwrap();
    assert_eq!(asked, vec![65_534, 65_535, 2]);
    // Retried 1.25 RTT + 10 ms (135 ms) later, not before.
    assert_eq!(nack.poll_nack(t0 + ms(144)), None);
    assert_eq!(nack.on_packet(65_535, t0 + ms(70)), NackArrival::Recovered);
    assert_eq!(nack.on_packet(65_535, t0 + ms(71)), NackArrival::Duplicate);
    assert_eq!(nack.poll_nack(t0 + ms(145)).unwrap(), vec![65_534, 2]);

    // The list packs into one pair: 65534 with 2 at offset 4.
    let packet = build_nack(1, 2, &[65_534, 2]);
    assert_eq!(packet.nacks.len(), 1);
    assert_eq!(nacked_sequences(&packet), vec![65_534, 2]);
    let bytes = build_compound(&[&packet]).unwrap();
    match &parse_compound(&bytes).unwrap()[0] {
        RtcpPacket::Nack(parsed) => assert_eq!(parsed, &packet),
        other => panic!("{other:?}"),
    }
    let stats = nack.stats();
    assert_eq!((stats.missing, stats.recovered, stats.reordered), (4, 1, 1));
}

#[test]
fn gives_up_after_retries_or_age_and_asks_for_a_key_frame() {
    let t0 = Instant::now();
    let config = NackConfig {
        max_retries: 3,
        ..NackConfig::default()
    };
    let mut nack = NackGenerator::new(config);
    nack.set_rtt(ms(40));
    nack.on_packet(10, t0);
    nack.on_packet(12, t0);
    let mut asked = 0;
    let mut now = t0;
    while let Some(at) = nack.poll_timeout() {
        now = at;
        asked += nack.poll_nack(now).map_or(0, |l| l.len());
    }
    assert_eq!(asked, 3);
    assert!(nack.take_keyframe_request());
    assert!(!nack.take_keyframe_request());
    assert_eq!(now, t0 + ms(10 + 3 * 60));

    // Age: with many retries allowed, a packet is given up after max_age.
    let mut nack = NackGenerator::new(NackConfig {
        max_retries: 1_000,
        ..NackConfig::default()
    });
    nack.on_packet(10, t0);
    nack.on_packet(12, t0);
    let mut last_asked = t0;
    while let Some(at) = nack.poll_timeout() {
        if nack.poll_nack(at).is_some() {
            last_asked = at;
        }
    }
    // Asked at 10 ms, then every 135 ms (RTT 100 ms): the last at 955 ms.
    assert_eq!(last_asked, t0 + ms(955));
    assert!(nack.take_keyframe_request());
}

#[test]
fn a_huge_gap_escalates_instead_of_tracking() {
    let t0 = Instant::now();
    let mut nack = NackGenerator::new(NackConfig::default());
    nack.on_packet(100, t0);
    nack.on_packet(100 + 20_000, t0);
    assert_eq!(nack.missing(), 0);
    assert!(nack.take_keyframe_request());
    // Small gaps after it are tracked again.
    nack.on_packet(100 + 20_002, t0);
    assert_eq!(nack.missing(), 1);
}

#[test]
fn resends_once_per_rtt_within_age_and_budget() {
    let t0 = Instant::now();
    let mut buffer = RetransmissionBuffer::new(RetransmissionConfig {
        max_resend_bps: 80_000,
        ..RetransmissionConfig::default()
    });
    buffer.set_rtt(ms(50));
    for i in 0..100u16 {
        let sequence = 65_500u16.wrapping_add(i);
        let packet = Bytes::from(vec![i as u8; 1_000]);
        buffer.on_packet_sent(sequence, packet, t0 + ms(u64::from(i) * 10));
    }
    let now = t0 + ms(1_000);
    let out = buffer.on_nack(&[65_535, 0, 40], now);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0][0], 35);
    assert_eq!(out[1][0], 36);
    // Within an RTT: refused; after: resent again.
    assert!(buffer.on_nack(&[65_535], now + ms(20)).is_empty());
    assert_eq!(buffer.on_nack(&[65_535], now + ms(60)).len(), 1);
    // Never sent, or before the buffer: nothing.
    assert!(buffer.on_nack(&[100, 65_499], now + ms(60)).is_empty());
    // The budget (80 kbps, at most one second of it saved) has refilled to 8 kB: eight packets.
    let all: Vec<u16> = (0..100u16).map(|i| 65_500u16.wrapping_add(i)).collect();
    let burst = buffer.on_nack(&all, now + ms(200));
    assert_eq!(burst.len(), 8);
    let stats = buffer.stats();
    assert!(stats.over_budget > 0 && stats.unknown == 2 && stats.too_soon > 0);
    // 1.6 s after sending, the early packets are too old to resend.
    assert!(buffer.on_nack(&[65_500], t0 + ms(1_600)).is_empty());
}

#[test]
fn garbage_nack_lists_are_bounded() {
    // 300 pairs with every bit set: 5100 sequence numbers, many repeated.
    let garbage = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 2,
        nacks: (0..300u16)
            .map(|i| NackPair {
                packet_id: i.wrapping_mul(7_919),
                lost_packets: 0xffff,
            })
            .collect(),
    };
    let sequences = nacked_sequences(&garbage);
    assert_eq!(sequences.len(), MAX_NACKED_PER_PACKET);
    let t0 = Instant::now();
    let mut buffer = RetransmissionBuffer::new(RetransmissionConfig::default());
    for i in 0..2_000u16 {
        buffer.on_packet_sent(i, Bytes::from(vec![0; 1_200]), t0);
    }
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let out = buffer.on_nack(&all, t0);
    // At most 1024 looked at, and the 1 Mbps budget allows 104 packets of 1200 bytes.
    assert_eq!(buffer.stats().requested, MAX_NACKED_PER_PACKET as u64);
    assert_eq!(out.len(), 104);
}
