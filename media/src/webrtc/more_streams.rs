//! The peer's further video streams: a conference that sends each participant as a stream
//! of its own (an `m=video` section each, labelled by `a=msid`) reaches us as several remote
//! video tracks in one call.
//!
//! The first remote video track feeds the call's own video thread, the one that also sends
//! our picture. Each further track gets a receive-only video thread of its own (reorder
//! buffer, NACKs, depacketizer, decoder; no encoder) whose pictures go to a sink the session's
//! user makes for it ([`RemoteStreamSinks`], called with the stream's labels), and whose
//! keyframe requests and NACKs are written about that track. Without a
//! [`WebRtcVideoMedia::more_streams`](super::WebRtcVideoMedia::more_streams) the further
//! tracks are read and dropped, as before. A new offer that no longer sends a further stream
//! (its m-line `inactive`, `recvonly` or rejected) stops that stream's thread and finishes
//! its sink; the library reports no end of a remote track, so the offer's `a=msid` lines are
//! what tells. The call's own stream ends the same way, but its thread goes on (it sends our
//! picture): the sinks' maker is told ([`RemoteStreams::first_changed`]), so that a window
//! stops showing a participant who left.
//!
//! A stream can come back on a track whose stream ended: the library opens a remote track
//! once per track id, so when a later offer sends that track id again — the same participant
//! back, or a server reusing the m-line for someone else under a new stream id (what a
//! Callisto host does) — its packets come on the old track. Such a track stays read while
//! idle (its packets dropped), and the offer that sends it again starts a new thread and sink
//! for it, labelled as that offer labels it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use ::webrtc::media_stream::track_remote::TrackRemote;
use tokio::sync::mpsc as async_mpsc;
use tracing::{info, warn};

use super::local_media::TaskOutput;
use super::session::lock;
use super::tasks::{write_feedback, LatestSsrc, VideoRoute};
use crate::video::h264::PacketizationMode;
use crate::video::stream_thread::{VideoChannels, VideoThread, VideoThreadConfig};
use crate::video::{VideoSink, VideoStats};

/// Where the peer's further video streams go, and who hears of the call's own stream ending.
/// Both are called on tokio tasks and must return quickly.
pub trait RemoteStreams: Send {
    /// Makes the sink for one further remote video stream, given every stream the peer sent
    /// so far and still sends, with the new one last (the first, when it arrived first, is
    /// the call's own, listed even when the peer stopped sending it).
    /// Called when the new stream's first packet arrives. The sink is finished when the stream
    /// ends: when a new offer from the peer no longer sends it, or with the session.
    fn sink(&mut self, known: &[RemoteVideoStream]) -> Box<dyn VideoSink>;

    /// The call's own stream (the peer's first, whose pictures go to the call's own sink)
    /// changed: `None` when a new offer from the peer no longer sends it (a conference
    /// server's participant left; pictures already on their way may still reach the sink),
    /// `Some` with its labels when
    /// an offer sends it again, or sends it under a new stream id (a server giving the m-line
    /// to someone else).
    fn first_changed(&mut self, first: Option<&RemoteVideoStream>) {
        let _ = first;
    }
}

/// The session's [`RemoteStreams`].
pub type RemoteStreamSinks = Box<dyn RemoteStreams>;

/// What the peer said about one of its further video streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVideoStream {
    /// 0 for the peer's first video stream (the call's own, whose pictures go to
    /// [`WebRtcVideoMedia::sink`](super::WebRtcVideoMedia::sink)), 1 for its second, … in
    /// order of arrival.
    pub number: usize,
    /// The peer's media stream id (`a=msid`'s first part: what a conference usually names
    /// the participant by); empty when the peer gave none.
    pub stream_id: String,
    /// The peer's track id (`a=msid`'s second part).
    pub track_id: String,
}

/// Where a further track's packets go: the thread of the stream it carries, none while the
/// peer does not send on it.
pub(super) type TrackSlot = Arc<Mutex<Option<VideoRoute>>>;

/// A further remote track: what it is called by, and where its packets go.
#[derive(Clone)]
struct FurtherTrack {
    track: Arc<dyn TrackRemote>,
    /// The track id it was opened under (a stream coming back on it is recognised by it).
    track_id: String,
    slot: TrackSlot,
}

/// One further stream being received: its labels, its track and its thread.
struct Received {
    stream: RemoteVideoStream,
    track: FurtherTrack,
    thread: VideoThread,
}

/// The further streams of one session.
pub(super) struct MoreStreams {
    /// The labels of the first stream, once it arrived, and whether the peer still sends it.
    first: Mutex<Option<(RemoteVideoStream, bool)>>,
    sinks: Mutex<Option<RemoteStreamSinks>>,
    received: Mutex<Vec<Received>>,
    /// Further tracks whose stream the peer stopped sending (a stream may come back on them).
    idle: Mutex<Vec<FurtherTrack>>,
    /// Further streams started so far (their numbers go on rising when some end).
    started: AtomicUsize,
    connected: Arc<AtomicBool>,
    /// Our video SSRC, the sender of the feedback we write.
    sender_ssrc: u32,
    max_bitrate: u32,
    /// Further streams go to sinks (else they are only drained).
    shown: bool,
}

impl MoreStreams {
    pub(super) fn new(
        sinks: Option<RemoteStreamSinks>,
        connected: Arc<AtomicBool>,
        sender_ssrc: u32,
        max_bitrate: u32,
    ) -> Self {
        MoreStreams {
            first: Mutex::new(None),
            shown: sinks.is_some(),
            sinks: Mutex::new(sinks),
            received: Mutex::new(Vec::new()),
            idle: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            connected,
            sender_ssrc,
            max_bitrate,
        }
    }

    /// Whether further streams are shown (given to sinks), not only drained.
    pub(super) fn shown(&self) -> bool {
        self.shown
    }

    /// Notes the labels of the peer's first video track (the call's own stream).
    pub(super) async fn first_is(&self, track: &Arc<dyn TrackRemote>) {
        let stream = RemoteVideoStream {
            number: 0,
            stream_id: track.stream_id().await,
            track_id: track.track_id().await,
        };
        *lock(&self.first) = Some((stream, true));
    }

    /// The labels of the first stream, once it arrived (sent or not).
    fn first(&self) -> Option<RemoteVideoStream> {
        lock(&self.first).as_ref().map(|(stream, _)| stream.clone())
    }

    /// Every stream the peer sends, first (the call's own, unless it ended) to last, as
    /// labelled.
    pub(super) fn streams(&self) -> Vec<RemoteVideoStream> {
        let first = lock(&self.first)
            .as_ref()
            .filter(|(_, sent)| *sent)
            .map(|(stream, _)| stream.clone());
        let more = lock(&self.received);
        first
            .into_iter()
            .chain(more.iter().map(|r| r.stream.clone()))
            .collect()
    }

    /// Starts receiving `track` as a further stream: where the track's packets go from now on
    /// (read them into it for the track's life). `None` when further streams are not wanted
    /// (or the thread could not start: the track is then read and dropped). `own` names the
    /// call's own stream as the peer's description does, for when its packets have not come
    /// yet.
    pub(super) async fn start(
        &self,
        track: &Arc<dyn TrackRemote>,
        own: Option<(String, String)>,
    ) -> Option<TrackSlot> {
        let stream_id = track.stream_id().await;
        let track_id = track.track_id().await;
        let further = FurtherTrack {
            track: Arc::clone(track),
            track_id: track_id.clone(),
            slot: TrackSlot::default(),
        };
        self.receive(further.clone(), stream_id, track_id, own)
            .then_some(further.slot)
    }

    /// Starts a thread and a sink for the stream `further` carries, labelled `stream_id` and
    /// `track_id`, and points the track's packets at it; whether it started.
    fn receive(
        &self,
        further: FurtherTrack,
        stream_id: String,
        track_id: String,
        own: Option<(String, String)>,
    ) -> bool {
        let mut sinks = lock(&self.sinks);
        let Some(make) = sinks.as_mut() else {
            return false;
        };
        let mut received = lock(&self.received);
        let stream = RemoteVideoStream {
            number: self.started.fetch_add(1, Ordering::Relaxed) + 1,
            stream_id,
            track_id,
        };
        let first = self.first().or_else(|| {
            own.map(|(stream_id, track_id)| RemoteVideoStream {
                number: 0,
                stream_id,
                track_id,
            })
        });
        let known: Vec<RemoteVideoStream> = first
            .iter()
            .chain(received.iter().map(|r| &r.stream))
            .chain([&stream])
            .cloned()
            .collect();
        let sink = make.sink(&known);
        let (inbox, inputs) = mpsc::channel();
        let (outgoing, _) = async_mpsc::unbounded_channel();
        let (feedback, feedback_rx) = async_mpsc::unbounded_channel();
        let thread = VideoThread::start(
            VideoThreadConfig {
                max_bitrate: self.max_bitrate,
                ssrc: self.sender_ssrc,
                payload_type: 0,
                packetization: PacketizationMode::NonInterleaved,
                connected: Arc::clone(&self.connected),
                // Receive-only: there is nothing to send.
                sending: Arc::new(AtomicBool::new(false)),
                controller: None,
                nack: true,
                level: None,
            },
            None,
            sink,
            VideoChannels {
                inbox: (inbox.clone(), inputs),
                output: Box::new(TaskOutput { outgoing, feedback }),
            },
        );
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                warn!(error = %e, ?stream, "a further video stream cannot be decoded");
                return false;
            }
        };
        info!(?stream, "a further video stream");
        let route = VideoRoute {
            inbox,
            thread: Arc::new(Mutex::new(thread.thread())),
            remote: Arc::new(Mutex::new(Some(Arc::clone(&further.track)))),
            taps: Arc::default(),
            media_ssrc: LatestSsrc::default(),
        };
        tokio::spawn(write_feedback(feedback_rx, route.clone(), self.sender_ssrc));
        *lock(&further.slot) = Some(route);
        received.push(Received {
            stream,
            track: further,
            thread,
        });
        true
    }

    /// Follows what the peer's latest description sends (`sent`: the (stream id, track id)
    /// of every video track it sends). The further streams no longer among them stop: their
    /// sinks are finished (a tile goes away) and their tracks wait idle. An idle track whose
    /// track id is sent again carries a stream once more: a new thread and sink, labelled as
    /// `sent` labels it. The call's own stream is followed too ([`MoreStreams::follow_first`]).
    pub(super) fn follow_sent(&self, sent: &[(String, String)]) {
        self.follow_first(sent);
        let ended: Vec<Received> = {
            let mut received = lock(&self.received);
            let (kept, ended) = std::mem::take(&mut *received).into_iter().partition(|r| {
                sent.iter().any(|(stream, track)| {
                    *stream == r.stream.stream_id && *track == r.stream.track_id
                })
            });
            *received = kept;
            ended
        };
        for mut r in ended {
            info!(stream = ?r.stream, "the peer stopped sending a further video stream");
            *lock(&r.track.slot) = None;
            r.thread.stop();
            lock(&self.idle).push(r.track);
        }
        let returning: Vec<(FurtherTrack, String)> = {
            let mut idle = lock(&self.idle);
            let (back, still): (Vec<FurtherTrack>, Vec<FurtherTrack>) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|t| sent.iter().any(|(_, track)| *track == t.track_id));
            *idle = still;
            back.into_iter()
                .filter_map(|t| {
                    let stream = sent.iter().find(|(_, track)| *track == t.track_id)?;
                    Some((t, stream.0.clone()))
                })
                .collect()
        };
        for (track, stream_id) in returning {
            let track_id = track.track_id.clone();
            info!(
                stream_id,
                track_id, "a further video stream comes back on its track"
            );
            if !self.receive(track.clone(), stream_id, track_id, None) {
                lock(&self.idle).push(track);
            }
        }
    }

    /// Follows the call's own stream: it ends when `sent` no longer has its track id, and is
    /// back when `sent` has it again (its packets come on the same track, to the call's own
    /// thread), under the stream id `sent` gives. The sinks' maker hears of each change.
    fn follow_first(&self, sent: &[(String, String)]) {
        let change = {
            let mut first = lock(&self.first);
            let Some((stream, sending)) = first.as_mut() else {
                return;
            };
            match sent.iter().find(|(_, track)| *track == stream.track_id) {
                None if *sending => {
                    *sending = false;
                    Some(None)
                }
                Some((stream_id, _)) if !*sending || *stream_id != stream.stream_id => {
                    *sending = true;
                    stream.stream_id.clone_from(stream_id);
                    Some(Some(stream.clone()))
                }
                _ => None,
            }
        };
        let Some(change) = change else {
            return;
        };
        match &change {
            None => info!("the peer stopped sending the call's own video stream"),
            Some(stream) => info!(?stream, "the peer sends the call's own video stream"),
        }
        if let Some(sinks) = lock(&self.sinks).as_mut() {
            sinks.first_changed(change.as_ref());
        }
    }

    /// The further streams' labels and statistics, in order of arrival.
    pub(super) fn stats(&self) -> Vec<(RemoteVideoStream, VideoStats)> {
        lock(&self.received)
            .iter()
            .map(|r| (r.stream.clone(), r.thread.stats()))
            .collect()
    }

    /// Stops every further stream's thread (their sinks are finished) and takes no more:
    /// their final statistics.
    pub(super) fn stop(&self) -> Vec<(RemoteVideoStream, VideoStats)> {
        lock(&self.sinks).take();
        lock(&self.idle).clear();
        let received = std::mem::take(&mut *lock(&self.received));
        received
            .into_iter()
            .map(|mut r| {
                *lock(&r.track.slot) = None;
                (r.stream, r.thread.stop())
            })
            .collect()
    }
}
