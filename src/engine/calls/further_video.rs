//! A classic call's further video streams: a peer that sends several (a conference bridge
//! showing each participant apart) offers an `m=video` for each beyond the call's own. Each
//! one we take gets a socket of its own, bound before the answer names its port, and a
//! receive-only [`ClassicVideoSession`] whose pictures become a tile of the call (and a
//! recording beside the call's, `NAME.LABEL.y4m`), as the WebRTC path's further tracks do.
//! A stream that a later exchange drops ends: its session stops and its tile goes.
//!
//! Further streams are declined (port 0) by a call that shows one stream
//! (`--single-stream`) and by a leg of a conference we host, whose pictures are its
//! participant's tile in the mosaic.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use callisto_media::session::{ClassicVideoSession, MediaDirection};
use callisto_media::video::VideoStats;
use callisto_media::webrtc::{RemoteStreamSinks, RemoteVideoStream};
use callisto_signaling::sdp::{FurtherVideo, LocalMedia, MediaKind, SessionDescription};

use super::classic_video::{config_of, packetization_of, update_of};
use super::media::srtp_keys_of;
use super::CallKey;

/// One further stream being received.
struct Running {
    /// Our port for it (what tells it in the next exchange).
    port: u16,
    stream: RemoteVideoStream,
    session: ClassicVideoSession,
}

/// The further streams of one classic call.
pub(super) struct FurtherStreams {
    ip: IpAddr,
    /// Sockets bound for streams that have not started.
    spare: Vec<UdpSocket>,
    running: Vec<Running>,
    /// Where their pictures go.
    sinks: RemoteStreamSinks,
    /// Streams started so far (their numbers go on rising when some end).
    started: usize,
    max_bitrate: u32,
}

impl FurtherStreams {
    pub(super) fn new(ip: IpAddr, sinks: RemoteStreamSinks, max_bitrate: u32) -> FurtherStreams {
        FurtherStreams {
            ip,
            spare: Vec::new(),
            running: Vec::new(),
            sinks,
            started: 0,
            max_bitrate,
        }
    }

    /// The ports an answer to `offer` may give further streams: every running stream's, and
    /// spare ones — bound now where needed — so that each video m-line of the offer beyond
    /// the first could start a new stream.
    pub(super) fn ports(&mut self, offer: &SessionDescription) -> io::Result<Vec<LocalMedia>> {
        let lines = offer
            .media
            .iter()
            .filter(|m| m.kind == MediaKind::Video && m.port != 0)
            .count();
        while self.spare.len() < lines.saturating_sub(1) {
            self.spare
                .push(UdpSocket::bind(SocketAddr::new(self.ip, 0))?);
        }
        let running = self.running.iter().map(|r| r.port);
        let spare = self
            .spare
            .iter()
            .filter_map(|s| s.local_addr().ok().map(|a| a.port()));
        Ok(running
            .chain(spare)
            .map(|rtp_port| LocalMedia {
                address: self.ip,
                rtp_port,
                rtcp_port: None,
            })
            .collect())
    }

    /// Follows the latest exchange: streams it no longer has end, those it still has are
    /// updated (address, direction, keys), new ones start on their spare socket. `key` names
    /// the call in RTCP.
    pub(super) fn apply(&mut self, further: &[FurtherVideo], key: CallKey) {
        let (kept, ended): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| further.iter().any(|f| f.local.rtp_port == r.port));
        self.running = kept;
        for mut gone in ended {
            tracing::info!(stream = %gone.stream.stream_id, "a further video stream ends");
            gone.session.stop();
        }
        for stream in further {
            if let Err(reason) = self.follow(stream, key) {
                tracing::warn!(%reason, label = %stream.label, "further video stream");
            }
        }
    }

    fn follow(&mut self, further: &FurtherVideo, key: CallKey) -> Result<(), String> {
        let negotiated = &further.negotiated;
        let srtp = srtp_keys_of(negotiated.srtp.as_ref())?;
        let direction = MediaDirection {
            send: false,
            receive: negotiated.direction.receives(),
        };
        if let Some(running) = self
            .running
            .iter()
            .find(|r| r.port == further.local.rtp_port)
        {
            return running
                .session
                .update(update_of(negotiated, direction, srtp))
                .map_err(|e| e.to_string());
        }
        let at = self
            .spare
            .iter()
            .position(|s| {
                s.local_addr()
                    .is_ok_and(|a| a.port() == further.local.rtp_port)
            })
            .ok_or_else(|| format!("port {} is not ours", further.local.rtp_port))?;
        let socket = self.spare.remove(at);
        let packetization = packetization_of(negotiated)?;
        self.started += 1;
        let stream = RemoteVideoStream {
            number: self.started,
            stream_id: further.label.clone(),
            track_id: String::new(),
        };
        let mut known: Vec<RemoteVideoStream> =
            self.running.iter().map(|r| r.stream.clone()).collect();
        known.push(stream.clone());
        let sink = self.sinks.sink(&known);
        let max_bitrate = self.max_bitrate;
        let config = config_of(
            negotiated,
            socket,
            packetization,
            max_bitrate,
            direction,
            srtp,
            key,
        );
        let session = ClassicVideoSession::receive_only(config, sink).map_err(|e| e.to_string())?;
        tracing::info!(label = %further.label, "a further video stream starts");
        self.running.push(Running {
            port: further.local.rtp_port,
            stream,
            session,
        });
        Ok(())
    }

    /// Each running stream's name and what it measured so far.
    pub(super) fn stats(&self) -> Vec<(RemoteVideoStream, VideoStats)> {
        self.running
            .iter()
            .map(|r| (r.stream.clone(), r.session.stats()))
            .collect()
    }

    /// Stops every stream (their tiles go, their recordings are finished); what each
    /// measured.
    pub(super) fn stop(self) -> Vec<(RemoteVideoStream, VideoStats)> {
        self.running
            .into_iter()
            .map(|mut r| (r.stream, r.session.stop()))
            .collect()
    }
}
