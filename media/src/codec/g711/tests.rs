use super::*;
use crate::audio::tone_measure::{snr_db, tone_power_ratio};
use crate::audio::{AudioFormat, AudioSource, ToneSource};

/// Reconstruction levels of ITU-T G.711 Table 2 (µ-law) for the codes 0x00..=0x0F (the most
/// negative segment) and 0x70..=0x7F (the smallest negative levels), in 16-bit units.
const ULAW_REFERENCE: [(u8, i16); 20] = [
    (0x00, -32124),
    (0x01, -31100),
    (0x02, -30076),
    (0x0F, -16764),
    (0x10, -15996),
    (0x1F, -8316),
    (0x20, -7932),
    (0x3F, -1980),
    (0x40, -1884),
    (0x5F, -396),
    (0x60, -372),
    (0x6F, -132),
    (0x70, -120),
    (0x7E, -8),
    (0x7F, 0),
    (0x80, 32124),
    (0x8F, 16764),
    (0xCE, 988),
    (0xFE, 8),
    (0xFF, 0),
];

/// Reconstruction levels of ITU-T G.711 Table 1 (A-law), codes as transmitted (even bits
/// inverted), in 16-bit units.
const ALAW_REFERENCE: [(u8, i16); 16] = [
    (0x00, -5504),
    (0x01, -5248),
    (0x02, -6016),
    (0x03, -5760),
    (0x08, -7552),
    (0x10, -2752),
    (0x2A, -32256),
    (0x40, -344),
    (0x55, -8),
    (0x54, -24),
    (0x80, 5504),
    (0xAA, 32256),
    (0xD4, 24),
    (0xD5, 8),
    (0xC0, 344),
    (0xFF, 848),
];

#[test]
fn expansion_matches_the_reference_levels() {
    for (code, level) in ULAW_REFERENCE {
        assert_eq!(ulaw_to_linear(code), level, "µ-law code {code:#04x}");
    }
    for (code, level) in ALAW_REFERENCE {
        assert_eq!(alaw_to_linear(code), level, "A-law code {code:#04x}");
    }
}

#[test]
fn compression_matches_the_reference_codes() {
    // (input, µ-law code, A-law code): zero, the smallest negative value, the extremes, and
    // values inside segments.
    for (x, ulaw, alaw) in [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
        (8, 0xFE, 0xD5),
        (16, 0xFD, 0xD4),
    ] {
        assert_eq!(linear_to_ulaw(x), ulaw, "µ-law of {x}");
        assert_eq!(linear_to_alaw(x), alaw, "A-law of {x}");
    }
}

#[test]
fn every_level_codes_to_itself() {
    for code in 0..=255u8 {
        let level = ulaw_to_linear(code);
        // µ-law has two zeros (0x7F, 0xFF); zero codes as 0xFF.
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(linear_to_ulaw(level), expected, "µ-law {code:#04x}");
        assert_eq!(
            linear_to_alaw(alaw_to_linear(code)),
            code,
            "A-law {code:#04x}"
        );
    }
}

/// Half the spacing of the levels in the segment of `code`, in 16-bit units: the largest error
/// G.711 allows for an input inside the coder's range.
fn half_step(law: G711Law, code: u8) -> i32 {
    match law {
        // Levels 2 << segment apart in the 14-bit domain, 4 times that in 16 bits.
        G711Law::MuLaw => 4 << ((!code >> 4) & 7),
        // Segments 0 and 1 have levels 2 apart in the 13-bit domain, then doubling; 8 times
        // that in 16 bits.
        G711Law::ALaw => 8 << (((code ^ 0x55) >> 4) & 7).saturating_sub(1),
    }
}

/// Checks that `law` codes every 16-bit value monotonically and within half a step of its level
/// (plus `slack` for the low bits the reference implementation drops before deciding), and
/// clips values beyond the largest level to it.
fn check_quantizer(law: G711Law, slack: i32) {
    let max_level = (0..=255u8)
        .map(|c| i32::from(law.decode(c)))
        .max()
        .unwrap_or(0);
    let mut previous = i32::MIN;
    for x in i16::MIN..=i16::MAX {
        let code = law.encode(x);
        let q = i32::from(law.decode(code));
        assert!(q >= previous, "{law:?} is not monotonic at {x}");
        previous = q;
        let x = i32::from(x);
        if x.abs() > max_level {
            assert_eq!(q.abs(), max_level, "{law:?} clips {x}");
        } else {
            assert!(
                (x - q).abs() <= half_step(law, code) + slack,
                "{law:?}: {x} -> {q} (code {code:#04x})"
            );
        }
    }
}

#[test]
fn quantization_is_monotonic_and_within_half_a_step() {
    check_quantizer(G711Law::MuLaw, 4);
    check_quantizer(G711Law::ALaw, 16);
}

#[test]
fn round_trip_snr_of_a_tone() {
    for kind in [AudioCodecKind::Pcmu, AudioCodecKind::Pcma] {
        let mut encoder = kind.make_encoder(&EncoderConfig::mono()).unwrap();
        let mut decoder = kind.make_decoder(1).unwrap();
        assert_eq!(encoder.frame_samples(), 160);
        let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_8K, 1_004.0, -10.0);
        let (mut sent, mut received) = (Vec::new(), Vec::new());
        let mut payload = Vec::new();
        for _ in 0..50 {
            let frame = tone.read_frame().unwrap().unwrap();
            payload.clear();
            assert_eq!(encoder.encode(frame.samples(), &mut payload).unwrap(), 160);
            assert_eq!(decoder.decode(&payload, &mut received).unwrap(), 160);
            sent.extend_from_slice(frame.samples());
        }
        let snr = snr_db(&sent, &received);
        // G.711 gives about 38 dB over most of its range.
        assert!(snr > 35.0, "{kind}: SNR {snr:.1} dB");
        assert!(tone_power_ratio(&received, 8_000, 1_004.0) > 0.99);
    }
}

#[test]
fn concealment_repeats_and_fades_to_silence() {
    let mut decoder = G711Decoder::new(G711Law::MuLaw, 1).unwrap();
    let mut out = Vec::new();
    // Before any packet: silence of one frame.
    assert_eq!(decoder.conceal(&mut out).unwrap(), 160);
    assert!(out.iter().all(|&x| x == 0));

    let payload = vec![linear_to_ulaw(10_000); 160];
    out.clear();
    decoder.decode(&payload, &mut out).unwrap();
    let level = out[0];
    let mut concealed = Vec::new();
    for _ in 0..4 {
        assert_eq!(decoder.conceal(&mut concealed).unwrap(), 160);
    }
    assert_eq!(concealed.len(), 640);
    assert_eq!(concealed[0], level);
    assert!(
        concealed.windows(2).all(|w| w[1] <= w[0]),
        "fades monotonically"
    );
    assert!((i32::from(concealed[159]) - i32::from(level) * 2 / 3).abs() < 100);
    assert!(concealed[320..].iter().take(1).all(|&x| x > 0));
    assert!(concealed[480..].iter().all(|&x| x == 0));
    // FEC is concealment for G.711.
    assert!(!decoder.has_fec());
    let mut recovered = Vec::new();
    assert_eq!(decoder.decode_fec(&payload, &mut recovered).unwrap(), 160);
    assert!(recovered.iter().all(|&x| x == 0));
    // A packet restores full level.
    out.clear();
    decoder.decode(&payload, &mut out).unwrap();
    assert!(out.iter().all(|&x| x == level));
}

#[test]
fn payloads_of_any_length_decode_and_empty_ones_are_errors() {
    let mut decoder = G711Decoder::new(G711Law::ALaw, 1).unwrap();
    let mut out = vec![1, 2];
    assert_eq!(decoder.decode(&[0xD5; 240], &mut out).unwrap(), 240);
    assert_eq!(out.len(), 242);
    assert_eq!(&out[..2], &[1, 2]);
    assert!(matches!(
        decoder.decode(&[], &mut out),
        Err(CodecError::EmptyPayload)
    ));
    assert_eq!(out.len(), 242);
    // Concealment follows the last packet's duration.
    assert_eq!(decoder.conceal(&mut out).unwrap(), 240);
}

#[test]
fn configuration_is_checked() {
    assert!(matches!(
        G711Encoder::new(G711Law::MuLaw, &EncoderConfig::stereo()),
        Err(CodecError::UnsupportedChannels { channels: 2, .. })
    ));
    let config = EncoderConfig {
        frame_ms: 25,
        ..EncoderConfig::mono()
    };
    assert!(matches!(
        G711Encoder::new(G711Law::ALaw, &config),
        Err(CodecError::UnsupportedFrameDuration { frame_ms: 25, .. })
    ));
    let config = EncoderConfig {
        frame_ms: 30,
        ..EncoderConfig::mono()
    };
    let mut encoder = G711Encoder::new(G711Law::ALaw, &config).unwrap();
    assert_eq!(encoder.frame_samples(), 240);
    let mut out = Vec::new();
    assert!(matches!(
        encoder.encode(&[0; 160], &mut out),
        Err(CodecError::WrongFrameLength {
            expected: 240,
            got: 160
        })
    ));
    assert!(out.is_empty());
    assert!(G711Decoder::new(G711Law::MuLaw, 2).is_err());
}
