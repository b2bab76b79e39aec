//! The echo test's audio: what a call receives is what it sends, a fixed delay later.
//!
//! [`echo_line`] makes a connected pair: the [`EchoSink`] takes the call's received frames,
//! the [`EchoSource`] gives them back `delay` later. The line starts with `delay` of silence
//! and keeps that lag while both ends move: a read that finds no write since the previous one
//! (the peer on hold, packets lost before the jitter buffer filled) stands in a frame of
//! silence for the missing one, so time keeps flowing and the lag does not shrink; writes that
//! run ahead of reads (a burst) are trimmed to the lag plus [`ECHO_SLACK`] by dropping the
//! oldest samples.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::sink::check_format;
use super::{AudioError, AudioFormat, AudioFrame, AudioSink, AudioSource};

/// How far the line may run ahead of its delay before the oldest samples are dropped.
pub const ECHO_SLACK: Duration = Duration::from_millis(200);

/// The delay line shared by the two ends.
#[derive(Debug)]
struct Line {
    samples: VecDeque<i16>,
    /// Samples (all channels) of the delay, and of the delay plus the slack.
    delay: usize,
    limit: usize,
    /// Whether the sink wrote since the source last read.
    written: bool,
}

impl Line {
    fn write(&mut self, samples: &[i16]) {
        self.samples.extend(samples);
        if self.samples.len() > self.limit {
            let excess = self.samples.len() - self.limit;
            self.samples.drain(..excess);
        }
        self.written = true;
    }

    fn read(&mut self, out: &mut [i16]) {
        if !self.written {
            // The frame the sink did not write in this period is silence, behind the rest.
            self.samples.extend(std::iter::repeat_n(0, out.len()));
        }
        self.written = false;
        let n = out.len().min(self.samples.len());
        for (slot, sample) in out.iter_mut().zip(self.samples.drain(..n)) {
            *slot = sample;
        }
        out[n..].fill(0);
    }
}

/// A connected pair in `format`: what goes into the sink comes out of the source `delay`
/// later. The source never ends; the sink may be finished (the source then plays out what
/// the line holds, then silence).
pub fn echo_line(format: AudioFormat, delay: Duration) -> (EchoSource, EchoSink) {
    let per_second = format.sample_rate as usize * format.channels as usize;
    let samples_of = |d: Duration| {
        let n = (d.as_micros() as usize * per_second) / 1_000_000;
        n - n % format.channels as usize
    };
    let delay = samples_of(delay);
    let line = Arc::new(Mutex::new(Line {
        samples: std::iter::repeat_n(0, delay).collect(),
        delay,
        limit: delay + samples_of(ECHO_SLACK),
        written: true,
    }));
    (
        EchoSource {
            format,
            line: Arc::clone(&line),
        },
        EchoSink {
            format,
            line,
            finished: false,
        },
    )
}

/// The line's output: the sink's frames, `delay` later.
#[derive(Debug)]
pub struct EchoSource {
    format: AudioFormat,
    line: Arc<Mutex<Line>>,
}

impl EchoSource {
    /// The lag the line keeps, in samples per channel.
    pub fn delay_samples(&self) -> usize {
        let line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        line.delay / self.format.channels as usize
    }
}

impl AudioSource for EchoSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let channels = self.format.channels as usize;
        let whole = out.len() - out.len() % channels;
        self.line
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .read(&mut out[..whole]);
        Ok(whole)
    }
}

/// The line's input: a call's received audio.
#[derive(Debug)]
pub struct EchoSink {
    format: AudioFormat,
    line: Arc<Mutex<Line>>,
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
        check_format(self.format, frame)?;
        self.line
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(frame.samples());
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        self.finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: AudioFormat = AudioFormat {
        sample_rate: 8_000,
        channels: 1,
    };

    /// A 20 ms frame at 8 kHz whose samples all hold `value`.
    fn frame(value: i16) -> AudioFrame {
        AudioFrame::new(FORMAT, vec![value; 160]).unwrap()
    }

    fn read(source: &mut EchoSource) -> Vec<i16> {
        source.read_frame().unwrap().unwrap().into_samples()
    }

    #[test]
    fn what_is_written_comes_back_after_the_delay() {
        let (mut source, mut sink) = echo_line(FORMAT, Duration::from_millis(100));
        assert_eq!(source.delay_samples(), 800);
        let mut heard = Vec::new();
        for n in 1..=20 {
            sink.write(&frame(n)).unwrap();
            heard.push(read(&mut source));
        }
        // Five frames (100 ms) of silence, then frame 1, 2, … each whole.
        for (index, samples) in heard.iter().enumerate() {
            let expected = if index < 5 { 0 } else { index as i16 - 4 };
            assert!(samples.iter().all(|&s| s == expected), "frame {index}");
        }
    }

    #[test]
    fn the_order_of_read_and_write_in_a_period_does_not_matter() {
        let (mut source, mut sink) = echo_line(FORMAT, Duration::from_millis(40));
        let mut heard = Vec::new();
        for n in 1..=6 {
            heard.push(read(&mut source)[0]);
            sink.write(&frame(n)).unwrap();
        }
        assert_eq!(heard, [0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_gap_in_what_is_received_keeps_the_delay() {
        let (mut source, mut sink) = echo_line(FORMAT, Duration::from_millis(40));
        let mut heard = Vec::new();
        for n in 1..=10 {
            // Periods 4 to 6 receive nothing.
            if !(4..=6).contains(&n) {
                sink.write(&frame(n)).unwrap();
            }
            heard.push(read(&mut source)[0]);
        }
        assert_eq!(heard, [0, 0, 1, 2, 3, 0, 0, 0, 7, 8]);
    }

    #[test]
    fn a_burst_is_trimmed_to_the_delay_and_the_slack() {
        let (mut source, mut sink) = echo_line(FORMAT, Duration::from_millis(40));
        // 500 ms arrive at once: only the newest 240 ms (40 + 200 slack) stay.
        for n in 1..=25 {
            sink.write(&frame(n)).unwrap();
        }
        let first = read(&mut source)[0];
        assert_eq!(first, 14, "the oldest kept frame is 25 - 12 + 1");
        let line = source.line.lock().unwrap();
        assert_eq!(line.samples.len(), 240 * 8 - 160);
    }

    #[test]
    fn stereo_reads_whole_sample_frames_and_a_wrong_format_is_refused() {
        let stereo = AudioFormat {
            sample_rate: 8_000,
            channels: 2,
        };
        let (mut source, mut sink) = echo_line(stereo, Duration::from_millis(20));
        let mut odd = [7i16; 5];
        assert_eq!(source.read(&mut odd).unwrap(), 4);
        assert_eq!(odd, [0, 0, 0, 0, 7]);
        assert!(matches!(
            sink.write(&frame(1)),
            Err(AudioError::FormatMismatch { .. })
        ));
        sink.finish().unwrap();
        assert!(matches!(
            sink.write(&AudioFrame::silent_frame(stereo)),
            Err(AudioError::Finished)
        ));
    }
}
