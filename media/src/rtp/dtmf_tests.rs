use super::*;
use crate::rtp::packet::parse_rtp;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const VOICE_PT: u8 = 0;
const EVENT_PT: u8 = 101;

/// A media loop: every 20 ms, drain the DTMF sender, then send voice unless an event is in
/// progress (in which case the media clock is advanced). Returns every packet sent, parsed.
fn run(
    rtp: &mut RtpSender,
    dtmf: &mut DtmfSender,
    t0: Instant,
    ticks_20ms: u32,
    frame_samples: u32,
) -> Vec<RtpPacket> {
    let mut out = Vec::new();
    for i in 0..ticks_20ms {
        let now = t0 + Duration::from_millis(20 * u64::from(i));
        while let Some(p) = dtmf.poll_packet(now, rtp) {
            out.push(parse_rtp(&p).unwrap());
        }
        if dtmf.is_sending() {
            rtp.skip(frame_samples);
        } else {
            out.push(parse_rtp(&rtp.audio_packet(now, &[0xd5; 10], frame_samples)).unwrap());
        }
    }
    out
}

fn events(packets: &[RtpPacket]) -> Vec<(bool, u32, TelephoneEvent)> {
    packets
        .iter()
        .filter(|p| p.header.payload_type == EVENT_PT)
        .map(|p| {
            (
                p.header.marker,
                p.header.timestamp,
                TelephoneEvent::parse(&p.payload).unwrap(),
            )
        })
        .collect()
}

fn receive(rx: &mut DtmfReceiver, packets: &[RtpPacket]) -> Vec<DtmfEvent> {
    for p in packets.iter().filter(|p| p.header.payload_type == EVENT_PT) {
        rx.handle_packet(p).unwrap();
    }
    std::iter::from_fn(|| rx.poll_event()).collect()
}

fn event_packet(ts: u32, marker: bool, digit: DtmfDigit, end: bool, duration: u16) -> RtpPacket {
    let mut rtp = RtpSender::with_start(1, 0, 0, VOICE_PT, 8_000);
    let block = TelephoneEvent {
        event: digit.event_code(),
        end,
        volume: 10,
        duration,
    };
    parse_rtp(&rtp.packet(Instant::now(), EVENT_PT, ts, marker, &block.to_bytes())).unwrap()
}

#[test]
fn digits_and_codes() {
    for (i, c) in "0123456789*#ABCD".chars().enumerate() {
        let d = DtmfDigit::from_char(c).unwrap();
        assert_eq!(d.event_code() as usize, i);
        assert_eq!(d.to_char(), c);
        assert_eq!(DtmfDigit::from_event_code(i as u8), Some(d));
    }
    assert_eq!(DtmfDigit::from_char('b'), Some(DtmfDigit::B));
    assert_eq!(DtmfDigit::from_char('E'), None);
    assert_eq!(DtmfDigit::from_event_code(16), None);
}

#[test]
fn event_block_round_trips() {
    let ev = TelephoneEvent {
        event: 11,
        end: true,
        volume: 63,
        duration: 0xabcd,
    };
    assert_eq!(ev.to_bytes(), [11, 0xbf, 0xab, 0xcd]);
    assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
    // Redundant blocks: the last one is the current event.
    let mut two = [1, 0x8a, 0, 100].to_vec();
    two.extend(ev.to_bytes());
    assert_eq!(TelephoneEvent::parse(&two), Ok(ev));
    assert_eq!(
        TelephoneEvent::parse(&[1, 2, 3]),
        Err(DtmfError::TooShort(3))
    );
}

#[test]
fn g711_digit_timeline() {
    let t0 = Instant::now();
    let mut rtp = RtpSender::with_start(7, 1000, 8000, VOICE_PT, 8_000);
    let mut dtmf = DtmfSender::new(DtmfSenderConfig::new(EVENT_PT, 8_000));
    // Two voice frames, then the digit is pressed.
    let mut packets = run(&mut rtp, &mut dtmf, t0, 2, 160);
    let start = t0 + Duration::from_millis(40);
    dtmf.queue_digit(start, DtmfDigit::D5, Duration::from_millis(200));
    assert_eq!(dtmf.poll_timeout(), Some(start));
    packets.extend(run(&mut rtp, &mut dtmf, start, 20, 160));

    let ev = events(&packets);
    let durations: Vec<(bool, bool, u16)> =
        ev.iter().map(|(m, _, e)| (*m, e.end, e.duration)).collect();
    assert_eq!(
        durations,
        vec![
            (true, false, 400),
            (false, false, 800),
            (false, false, 1200),
            (false, true, 1600),
            (false, true, 1600),
            (false, true, 1600),
        ]
    );
    // Every event packet carries the event's start timestamp: the media time at the press.
    assert!(ev
        .iter()
        .all(|(_, ts, e)| *ts == 8000 + 320 && e.event == 5 && e.volume == 10));
    // Sequence numbers run on without a gap through voice and events.
    for w in packets.windows(2) {
        assert_eq!(
            w[1].header.sequence_number,
            w[0].header.sequence_number.wrapping_add(1)
        );
    }
    // Voice paused from the press until after the last end packet, then resumed with a marker
    // and a timestamp that kept time.
    let first_voice_after = packets
        .iter()
        .skip_while(|p| p.header.payload_type == VOICE_PT)
        .find(|p| p.header.payload_type == VOICE_PT)
        .unwrap();
    assert!(first_voice_after.header.marker);
    // The last end packet goes out 240 ms after the press, and voice resumes in that tick: twelve
    // 20 ms frames were skipped.
    assert_eq!(first_voice_after.header.timestamp, 8000 + 320 + 12 * 160);
    assert!(!dtmf.is_sending());
    assert_eq!(dtmf.poll_timeout(), None);
}

#[test]
fn opus_clock_durations() {
    let t0 = Instant::now();
    let mut rtp = RtpSender::with_start(7, 0, 0, 111, 48_000);
    let mut dtmf = DtmfSender::new(DtmfSenderConfig::new(EVENT_PT, 48_000));
    dtmf.queue_digits(t0, "#", Duration::from_millis(120))
        .unwrap();
    let packets = run(&mut rtp, &mut dtmf, t0, 20, 960);
    let durations: Vec<u16> = events(&packets)
        .iter()
        .map(|(_, _, e)| e.duration)
        .collect();
    assert_eq!(durations, vec![2400, 4800, 5760, 5760, 5760]);
    assert!(dtmf
        .queue_digits(t0, "12x", Duration::from_millis(100))
        .is_err());
    assert_eq!(dtmf.queued(), 0, "nothing queued from an invalid string");
}

#[test]
fn long_event_is_segmented_and_received_as_one() {
    let t0 = Instant::now();
    let mut rtp = RtpSender::with_start(7, 0, 5_000, 111, 48_000);
    let mut dtmf = DtmfSender::new(DtmfSenderConfig::new(EVENT_PT, 48_000));
    dtmf.queue_digit(t0, DtmfDigit::D0, Duration::from_secs(2));
    let packets = run(&mut rtp, &mut dtmf, t0, 150, 960);
    let ev = events(&packets);
    let first_ts = ev[0].1;
    assert_eq!(first_ts, 5_000);
    let second_segment: Vec<_> = ev.iter().filter(|(_, ts, _)| *ts != first_ts).collect();
    assert!(!second_segment.is_empty());
    assert!(second_segment
        .iter()
        .all(|(m, ts, _)| !m && *ts == first_ts + 0xffff));
    let last_of_first = ev.iter().rev().find(|(_, ts, _)| *ts == first_ts).unwrap();
    assert_eq!(
        (last_of_first.2.duration, last_of_first.2.end),
        (0xffff, false)
    );
    let ends: Vec<_> = ev.iter().filter(|(_, _, e)| e.end).collect();
    assert_eq!(ends.len(), 3);
    assert!(ends
        .iter()
        .all(|(_, _, e)| u32::from(e.duration) == 96_000 - 0xffff));

    let mut rx = DtmfReceiver::new(48_000);
    let got = receive(&mut rx, &packets);
    assert_eq!(
        got,
        vec![
            DtmfEvent::Began {
                digit: DtmfDigit::D0,
                timestamp: 5_000
            },
            DtmfEvent::Ended {
                digit: DtmfDigit::D0,
                timestamp: 5_000,
                duration: Duration::from_secs(2)
            },
        ]
    );
}

#[test]
fn receiver_survives_lost_start_duplicate_ends_and_stale_packets() {
    let mut rx = DtmfReceiver::new(8_000);
    // The marker packet of '7' is lost; an update arrives first.
    for p in [
        event_packet(1000, false, DtmfDigit::D7, false, 800),
        event_packet(1000, false, DtmfDigit::D7, true, 1200),
        event_packet(1000, false, DtmfDigit::D7, true, 1200),
        event_packet(1000, false, DtmfDigit::D7, true, 1200),
        // A late update of the ended event.
        event_packet(1000, false, DtmfDigit::D7, false, 400),
    ] {
        rx.handle_packet(&p).unwrap();
    }
    let got: Vec<_> = std::iter::from_fn(|| rx.poll_event()).collect();
    assert_eq!(
        got,
        vec![
            DtmfEvent::Began {
                digit: DtmfDigit::D7,
                timestamp: 1000
            },
            DtmfEvent::Ended {
                digit: DtmfDigit::D7,
                timestamp: 1000,
                duration: Duration::from_millis(150)
            },
        ]
    );
    // The same key again is a new event; all its end packets are lost, so the next key ends it.
    rx.handle_packet(&event_packet(5000, true, DtmfDigit::D7, false, 400))
        .unwrap();
    rx.handle_packet(&event_packet(5000, false, DtmfDigit::D7, false, 800))
        .unwrap();
    rx.handle_packet(&event_packet(9000, true, DtmfDigit::Star, false, 400))
        .unwrap();
    // A straggler from before is ignored.
    rx.handle_packet(&event_packet(5000, false, DtmfDigit::D7, true, 1600))
        .unwrap();
    let got: Vec<_> = std::iter::from_fn(|| rx.poll_event()).collect();
    assert_eq!(
        got,
        vec![
            DtmfEvent::Began {
                digit: DtmfDigit::D7,
                timestamp: 5000
            },
            DtmfEvent::Ended {
                digit: DtmfDigit::D7,
                timestamp: 5000,
                duration: Duration::from_millis(100)
            },
            DtmfEvent::Began {
                digit: DtmfDigit::Star,
                timestamp: 9000
            },
        ]
    );
    assert_eq!(rx.counters().stale, 4);
    // Non-DTMF events and short payloads.
    let mut flash = event_packet(9000, false, DtmfDigit::Star, false, 800);
    flash.payload = Bytes::from_static(&[16, 0, 0, 10]);
    rx.handle_packet(&flash).unwrap();
    flash.payload = Bytes::from_static(&[16, 0]);
    assert!(rx.handle_packet(&flash).is_err());
    assert_eq!((rx.counters().unsupported, rx.counters().malformed), (1, 1));
}

#[test]
fn receiver_adds_up_a_wrapping_duration_field() {
    let mut rx = DtmfReceiver::new(8_000);
    for (duration, end) in [
        (0xf000, false),
        (0xff00, false),
        (0x0800, false),
        (0x1000, true),
    ] {
        rx.handle_packet(&event_packet(0, false, DtmfDigit::D1, end, duration))
            .unwrap();
    }
    let ended = std::iter::from_fn(|| rx.poll_event()).last().unwrap();
    let expected = Duration::from_nanos((0x1_0000u64 + 0x1000) * 1_000_000_000 / 8_000);
    assert_eq!(
        ended,
        DtmfEvent::Ended {
            digit: DtmfDigit::D1,
            timestamp: 0,
            duration: expected
        }
    );
}

#[test]
fn digit_string_survives_seeded_loss() {
    let digits = "0123456789*#ABCD159";
    let t0 = Instant::now();
    let mut rtp = RtpSender::with_start(9, 0, 0, VOICE_PT, 8_000);
    let mut dtmf = DtmfSender::new(DtmfSenderConfig::new(EVENT_PT, 8_000));
    dtmf.queue_digits(t0, digits, Duration::from_millis(250))
        .unwrap();
    let packets = run(&mut rtp, &mut dtmf, t0, 500, 160);
    assert_eq!(dtmf.queued(), 0);
    for seed in 0..20 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let delivered: Vec<RtpPacket> = packets
            .iter()
            .filter(|_| !rng.gen_bool(0.2))
            .cloned()
            .collect();
        let mut rx = DtmfReceiver::new(8_000);
        let began: String = receive(&mut rx, &delivered)
            .iter()
            .filter_map(|e| match e {
                DtmfEvent::Began { digit, .. } => Some(digit.to_char()),
                DtmfEvent::Ended { .. } => None,
            })
            .collect();
        assert_eq!(began, digits, "seed {seed}");
    }
}

/// A new stream (the peer's SSRC changed) numbers its timestamps from a base of its own: its
/// digits are reported even when their timestamps lie behind the last stream's, and a digit
/// the last stream left going ends there.
#[test]
fn a_new_stream_compares_event_timestamps_afresh() {
    let mut rx = DtmfReceiver::new(8_000);
    rx.handle_packet(&event_packet(1_000_000, true, DtmfDigit::D5, false, 400))
        .unwrap();
    rx.new_stream();
    rx.handle_packet(&event_packet(1000, true, DtmfDigit::D9, false, 400))
        .unwrap();
    rx.handle_packet(&event_packet(1000, false, DtmfDigit::D9, true, 800))
        .unwrap();
    let got: Vec<_> = std::iter::from_fn(|| rx.poll_event()).collect();
    assert_eq!(
        got,
        vec![
            DtmfEvent::Began {
                digit: DtmfDigit::D5,
                timestamp: 1_000_000
            },
            DtmfEvent::Ended {
                digit: DtmfDigit::D5,
                timestamp: 1_000_000,
                duration: Duration::from_millis(50)
            },
            DtmfEvent::Began {
                digit: DtmfDigit::D9,
                timestamp: 1000
            },
            DtmfEvent::Ended {
                digit: DtmfDigit::D9,
                timestamp: 1000,
                duration: Duration::from_millis(100)
            },
        ]
    );
    assert_eq!(rx.counters().stale, 0);
}
