//! Decoded video frames (I420) as images the window can show.

use callisto_media::video::{i420_to_rgb, VideoFrame};
use slint::{Image, Rgb8Pixel, SharedPixelBuffer};

/// Converts one I420 frame to RGB (BT.601, limited range, as H.264 decoders produce).
pub fn frame_image(frame: &VideoFrame) -> Image {
    let (width, height) = (frame.width(), frame.height());
    let mut buffer = SharedPixelBuffer::<Rgb8Pixel>::new(width, height);
    i420_to_rgb(frame, buffer.make_mut_bytes());
    Image::from_rgb8(buffer)
}
