//! A classic call's video: the video RTP socket bound before the offer (its port goes into the
//! SDP's `m=video`), then the [`ClassicVideoSession`] started from the negotiated H.264 stream,
//! updated in place by re-INVITEs (hold, resume, new address), and stopped with the call.
//!
//! The peer's further video streams, when it sends several, are
//! [`FurtherStreams`](super::further_video::FurtherStreams), held here beside the call's own.
//!
//! Video never decides whether a call works: an offer or answer without video, or a video
//! stream that cannot start, leaves the call with its audio (and a warning in the log).

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use callisto_media::session::{
    ClassicVideoConfig, ClassicVideoSession, MediaDirection, SrtpKeys, StreamSockets, VideoUpdate,
};
use callisto_media::video::h264::{H264Level, PacketizationMode, ProfileLevelId};
use callisto_media::video::VideoStats;
use callisto_media::webrtc::{RemoteVideoStream, VideoTap};
use callisto_signaling::sdp::{
    FurtherVideo, LocalMedia, NegotiatedVideo, SessionDescription, VideoPolicy,
};

use super::classic_forwarding::ForwardSlots;
use super::further_video::FurtherStreams;
use super::media::{srtp_keys_of, CallControls, ConferenceSeat, MediaEvents, VideoOptions};
use super::webrtc::VideoReport;
use super::CallKey;

/// One classic call's video stream, from the bound socket to the stopped session.
pub(super) struct ClassicVideo {
    options: VideoOptions,
    controls: CallControls,
    /// Where we receive video, as our SDP says (RTCP multiplexed, else on `a=rtcp`, RTP + 1).
    pub(super) local: LocalMedia,
    /// What we offer and accept.
    pub(super) policy: VideoPolicy,
    sockets: Option<StreamSockets>,
    session: Option<ClassicVideoSession>,
    /// What the last offer/answer agreed for video, if anything.
    pub(super) negotiated: Option<NegotiatedVideo>,
    /// The running stream's packetization mode.
    packetization: Option<PacketizationMode>,
    /// The peer's further video streams; `None` when the call shows one stream only.
    further: Option<FurtherStreams>,
    /// The streams we forward to the peer, as a leg of a conference we host.
    pub(super) forwarded: ForwardSlots,
}

impl ClassicVideo {
    /// Binds the video RTP and RTCP sockets on `ip`.
    pub(super) fn bind(
        ip: IpAddr,
        options: VideoOptions,
        controls: CallControls,
    ) -> io::Result<ClassicVideo> {
        let sockets = StreamSockets::bind(ip)?;
        let policy = VideoPolicy {
            framerate: Some(options.fps),
            ..VideoPolicy::default()
        };
        let further = (!options.single_stream).then(|| {
            let sinks = super::webrtc::stream_tiles(&options, &controls);
            FurtherStreams::new(ip, sinks, options.max_bitrate)
        });
        Ok(ClassicVideo {
            further,
            forwarded: ForwardSlots::new(ip),
            local: LocalMedia {
                address: ip,
                rtp_port: sockets.rtp_port()?,
                rtcp_port: sockets.rtcp_port()?,
            },
            policy,
            options,
            controls,
            sockets: Some(sockets),
            session: None,
            negotiated: None,
            packetization: None,
        })
    }

    /// Starts the stream for `negotiated`, updates the running one, or — when the latest
    /// exchange has no video — makes the running one inactive. A stream started for a leg of
    /// a conference (`seat`) sends the mosaic.
    pub(super) fn apply(
        &mut self,
        negotiated: Option<&NegotiatedVideo>,
        seat: Option<&ConferenceSeat>,
        key: CallKey,
        events: &MediaEvents,
    ) -> Result<(), String> {
        self.negotiated = negotiated.cloned();
        let Some(negotiated) = negotiated else {
            if let Some(session) = &self.session {
                session.update(INACTIVE).map_err(|e| e.to_string())?;
            }
            return Ok(());
        };
        let srtp = srtp_keys_of(negotiated.srtp.as_ref())?;
        let direction = MediaDirection {
            send: negotiated.direction.sends(),
            receive: negotiated.direction.receives(),
        };
        if let Some(session) = &self.session {
            return session
                .update(update_of(negotiated, direction, srtp))
                .map_err(|e| e.to_string());
        }
        let packetization = packetization_of(negotiated)?;
        let StreamSockets {
            rtp: socket,
            rtcp: rtcp_socket,
        } = self
            .sockets
            .take()
            .ok_or_else(|| "the video RTP port is gone".to_string())?;
        let events = events.clone();
        let report: VideoReport = Arc::new(move |event| {
            let _ = events.send((key, event));
        });
        let leg = seat.map(|seat| (seat, key));
        let single_nal = packetization == PacketizationMode::SingleNalUnit;
        self.packetization = Some(packetization);
        let media =
            super::webrtc::video_media(&self.options, &self.controls, leg, single_nal, &report)?;
        let max_bitrate = self.options.max_bitrate;
        let config = ClassicVideoConfig {
            rtcp_socket,
            ..config_of(
                negotiated,
                socket,
                packetization,
                max_bitrate,
                direction,
                srtp,
                key,
            )
        };
        let session = ClassicVideoSession::start(config, media.source, media.sink)
            .map_err(|e| e.to_string())?;
        tracing::info!(
            payload_type = negotiated.payload_type,
            mode = negotiated.packetization_mode,
            "classic video starts"
        );
        self.session = Some(session);
        Ok(())
    }

    /// The ports an answer to `offer` may give the peer's new further video streams (none
    /// when the call shows one stream only).
    pub(super) fn further_ports(&mut self, offer: &SessionDescription) -> Vec<LocalMedia> {
        let Some(further) = &mut self.further else {
            return Vec::new();
        };
        further.ports(offer).unwrap_or_else(|error| {
            tracing::warn!(%error, "no socket for a further video stream");
            Vec::new()
        })
    }

    /// Starts, updates and ends the peer's further video streams (paused, not ended, while
    /// either side holds the call: `held`), and the streams we forward to it, as the latest
    /// exchange left them.
    pub(super) fn apply_further(&mut self, streams: &[FurtherVideo], held: bool, key: CallKey) {
        let (forwarded, received): (Vec<FurtherVideo>, Vec<FurtherVideo>) =
            streams.iter().cloned().partition(|s| s.forwarded);
        if let Some(further) = &mut self.further {
            further.apply(&received, held, key);
        }
        self.forwarded.apply(&forwarded, key);
    }

    /// The further streams received, each one's name and frames decoded so far.
    pub(super) fn further_streams(&self) -> Vec<(String, u64)> {
        self.further
            .as_ref()
            .map(|further| named(further.stats()))
            .unwrap_or_default()
    }

    /// Whether the call shows every video stream the peer sends (not one stream only).
    pub(super) fn takes_streams(&self) -> bool {
        self.further.is_some()
    }

    /// Whether the running stream takes NAL units that fit a packet (packetization mode 0).
    pub(super) fn single_nal(&self) -> bool {
        self.packetization == Some(PacketizationMode::SingleNalUnit)
    }

    /// Copies every packet the running stream receives to `tap` (a conference forwarding
    /// it); false when no stream runs.
    pub(super) fn tap(&self, tap: VideoTap) -> bool {
        self.session
            .as_ref()
            .map(|session| session.tap_video(tap))
            .is_some()
    }

    /// What asks the peer for a keyframe, while the stream runs.
    pub(super) fn keyframe_requester(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        self.session
            .as_ref()
            .map(ClassicVideoSession::keyframe_requester)
    }

    /// What the running stream measured so far.
    pub(super) fn stats(&self) -> Option<VideoStats> {
        self.session.as_ref().map(|session| session.stats())
    }

    /// Stops the stream and the further ones (RTCP BYE, Y4M recordings finished); what the
    /// call's own measured, if it ran, and each further stream's name and frames decoded.
    pub(super) fn stop(mut self) -> (Option<VideoStats>, Vec<(String, u64)>) {
        self.forwarded.stop();
        let further = self.further.map(FurtherStreams::stop).map(named);
        let own = self.session.map(|mut session| session.stop());
        (own, further.unwrap_or_default())
    }
}

/// Each stream's name and frames decoded.
fn named(streams: Vec<(RemoteVideoStream, VideoStats)>) -> Vec<(String, u64)> {
    streams
        .iter()
        .map(|(stream, stats)| (super::webrtc::stream_name(stream), stats.frames_decoded))
        .collect()
}

/// The packetization mode `negotiated` agreed, when we run it.
pub(super) fn packetization_of(negotiated: &NegotiatedVideo) -> Result<PacketizationMode, String> {
    PacketizationMode::from_fmtp(negotiated.packetization_mode).ok_or_else(|| {
        format!(
            "packetization mode {} is not supported",
            negotiated.packetization_mode
        )
    })
}

/// What a running stream takes from a new exchange that agreed `negotiated`.
pub(super) fn update_of(
    negotiated: &NegotiatedVideo,
    direction: MediaDirection,
    srtp: Option<SrtpKeys>,
) -> VideoUpdate {
    VideoUpdate {
        remote_rtp: negotiated.remote_rtp,
        remote_rtcp: negotiated.remote_rtcp,
        direction,
        srtp,
        nack: negotiated.nack,
        level: level_of(negotiated),
    }
}

/// A stream on `socket` as `negotiated` says, RTCP multiplexed (call `key`'s CNAME).
pub(super) fn config_of(
    negotiated: &NegotiatedVideo,
    socket: UdpSocket,
    packetization: PacketizationMode,
    max_bitrate: u32,
    direction: MediaDirection,
    srtp: Option<SrtpKeys>,
    key: CallKey,
) -> ClassicVideoConfig {
    ClassicVideoConfig {
        rtp_socket: socket,
        rtcp_socket: None,
        remote_rtp: negotiated.remote_rtp,
        remote_rtcp: negotiated.remote_rtcp,
        payload_type: negotiated.payload_type,
        packetization,
        max_bitrate,
        srtp,
        direction,
        cname: format!("callisto-{:x}", key.0),
        level: level_of(negotiated),
        nack: negotiated.nack,
    }
}

/// The level the peer decodes, from the `profile-level-id` the exchange settled on (none
/// when the peer named none, or one Callisto does not know).
fn level_of(negotiated: &NegotiatedVideo) -> Option<H264Level> {
    let [_, profile, constraints, level] = negotiated.profile_level_id?.to_be_bytes();
    match ProfileLevelId::from_bytes(profile, constraints, level) {
        Ok(id) => Some(id.level),
        Err(error) => {
            tracing::debug!(%error, "the peer's profile-level-id is not used");
            None
        }
    }
}

/// The update that pauses a running stream both ways when a renegotiation dropped video
/// (nothing is sent to an unspecified address).
pub(super) const INACTIVE: VideoUpdate = VideoUpdate {
    remote_rtp: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
    remote_rtcp: None,
    direction: MediaDirection::INACTIVE,
    srtp: None,
    nack: false,
    level: None,
};
