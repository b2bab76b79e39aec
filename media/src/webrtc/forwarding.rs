//! Forwarding video without re-encoding: what a conference host does for participants that
//! take several video streams. One session's received video is tapped
//! ([`WebRtcSession::tap_video`](super::WebRtcSession::tap_video)) and its RTP packets are sent
//! on a further track of another session ([`ForwardedVideo`], made by
//! [`WebRtcSession::forward_video`](super::WebRtcSession::forward_video)), labelled with the
//! participant in `a=msid`. The receiver's keyframe requests about that track go to a
//! callback, which asks the sender's session for a keyframe
//! ([`WebRtcSession::request_keyframe`](super::WebRtcSession::request_keyframe)).
//!
//! The packets keep their payload, marker and timing; [`StreamRewriter`] gives them the
//! track's SSRC and payload type and keeps its sequence numbers and timestamps continuous
//! when the source changes (a track that first forwards one participant, then another).
//!
//! A stream no longer forwarded leaves its track in place, its m-line `inactive`; the next
//! stream forwarded takes that track (its m-line turns `sendonly` again, `a=msid` naming the
//! new participant) before a new one is added, so a conference's offers do not grow with each
//! join and leave. The track keeps its SSRC and the numbering goes on where it stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ::webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use ::webrtc::media_stream::track_local::TrackLocal;
use ::webrtc::rtp_transceiver::{RtpSender, RtpTransceiver};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc as async_mpsc;
use tracing::{debug, info, warn};

use super::local_media::{h264_payload_type, media_track, LocalTrack};
use super::peer::h264_codec;
use super::session::{lock, WebRtcSession};
use super::{tasks, WebRtcError};
use crate::rtp::RtpPacket;

/// Where a packet of a session's received video is copied (called on a tokio task for each
/// packet as it arrives; it must return quickly).
pub type VideoTap = Arc<dyn Fn(&RtpPacket) + Send + Sync>;

/// Renumbers one forwarded stream: the track's SSRC and payload type, and sequence numbers
/// and timestamps that continue across a change of source (sans-IO).
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    ssrc: u32,
    payload_type: u8,
    /// The source being forwarded, with the offsets that map its numbering onto ours.
    source: Option<Source>,
    /// Our last sequence number and timestamp sent.
    last: Option<(u16, u32)>,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    sequence_offset: u16,
    timestamp_offset: u32,
}

impl StreamRewriter {
    /// A rewriter for a track with `ssrc` whose negotiated payload type is `payload_type`.
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        StreamRewriter {
            ssrc,
            payload_type,
            source: None,
            last: None,
        }
    }

    /// The same track's numbering for the next stream it carries, whose negotiated payload
    /// type is `payload_type`: its first packet goes on one after the last one sent, even
    /// when it comes from the source forwarded before (the offsets of then would jump by
    /// whatever that source sent meanwhile).
    pub fn continued(self, payload_type: u8) -> Self {
        StreamRewriter {
            payload_type,
            source: None,
            ..self
        }
    }

    /// `packet` as the track sends it. A packet from a new source continues our numbering
    /// one sequence number and one 90 kHz frame (3000 ticks, 30 fps) after the last one sent.
    pub fn rewrite(&mut self, mut packet: RtpPacket) -> RtpPacket {
        let header = &mut packet.header;
        let source = match self.source {
            Some(source) if source.ssrc == header.ssrc => source,
            _ => {
                let (sequence, timestamp) = match self.last {
                    Some((sequence, timestamp)) => {
                        (sequence.wrapping_add(1), timestamp.wrapping_add(3_000))
                    }
                    None => (header.sequence_number, header.timestamp),
                };
                let source = Source {
                    ssrc: header.ssrc,
                    sequence_offset: sequence.wrapping_sub(header.sequence_number),
                    timestamp_offset: timestamp.wrapping_sub(header.timestamp),
                };
                self.source = Some(source);
                source
            }
        };
        header.ssrc = self.ssrc;
        header.payload_type = self.payload_type;
        header.sequence_number = header.sequence_number.wrapping_add(source.sequence_offset);
        header.timestamp = header.timestamp.wrapping_add(source.timestamp_offset);
        let sent = (header.sequence_number, header.timestamp);
        // A retransmission or a late packet does not move "the last one" back.
        let newer = self
            .last
            .is_none_or(|(last, _)| sent.0.wrapping_sub(last) < 0x8000 && sent.0 != last);
        if newer {
            self.last = Some(sent);
        }
        packet
    }
}

/// A video track of a session that carries a stream encoded elsewhere: each packet given to
/// [`ForwardedVideo::send`] goes out on it, renumbered by a [`StreamRewriter`]. Sending starts
/// once the track is negotiated (a new offer after [`WebRtcSession::forward_video`], or the
/// session's first one) and the connection is up; before, packets are dropped.
///
/// [`WebRtcSession::forward_video`]: super::WebRtcSession::forward_video
#[derive(Clone)]
pub struct ForwardedVideo {
    pub(super) label: String,
    pub(super) ssrc: u32,
    /// Made when the track is negotiated (its payload type is known then).
    pub(super) rewriter: Arc<Mutex<Option<StreamRewriter>>>,
    pub(super) outgoing: async_mpsc::UnboundedSender<RtpPacket>,
    pub(super) connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for ForwardedVideo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedVideo")
            .field("label", &self.label)
            .field("ssrc", &self.ssrc)
            .finish_non_exhaustive()
    }
}

/// A track of ours that forwards streams: what the session keeps of it, in use or retired.
pub(crate) struct Forwarding {
    transceiver: Arc<dyn RtpTransceiver>,
    sender: Arc<dyn RtpSender>,
    track: Arc<dyn TrackLocal>,
    ssrc: u32,
    /// The numbering the last stream it carried left off at, for the next one.
    continued: Option<StreamRewriter>,
    /// Where the peer's keyframe requests about the track go: the stream it carries now
    /// (one reader for the track's life; none while retired).
    on_request: KeyframeRequested,
}

/// What a forwarding track's keyframe requests call.
type KeyframeRequested = Arc<Mutex<Option<Box<dyn Fn() + Send + Sync>>>>;

impl ForwardedVideo {
    /// What the track is labelled with (its `a=msid` stream id).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends one packet of the forwarded stream (dropped while the track is not negotiated
    /// or the connection is down).
    pub fn send(&self, packet: &RtpPacket) {
        if !self.connected.load(Ordering::Acquire) {
            return;
        }
        let mut rewriter = lock(&self.rewriter);
        let Some(rewriter) = rewriter.as_mut() else {
            return;
        };
        let _ = self.outgoing.send(rewriter.rewrite(packet.clone()));
    }
}

impl WebRtcSession {
    /// Forwards a stream encoded elsewhere on a video track labelled `label` (its `a=msid`
    /// stream id: the participant): a track that no longer forwards anything when there is
    /// one, else a new one. The peer learns of it from our next offer
    /// ([`WebRtcSession::create_reoffer`], or [`WebRtcSession::create_offer`] when none was
    /// made yet); packets given to the handle go out once that offer is answered.
    /// `on_keyframe_request` is called (on a tokio task) when the peer asks for a keyframe
    /// of it. Only a session with video of its own forwards video.
    pub async fn forward_video(
        &self,
        label: &str,
        on_keyframe_request: impl Fn() + Send + Sync + 'static,
    ) -> Result<ForwardedVideo, WebRtcError> {
        if self.video_track.is_none() {
            return Err(WebRtcError::Negotiation("video is not configured"));
        }
        let retired = lock(&self.retired).pop();
        let forwarding = match retired {
            Some(forwarding) => match self.reuse(&forwarding, label).await {
                Ok(()) => forwarding,
                Err(e) => {
                    lock(&self.retired).push(forwarding);
                    return Err(e);
                }
            },
            None => self.new_forwarding(label).await?,
        };
        let (outgoing, outgoing_rx) = async_mpsc::unbounded_channel();
        let forwarded = ForwardedVideo {
            label: label.to_owned(),
            ssrc: forwarding.ssrc,
            rewriter: Arc::default(),
            outgoing,
            connected: Arc::clone(&self.shared.connected),
        };
        self.spawn(tasks::write_rtp(
            outgoing_rx,
            Arc::clone(&forwarding.track),
            (
                Arc::clone(&self.shared.connected),
                self.sending_flag(&forwarding.sender),
            ),
            true,
        ));
        *lock(&forwarding.on_request) = Some(Box::new(on_keyframe_request));
        info!(label, ssrc = forwarding.ssrc, "forwarding a video stream");
        lock(&self.forwarded).push((forwarded.clone(), forwarding));
        Ok(forwarded)
    }

    /// A new send-only video track for forwarded streams.
    async fn new_forwarding(&self, label: &str) -> Result<Forwarding, WebRtcError> {
        let local = LocalTrack::new(label, "video", RtpCodecKind::Video, h264_codec());
        let track = local.as_track_local();
        let transceiver = self
            .pc
            .add_transceiver_from_track(
                Arc::clone(&track),
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await?;
        let sender = transceiver.sender().await?.ok_or(WebRtcError::Negotiation(
            "a forwarding track without a sender",
        ))?;
        let on_request = KeyframeRequested::default();
        let (closed, requested) = (Arc::clone(&self.shared.closed), Arc::clone(&on_request));
        self.spawn(tasks::read_keyframe_requests(
            Arc::clone(&track),
            move || closed.load(Ordering::Acquire),
            move || {
                if let Some(on_request) = lock(&requested).as_ref() {
                    on_request();
                }
                true
            },
        ));
        Ok(Forwarding {
            transceiver,
            sender,
            track,
            ssrc: local.ssrc,
            continued: None,
            on_request,
        })
    }

    /// Makes a retired forwarding track send again, labelled `label`.
    ///
    /// Our description names the sender's track, so the sender is given a track in stream
    /// `label` with the same track id and SSRC. Only the description changes: packets are
    /// still written through the track bound to the sender, and the peer's feedback still
    /// reaches it (the library routes both by the sender and the track id).
    async fn reuse(&self, forwarding: &Forwarding, label: &str) -> Result<(), WebRtcError> {
        let bound = forwarding.track.track().await;
        let relabelled = media_track(
            label,
            bound.track_id(),
            bound.label(),
            RtpCodecKind::Video,
            h264_codec(),
            forwarding.ssrc,
        );
        // The sender is only reachable while the transceiver sends.
        let transceiver = &forwarding.transceiver;
        self.direct(transceiver, RTCRtpTransceiverDirection::Sendonly)
            .await?;
        let relabelled = Arc::new(TrackLocalStaticRTP::new(relabelled));
        if let Err(e) = forwarding.sender.replace_track(relabelled).await {
            let _ = self
                .direct(transceiver, RTCRtpTransceiverDirection::Inactive)
                .await;
            return Err(e.into());
        }
        self.want(transceiver, RTCRtpTransceiverDirection::Sendonly)
            .await;
        debug!(
            label,
            ssrc = forwarding.ssrc,
            "a retired forwarding track reused"
        );
        Ok(())
    }

    /// Stops forwarding a stream: its track stops sending (its m-line turns inactive), so the
    /// peer learns from our next offer that the stream ended, and waits for the next stream
    /// forwarded. Packets still given to `forwarded` are dropped; a handle already stopped
    /// changes nothing.
    pub async fn stop_forwarding(&self, forwarded: &ForwardedVideo) {
        // A track carries one stream after another: the handle's rewriter tells its stream.
        let entry = {
            let mut list = lock(&self.forwarded);
            let at = list
                .iter()
                .position(|(f, _)| Arc::ptr_eq(&f.rewriter, &forwarded.rewriter));
            at.map(|at| list.remove(at).1)
        };
        let Some(mut forwarding) = entry else {
            return;
        };
        // No rewriter, no sending: the writer task ends with the last handle.
        let continued = lock(&forwarded.rewriter).take();
        forwarding.continued = continued.or(forwarding.continued.take());
        *lock(&forwarding.on_request) = None;
        let transceiver = &forwarding.transceiver;
        if let Err(e) = self
            .direct(transceiver, RTCRtpTransceiverDirection::Inactive)
            .await
        {
            warn!(error = %e, label = forwarded.label, "a forwarding track still sends");
        }
        self.want(transceiver, RTCRtpTransceiverDirection::Inactive)
            .await;
        lock(&self.retired).push(forwarding);
        info!(
            label = forwarded.label,
            "no longer forwarding a video stream"
        );
    }

    /// Copies every packet of the peer's video (its first stream, the one the call's video
    /// thread decodes) to `tap` as well, for the session's life.
    pub fn tap_video(&self, tap: VideoTap) {
        if let Some(route) = &self.video_route {
            lock(&route.taps).push(tap);
        }
    }

    /// Gives each forwarded stream whose track is now negotiated its rewriter (the payload
    /// type is known once an answer is applied); on a reused track the numbering goes on.
    pub(super) async fn bind_forwarded(&self) {
        let waiting: Vec<(ForwardedVideo, Arc<dyn RtpSender>)> = lock(&self.forwarded)
            .iter()
            .filter(|(f, _)| lock(&f.rewriter).is_none())
            .map(|(f, forwarding)| (f.clone(), Arc::clone(&forwarding.sender)))
            .collect();
        for (forwarded, sender) in waiting {
            let parameters = match sender.get_parameters().await {
                Ok(parameters) => parameters,
                Err(e) => {
                    debug!(error = %e, label = forwarded.label, "not negotiated yet");
                    continue;
                }
            };
            let Some(payload_type) = h264_payload_type(&parameters) else {
                debug!(label = forwarded.label, "the peer took no forwarded stream");
                continue;
            };
            // Still forwarded (not stopped meanwhile): its track's numbering goes on.
            let mut list = lock(&self.forwarded);
            let Some((_, forwarding)) = list
                .iter_mut()
                .find(|(f, _)| Arc::ptr_eq(&f.rewriter, &forwarded.rewriter))
            else {
                continue;
            };
            *lock(&forwarded.rewriter) = Some(match forwarding.continued.take() {
                Some(rewriter) => rewriter.continued(payload_type),
                None => StreamRewriter::new(forwarded.ssrc, payload_type),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;
    use bytes::Bytes;

    fn packet(ssrc: u32, sequence: u16, timestamp: u32) -> RtpPacket {
        RtpPacket {
            header: RtpHeader {
                version: 2,
                payload_type: 96,
                sequence_number: sequence,
                timestamp,
                ssrc,
                marker: true,
                ..RtpHeader::default()
            },
            payload: Bytes::from_static(b"\x65payload"),
        }
    }

    fn numbers(packet: &RtpPacket) -> (u32, u8, u16, u32) {
        let h = &packet.header;
        (h.ssrc, h.payload_type, h.sequence_number, h.timestamp)
    }

    #[test]
    fn a_forwarded_stream_takes_the_tracks_ssrc_and_payload_type_and_keeps_its_numbering() {
        let mut rewriter = StreamRewriter::new(0xabc, 125);
        let first = rewriter.rewrite(packet(7, 100, 9_000));
        assert_eq!(numbers(&first), (0xabc, 125, 100, 9_000));
        assert_eq!(first.payload, packet(7, 100, 9_000).payload);
        assert!(first.header.marker);
        assert_eq!(
            numbers(&rewriter.rewrite(packet(7, 101, 12_000))),
            (0xabc, 125, 101, 12_000)
        );
        // A retransmission of an older packet keeps its number and does not move the end back.
        assert_eq!(
            numbers(&rewriter.rewrite(packet(7, 99, 6_000))),
            (0xabc, 125, 99, 6_000)
        );
        // Wrapping sequence numbers go on wrapping.
        let mut wrapping = StreamRewriter::new(1, 125);
        wrapping.rewrite(packet(7, u16::MAX, 0));
        assert_eq!(
            wrapping.rewrite(packet(7, 0, 3_000)).header.sequence_number,
            0
        );
    }

    #[test]
    fn a_new_source_continues_the_numbering_where_the_last_stopped() {
        let mut rewriter = StreamRewriter::new(0xabc, 125);
        rewriter.rewrite(packet(7, 100, 9_000));
        rewriter.rewrite(packet(7, 101, 12_000));
        let switched = rewriter.rewrite(packet(8, 5_000, 1_000_000));
        assert_eq!(numbers(&switched), (0xabc, 125, 102, 15_000));
        let next = rewriter.rewrite(packet(8, 5_001, 1_003_000));
        assert_eq!(numbers(&next), (0xabc, 125, 103, 18_000));
    }

    #[test]
    fn a_reused_track_goes_on_from_its_last_packet_even_with_the_same_source() {
        let mut rewriter = StreamRewriter::new(0xabc, 125);
        rewriter.rewrite(packet(7, 100, 9_000));
        // The track is retired, then carries source 7 again after it sent 3000 packets.
        let mut reused = rewriter.continued(126);
        let first = reused.rewrite(packet(7, 3_100, 9_000_000));
        assert_eq!(numbers(&first), (0xabc, 126, 101, 12_000));
        let next = reused.rewrite(packet(7, 3_101, 9_003_000));
        assert_eq!(numbers(&next), (0xabc, 126, 102, 15_000));
    }
}
