//! Directions: our hold on a WebRTC call, and our answers to the peer's.
//!
//! **Our hold** (RFC 3264 § 8.4 by way of JSEP) is a new offer in which every stream we would
//! send and receive becomes send-only (and one we only receive inactive), so the peer stops
//! sending; taking the hold off offers them as they were. The offer is made by
//! [`WebRtcSession::hold_offer`], its answer applied by [`WebRtcSession::apply_reanswer`];
//! an offer the peer refuses is withdrawn by [`WebRtcSession::cancel_reoffer`], which also
//! puts the streams back as they were before it. When the peer withdraws an offer of its own
//! that the session already answered, [`WebRtcSession::restate_offer`] offers the streams
//! as we want them again.
//!
//! **Our answers** to the peer's new offers: `rtc` 0.21 answers a renegotiation with each
//! transceiver's own direction, so a peer's hold (`a=sendonly`) would be answered
//! `a=sendrecv`. Before each answer, [`WebRtcSession::narrow_to_offer`] gives every stream
//! the direction RFC 3264 § 6.1 asks for: what we want (sendrecv for our tracks, send-only
//! while we hold, receive-only for a further stream) narrowed by what the offer allows.
//! What we want is remembered per `a=mid`, apart from what an answer narrowed it to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ::webrtc::peer_connection::RTCSessionDescription;
use ::webrtc::rtp_transceiver::{RtpSender, RtpTransceiver};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection as Direction;

use super::sdp_check::media_directions;
use super::session::{lock, Negotiation, WebRtcSession};
use super::WebRtcError;

/// The directions we want, and what our hold changed.
#[derive(Default)]
pub(super) struct Held {
    /// What we want of each negotiated stream, by `a=mid`.
    wanted: HashMap<String, Direction>,
    /// The streams a hold changed: transceiver, mid, what we wanted before it.
    streams: Vec<(Arc<dyn RtpTransceiver>, String, Direction)>,
    /// The hold (or its end) our outstanding offer asks for.
    pending: Option<bool>,
    /// Our outstanding offer restates the session ([`WebRtcSession::restate_offer`]): its
    /// answer tells which of the peer's streams it sends, as the peer's offers do.
    restated: bool,
}

/// What a stream becomes on hold: send-only when it went both ways, inactive when we only
/// received it; others stay.
fn on_hold(direction: Direction) -> Option<Direction> {
    match direction {
        Direction::Sendrecv => Some(Direction::Sendonly),
        Direction::Recvonly => Some(Direction::Inactive),
        _ => None,
    }
}

/// RFC 3264 § 6.1: we send only if we want to and the offerer receives, and receive only if
/// we want to and the offerer sends.
fn narrowed(wanted: Direction, offered: Direction) -> Direction {
    Direction::from_send_recv(
        wanted.has_send() && offered.has_recv(),
        wanted.has_recv() && offered.has_send(),
    )
}

impl WebRtcSession {
    /// Whether `sender`'s stream is sent now, as a flag its RTP writer reads
    /// ([`tasks::write_rtp`](super::tasks::write_rtp)): the driver refuses — and logs at
    /// error level — every packet of a transceiver whose direction does not send, as when
    /// the peer's hold is answered receive-only. Set by [`WebRtcSession::direct`].
    pub(super) fn sending_flag(&self, sender: &Arc<dyn RtpSender>) -> Arc<AtomicBool> {
        let mut flags = lock(&self.shared.sending);
        let flag = flags
            .entry(sender.id())
            .or_insert_with(|| Arc::new(AtomicBool::new(true)));
        Arc::clone(flag)
    }

    /// Gives `transceiver` `direction`, and tells its RTP writer whether it sends: before the
    /// change when it stops sending (the driver refuses, and logs, each packet once the
    /// direction does not send), after it when it starts.
    pub(super) async fn direct(
        &self,
        transceiver: &Arc<dyn RtpTransceiver>,
        direction: Direction,
    ) -> Result<(), WebRtcError> {
        let sender = transceiver.sender().await.ok().flatten();
        let flag = sender.as_ref().map(|sender| self.sending_flag(sender));
        if let Some(flag) = flag.as_ref().filter(|_| !direction.has_send()) {
            flag.store(false, Ordering::Release);
        }
        transceiver.set_direction(direction).await?;
        if let Some(flag) = flag {
            flag.store(direction.has_send(), Ordering::Release);
        }
        Ok(())
    }

    /// A transceiver's mid and the direction we want of it (learnt, the first time, from
    /// its direction then: nothing has narrowed it yet). `None` before it is negotiated.
    async fn wanted(&self, transceiver: &Arc<dyn RtpTransceiver>) -> Option<(String, Direction)> {
        let mid = transceiver.mid().await.ok()??;
        let known = lock(&self.held).wanted.get(&mid).copied();
        let wanted = match known {
            Some(wanted) => wanted,
            None => {
                let current = transceiver.direction().await.ok()?;
                lock(&self.held).wanted.insert(mid.clone(), current);
                current
            }
        };
        Some((mid, wanted))
    }

    /// Records that we now want `direction` of `transceiver`'s stream (a forwarding track
    /// retired or carrying a stream again), so our answers to the peer's offers keep to it.
    pub(super) async fn want(&self, transceiver: &Arc<dyn RtpTransceiver>, direction: Direction) {
        if let Ok(Some(mid)) = transceiver.mid().await {
            lock(&self.held).wanted.insert(mid, direction);
        }
    }

    /// Our answer to a new offer with the DTLS role the first exchange settled: the library
    /// answers every offer with its default role, but the role stays for the life of the
    /// association (RFC 8842 §5.3), and a browser refuses an answer that reverses it.
    pub(super) fn keep_dtls_role(&self, answer: String) -> String {
        match *lock(&self.dtls_setup) {
            Some(role) => super::sdp_check::with_dtls_setup(&answer, role),
            None => answer,
        }
    }

    /// Gives every negotiated stream the direction our answer to `offer` must have: what we
    /// want, narrowed by what the offer allows (see the module docs).
    pub(super) async fn narrow_to_offer(&self, offer: &str) -> Result<(), WebRtcError> {
        let offered: HashMap<String, &str> = media_directions(offer).into_iter().collect();
        for transceiver in self.pc.get_transceivers().await {
            let Some((mid, wanted)) = self.wanted(&transceiver).await else {
                continue;
            };
            let Some(offered) = offered.get(&mid) else {
                continue;
            };
            self.direct(&transceiver, narrowed(wanted, Direction::from(*offered)))
                .await?;
        }
        Ok(())
    }

    /// After an exchange (the peer's description `remote` applied): each of our streams is
    /// sent only when its direction sends and the peer receives it — its answer may be
    /// `inactive` to our hold (it holds us too), or its first offer `sendonly` — so nothing is
    /// encoded for a peer that takes nothing.
    pub(super) async fn follow_remote_directions(&self, remote: &str) {
        let theirs: HashMap<String, &str> = media_directions(remote).into_iter().collect();
        for transceiver in self.pc.get_transceivers().await {
            let (Ok(Some(mid)), Ok(Some(sender)), Ok(ours)) = (
                transceiver.mid().await,
                transceiver.sender().await,
                transceiver.direction().await,
            ) else {
                continue;
            };
            let Some(theirs) = theirs.get(&mid) else {
                continue;
            };
            let sends = ours.has_send() && Direction::from(*theirs).has_recv();
            self.sending_flag(&sender).store(sends, Ordering::Release);
        }
    }

    /// Learns what we want of every negotiated stream not known yet, from its direction
    /// now (before a new offer changes it).
    pub(super) async fn learn_wanted(&self) {
        for transceiver in self.pc.get_transceivers().await {
            self.wanted(&transceiver).await;
        }
    }

    /// Our offer that puts the call on hold (`hold`) or takes it off: the SDP for a
    /// re-INVITE. Its answer goes to [`WebRtcSession::apply_reanswer`]; a refusal to
    /// [`WebRtcSession::cancel_reoffer`]. The directions change under the negotiation, so a
    /// peer's offer answered meanwhile cannot undo them.
    pub async fn hold_offer(&self, hold: bool) -> Result<String, WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        if *negotiation != Negotiation::Done {
            return Err(WebRtcError::Negotiation(
                "a hold while negotiation is under way",
            ));
        }
        if hold {
            for transceiver in self.pc.get_transceivers().await {
                let Some((mid, wanted)) = self.wanted(&transceiver).await else {
                    continue;
                };
                if let Some(held) = on_hold(wanted) {
                    self.direct(&transceiver, held).await?;
                    let mut state = lock(&self.held);
                    state.wanted.insert(mid.clone(), held);
                    state.streams.push((transceiver, mid, wanted));
                }
            }
        } else {
            let streams = lock(&self.held).streams.clone();
            for (transceiver, mid, before) in streams {
                self.direct(&transceiver, before).await?;
                lock(&self.held).wanted.insert(mid, before);
            }
        }
        lock(&self.held).pending = Some(hold);
        match self.reoffer(&mut negotiation).await {
            Ok(sdp) => Ok(sdp),
            Err(e) => {
                self.undo_hold_change().await;
                Err(e)
            }
        }
    }

    /// Our offer of every stream as we want it (what our last answer narrowed widened
    /// again, a hold of ours kept): the SDP for a re-INVITE after the peer withdrew an offer
    /// the session had already answered (it cancelled its re-INVITE), which brings the two
    /// sides back in step. Its answer goes to [`WebRtcSession::apply_reanswer`].
    pub async fn restate_offer(&self) -> Result<String, WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        if *negotiation != Negotiation::Done {
            return Err(WebRtcError::Negotiation(
                "a new offer while negotiation is under way",
            ));
        }
        for transceiver in self.pc.get_transceivers().await {
            if let Some((_, wanted)) = self.wanted(&transceiver).await {
                self.direct(&transceiver, wanted).await?;
            }
        }
        let sdp = self.reoffer(&mut negotiation).await?;
        lock(&self.held).restated = true;
        Ok(sdp)
    }

    /// Withdraws our outstanding new offer (the peer refused it): the session goes on as it
    /// was before the offer, streams a hold offer changed back as they were.
    pub async fn cancel_reoffer(&self) -> Result<(), WebRtcError> {
        let mut negotiation = self.negotiation.lock().await;
        self.withdraw_reoffer(&mut negotiation).await;
        Ok(())
    }

    /// Rolls our outstanding offer back, if there is one, and undoes what a hold offer
    /// changed.
    pub(super) async fn withdraw_reoffer(&self, negotiation: &mut Negotiation) {
        if *negotiation == Negotiation::ReofferSent {
            if let Err(e) = self.rollback_local_offer().await {
                tracing::debug!(error = %e, "our offer could not be rolled back");
            }
            *negotiation = Negotiation::Done;
        }
        self.undo_hold_change().await;
    }

    /// Rolls our outstanding offer back.
    pub(super) async fn rollback_local_offer(&self) -> Result<(), WebRtcError> {
        let rollback = RTCSessionDescription::rollback(None)?;
        self.pc.set_local_description(rollback).await?;
        Ok(())
    }

    /// The hold our answered offer brought is now the call's. Whether the offer restated
    /// the session (its answer is to be followed).
    pub(super) fn hold_settled(&self) -> bool {
        let mut held = lock(&self.held);
        if held.pending.take() == Some(false) {
            held.streams.clear();
        }
        std::mem::take(&mut held.restated)
    }

    /// Undoes the direction changes of a hold offer that did not go through.
    async fn undo_hold_change(&self) {
        let (pending, streams) = {
            let mut held = lock(&self.held);
            held.restated = false;
            let pending = held.pending.take();
            let streams = held.streams.clone();
            if pending == Some(true) {
                held.streams.clear();
            }
            (pending, streams)
        };
        for (transceiver, mid, before) in streams {
            let direction = match pending {
                // A hold that failed: as before it.
                Some(true) => before,
                // A resume that failed: held again.
                Some(false) => on_hold(before).unwrap_or(before),
                None => continue,
            };
            lock(&self.held).wanted.insert(mid, direction);
            let _ = self.direct(&transceiver, direction).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_narrows_what_we_want_to_what_the_offer_allows() {
        use Direction::*;
        for (wanted, offered, answered) in [
            (Sendrecv, Sendrecv, Sendrecv),
            (Sendrecv, Sendonly, Recvonly),
            (Sendrecv, Recvonly, Sendonly),
            (Sendrecv, Inactive, Inactive),
            (Sendonly, Sendrecv, Sendonly),
            (Sendonly, Sendonly, Inactive),
            (Recvonly, Sendonly, Recvonly),
            (Recvonly, Recvonly, Inactive),
        ] {
            assert_eq!(
                narrowed(wanted, offered),
                answered,
                "{wanted} offered {offered}"
            );
        }
        assert_eq!(on_hold(Sendrecv), Some(Sendonly));
        assert_eq!(on_hold(Recvonly), Some(Inactive));
        assert_eq!(on_hold(Sendonly), None);
    }
}
