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
//!   and media starts once the 200 is sent.
//! - Re-INVITEs carry hold (`sendonly`/`inactive`) and resume both ways; the media session is
//!   updated in place, so SSRC and sequence numbers run on.
//! - DTMF goes as RFC 4733 events when both sides negotiated `telephone-event`, else as SIP
//!   INFO (`application/dtmf-relay`); both kinds are reported when received.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use callisto_media::conference::ConferenceBridge;
use callisto_media::rtp::DtmfRelay;
use callisto_media::session::MediaEvent;
use callisto_media::video::CameraSwitch;
use callisto_signaling::auth::Credentials;
use callisto_signaling::call::{Body, CallEvent, CallId, OutgoingCallConfig};
use callisto_signaling::conference_info::ConferenceInfo;
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::{self, Direction, SdpSession, SessionDescription};
use callisto_signaling::transport::Target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;

use super::EngineEvent;

mod classic_forwarding;
mod classic_video;
mod conference;
mod forwarding;
mod further_video;
mod in_call;
mod incoming;
mod media;
mod transfer;
mod update;
mod webrtc;
mod webrtc_flow;

use classic_forwarding::takes_streams;
pub use conference::peer_label;
use incoming::IncomingInvite;
pub(super) use media::CallMediaEvent;
pub use media::{
    host_audio, AudioInput, AudioPlayback, CallControls, ConferenceSeat, IceServerOptions,
    MediaOptions, MediaProfile, VideoInput, VideoOptions,
};
use media::{CallMedia, MediaEvents};
pub(super) use transfer::TransferRequest;
pub use update::{
    refused_change_in_words, AudioSummary, CallFailure, CallSummary, CallUpdate, IceSummary,
    VideoSummary,
};
pub use webrtc::host_video;

/// The application's name for a call, chosen before the call exists (outgoing) or by the
/// engine (incoming).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// Who we are in an outgoing call and where its INVITE goes.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    pub from: rsip::Uri,
    pub to: rsip::Uri,
    pub target: Target,
    /// Our SIP address (Via, Contact); its IP also carries the media.
    pub local_sip: SocketAddr,
    pub credentials: Option<Credentials>,
    /// A host name to present in Contact and Via instead of `local_sip` (the `.invalid` name
    /// of a WebSocket flow).
    pub contact_host: Option<String>,
    pub media: MediaOptions,
}

/// An outgoing call whose offer is ready.
struct Invite<'a> {
    call: &'a OutgoingCall,
    account: Option<usize>,
    offer: String,
    /// When the call was placed (the offer may have taken a while).
    started: Instant,
}

struct Call {
    key: CallKey,
    id: CallId,
    media: CallMedia,
    sdp: SdpSession,
    /// Incoming: the answer to send with the 200.
    prepared_answer: Option<Body>,
    /// Incoming on the classic path: the peer's offer (answered again without video when the
    /// user answers audio-only).
    offer: Option<SessionDescription>,
    started: Instant,
    established: Option<Instant>,
    announced_ringing: bool,
    local_hold: bool,
    /// The hold state our pending re-INVITE asks for.
    pending_hold: Option<bool>,
    remote_hold: bool,
    /// Who we are in this call (our From, or the To of an incoming INVITE): a transfer's new
    /// call is made as the same identity.
    identity: Option<rsip::Uri>,
    /// Who the other side is, in words (see [`peer_label`]): its name in a conference.
    peer: String,
    /// The other side's address (the From of an incoming INVITE, the To of ours): its
    /// entity in a conference roster.
    peer_uri: String,
    /// The roster last given to the endpoint for this call, while it is in a conference we
    /// host (RFC 4575): the same one is not sent twice.
    roster_sent: Option<ConferenceInfo>,
    /// The account the call was placed with, if any.
    account: Option<usize>,
    /// When this call was placed because the peer of another call asked us to transfer
    /// (REFER): that call, which hears of this one's progress.
    transfer_of: Option<CallKey>,
    /// The WebRTC session, when the call is on the WebRTC path.
    webrtc: Option<Arc<callisto_media::webrtc::WebRtcSession>>,
    /// Where the WebRTC session's steps run, one after another.
    steps: webrtc::Steps,
    /// The peer's new offer is being answered (by the WebRTC session, or it follows a
    /// `ReInviteYielded` at once): offers of ours wait until it is.
    answering: bool,
    /// Whether the WebRTC session is in step with the peer's after a cancelled offer.
    restate: in_call::Restate,
    /// The peer's answer went into the WebRTC session.
    answer_applied: bool,
    /// The SDP that concluded the WebRTC offer/answer (the peer's answer, or ours).
    concluded_sdp: Option<String>,
    /// An outgoing WebRTC call, to place again on the classic path if the callee answers
    /// the WebRTC offer with 488 (a desk phone).
    fallback: Option<(OutgoingCall, Option<usize>)>,
    /// The peer shows every video stream it is sent (its SDP says so): as a leg of a
    /// conference we host, it is sent each participant as a stream of its own.
    takes_streams: bool,
    /// The participants' streams forwarded to this leg (see `forwarding.rs`).
    streams: forwarding::LegStreams,
    /// A hold (`true`) or resume asked for while another offer was under way: made once
    /// that one is settled ([`Calls::run_deferred_holds`]).
    hold_after: Option<bool>,
    /// A refusal of our offer was reported and no offer of ours was answered since: a
    /// refusal of an offer the engine makes on its own is not reported again.
    refusal_told: bool,
}

impl Call {
    /// Silences what we send from the moment we ask for a hold (made at once, or waiting
    /// for another offer to settle) until the call is resumed (the held side hears nothing
    /// of us meanwhile, whatever the offer's direction allows).
    fn sync_hold_silence(&self) {
        let silent =
            self.local_hold || self.pending_hold == Some(true) || self.hold_after == Some(true);
        self.media.options.controls.held.set(silent);
    }

    /// Rolls our outstanding WebRTC offer back, after the session steps asked for before.
    fn withdraw_webrtc_offer(&self) {
        if let Some(session) = &self.webrtc {
            webrtc::cancel_reoffer(&self.steps, Arc::clone(session));
        }
    }

    /// Our offer gave way to the peer's (`ReInviteYielded`), whose `ReOffer` follows at
    /// once: no offer of ours is made until that is answered, and the hold (or resume) ours
    /// asked for is asked for again then, unless something else was asked for meanwhile.
    fn yield_offer(&mut self) {
        self.answering = true;
        if let Some(hold) = self.pending_hold.take() {
            self.hold_after.get_or_insert(hold);
        }
        self.sync_hold_silence();
    }

    /// Whether the call carries video: as negotiated for the classic path, as the concluded
    /// SDP says for the WebRTC path.
    fn shows_video(&self) -> bool {
        match &self.webrtc {
            Some(_) => {
                self.media.options.video.is_some()
                    && self
                        .concluded_sdp
                        .as_deref()
                        .is_some_and(webrtc_flow::has_video)
            }
            None => self.media.has_video(),
        }
    }

    fn new(key: CallKey, id: CallId, media: CallMedia, sdp: SdpSession, now: Instant) -> Call {
        Call {
            key,
            id,
            media,
            sdp,
            prepared_answer: None,
            offer: None,
            started: now,
            established: None,
            announced_ringing: false,
            local_hold: false,
            pending_hold: None,
            remote_hold: false,
            identity: None,
            peer: String::new(),
            peer_uri: String::new(),
            roster_sent: None,
            account: None,
            transfer_of: None,
            webrtc: None,
            steps: webrtc::Steps::default(),
            answering: false,
            restate: in_call::Restate::InStep,
            answer_applied: false,
            concluded_sdp: None,
            fallback: None,
            takes_streams: false,
            streams: forwarding::LegStreams::default(),
            hold_after: None,
            refusal_told: false,
        }
    }
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
    /// Handed to each media session for its events.
    media_events: MediaEvents,
    /// Transfers the peers asked for, for the engine to place (it knows the accounts).
    transfer_requests: Vec<TransferRequest>,
    /// Calls whose WebRTC offer or answer is being made (ICE gathering).
    preparing: HashMap<CallKey, webrtc_flow::Preparing>,
    /// Ended calls whose WebRTC session is closing; their end is reported once it closed.
    closing: HashMap<CallKey, webrtc_flow::Closing>,
    /// The conference merged calls are in, while there is one (see `conference.rs`).
    conference: Option<ConferenceBridge>,
    /// The camera switch of the host's picture in that conference, once a call's input is it.
    conference_camera: Option<CameraSwitch>,
    /// Where each leg's video is forwarded in a conference we host (see `forwarding.rs`).
    forwarding: forwarding::Forwarding,
    /// Answered classic calls whose media starts once the 2xx is on the wire.
    answered: Vec<CallKey>,
    rng: StdRng,
}

impl Calls {
    /// The calls, and the channel on which their media sessions report (feed what arrives
    /// to [`Calls::on_media_event`]).
    pub(super) fn new(
        keys: Arc<AtomicU64>,
    ) -> (Self, mpsc::UnboundedReceiver<(CallKey, CallMediaEvent)>) {
        let (media_events, media_rx) = mpsc::unbounded_channel();
        let calls = Calls {
            calls: HashMap::new(),
            by_id: HashMap::new(),
            keys,
            incoming: None,
            incoming_count: 0,
            media_events,
            transfer_requests: Vec::new(),
            preparing: HashMap::new(),
            closing: HashMap::new(),
            conference: None,
            conference_camera: None,
            forwarding: forwarding::Forwarding::default(),
            answered: Vec::new(),
            rng: StdRng::from_entropy(),
        };
        (calls, media_rx)
    }

    pub(super) fn accept_incoming(&mut self, media: Option<MediaOptions>) {
        self.incoming = media;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.preparing.is_empty() && self.closing.is_empty()
    }

    pub(super) fn keys(&self) -> Vec<CallKey> {
        self.calls.keys().copied().collect()
    }

    /// Places a call: binds the RTP socket, makes the offer, sends the INVITE. Returns
    /// whether the INVITE went out (else a `Failed` update was sent).
    pub(super) fn start(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        mut call: OutgoingCall,
        account: Option<usize>,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) -> bool {
        call.media = call
            .media
            .for_one_call(&peer_label(None, &call.to.to_string()));
        let _ = events.send(EngineEvent::Call {
            key,
            update: CallUpdate::Controls(call.media.controls.clone()),
        });
        let fail = |reason: String| {
            let _ = events.send(EngineEvent::Call {
                key,
                update: CallUpdate::Failed {
                    code: None,
                    reason,
                    cause: CallFailure::Local,
                    warning: None,
                },
            });
            false
        };
        let ip = call.local_sip.ip();
        if call.media.profile == MediaProfile::WebRtc {
            return self.prepare_offer(key, call, account);
        }
        let media = match CallMedia::bind(ip, call.media.clone()) {
            Ok(media) => media,
            Err(error) => return fail(format!("cannot open an RTP port: {error}")),
        };
        let mut sdp = media.sdp_session(ip, &mut self.rng);
        let offer = match sdp.create_offer_with_video(
            &media.local,
            &media.options.policy,
            media.video_offer(),
            Direction::SendRecv,
            &mut self.rng,
        ) {
            Ok(offer) => offer,
            Err(error) => return fail(format!("cannot make an offer: {error}")),
        };
        let invite = Invite {
            call: &call,
            account,
            offer: offer.to_string(),
            started: now,
        };
        self.send_invite(endpoint, now, key, invite, media, sdp);
        true
    }

    /// Sends the INVITE of an outgoing call with our `offer` and keeps the call under `key`.
    fn send_invite(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        invite: Invite<'_>,
        media: CallMedia,
        sdp: SdpSession,
    ) -> &mut Call {
        let call = invite.call;
        let mut config = OutgoingCallConfig::new(
            call.from.clone(),
            call.to.clone(),
            call.target,
            call.local_sip,
        );
        if let Some(host) = &call.contact_host {
            config = config.with_contact_host(host);
        }
        config.credentials = call.credentials.clone();
        config.body = Some(Body::sdp(invite.offer));
        let id = endpoint.start_call(now, config);
        self.by_id.insert(id, key);
        let mut entry = Call::new(key, id, media, sdp, invite.started);
        entry.identity = Some(call.from.clone());
        entry.peer = peer_label(None, &call.to.to_string());
        entry.peer_uri = call.to.to_string();
        entry.account = invite.account;
        self.calls.entry(key).insert_entry(entry).into_mut()
    }

    pub(super) fn hang_up(&mut self, endpoint: &mut Endpoint, now: Instant, key: CallKey) {
        if let Some(call) = self.calls.get(&key) {
            if let Err(error) = endpoint.hang_up(now, call.id) {
                tracing::warn!(%error, "cannot hang up");
            }
        }
    }

    /// Hangs up every call (on shutdown).
    pub(super) fn hang_up_all(&mut self, endpoint: &mut Endpoint, now: Instant) {
        for key in self.keys() {
            self.hang_up(endpoint, now, key);
        }
    }

    /// Something a call's media reported.
    pub(super) fn on_media_event(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        event: CallMediaEvent,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let update = match event {
            CallMediaEvent::Classic(event) => {
                return self.on_classic_event(endpoint, now, key, event, events);
            }
            CallMediaEvent::WebRtc(ready) => {
                return self.on_webrtc(endpoint, now, key, ready, events)
            }
            CallMediaEvent::Conference(event) => {
                return self.on_bridge_event(endpoint, now, key, event);
            }
            CallMediaEvent::Device(message) => CallUpdate::AudioDevice { message },
            CallMediaEvent::CameraUnavailable { reason } => {
                tracing::warn!(?key, %reason, "the camera cannot be used: sending a placeholder");
                CallUpdate::CameraUnavailable { reason }
            }
            CallMediaEvent::HostsPicture => self.picture_taken(key),
        };
        let _ = events.send(EngineEvent::Call { key, update });
    }

    /// Something a classic session (or a WebRTC session's audio) reported.
    fn on_classic_event(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        event: MediaEvent,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        match event {
            MediaEvent::Dtmf { digit, .. } => {
                let _ = events.send(EngineEvent::Call {
                    key,
                    update: CallUpdate::Dtmf { digit },
                });
            }
            MediaEvent::MediaTimeout => {
                tracing::warn!(?key, "no media from the other side; hanging up");
                self.hang_up(endpoint, now, key);
            }
            MediaEvent::FirstPacket { .. } | MediaEvent::RemoteBye => {}
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
        if self.preparing.contains_key(&key) {
            // An incoming call whose WebRTC answer is still being made: only its end matters.
            if matches!(event, CallEvent::Failed { .. } | CallEvent::Ended { .. }) {
                self.preparing.remove(&key);
                self.by_id.remove(&id);
            }
            return;
        }
        if self.calls.get(&key).is_some_and(|c| c.webrtc.is_some()) {
            if let Some(event) = self.on_webrtc_call_event(endpoint, now, key, event, events) {
                self.on_call_event(endpoint, now, key, event, events);
            }
        } else {
            let settled = self.classic_streams_settled_by(key, &event, now);
            self.on_call_event(endpoint, now, key, event, events);
            if let Some(accepted) = settled {
                self.classic_streams_settled(endpoint, now, key, accepted);
            }
        }
        // A leg answered, held, resumed or gone changes the roster of a conference we host,
        // and what its legs are forwarded.
        self.publish_roster(endpoint, now);
        self.run_deferred_holds(endpoint, now);
        self.update_forwarding(endpoint);
    }

    /// A call event for the call `key`, after the WebRTC path had its say.
    fn on_call_event(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        event: CallEvent,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let send = |update: CallUpdate| {
            let _ = events.send(EngineEvent::Call { key, update });
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match event {
            CallEvent::Incoming { .. } | CallEvent::Trying => {}
            CallEvent::Ringing { early_media, .. } => {
                let mut early_started = false;
                if let Some(body) = early_media {
                    let had_media = call.media.session().is_some();
                    match apply_answer(call, &body, &self.media_events) {
                        Ok(()) => early_started = !had_media,
                        Err(reason) => tracing::warn!(%reason, "early media ignored"),
                    }
                }
                if early_started {
                    send(CallUpdate::Ringing { early_media: true });
                }
                if !call.announced_ringing {
                    call.announced_ringing = true;
                    if !early_started {
                        send(CallUpdate::Ringing { early_media: false });
                    }
                    if let Some(original) = call.transfer_of {
                        self.transfer_progress(endpoint, now, original, 180, "Ringing");
                    }
                }
            }
            CallEvent::Answered { body } => {
                let result = match &body {
                    Some(body) => apply_answer(call, body, &self.media_events),
                    None if call.media.negotiated.is_some() => Ok(()),
                    None => Err("the answer carries no SDP".to_string()),
                };
                if let Err(reason) = result {
                    tracing::warn!(%reason, "hanging up");
                    let _ = endpoint.hang_up(now, call.id);
                }
            }
            CallEvent::Established { body } => {
                if let Some(body) = body {
                    if let Err(reason) = apply_answer(call, &body, &self.media_events) {
                        tracing::warn!(%reason, "hanging up");
                        let _ = endpoint.hang_up(now, call.id);
                        return;
                    }
                }
                call.established = Some(now);
                let (codec, srtp) = call
                    .media
                    .negotiated
                    .as_ref()
                    .map(|n| (n.codec.name.clone(), n.srtp.is_some()))
                    .unwrap_or_default();
                send(CallUpdate::Answered {
                    codec,
                    srtp,
                    path: MediaProfile::Classic,
                    video: call.media.has_video(),
                });
                if let Some(original) = call.transfer_of {
                    self.transfer_succeeded(endpoint, now, original);
                }
            }
            CallEvent::ReOffer { body } => {
                // Answered here and now: offers of ours may be made again after this event.
                call.answering = false;
                let direction = call.reoffer_direction(body.is_some());
                let Some(body) = body else {
                    // An offerless re-INVITE: we offer in the 200, the answer comes in the ACK.
                    let offer = call.sdp.create_offer_with_video(
                        &call.media.local,
                        &call.media.options.policy,
                        call.media.video_offer(),
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
                    .map_err(|e| e.refusal())
                    .and_then(|offer| {
                        let further = call.media.further_ports(&offer);
                        call.sdp
                            .answer_with_streams(
                                &offer,
                                &call.media.local,
                                &call.media.options.policy,
                                call.media.video_offer(),
                                &further,
                                direction,
                                &mut self.rng,
                            )
                            .map_err(|e| e.refusal())
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
                        let remote_hold = !negotiated.direction.sends();
                        if let Err(reason) = call.media.apply(&negotiated, key, &self.media_events)
                        {
                            tracing::warn!(%reason, "media not updated");
                        }
                        call.media.apply_video(&call.sdp, key, &self.media_events);
                        if let Some(update) = call.set_remote_hold(remote_hold) {
                            send(update);
                        }
                    }
                    Err(refusal) => {
                        tracing::warn!(?refusal, "re-offer refused");
                        let _ = endpoint.reject_reoffer(now, call.id, refusal);
                    }
                }
            }
            CallEvent::ReAnswer { body } => {
                call.refusal_told = false;
                if let Some(body) = body {
                    if let Err(reason) = apply_answer(call, &body, &self.media_events) {
                        tracing::warn!(%reason, "re-answer unusable");
                    }
                }
                if let Some(update) = call.settle_local_hold() {
                    send(update);
                }
            }
            CallEvent::ReInviteFailed { code, warning } => {
                tracing::info!(code, ?warning, "re-INVITE refused");
                call.sdp.discard_offer();
                // Told once while the engine's own offers (the conference's streams) fail.
                if call.pending_hold.take().is_some() || !call.refusal_told {
                    send(CallUpdate::ChangeRefused { code, warning });
                }
                call.refusal_told = true;
                call.sync_hold_silence();
            }
            CallEvent::ReOfferCancelled => {
                // Classic re-offers are answered at once: the CANCEL came too late for one.
                tracing::debug!("the peer cancelled its re-INVITE");
            }
            CallEvent::ReInviteYielded => {
                tracing::info!("our re-INVITE gives way to the peer's");
                call.sdp.discard_offer();
                call.yield_offer();
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
            CallEvent::Roster { info } => {
                // The roster names the participant behind each stream label.
                if let Some(call) = self.calls.get(&key) {
                    let titles = info
                        .as_ref()
                        .map(forwarding::stream_titles)
                        .unwrap_or_default();
                    call.media.options.controls.more_video.set_titles(titles);
                }
                send(CallUpdate::Roster { info });
            }
            CallEvent::TransferRequested { target, .. } => {
                self.on_transfer_requested(endpoint, now, key, target, events);
            }
            CallEvent::TransferProgress {
                code,
                reason,
                finished,
            } => {
                send(CallUpdate::TransferProgress {
                    code,
                    reason,
                    finished,
                });
                if finished && (200..300).contains(&code) {
                    // The other side now talks to the transfer target: our part is done.
                    self.hang_up(endpoint, now, key);
                }
            }
            CallEvent::Failed {
                code,
                reason,
                cause,
                warning,
            } => {
                let transfer_of = call.transfer_of;
                if let Some(original) = transfer_of {
                    let status = code.unwrap_or(500);
                    self.transfer_progress(endpoint, now, original, status, &reason);
                }
                self.finish(
                    key,
                    webrtc_flow::End::Failed {
                        code,
                        reason,
                        cause: CallFailure::Remote(cause),
                        warning,
                    },
                    events,
                );
            }
            CallEvent::Ended { by_remote, reason } => {
                self.finish(key, webrtc_flow::End::Ended { by_remote, reason }, events);
            }
        }
    }

    /// Stops the call's media, forgets the call and reports its end with what it measured:
    /// at once for the classic path, once the session closed for the WebRTC path.
    fn finish(
        &mut self,
        key: CallKey,
        end: webrtc_flow::End,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(call) = self.calls.remove(&key) else {
            return end.report(key, CallSummary::default(), events);
        };
        self.by_id.remove(&call.id);
        // What the switch holds goes now (a conference leg's tile and share of the mosaic),
        // not when the last clone of the controls does.
        call.media.options.controls.video.clear();
        self.forget_empty_conference();
        if let Some(session) = call.webrtc {
            return self.close_webrtc(key, session, call.started, call.established, end);
        }
        let summary = call.media.stop(call.started, call.established);
        end.report(key, summary, events);
    }
}

/// Reads the peer's answer to our offer and starts or updates the media.
fn apply_answer(call: &mut Call, body: &Body, events: &MediaEvents) -> Result<(), String> {
    let answer = sdp::parse(&body.bytes).map_err(|e| e.to_string())?;
    call.takes_streams |= call.established.is_none() && takes_streams(body);
    let negotiated = call.sdp.apply_answer(&answer).map_err(|e| e.to_string())?;
    call.media.apply(&negotiated, call.key, events)?;
    call.media.apply_video(&call.sdp, call.key, events);
    Ok(())
}
