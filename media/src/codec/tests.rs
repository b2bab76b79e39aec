use super::*;

#[test]
fn descriptors() {
    let expected = [
        (AudioCodecKind::Opus, "opus", 48_000, 2, None, 111),
        (AudioCodecKind::Pcmu, "PCMU", 8_000, 1, Some(0), 0),
        (AudioCodecKind::Pcma, "PCMA", 8_000, 1, Some(8), 8),
    ];
    for (kind, name, rate, rtpmap_channels, static_pt, pt) in expected {
        assert_eq!(kind.encoding_name(), name);
        assert_eq!(kind.to_string(), name);
        assert_eq!(kind.clock_rate(), rate);
        assert_eq!(kind.rtpmap_channels(), rtpmap_channels);
        assert_eq!(kind.static_payload_type(), static_pt);
        assert_eq!(kind.default_payload_type(), pt);
        assert_eq!(AudioCodecKind::from_encoding_name(name), Some(kind));
        assert_eq!(
            AudioCodecKind::from_encoding_name(&name.to_ascii_lowercase()),
            Some(kind)
        );
        assert_eq!(
            AudioCodecKind::from_encoding_name(&name.to_ascii_uppercase()),
            Some(kind)
        );
        assert_eq!(kind.pcm_format(1), AudioFormat::new(rate, 1));
    }
    assert_eq!(AudioCodecKind::from_encoding_name("G722"), None);
    assert!(AudioCodecKind::Opus.supports_channels(2));
    assert!(!AudioCodecKind::Opus.supports_channels(3));
    assert!(!AudioCodecKind::Pcma.supports_channels(2));
}

#[test]
fn constructors_build_matching_codecs() {
    for kind in AudioCodecKind::ALL {
        let encoder = kind.make_encoder(&EncoderConfig::mono()).unwrap();
        let decoder = kind.make_decoder(1).unwrap();
        assert_eq!(encoder.kind(), kind);
        assert_eq!(decoder.kind(), kind);
        assert_eq!(encoder.clock_rate(), kind.clock_rate());
        assert_eq!(decoder.clock_rate(), kind.clock_rate());
        assert_eq!(encoder.pcm_format(), kind.pcm_format(1));
        assert_eq!(decoder.pcm_format(), kind.pcm_format(1));
        assert_eq!(
            encoder.frame_samples(),
            kind.pcm_format(1).frame_samples_per_channel()
        );
        assert_eq!(decoder.has_fec(), kind == AudioCodecKind::Opus);
        assert_eq!(
            kind.make_encoder(&EncoderConfig::stereo()).is_ok(),
            kind.supports_channels(2)
        );
        assert_eq!(kind.make_decoder(2).is_ok(), kind.supports_channels(2));
    }
}

#[test]
fn every_codec_round_trips_through_the_trait_objects() {
    use crate::audio::tone_measure::tone_power_ratio;
    use crate::audio::{AudioSource, ToneSource};
    for kind in AudioCodecKind::ALL {
        let mut encoder = kind.make_encoder(&EncoderConfig::mono()).unwrap();
        let mut decoder = kind.make_decoder(1).unwrap();
        let format = encoder.pcm_format();
        let mut tone = ToneSource::with_dbfs(format, 1_000.0, -12.0);
        let mut payload = Vec::new();
        let mut pcm = Vec::new();
        for _ in 0..25 {
            let frame = tone.read_frame().unwrap().unwrap();
            payload.clear();
            encoder.encode(frame.samples(), &mut payload).unwrap();
            decoder.decode(&payload, &mut pcm).unwrap();
        }
        assert_eq!(pcm.len(), 25 * format.frame_len());
        let steady = &pcm[pcm.len() / 2..];
        assert!(
            tone_power_ratio(steady, format.sample_rate, 1_000.0) > 0.95,
            "{kind}"
        );
    }
}
