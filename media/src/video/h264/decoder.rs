//! The H.264 decoder: OpenH264, one access unit in, at most one picture out.

use std::time::Duration;

use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use super::error::H264Error;
use super::nal::join_annex_b;
use crate::video::VideoFrame;

/// An OpenH264 decoder. Feed it whole access units (Annex-B or a NAL list); it returns the
/// picture each completes (a picture of odd width or height is cropped to even). A decode error (corrupt data, a missing reference after loss) is
/// an `Err`: the caller should ask the sender for a keyframe and keep feeding — the decoder
/// recovers at the next IDR.
pub struct H264Decoder {
    decoder: Decoder,
    decoded: u64,
    errors: u64,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder")
            .field("decoded", &self.decoded)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

fn to_frame(picture: &DecodedYUV<'_>, timestamp: Duration) -> Result<VideoFrame, H264Error> {
    let (width, height) = picture.dimensions();
    let (y_stride, u_stride, v_stride) = picture.strides();
    // I420 frames have even sizes: a peer's odd-sized picture loses its last column or row.
    let even = |d: usize| u32::try_from(d & !1).unwrap_or(u32::MAX);
    let frame = VideoFrame::from_strided_planes(
        even(width),
        even(height),
        (picture.y(), y_stride),
        (picture.u(), u_stride),
        (picture.v(), v_stride),
        timestamp,
    )?;
    Ok(frame)
}

impl H264Decoder {
    /// A decoder (single-threaded, no error concealment: damaged pictures are errors, not
    /// smeared output).
    pub fn new() -> Result<Self, H264Error> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| H264Error::Decode(e.to_string()))?;
        Ok(H264Decoder {
            decoder,
            decoded: 0,
            errors: 0,
        })
    }

    /// Decodes one access unit in Annex-B form; the picture carries `timestamp`. `Ok(None)`
    /// when the data completes no picture (parameter sets alone).
    pub fn decode_annex_b(
        &mut self,
        access_unit: &[u8],
        timestamp: Duration,
    ) -> Result<Option<VideoFrame>, H264Error> {
        let result = match self.decoder.decode(access_unit) {
            Ok(Some(picture)) => to_frame(&picture, timestamp).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(H264Error::Decode(e.to_string())),
        };
        match &result {
            Ok(Some(_)) => self.decoded += 1,
            Ok(None) => {}
            Err(_) => self.errors += 1,
        }
        result
    }

    /// Decodes one access unit given as NAL units without start codes.
    pub fn decode_nalus<T: AsRef<[u8]>>(
        &mut self,
        nalus: &[T],
        timestamp: Duration,
    ) -> Result<Option<VideoFrame>, H264Error> {
        self.decode_annex_b(&join_annex_b(nalus), timestamp)
    }

    /// Pictures decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Access units that failed to decode so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }
}
