//! Motion JPEG frames to I420, with `zune-jpeg` (pure Rust).
//!
//! The decoder hands out the picture's full-range YCbCr (or luma for a greyscale JPEG) at full
//! resolution; chroma is brought to 4:2:0 by averaging 2x2 blocks and both are mapped to video
//! range. The JPEG's own size decides the frame's (cropped to even), so a camera that
//! announces one size and sends another still converts. Webcam MJPEG often leaves out its
//! Huffman tables (the AVI1 convention, RFC 2435 §3.1.7 tables); such a frame gets the AVI1
//! marker, which makes the decoder use the standard tables of JPEG Annex K.3.
//! Corrupt or truncated frames are [`ConvertError::Jpeg`], never a panic.

use std::time::Duration;

use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::convert::{even_size, FULL_TO_VIDEO_CHROMA, FULL_TO_VIDEO_LUMA};
use super::error::ConvertError;
use crate::video::{VideoFrame, MAX_DIMENSION};

/// Decodes one MJPEG frame to I420, stamped with `timestamp`.
pub(super) fn mjpeg_to_i420(data: &[u8], timestamp: Duration) -> Result<VideoFrame, ConvertError> {
    let spliced;
    let data = if lacks_huffman_tables(data) {
        spliced = [&data[..2], &AVI1_APP0[..], &data[2..]].concat();
        &spliced[..]
    } else {
        data
    };
    let options = |colorspace| {
        DecoderOptions::default()
            .jpeg_set_out_colorspace(colorspace)
            .set_max_width(MAX_DIMENSION as usize)
            .set_max_height(MAX_DIMENSION as usize)
    };
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options(ColorSpace::YCbCr));
    let jpeg = |e: &dyn std::fmt::Display| ConvertError::Jpeg(e.to_string());
    decoder.decode_headers().map_err(|e| jpeg(&e))?;
    if decoder.input_colorspace() == Some(ColorSpace::Luma) {
        // A greyscale JPEG: the decoder hands out luma only.
        decoder = JpegDecoder::new_with_options(ZCursor::new(data), options(ColorSpace::Luma));
        decoder.decode_headers().map_err(|e| jpeg(&e))?;
    }
    let (width, height) = decoder
        .dimensions()
        .map(|(w, h)| (w as u32, h as u32))
        .ok_or_else(|| ConvertError::Jpeg("no frame header".into()))?;
    let components = match decoder.output_colorspace() {
        Some(ColorSpace::YCbCr) => 3,
        Some(ColorSpace::Luma) => 1,
        other => {
            return Err(ConvertError::Jpeg(format!(
                "a JPEG in {other:?} cannot be read as video"
            )))
        }
    };
    let (w, h) = even_size(width, height)?;
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| ConvertError::Jpeg("no frame header".into()))?;
    let stride = width as usize * components;
    if size < stride * height as usize {
        return Err(ConvertError::Jpeg(format!(
            "the decoder's picture of {size} bytes is short of {width}x{height}"
        )));
    }
    let mut pixels = vec![0u8; size];
    decoder.decode_into(&mut pixels).map_err(|e| jpeg(&e))?;
    let mut frame =
        VideoFrame::black(w, h).map_err(|_| ConvertError::Dimensions { width, height })?;
    let (w, h) = (w as usize, h as usize);
    {
        let (y_plane, u_plane, v_plane) = frame.planes_mut();
        for (row, out) in y_plane.chunks_exact_mut(w).enumerate() {
            let line = &pixels[row * stride..];
            for (x, o) in out.iter_mut().enumerate() {
                *o = FULL_TO_VIDEO_LUMA[usize::from(line[x * components])];
            }
        }
        if components == 3 {
            let cw = w / 2;
            for cy in 0..h / 2 {
                let top = &pixels[2 * cy * stride..];
                let bottom = &pixels[(2 * cy + 1) * stride..];
                for cx in 0..cw {
                    let at = 2 * cx * 3;
                    let mean = |k: usize| {
                        let sum = u16::from(top[at + k])
                            + u16::from(top[at + 3 + k])
                            + u16::from(bottom[at + k])
                            + u16::from(bottom[at + 3 + k]);
                        usize::from((sum + 2) / 4)
                    };
                    u_plane[cy * cw + cx] = FULL_TO_VIDEO_CHROMA[mean(1)];
                    v_plane[cy * cw + cx] = FULL_TO_VIDEO_CHROMA[mean(2)];
                }
            }
        }
    }
    frame.set_timestamp(timestamp);
    Ok(frame)
}

/// An APP0 segment saying "AVI1": a Motion JPEG frame whose Huffman tables are the standard
/// ones.
const AVI1_APP0: [u8; 9] = [0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0x00];

/// Whether a JPEG starts (SOI) and reaches its first scan (SOS) without a Huffman table
/// (DHT) segment. Anything malformed on the way is left to the decoder to report.
fn lacks_huffman_tables(data: &[u8]) -> bool {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut at = 2;
    while let (Some(&0xFF), Some(&marker)) = (data.get(at), data.get(at + 1)) {
        match marker {
            // Fill bytes before a marker.
            0xFF => at += 1,
            0xC4 => return false,
            0xDA => return true,
            _ => {
                let Some(length) = data.get(at + 2..at + 4) else {
                    return false;
                };
                at += 2 + usize::from(u16::from_be_bytes([length[0], length[1]]));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    fn encode(
        pixels: &[u8],
        width: u16,
        height: u16,
        color: ColorType,
        sampling: SamplingFactor,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 95);
        encoder.set_sampling_factor(sampling);
        encoder.encode(pixels, width, height, color).unwrap();
        out
    }

    fn flat(value: [u8; 3], width: u16, height: u16) -> Vec<u8> {
        value
            .iter()
            .copied()
            .cycle()
            .take(usize::from(width) * usize::from(height) * 3)
            .collect()
    }

    fn assert_near(plane: &[u8], expected: u8, what: &str) {
        let worst = plane
            .iter()
            .map(|&p| (i16::from(p) - i16::from(expected)).abs())
            .max()
            .unwrap_or(0);
        assert!(worst <= 2, "{what}: off by {worst} from {expected}");
    }

    #[test]
    fn a_flat_ycbcr_jpeg_decodes_to_its_colour_in_video_range() {
        for sampling in [
            SamplingFactor::F_2_2,
            SamplingFactor::F_2_1,
            SamplingFactor::F_1_1,
        ] {
            let jpeg = encode(
                &flat([150, 90, 200], 64, 48),
                64,
                48,
                ColorType::Ycbcr,
                sampling,
            );
            let frame = mjpeg_to_i420(&jpeg, Duration::from_millis(9)).unwrap();
            assert_eq!((frame.width(), frame.height()), (64, 48));
            // Full range 150 / 90 / 200 is video range 145 / 95 / 191.
            assert_near(frame.y(), 145, "Y");
            assert_near(frame.u(), 95, "U");
            assert_near(frame.v(), 191, "V");
            assert_eq!(frame.timestamp(), Duration::from_millis(9));
        }
    }

    #[test]
    fn a_flat_rgb_jpeg_decodes_like_the_rgb_conversion() {
        // Pure red: BT.601 video range Y 82, U 90, V 240.
        let jpeg = encode(
            &flat([255, 0, 0], 32, 32),
            32,
            32,
            ColorType::Rgb,
            SamplingFactor::F_2_2,
        );
        let frame = mjpeg_to_i420(&jpeg, Duration::ZERO).unwrap();
        assert_near(frame.y(), 82, "Y");
        assert_near(frame.u(), 90, "U");
        assert_near(frame.v(), 240, "V");
    }

    #[test]
    fn odd_sizes_are_cropped_and_greyscale_has_neutral_chroma() {
        let jpeg = encode(
            &flat([40, 128, 128], 33, 17),
            33,
            17,
            ColorType::Ycbcr,
            SamplingFactor::F_2_2,
        );
        let frame = mjpeg_to_i420(&jpeg, Duration::ZERO).unwrap();
        assert_eq!((frame.width(), frame.height()), (32, 16));
        assert_near(frame.y(), FULL_TO_VIDEO_LUMA[40], "Y");
        let grey = vec![200u8; 16 * 8];
        let jpeg = encode(&grey, 16, 8, ColorType::Luma, SamplingFactor::F_1_1);
        let frame = mjpeg_to_i420(&jpeg, Duration::ZERO).unwrap();
        assert_near(frame.y(), FULL_TO_VIDEO_LUMA[200], "Y");
        assert!(frame.u().iter().chain(frame.v()).all(|&c| c == 128));
    }

    #[test]
    fn frames_without_huffman_tables_use_the_standard_ones() {
        let jpeg = encode(
            &flat([120, 160, 100], 32, 16),
            32,
            16,
            ColorType::Ycbcr,
            SamplingFactor::F_2_1,
        );
        // Cut every DHT segment (FF C4, length) out, as AVI1 MJPEG cameras send frames.
        let mut stripped = Vec::new();
        let mut at = 0;
        while at < jpeg.len() {
            if jpeg[at] == 0xFF && jpeg.get(at + 1) == Some(&0xC4) {
                let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
                at += 2 + length;
                continue;
            }
            stripped.push(jpeg[at]);
            at += 1;
        }
        assert!(stripped.len() < jpeg.len());
        assert!(lacks_huffman_tables(&stripped) && !lacks_huffman_tables(&jpeg));
        let frame = mjpeg_to_i420(&stripped, Duration::ZERO).unwrap();
        assert_near(frame.y(), FULL_TO_VIDEO_LUMA[120], "Y");
        assert_near(frame.u(), FULL_TO_VIDEO_CHROMA[160], "U");
    }

    #[test]
    fn garbage_and_truncated_frames_are_errors() {
        assert!(mjpeg_to_i420(&[], Duration::ZERO).is_err());
        assert!(mjpeg_to_i420(&[0xFF, 0xD8, 0xFF, 0xD9], Duration::ZERO).is_err());
        let jpeg = encode(
            &flat([10, 20, 30], 64, 64),
            64,
            64,
            ColorType::Rgb,
            SamplingFactor::F_2_2,
        );
        for cut in [2, 20, 100, jpeg.len() / 2] {
            // A cut frame decodes to an error or to a picture of the announced size: the
            // decoder may fill what is missing, but it never panics.
            if let Ok(frame) = mjpeg_to_i420(&jpeg[..cut], Duration::ZERO) {
                assert_eq!((frame.width(), frame.height()), (64, 64));
            }
        }
        let mut corrupt = jpeg.clone();
        for byte in corrupt.iter_mut().skip(200).step_by(7) {
            *byte ^= 0x5A;
        }
        let _ = mjpeg_to_i420(&corrupt, Duration::ZERO);
        let mut huge = jpeg;
        // The SOF0 frame header's height and width set to 65535.
        if let Some(sof) = huge.windows(2).position(|w| w == [0xFF, 0xC0]) {
            huge[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        }
        assert!(mjpeg_to_i420(&huge, Duration::ZERO).is_err());
    }
}
