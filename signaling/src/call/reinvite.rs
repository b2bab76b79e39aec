//! Re-INVITEs in a confirmed dialog (RFC 3261 §14): sent, received, and glare.
//!
//! - Only one INVITE transaction may be in progress on a dialog in either direction (§14.1):
//!   `reinvite` is refused while ours or the peer's is pending, or our 2xx awaits its ACK.
//! - A re-INVITE received while ours is pending is answered 491 Request Pending; one received
//!   while the peer's previous one is unanswered gets 500 with a Retry-After of 0–10 s (§14.2).
//! - Our re-INVITE answered 491 is sent again after a random delay (§14.1): 2.1–4 s when we
//!   own the Call-ID (we sent the first INVITE), 0–2 s otherwise, in 10 ms steps, up to
//!   [`GLARE_ATTEMPTS`] times. The same body is sent again.
//! - A refused re-INVITE leaves the session as it was and reports `ReInviteFailed`; 408, 481
//!   and timeouts mean the dialog is gone and end the call (§12.2.1.2).
//! - The peer's re-INVITE is reported as `ReOffer`; `answer_reoffer` sends 200 with our
//!   Contact and body (retransmitted until the ACK; the remote target is refreshed then),
//!   `reject_reoffer` a failure response that leaves the dialog intact.

use std::time::{Duration, Instant};

use rand::Rng;
use rsip::prelude::UntypedHeader;
use rsip::{Method, Request, Response};

use super::compose;
use super::pending_answer::PendingAnswer;
use super::session::{OutRequest, Session};
use super::{Body, CallDirection, CallError, CallEvent, CallState, Ctx, Shared};
use crate::message::HeaderAccess;
use crate::transaction::{self, TransactionKey};
use crate::transport::Target;

/// How many times a re-INVITE answered 491 is tried again.
pub(super) const GLARE_ATTEMPTS: u8 = 5;

/// Our re-INVITE waiting to be sent again after a 491.
#[derive(Debug, Clone)]
pub(super) struct GlareRetry {
    pub at: Instant,
    body: Option<Body>,
    attempts: u8,
}

/// The peer's re-INVITE, waiting for the application's answer.
#[derive(Debug, Clone)]
pub(super) struct InReinvite {
    pub key: TransactionKey,
    pub request: Request,
    target: Target,
}

impl Session {
    fn invite_in_progress(&self) -> bool {
        self.reinvite_out.is_some()
            || self.reinvite_in.is_some()
            || self.pending_answer.is_some()
            || self.glare_retry.is_some()
    }

    /// Sends a re-INVITE carrying `body`.
    pub fn reinvite(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        body: Option<Body>,
    ) -> Result<(), CallError> {
        if self.state() != CallState::Established {
            return Err(CallError::InvalidState {
                action: "re-INVITE",
                state: self.state(),
            });
        }
        if self.invite_in_progress() {
            return Err(CallError::ReInviteInProgress);
        }
        self.send_reinvite(shared, ctx, body, 0);
        Ok(())
    }

    fn send_reinvite(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        body: Option<Body>,
        attempts: u8,
    ) {
        match shared.send_in_dialog(ctx, &mut self.dialog, Method::Invite, body.as_ref()) {
            Some((key, request)) => {
                self.reinvite_out = Some(OutRequest {
                    key,
                    request,
                    body,
                    attempts,
                })
            }
            None => ctx.emit(CallEvent::ReInviteFailed { code: 503 }),
        }
    }

    /// The final (or provisional) response to our re-INVITE.
    pub(super) fn on_reinvite_response(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        response: Response,
    ) {
        let code = response.status_code.code();
        if code < 200 {
            return;
        }
        let Some(out) = self.reinvite_out.take() else {
            return;
        };
        match code {
            200..=299 => {
                shared.send_ack(ctx, &mut self.dialog, &out.request, None);
                self.dialog.refresh_target(&response);
                if !shared.ended {
                    let body = compose::body_of(&response.headers, &response.body);
                    ctx.emit(CallEvent::ReAnswer { body });
                }
            }
            401 | 407 => match self.resend_authorized(shared, ctx, &out, &response) {
                Some(again) => self.reinvite_out = Some(again),
                None => ctx.emit(CallEvent::ReInviteFailed { code }),
            },
            491 if out.attempts < GLARE_ATTEMPTS && !shared.ended => {
                // RFC 3261 §14.1: the owner of the Call-ID waits 2.1–4 s, the other 0–2 s.
                let steps = match shared.direction {
                    CallDirection::Outgoing => ctx.rng.gen_range(210..=400u64),
                    CallDirection::Incoming => ctx.rng.gen_range(0..=200u64),
                };
                let delay = Duration::from_millis(steps * 10);
                tracing::debug!(call = %shared.id, ?delay, "491 glare, re-INVITE retried later");
                self.glare_retry = Some(GlareRetry {
                    at: ctx.now + delay,
                    body: out.body,
                    attempts: out.attempts + 1,
                });
            }
            408 | 481 => {
                if !shared.ended {
                    ctx.emit(CallEvent::ReInviteFailed { code });
                }
                let reason = if code == 481 {
                    "the other side lost the call"
                } else {
                    "the other side stopped answering"
                };
                self.lost(shared, ctx, code == 408, reason);
            }
            _ => {
                if !shared.ended {
                    ctx.emit(CallEvent::ReInviteFailed { code });
                }
            }
        }
    }

    /// Sends the re-INVITE again when its glare delay is over; waits longer while the peer's
    /// own re-INVITE is still in progress.
    pub(super) fn glare_timeout(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        let Some(retry) = self.glare_retry.take_if(|g| g.at <= ctx.now) else {
            return;
        };
        if self.reinvite_in.is_some() || self.pending_answer.is_some() {
            self.glare_retry = Some(GlareRetry {
                at: ctx.now + ctx.layer.config().t1,
                ..retry
            });
            return;
        }
        self.send_reinvite(shared, ctx, retry.body, retry.attempts);
    }

    /// The peer's re-INVITE.
    pub(super) fn on_reinvite(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: Request,
        source: Target,
    ) {
        let unsupported = compose::unsupported_requirements(&request);
        if !unsupported.is_empty() {
            let mut response = compose::response(&request, 420, None);
            response
                .headers
                .push(rsip::headers::Unsupported::new(unsupported.join(", ")).into());
            return ctx.respond(key, response);
        }
        if self.reinvite_out.is_some() {
            tracing::debug!("re-INVITE glare: 491");
            return ctx.respond(key, compose::response(&request, 491, None));
        }
        if self.reinvite_in.is_some() || self.pending_answer.is_some() {
            let mut response = compose::response(&request, 500, None);
            let seconds = ctx.rng.gen_range(0..=10u32);
            response
                .headers
                .push(rsip::headers::RetryAfter::new(seconds.to_string()).into());
            return ctx.respond(key, response);
        }
        let target = transaction::response_target(&request, source).unwrap_or(source);
        let body = compose::body_of(&request.headers, &request.body);
        self.reinvite_in = Some(InReinvite {
            key: key.clone(),
            request,
            target,
        });
        ctx.emit(CallEvent::ReOffer { body });
    }

    /// Accepts the peer's re-INVITE with `body`.
    pub fn answer_reoffer(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        body: Option<Body>,
    ) -> Result<(), CallError> {
        let Some(pending) = self.reinvite_in.take() else {
            return Err(CallError::InvalidState {
                action: "answer a re-offer in",
                state: self.state(),
            });
        };
        let mut response = compose::dialog_response(
            &pending.request,
            200,
            &shared.local_tag,
            &shared.contact,
            ctx.user_agent,
        );
        compose::set_body(&mut response.headers, &mut response.body, body.as_ref());
        ctx.respond(&pending.key, response.clone());
        self.dialog.refresh_target(&pending.request);
        let seq = pending.request.cseq().map_or(0, |c| c.seq);
        self.last_answer = Some((seq, response.clone()));
        self.pending_answer = Some(PendingAnswer::new(
            ctx.now,
            ctx.layer.config(),
            seq,
            response,
            pending.target,
            pending.request.body.is_empty(),
        ));
        Ok(())
    }

    /// Refuses the peer's re-INVITE with `code`; the session stays as it was.
    pub fn reject_reoffer(
        &mut self,
        _shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        code: u16,
    ) -> Result<(), CallError> {
        let Some(pending) = self.reinvite_in.take() else {
            return Err(CallError::InvalidState {
                action: "reject a re-offer in",
                state: self.state(),
            });
        };
        ctx.respond(
            &pending.key,
            compose::response(&pending.request, code, None),
        );
        Ok(())
    }
}
