//! An echo line: what a call receives is played back to it about a second later (the echo
//! test a new user calls to hear their microphone without any server).
//!
//! The sink end takes what arrives; the source end stays silent until the line holds `delay`
//! of audio, then plays it back in order. Neither end blocks or reads a clock: the delay comes
//! from the backlog, and the line keeps at most twice the delay (the oldest is dropped).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::error::AudioError;
use super::frame::{AudioFormat, AudioFrame};
use super::sink::AudioSink;
use super::source::AudioSource;

#[derive(Debug, Default)]
struct Line {
    samples: VecDeque<i16>,
    playing: bool,
}

/// Makes the two ends of an echo line in `format` with about `delay` between them.
pub fn echo_line(format: AudioFormat, delay: Duration) -> (EchoSink, EchoSource) {
    let line = Arc::new(Mutex::new(Line::default()));
    let per_second = format.sample_rate as usize * usize::from(format.channels);
    let delay_samples = (per_second as f64 * delay.as_secs_f64()) as usize;
    (
        EchoSink {
            line: Arc::clone(&line),
            format,
            limit: delay_samples.max(1) * 2,
            finished: false,
        },
        EchoSource {
            line,
            format,
            delay_samples,
        },
    )
}

/// The end of an echo line that takes what the call receives.
pub struct EchoSink {
    line: Arc<Mutex<Line>>,
    format: AudioFormat,
    limit: usize,
    finished: bool,
}

impl AudioSink for EchoSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        if self.finished {
            return Err(AudioError::Finished);
        }
        if frame.format() != self.format {
            return Err(AudioError::FormatMismatch {
                expected: self.format,
                got: frame.format(),
            });
        }
        let mut line = self.line.lock().unwrap_or_else(|p| p.into_inner());
        line.samples.extend(frame.samples().iter().copied());
        let excess = line.samples.len().saturating_sub(self.limit);
        line.samples.drain(..excess);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        self.finished = true;
        Ok(())
    }
}

/// The end of an echo line that plays it back; endless.
pub struct EchoSource {
    line: Arc<Mutex<Line>>,
    format: AudioFormat,
    delay_samples: usize,
}

impl AudioSource for EchoSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let channels = usize::from(self.format.channels);
        let whole = out.len() / channels * channels;
        let mut line = self.line.lock().unwrap_or_else(|p| p.into_inner());
        if !line.playing && line.samples.len() >= self.delay_samples {
            line.playing = true;
        }
        let mut written = 0;
        if line.playing {
            for slot in out[..whole].iter_mut() {
                match line.samples.pop_front() {
                    Some(sample) => *slot = sample,
                    None => break,
                }
                written += 1;
            }
            if line.samples.is_empty() {
                // Ran dry (the other side stopped sending): build the delay up again.
                line.playing = false;
            }
        }
        out[written..whole].fill(0);
        Ok(whole / channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_goes_in_comes_back_after_the_delay() {
        let format = AudioFormat::new(8_000, 1);
        let (mut sink, mut source) = echo_line(format, Duration::from_millis(100));
        let mut out = vec![1i16; 160];
        // Nothing yet: silence, and the source never ends.
        assert_eq!(source.read(&mut out).unwrap(), 160);
        assert!(out.iter().all(|&s| s == 0));
        for frame in 0..10i16 {
            let samples = vec![frame + 1; 160];
            sink.write(&AudioFrame::new(format, samples).unwrap())
                .unwrap();
            // 100 ms are 800 samples: five frames go in before the first comes out.
            source.read(&mut out).unwrap();
            let expected = if frame >= 4 { frame - 3 } else { 0 };
            assert!(
                out.iter().all(|&s| s == expected),
                "frame {frame}: {:?}",
                &out[..3]
            );
        }
    }

    #[test]
    fn the_line_keeps_at_most_twice_the_delay() {
        let format = AudioFormat::new(8_000, 1);
        let (mut sink, mut source) = echo_line(format, Duration::from_millis(20));
        for value in 1..=10i16 {
            sink.write(&AudioFrame::new(format, vec![value; 160]).unwrap())
                .unwrap();
        }
        let mut out = vec![0i16; 160];
        source.read(&mut out).unwrap();
        assert_eq!(out[0], 9, "the oldest were dropped");
        let other = AudioFrame::new(AudioFormat::new(16_000, 1), vec![0; 320]).unwrap();
        assert!(sink.write(&other).is_err());
    }
}
