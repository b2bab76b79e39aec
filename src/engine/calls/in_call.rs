//! What happens to an established call while it runs: hold and resume, DTMF, mute, and the
//! figures a statistics panel shows once a second.

use std::time::{Duration, Instant};

use callisto_media::rtp::DtmfRelay;
use callisto_signaling::call::Body;
use callisto_signaling::endpoint::Endpoint;
use callisto_signaling::sdp::Direction;
use tokio::sync::mpsc;

use super::webrtc_flow::webrtc_summary;
use super::{Call, CallKey, CallSummary, CallUpdate, Calls};
use crate::engine::EngineEvent;

/// How long an INFO DTMF digit is reported to last.
const INFO_DTMF_DURATION: Duration = Duration::from_millis(160);
/// How long an RFC 4733 digit is held.
const RTP_DTMF_DURATION: Duration = Duration::from_millis(120);

impl Call {
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
            Direction::SendOnly
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

    /// Makes the holds and resumes asked for while another offer was under way, for the
    /// calls whose offers are settled now.
    pub(super) fn run_deferred_holds(&mut self, endpoint: &mut Endpoint, now: Instant) {
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
                None => CallSummary::measured(
                    call.started,
                    Some(established),
                    now,
                    call.media.session().map(|s| s.stats()).as_ref(),
                    call.media.video_stats().as_ref(),
                    None,
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
