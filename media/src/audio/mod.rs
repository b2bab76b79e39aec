//! Audio frames, sources, sinks and format conversion.
//!
//! # Contract
//!
//! - Audio moves through Callisto as [`AudioFrame`]s: interleaved signed 16-bit samples plus the
//!   [`AudioFormat`] (sample rate, channel count) they are in. The unit of work is a 20 ms frame
//!   ([`FRAME_MS`]); every supported rate is a multiple of 50 Hz so a 20 ms frame holds a whole
//!   number of samples.
//! - An [`AudioSource`] is pulled: the media thread asks it for samples when it needs them and paces
//!   itself. Sources never read a clock, so a file or a generator runs as fast as its reader does —
//!   tests run faster than real time, a call runs at the pace of its media thread.
//! - An [`AudioSink`] is pushed one frame at a time and finished once.
//! - Everything a device does, a file or a generator can do (DESIGN.md rule 5): [`ToneSource`],
//!   [`BurstSource`], [`SilenceSource`], [`WavSource`]; [`WavRecorder`], [`MemorySink`],
//!   [`NullSink`]. Device sources and sinks implement the same traits.
//! - [`Resampler`] converts 20 ms frames between any two supported formats (rate and channel
//!   count), one frame in, one frame out, with a fixed, documented delay.
//! - Bad files are error values ([`AudioError`]), never panics.

pub mod acoustics;
mod channel_mix;
mod echo;
mod error;
mod frame;
mod mute;
mod processing;
mod rate_stream;
mod resampler;
mod ringtone;
mod sink;
mod source;
mod switch;
mod tee_sink;
mod tone;
mod wav_recorder;
mod wav_source;

#[cfg(test)]
pub(crate) mod tone_measure;
#[cfg(test)]
mod wav_tests;

pub use channel_mix::mix_channels;
pub use echo::{echo_line, EchoSink, EchoSource, ECHO_SLACK};
pub use error::AudioError;
pub(crate) use frame::{round_fast, round_to_sample};
pub use frame::{AudioFormat, AudioFrame, FRAME_MS};
pub use mute::{MutableSource, MuteSwitch};
pub use processing::{ProcessedCapture, ProcessedRender, ProcessingOptions, VoiceProcessor};
pub use resampler::Resampler;
pub use ringtone::{Ringtone, RING_BURSTS_MS, RING_PERIOD_MS, RING_TONES};
pub(crate) use sink::check_format;
pub use sink::{AudioSink, MemorySink, NullSink, SharedSamples};
pub use source::{AudioSource, SilenceSource, Take};
pub use switch::{AudioEnds, AudioSwitch, SwitchedSink, SwitchedSource};
pub use tee_sink::TeeSink;
pub use tone::{Burst, BurstSource, ToneSource};
pub use wav_recorder::WavRecorder;
pub use wav_source::{EndOfFile, WavSource};
