//! [`WebRtcSession`]: the async driver around one peer connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use ::webrtc::media_stream::track_remote::TrackRemote;
use ::webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceConnectionState,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpSenderId;
use tokio::sync::{mpsc as async_mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::{debug, info};

use super::audio_thread::{AudioInput, AudioThread};
use super::congestion_feed::SharedController;
use super::forwarding::{ForwardedVideo, Forwarding};
use super::hold::Held;
use super::local_media::LocalTrack;
use super::more_streams::{MoreStreams, RemoteStreamSinks};
use super::peer::{
    audio_codec, build_configuration, build_media_engine, build_setting_engine, h264_codec,
};
use super::relay_nudge;
use super::rtt::RttTable;
use super::sdp_check::{
    announce_multistream, check_remote_sdp, receives_audio, sends_audio, sent_video_tracks,
    SdpFacts,
};
use super::stats::{TransportFacts, WebRtcStats};
use super::tasks::{self, LatestSsrc, PrimaryVideo, VideoRoute};
use super::{WebRtcConfig, WebRtcError, WebRtcEvent, VIDEO_MIN_BITRATE, VIDEO_START_BITRATE};
use crate::audio::{AudioSink, AudioSource};
use crate::congestion::CongestionConfig;
use crate::video::h264::H264Level;
use crate::video::stream_thread::{VideoInput, VideoThread};
use crate::video::{VideoSink, VideoSource};

/// The bitrate controller's settings for a session: [`super::VideoConfig::max_bitrate`] the ceiling,
/// [`VIDEO_START_BITRATE`] (or the ceiling, when lower) the start, the source's frame size and
/// rate (else the configured ones) the top of the layer ladder.
fn congestion_config(config: &WebRtcConfig, media: &WebRtcMedia) -> CongestionConfig {
    let video = config.video.unwrap_or_default();
    let (width, height, fps) = match &media.video {
        Some(media) => {
            let format = media.source.format();
            (format.width, format.height, format.fps)
        }
        None => (video.width, video.height, video.fps),
    };
    let max = u64::from(video.max_bitrate.max(1));
    CongestionConfig {
        min_bps: u64::from(VIDEO_MIN_BITRATE).min(max),
        max_bps: max,
        start_bps: u64::from(VIDEO_START_BITRATE).min(max),
        max_width: width,
        max_height: height,
        max_fps: fps.max(1),
    }
}

/// Where a session delivers its events.
pub(super) type EventHandler = Arc<dyn Fn(WebRtcEvent) + Send + Sync>;

/// The media a session carries: what it sends and where it plays what it receives.
pub struct WebRtcMedia {
    /// The microphone (or file, or tone).
    pub audio_source: Box<dyn AudioSource>,
    /// The speaker (or recording).
    pub audio_sink: Box<dyn AudioSink>,
    /// The camera (or file, or test pattern) and the display, when the call has video
    /// ([`WebRtcConfig::video`] set too).
    pub video: Option<WebRtcVideoMedia>,
}

/// The video a session carries.
pub struct WebRtcVideoMedia {
    /// What we send; its format (size, rate) is what the encoder is configured with.
    pub source: Box<dyn VideoSource>,
    /// Where decoded pictures go.
    pub sink: Box<dyn VideoSink>,
    /// Where the peer's further video streams go, one sink each (a conference that sends
    /// every participant as a stream of its own); `None` reads and drops them.
    pub more_streams: Option<RemoteStreamSinks>,
}

impl std::fmt::Debug for WebRtcMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcMedia")
            .field("audio_source", &self.audio_source.format())
            .field("audio_sink", &self.audio_sink.format())
            .field("video", &self.video.as_ref().map(|v| v.source.format()))
            .finish()
    }
}

/// Media handed in at creation, waiting for negotiation to start it.
pub(super) struct PendingMedia {
    pub media: WebRtcMedia,
    pub audio_inputs: mpsc::Receiver<AudioInput>,
    pub video_inputs: Option<mpsc::Receiver<VideoInput>>,
}

/// Where offer/answer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Negotiation {
    Idle,
    OfferSent,
    Done,
    /// Our new offer (once media runs) waits for its answer.
    ReofferSent,
}

/// State shared with the event handler and the tasks.
pub(super) struct Shared {
    pub created_at: Instant,
    pub connected_at: Mutex<Option<Instant>>,
    pub facts: Arc<Mutex<TransportFacts>>,
    pub connected: Arc<AtomicBool>,
    pub closed: Arc<AtomicBool>,
    pub on_event: EventHandler,
    /// Per sender, whether its transceiver's direction sends now (see
    /// [`WebRtcSession::sending_flag`]).
    pub sending: Mutex<HashMap<RTCRtpSenderId, Arc<AtomicBool>>>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The peer connection's event handler: publishes states, hands remote tracks on.
struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    ice_connected: watch::Sender<Option<Instant>>,
    gathered: watch::Sender<bool>,
    tracks: async_mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        debug!(?state, "ICE gathering");
        self.gathered
            .send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        debug!(%state, "ICE connection");
        if matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        ) {
            self.ice_connected
                .send_if_modified(|at| at.is_none() && at.replace(Instant::now()).is_none());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        info!(%state, "peer connection");
        let event = match state {
            RTCPeerConnectionState::Connected => {
                let at = Instant::now();
                lock(&self.shared.connected_at).get_or_insert(at);
                self.shared.connected.store(true, Ordering::Release);
                Some(WebRtcEvent::Connected { at })
            }
            RTCPeerConnectionState::Disconnected => Some(WebRtcEvent::Disconnected),
            RTCPeerConnectionState::Failed => Some(WebRtcEvent::Failed),
            _ => None,
        };
        if !matches!(state, RTCPeerConnectionState::Connected) {
            self.shared.connected.store(false, Ordering::Release);
        }
        self.state.send_replace(state);
        if let Some(event) = event {
            (self.shared.on_event)(event);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

/// One call's media over WebRTC: a peer connection with an Opus track each way, run by tokio
/// tasks for the network side and a media thread for encoding, jitter buffering and decoding.
///
/// # Using it
/// Create it inside a tokio runtime (multi-threaded), then either
/// - **offer**: [`create_offer`](Self::create_offer) → SDP into the INVITE, the answer from the
///   200 OK into [`apply_answer`](Self::apply_answer); or
/// - **answer**: the INVITE's SDP into [`accept_offer`](Self::accept_offer) → SDP for the 200 OK.
///
/// Media starts when negotiation completes; [`wait_connected`](Self::wait_connected) tells when
/// ICE and DTLS are up (or why they failed). [`close`](Self::close) ends it and returns the
/// final statistics. With video configured and video media given, an H.264 track goes each way
/// as well.
pub struct WebRtcSession {
    pub(super) config: WebRtcConfig,
    pub(super) pc: Arc<dyn PeerConnection>,
    pub(super) shared: Arc<Shared>,
    pub(super) state: watch::Receiver<RTCPeerConnectionState>,
    pub(super) ice_connected: watch::Receiver<Option<Instant>>,
    gathered: watch::Receiver<bool>,
    pub(super) negotiation: tokio::sync::Mutex<Negotiation>,
    /// Our DTLS role as SDP names it (`active`, `passive`), settled by the first exchange.
    pub(super) dtls_setup: Mutex<Option<&'static str>>,
    pub(super) rtt: RttTable,
    pub(super) controller: SharedController,
    pub(super) audio_track: LocalTrack,
    pub(super) video_track: Option<LocalTrack>,
    pub(super) audio_inbox: mpsc::Sender<AudioInput>,
    pub(super) video_route: Option<VideoRoute>,
    /// The payload type our pictures go in and the H.264 level the peer named for it, once
    /// video runs; a renegotiation that names another level is followed
    /// ([`WebRtcSession::follow_peer_level`]).
    pub(super) video_level: Mutex<Option<(u8, Option<H264Level>)>>,
    /// The peer's further video streams (only with video of our own).
    more_streams: Option<Arc<MoreStreams>>,
    /// The nudges of the relayed setup, once started ([`WebRtcSession::start_relay_nudges`]),
    /// to stop when the relay turns out to have failed.
    pub(super) relay_nudges: Mutex<Option<Vec<AbortHandle>>>,
    /// The (stream id, track id) the peer's description sends on its first video m-line:
    /// the call's own video (see [`tasks::route_remote_tracks`]).
    primary_video: PrimaryVideo,
    /// What our hold changed (see [`WebRtcSession::hold_offer`]).
    pub(super) held: Mutex<Held>,
    /// The streams we forward, with their tracks (see [`WebRtcSession::forward_video`]).
    pub(super) forwarded: Mutex<Vec<(ForwardedVideo, Forwarding)>>,
    /// Tracks that forwarded a stream no longer forwarded: the next stream forwarded takes
    /// one (its m-line) before a new track is added.
    pub(super) retired: Mutex<Vec<Forwarding>>,
    pub(super) pending: Mutex<Option<PendingMedia>>,
    pub(super) audio: Mutex<Option<AudioThread>>,
    pub(super) video: Mutex<Option<VideoThread>>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Behind a mutex so that the session is `Sync` (shared by the engine's tasks).
    events: Mutex<Receiver<WebRtcEvent>>,
}

impl std::fmt::Debug for WebRtcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcSession")
            .field("state", &*self.state.borrow())
            .field("audio_ssrc", &self.audio_track.ssrc)
            .finish_non_exhaustive()
    }
}

impl WebRtcSession {
    /// Builds the peer connection (binding its UDP sockets) with `media` to carry; events are
    /// queued for [`WebRtcSession::try_event`].
    pub async fn new(config: WebRtcConfig, media: WebRtcMedia) -> Result<Self, WebRtcError> {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let handler: EventHandler = Arc::new(move |event| {
            let _ = lock(&tx).send(event);
        });
        Self::build(config, media, handler, rx).await
    }

    /// As [`WebRtcSession::new`], handing each event to `on_event` as it happens (from a tokio
    /// task or the media thread; it must return quickly) instead of queueing it.
    pub async fn with_handler(
        config: WebRtcConfig,
        media: WebRtcMedia,
        on_event: impl Fn(WebRtcEvent) + Send + Sync + 'static,
    ) -> Result<Self, WebRtcError> {
        let (_, rx) = mpsc::channel();
        Self::build(config, media, Arc::new(on_event), rx).await
    }

    async fn build(
        config: WebRtcConfig,
        mut media: WebRtcMedia,
        on_event: EventHandler,
        events: Receiver<WebRtcEvent>,
    ) -> Result<Self, WebRtcError> {
        let first_codec = config
            .audio
            .codecs
            .first()
            .copied()
            .ok_or(WebRtcError::NoCommonCodec("audio"))?;
        let rtt = RttTable::default();
        let controller = SharedController::new(congestion_config(&config, &media));
        let (engine, registry) = build_media_engine(&config, rtt.clone(), controller.clone())?;
        let shared = Arc::new(Shared {
            created_at: Instant::now(),
            connected_at: Mutex::new(None),
            facts: Arc::new(Mutex::new(TransportFacts::default())),
            connected: Arc::new(AtomicBool::new(false)),
            closed: Arc::new(AtomicBool::new(false)),
            on_event,
            sending: Mutex::default(),
        });
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (ice_tx, ice_connected) = watch::channel(None);
        let (tracks_tx, tracks_rx) = async_mpsc::unbounded_channel();
        let handler = Arc::new(Handler {
            state: state_tx,
            ice_connected: ice_tx,
            gathered: gathered_tx,
            tracks: tracks_tx,
            shared: Arc::clone(&shared),
        });
        let pc = PeerConnectionBuilder::new()
            .with_configuration(build_configuration(&config))
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(build_setting_engine(&config))
            .with_handler(handler)
            .with_udp_addrs(config.udp_addrs.clone())
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let stream_id = if config.cname.is_empty() {
            format!("callisto-{:016x}", rand::random::<u64>())
        } else {
            config.cname.clone()
        };
        let audio_track = LocalTrack::new(
            &stream_id,
            "audio",
            RtpCodecKind::Audio,
            audio_codec(first_codec),
        );
        let (audio_inbox, audio_inputs) = mpsc::channel();
        let with_video = config.video.is_some() && media.video.is_some();
        let (video_track, video_route, video_inputs) = if with_video {
            let (inbox, inputs) = mpsc::channel();
            let route = VideoRoute {
                inbox,
                thread: Arc::new(Mutex::new(None)),
                remote: Arc::new(Mutex::new(None)),
                taps: Arc::default(),
                media_ssrc: LatestSsrc::default(),
            };
            let track = LocalTrack::new(&stream_id, "video", RtpCodecKind::Video, h264_codec());
            (Some(track), Some(route), Some(inputs))
        } else {
            (None, None, None)
        };
        let more_streams = match (&video_track, media.video.as_mut()) {
            (Some(track), Some(video)) => Some(Arc::new(MoreStreams::new(
                video.more_streams.take(),
                Arc::clone(&shared.connected),
                track.ssrc,
                config.video.map_or(0, |v| v.max_bitrate),
            ))),
            _ => None,
        };
        let session = WebRtcSession {
            config,
            pc,
            shared,
            state,
            ice_connected,
            gathered,
            negotiation: tokio::sync::Mutex::new(Negotiation::Idle),
            dtls_setup: Mutex::new(None),
            rtt,
            controller,
            audio_track,
            video_track,
            audio_inbox,
            video_route,
            video_level: Mutex::new(None),
            more_streams,
            relay_nudges: Mutex::new(None),
            primary_video: PrimaryVideo::default(),
            forwarded: Mutex::new(Vec::new()),
            retired: Mutex::new(Vec::new()),
            held: Mutex::default(),
            pending: Mutex::new(Some(PendingMedia {
                media,
                audio_inputs,
                video_inputs,
            })),
            audio: Mutex::new(None),
            video: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            events: Mutex::new(events),
        };
        session.spawn(tasks::route_remote_tracks(
            tracks_rx,
            session.audio_inbox.clone(),
            session.video_route.clone(),
            session.more_streams.clone(),
            session.primary_video.clone(),
        ));
        session.spawn(tasks::poll_stats(
            Arc::clone(&session.pc),
            Arc::clone(&session.shared.facts),
            Arc::clone(&session.shared.connected),
        ));
        Ok(session)
    }

    pub(super) fn spawn(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> AbortHandle {
        let handle = tokio::spawn(task);
        let abort = handle.abort_handle();
        lock(&self.tasks).push(handle);
        abort
    }

    /// Makes an offer: adds our tracks, applies the offer locally, waits for ICE gathering to
    /// complete (SIP does not trickle) and returns the SDP with every candidate.
    pub async fn create_offer(&self) -> Result<String, WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        if *negotiation != Negotiation::Idle {
            return Err(WebRtcError::Negotiation(
                "an offer was already made or answered",
            ));
        }
        self.add_tracks().await?;
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let sdp = self.gathered_sdp().await?;
        *negotiation = Negotiation::OfferSent;
        Ok(sdp)
    }

    /// Applies the peer's answer to our offer and starts media.
    pub async fn apply_answer(&self, sdp: &str) -> Result<(), WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        if *negotiation != Negotiation::OfferSent {
            return Err(WebRtcError::Negotiation("an answer without an offer"));
        }
        let facts = self.apply_remote_answer(sdp).await?;
        *lock(&self.dtls_setup) = super::sdp_check::settled_dtls_role(sdp, true);
        if let Some(local) = self.pc.local_description().await {
            if relay_nudge::offers_relay_candidate(&local.sdp) {
                self.start_relay_nudges();
            }
        }
        self.start_media(facts.video).await?;
        self.bind_forwarded().await;
        self.follow_descriptions().await;
        *negotiation = Negotiation::Done;
        Ok(())
    }

    /// Answers the peer's offer: applies it, adds our tracks, waits for ICE gathering and
    /// returns the answer SDP; media starts at once.
    pub async fn accept_offer(&self, sdp: &str) -> Result<String, WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        if *negotiation != Negotiation::Idle {
            return Err(WebRtcError::Negotiation(
                "an offer while one is outstanding",
            ));
        }
        let facts = self.apply_offer(sdp).await?;
        self.start_relay_nudges();
        self.add_tracks().await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        let answer = self.gathered_sdp().await?;
        *lock(&self.dtls_setup) = super::sdp_check::settled_dtls_role(&answer, false);
        self.keep_relay_nudges(&answer);
        self.start_media(facts.video).await?;
        self.follow_descriptions().await;
        *negotiation = Negotiation::Done;
        Ok(answer)
    }

    /// Answers a new offer from the peer once media runs (a re-INVITE or UPDATE: hold and
    /// resume, or a conference server adding and removing streams): applies it and returns
    /// our answer, with the candidates already gathered (ICE goes on; an ICE restart is not
    /// supported), our DTLS role kept, each stream's direction what we want narrowed by what
    /// the offer allows (`a=sendonly` is answered `a=recvonly`). Streams the offer adds arrive
    /// as further remote tracks, further streams it no longer sends end (sinks finished); media
    /// not negotiated at first (video in a call that started without it) stays off. An offer
    /// that crosses ours while ours awaits its answer is refused with [`WebRtcError::Glare`].
    pub async fn accept_reoffer(&self, sdp: &str) -> Result<String, WebRtcError> {
        let negotiation = self.negotiation.lock().await;
        match *negotiation {
            Negotiation::Done => {}
            Negotiation::ReofferSent => return Err(WebRtcError::Glare),
            Negotiation::Idle | Negotiation::OfferSent => {
                return Err(WebRtcError::Negotiation(
                    "a new offer before the first negotiation completed",
                ))
            }
        }
        // What we want of each stream, learnt before the offer changes the directions.
        self.learn_wanted().await;
        self.apply_offer(sdp).await?;
        let answered = async {
            self.narrow_to_offer(sdp).await?;
            let answer = self.pc.create_answer(None).await?;
            self.pc.set_local_description(answer).await?;
            Ok::<_, WebRtcError>(self.keep_dtls_role(self.gathered_sdp().await?))
        };
        match answered.await {
            Ok(answer) => {
                if let (Some(more), Some(sent)) = (&self.more_streams, sent_video_tracks(sdp)) {
                    more.follow_sent(&sent);
                }
                self.follow_descriptions().await;
                Ok(answer)
            }
            Err(e) => {
                // The call goes on as it was: the offer is rolled back.
                if let Ok(rollback) = RTCSessionDescription::rollback(None) {
                    let _ = self.pc.set_remote_description(rollback).await;
                }
                self.follow_descriptions().await;
                Err(e)
            }
        }
    }

    /// Makes a new offer once media runs (a conference host announcing the streams it
    /// forwards, [`WebRtcSession::forward_video`]): the SDP for a re-INVITE, with the
    /// candidates already gathered. Its answer goes to [`WebRtcSession::apply_reanswer`].
    pub async fn create_reoffer(&self) -> Result<String, WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        self.reoffer(&mut negotiation).await
    }

    /// [`WebRtcSession::create_reoffer`] with the negotiation already held.
    pub(super) async fn reoffer(
        &self,
        negotiation: &mut Negotiation,
    ) -> Result<String, WebRtcError> {
        if *negotiation != Negotiation::Done {
            return Err(WebRtcError::Negotiation(
                "a new offer while negotiation is under way",
            ));
        }
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let sdp = match self.gathered_sdp().await {
            Ok(sdp) => sdp,
            Err(e) => {
                let _ = self.rollback_local_offer().await;
                return Err(e);
            }
        };
        *negotiation = Negotiation::ReofferSent;
        Ok(sdp)
    }

    /// Applies the peer's answer to [`WebRtcSession::create_reoffer`]'s offer: the streams
    /// it announced start (and, answering a restated offer, the peer's streams it no longer
    /// sends end, those it sends again come back).
    pub async fn apply_reanswer(&self, sdp: &str) -> Result<(), WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        if *negotiation != Negotiation::ReofferSent {
            return Err(WebRtcError::Negotiation("an answer without a new offer"));
        }
        if let Err(e) = self.apply_remote_answer(sdp).await {
            // An unusable answer withdraws the offer: the call goes on as before it.
            self.withdraw_reoffer(&mut negotiation).await;
            return Err(e);
        }
        self.bind_forwarded().await;
        // The answer to a restated offer says which of the peer's streams it sends now (not
        // what its withdrawn offer said). Other answers are not followed: one to our hold
        // sends nothing, and the streams are paused, not gone.
        let restated = self.hold_settled();
        if let (true, Some(more), Some(sent)) =
            (restated, &self.more_streams, sent_video_tracks(sdp))
        {
            more.follow_sent(&sent);
        }
        self.follow_descriptions().await;
        *negotiation = Negotiation::Done;
        Ok(())
    }

    /// After an offer/answer (or its rollback): the audio thread learns whether the peer is
    /// to send audio — its description sends and ours receives; the media timeout waits
    /// while either holds the other — the track router which track is the call's own
    /// video, and each of our streams whether the peer takes it.
    async fn follow_descriptions(&self) {
        let remote = self.pc.remote_description().await;
        let remote = remote.as_ref().map_or("", |d| d.sdp.as_str());
        self.follow_remote_directions(remote).await;
        self.follow_peer_level(remote);
        let local = self.pc.local_description().await;
        let receives = local.as_ref().is_none_or(|d| receives_audio(&d.sdp));
        self.primary_video.learn(remote);
        let sends = sends_audio(remote) && receives;
        let _ = self.audio_inbox.send(AudioInput::PeerSends(sends));
    }

    /// Checks the peer's answer and applies it as the remote description.
    async fn apply_remote_answer(&self, sdp: &str) -> Result<SdpFacts, WebRtcError> {
        let facts = check_remote_sdp(sdp)?;
        let answer = RTCSessionDescription::answer(sdp.to_owned())
            .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
        self.set_remote(answer).await?;
        Ok(facts)
    }

    /// Applies `description` as the remote one. The call's own video track is known before
    /// (its tracks may arrive at once), and learnt again from what holds when it is refused.
    async fn set_remote(&self, description: RTCSessionDescription) -> Result<(), WebRtcError> {
        self.primary_video.learn(&description.sdp);
        let applied = self.pc.set_remote_description(description).await;
        if let Err(e) = applied {
            let current = self.pc.remote_description().await;
            self.primary_video
                .learn(current.as_ref().map_or("", |d| d.sdp.as_str()));
            return Err(WebRtcError::BadSdp(e.to_string()));
        }
        Ok(())
    }

    /// Checks the peer's offer (it must have audio) and applies it as the remote description.
    async fn apply_offer(&self, sdp: &str) -> Result<SdpFacts, WebRtcError> {
        let facts = check_remote_sdp(sdp)?;
        if !facts.audio {
            return Err(WebRtcError::NoCommonCodec("audio"));
        }
        let offer = RTCSessionDescription::offer(sdp.to_owned())
            .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
        self.set_remote(offer).await?;
        Ok(facts)
    }

    /// The local description once gathering is complete (bounded by the gathering timeout).
    async fn gathered_sdp(&self) -> Result<String, WebRtcError> {
        let limit = self.config.gathering_timeout;
        let mut gathered = self.gathered.clone();
        tokio::time::timeout(limit, gathered.wait_for(|done| *done))
            .await
            .map_err(|_| WebRtcError::GatheringTimeout(limit))?
            .map_err(|_| WebRtcError::Closed)?;
        let description = self
            .pc
            .local_description()
            .await
            .ok_or(WebRtcError::Negotiation("no local description"))?;
        // A session that shows every stream it is sent says so to conference hosts.
        Ok(if self.more_streams.as_ref().is_some_and(|m| m.shown()) {
            announce_multistream(&description.sdp)
        } else {
            description.sdp
        })
    }

    /// Waits until ICE and DTLS are up, at most [`WebRtcConfig::connect_timeout`]; fails
    /// early with [`WebRtcError::DtlsHandshake`] when ICE is up but DTLS has not completed
    /// [`WebRtcConfig::dtls_timeout`] later. (`rtc` 0.21 reports a failed DTLS handshake — the
    /// peer's certificate not matching its `a=fingerprint` — only in its log: the connection
    /// stays "connecting", so this bound is what turns it into an error.)
    pub async fn wait_connected(&self) -> Result<(), WebRtcError> {
        let limit = self.config.connect_timeout;
        let dtls_limit = self.config.dtls_timeout;
        let overall = tokio::time::sleep(limit);
        tokio::pin!(overall);
        let mut state = self.state.clone();
        let mut ice = self.ice_connected.clone();
        loop {
            match *state.borrow_and_update() {
                RTCPeerConnectionState::Connected => return Ok(()),
                RTCPeerConnectionState::Failed => return Err(WebRtcError::ConnectFailed),
                RTCPeerConnectionState::Closed => return Err(WebRtcError::Closed),
                _ => {}
            }
            let dtls_deadline = ice.borrow_and_update().map(|at| at + dtls_limit);
            let dtls_expired = async move {
                match dtls_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut overall => return Err(WebRtcError::ConnectTimeout(limit)),
                _ = dtls_expired => return Err(WebRtcError::DtlsHandshake(dtls_limit)),
                changed = state.changed() => changed.map_err(|_| WebRtcError::Closed)?,
                changed = ice.changed() => changed.map_err(|_| WebRtcError::Closed)?,
            }
        }
    }

    /// Asks the peer for a keyframe of its video (a PLI; at most one per 300 ms), for
    /// example when a display starts showing the call. Without video, nothing happens.
    pub fn request_keyframe(&self) {
        if let Some(route) = &self.video_route {
            route.deliver(VideoInput::RequestKeyframe);
        }
    }

    /// The video streams the peer sends, as it labelled them (`a=msid`), in order of
    /// arrival: the first is the call's own (unless the peer stopped sending it), the others
    /// the further streams of a conference that sends each participant as a stream of its
    /// own. Empty without video.
    pub fn remote_video_streams(&self) -> Vec<super::RemoteVideoStream> {
        self.more_streams
            .as_ref()
            .map(|more| more.streams())
            .unwrap_or_default()
    }

    /// Whether ICE and DTLS are up now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// The next queued event, if any (empty for sessions made with
    /// [`WebRtcSession::with_handler`]).
    pub fn try_event(&self) -> Option<WebRtcEvent> {
        lock(&self.events).try_recv().ok()
    }

    /// A snapshot of the statistics (the transport part at most 500 ms old).
    pub fn stats(&self) -> WebRtcStats {
        let audio = lock(&self.audio).as_ref().map(AudioThread::stats);
        let video = lock(&self.video).as_ref().map(VideoThread::stats);
        let more_video = self
            .more_streams
            .as_ref()
            .map(|more| more.stats())
            .unwrap_or_default();
        self.compose(audio, video, more_video)
    }

    fn compose(
        &self,
        audio: Option<crate::session::AudioStats>,
        video: Option<super::stats::VideoStats>,
        more_video: Vec<(super::RemoteVideoStream, super::stats::VideoStats)>,
    ) -> WebRtcStats {
        let facts = *lock(&self.shared.facts);
        let video = video.map(|mut video| {
            video.nacks_received = self.controller.nacks_received();
            video
        });
        let audio = audio.map(|mut audio| {
            audio.rtt_ms = self
                .rtt
                .get(self.audio_track.ssrc)
                .map(|rtt| rtt.as_secs_f64() * 1000.0);
            if let Some(remote) = facts.remote_addr {
                audio.remote_addr = remote;
            }
            audio
        });
        WebRtcStats {
            audio,
            created_at: self.shared.created_at,
            connected_at: *lock(&self.shared.connected_at),
            local_addr: facts.local_addr,
            remote_addr: facts.remote_addr,
            local_kind: facts.local_kind,
            remote_kind: facts.remote_kind,
            ice_rtt_ms: facts.ice_rtt_ms,
            video,
            more_video,
        }
    }

    /// Ends the session: stops the media thread (the sink is finished), closes the peer
    /// connection and returns the final statistics.
    pub async fn close(self) -> WebRtcStats {
        if self.is_connected() {
            let facts = tasks::read_facts(self.pc.as_ref()).await;
            *lock(&self.shared.facts) = facts;
        }
        self.shared.closed.store(true, Ordering::Release);
        let audio = lock(&self.audio).take().map(|mut thread| thread.stop());
        let video = lock(&self.video).take().map(|mut thread| thread.stop());
        let more_video = self
            .more_streams
            .as_ref()
            .map(|more| more.stop())
            .unwrap_or_default();
        if let Err(e) = self.pc.close().await {
            debug!(error = %e, "closing the peer connection");
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.compose(audio, video, more_video)
    }
}

impl Drop for WebRtcSession {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}
