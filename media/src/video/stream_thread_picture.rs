//! The video thread's pictures: the encoder it builds, the size and rate a peer's H.264
//! level allows, and the scaling of source frames to the size in use.

use crate::congestion::VideoLayerAdvice;
use crate::video::h264::{H264Encoder, H264EncoderConfig, H264Level, PacketizationMode};
use crate::video::{scale_i420, VideoFormat, VideoFrame};

use super::RTP_PAYLOAD_MTU;

/// The thread's encoder for pictures of `format`, starting at `bps`: keyframes when the
/// thread's [`KeyframeScheduler`](crate::rtp::KeyframeScheduler) asks (it also keeps the periodic ones), NAL units that fit
/// a packet for packetization mode 0, the SPS naming the peer's `level` when it is below
/// what the encoder would name (3.1).
pub(super) fn new_encoder(
    format: VideoFormat,
    bps: u32,
    packetization: PacketizationMode,
    level: Option<H264Level>,
) -> Result<H264Encoder, crate::video::h264::H264Error> {
    let fps = format.fps.max(1);
    let mut config = H264EncoderConfig::new(format.width, format.height, fps, bps);
    config.keyframe_interval = None;
    config.level =
        level.filter(|l| *l < H264Level::L3_1 && l.allows(format.width, format.height, fps));
    if packetization == PacketizationMode::SingleNalUnit {
        config.max_nal_size = Some(RTP_PAYLOAD_MTU);
    }
    H264Encoder::new(config)
}

/// `layer` as far as `level` allows it.
pub(super) fn within_level(layer: VideoLayerAdvice, level: Option<H264Level>) -> VideoLayerAdvice {
    let Some(level) = level else {
        return layer;
    };
    let (width, height, fps) = level.fit(layer.width, layer.height, layer.fps);
    VideoLayerAdvice { width, height, fps }
}

/// What the encoder is built for: the source's `format`, or within a peer's `level` the
/// `layer` fitted to it.
pub(super) fn coded_format(
    format: VideoFormat,
    layer: VideoLayerAdvice,
    level: Option<H264Level>,
) -> VideoFormat {
    match level {
        Some(_) => VideoFormat::new(layer.width, layer.height, layer.fps).unwrap_or(format),
        None => format,
    }
}

/// `frame` at `width`x`height`: halved (2x2 averages, the scaler's fast path) while it is at
/// least twice as large — the layer ladder's rungs are halves of the source — then resized
/// for what remains.
pub(super) fn scale_to(
    mut frame: VideoFrame,
    width: u32,
    height: u32,
) -> Result<VideoFrame, crate::video::VideoError> {
    while frame.width() >= 2 * width
        && frame.height() >= 2 * height
        && frame.width().is_multiple_of(4)
        && frame.height().is_multiple_of(4)
    {
        frame = scale_i420(&frame, frame.width() / 2, frame.height() / 2)?;
    }
    if (frame.width(), frame.height()) != (width, height) {
        frame = scale_i420(&frame, width, height)?;
    }
    Ok(frame)
}
