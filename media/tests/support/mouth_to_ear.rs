//! Mouth-to-ear delay of a classic call on loopback, with no sound-card buffer: A's source plays
//! 100 ms bursts of 1 kHz every 500 ms from 3 s on (the jitter buffer has settled by then), each
//! starting on a frame boundary. One clock, `Instant`, times both ends:
//!
//! - the mouth: a source delivers a frame when its last sample is in, as a microphone does, so a
//!   burst's first sample was captured one frame (20 ms) before the tick that read its frame;
//! - the ear: a frame written to the sink at `t` plays its sample `k` at `t + k / rate` (no
//!   device buffer), so the burst is heard at its first loud sample in the first loud frame.
//!
//! Shared by the `classic_session` test and the `audio_call` bench (each also includes
//! `loopback.rs`).

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callisto_media::audio::{
    AudioError, AudioFormat, AudioFrame, AudioSink, AudioSource, Burst, BurstSource, NullSink,
    ToneSource,
};
use callisto_media::codec::AudioCodecKind;
use callisto_media::session::{AudioStreamConfig, ClassicSession, SrtpKeys};

use crate::loopback::{addr, bind, session_config};

const DEVICE: AudioFormat = AudioFormat::MONO_48K;
/// When the first burst starts, and how often one follows.
const FIRST_BURST_MS: u32 = 3_000;
const BURST_EVERY_MS: u32 = 500;
/// One frame: what a source holds before it can deliver it.
const FRAME: Duration = Duration::from_millis(20);
/// A sample louder than this is the burst (its peak is half of full scale).
const LOUD: u16 = 1_000;

/// What one run measured.
pub struct MouthToEar {
    /// Each heard burst's delay, in milliseconds, in the order sent.
    pub delays_ms: Vec<f64>,
    /// B's jitter buffer target at the end.
    pub jitter_buffer_ms: f64,
    /// How long after each of A's ticks B's tick came, in milliseconds (0 to 20; the circular
    /// mean over the call, so that phases either side of a tick average to it).
    pub phase_ms: f64,
}

impl MouthToEar {
    /// The median delay, when any burst was heard.
    pub fn median_ms(&self) -> Option<f64> {
        let mut sorted = self.delays_ms.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied()
    }
}

/// Runs a call of `codec` from A to B on loopback (SRTP with `srtp`'s keys, A's then B's) for
/// `bursts` bursts and times each. B starts `phase` after A, so that its ticks fall about that
/// long after A's: where they fall decides how long a packet waits for its turn to play.
pub fn measure(
    codec: AudioCodecKind,
    srtp: Option<(SrtpKeys, SrtpKeys)>,
    bursts: usize,
    phase: Duration,
) -> MouthToEar {
    let (sa, sb) = (bind(), bind());
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let (keys_a, keys_b) = srtp.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let stream = AudioStreamConfig::new(codec);
    let burst =
        Burst::millis(DEVICE, FIRST_BURST_MS, 100, 1_000.0, 0.5).every_ms(DEVICE, BURST_EVERY_MS);
    let reads = Arc::new(Mutex::new(Vec::new()));
    let frames = Arc::new(Mutex::new(Vec::new()));
    let source = TimedSource {
        inner: BurstSource::new(DEVICE, burst),
        reads: Arc::clone(&reads),
    };
    let sink = TimedSink {
        frames: Arc::clone(&frames),
    };
    let a = ClassicSession::start(
        session_config(sa, addr_b, stream, keys_a, "a"),
        Box::new(source),
        Box::new(NullSink::new(DEVICE)),
    )
    .expect("A's session starts");
    thread::sleep(phase);
    let b = ClassicSession::start(
        session_config(sb, addr_a, stream, keys_b, "b"),
        Box::new(ToneSource::new(DEVICE, 440.0, 0.0)),
        Box::new(sink),
    )
    .expect("B's session starts");
    let length = FIRST_BURST_MS as usize + bursts * BURST_EVERY_MS as usize + 300;
    thread::sleep(Duration::from_millis(length as u64));
    let jitter_buffer_ms = b.stats().jitter_buffer_delay_ms;
    a.stop();
    b.stop();

    let reads = reads.lock().expect("not poisoned");
    let frames = frames.lock().expect("not poisoned");
    // Onsets at B: the first loud sample of a loud frame after a quiet one, when it plays.
    let loud = |samples: &[i16]| samples.iter().position(|x| x.unsigned_abs() > LOUD);
    let onsets: Vec<Instant> = frames
        .windows(2)
        .filter(|w| loud(&w[0].1).is_none())
        .filter_map(|w| {
            let offset = loud(&w[1].1)? as u32;
            Some(w[1].0 + Duration::from_secs(1) * offset / DEVICE.sample_rate)
        })
        .collect();
    // Each burst's capture (a frame before the tick that read its first frame), and the first
    // onset after it, if it comes before the next burst.
    let first_frame = (burst.start / 960) as usize;
    let frames_apart = BURST_EVERY_MS as usize / 20;
    let next_burst = Duration::from_millis(u64::from(BURST_EVERY_MS));
    let delays_ms = (0..bursts)
        .filter_map(|n| reads.get(first_frame + n * frames_apart).copied())
        .filter_map(|read| {
            let captured = read - FRAME;
            let heard = onsets
                .iter()
                .find(|&&heard| heard >= read && heard < captured + next_burst)?;
            Some((*heard - captured).as_secs_f64() * 1000.0)
        })
        .collect();
    // Each of B's writes after the latest of A's reads before it, as an angle on the frame.
    let frame_ms = FRAME.as_secs_f64() * 1000.0;
    let (sin, cos) = frames
        .iter()
        .filter_map(|(written, _)| {
            let read = reads.get(
                reads
                    .partition_point(|read| read <= written)
                    .checked_sub(1)?,
            )?;
            Some((*written - *read).as_secs_f64() * 1000.0 / frame_ms * std::f64::consts::TAU)
        })
        .fold((0.0, 0.0), |(sin, cos), angle: f64| {
            (sin + angle.sin(), cos + angle.cos())
        });
    let phase_ms =
        f64::atan2(sin, cos).rem_euclid(std::f64::consts::TAU) / std::f64::consts::TAU * frame_ms;
    MouthToEar {
        delays_ms,
        jitter_buffer_ms,
        phase_ms,
    }
}

/// A source that notes when each 20 ms frame was read: the send tick.
struct TimedSource {
    inner: BurstSource,
    reads: Arc<Mutex<Vec<Instant>>>,
}

impl AudioSource for TimedSource {
    fn format(&self) -> AudioFormat {
        self.inner.format()
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        self.reads
            .lock()
            .expect("not poisoned")
            .push(Instant::now());
        self.inner.read(out)
    }
}

/// Each frame a sink was given, with when.
type Written = Arc<Mutex<Vec<(Instant, Vec<i16>)>>>;

/// A sink that notes when each frame was written.
struct TimedSink {
    frames: Written,
}

impl AudioSink for TimedSink {
    fn format(&self) -> AudioFormat {
        DEVICE
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        let at = Instant::now();
        self.frames
            .lock()
            .expect("not poisoned")
            .push((at, frame.samples().to_vec()));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        Ok(())
    }
}
