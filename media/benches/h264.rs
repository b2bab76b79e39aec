//! Cost of H.264 video per frame: OpenH264 encode + decode of the moving test pattern at
//! 640x480 (1 Mbps) and 1280x720 (2.5 Mbps), 30 fps, one thread each; RFC 6184 packetizing +
//! depacketizing a 720p access unit; downscaling 720p. Throughput is in frames, so frames/s ÷ 30
//! is how many times faster than real time one core runs the stage. The codec loop is timed
//! twice: in wall time, and in the thread's CPU time (`h264_encode_decode_cpu_time`), which
//! stays the cost on one core when other processes share the machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use callisto_media::video::h264::{
    H264Decoder, H264Depacketizer, H264Encoder, H264EncoderConfig, H264Packetizer,
    PacketizationMode,
};
use callisto_media::video::{scale_i420, TestPattern, VideoFormat, VideoFrame};

/// Two seconds of the test pattern, rendered ahead so the bench measures only the codec.
fn pattern_frames(width: u32, height: u32) -> Vec<VideoFrame> {
    let Ok(format) = VideoFormat::new(width, height, 30) else {
        panic!("bad format {width}x{height}");
    };
    let Ok(pattern) = TestPattern::new(format, 1) else {
        panic!("no pattern");
    };
    (0..60).map(|i| pattern.render(i)).collect()
}

/// The encode + decode loop over the pre-rendered pattern.
struct CodecLoop {
    frames: Vec<VideoFrame>,
    encoder: H264Encoder,
    decoder: H264Decoder,
    index: u64,
}

impl CodecLoop {
    fn new(width: u32, height: u32, bitrate: u32) -> Self {
        let (Ok(encoder), Ok(decoder)) = (
            H264Encoder::new(H264EncoderConfig::new(width, height, 30, bitrate)),
            H264Decoder::new(),
        ) else {
            panic!("no H.264 codec");
        };
        CodecLoop {
            frames: pattern_frames(width, height),
            encoder,
            decoder,
            index: 0,
        }
    }

    /// Encodes and decodes the next frame.
    fn step(&mut self) -> usize {
        let count = self.frames.len();
        let frame = &mut self.frames[self.index as usize % count];
        // Timestamps keep growing as the pattern loops, as a live source's do.
        frame.set_timestamp(Duration::from_nanos(self.index * 1_000_000_000 / 30));
        self.index += 1;
        let Ok(Some(unit)) = self.encoder.encode(black_box(frame)) else {
            return 0;
        };
        match self
            .decoder
            .decode_nalus(black_box(&unit.nalus), unit.timestamp)
        {
            Ok(Some(picture)) => picture.width() as usize + unit.len(),
            _ => 0,
        }
    }
}

/// CPU time this thread has used (Linux `/proc/thread-self/stat`, 10 ms ticks): the cost on one
/// core even when other work shares the machine. `None` elsewhere.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn encode_decode(c: &mut Criterion, width: u32, height: u32, bitrate: u32, name: &str) {
    let mut codec = CodecLoop::new(width, height, bitrate);
    let mut group = c.benchmark_group("h264_encode_decode");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(name, |b| b.iter(|| codec.step()));
    group.finish();

    // The same loop timed in CPU time of the benchmarking thread: frames per CPU-second on one
    // core, independent of how busy the machine is.
    let mut group = c.benchmark_group("h264_encode_decode_cpu_time");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let (cpu, wall) = (thread_cpu_time(), Instant::now());
            for _ in 0..iterations {
                black_box(codec.step());
            }
            match (cpu, thread_cpu_time()) {
                (Some(start), Some(end)) => end.saturating_sub(start),
                _ => wall.elapsed(),
            }
        })
    });
    group.finish();
}

fn payload_format(c: &mut Criterion) {
    let frames = pattern_frames(1280, 720);
    let Ok(mut encoder) = H264Encoder::new(H264EncoderConfig::new(1280, 720, 30, 2_500_000)) else {
        panic!("no encoder");
    };
    // A keyframe and a delta frame, as a call alternates them rarely and often.
    let units: Vec<_> = frames[..2]
        .iter()
        .filter_map(|f| encoder.encode(f).ok().flatten())
        .collect();
    let Ok(packetizer) = H264Packetizer::new(PacketizationMode::NonInterleaved, 1200) else {
        panic!("no packetizer");
    };
    let mut depacketizer = H264Depacketizer::default();
    let (mut sequence, mut timestamp) = (0u16, 0u32);
    let mut group = c.benchmark_group("h264_rtp");
    group.throughput(Throughput::Elements(1));
    for (name, unit) in ["720p_keyframe", "720p_delta"].into_iter().zip(&units) {
        group.bench_function(format!("packetize_depacketize_{name}"), |b| {
            b.iter(|| {
                let payloads = packetizer
                    .packetize(black_box(&unit.nalus))
                    .unwrap_or_default();
                let last = payloads.len().saturating_sub(1);
                timestamp = timestamp.wrapping_add(3000);
                for (i, payload) in payloads.iter().enumerate() {
                    sequence = sequence.wrapping_add(1);
                    let _ = depacketizer.handle_packet(sequence, timestamp, i == last, payload);
                }
                depacketizer.poll_output()
            })
        });
    }
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let frames = pattern_frames(1280, 720);
    let mut group = c.benchmark_group("video_scale");
    group.throughput(Throughput::Elements(1));
    group.bench_function("720p_to_360p", |b| {
        b.iter(|| scale_i420(black_box(&frames[7]), 640, 360).map(|f| f.width()))
    });
    group.bench_function("720p_to_426x240", |b| {
        b.iter(|| scale_i420(black_box(&frames[7]), 426, 240).map(|f| f.width()))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    encode_decode(c, 640, 480, 1_000_000, "640x480_1mbps");
    encode_decode(c, 1280, 720, 2_500_000, "1280x720_2_5mbps");
    payload_format(c);
    scaling(c);
}

criterion_group!(video, benches);
criterion_main!(video);
