//! WAV files for audio tests: tone generators to feed baresip's `aufile` source (and Callisto's
//! file source), and a reader that turns a recording into mono samples for
//! `callisto_media::analysis`.

use std::io;
use std::path::Path;

/// The level of the tones [`write_tone`] writes, relative to full scale (−10.5 dBFS): loud
/// enough to stand far above codec noise, quiet enough that no codec clips it.
pub const TONE_LEVEL: f32 = 0.3;

/// A decoded WAV file, mixed down to mono.
#[derive(Debug, Clone)]
pub struct MonoWav {
    /// The samples, channels averaged.
    pub samples: Vec<i16>,
    /// Samples per second.
    pub sample_rate: u32,
    /// How many channels the file had.
    pub channels: u16,
}

impl MonoWav {
    /// The duration of the samples, in seconds.
    pub fn seconds(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// `seconds` of a sine at `hz` with amplitude `level` (relative to full scale) at `sample_rate`.
pub fn tone_samples(hz: f32, sample_rate: u32, seconds: f32, level: f32) -> Vec<i16> {
    let count = (sample_rate as f32 * seconds) as usize;
    let amplitude = f64::from(level.clamp(0.0, 1.0)) * f64::from(i16::MAX);
    (0..count)
        .map(|n| {
            let phase =
                2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / f64::from(sample_rate);
            (phase.sin() * amplitude).round() as i16
        })
        .collect()
}

/// Writes a 16-bit PCM WAV of `seconds` of a sine at `hz` ([`TONE_LEVEL`]), the same signal on
/// each of `channels`.
pub fn write_tone(
    path: &Path,
    hz: f32,
    sample_rate: u32,
    channels: u16,
    seconds: f32,
) -> io::Result<()> {
    write_samples(
        path,
        &tone_samples(hz, sample_rate, seconds, TONE_LEVEL),
        sample_rate,
        channels,
    )
}

/// Writes mono `samples` as a 16-bit PCM WAV with `channels` identical channels.
pub fn write_samples(
    path: &Path,
    samples: &[i16],
    sample_rate: u32,
    channels: u16,
) -> io::Result<()> {
    let spec = hound::WavSpec {
        channels: channels.max(1),
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(wav_error)?;
    for sample in samples {
        for _ in 0..spec.channels {
            writer.write_sample(*sample).map_err(wav_error)?;
        }
    }
    writer.finalize().map_err(wav_error)
}

/// Reads a WAV file (16-bit integer or 32-bit float PCM) and mixes it down to mono `i16`.
///
/// Read a recording only after its writer closed it (baresip's `sndfile` does when the call
/// ends): the header of an open file does not yet count the samples.
pub fn read_mono(path: &Path) -> io::Result<MonoWav> {
    let mut reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => reader
            .samples::<i16>()
            .map_while(Result::ok)
            .map(f32::from)
            .collect(),
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .map_while(Result::ok)
            .map(|sample| sample * 32768.0)
            .collect(),
        (format, bits) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: unsupported WAV format {format:?} {bits} bits",
                    path.display()
                ),
            ))
        }
    };
    let samples = interleaved
        .chunks_exact(channels)
        .map(|frame| {
            let mean = frame.iter().sum::<f32>() / channels as f32;
            mean.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
        })
        .collect();
    Ok(MonoWav {
        samples,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    })
}

fn wav_error(error: hound::Error) -> io::Error {
    match error {
        hound::Error::IoError(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// What a recording holds, as far as the interop tests care.
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    /// Seconds of audio recorded.
    pub seconds: f64,
    /// Fraction of 50 ms windows dominated by the expected tone (within 2 %, above −26 dBFS).
    pub coverage: f32,
    /// Mean level of the own tone (near zero when a side does not hear itself).
    pub own_level: f32,
}

/// Analyses `recording` for the other side's tone `expected_hz` and the own tone `own_hz`.
pub fn heard(recording: &Path, expected_hz: f32, own_hz: f32) -> io::Result<Heard> {
    use callisto_media::analysis::{frequency_level, tone_coverage};
    let audio = read_mono(recording)?;
    let rate = audio.sample_rate;
    Ok(Heard {
        seconds: audio.seconds(),
        coverage: tone_coverage(&audio.samples, rate, expected_hz, 0.02, 50, 0.05),
        own_level: frequency_level(&audio.samples, rate, own_hz, 0.02, 50),
    })
}

/// How `recording` holds the tone `hz`, in 100 ms steps: the seconds with it, and the
/// longest stretch without it between its first and its last appearance (a hold, a drop).
pub fn tone_gap(recording: &Path, hz: f32) -> io::Result<(f64, f64)> {
    use callisto_media::analysis::tone_coverage;
    let audio = read_mono(recording)?;
    let step = (audio.sample_rate / 10) as usize;
    let present: Vec<bool> = audio
        .samples
        .chunks_exact(step)
        .map(|chunk| tone_coverage(chunk, audio.sample_rate, hz, 0.02, 50, 0.05) >= 0.5)
        .collect();
    let with_tone = present.iter().filter(|p| **p).count() as f64 / 10.0;
    let (Some(first), Some(last)) = (
        present.iter().position(|p| *p),
        present.iter().rposition(|p| *p),
    ) else {
        return Ok((0.0, 0.0));
    };
    let longest = present[first..=last]
        .split(|p| *p)
        .map(<[bool]>::len)
        .max()
        .unwrap_or(0);
    Ok((with_tone, longest as f64 / 10.0))
}
