//! The SIP endpoint: one transaction layer and the user-agent logic above it, sans-IO.
//!
//! The endpoint is what a driver talks to. It follows quinn-proto's order:
//! - `handle_*`: input from the network ([`Endpoint::handle_datagram`]), from the clock
//!   ([`Endpoint::handle_timeout`]) and from the transport ([`Endpoint::handle_flow_failure`]);
//! - mutators: application commands — registrations ([`Endpoint::add_registration`],
//!   [`Endpoint::unregister`]) and calls ([`Endpoint::start_call`], [`Endpoint::ring`],
//!   [`Endpoint::answer`], [`Endpoint::reject`], [`Endpoint::hang_up`], [`Endpoint::reinvite`],
//!   [`Endpoint::answer_reoffer`], [`Endpoint::reject_reoffer`], [`Endpoint::send_info`]);
//! - `poll_*`: after any of the above, drain [`Endpoint::poll_transmit`] and
//!   [`Endpoint::poll_event`], then sleep until [`Endpoint::poll_timeout`].
//!
//! Requests are routed by what they are (`calls.rs`): an INVITE without a To tag starts an
//! incoming call; a request with a To tag goes to the call whose dialog it names, or gets 481;
//! a CANCEL goes to the call that owns the INVITE transaction it cancels, or gets 481; stray
//! ACKs and 2xx responses go to the call by Call-ID and tag. Outside dialogs, OPTIONS is
//! answered `200 OK` with what we support (RFC 3261 §11.2), BYE, INFO and other dialog-only
//! methods get 481, and methods the endpoint does not serve get `501 Not Implemented`. A
//! malformed request gets `400 Bad Request` naming the fault; a malformed response is dropped
//! and logged.

mod calls;
#[cfg(test)]
mod mutation_tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::call::{Call, CallEvent, CallId, IncomingCallConfig};
use crate::message;
use crate::registration::{
    FailureKind, Registration, RegistrationConfig, RegistrationEvent, RegistrationState,
};
use crate::transaction::{
    TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, Transmit,
};
use crate::transport::Target;

/// The methods the endpoint names in `Allow`.
pub const ALLOWED_METHODS: &str = crate::call::ALLOW;

/// Identifies a registration inside an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegistrationId(pub usize);

/// Something the application should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A registration changed.
    Registration {
        id: RegistrationId,
        event: RegistrationEvent,
    },
    /// A call changed.
    Call { id: CallId, event: CallEvent },
    /// A datagram or stream message could not be parsed.
    Malformed { source: Target, error: String },
}

struct RegistrationEntry {
    registration: Registration,
    /// Where the registrar may be reached, best first (RFC 3263 §4.3).
    targets: Vec<Target>,
    /// The target in use; failures move on to the next one.
    current: usize,
}

impl RegistrationEntry {
    fn target(&self) -> Option<Target> {
        self.targets.get(self.current).copied()
    }

    /// Moves to the next target after a failure (RFC 3263 §4.3). Returns `false`, and starts
    /// over at the best target for the next attempt, when every target has been tried.
    fn fail_over(&mut self) -> bool {
        if self.current + 1 < self.targets.len() {
            self.current += 1;
            true
        } else {
            self.current = 0;
            false
        }
    }
}

/// One SIP endpoint (a user agent with its transaction layer).
pub struct Endpoint {
    transactions: TransactionLayer,
    registrations: Vec<RegistrationEntry>,
    by_transaction: HashMap<TransactionKey, RegistrationId>,
    calls: BTreeMap<CallId, Call>,
    /// The transactions of calls (client and server), with the target of client ones.
    call_transactions: HashMap<TransactionKey, (CallId, Option<Target>)>,
    next_call: u64,
    incoming: IncomingCallConfig,
    rng: SmallRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<EndpointEvent>,
    user_agent: String,
}

impl Endpoint {
    /// An endpoint with the given SIP timers; tags, Call-IDs and branches come from a generator
    /// seeded with OS entropy.
    pub fn new(timers: TimerConfig) -> Self {
        Endpoint::with_seed(timers, rand::random())
    }

    /// An endpoint whose random choices (tags, Call-IDs, branches, glare delays) follow `seed`,
    /// so that tests replay exactly.
    pub fn with_seed(timers: TimerConfig, seed: u64) -> Self {
        Endpoint {
            transactions: TransactionLayer::new(timers),
            registrations: Vec::new(),
            by_transaction: HashMap::new(),
            calls: BTreeMap::new(),
            call_transactions: HashMap::new(),
            next_call: 1,
            incoming: IncomingCallConfig::default(),
            rng: SmallRng::seed_from_u64(seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            user_agent: format!("Callisto/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Starts a registration whose requests go to the first of `targets`; when a request to one
    /// target times out, its transport fails or it answers `503`, the next one is tried at once
    /// (RFC 3263 §4.3). Once every target has failed, the registration backs off and starts
    /// over with the first. `seed` feeds its random parts.
    pub fn add_registration(
        &mut self,
        now: Instant,
        config: RegistrationConfig,
        targets: Vec<Target>,
        seed: u64,
    ) -> RegistrationId {
        let id = RegistrationId(self.registrations.len());
        let mut registration = Registration::new(config, seed);
        registration.start(now);
        self.registrations.push(RegistrationEntry {
            registration,
            targets,
            current: 0,
        });
        self.pump(now);
        id
    }

    /// The registration with this id.
    pub fn registration(&self, id: RegistrationId) -> Option<&Registration> {
        self.registrations.get(id.0).map(|e| &e.registration)
    }

    /// Where the registration's requests go now.
    pub fn registration_target(&self, id: RegistrationId) -> Option<Target> {
        self.registrations.get(id.0).and_then(|e| e.target())
    }

    /// Removes the binding of one registration.
    pub fn unregister(&mut self, now: Instant, id: RegistrationId) {
        if let Some(entry) = self.registrations.get_mut(id.0) {
            entry.registration.unregister(now);
        }
        self.pump(now);
    }

    /// Removes every binding (on shutdown).
    pub fn unregister_all(&mut self, now: Instant) {
        for entry in &mut self.registrations {
            entry.registration.unregister(now);
        }
        self.pump(now);
    }

    /// Whether every registration has ended (unregistered or failed for good).
    pub fn all_registrations_ended(&self) -> bool {
        self.registrations.iter().all(|e| {
            matches!(
                e.registration.state(),
                RegistrationState::Unregistered | RegistrationState::Failed
            )
        })
    }

    /// A message arrived from `source` (a datagram, or one framed stream message).
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8], source: Target) {
        match message::parse(bytes) {
            Ok(msg) => self.transactions.handle_message(now, msg, source),
            Err(error) => {
                tracing::warn!(%source, %error, "malformed SIP message dropped");
                if let Some(reply) = message::bad_request(bytes, &error) {
                    self.transmits.push_back(Transmit {
                        target: source,
                        bytes: Bytes::from(reply),
                    });
                }
                self.events.push_back(EndpointEvent::Malformed {
                    source,
                    error: error.to_string(),
                });
            }
        }
        self.pump(now);
    }

    /// Sending to `target` failed, or its connection closed. Requests in flight to it fail with
    /// `kind` and `reason`; registrations whose binding was in place over it register again.
    pub fn handle_flow_failure(
        &mut self,
        now: Instant,
        target: Target,
        kind: FailureKind,
        reason: &str,
    ) {
        for entry in &mut self.registrations {
            if entry.target() == Some(target) {
                entry.registration.handle_flow_failure(now);
            }
        }
        let in_flight: Vec<(TransactionKey, RegistrationId)> = self
            .by_transaction
            .iter()
            .filter(|(_, id)| {
                self.registrations
                    .get(id.0)
                    .is_some_and(|e| e.target() == Some(target))
            })
            .map(|(key, id)| (key.clone(), *id))
            .collect();
        for (key, id) in in_flight {
            // Unlinked first: the transaction's own TransportError event then finds no owner.
            self.by_transaction.remove(&key);
            self.transactions.handle_transport_error(now, &key);
            self.registration_failed(now, id, kind, reason);
        }
        // Calls hear of it through their transactions' TransportError events.
        let call_keys: Vec<TransactionKey> = self
            .call_transactions
            .iter()
            .filter(|(_, (_, t))| *t == Some(target))
            .map(|(key, _)| key.clone())
            .collect();
        for key in call_keys {
            self.transactions.handle_transport_error(now, &key);
        }
        self.pump(now);
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        for entry in &mut self.registrations {
            entry.registration.handle_timeout(now);
        }
        self.calls_timeout(now);
        self.pump(now);
    }

    /// The next message to put on the wire.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits
            .pop_front()
            .or_else(|| self.transactions.poll_transmit())
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let registrations = self
            .registrations
            .iter()
            .filter_map(|e| e.registration.poll_timeout());
        let calls = self.calls.values().filter_map(Call::poll_timeout);
        registrations
            .chain(calls)
            .chain(self.transactions.poll_timeout())
            .min()
    }

    /// Moves work between the registrations and the transaction layer until both are quiet.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.transactions.poll_event() {
                progressed = true;
                self.on_transaction_event(now, event);
            }
            for index in 0..self.registrations.len() {
                let id = RegistrationId(index);
                let entry = &mut self.registrations[index];
                while let Some(event) = entry.registration.poll_event() {
                    self.events
                        .push_back(EndpointEvent::Registration { id, event });
                }
                let entry = &mut self.registrations[index];
                if let Some(request) = entry.registration.poll_request(now) {
                    progressed = true;
                    let Some(target) = entry.target() else {
                        entry.registration.handle_failure(
                            now,
                            FailureKind::Unreachable,
                            "the registrar has no address",
                        );
                        continue;
                    };
                    match self.transactions.send_request(now, request, target) {
                        Ok(key) => {
                            self.by_transaction.insert(key, id);
                        }
                        Err(error) => {
                            let reason = format!("cannot send REGISTER: {error}");
                            self.registration_failed(now, id, FailureKind::Unreachable, &reason);
                        }
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_transaction_event(&mut self, now: Instant, event: TransactionEvent) {
        match event {
            TransactionEvent::Response { key, response } => {
                if let Some(id) = self.by_transaction.get(&key).copied() {
                    if response.status_code.code() >= 200 {
                        self.by_transaction.remove(&key);
                    }
                    if let Some(entry) = self.registrations.get_mut(id.0) {
                        // RFC 3263 §4.3: a 503 sends the request to the next server.
                        if response.status_code.code() == 503 && entry.fail_over() {
                            entry.registration.resend(now);
                        } else {
                            entry.registration.handle_response(now, &response);
                        }
                    }
                } else {
                    self.call_response(now, &key, response);
                }
            }
            TransactionEvent::Timeout { key } => {
                if let Some(id) = self.by_transaction.remove(&key) {
                    self.registration_failed(
                        now,
                        id,
                        FailureKind::Unreachable,
                        "the server did not answer in time",
                    );
                } else {
                    self.call_failure(now, &key, crate::call::TxFailure::Timeout);
                }
            }
            TransactionEvent::TransportError { key } => {
                if let Some(id) = self.by_transaction.remove(&key) {
                    self.registration_failed(
                        now,
                        id,
                        FailureKind::Unreachable,
                        "the connection to the server failed",
                    );
                } else {
                    self.call_failure(now, &key, crate::call::TxFailure::Transport);
                }
            }
            TransactionEvent::Request {
                key,
                request,
                source,
            } => self.serve_request(now, key, request, source),
            TransactionEvent::Terminated { key } => {
                self.by_transaction.remove(&key);
                self.call_transactions.remove(&key);
            }
            TransactionEvent::StrayRequest { request, source } => {
                self.stray_request(now, &request, source)
            }
            TransactionEvent::StrayResponse { response, source } => {
                self.stray_response(now, &response, source)
            }
        }
    }

    /// The REGISTER in flight failed without a response: try the next target, or report the
    /// failure once every target has been tried. An unverifiable server (TLS) is final.
    fn registration_failed(
        &mut self,
        now: Instant,
        id: RegistrationId,
        kind: FailureKind,
        reason: &str,
    ) {
        let Some(entry) = self.registrations.get_mut(id.0) else {
            return;
        };
        let failed = entry.target();
        if !kind.is_final() && entry.fail_over() {
            if let (Some(failed), Some(next)) = (failed, entry.target()) {
                tracing::info!(%failed, %next, %reason, "trying the registrar's next address");
            }
            entry.registration.resend(now);
        } else {
            entry.registration.handle_failure(now, kind, reason);
        }
    }
}
