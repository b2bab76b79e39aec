use std::io::Cursor;
use std::time::Duration;

use super::*;
use crate::video::{read_stamp, TestPattern};

fn recording(frames: u64, fps: u32) -> Vec<u8> {
    let mut source = TestPattern::new(VideoFormat::new(160, 120, fps).unwrap(), 5)
        .unwrap()
        .with_frame_limit(frames);
    let mut recorder = Y4mRecorder::new(Vec::new(), fps).unwrap();
    while let Some(frame) = source.next_frame().unwrap() {
        recorder.consume(&frame).unwrap();
    }
    assert_eq!(recorder.frames(), frames);
    recorder.into_inner().unwrap()
}

#[test]
fn write_then_read_gives_the_same_frames() {
    let bytes = recording(5, 25);
    assert!(bytes.starts_with(b"YUV4MPEG2 W160 H120 F25:1 Ip A1:1 C420jpeg\nFRAME\n"));
    let pattern = TestPattern::new(VideoFormat::new(160, 120, 25).unwrap(), 5).unwrap();
    let mut source = Y4mSource::from_reader(Cursor::new(bytes), Y4mEnd::Stop).unwrap();
    assert_eq!(source.format(), VideoFormat::new(160, 120, 25).unwrap());
    for index in 0..5 {
        let frame = source.next_frame().unwrap().unwrap();
        assert_eq!(frame, pattern.render(index), "frame {index}");
    }
    assert!(source.next_frame().unwrap().is_none());
    assert!(source.next_frame().unwrap().is_none());
}

#[test]
fn looping_restarts_with_growing_timestamps() {
    let mut source = Y4mSource::from_reader(Cursor::new(recording(3, 30)), Y4mEnd::Loop).unwrap();
    let stamps: Vec<_> = (0..7)
        .map(|_| {
            let frame = source.next_frame().unwrap().unwrap();
            (read_stamp(&frame).unwrap().frame, frame.timestamp())
        })
        .collect();
    let counters: Vec<u32> = stamps.iter().map(|s| s.0).collect();
    assert_eq!(counters, [0, 1, 2, 0, 1, 2, 0]);
    assert_eq!(stamps[6].1, Duration::from_millis(200));
}

#[test]
fn colour_spaces_and_rates_from_the_header() {
    let frame = vec![0u8; 4 * 2 * 3 / 2];
    for (header, fps, rate) in [
        ("YUV4MPEG2 W4 H2 F30000:1001 C420", 30, (30000, 1001)),
        ("YUV4MPEG2 W4 H2 F25:1 C420paeth", 25, (25, 1)),
        (
            "YUV4MPEG2 W4 H2 F50:1 C420mpeg2 XYSCSS=420MPEG2",
            50,
            (50, 1),
        ),
        ("YUV4MPEG2 W4 H2 Ip A0:0", 30, (30, 1)),
    ] {
        let mut bytes = format!("{header}\nFRAME\n").into_bytes();
        bytes.extend_from_slice(&frame);
        let mut source = Y4mSource::from_reader(Cursor::new(bytes), Y4mEnd::Stop).unwrap();
        assert_eq!(source.format().fps, fps, "{header}");
        assert_eq!(source.frame_rate(), rate);
        assert!(source.next_frame().unwrap().is_some());
    }
    let mut source = Y4mSource::from_reader(
        Cursor::new(b"YUV4MPEG2 W4 H2 F30000:1001\n".to_vec()),
        Y4mEnd::Stop,
    )
    .unwrap();
    assert_eq!(source.timestamp_of(30), Duration::from_nanos(1_001_000_000));
    assert!(source.next_frame().unwrap().is_none());
}

#[test]
fn bad_streams_are_errors() {
    for header in [
        "",
        "YUV4MPEG W4 H2\n",
        "YUV4MPEG2 H2\n",
        "YUV4MPEG2 W4 H3\n",
        "YUV4MPEG2 W4 H2 C444\n",
        "YUV4MPEG2 W4 H2 C420p10\n",
        "YUV4MPEG2 W4 H2 F30:0\n",
        "YUV4MPEG2 Wx H2\n",
        "YUV4MPEG2 W4 H2",
    ] {
        let result = Y4mSource::from_reader(Cursor::new(header.as_bytes().to_vec()), Y4mEnd::Stop);
        assert!(
            matches!(
                result,
                Err(VideoError::Y4m(_) | VideoError::InvalidDimensions { .. })
            ),
            "{header:?}"
        );
    }
    let long = format!("YUV4MPEG2 W4 H2 X{}\n", "a".repeat(2000));
    assert!(Y4mSource::from_reader(Cursor::new(long.into_bytes()), Y4mEnd::Stop).is_err());

    // A truncated last frame: one error, then the end.
    let mut bytes = recording(2, 30);
    bytes.truncate(bytes.len() - 10);
    let mut source = Y4mSource::from_reader(Cursor::new(bytes), Y4mEnd::Loop).unwrap();
    assert!(source.next_frame().unwrap().is_some());
    assert!(matches!(source.next_frame(), Err(VideoError::Y4m(_))));
    assert!(source.next_frame().unwrap().is_none());

    // Garbage where a FRAME line belongs.
    let mut bytes = b"YUV4MPEG2 W4 H2\nFRAMX\n".to_vec();
    bytes.extend_from_slice(&[0; 12]);
    let mut source = Y4mSource::from_reader(Cursor::new(bytes), Y4mEnd::Stop).unwrap();
    assert!(source.next_frame().is_err());
}

#[test]
fn the_recorder_refuses_a_change_of_size_and_writes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.y4m");
    let mut recorder = Y4mRecorder::create(&path, 30).unwrap();
    recorder.consume(&VideoFrame::black(8, 8).unwrap()).unwrap();
    assert!(matches!(
        recorder.consume(&VideoFrame::black(16, 8).unwrap()),
        Err(VideoError::SizeMismatch { .. })
    ));
    recorder.finish().unwrap();
    assert!(matches!(
        recorder.consume(&VideoFrame::black(8, 8).unwrap()),
        Err(VideoError::Finished)
    ));
    let mut source = Y4mSource::open(&path, Y4mEnd::Stop).unwrap();
    assert_eq!(
        source.next_frame().unwrap().unwrap(),
        VideoFrame::black(8, 8).unwrap()
    );
    assert!(source.next_frame().unwrap().is_none());
    assert!(Y4mRecorder::new(Vec::new(), 0).is_err());
}
