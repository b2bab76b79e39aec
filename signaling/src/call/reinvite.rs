//! Re-INVITEs in a confirmed dialog (RFC 3261 §14): sent, received, and glare.
//!
//! - Only one INVITE transaction may be in progress on a dialog in either direction (§14.1):
//!   `reinvite` is refused while the application's previous offer is out, waits to be tried
//!   again after a 491 (or a Retry-After), or waits for the exchange under way. While that
//!   exchange is our own session refresh (RFC 4028, or a focus announcing itself) or the
//!   peer's (its offer not yet answered or cancelled, or our 2xx awaiting its ACK), the
//!   application's offer waits for it (also through a refresh's retries) and goes out when it
//!   is over: hold pressed at that moment still holds.
//! - A re-INVITE received while ours is pending is answered 491 Request Pending; one received
//!   while the peer's previous one is unanswered gets 500 with a Retry-After of 0–10 s (§14.2).
//! - Our re-INVITE answered 491 is sent again after a random delay (§14.1): 2.1–4 s when we
//!   own the Call-ID (we sent the first INVITE), 0–2 s otherwise, in 10 ms steps, up to
//!   [`GLARE_ATTEMPTS`] times. The same body is sent again; a refresh sends the session
//!   description of its time.
//! - An offer of the application's that is not on the wire when the peer's offer comes (it
//!   waits out a 491, or waits behind a refresh) gives way: it is dropped and reported as
//!   `ReInviteYielded` before the `ReOffer`, so the peer's offer is answered instead of
//!   crossing ours a second time; the application makes its offer again afterwards. A refresh
//!   waiting out a 491 stays and goes after the peer's exchange.
//! - Our re-INVITE answered 500 or 503 with a Retry-After of at most [`MAX_RETRY_AFTER`]
//!   seconds (the peer not ready for it, as a UA still busy with an earlier INVITE answers,
//!   §14.2) is sent again when that has passed, within the same [`GLARE_ATTEMPTS`], and gives
//!   way to the peer's offer meanwhile as after a 491. A session refresh sent again this way
//!   does not put off the session's expiry.
//! - A refused re-INVITE leaves the session as it was and reports `ReInviteFailed`, with the
//!   refusal's `Warning` in words (503 when it could not be sent, §8.1.3.1); 408, 481 and
//!   timeouts mean the dialog is gone and end the call (§12.2.1.2), reported by `Ended` alone.
//! - The peer's re-INVITE, or UPDATE with an offer (RFC 3311), is reported as `ReOffer`;
//!   `answer_reoffer` sends 200 with our Contact and body (for a re-INVITE retransmitted until
//!   the ACK; the remote target is refreshed then), `reject_reoffer` a failure response that
//!   leaves the dialog intact. An UPDATE without a body is a session refresh and is answered
//!   200 at once.
//! - Session refreshes (RFC 4028, see `session_timer.rs`) go the same way as the
//!   application's re-INVITEs but report nothing.

use std::time::{Duration, Instant};

use rand::Rng;
use rsip::{Method, Request, Response};

use super::compose;
use super::pending_answer::PendingAnswer;
use super::refusal;
use super::session::{OutRequest, Session};
use super::session_timer;
use super::{Body, CallDirection, CallError, CallEvent, CallState, Ctx, Refusal, Shared};
use crate::message::HeaderAccess;
use crate::transaction::{self, TransactionKey};
use crate::transport::Target;

/// How many times a re-INVITE answered 491 (or 500/503 with a Retry-After) is tried again.
pub(super) const GLARE_ATTEMPTS: u8 = 5;

/// The longest Retry-After (seconds) of a 500 or 503 to our re-INVITE that is waited out: the
/// 0–10 s a UA gives while an earlier INVITE is still in progress there (RFC 3261 §14.2). A
/// longer one is a refusal.
const MAX_RETRY_AFTER: u32 = 10;

/// Our re-INVITE (or refresh) waiting to be sent again after a 491, or a 500/503 with a
/// Retry-After.
#[derive(Debug, Clone)]
pub(super) struct GlareRetry {
    pub at: Instant,
    method: Method,
    body: Option<Body>,
    attempts: u8,
    refresh: bool,
}

/// The peer's re-INVITE or UPDATE with an offer, waiting for the application's answer.
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

    /// Sends a re-INVITE carrying the offer `body`.
    pub fn reinvite(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        body: Body,
    ) -> Result<(), CallError> {
        if self.state() != CallState::Established {
            return Err(CallError::InvalidState {
                action: "re-INVITE",
                state: self.state(),
            });
        }
        if self.invite_in_progress() {
            if self.own_offer_pending() || self.queued_offer.is_some() {
                return Err(CallError::ReInviteInProgress);
            }
            // It follows the exchange under way. A refresh keeps its own fate (a refused
            // offer must not leave the session timer or a focus announcement without their
            // refresh); the peer's offer is answered first.
            self.queued_offer = Some(body);
            return Ok(());
        }
        self.send_offer(shared, ctx, Method::Invite, Some(body), 0, false);
        Ok(())
    }

    /// Whether the application's own offer is out, or waits to be tried again after a 491 or
    /// a Retry-After.
    fn own_offer_pending(&self) -> bool {
        self.reinvite_out.as_ref().is_some_and(|out| !out.refresh)
            || self
                .glare_retry
                .as_ref()
                .is_some_and(|retry| !retry.refresh)
    }

    /// The application's offer that waited for the exchange under way, once that is over.
    pub(super) fn send_queued_offer(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if self.invite_in_progress() {
            // A refresh goes again (with credentials, or after a 491), or the peer's offer
            // is still being answered: the offer waits.
            return;
        }
        let Some(body) = self.queued_offer.take() else {
            return;
        };
        if !shared.ended {
            self.send_offer(shared, ctx, Method::Invite, Some(body), 0, false);
        }
    }

    /// Sends a re-INVITE or UPDATE carrying `body`, with Session-Expires while a session
    /// timer runs.
    fn send_offer(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        method: Method,
        body: Option<Body>,
        attempts: u8,
        refresh: bool,
    ) {
        let (mut request, target) =
            shared.build_in_dialog(ctx, &mut self.dialog, method, None, body.as_ref());
        if let Some(timer) = &self.timer {
            request.headers.push(timer.header_for_request());
        }
        match ctx.send_request(request.clone(), target) {
            Some(key) => {
                self.reinvite_out = Some(OutRequest {
                    key,
                    request,
                    body,
                    attempts,
                    refresh,
                });
                if refresh {
                    if let Some(timer) = &mut self.timer {
                        timer.refresh_sent(ctx.now);
                    }
                }
            }
            None if !refresh => ctx.emit(CallEvent::ReInviteFailed {
                code: 503,
                warning: None,
            }),
            None => {}
        }
    }

    /// A session refresh: UPDATE without a body when the peer allows it, else a re-INVITE
    /// with our current session description (unchanged, so no new negotiation).
    pub(super) fn send_refresh(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if self.peer_allows_update {
            self.send_offer(shared, ctx, Method::Update, None, 0, true);
        } else {
            let body = self.local_body.clone();
            self.send_offer(shared, ctx, Method::Invite, body, 0, true);
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
        let report = !out.refresh && !shared.ended;
        let refused = || CallEvent::ReInviteFailed {
            code,
            warning: refusal::warning_in_words(&response),
        };
        let retry_after = response
            .retry_after()
            .filter(|seconds| *seconds <= MAX_RETRY_AFTER)
            .map(|seconds| Duration::from_secs(u64::from(seconds)));
        match code {
            200..=299 => {
                if out.request.method == Method::Invite {
                    shared.send_ack(ctx, &mut self.dialog, &out.request, None);
                }
                self.dialog.refresh_target(&response);
                self.timer = session_timer::uac_timer(&response, ctx.now);
                if out.body.is_some() {
                    self.local_body = out.body.clone();
                }
                if report {
                    let body = compose::body_of(&response.headers, &response.body);
                    ctx.emit(CallEvent::ReAnswer { body });
                }
            }
            401 | 407 => match self.resend_authorized(shared, ctx, &out, &response) {
                Some(again) => self.reinvite_out = Some(again),
                None if report => ctx.emit(refused()),
                None => {}
            },
            491 if out.attempts < GLARE_ATTEMPTS && !shared.ended => {
                // RFC 3261 §14.1: the owner of the Call-ID waits 2.1–4 s, the other 0–2 s.
                let steps = match shared.direction {
                    CallDirection::Outgoing => ctx.rng.gen_range(210..=400u64),
                    CallDirection::Incoming => ctx.rng.gen_range(0..=200u64),
                };
                let delay = Duration::from_millis(steps * 10);
                tracing::debug!(call = %shared.id, ?delay, "491 glare, re-INVITE retried later");
                self.retry_later(out, ctx.now + delay);
            }
            500 | 503
                if out.attempts < GLARE_ATTEMPTS && !shared.ended && retry_after.is_some() =>
            {
                // §14.2: the peer is not ready for our offer yet, and says when to come back.
                let delay = retry_after.unwrap_or_default();
                tracing::debug!(call = %shared.id, code, ?delay, "re-INVITE retried after Retry-After");
                self.retry_later(out, ctx.now + delay);
            }
            408 | 481 => {
                // The dialog is gone: the call ends, which says it all.
                let reason = if code == 481 {
                    "the other side lost the call"
                } else {
                    "the other side stopped answering"
                };
                self.lost(shared, ctx, code == 408, reason);
            }
            _ => {
                if report {
                    ctx.emit(refused());
                }
            }
        }
        self.send_queued_offer(shared, ctx);
    }

    /// Our re-INVITE (or refresh) `out` is sent again at `at` — unless the peer's offer comes
    /// first and it gives way.
    fn retry_later(&mut self, out: OutRequest, at: Instant) {
        self.glare_retry = Some(GlareRetry {
            at,
            method: out.request.method,
            body: out.body,
            attempts: out.attempts + 1,
            refresh: out.refresh,
        });
    }

    /// Sends the re-INVITE again when its glare delay is over; waits longer while the peer's
    /// own re-INVITE is still in progress.
    pub(super) fn glare_timeout(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        let Some(retry) = self.glare_retry.take_if(|g| g.at <= ctx.now) else {
            return;
        };
        if shared.ended {
            return;
        }
        if self.reinvite_in.is_some() || self.pending_answer.is_some() {
            self.glare_retry = Some(GlareRetry {
                at: ctx.now + ctx.layer.config().t1,
                ..retry
            });
            return;
        }
        // A refresh by re-INVITE carries the session as it is now: the peer's offer may have
        // been answered while it waited.
        let body = if retry.refresh && retry.method == Method::Invite {
            self.local_body.clone()
        } else {
            retry.body
        };
        self.send_offer(
            shared,
            ctx,
            retry.method,
            body,
            retry.attempts,
            retry.refresh,
        );
    }

    /// The peer's re-INVITE or UPDATE.
    pub(super) fn on_offer_request(
        &mut self,
        shared: &Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: Request,
        source: Target,
    ) {
        if let Some(refusal) = compose::refuse_requirements(&request) {
            return ctx.respond(key, refusal);
        }
        if request.method == Method::Update && request.body.is_empty() {
            return self.on_refresh_update(shared, ctx, key, &request);
        }
        // Glare only with an offer of ours still out (§14.2, RFC 3311 §5.2): a session
        // refresh by UPDATE without a body carries none, and the peer's offer is served.
        if self
            .reinvite_out
            .as_ref()
            .is_some_and(|out| out.request.method == Method::Invite || out.body.is_some())
        {
            tracing::debug!("re-INVITE glare: 491");
            return ctx.respond(key, compose::response(&request, 491, None));
        }
        if self.reinvite_in.is_some() || self.pending_answer.is_some() {
            let response = compose::retry_later(&request, ctx.rng);
            return ctx.respond(key, response);
        }
        // Our offer waiting out a 491 (or behind a refresh) is not outstanding (§14.1): it
        // gives way, and the peer's offer is answered.
        let waiting = self.glare_retry.take_if(|retry| !retry.refresh).is_some();
        if self.queued_offer.take().is_some() || waiting {
            tracing::debug!(call = %shared.id, "our offer gives way to the peer's");
            ctx.emit(CallEvent::ReInviteYielded);
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
            &shared.contact_header(),
            ctx.user_agent,
        );
        self.timer = session_timer::answer_timer(&pending.request, &mut response, ctx.now);
        compose::set_body(&mut response.headers, &mut response.body, body.as_ref());
        ctx.respond(&pending.key, response.clone());
        self.dialog.refresh_target(&pending.request);
        if body.is_some() {
            self.local_body = body;
        }
        if pending.request.method != Method::Invite {
            // An UPDATE's exchange is over with its answer.
            self.send_queued_offer(shared, ctx);
            return Ok(());
        }
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

    /// An UPDATE without a body: a session refresh (RFC 4028), answered at once.
    fn on_refresh_update(
        &mut self,
        shared: &Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        let mut response = compose::dialog_response(
            request,
            200,
            &shared.local_tag,
            &shared.contact_header(),
            ctx.user_agent,
        );
        self.timer = session_timer::answer_timer(request, &mut response, ctx.now);
        self.dialog.refresh_target(request);
        ctx.respond(key, response);
    }

    /// Refuses the peer's re-INVITE with `code`; the session stays as it was.
    pub fn reject_reoffer(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        refusal: &Refusal,
    ) -> Result<(), CallError> {
        let Some(pending) = self.reinvite_in.take() else {
            return Err(CallError::InvalidState {
                action: "reject a re-offer in",
                state: self.state(),
            });
        };
        let mut response = compose::response(&pending.request, refusal.code, None);
        refusal.apply(&mut response);
        ctx.respond(&pending.key, response);
        self.send_queued_offer(shared, ctx);
        Ok(())
    }
}
