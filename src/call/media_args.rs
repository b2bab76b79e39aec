//! The media flags of `callisto call` and `callisto answer`, checked and turned into the
//! engine's [`MediaOptions`].

use std::path::PathBuf;

use callisto_media::audio::ProcessingOptions;
use callisto_signaling::sdp::{AudioCodec, AudioPolicy, SrtpPolicy};

use crate::cli::MediaArgs;
use crate::config::Account;
use crate::engine::{
    AudioInput, AudioPlayback, CallControls, IceServerOptions, MediaOptions, MediaProfile,
    VideoInput, VideoOptions,
};

/// Turns the media flags into the engine's media options.
pub fn media_options(args: &MediaArgs) -> Result<MediaOptions, String> {
    media_options_for(args, None)
}

/// The media flags, with `account`'s settings (media path, SRTP, STUN/TURN) where a flag is
/// not given.
pub fn media_options_for(
    args: &MediaArgs,
    account: Option<&Account>,
) -> Result<MediaOptions, String> {
    let mut args = args.clone();
    if let Some(account) = account {
        args.media = args.media.or_else(|| account.media.clone());
        args.srtp = args.srtp.or_else(|| account.srtp.clone());
        if args.stun.is_none() && args.turn.is_none() {
            args.stun = account.stun.clone();
            args.turn = account.turn.clone();
            args.turn_user = account.turn_user.clone();
            args.turn_password = account.turn_password.clone();
        }
    }
    let args = &args;
    if args.relay_only && args.turn.is_none() {
        return Err("--relay-only needs a TURN server: --turn (or the account's turn)".into());
    }
    let input = match args.audio.as_str() {
        "silence" => AudioInput::Silence,
        "echo" => AudioInput::Echo,
        text if device_choice(text).is_some() => AudioInput::Device(device_choice(text).flatten()),
        text if text.starts_with("tone:") => {
            let hz: f64 = text["tone:".len()..]
                .parse()
                .map_err(|_| format!("'{text}' is not a tone; write it like tone:440"))?;
            if !(20.0..=20_000.0).contains(&hz) {
                return Err(format!(
                    "a tone of {hz} Hz cannot be heard; use 20 to 20000"
                ));
            }
            AudioInput::Tone { hz }
        }
        path => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(format!(
                    "'{}' is neither tone:HZ, silence, device[:NAME], echo nor a WAV file",
                    path.display()
                ));
            }
            AudioInput::File(path)
        }
    };
    let mut codecs = Vec::new();
    for name in args
        .codecs
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        codecs.push(match name.to_ascii_lowercase().as_str() {
            "opus" => AudioCodec::opus(),
            "pcmu" | "g711u" | "ulaw" => AudioCodec::pcmu(),
            "pcma" | "g711a" | "alaw" => AudioCodec::pcma(),
            other => return Err(format!("unknown codec '{other}'; use opus, pcmu or pcma")),
        });
    }
    if codecs.is_empty() {
        return Err("--codecs names no codec".into());
    }
    let srtp = match args
        .srtp
        .as_deref()
        .unwrap_or("optional")
        .to_ascii_lowercase()
        .as_str()
    {
        "off" => SrtpPolicy::Off,
        "optional" => SrtpPolicy::Optional,
        "mandatory" => SrtpPolicy::Mandatory,
        other => return Err(format!("--srtp {other}: use off, optional or mandatory")),
    };
    let profile = match args
        .media
        .as_deref()
        .unwrap_or("classic")
        .to_ascii_lowercase()
        .as_str()
    {
        "classic" => MediaProfile::Classic,
        "webrtc" => MediaProfile::WebRtc,
        other => return Err(format!("--media {other}: use classic or webrtc")),
    };
    Ok(MediaOptions {
        processing: voice_processing(&args.voice_processing)?,
        input,
        record: args.record_audio.clone(),
        playback: playback(args.play_audio.as_deref())?,
        policy: AudioPolicy {
            codecs,
            srtp,
            ..AudioPolicy::default()
        },
        profile,
        video: video_options(args)?,
        ice_servers: ice_servers(args)?,
        relay_only: args.relay_only,
        controls: CallControls::default(),
        conference: None,
    })
}

/// `device` → `Some(None)` (the default device), `device:NAME` → `Some(Some(NAME))`,
/// anything else → `None`.
fn device_choice(text: &str) -> Option<Option<String>> {
    match text.strip_prefix("device")? {
        "" => Some(None),
        rest => rest
            .strip_prefix(':')
            .filter(|name| !name.is_empty())
            .map(|name| Some(name.to_owned())),
    }
}

/// `--voice-processing`: the stages named, or none.
fn voice_processing(flag: &str) -> Result<ProcessingOptions, String> {
    let mut options = ProcessingOptions::OFF;
    if flag.trim() == "none" {
        return Ok(options);
    }
    for stage in flag.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match stage {
            "aec" => options.echo_cancellation = true,
            "ns" => options.noise_suppression = true,
            "agc" => options.gain_control = true,
            other => {
                return Err(format!(
                    "--voice-processing {other}: use aec, ns and agc (comma separated) or none"
                ))
            }
        }
    }
    Ok(options)
}

/// `--play-audio`: none by default.
fn playback(flag: Option<&str>) -> Result<AudioPlayback, String> {
    match flag {
        None | Some("none") => Ok(AudioPlayback::Off),
        Some(text) => device_choice(text)
            .map(AudioPlayback::Device)
            .ok_or_else(|| format!("--play-audio {text}: use device, device:NAME or none")),
    }
}

/// The video flags: `None` for `--video none`.
fn video_options(args: &MediaArgs) -> Result<Option<VideoOptions>, String> {
    let input = match args.video.as_str() {
        "none" | "" => return Ok(None),
        "pattern" => VideoInput::Pattern,
        "echo" => VideoInput::Echo,
        "camera" => VideoInput::Camera { index: None },
        text if text.starts_with("camera:") => {
            let index = text["camera:".len()..].parse().map_err(|_| {
                format!("'{text}' is not a camera; write camera or camera:NUMBER (camera:0)")
            })?;
            VideoInput::Camera { index: Some(index) }
        }
        path => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(format!(
                    "'{}' is neither pattern, camera, camera:N, echo, none nor a Y4M file",
                    path.display()
                ));
            }
            VideoInput::File(path)
        }
    };
    let (width, height) = args
        .video_size
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)))
        .filter(|(w, h)| {
            (16..=1920).contains(w) && (16..=1088).contains(h) && w % 2 == 0 && h % 2 == 0
        })
        .ok_or_else(|| {
            format!(
                "--video-size {}: write it like 640x480 (even sizes, up to 1920x1088)",
                args.video_size
            )
        })?;
    if !(1..=60).contains(&args.fps) {
        return Err(format!("--fps {}: use 1 to 60", args.fps));
    }
    if !(50..=10_000).contains(&args.video_kbps) {
        return Err(format!("--video-kbps {}: use 50 to 10000", args.video_kbps));
    }
    Ok(Some(VideoOptions {
        input,
        record: args.record_video.clone(),
        width,
        height,
        fps: args.fps,
        max_bitrate: args.video_kbps * 1000,
        identity: args.pattern_id,
        single_stream: args.single_stream,
    }))
}

/// `--stun` and `--turn` (with its user and password) as ICE servers.
fn ice_servers(args: &MediaArgs) -> Result<Vec<IceServerOptions>, String> {
    let mut servers = Vec::new();
    if let Some(url) = &args.stun {
        if !url.starts_with("stun:") && !url.starts_with("stuns:") {
            return Err(format!("--stun {url}: write it like stun:HOST:3478"));
        }
        servers.push(IceServerOptions {
            url: url.clone(),
            username: String::new(),
            password: String::new(),
        });
    }
    if let Some(url) = &args.turn {
        if !url.starts_with("turn:") && !url.starts_with("turns:") {
            return Err(format!("--turn {url}: write it like turn:HOST:3478"));
        }
        let (Some(user), Some(password)) = (&args.turn_user, &args.turn_password) else {
            return Err("--turn needs --turn-user and --turn-password".into());
        };
        servers.push(IceServerOptions {
            url: url.clone(),
            username: user.clone(),
            password: password.clone(),
        });
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_flags_are_read_and_checked() {
        let args = MediaArgs {
            audio: "tone:440".into(),
            codecs: "pcma,opus".into(),
            srtp: Some("mandatory".into()),
            ..MediaArgs::default()
        };
        let media = media_options(&args).unwrap();
        assert_eq!(media.input, AudioInput::Tone { hz: 440.0 });
        assert_eq!(media.policy.codecs[0], AudioCodec::pcma());
        assert_eq!(media.policy.srtp, SrtpPolicy::Mandatory);
        for (audio, codecs, srtp) in [
            ("tone:x", "opus", "off"),
            ("/no/such/file.wav", "opus", "off"),
            ("silence", "speex", "off"),
            ("silence", "opus", "sometimes"),
        ] {
            let args = MediaArgs {
                audio: audio.into(),
                codecs: codecs.into(),
                srtp: Some(srtp.into()),
                ..MediaArgs::default()
            };
            assert!(media_options(&args).is_err(), "{audio} {codecs} {srtp}");
        }
    }

    #[test]
    fn device_flags_name_the_default_or_a_device() {
        let args = MediaArgs {
            audio: "device".into(),
            play_audio: Some("device:null".into()),
            ..MediaArgs::default()
        };
        let media = media_options(&args).unwrap();
        assert_eq!(media.input, AudioInput::Device(None));
        assert_eq!(media.playback, AudioPlayback::Device(Some("null".into())));
        let args = MediaArgs {
            audio: "device:Monitor of Null Output".into(),
            play_audio: Some("device".into()),
            ..MediaArgs::default()
        };
        let media = media_options(&args).unwrap();
        assert_eq!(
            media.input,
            AudioInput::Device(Some("Monitor of Null Output".into()))
        );
        assert_eq!(media.playback, AudioPlayback::Device(None));
        assert_eq!(
            media_options(&MediaArgs::default()).unwrap().playback,
            AudioPlayback::Off
        );
        for (audio, play) in [
            ("device:", None),
            ("devices", None),
            ("silence", Some("speaker")),
            ("silence", Some("device:")),
        ] {
            let args = MediaArgs {
                audio: audio.into(),
                play_audio: play.map(str::to_owned),
                ..MediaArgs::default()
            };
            assert!(media_options(&args).is_err(), "{audio} {play:?}");
        }
    }

    #[test]
    fn video_and_ice_flags_are_read_and_checked() {
        let args = MediaArgs {
            media: Some("webrtc".into()),
            video: "pattern".into(),
            video_size: "1280x720".into(),
            fps: 25,
            stun: Some("stun:127.0.0.1:3478".into()),
            turn: Some("turn:127.0.0.1:3478?transport=udp".into()),
            turn_user: Some("u".into()),
            turn_password: Some("p".into()),
            ..MediaArgs::default()
        };
        let media = media_options(&args).unwrap();
        assert_eq!(media.profile, MediaProfile::WebRtc);
        let video = media.video.unwrap();
        assert_eq!((video.width, video.height, video.fps), (1280, 720, 25));
        assert_eq!(video.input, VideoInput::Pattern);
        assert_eq!(media.ice_servers.len(), 2);
        assert_eq!(media.ice_servers[1].username, "u");
        assert!(media_options(&MediaArgs::default())
            .unwrap()
            .video
            .is_none());
        let echo = MediaArgs {
            audio: "echo".into(),
            video: "echo".into(),
            ..MediaArgs::default()
        };
        assert_eq!(
            media_options(&MediaArgs::default()).unwrap().processing,
            ProcessingOptions::default()
        );
        for (flag, expected) in [
            ("none", ProcessingOptions::OFF),
            (
                "aec, ns",
                ProcessingOptions {
                    gain_control: false,
                    ..ProcessingOptions::default()
                },
            ),
        ] {
            let args = MediaArgs {
                voice_processing: flag.into(),
                ..MediaArgs::default()
            };
            assert_eq!(media_options(&args).unwrap().processing, expected, "{flag}");
        }
        let bad = MediaArgs {
            voice_processing: "aec,beamforming".into(),
            ..MediaArgs::default()
        };
        assert!(media_options(&bad).unwrap_err().contains("beamforming"));
        let echo = media_options(&echo).unwrap();
        assert_eq!(echo.input, AudioInput::Echo);
        assert_eq!(echo.video.unwrap().input, VideoInput::Echo);
        for (flag, index) in [("camera", None), ("camera:2", Some(2))] {
            let args = MediaArgs {
                video: flag.into(),
                ..MediaArgs::default()
            };
            let video = media_options(&args).unwrap().video.unwrap();
            assert_eq!(video.input, VideoInput::Camera { index }, "{flag}");
        }
        for bad in [
            MediaArgs {
                media: Some("sdp".into()),
                ..MediaArgs::default()
            },
            MediaArgs {
                video: "/no/such.y4m".into(),
                ..MediaArgs::default()
            },
            MediaArgs {
                video: "camera:front".into(),
                ..MediaArgs::default()
            },
            MediaArgs {
                video: "pattern".into(),
                video_size: "640".into(),
                ..MediaArgs::default()
            },
            MediaArgs {
                video: "pattern".into(),
                fps: 0,
                ..MediaArgs::default()
            },
            MediaArgs {
                stun: Some("127.0.0.1:3478".into()),
                ..MediaArgs::default()
            },
            MediaArgs {
                turn: Some("turn:127.0.0.1".into()),
                ..MediaArgs::default()
            },
        ] {
            assert!(media_options(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relay_only_needs_a_turn_server_from_the_flags_or_the_account() {
        let relay_only = MediaArgs {
            media: Some("webrtc".into()),
            relay_only: true,
            ..MediaArgs::default()
        };
        assert!(media_options(&relay_only).is_err());
        let with_turn = MediaArgs {
            turn: Some("turn:127.0.0.1:3478?transport=udp".into()),
            turn_user: Some("u".into()),
            turn_password: Some("p".into()),
            ..relay_only.clone()
        };
        assert!(media_options(&with_turn).unwrap().relay_only);
        assert!(!media_options(&MediaArgs::default()).unwrap().relay_only);
        let account: Account = toml::from_str(
            "user = 'sip:alice@example.org'\n\
             turn = 'turn:127.0.0.1:3478'\n\
             turn_user = 'u'\n\
             turn_password = 'p'\n",
        )
        .unwrap();
        let media = media_options_for(&relay_only, Some(&account)).unwrap();
        assert!(media.relay_only);
        assert_eq!(media.ice_servers.len(), 1);
    }

    #[test]
    fn the_account_fills_in_what_the_flags_leave_out() {
        let account: Account = toml::from_str(
            "user = 'sip:alice@example.org'\n\
             media = 'webrtc'\n\
             srtp = 'mandatory'\n\
             stun = 'stun:127.0.0.1:3478'\n",
        )
        .unwrap();
        let media = media_options_for(&MediaArgs::default(), Some(&account)).unwrap();
        assert_eq!(media.profile, MediaProfile::WebRtc);
        assert_eq!(media.policy.srtp, SrtpPolicy::Mandatory);
        assert_eq!(media.ice_servers.len(), 1);
        let flags = MediaArgs {
            media: Some("classic".into()),
            ..MediaArgs::default()
        };
        let media = media_options_for(&flags, Some(&account)).unwrap();
        assert_eq!(media.profile, MediaProfile::Classic);
    }
}
