//! H.264 end to end, verified by content: test pattern → encoder → RTP payloads → depacketizer
//! → decoder → the stamp read back equals the frame counter, frame by frame.

use std::time::Duration;

use callisto_media::video::h264::{
    AccessUnit, DepacketizerOutput, EncodedAccessUnit, H264Decoder, H264Depacketizer, H264Encoder,
    H264EncoderConfig, H264Level, H264Packetizer, H264Profile, PacketizationMode, ProfileLevelId,
    NAL_FU_A, NAL_SPS,
};
use callisto_media::video::{
    read_stamp, scale_i420, PatternStamp, TestPattern, VideoFormat, VideoFrame, VideoSource,
};

const MTU: usize = 1200;

/// One RTP packet's fields as the depacketizer takes them.
struct Packet {
    sequence: u16,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// Payloads of an encoded access unit as RTP packets (90 kHz timestamps).
fn to_packets(
    packetizer: &H264Packetizer,
    unit: &EncodedAccessUnit,
    sequence: &mut u16,
) -> Vec<Packet> {
    let payloads = packetizer.packetize(&unit.nalus).expect("packetize");
    let last = payloads.len() - 1;
    let timestamp = ((unit.timestamp.as_nanos() * 9 + 50_000) / 100_000) as u32;
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            *sequence = sequence.wrapping_add(1);
            Packet {
                sequence: *sequence,
                timestamp,
                marker: i == last,
                payload,
            }
        })
        .collect()
}

fn pattern(width: u32, height: u32, identity: u16) -> TestPattern {
    TestPattern::new(VideoFormat::new(width, height, 30).unwrap(), identity).unwrap()
}

fn decode(decoder: &mut H264Decoder, unit: &AccessUnit) -> Option<VideoFrame> {
    let timestamp = Duration::from_micros(u64::from(unit.timestamp) * 1000 / 90);
    decoder
        .decode_nalus(&unit.nalus, timestamp)
        .expect("decode")
}

/// Runs `frames` frames through the whole chain and returns the stamps read from the decoded
/// pictures, in order.
fn round_trip(
    width: u32,
    height: u32,
    bitrate: u32,
    frames: u64,
    mode: PacketizationMode,
    max_nal_size: Option<usize>,
) -> (Vec<Option<PatternStamp>>, usize) {
    let mut source = pattern(width, height, 7).with_frame_limit(frames);
    let mut config = H264EncoderConfig::new(width, height, 30, bitrate);
    config.max_nal_size = max_nal_size;
    let mut encoder = H264Encoder::new(config).unwrap();
    let packetizer = H264Packetizer::new(mode, MTU).unwrap();
    let mut depacketizer = H264Depacketizer::default();
    let mut decoder = H264Decoder::new().unwrap();
    let (mut sequence, mut largest, mut stamps) = (1000u16, 0, Vec::new());
    while let Some(frame) = source.next_frame().unwrap() {
        let unit = encoder.encode(&frame).unwrap().expect("no frame skipping");
        for packet in to_packets(&packetizer, &unit, &mut sequence) {
            largest = largest.max(packet.payload.len());
            depacketizer
                .handle_packet(
                    packet.sequence,
                    packet.timestamp,
                    packet.marker,
                    &packet.payload,
                )
                .unwrap();
        }
        while let Some(output) = depacketizer.poll_output() {
            let DepacketizerOutput::AccessUnit(au) = output else {
                panic!("unexpected {output:?} without loss");
            };
            let picture = decode(&mut decoder, &au).expect("a picture per access unit");
            assert_eq!((picture.width(), picture.height()), (width, height));
            stamps.push(read_stamp(&picture));
        }
    }
    (stamps, largest)
}

fn expected(frames: u64) -> Vec<Option<PatternStamp>> {
    (0..frames as u32)
        .map(|frame| Some(PatternStamp { frame, identity: 7 }))
        .collect()
}

#[test]
fn every_frame_survives_the_chain_at_640x480() {
    let (stamps, largest) = round_trip(
        640,
        480,
        1_000_000,
        90,
        PacketizationMode::NonInterleaved,
        None,
    );
    assert_eq!(stamps, expected(90));
    assert!(largest <= MTU);
}

#[test]
fn every_frame_survives_the_chain_at_1280x720() {
    let (stamps, largest) = round_trip(
        1280,
        720,
        2_500_000,
        60,
        PacketizationMode::NonInterleaved,
        None,
    );
    assert_eq!(stamps, expected(60));
    assert!(largest <= MTU);
}

#[test]
fn mode_zero_with_the_encoder_s_nal_limit_honours_the_mtu() {
    let (stamps, largest) = round_trip(
        640,
        480,
        1_000_000,
        30,
        PacketizationMode::SingleNalUnit,
        Some(MTU),
    );
    assert_eq!(stamps, expected(30));
    assert!(largest <= MTU, "largest payload {largest}");
    // Without the limit the same stream does not fit mode 0.
    let mut encoder = H264Encoder::new(H264EncoderConfig::new(640, 480, 30, 1_000_000)).unwrap();
    let unit = encoder
        .encode(&pattern(640, 480, 7).render(0))
        .unwrap()
        .unwrap();
    let packetizer = H264Packetizer::new(PacketizationMode::SingleNalUnit, MTU).unwrap();
    assert!(packetizer.packetize(&unit.nalus).is_err());
}

#[test]
fn the_stamp_survives_300_kbps_and_downscaling_by_two() {
    let frames = 90;
    let mut source = pattern(640, 480, 3).with_frame_limit(frames);
    let mut encoder = H264Encoder::new(H264EncoderConfig::new(640, 480, 30, 300_000)).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let (mut bytes, mut read_full, mut read_half) = (0usize, 0u64, 0u64);
    while let Some(frame) = source.next_frame().unwrap() {
        let index = read_stamp(&frame).unwrap().frame;
        let unit = encoder.encode(&frame).unwrap().unwrap();
        bytes += unit.len();
        let picture = decoder
            .decode_nalus(&unit.nalus, unit.timestamp)
            .unwrap()
            .unwrap();
        let want = Some(PatternStamp {
            frame: index,
            identity: 3,
        });
        read_full += u64::from(read_stamp(&picture) == want);
        read_half += u64::from(read_stamp(&scale_i420(&picture, 320, 240).unwrap()) == want);
    }
    // The encoder held roughly its budget (300 kbps over 3 s is 112 kB), and every stamp read.
    assert!(bytes < 112_500 * 3 / 2, "{bytes} bytes for 3 s at 300 kbps");
    assert_eq!((read_full, read_half), (frames, frames));
}

#[test]
fn a_lost_fragment_drops_that_frame_and_a_keyframe_recovers() {
    let mut source = pattern(640, 480, 9).with_frame_limit(40);
    let mut encoder = H264Encoder::new(H264EncoderConfig::new(640, 480, 30, 1_000_000)).unwrap();
    let packetizer = H264Packetizer::new(PacketizationMode::NonInterleaved, 400).unwrap();
    let mut depacketizer = H264Depacketizer::default();
    let mut decoder = H264Decoder::new().unwrap();
    let mut sequence = 0u16;
    let (mut delivered, mut keyframe_requests, mut dropped_ts) = (Vec::new(), 0, None);
    let mut decoded_after_recovery = Vec::new();
    let mut recovered = false;
    while let Some(frame) = source.next_frame().unwrap() {
        let index = read_stamp(&frame).unwrap().frame;
        let unit = encoder.encode(&frame).unwrap().unwrap();
        let mut packets = to_packets(&packetizer, &unit, &mut sequence);
        if index == 10 {
            // Lose a middle FU-A fragment of frame 10.
            let fragments: Vec<usize> = (0..packets.len())
                .filter(|&i| packets[i].payload[0] & 0x1F == NAL_FU_A)
                .collect();
            assert!(fragments.len() >= 3, "frame 10 should be fragmented");
            dropped_ts = Some(packets[fragments[1]].timestamp);
            packets.remove(fragments[1]);
        }
        for p in &packets {
            depacketizer
                .handle_packet(p.sequence, p.timestamp, p.marker, &p.payload)
                .unwrap();
        }
        while let Some(output) = depacketizer.poll_output() {
            match output {
                DepacketizerOutput::NeedKeyframe { dropped } => {
                    assert_eq!(dropped, dropped_ts);
                    keyframe_requests += 1;
                    encoder.force_keyframe();
                }
                DepacketizerOutput::AccessUnit(au) => {
                    delivered.push((au.timestamp, au.is_keyframe, au.follows_loss));
                    recovered |= au.is_keyframe && au.timestamp > dropped_ts.unwrap_or(u32::MAX);
                    // Pictures between the loss and the keyframe may fail to decode; that is the
                    // decoder's business. From the keyframe on every stamp must read.
                    let result = decoder.decode_nalus(&au.nalus, Duration::ZERO);
                    if recovered {
                        let picture = result.unwrap().unwrap();
                        decoded_after_recovery.push(read_stamp(&picture).unwrap().frame);
                    }
                }
            }
        }
    }
    assert_eq!(keyframe_requests, 1);
    assert_eq!(delivered.len(), 39, "exactly one frame dropped");
    let frame_ts = |i: u32| (u64::from(i) * 90_000 / 30) as u32;
    assert!(delivered.iter().all(|d| d.0 != frame_ts(10)));
    // Frame 10's marker packet completed (and dropped) it, so the request reached the encoder
    // before frame 11, which is the keyframe.
    assert_eq!(delivered[9], (frame_ts(9), false, false));
    assert_eq!(delivered[10], (frame_ts(11), true, false));
    assert_eq!(decoded_after_recovery, (11..40).collect::<Vec<u32>>());
    assert_eq!(depacketizer.stats().dropped_access_units, 1);
}

#[test]
fn keyframes_bitrate_and_size_changes() {
    let source = pattern(640, 480, 1);
    let mut encoder = H264Encoder::new(H264EncoderConfig::new(640, 480, 30, 500_000)).unwrap();
    // Before the first frame too (OpenH264 is not initialised yet).
    encoder.set_bitrate(2_000_000).unwrap();
    assert_eq!(encoder.config().bitrate_bps, 2_000_000);
    let mut decoder = H264Decoder::new().unwrap();
    let encode =
        |encoder: &mut H264Encoder, frame: &VideoFrame| encoder.encode(frame).unwrap().unwrap();

    let first = encode(&mut encoder, &source.render(0));
    assert!(first.is_keyframe);
    // The SPS carries what profile_level_id says: Constrained Baseline, level 3.1.
    let sps = first.nalus.iter().find(|n| n[0] & 0x1F == NAL_SPS).unwrap();
    let id = ProfileLevelId::from_bytes(sps[1], sps[2], sps[3]).unwrap();
    assert_eq!(id.profile, H264Profile::ConstrainedBaseline);
    assert_eq!(id.level, H264Level::L3_1);
    assert_eq!(encoder.profile_level_id().unwrap(), id);

    let bytes_at = |encoder: &mut H264Encoder, range: std::ops::Range<u64>| {
        range
            .map(|i| {
                let unit = encode(encoder, &source.render(i));
                assert!(!unit.is_keyframe, "frame {i}");
                unit.len()
            })
            .sum::<usize>()
    };
    let high = bytes_at(&mut encoder, 1..61);
    encoder.set_bitrate(250_000).unwrap();
    let low = bytes_at(&mut encoder, 61..121);
    // Two seconds at 250 kbps is 62.5 kB: the encoder holds it within half again, well below
    // what it spent at 2 Mbps (where the simple picture does not need the whole budget).
    assert!(low < 62_500 * 3 / 2, "250 kbps: {low} bytes in 2 s");
    assert!(
        low * 2 < high,
        "2 Mbps: {high} bytes, 250 kbps: {low} bytes"
    );
    encoder.set_bitrate(2_000_000).unwrap();
    assert_eq!(encoder.config().bitrate_bps, 2_000_000);

    encoder.force_keyframe();
    assert!(encode(&mut encoder, &source.render(121)).is_keyframe);

    // Another size reconfigures: the next unit is a keyframe the decoder follows.
    let small = pattern(320, 240, 1).render(122);
    let unit = encode(&mut encoder, &small);
    assert!(unit.is_keyframe);
    assert_eq!(
        (encoder.config().width, encoder.config().height),
        (320, 240)
    );
    let picture = decoder
        .decode_nalus(&unit.nalus, unit.timestamp)
        .unwrap()
        .unwrap();
    assert_eq!((picture.width(), picture.height()), (320, 240));
    assert_eq!(read_stamp(&picture).map(|s| s.frame), Some(122));
}

#[test]
fn periodic_keyframes_are_a_safety_net() {
    let mut config = H264EncoderConfig::new(320, 240, 30, 500_000);
    config.keyframe_interval = Some(15);
    let mut encoder = H264Encoder::new(config).unwrap();
    let source = pattern(320, 240, 1);
    let keyframes: Vec<u64> = (0..46)
        .filter(|&i| {
            encoder
                .encode(&source.render(i))
                .unwrap()
                .unwrap()
                .is_keyframe
        })
        .collect();
    assert_eq!(keyframes, [0, 15, 30, 45]);
}

#[test]
fn decoder_errors_are_values() {
    let mut encoder = H264Encoder::new(H264EncoderConfig::new(320, 240, 30, 500_000)).unwrap();
    let source = pattern(320, 240, 1);
    let _keyframe = encoder.encode(&source.render(0)).unwrap().unwrap();
    let delta = encoder.encode(&source.render(1)).unwrap().unwrap();
    // A P picture without its reference: an error (or no picture), never a panic or a frame.
    let mut decoder = H264Decoder::new().unwrap();
    let result = decoder.decode_nalus(&delta.nalus, Duration::ZERO);
    assert!(!matches!(result, Ok(Some(_))), "{result:?}");
    assert!(decoder.errors() + u64::from(matches!(result, Ok(None))) >= 1);
}

#[test]
fn configurations_outside_the_limits_are_refused() {
    let bad = [
        H264EncoderConfig::new(641, 480, 30, 1_000_000),
        H264EncoderConfig::new(8, 8, 30, 1_000_000),
        H264EncoderConfig::new(640, 480, 0, 1_000_000),
        H264EncoderConfig {
            max_nal_size: Some(100),
            ..H264EncoderConfig::new(640, 480, 30, 1_000_000)
        },
        H264EncoderConfig {
            level: Some(H264Level::L3),
            ..H264EncoderConfig::new(1280, 720, 30, 1_000_000)
        },
    ];
    for config in bad {
        assert!(H264Encoder::new(config).is_err(), "{config:?}");
    }
}
