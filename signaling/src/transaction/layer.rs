//! The transaction layer: owns the transactions, routes messages and timers to them.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rsip::{Method, Request, Response, SipMessage};

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::fields;
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use super::{
    Output, TimerConfig, TransactionError, TransactionEvent, TransactionKey, TransactionState,
    Transmit, BRANCH_MAGIC_COOKIE,
};
use crate::transport::Target;

/// One of the four state machines (named after the RFC 3261 figures, hence the shared suffix).
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

impl Machine {
    fn is_terminated(&self) -> bool {
        match self {
            Machine::ClientInvite(m) => m.is_terminated(),
            Machine::ClientNonInvite(m) => m.is_terminated(),
            Machine::ServerInvite(m) => m.is_terminated(),
            Machine::ServerNonInvite(m) => m.is_terminated(),
        }
    }

    fn state(&self) -> TransactionState {
        use super::{client_invite as ci, client_non_invite as cn};
        use super::{server_invite as si, server_non_invite as sn};
        match self {
            Machine::ClientInvite(m) => match m.state() {
                ci::State::Calling => TransactionState::Calling,
                ci::State::Proceeding => TransactionState::Proceeding,
                ci::State::Completed => TransactionState::Completed,
                ci::State::Terminated => TransactionState::Terminated,
            },
            Machine::ClientNonInvite(m) => match m.state() {
                cn::State::Trying => TransactionState::Trying,
                cn::State::Proceeding => TransactionState::Proceeding,
                cn::State::Completed => TransactionState::Completed,
                cn::State::Terminated => TransactionState::Terminated,
            },
            Machine::ServerInvite(m) => match m.state() {
                si::State::Proceeding => TransactionState::Proceeding,
                si::State::Completed => TransactionState::Completed,
                si::State::Confirmed => TransactionState::Confirmed,
                si::State::Terminated => TransactionState::Terminated,
            },
            Machine::ServerNonInvite(m) => match m.state() {
                sn::State::Trying => TransactionState::Trying,
                sn::State::Proceeding => TransactionState::Proceeding,
                sn::State::Completed => TransactionState::Completed,
                sn::State::Terminated => TransactionState::Terminated,
            },
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Machine::ClientInvite(m) => m.next_deadline(),
            Machine::ClientNonInvite(m) => m.next_deadline(),
            Machine::ServerInvite(m) => m.next_deadline(),
            Machine::ServerNonInvite(m) => m.next_deadline(),
        }
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Output) {
        match self {
            Machine::ClientInvite(m) => m.on_timeout(now, out),
            Machine::ClientNonInvite(m) => m.on_timeout(now, out),
            Machine::ServerInvite(m) => m.on_timeout(now, out),
            Machine::ServerNonInvite(m) => m.on_timeout(now),
        }
    }

    fn on_transport_error(&mut self, out: &mut Output) {
        match self {
            Machine::ClientInvite(m) => m.on_transport_error(out),
            Machine::ClientNonInvite(m) => m.on_transport_error(out),
            Machine::ServerInvite(m) => m.on_transport_error(out),
            Machine::ServerNonInvite(m) => m.on_transport_error(out),
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Tie-breaker in the timer map.
    id: u64,
    /// The deadline this transaction has in the timer map.
    scheduled: Option<Instant>,
    /// For an RFC 2543 INVITE server transaction: the request, to match its ACK by the To tag
    /// of our final response.
    legacy_invite: Option<Request>,
    /// The ACK alias registered for this transaction, removed with it.
    legacy_ack: Option<String>,
    machine: Machine,
}

/// All transactions of one endpoint. See the [module docs](super) for the run loop.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    transactions: HashMap<TransactionKey, Entry>,
    /// Each live transaction's earliest deadline, so `poll_timeout` is one lookup.
    timers: BTreeMap<(Instant, u64), TransactionKey>,
    /// RFC 2543 ACK matching fields → INVITE server transaction.
    legacy_acks: HashMap<String, TransactionKey>,
    out: Output,
    next_id: u64,
}

impl TransactionLayer {
    /// A layer with the given timer values. T1 is raised to at least 1 ms and T2 to at least T1,
    /// so that retransmission intervals always advance.
    pub fn new(config: TimerConfig) -> Self {
        let t1 = config.t1.max(Duration::from_millis(1));
        let config = TimerConfig {
            t1,
            t2: config.t2.max(t1),
            t4: config.t4,
        };
        TransactionLayer {
            config,
            transactions: HashMap::new(),
            timers: BTreeMap::new(),
            legacy_acks: HashMap::new(),
            out: Output::default(),
            next_id: 0,
        }
    }

    /// The timer values in use.
    pub fn config(&self) -> TimerConfig {
        self.config
    }

    /// The number of live transactions.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Whether a transaction with this key is live.
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.transactions.contains_key(key)
    }

    /// The state of a live transaction.
    pub fn state(&self, key: &TransactionKey) -> Option<TransactionState> {
        self.transactions
            .get(key)
            .map(|entry| entry.machine.state())
    }

    /// Starts a client transaction: sends the request now and, on unreliable transports,
    /// schedules its retransmissions. The request must carry a top Via whose branch starts
    /// with `z9hG4bK` (see [`super::new_branch`]); ACK is refused (see
    /// [`TransactionLayer::send_stateless`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        target: Target,
    ) -> Result<TransactionKey, TransactionError> {
        let method = request.method;
        if method == Method::Ack {
            return Err(TransactionError::InvalidMethod { method });
        }
        let via = fields::top_via(&request.headers)?;
        let branch = match via.branch {
            Some(branch) if branch.starts_with(BRANCH_MAGIC_COOKIE) => branch,
            other => return Err(TransactionError::BadBranch { branch: other }),
        };
        let key = TransactionKey::client(&branch, method);
        if self.transactions.contains_key(&key) {
            return Err(TransactionError::Duplicate { key });
        }
        let _span = tracing::debug_span!("transaction", key = %key).entered();
        tracing::debug!(%target, "client transaction started");
        let bytes = fields::encode_request(&request);
        let machine = if method == Method::Invite {
            Machine::ClientInvite(ClientInvite::start(
                key.clone(),
                now,
                request,
                bytes,
                target,
                self.config,
                &mut self.out,
            ))
        } else {
            Machine::ClientNonInvite(ClientNonInvite::start(
                key.clone(),
                now,
                bytes,
                target,
                self.config,
                &mut self.out,
            ))
        };
        self.insert(key.clone(), machine, None);
        Ok(key)
    }

    /// Sends the user's response in a server transaction. Responses are encoded once; the
    /// transaction resends those bytes when the request is retransmitted.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        if key.side() != super::Side::Server {
            return Err(TransactionError::NotServer { key: key.clone() });
        }
        let entry = self
            .transactions
            .get_mut(key)
            .ok_or_else(|| TransactionError::UnknownTransaction { key: key.clone() })?;
        let _span = tracing::debug_span!("transaction", key = %key).entered();
        let status = fields::status(&response);
        let bytes = fields::encode_response(&response);
        match &mut entry.machine {
            Machine::ServerInvite(machine) => {
                machine.respond(now, status, bytes, &mut self.out)?;
                if status >= 300 {
                    if let Some(request) = entry.legacy_invite.take() {
                        let to_tag = fields::to_tag(&response.headers).unwrap_or_default();
                        if let Ok(alias) = fields::legacy_fields(&request, Some(&to_tag)) {
                            self.legacy_acks.insert(alias.clone(), key.clone());
                            entry.legacy_ack = Some(alias);
                        }
                    }
                }
            }
            Machine::ServerNonInvite(machine) => {
                machine.respond(now, status, bytes, &mut self.out)?
            }
            Machine::ClientInvite(_) | Machine::ClientNonInvite(_) => {
                return Err(TransactionError::NotServer { key: key.clone() })
            }
        }
        self.settle(key);
        Ok(())
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, a 2xx retransmission, a
    /// stateless error response.
    pub fn send_stateless(&mut self, target: Target, message: &SipMessage) {
        let bytes = match message {
            SipMessage::Request(request) => fields::encode_request(request),
            SipMessage::Response(response) => fields::encode_response(response),
        };
        self.out.transmits.push_back(Transmit { target, bytes });
    }

    /// Routes a message from the network to its transaction, or reports it as a new request
    /// or a stray. Messages without a usable Via or CSeq are dropped (and logged).
    pub fn handle_message(&mut self, now: Instant, message: SipMessage, source: Target) {
        match message {
            SipMessage::Response(response) => self.handle_response(now, response, source),
            SipMessage::Request(request) => self.handle_request(now, request, source),
        }
    }

    fn handle_response(&mut self, now: Instant, response: Response, source: Target) {
        let matched = fields::top_via(&response.headers).and_then(|via| {
            let (_, method) = fields::cseq(&response.headers)?;
            Ok(via
                .branch
                .filter(|_| method != Method::Ack)
                .map(|branch| TransactionKey::client(&branch, method)))
        });
        let key = match matched {
            Ok(Some(key)) if self.transactions.contains_key(&key) => key,
            Ok(_) => {
                tracing::debug!(%source, status = fields::status(&response), "stray response");
                self.out
                    .event(TransactionEvent::StrayResponse { response, source });
                return;
            }
            Err(error) => {
                tracing::warn!(%source, %error, "response dropped");
                return;
            }
        };
        let _span = tracing::debug_span!("transaction", key = %key).entered();
        match self
            .transactions
            .get_mut(&key)
            .map(|entry| &mut entry.machine)
        {
            Some(Machine::ClientInvite(machine)) => {
                machine.on_response(now, response, &mut self.out)
            }
            Some(Machine::ClientNonInvite(machine)) => {
                machine.on_response(now, response, &mut self.out)
            }
            _ => {}
        }
        self.settle(&key);
    }

    fn handle_request(&mut self, now: Instant, mut request: Request, source: Target) {
        let via = match fields::top_via(&request.headers)
            .and_then(|via| fields::cseq(&request.headers).map(|_| via))
        {
            Ok(via) => via,
            Err(error) => {
                tracing::warn!(%source, %error, "request dropped");
                return;
            }
        };
        let method = request.method;
        let key = match via.branch.as_deref() {
            Some(branch) if branch.starts_with(BRANCH_MAGIC_COOKIE) => {
                TransactionKey::server(branch, &via.sent_by, method)
            }
            _ => match fields::legacy_fields(&request, None) {
                Ok(fields) => {
                    let direct = TransactionKey::legacy(fields.clone(), method);
                    match self.legacy_acks.get(&fields) {
                        Some(key) if method == Method::Ack => key.clone(),
                        _ => direct,
                    }
                }
                Err(error) => {
                    tracing::warn!(%source, %error, "request dropped");
                    return;
                }
            },
        };
        if let Some(entry) = self.transactions.get_mut(&key) {
            let _span = tracing::debug_span!("transaction", key = %key).entered();
            match &mut entry.machine {
                Machine::ServerInvite(machine) if method == Method::Ack => machine.on_ack(now),
                Machine::ServerInvite(machine) => machine.on_invite(&mut self.out),
                Machine::ServerNonInvite(machine) => machine.on_request(&mut self.out),
                _ => {}
            }
            self.settle(&key);
            return;
        }
        if method == Method::Ack {
            tracing::debug!(%source, "ACK outside a transaction");
            self.out
                .event(TransactionEvent::StrayRequest { request, source });
            return;
        }
        let _span = tracing::debug_span!("transaction", key = %key).entered();
        tracing::debug!(%source, "server transaction started");
        let target = via.response_target(source);
        fields::stamp_received(&mut request, &via, source);
        let (machine, legacy_invite) = if method == Method::Invite {
            let legacy = key.branch().is_none().then(|| request.clone());
            let machine = ServerInvite::new(key.clone(), now, request.clone(), target, self.config);
            (Machine::ServerInvite(machine), legacy)
        } else {
            let machine = ServerNonInvite::new(key.clone(), target, self.config);
            (Machine::ServerNonInvite(machine), None)
        };
        self.out.event(TransactionEvent::Request {
            key: key.clone(),
            request,
            source,
        });
        self.insert(key, machine, legacy_invite);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((&(deadline, id), _)) = self.timers.first_key_value() {
            if deadline > now {
                break;
            }
            let Some(key) = self.timers.remove(&(deadline, id)) else {
                break;
            };
            let Some(entry) = self.transactions.get_mut(&key) else {
                continue;
            };
            entry.scheduled = None;
            let _span = tracing::debug_span!("transaction", key = %key).entered();
            entry.machine.on_timeout(now, &mut self.out);
            self.settle(&key);
        }
    }

    /// The driver could not send a message of this transaction: it ends with
    /// [`TransactionEvent::TransportError`].
    pub fn handle_transport_error(&mut self, _now: Instant, key: &TransactionKey) {
        if let Some(entry) = self.transactions.get_mut(key) {
            let _span = tracing::debug_span!("transaction", key = %key).entered();
            tracing::debug!("transport error");
            entry.machine.on_transport_error(&mut self.out);
            self.settle(key);
        }
    }

    /// Ends a transaction at once, without sending anything: for a user that stops waiting, such
    /// as an INVITE client whose CANCEL brought no final response within 64 × T1 (RFC 3261
    /// §9.1). Reports [`TransactionEvent::Terminated`]; unknown keys are ignored.
    pub fn abandon(&mut self, key: &TransactionKey) {
        let Some(entry) = self.transactions.remove(key) else {
            return;
        };
        if let Some(deadline) = entry.scheduled {
            self.timers.remove(&(deadline, entry.id));
        }
        if let Some(alias) = entry.legacy_ack {
            self.legacy_acks.remove(&alias);
        }
        tracing::debug!(key = %key, "transaction abandoned");
        self.out
            .event(TransactionEvent::Terminated { key: key.clone() });
    }

    /// The next datagram or stream chunk to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.out.events.pop_front()
    }

    /// The earliest instant at which [`TransactionLayer::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    fn insert(&mut self, key: TransactionKey, machine: Machine, legacy: Option<Request>) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.transactions.insert(
            key.clone(),
            Entry {
                id,
                scheduled: None,
                legacy_invite: legacy,
                legacy_ack: None,
                machine,
            },
        );
        self.settle(&key);
    }

    /// Brings the timer map in line with the transaction, or removes it if it has ended.
    fn settle(&mut self, key: &TransactionKey) {
        let Some(entry) = self.transactions.get_mut(key) else {
            return;
        };
        if entry.machine.is_terminated() {
            if let Some(entry) = self.transactions.remove(key) {
                if let Some(deadline) = entry.scheduled {
                    self.timers.remove(&(deadline, entry.id));
                }
                if let Some(alias) = entry.legacy_ack {
                    self.legacy_acks.remove(&alias);
                }
            }
            tracing::debug!(key = %key, "transaction terminated");
            self.out
                .event(TransactionEvent::Terminated { key: key.clone() });
            return;
        }
        let next = entry.machine.next_deadline();
        if next != entry.scheduled {
            if let Some(old) = entry.scheduled {
                self.timers.remove(&(old, entry.id));
            }
            if let Some(new) = next {
                self.timers.insert((new, entry.id), key.clone());
            }
            entry.scheduled = next;
        }
    }
}
