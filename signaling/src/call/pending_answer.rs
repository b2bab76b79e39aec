//! A 2xx of ours to an INVITE, retransmitted until its ACK arrives (RFC 3261 §13.3.1.4).
//!
//! The INVITE server transaction ends when it sends a 2xx, so the transaction user resends
//! the 2xx itself: after T1, then at doubling intervals capped at T2, on every transport (a
//! later hop may be unreliable). With no ACK after 64 × T1 the answer is given up on, and the
//! session is ended with a BYE.

use std::time::{Duration, Instant};

use rsip::Response;

use crate::transaction::{TimerConfig, TransactionLayer};
use crate::transport::Target;

/// Our 2xx waiting for its ACK.
#[derive(Debug, Clone)]
pub(super) struct PendingAnswer {
    /// The INVITE's CSeq number, which the ACK repeats.
    pub seq: u32,
    response: Response,
    target: Target,
    interval: Duration,
    t2: Duration,
    next: Instant,
    give_up: Instant,
    /// The INVITE had no body, so the 2xx carried an offer and the ACK brings the answer.
    pub answer_in_ack: bool,
}

/// What a timer of a pending answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retransmission {
    /// Nothing due, or the 2xx was sent again.
    Waiting,
    /// 64 × T1 passed without an ACK.
    GaveUp,
}

impl PendingAnswer {
    /// Starts waiting for the ACK of `response` (already sent once) at `now`.
    pub fn new(
        now: Instant,
        timers: TimerConfig,
        seq: u32,
        response: Response,
        target: Target,
        answer_in_ack: bool,
    ) -> PendingAnswer {
        PendingAnswer {
            seq,
            response,
            target,
            interval: timers.t1,
            t2: timers.t2,
            next: now + timers.t1,
            give_up: now + timers.timeout(),
            answer_in_ack,
        }
    }

    /// The 2xx.
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The next instant something is due.
    pub fn deadline(&self) -> Instant {
        self.next.min(self.give_up)
    }

    /// Retransmits the 2xx when due, or gives up.
    pub fn on_timeout(&mut self, now: Instant, layer: &mut TransactionLayer) -> Retransmission {
        if now >= self.give_up {
            return Retransmission::GaveUp;
        }
        if now >= self.next {
            tracing::trace!(seq = self.seq, interval = ?self.interval, "2xx retransmitted");
            layer.send_stateless(
                self.target,
                &rsip::SipMessage::Response(self.response.clone()),
            );
            self.interval = (self.interval * 2).min(self.t2);
            self.next = now + self.interval;
        }
        Retransmission::Waiting
    }
}
