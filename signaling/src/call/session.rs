//! A call whose dialog is confirmed (RFC 3261 §12.2, §15): BYE both ways, INFO, OPTIONS, the
//! ACK for our 2xx, and the requests we send being answered or lost. Re-INVITEs are in
//! `reinvite.rs`, REFER in `transfer.rs`, the conference roster (SUBSCRIBE and NOTIFY of the
//! `conference` package) in `roster.rs`.
//!
//! - Requests in the dialog are checked against the remote CSeq: out of order gets 500.
//! - A BYE is answered 200; a re-INVITE of the peer still waiting for our answer gets 487 (when
//!   we hang up, after our BYE: the peer sees the call end, not its offer refused).
//! - The callee does not send BYE before the ACK for its 2xx (§15): hanging up then waits for
//!   the ACK, or for the 2xx to be given up on after 64 × T1.
//! - A 481 or 408 (or a timeout) to an INFO or re-INVITE we sent means the dialog is gone
//!   (§12.2.1.2): the call ends, after a BYE for the 408 cases. (A failed NOTIFY or REFER
//!   only ends its subscription, RFC 5057.)
//! - A 401/407 to a request we sent is answered once with the call's credentials.

use std::time::Instant;

use rand::Rng;
use rsip::prelude::UntypedHeader;
use rsip::{Method, Request, Response};

use super::compose;
use super::digest::{has_credentials, CallDigest};
use super::pending_answer::{PendingAnswer, Retransmission};
use super::reinvite::{GlareRetry, InReinvite};
use super::roster::{self, Rosters};
use super::session_timer::SessionTimer;
use super::transfer::Transfers;
use super::{Body, CallEvent, CallState, Ctx, Shared, TxFailure};
use crate::conference_info::EVENT;
use crate::dialog::Dialog;
use crate::message::HeaderAccess;
use crate::transaction::TransactionKey;
use crate::transport::Target;

/// A request we sent in the dialog, until its final response.
#[derive(Debug, Clone)]
pub(super) struct OutRequest {
    pub key: TransactionKey,
    pub request: Request,
    pub body: Option<Body>,
    /// For re-INVITEs: how many times a 491 made us try again.
    pub attempts: u8,
    /// A session refresh of ours (RFC 4028), which the application does not hear about.
    pub refresh: bool,
}

/// The 2xx we sent to the dialog-creating INVITE, for that INVITE's retransmissions.
#[derive(Debug, Clone)]
struct InitialAnswer {
    seq: u32,
    branch: Option<String>,
    response: Response,
}

/// The session of a call.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) dialog: Dialog,
    /// Our 2xx waiting for its ACK (to the first INVITE, or to a re-INVITE).
    pub(super) pending_answer: Option<PendingAnswer>,
    initial: Option<InitialAnswer>,
    /// The last 2xx we sent to a re-INVITE: its CSeq number and the response.
    pub(super) last_answer: Option<(u32, Response)>,
    /// The ACK for our first 2xx arrived (always true for an outgoing call).
    established: bool,
    /// Hung up before the ACK came: send BYE when it does.
    bye_after_ack: bool,
    pub(super) reinvite_out: Option<OutRequest>,
    pub(super) glare_retry: Option<GlareRetry>,
    /// The application's offer, waiting for the exchange under way to finish: our own
    /// session refresh, or the peer's offer (until its answer, or our 2xx's ACK).
    pub(super) queued_offer: Option<Body>,
    pub(super) reinvite_in: Option<InReinvite>,
    /// BYE and INFO requests in flight.
    others: Vec<OutRequest>,
    /// The session timer, when the peer asked for one.
    pub(super) timer: Option<SessionTimer>,
    /// Our current session description (the last body we offered or answered with), sent
    /// again in refresh re-INVITEs.
    pub(super) local_body: Option<Body>,
    /// The peer's Allow lists UPDATE: refreshes use it.
    pub(super) peer_allows_update: bool,
    /// `(rseq, invite cseq)` of a reliable 180 of ours that our 200 overtook: its PRACK is
    /// still answered 200 (RFC 3262 §3).
    pub(super) late_prack: Option<(u32, u32)>,
    /// REFER in either direction.
    pub(super) transfers: Transfers,
    /// The conference roster, served or watched.
    pub(super) rosters: Rosters,
}

impl Session {
    /// A session on a confirmed dialog. An incoming call passes its 2xx, waiting for the ACK,
    /// and the INVITE's branch.
    pub fn new(dialog: Dialog, pending: Option<(PendingAnswer, Option<String>)>) -> Session {
        let (pending_answer, initial) = match pending {
            Some((pending, branch)) => {
                let initial = InitialAnswer {
                    seq: pending.seq,
                    branch,
                    response: pending.response().clone(),
                };
                (Some(pending), Some(initial))
            }
            None => (None, None),
        };
        Session {
            dialog,
            established: pending_answer.is_none(),
            pending_answer,
            initial,
            last_answer: None,
            bye_after_ack: false,
            reinvite_out: None,
            glare_retry: None,
            queued_offer: None,
            reinvite_in: None,
            others: Vec::new(),
            timer: None,
            local_body: None,
            peer_allows_update: false,
            late_prack: None,
            transfers: Transfers::default(),
            rosters: Rosters::default(),
        }
    }

    /// Follows a request we sent in the dialog until its final response.
    pub(super) fn track(&mut self, out: OutRequest) {
        self.others.push(out);
    }

    /// The ACK for our first 2xx arrived, or the call is outgoing.
    pub(super) fn is_established(&self) -> bool {
        self.established
    }

    pub fn state(&self) -> CallState {
        if self.established {
            CallState::Established
        } else {
            CallState::Answering
        }
    }

    /// Whether `request` (no To tag) repeats the INVITE we answered.
    pub fn repeats_initial_invite(&self, request: &Request) -> bool {
        self.initial.as_ref().is_some_and(|initial| {
            request.call_id() == Some(self.dialog.id().call_id.as_str())
                && request.from_tag() == Some(self.dialog.id().remote_tag.as_str())
                && request.cseq().map(|c| c.seq) == Some(initial.seq)
        })
    }

    /// The first INVITE again: our 2xx once more for a retransmission, 482 for a copy that
    /// took another path (RFC 3261 §8.2.2.2).
    pub fn on_repeated_invite(
        &mut self,
        _shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        match &self.initial {
            Some(initial) if request.branch() == initial.branch.as_deref() => {
                tracing::trace!("INVITE retransmitted after our 2xx, 2xx re-sent");
                ctx.respond(key, initial.response.clone());
            }
            _ => ctx.respond(key, compose::response(request, 482, None)),
        }
    }

    /// Ends the call from our side.
    pub fn hang_up(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        self.glare_retry = None;
        self.queued_offer = None;
        if self.established {
            // A roster subscription in this dialog outlives the INVITE usage the BYE ends
            // (RFC 5057): it is ended first, with its final NOTIFY (RFC 6665 §4.2.2).
            self.end_roster_subscription(shared, ctx);
            self.send_bye(shared, ctx);
        } else {
            self.bye_after_ack = true;
        }
        // The peer's pending re-INVITE gets 487 (RFC 3261 §15.1.2) after the BYE, so that the
        // peer sees the call end rather than its offer refused.
        if let Some(pending) = self.reinvite_in.take() {
            ctx.respond(&pending.key, compose::response(&pending.request, 487, None));
        }
        shared.end(ctx, false, "hung up");
    }

    /// Whether hanging up is still under way: the BYE waits for the ACK of our 2xx (RFC 3261
    /// §15), or has not been answered yet.
    pub fn finishing(&self) -> bool {
        self.bye_after_ack || self.others.iter().any(|r| r.request.method == Method::Bye)
    }

    fn send_bye(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if let Some((key, request)) =
            shared.send_in_dialog(ctx, &mut self.dialog, Method::Bye, None)
        {
            self.others.push(OutRequest {
                key,
                request,
                body: None,
                attempts: 0,
                refresh: false,
            });
        }
        shared.linger(ctx);
    }

    /// Sends an INFO.
    pub fn send_info(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, body: Body) {
        if let Some((key, request)) =
            shared.send_in_dialog(ctx, &mut self.dialog, Method::Info, Some(&body))
        {
            self.others.push(OutRequest {
                key,
                request,
                body: Some(body),
                attempts: 0,
                refresh: false,
            });
        }
    }

    /// An ACK for one of our 2xx responses.
    pub fn on_ack(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, ack: &Request) {
        if !self.dialog.matches_request(ack) {
            return;
        }
        let seq = ack.cseq().map(|c| c.seq);
        let Some(pending) = self.pending_answer.take_if(|p| Some(p.seq) == seq) else {
            tracing::trace!("ACK without a pending 2xx absorbed");
            return;
        };
        let body = compose::body_of(&ack.headers, &ack.body);
        if !self.established {
            self.established = true;
            if self.bye_after_ack {
                self.bye_after_ack = false;
                self.send_bye(shared, ctx);
            } else if !shared.ended {
                ctx.emit(CallEvent::Established { body });
            }
        } else if pending.answer_in_ack && body.is_some() && !shared.ended {
            ctx.emit(CallEvent::ReAnswer { body });
        }
        // The peer's exchange is over: an offer of ours that waited for it goes out.
        self.send_queued_offer(shared, ctx);
    }

    /// A request in the dialog (not ACK or CANCEL).
    pub fn on_request(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: Request,
        source: Target,
    ) {
        if !self.dialog.matches_request(&request) {
            return ctx.respond(key, compose::response(&request, 481, None));
        }
        let seq = request.cseq().map(|c| c.seq);
        if request.method == Method::Invite {
            if let Some((answered, response)) = &self.last_answer {
                if Some(*answered) == seq {
                    tracing::trace!("re-INVITE retransmitted after our 2xx, 2xx re-sent");
                    return ctx.respond(key, response.clone());
                }
            }
        }
        if let Err(error) = self.dialog.check_remote_seq(&request) {
            tracing::debug!(%error, method = %request.method, "request out of order");
            return ctx.respond(key, compose::response(&request, 500, None));
        }
        if shared.ended {
            let code = if request.method == Method::Bye {
                200
            } else {
                481
            };
            return ctx.respond(key, compose::response(&request, code, None));
        }
        match request.method {
            Method::Bye => {
                ctx.respond(key, compose::response(&request, 200, None));
                self.on_bye(shared, ctx);
            }
            Method::Invite | Method::Update => {
                self.on_offer_request(shared, ctx, key, request, source)
            }
            Method::Refer => self.on_refer(shared, ctx, key, &request),
            Method::Notify if roster::event_package(&request).as_deref() == Some(EVENT) => {
                self.on_roster_notify(shared, ctx, key, &request)
            }
            Method::Notify => self.on_notify(shared, ctx, key, &request),
            Method::Subscribe => self.on_subscribe(shared, ctx, key, &request),
            Method::Options => {
                let mut response = compose::response(&request, 200, None);
                response
                    .headers
                    .push(rsip::headers::Allow::new(compose::ALLOW).into());
                response
                    .headers
                    .push(rsip::headers::Supported::new(compose::SUPPORTED).into());
                response
                    .headers
                    .push(rsip::headers::Accept::new("application/sdp").into());
                ctx.respond(key, response);
            }
            Method::Info => {
                ctx.respond(key, compose::response(&request, 200, None));
                if let Some(body) = compose::body_of(&request.headers, &request.body) {
                    ctx.emit(CallEvent::Info { body });
                }
            }
            Method::PRack => {
                let code = if self.late_prack.is_some()
                    && super::incoming::rack(&request) == self.late_prack
                {
                    self.late_prack = None;
                    200
                } else {
                    481
                };
                ctx.respond(key, compose::response(&request, code, None));
            }
            _ => {
                let mut response = compose::response(&request, 501, None);
                response
                    .headers
                    .push(rsip::headers::Allow::new(compose::ALLOW).into());
                ctx.respond(key, response);
            }
        }
    }

    fn on_bye(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if let Some(pending) = self.reinvite_in.take() {
            ctx.respond(&pending.key, compose::response(&pending.request, 487, None));
        }
        self.pending_answer = None;
        self.glare_retry = None;
        self.queued_offer = None;
        self.bye_after_ack = false;
        self.forget_roster_subscription();
        shared.end(ctx, true, "the other side hung up");
    }

    /// A CANCEL for one of our INVITE server transactions: the pending re-INVITE is answered
    /// 487; for an INVITE already answered the CANCEL has no effect (RFC 3261 §9.2).
    pub fn on_cancel(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        cancel: &Request,
        invite_key: &TransactionKey,
    ) {
        ctx.respond(key, compose::response(cancel, 200, None));
        if let Some(pending) = self.reinvite_in.take_if(|r| r.key == *invite_key) {
            ctx.respond(&pending.key, compose::response(&pending.request, 487, None));
            ctx.emit(CallEvent::ReOfferCancelled);
            // The peer's exchange is over: an offer of ours that waited for it goes out.
            self.send_queued_offer(shared, ctx);
        }
    }

    /// A response to a request we sent in the dialog.
    pub fn on_response(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        response: Response,
    ) {
        if self.reinvite_out.as_ref().is_some_and(|r| r.key == *key) {
            return self.on_reinvite_response(shared, ctx, response);
        }
        if self.is_refer(key) {
            return self.on_refer_response(shared, ctx, &response);
        }
        if self.is_subscribe(key) {
            return self.on_subscribe_response(shared, ctx, &response);
        }
        let code = response.status_code.code();
        if code < 200 {
            return;
        }
        let Some(index) = self.others.iter().position(|r| r.key == *key) else {
            return;
        };
        let sent = self.others.swap_remove(index);
        match code {
            401 | 407 => match self.resend_authorized(shared, ctx, &sent, &response) {
                Some(again) => {
                    let resent = again.key.clone();
                    self.others.push(again);
                    self.roster_notify_answered(shared, ctx, &sent.key, code, Some(&resent));
                }
                None => self.roster_notify_answered(shared, ctx, &sent.key, code, None),
            },
            408 | 481 if sent.request.method == Method::Info => {
                let reason = if code == 481 {
                    "the other side lost the call"
                } else {
                    "the other side stopped answering"
                };
                self.lost(shared, ctx, code == 408, reason);
            }
            _ => self.roster_notify_answered(shared, ctx, &sent.key, code, None),
        }
    }

    /// A transaction of ours in the dialog timed out or could not be sent.
    pub fn on_failure(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        _how: TxFailure,
    ) {
        if let Some(out) = self.reinvite_out.take_if(|r| r.key == *key) {
            tracing::debug!(seq = ?out.request.cseq().map(|c| c.seq), "re-INVITE got no answer");
            return self.lost(shared, ctx, true, "no answer from the network");
        }
        if self.is_refer(key) {
            return self.on_refer_failure(shared, ctx);
        }
        if self.is_subscribe(key) {
            return self.on_subscribe_failure(shared, ctx);
        }
        if let Some(index) = self.others.iter().position(|r| r.key == *key) {
            let sent = self.others.swap_remove(index);
            self.roster_notify_answered(shared, ctx, &sent.key, 408, None);
            if sent.request.method == Method::Info {
                self.lost(shared, ctx, true, "no answer from the network");
            }
        }
    }

    /// The dialog is gone (481, 408 or a timeout to one of our requests): the call ends,
    /// after a BYE when the peer may still think it exists.
    pub(super) fn lost(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, bye: bool, reason: &str) {
        if shared.ended {
            return;
        }
        self.glare_retry = None;
        self.queued_offer = None;
        if let Some(pending) = self.reinvite_in.take() {
            ctx.respond(&pending.key, compose::response(&pending.request, 487, None));
        }
        shared.end(ctx, true, reason);
        if bye {
            self.send_bye(shared, ctx);
        }
    }

    /// Sends `sent` again with credentials for the challenge in `response`; `None` when it
    /// already carried credentials for a fresh challenge, or we have none.
    pub(super) fn resend_authorized(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        sent: &OutRequest,
        response: &Response,
    ) -> Option<OutRequest> {
        let credentials = shared.credentials.clone()?;
        let mut digest = CallDigest::from_response(response)?;
        if has_credentials(&sent.request) && !digest.is_stale() {
            return None;
        }
        let method = sent.request.method;
        let (mut request, target) =
            shared.build_in_dialog(ctx, &mut self.dialog, method, None, sent.body.as_ref());
        // Extension headers (Session-Expires) go along again.
        for header in sent.request.headers.iter() {
            if matches!(header, rsip::Header::Other(..)) {
                request.headers.push(header.clone());
            }
        }
        let cnonce = format!("{:016x}", ctx.rng.gen::<u64>());
        digest.authorize(&mut request, &credentials, &cnonce);
        let key = ctx.send_request(request.clone(), target)?;
        Some(OutRequest {
            key,
            request,
            body: sent.body.clone(),
            attempts: sent.attempts,
            refresh: sent.refresh,
        })
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending_answer.as_ref().map(PendingAnswer::deadline);
        let glare = self.glare_retry.as_ref().map(|g| g.at);
        let timer = self.timer.as_ref().map(|t| t.deadline);
        let roster = self.roster_deadline();
        [pending, glare, timer, roster].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        let gave_up = self
            .pending_answer
            .as_mut()
            .is_some_and(|p| p.on_timeout(ctx.now, ctx.layer) == Retransmission::GaveUp);
        if gave_up {
            self.pending_answer = None;
            self.established = true;
            tracing::debug!(call = %shared.id, "no ACK for our 2xx, ending the call");
            if self.bye_after_ack || !shared.ended {
                self.bye_after_ack = false;
                shared.end(ctx, true, "no ACK came for our answer");
                self.send_bye(shared, ctx);
            }
        }
        self.glare_timeout(shared, ctx);
        self.session_timeout(shared, ctx);
        self.roster_timeout(shared, ctx);
    }

    /// The session timer: refresh when we are the refresher, else (or when our refresh got
    /// no answer) end the session with a BYE.
    fn session_timeout(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        let Some(timer) = self.timer.filter(|t| t.deadline <= ctx.now) else {
            return;
        };
        if shared.ended {
            self.timer = None;
            return;
        }
        if timer.we_refresh && !timer.refreshing {
            if self.reinvite_out.is_some()
                || self.reinvite_in.is_some()
                || self.pending_answer.is_some()
                || self.glare_retry.is_some()
            {
                // An offer exchange is under way; its answer restarts the timer.
                if let Some(timer) = &mut self.timer {
                    timer.deadline = ctx.now + ctx.layer.config().t1;
                }
                return;
            }
            tracing::debug!(call = %shared.id, "session refresh");
            self.send_refresh(shared, ctx);
            return;
        }
        tracing::debug!(call = %shared.id, "session timer expired");
        self.timer = None;
        self.lost(shared, ctx, true, "the session timer expired");
    }
}
