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
//! what tells.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use ::webrtc::media_stream::track_remote::TrackRemote;
use tokio::sync::mpsc::{self as async_mpsc, UnboundedReceiver};
use tracing::{info, warn};

use super::local_media::TaskOutput;
use super::session::lock;
use super::tasks::{VideoFeedback, VideoRoute};
use crate::video::h264::PacketizationMode;
use crate::video::stream_thread::{VideoChannels, VideoThread, VideoThreadConfig};
use crate::video::{VideoSink, VideoStats};

/// Makes the sink for one further remote video stream, given every stream the peer sends so
/// far with the new one last (the first, when it arrived first, is the call's own). Called on
/// a tokio task when the new stream's first packet arrives; it must return quickly. The sink
/// is finished when the stream ends: when a new offer from the peer no longer sends it, or
/// with the session.
pub type RemoteStreamSinks = Box<dyn FnMut(&[RemoteVideoStream]) -> Box<dyn VideoSink> + Send>;

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

/// One further stream being received: its labels and its thread.
struct Received {
    stream: RemoteVideoStream,
    thread: VideoThread,
}

/// The further streams of one session.
pub(super) struct MoreStreams {
    /// The labels of the first stream, once it arrived.
    first: Mutex<Option<RemoteVideoStream>>,
    sinks: Mutex<Option<RemoteStreamSinks>>,
    received: Mutex<Vec<Received>>,
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
        *lock(&self.first) = Some(stream);
    }

    /// Every stream the peer sends, first (the call's own) to last, as labelled.
    pub(super) fn streams(&self) -> Vec<RemoteVideoStream> {
        let first = lock(&self.first).clone();
        let more = lock(&self.received);
        first
            .into_iter()
            .chain(more.iter().map(|r| r.stream.clone()))
            .collect()
    }

    /// Starts receiving `track` as a further stream: its route (where the track's packets
    /// go) and the feedback its thread asks to send. `None` when further streams are not
    /// wanted (or the thread could not start: the track is then read and dropped). `own`
    /// names the call's own stream as the peer's description does, for when its packets
    /// have not come yet.
    pub(super) async fn start(
        &self,
        track: &Arc<dyn TrackRemote>,
        own: Option<(String, String)>,
    ) -> Option<(VideoRoute, UnboundedReceiver<VideoFeedback>)> {
        let stream_id = track.stream_id().await;
        let track_id = track.track_id().await;
        let mut sinks = lock(&self.sinks);
        let make = sinks.as_mut()?;
        let mut received = lock(&self.received);
        let stream = RemoteVideoStream {
            number: self.started.fetch_add(1, Ordering::Relaxed) + 1,
            stream_id,
            track_id,
        };
        let first = lock(&self.first).clone().or_else(|| {
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
        let sink = make(&known);
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
                controller: None,
                nack: true,
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
                return None;
            }
        };
        info!(?stream, "a further video stream");
        let route = VideoRoute {
            inbox,
            thread: Arc::new(Mutex::new(thread.thread())),
            remote: Arc::new(Mutex::new(Some(Arc::clone(track)))),
            taps: Arc::default(),
        };
        received.push(Received { stream, thread });
        Some((route, feedback_rx))
    }

    /// Stops the further streams the peer no longer sends: those not among `sent` (the
    /// (stream id, track id) of every video track its latest description sends). Their sinks
    /// are finished (a tile goes away).
    pub(super) fn keep_sent(&self, sent: &[(String, String)]) {
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
            r.thread.stop();
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
        let received = std::mem::take(&mut *lock(&self.received));
        received
            .into_iter()
            .map(|mut r| (r.stream, r.thread.stop()))
            .collect()
    }
}
