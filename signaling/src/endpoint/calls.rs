//! The endpoint's calls: the application's call commands, and the routing of requests,
//! responses and timers to calls.

use std::collections::VecDeque;
use std::time::Instant;

use rsip::prelude::UntypedHeader;
use rsip::{Method, Request, Response};

use super::{Endpoint, EndpointEvent};
use crate::call::{
    Body, Call, CallError, CallEvent, CallId, CallState, Ctx, IncomingCallConfig,
    OutgoingCallConfig, Refusal, TxFailure,
};
use crate::message::{self, HeaderAccess};
use crate::transaction::TransactionKey;
use crate::transport::Target;

/// Methods that only make sense inside a dialog: outside one they get 481.
const DIALOG_METHODS: &[Method] = &[
    Method::Bye,
    Method::Info,
    Method::PRack,
    Method::Update,
    Method::Notify,
];

impl Endpoint {
    /// Starts an outgoing call: the INVITE goes out at once. Its events follow as
    /// [`EndpointEvent::Call`] with the returned id.
    pub fn start_call(&mut self, now: Instant, config: OutgoingCallConfig) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        let _span = tracing::debug_span!("call", %id).entered();
        let mut started = Vec::new();
        let mut events = VecDeque::new();
        let call = {
            let mut ctx = Ctx {
                now,
                layer: &mut self.transactions,
                started: &mut started,
                events: &mut events,
                rng: &mut self.rng,
                user_agent: &self.user_agent,
            };
            Call::outgoing(id, config, &mut ctx)
        };
        tracing::debug!(call_id = call.sip_call_id(), "outgoing call");
        self.calls.insert(id, call);
        self.settle_call(id, started, events);
        self.pump(now);
        id
    }

    /// Sends 180 Ringing for an incoming call.
    pub fn ring(&mut self, now: Instant, id: CallId) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| call.ring(ctx))
    }

    /// Answers an incoming call with 200 OK carrying `body` (the SDP answer, or an offer when
    /// the INVITE had none). `Established` follows when the ACK arrives.
    pub fn answer(
        &mut self,
        now: Instant,
        id: CallId,
        body: Option<Body>,
    ) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| call.answer(ctx, body))
    }

    /// Refuses an incoming call: a code (486 busy, 603 decline, 488 not acceptable…) or a
    /// [`Refusal`] that also says why.
    pub fn reject(
        &mut self,
        now: Instant,
        id: CallId,
        refusal: impl Into<Refusal>,
    ) -> Result<(), CallError> {
        let refusal = refusal.into();
        self.command(now, id, |call, ctx| call.reject(ctx, &refusal))
    }

    /// Ends a call whatever its state: CANCEL while it rings out, 603 while it rings in, BYE
    /// once answered. `Ended { by_remote: false }` is reported at once.
    pub fn hang_up(&mut self, now: Instant, id: CallId) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| call.hang_up(ctx))
    }

    /// Sends a re-INVITE with a new offer (hold, resume), or keeps it until the exchange
    /// under way (our session refresh, or the peer's offer and its ACK) is over. `ReAnswer`,
    /// `ReInviteFailed` or `ReInviteYielded` follows. (The offer is required: an offerless
    /// re-INVITE would need our answer in the ACK.)
    pub fn reinvite(&mut self, now: Instant, id: CallId, body: Body) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| call.reinvite(ctx, body))
    }

    /// Accepts the offer of a `ReOffer` with our answer.
    pub fn answer_reoffer(
        &mut self,
        now: Instant,
        id: CallId,
        body: Option<Body>,
    ) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| call.answer_reoffer(ctx, body))
    }

    /// Refuses the offer of a `ReOffer` (488 usually, or a [`Refusal`] that also says why);
    /// the call goes on unchanged.
    pub fn reject_reoffer(
        &mut self,
        now: Instant,
        id: CallId,
        refusal: impl Into<Refusal>,
    ) -> Result<(), CallError> {
        let refusal = refusal.into();
        self.command(now, id, |call, ctx| call.reject_reoffer(ctx, &refusal))
    }

    /// Sends an INFO carrying `body` (e.g. `application/dtmf-relay`).
    pub fn send_info(&mut self, now: Instant, id: CallId, body: Body) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| call.send_info(ctx, body))
    }

    /// Asks the peer of an established call to call `target` instead (REFER, a blind
    /// transfer). `TransferProgress` events follow.
    pub fn transfer(&mut self, now: Instant, id: CallId, target: &str) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| call.transfer(ctx, target))
    }

    /// Reports the progress of the transfer a `TransferRequested` asked for: the status of
    /// the new call (`100`, `180`, `200`, `486`…), sent to the transferor in a NOTIFY. A final
    /// status (≥ 200) ends the transfer.
    pub fn transfer_progress(
        &mut self,
        now: Instant,
        id: CallId,
        code: u16,
        reason: &str,
    ) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| {
            call.transfer_progress(ctx, code, reason)
        })
    }

    /// Says that a call is in a conference we host, with the roster as it stands now
    /// (RFC 4575 `conference-info`), or with `None` that it no longer is. Our Contact in the
    /// call says `isfocus` (announced by a session refresh when the call is established), the
    /// peer may subscribe to the roster, and each new roster is NOTIFYed to it. A participant
    /// subscribes by itself when the peer's Contact says `isfocus`, and reports
    /// [`CallEvent::Roster`].
    pub fn set_conference_info(
        &mut self,
        now: Instant,
        id: CallId,
        info: Option<crate::conference_info::ConferenceInfo>,
    ) -> Result<(), CallError> {
        self.command(now, id, |call, ctx| {
            call.set_conference_info(ctx, info);
            Ok(())
        })
    }

    /// The state of a call, while the endpoint remembers it.
    pub fn call_state(&self, id: CallId) -> Option<CallState> {
        self.calls.get(&id).map(Call::state)
    }

    /// The SIP Call-ID of a call (for logs and spans).
    pub fn call_sip_id(&self, id: CallId) -> Option<&str> {
        self.calls.get(&id).map(Call::sip_call_id)
    }

    /// Every call the endpoint remembers, with its state.
    pub fn calls(&self) -> impl Iterator<Item = (CallId, CallState)> + '_ {
        self.calls.iter().map(|(id, call)| (*id, call.state()))
    }

    /// Whether a hung-up call still has its CANCEL to send (it waits for a provisional
    /// response) or its BYE (it waits for the ACK of our 2xx), or has not seen it answered:
    /// an application that stops should let it finish.
    pub fn calls_finishing(&self) -> bool {
        self.calls.values().any(Call::finishing)
    }

    /// How incoming calls present us (Contact per transport, replies through the source).
    pub fn set_incoming_call_config(&mut self, config: IncomingCallConfig) {
        self.incoming = config;
    }

    fn command(
        &mut self,
        now: Instant,
        id: CallId,
        f: impl FnOnce(&mut Call, &mut Ctx<'_>) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        let result = self
            .with_call(now, id, f)
            .unwrap_or(Err(CallError::UnknownCall(id)));
        self.pump(now);
        result
    }

    /// Runs `f` on a call with a context, then files the transactions it started and the
    /// events it reported. `None` when there is no such call.
    fn with_call<R>(
        &mut self,
        now: Instant,
        id: CallId,
        f: impl FnOnce(&mut Call, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let call = self.calls.get_mut(&id)?;
        let _span = tracing::debug_span!("call", %id, call_id = call.sip_call_id()).entered();
        let mut started = Vec::new();
        let mut events = VecDeque::new();
        let result = {
            let mut ctx = Ctx {
                now,
                layer: &mut self.transactions,
                started: &mut started,
                events: &mut events,
                rng: &mut self.rng,
                user_agent: &self.user_agent,
            };
            let result = f(call, &mut ctx);
            call.settle(&mut ctx);
            result
        };
        self.settle_call(id, started, events);
        Some(result)
    }

    fn settle_call(
        &mut self,
        id: CallId,
        started: Vec<(TransactionKey, Target)>,
        events: VecDeque<CallEvent>,
    ) {
        for (key, target) in started {
            self.call_transactions.insert(key, (id, Some(target)));
        }
        for event in events {
            self.events.push_back(EndpointEvent::Call { id, event });
        }
    }

    pub(super) fn call_response(&mut self, now: Instant, key: &TransactionKey, response: Response) {
        if let Some((id, _)) = self.call_transactions.get(key).cloned() {
            self.with_call(now, id, |call, ctx| call.on_response(ctx, key, response));
        }
    }

    pub(super) fn call_failure(&mut self, now: Instant, key: &TransactionKey, how: TxFailure) {
        if let Some((id, _)) = self.call_transactions.remove(key) {
            self.with_call(now, id, |call, ctx| call.on_failure(ctx, key, how));
        }
    }

    pub(super) fn calls_timeout(&mut self, now: Instant) {
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, call)| call.poll_timeout().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.with_call(now, id, |call, ctx| call.handle_timeout(ctx));
        }
        let finished: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, call)| call.is_finished(now))
            .map(|(id, _)| *id)
            .collect();
        for id in finished {
            tracing::debug!(%id, "call forgotten");
            self.calls.remove(&id);
            self.call_transactions.retain(|_, (owner, _)| *owner != id);
        }
    }

    fn call_owning_request(&self, request: &Request) -> Option<CallId> {
        self.calls
            .iter()
            .find(|(_, call)| call.owns_request(request))
            .map(|(id, _)| *id)
    }

    /// A new server transaction.
    pub(super) fn serve_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Target,
    ) {
        match request.method {
            // ACKs never start a transaction; they arrive as strays.
            Method::Ack => return,
            Method::Cancel => {
                let invite_key = key.with_method(Method::Invite);
                match self.call_transactions.get(&invite_key).cloned() {
                    Some((id, _)) => {
                        self.call_transactions.insert(key.clone(), (id, None));
                        self.with_call(now, id, |call, ctx| {
                            call.on_cancel(ctx, &key, &request, &invite_key)
                        });
                    }
                    None => self.respond_plain(now, &key, &request, 481),
                }
                return;
            }
            _ => {}
        }
        if request.to_tag().is_some() {
            match self.call_owning_request(&request) {
                Some(id) => {
                    self.call_transactions.insert(key.clone(), (id, None));
                    self.with_call(now, id, |call, ctx| {
                        call.on_request(ctx, &key, request, source)
                    });
                }
                None => self.respond_plain(now, &key, &request, 481),
            }
            return;
        }
        match request.method {
            Method::Invite => self.incoming_invite(now, key, request, source),
            Method::Options => self.respond_plain(now, &key, &request, 200),
            method if DIALOG_METHODS.contains(&method) => {
                self.respond_plain(now, &key, &request, 481)
            }
            _ => self.respond_plain(now, &key, &request, 501),
        }
    }

    fn incoming_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Target,
    ) {
        let repeated = self
            .calls
            .iter()
            .find(|(_, call)| call.repeats_invite(&request))
            .map(|(id, _)| *id);
        if let Some(id) = repeated {
            self.call_transactions.insert(key.clone(), (id, None));
            self.with_call(now, id, |call, ctx| {
                call.on_repeated_invite(ctx, &key, &request)
            });
            return;
        }
        let id = CallId(self.next_call);
        self.next_call += 1;
        let _span =
            tracing::debug_span!("call", %id, call_id = request.call_id().unwrap_or("")).entered();
        let mut started = Vec::new();
        let mut events = VecDeque::new();
        let call = {
            let mut ctx = Ctx {
                now,
                layer: &mut self.transactions,
                started: &mut started,
                events: &mut events,
                rng: &mut self.rng,
                user_agent: &self.user_agent,
            };
            Call::incoming(id, key.clone(), request, source, &self.incoming, &mut ctx)
        };
        if let Some(call) = call {
            tracing::debug!(%source, "incoming call");
            self.calls.insert(id, call);
            self.call_transactions.insert(key, (id, None));
        }
        self.settle_call(id, started, events);
    }

    /// Answers a request outside any call, with Allow and User-Agent.
    fn respond_plain(&mut self, now: Instant, key: &TransactionKey, request: &Request, code: u16) {
        let reason = match code {
            200 => "OK",
            481 => "Call/Transaction Does Not Exist",
            _ => "Not Implemented",
        };
        let mut response = message::response_to(request, code, reason);
        response
            .headers
            .push(rsip::headers::Allow::new(super::ALLOWED_METHODS).into());
        response
            .headers
            .push(rsip::headers::UserAgent::new(self.user_agent.as_str()).into());
        if let Err(error) = self.transactions.respond(now, key, response) {
            tracing::warn!(%error, "cannot answer a request");
        }
    }

    /// An ACK outside any transaction: for the 2xx of one of our calls.
    pub(super) fn stray_request(&mut self, now: Instant, request: &Request, source: Target) {
        if request.method != Method::Ack {
            return;
        }
        match self.call_owning_request(request) {
            Some(id) => {
                self.with_call(now, id, |call, ctx| call.on_ack(ctx, request));
            }
            None => tracing::debug!(%source, "ACK for no call ignored"),
        }
    }

    /// A response outside any transaction: a retransmitted or forked 2xx to one of our
    /// INVITEs.
    pub(super) fn stray_response(&mut self, now: Instant, response: &Response, source: Target) {
        let owner = self
            .calls
            .iter()
            .find(|(_, call)| call.owns_response(response))
            .map(|(id, _)| *id);
        match owner {
            Some(id) => {
                self.with_call(now, id, |call, ctx| call.on_stray_response(ctx, response));
            }
            None => tracing::debug!(
                %source,
                code = response.status_code.code(),
                "response outside any transaction ignored"
            ),
        }
    }
}
