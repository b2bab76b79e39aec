//! The tokio tasks of a WebRTC session: they only move packets between the peer connection and
//! the media threads, and read the peer connection's statistics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use ::webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use ::webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use ::webrtc::peer_connection::{PeerConnection, StatsSelector};
use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::shared::marshal::Marshal;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, warn};

use super::audio_thread::AudioInput;
use super::forwarding::VideoTap;
use super::keyframe_requests::is_keyframe_request;
use super::more_streams::{MoreStreams, TrackSlot};
use super::sdp_check::first_video_track;
use super::stats::{candidate_addr, transport_facts, CandidateKind, TransportFacts};
use crate::rtp::{build_nack, RtpPacket};
use crate::video::stream_thread::VideoInput;

/// Feedback the video thread asks the peer connection to send about the peer's video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VideoFeedback {
    /// A picture loss indication.
    Pli,
    /// A generic NACK for these sequence numbers.
    Nack(Vec<u16>),
}

/// How often the peer connection's statistics (selected pair, ICE RTT) are read.
pub(crate) const STATS_INTERVAL: Duration = Duration::from_millis(500);
/// How long to wait before polling a local track that is not bound yet.
const UNBOUND_RETRY: Duration = Duration::from_millis(50);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the peer's video goes: the video thread's inbox and the thread to wake.
#[derive(Clone)]
pub(crate) struct VideoRoute {
    pub inbox: mpsc::Sender<VideoInput>,
    /// Set once the video thread runs.
    pub thread: Arc<Mutex<Option<Thread>>>,
    /// The peer's video track, once it arrived (PLIs are written to it).
    pub remote: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    /// Where each received packet is copied as well (a conference host forwarding it).
    pub taps: Arc<Mutex<Vec<VideoTap>>>,
    /// The SSRC of the latest packet delivered: what the feedback is about.
    pub media_ssrc: LatestSsrc,
}

impl VideoRoute {
    pub(crate) fn deliver(&self, input: VideoInput) -> bool {
        if let VideoInput::Rtp { packet, .. } = &input {
            self.media_ssrc.note(packet.header.ssrc);
        }
        let delivered = self.inbox.send(input).is_ok();
        if let Some(thread) = lock(&self.thread).as_ref() {
            thread.unpark();
        }
        delivered
    }
}

/// The SSRC the peer's latest packet on a track came with. A track's SSRCs only grow (the
/// library adds each new one the peer's descriptions give it), and a stream sent again under
/// a new SSRC (a conference server's participant back on an m-line it had) comes on the old
/// track: feedback about the first SSRC would ask a stream that is gone.
#[derive(Clone)]
pub(crate) struct LatestSsrc(Arc<AtomicU64>);

impl Default for LatestSsrc {
    fn default() -> Self {
        LatestSsrc(Arc::new(AtomicU64::new(Self::NONE)))
    }
}

impl LatestSsrc {
    /// No packet yet (not an SSRC: those are 32 bits).
    const NONE: u64 = u64::MAX;

    pub(crate) fn note(&self, ssrc: u32) {
        self.0.store(u64::from(ssrc), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<u32> {
        u32::try_from(self.0.load(Ordering::Relaxed)).ok()
    }
}

/// The (stream id, track id) the peer sends the call's own video under — its description's
/// first video m-line's `a=msid` — when it names one. Clones share it.
#[derive(Clone, Default)]
pub(crate) struct PrimaryVideo(Arc<Mutex<Option<(String, String)>>>);

impl PrimaryVideo {
    /// Learns it from the peer's description `sdp`.
    pub(crate) fn learn(&self, sdp: &str) {
        *lock(&self.0) = first_video_track(sdp);
    }

    /// The call's own video track as named, if it is.
    fn ids(&self) -> Option<(String, String)> {
        lock(&self.0).clone()
    }

    /// Whether `track` is the call's own video: the one named, or any when none is.
    async fn is(&self, track: &Arc<dyn TrackRemote>) -> bool {
        let Some((stream, id)) = lock(&self.0).clone() else {
            return true;
        };
        track.stream_id().await == stream && track.track_id().await == id
    }
}

/// Sends each remote track's RTP to the media thread that plays it: audio to the audio
/// thread, the call's own video track (`primary`; else the first to arrive) to the call's
/// video thread, further video tracks to threads of their own when `more` takes them (see
/// [`super::more_streams`]).
pub(crate) async fn route_remote_tracks(
    mut tracks: UnboundedReceiver<Arc<dyn TrackRemote>>,
    audio: mpsc::Sender<AudioInput>,
    video: Option<VideoRoute>,
    more: Option<Arc<MoreStreams>>,
    primary: PrimaryVideo,
) {
    while let Some(track) = tracks.recv().await {
        let kind = track.kind().await;
        debug!(?kind, "remote track");
        match (kind, &video) {
            (RtpCodecKind::Audio, _) => {
                tokio::spawn(forward_audio(track, audio.clone()));
            }
            (RtpCodecKind::Video, Some(route))
                if lock(&route.remote).is_none() && primary.is(&track).await =>
            {
                *lock(&route.remote) = Some(Arc::clone(&track));
                if let Some(more) = &more {
                    more.first_is(&track).await;
                }
                tokio::spawn(forward_video(track, route.clone()));
            }
            (RtpCodecKind::Video, Some(_)) => {
                let started = match &more {
                    Some(more) => more.start(&track, primary.ids()).await,
                    None => None,
                };
                match started {
                    Some(slot) => {
                        tokio::spawn(forward_further(track, slot));
                    }
                    None => drain(track),
                }
            }
            // A stream we do not play (video offered to an audio-only session): read and
            // drop it, so the peer connection's queue for it never fills.
            _ => drain(track),
        }
    }
}

/// Reads and drops a track's packets.
fn drain(track: Arc<dyn TrackRemote>) {
    tokio::spawn(async move { while track.poll().await.is_some() {} });
}

async fn forward_audio(track: Arc<dyn TrackRemote>, audio: mpsc::Sender<AudioInput>) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let at = Instant::now();
                match packet.marshal() {
                    Ok(bytes) => {
                        let datagram = Bytes::from(bytes);
                        if audio.send(AudioInput::Rtp { at, datagram }).is_err() {
                            break;
                        }
                    }
                    Err(e) => debug!(error = %e, "remote RTP did not marshal"),
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

async fn forward_video(track: Arc<dyn TrackRemote>, route: VideoRoute) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let at = Instant::now();
                for tap in lock(&route.taps).iter() {
                    tap(&packet);
                }
                if !route.deliver(VideoInput::Rtp { at, packet }) {
                    break;
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// Sends a further remote video track's packets to the thread of the stream it carries now
/// (see [`super::more_streams`]); while it carries none they are dropped.
async fn forward_further(track: Arc<dyn TrackRemote>, slot: TrackSlot) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let at = Instant::now();
                if let Some(route) = lock(&slot).as_ref() {
                    route.deliver(VideoInput::Rtp { at, packet });
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// Whether a packet goes out while the transport may be down or the transceiver's direction
/// may stop sending. Packets go while both allow; when they stop, at once (the driver refuses
/// a sender's packets once its direction no longer sends). With `whole_pictures` (video), a
/// picture under way when they allow again is not sent: the first packet sent is a picture's
/// first, so the peer is not given the tail of one. A picture ends at its marker packet or
/// when the RTP timestamp changes (a marker lost, or never set by a forwarded stream's sender).
#[derive(Debug, Default)]
pub(crate) struct SendGate {
    whole_pictures: bool,
    /// The picture under way: its RTP timestamp, and whether the path was open at its first
    /// packet. `None` between pictures.
    picture: Option<(u32, bool)>,
}

impl SendGate {
    pub(crate) fn new(whole_pictures: bool) -> Self {
        SendGate {
            whole_pictures,
            picture: None,
        }
    }

    /// Whether the packet with RTP `timestamp` (`marker`: the last of its picture) goes out,
    /// the path being `open` now (connected, and the direction sends).
    pub(crate) fn admit(&mut self, timestamp: u32, marker: bool, open: bool) -> bool {
        if !self.whole_pictures {
            return open;
        }
        let started_open = match self.picture {
            Some((at, started_open)) if at == timestamp => started_open,
            _ => open,
        };
        self.picture = (!marker).then_some((timestamp, started_open));
        open && started_open
    }
}

/// Writes a media thread's RTP to its local track; drops it while not connected, and while
/// its transceiver does not send (`sending`, [`WebRtcSession::sending_flag`](super::WebRtcSession)),
/// video by whole pictures (`whole_pictures`, see [`SendGate`]).
pub(crate) async fn write_rtp(
    mut packets: UnboundedReceiver<RtpPacket>,
    track: Arc<dyn TrackLocal>,
    (connected, sending): (Arc<AtomicBool>, Arc<AtomicBool>),
    whole_pictures: bool,
) {
    let mut failures = 0u64;
    let mut gate = SendGate::new(whole_pictures);
    while let Some(packet) = packets.recv().await {
        let open = connected.load(Ordering::Acquire) && sending.load(Ordering::Acquire);
        if !gate.admit(packet.header.timestamp, packet.header.marker, open) {
            continue;
        }
        if let Err(e) = track.write_rtp(packet).await {
            failures += 1;
            if failures == 1 {
                warn!(error = %e, "RTP write refused");
            }
        }
    }
}

/// Sends the RTCP feedback (PLI, NACK) about the peer's video that the video thread asks for.
pub(crate) async fn write_feedback(
    mut requests: UnboundedReceiver<VideoFeedback>,
    route: VideoRoute,
    sender_ssrc: u32,
) {
    while let Some(request) = requests.recv().await {
        let remote = lock(&route.remote).clone();
        let Some(remote) = remote else {
            continue;
        };
        // Before any packet: the SSRC the peer's descriptions gave the track last.
        let media_ssrc = match route.media_ssrc.get() {
            Some(ssrc) => ssrc,
            None => match remote.ssrcs().await.last() {
                Some(ssrc) => *ssrc,
                None => continue,
            },
        };
        let packet: Box<dyn rtc::rtcp::Packet> = match request {
            VideoFeedback::Pli => Box::new(PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            }),
            VideoFeedback::Nack(sequences) => {
                Box::new(build_nack(sender_ssrc, media_ssrc, &sequences))
            }
        };
        if let Err(e) = remote.write_rtcp(vec![packet]).await {
            debug!(error = %e, "RTCP feedback not sent");
        }
    }
}

/// Hands the peer's keyframe requests about one of our video tracks (PLI, FIR) to
/// `on_request` (which says whether to go on listening) until `stopped` says so (the session
/// closed).
pub(crate) async fn read_keyframe_requests(
    track: Arc<dyn TrackLocal>,
    stopped: impl Fn() -> bool + Send + 'static,
    on_request: impl Fn() -> bool + Send + 'static,
) {
    while !stopped() {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                if packets.iter().any(|p| is_keyframe_request(p.as_ref())) && !on_request() {
                    break;
                }
            }
            Some(_) => {}
            // Not bound yet (or unbound): look again shortly.
            None => tokio::time::sleep(UNBOUND_RETRY).await,
        }
    }
}

/// The local and remote ends of the selected ICE candidate pair: addresses and kinds.
async fn selected_pair(
    pc: &dyn PeerConnection,
) -> Option<(
    (SocketAddr, Option<CandidateKind>),
    (SocketAddr, Option<CandidateKind>),
)> {
    let sender = pc.get_senders().await.into_iter().next()?;
    let dtls = sender.transport().await.ok()??;
    let pair = dtls
        .ice_transport()
        .get_selected_candidate_pair()
        .await
        .ok()??;
    Some((
        (
            candidate_addr(pair.local())?,
            CandidateKind::of(pair.local()),
        ),
        (
            candidate_addr(pair.remote())?,
            CandidateKind::of(pair.remote()),
        ),
    ))
}

/// Reads the peer connection's statistics and the selected pair.
pub(crate) async fn read_facts(pc: &dyn PeerConnection) -> TransportFacts {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let mut facts = transport_facts(&report);
    if let Some(((local, local_kind), (remote, remote_kind))) = selected_pair(pc).await {
        facts.local_addr = Some(local);
        facts.remote_addr = Some(remote);
        facts.local_kind = local_kind;
        facts.remote_kind = remote_kind;
    }
    facts
}

/// Keeps `facts` fresh while connected.
pub(crate) async fn poll_stats(
    pc: Arc<dyn PeerConnection>,
    facts: Arc<Mutex<TransportFacts>>,
    connected: Arc<AtomicBool>,
) {
    let mut interval = tokio::time::interval(STATS_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if connected.load(Ordering::Acquire) {
            let fresh = read_facts(pc.as_ref()).await;
            *lock(&facts) = fresh;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SendGate;

    /// Pictures of three packets (the last with the marker unless `markers` is false), the
    /// path open as `open` says at each packet: what goes out.
    fn sent(gate: &mut SendGate, open: &[bool], markers: bool) -> Vec<bool> {
        open.iter()
            .enumerate()
            .map(|(n, &open)| gate.admit(3_000 * (n / 3) as u32, markers && n % 3 == 2, open))
            .collect()
    }

    #[test]
    fn sending_stops_at_once_and_starts_again_at_a_picture() {
        // Held in the second packet of the first picture: nothing more goes; resumed in the
        // middle of the third: its tail stays out, the fourth goes whole.
        let open = [
            true, false, false, false, false, false, false, true, true, true, true, true,
        ];
        let out = [
            true, false, false, false, false, false, false, false, false, true, true, true,
        ];
        assert_eq!(sent(&mut SendGate::new(true), &open, true), out);
        // Without markers (lost, or a sender that sets none) a new timestamp starts a picture.
        assert_eq!(sent(&mut SendGate::new(true), &open, false), out);
        // Audio goes as the path allows, packet by packet.
        assert_eq!(sent(&mut SendGate::new(false), &open, true), open);
    }
}
