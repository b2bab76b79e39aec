//! Cost of a whole audio call, both directions, per 20 ms of call.
//!
//! - Criterion: two session cores in one process over a zero-delay simulated network
//!   ([`SimulatedCall`]); one iteration is 20 ms of call: each side reads a frame, encodes it,
//!   protects it with SRTP, and the other unprotects, buffers, decodes and plays it (plus RTCP
//!   on its timer). Opus with SRTP (each side a tone, then each side a synthetic voice, which
//!   costs the encoder more), and PCMU without.
//! - After criterion, a plain timing of the same Opus + SRTP call prints the real-time factor
//!   (20 ms of call ÷ time to process it) of the whole call and of one end (half of it: both
//!   ends do the same work, and one end is what one process runs), and two [`ClassicSession`]s
//!   on loopback sockets run a real-time call while their threads' CPU time is read from
//!   `/proc/self/task` (Linux).
//! - Mouth-to-ear delay on loopback with no sound-card buffer (`tests/support/mouth_to_ear.rs`):
//!   100 ms 1 kHz bursts in the caller's source, each timed from when its first sample would
//!   have been captured (a frame before the tick that read it) to when its first loud sample
//!   plays in the callee's sink, on one clock, once the jitter buffer has settled; Opus with
//!   SRTP and PCMU without, each with the callee's ticks at eight points of the caller's
//!   frame (a packet waits for the callee's next tick, so the phase moves the delay by up to a
//!   frame). The target is under 60 ms.
//! - For scale, the same clock reports the floor any 20 ms media thread pays on this machine: a
//!   thread that only wakes on each tick, and one that also sends and reads a datagram.
//!
//! `cargo bench -p callisto-media --bench audio_call` runs the full measurements (a 10 s call);
//! `cargo test --benches` runs each part briefly as a smoke test.

#[path = "../tests/support/loopback.rs"]
mod loopback;
#[path = "../tests/support/mouth_to_ear.rs"]
mod mouth_to_ear;
#[path = "../tests/support/srtp_pair.rs"]
mod srtp_pair;
#[path = "support/voice.rs"]
mod voice;

use std::hint::black_box;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use callisto_media::audio::{AudioFormat, NullSink, ToneSource};
use callisto_media::codec::AudioCodecKind;
use callisto_media::netsim::NetworkConditions;
use callisto_media::session::{
    AudioStreamConfig, ClassicSession, SimulatedCall, SimulatedEndpoint, SrtpKeys,
};

const DEVICE: AudioFormat = AudioFormat::MONO_48K;
const FRAME: Duration = Duration::from_millis(20);

fn keys() -> (SrtpKeys, SrtpKeys) {
    srtp_pair::srtp_pair(0x1122)
}

/// What each side of a benchmarked call says.
#[derive(Clone, Copy)]
enum Content {
    /// A steady tone of its own (what `--audio tone:HZ` sends).
    Tone,
    /// The synthetic voice (`support/voice.rs`): dearer to encode than a tone.
    Voice,
}

/// A settled in-process call: `codec` both ways, SRTP when `srtp`, each side sending `content`,
/// a clean zero-delay network.
fn call(codec: AudioCodecKind, srtp: bool, content: Content) -> SimulatedCall {
    let stream = AudioStreamConfig::new(codec);
    let side = |hz| {
        let source: Box<dyn callisto_media::audio::AudioSource> = match content {
            Content::Tone => Box::new(ToneSource::with_dbfs(DEVICE, hz, -12.0)),
            Content::Voice => Box::new(voice::VoiceSource::new()),
        };
        SimulatedEndpoint::new(stream, source, Box::new(NullSink::new(DEVICE)))
    };
    let (mut a, mut b) = (side(440.0), side(1_000.0));
    if srtp {
        let (ka, kb) = keys();
        a.srtp = Some(ka);
        b.srtp = Some(kb);
    }
    let network = NetworkConditions::clean(Duration::ZERO);
    let mut call = SimulatedCall::new(a, b, network, network, 1).expect("a valid call");
    call.run_for(Duration::from_secs(1));
    call
}

fn bench_calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("audio_call");
    group.throughput(Throughput::Elements(1));
    for (name, codec, srtp, content) in [
        (
            "opus_srtp_both_directions_20ms",
            AudioCodecKind::Opus,
            true,
            Content::Tone,
        ),
        (
            "opus_srtp_voice_both_directions_20ms",
            AudioCodecKind::Opus,
            true,
            Content::Voice,
        ),
        (
            "pcmu_both_directions_20ms",
            AudioCodecKind::Pcmu,
            false,
            Content::Tone,
        ),
    ] {
        let mut call = call(codec, srtp, content);
        group.bench_function(name, |b| {
            b.iter(|| {
                call.run_for(FRAME);
                black_box(call.a().stats().rx_packets)
            })
        });
    }
    group.finish();
}

/// Times `frames` × 20 ms of the Opus + SRTP call, each side sending `content`, and prints the
/// real-time factor.
fn real_time_factor(frames: u32, content: Content) {
    let mut call = call(AudioCodecKind::Opus, true, content);
    let started = Instant::now();
    for _ in 0..frames {
        call.run_for(FRAME);
    }
    let elapsed = started.elapsed();
    let per_frame = elapsed / frames;
    let (a, b) = (call.a().stats(), call.b().stats());
    assert!(
        a.rx_packets > 0 && b.rx_packets > 0,
        "the call carried nothing"
    );
    // The two ends do the same work (each encodes and protects what it sends, and unprotects,
    // buffers and decodes what it hears), so one end — one process's share of a call — is half.
    let per_end = per_frame / 2;
    println!(
        "audio_call: Opus + SRTP, both directions, {}: {:.1} µs per 20 ms of call for both \
         ends ({:.0}x real time); one end {:.1} µs, real-time factor {:.0}x ({frames} frames)",
        match content {
            Content::Tone => "tones",
            Content::Voice => "synthetic voice",
        },
        per_frame.as_secs_f64() * 1e6,
        FRAME.as_secs_f64() / per_frame.as_secs_f64(),
        per_end.as_secs_f64() * 1e6,
        FRAME.as_secs_f64() / per_end.as_secs_f64()
    );
}

/// CPU time the session threads (named `callisto-*`) have run so far, from
/// `/proc/self/task/*/schedstat` (Linux, nanosecond precision): the media threads, then the
/// socket readers.
fn session_threads_cpu() -> Option<(Duration, Duration)> {
    let (mut media, mut readers) = (Duration::ZERO, Duration::ZERO);
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let name = std::fs::read_to_string(path.join("comm")).ok()?;
        let cpu = schedstat(&path.join("schedstat"))?;
        match name.trim() {
            "callisto-media" => media += cpu,
            n if n.starts_with("callisto-") => readers += cpu,
            _ => {}
        }
    }
    Some((media, readers))
}

/// Two classic sessions (`codec` both ways, 20 ms, SRTP when `srtp`) on loopback; after a
/// second of warm-up, prints the CPU their threads use over `length`.
fn loopback_cpu(codec: AudioCodecKind, srtp: bool, length: Duration) {
    let (sa, sb) = match (
        UdpSocket::bind("127.0.0.1:0"),
        UdpSocket::bind("127.0.0.1:0"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            println!("audio_call: no loopback sockets; CPU not measured");
            return;
        }
    };
    let (Ok(addr_a), Ok(addr_b)) = (sa.local_addr(), sb.local_addr()) else {
        return;
    };
    let (ka, kb) = keys();
    let stream = AudioStreamConfig::new(codec);
    let config = |socket, remote, keys: SrtpKeys| {
        loopback::session_config(
            socket,
            remote,
            stream,
            srtp.then_some(keys),
            "bench@callisto",
        )
    };
    let session = |socket, remote, srtp, hz| {
        ClassicSession::start(
            config(socket, remote, srtp),
            Box::new(ToneSource::with_dbfs(DEVICE, hz, -12.0)),
            Box::new(NullSink::new(DEVICE)),
        )
        .expect("a valid session")
    };
    let a = session(sa, addr_b, ka, 440.0);
    let b = session(sb, addr_a, kb, 1_000.0);
    std::thread::sleep(Duration::from_secs(1).min(length));
    let before = session_threads_cpu();
    let started = Instant::now();
    std::thread::sleep(length);
    let after = session_threads_cpu();
    let wall = started.elapsed();
    let (stats_a, stats_b) = (a.stop(), b.stop());
    let (Some(before), Some(after)) = (before, after) else {
        println!("audio_call: /proc/self/task unreadable; CPU not measured");
        return;
    };
    let share = |cpu: Duration| cpu.as_secs_f64() / wall.as_secs_f64() * 100.0;
    let (media, readers) = (after.0 - before.0, after.1 - before.1);
    println!(
        "audio_call: two {codec}{} sessions on loopback for {:.1} s: {:.2} % of one core per \
         session (one end of a call: media thread {:.2} %, socket reader {:.3} %); A sent {} / \
         received {}, B sent {} / received {}, concealed {} + {}",
        if srtp { " + SRTP" } else { "" },
        wall.as_secs_f64(),
        share(media + readers) / 2.0,
        share(media) / 2.0,
        share(readers) / 2.0,
        stats_a.tx_packets,
        stats_a.rx_packets,
        stats_b.tx_packets,
        stats_b.rx_packets,
        stats_a.concealed_frames,
        stats_b.concealed_frames
    );
}

/// CPU the calling thread has run so far, from `/proc/thread-self/schedstat` (Linux).
fn this_thread_cpu() -> Option<Duration> {
    schedstat(std::path::Path::new("/proc/thread-self/schedstat"))
}

/// The time on CPU a `schedstat` file (of a task in `/proc`) gives.
fn schedstat(path: &std::path::Path) -> Option<Duration> {
    let schedstat = std::fs::read_to_string(path).ok()?;
    let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Prints the CPU share of a thread that wakes every 20 ms (a timed park, as the media thread
/// sleeps) and does nothing else, then of one that also sends a 100-byte datagram on loopback
/// and reads it: what the scheduler and the network stack charge before any media work.
fn wake_floor(ticks: u32) {
    let (Ok(tx), Ok(rx)) = (
        UdpSocket::bind("127.0.0.1:0"),
        UdpSocket::bind("127.0.0.1:0"),
    ) else {
        println!("audio_call: no loopback sockets; floor not measured");
        return;
    };
    let Ok(to) = rx.local_addr() else { return };
    if rx.set_nonblocking(true).is_err() {
        return;
    }
    for datagrams in [false, true] {
        let (Some(before), started) = (this_thread_cpu(), Instant::now()) else {
            println!("audio_call: /proc/thread-self unreadable; floor not measured");
            return;
        };
        let mut next = started;
        let mut buffer = [0u8; 1_500];
        let mut received = 0u32;
        for _ in 0..ticks {
            next += FRAME;
            loop {
                let now = Instant::now();
                if now >= next {
                    break;
                }
                std::thread::park_timeout(next - now);
            }
            if datagrams {
                let _ = tx.send_to(&[0x80; 100], to);
                while rx.recv_from(&mut buffer).is_ok() {
                    received += 1;
                }
            }
        }
        let (Some(after), wall) = (this_thread_cpu(), started.elapsed()) else {
            return;
        };
        let cpu = after.saturating_sub(before);
        println!(
            "audio_call: floor of a 20 ms thread{}: {:.1} µs per tick, {:.2} % of one core \
             ({ticks} ticks{})",
            if datagrams {
                " sending and reading a datagram"
            } else {
                " that only wakes"
            },
            cpu.as_secs_f64() * 1e6 / f64::from(ticks),
            cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
            if datagrams {
                format!(", {received} read")
            } else {
                String::new()
            }
        );
    }
}

/// Runs `bursts` bursts through a `codec` call on loopback once for each of `phases` (how long
/// after A's ticks B's fall, in ms) and prints the delays: per phase, then over all of them.
fn mouth_to_ear(codec: AudioCodecKind, srtp: bool, bursts: usize, phases: &[f64]) {
    let label = format!("{codec}{}", if srtp { " + SRTP" } else { "" });
    let mut medians = Vec::new();
    for &phase in phases {
        let measured = mouth_to_ear::measure(
            codec,
            srtp.then(keys),
            bursts,
            Duration::from_secs_f64(phase / 1000.0),
        );
        let Some(median) = measured.median_ms() else {
            println!("audio_call: mouth-to-ear ({label}, phase {phase} ms): no burst was heard");
            continue;
        };
        let (min, max) = spread(&measured.delays_ms);
        println!(
            "audio_call: mouth-to-ear on loopback, {label}, B's ticks {:.1} ms after A's: median \
             {median:.1} ms (min {min:.1}, max {max:.1}; {} of {bursts} bursts heard), jitter \
             buffer at {:.0} ms",
            measured.phase_ms,
            measured.delays_ms.len(),
            measured.jitter_buffer_ms
        );
        medians.push(median);
    }
    if medians.len() > 1 {
        let mean = medians.iter().sum::<f64>() / medians.len() as f64;
        let (min, max) = spread(&medians);
        println!(
            "audio_call: mouth-to-ear on loopback, {label}, over {} phases: mean {mean:.1} ms, \
             best {min:.1}, worst {max:.1}; target < 60 ms",
            medians.len()
        );
    }
}

/// The smallest and largest of `values`.
fn spread(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &d| (lo.min(d), hi.max(d)))
}

fn main() {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let mut criterion = Criterion::default().configure_from_args();
    bench_calls(&mut criterion);
    criterion.final_summary();
    if bench_mode {
        real_time_factor(1_500, Content::Tone);
        real_time_factor(1_500, Content::Voice);
        loopback_cpu(AudioCodecKind::Opus, true, Duration::from_secs(10));
        loopback_cpu(AudioCodecKind::Pcmu, false, Duration::from_secs(10));
        // B's ticks at eight points of A's 20 ms frame: where they fall decides how long a
        // packet waits for its turn, up to a frame.
        let phases: Vec<f64> = (0..8).map(|k| 1.25 + 2.5 * f64::from(k)).collect();
        mouth_to_ear(AudioCodecKind::Opus, true, 6, &phases);
        mouth_to_ear(AudioCodecKind::Pcmu, false, 6, &phases);
        wake_floor(250);
    } else {
        real_time_factor(25, Content::Tone);
        real_time_factor(25, Content::Voice);
        loopback_cpu(AudioCodecKind::Opus, true, Duration::from_millis(300));
        mouth_to_ear(AudioCodecKind::Opus, true, 1, &[10.0]);
        wake_floor(5);
    }
}
