//! The Settings page in words, and back: which microphone, speakers and camera calls use, the
//! size of the picture they send and the codecs they offer ([`MediaSettings`], saved in the
//! configuration file), and the media a call from the window gets from them.

use callisto_media::device::AudioDeviceInfo;

use crate::call::media_options_for;
use crate::cli::MediaArgs;
use crate::config::{Account, MediaSettings};
use crate::engine::MediaOptions;

use super::device_check::DeviceLists;

/// The first entry of each device list: whatever the system calls its default.
pub const SYSTEM_DEFAULT: &str = "System default";
/// The first entry of the ringtone's list: wherever calls are heard.
pub const SAME_AS_SPEAKERS: &str = "Same as the speakers";

/// The picture sizes the page offers.
pub const VIDEO_SIZES: [&str; 3] = ["320x240", "640x480", "1280x720"];

/// The frame rates the Settings page offers.
pub const VIDEO_RATES: [&str; 3] = ["15", "24", "30"];

/// The Settings page as the window shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsScreen {
    /// Device names, [`SYSTEM_DEFAULT`] first; a chosen device that is not there now is listed
    /// last, marked "not found".
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The outputs again, [`SAME_AS_SPEAKERS`] first.
    pub ringers: Vec<String>,
    pub cameras: Vec<String>,
    /// What the page shows chosen: the saved settings, as the form that would save them.
    pub chosen: SettingsForm,
    /// Why the last change was refused; empty when it was saved.
    pub error: String,
    /// What is wrong with the devices, in words ("No camera preview: no camera found.").
    pub notice: String,
}

/// The page's choices as the window sends them: entries of the lists it was shown (the
/// chosen entry of each), the picture size and the codec list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsForm {
    pub input: usize,
    pub output: usize,
    pub ringer: usize,
    pub camera: usize,
    pub video_size: String,
    /// Frames per second, as the page shows them.
    pub video_fps: String,
    pub codecs: String,
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

/// One device list: the entries' names and the ids they stand for (`None`: the default).
struct Choices<T> {
    names: Vec<String>,
    ids: Vec<Option<T>>,
    chosen: usize,
}

fn choices<T: Clone + PartialEq>(
    first: &str,
    found: impl Iterator<Item = (T, String)>,
    chosen: Option<&T>,
    missing_name: impl Fn(&T) -> String,
) -> Choices<T> {
    let mut list = Choices {
        names: vec![first.to_string()],
        ids: vec![None],
        chosen: 0,
    };
    for (id, name) in found {
        list.names.push(name);
        list.ids.push(Some(id));
    }
    if let Some(chosen) = chosen {
        list.chosen = match list.ids.iter().position(|id| id.as_ref() == Some(chosen)) {
            Some(index) => index,
            None => {
                list.names
                    .push(format!("{} (not found)", missing_name(chosen)));
                list.ids.push(Some(chosen.clone()));
                list.ids.len() - 1
            }
        };
    }
    list
}

fn audio_choices(
    first: &str,
    devices: &[AudioDeviceInfo],
    chosen: Option<&String>,
) -> Choices<String> {
    let found = devices.iter().map(|d| (d.id.clone(), d.name.clone()));
    choices(first, found, chosen, String::clone)
}

fn input_choices(lists: &DeviceLists, settings: &MediaSettings) -> Choices<String> {
    audio_choices(SYSTEM_DEFAULT, &lists.inputs, settings.input.as_ref())
}

fn output_choices(lists: &DeviceLists, settings: &MediaSettings) -> Choices<String> {
    audio_choices(SYSTEM_DEFAULT, &lists.outputs, settings.output.as_ref())
}

fn ringer_choices(lists: &DeviceLists, settings: &MediaSettings) -> Choices<String> {
    audio_choices(SAME_AS_SPEAKERS, &lists.outputs, settings.ringer.as_ref())
}

fn camera_choices(lists: &DeviceLists, settings: &MediaSettings) -> Choices<u32> {
    let found = lists.cameras.iter().map(|c| (c.index, c.name.clone()));
    let missing = |index: &u32| format!("Camera {index}");
    choices(SYSTEM_DEFAULT, found, settings.camera.as_ref(), missing)
}

/// The page for `settings`, with the devices in `lists`.
pub fn settings_screen(
    settings: &MediaSettings,
    lists: &DeviceLists,
    error: &str,
    notes: &[String],
) -> SettingsScreen {
    let inputs = input_choices(lists, settings);
    let outputs = output_choices(lists, settings);
    let ringers = ringer_choices(lists, settings);
    let cameras = camera_choices(lists, settings);
    SettingsScreen {
        chosen: SettingsForm {
            input: inputs.chosen,
            output: outputs.chosen,
            ringer: ringers.chosen,
            camera: cameras.chosen,
            video_size: settings.video_size.clone(),
            video_fps: settings.video_fps.to_string(),
            codecs: settings.codecs.clone(),
            echo_cancellation: settings.echo_cancellation,
            noise_suppression: settings.noise_suppression,
            gain_control: settings.gain_control,
        },
        inputs: inputs.names,
        outputs: outputs.names,
        ringers: ringers.names,
        cameras: cameras.names,
        error: error.to_string(),
        notice: lists
            .problems
            .iter()
            .chain(notes)
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The settings the form chose, from the lists it was shown (made from `current` and
/// `lists`); refused with the reason when a call could not use them.
pub fn settings_from_form(
    form: &SettingsForm,
    current: &MediaSettings,
    lists: &DeviceLists,
) -> Result<MediaSettings, String> {
    let pick = |ids: &[Option<String>], index: usize| ids.get(index).cloned().flatten();
    let settings = MediaSettings {
        input: pick(&input_choices(lists, current).ids, form.input),
        output: pick(&output_choices(lists, current).ids, form.output),
        ringer: pick(&ringer_choices(lists, current).ids, form.ringer),
        camera: camera_choices(lists, current)
            .ids
            .get(form.camera)
            .copied()
            .flatten(),
        video_size: form.video_size.trim().to_string(),
        video_fps: form
            .video_fps
            .trim()
            .parse()
            .map_err(|_| format!("'{}' is not a frame rate", form.video_fps.trim()))?,
        codecs: form.codecs.trim().to_string(),
        echo_cancellation: form.echo_cancellation,
        noise_suppression: form.noise_suppression,
        gain_control: form.gain_control,
    };
    app_media(None, true, &settings)?;
    Ok(settings)
}

/// The media a call from the window offers: the chosen devices, picture size and codecs,
/// and the account's path, SRTP and ICE servers.
pub fn app_media(
    account: Option<&Account>,
    video: bool,
    settings: &MediaSettings,
) -> Result<MediaOptions, String> {
    let device = |id: &Option<String>| match id {
        Some(id) => format!("device:{id}"),
        None => "device".to_string(),
    };
    let stages = [
        (settings.echo_cancellation, "aec"),
        (settings.noise_suppression, "ns"),
        (settings.gain_control, "agc"),
    ];
    let stages: Vec<&str> = stages
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| *s)
        .collect();
    let mut args = MediaArgs {
        audio: device(&settings.input),
        play_audio: Some(device(&settings.output)),
        codecs: settings.codecs.clone(),
        video_size: settings.video_size.clone(),
        fps: settings.video_fps,
        voice_processing: if stages.is_empty() {
            "none".into()
        } else {
            stages.join(",")
        },
        ..MediaArgs::default()
    };
    if video {
        args.video = match settings.camera {
            Some(index) => format!("camera:{index}"),
            None => "camera".into(),
        };
    }
    media_options_for(&args, account).map_err(|reason| {
        // The flags' wording, in the page's terms.
        reason
            .replace("--codecs", "The codec list")
            .replace("--video-size", "The picture size")
            .replace("--fps", "The frame rate")
    })
}

#[cfg(test)]
mod tests {
    use callisto_media::audio::ProcessingOptions;
    use callisto_media::device::{AudioDeviceInfo, Direction};
    use callisto_media::video::camera::CameraInfo;
    use callisto_signaling::sdp::AudioCodec;

    use super::*;
    use crate::engine::{AudioInput, AudioPlayback, VideoInput};

    fn device(id: &str, name: &str, direction: Direction) -> AudioDeviceInfo {
        AudioDeviceInfo {
            name: name.into(),
            id: id.into(),
            direction,
            is_default: false,
            host: "PulseAudio".into(),
        }
    }

    fn lists() -> DeviceLists {
        DeviceLists {
            inputs: vec![
                device("builtin.mic", "Built-in Microphone", Direction::Input),
                device("usb.headset", "USB Headset", Direction::Input),
            ],
            outputs: vec![device("builtin.out", "Speakers", Direction::Output)],
            cameras: vec![CameraInfo {
                index: 0,
                name: "Integrated Camera".into(),
                description: "/dev/video0".into(),
            }],
            problems: Vec::new(),
        }
    }

    #[test]
    fn the_page_lists_the_default_first_and_marks_the_chosen_device() {
        let settings = MediaSettings {
            input: Some("usb.headset".into()),
            ..MediaSettings::default()
        };
        let screen = settings_screen(&settings, &lists(), "", &[]);
        assert_eq!(
            screen.inputs,
            ["System default", "Built-in Microphone", "USB Headset"]
        );
        assert_eq!(screen.chosen.input, 2);
        assert_eq!(screen.outputs, ["System default", "Speakers"]);
        assert_eq!(screen.chosen.output, 0);
        assert_eq!(screen.ringers, ["Same as the speakers", "Speakers"]);
        assert_eq!(screen.chosen.ringer, 0);
        assert_eq!(screen.cameras, ["System default", "Integrated Camera"]);
        assert_eq!(
            (
                screen.chosen.video_size.as_str(),
                screen.chosen.codecs.as_str()
            ),
            ("640x480", "opus, pcmu, pcma")
        );
    }

    #[test]
    fn a_chosen_device_that_is_gone_stays_chosen_and_says_so() {
        let settings = MediaSettings {
            output: Some("bt.headphones".into()),
            ringer: Some("hdmi.out".into()),
            camera: Some(3),
            ..MediaSettings::default()
        };
        let mut found = lists();
        found.problems.push("No cameras: none found.".into());
        let screen = settings_screen(&settings, &found, "", &["The microphone is busy.".into()]);
        assert_eq!(
            screen.outputs[screen.chosen.output],
            "bt.headphones (not found)"
        );
        assert_eq!(screen.ringers[screen.chosen.ringer], "hdmi.out (not found)");
        assert_eq!(screen.cameras[screen.chosen.camera], "Camera 3 (not found)");
        assert_eq!(
            screen.notice,
            "No cameras: none found. The microphone is busy."
        );
        // Saving the page unchanged keeps them.
        assert_eq!(
            settings_from_form(&screen.chosen, &settings, &found).unwrap(),
            settings
        );
    }

    #[test]
    fn the_form_becomes_settings_and_calls_use_them() {
        let form = SettingsForm {
            input: 1,
            output: 1,
            ringer: 1,
            camera: 1,
            video_size: "1280x720".into(),
            video_fps: " 15".into(),
            codecs: " pcma, opus ".into(),
            echo_cancellation: true,
            noise_suppression: false,
            gain_control: true,
        };
        let settings = settings_from_form(&form, &MediaSettings::default(), &lists()).unwrap();
        assert_eq!(settings.input.as_deref(), Some("builtin.mic"));
        assert_eq!(settings.output.as_deref(), Some("builtin.out"));
        assert_eq!(settings.ringer.as_deref(), Some("builtin.out"));
        assert_eq!(settings.camera, Some(0));
        assert!(settings.echo_cancellation && !settings.noise_suppression);
        let media = app_media(None, true, &settings).unwrap();
        assert_eq!(
            media.processing,
            ProcessingOptions {
                noise_suppression: false,
                ..ProcessingOptions::default()
            }
        );
        assert_eq!(media.input, AudioInput::Device(Some("builtin.mic".into())));
        assert_eq!(
            media.playback,
            AudioPlayback::Device(Some("builtin.out".into()))
        );
        assert_eq!(
            media.policy.codecs,
            [AudioCodec::pcma(), AudioCodec::opus()]
        );
        let video = media.video.expect("video");
        assert_eq!(video.input, VideoInput::Camera { index: Some(0) });
        assert_eq!((video.width, video.height, video.fps), (1280, 720, 15));
        // The defaults are the system's devices and the first camera, every voice processing
        // stage on; with all three unticked the microphone goes out as it is.
        let media = app_media(None, true, &MediaSettings::default()).unwrap();
        assert_eq!(media.processing, ProcessingOptions::default());
        let plain = MediaSettings {
            echo_cancellation: false,
            noise_suppression: false,
            gain_control: false,
            ..MediaSettings::default()
        };
        assert_eq!(
            app_media(None, true, &plain).unwrap().processing,
            ProcessingOptions::OFF
        );
        assert_eq!(media.input, AudioInput::Device(None));
        assert_eq!(media.playback, AudioPlayback::Device(None));
        assert_eq!(
            media.video.expect("video").input,
            VideoInput::Camera { index: None }
        );
        assert!(app_media(None, false, &MediaSettings::default())
            .unwrap()
            .video
            .is_none());
    }

    #[test]
    fn a_form_calls_could_not_use_is_refused_with_the_reason() {
        let form = |video_size: &str, codecs: &str| SettingsForm {
            video_size: video_size.into(),
            video_fps: "30".into(),
            codecs: codecs.into(),
            ..SettingsForm::default()
        };
        let current = MediaSettings::default();
        let refused = settings_from_form(&form("640x480", "opus, g729"), &current, &lists());
        assert_eq!(
            refused.unwrap_err(),
            "unknown codec 'g729'; use opus, pcmu or pcma"
        );
        let refused = settings_from_form(&form("640x480", " "), &current, &lists());
        assert_eq!(refused.unwrap_err(), "The codec list names no codec");
        let refused = settings_from_form(&form("big", "opus"), &current, &lists());
        assert!(
            refused
                .as_ref()
                .unwrap_err()
                .starts_with("The picture size big"),
            "{refused:?}"
        );
        for (fps, why) in [
            ("fast", "'fast' is not a frame rate"),
            ("0", "The frame rate 0: use 1 to 60"),
        ] {
            let rate = SettingsForm {
                video_fps: fps.into(),
                ..form("640x480", "opus")
            };
            let refused = settings_from_form(&rate, &current, &lists());
            assert_eq!(refused.unwrap_err(), why);
        }
    }
}
