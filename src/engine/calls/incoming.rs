//! Incoming INVITEs: the offer is answered at once (or refused with `488`/`400`), the call
//! rings, and the application decides when to answer it (`answer`, which holds the calls
//! already up unless the call joins a conference) or refuses it (`reject`).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use callisto_signaling::call::{Body, CallId, CallState};
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::{self, Direction, OfferKind};
use tokio::sync::mpsc;

use super::classic_forwarding::takes_streams;
use super::media::{numbered, CallMedia};
use super::{Call, CallFailure, CallKey, CallUpdate, Calls};
use crate::engine::EngineEvent;

/// What the engine needs from an incoming INVITE.
pub(super) struct IncomingInvite {
    pub(super) from: String,
    pub(super) display_name: Option<String>,
    pub(super) to: String,
    pub(super) body: Option<Body>,
    /// Our address towards the INVITE's source (for the media).
    pub(super) local_ip: Option<IpAddr>,
}

impl Calls {
    pub(super) fn on_incoming(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        id: CallId,
        invite: IncomingInvite,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(options) = self.incoming.clone() else {
            // Nothing here takes calls (registering only): decline politely.
            let _ = endpoint.reject(now, id, 480);
            return;
        };
        let peer = super::peer_label(invite.display_name.as_deref(), &invite.from);
        let mut options = options.for_one_call(&peer);
        self.incoming_count += 1;
        if self.incoming_count > 1 {
            options.record = options
                .record
                .map(|path| numbered(&path, self.incoming_count));
        }
        let ip = invite.local_ip.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let mut media = match CallMedia::bind(ip, options) {
            Ok(media) => media,
            Err(error) => {
                tracing::warn!(%error, "cannot open an RTP port");
                let _ = endpoint.reject(now, id, 500);
                return;
            }
        };
        let mut sdp = media.sdp_session(ip, &mut self.rng);
        let mut classic_offer = None;
        let (prepared_answer, negotiated) = match &invite.body {
            Some(body) => {
                let offer = match sdp::parse(&body.bytes) {
                    Ok(offer) => offer,
                    Err(error) => {
                        tracing::warn!(%error, "malformed offer");
                        let _ = endpoint.reject(now, id, error.refusal());
                        return;
                    }
                };
                if sdp::offer_kind(&offer) == OfferKind::WebRtc {
                    // The WebRTC path answers; the call rings once its answer is ready.
                    let key = CallKey(self.keys.fetch_add(1, Ordering::Relaxed));
                    let text = String::from_utf8_lossy(&body.bytes).into_owned();
                    let options = media.options.clone();
                    return self.prepare_answer(key, id, invite, ip, options, text);
                }
                let further = media.further_ports(&offer);
                let answered = sdp.answer_with_streams(
                    &offer,
                    &media.local,
                    &media.options.policy,
                    media.video_offer(),
                    &further,
                    Direction::SendRecv,
                    &mut self.rng,
                );
                match answered {
                    Ok((answer, negotiated)) => {
                        classic_offer = Some(offer);
                        (Some(Body::sdp(answer.to_string())), Some(negotiated))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "offer refused");
                        let _ = endpoint.reject(now, id, error.refusal());
                        return;
                    }
                }
            }
            None => {
                // No offer in the INVITE: ours goes in the 200, the answer comes in the ACK.
                let offer = sdp.create_offer_with_video(
                    &media.local,
                    &media.options.policy,
                    media.video_offer(),
                    Direction::SendRecv,
                    &mut self.rng,
                );
                match offer {
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
        media.negotiated = negotiated;
        let controls = media.options.controls.clone();
        let mut call = Call::new(key, id, media, sdp, now);
        call.peer = peer;
        call.peer_uri = invite.from.clone();
        call.prepared_answer = prepared_answer;
        call.offer = classic_offer;
        call.takes_streams = invite.body.as_ref().is_some_and(takes_streams);
        call.identity = rsip::Uri::try_from(invite.to.as_str()).ok();
        call.announced_ringing = true;
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
}

/// Answering and refusing a ringing call.
impl Calls {
    /// Answers a ringing incoming call; its media starts at the next
    /// [`Calls::start_answered_media`], after the 2xx is sent. Calls already up are put on
    /// hold first (call waiting: the new call takes over, the others wait), unless the call
    /// joins a conference. Without `video`
    /// the answer declines a classic offer's video, and a WebRTC call's camera starts off.
    pub(in crate::engine) fn answer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        video: bool,
    ) {
        if !video {
            self.answer_without_video(key);
        }
        if self
            .calls
            .get(&key)
            .is_none_or(|c| c.prepared_answer.is_none())
        {
            return;
        }
        // In a conference everyone stays; otherwise the new call takes over.
        let conference = self.calls[&key].media.options.conference.is_some();
        let active: Vec<CallKey> = self
            .calls
            .values()
            .filter(|c| c.key != key && c.established.is_some() && !c.local_hold)
            .filter(|_| !conference)
            .map(|c| c.key)
            .collect();
        for other in active {
            self.set_hold(endpoint, now, other, true);
        }
        if conference {
            // Our 2xx says we are the focus, and the roster is ready for the participant.
            self.publish_roster(endpoint, now);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let body = call.prepared_answer.take();
        if let Err(error) = endpoint.answer(now, call.id, body) {
            tracing::warn!(%error, "cannot answer");
            return;
        }
        // A WebRTC session made our answer: its media is already negotiated.
        if call.webrtc.is_none() {
            self.answered.push(key);
        }
    }

    /// Starts the media of the classic calls answered since the last time; the engine calls
    /// it once their 2xx responses are sent, so that making codecs and threads does not
    /// hold the answer back (the 2xx carries only the already bound port). Returns whether
    /// there were any (a failed start hangs up, which has a BYE to send).
    pub(in crate::engine) fn start_answered_media(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) -> bool {
        if self.answered.is_empty() {
            return false;
        }
        for key in std::mem::take(&mut self.answered) {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            // A 2xx that could not be sent has already failed the call.
            let answered = matches!(
                endpoint.call_state(call.id),
                Some(CallState::Answering | CallState::Established)
            );
            let Some(negotiated) = call.media.negotiated.clone().filter(|_| answered) else {
                continue;
            };
            call.media.apply_video(&call.sdp, key, &self.media_events);
            if let Err(reason) = call.media.apply(&negotiated, key, &self.media_events) {
                tracing::warn!(%reason, "media did not start");
                let _ = endpoint.hang_up(now, call.id);
                let _ = events.send(EngineEvent::Call {
                    key,
                    update: CallUpdate::Failed {
                        code: None,
                        reason,
                        cause: CallFailure::Local,
                        warning: None,
                    },
                });
            }
        }
        true
    }

    /// Makes a ringing call's answer audio-only: a classic answer again without video (its
    /// video socket closes), the camera of a WebRTC call off.
    fn answer_without_video(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.media.options.controls.camera.set(false);
        let Some(offer) = call.offer.as_ref().filter(|_| call.media.video.is_some()) else {
            return;
        };
        let answer = call.sdp.answer_with_video(
            offer,
            &call.media.local,
            &call.media.options.policy,
            None,
            Direction::SendRecv,
            &mut self.rng,
        );
        match answer {
            Ok((answer, negotiated)) => {
                call.prepared_answer = Some(Body::sdp(answer.to_string()));
                call.media.negotiated = Some(negotiated);
                call.media.video = None;
            }
            Err(error) => tracing::warn!(%error, "cannot answer without video"),
        }
    }

    pub(in crate::engine) fn reject(
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
}
