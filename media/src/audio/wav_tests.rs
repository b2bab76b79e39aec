//! Tests of [`WavSource`] and [`WavRecorder`] together: round trips, end-of-file behaviour, bad
//! files, and what a crash leaves behind.

use std::io::Cursor;

use super::*;
use crate::audio::tone_measure::tone_power_ratio;

/// A WAV file in memory holding `samples` in `format`, written by the recorder.
fn wav_bytes(format: AudioFormat, samples: &[i16]) -> Vec<u8> {
    let mut cursor = Cursor::new(Vec::new());
    {
        let mut recorder = WavRecorder::from_writer(&mut cursor, format).unwrap();
        recorder
            .write(&AudioFrame::new(format, samples.to_vec()).unwrap())
            .unwrap();
        recorder.finish().unwrap();
    }
    cursor.into_inner()
}

fn read_to_end(source: &mut dyn AudioSource) -> Vec<i16> {
    let mut all = Vec::new();
    while let Some(frame) = source.read_frame().unwrap() {
        all.extend_from_slice(frame.samples());
    }
    all
}

#[test]
fn round_trip_at_several_rates_and_channel_counts() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        AudioFormat::MONO_8K,
        AudioFormat::new(16_000, 2),
        AudioFormat::new(22_050, 1),
        AudioFormat::new(44_100, 2),
        AudioFormat::STEREO_48K,
        AudioFormat::new(48_000, 6),
    ] {
        let path = dir
            .path()
            .join(format!("{}-{}.wav", format.sample_rate, format.channels));
        let mut tone = ToneSource::new(format, 440.0, 0.5);
        let mut recorder = WavRecorder::create(&path, format).unwrap();
        let mut written = Vec::new();
        for _ in 0..25 {
            let frame = tone.read_frame().unwrap().unwrap();
            written.extend_from_slice(frame.samples());
            recorder.write(&frame).unwrap();
        }
        recorder.finish().unwrap();
        assert_eq!(
            recorder.samples_written(),
            25 * format.frame_samples_per_channel() as u64
        );

        let mut source = WavSource::open(&path, EndOfFile::Stop).unwrap();
        assert_eq!(source.format(), format);
        assert_eq!(
            source.duration_samples() as usize,
            25 * format.frame_samples_per_channel()
        );
        assert_eq!(read_to_end(&mut source), written, "{format}");
        let left: Vec<i16> = written
            .iter()
            .step_by(format.channels as usize)
            .copied()
            .collect();
        assert!(tone_power_ratio(&left, format.sample_rate, 440.0) > 0.99);
    }
}

#[test]
fn end_of_file_stop_loop_and_silence() {
    let format = AudioFormat::MONO_8K;
    let samples: Vec<i16> = (1..=100).collect();
    let bytes = wav_bytes(format, &samples);

    let mut stop = WavSource::from_reader(Cursor::new(bytes.clone()), EndOfFile::Stop).unwrap();
    let mut buf = vec![0i16; 160];
    assert_eq!(stop.read(&mut buf).unwrap(), 100);
    assert_eq!(&buf[..100], &samples[..]);
    assert_eq!(stop.read(&mut buf).unwrap(), 0);

    let mut looped = WavSource::from_reader(Cursor::new(bytes.clone()), EndOfFile::Loop).unwrap();
    let mut buf = vec![0i16; 250];
    assert_eq!(looped.read(&mut buf).unwrap(), 250);
    let expected: Vec<i16> = samples.iter().cycle().take(250).copied().collect();
    assert_eq!(buf, expected);
    assert_eq!(looped.loops(), 2);

    let mut silence = WavSource::from_reader(Cursor::new(bytes), EndOfFile::Silence).unwrap();
    let mut buf = vec![7i16; 160];
    assert_eq!(silence.read(&mut buf).unwrap(), 160);
    assert_eq!(&buf[..100], &samples[..]);
    assert!(buf[100..].iter().all(|&x| x == 0));
    for _ in 0..10 {
        let frame = silence.read_frame().unwrap().unwrap();
        assert!(frame.samples().iter().all(|&x| x == 0));
    }
}

#[test]
fn an_empty_file_ends_even_when_looping() {
    let bytes = wav_bytes(AudioFormat::MONO_16K, &[]);
    let mut source = WavSource::from_reader(Cursor::new(bytes), EndOfFile::Loop).unwrap();
    assert!(source.read_frame().unwrap().is_none());
    assert_eq!(source.loops(), 0);
}

#[test]
fn a_truncated_file_delivers_its_samples_then_an_error() {
    let format = AudioFormat::new(16_000, 2);
    let samples: Vec<i16> = (0..4_000).map(|i| (i * 7) as i16).collect();
    let mut bytes = wav_bytes(format, &samples);
    // Cut the data in the middle of a sample frame: 44-byte header, 1001 whole sample frames.
    bytes.truncate(44 + 1001 * 4 + 3);
    let mut source = WavSource::from_reader(Cursor::new(bytes), EndOfFile::Loop).unwrap();
    let mut buf = vec![0i16; 4_000];
    let n = source.read(&mut buf).unwrap();
    assert_eq!(n, 2002);
    assert_eq!(&buf[..n], &samples[..n]);
    assert!(matches!(source.read(&mut buf), Err(AudioError::Wav(_))));
    assert_eq!(source.read(&mut buf).unwrap(), 0);
}

#[test]
fn unsupported_encodings_are_refused_clearly() {
    for (bits, sample_format) in [
        (8, hound::SampleFormat::Int),
        (24, hound::SampleFormat::Int),
        (32, hound::SampleFormat::Float),
    ] {
        let mut cursor = Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: bits,
            sample_format,
        };
        let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for _ in 0..10 {
            match sample_format {
                hound::SampleFormat::Float => writer.write_sample(0.5f32).unwrap(),
                hound::SampleFormat::Int => writer.write_sample(3i8).unwrap(),
            }
        }
        writer.finalize().unwrap();
        let err =
            WavSource::from_reader(Cursor::new(cursor.into_inner()), EndOfFile::Stop).unwrap_err();
        assert!(
            matches!(err, AudioError::UnsupportedWav { bits_per_sample, .. } if bits_per_sample == bits),
            "{err}"
        );
        assert!(err.to_string().contains("only 16-bit integer PCM"));
    }
}

/// A 16-bit WAV file in memory at any rate, written by `hound` itself (the recorder writes
/// only rates that 20 ms frames divide).
fn odd_rate_wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = Cursor::new(Vec::new());
    {
        let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
    }
    cursor.into_inner()
}

/// `n` samples of a 1 kHz sine at `rate`, peak half scale.
fn sine_1k(rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let phase = std::f64::consts::TAU * 1_000.0 * i as f64 / f64::from(rate);
            (phase.sin() * 16_384.0) as i16
        })
        .collect()
}

#[test]
fn a_file_at_a_rate_frames_cannot_divide_plays_at_48_khz() {
    // 11 025 Hz: 220.5 samples in 20 ms.
    let bytes = odd_rate_wav(11_025, 1, &sine_1k(11_025, 11_025));
    let mut source = WavSource::from_reader(Cursor::new(bytes.clone()), EndOfFile::Stop).unwrap();
    assert_eq!(source.format(), AudioFormat::MONO_48K);
    assert_eq!(source.duration_samples(), 11_025);
    let all = read_to_end(&mut source);
    // One second, in 20 ms frames (the last completed with silence).
    assert_eq!(all.len(), 48_000, "{} samples", all.len());
    let purity = tone_power_ratio(&all[12_000..36_000], 48_000, 1_000.0);
    assert!(purity > 0.999, "purity {purity}");

    // Looping goes on seamlessly past the end.
    let mut source = WavSource::from_reader(Cursor::new(bytes), EndOfFile::Loop).unwrap();
    let mut three_seconds = Vec::new();
    for _ in 0..150 {
        three_seconds.extend_from_slice(source.read_frame().unwrap().unwrap().samples());
    }
    // The converter reads a few milliseconds ahead, so the fourth pass may have begun.
    assert!(
        (2..=3).contains(&source.loops()),
        "{} loops",
        source.loops()
    );
    // 11 025 samples of 1 kHz hold a whole number of cycles, so the loop is one sine.
    let purity = tone_power_ratio(&three_seconds[24_000..120_000], 48_000, 1_000.0);
    assert!(purity > 0.999, "purity {purity}");
}

#[test]
fn a_truncated_file_at_such_a_rate_delivers_its_samples_then_an_error() {
    let mut bytes = odd_rate_wav(11_025, 2, &sine_1k(11_025, 4_000));
    // 1001 whole sample frames and part of the next.
    bytes.truncate(44 + 1001 * 4 + 3);
    let mut source = WavSource::from_reader(Cursor::new(bytes), EndOfFile::Loop).unwrap();
    assert_eq!(source.format(), AudioFormat::STEREO_48K);
    let mut buf = vec![0i16; 1_920];
    let mut delivered = 0;
    let error = loop {
        match source.read(&mut buf) {
            Ok(n) => delivered += n,
            Err(e) => break e,
        }
    };
    assert!(matches!(error, AudioError::Wav(_)), "{error}");
    // 1001 sample frames at 11 025 Hz are 4358 at 48 kHz, on two channels.
    assert!(
        delivered.abs_diff(2 * 4_358) <= 2 * 48,
        "{delivered} samples"
    );
    assert_eq!(source.read(&mut buf).unwrap(), 0);
}

#[test]
fn corrupted_files_give_errors_not_panics() {
    let good = wav_bytes(AudioFormat::STEREO_48K, &[100; 960]);
    assert!(WavSource::from_reader(Cursor::new(Vec::new()), EndOfFile::Stop).is_err());
    assert!(WavSource::from_reader(Cursor::new(b"RIFF".to_vec()), EndOfFile::Stop).is_err());
    assert!(WavSource::from_reader(Cursor::new(vec![0u8; 200]), EndOfFile::Stop).is_err());
    let mut not_wave = good.clone();
    not_wave[8..12].copy_from_slice(b"AVI ");
    assert!(WavSource::from_reader(Cursor::new(not_wave), EndOfFile::Stop).is_err());
    assert!(WavSource::open("/nonexistent/callisto.wav", EndOfFile::Stop).is_err());

    // Every header byte overwritten with several values, and every truncation of the header:
    // each either opens and reads to an end or an error, or is refused; none panics.
    let mut cases = Vec::new();
    for i in 0..44 {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[i] = value;
            cases.push(bytes);
        }
        cases.push(good[..i].to_vec());
    }
    for bytes in cases {
        if let Ok(mut source) = WavSource::from_reader(Cursor::new(bytes), EndOfFile::Loop) {
            for _ in 0..20 {
                match source.read_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

#[test]
fn the_header_is_valid_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.wav");
    let format = AudioFormat::MONO_16K;
    let mut recorder = WavRecorder::create(&path, format).unwrap();
    // Nothing written yet: already a valid, empty WAV file.
    assert_eq!(hound::WavReader::open(&path).unwrap().duration(), 0);

    let mut tone = ToneSource::new(format, 1_000.0, 0.5);
    for _ in 0..12 {
        recorder
            .write(&tone.read_frame().unwrap().unwrap())
            .unwrap();
    }
    // 240 ms written, header updated every 100 ms: after frames 5 and 10, so 200 ms count.
    // The process "dies": no finish, no destructor.
    std::mem::forget(recorder);
    let reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(reader.duration(), 3_200);
    let mut source = WavSource::open(&path, EndOfFile::Stop).unwrap();
    let samples = read_to_end(&mut source);
    assert_eq!(samples.len(), 3_200);
    assert!(tone_power_ratio(&samples, 16_000, 1_000.0) > 0.99);
}

#[test]
fn flushing_after_every_write_counts_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("every.wav");
    let format = AudioFormat::MONO_8K;
    let mut recorder = WavRecorder::create(&path, format)
        .unwrap()
        .with_flush_interval_ms(0);
    for _ in 0..3 {
        recorder.write(&AudioFrame::silent_frame(format)).unwrap();
    }
    std::mem::forget(recorder);
    assert_eq!(hound::WavReader::open(&path).unwrap().duration(), 480);
}

#[test]
fn dropping_without_finish_completes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.wav");
    let format = AudioFormat::STEREO_48K;
    {
        let mut recorder = WavRecorder::create(&path, format).unwrap();
        recorder.write(&AudioFrame::silent_frame(format)).unwrap();
    }
    assert_eq!(hound::WavReader::open(&path).unwrap().duration(), 960);
}

#[test]
fn recorder_refuses_other_formats_and_writes_after_finish() {
    let mut recorder =
        WavRecorder::from_writer(Cursor::new(Vec::new()), AudioFormat::MONO_8K).unwrap();
    assert!(matches!(
        recorder.write(&AudioFrame::silent_frame(AudioFormat::MONO_16K)),
        Err(AudioError::FormatMismatch { .. })
    ));
    recorder.finish().unwrap();
    recorder.finish().unwrap();
    assert!(matches!(
        recorder.write(&AudioFrame::silent_frame(AudioFormat::MONO_8K)),
        Err(AudioError::Finished)
    ));
    assert!(
        WavRecorder::from_writer(Cursor::new(Vec::new()), AudioFormat::new(11_025, 1)).is_err()
    );
}
