//! What happens to an established call while it runs: hold and resume, DTMF, mute, and the
//! figures a statistics panel shows once a second.

use std::time::{Duration, Instant};

use callisto_media::rtp::DtmfRelay;
use callisto_signaling::call::Body;
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::Direction;
use tokio::sync::mpsc;

use super::webrtc_flow::webrtc_summary;
use super::{Call, CallKey, CallUpdate, Calls};
use crate::engine::EngineEvent;

/// How long an INFO DTMF digit is reported to last.
const INFO_DTMF_DURATION: Duration = Duration::from_millis(160);
/// How long an RFC 4733 digit is held.
const RTP_DTMF_DURATION: Duration = Duration::from_millis(120);

/// How many restated offers are made before a call is left out of step with its peer.
const RESTATE_TRIES: u8 = 3;
/// How long after a failed restated offer the next is made (a refusal that passes — the
/// peer busy with its own transaction — has time to).
const RESTATE_RETRY: Duration = Duration::from_secs(2);

/// Whether a WebRTC call's session is in step with its peer's: after the peer cancelled an
/// offer the session had already answered, it is not until our restated offer is answered
/// (or the peer's next offer is). A restated offer that fails is made again
/// [`RESTATE_RETRY`] later, up to [`RESTATE_TRIES`] in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Restate {
    #[default]
    InStep,
    /// The peer cancelled the offer whose answer the session is making: the answer is not
    /// sent, and once it is made a restated offer is needed if the session took the offer in.
    Cancelled,
    /// A restated offer is to be made once `at` has come (at most `tries` more).
    Needed { tries: u8, at: Instant },
    /// Our restated offer is out (at most `tries` more after it).
    Offered { tries: u8 },
}

impl Restate {
    /// The peer cancelled an offer the session answered: a restated offer is made at once.
    pub(super) fn needed(now: Instant) -> Restate {
        Restate::Needed {
            tries: RESTATE_TRIES,
            at: now,
        }
    }

    /// The session's answer to the peer's offer is made (`taken_in`: the offer was applied):
    /// whether the peer cancelled the offer meanwhile, and the answer is not to be sent. A
    /// taken-in offer leaves both sides in step on it, unless it was cancelled.
    pub(super) fn answer_made(&mut self, now: Instant, taken_in: bool) -> bool {
        let cancelled = *self == Restate::Cancelled;
        if cancelled || taken_in {
            *self = if cancelled && taken_in {
                Restate::needed(now)
            } else {
                Restate::InStep
            };
        }
        cancelled
    }

    /// A restated offer is made now, if one is needed and its time has come.
    fn offer(&mut self, now: Instant) -> bool {
        let Restate::Needed { tries, at } = *self else {
            return false;
        };
        if now < at {
            return false;
        }
        *self = Restate::Offered {
            tries: tries.saturating_sub(1),
        };
        true
    }

    /// Our offer gave way to the peer's: the try is given back, and the offer made again at
    /// once (the peer's answered offer may have made it needless).
    pub(super) fn offer_yielded(&mut self, now: Instant) {
        if let Restate::Offered { tries } = *self {
            *self = Restate::Needed {
                tries: tries + 1,
                at: now,
            };
        }
    }

    /// Our offer failed (refused, unusable, not sent): a restated offer is made again later
    /// while tries are left.
    pub(super) fn offer_failed(&mut self, now: Instant) {
        if let Restate::Offered { tries } = *self {
            *self = if tries > 0 {
                Restate::Needed {
                    tries,
                    at: now + RESTATE_RETRY,
                }
            } else {
                tracing::warn!(
                    "the peer refused every restated offer; the call may be out of step"
                );
                Restate::InStep
            };
        }
    }
}

/// What our offer puts a stream on hold with (RFC 3264 §8.4): `sendonly`, or `inactive` when
/// the peer holds us (the stream is `recvonly`), so we do not start sending to a peer that
/// holds us.
fn hold_direction(peer_holds: bool) -> Direction {
    if peer_holds {
        Direction::Inactive
    } else {
        Direction::SendOnly
    }
}

impl Call {
    /// The direction our offers on a classic call want now: on hold while we hold it
    /// ([`hold_direction`]), else both ways.
    pub(super) fn wanted_direction(&self) -> Direction {
        if self.local_hold {
            self.hold_direction()
        } else {
            Direction::SendRecv
        }
    }

    /// The direction for the peer's re-INVITE: an answer's when it `offered` — `sendonly`
    /// while we hold (the offer narrows it, so a peer that holds us too gets `inactive`, and
    /// one that resumes `sendonly` again) — else our offer's ([`Call::wanted_direction`]).
    pub(super) fn reoffer_direction(&self, offered: bool) -> Direction {
        match (offered, self.local_hold) {
            (false, _) => self.wanted_direction(),
            (true, true) => Direction::SendOnly,
            (true, false) => Direction::SendRecv,
        }
    }

    /// The direction our offer puts this classic call on hold with.
    pub(super) fn hold_direction(&self) -> Direction {
        hold_direction(self.media.peer_holds())
    }

    /// Our new offer came to nothing (refused, unusable, not sent; the caller withdraws it
    /// from the WebRTC session unless the session did): the hold it asked for is not the
    /// call's, and a restated offer is made again later ([`Restate::offer_failed`]).
    pub(super) fn our_offer_failed(&mut self, now: Instant) {
        self.pending_hold = None;
        self.sync_hold_silence();
        self.restate.offer_failed(now);
    }

    /// Our re-INVITE's answer arrived: the hold (or resume) it asked for is the call's. What
    /// to report, if that changed (an offer that restated the session asks for the hold the
    /// call has).
    pub(super) fn settle_local_hold(&mut self) -> Option<CallUpdate> {
        let hold = self.pending_hold.take()?;
        let changed = self.local_hold != hold;
        self.local_hold = hold;
        self.sync_hold_silence();
        changed.then(|| CallUpdate::hold_change(hold, false))
    }

    /// The peer's offer holds us (`held`, unless we hold the call ourselves) or not: what to
    /// report, when that changed.
    pub(super) fn set_remote_hold(&mut self, held: bool) -> Option<CallUpdate> {
        let held = held && !self.local_hold;
        if held == self.remote_hold {
            return None;
        }
        self.remote_hold = held;
        Some(CallUpdate::hold_change(held, true))
    }
}

impl Calls {
    /// Puts the call on hold (`hold`) or takes it off, by a re-INVITE.
    pub(in crate::engine) fn set_hold(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        hold: bool,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.established.is_none() {
            return;
        }
        if call.pending_hold.is_some() || call.streams.busy || call.answering {
            // One new offer at a time: a hold (or resume) asked for while another offer is
            // under way (ours, or the peer's being answered) is made once that one is
            // settled, unless it asks for the same.
            call.hold_after = (call.pending_hold != Some(hold)).then_some(hold);
            call.sync_hold_silence();
            return;
        }
        call.hold_after = None;
        // A hold that waited may not be made after all (nothing to change, or no offer).
        call.sync_hold_silence();
        if call.local_hold == hold {
            return;
        }
        if let Some(session) = call.webrtc.clone() {
            // The session makes the offer; the re-INVITE goes out when it is ready.
            call.pending_hold = Some(hold);
            call.sync_hold_silence();
            let events = self.media_events.clone();
            super::webrtc::hold_offer(&call.steps, key, session, hold, events);
            return;
        }
        let direction = if hold {
            call.hold_direction()
        } else {
            Direction::SendRecv
        };
        let offer = match call.sdp.create_offer_with_video(
            &call.media.local,
            &call.media.options.policy,
            call.media.video_offer(),
            direction,
            &mut self.rng,
        ) {
            Ok(offer) => offer,
            Err(error) => {
                tracing::warn!(%error, "cannot make a re-offer");
                return;
            }
        };
        match endpoint.reinvite(now, call.id, Body::sdp(offer.to_string())) {
            Ok(()) => {
                call.pending_hold = Some(hold);
                call.sync_hold_silence();
            }
            Err(error) => {
                call.sdp.discard_offer();
                tracing::warn!(%error, "cannot send a re-INVITE");
            }
        }
    }

    /// Makes, for the calls whose offers are settled now, the restated offers whose time has
    /// come ([`Restate`]) and the holds and resumes asked for while another offer was under
    /// way.
    pub(in crate::engine) fn run_deferred_holds(&mut self, endpoint: &mut Endpoint, now: Instant) {
        for call in self.calls.values_mut() {
            let Some(session) = call.webrtc.clone() else {
                continue;
            };
            if call.pending_hold.is_some()
                || call.streams.busy
                || call.answering
                || !call.restate.offer(now)
            {
                continue;
            }
            // The restated offer asks for the hold the call has: settling it changes none.
            tracing::info!(key = ?call.key, "offering the session again after the peer's CANCEL");
            call.pending_hold = Some(call.local_hold);
            let events = self.media_events.clone();
            super::webrtc::restate_offer(&call.steps, call.key, session, call.local_hold, events);
        }
        let ready: Vec<(CallKey, bool)> = self
            .calls
            .values()
            .filter(|c| c.pending_hold.is_none() && !c.streams.busy && !c.answering)
            .filter_map(|c| Some((c.key, c.hold_after?)))
            .collect();
        for (key, hold) in ready {
            self.set_hold(endpoint, now, key, hold);
        }
    }

    /// Sends DTMF digits: RFC 4733 events when negotiated, else one INFO per digit.
    pub(in crate::engine) fn send_dtmf(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        digits: &str,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match (call.media.session(), call.media.has_telephone_event()) {
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

    /// Reports every established call's figures so far (for a statistics panel).
    pub(in crate::engine) fn report_statistics(&self, events: &mpsc::UnboundedSender<EngineEvent>) {
        let now = Instant::now();
        for call in self.calls.values() {
            let Some(established) = call.established else {
                continue;
            };
            let summary = match &call.webrtc {
                Some(session) => webrtc_summary(call.started, Some(established), &session.stats()),
                None => super::update::classic_summary(
                    call.started,
                    Some(established),
                    now,
                    call.media.session().map(|s| s.stats()).as_ref(),
                    call.media.video_stats().as_ref(),
                    call.media.further_streams(),
                ),
            };
            let _ = events.send(EngineEvent::Call {
                key: call.key,
                update: CallUpdate::Statistics(Box::new(summary)),
            });
        }
    }

    /// Silences (or un-silences) the call's microphone.
    pub(in crate::engine) fn set_mute(&mut self, key: CallKey, muted: bool) {
        if let Some(call) = self.calls.get(&key) {
            call.media.options.controls.mute.set(muted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_the_peer_holds_is_put_on_hold_as_inactive() {
        assert_eq!(hold_direction(false), Direction::SendOnly);
        // RFC 3264 §8.4: a recvonly stream goes on hold as inactive.
        assert_eq!(hold_direction(true), Direction::Inactive);
    }

    #[test]
    fn a_restated_offer_that_fails_is_made_again_later_a_bounded_number_of_times() {
        let start = Instant::now();
        let mut now = start;
        let mut restate = Restate::needed(now);
        let mut offers = 0;
        while restate.offer(now) {
            offers += 1;
            restate.offer_failed(now);
            // Not again at once; once the wait is over.
            assert!(!restate.offer(now + RESTATE_RETRY / 2));
            now += RESTATE_RETRY;
        }
        assert_eq!(offers, RESTATE_TRIES);
        assert_eq!(restate, Restate::InStep);
        // One that goes through needs no other; one that gives way is made again at once,
        // its try given back; a failed offer of another kind changes nothing.
        let mut restate = Restate::needed(start);
        assert!(restate.offer(start));
        assert!(!restate.offer(start));
        restate.offer_yielded(start);
        assert_eq!(
            restate,
            Restate::Needed {
                tries: RESTATE_TRIES,
                at: start
            }
        );
        let mut in_step = Restate::InStep;
        in_step.offer_failed(start);
        assert_eq!(in_step, Restate::InStep);
    }

    #[test]
    fn a_cancelled_offer_needs_a_restated_offer_only_when_the_session_took_it_in() {
        let now = Instant::now();
        for (taken_in, after) in [(true, Restate::needed(now)), (false, Restate::InStep)] {
            let mut restate = Restate::Cancelled;
            assert!(restate.answer_made(now, taken_in), "the answer is not sent");
            assert_eq!(restate, after, "taken in: {taken_in}");
        }
        // An answer to an offer not cancelled is sent, and brings both sides in step.
        let mut restate = Restate::needed(now);
        assert!(!restate.answer_made(now, true));
        assert_eq!(restate, Restate::InStep);
    }
}
