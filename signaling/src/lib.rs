//! Callisto's SIP core, sans-IO.
//!
//! Nothing in this crate opens a socket, reads the clock or spawns a task. Every entry point takes
//! its input (a datagram, a command, the current `now: Instant`) as arguments and hands back what to
//! send, what happened, and when it next wants to be woken. The driver in the `callisto` app owns
//! the sockets and the clock; tests drive the same code with a virtual clock.
//!
//! ```text
//!   bytes from a socket ──► message::parse ──► Endpoint::handle_message ──► transaction layer
//!                                                      │                         │
//!                                                      ▼                         ▼
//!                                   registrations, calls (dialogs)  ◄── TransactionEvent
//!                                                      │
//!   bytes to a socket   ◄── Endpoint::poll_transmit ◄──┘      Endpoint::poll_timeout → next wake-up
//! ```
//!
//! Modules:
//! - [`message`]: parsing (with the RFC 3261 forms `rsip` misses on its own) and building messages.
//! - [`auth`]: HTTP digest authentication for SIP (RFC 3261 §22, RFC 8760).
//! - [`transaction`]: the four RFC 3261 §17 transaction state machines and their timers.
//! - [`registration`]: the REGISTER client (refresh, digest, 423, backoff, unregister).
//! - [`sdp`]: session descriptions (RFC 4566) and audio offer/answer (RFC 3264, SDES-SRTP).
//! - [`dialog`]: RFC 3261 §12 dialog state: IDs, route sets, CSeq, in-dialog requests.
//! - [`call`]: INVITE sessions on dialogs: set-up, CANCEL, BYE, re-INVITE, INFO, 100rel,
//!   session timers, REFER; driven through [`endpoint::Endpoint`].
//! - [`conference_info`]: the conference event package's documents (RFC 4575 conference-info+xml).
//! - [`transport`]: the transport-facing vocabulary shared by all of the above.

pub mod auth;
pub mod call;
pub mod conference_info;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod registration;
pub mod sdp;
pub mod sim;
pub mod transaction;
pub mod transport;
