use std::f64::consts::TAU;
use std::time::{Duration, Instant};

use super::*;
use crate::analysis::{frequency_level, tone_coverage};

/// A 48 kHz mono sine, continuous across calls.
struct Tone {
    hz: f64,
    amplitude: f64,
    n: u64,
    /// Samples per mixer second (48 000 for a leg whose clock matches the mixer's).
    rate: f64,
}

impl Tone {
    fn new(hz: f64, amplitude: f64) -> Self {
        Tone {
            hz,
            amplitude,
            n: 0,
            rate: 48_000.0,
        }
    }

    fn next(&mut self, len: usize) -> Vec<i16> {
        (0..len)
            .map(|_| {
                let t = self.n as f64 / self.rate;
                self.n += 1;
                (self.amplitude * 32_767.0 * (TAU * self.hz * t).sin()).round() as i16
            })
            .collect()
    }
}

/// A leg's test signal and what it heard.
struct Party {
    id: LegId,
    tone: Tone,
    heard: Vec<i16>,
}

/// The peak amplitude of a sine whose level is the mixer's target (what every talker is
/// brought to).
fn target_amplitude() -> f32 {
    10f32.powf(TARGET_DBFS / 20.0) * std::f32::consts::SQRT_2
}

fn tick(start: Instant, i: u64) -> Instant {
    start + Duration::from_millis(20 * i)
}

/// Runs `mixes` mixes, every party pushing 20 ms of its tone before each.
fn run(mixer: &mut Mixer, parties: &mut [Party], start: Instant, mixes: u64) {
    for i in 0..mixes {
        let now = tick(start, i);
        for p in parties.iter_mut() {
            let samples = p.tone.next(MIX_FRAME);
            mixer.push(p.id, &samples, now);
        }
        mixer.mix(now);
        for p in parties.iter_mut() {
            p.heard.extend_from_slice(mixer.output(p.id).unwrap());
        }
    }
}

fn parties(mixer: &mut Mixer, now: Instant, tones: &[(f64, f64)]) -> Vec<Party> {
    tones
        .iter()
        .map(|&(hz, amplitude)| Party {
            id: mixer.add_leg(now),
            tone: Tone::new(hz, amplitude),
            heard: Vec::new(),
        })
        .collect()
}

/// The level of `hz` in what was heard after the first `skip_ms`.
fn level(heard: &[i16], hz: f32, skip_ms: usize) -> f32 {
    frequency_level(&heard[skip_ms * 48..], MIX_RATE, hz, 0.02, 100)
}

#[test]
fn everyone_hears_everyone_else_and_not_themselves() {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default());
    let tones = [300.0, 500.0, 700.0, 900.0];
    let mut parties = parties(
        &mut mixer,
        start,
        &tones.map(|hz| (hz, 0.25)), // -12 dBFS peaks, 5 dB above the target
    );
    run(&mut mixer, &mut parties, start, 100);
    let target = target_amplitude();
    for (i, p) in parties.iter().enumerate() {
        for (j, &hz) in tones.iter().enumerate() {
            let l = level(&p.heard, hz as f32, 500);
            if i == j {
                assert!(l < 0.001, "leg {i} hears itself at {hz} Hz: {l}");
            } else {
                assert!(
                    (l - target).abs() < 0.01,
                    "leg {i} hears {hz} Hz at {l}, not at the target {target}"
                );
            }
        }
    }
}

#[test]
fn loud_talkers_together_are_limited_not_clipped() {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default());
    let tones = [310.0, 470.0, 630.0, 810.0, 1_030.0, 1_270.0];
    let mut parties = parties(&mut mixer, start, &tones.map(|hz| (hz, 0.9)));
    run(&mut mixer, &mut parties, start, 100);
    for (i, p) in parties.iter().enumerate() {
        let peak = p.heard.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(
            f32::from(peak) <= CEILING,
            "leg {i} peaks at {peak}, above the ceiling"
        );
        assert!(peak > 25_000, "the mix is still loud ({peak})");
        for (j, &hz) in tones.iter().enumerate() {
            if i != j {
                // Five tones share the ceiling: each well audible, none lost to distortion.
                let l = level(&p.heard, hz as f32, 100);
                assert!(l > 0.08, "leg {i} hears {hz} Hz at only {l}");
            }
        }
        let figures = mixer.level(p.id).unwrap();
        // Each talker is lowered as far as normalisation goes (10 dB), and the five together
        // still need the limiter.
        assert!((figures.level_gain - 0.316).abs() < 0.01, "{figures:?}");
        assert!(figures.limiter_gain < 0.9, "{figures:?}");
    }
    // When the loud ones stop, a quiet talker is heard: the limiter lets go, and the talker
    // is raised to the target level.
    let quiet = mixer.add_leg(start);
    let mut tone = Tone::new(440.0, 0.1);
    let mut heard = Vec::new();
    for i in 100..200 {
        let now = tick(start, i);
        mixer.push(quiet, &tone.next(MIX_FRAME), now);
        for p in &parties {
            mixer.push(p.id, &[0; MIX_FRAME], now);
        }
        mixer.mix(now);
        heard.extend_from_slice(mixer.output(parties[0].id).unwrap());
    }
    let recovered = level(&heard[heard.len() - 48 * 500..], 440.0, 0);
    assert!(
        (recovered - target_amplitude()).abs() < 0.01,
        "the limiter lets go: {recovered}"
    );
}

/// Where a click that `talker` sends at mix 300 reaches the listener, in samples after the
/// frame it was sent in; the talker pushes one frame before every mix, in step.
fn click_delay(config: MixerConfig) -> usize {
    let start = Instant::now();
    let mut mixer = Mixer::new(config);
    let talker = mixer.add_leg(start);
    let listener = mixer.add_leg(start);
    let mut heard = Vec::new();
    for i in 0..400 {
        let now = tick(start, i);
        let mut frame = [0i16; MIX_FRAME];
        if i == 300 {
            frame[0] = 10_000;
        }
        mixer.push(talker, &frame, now);
        mixer.push(listener, &[0; MIX_FRAME], now);
        mixer.mix(now);
        heard.extend_from_slice(mixer.output(listener).unwrap());
    }
    let at = heard.iter().position(|&s| s != 0).expect("the click");
    // The click's frame counts as speech (-40 dBFS, above the silence before it): the
    // normaliser raises it by a step at most (0.2 dB).
    assert!(
        (10_000..=10_233).contains(&heard[at]),
        "the click, a step louder at most: {}",
        heard[at]
    );
    at - 300 * MIX_FRAME
}

#[test]
fn a_leg_in_step_with_the_mixer_waits_for_the_margin_not_the_prime() {
    let untrimmed = click_delay(MixerConfig {
        trim: None,
        ..MixerConfig::default()
    });
    assert_eq!(untrimmed, MIX_FRAME, "the prime's spare frame stands");
    assert_eq!(
        click_delay(MixerConfig::default()),
        MIX_FRAME / 4,
        "trimmed to 5 ms"
    );
}

#[test]
fn legs_whose_clocks_drift_stay_in_the_mix() {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default());
    let mut parties = parties(
        &mut mixer,
        start,
        &[(500.0, 0.25), (700.0, 0.25), (0.0, 0.0)],
    );
    // One leg's clock runs 0.2 % fast, the other's 0.2 % slow (twenty times what sound cards
    // drift): they deliver 960 ± 1.92 samples per mixer tick on average.
    parties[0].tone.rate = 48_096.0;
    parties[1].tone.rate = 47_904.0;
    let mut owed = [0.0f64; 2];
    for i in 0..3_000 {
        let now = tick(start, i);
        for (k, p) in parties.iter_mut().enumerate() {
            let len = if k < 2 {
                owed[k] += p.tone.rate / 50.0;
                let len = owed[k].floor();
                owed[k] -= len;
                len as usize
            } else {
                MIX_FRAME
            };
            let samples = p.tone.next(len);
            mixer.push(p.id, &samples, now);
        }
        mixer.mix(now);
        let heard = mixer.output(parties[2].id).unwrap().to_vec();
        parties[2].heard.extend(heard);
    }
    let fast = mixer.level(parties[0].id).unwrap().queue;
    let slow = mixer.level(parties[1].id).unwrap().queue;
    assert!(fast.dropped > 0, "the fast leg's excess is dropped");
    // The excess (96 samples a second), and once the slack the prime left beyond a pop and
    // the trim's first margin.
    let slack = (MIX_FRAME - MIX_FRAME / 4) as u64;
    assert!(
        fast.dropped <= 96 * 60 + slack,
        "no more than the excess: {fast:?}"
    );
    assert!(
        slow.underruns <= 4,
        "the slow leg runs dry rarely: {slow:?}"
    );
    // The listener hears both, all the time (100 ms windows, one minute).
    let heard = &parties[2].heard[48 * 100..];
    for hz in [500.0, 700.0] {
        let covered = heard
            .chunks_exact(4_800)
            .filter(|w| frequency_level(w, MIX_RATE, hz, 0.02, 100) > 0.1)
            .count() as f32
            / (heard.len() / 4_800) as f32;
        assert!(
            covered > 0.97,
            "{hz} Hz present in {covered} of the windows"
        );
    }
}

#[test]
fn a_leg_that_loses_a_tenth_of_its_packets_does_not_disturb_the_others() {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default());
    let mut parties = parties(
        &mut mixer,
        start,
        &[(0.0, 0.0), (500.0, 0.25), (700.0, 0.25)],
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut lost = 0;
    for i in 0..1_000 {
        let now = tick(start, i);
        for (k, p) in parties.iter_mut().enumerate() {
            let samples = p.tone.next(MIX_FRAME);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if k == 2 && seed.is_multiple_of(10) {
                lost += 1;
                continue;
            }
            mixer.push(p.id, &samples, now);
        }
        mixer.mix(now);
        let heard = mixer.output(parties[0].id).unwrap().to_vec();
        parties[0].heard.extend(heard);
    }
    assert!((70..=130).contains(&lost), "about a tenth lost: {lost}");
    let heard = &parties[0].heard[48 * 100..];
    let steady = tone_coverage(heard, MIX_RATE, 500.0, 0.02, 20, 0.0);
    let frames_with_500 = heard
        .chunks_exact(MIX_FRAME)
        .filter(|w| frequency_level(w, MIX_RATE, 500.0, 0.05, 20) > 0.1)
        .count();
    assert_eq!(
        frames_with_500,
        heard.len() / MIX_FRAME,
        "every frame carries the steady leg (dominant in {steady})"
    );
    let lossy = level(&parties[0].heard, 700.0, 100);
    assert!(lossy > 0.09, "the lossy leg is still heard: {lossy}");
}

#[test]
fn the_active_speaker_changes_only_for_someone_who_keeps_talking() {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default());
    let [a, b, c] = [0, 1, 2].map(|_| mixer.add_leg(start));
    let mut loud = Tone::new(300.0, 0.3);
    let mut soft = Tone::new(500.0, 0.05);
    let mut speakers = Vec::new();
    // 0–2 s: a talks, b murmurs; 2–2.2 s: c coughs; 2.2–4 s: b talks, a murmurs; 4–5 s: silence.
    for i in 0..250u64 {
        let now = tick(start, i);
        let t = i * 20;
        let (la, lb, lc) = match t {
            0..2_000 => (
                loud.next(MIX_FRAME),
                soft.next(MIX_FRAME),
                vec![0; MIX_FRAME],
            ),
            2_000..2_200 => (loud.next(MIX_FRAME), soft.next(MIX_FRAME), {
                let mut cough = Tone::new(900.0, 0.5);
                cough.next(MIX_FRAME)
            }),
            2_200..4_000 => (
                soft.next(MIX_FRAME),
                loud.next(MIX_FRAME),
                vec![0; MIX_FRAME],
            ),
            _ => (vec![0; MIX_FRAME], vec![0; MIX_FRAME], vec![0; MIX_FRAME]),
        };
        mixer.push(a, &la, now);
        mixer.push(b, &lb, now);
        mixer.push(c, &lc, now);
        speakers.push((t, mixer.mix(now).speaker));
    }
    let at = |ms: u64| speakers.iter().find(|(t, _)| *t == ms).unwrap().1;
    assert_eq!(at(1_000), Some(a));
    assert!(
        speakers.iter().all(|(_, s)| *s != Some(c)),
        "a 200 ms cough does not take the floor"
    );
    let switched = speakers
        .iter()
        .find(|(t, s)| *t > 2_200 && *s == Some(b))
        .map(|(t, _)| *t)
        .unwrap();
    assert!(
        (2_600..3_400).contains(&switched),
        "b takes the floor after holding it a while: {switched} ms"
    );
    assert_eq!(at(4_900), Some(b), "in silence the last speaker stays");
}

#[test]
fn a_leg_that_falls_silent_is_reported_once_and_a_removed_leg_is_gone() {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig {
        silence_timeout: Duration::from_secs(2),
        ..MixerConfig::default()
    });
    let mut parties = parties(
        &mut mixer,
        start,
        &[(300.0, 0.25), (500.0, 0.25), (700.0, 0.25)],
    );
    let mut reports = Vec::new();
    for i in 0..200u64 {
        let now = tick(start, i);
        for (k, p) in parties.iter_mut().enumerate() {
            let samples = p.tone.next(MIX_FRAME);
            if k == 2 && i >= 50 {
                continue; // gone without a word
            }
            mixer.push(p.id, &samples, now);
        }
        let report = mixer.mix(now);
        if !report.timed_out.is_empty() {
            reports.push((i, report.timed_out));
        }
    }
    assert_eq!(reports.len(), 1, "reported once: {reports:?}");
    let (at, gone) = &reports[0];
    assert_eq!(gone, &vec![parties[2].id]);
    assert_eq!(*at, 49 + 100, "two seconds after its last push");
    mixer.remove_leg(parties[2].id);
    assert!(mixer.output(parties[2].id).is_none());
    assert_eq!(mixer.legs().count(), 2);
    let before = parties[0].heard.len();
    run(&mut mixer, &mut parties[..2], tick(start, 200), 50);
    assert!(level(&parties[0].heard[before..], 500.0, 100) > 0.1);
}

/// A talker's 20 ms frames: its tone for 800 ms, then a 200 ms pause filled with `pause`.
fn spurt(tone: &mut Tone, frame: u64, pause: &[i16]) -> Vec<i16> {
    let samples = tone.next(MIX_FRAME);
    if frame % 50 < 40 {
        samples
    } else {
        pause.to_vec()
    }
}

/// Noise at -40 dBFS (a square wave of 328).
fn hiss() -> Vec<i16> {
    (0..MIX_FRAME)
        .map(|k| if k % 2 == 0 { 328 } else { -328 })
        .collect()
}

#[test]
fn quiet_and_loud_talkers_are_heard_alike_and_noise_between_words_moves_no_gain() {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default());
    // A phone 18 dB below the target (its gain stops at +12 dB) and a headset 4 dB above it,
    // both pausing between words, and a listener.
    let (quiet, loud, listener) = (
        mixer.add_leg(start),
        mixer.add_leg(start),
        mixer.add_leg(start),
    );
    let (mut phone, mut headset) = (Tone::new(400.0, 0.018), Tone::new(600.0, 0.22));
    let mut heard = Vec::new();
    let mut headset_gain = Vec::new();
    for i in 0..500 {
        let now = tick(start, i);
        mixer.push(quiet, &spurt(&mut phone, i, &[0; MIX_FRAME]), now);
        // The headset's pauses carry its noise after the first four seconds.
        let pause = if i < 200 { vec![0; MIX_FRAME] } else { hiss() };
        mixer.push(loud, &spurt(&mut headset, i, &pause), now);
        mixer.push(listener, &[0; MIX_FRAME], now);
        mixer.mix(now);
        heard.extend_from_slice(mixer.output(listener).unwrap());
        headset_gain.push(mixer.level(loud).unwrap().level_gain);
    }
    // Seconds 2 to 4, in the talkers' words only (the mix lags by less than 3 frames).
    let words: Vec<i16> = heard[48 * 2_000..48 * 4_000]
        .chunks_exact(MIX_FRAME)
        .enumerate()
        .filter(|(k, _)| (3..38).contains(&(k % 50)))
        .flat_map(|(_, frame)| frame.iter().copied())
        .collect();
    let (quiet_level, loud_level) = (level(&words, 400.0, 0), level(&words, 600.0, 0));
    let target = target_amplitude();
    println!("quiet {quiet_level:.4}, loud {loud_level:.4}, target {target:.4}");
    assert!(
        (loud_level - target).abs() < 0.01,
        "the headset is lowered to the target: {loud_level}"
    );
    assert!(
        (quiet_level / 0.018 - 3.98).abs() < 0.15,
        "the phone is raised by 12 dB and no more: {quiet_level}"
    );
    // The noise in the headset's pauses is 5 dB above -45 dBFS and 20 dB below its words.
    // Once its floor has learnt the noise (within two seconds of the first noisy pause),
    // the noise moves the headset's gain no more than its words' edges did before: within
    // 0.25 dB of where it stood in seconds 3 to 4.
    let before = headset_gain[150..200].iter().sum::<f32>() / 50.0;
    for (k, gain) in headset_gain.iter().enumerate().skip(350) {
        assert!(
            (gain / before).log10().abs() * 20.0 < 0.25,
            "frame {k}: gain {gain}, {before} before the noise"
        );
    }

    // The phone's talker comes closer and speaks at half full scale: raised by 12 dB that is
    // twice full scale, which the limiter brings down whole, with no clipped tops.
    let mut loud_now = Tone::new(400.0, 0.5);
    let mut tops = 0;
    for i in 500..520 {
        let now = tick(start, i);
        mixer.push(quiet, &loud_now.next(MIX_FRAME), now);
        mixer.push(loud, &[0; MIX_FRAME], now);
        mixer.push(listener, &[0; MIX_FRAME], now);
        mixer.mix(now);
        let out = mixer.output(listener).unwrap();
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(f32::from(peak) <= CEILING, "{peak}");
        // A clipped top is a run of samples at the frame's peak; a sine's peak is one or two.
        let at_peak: Vec<bool> = out.iter().map(|s| s.unsigned_abs() >= peak - 2).collect();
        tops = tops.max(at_peak.split(|&p| !p).map(<[bool]>::len).max().unwrap());
    }
    assert!(tops <= 2, "{tops} samples in a row at the peak");
    assert!(
        mixer.level(quiet).unwrap().level_gain < 3.5,
        "the gain falls"
    );
}
