//! [`WebRtcSession`]: the async driver around one peer connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use ::webrtc::media_stream::track_local::TrackLocal;
use ::webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use ::webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceConnectionState,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, StatsSelector,
};
use ::webrtc::rtp_transceiver::RtpSender;
use bytes::Bytes;
use rand::Rng;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::shared::marshal::Marshal;
use tokio::sync::{mpsc as async_mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::audio_thread::{AudioInput, AudioThread, AudioThreadConfig};
use super::peer::{
    audio_codec, build_configuration, build_media_engine, build_setting_engine,
    negotiated_audio_codec,
};
use super::rtt::RttTable;
use super::sdp_check::check_remote_sdp;
use super::stats::{candidate_addr, transport_facts, TransportFacts, WebRtcStats};
use super::{WebRtcConfig, WebRtcError, WebRtcEvent};
use crate::audio::{AudioSink, AudioSource};
use crate::rtp::RtpPacket;
use crate::session::{AudioStreamConfig, SessionOptions};

/// How often the peer connection's statistics (selected pair, RTT) are read.
const STATS_INTERVAL: Duration = Duration::from_millis(500);

/// Where a session delivers its events.
type EventHandler = Arc<dyn Fn(WebRtcEvent) + Send + Sync>;

/// The media a session carries: what it sends and where it plays what it receives.
pub struct WebRtcMedia {
    /// The microphone (or file, or tone).
    pub audio_source: Box<dyn AudioSource>,
    /// The speaker (or recording).
    pub audio_sink: Box<dyn AudioSink>,
}

impl std::fmt::Debug for WebRtcMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcMedia")
            .field("audio_source", &self.audio_source.format())
            .field("audio_sink", &self.audio_sink.format())
            .finish()
    }
}

/// Where offer/answer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Negotiation {
    Idle,
    OfferSent,
    Done,
}

/// State shared with the event handler and the tasks.
struct Shared {
    created_at: Instant,
    connected_at: Mutex<Option<Instant>>,
    facts: Mutex<TransportFacts>,
    connected: AtomicBool,
    on_event: EventHandler,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
/// final statistics.
pub struct WebRtcSession {
    config: WebRtcConfig,
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    state: watch::Receiver<RTCPeerConnectionState>,
    ice_connected: watch::Receiver<Option<Instant>>,
    gathered: watch::Receiver<bool>,
    negotiation: tokio::sync::Mutex<Negotiation>,
    audio_ssrc: u32,
    rtt: RttTable,
    audio_track: Arc<TrackLocalStaticRTP>,
    audio_sender: Mutex<Option<Arc<dyn RtpSender>>>,
    audio_inbox: mpsc::Sender<AudioInput>,
    pending: Mutex<Option<(WebRtcMedia, Receiver<AudioInput>)>>,
    audio: Mutex<Option<AudioThread>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    events: Receiver<WebRtcEvent>,
}

impl std::fmt::Debug for WebRtcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcSession")
            .field("state", &*self.state.borrow())
            .field("audio_ssrc", &self.audio_ssrc)
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
        media: WebRtcMedia,
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
        let (engine, registry) = build_media_engine(&config, rtt.clone())?;
        let shared = Arc::new(Shared {
            created_at: Instant::now(),
            connected_at: Mutex::new(None),
            facts: Mutex::new(TransportFacts::default()),
            connected: AtomicBool::new(false),
            on_event,
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

        let audio_ssrc = rand::thread_rng().gen::<u32>() | 1;
        let audio_track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            format!("callisto-{audio_ssrc:08x}"),
            format!("audio-{audio_ssrc:08x}"),
            "audio".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(audio_ssrc),
                    ..Default::default()
                },
                codec: audio_codec(first_codec),
                ..Default::default()
            }],
        )));
        let (audio_inbox, audio_inputs) = mpsc::channel();
        let session = WebRtcSession {
            config,
            pc,
            shared,
            state,
            ice_connected,
            gathered,
            negotiation: tokio::sync::Mutex::new(Negotiation::Idle),
            audio_ssrc,
            rtt,
            audio_track,
            audio_sender: Mutex::new(None),
            audio_inbox,
            pending: Mutex::new(Some((media, audio_inputs))),
            audio: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            events,
        };
        session.spawn(route_remote_tracks(tracks_rx, session.audio_inbox.clone()));
        session.spawn(poll_stats(
            Arc::clone(&session.pc),
            Arc::clone(&session.shared),
        ));
        Ok(session)
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        lock(&self.tasks).push(tokio::spawn(task));
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
        check_remote_sdp(sdp)?;
        let answer = RTCSessionDescription::answer(sdp.to_owned())
            .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
        self.start_media().await?;
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
        let facts = check_remote_sdp(sdp)?;
        if !facts.audio {
            return Err(WebRtcError::NoCommonCodec("audio"));
        }
        let offer = RTCSessionDescription::offer(sdp.to_owned())
            .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
        self.add_tracks().await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        let sdp = self.gathered_sdp().await?;
        self.start_media().await?;
        *negotiation = Negotiation::Done;
        Ok(sdp)
    }

    async fn add_tracks(&self) -> Result<(), WebRtcError> {
        if lock(&self.audio_sender).is_some() {
            return Ok(());
        }
        let track: Arc<dyn TrackLocal> = Arc::clone(&self.audio_track) as Arc<dyn TrackLocal>;
        let sender = self.pc.add_track(track).await?;
        *lock(&self.audio_sender) = Some(sender);
        Ok(())
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
        Ok(description.sdp)
    }

    /// Starts the audio thread on the negotiated codec and the task that writes its RTP.
    async fn start_media(&self) -> Result<(), WebRtcError> {
        let sender = lock(&self.audio_sender)
            .clone()
            .ok_or(WebRtcError::Negotiation("no audio sender"))?;
        let parameters = sender.get_parameters().await?;
        let (codec, payload_type) = parameters
            .rtp_parameters
            .codecs
            .iter()
            .find_map(|c| {
                negotiated_audio_codec(&c.rtp_codec.mime_type).map(|k| (k, c.payload_type))
            })
            .ok_or(WebRtcError::NoCommonCodec("audio"))?;
        let Some((media, inputs)) = lock(&self.pending).take() else {
            return Err(WebRtcError::Negotiation("media already started"));
        };
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
                ssrc: self.audio_ssrc,
                options: SessionOptions::default(),
            },
            media.audio_source,
            media.audio_sink,
            (self.audio_inbox.clone(), inputs),
            outgoing,
            Box::new(move |event| on_event(WebRtcEvent::Audio(event))),
        )?;
        *lock(&self.audio) = Some(thread);
        let track: Arc<dyn TrackLocal> = Arc::clone(&self.audio_track) as Arc<dyn TrackLocal>;
        self.spawn(write_rtp(outgoing_rx, track, Arc::clone(&self.shared)));
        Ok(())
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

    /// Whether ICE and DTLS are up now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// The next queued event, if any (empty for sessions made with
    /// [`WebRtcSession::with_handler`]).
    pub fn try_event(&self) -> Option<WebRtcEvent> {
        self.events.try_recv().ok()
    }

    /// A snapshot of the statistics (the transport part at most 500 ms old).
    pub fn stats(&self) -> WebRtcStats {
        let audio = lock(&self.audio).as_ref().map(AudioThread::stats);
        self.compose(audio)
    }

    fn compose(&self, audio: Option<crate::session::AudioStats>) -> WebRtcStats {
        let facts = *lock(&self.shared.facts);
        let audio = audio.map(|mut audio| {
            audio.rtt_ms = self
                .rtt
                .get(self.audio_ssrc)
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
            ice_rtt_ms: facts.ice_rtt_ms,
        }
    }

    /// Ends the session: stops the media thread (the sink is finished), closes the peer
    /// connection and returns the final statistics.
    pub async fn close(self) -> WebRtcStats {
        let audio = lock(&self.audio).take().map(|mut thread| thread.stop());
        if let Err(e) = self.pc.close().await {
            debug!(error = %e, "closing the peer connection");
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.compose(audio)
    }
}

impl Drop for WebRtcSession {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

/// Sends each remote track's RTP to the media thread that plays it.
async fn route_remote_tracks(
    mut tracks: async_mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    audio: mpsc::Sender<AudioInput>,
) {
    while let Some(track) = tracks.recv().await {
        let kind = track.kind().await;
        debug!(?kind, "remote track");
        if kind != RtpCodecKind::Audio {
            continue;
        }
        let audio = audio.clone();
        tokio::spawn(async move {
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
        });
    }
}

/// Writes the media thread's RTP to the local track; drops it while not connected.
async fn write_rtp(
    mut packets: async_mpsc::UnboundedReceiver<RtpPacket>,
    track: Arc<dyn TrackLocal>,
    shared: Arc<Shared>,
) {
    let mut failures = 0u64;
    while let Some(packet) = packets.recv().await {
        if !shared.connected.load(Ordering::Acquire) {
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

/// The local and remote addresses of the selected ICE candidate pair.
async fn selected_pair(pc: &dyn PeerConnection) -> Option<(SocketAddr, SocketAddr)> {
    let sender = pc.get_senders().await.into_iter().next()?;
    let dtls = sender.transport().await.ok()??;
    let pair = dtls
        .ice_transport()
        .get_selected_candidate_pair()
        .await
        .ok()??;
    Some((
        candidate_addr(pair.local())?,
        candidate_addr(pair.remote())?,
    ))
}

/// Reads the selected pair and RTT from the peer connection's statistics.
async fn poll_stats(pc: Arc<dyn PeerConnection>, shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(STATS_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if !shared.connected.load(Ordering::Acquire) {
            continue;
        }
        let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
        let mut facts = transport_facts(&report);
        if let Some((local, remote)) = selected_pair(pc.as_ref()).await {
            facts.local_addr = Some(local);
            facts.remote_addr = Some(remote);
        }
        *lock(&shared.facts) = facts;
    }
}
