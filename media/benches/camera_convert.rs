//! Cost of turning a camera's frames into I420, per frame, at 640x480 and 1280x720: YUYV,
//! NV12 and RGB24 (rearranging and arithmetic) and MJPEG (a JPEG decode, quality 85, 4:2:2
//! as webcams send it). The pictures are the moving test pattern, so the JPEGs carry real
//! detail. Throughput is in frames: frames/s ÷ 30 is how many 30 fps cameras one core keeps
//! up with. `camera_720p_to_480p` adds the scaling a 720p camera in a 640x480 call needs.
//! `window_rgb` is the other direction: a decoded picture as RGB for the window, which it
//! converts for every tile and the self-view.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use callisto_media::video::camera::{to_i420, PixelFormat, RawFrame};
use callisto_media::video::{i420_to_rgb, scale_i420, TestPattern, VideoFormat, VideoFrame};

fn pattern(width: u32, height: u32) -> VideoFrame {
    let Ok(format) = VideoFormat::new(width, height, 30) else {
        panic!("bad format {width}x{height}");
    };
    let Ok(pattern) = TestPattern::new(format, 1) else {
        panic!("no pattern");
    };
    pattern.render(17)
}

/// The picture as a camera would send it in `format`.
fn camera_bytes(frame: &VideoFrame, format: PixelFormat) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (y, u, v) = (frame.y(), frame.u(), frame.v());
    let chroma = |x: usize, row: usize| (u[row / 2 * w / 2 + x / 2], v[row / 2 * w / 2 + x / 2]);
    match format {
        PixelFormat::Yuyv => (0..h)
            .flat_map(|row| {
                (0..w).step_by(2).flat_map(move |x| {
                    let (cu, cv) = chroma(x, row);
                    [y[row * w + x], cu, y[row * w + x + 1], cv]
                })
            })
            .collect(),
        PixelFormat::Nv12 => {
            let mut out = y.to_vec();
            out.extend(u.iter().zip(v).flat_map(|(&a, &b)| [a, b]));
            out
        }
        PixelFormat::Rgb24 | PixelFormat::Mjpeg => {
            let rgb: Vec<u8> = (0..h)
                .flat_map(|row| {
                    (0..w).flat_map(move |x| {
                        let (cu, cv) = chroma(x, row);
                        let c = 1.164 * (f32::from(y[row * w + x]) - 16.0);
                        let (d, e) = (f32::from(cu) - 128.0, f32::from(cv) - 128.0);
                        [
                            (c + 1.596 * e).clamp(0.0, 255.0) as u8,
                            (c - 0.392 * d - 0.813 * e).clamp(0.0, 255.0) as u8,
                            (c + 2.017 * d).clamp(0.0, 255.0) as u8,
                        ]
                    })
                })
                .collect();
            if format == PixelFormat::Rgb24 {
                return rgb;
            }
            let mut jpeg = Vec::new();
            let mut encoder = Encoder::new(&mut jpeg, 85);
            encoder.set_sampling_factor(SamplingFactor::F_2_1);
            let (Ok(width), Ok(height)) = (u16::try_from(w), u16::try_from(h)) else {
                panic!("too large for JPEG");
            };
            if encoder.encode(&rgb, width, height, ColorType::Rgb).is_err() {
                panic!("JPEG encoding failed");
            }
            jpeg
        }
        other => panic!("{other} is not benchmarked"),
    }
}

fn conversions(c: &mut Criterion) {
    let mut group = c.benchmark_group("camera_to_i420");
    group.throughput(Throughput::Elements(1));
    for (width, height) in [(640, 480), (1280, 720)] {
        let picture = pattern(width, height);
        for format in [
            PixelFormat::Yuyv,
            PixelFormat::Nv12,
            PixelFormat::Rgb24,
            PixelFormat::Mjpeg,
        ] {
            let data = camera_bytes(&picture, format);
            let raw = RawFrame {
                format,
                width,
                height,
                stride: None,
                data: &data,
            };
            if to_i420(&raw, Duration::ZERO).is_err() {
                panic!("{format} {width}x{height} does not convert");
            }
            group.bench_function(format!("{format}_{width}x{height}"), |b| {
                b.iter(|| to_i420(black_box(&raw), Duration::ZERO))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("camera_720p_to_480p");
    group.throughput(Throughput::Elements(1));
    let picture = pattern(1280, 720);
    for format in [PixelFormat::Yuyv, PixelFormat::Mjpeg] {
        let data = camera_bytes(&picture, format);
        let raw = RawFrame {
            format,
            width: 1280,
            height: 720,
            stride: None,
            data: &data,
        };
        group.bench_function(format!("{format}_convert_and_scale"), |b| {
            b.iter(|| {
                to_i420(black_box(&raw), Duration::ZERO)
                    .ok()
                    .and_then(|frame| scale_i420(&frame, 640, 480).ok())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("window_rgb");
    group.throughput(Throughput::Elements(1));
    for (width, height) in [(640, 480), (1280, 720)] {
        let picture = pattern(width, height);
        let mut rgb = vec![0u8; (width * height * 3) as usize];
        group.bench_function(format!("i420_to_rgb_{width}x{height}"), |b| {
            b.iter(|| i420_to_rgb(black_box(&picture), black_box(&mut rgb)))
        });
    }
    group.finish();
}

criterion_group!(benches, conversions);
criterion_main!(benches);
