use super::*;
use crate::audio::tone_measure::{level_dbfs, tone_power_ratio};
use crate::audio::{AudioSource, Burst, BurstSource, ToneSource};

/// Runs `frames` 20 ms frames of `source` through a resampler to `output`, checking every frame's
/// size; returns the output samples.
fn convert(source: &mut dyn AudioSource, output: AudioFormat, frames: usize) -> Vec<i16> {
    let mut resampler = Resampler::new(source.format(), output).unwrap();
    let mut out = Vec::new();
    for _ in 0..frames {
        let frame = source.read_frame().unwrap().unwrap();
        let converted = resampler.process(&frame).unwrap();
        assert_eq!(converted.format(), output);
        assert!(
            converted.is_20ms(),
            "{} samples",
            converted.samples_per_channel()
        );
        out.extend_from_slice(converted.samples());
    }
    out
}

fn channel(samples: &[i16], channels: u16, index: usize) -> Vec<i16> {
    samples
        .iter()
        .skip(index)
        .step_by(channels as usize)
        .copied()
        .collect()
}

#[test]
fn equal_formats_pass_through() {
    let format = AudioFormat::STEREO_48K;
    let mut resampler = Resampler::new(format, format).unwrap();
    assert!(resampler.is_passthrough());
    assert_eq!(resampler.delay_samples(), 0);
    let mut tone = ToneSource::new(format, 440.0, 0.5);
    let frame = tone.read_frame().unwrap().unwrap();
    assert_eq!(resampler.process(&frame).unwrap(), frame);
}

#[test]
fn channel_only_conversion_has_no_delay() {
    let input = AudioFormat::new(16_000, 2);
    let samples: Vec<i16> = (0..640)
        .map(|i| if i % 2 == 0 { 1000 } else { 3000 })
        .collect();
    let frame = AudioFrame::new(input, samples).unwrap();
    let mut down = Resampler::new(input, AudioFormat::MONO_16K).unwrap();
    assert!(!down.is_passthrough());
    assert_eq!(down.delay_samples(), 0);
    let mono = down.process(&frame).unwrap();
    assert!(mono.samples().iter().all(|&x| x == 2000));
    let mut up = Resampler::new(AudioFormat::MONO_16K, input).unwrap();
    let stereo = up.process(&mono).unwrap();
    assert!(stereo.samples().iter().all(|&x| x == 2000));
    assert_eq!(stereo.samples().len(), 640);
}

#[test]
fn tone_keeps_its_frequency_and_level_48k_to_8k() {
    let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, 440.0, -6.0);
    let out = convert(&mut tone, AudioFormat::MONO_8K, 50);
    assert_eq!(out.len(), 8_000);
    // Skip the first 20 ms: the resampler's delay starts the output with silence.
    let steady = &out[160..];
    assert!(tone_power_ratio(steady, 8_000, 440.0) > 0.99);
    assert!(tone_power_ratio(steady, 8_000, 550.0) < 0.01);
    let level = level_dbfs(steady);
    assert!((level - (-9.03)).abs() < 0.3, "level {level} dBFS");
}

#[test]
fn tones_survive_every_common_conversion() {
    let rates = [8_000, 16_000, 22_050, 44_100, 48_000];
    for &from in &rates {
        for &to in &rates {
            for (from_ch, to_ch) in [(1, 1), (2, 1), (1, 2), (2, 2)] {
                let input = AudioFormat::new(from, from_ch);
                let output = AudioFormat::new(to, to_ch);
                let hz = 1_000.0;
                let mut tone = ToneSource::with_dbfs(input, hz, -10.0);
                let out = convert(&mut tone, output, 15);
                for c in 0..to_ch as usize {
                    let ch = channel(&out, to_ch, c);
                    let steady = &ch[ch.len() / 5..];
                    let ratio = tone_power_ratio(steady, to, hz);
                    assert!(ratio > 0.98, "{input} -> {output}: ratio {ratio}");
                    let level = level_dbfs(steady);
                    assert!(
                        (level - (-13.01)).abs() < 0.5,
                        "{input} -> {output}: {level} dBFS"
                    );
                }
            }
        }
    }
}

#[test]
fn the_telephone_band_passes_whole_through_8_khz() {
    // 300 Hz to 3.4 kHz, the band G.711 carries, down to 8 kHz and back up: within a decibel.
    for hz in [300.0, 1_000.0, 3_000.0, 3_400.0] {
        let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, hz, -10.0);
        let mut down = Resampler::new(AudioFormat::MONO_48K, AudioFormat::MONO_8K).unwrap();
        let mut up = Resampler::new(AudioFormat::MONO_8K, AudioFormat::MONO_48K).unwrap();
        let mut out = Vec::new();
        for _ in 0..25 {
            let frame = tone.read_frame().unwrap().unwrap();
            out.extend_from_slice(
                up.process(&down.process(&frame).unwrap())
                    .unwrap()
                    .samples(),
            );
        }
        let steady = &out[4_800..];
        let level = level_dbfs(steady);
        assert!((level - (-13.01)).abs() < 1.0, "{hz} Hz at {level} dBFS");
        let ratio = tone_power_ratio(steady, 48_000, hz);
        assert!(ratio > 0.99, "{hz} Hz: ratio {ratio}");
    }
}

#[test]
fn downsampling_rejects_what_the_lower_rate_cannot_carry() {
    // 6 kHz and 4.5 kHz are above 8 kHz's Nyquist frequency; they must not fold back to
    // 2 kHz or 3.5 kHz (the latter right by the passband's edge).
    for hz in [6_000.0, 4_500.0] {
        let mut tone = ToneSource::with_dbfs(AudioFormat::MONO_48K, hz, -1.0);
        let out = convert(&mut tone, AudioFormat::MONO_8K, 25);
        let level = level_dbfs(&out[800..]);
        assert!(level < -60.0, "{hz} Hz: alias at {level} dBFS");
    }
}

/// Finds the lag (in output samples) at which `reference` best matches `signal`.
fn best_lag(signal: &[i16], reference: &[i16], max_lag: usize) -> usize {
    (0..max_lag)
        .max_by_key(|&lag| {
            let c: i64 = reference
                .iter()
                .zip(&signal[lag..])
                .map(|(&r, &s)| i64::from(r) * i64::from(s))
                .sum();
            c
        })
        .unwrap_or(0)
}

#[test]
fn delay_matches_the_documented_figure() {
    for (from, to, expected_delay) in [
        (48_000, 8_000, 20),
        (8_000, 48_000, 120),
        (44_100, 48_000, 240),
        (16_000, 48_000, 120),
        (22_050, 16_000, 160),
    ] {
        let input = AudioFormat::new(from, 1);
        let output = AudioFormat::new(to, 1);
        let resampler = Resampler::new(input, output).unwrap();
        assert_eq!(resampler.delay_samples(), expected_delay, "{from} -> {to}");

        // A 1 kHz burst 100 ms in, 30 ms long, converted; and the same burst made at the
        // output rate directly. The converted one lags by the delay.
        let burst = |format| BurstSource::new(format, Burst::millis(format, 100, 30, 1_000.0, 0.5));
        let out = convert(&mut burst(input), output, 15);
        let mut reference = vec![0; out.len()];
        burst(output).read(&mut reference).unwrap();
        let start = output.samples_per_channel_in_ms(90);
        let window = &reference[start..start + output.samples_per_channel_in_ms(50)];
        let lag = best_lag(&out[start..], window, 2 * expected_delay + 20);
        assert!(
            lag.abs_diff(expected_delay) <= 1,
            "{from} -> {to}: measured {lag}, documented {expected_delay}"
        );
    }
}

#[test]
fn reset_starts_from_silence() {
    let mut resampler = Resampler::new(AudioFormat::MONO_48K, AudioFormat::MONO_8K).unwrap();
    let mut tone = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.5);
    for _ in 0..5 {
        resampler
            .process(&tone.read_frame().unwrap().unwrap())
            .unwrap();
    }
    resampler.reset();
    let out = resampler
        .process(&AudioFrame::silent_frame(AudioFormat::MONO_48K))
        .unwrap();
    assert!(out.samples().iter().all(|&x| x == 0));
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(
        Resampler::new(AudioFormat::new(48_000, 2), AudioFormat::new(48_000, 3)),
        Err(AudioError::UnsupportedChannelMix { from: 2, to: 3 })
    ));
    assert!(matches!(
        Resampler::new(AudioFormat::new(11_025, 1), AudioFormat::MONO_8K),
        Err(AudioError::UnsupportedSampleRate(11_025))
    ));
    let mut resampler = Resampler::new(AudioFormat::MONO_48K, AudioFormat::MONO_8K).unwrap();
    assert!(matches!(
        resampler.process(&AudioFrame::silent_frame(AudioFormat::MONO_16K)),
        Err(AudioError::FormatMismatch { .. })
    ));
    assert!(matches!(
        resampler.process(&AudioFrame::silence(AudioFormat::MONO_48K, 480)),
        Err(AudioError::WrongFrameLength {
            expected: 960,
            got: 480
        })
    ));
    let mut out = Vec::new();
    assert!(resampler.process_into(&[0; 959], &mut out).is_err());
    assert!(out.is_empty());
}
