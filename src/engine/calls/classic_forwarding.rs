//! Forwarding to a classic leg of a conference we host: a participant on the classic path
//! that takes several video streams (its SDP says so, as `forwarding.rs` reads it) is sent
//! every other participant's video on a further `m=video` of its own, as the WebRTC path's
//! legs are sent further tracks.
//!
//! Each forwarded stream has a slot ([`ForwardSlots`], kept by the leg's
//! [`ClassicVideo`](super::classic_video::ClassicVideo); at most [`MAX_FURTHER_VIDEO`]): a
//! socket bound when the stream is first offered (its port names it in every later exchange)
//! and, once an answer agrees, a [`ClassicForwarder`] sending what the participant's tap
//! gives its outlet. A participant who leaves frees its slot (the m-line stays, `inactive`);
//! the next one to join takes it, under its own name, before a new m-line is added — its
//! packets flow once the answer has renamed the stream. A change goes to the participant as
//! a re-INVITE made here at once ([`SdpSession::create_offer_with_streams`]), one at a time
//! per leg, settled by its answer or failure as the WebRTC path's offers are (a missing or
//! unusable answer is a failure). A stream the answer declines (port 0, or a peer that takes
//! packetization mode 0 alone) is not offered again; a leg that declines every one is sent
//! the mosaic instead, as a single-stream peer is.
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
use callisto_signaling::sdp::{self, ForwardedStream, FurtherVideo, LocalMedia, MAX_FURTHER_VIDEO};

use super::classic_video::{config_of, packetization_of, update_of, INACTIVE};
use super::forwarding::{lock, Outlet, Requester};
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
    /// The peer declined its stream: it is neither offered nor taken again.
    declined: bool,
    /// What asks that participant for keyframes.
    requester: Option<Requester>,
    forwarder: Option<ClassicForwarder>,
    /// Where the sender's packets go: the forwarder's outlet once it runs under the
    /// sender's name (none while an offer renames the stream).
    outlet: Arc<Mutex<Option<ForwardOutlet>>>,
}

/// How many offers of its streams in a row a classic leg may refuse before it is sent the
/// mosaic instead.
const GIVE_UP_AFTER: u32 = 3;

/// What the peer made of the streams a leg was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// It took at least one.
    Some,
    /// It declined every one.
    None,
}

/// The forwarded streams of one classic leg.
pub(super) struct ForwardSlots {
    ip: IpAddr,
    slots: Vec<Slot>,
}

impl ForwardSlots {
    pub(super) fn new(ip: IpAddr) -> ForwardSlots {
        ForwardSlots {
            ip,
            slots: Vec::new(),
        }
    }

    /// Gives each of `senders` (key, name, keyframe requester) a slot — the one it has, a
    /// free one, or a new one while fewer than [`MAX_FURTHER_VIDEO`] are not declined — and frees
    /// the slots of those no longer among them. True when that changed what the leg is
    /// sent (a new offer is due).
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
                *lock(&slot.outlet) = None;
                changed |= !slot.declined;
            }
        }
        for (key, label, requester) in senders {
            let placed = |s: &Slot| s.sender.as_ref().is_some_and(|(k, _)| k == key);
            if self.slots.iter().any(placed) {
                continue;
            }
            let free = self
                .slots
                .iter()
                .position(|s| s.sender.is_none() && !s.declined);
            let at = match free {
                Some(free) => free,
                None if self.slots.iter().filter(|s| !s.declined).count() < MAX_FURTHER_VIDEO => {
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
                        declined: false,
                        requester: None,
                        forwarder: None,
                        outlet: Arc::default(),
                    });
                    self.slots.len() - 1
                }
                None => continue,
            };
            let slot = &mut self.slots[at];
            slot.sender = Some((*key, label.clone()));
            slot.requester = Some(Arc::clone(requester));
            changed = true;
        }
        Ok(changed)
    }

    /// The streams the leg is to be sent now, for the offer.
    fn wish(&self) -> Vec<ForwardedStream> {
        self.slots
            .iter()
            .filter(|slot| !slot.declined)
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
            .filter(|slot| !slot.declined)
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
    /// socket) or is updated — address, keys, and sending or not; one it does not have
    /// (disabled, or not offered yet) sends nothing. `key` names the leg in RTCP.
    pub(super) fn apply(&mut self, streams: &[FurtherVideo], key: CallKey) {
        for slot in &mut self.slots {
            let agreed = streams
                .iter()
                .find(|s| s.forwarded && s.local == slot.local);
            let result = match (agreed, &slot.forwarder) {
                (Some(stream), _) if !slot.declined => follow(slot, stream, key),
                (_, Some(forwarder)) => forwarder.update(INACTIVE).map_err(|e| e.to_string()),
                (_, None) => Ok(()),
            };
            if let Err(reason) = result {
                tracing::warn!(%reason, port = slot.local.rtp_port, "forwarded video stream");
            }
        }
    }

    /// After the answer to an offer of the streams (`streams`: what it agreed): a wished
    /// stream it does not have is declined for good. Whether the peer took any (all
    /// declined: [`Taken::None`]; a stream taken before and retired since still counts).
    fn settle(&mut self, streams: &[FurtherVideo]) -> Taken {
        for slot in self.slots.iter_mut().filter(|s| s.sender.is_some()) {
            let agreed = streams.iter().any(|s| s.forwarded && s.local == slot.local);
            if !agreed && !slot.declined {
                tracing::info!(
                    port = slot.local.rtp_port,
                    "the peer declines a forwarded stream"
                );
                slot.declined = true;
                *lock(&slot.outlet) = None;
            }
        }
        if !self.slots.is_empty() && self.slots.iter().all(|s| s.declined) {
            Taken::None
        } else {
            Taken::Some
        }
    }

    /// The leg takes none of the streams: every slot is declined and its forwarder stopped.
    fn give_up(&mut self) {
        for slot in &mut self.slots {
            slot.declined = true;
        }
        self.stop();
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
        forwarder
            .update(update_of(negotiated, direction, srtp))
            .map_err(|e| e.to_string())?;
        // A slot that passed to another participant carries its packets from now on.
        let mut outlet = lock(&slot.outlet);
        if let (Some(requester), true, None) = (&slot.requester, direction.send, &*outlet) {
            forwarder.set_source(Arc::clone(requester));
            *outlet = Some(forwarder.outlet());
        }
        return Ok(());
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

/// Whether the writer of a classic SDP `body` can be forwarded the others' streams (see
/// [`takes_forwarded_streams`](callisto_media::webrtc::takes_forwarded_streams)).
pub(super) fn takes_streams(body: &Body) -> bool {
    callisto_media::webrtc::takes_forwarded_streams(&String::from_utf8_lossy(&body.bytes))
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
        // Each sender's packets go to the leg's slot for it, set again on every pass (a
        // sender that stopped sending for a while was forgotten) under one lock per sender,
        // so no packet finds the leg missing meanwhile.
        let mut outlets = slots.outlets();
        for (sender, destinations) in &self.forwarding.senders {
            let mut destinations = lock(destinations);
            destinations.retain(|(to, _)| *to != receiver);
            let (mine, others) = outlets.into_iter().partition(|(key, _)| key == sender);
            outlets = others;
            destinations.extend(mine.into_iter().map(|(_, outlet)| (receiver, outlet)));
        }
        if !changed && !retry {
            return;
        }
        let wish = slots.wish();
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
    /// way: whether the event settles it, and how (a usable answer: `Some(true)`; a refusal,
    /// or an answer that is missing or that the session will not take: `Some(false)`), to be
    /// told once the event is handled. An offer that gave way to the peer's is made again
    /// once that is answered.
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
            CallEvent::ReAnswer { body } => {
                // Tried on a copy: the event's own handling applies it.
                let answer = body.as_ref().and_then(|b| sdp::parse(&b.bytes).ok());
                Some(answer.is_some_and(|a| call.sdp.clone().apply_answer(&a).is_ok()))
            }
            CallEvent::ReInviteFailed { .. } => Some(false),
            CallEvent::ReInviteYielded => {
                call.streams.yielded(now);
                None
            }
            _ => None,
        }
    }

    /// A classic leg's offer of its streams is settled, `accepted` or not (refused, or its
    /// answer missing or unusable: the offer is given up, the session as before it). The
    /// streams the answer declined are not offered again; a leg that declines every one, or
    /// fails [`GIVE_UP_AFTER`] such offers in a row (a phone whose further `m=video` is not
    /// for us), gets the mosaic and its forwarded streams stop.
    pub(super) fn classic_streams_settled(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        accepted: bool,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !accepted {
            call.sdp.discard_offer();
        }
        let further = call.sdp.further_video();
        let taken = match call.media.video.as_mut() {
            Some(video) if accepted => video.forwarded.settle(further),
            _ if !accepted && call.streams.failures + 1 >= GIVE_UP_AFTER => Taken::None,
            _ => Taken::Some,
        };
        if taken == Taken::None {
            tracing::info!(
                ?key,
                "the leg takes no forwarded stream: it gets the mosaic"
            );
            call.takes_streams = false;
            call.media.options.controls.own_streams.set(false);
            if let Some(video) = call.media.video.as_mut() {
                video.forwarded.give_up();
            }
            for destinations in self.forwarding.senders.values() {
                lock(destinations).retain(|(to, _)| *to != key);
            }
        }
        self.streams_settled(endpoint, now, key, accepted);
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

    /// A forwarded stream as the answer agreed it, on our `port`.
    fn agreed(port: u16) -> FurtherVideo {
        use callisto_signaling::sdp::{Direction, NegotiatedVideo};
        FurtherVideo {
            index: 2,
            label: String::new(),
            local: LocalMedia {
                address: IpAddr::from([127, 0, 0, 1]),
                rtp_port: port,
                rtcp_port: None,
            },
            negotiated: NegotiatedVideo {
                remote_rtp: SocketAddr::from(([127, 0, 0, 1], 9)),
                remote_rtcp: None,
                rtcp_mux: true,
                payload_type: 96,
                packetization_mode: 1,
                profile_level_id: Some(0x42e01f),
                direction: Direction::SendOnly,
                srtp: None,
                nack: false,
            },
            forwarded: true,
        }
    }

    #[test]
    fn a_declined_stream_is_not_offered_again_and_slots_are_capped() {
        let mut slots = ForwardSlots::new(IpAddr::from([127, 0, 0, 1]));
        assert!(slots
            .assign(&senders(&[(1, "carol"), (2, "dave")]))
            .unwrap());
        let ports: Vec<u16> = wished(&slots).iter().map(|(_, port)| *port).collect();
        // The peer takes carol's stream and declines dave's.
        assert_eq!(slots.settle(&[agreed(ports[0])]), Taken::Some);
        assert_eq!(wished(&slots), [("carol".into(), ports[0])]);
        let outlets: Vec<CallKey> = slots.outlets().into_iter().map(|(key, _)| key).collect();
        assert_eq!(outlets, [CallKey(1)]);
        assert!(
            !slots
                .assign(&senders(&[(1, "carol"), (2, "dave")]))
                .unwrap(),
            "dave is not offered again"
        );
        // Dave leaves: nothing to offer; his declined slot is not taken by erin.
        assert!(!slots.assign(&senders(&[(1, "carol")])).unwrap());
        assert!(slots
            .assign(&senders(&[(1, "carol"), (3, "erin")]))
            .unwrap());
        let erin = wished(&slots)[1].1;
        assert!(!ports.contains(&erin));
        // Erin's stream declined: carol's, taken, still counts.
        assert_eq!(slots.settle(&[agreed(ports[0])]), Taken::Some);
        // Carol leaves: an answer that forwards nothing is no refusal.
        assert!(slots.assign(&senders(&[(3, "erin")])).unwrap());
        assert_eq!(slots.settle(&[]), Taken::Some);
        assert!(slots.wish().is_empty());
        // A peer that declines every stream it was ever offered.
        let mut refusing = ForwardSlots::new(IpAddr::from([127, 0, 0, 1]));
        refusing.assign(&senders(&[(1, "carol")])).unwrap();
        assert_eq!(refusing.settle(&[]), Taken::None);
        assert!(refusing.wish().is_empty());

        let mut many = ForwardSlots::new(IpAddr::from([127, 0, 0, 1]));
        let names: Vec<(u64, String)> = (1..=12).map(|i| (i, format!("p{i}"))).collect();
        let all: Vec<(u64, &str)> = names.iter().map(|(i, n)| (*i, n.as_str())).collect();
        many.assign(&senders(&all)).unwrap();
        assert_eq!(many.wish().len(), MAX_FURTHER_VIDEO);
    }
}
