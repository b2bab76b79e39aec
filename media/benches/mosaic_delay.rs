//! `cargo bench -p callisto-media --bench mosaic_delay`: how long a picture takes through a
//! conference host's mosaic, against a direct call. Alice's camera shows grey and flashes
//! white; bob's window watches the brightness of what he decodes; the delay is from the
//! flash to the first picture bob decodes that shows it (median of the flashes).
//!
//! - **Direct**: alice's session → bob's session.
//! - **Through the mosaic**: alice → the host's session with alice (decoded into alice's
//!   tile) → the mosaic (composed at 30 fps from the tiles; bob's leaves out his own) → the
//!   host's session with bob (encoded on the mosaic's thread) → bob.
//!
//! WebRTC sessions on loopback in one process, 640x480 at 30 fps, so one clock times both
//! ends. The flash is taken by alice's video thread at its next frame (0–33 ms later), as a
//! camera would, on both paths; successive flashes fall at different phases of that frame
//! clock. Without `--bench` (as `cargo test` runs it) it takes three
//! flashes per path instead of ten.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callisto_media::audio::{AudioFormat, NullSink, SilenceSource};
use callisto_media::conference::{ConferenceBridge, MixerConfig};
use callisto_media::video::{
    NullVideoSink, VideoError, VideoFormat, VideoFrame, VideoSink, VideoSource,
};
use callisto_media::webrtc::{
    VideoConfig, WebRtcConfig, WebRtcMedia, WebRtcSession, WebRtcVideoMedia,
};
use tokio::runtime::Runtime;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const FPS: u32 = 30;
const GREY: u8 = 60;
const WHITE: u8 = 235;

/// A camera that shows grey, or white while its switch is on.
struct FlashSource {
    white: Arc<AtomicBool>,
    index: u64,
}

impl VideoSource for FlashSource {
    fn format(&self) -> VideoFormat {
        VideoFormat::new(WIDTH, HEIGHT, FPS).expect("a format")
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let y = if self.white.load(Ordering::Relaxed) {
            WHITE
        } else {
            GREY
        };
        let frame = VideoFrame::filled(WIDTH, HEIGHT, y, 128, 128)?
            .with_timestamp(self.format().timestamp_of(self.index));
        self.index += 1;
        Ok(Some(frame))
    }
}

/// When each decoded picture arrived and how bright it was (mean luma, sampled).
type Seen = Arc<Mutex<Vec<(Instant, f32)>>>;

struct Brightness(Seen);

impl VideoSink for Brightness {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        let luma = frame.y();
        let step = 61;
        let (sum, count) = luma
            .iter()
            .step_by(step)
            .fold((0u64, 0u64), |(s, n), y| (s + u64::from(*y), n + 1));
        let mean = sum as f32 / count.max(1) as f32;
        self.0.lock().expect("the log").push((Instant::now(), mean));
        Ok(())
    }
}

fn config() -> WebRtcConfig {
    WebRtcConfig {
        video: Some(VideoConfig {
            width: WIDTH,
            height: HEIGHT,
            fps: FPS,
            max_bitrate: 1_500_000,
        }),
        ..WebRtcConfig::loopback()
    }
}

async fn session(source: Box<dyn VideoSource>, sink: Box<dyn VideoSink>) -> WebRtcSession {
    let audio = AudioFormat::MONO_48K;
    let media = WebRtcMedia {
        audio_source: Box::new(SilenceSource::new(audio)),
        audio_sink: Box::new(NullSink::new(audio)),
        video: Some(WebRtcVideoMedia {
            source,
            sink,
            more_streams: None,
        }),
    };
    WebRtcSession::new(config(), media)
        .await
        .expect("a session")
}

async fn connect(caller: &WebRtcSession, callee: &WebRtcSession) {
    let offer = caller.create_offer().await.expect("an offer");
    let answer = callee.accept_offer(&offer).await.expect("an answer");
    caller
        .apply_answer(&answer)
        .await
        .expect("the answer applies");
    let (a, b) = tokio::join!(caller.wait_connected(), callee.wait_connected());
    a.expect("connected");
    b.expect("connected");
}

/// Flashes `flashes` times and returns each flash's delay to bob's screen.
async fn measure(white: &AtomicBool, seen: &Seen, flashes: usize) -> Vec<Duration> {
    // The first pictures (and the first keyframe) settle.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut delays = Vec::new();
    for flash in 0..flashes {
        white.store(false, Ordering::Relaxed);
        // 700 ms is a whole number of frames: shift each flash by a third of a frame more,
        // so the flashes fall at every phase of alice's frame clock, as a real one would.
        let phase = (flash as u64 * 11) % 33;
        tokio::time::sleep(Duration::from_millis(700 + phase)).await;
        let flash = Instant::now();
        white.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(700)).await;
        white.store(false, Ordering::Relaxed);
        let log = seen.lock().expect("the log").clone();
        let before: Vec<f32> = log
            .iter()
            .filter(|(at, _)| *at < flash && flash.duration_since(*at) < Duration::from_millis(300))
            .map(|(_, mean)| *mean)
            .collect();
        let after: Vec<&(Instant, f32)> = log.iter().filter(|(at, _)| *at >= flash).collect();
        let (Some(baseline), Some(peak)) = (
            before.iter().copied().reduce(f32::max),
            after.iter().map(|(_, mean)| *mean).reduce(f32::max),
        ) else {
            continue;
        };
        if peak - baseline < 10.0 {
            continue;
        }
        let halfway = (baseline + peak) / 2.0;
        if let Some((at, _)) = after.iter().find(|(_, mean)| *mean > halfway) {
            delays.push(at.duration_since(flash));
        }
    }
    delays
}

/// Alice, whose camera flashes while the switch returned is on, and bob, whose decoded
/// pictures' brightness is logged.
async fn alice_and_bob() -> (WebRtcSession, WebRtcSession, Arc<AtomicBool>, Seen) {
    let camera = |white: &Arc<AtomicBool>| {
        Box::new(FlashSource {
            white: Arc::clone(white),
            index: 0,
        })
    };
    let white = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let alice = session(camera(&white), Box::new(NullVideoSink::new())).await;
    let bob_camera = camera(&Arc::new(AtomicBool::new(false)));
    let bob = session(bob_camera, Box::new(Brightness(Arc::clone(&seen)))).await;
    (alice, bob, white, seen)
}

fn median(delays: &mut [Duration]) -> Option<Duration> {
    delays.sort();
    delays.get(delays.len() / 2).copied()
}

fn main() {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let flashes = if benching { 10 } else { 3 };
    let runtime = Runtime::new().expect("a runtime");
    runtime.block_on(async {
        // Direct.
        let (alice, bob, white, seen) = alice_and_bob().await;
        connect(&alice, &bob).await;
        let mut direct = measure(&white, &seen, flashes).await;
        alice.close().await;
        bob.close().await;

        // Through the host's mosaic.
        let bridge = ConferenceBridge::start(MixerConfig::default(), |_| {}).expect("a bridge");
        let format = VideoFormat::new(WIDTH, HEIGHT, FPS).expect("a format");
        let mosaic = bridge.mosaic(format).expect("the mosaic");
        let (alice, bob, white, seen) = alice_and_bob().await;
        // As a conference leg does: each leg's mosaic is encoded on the mosaic's thread (bob's
        // shows alice alone, his own picture left out).
        let (to_alice_source, alice_tile) = mosaic.join(1, format);
        let to_alice_source = to_alice_source.encoded(false, 1_500_000);
        let to_alice = session(Box::new(to_alice_source), Box::new(alice_tile)).await;
        let (to_bob_source, bob_tile) = mosaic.join(2, format);
        let to_bob_source = to_bob_source.encoded(false, 1_500_000);
        let to_bob = session(Box::new(to_bob_source), Box::new(bob_tile)).await;
        connect(&alice, &to_alice).await;
        connect(&bob, &to_bob).await;
        let mut through = measure(&white, &seen, flashes).await;
        for session in [alice, to_alice, bob, to_bob] {
            session.close().await;
        }
        mosaic.stop();
        bridge.stop();

        let ms = |d: Option<Duration>| {
            d.map_or("no flash seen".to_string(), |d| {
                format!("{:.0} ms", d.as_secs_f64() * 1e3)
            })
        };
        let all = |delays: &[Duration]| {
            delays
                .iter()
                .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("\nmosaic_delay: flash at alice → first picture at bob that shows it, {WIDTH}x{HEIGHT}@{FPS}, loopback");
        println!("| Path | Median | Each flash (ms) |");
        println!("|---|---|---|");
        let direct_median = median(&mut direct);
        let through_median = median(&mut through);
        println!("| Direct call | {} | {} |", ms(direct_median), all(&direct));
        println!("| Through the host's mosaic | {} | {} |", ms(through_median), all(&through));
        assert!(
            direct_median.is_some() && through_median.is_some(),
            "bob saw no flash: direct {direct:?}, through the mosaic {through:?}"
        );
    });
}
