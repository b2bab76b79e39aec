//! The conference bridge: the [`Mixer`] on a thread of its own, ticking every 20 ms, and the
//! ends that connect calls to it.
//!
//! Each call's media session gets a [`LegSource`] (what the leg hears, in the call's rate) and a
//! [`LegSink`] (what the leg says) from [`ConferenceBridge::join`]. Sessions run on their own
//! clocks; the ends only move samples in and out of queues under a short lock, and the bridge
//! thread converts rates, mixes and refills. The host's own microphone and speakers (or files,
//! or generators) take part as the local leg, pulled and pushed by the bridge thread itself.
//! A leg leaves when both of its ends are dropped (its session stopped).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::fifo::PcmFifo;
use super::mixer::{LegId, Mixer, MixerConfig, MIX_FRAME, MIX_RATE};
use super::video::{MosaicBridge, NO_SPEAKER};
use crate::audio::{AudioError, AudioFormat, AudioFrame, AudioSink, AudioSource, Resampler};
use crate::video::VideoFormat;

const TICK: Duration = Duration::from_millis(20);
/// A late tick beyond this is not caught up; the bridge starts counting again from now.
const MAX_LATENESS: Duration = Duration::from_millis(200);

/// What the bridge tells its owner, from its thread.
#[derive(Debug, Clone, PartialEq)]
pub enum BridgeEvent {
    /// The active speaker changed: a leg's tag and label (tag 0: the local participant).
    Speaker { tag: u64, label: String },
    /// A leg has sent nothing for the mixer's silence timeout.
    Silent { tag: u64, label: String },
}

/// One participant as the bridge sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterEntry {
    /// The owner's tag for the leg (0 for the local participant).
    pub tag: u64,
    pub label: String,
    /// Smoothed level of what it says, in dBFS (as it arrives).
    pub dbfs: f32,
    /// The gain the mixer gives what it says to bring it to the conference's level, in dB.
    pub gain_db: f32,
    pub speaking: bool,
    /// Times its audio ran dry, and samples dropped because it ran ahead.
    pub underruns: u64,
    pub dropped: u64,
}

type EventHandler = Box<dyn FnMut(BridgeEvent) + Send>;

/// A running conference's audio. Clones share it; the thread stops when the last clone is
/// dropped or on [`ConferenceBridge::stop`].
#[derive(Clone)]
pub struct ConferenceBridge {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for ConferenceBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConferenceBridge")
            .field("legs", &self.handle.shared.lock().legs.len())
            .finish()
    }
}

impl PartialEq for ConferenceBridge {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }
}

struct Handle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The composed picture, once a leg with video asked for it.
    mosaic: Mutex<Option<MosaicBridge>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(mosaic) = self.mosaic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            mosaic.stop();
        }
        self.shared.running.store(false, Ordering::Release);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
        if let Some(local) = self.shared.lock().local.as_mut() {
            let _ = local.sink.finish();
        }
    }
}

struct Shared {
    state: Mutex<State>,
    running: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct State {
    mixer: Mixer,
    legs: Vec<LegIo>,
    local: Option<Local>,
    speaker: Option<LegId>,
    /// The active speaker's tag, for the mosaic ([`NO_SPEAKER`] when none).
    speaker_tag: Arc<AtomicU64>,
}

/// A call's leg: samples waiting to be mixed, and mixed samples waiting to be heard.
struct LegIo {
    id: LegId,
    tag: u64,
    label: String,
    rate: u32,
    inbox: Vec<i16>,
    to_mix: Resampler,
    from_mix: Resampler,
    outbox: PcmFifo,
    /// Ends (source, sink) still held.
    ends: u8,
}

/// The host's own leg, pulled and pushed by the bridge thread.
struct Local {
    id: LegId,
    label: String,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    to_mix: Resampler,
    from_mix: Resampler,
    /// One frame from the source, reused every tick.
    input: Vec<i16>,
}

fn mix_format() -> AudioFormat {
    AudioFormat::new(MIX_RATE, 1)
}

impl ConferenceBridge {
    /// Starts an empty conference; `on_event` runs on the bridge thread and must not block.
    pub fn start(
        config: MixerConfig,
        on_event: impl FnMut(BridgeEvent) + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mixer: Mixer::new(config),
                legs: Vec::new(),
                local: None,
                speaker: None,
                speaker_tag: Arc::new(AtomicU64::new(NO_SPEAKER)),
            }),
            running: AtomicBool::new(true),
        });
        let thread = {
            let shared = shared.clone();
            let on_event: EventHandler = Box::new(on_event);
            std::thread::Builder::new()
                .name("conference".into())
                .spawn(move || run(shared, on_event))?
        };
        Ok(ConferenceBridge {
            handle: Arc::new(Handle {
                shared,
                thread: Mutex::new(Some(thread)),
                mosaic: Mutex::new(None),
            }),
        })
    }

    /// The conference's composed picture for legs that take one video stream, started at
    /// `format` (its size and rate) by the first leg that asks; later legs get the same one
    /// whatever their format (their [`MosaicSource`](super::MosaicSource)s scale it).
    pub fn mosaic(&self, format: VideoFormat) -> std::io::Result<MosaicBridge> {
        let mut mosaic = self.handle.mosaic.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = mosaic.as_ref() {
            return Ok(running.clone());
        }
        let speaker = self.handle.shared.lock().speaker_tag.clone();
        let started = MosaicBridge::start(format, speaker)?;
        *mosaic = Some(started.clone());
        Ok(started)
    }

    /// A new leg for a call whose audio runs at `rate` Hz, mono: what it hears and where it
    /// speaks. It leaves the conference when both are dropped. `tag` (not 0) is the owner's
    /// name for the leg in events and the roster; `label` is the participant's, for people.
    pub fn join(
        &self,
        tag: u64,
        label: &str,
        rate: u32,
    ) -> Result<(LegSource, LegSink), AudioError> {
        let format = AudioFormat::new(rate, 1);
        let to_mix = Resampler::new(format, mix_format())?;
        let from_mix = Resampler::new(mix_format(), format)?;
        let frame = format.frame_len();
        let shared = &self.handle.shared;
        let mut state = shared.lock();
        let id = state.mixer.add_leg(Instant::now());
        state.legs.push(LegIo {
            id,
            tag,
            label: label.to_string(),
            rate,
            inbox: Vec::with_capacity(4 * frame),
            to_mix,
            from_mix,
            // Primed at one frame: the bridge and the session tick on the same clock, so
            // nothing needs to wait unless the session's phase jitters across the bridge's;
            // then the first dry read leaves one frame of slack for good.
            outbox: PcmFifo::new(frame, 6 * frame),
            ends: 2,
        });
        tracing::info!(leg = id.0, label, rate, "joined the conference");
        let end = |shared: &Arc<Shared>| LegEnd {
            shared: shared.clone(),
            id,
            format,
            done: false,
        };
        Ok((LegSource(end(shared)), LegSink(end(shared))))
    }

    /// Makes `source` and `sink` (the host's microphone and speakers, or a file and a recorder)
    /// the local participant, replacing any before.
    pub fn set_local(
        &self,
        label: &str,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Result<(), AudioError> {
        let to_mix = Resampler::new(source.format(), mix_format())?;
        let from_mix = Resampler::new(mix_format(), sink.format())?;
        let mut state = self.handle.shared.lock();
        if let Some(mut old) = state.local.take() {
            let _ = old.sink.finish();
            state.mixer.remove_leg(old.id);
        }
        let id = state.mixer.add_leg(Instant::now());
        state.local = Some(Local {
            id,
            label: label.to_string(),
            input: vec![0; source.format().frame_len()],
            source,
            sink,
            to_mix,
            from_mix,
        });
        Ok(())
    }

    /// Everyone taking part (the local participant first), with levels and queue figures.
    pub fn roster(&self) -> Vec<RosterEntry> {
        let state = self.handle.shared.lock();
        let entry = |id: LegId, tag: u64, label: &str| {
            let level = state.mixer.level(id);
            RosterEntry {
                tag,
                label: label.to_string(),
                dbfs: level.map_or(-96.0, |l| l.dbfs),
                gain_db: level.map_or(0.0, |l| 20.0 * l.level_gain.log10()),
                speaking: state.speaker == Some(id),
                underruns: level.map_or(0, |l| l.queue.underruns),
                dropped: level.map_or(0, |l| l.queue.dropped),
            }
        };
        state
            .local
            .iter()
            .map(|l| entry(l.id, 0, &l.label))
            .chain(state.legs.iter().map(|l| entry(l.id, l.tag, &l.label)))
            .collect()
    }

    /// Stops the bridge thread and finishes the local participant's sink (a recording is
    /// complete afterwards). The legs' ends go on giving silence.
    pub fn stop(&self) {
        if let Some(mosaic) = self
            .handle
            .mosaic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            mosaic.stop();
        }
        self.handle.shared.running.store(false, Ordering::Release);
        let thread = self
            .handle
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        if let Some(local) = self.handle.shared.lock().local.as_mut() {
            let _ = local.sink.finish();
        }
    }
}

fn run(shared: Arc<Shared>, mut on_event: EventHandler) {
    let mut next = Instant::now() + TICK;
    let mut scratch = Vec::with_capacity(MIX_FRAME);
    let mut events = Vec::new();
    while shared.running.load(Ordering::Acquire) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > MAX_LATENESS {
            next = now;
        }
        next += TICK;
        tick(
            &mut shared.lock(),
            Instant::now(),
            &mut scratch,
            &mut events,
        );
        for event in events.drain(..) {
            on_event(event);
        }
    }
}

/// One 20 ms step: legs' input into the mixer, one mix, the mixes out to the legs.
fn tick(state: &mut State, now: Instant, scratch: &mut Vec<i16>, events: &mut Vec<BridgeEvent>) {
    let State {
        mixer,
        legs,
        local,
        speaker,
        speaker_tag,
    } = state;
    for leg in legs.iter_mut() {
        let frame = (leg.rate / 50) as usize;
        let whole = leg.inbox.len() - leg.inbox.len() % frame;
        for chunk in leg.inbox[..whole].chunks_exact(frame) {
            scratch.clear();
            if leg.to_mix.process_into(chunk, scratch).is_ok() {
                mixer.push(leg.id, scratch, now);
            }
        }
        leg.inbox.drain(..whole);
    }
    if let Some(local) = local.as_mut() {
        // A source that ended (a file without a loop) is silence from then on.
        local.input.fill(0);
        let _ = local.source.read(&mut local.input);
        scratch.clear();
        if local.to_mix.process_into(&local.input, scratch).is_ok() {
            mixer.push(local.id, scratch, now);
        }
    }
    let report = mixer.mix(now);
    for leg in legs.iter_mut() {
        if let Some(mixed) = mixer.output(leg.id) {
            scratch.clear();
            if leg.from_mix.process_into(mixed, scratch).is_ok() {
                leg.outbox.push(scratch);
            }
        }
    }
    if let Some(local) = local.as_mut() {
        if let Some(mixed) = mixer.output(local.id) {
            scratch.clear();
            if local.from_mix.process_into(mixed, scratch).is_ok() {
                if let Ok(frame) = AudioFrame::new(local.sink.format(), std::mem::take(scratch)) {
                    if let Err(error) = local.sink.write(&frame) {
                        tracing::warn!(%error, "the conference's local output failed");
                    }
                    // The buffer goes back for the next tick.
                    *scratch = frame.into_samples();
                }
            }
        }
    }
    let named = |id: LegId| {
        local
            .iter()
            .filter(|l| l.id == id)
            .map(|l| (0, l.label.clone()))
            .chain(
                legs.iter()
                    .filter(|l| l.id == id)
                    .map(|l| (l.tag, l.label.clone())),
            )
            .next()
    };
    if report.speaker != *speaker {
        *speaker = report.speaker;
        if let Some((tag, label)) = report.speaker.and_then(named) {
            speaker_tag.store(tag, Ordering::Relaxed);
            events.push(BridgeEvent::Speaker { tag, label });
        }
    }
    for id in report.timed_out {
        if let Some((tag, label)) = named(id) {
            events.push(BridgeEvent::Silent { tag, label });
        }
    }
}

/// One end of a leg; the leg leaves the mixer when both ends are gone.
struct LegEnd {
    shared: Arc<Shared>,
    id: LegId,
    format: AudioFormat,
    done: bool,
}

impl LegEnd {
    fn release(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let mut state = self.shared.lock();
        let Some(index) = state.legs.iter().position(|l| l.id == self.id) else {
            return;
        };
        state.legs[index].ends -= 1;
        if state.legs[index].ends == 0 {
            let leg = state.legs.remove(index);
            state.mixer.remove_leg(leg.id);
            tracing::info!(leg = leg.id.0, label = leg.label, "left the conference");
        }
    }
}

impl Drop for LegEnd {
    fn drop(&mut self) {
        self.release();
    }
}

/// What a leg hears: the mix of everyone else, in the leg's rate. It never ends; it is
/// silence until the mix arrives and after the bridge stops.
pub struct LegSource(LegEnd);

impl AudioSource for LegSource {
    fn format(&self) -> AudioFormat {
        self.0.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let mut state = self.0.shared.lock();
        match state.legs.iter_mut().find(|l| l.id == self.0.id) {
            Some(leg) => {
                leg.outbox.pop_into(out);
            }
            None => out.fill(0),
        }
        Ok(out.len())
    }
}

/// Where a leg speaks into the conference, in the leg's rate.
pub struct LegSink(LegEnd);

/// What a leg may have waiting before its oldest samples are dropped (the bridge stalled).
const MAX_INBOX_FRAMES: usize = 10;

impl AudioSink for LegSink {
    fn format(&self) -> AudioFormat {
        self.0.format
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        crate::audio::check_format(self.0.format, frame)?;
        if self.0.done {
            return Err(AudioError::Finished);
        }
        let mut state = self.0.shared.lock();
        if let Some(leg) = state.legs.iter_mut().find(|l| l.id == self.0.id) {
            leg.inbox.extend_from_slice(frame.samples());
            let limit = MAX_INBOX_FRAMES * (leg.rate / 50) as usize;
            if leg.inbox.len() > limit {
                let excess = leg.inbox.len() - limit;
                leg.inbox.drain(..excess);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        self.0.release();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::frequency_level;
    use crate::audio::{MemorySink, SilenceSource, ToneSource};

    /// A session's side of a leg, run at its own 20 ms pace on a thread.
    fn session(
        mut source: LegSource,
        mut sink: LegSink,
        hz: f64,
        rate: u32,
        seconds: u32,
    ) -> std::thread::JoinHandle<Vec<i16>> {
        std::thread::spawn(move || {
            let format = AudioFormat::new(rate, 1);
            let mut tone = ToneSource::with_dbfs(format, hz, -12.0);
            let mut heard = Vec::new();
            let start = Instant::now();
            for i in 0..seconds * 50 {
                let frame = tone.read_frame().unwrap().unwrap();
                sink.write(&frame).unwrap();
                let mut out = vec![0; format.frame_len()];
                source.read(&mut out).unwrap();
                heard.extend(out);
                let due = start + TICK * (i + 1);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            heard
        })
    }

    #[test]
    fn calls_at_different_rates_and_the_host_hear_each_other() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let bridge = {
            let events = events.clone();
            ConferenceBridge::start(MixerConfig::default(), move |e| {
                events.lock().unwrap().push(e)
            })
            .unwrap()
        };
        let host_heard = MemorySink::new(AudioFormat::new(48_000, 2));
        let recording = host_heard.shared();
        bridge
            .set_local(
                "host",
                Box::new(ToneSource::with_dbfs(
                    AudioFormat::new(48_000, 2),
                    300.0,
                    -12.0,
                )),
                Box::new(host_heard),
            )
            .unwrap();
        let (source, sink) = bridge.join(1, "opus", 48_000).unwrap();
        let opus = session(source, sink, 500.0, 48_000, 2);
        let (source, sink) = bridge.join(2, "pcmu", 8_000).unwrap();
        let pcmu = session(source, sink, 700.0, 8_000, 2);
        assert_eq!(bridge.roster().len(), 3);
        let opus = opus.join().unwrap();
        let pcmu = pcmu.join().unwrap();
        bridge.stop();
        // The last second of each: the others' tones, not its own.
        let check = |heard: &[i16], rate: u32, own: f32, others: [f32; 2], who: &str| {
            let tail = &heard[heard.len() - rate as usize..];
            for hz in others {
                // Each talker is brought to the mixer's target level (peaks of 0.14).
                let l = frequency_level(tail, rate, hz, 0.02, 100);
                assert!(l > 0.1, "{who} hears {hz} Hz at {l}");
            }
            let l = frequency_level(tail, rate, own, 0.02, 100);
            assert!(l < 0.01, "{who} hears itself at {l}");
        };
        check(&opus, 48_000, 500.0, [300.0, 700.0], "the Opus leg");
        check(&pcmu, 8_000, 700.0, [300.0, 500.0], "the G.711 leg");
        let host: Vec<i16> = recording.samples().into_iter().step_by(2).collect();
        check(&host, 48_000, 300.0, [500.0, 700.0], "the host");
        // The legs' ends are dropped: they have left.
        assert_eq!(bridge.roster().len(), 1);
        assert!(events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, BridgeEvent::Speaker { .. })));
    }

    #[test]
    fn a_leg_that_stops_sending_is_reported_silent() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let bridge = {
            let events = events.clone();
            ConferenceBridge::start(
                MixerConfig {
                    silence_timeout: Duration::from_millis(300),
                    ..MixerConfig::default()
                },
                move |e| events.lock().unwrap().push(e),
            )
            .unwrap()
        };
        bridge
            .set_local(
                "host",
                Box::new(SilenceSource::new(AudioFormat::new(16_000, 1))),
                Box::new(crate::audio::NullSink::new(AudioFormat::new(16_000, 1))),
            )
            .unwrap();
        let (_source, _sink) = bridge.join(7, "quiet one", 8_000).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        let events = events.lock().unwrap().clone();
        assert_eq!(
            events,
            vec![BridgeEvent::Silent {
                tag: 7,
                label: "quiet one".into()
            }]
        );
    }
}
