//! How the calls drive the WebRTC path (see `webrtc.rs` for the session steps): outgoing
//! calls wait for their offer before the INVITE, incoming WebRTC offers are answered before
//! the call rings, the peer's answer is applied, a WebRTC offer refused with 488 is placed
//! again on the classic path, and a call's end is reported once its session closed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use callisto_media::webrtc::{
    takes_forwarded_streams, CandidateKind, WebRtcEvent, WebRtcSession, WebRtcStats,
};
use callisto_signaling::call::{Body, CallEvent, CallId, Refusal};
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::{self, SdpSession};
use tokio::sync::mpsc;

use super::in_call::Restate;
use super::media::{CallControls, CallMedia};
use super::update::IceSummary;
use super::webrtc::{self, ReofferRefused, WebRtcReady};
use super::{
    Call, CallFailure, CallKey, CallSummary, CallUpdate, Calls, IncomingInvite, Invite,
    MediaProfile, OutgoingCall,
};
use crate::engine::EngineEvent;

/// A call whose WebRTC offer or answer is being made.
pub(super) enum Preparing {
    /// Our offer, for the INVITE.
    Outgoing {
        call: Box<OutgoingCall>,
        account: Option<usize>,
        started: Instant,
    },
    /// Our answer to the INVITE `id`; the call rings once it is ready.
    Incoming {
        id: CallId,
        invite: IncomingInvite,
        ip: IpAddr,
        started: Instant,
        /// The switches and pictures the answering session was made with.
        controls: Box<CallControls>,
        /// The offer says the peer shows every stream it is sent.
        takes_streams: bool,
    },
}

/// How a call ended, reported once its media has stopped.
#[derive(Debug, Clone)]
pub(super) enum End {
    Failed {
        code: Option<u16>,
        reason: String,
        cause: CallFailure,
        warning: Option<String>,
    },
    Ended {
        by_remote: bool,
        reason: String,
    },
    /// Nothing to report: the call goes on under the same key on the classic path.
    Replaced,
}

impl End {
    /// Sends the call's end with `summary` (a `Failed` has no summary).
    pub(super) fn report(
        self,
        key: CallKey,
        summary: CallSummary,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let update = match self {
            End::Failed {
                code,
                reason,
                cause,
                warning,
            } => CallUpdate::Failed {
                code,
                reason,
                cause,
                warning,
            },
            End::Ended { by_remote, reason } => CallUpdate::Ended {
                by_remote,
                reason,
                summary: Box::new(summary),
            },
            End::Replaced => return,
        };
        let _ = events.send(EngineEvent::Call { key, update });
    }
}

/// An ended WebRTC call waiting for its session to close.
pub(super) struct Closing {
    end: End,
    started: Instant,
    established: Option<Instant>,
}

impl Calls {
    /// Starts making the WebRTC offer of an outgoing call; the INVITE goes once it is ready.
    pub(super) fn prepare_offer(
        &mut self,
        key: CallKey,
        call: OutgoingCall,
        account: Option<usize>,
    ) -> bool {
        let ip = call.local_sip.ip();
        webrtc::spawn_offer(key, ip, call.media.clone(), self.media_events.clone());
        self.preparing.insert(
            key,
            Preparing::Outgoing {
                call: Box::new(call),
                account,
                started: Instant::now(),
            },
        );
        true
    }

    /// Starts answering an incoming WebRTC offer; the call rings once the answer is ready.
    pub(super) fn prepare_answer(
        &mut self,
        key: CallKey,
        id: CallId,
        invite: IncomingInvite,
        ip: IpAddr,
        options: super::MediaOptions,
        offer: String,
    ) {
        let controls = options.controls.clone();
        let takes_streams = takes_forwarded_streams(&offer);
        webrtc::spawn_answer(key, ip, options, offer, self.media_events.clone());
        self.by_id.insert(id, key);
        self.preparing.insert(
            key,
            Preparing::Incoming {
                id,
                invite,
                ip,
                started: Instant::now(),
                controls: Box::new(controls),
                takes_streams,
            },
        );
    }

    /// A WebRTC step finished, or a session reported something.
    pub(super) fn on_webrtc(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        ready: WebRtcReady,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        match ready {
            WebRtcReady::Offer(result) => self.on_offer(endpoint, now, key, result, events),
            WebRtcReady::Answer(result) => self.on_answer(endpoint, now, key, result, events),
            WebRtcReady::Applied(Ok(())) => {}
            WebRtcReady::HoldOffer { hold, result } => {
                self.on_hold_offer(endpoint, now, key, hold, result)
            }
            WebRtcReady::ReApplied(result) => {
                let accepted = result.is_ok();
                self.on_reapplied(now, key, result, events);
                self.streams_settled(endpoint, now, key, accepted);
                self.run_deferred_holds(endpoint, now);
            }
            WebRtcReady::StreamsOffer { change, result } => {
                self.on_streams_offer(endpoint, now, key, change, result)
            }
            WebRtcReady::ReAnswered { result, held } => {
                self.on_reanswered(endpoint, now, key, result, held, events)
            }
            WebRtcReady::Applied(Err(reason)) => {
                tracing::warn!(%reason, "the WebRTC answer is unusable; hanging up");
                self.hang_up(endpoint, now, key);
            }
            WebRtcReady::Event(WebRtcEvent::Connected { at }) => {
                if let Some(call) = self.calls.get(&key) {
                    let ms = at.saturating_duration_since(call.started).as_secs_f64() * 1e3;
                    tracing::info!(?key, ms, "ICE and DTLS connected");
                }
            }
            WebRtcReady::Event(WebRtcEvent::Disconnected) => {
                tracing::info!(?key, "WebRTC connection interrupted");
            }
            WebRtcReady::Event(WebRtcEvent::Failed) => {
                tracing::warn!(?key, "the WebRTC connection failed; hanging up");
                self.hang_up(endpoint, now, key);
            }
            WebRtcReady::Event(WebRtcEvent::Audio(event)) => {
                self.on_classic_event(endpoint, now, key, event, events)
            }
            WebRtcReady::Closed(stats) => {
                if let Some(closing) = self.closing.remove(&key) {
                    let summary = summary(&closing, &stats);
                    closing.end.report(key, summary, events);
                }
            }
        }
    }

    /// Our hold (or resume) offer is ready: send the re-INVITE.
    fn on_hold_offer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        hold: bool,
        result: Result<String, String>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let sent = result.and_then(|offer| {
            endpoint
                .reinvite(now, call.id, Body::sdp(offer))
                .map_err(|e| e.to_string())
        });
        if let Err(reason) = sent {
            tracing::warn!(%reason, hold, "cannot change the hold");
            call.withdraw_webrtc_offer();
            call.our_offer_failed(now);
            self.run_deferred_holds(endpoint, now);
        }
    }

    /// The peer's answer to our new offer is applied: the hold it asked for is the call's.
    fn on_reapplied(
        &mut self,
        now: Instant,
        key: CallKey,
        result: Result<(), String>,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Err(reason) = result {
            // The session withdrew its offer: the call goes on as before it.
            tracing::warn!(%reason, "the answer to our re-INVITE is unusable");
            call.our_offer_failed(now);
            return;
        }
        if matches!(call.restate, Restate::Offered { .. }) {
            call.restate = Restate::InStep;
        }
        if let Some(update) = call.settle_local_hold() {
            let _ = events.send(EngineEvent::Call { key, update });
        }
    }

    /// Our answer to the peer's new offer is ready: send it (a refused offer gets 491 or
    /// 488 and the call goes on as it was), and report a hold or resume it brought.
    fn on_reanswered(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        result: Result<String, ReofferRefused>,
        held: bool,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.answering = false;
        // The peer cancelled its offer meanwhile: nothing is sent (a restated offer, made
        // below, follows an offer the session took in).
        let cancelled = call.restate.answer_made(now, result.is_ok());
        match result {
            _ if cancelled => {}
            Ok(answer) => {
                let body = Some(Body::sdp(answer.clone()));
                if let Err(error) = endpoint.answer_reoffer(now, call.id, body) {
                    tracing::warn!(%error, "cannot answer a re-INVITE");
                } else {
                    call.concluded_sdp = Some(answer);
                    if let Some(update) = call.set_remote_hold(held) {
                        let _ = events.send(EngineEvent::Call { key, update });
                    }
                }
            }
            Err(refused) => {
                tracing::warn!(reason = %refused.reason, code = refused.code, "the new WebRTC offer is refused");
                let _ = endpoint.reject_reoffer(now, call.id, refused.refusal());
            }
        }
        // Offers of ours that waited for the answer are made now (the signalling sends
        // them once the peer's exchange is over).
        self.run_deferred_holds(endpoint, now);
        self.update_forwarding(endpoint);
    }

    /// Our offer is ready: send the INVITE.
    fn on_offer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        result: Result<(Box<WebRtcSession>, String), String>,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(Preparing::Outgoing {
            call,
            account,
            started,
        }) = self.preparing.remove(&key)
        else {
            if let Ok((session, _)) = result {
                // Hung up while the offer was made.
                self.close_webrtc(key, Arc::new(*session), Instant::now(), None, End::Replaced);
            }
            return;
        };
        let (session, offer) = match result {
            Ok(ready) => ready,
            Err(reason) => {
                return End::Failed {
                    code: None,
                    reason: format!("cannot make a WebRTC offer: {reason}"),
                    cause: CallFailure::Local,
                    warning: None,
                }
                .report(key, CallSummary::default(), events)
            }
        };
        let call = *call;
        let ip = call.local_sip.ip();
        let media = CallMedia::unbound(ip, call.media.clone());
        let sdp = SdpSession::new(ip, &mut self.rng);
        let invite = Invite {
            call: &call,
            account,
            offer,
            started,
        };
        let entry = self.send_invite(endpoint, now, key, invite, media, sdp);
        entry.webrtc = Some(Arc::new(*session));
        entry.fallback = Some((call, account));
    }

    /// Our answer to an incoming WebRTC offer is ready: ring and announce the call.
    fn on_answer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        result: Result<(Box<WebRtcSession>, String), String>,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(Preparing::Incoming {
            id,
            invite,
            ip,
            started,
            controls,
            takes_streams,
        }) = self.preparing.remove(&key)
        else {
            if let Ok((session, _)) = result {
                // The caller gave up while we made the answer.
                self.close_webrtc(key, Arc::new(*session), Instant::now(), None, End::Replaced);
            }
            return;
        };
        let (session, answer) = match result {
            Ok(ready) => ready,
            Err(reason) => {
                tracing::warn!(%reason, "WebRTC offer refused");
                self.by_id.remove(&id);
                let refusal = Refusal::new(488).with_warning(399, reason.to_string());
                let _ = endpoint.reject(now, id, refusal);
                return;
            }
        };
        let mut options = self.incoming.clone().unwrap_or_default();
        options.controls = *controls;
        let media = CallMedia::unbound(ip, options);
        let mut call = Call::new(key, id, media, SdpSession::new(ip, &mut self.rng), started);
        call.peer = super::peer_label(invite.display_name.as_deref(), &invite.from);
        call.peer_uri = invite.from.clone();
        call.concluded_sdp = Some(answer.clone());
        call.prepared_answer = Some(Body::sdp(answer));
        call.identity = rsip::Uri::try_from(invite.to.as_str()).ok();
        call.announced_ringing = true;
        call.webrtc = Some(Arc::new(*session));
        call.answer_applied = true;
        call.takes_streams = takes_streams;
        let controls = call.media.options.controls.clone();
        self.calls.insert(key, call);
        let _ = endpoint.ring(now, id);
        let _ = events.send(EngineEvent::Call {
            key,
            update: CallUpdate::Incoming {
                from: invite.from,
                display_name: invite.display_name,
                to: invite.to,
            },
        });
        let _ = events.send(EngineEvent::Call {
            key,
            update: CallUpdate::Controls(controls),
        });
    }

    /// A call event of a WebRTC call. Returns the event when the classic handling applies
    /// as it is (ringing, INFO, transfer…).
    pub(super) fn on_webrtc_call_event(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        event: CallEvent,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) -> Option<CallEvent> {
        let call = self.calls.get_mut(&key)?;
        match event {
            // The answer of a reliable 18x is final (RFC 3262 §5; the 2xx may carry none): it
            // is taken at once. An unreliable 18x's is not (the 2xx's counts).
            CallEvent::Ringing {
                early_media: Some(body),
                reliable: true,
            } if !call.answer_applied => {
                take_answer(call, key, &body, &self.media_events);
                Some(no_early_media())
            }
            CallEvent::Ringing { .. } => Some(no_early_media()),
            CallEvent::Answered { body }
            | CallEvent::Established {
                body: body @ Some(_),
            } if !call.answer_applied => {
                let Some(body) = body else {
                    tracing::warn!("the answer carries no SDP; hanging up");
                    let _ = endpoint.hang_up(now, call.id);
                    return None;
                };
                take_answer(call, key, &body, &self.media_events);
                None
            }
            CallEvent::Answered { body: Some(body) }
                if call.concluded_sdp.as_deref()
                    != Some(&*String::from_utf8_lossy(&body.bytes)) =>
            {
                // Answered by another fork than the one whose early answer was taken: our
                // session is bound to that one's ICE and DTLS.
                tracing::warn!("the 2xx's answer differs from the early one taken; hanging up");
                let _ = endpoint.hang_up(now, call.id);
                None
            }
            CallEvent::Answered { .. } => None,
            CallEvent::Established { body } => {
                call.established = Some(now);
                let sdp_text = match (&body, &call.concluded_sdp) {
                    (_, Some(text)) => text.clone(),
                    (Some(body), None) => String::from_utf8_lossy(&body.bytes).into_owned(),
                    (None, None) => String::new(),
                };
                let codec = first_audio_codec(&sdp_text).unwrap_or_else(|| "opus".into());
                let video = call.media.options.video.is_some() && has_video(&sdp_text);
                let _ = events.send(EngineEvent::Call {
                    key,
                    update: CallUpdate::Answered {
                        codec,
                        srtp: true,
                        path: MediaProfile::WebRtc,
                        video,
                    },
                });
                if let Some(original) = call.transfer_of {
                    self.transfer_succeeded(endpoint, now, original);
                }
                None
            }
            CallEvent::ReOffer { .. } if call.restate == Restate::Cancelled => {
                // The answer to the peer's cancelled offer is still being made: this one is
                // asked again after the RFC 3261 §14.1 wait.
                let _ = endpoint.reject_reoffer(now, call.id, 491);
                None
            }
            CallEvent::ReOfferCancelled => {
                tracing::info!(?key, "the peer cancelled its re-INVITE");
                if call.answering {
                    call.restate = Restate::Cancelled;
                }
                None
            }
            CallEvent::ReOffer { body: Some(body) } => {
                let Some(session) = call.webrtc.clone() else {
                    call.answering = false;
                    let _ = endpoint.reject_reoffer(now, call.id, 491);
                    return None;
                };
                let offer = String::from_utf8_lossy(&body.bytes).into_owned();
                let held = offer_holds(&offer);
                call.answering = true;
                let events = self.media_events.clone();
                webrtc::reanswer(&call.steps, key, session, offer, held, events);
                None
            }
            CallEvent::ReAnswer { body } => {
                call.refusal_told = false;
                match (body, call.webrtc.clone()) {
                    (Some(body), Some(session)) => {
                        let answer = String::from_utf8_lossy(&body.bytes).into_owned();
                        webrtc::apply_reanswer(
                            &call.steps,
                            key,
                            session,
                            answer,
                            self.media_events.clone(),
                        );
                    }
                    (None, Some(_)) => {
                        tracing::warn!("the answer to our re-INVITE carries no SDP");
                        call.withdraw_webrtc_offer();
                        call.our_offer_failed(now);
                        self.streams_settled(endpoint, now, key, false);
                        self.run_deferred_holds(endpoint, now);
                    }
                    (_, None) => {
                        call.pending_hold = None;
                        call.sync_hold_silence();
                    }
                }
                None
            }
            CallEvent::ReInviteFailed { code, warning } => {
                tracing::info!(code, ?warning, "re-INVITE refused");
                // A hold or resume the user asked for is always reported; an offer the
                // engine makes again and again (a conference's streams, a restated
                // session) is reported refused once until one of ours goes through.
                let asked =
                    call.pending_hold.is_some() && !matches!(call.restate, Restate::Offered { .. });
                if asked || !call.refusal_told {
                    let _ = events.send(EngineEvent::Call {
                        key,
                        update: CallUpdate::ChangeRefused { code, warning },
                    });
                }
                call.refusal_told = true;
                call.withdraw_webrtc_offer();
                call.our_offer_failed(now);
                self.streams_settled(endpoint, now, key, false);
                self.run_deferred_holds(endpoint, now);
                None
            }
            CallEvent::ReInviteYielded => {
                // Our offer gave way to the peer's, which follows: it is rolled back before
                // that is applied (the steps run in order), and made again once that is
                // answered.
                call.withdraw_webrtc_offer();
                call.streams.yielded(now);
                call.restate.offer_yielded(now);
                Some(CallEvent::ReInviteYielded)
            }
            CallEvent::ReOffer { body: None } => {
                call.answering = false;
                tracing::warn!("offerless re-INVITEs on WebRTC calls are refused");
                let _ = endpoint.reject_reoffer(now, call.id, 488);
                None
            }
            CallEvent::Failed {
                code: Some(488), ..
            } if call.established.is_none() => {
                // A desk phone that knows no WebRTC: place the call again, classic.
                let (mut outgoing, account) = call.fallback.take()?;
                tracing::info!("the callee refused the WebRTC offer; calling again with RTP/AVP");
                outgoing.media.profile = MediaProfile::Classic;
                self.finish(key, End::Replaced, events);
                self.start(endpoint, now, key, outgoing, account, events);
                None
            }
            other => Some(other),
        }
    }

    /// Closes a WebRTC session in the background; `end` is reported once it closed.
    pub(super) fn close_webrtc(
        &mut self,
        key: CallKey,
        session: Arc<WebRtcSession>,
        started: Instant,
        established: Option<Instant>,
        end: End,
    ) {
        if !matches!(end, End::Replaced) {
            self.closing.insert(
                key,
                Closing {
                    end,
                    started,
                    established,
                },
            );
        }
        webrtc::spawn_close(key, session, self.media_events.clone());
    }
}

/// A closed WebRTC call's summary.
fn summary(closing: &Closing, stats: &WebRtcStats) -> CallSummary {
    webrtc_summary(closing.started, closing.established, stats)
}

/// A WebRTC call's figures so far (`started`: its INVITE; `established`: when it was up).
pub(super) fn webrtc_summary(
    started: Instant,
    established: Option<Instant>,
    stats: &WebRtcStats,
) -> CallSummary {
    let mut summary = CallSummary::measured(
        started,
        established,
        Instant::now(),
        stats.audio.as_ref(),
        stats.video.as_ref(),
        ice_summary(stats),
    );
    if let Some(video) = &mut summary.video {
        video.streams = stats
            .more_video
            .iter()
            .map(|(stream, figures)| (webrtc::stream_name(stream), figures.frames_decoded))
            .collect();
    }
    summary
}

/// The selected candidate pair, once ICE selected one.
fn ice_summary(stats: &WebRtcStats) -> Option<IceSummary> {
    Some(IceSummary {
        local: stats.local_addr?,
        remote: stats.remote_addr?,
        local_kind: stats.local_kind.map(CandidateKind::as_str),
        remote_kind: stats.remote_kind.map(CandidateKind::as_str),
    })
}

/// The encoding name of the first audio format of an SDP.
fn first_audio_codec(text: &str) -> Option<String> {
    let session = sdp::parse(text.as_bytes()).ok()?;
    let audio = session
        .media
        .iter()
        .find(|m| m.kind == sdp::MediaKind::Audio)?;
    let payload_type = audio.formats.first()?.parse().ok()?;
    audio.codec(payload_type).map(|map| map.encoding)
}

/// Whether an offer puts us on hold: the peer will not receive our audio (`sendonly` or
/// `inactive`).
fn offer_holds(text: &str) -> bool {
    let Ok(session) = sdp::parse(text.as_bytes()) else {
        return false;
    };
    session
        .media
        .iter()
        .find(|m| m.kind == sdp::MediaKind::Audio && m.port != 0)
        .is_some_and(|audio| !session.direction_of(audio).receives())
}

/// Whether an SDP has an accepted (non-zero port) video stream.
pub(super) fn has_video(text: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with("m=video ") && !line.starts_with("m=video 0 "))
}

/// Ringing as the classic handling reports it, without the WebRTC answer it may carry.
fn no_early_media() -> CallEvent {
    CallEvent::Ringing {
        early_media: None,
        reliable: false,
    }
}

/// Applies the peer's answer `body` to a WebRTC call's session (once per call).
fn take_answer(
    call: &mut Call,
    key: CallKey,
    body: &Body,
    media_events: &super::media::MediaEvents,
) {
    call.answer_applied = true;
    let answer = String::from_utf8_lossy(&body.bytes).into_owned();
    call.takes_streams = takes_forwarded_streams(&answer);
    call.concluded_sdp = Some(answer.clone());
    if let Some(session) = &call.webrtc {
        webrtc::apply(
            &call.steps,
            key,
            Arc::clone(session),
            answer,
            media_events.clone(),
        );
    }
}
