use super::*;
use crate::video::h264::{H264Packetizer, PacketizationMode};

/// An access unit like the encoder's: SPS, PPS, then an IDR slice (first_mb 0) of `len` bytes;
/// or a P slice when `key` is false.
fn access_unit(key: bool, len: usize, fill: u8) -> Vec<Vec<u8>> {
    let slice = |header: u8| {
        let mut n = vec![header, 0x88];
        n.extend(std::iter::repeat_n(fill, len - 2));
        n
    };
    if key {
        vec![
            vec![0x67, 0x42, 0xE0, 0x1F],
            vec![0x68, 0xCE, 0x3C, 0x80],
            slice(0x65),
        ]
    } else {
        vec![slice(0x41)]
    }
}

struct Sender {
    packetizer: H264Packetizer,
    sequence: u16,
}

impl Sender {
    fn new(mtu: usize) -> Self {
        Sender {
            packetizer: H264Packetizer::new(PacketizationMode::NonInterleaved, mtu).unwrap(),
            sequence: 65_530,
        }
    }

    /// (sequence, timestamp, marker, payload) for each packet of an access unit.
    fn packets(&mut self, unit: &[Vec<u8>], timestamp: u32) -> Vec<(u16, u32, bool, Vec<u8>)> {
        let payloads = self.packetizer.packetize(unit).unwrap();
        let last = payloads.len() - 1;
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                self.sequence = self.sequence.wrapping_add(1);
                (self.sequence, timestamp, i == last, p)
            })
            .collect()
    }
}

fn drain(d: &mut H264Depacketizer) -> Vec<DepacketizerOutput> {
    std::iter::from_fn(|| d.poll_output()).collect()
}

fn feed(d: &mut H264Depacketizer, packets: &[(u16, u32, bool, Vec<u8>)]) {
    for (seq, ts, marker, payload) in packets {
        d.handle_packet(*seq, *ts, *marker, payload).unwrap();
    }
}

#[test]
fn reassembles_stap_a_and_fu_a_across_sequence_wrap() {
    let mut sender = Sender::new(300);
    let mut d = H264Depacketizer::default();
    let units = [
        access_unit(true, 1000, 1),
        access_unit(false, 700, 2),
        access_unit(false, 50, 3),
    ];
    for (i, unit) in units.iter().enumerate() {
        feed(&mut d, &sender.packets(unit, i as u32 * 3000));
    }
    let out = drain(&mut d);
    assert_eq!(out.len(), 3);
    for (i, (output, unit)) in out.iter().zip(&units).enumerate() {
        let DepacketizerOutput::AccessUnit(au) = output else {
            panic!("unit {i}: {output:?}");
        };
        assert_eq!(&au.nalus, unit);
        assert_eq!(au.timestamp, i as u32 * 3000);
        assert_eq!(au.is_keyframe, i == 0);
        assert!(!au.follows_loss);
    }
    assert_eq!(d.stats().access_units, 3);
    assert_eq!(d.stats().lost_packets, 0);
}

#[test]
fn a_lost_fragment_drops_exactly_its_access_unit() {
    let mut sender = Sender::new(300);
    let mut d = H264Depacketizer::default();
    let first = sender.packets(&access_unit(true, 1000, 1), 0);
    let mut second = sender.packets(&access_unit(false, 900, 2), 3000);
    let third = sender.packets(&access_unit(false, 900, 3), 6000);
    let fourth = sender.packets(&access_unit(true, 400, 4), 9000);
    assert!(second.len() >= 3);
    second.remove(1);
    for packets in [&first, &second, &third, &fourth] {
        feed(&mut d, packets);
    }
    let out = drain(&mut d);
    let summary: Vec<(Option<u32>, bool, bool)> = out
        .iter()
        .map(|o| match o {
            DepacketizerOutput::AccessUnit(au) => (Some(au.timestamp), au.follows_loss, false),
            DepacketizerOutput::NeedKeyframe { dropped } => (*dropped, false, true),
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some(0), false, false),
            (Some(3000), false, true),
            (Some(6000), true, false),
            (Some(9000), false, false),
        ]
    );
    let stats = d.stats();
    assert_eq!(
        (
            stats.lost_packets,
            stats.dropped_access_units,
            stats.access_units
        ),
        (1, 1, 3)
    );
}

#[test]
fn a_lost_marker_packet_drops_its_unit_and_keeps_the_next() {
    let mut sender = Sender::new(300);
    let mut d = H264Depacketizer::default();
    let mut first = sender.packets(&access_unit(false, 900, 1), 0);
    let second = sender.packets(&access_unit(false, 900, 2), 3000);
    first.pop();
    feed(&mut d, &first);
    feed(&mut d, &second);
    let out = drain(&mut d);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        DepacketizerOutput::NeedKeyframe { dropped: Some(0) }
    );
    assert!(
        matches!(&out[1], DepacketizerOutput::AccessUnit(au) if au.timestamp == 3000 && au.follows_loss)
    );
}

#[test]
fn a_lost_head_drops_the_next_unit_and_whole_lost_units_are_reported() {
    let mut sender = Sender::new(300);
    let mut d = H264Depacketizer::default();
    let first = sender.packets(&access_unit(false, 100, 1), 0);
    let mut second = sender.packets(&access_unit(false, 900, 2), 3000);
    let lost_whole = sender.packets(&access_unit(false, 100, 3), 6000);
    let fourth = sender.packets(&access_unit(false, 100, 4), 9000);
    second.remove(0);
    feed(&mut d, &first);
    feed(&mut d, &second);
    drop(lost_whole);
    feed(&mut d, &fourth);
    let out = drain(&mut d);
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(matches!(&out[0], DepacketizerOutput::AccessUnit(au) if au.timestamp == 0));
    // The FU-A continuation without its start: unit 3000 is dropped.
    assert_eq!(
        out[1],
        DepacketizerOutput::NeedKeyframe {
            dropped: Some(3000)
        }
    );
    // Unit 6000 vanished whole: reported without a timestamp, then 9000 delivered.
    assert_eq!(out[2], DepacketizerOutput::NeedKeyframe { dropped: None });
    assert!(matches!(&out[3], DepacketizerOutput::AccessUnit(au) if au.timestamp == 9000));
}

#[test]
fn late_duplicate_and_invalid_payloads_are_refused_and_counted() {
    let mut d = H264Depacketizer::default();
    d.handle_packet(10, 0, true, &[0x41, 0x88, 1]).unwrap();
    assert_eq!(
        d.handle_packet(10, 0, true, &[0x41, 0x88, 1]),
        Err(H264PayloadError::LateOrDuplicate { sequence: 10 })
    );
    assert_eq!(
        d.handle_packet(9, 0, true, &[0x41, 0x88]),
        Err(H264PayloadError::LateOrDuplicate { sequence: 9 })
    );
    let cases: [(&[u8], H264PayloadError); 8] = [
        (&[], H264PayloadError::Truncated { len: 0 }),
        (&[0xC1, 0x88], H264PayloadError::ForbiddenBit),
        (&[0x19, 0, 1], H264PayloadError::UnsupportedType(25)),
        (&[0x00, 1], H264PayloadError::UnsupportedType(0)),
        (&[0x78], H264PayloadError::Truncated { len: 1 }),
        (
            &[0x78, 0, 5, 0x67, 1],
            H264PayloadError::MalformedStapA("unit overruns the packet"),
        ),
        (
            &[0x78, 0, 2, 0x67, 1, 0],
            H264PayloadError::MalformedStapA("truncated unit size"),
        ),
        (
            &[0x7C, 0x05, 1],
            H264PayloadError::MalformedFuA("continuation without a start"),
        ),
    ];
    for (sequence, (payload, error)) in (11u16..).zip(cases) {
        assert_eq!(
            d.handle_packet(sequence, u32::from(sequence) * 3000, true, payload),
            Err(error),
            "{payload:?}"
        );
    }
    let stats = d.stats();
    assert_eq!(
        (
            stats.invalid_packets,
            stats.late_packets,
            stats.access_units
        ),
        (8, 2, 1)
    );
    assert_eq!(stats.dropped_access_units, 8);
    let needs = drain(&mut d)
        .iter()
        .filter(|o| matches!(o, DepacketizerOutput::NeedKeyframe { .. }))
        .count();
    assert_eq!(needs, 8);
}

#[test]
fn oversized_access_units_are_dropped() {
    let mut d = H264Depacketizer::new(DepacketizerConfig {
        max_access_unit_size: 1000,
    });
    let mut sender = Sender::new(300);
    feed(&mut d, &sender.packets(&access_unit(false, 900, 1), 0));
    let big = sender.packets(&access_unit(false, 1500, 2), 3000);
    let results: Vec<_> = big
        .iter()
        .map(|(s, t, m, p)| d.handle_packet(*s, *t, *m, p))
        .collect();
    assert!(results.contains(&Err(H264PayloadError::AccessUnitTooLarge { limit: 1000 })));
    let out = drain(&mut d);
    assert!(matches!(&out[0], DepacketizerOutput::AccessUnit(au) if au.timestamp == 0));
    assert_eq!(
        out[1],
        DepacketizerOutput::NeedKeyframe {
            dropped: Some(3000)
        }
    );
}

#[test]
fn units_end_on_a_timestamp_change_without_marker_and_on_flush() {
    let mut d = H264Depacketizer::default();
    d.handle_packet(1, 0, false, &[0x41, 0x88, 1]).unwrap();
    d.handle_packet(2, 3000, false, &[0x41, 0x88, 2]).unwrap();
    assert!(
        matches!(d.poll_output(), Some(DepacketizerOutput::AccessUnit(au)) if au.timestamp == 0)
    );
    assert!(d.poll_output().is_none());
    d.flush();
    assert!(
        matches!(d.poll_output(), Some(DepacketizerOutput::AccessUnit(au)) if au.timestamp == 3000)
    );
}

#[test]
fn accepts_what_the_webrtc_rs_payloader_sends() {
    use bytes::Bytes;
    use rtc_rtp::packetizer::Payloader;
    let unit = access_unit(true, 3000, 7);
    let mut payloader = rtc_rtp::codec::h264::H264Payloader::default();
    let payloads = payloader
        .payload(1200, &Bytes::from(join_annex_b(&unit)))
        .unwrap();
    let mut d = H264Depacketizer::default();
    let last = payloads.len() - 1;
    for (i, p) in payloads.iter().enumerate() {
        d.handle_packet(i as u16, 90_000, i == last, p).unwrap();
    }
    let Some(DepacketizerOutput::AccessUnit(au)) = d.poll_output() else {
        panic!("no access unit");
    };
    assert_eq!(au.nalus, unit);
}

#[test]
fn after_a_gap_a_unit_must_begin_with_a_picture_start() {
    let mut d = H264Depacketizer::default();
    d.handle_packet(1, 0, true, &[0x41, 0x88, 1]).unwrap();
    // Sequence 2 lost; 3 is the second slice of a picture (first_mb_in_slice 1: bits 010).
    d.handle_packet(3, 3000, true, &[0x41, 0x40, 1]).unwrap();
    // Sequence 4 lost; 5 begins a picture with its parameter sets: delivered.
    d.handle_packet(5, 6000, false, &[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2])
        .unwrap();
    d.handle_packet(6, 6000, true, &[0x65, 0x88, 3]).unwrap();
    let out = drain(&mut d);
    // The loss before the keyframe needs no request of its own.
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(matches!(&out[0], DepacketizerOutput::AccessUnit(au) if au.timestamp == 0));
    assert_eq!(
        out[1],
        DepacketizerOutput::NeedKeyframe {
            dropped: Some(3000)
        }
    );
    assert!(matches!(&out[2], DepacketizerOutput::AccessUnit(au)
        if au.timestamp == 6000 && au.is_keyframe && !au.follows_loss && au.nalus.len() == 3));
    assert_eq!(d.stats().lost_packets, 2);
    assert_eq!(d.stats().invalid_packets, 0);
}
