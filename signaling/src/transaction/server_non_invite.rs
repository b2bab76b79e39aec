//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

use std::time::Instant;

use bytes::Bytes;

use super::timer::{Timer, TimerTable};
use super::{Output, TimerConfig, TransactionError, TransactionKey};
use crate::transport::Target;

/// The states of Figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE request we received.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    key: TransactionKey,
    state: State,
    /// Where responses go (§18.2.2).
    target: Target,
    config: TimerConfig,
    last_response: Option<Bytes>,
    timers: TimerTable,
}

impl ServerNonInvite {
    pub fn new(key: TransactionKey, target: Target, config: TimerConfig) -> Self {
        ServerNonInvite {
            key,
            state: State::Trying,
            target,
            config,
            last_response: None,
            timers: TimerTable::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// A retransmission of the request: resend the last response, if any.
    pub fn on_request(&mut self, out: &mut Output) {
        match (&self.last_response, self.state) {
            (Some(bytes), State::Proceeding | State::Completed) => {
                out.transmit(self.target, bytes);
                tracing::trace!(key = %self.key, "request retransmission answered");
            }
            _ => tracing::trace!(key = %self.key, "request retransmission absorbed"),
        }
    }

    /// The user's response.
    pub fn respond(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Bytes,
        out: &mut Output,
    ) -> Result<(), TransactionError> {
        match self.state {
            State::Trying | State::Proceeding => {
                out.transmit(self.target, &bytes);
                self.last_response = Some(bytes);
                if status < 200 {
                    self.state = State::Proceeding;
                } else if self.target.transport.is_reliable() {
                    self.terminate();
                } else {
                    self.state = State::Completed;
                    self.timers.set(Timer::J, now + self.config.timeout());
                }
                Ok(())
            }
            State::Completed | State::Terminated => Err(TransactionError::InvalidState {
                key: self.key.clone(),
                status,
            }),
        }
    }

    pub fn on_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_expired(now) {
            if timer == Timer::J && self.state == State::Completed {
                self.terminate();
                return;
            }
        }
    }

    pub fn on_transport_error(&mut self, out: &mut Output) {
        if self.is_terminated() {
            return;
        }
        out.event(super::TransactionEvent::TransportError {
            key: self.key.clone(),
        });
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timers.clear();
    }
}
