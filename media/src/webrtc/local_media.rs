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
use rtc::rtp_transceiver::RTCRtpSenderId;
use tokio::sync::mpsc as async_mpsc;
use tracing::info;

use super::audio_thread::{AudioThread, AudioThreadConfig};
use super::peer::{h264_formats, negotiated_audio_codec};
use super::sdp_check::{peer_video_level, video_formats_in_use};
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
            let video = self
                .video_track
                .as_ref()
                .is_some_and(|v| std::ptr::eq(v, local));
            if video {
                self.offer_both_h264_modes(sender.id()).await?;
            }
            *lock(&local.sender) = Some(sender);
        }
        Ok(())
    }

    /// A transceiver made for our track offers only the track's codec (H.264 mode 1); ours
    /// offers mode 0 as well, for peers that take only that. (A transceiver made for a peer's
    /// offer keeps the formats of the offer that we have, in its order.)
    async fn offer_both_h264_modes(&self, sender: RTCRtpSenderId) -> Result<(), WebRtcError> {
        for transceiver in self.pc.get_transceivers().await {
            if transceiver
                .sender()
                .await?
                .is_some_and(|s| s.id() == sender)
                && transceiver.mid().await?.is_none()
            {
                transceiver.set_codec_preferences(h264_formats()).await?;
            }
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
            receive_payload_type: None,
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
            (
                Arc::clone(&self.shared.connected),
                self.track_sending(&self.audio_track),
            ),
            false,
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
        // Units encoded elsewhere (a conference's mosaic) are cut for the mode chosen here by
        // the video thread (`EncodedFeed::set_single_nal`).
        let Some((payload_type, packetization)) = h264_format(parameters) else {
            // The peer declined video (port 0) or has no H.264 we take: audio only.
            info!("no H.264 negotiated: the call stays audio-only");
            return Ok(());
        };
        let level = peer_video_level(peer_sdp, payload_type);
        *lock(&self.video_level) = Some((payload_type, level));
        info!(payload_type, ?packetization, ?level, "WebRTC video starts");
        let (outgoing, outgoing_rx) = async_mpsc::unbounded_channel();
        let (feedback, feedback_rx) = async_mpsc::unbounded_channel();
        let thread = VideoThread::start(
            VideoThreadConfig {
                max_bitrate: video.max_bitrate,
                ssrc: local.ssrc,
                payload_type,
                packetization,
                connected: Arc::clone(&self.shared.connected),
                sending: self.track_sending(local),
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
            (
                Arc::clone(&self.shared.connected),
                self.track_sending(local),
            ),
            true,
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

impl WebRtcSession {
    /// After an exchange: the level the peer's description `remote` names for the payload type
    /// our pictures go in, when it is not the one they are fitted to, goes to the video thread
    /// (a peer may lower or raise it in a re-INVITE).
    pub(super) fn follow_peer_level(&self, remote: &str) {
        let mut video_level = lock(&self.video_level);
        let (Some(route), Some((payload_type, level))) = (&self.video_route, video_level.as_mut())
        else {
            return;
        };
        // A description without our payload type in use (video refused) names no level.
        let in_use = video_formats_in_use(remote).any(|format| format == *payload_type);
        let named = peer_video_level(remote, *payload_type);
        if in_use && named != *level {
            info!(?named, was = ?*level, "the peer names another H.264 level");
            *level = named;
            route.deliver(VideoInput::Level(named));
        }
    }
}

/// The payload type negotiated for H.264 in packetization mode 1 (what forwarded streams
/// need), if any.
pub(super) fn h264_payload_type(parameters: &RTCRtpSendParameters) -> Option<u8> {
    h264_payload_type_in(parameters, PacketizationMode::NonInterleaved)
}

/// The H.264 our own picture goes out in: mode 1 when negotiated, else mode 0.
pub(super) fn h264_format(parameters: &RTCRtpSendParameters) -> Option<(u8, PacketizationMode)> {
    [
        PacketizationMode::NonInterleaved,
        PacketizationMode::SingleNalUnit,
    ]
    .into_iter()
    .find_map(|mode| Some((h264_payload_type_in(parameters, mode)?, mode)))
}

/// The payload type of H.264 in `mode`; a format without `packetization-mode` is mode 0
/// (RFC 6184 §8.1).
fn h264_payload_type_in(parameters: &RTCRtpSendParameters, mode: PacketizationMode) -> Option<u8> {
    let wanted = mode.fmtp_value().to_string();
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| {
            let named = c.rtp_codec.sdp_fmtp_line.split(';').find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("packetization-mode")
                    .then(|| value.trim())
            });
            c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_H264)
                && named.unwrap_or("0") == wanted
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

#[cfg(test)]
mod tests {
    use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;

    use super::*;
    use crate::webrtc::peer::{h264_codec, H264_MODE_0_FMTP};

    fn negotiated(codecs: &[(&str, u8)]) -> RTCRtpSendParameters {
        let mut parameters = RTCRtpSendParameters::default();
        parameters.rtp_parameters.codecs = codecs
            .iter()
            .map(|&(fmtp, payload_type)| RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    sdp_fmtp_line: fmtp.to_owned(),
                    ..h264_codec()
                },
                payload_type,
            })
            .collect();
        parameters
    }

    /// Our picture goes out in mode 1 when the peer takes it, whatever the order, else in mode
    /// 0; forwarded streams need mode 1; a mode we do not have gives no video.
    #[test]
    fn our_picture_takes_mode_1_else_mode_0() {
        let mode_1 = "profile-level-id=42e01f;packetization-mode=1";
        let both = negotiated(&[(H264_MODE_0_FMTP, 124), (mode_1, 98)]);
        assert_eq!(
            h264_format(&both),
            Some((98, PacketizationMode::NonInterleaved))
        );
        assert_eq!(h264_payload_type(&both), Some(98));
        let only_0 = negotiated(&[("packetization-mode = 0;profile-level-id=42e01f", 97)]);
        assert_eq!(
            h264_format(&only_0),
            Some((97, PacketizationMode::SingleNalUnit))
        );
        assert_eq!(h264_payload_type(&only_0), None);
        let interleaved = negotiated(&[("packetization-mode=2;profile-level-id=42e01f", 96)]);
        assert_eq!(h264_format(&interleaved), None);
        // "packetization-mode=10" is no mode we know, not mode 1.
        let odd = negotiated(&[("packetization-mode=10", 96)]);
        assert_eq!(h264_format(&odd), None);
        // Without the parameter a format is mode 0.
        let unnamed = negotiated(&[("profile-level-id=42e01f", 99)]);
        assert_eq!(
            h264_format(&unnamed),
            Some((99, PacketizationMode::SingleNalUnit))
        );
    }
}
