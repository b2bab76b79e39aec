//! Forwarding to a classic leg of a conference we host: a participant on the classic path
//! that takes several video streams (its SDP says so, as `forwarding.rs` reads it) is sent
//! every other participant's video on a further `m=video` of its own, as the WebRTC path's
//! legs are sent further tracks.
//!
//! Each forwarded stream has a slot ([`ForwardSlots`], kept by the leg's
//! [`ClassicVideo`](super::classic_video::ClassicVideo)): a socket bound when the stream is
//! first offered (its port names it in every later exchange) and, once an answer agrees,
//! a [`ClassicForwarder`] sending what the participant's tap gives its outlet. A
//! participant who leaves frees its slot (the m-line stays, `inactive`); the next one to
//! join takes it, under its own name, before a new m-line is added. A change goes to the
//! participant as a re-INVITE made here at once ([`SdpSession::create_offer_with_streams`]),
//! one at a time per leg, settled by its answer or failure as the WebRTC path's offers are.
//!
//! [`SdpSession::create_offer_with_streams`]: callisto_signaling::sdp::SdpSession::create_offer_with_streams

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use callisto_media::rtp::RtpPacket;
use callisto_media::session::{ClassicForwarder, ForwardOutlet, MediaDirection};
use callisto_signaling::call::{Body, CallEvent};
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::{ForwardedStream, FurtherVideo, LocalMedia};

use super::classic_video::{config_of, packetization_of, update_of};
use super::forwarding::{Outlet, Requester};
use super::media::srtp_keys_of;
use super::{CallKey, Calls};

/// One forwarded stream of a classic leg.
struct Slot {
    /// Our port for it (what names it in the SDP).
    local: LocalMedia,
    /// Its socket, until its forwarder starts.
    socket: Option<UdpSocket>,
    /// The participant it carries, by name; `None` once that one left (the slot is free).
    sender: Option<(CallKey, String)>,
    /// What asks that participant for keyframes.
    requester: Option<Requester>,
    forwarder: Option<ClassicForwarder>,
    /// Where the sender's packets go: the forwarder's outlet once it runs.
    outlet: Arc<Mutex<Option<ForwardOutlet>>>,
}

/// The forwarded streams of one classic leg.
pub(super) struct ForwardSlots {
    ip: IpAddr,
    slots: Vec<Slot>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ForwardSlots {
    pub(super) fn new(ip: IpAddr) -> ForwardSlots {
        ForwardSlots {
            ip,
            slots: Vec::new(),
        }
    }

    /// Gives each of `senders` (key, name, keyframe requester) a slot — the one it has, a
    /// free one, or a new one — and frees the slots of those no longer among them. True
    /// when that changed what the leg is sent (a new offer is due).
    fn assign(&mut self, senders: &[(CallKey, String, Requester)]) -> io::Result<bool> {
        let mut changed = false;
        for slot in &mut self.slots {
            let gone = slot
                .sender
                .as_ref()
                .is_some_and(|(key, _)| !senders.iter().any(|(k, _, _)| k == key));
            if gone {
                slot.sender = None;
                slot.requester = None;
                changed = true;
            }
        }
        for (key, label, requester) in senders {
            if self
                .slots
                .iter()
                .any(|s| s.sender.as_ref().is_some_and(|(k, _)| k == key))
            {
                continue;
            }
            let at = match self.slots.iter().position(|s| s.sender.is_none()) {
                Some(free) => free,
                None => {
                    let socket = UdpSocket::bind(SocketAddr::new(self.ip, 0))?;
                    let local = LocalMedia {
                        address: self.ip,
                        rtp_port: socket.local_addr()?.port(),
                        rtcp_port: None,
                    };
                    self.slots.push(Slot {
                        local,
                        socket: Some(socket),
                        sender: None,
                        requester: None,
                        forwarder: None,
                        outlet: Arc::default(),
                    });
                    self.slots.len() - 1
                }
            };
            let slot = &mut self.slots[at];
            slot.sender = Some((*key, label.clone()));
            slot.requester = Some(Arc::clone(requester));
            if let Some(forwarder) = &slot.forwarder {
                forwarder.set_source(Arc::clone(requester));
            }
            changed = true;
        }
        Ok(changed)
    }

    /// The streams the leg is to be sent now, for the offer.
    fn wish(&self) -> Vec<ForwardedStream> {
        self.slots
            .iter()
            .filter_map(|slot| {
                let (_, label) = slot.sender.as_ref()?;
                Some(ForwardedStream {
                    label: label.clone(),
                    local: slot.local,
                })
            })
            .collect()
    }

    /// Each sender's outlet into this leg.
    fn outlets(&self) -> Vec<(CallKey, Outlet)> {
        self.slots
            .iter()
            .filter_map(|slot| {
                let (key, _) = slot.sender.as_ref()?;
                let outlet = Arc::clone(&slot.outlet);
                let send: Outlet = Arc::new(move |packet: &RtpPacket| {
                    if let Some(outlet) = lock(&outlet).as_ref() {
                        outlet.send(packet);
                    }
                });
                Some((*key, send))
            })
            .collect()
    }

    /// Follows the latest exchange: each forwarded stream it agreed starts (on its slot's
    /// socket) or is updated — address, keys, and sending or not; `key` names the leg in
    /// RTCP.
    pub(super) fn apply(&mut self, streams: &[FurtherVideo], key: CallKey) {
        for stream in streams.iter().filter(|s| s.forwarded) {
            let Some(slot) = self.slots.iter_mut().find(|s| s.local == stream.local) else {
                continue;
            };
            if let Err(reason) = follow(slot, stream, key) {
                tracing::warn!(%reason, label = %stream.label, "forwarded video stream");
            }
        }
    }

    /// Stops every forwarder (RTCP BYE).
    pub(super) fn stop(&mut self) {
        for slot in &mut self.slots {
            *lock(&slot.outlet) = None;
            if let Some(mut forwarder) = slot.forwarder.take() {
                forwarder.stop();
            }
        }
    }
}

fn follow(slot: &mut Slot, stream: &FurtherVideo, key: CallKey) -> Result<(), String> {
    let negotiated = &stream.negotiated;
    let srtp = srtp_keys_of(negotiated.srtp.as_ref())?;
    let direction = MediaDirection {
        send: stream.is_forwarding() && slot.sender.is_some(),
        receive: false,
    };
    if let Some(forwarder) = &slot.forwarder {
        return forwarder
            .update(update_of(negotiated, direction, srtp))
            .map_err(|e| e.to_string());
    }
    let (Some(requester), true) = (&slot.requester, direction.send) else {
        return Ok(());
    };
    let socket = slot
        .socket
        .as_ref()
        .ok_or("the stream's socket is gone")?
        .try_clone()
        .map_err(|e| e.to_string())?;
    let packetization = packetization_of(negotiated)?;
    let config = config_of(negotiated, socket, packetization, 0, direction, srtp, key);
    let forwarder =
        ClassicForwarder::start(config, Arc::clone(requester)).map_err(|e| e.to_string())?;
    *lock(&slot.outlet) = Some(forwarder.outlet());
    slot.forwarder = Some(forwarder);
    slot.socket = None;
    tracing::info!(label = %stream.label, port = slot.local.rtp_port, "forwarding starts");
    Ok(())
}

/// Whether the writer of a classic SDP `body` takes several video streams (see
/// [`takes_several_streams`](callisto_media::webrtc::takes_several_streams)).
pub(super) fn takes_streams(body: &Body) -> bool {
    callisto_media::webrtc::takes_several_streams(&String::from_utf8_lossy(&body.bytes))
}

impl Calls {
    /// Brings classic leg `receiver`'s forwarded streams in line with `senders` (the
    /// conference's legs with video but itself): a new offer when that changed them, or when
    /// a failed one is due again (`retry`). Waits while another offer of the call is under
    /// way.
    pub(super) fn offer_classic_streams(
        &mut self,
        endpoint: &mut Endpoint,
        receiver: CallKey,
        senders: &[(CallKey, String, Requester)],
        retry: bool,
    ) {
        let Some(call) = self.calls.get_mut(&receiver) else {
            return;
        };
        if call.sdp.is_awaiting_answer() || call.established.is_none() {
            return;
        }
        let Some(slots) = call.media.video.as_mut().map(|v| &mut v.forwarded) else {
            return;
        };
        let changed = match slots.assign(senders) {
            Ok(changed) => changed,
            Err(error) => {
                tracing::warn!(%error, "no socket for a forwarded stream");
                return;
            }
        };
        if !changed && !retry {
            return;
        }
        let (wish, outlets) = (slots.wish(), slots.outlets());
        for destinations in self.forwarding.senders.values() {
            super::forwarding::lock(destinations).retain(|(to, _)| *to != receiver);
        }
        for (sender, outlet) in outlets {
            if let Some(destinations) = self.forwarding.senders.get(&sender) {
                super::forwarding::lock(destinations).push((receiver, outlet));
            }
        }
        let direction = call.wanted_direction();
        let offer = call.sdp.create_offer_with_streams(
            &call.media.local,
            &call.media.options.policy,
            call.media.video_offer(),
            &wish,
            direction,
            &mut self.rng,
        );
        let now = Instant::now();
        let sent = offer.map_err(|e| e.to_string()).and_then(|offer| {
            endpoint
                .reinvite(now, call.id, Body::sdp(offer.to_string()))
                .map_err(|e| {
                    call.sdp.discard_offer();
                    e.to_string()
                })
        });
        call.streams.busy = true;
        if let Err(reason) = sent {
            tracing::warn!(?receiver, %reason, "cannot offer the conference's streams");
            self.streams_settled(endpoint, now, receiver, false);
        }
    }

    /// What a classic call's `event` means for an offer about its forwarded streams under
    /// way: whether the offer is settled by it (answered: `Some(true)`; refused:
    /// `Some(false)`), to be told once the event is handled. An offer that gave way to the
    /// peer's is made again once that is answered.
    pub(super) fn classic_streams_settled_by(
        &mut self,
        key: CallKey,
        event: &CallEvent,
        now: Instant,
    ) -> Option<bool> {
        let call = self.calls.get_mut(&key)?;
        if !call.streams.busy || call.webrtc.is_some() {
            return None;
        }
        match event {
            CallEvent::ReAnswer { .. } => Some(true),
            CallEvent::ReInviteFailed { .. } => Some(false),
            CallEvent::ReInviteYielded => {
                call.streams.yielded(now);
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn senders(who: &[(u64, &str)]) -> Vec<(CallKey, String, Requester)> {
        who.iter()
            .map(|(key, name)| {
                let requester: Requester = Arc::new(|| {});
                (CallKey(*key), (*name).to_string(), requester)
            })
            .collect()
    }

    /// The streams wished for, as (label, port).
    fn wished(slots: &ForwardSlots) -> Vec<(String, u16)> {
        slots
            .wish()
            .into_iter()
            .map(|stream| (stream.label, stream.local.rtp_port))
            .collect()
    }

    #[test]
    fn a_gone_participants_slot_goes_to_the_next_before_a_new_one_is_bound() {
        let mut slots = ForwardSlots::new(IpAddr::from([127, 0, 0, 1]));
        assert!(slots
            .assign(&senders(&[(1, "carol"), (2, "dave")]))
            .unwrap());
        let first = wished(&slots);
        let (carol_port, dave_port) = (first[0].1, first[1].1);
        assert_eq!(
            first,
            [("carol".into(), carol_port), ("dave".into(), dave_port)]
        );
        assert_ne!(carol_port, dave_port);
        assert!(
            !slots
                .assign(&senders(&[(2, "dave"), (1, "carol")]))
                .unwrap(),
            "the same participants: no new offer"
        );
        // Carol leaves: her slot is free, dave's stays.
        assert!(slots.assign(&senders(&[(2, "dave")])).unwrap());
        assert_eq!(wished(&slots), [("dave".into(), dave_port)]);
        let outlets: Vec<CallKey> = slots.outlets().into_iter().map(|(key, _)| key).collect();
        assert_eq!(outlets, [CallKey(2)]);
        // Erin joins in carol's slot; frank needs a new one.
        assert!(slots
            .assign(&senders(&[(2, "dave"), (3, "erin"), (4, "frank")]))
            .unwrap());
        let now = wished(&slots);
        assert_eq!(
            now[..2],
            [("erin".into(), carol_port), ("dave".into(), dave_port)]
        );
        assert_eq!(now[2].0, "frank");
        assert!(![carol_port, dave_port].contains(&now[2].1));
        assert_eq!(slots.slots.len(), 3);
    }
}
