//! The conference mixer's sans-IO core: one queue per leg, one 20 ms mix per [`Mixer::mix`].
//!
//! Every leg speaks and hears 48 kHz mono (the bridge converts each leg's own rate). Each call
//! of `mix(now)` takes 20 ms from every leg's queue ([`PcmFifo`]: primed, so legs whose clocks
//! differ from the mixer's neither starve nor pile up, and trimmed, so a leg whose phase is
//! steady does not wait for slack it never uses), sums them once, and gives every leg
//! the sum minus its own contribution (an N−1 mix: nobody hears themselves).
//!
//! Levels are normalised twice. On the way in, each leg's speech is brought towards
//! [`TARGET_DBFS`]: its level is measured over the frames in which it speaks (about a second
//! of them), and its gain moves towards what that level needs — at most 12 dB up, 10 dB down,
//! rising by 0.2 dB a frame and falling by 1 dB, ramped across the frame — so a quiet phone
//! and a loud headset are heard alike. A frame is speech when it is above -45 dBFS and either
//! 10 dB above the leg's noise floor (the quietest frame of the last one to two seconds) or
//! within 15 dB of the speech level measured so far: background noise between words, well
//! below them, neither raises nor lowers anyone; a sound that never pauses (a hum) is not
//! taken for speech, unless it follows speech at about its level (a talker whose microphone
//! turned itself down). The gained samples are not clipped: on the way
//! out, each leg's mix passes its own limiter, a gain that drops at once to what keeps the
//! frame's peak below full scale and recovers by 0.5 dB per frame (ramped), so a raised talker
//! who gets loud and sums of loud talkers never clip or wrap.
//!
//! The active speaker is the leg whose smoothed level (300 ms, as it arrives: before its
//! level gain, so the loudest voice in the room wins) is highest above -45 dBFS; a
//! newcomer takes over after being loudest for 400 ms, so the speaker does not flicker between
//! words. A leg that has sent nothing for [`MixerConfig::silence_timeout`] is reported once as
//! gone quiet; the bridge drops it.

use std::time::{Duration, Instant};

use super::fifo::{FifoCounters, PcmFifo, Trim};
use crate::audio::{round_fast, round_to_sample};

/// The mixer's rate: every leg is converted to and from it.
pub const MIX_RATE: u32 = 48_000;
/// Samples in one 20 ms mix.
pub const MIX_FRAME: usize = (MIX_RATE / 50) as usize;

/// Full scale the limiter keeps each mix under.
const CEILING: f32 = 32_000.0;
/// The limiter's recovery per 20 ms frame (0.5 dB).
const RELEASE: f32 = 1.059_254;
/// Below this level (a frame's, or a smoothed one) nobody is speaking.
const SPEAKING_DBFS: f32 = -45.0;
/// How long a newcomer must be loudest before it becomes the active speaker.
const SPEAKER_HOLD: Duration = Duration::from_millis(400);
/// The smoothing of levels: each frame moves the level this far towards the frame's.
const LEVEL_SMOOTHING: f32 = 20.0 / 300.0;

/// The speech level each leg is brought towards (RMS, dBFS): a sine whose peak is -17 dBFS.
pub const TARGET_DBFS: f32 = -20.0;
/// How far a quiet talker is raised, and a loud one lowered (dB).
const MAX_BOOST_DB: f32 = 12.0;
const MAX_CUT_DB: f32 = 10.0;
/// How far the gain moves towards what the talker needs, per frame of speech (dB).
const RISE_DB: f32 = 0.2;
const FALL_DB: f32 = 1.0;
/// The smoothing of a talker's speech level (about a second of speech).
const SPEECH_SMOOTHING: f32 = 20.0 / 1000.0;
/// How far above its noise floor a frame must be to be speech (10 dB, as a power ratio)...
const ABOVE_FLOOR: f32 = 10.0;
/// ...unless it is no further than this below the speech level so far (15 dB).
const BELOW_SPEECH: f32 = 31.6;
/// The noise floor is the quietest frame of this block of frames and the one before.
const FLOOR_BLOCK: u32 = 50;

/// A leg of the conference, as the mixer numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// How the mixer keeps legs together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixerConfig {
    /// Samples a leg's queue holds before it is mixed (absorbs the jitter between the leg's
    /// clock and the mixer's).
    pub prime: usize,
    /// Beyond this many queued samples, a leg's oldest samples are dropped.
    pub ceiling: usize,
    /// A leg that has pushed nothing for this long is reported as gone quiet.
    pub silence_timeout: Duration,
    /// How a leg's queue sheds standing delay it does not need: the part of `prime` a steady
    /// phase leaves unused, and what a burst left behind (`None`: it keeps all of it).
    pub trim: Option<Trim>,
}

impl Default for MixerConfig {
    fn default() -> Self {
        MixerConfig {
            prime: 2 * MIX_FRAME,
            ceiling: 6 * MIX_FRAME,
            silence_timeout: Duration::from_secs(10),
            // Looked at every 0.5 s (trimmed 1 s after priming at the earliest); 5 ms beyond a
            // pop until a leg runs dry, then a frame (as much as the prime keeps).
            trim: Some(Trim {
                window: 25,
                margin: MIX_FRAME / 4,
                dry_margin: MIX_FRAME,
            }),
        }
    }
}

/// One leg's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegLevel {
    /// Smoothed level of what the leg sends, in dBFS (-96 for silence).
    pub dbfs: f32,
    /// What its queue had to do (underruns, samples dropped).
    pub queue: FifoCounters,
    /// The limiter's gain on what the leg hears now (1.0 = untouched).
    pub limiter_gain: f32,
    /// The gain that brings what the leg sends to [`TARGET_DBFS`] (1.0 = untouched).
    pub level_gain: f32,
}

/// What one mix found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MixReport {
    /// The active speaker after this mix.
    pub speaker: Option<LegId>,
    /// Legs that went quiet for longer than the timeout with this mix (each reported once).
    pub timed_out: Vec<LegId>,
}

struct Leg {
    id: LegId,
    queue: PcmFifo,
    /// This mix's 20 ms from the leg, as it came.
    input: Vec<i16>,
    /// The same with the leg's level gain: what goes into the mix (not clipped).
    sent: Vec<i32>,
    /// What the leg hears from this mix.
    output: Vec<i16>,
    /// Smoothed mean square, in full-scale units.
    power: f32,
    /// Smoothed mean square of the frames in which the leg speaks (before its level gain).
    speech: Option<f32>,
    /// The quietest frame's mean square in the block before and in this one (infinite
    /// while unknown), and the frames of this block so far.
    floor: [f32; 2],
    floor_frames: u32,
    /// The gain on what the leg sends (level normalisation).
    level_gain: f32,
    /// The limiter's gain on what the leg hears.
    gain: f32,
    last_push: Instant,
    timed_out: bool,
}

/// The sans-IO mixer.
pub struct Mixer {
    config: MixerConfig,
    legs: Vec<Leg>,
    next_id: u64,
    sum: Vec<i32>,
    speaker: Option<LegId>,
    /// The loudest leg that is not the speaker yet, and since when.
    candidate: Option<(LegId, Instant)>,
}

impl Mixer {
    /// An empty mixer.
    pub fn new(config: MixerConfig) -> Self {
        Mixer {
            config,
            legs: Vec::new(),
            next_id: 1,
            sum: vec![0; MIX_FRAME],
            speaker: None,
            candidate: None,
        }
    }

    /// Adds a leg; it hears the others from the next mix on.
    pub fn add_leg(&mut self, now: Instant) -> LegId {
        let id = LegId(self.next_id);
        self.next_id += 1;
        self.legs.push(Leg {
            id,
            queue: match self.config.trim {
                Some(trim) => PcmFifo::new(self.config.prime, self.config.ceiling).with_trim(trim),
                None => PcmFifo::new(self.config.prime, self.config.ceiling),
            },
            input: vec![0; MIX_FRAME],
            sent: vec![0; MIX_FRAME],
            output: vec![0; MIX_FRAME],
            power: 0.0,
            speech: None,
            floor: [f32::INFINITY; 2],
            floor_frames: 0,
            level_gain: 1.0,
            gain: 1.0,
            last_push: now,
            timed_out: false,
        });
        id
    }

    /// Removes a leg; unknown ids are ignored.
    pub fn remove_leg(&mut self, id: LegId) {
        self.legs.retain(|l| l.id != id);
        if self.speaker == Some(id) {
            self.speaker = None;
        }
        if self.candidate.is_some_and(|(c, _)| c == id) {
            self.candidate = None;
        }
    }

    /// The legs, in the order they joined.
    pub fn legs(&self) -> impl Iterator<Item = LegId> + '_ {
        self.legs.iter().map(|l| l.id)
    }

    /// Queues what a leg sent (48 kHz mono, any length).
    pub fn push(&mut self, id: LegId, samples: &[i16], now: Instant) {
        if let Some(leg) = self.legs.iter_mut().find(|l| l.id == id) {
            leg.queue.push(samples);
            leg.last_push = now;
            leg.timed_out = false;
        }
    }

    /// Mixes the next 20 ms: afterwards [`Mixer::output`] holds what each leg hears.
    pub fn mix(&mut self, now: Instant) -> MixReport {
        self.sum.fill(0);
        for leg in &mut self.legs {
            leg.queue.pop_into(&mut leg.input);
            let frame_power = mean_square(&leg.input);
            leg.power += (frame_power - leg.power) * LEVEL_SMOOTHING;
            let previous = leg.level_gain;
            if leg.speaks(frame_power) {
                let speech = leg
                    .speech
                    .map_or(frame_power, |s| s + (frame_power - s) * SPEECH_SMOOTHING);
                leg.speech = Some(speech);
                leg.level_gain = level_gain_towards(previous, speech);
            }
            leg.note_floor(frame_power);
            ramp_gain(&leg.input, &mut leg.sent, previous, leg.level_gain);
            for (s, &x) in self.sum.iter_mut().zip(&leg.sent) {
                *s += x;
            }
        }
        for leg in &mut self.legs {
            let peak = self
                .sum
                .iter()
                .zip(&leg.sent)
                .map(|(&s, &x)| (s - x).unsigned_abs())
                .max()
                .unwrap_or(0) as f32;
            let fits = if peak > CEILING { CEILING / peak } else { 1.0 };
            let previous = leg.gain;
            let gain = (previous * RELEASE).min(fits).min(1.0);
            leg.gain = gain;
            if gain == 1.0 && previous == 1.0 {
                // Untouched: the difference only needs saturating to 16 bits.
                for ((o, &s), &x) in leg.output.iter_mut().zip(&self.sum).zip(&leg.sent) {
                    *o = (s - x).clamp(-32_768, 32_767) as i16;
                }
                continue;
            }
            let n = leg.output.len() as f32;
            for (i, ((o, &s), &x)) in leg
                .output
                .iter_mut()
                .zip(&self.sum)
                .zip(&leg.sent)
                .enumerate()
            {
                // Falls at once; rises across the frame (never above what fits).
                let g = if gain < previous {
                    gain
                } else {
                    previous + (gain - previous) * (i + 1) as f32 / n
                };
                let v = (s - x) as f32 * g;
                *o = round_to_sample(v);
            }
        }
        let timed_out = self.check_silence(now);
        self.choose_speaker(now);
        MixReport {
            speaker: self.speaker,
            timed_out,
        }
    }

    /// What `id` hears from the last mix (20 ms, 48 kHz mono).
    pub fn output(&self, id: LegId) -> Option<&[i16]> {
        self.legs
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.output.as_slice())
    }

    /// A leg's level and queue figures.
    pub fn level(&self, id: LegId) -> Option<LegLevel> {
        self.legs.iter().find(|l| l.id == id).map(|l| LegLevel {
            dbfs: dbfs(l.power),
            queue: l.queue.counters(),
            limiter_gain: l.gain,
            level_gain: l.level_gain,
        })
    }

    /// The active speaker.
    pub fn speaker(&self) -> Option<LegId> {
        self.speaker
    }

    fn check_silence(&mut self, now: Instant) -> Vec<LegId> {
        let timeout = self.config.silence_timeout;
        let mut gone = Vec::new();
        for leg in &mut self.legs {
            if !leg.timed_out && now.saturating_duration_since(leg.last_push) >= timeout {
                leg.timed_out = true;
                gone.push(leg.id);
            }
        }
        gone
    }

    fn choose_speaker(&mut self, now: Instant) {
        let loudest = self
            .legs
            .iter()
            .filter(|l| dbfs(l.power) > SPEAKING_DBFS)
            .max_by(|a, b| a.power.total_cmp(&b.power))
            .map(|l| l.id);
        let Some(loudest) = loudest else {
            // Nobody speaks: the last speaker stays shown.
            self.candidate = None;
            return;
        };
        if self.speaker.is_none() || self.speaker == Some(loudest) {
            self.speaker = Some(loudest);
            self.candidate = None;
            return;
        }
        match self.candidate {
            Some((id, since)) if id == loudest => {
                if now.saturating_duration_since(since) >= SPEAKER_HOLD {
                    self.speaker = Some(loudest);
                    self.candidate = None;
                }
            }
            _ => self.candidate = Some((loudest, now)),
        }
    }
}

/// The level gain after one more frame of speech whose smoothed power is `speech`: a step
/// from `gain` towards what brings it to [`TARGET_DBFS`].
fn level_gain_towards(gain: f32, speech: f32) -> f32 {
    let wanted = (TARGET_DBFS - dbfs(speech)).clamp(-MAX_CUT_DB, MAX_BOOST_DB);
    let now = 20.0 * gain.log10();
    let next = now + (wanted - now).clamp(-FALL_DB, RISE_DB);
    10f32.powf(next / 20.0)
}

impl Leg {
    /// Whether a frame of `power` is speech: above [`SPEAKING_DBFS`], and [`ABOVE_FLOOR`]
    /// above the noise floor (once there is one) or within [`BELOW_SPEECH`] of the speech
    /// level.
    fn speaks(&self, power: f32) -> bool {
        let floor = self.floor[0].min(self.floor[1]);
        let above_floor = floor.is_finite() && power > floor * ABOVE_FLOOR;
        let like_speech = self.speech.is_some_and(|s| power > s / BELOW_SPEECH);
        dbfs(power) > SPEAKING_DBFS && (above_floor || like_speech)
    }

    /// Takes a frame of `power` into the noise floor.
    fn note_floor(&mut self, power: f32) {
        self.floor[1] = self.floor[1].min(power);
        self.floor_frames += 1;
        if self.floor_frames == FLOOR_BLOCK {
            self.floor = [self.floor[1], f32::INFINITY];
            self.floor_frames = 0;
        }
    }
}

/// `samples` scaled by a gain moving linearly from `from` to `to` across them, rounded,
/// into `out`.
fn ramp_gain(samples: &[i16], out: &mut [i32], from: f32, to: f32) {
    if from == 1.0 && to == 1.0 {
        for (o, &x) in out.iter_mut().zip(samples) {
            *o = i32::from(x);
        }
        return;
    }
    // The products stay below 2^18, where `round_fast` is exact.
    let step = (to - from) / samples.len() as f32;
    for (i, (o, &x)) in out.iter_mut().zip(samples).enumerate() {
        let g = from + step * (i + 1) as f32;
        *o = round_fast(f32::from(x) * g) as i32;
    }
}

fn mean_square(samples: &[i16]) -> f32 {
    // Integer squares (exact, and the loop vectorizes); 960 of them stay far inside i64.
    let sum: i64 = samples.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
    (sum as f64 / samples.len().max(1) as f64 / (32_768.0 * 32_768.0)) as f32
}

fn dbfs(power: f32) -> f32 {
    if power <= 1e-10 {
        -96.0
    } else {
        (10.0 * power.log10()).max(-96.0)
    }
}

#[cfg(test)]
#[path = "mixer_tests.rs"]
mod tests;
