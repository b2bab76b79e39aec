//! Unit tests of the send and receive pipelines on their own, in virtual time: packet durations
//! other than 20 ms, a source that ends, a driver that wakes late, payload types, and what is
//! played while not receiving.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    AudioStreamConfig, DiscardReason, MediaEvent, ReceivePipeline, Received, SendPipeline,
    SessionOptions,
};
use crate::audio::tone_measure::tone_power_ratio;
use crate::audio::{AudioFormat, MemorySink, SharedSamples, Take, ToneSource};
use crate::codec::AudioCodecKind;
use crate::rtp::{parse_rtp, DtmfDigit, RtpSender};

const DEVICE: AudioFormat = AudioFormat::MONO_48K;

fn sender(stream: &AudioStreamConfig, start: Instant) -> SendPipeline {
    let rtp = RtpSender::with_start(
        0x5e55_1011,
        100,
        1_000,
        stream.payload_type,
        stream.codec.clock_rate(),
    );
    let source = ToneSource::with_dbfs(DEVICE, 440.0, -12.0);
    SendPipeline::new(stream, None, Box::new(source), rtp, start).unwrap()
}

fn receiver(stream: &AudioStreamConfig, start: Instant) -> (ReceivePipeline, SharedSamples) {
    let sink = MemorySink::new(DEVICE);
    let shared = sink.shared();
    let options = SessionOptions::default();
    let pipeline = ReceivePipeline::new(stream, None, Box::new(sink), &options, start).unwrap();
    (pipeline, shared)
}

/// Runs a sender straight into a receiver (no network delay) for `duration`, step by step at
/// every deadline, and returns the datagrams sent with their times.
fn run(
    send: &mut SendPipeline,
    receive: &mut ReceivePipeline,
    start: Instant,
    duration: Duration,
) -> Vec<(Instant, Bytes)> {
    let mut sent = Vec::new();
    loop {
        let now = send.poll_timeout().min(receive.poll_timeout());
        if now > start + duration {
            return sent;
        }
        while let Some(packet) = send.poll_packet(now) {
            let received = receive.handle_datagram(now, &packet);
            assert!(matches!(received, Received::Rtp { .. }), "{received:?}");
            sent.push((now, packet));
        }
        receive.playout(now);
    }
}

#[test]
fn forty_ms_opus_packets_play_as_continuous_twenty_ms_frames() {
    let start = Instant::now();
    let mut stream = AudioStreamConfig::new(AudioCodecKind::Opus);
    stream.ptime_ms = 40;
    let mut send = sender(&stream, start);
    let (mut receive, heard) = receiver(&stream, start);
    let sent = run(&mut send, &mut receive, start, Duration::from_secs(2));
    assert_eq!(sent.len(), 51);
    for pair in sent.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, Duration::from_millis(40));
        let (a, b) = (
            parse_rtp(&pair[0].1).unwrap(),
            parse_rtp(&pair[1].1).unwrap(),
        );
        assert_eq!(b.header.timestamp.wrapping_sub(a.header.timestamp), 1_920);
    }
    let counters = receive.counters();
    assert_eq!(counters.frames_written, 101);
    assert_eq!(counters.concealed_frames, 0);
    let samples = heard.samples();
    assert!(tone_power_ratio(&samples[48_000..], 48_000, 440.0) > 0.95);
}

#[test]
fn thirty_ms_g711_packets_are_sent_every_thirty_ms() {
    let start = Instant::now();
    let mut stream = AudioStreamConfig::new(AudioCodecKind::Pcma);
    stream.ptime_ms = 30;
    let mut send = sender(&stream, start);
    let (mut receive, heard) = receiver(&stream, start);
    let sent = run(&mut send, &mut receive, start, Duration::from_millis(1_500));
    assert_eq!(sent.len(), 51);
    assert!(sent
        .iter()
        .all(|(_, p)| parse_rtp(p).unwrap().payload.len() == 240));
    assert_eq!(receive.counters().concealed_frames, 0);
    let samples = heard.samples();
    assert!(tone_power_ratio(&samples[24_000..], 48_000, 440.0) > 0.95);
}

#[test]
fn silence_follows_the_end_of_the_source() {
    let start = Instant::now();
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let source = Take::millis(ToneSource::with_dbfs(DEVICE, 440.0, -12.0), 100);
    let rtp = RtpSender::with_start(1, 0, 0, 0, 8_000);
    let mut send = SendPipeline::new(&stream, None, Box::new(source), rtp, start).unwrap();
    let mut packets = Vec::new();
    for k in 0..50u32 {
        let now = start + Duration::from_millis(20) * k;
        packets.extend(std::iter::from_fn(|| send.poll_packet(now)));
    }
    assert_eq!(packets.len(), 50);
    // µ-law silence is 0xff (or 0x7f): the packets after the tone carry nothing else.
    let last = parse_rtp(&packets[49]).unwrap();
    assert!(last.payload.iter().all(|&c| c == 0xff || c == 0x7f));
    let first = parse_rtp(&packets[1]).unwrap();
    assert!(first.payload.iter().any(|&c| c != 0xff && c != 0x7f));
}

#[test]
fn a_late_driver_catches_up_a_little_and_skips_a_lot() {
    let start = Instant::now();
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let mut send = sender(&stream, start);
    // 100 ms late: every packet is still sent, in a burst.
    let now = start + Duration::from_millis(100);
    assert_eq!(std::iter::from_fn(|| send.poll_packet(now)).count(), 6);
    assert_eq!(send.poll_timeout(), start + Duration::from_millis(120));
    // Ten seconds late (a suspended laptop): the pipeline skips ahead, keeping its clock.
    let now = start + Duration::from_secs(10);
    let burst: Vec<Bytes> = std::iter::from_fn(|| send.poll_packet(now)).collect();
    assert_eq!(burst.len(), 1);
    assert!(send.counters().skipped_ticks >= 490);
    assert!(send.poll_timeout() > now);
    let packet = parse_rtp(&burst[0]).unwrap();
    assert!(packet.header.marker, "a skip starts a new talkspurt");
    assert_eq!(
        packet.header.timestamp.wrapping_sub(1_000),
        10 * 8_000,
        "the RTP clock kept time"
    );
}

#[test]
fn unknown_payload_types_are_discarded_and_events_wait_for_receiving() {
    let start = Instant::now();
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu).with_telephone_event(101);
    let (mut receive, _) = receiver(&stream, start);
    let mut peer = RtpSender::with_start(7, 0, 0, 0, 8_000);
    let voice = peer.audio_packet(start, &[0xff; 160], 160);
    assert!(matches!(
        receive.handle_datagram(start, &voice),
        Received::Rtp {
            ssrc: 7,
            fresh: true
        }
    ));
    // Comfort noise (payload type 13) was not negotiated.
    let noise = peer.packet(start, 13, 160, false, &[0x40]);
    assert_eq!(
        receive.handle_datagram(start, &noise),
        Received::Discarded(DiscardReason::UnknownPayloadType)
    );
    // While not receiving, events are counted but not reported.
    receive.set_receiving(false);
    let digit = DtmfDigit::D5.event_code();
    let ended = peer.packet(start, 101, 320, true, &[digit, 0x80 | 10, 0x03, 0x20]);
    assert!(matches!(
        receive.handle_datagram(start, &ended),
        Received::Rtp { .. }
    ));
    receive.set_receiving(true);
    let next = peer.packet(start, 101, 2_000, true, &[digit, 0x80 | 10, 0x03, 0x20]);
    receive.handle_datagram(start, &next);
    let events: Vec<MediaEvent> = std::iter::from_fn(|| receive.poll_event()).collect();
    assert_eq!(
        events,
        [
            MediaEvent::FirstPacket { at: start },
            MediaEvent::Dtmf {
                digit: '5',
                duration: Duration::from_millis(100)
            }
        ]
    );
    assert_eq!(receive.counters().packets, 3);
    assert_eq!(receive.counters().discarded, 1);
}

/// When our offer named the codec and telephone-event by other numbers than the answer, the
/// peer sends with ours (RFC 3264 §5.1): voice and digits are taken under either number.
#[test]
fn voice_and_events_come_under_our_offers_numbers_too() {
    let start = Instant::now();
    let mut stream = AudioStreamConfig::new(AudioCodecKind::Pcmu).with_telephone_event(96);
    stream.receive_payload_type = Some(18);
    if let Some(events) = stream.telephone_event.as_mut() {
        events.receive_payload_type = Some(101);
    }
    let (mut receive, _) = receiver(&stream, start);
    let mut peer = RtpSender::with_start(7, 0, 0, 18, 8_000);
    let voice = peer.audio_packet(start, &[0xff; 160], 160);
    assert!(matches!(
        receive.handle_datagram(start, &voice),
        Received::Rtp { ssrc: 7, .. }
    ));
    let digit = DtmfDigit::D3.event_code();
    let ended = peer.packet(start, 101, 160, true, &[digit, 0x80 | 10, 0x03, 0x20]);
    receive.handle_datagram(start, &ended);
    let events: Vec<MediaEvent> = std::iter::from_fn(|| receive.poll_event()).collect();
    assert!(
        events.contains(&MediaEvent::Dtmf {
            digit: '3',
            duration: Duration::from_millis(100)
        }),
        "{events:?}"
    );
    assert_eq!(receive.counters().discarded, 0);
}

#[test]
fn a_duplicate_is_discarded_but_does_not_move_the_latch() {
    let start = Instant::now();
    let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
    let (mut receive, _) = receiver(&stream, start);
    let mut peer = RtpSender::with_start(9, 500, 0, 0, 8_000);
    let packets: Vec<Bytes> = (0..5)
        .map(|_| peer.audio_packet(start, &[0xff; 160], 160))
        .collect();
    for packet in &packets {
        assert!(matches!(
            receive.handle_datagram(start, packet),
            Received::Rtp { fresh: true, .. }
        ));
    }
    assert_eq!(
        receive.handle_datagram(start, &packets[4]),
        Received::Discarded(DiscardReason::Duplicate)
    );
    // Garbage of every kind.
    for garbage in [&[][..], &[0x00, 0x01], &[0x80], &[0xff; 30]] {
        assert!(matches!(
            receive.handle_datagram(start, garbage),
            Received::Discarded(_)
        ));
    }
    assert_eq!(receive.counters().discarded, 5);
}
