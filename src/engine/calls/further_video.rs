//! A classic call's further video streams: a peer that sends several (a conference bridge
//! showing each participant apart) offers an `m=video` for each beyond the call's own. Each
//! one we take gets a socket of its own, bound before the answer names its port, and a
//! receive-only [`ClassicVideoSession`] whose pictures become a tile of the call (and a
//! recording beside the call's, `NAME.LABEL.y4m`), as the WebRTC path's further tracks do.
//! A stream that a later exchange drops (port 0), or that the peer stops sending (a
//! conference's participant gone, a stream paused), ends: its session stops and its tile goes
//! (its socket stays for when it is sent again, as does the port of a stream that passes to
//! another name, which starts afresh). While either side holds the call (our hold, or the
//! peer's: an exchange took away the audio we were sending) a stream the peer stops sending
//! only pauses, and goes on, on the same tile and recording, when the call resumes; one it
//! removes ends all the same. A call takes at most [`MAX_FURTHER_VIDEO`];
//! a name seen before gets the stream's number in its recording's file name.
//!
//! Further streams are declined (port 0) by a call that shows one stream
//! (`--single-stream`) and by a leg of a conference we host, whose pictures are its
//! participant's tile in the mosaic (a call merged into the conference later keeps the
//! streams it has, and takes no new ones).

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use callisto_media::session::{ClassicVideoSession, MediaDirection};
use callisto_media::video::VideoStats;
use callisto_media::webrtc::{RemoteStreamSinks, RemoteVideoStream};
use callisto_signaling::sdp::{
    FurtherVideo, LocalMedia, MediaKind, SessionDescription, MAX_FURTHER_VIDEO,
};

use super::classic_video::{config_of, packetization_of, update_of};
use super::media::srtp_keys_of;
use super::CallKey;

/// One further stream being received.
struct Running {
    /// Our port for it (what tells it in the next exchange).
    port: u16,
    /// Its socket (shared with the session), for a stream that carries another name next.
    socket: UdpSocket,
    stream: RemoteVideoStream,
    session: ClassicVideoSession,
}

/// The further streams of one classic call.
pub(super) struct FurtherStreams {
    ip: IpAddr,
    /// Sockets bound for streams that have not started, with their ports.
    spare: Vec<(u16, UdpSocket)>,
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

    /// The ports an answer to `offer` may give new further streams — those running keep
    /// theirs —: spare sockets, bound now where needed, one for each video m-line of the
    /// offer beyond the first, up to [`MAX_FURTHER_VIDEO`].
    pub(super) fn ports(&mut self, offer: &SessionDescription) -> io::Result<Vec<LocalMedia>> {
        let lines = offer
            .media
            .iter()
            .filter(|m| m.kind == MediaKind::Video && m.port != 0)
            .count();
        while self.spare.len() < lines.saturating_sub(1).min(MAX_FURTHER_VIDEO) {
            let socket = UdpSocket::bind(SocketAddr::new(self.ip, 0))?;
            self.spare.push((socket.local_addr()?.port(), socket));
        }
        Ok(self
            .spare
            .iter()
            .map(|(rtp_port, _)| LocalMedia {
                address: self.ip,
                rtp_port: *rtp_port,
                rtcp_port: None,
            })
            .collect())
    }

    /// Follows the latest exchange: streams it no longer has end, those it still has are
    /// updated (address, direction, keys) — or end when the peer stops sending them, unless
    /// either side holds the call (`held`: they pause) —, new ones start on their spare
    /// socket. `key` names the call in RTCP.
    pub(super) fn apply(&mut self, further: &[FurtherVideo], held: bool, key: CallKey) {
        let (kept, ended): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| further.iter().any(|f| f.local.rtp_port == r.port));
        self.running = kept;
        for mut gone in ended {
            tracing::info!(stream = %gone.stream.stream_id, "a further video stream ends");
            gone.session.stop();
        }
        for stream in further {
            if let Err(reason) = self.follow(stream, held, key) {
                tracing::warn!(%reason, label = %stream.label, "further video stream");
            }
        }
    }

    fn follow(&mut self, further: &FurtherVideo, held: bool, key: CallKey) -> Result<(), String> {
        let negotiated = &further.negotiated;
        let srtp = srtp_keys_of(negotiated.srtp.as_ref())?;
        let direction = MediaDirection {
            send: false,
            receive: further.is_sent(),
        };
        let at = self
            .running
            .iter()
            .position(|r| r.port == further.local.rtp_port);
        if let Some(at) = at {
            let running = &self.running[at];
            if running.stream.stream_id == further.label && (direction.receive || held) {
                return running
                    .session
                    .update(update_of(negotiated, direction, srtp))
                    .map_err(|e| e.to_string());
            }
            // No longer sent (a conference's participant gone, a bridge pausing it), or
            // another participant in the same slot: it ends here, and starts afresh on a
            // tile and recording of its own when sent.
            let mut gone = self.running.remove(at);
            let (was, next) = (&gone.stream.stream_id, &further.label);
            tracing::info!(stream = %was, %next, sent = direction.receive, "a further video stream ends");
            gone.session.stop();
            self.spare.push((gone.port, gone.socket));
        }
        if !direction.receive {
            // Not sent yet (or offered for us to send): its socket waits, no tile is shown.
            return Ok(());
        }
        let at = self
            .spare
            .iter()
            .position(|(port, _)| *port == further.local.rtp_port)
            .ok_or_else(|| format!("port {} is not ours", further.local.rtp_port))?;
        let packetization = packetization_of(negotiated)?;
        // A stream that cannot start leaves its port as it was, for a later exchange.
        let socket = self.spare[at].1.try_clone().map_err(|e| e.to_string())?;
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
        let (port, socket) = self.spare.remove(at);
        tracing::info!(label = %further.label, "a further video stream starts");
        self.running.push(Running {
            port,
            socket,
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

#[cfg(test)]
mod tests {
    use super::super::media::{CallControls, VideoInput, VideoOptions};
    use super::*;

    #[test]
    fn streams_that_share_a_name_are_recorded_apart() {
        let dir = tempfile::tempdir().unwrap();
        let options = VideoOptions {
            input: VideoInput::Pattern,
            record: Some(dir.path().join("bob.y4m")),
            width: 64,
            height: 48,
            fps: 10,
            max_bitrate: 100_000,
            identity: 0,
            single_stream: false,
        };
        let controls = CallControls::default();
        let mut tiles = super::super::webrtc::stream_tiles(&options, &controls);
        let stream = |number: usize, label: &str| RemoteVideoStream {
            number,
            stream_id: label.into(),
            track_id: String::new(),
        };
        let mut first = tiles.sink(&[stream(1, "slides")]);
        let mut second = tiles.sink(&[stream(1, "slides"), stream(2, "slides")]);
        assert_eq!(controls.more_video.slots().len(), 2);
        // A participant who leaves and comes back under the same name.
        first.finish().unwrap();
        let mut third = tiles.sink(&[stream(2, "slides"), stream(3, "slides")]);
        second.finish().unwrap();
        third.finish().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["bob.slides-3.y4m", "bob.slides-4.y4m", "bob.slides.y4m"]
        );
        assert!(
            controls.more_video.slots().is_empty(),
            "the tiles went with their streams"
        );
    }
}
