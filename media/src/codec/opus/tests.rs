use super::*;
use crate::audio::tone_measure::{level_dbfs, tone_power_ratio};
use crate::audio::{AudioFormat, AudioSource, ToneSource};
use audiopus::packet::Packet;

/// Encodes `frames` 20 ms frames of `source` and returns the payloads.
fn encode_frames(
    encoder: &mut OpusEncoder,
    source: &mut dyn AudioSource,
    frames: usize,
) -> Vec<Vec<u8>> {
    (0..frames)
        .map(|_| {
            let frame = source.read_frame().unwrap().unwrap();
            let mut payload = Vec::new();
            let n = encoder.encode(frame.samples(), &mut payload).unwrap();
            assert_eq!(n, payload.len());
            payload
        })
        .collect()
}

fn channel(samples: &[i16], channels: usize, index: usize) -> Vec<i16> {
    samples
        .iter()
        .skip(index)
        .step_by(channels)
        .copied()
        .collect()
}

/// A stereo source with a different tone on each side.
struct TwoTones {
    left: ToneSource,
    right: ToneSource,
}

impl AudioSource for TwoTones {
    fn format(&self) -> AudioFormat {
        AudioFormat::STEREO_48K
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, crate::audio::AudioError> {
        let frames = out.len() / 2;
        let (mut l, mut r) = (vec![0; frames], vec![0; frames]);
        self.left.read(&mut l)?;
        self.right.read(&mut r)?;
        for (i, pair) in out.chunks_exact_mut(2).enumerate() {
            pair[0] = l[i];
            pair[1] = r[i];
        }
        Ok(frames * 2)
    }
}

#[test]
fn mono_round_trip_keeps_a_tone() {
    let mut encoder = OpusEncoder::new(&EncoderConfig::mono()).unwrap();
    let mut decoder = OpusDecoder::new(1).unwrap();
    assert_eq!(encoder.frame_samples(), 960);
    let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0);
    let mut decoded = Vec::new();
    for payload in encode_frames(&mut encoder, &mut tone, 50) {
        assert!(payload.len() < 200, "{} bytes at 32 kb/s", payload.len());
        assert_eq!(decoder.decode(&payload, &mut decoded).unwrap(), 960);
    }
    assert_eq!(decoded.len(), 48_000);
    // Skip the codec's start-up.
    let steady = &decoded[9_600..];
    assert!(tone_power_ratio(steady, 48_000, 440.0) > 0.95);
    assert!(tone_power_ratio(steady, 48_000, 1_000.0) < 0.01);
    let level = level_dbfs(steady);
    assert!((level - (-15.0)).abs() < 1.5, "level {level} dBFS");
}

#[test]
fn stereo_round_trip_keeps_both_sides() {
    let mut encoder = OpusEncoder::new(&EncoderConfig::stereo()).unwrap();
    let mut decoder = OpusDecoder::new(2).unwrap();
    let mut source = TwoTones {
        left: ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0),
        right: ToneSource::with_dbfs(AudioFormat::MONO_48K, 1_000.0, -12.0),
    };
    let mut decoded = Vec::new();
    for payload in encode_frames(&mut encoder, &mut source, 50) {
        assert_eq!(decoder.decode(&payload, &mut decoded).unwrap(), 960);
    }
    assert_eq!(decoded.len(), 96_000);
    let left = channel(&decoded, 2, 0);
    let right = channel(&decoded, 2, 1);
    let l = tone_power_ratio(&left[9_600..], 48_000, 440.0);
    let r = tone_power_ratio(&right[9_600..], 48_000, 1_000.0);
    // Each side keeps its own tone, with little of the other's.
    assert!(l > 0.8 && r > 0.8, "left {l}, right {r}");
    assert!(tone_power_ratio(&left[9_600..], 48_000, 1_000.0) < 0.1);
    assert!(tone_power_ratio(&right[9_600..], 48_000, 440.0) < 0.1);
    // A mono decoder takes the same stream.
    let mut mono = OpusDecoder::new(1).unwrap();
    let mut out = Vec::new();
    let mut source = TwoTones {
        left: ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0),
        right: ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0),
    };
    let mut encoder = OpusEncoder::new(&EncoderConfig::stereo()).unwrap();
    for payload in encode_frames(&mut encoder, &mut source, 10) {
        assert_eq!(mono.decode(&payload, &mut out).unwrap(), 960);
    }
    assert_eq!(out.len(), 9_600);
}

#[test]
fn the_bitrate_sets_the_payload_size() {
    for bitrate in [12_000, 24_000, 64_000] {
        let config = EncoderConfig::mono().with_bitrate(bitrate);
        let mut encoder = OpusEncoder::new(&config).unwrap();
        let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0);
        let payloads = encode_frames(&mut encoder, &mut tone, 100);
        let mean_bytes = payloads.iter().map(Vec::len).sum::<usize>() as f64 / 100.0;
        // A 20 ms packet at `bitrate` is bitrate / 400 bytes.
        let expected = f64::from(bitrate) / 400.0;
        assert!(
            mean_bytes > expected * 0.5 && mean_bytes < expected * 1.5,
            "{bitrate} b/s: {mean_bytes} bytes per packet"
        );
    }
}

#[test]
fn concealment_lasts_as_long_as_the_last_packet() {
    let mut decoder = OpusDecoder::new(1).unwrap();
    let mut out = Vec::new();
    // Before any packet: 20 ms.
    assert_eq!(decoder.conceal(&mut out).unwrap(), 960);
    assert_eq!(out.len(), 960);

    let config = EncoderConfig {
        frame_ms: 60,
        ..EncoderConfig::mono()
    };
    let mut encoder = OpusEncoder::new(&config).unwrap();
    assert_eq!(encoder.frame_samples(), 2_880);
    let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0);
    let mut pcm = vec![0; 2_880];
    let mut payload = Vec::new();
    for _ in 0..5 {
        tone.read(&mut pcm).unwrap();
        payload.clear();
        encoder.encode(&pcm, &mut payload).unwrap();
        out.clear();
        assert_eq!(decoder.decode(&payload, &mut out).unwrap(), 2_880);
    }
    out.clear();
    assert_eq!(decoder.conceal(&mut out).unwrap(), 2_880);
    assert_eq!(out.len(), 2_880);
    // The concealment continues the tone, then fades.
    assert!(tone_power_ratio(&out[..960], 48_000, 440.0) > 0.9);
    assert!(level_dbfs(&out[..960]) > -20.0);
    assert!(level_dbfs(&out[1_920..]) < level_dbfs(&out[..960]) - 10.0);
}

/// A source that switches from one tone to another at a given frame.
struct Switch {
    before: ToneSource,
    after: ToneSource,
    frame: usize,
    at: usize,
}

impl AudioSource for Switch {
    fn format(&self) -> AudioFormat {
        AudioFormat::MONO_48K
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, crate::audio::AudioError> {
        let n = if self.frame < self.at {
            self.before.read(out)?
        } else {
            self.after.read(out)?
        };
        self.frame += 1;
        Ok(n)
    }
}

#[test]
fn fec_recovers_a_lost_packet_that_concealment_cannot_guess() {
    // 440 Hz for 25 frames, then 1 kHz; the first 1 kHz packet is lost. Concealment can only
    // continue 440 Hz; the FEC copy in the next packet carries the 1 kHz.
    let make_source = || Switch {
        before: ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0),
        after: ToneSource::with_dbfs(AudioFormat::MONO_48K, 1_000.0, -12.0),
        frame: 0,
        at: 25,
    };
    let config = EncoderConfig {
        packet_loss_percent: 20,
        ..EncoderConfig::mono()
    };
    let mut encoder = OpusEncoder::new(&config).unwrap();
    let payloads = encode_frames(&mut encoder, &mut make_source(), 30);

    let recover = |use_fec: bool| {
        let mut decoder = OpusDecoder::new(1).unwrap();
        let mut out = Vec::new();
        for payload in &payloads[..25] {
            decoder.decode(payload, &mut out).unwrap();
        }
        let mut lost = Vec::new();
        let n = if use_fec {
            decoder.decode_fec(&payloads[26], &mut lost).unwrap()
        } else {
            decoder.conceal(&mut lost).unwrap()
        };
        assert_eq!(n, 960);
        assert_eq!(lost.len(), 960);
        // The packet after the loss still decodes normally.
        let mut next = Vec::new();
        assert_eq!(decoder.decode(&payloads[26], &mut next).unwrap(), 960);
        lost
    };
    let with_fec = recover(true);
    let concealed = recover(false);
    // The second half of the lost frame (past the encoder's look-ahead and the transition).
    let tail = |pcm: &[i16]| pcm[480..].to_vec();
    let fec_1k = tone_power_ratio(&tail(&with_fec), 48_000, 1_000.0);
    let plc_1k = tone_power_ratio(&tail(&concealed), 48_000, 1_000.0);
    assert!(fec_1k > 0.5, "FEC: {fec_1k} of the power at 1 kHz");
    assert!(plc_1k < 0.2, "PLC: {plc_1k} of the power at 1 kHz");
}

#[test]
fn fec_without_fec_data_conceals() {
    let config = EncoderConfig {
        fec: false,
        ..EncoderConfig::mono()
    };
    let mut encoder = OpusEncoder::new(&config).unwrap();
    let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0);
    let payloads = encode_frames(&mut encoder, &mut tone, 10);
    let mut decoder = OpusDecoder::new(1).unwrap();
    let mut out = Vec::new();
    for payload in &payloads[..8] {
        decoder.decode(payload, &mut out).unwrap();
    }
    let mut lost = Vec::new();
    assert_eq!(decoder.decode_fec(&payloads[9], &mut lost).unwrap(), 960);
    assert!(tone_power_ratio(&lost, 48_000, 440.0) > 0.8);
}

/// A deterministic byte generator (xorshift) for garbage payloads.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_payloads_are_errors_not_panics() {
    let mut decoder = OpusDecoder::new(2).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        decoder.decode(&[], &mut out),
        Err(CodecError::EmptyPayload)
    ));
    assert!(matches!(
        decoder.decode_fec(&[], &mut out),
        Err(CodecError::EmptyPayload)
    ));
    // Code 3 (arbitrary frame count) with a count of zero, and with its count byte missing.
    assert!(matches!(
        decoder.decode(&[0x03, 0x00], &mut out),
        Err(CodecError::Opus(_))
    ));
    assert!(matches!(
        decoder.decode(&[0xFF], &mut out),
        Err(CodecError::Opus(_))
    ));
    assert!(matches!(
        decoder.decode_fec(&[0xFF], &mut out),
        Err(CodecError::Opus(_))
    ));
    assert!(out.is_empty(), "failed decodes append nothing");

    let (mut refused, mut decoded) = (0, 0);
    for seed in 0..2_000u64 {
        let payload = garbage(seed, 1 + (seed as usize * 7) % 400);
        let before = out.len();
        match decoder.decode(&payload, &mut out) {
            Ok(n) => {
                decoded += 1;
                // Whole 2.5 ms steps, at most 120 ms.
                assert!(n % 120 == 0 && n <= 5_760, "{n} samples");
                assert_eq!(out.len() - before, n * 2);
            }
            Err(_) => {
                refused += 1;
                assert_eq!(out.len(), before);
            }
        }
        out.clear();
        let _ = decoder.decode_fec(&payload, &mut out);
        out.clear();
    }
    assert!(
        refused > 0 && decoded > 0,
        "{refused} refused, {decoded} decoded"
    );
    // The decoder still works.
    let mut encoder = OpusEncoder::new(&EncoderConfig::stereo()).unwrap();
    let mut payload = Vec::new();
    encoder.encode(&[0; 1_920], &mut payload).unwrap();
    assert_eq!(decoder.decode(&payload, &mut out).unwrap(), 960);
}

#[test]
fn configuration_is_checked() {
    let three = EncoderConfig {
        channels: 3,
        ..EncoderConfig::mono()
    };
    assert!(matches!(
        OpusEncoder::new(&three),
        Err(CodecError::UnsupportedChannels { channels: 3, .. })
    ));
    assert!(OpusDecoder::new(0).is_err());
    let odd = EncoderConfig {
        frame_ms: 30,
        ..EncoderConfig::mono()
    };
    assert!(matches!(
        OpusEncoder::new(&odd),
        Err(CodecError::UnsupportedFrameDuration { frame_ms: 30, .. })
    ));
    assert!(matches!(
        OpusEncoder::new(&EncoderConfig::mono().with_bitrate(1_000)),
        Err(CodecError::InvalidBitrate { .. })
    ));
    let mut encoder = OpusEncoder::new(&EncoderConfig::mono()).unwrap();
    assert!(encoder.set_bitrate(600_000).is_err());
    encoder.set_bitrate(16_000).unwrap();
    encoder.set_packet_loss_percent(200).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        encoder.encode(&[0; 961], &mut out),
        Err(CodecError::WrongFrameLength {
            expected: 960,
            got: 961
        })
    ));
    assert!(out.is_empty());
}

#[test]
fn reset_forgets_the_stream() {
    let mut encoder = OpusEncoder::new(&EncoderConfig::mono()).unwrap();
    let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -6.0);
    let payloads = encode_frames(&mut encoder, &mut tone, 5);
    let mut decoder = OpusDecoder::new(1).unwrap();
    let mut out = Vec::new();
    for payload in &payloads {
        decoder.decode(payload, &mut out).unwrap();
    }
    decoder.reset();
    out.clear();
    decoder.conceal(&mut out).unwrap();
    // Concealment after a reset has nothing to continue.
    assert!(level_dbfs(&out) < -60.0);
}

#[test]
fn complexity_reaches_libopus_and_is_capped() {
    assert_eq!(
        EncoderConfig::mono().complexity,
        EncoderConfig::DEFAULT_COMPLEXITY
    );
    for (asked, applied) in [
        (0, 0),
        (EncoderConfig::DEFAULT_COMPLEXITY, 1),
        (3, 3),
        (10, 10),
        (42, 10),
    ] {
        let config = EncoderConfig::mono().with_complexity(asked);
        let mut encoder = OpusEncoder::new(&config).unwrap();
        assert_eq!(
            encoder.encoder.complexity().unwrap(),
            applied,
            "asked {asked}"
        );
        // Every complexity still encodes a tone that decodes to the tone.
        let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -12.0);
        let payloads = encode_frames(&mut encoder, &mut tone, 10);
        let mut decoder = OpusDecoder::new(1).unwrap();
        let mut out = Vec::new();
        for payload in &payloads {
            decoder.decode(payload, &mut out).unwrap();
        }
        assert!(
            tone_power_ratio(&out[4_800..], 48_000, 440.0) > 0.9,
            "asked {asked}"
        );
    }
}

/// Encodes one second of a -12 dBFS tone at `hz` with `config` and decodes it at 48 kHz; returns
/// the steady half and the bandwidth the last packet announced.
fn tone_through(config: &EncoderConfig, hz: f64) -> (Vec<i16>, audiopus::Bandwidth) {
    let mut encoder = OpusEncoder::new(config).unwrap();
    let mut decoder = OpusDecoder::new(1).unwrap();
    let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, hz, -12.0);
    let payloads = encode_frames(&mut encoder, &mut tone, 50);
    let mut out = Vec::new();
    for payload in &payloads {
        assert_eq!(decoder.decode(payload, &mut out).unwrap(), 960);
    }
    let last = Packet::try_from(&payloads[49][..]).unwrap();
    let bandwidth = audiopus::packet::bandwidth(last).unwrap();
    (out[24_000..].to_vec(), bandwidth)
}

#[test]
fn the_default_codes_the_wideband_voice_band_and_decodes_at_48k() {
    let config = EncoderConfig::mono();
    assert_eq!(config.max_bandwidth, AudioBandwidth::Wideband);
    let encoder = OpusEncoder::new(&config).unwrap();
    assert_eq!(
        encoder.encoder.max_bandwidth().unwrap(),
        Bandwidth::Wideband
    );
    // Tones across the voice band come through a 48 kHz decoder at their frequency and level.
    for hz in [200.0, 1_000.0, 3_400.0, 6_500.0] {
        let (steady, bandwidth) = tone_through(&config, hz);
        assert_eq!(bandwidth, Bandwidth::Wideband, "{hz} Hz");
        let ratio = tone_power_ratio(&steady, 48_000, hz);
        assert!(ratio > 0.9, "{hz} Hz: {ratio} of the power at the tone");
        let level = level_dbfs(&steady);
        assert!((level - (-15.0)).abs() < 2.0, "{hz} Hz: level {level} dBFS");
    }
    // Above the band nothing is coded: a 10 kHz tone is gone.
    let (steady, _) = tone_through(&config, 10_000.0);
    assert!(level_dbfs(&steady) < -40.0, "{}", level_dbfs(&steady));
}

#[test]
fn a_fullband_encoder_carries_what_wideband_drops() {
    let config = EncoderConfig::mono()
        .with_bitrate(64_000)
        .with_max_bandwidth(AudioBandwidth::Fullband);
    let (steady, bandwidth) = tone_through(&config, 10_000.0);
    assert_eq!(bandwidth, Bandwidth::Fullband);
    assert!(tone_power_ratio(&steady, 48_000, 10_000.0) > 0.9);
    assert!((level_dbfs(&steady) - (-15.0)).abs() < 2.0);
    for (limit, expected) in [
        (AudioBandwidth::Narrowband, Bandwidth::Narrowband),
        (AudioBandwidth::Mediumband, Bandwidth::Mediumband),
        (AudioBandwidth::SuperWideband, Bandwidth::Superwideband),
    ] {
        let encoder = OpusEncoder::new(&EncoderConfig::mono().with_max_bandwidth(limit)).unwrap();
        assert_eq!(encoder.encoder.max_bandwidth().unwrap(), expected);
    }
}
