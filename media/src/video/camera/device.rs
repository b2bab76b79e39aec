//! The cameras of this machine through `nokhwa` (V4L2 on Linux, Media Foundation on Windows,
//! AVFoundation on macOS): listing them, opening one in the mode [`choose_mode`] picks, and
//! reading its raw frames on the capture thread.
//!
//! `nokhwa`'s errors carry the system's words as text; [`classify`] turns them into the
//! [`CameraError`] a person understands (busy, not allowed, no usable format).

use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use nokhwa::{Camera, NokhwaError};

use super::camera_source::FrameGrabber;
use super::error::CameraError;
use super::mode_selection::{choose_mode, CameraMode};
use super::pixel_format::{PixelFormat, RawFrame};
use crate::video::VideoFormat;

/// A camera the system lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// The number `--video camera:N` and [`CameraSource::open`](super::CameraSource::open)
    /// take (on Linux, N of `/dev/videoN`).
    pub index: u32,
    /// The device's name, as its driver gives it.
    pub name: String,
    /// More about the device (on Linux, its node).
    pub description: String,
}

/// Every pixel format `nokhwa` may hand out; Callisto reads them all.
const READABLE: [FrameFormat; 6] = [
    FrameFormat::NV12,
    FrameFormat::YUYV,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::MJPEG,
    FrameFormat::GRAY,
];

/// The cameras of this machine, in the system's order. No camera is an empty list, not an error.
pub fn cameras() -> Result<Vec<CameraInfo>, CameraError> {
    let found = nokhwa::query(ApiBackend::Auto).map_err(classify)?;
    Ok(found
        .iter()
        .filter_map(|info| {
            let index = info.index().as_index().ok()?;
            Some(CameraInfo {
                index,
                name: info.human_name(),
                description: info.description().to_owned(),
            })
        })
        .collect())
}

/// The pixel format of a `nokhwa` frame format.
fn pixel_format(format: FrameFormat) -> PixelFormat {
    match format {
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::GRAY => PixelFormat::Gray,
        FrameFormat::RAWRGB => PixelFormat::Rgb24,
        FrameFormat::RAWBGR => PixelFormat::Bgr24,
    }
}

fn frame_format(format: PixelFormat) -> FrameFormat {
    match format {
        PixelFormat::Mjpeg => FrameFormat::MJPEG,
        PixelFormat::Yuyv => FrameFormat::YUYV,
        PixelFormat::Nv12 => FrameFormat::NV12,
        PixelFormat::Gray => FrameFormat::GRAY,
        PixelFormat::Rgb24 => FrameFormat::RAWRGB,
        PixelFormat::Bgr24 => FrameFormat::RAWBGR,
    }
}

fn camera_mode(format: &CameraFormat) -> CameraMode {
    CameraMode {
        pixel_format: pixel_format(format.format()),
        width: format.width(),
        height: format.height(),
        fps: format.frame_rate(),
    }
}

/// What a `nokhwa` error means for the person at the screen.
pub(super) fn classify(error: NokhwaError) -> CameraError {
    if let NokhwaError::GetPropertyError { property, .. } = &error {
        // `nokhwa` found no mode among the ones it was allowed to pick.
        if property == "CameraFormat" {
            return CameraError::NoUsableFormat;
        }
    }
    let detail = error.to_string();
    let text = detail.to_ascii_lowercase();
    if text.contains("busy") || text.contains("os error 16") {
        CameraError::Busy
    } else if text.contains("permission denied") || text.contains("os error 13") {
        CameraError::PermissionDenied { detail }
    } else if text.contains("no such device") || text.contains("os error 19") {
        CameraError::Stopped { detail }
    } else {
        CameraError::Device { detail }
    }
}

/// An open camera streaming in `mode`.
pub(super) struct NokhwaGrabber {
    camera: Camera,
    mode: CameraMode,
    name: String,
    /// The latest frame's bytes.
    buffer: Vec<u8>,
}

impl FrameGrabber for NokhwaGrabber {
    fn mode(&self) -> CameraMode {
        self.mode
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn grab(&mut self) -> Result<RawFrame<'_>, CameraError> {
        // V4L2 lends its buffer, other backends hand out their own copy: either way the bytes
        // are copied into ours (a fraction of the conversion's cost), so the frame can borrow
        // from one place.
        let data = self.camera.frame_raw().map_err(classify)?;
        self.buffer.clear();
        self.buffer.extend_from_slice(&data);
        Ok(RawFrame {
            format: self.mode.pixel_format,
            width: self.mode.width,
            height: self.mode.height,
            stride: None,
            data: &self.buffer,
        })
    }
}

/// Opens camera number `index` (the first listed when `None`) in the mode closest to
/// `wanted`, and starts its stream.
pub(super) fn open_camera(
    index: Option<u32>,
    wanted: VideoFormat,
) -> Result<NokhwaGrabber, CameraError> {
    let listed = cameras()?;
    let info = match index {
        None => listed.first().ok_or(CameraError::NotFound)?,
        Some(_) if listed.is_empty() => return Err(CameraError::NotFound),
        Some(index) => {
            listed
                .iter()
                .find(|c| c.index == index)
                .ok_or(CameraError::NoSuchCamera {
                    index,
                    found: listed.len(),
                })?
        }
    };
    let request = RequestedFormat::with_formats(RequestedFormatType::None, &READABLE);
    let mut camera = Camera::new(CameraIndex::Index(info.index), request).map_err(classify)?;
    let offered: Vec<CameraMode> = camera
        .compatible_camera_formats()
        .map_err(classify)?
        .iter()
        .map(camera_mode)
        .collect();
    let mode = choose_mode(&offered, wanted).ok_or(CameraError::NoUsableFormat)?;
    let chosen = CameraFormat::new_from(
        mode.width,
        mode.height,
        frame_format(mode.pixel_format),
        mode.fps,
    );
    camera
        .set_camera_requset(RequestedFormat::with_formats(
            RequestedFormatType::Exact(chosen),
            &READABLE,
        ))
        .map_err(classify)?;
    camera.open_stream().map_err(classify)?;
    Ok(NokhwaGrabber {
        camera,
        mode,
        name: info.name.clone(),
        buffer: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_errors_become_messages_a_person_understands() {
        let busy = NokhwaError::SetPropertyError {
            property: "Resolution, FrameFormat".into(),
            value: "640x480".into(),
            error: "Device or resource busy (os error 16)".into(),
        };
        assert_eq!(classify(busy), CameraError::Busy);
        assert_eq!(
            classify(NokhwaError::OpenStreamError(
                "Device or resource busy".into()
            )),
            CameraError::Busy
        );
        assert!(matches!(
            classify(NokhwaError::OpenDeviceError(
                "0".into(),
                "V4L2 Error: Permission denied (os error 13)".into()
            )),
            CameraError::PermissionDenied { .. }
        ));
        assert_eq!(
            classify(NokhwaError::GetPropertyError {
                property: "CameraFormat".into(),
                error: "Failed to Fufill".into(),
            }),
            CameraError::NoUsableFormat
        );
        assert!(matches!(
            classify(NokhwaError::ReadFrameError(
                "No such device (os error 19)".into()
            )),
            CameraError::Stopped { .. }
        ));
        assert!(matches!(
            classify(NokhwaError::ReadFrameError("Interrupted".into())),
            CameraError::Device { .. }
        ));
    }

    #[test]
    fn formats_map_both_ways() {
        for format in READABLE {
            assert_eq!(frame_format(pixel_format(format)), format);
        }
    }

    /// This machine's cameras, for real: listing works whether or not there is one, and with
    /// none, opening says so in words.
    #[test]
    fn listing_and_opening_the_real_cameras() {
        let listed = cameras().expect("listing cameras");
        let wanted = VideoFormat::new(640, 480, 30).unwrap();
        if listed.is_empty() {
            assert_eq!(open_camera(None, wanted).err(), Some(CameraError::NotFound));
            assert_eq!(
                open_camera(Some(3), wanted).err(),
                Some(CameraError::NotFound)
            );
            assert_eq!(CameraError::NotFound.to_string(), "no camera found");
        } else {
            let missing = listed.iter().map(|c| c.index).max().unwrap_or(0) + 1;
            assert!(matches!(
                open_camera(Some(missing), wanted).err(),
                Some(CameraError::NoSuchCamera { .. })
            ));
        }
    }
}
