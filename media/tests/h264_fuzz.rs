//! Seeded garbage and mutation fuzzing of the video parsers: the H.264 depacketizer, the
//! decoder behind it, Annex-B splitting, `profile-level-id`, Y4M and the stamp reader. No input
//! may panic; refused input is counted.

use std::io::Cursor;
use std::time::Duration;

use callisto_media::video::h264::{
    split_annex_b, DepacketizerConfig, DepacketizerOutput, H264Decoder, H264Depacketizer,
    H264Encoder, H264EncoderConfig, H264Packetizer, PacketizationMode, ProfileLevelId,
};
use callisto_media::video::{
    draw_stamp, read_stamp_in, PatternStamp, StampRegion, TestPattern, VideoFormat, VideoFrame,
    VideoSource, Y4mEnd, Y4mSource,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn random_bytes(rng: &mut SmallRng, max: usize) -> Vec<u8> {
    let mut v = vec![0u8; rng.gen_range(0..=max)];
    rng.fill(&mut v[..]);
    // Steer most first bytes to the types the depacketizer parses deeply (1–23, 24, 28).
    if let Some(first) = v.first_mut() {
        *first = match rng.gen_range(0..4) {
            0 => 0x78,
            1 => 0x7C,
            2 => 0x60 | rng.gen_range(1..=23),
            _ => *first,
        };
    }
    v
}

fn mutate(rng: &mut SmallRng, original: &[u8]) -> Vec<u8> {
    let mut v = original.to_vec();
    match rng.gen_range(0..4) {
        0 if !v.is_empty() => {
            let i = rng.gen_range(0..v.len());
            v[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => v.truncate(rng.gen_range(0..=v.len())),
        2 => v.extend((0..rng.gen_range(1..16)).map(|_| rng.gen::<u8>())),
        _ if v.len() > 2 => v[1] = rng.gen(),
        _ => {}
    }
    v
}

/// Packets (sequence, timestamp, marker, payload) of a real encoded stream, small MTU so it
/// has STAP-A, single NAL units and many FU-A fragments.
fn real_stream(frames: u64) -> Vec<(u16, u32, bool, Vec<u8>)> {
    let mut source = TestPattern::new(VideoFormat::new(320, 240, 30).unwrap(), 1)
        .unwrap()
        .with_frame_limit(frames);
    let mut config = H264EncoderConfig::new(320, 240, 30, 600_000);
    config.keyframe_interval = Some(10);
    let mut encoder = H264Encoder::new(config).unwrap();
    let packetizer = H264Packetizer::new(PacketizationMode::NonInterleaved, 300).unwrap();
    let mut packets = Vec::new();
    let mut sequence = 0u16;
    while let Some(frame) = source.next_frame().unwrap() {
        let unit = encoder.encode(&frame).unwrap().unwrap();
        let payloads = packetizer.packetize(&unit.nalus).unwrap();
        let last = payloads.len() - 1;
        let timestamp = (unit.timestamp.as_millis() * 90) as u32;
        for (i, payload) in payloads.into_iter().enumerate() {
            sequence = sequence.wrapping_add(1);
            packets.push((sequence, timestamp, i == last, payload));
        }
    }
    packets
}

#[test]
fn random_payloads_never_panic_and_are_counted() {
    let mut rng = SmallRng::seed_from_u64(0x6184);
    let mut d = H264Depacketizer::new(DepacketizerConfig {
        max_access_unit_size: 4096,
    });
    let rounds = 50_000u64;
    let (mut refused, mut units, mut drops, mut gaps) = (0u64, 0u64, 0u64, 0u64);
    for round in 0..rounds {
        let sequence = if rng.gen_bool(0.9) {
            round as u16
        } else {
            rng.gen()
        };
        let timestamp = (round / 4) as u32 * 3000;
        let payload = random_bytes(&mut rng, 1500);
        refused += u64::from(
            d.handle_packet(sequence, timestamp, rng.gen_bool(0.3), &payload)
                .is_err(),
        );
        while let Some(output) = d.poll_output() {
            match output {
                DepacketizerOutput::AccessUnit(unit) => {
                    units += 1;
                    assert!(unit.nalus.iter().map(Vec::len).sum::<usize>() <= 4096);
                }
                DepacketizerOutput::NeedKeyframe { dropped: Some(_) } => drops += 1,
                DepacketizerOutput::NeedKeyframe { dropped: None } => gaps += 1,
            }
        }
    }
    let stats = d.stats();
    assert_eq!(stats.packets, rounds);
    assert_eq!(stats.invalid_packets + stats.late_packets, refused);
    assert!(stats.invalid_packets > rounds / 10, "{stats:?}");
    assert_eq!(
        (units, drops),
        (stats.access_units, stats.dropped_access_units)
    );
    assert!(units > 0 && gaps > 0, "{stats:?}");
}

#[test]
fn every_truncation_of_real_payloads_is_handled() {
    let packets = real_stream(12);
    let mut d = H264Depacketizer::default();
    let mut sequence = 0u16;
    for (_, timestamp, marker, payload) in &packets {
        for len in 0..=payload.len() {
            sequence = sequence.wrapping_add(1);
            let _ = d.handle_packet(sequence, *timestamp, *marker, &payload[..len]);
            while d.poll_output().is_some() {}
        }
    }
    assert!(d.stats().invalid_packets > 0);
}

#[test]
fn mutated_streams_reach_the_decoder_without_panics() {
    let packets = real_stream(40);
    for seed in 0..6u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut d = H264Depacketizer::default();
        let mut decoder = H264Decoder::new().unwrap();
        let (mut units, mut pictures) = (0, 0);
        for (sequence, timestamp, marker, payload) in &packets {
            let roll = rng.gen_range(0..100);
            if roll < 3 {
                continue; // lost
            }
            let payload = if roll < 12 {
                mutate(&mut rng, payload)
            } else {
                payload.clone()
            };
            let _ = d.handle_packet(*sequence, *timestamp, *marker, &payload);
            while let Some(output) = d.poll_output() {
                if let DepacketizerOutput::AccessUnit(unit) = output {
                    units += 1;
                    if let Ok(Some(picture)) = decoder.decode_nalus(&unit.nalus, Duration::ZERO) {
                        pictures += 1;
                        assert_eq!((picture.width(), picture.height()), (320, 240));
                    }
                }
            }
        }
        assert!(
            units > 20 && pictures > 0,
            "seed {seed}: {units} units, {pictures} pictures"
        );
    }
}

#[test]
fn random_access_units_into_the_decoder_never_panic() {
    let mut rng = SmallRng::seed_from_u64(264);
    let mut decoder = H264Decoder::new().unwrap();
    for _ in 0..300 {
        let mut unit = vec![0, 0, 0, 1];
        unit.extend(random_bytes(&mut rng, 2000));
        let _ = decoder.decode_annex_b(&unit, Duration::ZERO);
    }
}

#[test]
fn text_and_byte_parsers_never_panic() {
    let mut rng = SmallRng::seed_from_u64(4);
    for _ in 0..20_000 {
        let bytes = random_bytes(&mut rng, 64);
        let _ = split_annex_b(&bytes);
        let text: String = bytes
            .iter()
            .map(|&b| char::from(b % 96 + 32))
            .take(8)
            .collect();
        let _ = text.parse::<ProfileLevelId>();
        let hex: String = (0..6)
            .map(|_| char::from(b"0123456789abcdefABCDEF"[rng.gen_range(0..22)]))
            .collect();
        if let Ok(id) = hex.parse::<ProfileLevelId>() {
            assert_eq!(id.to_string().parse::<ProfileLevelId>(), Ok(id));
        }
    }
}

#[test]
fn mutated_y4m_files_never_panic() {
    let mut file = b"YUV4MPEG2 W16 H16 F30:1 C420jpeg\n".to_vec();
    for _ in 0..3 {
        file.extend_from_slice(b"FRAME\n");
        file.extend(std::iter::repeat_n(100u8, 16 * 16 * 3 / 2));
    }
    let mut rng = SmallRng::seed_from_u64(42);
    for _ in 0..3_000 {
        let mut bytes = file.clone();
        for _ in 0..rng.gen_range(1..4) {
            bytes = mutate(&mut rng, &bytes);
            if !bytes.is_empty() && rng.gen_bool(0.5) {
                let i = rng.gen_range(0..bytes.len().min(40));
                bytes[i] = rng.gen();
            }
        }
        if let Ok(mut source) = Y4mSource::from_reader(Cursor::new(bytes), Y4mEnd::Loop) {
            for _ in 0..8 {
                match source.next_frame() {
                    Ok(Some(frame)) => assert_eq!(frame.width(), source.format().width),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

#[test]
fn stamp_reading_never_panics_on_any_region() {
    let mut rng = SmallRng::seed_from_u64(7);
    let frame = VideoFrame::filled(64, 48, 200, 128, 128).unwrap();
    for _ in 0..20_000 {
        let pick = |rng: &mut SmallRng| match rng.gen_range(0..3) {
            0 => rng.gen_range(0..80),
            1 => u32::MAX - rng.gen_range(0..100),
            _ => rng.gen(),
        };
        let region = StampRegion {
            x: pick(&mut rng),
            y: pick(&mut rng),
            width: pick(&mut rng),
        };
        let _ = read_stamp_in(&frame, region);
        let _ = region.stamp_height();
        let mut canvas = frame.clone();
        draw_stamp(
            &mut canvas,
            region,
            PatternStamp {
                frame: 1,
                identity: 2,
            },
        );
    }
}
