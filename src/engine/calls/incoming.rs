//! Incoming INVITEs: the offer is answered at once (or refused with `488`/`400`), the call
//! rings, and the application decides when to answer it.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use callisto_signaling::call::{Body, CallId};
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::{self, Direction, OfferKind, SdpSession};
use tokio::sync::mpsc;

use super::media::{numbered, CallMedia};
use super::{Call, CallKey, CallUpdate, Calls};
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
        let mut options = options.for_one_call(&super::peer_label(
            invite.display_name.as_deref(),
            &invite.from,
        ));
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
        let mut sdp = SdpSession::new(ip, &mut self.rng);
        let mut classic_offer = None;
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
                    // The WebRTC path answers; the call rings once its answer is ready.
                    let key = CallKey(self.keys.fetch_add(1, Ordering::Relaxed));
                    let text = String::from_utf8_lossy(&body.bytes).into_owned();
                    let options = media.options.clone();
                    return self.prepare_answer(key, id, invite, ip, options, text);
                }
                let answered = sdp.answer_with_video(
                    &offer,
                    &media.local,
                    &media.options.policy,
                    media.video_offer(),
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
                        let _ = endpoint.reject(now, id, error.status_code());
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
        call.peer = super::peer_label(invite.display_name.as_deref(), &invite.from);
        call.prepared_answer = prepared_answer;
        call.offer = classic_offer;
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
