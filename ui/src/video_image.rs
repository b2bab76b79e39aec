//! Decoded video frames (I420) as images the window can show.

use callisto_media::video::{i420_to_rgb, VideoFrame};
use slint::{Image, Rgb8Pixel, SharedPixelBuffer};

/// Converts one I420 frame to RGB (BT.601, limited range, as H.264 decoders produce).
pub fn frame_image(frame: &VideoFrame) -> Image {
    StreamImages::new().image(frame)
}

/// Converts the frames of one stream (a tile, the self-view) into images, 30 times a second,
/// without allocating and clearing a new picture each time: it alternates between two pixel
/// buffers. When a frame is converted, the window holds the image before last no more (the
/// last one replaced it), so that buffer is written in place; were it still shared, writing
/// would copy it first, which is only slower.
#[derive(Default)]
pub struct StreamImages {
    buffers: [Option<SharedPixelBuffer<Rgb8Pixel>>; 2],
    next: usize,
}

impl StreamImages {
    pub fn new() -> Self {
        StreamImages::default()
    }

    /// `frame` as an image.
    pub fn image(&mut self, frame: &VideoFrame) -> Image {
        let (width, height) = (frame.width(), frame.height());
        let slot = &mut self.buffers[self.next];
        self.next = 1 - self.next;
        let buffer = match slot {
            Some(buffer) if buffer.width() == width && buffer.height() == height => buffer,
            _ => slot.insert(SharedPixelBuffer::new(width, height)),
        };
        i420_to_rgb(frame, buffer.make_mut_bytes());
        Image::from_rgb8(buffer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour_of(image: &Image) -> Rgb8Pixel {
        let buffer = image.to_rgb8().expect("an RGB image");
        buffer.as_slice()[0]
    }

    #[test]
    fn each_image_shows_its_own_frame_while_earlier_ones_stay_as_they_were() {
        let mut images = StreamImages::new();
        let black = VideoFrame::filled(4, 2, 16, 128, 128).unwrap();
        let white = VideoFrame::filled(4, 2, 235, 128, 128).unwrap();
        let first = images.image(&black);
        // The window still holds the first image when the second and third arrive.
        let second = images.image(&white);
        let third = images.image(&white);
        assert_eq!(colour_of(&first), Rgb8Pixel { r: 0, g: 0, b: 0 });
        assert_eq!(
            colour_of(&second),
            Rgb8Pixel {
                r: 255,
                g: 255,
                b: 255
            }
        );
        assert_eq!(
            colour_of(&third),
            Rgb8Pixel {
                r: 255,
                g: 255,
                b: 255
            }
        );
        // A new size gets new buffers.
        let big = VideoFrame::filled(8, 4, 235, 128, 128).unwrap();
        assert_eq!(images.image(&big).size().width, 8);
    }
}
