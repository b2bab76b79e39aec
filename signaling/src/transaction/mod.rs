//! The RFC 3261 §17 transaction layer, sans-IO.
//!
//! [`TransactionLayer`] owns every client and server transaction of one endpoint. It never reads
//! the clock or touches a socket: the driver feeds it input and drains its output, in the manner
//! of `quinn-proto`:
//!
//! 1. **Input** — [`TransactionLayer::handle_message`] for every parsed message from the network,
//!    [`TransactionLayer::handle_timeout`] when the instant returned by
//!    [`TransactionLayer::poll_timeout`] has passed, and
//!    [`TransactionLayer::handle_transport_error`] when a send failed.
//! 2. **Commands** from the transaction user — [`TransactionLayer::send_request`] starts a client
//!    transaction, [`TransactionLayer::respond`] answers a server transaction,
//!    [`TransactionLayer::send_stateless`] sends what lives outside transactions (the ACK for a
//!    2xx, a 2xx retransmission).
//! 3. **Output** — drain [`TransactionLayer::poll_transmit`] (bytes for the socket) and
//!    [`TransactionLayer::poll_event`] (what the transaction user must know), then arm a timer
//!    for [`TransactionLayer::poll_timeout`].
//!
//! ```text
//!   send_request / respond ──►┌──────────────────────┐──► poll_transmit  (bytes + target)
//!   handle_message ──────────►│  client INVITE       │──► poll_event     (TransactionEvent)
//!   handle_timeout ──────────►│  client non-INVITE   │──► poll_timeout   (next wake-up)
//!   handle_transport_error ──►│  server INVITE / non │
//!                             └──────────────────────┘
//! ```
//!
//! Timer values come from [`TimerConfig`]; on reliable transports nothing is retransmitted and
//! Timers D, I, J and K are zero, so a completed transaction ends at once.
//!
//! Decisions worth knowing:
//! - A 2xx ends both INVITE transactions (RFC 3261 as written, not the RFC 6026 Accepted
//!   state): a retransmitted 2xx then surfaces as [`TransactionEvent::StrayResponse`], the ACK
//!   for it as [`TransactionEvent::StrayRequest`], and the dialog layer owns both, sending
//!   through [`TransactionLayer::send_stateless`].
//! - Timer D is 32 s on unreliable transports regardless of T1 (the RFC's lower bound).
//! - The server INVITE transaction answers 100 Trying itself if the user has not responded
//!   within 200 ms (§17.2.1).
//! - Server transactions add `received` and fill a bare `rport` in the top Via of the request
//!   they hand to the user (§18.2.1, RFC 3581), and send UDP responses to received:rport,
//!   else received or sent-by with sent-by's port; on reliable transports to the source.
//! - Each message is encoded once; retransmissions resend the same bytes.
//! - All header access lives in one private module (`fields`), so the parser beneath can change.

mod client_invite;
mod client_non_invite;
mod fields;
mod key;
mod layer;
mod server_invite;
mod server_non_invite;
mod timer;

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::transport::Target;

pub use key::{Side, TransactionKey};
pub use layer::TransactionLayer;

/// The magic cookie every RFC 3261 branch starts with (§8.1.1.7).
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// The base timer values of RFC 3261 §17 (Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; Timers A, E and G start here, B, F, H and J are 64 × T1.
    pub t1: Duration,
    /// The cap for non-INVITE request and INVITE response retransmission intervals.
    pub t2: Duration,
    /// How long a message may linger in the network; Timers I and K.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64 × T1: Timers B, F, H and J.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Where a transaction is in its state machine (the union of Figures 5–8 of RFC 3261).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// Client INVITE, request sent, no response yet.
    Calling,
    /// Non-INVITE (client or server), no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response was received (client) or sent (server); absorbing retransmissions.
    Completed,
    /// Server INVITE: the ACK for the non-2xx final response arrived.
    Confirmed,
    /// Ended; the key is about to be removed.
    Terminated,
}

/// Bytes ready for the socket, and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transport and address to send to.
    pub target: Target,
    /// One encoded SIP message.
    pub bytes: Bytes,
}

/// What the transaction layer tells its user.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactionEvent {
    /// A new server transaction; the user must answer it with [`TransactionLayer::respond`].
    Request {
        key: TransactionKey,
        request: rsip::Request,
        source: Target,
    },
    /// A provisional or final response for a client transaction.
    Response {
        key: TransactionKey,
        response: rsip::Response,
    },
    /// Timer B or F fired on a client transaction, or Timer H on a server INVITE transaction
    /// (the ACK never came).
    Timeout { key: TransactionKey },
    /// The driver reported that a message of this transaction could not be sent.
    TransportError { key: TransactionKey },
    /// The transaction is gone; its key is no longer valid.
    Terminated { key: TransactionKey },
    /// A request that belongs to no transaction: an ACK for a 2xx, or an ACK that matches
    /// nothing. It is for the dialog layer.
    StrayRequest {
        request: rsip::Request,
        source: Target,
    },
    /// A response that matches no client transaction, such as a retransmitted 2xx to an INVITE
    /// whose transaction has ended. It is for the dialog layer.
    StrayResponse {
        response: rsip::Response,
        source: Target,
    },
}

/// Why the transaction layer refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The message lacks a header the transaction layer needs, or it does not parse.
    #[error("the {header} header is missing or malformed")]
    BadHeader { header: &'static str },
    /// The top Via has no branch, or one without the RFC 3261 magic cookie.
    #[error("the top Via branch {branch:?} does not start with z9hG4bK")]
    BadBranch { branch: Option<String> },
    /// ACK is never sent in a client transaction of its own; use `send_stateless`.
    #[error("{method} cannot start a client transaction")]
    InvalidMethod { method: rsip::Method },
    /// A transaction with this key already exists.
    #[error("a transaction with key {key} already exists")]
    Duplicate { key: TransactionKey },
    /// No transaction has this key (it may have terminated).
    #[error("no transaction with key {key}")]
    UnknownTransaction { key: TransactionKey },
    /// The transaction is not in a state that accepts this response.
    #[error("transaction {key} cannot send a {status} response now")]
    InvalidState { key: TransactionKey, status: u16 },
    /// The key names a client transaction where a server transaction is needed.
    #[error("transaction {key} is not a server transaction")]
    NotServer { key: TransactionKey },
}

/// What the state machines produce while handling one input; the layer drains it.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub transmits: std::collections::VecDeque<Transmit>,
    pub events: std::collections::VecDeque<TransactionEvent>,
}

impl Output {
    pub(crate) fn transmit(&mut self, target: Target, bytes: &Bytes) {
        self.transmits.push_back(Transmit {
            target,
            bytes: bytes.clone(),
        });
    }

    pub(crate) fn event(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }
}

/// Where the responses to `request`, received from `source`, go (RFC 3261 §18.2.2, RFC 3581):
/// the same rule the server transactions follow, for a transaction user that sends responses
/// outside a transaction (the retransmissions of a 2xx to an INVITE). `None` when the top Via
/// does not parse.
pub fn response_target(request: &rsip::Request, source: Target) -> Option<Target> {
    fields::top_via(&request.headers)
        .ok()
        .map(|via| via.response_target(source))
}

/// A fresh RFC 3261 branch: the magic cookie followed by 16 random alphanumerics.
pub fn new_branch<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut branch = String::with_capacity(BRANCH_MAGIC_COOKIE.len() + 16);
    branch.push_str(BRANCH_MAGIC_COOKIE);
    branch.extend(
        rng.sample_iter(rand::distributions::Alphanumeric)
            .take(16)
            .map(char::from),
    );
    branch
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn branches_carry_the_cookie_and_differ() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let a = new_branch(&mut rng);
        let b = new_branch(&mut rng);
        assert!(a.starts_with(BRANCH_MAGIC_COOKIE));
        assert_eq!(a.len(), 23);
        assert_ne!(a, b);
    }

    #[test]
    fn default_timers_follow_rfc_3261() {
        let config = TimerConfig::default();
        assert_eq!(config.t1, Duration::from_millis(500));
        assert_eq!(config.timeout(), Duration::from_secs(32));
    }
}
