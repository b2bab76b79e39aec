//! Real sound devices through cpal: listing them, capturing from one as an
//! [`AudioSource`](crate::audio::AudioSource), playing to one as an
//! [`AudioSink`](crate::audio::AudioSink).
//!
//! # Contract
//!
//! - The audio system is PulseAudio when a server answers (`PULSE_SERVER`, or the user's
//!   runtime directory; PipeWire's PulseAudio service counts), else ALSA ([`audio_devices`]
//!   lists what it has).
//! - Device callbacks only move samples through lock-free single-producer single-consumer rings
//!   ([`ring`]), converting the sample type to or from `i16` on the way. Channel mixing and
//!   resampling (the [`Resampler`](crate::audio::Resampler)) run on the media thread, in
//!   [`DeviceCapture`]'s `read` and [`DevicePlayback`]'s `write`, which never block.
//! - Underflow gives silence and is counted; overflow drops the oldest audio and is counted
//!   ([`DeviceStats`]).
//! - Device trouble never ends a call. No device at all, or none by the name asked for, is a
//!   [`DeviceError`] whose message the caller reports before it goes on with silence or a null
//!   sink. A device lost mid-call is replaced by the default device, or the call goes on
//!   silently while retries run ([`DeviceRecovery`]); each change is reported once as a
//!   [`DeviceEvent`] to the handler given at opening.
//! - A device's stream is owned by a worker thread of its own, which opens it, reads the
//!   stream's error callback and reopens; dropping the capture or playback closes it.

mod capture;
mod error;
mod host;
mod playback;
mod recovery;
pub mod ring;
mod worker;

pub use capture::DeviceCapture;
pub use error::{DeviceError, Direction};
pub use host::{audio_devices, AudioDeviceInfo};
pub use playback::DevicePlayback;
pub use recovery::{DeviceEvent, DeviceRecovery, RecoveryStep, StreamTrouble};
pub use worker::{DeviceEventHandler, DeviceStats, DeviceStatsHandle};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::AudioFormat;

    #[test]
    fn a_device_that_does_not_exist_is_an_error_that_names_it() {
        let missing = "callisto-test-no-such-device";
        let capture = DeviceCapture::open(Some(missing), AudioFormat::MONO_8K, Box::new(|_| {}));
        let error = capture.expect_err("a missing device opens nothing");
        assert!(
            matches!(
                error,
                DeviceError::NotFound { .. } | DeviceError::NoAudioSystem(_)
            ),
            "{error}"
        );
        if let DeviceError::NotFound { name, .. } = &error {
            assert_eq!(name, missing);
        }
        let playback = DevicePlayback::open(Some(missing), AudioFormat::MONO_8K, Box::new(|_| {}));
        assert!(playback.is_err());
    }

    #[test]
    fn formats_callisto_cannot_work_in_are_refused_before_any_device_opens() {
        let bad = AudioFormat::new(11_025, 1);
        let error = DeviceCapture::open(None, bad, Box::new(|_| {})).unwrap_err();
        assert!(
            matches!(error, DeviceError::UnsupportedFormat { .. }),
            "{error}"
        );
        let error = DevicePlayback::open(None, bad, Box::new(|_| {})).unwrap_err();
        assert!(
            matches!(error, DeviceError::UnsupportedFormat { .. }),
            "{error}"
        );
    }
}
