//! Calls: where SIP meets media (DESIGN.md: the engine turns a negotiated SDP into a session).
//!
//! For each call the engine holds the SIP call (`callisto_signaling::call`, through the
//! `Endpoint`), the offer/answer state (`SdpSession`) and, once both sides agreed, a classic
//! media session (`callisto_media::session::ClassicSession`) running on its own thread.
//!
//! - Outgoing: an RTP socket is bound first, its port goes into the offer, the INVITE carries
//!   it; the answer (in a 18x for early media, or in the 2xx) starts the media.
//! - Incoming: the offer is answered as soon as the INVITE arrives (a `488` when no stream is
//!   acceptable, `400` when the SDP is malformed); the call rings until the application answers,
//!   and media starts with the 200.
//! - Re-INVITEs carry hold (`sendonly`/`inactive`) and resume both ways; the media session is
//!   updated in place, so SSRC and sequence numbers run on.
//! - DTMF goes as RFC 4733 events when both sides negotiated `telephone-event`, else as SIP
//!   INFO (`application/dtmf-relay`); both kinds are reported when received.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callisto_media::audio::{
    AudioFormat, AudioSink, AudioSource, EndOfFile, NullSink, SilenceSource, ToneSource,
    WavRecorder, WavSource,
};
use callisto_media::codec::{AudioCodecKind, EncoderConfig};
use callisto_media::rtp::{DtmfRelay, SrtpKeyMaterial, SrtpProfile};
use callisto_media::session::{
    AudioStats, AudioStreamConfig, ClassicSession, ClassicSessionConfig, MediaDirection,
    MediaEvent, MediaUpdate, SrtpKeys, TelephoneEventConfig,
};
use callisto_signaling::auth::Credentials;
use callisto_signaling::call::{Body, CallEvent, CallId, OutgoingCallConfig};
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::{
    self, AudioPolicy, Direction, LocalMedia, NegotiatedAudio, OfferKind, SdpSession, SrtpSuite,
};
use callisto_signaling::transport::Target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;

use super::EngineEvent;

/// The application's name for a call, chosen before the call exists (outgoing) or by the
/// engine (incoming).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// What a call plays to the other side.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioInput {
    /// A sine tone.
    Tone { hz: f64 },
    /// A 16-bit PCM WAV file, played in a loop.
    File(PathBuf),
    /// Nothing audible.
    Silence,
}

/// The media side of a call: what it plays, where it records, what it offers and accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaOptions {
    pub input: AudioInput,
    /// A WAV file to record what the other side sends.
    pub record: Option<PathBuf>,
    pub policy: AudioPolicy,
}

impl Default for MediaOptions {
    fn default() -> Self {
        MediaOptions {
            input: AudioInput::Silence,
            record: None,
            policy: AudioPolicy::default(),
        }
    }
}

/// Something that happened to a call, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum CallUpdate {
    /// A call arrived and rings; answer it with `Command::Answer`.
    Incoming {
        from: String,
        display_name: Option<String>,
        to: String,
    },
    /// The callee's phone rings.
    Ringing,
    /// The call is up and media flows.
    Answered { codec: String, srtp: bool },
    /// The call was put on hold (by the other side when `by_remote`).
    Held { by_remote: bool },
    /// The call was taken off hold.
    Resumed { by_remote: bool },
    /// The other side pressed a key.
    Dtmf { digit: char },
    /// The call did not connect.
    Failed {
        code: Option<u16>,
        reason: String,
        cause: String,
    },
    /// The call is over.
    Ended {
        by_remote: bool,
        reason: String,
        summary: CallSummary,
    },
}

/// What a finished call measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    /// From the moment the call was up to its end.
    pub duration: Duration,
    /// From the INVITE (sent or received) to the call being up.
    pub setup: Option<Duration>,
    /// From the INVITE (sent or received) to the first RTP packet from the other side.
    pub first_rtp: Option<Duration>,
    pub audio: Option<AudioSummary>,
}

/// The audio stream's figures at the end of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSummary {
    pub codec: String,
    pub srtp: bool,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub lost: u64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    pub discarded: u64,
    pub concealed_frames: u64,
}

impl From<&AudioStats> for AudioSummary {
    fn from(stats: &AudioStats) -> Self {
        AudioSummary {
            codec: stats.codec.clone(),
            srtp: stats.srtp,
            tx_packets: stats.tx_packets,
            rx_packets: stats.rx_packets,
            lost: stats.lost,
            jitter_ms: stats.jitter_ms,
            rtt_ms: stats.rtt_ms,
            discarded: stats.discarded,
            concealed_frames: stats.concealed_frames,
        }
    }
}

/// Who we are in an outgoing call and where its INVITE goes.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    pub from: rsip::Uri,
    pub to: rsip::Uri,
    pub target: Target,
    /// Our SIP address (Via, Contact); its IP also carries the media.
    pub local_sip: SocketAddr,
    pub credentials: Option<Credentials>,
    pub media: MediaOptions,
}

/// How long an INFO DTMF digit is reported to last.
const INFO_DTMF_DURATION: Duration = Duration::from_millis(160);
/// How long an RFC 4733 digit is held.
const RTP_DTMF_DURATION: Duration = Duration::from_millis(120);

struct Call {
    key: CallKey,
    id: CallId,
    media: MediaOptions,
    sdp: SdpSession,
    local: LocalMedia,
    /// The RTP socket, until the media session takes it.
    socket: Option<UdpSocket>,
    session: Option<ClassicSession>,
    negotiated: Option<NegotiatedAudio>,
    /// Incoming: the answer to send with the 200.
    prepared_answer: Option<Body>,
    started: Instant,
    established: Option<Instant>,
    announced_ringing: bool,
    local_hold: bool,
    /// The hold state our pending re-INVITE asks for.
    pending_hold: Option<bool>,
    remote_hold: bool,
}

/// The engine's calls.
pub(super) struct Calls {
    calls: HashMap<CallKey, Call>,
    by_id: HashMap<CallId, CallKey>,
    /// Shared with [`super::EngineHandle::new_call_key`], so keys never collide.
    keys: Arc<AtomicU64>,
    /// Media for incoming calls; `None` declines them.
    incoming: Option<MediaOptions>,
    incoming_count: u64,
    rng: StdRng,
}

impl Calls {
    pub(super) fn new(keys: Arc<AtomicU64>) -> Self {
        Calls {
            calls: HashMap::new(),
            by_id: HashMap::new(),
            keys,
            incoming: None,
            incoming_count: 0,
            rng: StdRng::from_entropy(),
        }
    }

    pub(super) fn accept_incoming(&mut self, media: Option<MediaOptions>) {
        self.incoming = media;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub(super) fn has_media(&self) -> bool {
        self.calls.values().any(|c| c.session.is_some())
    }

    pub(super) fn keys(&self) -> Vec<CallKey> {
        self.calls.keys().copied().collect()
    }

    /// Places a call: binds the RTP socket, makes the offer, sends the INVITE.
    pub(super) fn start(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        call: OutgoingCall,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let fail = |reason: String| {
            let _ = events.send(EngineEvent::Call {
                key,
                update: CallUpdate::Failed {
                    code: None,
                    reason,
                    cause: "local error".into(),
                },
            });
        };
        let ip = call.local_sip.ip();
        let (socket, local) = match bind_rtp(ip) {
            Ok(bound) => bound,
            Err(error) => return fail(format!("cannot open an RTP port: {error}")),
        };
        let mut sdp = SdpSession::new(ip, &mut self.rng);
        let offer = match sdp.create_offer(
            &local,
            &call.media.policy,
            Direction::SendRecv,
            &mut self.rng,
        ) {
            Ok(offer) => offer,
            Err(error) => return fail(format!("cannot make an offer: {error}")),
        };
        let mut config = OutgoingCallConfig::new(call.from, call.to, call.target, call.local_sip);
        config.credentials = call.credentials;
        config.body = Some(Body::sdp(offer.to_string()));
        let id = endpoint.start_call(now, config);
        self.by_id.insert(id, key);
        self.calls.insert(
            key,
            Call {
                key,
                id,
                media: call.media,
                sdp,
                local,
                socket: Some(socket),
                session: None,
                negotiated: None,
                prepared_answer: None,
                started: now,
                established: None,
                announced_ringing: false,
                local_hold: false,
                pending_hold: None,
                remote_hold: false,
            },
        );
    }

    /// Answers a ringing incoming call and starts its media.
    pub(super) fn answer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let body = call.prepared_answer.take();
        if let Err(error) = endpoint.answer(now, call.id, body) {
            tracing::warn!(%error, "cannot answer");
            return;
        }
        if let Some(negotiated) = call.negotiated.clone() {
            if let Err(reason) = start_or_update_media(call, &negotiated) {
                tracing::warn!(%reason, "media did not start");
                let _ = endpoint.hang_up(now, call.id);
                let _ = events.send(EngineEvent::Call {
                    key,
                    update: CallUpdate::Failed {
                        code: None,
                        reason,
                        cause: "local error".into(),
                    },
                });
            }
        }
    }

    pub(super) fn reject(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        code: u16,
    ) {
        if let Some(call) = self.calls.get(&key) {
            if let Err(error) = endpoint.reject(now, call.id, code) {
                tracing::warn!(%error, "cannot reject");
            }
        }
    }

    pub(super) fn hang_up(&mut self, endpoint: &mut Endpoint, now: Instant, key: CallKey) {
        if let Some(call) = self.calls.get(&key) {
            if let Err(error) = endpoint.hang_up(now, call.id) {
                tracing::warn!(%error, "cannot hang up");
            }
        }
    }

    /// Puts the call on hold (`hold`) or takes it off, by a re-INVITE.
    pub(super) fn set_hold(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        hold: bool,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.local_hold == hold || call.pending_hold.is_some() || call.established.is_none() {
            return;
        }
        let direction = if hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let offer =
            match call
                .sdp
                .create_offer(&call.local, &call.media.policy, direction, &mut self.rng)
            {
                Ok(offer) => offer,
                Err(error) => {
                    tracing::warn!(%error, "cannot make a re-offer");
                    return;
                }
            };
        match endpoint.reinvite(now, call.id, Body::sdp(offer.to_string())) {
            Ok(()) => call.pending_hold = Some(hold),
            Err(error) => {
                call.sdp.discard_offer();
                tracing::warn!(%error, "cannot send a re-INVITE");
            }
        }
    }

    /// Sends DTMF digits: RFC 4733 events when negotiated, else one INFO per digit.
    pub(super) fn send_dtmf(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        digits: &str,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let rtp_events = call
            .negotiated
            .as_ref()
            .is_some_and(|n| n.telephone_event.is_some());
        match (&call.session, rtp_events) {
            (Some(session), true) => session.send_dtmf(digits, RTP_DTMF_DURATION),
            _ => {
                for digit in digits.chars() {
                    let Some(digit) = callisto_media::rtp::DtmfDigit::from_char(digit) else {
                        continue;
                    };
                    let relay = DtmfRelay {
                        digit,
                        duration: INFO_DTMF_DURATION,
                    };
                    let body = Body::new("application/dtmf-relay", relay.to_body());
                    if let Err(error) = endpoint.send_info(now, call.id, body) {
                        tracing::warn!(%error, "cannot send a DTMF INFO");
                    }
                }
            }
        }
    }

    /// Hangs up every call (on shutdown).
    pub(super) fn hang_up_all(&mut self, endpoint: &mut Endpoint, now: Instant) {
        for key in self.keys() {
            self.hang_up(endpoint, now, key);
        }
    }

    /// Reads what the media sessions reported.
    pub(super) fn poll_media(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let mut timed_out = Vec::new();
        for call in self.calls.values_mut() {
            let Some(session) = &call.session else {
                continue;
            };
            while let Some(event) = session.try_event() {
                match event {
                    MediaEvent::Dtmf { digit, .. } => {
                        let _ = events.send(EngineEvent::Call {
                            key: call.key,
                            update: CallUpdate::Dtmf { digit },
                        });
                    }
                    MediaEvent::MediaTimeout => timed_out.push(call.key),
                    MediaEvent::FirstPacket { .. } | MediaEvent::RemoteBye => {}
                }
            }
        }
        for key in timed_out {
            tracing::warn!(?key, "no media from the other side; hanging up");
            self.hang_up(endpoint, now, key);
        }
    }

    /// A call event from the endpoint. `local_ip` is our address towards the source of an
    /// incoming INVITE (for its media).
    pub(super) fn on_event(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        id: CallId,
        event: CallEvent,
        local_ip: Option<IpAddr>,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        if let CallEvent::Incoming {
            from,
            display_name,
            to,
            body,
            ..
        } = event
        {
            return self.on_incoming(
                endpoint,
                now,
                id,
                IncomingInvite {
                    from,
                    display_name,
                    to,
                    body,
                    local_ip,
                },
                events,
            );
        }
        let Some(key) = self.by_id.get(&id).copied() else {
            return;
        };
        let send = |update: CallUpdate| {
            let _ = events.send(EngineEvent::Call { key, update });
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match event {
            CallEvent::Incoming { .. } | CallEvent::Trying => {}
            CallEvent::Ringing { early_media } => {
                if let Some(body) = early_media {
                    if let Err(reason) = apply_answer(call, &body) {
                        tracing::warn!(%reason, "early media ignored");
                    }
                }
                if !call.announced_ringing {
                    call.announced_ringing = true;
                    send(CallUpdate::Ringing);
                }
            }
            CallEvent::Answered { body } => {
                let result = match &body {
                    Some(body) => apply_answer(call, body),
                    None if call.negotiated.is_some() => Ok(()),
                    None => Err("the answer carries no SDP".to_string()),
                };
                if let Err(reason) = result {
                    tracing::warn!(%reason, "hanging up");
                    let _ = endpoint.hang_up(now, call.id);
                }
            }
            CallEvent::Established { body } => {
                if let Some(body) = body {
                    if let Err(reason) = apply_answer(call, &body) {
                        tracing::warn!(%reason, "hanging up");
                        let _ = endpoint.hang_up(now, call.id);
                        return;
                    }
                }
                call.established = Some(now);
                let (codec, srtp) = call
                    .negotiated
                    .as_ref()
                    .map(|n| (n.codec.name.clone(), n.srtp.is_some()))
                    .unwrap_or_default();
                send(CallUpdate::Answered { codec, srtp });
            }
            CallEvent::ReOffer { body } => {
                let direction = if call.local_hold {
                    Direction::SendOnly
                } else {
                    Direction::SendRecv
                };
                let Some(body) = body else {
                    // An offerless re-INVITE: we offer in the 200, the answer comes in the ACK.
                    let offer = call.sdp.create_offer(
                        &call.local,
                        &call.media.policy,
                        direction,
                        &mut self.rng,
                    );
                    let result = match offer {
                        Ok(offer) => endpoint.answer_reoffer(
                            now,
                            call.id,
                            Some(Body::sdp(offer.to_string())),
                        ),
                        Err(error) => endpoint.reject_reoffer(now, call.id, error.status_code()),
                    };
                    if let Err(error) = result {
                        tracing::warn!(%error, "cannot answer a re-INVITE");
                    }
                    return;
                };
                let answer = sdp::parse(&body.bytes)
                    .map_err(|e| (400, e.to_string()))
                    .and_then(|offer| {
                        call.sdp
                            .answer(
                                &offer,
                                &call.local,
                                &call.media.policy,
                                direction,
                                &mut self.rng,
                            )
                            .map_err(|e| (e.status_code(), e.to_string()))
                    });
                match answer {
                    Ok((answer, negotiated)) => {
                        if let Err(error) = endpoint.answer_reoffer(
                            now,
                            call.id,
                            Some(Body::sdp(answer.to_string())),
                        ) {
                            tracing::warn!(%error, "cannot answer a re-INVITE");
                            return;
                        }
                        let remote_hold = !call.local_hold && !negotiated.direction.sends();
                        if let Err(reason) = start_or_update_media(call, &negotiated) {
                            tracing::warn!(%reason, "media not updated");
                        }
                        if remote_hold != call.remote_hold {
                            call.remote_hold = remote_hold;
                            send(if remote_hold {
                                CallUpdate::Held { by_remote: true }
                            } else {
                                CallUpdate::Resumed { by_remote: true }
                            });
                        }
                    }
                    Err((code, reason)) => {
                        tracing::warn!(code, %reason, "re-offer refused");
                        let _ = endpoint.reject_reoffer(now, call.id, code);
                    }
                }
            }
            CallEvent::ReAnswer { body } => {
                if let Some(body) = body {
                    if let Err(reason) = apply_answer(call, &body) {
                        tracing::warn!(%reason, "re-answer unusable");
                    }
                }
                if let Some(hold) = call.pending_hold.take() {
                    call.local_hold = hold;
                    send(if hold {
                        CallUpdate::Held { by_remote: false }
                    } else {
                        CallUpdate::Resumed { by_remote: false }
                    });
                }
            }
            CallEvent::ReInviteFailed { code } => {
                tracing::info!(code, "re-INVITE refused");
                call.sdp.discard_offer();
                call.pending_hold = None;
            }
            CallEvent::Info { body } => {
                if body
                    .content_type
                    .to_ascii_lowercase()
                    .contains("dtmf-relay")
                {
                    match DtmfRelay::parse(&String::from_utf8_lossy(&body.bytes)) {
                        Ok(relay) => send(CallUpdate::Dtmf {
                            digit: relay.digit.to_char(),
                        }),
                        Err(error) => tracing::debug!(%error, "INFO without a usable digit"),
                    }
                }
            }
            CallEvent::TransferRequested { target, .. } => {
                tracing::info!(%target, "transfer requests are declined");
                let _ = endpoint.transfer_progress(now, call.id, 603, "Declined");
            }
            CallEvent::TransferProgress { code, reason, .. } => {
                tracing::info!(code, %reason, "transfer progress");
            }
            CallEvent::Failed {
                code,
                reason,
                cause,
            } => {
                self.finish(key);
                send(CallUpdate::Failed {
                    code,
                    reason,
                    cause: cause.to_string(),
                });
            }
            CallEvent::Ended { by_remote, reason } => {
                let summary = self.finish(key);
                send(CallUpdate::Ended {
                    by_remote,
                    reason,
                    summary,
                });
            }
        }
    }

    fn on_incoming(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        id: CallId,
        invite: IncomingInvite,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(mut media) = self.incoming.clone() else {
            // Nothing here takes calls (registering only): decline politely.
            let _ = endpoint.reject(now, id, 480);
            return;
        };
        self.incoming_count += 1;
        if self.incoming_count > 1 {
            media.record = media
                .record
                .map(|path| numbered(&path, self.incoming_count));
        }
        let ip = invite.local_ip.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let (socket, local) = match bind_rtp(ip) {
            Ok(bound) => bound,
            Err(error) => {
                tracing::warn!(%error, "cannot open an RTP port");
                let _ = endpoint.reject(now, id, 500);
                return;
            }
        };
        let mut sdp = SdpSession::new(ip, &mut self.rng);
        let (prepared_answer, negotiated) = match &invite.body {
            Some(body) => {
                let offer = match sdp::parse(&body.bytes) {
                    Ok(offer) => offer,
                    Err(error) => {
                        tracing::warn!(%error, "malformed offer");
                        let _ = endpoint.reject(now, id, error.status_code());
                        return;
                    }
                };
                if sdp::offer_kind(&offer) == OfferKind::WebRtc {
                    tracing::warn!("a WebRTC offer cannot be served by the classic path");
                    let _ = endpoint.reject(now, id, 488);
                    return;
                }
                match sdp.answer(
                    &offer,
                    &local,
                    &media.policy,
                    Direction::SendRecv,
                    &mut self.rng,
                ) {
                    Ok((answer, negotiated)) => {
                        (Some(Body::sdp(answer.to_string())), Some(negotiated))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "offer refused");
                        let _ = endpoint.reject(now, id, error.status_code());
                        return;
                    }
                }
            }
            None => {
                // No offer in the INVITE: ours goes in the 200, the answer comes in the ACK.
                match sdp.create_offer(&local, &media.policy, Direction::SendRecv, &mut self.rng) {
                    Ok(offer) => (Some(Body::sdp(offer.to_string())), None),
                    Err(error) => {
                        tracing::warn!(%error, "cannot make an offer");
                        let _ = endpoint.reject(now, id, 500);
                        return;
                    }
                }
            }
        };
        let key = CallKey(self.keys.fetch_add(1, Ordering::Relaxed));
        self.by_id.insert(id, key);
        self.calls.insert(
            key,
            Call {
                key,
                id,
                media,
                sdp,
                local,
                socket: Some(socket),
                session: None,
                negotiated,
                prepared_answer,
                started: now,
                established: None,
                announced_ringing: true,
                local_hold: false,
                pending_hold: None,
                remote_hold: false,
            },
        );
        let _ = endpoint.ring(now, id);
        let _ = events.send(EngineEvent::Call {
            key,
            update: CallUpdate::Incoming {
                from: invite.from,
                display_name: invite.display_name,
                to: invite.to,
            },
        });
    }

    /// Stops the call's media and forgets the call; returns what it measured.
    fn finish(&mut self, key: CallKey) -> CallSummary {
        let Some(call) = self.calls.remove(&key) else {
            return CallSummary {
                duration: Duration::ZERO,
                setup: None,
                first_rtp: None,
                audio: None,
            };
        };
        self.by_id.remove(&call.id);
        let ended = Instant::now();
        let stats = call.session.map(ClassicSession::stop);
        CallSummary {
            duration: call
                .established
                .map_or(Duration::ZERO, |at| ended.saturating_duration_since(at)),
            setup: call
                .established
                .map(|at| at.saturating_duration_since(call.started)),
            first_rtp: stats
                .as_ref()
                .and_then(|s| s.first_rtp_received_at)
                .map(|at| at.saturating_duration_since(call.started)),
            audio: stats.as_ref().map(AudioSummary::from),
        }
    }
}

struct IncomingInvite {
    from: String,
    display_name: Option<String>,
    to: String,
    body: Option<Body>,
    local_ip: Option<IpAddr>,
}

/// Binds the call's RTP socket (RTCP shares it: we offer `rtcp-mux` and `a=rtcp` on the same
/// port).
fn bind_rtp(ip: IpAddr) -> std::io::Result<(UdpSocket, LocalMedia)> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
    let port = socket.local_addr()?.port();
    Ok((
        socket,
        LocalMedia {
            address: ip,
            rtp_port: port,
            rtcp_port: None,
        },
    ))
}

/// `out.wav` → `out-2.wav` for the second call of an `answer --count N` run.
fn numbered(path: &std::path::Path, n: u64) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

/// Reads the peer's answer to our offer and starts or updates the media.
fn apply_answer(call: &mut Call, body: &Body) -> Result<(), String> {
    let answer = sdp::parse(&body.bytes).map_err(|e| e.to_string())?;
    let negotiated = call.sdp.apply_answer(&answer).map_err(|e| e.to_string())?;
    start_or_update_media(call, &negotiated)
}

fn start_or_update_media(call: &mut Call, negotiated: &NegotiatedAudio) -> Result<(), String> {
    let stream = stream_config(negotiated)?;
    let srtp = srtp_keys(negotiated)?;
    let direction = MediaDirection {
        send: negotiated.direction.sends(),
        receive: negotiated.direction.receives(),
    };
    let remote_rtcp = if negotiated.rtcp_mux {
        None
    } else {
        negotiated.remote_rtcp
    };
    call.negotiated = Some(negotiated.clone());
    if let Some(session) = &call.session {
        session.update(MediaUpdate {
            remote_rtp: negotiated.remote_rtp,
            remote_rtcp,
            direction,
            stream,
            srtp,
        });
        return Ok(());
    }
    let socket = call
        .socket
        .take()
        .ok_or_else(|| "the RTP port is gone".to_string())?;
    let format = AudioFormat::new(stream.codec.clock_rate(), 1);
    let source = make_source(&call.media.input, format)?;
    let sink = make_sink(call.media.record.as_deref(), format)?;
    let config = ClassicSessionConfig {
        rtp_socket: socket,
        rtcp_socket: None,
        remote_rtp: negotiated.remote_rtp,
        remote_rtcp,
        stream,
        srtp,
        direction,
        cname: format!("callisto-{:x}", call.key.0),
    };
    let session = ClassicSession::start(config, source, sink).map_err(|e| e.to_string())?;
    call.session = Some(session);
    Ok(())
}

fn stream_config(negotiated: &NegotiatedAudio) -> Result<AudioStreamConfig, String> {
    let codec = AudioCodecKind::from_encoding_name(&negotiated.codec.name)
        .ok_or_else(|| format!("no encoder for {}", negotiated.codec.name))?;
    Ok(AudioStreamConfig {
        codec,
        payload_type: negotiated.codec.payload_type,
        encoder: EncoderConfig::mono(),
        ptime_ms: negotiated.ptime_ms,
        telephone_event: negotiated.telephone_event.map(|t| TelephoneEventConfig {
            payload_type: t.payload_type,
            clock_rate: t.clock_rate,
        }),
    })
}

fn srtp_keys(negotiated: &NegotiatedAudio) -> Result<Option<SrtpKeys>, String> {
    let Some(srtp) = &negotiated.srtp else {
        return Ok(None);
    };
    let profile = match srtp.suite {
        SrtpSuite::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32,
    };
    let key = |k: &sdp::SrtpMasterKey| {
        SrtpKeyMaterial::from_bytes(k.as_bytes()).map_err(|e| format!("SRTP key: {e}"))
    };
    Ok(Some(SrtpKeys {
        profile,
        local: key(&srtp.local)?,
        remote: key(&srtp.remote)?,
    }))
}

fn make_source(input: &AudioInput, format: AudioFormat) -> Result<Box<dyn AudioSource>, String> {
    Ok(match input {
        AudioInput::Tone { hz } => Box::new(ToneSource::with_dbfs(format, *hz, -12.0)),
        AudioInput::Silence => Box::new(SilenceSource::new(format)),
        AudioInput::File(path) => Box::new(
            WavSource::open(path, EndOfFile::Loop)
                .map_err(|e| format!("cannot play {}: {e}", path.display()))?,
        ),
    })
}

fn make_sink(
    record: Option<&std::path::Path>,
    format: AudioFormat,
) -> Result<Box<dyn AudioSink>, String> {
    Ok(match record {
        Some(path) => Box::new(
            WavRecorder::create(path, format)
                .map_err(|e| format!("cannot record to {}: {e}", path.display()))?,
        ),
        None => Box::new(NullSink::new(format)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_of_later_calls_get_numbered() {
        assert_eq!(
            numbered(std::path::Path::new("/tmp/out.wav"), 2),
            PathBuf::from("/tmp/out-2.wav")
        );
        assert_eq!(
            numbered(std::path::Path::new("rec"), 3),
            PathBuf::from("rec-3")
        );
    }
}
