//! Voice processing for a call's sound devices: echo cancellation, noise suppression and
//! automatic gain control, by `sonora` (WebRTC's AEC3, noise suppressor and AGC2 in Rust; the
//! choice is measured by `benches/echo_cancellers.rs` and explained in ARCHITECTURE.md).
//!
//! A [`VoiceProcessor`] sits between a call and its devices: [`VoiceProcessor::render`] wraps
//! the sink that plays the far end (every frame written there is the canceller's reference),
//! and [`VoiceProcessor::capture`] wraps the microphone (every frame read from it has the
//! echo of that reference removed, then noise suppressed and its level adjusted). Both ends
//! share one processor; a call's media thread drives both, so the lock is never contended.
//! The processor works in 10 ms blocks: 20 ms frames are processed as two. The canceller
//! finds the delay between playing and hearing by itself (desktop audio stacks add 40–200
//! ms).

use std::sync::{Arc, Mutex, PoisonError};

use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression,
};

use super::{AudioError, AudioFormat, AudioFrame, AudioSink, AudioSource};

/// Which stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingOptions {
    /// Remove what the speakers play from what the microphone hears.
    pub echo_cancellation: bool,
    /// Lower steady background noise.
    pub noise_suppression: bool,
    /// Bring quiet and loud talkers to a steady level.
    pub gain_control: bool,
}

impl ProcessingOptions {
    /// Every stage off: the microphone is sent as it is.
    pub const OFF: ProcessingOptions = ProcessingOptions {
        echo_cancellation: false,
        noise_suppression: false,
        gain_control: false,
    };

    /// Whether any stage runs.
    pub fn any(&self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.gain_control
    }
}

impl Default for ProcessingOptions {
    /// Everything on, as a softphone on laptop speakers needs.
    fn default() -> Self {
        ProcessingOptions {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

struct Inner {
    apm: sonora::AudioProcessing,
    /// Render samples waiting for a whole 10 ms block.
    pending_render: Vec<i16>,
    /// Scratch for the processor's outputs.
    scratch: Vec<i16>,
}

/// One call's voice processing; clones share it.
#[derive(Clone)]
pub struct VoiceProcessor {
    format: AudioFormat,
    /// Samples (all channels) in 10 ms.
    block: usize,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for VoiceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceProcessor")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl VoiceProcessor {
    /// A processor for audio in `format` (any rate the codecs use: 8, 16, 32 or 48 kHz).
    pub fn new(format: AudioFormat, options: ProcessingOptions) -> VoiceProcessor {
        let config = sonora::Config {
            high_pass_filter: options.any().then(HighPassFilter::default),
            echo_canceller: options.echo_cancellation.then(EchoCanceller::default),
            noise_suppression: options.noise_suppression.then(NoiseSuppression::default),
            gain_controller2: options.gain_control.then(|| GainController2 {
                adaptive_digital: Some(AdaptiveDigital::default()),
                ..GainController2::default()
            }),
            ..sonora::Config::default()
        };
        let stream = sonora::StreamConfig::new(format.sample_rate, format.channels);
        let apm = sonora::AudioProcessing::builder()
            .config(config)
            .capture_config(stream)
            .render_config(stream)
            .build();
        let block = format.sample_rate as usize / 100 * format.channels as usize;
        VoiceProcessor {
            format,
            block,
            inner: Arc::new(Mutex::new(Inner {
                apm,
                pending_render: Vec::with_capacity(2 * block),
                scratch: vec![0; block],
            })),
        }
    }

    /// `source` (a microphone) with the processing applied to what is read from it.
    pub fn capture(&self, source: Box<dyn AudioSource>) -> ProcessedCapture {
        ProcessedCapture {
            processor: self.clone(),
            source,
        }
    }

    /// `sink` (the speakers) with what is written to it kept as the echo reference.
    pub fn render(&self, sink: Box<dyn AudioSink>) -> ProcessedRender {
        ProcessedRender {
            processor: self.clone(),
            sink,
        }
    }

    /// The canceller's own estimate of its echo return loss enhancement, in dB, once it has
    /// one.
    pub fn erle_db(&self) -> Option<f64> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.apm.statistics().echo_return_loss_enhancement
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A microphone whose samples pass through the [`VoiceProcessor`].
pub struct ProcessedCapture {
    processor: VoiceProcessor,
    source: Box<dyn AudioSource>,
}

impl AudioSource for ProcessedCapture {
    fn format(&self) -> AudioFormat {
        self.source.format()
    }

    /// Reads from the microphone and processes every whole 10 ms block; a tail shorter than
    /// a block (calls read whole 20 ms frames, so none) passes unprocessed.
    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let n = self.source.read(out)?;
        let block = self.processor.block;
        let mut inner = self.processor.lock();
        let Inner { apm, scratch, .. } = &mut *inner;
        for chunk in out[..n].chunks_exact_mut(block) {
            if apm.process_capture_i16(chunk, scratch).is_ok() {
                chunk.copy_from_slice(scratch);
            }
        }
        Ok(n)
    }
}

/// The speakers, with what they play kept as the echo canceller's reference.
pub struct ProcessedRender {
    processor: VoiceProcessor,
    sink: Box<dyn AudioSink>,
}

impl AudioSink for ProcessedRender {
    fn format(&self) -> AudioFormat {
        self.sink.format()
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        self.sink.write(frame)?;
        let block = self.processor.block;
        let mut inner = self.processor.lock();
        let Inner {
            apm,
            pending_render,
            scratch,
        } = &mut *inner;
        pending_render.extend_from_slice(frame.samples());
        let whole = pending_render.len() - pending_render.len() % block;
        for chunk in pending_render[..whole].chunks_exact(block) {
            // The reference is only analysed; what plays is the frame as it came.
            let _ = apm.process_render_i16(chunk, scratch);
        }
        pending_render.drain(..whole);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        self.sink.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::acoustics::{artificial_voice, energy_i16, to_i16, Hiss, Room};
    use crate::audio::NullSink;

    /// A source that plays `samples` once, then silence.
    struct Samples {
        format: AudioFormat,
        samples: Vec<i16>,
        at: usize,
    }

    impl AudioSource for Samples {
        fn format(&self) -> AudioFormat {
            self.format
        }

        fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
            for slot in out.iter_mut() {
                *slot = self.samples.get(self.at).copied().unwrap_or(0);
                self.at += 1;
            }
            Ok(out.len())
        }
    }

    /// Plays an artificial voice through `room` into the microphone (with a little noise) for
    /// `seconds`, 20 ms at a time through the processor's two ends, and gives the
    /// microphone's and the processed samples.
    fn through_the_room(
        rate: u32,
        options: ProcessingOptions,
        room: &Room,
        seconds: f32,
    ) -> (Vec<i16>, Vec<i16>) {
        let format = AudioFormat::new(rate, 1);
        let far = artificial_voice(120.0, 1, 0.25, seconds, rate);
        let mut hiss = Hiss::new(5);
        let mic: Vec<f32> = room
            .echo_of(&far)
            .iter()
            .map(|s| s + 0.003 * hiss.next_sample())
            .collect();
        let (far, mic) = (to_i16(&far), to_i16(&mic));
        let processor = VoiceProcessor::new(format, options);
        let mut speakers = processor.render(Box::new(NullSink::new(format)));
        let mut microphone = processor.capture(Box::new(Samples {
            format,
            samples: mic.clone(),
            at: 0,
        }));
        let frame = format.frame_len();
        let mut out = Vec::with_capacity(mic.len());
        for start in (0..far.len() - frame + 1).step_by(frame) {
            let played = AudioFrame::new(format, far[start..start + frame].to_vec()).unwrap();
            speakers.write(&played).unwrap();
            out.extend(microphone.read_frame().unwrap().unwrap().into_samples());
        }
        (mic[..out.len()].to_vec(), out)
    }

    fn erle(mic: &[i16], out: &[i16], from: f32, to: f32, rate: u32) -> f64 {
        let (a, b) = ((from * rate as f32) as usize, (to * rate as f32) as usize);
        10.0 * (energy_i16(&mic[a..b]) / energy_i16(&out[a..b]).max(1.0)).log10()
    }

    #[test]
    fn the_echo_of_the_speakers_is_removed_from_the_microphone() {
        for (rate, delay_ms) in [(48_000, 60), (8_000, 140)] {
            let room = Room::new(delay_ms, 0.5, 7, rate);
            let options = ProcessingOptions {
                echo_cancellation: true,
                ..ProcessingOptions::OFF
            };
            let (mic, out) = through_the_room(rate, options, &room, 8.0);
            let reduction = erle(&mic, &out, 4.0, 8.0, rate);
            println!("{rate} Hz, {delay_ms} ms: the echo is {reduction:.1} dB lower");
            assert!(reduction > 20.0, "{rate} Hz: {reduction:.1} dB");
        }
    }

    #[test]
    fn with_every_stage_off_the_microphone_passes_untouched() {
        let room = Room::new(60, 0.5, 7, 16_000);
        let (mic, out) = through_the_room(16_000, ProcessingOptions::OFF, &room, 1.0);
        assert_eq!(mic, out);
    }

    #[test]
    fn odd_frame_lengths_are_kept_as_reference_until_a_block_is_whole() {
        let format = AudioFormat::new(8_000, 1);
        let processor = VoiceProcessor::new(format, ProcessingOptions::default());
        let mut speakers = processor.render(Box::new(NullSink::new(format)));
        speakers
            .write(&AudioFrame::new(format, vec![100; 50]).unwrap())
            .unwrap();
        assert_eq!(processor.lock().pending_render.len(), 50);
        speakers
            .write(&AudioFrame::new(format, vec![100; 70]).unwrap())
            .unwrap();
        // 120 samples: one 10 ms block (80) processed, 40 waiting.
        assert_eq!(processor.lock().pending_render.len(), 40);
    }
}
