//! How `callisto call` and `callisto answer` print call updates: a sentence each, or one JSON
//! line each with `--json` (the final `call_ended` line carries the call's summary).

use std::time::Duration;

use serde_json::json;

use crate::engine::{
    refused_change_in_words, CallFailure, CallKey, CallSummary, CallUpdate, MediaProfile,
    VideoSummary,
};
use crate::register::Output;

fn ms(duration: Option<Duration>) -> Option<f64> {
    duration.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

/// Prints one call update as a sentence or as JSON lines.
pub(super) fn report(out: &Output, key: CallKey, update: &CallUpdate) {
    if out.json {
        for line in json_lines(key.0, update) {
            println!("{line}");
        }
        return;
    }
    print_sentence(key.0, update);
}

/// The JSON lines of one call update: none for what only a window shows, one for most, two
/// for the end (the `ended` state, then the `call_ended` summary).
fn json_lines(call: u64, update: &CallUpdate) -> Vec<serde_json::Value> {
    let line = match update {
        CallUpdate::Incoming {
            from,
            display_name,
            to,
        } => {
            json!({"event": "incoming", "call": call, "from": from, "display_name": display_name, "to": to})
        }
        // For a window; a terminal has nothing to show.
        CallUpdate::Controls(_) | CallUpdate::Statistics(_) => return Vec::new(),
        CallUpdate::Ringing { early_media } => {
            json!({"event": "ringing", "call": call, "early_media": early_media})
        }
        CallUpdate::Answered {
            codec,
            srtp,
            path,
            video,
        } => {
            json!({"event": "answered", "call": call, "codec": codec, "srtp": srtp, "media": path_name(*path), "video": video})
        }
        CallUpdate::Held { by_remote } => {
            json!({"event": "held", "call": call, "by": by(*by_remote)})
        }
        CallUpdate::Resumed { by_remote } => {
            json!({"event": "resumed", "call": call, "by": by(*by_remote)})
        }
        CallUpdate::ChangeRefused { code, warning } => {
            json!({"event": "change_refused", "call": call, "code": code, "warning": warning})
        }
        CallUpdate::Merged => json!({"event": "merged", "call": call}),
        CallUpdate::HostsPicture => json!({"event": "host_picture", "call": call}),
        CallUpdate::Dtmf { digit } => {
            json!({"event": "dtmf", "call": call, "digit": digit.to_string()})
        }
        CallUpdate::AudioDevice { message } => {
            json!({"event": "audio_device", "call": call, "message": message})
        }
        CallUpdate::TransferRequested { target, new_call } => {
            json!({"event": "transfer_requested", "call": call, "target": target, "new_call": new_call.0})
        }
        CallUpdate::TransferProgress {
            code,
            reason,
            finished,
        } => {
            json!({"event": "transfer", "call": call, "code": code, "reason": reason, "finished": finished})
        }
        CallUpdate::Roster { info } => {
            let participants: Option<Vec<_>> = info.as_ref().map(|info| {
                info.users
                    .iter()
                    .map(|u| json!({"name": u.name(), "uri": u.entity, "status": u.status}))
                    .collect()
            });
            json!({"event": "roster", "call": call, "participants": participants})
        }
        CallUpdate::CameraUnavailable { reason } => {
            json!({"event": "camera_unavailable", "call": call, "reason": reason, "sending": "placeholder"})
        }
        CallUpdate::Failed {
            code,
            reason,
            cause,
            warning,
        } => {
            json!({"event": "call_failed", "call": call, "code": code, "reason": reason, "cause": cause.to_string(), "warning": warning})
        }
        CallUpdate::Ended {
            by_remote,
            reason,
            summary,
        } => {
            return vec![
                json!({"event": "ended", "call": call, "by": by(*by_remote), "reason": reason}),
                summary_json(call, *by_remote, reason, summary),
            ]
        }
    };
    vec![line]
}

/// Prints one update of call `call` as a sentence, if a terminal has something to show of it.
fn print_sentence(call: u64, update: &CallUpdate) {
    match update {
        CallUpdate::Incoming {
            from, display_name, ..
        } => match display_name {
            Some(name) => println!("Incoming call from {name} <{from}>."),
            None => println!("Incoming call from {from}."),
        },
        CallUpdate::Controls(_) | CallUpdate::Statistics(_) => {}
        CallUpdate::Ringing { early_media: false } => println!("Ringing."),
        CallUpdate::Ringing { early_media: true } => println!("Ringing, with early media."),
        CallUpdate::Answered {
            codec,
            srtp,
            path,
            video,
        } => {
            let secure = if *srtp { ", encrypted (SRTP)" } else { "" };
            let video = if *video { " with video" } else { "" };
            println!(
                "Call established ({} path): {codec}{secure}{video}.",
                path_name(*path)
            )
        }
        CallUpdate::Held { by_remote: true } => println!("The other side put the call on hold."),
        CallUpdate::Held { by_remote: false } => println!("Call on hold."),
        CallUpdate::Resumed { by_remote: true } => println!("The other side resumed the call."),
        CallUpdate::Resumed { by_remote: false } => println!("Call resumed."),
        CallUpdate::ChangeRefused { code, warning } => println!(
            "Call {call}: {}; it goes on as it was.",
            refused_change_in_words(*code, warning.as_deref())
        ),
        CallUpdate::Merged => println!("Call {call} is in the conference."),
        CallUpdate::HostsPicture => {
            println!("Call {call}'s picture of us is our picture in the conference.")
        }
        CallUpdate::Dtmf { digit } => println!("Key pressed: {digit}"),
        CallUpdate::AudioDevice { message } => println!("Audio device: {message}."),
        CallUpdate::Roster { info: Some(info) } => {
            let names: Vec<String> = info.users.iter().map(|u| u.name()).collect();
            println!("In the conference: {}.", names.join(", "))
        }
        CallUpdate::Roster { info: None } => println!("The conference's roster is no longer sent."),
        CallUpdate::CameraUnavailable { reason } => {
            eprintln!("Camera: {reason}; sending a placeholder picture instead.")
        }
        CallUpdate::TransferRequested { target, .. } => {
            println!("The other side transfers the call to {target}; calling.")
        }
        CallUpdate::TransferProgress {
            code,
            reason,
            finished,
        } => {
            let state = if !finished {
                "in progress"
            } else if (200..300).contains(code) {
                "done"
            } else {
                "failed"
            };
            println!("Transfer {state}: {code} {reason}.")
        }
        CallUpdate::Failed {
            code,
            reason,
            cause,
            warning,
        } => println!(
            "{}",
            failure_sentence(*code, reason, cause, warning.as_deref())
        ),
        CallUpdate::Ended {
            by_remote,
            reason,
            summary,
        } => {
            let who = if *by_remote { "the other side" } else { "you" };
            println!(
                "Call ended by {who} after {:.1} s ({reason}).",
                summary.duration.as_secs_f64()
            );
            if let Some(audio) = &summary.audio {
                println!(
                    "Audio: {}{}, {} packets sent, {} received, {} lost, jitter {:.1} ms{}.",
                    audio.codec,
                    if audio.srtp { " with SRTP" } else { "" },
                    audio.tx_packets,
                    audio.rx_packets,
                    audio.lost,
                    audio.jitter_ms,
                    audio
                        .rtt_ms
                        .map(|r| format!(", round trip {r:.1} ms"))
                        .unwrap_or_default()
                );
            }
        }
    }
}

/// A failed call in a sentence: what it means, the status line, and what the refusal's
/// `Warning` said; a failure on our side says what went wrong.
fn failure_sentence(
    code: Option<u16>,
    reason: &str,
    cause: &CallFailure,
    warning: Option<&str>,
) -> String {
    let status = code.map(|c| format!(" ({c} {reason})")).unwrap_or_default();
    let warning = warning
        .map(|w| format!(" The other side says: {}.", w.trim_end_matches('.')))
        .unwrap_or_default();
    match (cause, code) {
        (CallFailure::Local, None) if !reason.is_empty() => {
            format!("The call failed: {}.", reason.trim_end_matches('.'))
        }
        _ => format!("The call failed: {cause}{status}.{warning}"),
    }
}

fn path_name(path: MediaProfile) -> &'static str {
    match path {
        MediaProfile::Classic => "classic",
        MediaProfile::WebRtc => "webrtc",
    }
}

fn by(remote: bool) -> &'static str {
    if remote {
        "remote"
    } else {
        "local"
    }
}

fn summary_json(
    call: u64,
    by_remote: bool,
    reason: &str,
    summary: &CallSummary,
) -> serde_json::Value {
    let audio = summary.audio.as_ref().map(|a| {
        json!({
            "codec": a.codec,
            "srtp": a.srtp,
            "tx_packets": a.tx_packets,
            "rx_packets": a.rx_packets,
            "lost": a.lost,
            "jitter_ms": (a.jitter_ms * 100.0).round() / 100.0,
            "rtt_ms": a.rtt_ms.map(|r| (r * 100.0).round() / 100.0),
            "discarded": a.discarded,
            "concealed_frames": a.concealed_frames,
        })
    });
    json!({
        "event": "call_ended",
        "call": call,
        "by": by(by_remote),
        "reason": reason,
        "duration_s": (summary.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        "setup_ms": ms(summary.setup),
        "first_rtp_ms": ms(summary.first_rtp),
        "audio": audio,
        "video": summary.video.as_ref().map(video_json),
        "ice": summary.ice.as_ref().map(|ice| json!({
            "local": ice.local.to_string(),
            "remote": ice.remote.to_string(),
            "local_type": ice.local_kind,
            "remote_type": ice.remote_kind,
        })),
    })
}

fn video_json(video: &VideoSummary) -> serde_json::Value {
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let resolution = |(w, h): (u32, u32)| format!("{w}x{h}");
    json!({
        "codec": video.codec,
        "resolution": resolution(video.send_resolution),
        "receive_resolution": video.receive_resolution.map(resolution),
        "frames_sent": video.frames_sent,
        "frames_decoded": video.frames_decoded,
        "fps": round(video.fps),
        "bitrate_kbps": round(video.send_kbps),
        "receive_kbps": round(video.receive_kbps),
        "keyframe_requests_sent": video.keyframe_requests_sent,
        "keyframe_requests_received": video.keyframe_requests_received,
        "lost": video.lost,
        "nacked": video.nacked,
        "payloads_refused": video.payloads_refused,
        "first_frame_ms": ms(video.first_frame),
        "streams": video
            .streams
            .iter()
            .map(|(name, frames)| json!({"name": name, "frames_decoded": frames}))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AudioSummary;
    use callisto_signaling::call::FailureCause;

    #[test]
    fn a_failure_is_told_with_what_the_other_side_said() {
        let not_acceptable = CallFailure::Remote(FailureCause::NotAcceptable);
        assert_eq!(
            failure_sentence(
                Some(488),
                "Not Acceptable Here",
                &not_acceptable,
                Some("no codec in common")
            ),
            "The call failed: not acceptable (488 Not Acceptable Here). \
             The other side says: no codec in common."
        );
        let busy = CallFailure::Remote(FailureCause::Busy);
        assert_eq!(
            failure_sentence(Some(486), "Busy Here", &busy, None),
            "The call failed: busy (486 Busy Here)."
        );
        assert_eq!(
            failure_sentence(
                None,
                "cannot record to /x/y.wav: no such directory",
                &CallFailure::Local,
                None
            ),
            "The call failed: cannot record to /x/y.wav: no such directory."
        );
        assert_eq!(
            failure_sentence(None, "", &CallFailure::Local, None),
            "The call failed: local error."
        );
    }

    /// The `call_ended` line of an audio call carries every figure the summary names, rounded
    /// for reading; a round trip not yet measured is `null`.
    #[test]
    fn the_summary_line_carries_every_audio_figure() {
        let audio = AudioSummary {
            codec: "opus".into(),
            srtp: true,
            tx_packets: 501,
            rx_packets: 498,
            lost: 2,
            jitter_ms: 1.23456,
            rtt_ms: Some(0.98765),
            discarded: 1,
            concealed_frames: 3,
            tx_bytes: 40_000,
            rx_bytes: 39_000,
        };
        let summary = CallSummary {
            duration: Duration::from_millis(10_004),
            setup: Some(Duration::from_micros(4_321)),
            first_rtp: Some(Duration::from_micros(6_789)),
            audio: Some(audio.clone()),
            ..CallSummary::default()
        };
        let line = summary_json(7, true, "bye", &summary);
        assert_eq!(
            line,
            json!({
                "event": "call_ended",
                "call": 7,
                "by": "remote",
                "reason": "bye",
                "duration_s": 10.004,
                "setup_ms": 4.321,
                "first_rtp_ms": 6.789,
                "audio": {
                    "codec": "opus",
                    "srtp": true,
                    "tx_packets": 501,
                    "rx_packets": 498,
                    "lost": 2,
                    "jitter_ms": 1.23,
                    "rtt_ms": 0.99,
                    "discarded": 1,
                    "concealed_frames": 3,
                },
                "video": null,
                "ice": null,
            })
        );
        let unmeasured = CallSummary {
            audio: Some(AudioSummary {
                rtt_ms: None,
                ..audio
            }),
            ..summary
        };
        let line = summary_json(7, false, "bye", &unmeasured);
        assert_eq!(line["audio"]["rtt_ms"], serde_json::Value::Null);
        assert_eq!(line["by"], "local");
    }

    /// A call's end is told twice: the `ended` state, like `held` or `answered`, and then the
    /// `call_ended` summary as the last line; what only a window shows gives no line.
    #[test]
    fn the_end_is_a_state_and_then_the_summary() {
        let ended = CallUpdate::Ended {
            by_remote: true,
            reason: "the other side hung up".into(),
            summary: Box::default(),
        };
        let lines = json_lines(3, &ended);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            json!({"event": "ended", "call": 3, "by": "remote", "reason": "the other side hung up"})
        );
        assert_eq!(lines[1]["event"], "call_ended");
        assert_eq!(lines[1]["reason"], "the other side hung up");
        let held = json_lines(3, &CallUpdate::Held { by_remote: false });
        assert_eq!(held, [json!({"event": "held", "call": 3, "by": "local"})]);
        assert!(json_lines(3, &CallUpdate::Statistics(Default::default())).is_empty());
    }
}
