//! What the engine tells the application about its calls.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callisto_media::session::AudioStats;
use callisto_media::video::VideoStats;

use callisto_signaling::call::FailureCause;
use callisto_signaling::conference_info::ConferenceInfo;

use super::{CallControls, CallKey, MediaProfile};

/// Why a call did not connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// The network or the other side refused or did not answer.
    Remote(FailureCause),
    /// Something on our side: no RTP port, no offer, a media session that did not start.
    Local,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Remote(cause) => cause.fmt(f),
            CallFailure::Local => f.write_str("local error"),
        }
    }
}

/// Something that happened to a call, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum CallUpdate {
    /// A call arrived and rings; answer it with `Command::Answer`.
    Incoming {
        from: String,
        display_name: Option<String>,
        to: String,
    },
    /// The call's switches (mute, camera) and pictures (self-view, remote video), for a
    /// window; sent once, right after the call is placed or announced.
    Controls(CallControls),
    /// The callee's phone rings; with `early_media`, its media (a ringback tone, an
    /// announcement) already plays before the answer.
    Ringing { early_media: bool },
    /// The call is up and media flows: `codec` for the audio, SRTP (SDES or DTLS) or not, on
    /// which path, with video or not.
    Answered {
        codec: String,
        srtp: bool,
        path: MediaProfile,
        video: bool,
    },
    /// The figures of an established call so far, once a second (`duration` is how long it
    /// has been up).
    Statistics(Box<CallSummary>),
    /// The call was put on hold (by the other side when `by_remote`).
    Held { by_remote: bool },
    /// The call was taken off hold.
    Resumed { by_remote: bool },
    /// The other side refused a change to the call we offered (hold, resume, video, a
    /// conference's streams, an offer restating the call): the call goes on as it was. `code`
    /// is the refusal's status (503 also when our request could not be sent, as RFC 3261
    /// §8.1.3.1 has it), `warning` its `Warning` in words. An offer the engine makes on its
    /// own and again after each refusal (a restated session, a conference's streams) is
    /// reported refused once until an offer of ours is answered.
    ChangeRefused { code: u16, warning: Option<String> },
    /// The call was merged into the conference this app hosts: its audio is mixed with the
    /// other merged calls' and ours.
    Merged,
    /// The call's input — the camera, with the call's self-view and camera switch — became
    /// the host's picture in the conference's mosaic, and stays it when the call ends: the
    /// conference's self-view and camera are this call's.
    HostsPicture,
    /// The other side pressed a key.
    Dtmf { digit: char },
    /// A sound device of the call could not be opened, stopped, or was replaced by the
    /// default one; the call goes on (with silence or without playback when no device works).
    AudioDevice { message: String },
    /// The other side asked us to transfer the call (REFER): `new_call` is the call to
    /// `target`, placed now; its own updates follow under its key. Once it is answered this
    /// call ends.
    TransferRequested { target: String, new_call: CallKey },
    /// How the transfer we asked for is going: the target's status as the other side reports
    /// it. A final 2xx ends this call.
    TransferProgress {
        code: u16,
        reason: String,
        finished: bool,
    },
    /// The other side hosts the conference this call is in, and these are the people in it
    /// now (RFC 4575, its host and us among them), each time that changes; `None` when it no
    /// longer tells (the conference ended, the call goes on).
    Roster { info: Option<ConferenceInfo> },
    /// The camera the call was to show cannot be used (`reason`: "no camera found", "the
    /// camera is in use by another program"…); the call sends a placeholder picture instead.
    CameraUnavailable { reason: String },
    /// The call did not connect.
    Failed {
        code: Option<u16>,
        reason: String,
        cause: CallFailure,
        /// Why, in the words of the refusal's `Warning` header, when it had one.
        warning: Option<String>,
    },
    /// The call is over.
    Ended {
        by_remote: bool,
        reason: String,
        summary: Box<CallSummary>,
    },
}

/// A `ChangeRefused` in words: "the other side refused the change (488: no codec in common)".
pub fn refused_change_in_words(code: u16, warning: Option<&str>) -> String {
    let why = warning.map(|w| format!(": {w}")).unwrap_or_default();
    format!("the other side refused the change ({code}{why})")
}

impl CallUpdate {
    /// `Held` or `Resumed`.
    pub fn hold_change(held: bool, by_remote: bool) -> Self {
        if held {
            CallUpdate::Held { by_remote }
        } else {
            CallUpdate::Resumed { by_remote }
        }
    }
}

/// What a finished call measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallSummary {
    /// From the moment the call was up to its end.
    pub duration: Duration,
    /// From the INVITE (sent or received) to the call being up.
    pub setup: Option<Duration>,
    /// From the INVITE (sent or received) to the first RTP packet from the other side.
    pub first_rtp: Option<Duration>,
    pub audio: Option<AudioSummary>,
    pub video: Option<VideoSummary>,
    /// The ICE path the call's media took (WebRTC path).
    pub ice: Option<IceSummary>,
}

impl CallSummary {
    /// The figures of a call placed (or received) at `started` and up since `established`,
    /// as of `now`, from what its streams measured.
    pub(super) fn measured(
        started: Instant,
        established: Option<Instant>,
        now: Instant,
        audio: Option<&AudioStats>,
        video: Option<&VideoStats>,
        ice: Option<IceSummary>,
    ) -> CallSummary {
        CallSummary {
            duration: established.map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
            setup: established.map(|at| at.saturating_duration_since(started)),
            first_rtp: audio
                .and_then(|s| s.first_rtp_received_at)
                .map(|at| at.saturating_duration_since(started)),
            audio: audio.map(AudioSummary::from),
            video: video.map(|video| VideoSummary::from_stats(video, started)),
            ice,
        }
    }
}

/// The selected ICE candidate pair at the end of a WebRTC call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceSummary {
    /// Our end: a local address, or the TURN server's relay address for a relay candidate.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    /// The candidate types (`host`, `srflx`, `prflx`, `relay`) of both ends, when known.
    pub local_kind: Option<&'static str>,
    pub remote_kind: Option<&'static str>,
}

/// The video stream's figures at the end of a call (WebRTC path).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSummary {
    pub codec: String,
    /// The size of the frames we sent.
    pub send_resolution: (u32, u32),
    /// The size of the last frame we decoded.
    pub receive_resolution: Option<(u32, u32)>,
    pub frames_sent: u64,
    pub frames_decoded: u64,
    /// Decoded frames per second.
    pub fps: f64,
    pub send_kbps: f64,
    pub receive_kbps: f64,
    /// Keyframe requests (PLI/FIR) we sent and received.
    pub keyframe_requests_sent: u64,
    pub keyframe_requests_received: u64,
    pub lost: u64,
    /// NACKs we sent about the peer's video.
    pub nacked: u64,
    /// The peer's RTP payloads that were not H.264 as RFC 6184 packs it.
    pub payloads_refused: u64,
    /// From the INVITE (sent or received) to the first decoded frame.
    pub first_frame: Option<Duration>,
    /// The peer's further video streams still received (a conference sending each
    /// participant as a stream of its own): each one's name and frames decoded.
    pub streams: Vec<(String, u64)>,
}

impl VideoSummary {
    /// What the video stream measured; `first_frame` counts from `started` (the INVITE).
    pub(super) fn from_stats(video: &VideoStats, started: Instant) -> VideoSummary {
        VideoSummary {
            codec: video.codec.clone(),
            send_resolution: video.send_resolution,
            receive_resolution: video.receive_resolution,
            frames_sent: video.frames_sent,
            frames_decoded: video.frames_decoded,
            fps: video.decode_fps,
            send_kbps: video.send_bitrate_bps / 1000.0,
            receive_kbps: video.receive_bitrate_bps / 1000.0,
            keyframe_requests_sent: video.keyframe_requests_sent,
            keyframe_requests_received: video.keyframe_requests_received,
            lost: video.lost,
            nacked: video.nacks_sent,
            payloads_refused: video.payloads_refused,
            first_frame: video
                .first_frame_decoded_at
                .map(|at| at.saturating_duration_since(started)),
            streams: Vec::new(),
        }
    }
}

/// The audio stream's figures at the end of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSummary {
    pub codec: String,
    pub srtp: bool,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub lost: u64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    pub discarded: u64,
    pub concealed_frames: u64,
    /// RTP bytes sent so far.
    pub tx_bytes: u64,
    /// RTP bytes received so far (valid packets).
    pub rx_bytes: u64,
}

impl From<&AudioStats> for AudioSummary {
    fn from(stats: &AudioStats) -> Self {
        AudioSummary {
            codec: stats.codec.clone(),
            srtp: stats.srtp,
            tx_packets: stats.tx_packets,
            rx_packets: stats.rx_packets,
            lost: stats.lost,
            jitter_ms: stats.jitter_ms,
            rtt_ms: stats.rtt_ms,
            discarded: stats.discarded,
            concealed_frames: stats.concealed_frames,
            tx_bytes: stats.tx_bytes,
            rx_bytes: stats.rx_bytes,
        }
    }
}

/// A classic call's figures at `now` (`started`: its INVITE; `established`: when it was up),
/// with the further video streams it received.
pub(super) fn classic_summary(
    started: Instant,
    established: Option<Instant>,
    now: Instant,
    audio: Option<&AudioStats>,
    video: Option<&VideoStats>,
    further: Vec<(String, u64)>,
) -> CallSummary {
    let mut summary = CallSummary::measured(started, established, now, audio, video, None);
    if summary.video.is_none() && !further.is_empty() {
        // Further streams came while the call's own video did not run: an empty own stream.
        let none = VideoStats {
            codec: "H264".into(),
            ..VideoStats::default()
        };
        summary.video = Some(VideoSummary::from_stats(&none, started));
    }
    if let Some(video) = &mut summary.video {
        video.streams = further;
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classic_calls_further_streams_are_summed_up_with_or_without_its_own_video() {
        let started = Instant::now();
        let further = vec![("alice".to_string(), 90)];
        let own = VideoStats {
            codec: "H264".into(),
            frames_decoded: 120,
            ..VideoStats::default()
        };
        let with_own = classic_summary(started, None, started, None, Some(&own), further.clone());
        let video = with_own.video.expect("video");
        assert_eq!(
            (video.frames_decoded, video.streams),
            (120, further.clone())
        );

        let without = classic_summary(started, None, started, None, None, further.clone());
        let video = without.video.expect("the further streams are still told");
        assert_eq!((video.frames_decoded, video.streams), (0, further));

        assert!(
            classic_summary(started, None, started, None, None, Vec::new())
                .video
                .is_none()
        );
    }
}
