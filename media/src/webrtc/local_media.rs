//! Our tracks and the start of media once negotiation is done: the negotiated codecs are read
//! back from the senders, and the media threads and their tokio tasks are started.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ::webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use ::webrtc::media_stream::track_local::TrackLocal;
use ::webrtc::rtp_transceiver::RtpSender;
use rand::Rng;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpSendParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc as async_mpsc;
use tracing::info;

use super::audio_thread::{AudioThread, AudioThreadConfig};
use super::peer::negotiated_audio_codec;
use super::sdp_check::peer_video_level;
use super::session::{lock, PendingMedia, WebRtcSession, WebRtcVideoMedia};
use super::tasks::{self, VideoFeedback};
use super::{WebRtcError, WebRtcEvent};
use crate::rtp::RtpPacket;
use crate::session::{AudioStreamConfig, SessionOptions};
use crate::video::h264::PacketizationMode;
use crate::video::stream_thread::{
    VideoChannels, VideoInput, VideoOutput, VideoThread, VideoThreadConfig, VideoThreadError,
};

/// The description of a track of ours: in media stream `stream_id`, sending one stream with
/// `ssrc` in `codec`.
pub fn media_track(
    stream_id: &str,
    track_id: &str,
    label: &str,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    ssrc: u32,
) -> MediaStreamTrack {
    MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.to_owned(),
        label.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}

/// One of our tracks: its SSRC (announced in our SDP), the track, and its sender once added.
pub(super) struct LocalTrack {
    pub ssrc: u32,
    pub track: Arc<TrackLocalStaticRTP>,
    pub sender: Mutex<Option<Arc<dyn RtpSender>>>,
}

impl LocalTrack {
    /// A track of `kind` in media stream `stream_id` with a random SSRC, offering `codec`.
    pub(super) fn new(
        stream_id: &str,
        label: &str,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
    ) -> Self {
        let ssrc = rand::thread_rng().gen::<u32>() | 1;
        let track = Arc::new(TrackLocalStaticRTP::new(media_track(
            stream_id,
            &format!("{label}-{ssrc:08x}"),
            label,
            kind,
            codec,
            ssrc,
        )));
        LocalTrack {
            ssrc,
            track,
            sender: Mutex::new(None),
        }
    }

    pub(super) fn as_track_local(&self) -> Arc<dyn TrackLocal> {
        Arc::clone(&self.track) as Arc<dyn TrackLocal>
    }

    /// The negotiated send parameters.
    async fn parameters(&self) -> Result<RTCRtpSendParameters, WebRtcError> {
        let sender = lock(&self.sender)
            .clone()
            .ok_or(WebRtcError::Negotiation("track not added"))?;
        Ok(sender.get_parameters().await?)
    }
}

impl WebRtcSession {
    /// Whether `local` is sent now (always, before it has a sender).
    fn track_sending(&self, local: &LocalTrack) -> Arc<AtomicBool> {
        match lock(&local.sender).clone() {
            Some(sender) => self.sending_flag(&sender),
            None => Arc::new(AtomicBool::new(true)),
        }
    }

    /// Adds our tracks to the peer connection (once).
    pub(super) async fn add_tracks(&self) -> Result<(), WebRtcError> {
        for local in std::iter::once(&self.audio_track).chain(self.video_track.as_ref()) {
            if lock(&local.sender).is_some() {
                continue;
            }
            let sender = self.pc.add_track(local.as_track_local()).await?;
            *lock(&local.sender) = Some(sender);
        }
        Ok(())
    }

    /// Starts the media threads on the negotiated codecs, and the tasks around them. Video
    /// starts only when the remote description has an active video m-line (`remote_video`).
    pub(super) async fn start_media(&self, remote_video: bool) -> Result<(), WebRtcError> {
        let audio_parameters = self.audio_track.parameters().await?;
        let video_parameters = match &self.video_track {
            Some(track) if remote_video => track.parameters().await.ok(),
            Some(_) => {
                info!("the peer declined video: the call is audio-only");
                None
            }
            None => None,
        };
        let Some(pending) = lock(&self.pending).take() else {
            return Err(WebRtcError::Negotiation("media already started"));
        };
        let PendingMedia {
            media,
            audio_inputs,
            video_inputs,
        } = pending;
        self.start_audio(
            &audio_parameters,
            media.audio_source,
            media.audio_sink,
            audio_inputs,
        )?;
        if let (Some(parameters), Some(video), Some(inputs)) =
            (video_parameters, media.video, video_inputs)
        {
            let remote = self.pc.remote_description().await;
            let peer_sdp = remote.as_ref().map_or("", |d| d.sdp.as_str());
            self.start_video(&parameters, peer_sdp, video, inputs)?;
        }
        Ok(())
    }

    fn start_audio(
        &self,
        parameters: &RTCRtpSendParameters,
        source: Box<dyn crate::audio::AudioSource>,
        sink: Box<dyn crate::audio::AudioSink>,
        inputs: std::sync::mpsc::Receiver<super::audio_thread::AudioInput>,
    ) -> Result<(), WebRtcError> {
        let (codec, payload_type) = parameters
            .rtp_parameters
            .codecs
            .iter()
            .find_map(|c| {
                negotiated_audio_codec(&c.rtp_codec.mime_type).map(|k| (k, c.payload_type))
            })
            .ok_or(WebRtcError::NoCommonCodec("audio"))?;
        let stream = AudioStreamConfig {
            codec,
            payload_type,
            encoder: self.config.audio.encoder,
            ptime_ms: self.config.audio.ptime_ms,
            telephone_event: None,
        };
        info!(
            codec = codec.encoding_name(),
            payload_type, "WebRTC audio starts"
        );
        let (outgoing, outgoing_rx) = async_mpsc::unbounded_channel();
        let on_event = Arc::clone(&self.shared.on_event);
        let thread = AudioThread::start(
            AudioThreadConfig {
                stream,
                ssrc: self.audio_track.ssrc,
                options: SessionOptions::default(),
                media_timeout: self.config.audio.media_timeout,
            },
            source,
            sink,
            (self.audio_inbox.clone(), inputs),
            outgoing,
            Box::new(move |event| on_event(WebRtcEvent::Audio(event))),
        )?;
        *lock(&self.audio) = Some(thread);
        self.spawn(tasks::write_rtp(
            outgoing_rx,
            self.audio_track.as_track_local(),
            Arc::clone(&self.shared.connected),
            self.track_sending(&self.audio_track),
        ));
        Ok(())
    }

    /// Starts the video thread on the H.264 `parameters` negotiated, within the level the
    /// peer's description (`peer_sdp`) names for it.
    fn start_video(
        &self,
        parameters: &RTCRtpSendParameters,
        peer_sdp: &str,
        media: WebRtcVideoMedia,
        inputs: std::sync::mpsc::Receiver<VideoInput>,
    ) -> Result<(), WebRtcError> {
        let (Some(local), Some(route), Some(video)) =
            (&self.video_track, &self.video_route, self.config.video)
        else {
            return Ok(());
        };
        let Some(payload_type) = h264_payload_type(parameters) else {
            // The peer declined video (port 0) or has no H.264 mode 1: audio only.
            info!("no H.264 negotiated: the call stays audio-only");
            return Ok(());
        };
        let level = peer_video_level(peer_sdp, payload_type);
        info!(payload_type, ?level, "WebRTC video starts");
        let (outgoing, outgoing_rx) = async_mpsc::unbounded_channel();
        let (feedback, feedback_rx) = async_mpsc::unbounded_channel();
        let thread = VideoThread::start(
            VideoThreadConfig {
                max_bitrate: video.max_bitrate,
                ssrc: local.ssrc,
                payload_type,
                packetization: PacketizationMode::NonInterleaved,
                connected: Arc::clone(&self.shared.connected),
                controller: Some(self.controller.clone()),
                nack: true,
                level,
            },
            Some(media.source),
            media.sink,
            VideoChannels {
                inbox: (route.inbox.clone(), inputs),
                output: Box::new(TaskOutput { outgoing, feedback }),
            },
        )
        .map_err(|e| match e {
            VideoThreadError::Codec(e) => WebRtcError::Video(e),
            VideoThreadError::Io(e) => WebRtcError::Io(e),
        })?;
        *lock(&route.thread) = thread.thread();
        *lock(&self.video) = Some(thread);
        self.spawn(tasks::write_rtp(
            outgoing_rx,
            local.as_track_local(),
            Arc::clone(&self.shared.connected),
            self.track_sending(local),
        ));
        self.spawn(tasks::write_feedback(
            feedback_rx,
            route.clone(),
            local.ssrc,
        ));
        let (requests, closed) = (route.clone(), Arc::clone(&self.shared.closed));
        self.spawn(tasks::read_keyframe_requests(
            local.as_track_local(),
            move || closed.load(Ordering::Acquire),
            move || requests.deliver(VideoInput::KeyframeRequested),
        ));
        Ok(())
    }
}

/// The payload type negotiated for our H.264 (packetization mode 1), if any.
pub(super) fn h264_payload_type(parameters: &RTCRtpSendParameters) -> Option<u8> {
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| {
            c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_H264)
                && c.rtp_codec.sdp_fmtp_line.contains("packetization-mode=1")
        })
        .map(|c| c.payload_type)
}

/// The video thread's output on the WebRTC path: channels to the tasks that write RTP to the
/// peer connection's track and RTCP feedback (PLI, NACK) to its RTCP.
pub(super) struct TaskOutput {
    pub(super) outgoing: async_mpsc::UnboundedSender<RtpPacket>,
    pub(super) feedback: async_mpsc::UnboundedSender<VideoFeedback>,
}

impl VideoOutput for TaskOutput {
    fn send_rtp(&mut self, packet: RtpPacket) {
        // The peer connection's tasks may be gone at the very end; nothing to do then.
        let _ = self.outgoing.send(packet);
    }

    fn send_pli(&mut self) {
        let _ = self.feedback.send(VideoFeedback::Pli);
    }

    fn send_nack(&mut self, sequences: Vec<u16>) {
        let _ = self.feedback.send(VideoFeedback::Nack(sequences));
    }
}
