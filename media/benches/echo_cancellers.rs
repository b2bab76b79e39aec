//! Echo cancellers compared on a simulated echo path: `sonora` (a pure-Rust port of WebRTC's
//! audio processing, AEC3) and, with `--features compare-legacy-aec` (needs Debian's
//! `libwebrtc-audio-processing-dev`), the `webrtc-audio-processing` 0.5 bindings to the WebRTC
//! audio processing library 0.3 (its older AEC, delay-agnostic and extended filter on).
//!
//! ```sh
//! cargo bench -p callisto-media --bench echo_cancellers [--features compare-legacy-aec]
//! ```
//!
//! The far end is an artificial voice (a gliding pitch with formant-shaped harmonics, spoken
//! in syllables with pauses) played into a simulated room: a direct path after the audio
//! stack's delay, then 120 reflections decaying over 200 ms. The microphone hears that echo,
//! a little noise, and from 12 s to 18 s the near end talking too (another voice). Each
//! canceller gets the far end as its render stream and the microphone as its capture stream,
//! in 10 ms frames at 48 kHz, and is measured by:
//!
//! - **ERLE** (echo return loss enhancement: microphone energy over output energy) in the
//!   first 2 s (convergence), from 4 to 12 s, and from 19 to 24 s (after the double talk);
//! - **near end kept** during double talk: the output's projection on the near-end voice (at
//!   the best lag within 20 ms), in dB — 0 dB keeps it whole;
//! - **CPU**: time per 10 ms frame (render and capture).
//!
//! Two rooms: a desk speaker behind a short delay (40 ms, echo at −6 dB) and a laptop with a
//! deep audio buffer (160 ms, echo at −2 dB).
//!
//! Under `cargo test` (no `--bench` argument) it measures `sonora` in the first room only and
//! checks that it cancels at least 20 dB once converged.

use std::time::{Duration, Instant};

use callisto_media::audio::acoustics::{artificial_voice, Hiss, Room};

const RATE: usize = 48_000;
/// 10 ms, the unit both cancellers process.
const FRAME: usize = 480;
const SECONDS: usize = 24;
/// When the near end talks too.
const DOUBLE_TALK: (usize, usize) = (12, 18);

/// One canceller: the far end goes in as render frames, the microphone as capture frames
/// (processed in place).
trait Canceller {
    fn name(&self) -> String;
    fn render(&mut self, frame: &mut [f32]);
    fn capture(&mut self, frame: &mut [f32]);
}

struct Sonora {
    apm: sonora::AudioProcessing,
    noise_suppression: bool,
    input: Vec<f32>,
}

impl Sonora {
    fn boxed(noise_suppression: bool) -> Box<dyn Canceller> {
        use sonora::config::{EchoCanceller, NoiseSuppression};
        let config = sonora::Config {
            echo_canceller: Some(EchoCanceller::default()),
            noise_suppression: noise_suppression.then(NoiseSuppression::default),
            ..Default::default()
        };
        let apm = sonora::AudioProcessing::builder()
            .config(config)
            .capture_config(sonora::StreamConfig::new(RATE as u32, 1))
            .render_config(sonora::StreamConfig::new(RATE as u32, 1))
            .build();
        Box::new(Sonora {
            apm,
            noise_suppression,
            input: vec![0.0; FRAME],
        })
    }
}

impl Canceller for Sonora {
    fn name(&self) -> String {
        let ns = if self.noise_suppression { " + NS" } else { "" };
        format!("sonora 0.2 (AEC3{ns})")
    }

    fn render(&mut self, frame: &mut [f32]) {
        self.input.copy_from_slice(frame);
        self.apm
            .process_render_f32(&[&self.input], &mut [frame])
            .expect("a 10 ms render frame");
    }

    fn capture(&mut self, frame: &mut [f32]) {
        self.input.copy_from_slice(frame);
        self.apm
            .process_capture_f32(&[&self.input], &mut [frame])
            .expect("a 10 ms capture frame");
    }
}

#[cfg(feature = "compare-legacy-aec")]
mod legacy {
    use super::Canceller;
    use webrtc_audio_processing::{
        Config, EchoCancellation, EchoCancellationSuppressionLevel, InitializationConfig,
        NoiseSuppression, NoiseSuppressionLevel, Processor,
    };

    pub struct Legacy {
        processor: Processor,
        noise_suppression: bool,
    }

    impl Legacy {
        pub fn boxed(noise_suppression: bool) -> Box<dyn Canceller> {
            let mut processor = Processor::new(&InitializationConfig {
                num_capture_channels: 1,
                num_render_channels: 1,
                ..InitializationConfig::default()
            })
            .expect("the audio processing module");
            processor.set_config(Config {
                echo_cancellation: Some(EchoCancellation {
                    suppression_level: EchoCancellationSuppressionLevel::High,
                    enable_delay_agnostic: true,
                    enable_extended_filter: true,
                    stream_delay_ms: None,
                }),
                noise_suppression: noise_suppression.then_some(NoiseSuppression {
                    suppression_level: NoiseSuppressionLevel::Moderate,
                }),
                enable_high_pass_filter: true,
                ..Config::default()
            });
            Box::new(Legacy {
                processor,
                noise_suppression,
            })
        }
    }

    impl Canceller for Legacy {
        fn name(&self) -> String {
            let ns = if self.noise_suppression { " + NS" } else { "" };
            format!("webrtc-audio-processing 0.5 / lib 0.3 (AEC{ns})")
        }

        fn render(&mut self, frame: &mut [f32]) {
            self.processor
                .process_render_frame(frame)
                .expect("a 10 ms render frame");
        }

        fn capture(&mut self, frame: &mut [f32]) {
            self.processor
                .process_capture_frame(frame)
                .expect("a 10 ms capture frame");
        }
    }
}

fn energy(samples: &[f32]) -> f64 {
    samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.max(1e-12).log10()
}

/// Runs `canceller` over the room's microphone and prints its figures; returns its ERLE from
/// 4 to 12 s.
fn measure(mut canceller: Box<dyn Canceller>, far: &[f32], mic: &[f32], near: &[f32]) -> f64 {
    let n = far.len();
    let mut out = vec![0.0f32; n];
    let mut busy = Duration::ZERO;
    let mut render = vec![0.0f32; FRAME];
    for start in (0..n - FRAME + 1).step_by(FRAME) {
        render.copy_from_slice(&far[start..start + FRAME]);
        let capture = &mut out[start..start + FRAME];
        capture.copy_from_slice(&mic[start..start + FRAME]);
        let began = Instant::now();
        canceller.render(&mut render);
        canceller.capture(capture);
        busy += began.elapsed();
    }
    let erle = |from: usize, to: usize| {
        let (a, b) = (from * RATE, to * RATE);
        db(energy(&mic[a..b]) / energy(&out[a..b]))
    };
    // After a second of double talk, at the lag (within 20 ms) the canceller delays by.
    let (a, b) = ((DOUBLE_TALK.0 + 1) * RATE, DOUBLE_TALK.1 * RATE);
    let near_energy = energy(&near[a..b]);
    let kept = (0..960)
        .step_by(4)
        .map(|lag| {
            let dot: f64 = (a..b)
                .map(|i| f64::from(out[i + lag]) * f64::from(near[i]))
                .sum();
            (dot / near_energy).abs()
        })
        .fold(0.0, f64::max);
    println!(
        "  {:<50} ERLE {:5.1} dB (0–2 s) {:5.1} dB (4–12 s) {:5.1} dB (19–24 s); \
         near end kept {:+5.1} dB; {:5.1} µs per 10 ms",
        canceller.name(),
        erle(0, 2),
        erle(4, 12),
        erle(19, 24),
        20.0 * kept.max(1e-6).log10(),
        busy.as_secs_f64() * 1e6 / (n / FRAME) as f64
    );
    erle(4, 12)
}

fn main() {
    let seconds = SECONDS as f32;
    let far = artificial_voice(120.0, 1, 0.25, seconds, RATE as u32);
    let near_voice = artificial_voice(210.0, 3, 0.25, seconds, RATE as u32);
    let mut hiss = Hiss::new(99);
    let near: Vec<f32> = near_voice
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let talking = (DOUBLE_TALK.0 * RATE..DOUBLE_TALK.1 * RATE).contains(&i);
            if talking {
                s
            } else {
                0.0
            }
        })
        .collect();
    let benching = std::env::args().any(|argument| argument == "--bench");
    let rooms = [
        ("desk speaker, 40 ms delay, echo at -6 dB", 40, 0.5),
        ("laptop, 160 ms delay, echo at -2 dB", 160, 0.8),
    ];
    for (label, delay_ms, gain) in rooms.into_iter().take(if benching { 2 } else { 1 }) {
        println!("{label}:");
        let echo = Room::new(delay_ms, gain, 7, RATE as u32).echo_of(&far);
        let mic: Vec<f32> = (0..far.len())
            .map(|i| echo[i] + near[i] + 0.003 * hiss.next_sample())
            .collect();
        if !benching {
            let erle = measure(Sonora::boxed(false), &far, &mic, &near);
            assert!(erle > 20.0, "sonora cancels only {erle:.1} dB");
            return;
        }
        for noise_suppression in [false, true] {
            measure(Sonora::boxed(noise_suppression), &far, &mic, &near);
            #[cfg(feature = "compare-legacy-aec")]
            measure(legacy::Legacy::boxed(noise_suppression), &far, &mic, &near);
        }
    }
}
