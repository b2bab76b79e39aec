//! Calls: INVITE sessions (RFC 3261 §13–§15) on top of [`crate::dialog`], sans-IO.
//!
//! A call is one INVITE session, outgoing (we are the UAC of the first INVITE) or incoming.
//! The [`crate::endpoint::Endpoint`] owns the calls and routes the transaction layer's events
//! to them; the application drives them with the endpoint's mutators and hears about them
//! through [`CallEvent`]s. Bodies are opaque: a [`Body`] is a content type and bytes, and the
//! engine does offer/answer.
//!
//! The life of a call, in events:
//!
//! ```text
//!  outgoing:  Trying? → Ringing{early_media}* → Answered{body} → Established → … → Ended
//!                                            ↘ Failed{code, reason, cause}
//!  incoming:  Incoming{…} → (app: ring, answer) → Established{body} → … → Ended
//!                        ↘ Ended{by_remote: true} (CANCEL) / Ended{by_remote: false} (reject)
//!  established: ReOffer (→ ReOfferCancelled?) / ReAnswer / ReInviteYielded / ReInviteFailed /
//!               Info / TransferRequested / TransferProgress / Roster, in any number, then Ended
//! ```
//!
//! Every call reports exactly one `Failed` or `Ended`, and nothing after it. `hang_up` reports
//! `Ended { by_remote: false }` at once; the signalling it starts (CANCEL and the 487, a BYE, the
//! BYE that follows an answer that crossed our CANCEL) finishes quietly in the background, and
//! the call is forgotten 64 × T1 after its end.
//!
//! Files: `outgoing.rs` (the INVITE client: provisional responses, early dialogs and PRACK,
//! forks, redirects, digest, CANCEL), `incoming.rs` (the INVITE server: 100, 180, the 2xx,
//! CANCEL), `session.rs` (the confirmed dialog: BYE, INFO, OPTIONS, the ACK for our 2xx),
//! `reinvite.rs` (re-INVITE and UPDATE both ways, glare), `pending_answer.rs` (our 2xx until
//! its ACK), `session_timer.rs` (RFC 4028), `transfer.rs` (REFER), `roster.rs` (the
//! conference event package, RFC 4575, in the call's dialog), `shared.rs` (what every
//! phase shares, the ACKs of 2xx responses, forks), `refusal.rs` (what a refusal tells the
//! peer: reason phrase, `Warning`), `compose.rs`, `digest.rs`, `cause.rs`.

mod cause;
mod compose;
mod config;
mod digest;
mod event;
mod incoming;
mod outgoing;
mod pending_answer;
mod refusal;
mod reinvite;
mod roster;
mod session;
mod session_timer;
mod shared;
mod transfer;

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rsip::{Request, Response};

use crate::conference_info::ConferenceInfo;
use crate::message::HeaderAccess;
use crate::transaction::{TransactionKey, TransactionLayer};
use crate::transport::Target;

pub use cause::FailureCause;
pub use compose::{ALLOW, SUPPORTED};
pub use config::{IncomingCallConfig, OutgoingCallConfig};
pub use event::CallEvent;
pub use refusal::Refusal;

use incoming::Incoming;
use outgoing::Outgoing;
use session::Session;
pub(crate) use shared::Shared;

/// Identifies a call inside an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// A message body: its content type and its bytes, passed through untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The Content-Type value, e.g. `application/sdp`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Bytes,
}

impl Body {
    /// A body of the given type.
    pub fn new(content_type: impl Into<String>, bytes: impl Into<Bytes>) -> Body {
        Body {
            content_type: content_type.into(),
            bytes: bytes.into(),
        }
    }

    /// An `application/sdp` body.
    pub fn sdp(bytes: impl Into<Bytes>) -> Body {
        Body::new("application/sdp", bytes)
    }
}

/// Which side of the first INVITE we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    /// We sent the INVITE.
    Outgoing,
    /// We received it.
    Incoming,
}

/// Where a call is, as far as the application cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Outgoing: the INVITE is out, nothing but 100 Trying came back.
    Calling,
    /// Outgoing: the far end rings (a 18x came). Incoming: we sent 180.
    Ringing,
    /// Incoming: the application has not rung or answered yet.
    Offered,
    /// Incoming: our 2xx is out, the ACK has not come yet.
    Answering,
    /// The dialog is confirmed.
    Established,
    /// `Ended` or `Failed` was reported; signalling may still be finishing.
    Ended,
}

/// Why a call command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No call has this id (it may have ended and been forgotten).
    #[error("no call {0}")]
    UnknownCall(CallId),
    /// The command does not fit the call's state.
    #[error("cannot {action} a call that is {state:?}")]
    InvalidState {
        /// The command.
        action: &'static str,
        /// The call's state.
        state: CallState,
    },
    /// An INVITE transaction is already in progress on the dialog (RFC 3261 §14.1).
    #[error("a re-INVITE is already in progress")]
    ReInviteInProgress,
    /// The status code does not fit the command (a rejection must be 300–699).
    #[error("status {0} cannot be used here")]
    InvalidStatus(u16),
    /// A transfer we asked for is still running.
    #[error("a transfer is already in progress")]
    TransferInProgress,
    /// The peer asked for no transfer that is still running.
    #[error("no transfer was asked for")]
    NoTransfer,
}

/// How a transaction of a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxFailure {
    /// Timer B, F or H fired.
    Timeout,
    /// The transport could not send.
    Transport,
}

/// What a call needs from the endpoint while it handles one input.
pub(crate) struct Ctx<'a> {
    /// The current time.
    pub now: Instant,
    /// The transaction layer.
    pub layer: &'a mut TransactionLayer,
    /// Client transactions the call started, with their targets, for the endpoint to route.
    pub started: &'a mut Vec<(TransactionKey, Target)>,
    /// What the call reports.
    pub events: &'a mut VecDeque<CallEvent>,
    /// Randomness for tags, branches and the glare delay.
    pub rng: &'a mut SmallRng,
    /// The User-Agent value.
    pub user_agent: &'a str,
}

impl Ctx<'_> {
    /// Starts a client transaction; `None` (logged) when the layer refuses the request.
    pub(crate) fn send_request(
        &mut self,
        request: Request,
        target: Target,
    ) -> Option<TransactionKey> {
        let method = request.method;
        match self.layer.send_request(self.now, request, target) {
            Ok(key) => {
                self.started.push((key.clone(), target));
                Some(key)
            }
            Err(error) => {
                tracing::warn!(%error, %method, "cannot send request");
                None
            }
        }
    }

    /// Answers a server transaction; failures are logged (the transaction may be gone).
    pub(crate) fn respond(&mut self, key: &TransactionKey, response: Response) {
        if let Err(error) = self.layer.respond(self.now, key, response) {
            tracing::debug!(%error, "response not sent");
        }
    }

    /// Reports an event.
    pub(crate) fn emit(&mut self, event: CallEvent) {
        self.events.push_back(event);
    }

    /// A fresh RFC 3261 branch.
    pub(crate) fn branch(&mut self) -> String {
        crate::transaction::new_branch(self.rng)
    }

    /// A fresh tag: 64 random bits in hex.
    pub(crate) fn tag(&mut self) -> String {
        use rand::Rng;
        format!("{:016x}", self.rng.gen::<u64>())
    }

    /// 64 × T1.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        self.layer.config().timeout()
    }
}

enum Phase {
    Outgoing(Box<Outgoing>),
    Incoming(Box<Incoming>),
    Session(Box<Session>),
}

/// One call: what is shared by every phase, and the phase.
pub(crate) struct Call {
    shared: Shared,
    phase: Phase,
}

impl Call {
    /// Starts an outgoing call: sends the INVITE.
    pub(crate) fn outgoing(id: CallId, config: OutgoingCallConfig, ctx: &mut Ctx<'_>) -> Call {
        use rand::Rng;
        let call_id = format!("{:032x}", ctx.rng.gen::<u128>());
        let local_tag = ctx.tag();
        let mut shared = Shared::new(
            id,
            CallDirection::Outgoing,
            call_id,
            local_tag,
            config.contact.clone(),
            contact_host_port(&config.contact).unwrap_or_else(|| config.local_addr.to_string()),
            config.target,
            // Over a WebSocket every request of the call goes over the flow to the server: a
            // client opens no connections to other hops (RFC 7118 §5), and a `transport=ws`
            // in a Contact or Record-Route also stands for a secure WebSocket (§5.2).
            config.outbound_proxy || config.target.transport.is_websocket(),
        );
        shared.credentials = config.credentials.clone();
        let outgoing = Outgoing::start(&mut shared, ctx, config);
        Call {
            shared,
            phase: Phase::Outgoing(Box::new(outgoing)),
        }
    }

    /// Takes an incoming INVITE (no To tag) as a new call and reports
    /// [`CallEvent::Incoming`] (its transaction answers 100 Trying if nothing else is sent
    /// within 200 ms). `None` when the INVITE was refused at once (it lacked what a
    /// dialog needs, or requires an extension we lack); the refusal is already sent.
    pub(crate) fn incoming(
        id: CallId,
        key: TransactionKey,
        request: Request,
        source: Target,
        config: &IncomingCallConfig,
        ctx: &mut Ctx<'_>,
    ) -> Option<Call> {
        let local_tag = ctx.tag();
        let contact = config
            .contacts
            .iter()
            .find(|(t, _)| *t == source.transport)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| request.uri.to_string());
        let sent_by = contact_host_port(&contact).unwrap_or_else(|| source.addr.to_string());
        let mut shared = Shared::new(
            id,
            CallDirection::Incoming,
            request.call_id().unwrap_or_default().to_owned(),
            local_tag,
            contact,
            sent_by,
            source,
            config.reply_via_source || source.transport.is_websocket(),
        );
        let incoming = Incoming::start(&mut shared, ctx, key, request, source)?;
        Some(Call {
            shared,
            phase: Phase::Incoming(Box::new(incoming)),
        })
    }

    /// The call's state.
    pub(crate) fn state(&self) -> CallState {
        if self.shared.ended {
            return CallState::Ended;
        }
        match &self.phase {
            Phase::Outgoing(o) => o.state(),
            Phase::Incoming(i) => i.state(),
            Phase::Session(s) => s.state(),
        }
    }

    /// The SIP Call-ID.
    pub(crate) fn sip_call_id(&self) -> &str {
        &self.shared.call_id
    }

    /// Whether a request from the network is addressed to this call's dialogs: its Call-ID
    /// and its To tag (our tag).
    pub(crate) fn owns_request(&self, request: &Request) -> bool {
        request.call_id() == Some(self.shared.call_id.as_str())
            && request.to_tag() == Some(self.shared.local_tag.as_str())
    }

    /// Whether a response from the network answers a request of this call (From tag ours).
    pub(crate) fn owns_response(&self, response: &Response) -> bool {
        response.call_id() == Some(self.shared.call_id.as_str())
            && response.from_tag() == Some(self.shared.local_tag.as_str())
    }

    /// Whether an INVITE without a To tag repeats this incoming call's INVITE: the same
    /// Call-ID, From tag and CSeq (a retransmission after our 2xx, or the same request
    /// arriving over another path).
    pub(crate) fn repeats_invite(&self, request: &Request) -> bool {
        match &self.phase {
            Phase::Incoming(i) => i.repeats(request),
            Phase::Session(s) => s.repeats_initial_invite(request),
            Phase::Outgoing(_) => false,
        }
    }

    /// An INVITE that [`Call::repeats_invite`]: the 2xx again for a retransmission (same
    /// branch), 482 Loop Detected for the same request by another path.
    pub(crate) fn on_repeated_invite(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        match &mut self.phase {
            Phase::Session(s) => s.on_repeated_invite(&mut self.shared, ctx, key, request),
            _ => ctx.respond(key, compose::response(request, 482, None)),
        }
    }

    /// A response for one of this call's client transactions.
    pub(crate) fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        response: Response,
    ) {
        let shared = &mut self.shared;
        match &mut self.phase {
            Phase::Outgoing(o) => {
                if let Some(mut session) = o.on_response(shared, ctx, key, response) {
                    // Our INVITE may have gone out before we were a focus: say so now.
                    session.announce_focus(shared);
                    self.phase = Phase::Session(Box::new(session));
                }
            }
            Phase::Incoming(_) => {}
            Phase::Session(s) => s.on_response(shared, ctx, key, response),
        }
    }

    /// One of this call's transactions timed out or could not be sent.
    pub(crate) fn on_failure(&mut self, ctx: &mut Ctx<'_>, key: &TransactionKey, how: TxFailure) {
        let shared = &mut self.shared;
        match &mut self.phase {
            Phase::Outgoing(o) => o.on_failure(shared, ctx, key, how),
            Phase::Incoming(i) => i.on_failure(shared, ctx, key, how),
            Phase::Session(s) => s.on_failure(shared, ctx, key, how),
        }
    }

    /// A request in one of this call's dialogs (To tag ours), other than ACK and CANCEL.
    pub(crate) fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: Request,
        source: Target,
    ) {
        let shared = &mut self.shared;
        match &mut self.phase {
            Phase::Outgoing(o) => o.on_request(shared, ctx, key, &request),
            Phase::Incoming(i) => i.on_request(shared, ctx, key, &request),
            Phase::Session(s) => s.on_request(shared, ctx, key, request, source),
        }
    }

    /// A CANCEL for this call's INVITE server transaction (`invite_key`).
    pub(crate) fn on_cancel(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        cancel: &Request,
        invite_key: &TransactionKey,
    ) {
        let shared = &mut self.shared;
        match &mut self.phase {
            Phase::Incoming(i) if i.key() == invite_key => i.on_cancel(shared, ctx, key, cancel),
            Phase::Session(s) => s.on_cancel(shared, ctx, key, cancel, invite_key),
            _ => ctx.respond(key, compose::response(cancel, 481, None)),
        }
    }

    /// An ACK outside any transaction (for a 2xx of ours).
    pub(crate) fn on_ack(&mut self, ctx: &mut Ctx<'_>, ack: &Request) {
        if let Phase::Session(s) = &mut self.phase {
            s.on_ack(&mut self.shared, ctx, ack);
        }
    }

    /// A response outside any transaction: a retransmitted or forked 2xx to an INVITE.
    pub(crate) fn on_stray_response(&mut self, ctx: &mut Ctx<'_>, response: &Response) {
        self.shared.on_stray_2xx(ctx, response);
    }

    /// Sends 180 Ringing.
    pub(crate) fn ring(&mut self, ctx: &mut Ctx<'_>) -> Result<(), CallError> {
        let state = self.state();
        match &mut self.phase {
            Phase::Incoming(i) if !self.shared.ended => i.ring(&mut self.shared, ctx),
            _ => Err(CallError::InvalidState {
                action: "ring",
                state,
            }),
        }
    }

    /// Answers an incoming call with 200 OK.
    pub(crate) fn answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        body: Option<Body>,
    ) -> Result<(), CallError> {
        let state = self.state();
        match &mut self.phase {
            Phase::Incoming(i) if !self.shared.ended => {
                let session = i.answer(&mut self.shared, ctx, body);
                self.phase = Phase::Session(Box::new(session));
                Ok(())
            }
            _ => Err(CallError::InvalidState {
                action: "answer",
                state,
            }),
        }
    }

    /// Refuses an incoming call (a code of 300–699).
    pub(crate) fn reject(&mut self, ctx: &mut Ctx<'_>, refusal: &Refusal) -> Result<(), CallError> {
        if !(300..=699).contains(&refusal.code) {
            return Err(CallError::InvalidStatus(refusal.code));
        }
        let state = self.state();
        match &mut self.phase {
            Phase::Incoming(i) if !self.shared.ended => {
                i.reject(&mut self.shared, ctx, refusal);
                Ok(())
            }
            _ => Err(CallError::InvalidState {
                action: "reject",
                state,
            }),
        }
    }

    /// Ends the call whatever its state: CANCEL, reject (603) or BYE.
    pub(crate) fn hang_up(&mut self, ctx: &mut Ctx<'_>) -> Result<(), CallError> {
        if self.shared.ended {
            return Err(CallError::InvalidState {
                action: "hang up",
                state: CallState::Ended,
            });
        }
        let shared = &mut self.shared;
        match &mut self.phase {
            Phase::Outgoing(o) => o.hang_up(shared, ctx),
            Phase::Incoming(i) => i.reject(shared, ctx, &Refusal::new(603)),
            Phase::Session(s) => s.hang_up(shared, ctx),
        }
        Ok(())
    }

    /// Whether an ended call still has its CANCEL or BYE to send or to see answered.
    pub(crate) fn finishing(&self) -> bool {
        match &self.phase {
            Phase::Outgoing(o) => o.finishing(),
            Phase::Incoming(_) => false,
            Phase::Session(s) => s.finishing(),
        }
    }

    /// The established session, or the error naming the action and state.
    fn session(&mut self, action: &'static str) -> Result<(&mut Shared, &mut Session), CallError> {
        let state = self.state();
        match &mut self.phase {
            Phase::Session(s) if !self.shared.ended => Ok((&mut self.shared, s)),
            _ => Err(CallError::InvalidState { action, state }),
        }
    }

    /// Sends a re-INVITE with a new offer (hold, resume, media change).
    pub(crate) fn reinvite(&mut self, ctx: &mut Ctx<'_>, body: Body) -> Result<(), CallError> {
        let (shared, session) = self.session("re-INVITE")?;
        session.reinvite(shared, ctx, body)
    }

    /// Accepts the peer's re-INVITE with our answer.
    pub(crate) fn answer_reoffer(
        &mut self,
        ctx: &mut Ctx<'_>,
        body: Option<Body>,
    ) -> Result<(), CallError> {
        let (shared, session) = self.session("answer the re-offer of")?;
        session.answer_reoffer(shared, ctx, body)
    }

    /// Refuses the peer's re-INVITE; the call goes on.
    pub(crate) fn reject_reoffer(
        &mut self,
        ctx: &mut Ctx<'_>,
        refusal: &Refusal,
    ) -> Result<(), CallError> {
        if !(300..=699).contains(&refusal.code) {
            return Err(CallError::InvalidStatus(refusal.code));
        }
        let (shared, session) = self.session("reject the re-offer of")?;
        session.reject_reoffer(shared, ctx, refusal)
    }

    /// Sends an INFO with `body`.
    pub(crate) fn send_info(&mut self, ctx: &mut Ctx<'_>, body: Body) -> Result<(), CallError> {
        let (shared, session) = self.session("send INFO in")?;
        session.send_info(shared, ctx, body);
        Ok(())
    }

    /// Asks the peer to call `target` (REFER).
    pub(crate) fn transfer(&mut self, ctx: &mut Ctx<'_>, target: &str) -> Result<(), CallError> {
        let (shared, session) = self.session("transfer")?;
        let referred_by = crate::message::NameAddr::parse(session.dialog.local_uri())
            .map(|a| a.uri.to_owned())
            .unwrap_or_default();
        session.transfer(shared, ctx, target, &referred_by)
    }

    /// Reports the progress of the transfer the peer asked for (NOTIFY).
    pub(crate) fn transfer_progress(
        &mut self,
        ctx: &mut Ctx<'_>,
        code: u16,
        reason: &str,
    ) -> Result<(), CallError> {
        let (shared, session) = self.session("report transfer progress in")?;
        session.transfer_progress(shared, ctx, code, reason)
    }

    /// We host a conference this call is in (`Some`: the roster as it stands now), or no
    /// longer do. Our Contact says `isfocus` from then on, and the peer's subscription to the
    /// roster (if any) hears of the change. An incoming call not answered yet says so in
    /// its 2xx; an outgoing one, whose INVITE is out already, in a refresh once answered.
    pub(crate) fn set_conference_info(&mut self, ctx: &mut Ctx<'_>, info: Option<ConferenceInfo>) {
        match &mut self.phase {
            Phase::Session(s) if !self.shared.ended => {
                s.set_conference_info(&mut self.shared, ctx, info)
            }
            _ => self.shared.focus = info,
        }
    }

    /// Work that follows any input to an established call (announcing a new Contact,
    /// subscribing to a focus's roster).
    pub(crate) fn settle(&mut self, ctx: &mut Ctx<'_>) {
        if let Phase::Session(s) = &mut self.phase {
            s.settle_rosters(&mut self.shared, ctx);
        }
    }

    /// When [`Call::handle_timeout`] wants to run.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Outgoing(o) => o.poll_timeout(),
            Phase::Incoming(i) => i.poll_timeout(),
            Phase::Session(s) => s.poll_timeout(),
        };
        [phase, self.shared.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the call's timers.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let shared = &mut self.shared;
        match &mut self.phase {
            Phase::Outgoing(o) => o.handle_timeout(shared, ctx),
            Phase::Incoming(i) => i.handle_timeout(shared, ctx),
            Phase::Session(s) => s.handle_timeout(shared, ctx),
        }
    }

    /// Whether the call has ended and lingered long enough to be forgotten.
    pub(crate) fn is_finished(&self, now: Instant) -> bool {
        self.shared.ended && self.shared.linger_until.is_none_or(|at| at <= now)
    }
}

/// `host[:port]` of a SIP URI, for a Via sent-by.
fn contact_host_port(uri: &str) -> Option<String> {
    let uri = rsip::Uri::try_from(uri).ok()?;
    Some(uri.host_with_port.to_string())
}
