//! The error type of audio devices.

use std::fmt;

/// Which way a device moves sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A microphone or another capture device (a PulseAudio source, a monitor).
    Input,
    /// A speaker, a headset or another playback device (a PulseAudio sink).
    Output,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
        })
    }
}

/// Why an audio device could not be listed or opened. Every variant reads as a sentence a user
/// can act on; a call that meets one goes on with silence (or without playback).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// No audio system answered: neither PulseAudio nor ALSA.
    #[error("no audio system is available ({0})")]
    NoAudioSystem(String),
    /// The audio system has no device of this direction, or no default one.
    #[error("there is no audio {0} device")]
    NoDevice(Direction),
    /// No device of this direction has this name.
    #[error("there is no audio {direction} device named '{name}'{}", available_list(.available))]
    NotFound {
        /// The direction asked for.
        direction: Direction,
        /// The name asked for.
        name: String,
        /// The names that exist, for the message.
        available: Vec<String>,
    },
    /// The device offers no format Callisto can convert from or to (sample rates that are a
    /// multiple of 50 Hz; channel counts one, or a mix from or to one).
    #[error("the audio {direction} device '{name}' offers no usable format: {reason}")]
    UnsupportedFormat {
        /// The direction of the device.
        direction: Direction,
        /// The device's name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// The audio system refused to open or start a stream on the device.
    #[error("the audio {direction} device '{name}' could not be opened: {reason}")]
    Open {
        /// The direction of the device.
        direction: Direction,
        /// The device's name.
        name: String,
        /// The audio system's reason.
        reason: String,
    },
    /// Listing devices failed.
    #[error("audio devices could not be listed: {0}")]
    List(String),
}

fn available_list(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (there are: {})", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_device_and_what_exists() {
        let e = DeviceError::NotFound {
            direction: Direction::Input,
            name: "usb".into(),
            available: vec!["Built-in".into(), "Monitor of Null Output".into()],
        };
        assert_eq!(
            e.to_string(),
            "there is no audio input device named 'usb' (there are: Built-in, Monitor of Null Output)"
        );
        assert_eq!(
            DeviceError::NoDevice(Direction::Output).to_string(),
            "there is no audio output device"
        );
    }
}
