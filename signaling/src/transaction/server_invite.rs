//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::Request;

use super::timer::{Timer, TimerTable};
use super::{fields, Output, TimerConfig, TransactionError, TransactionEvent, TransactionKey};
use crate::transport::Target;

/// How long the user may take before the transaction answers 100 Trying itself (§17.2.1).
pub(crate) const TRYING_DELAY: Duration = Duration::from_millis(200);

/// The states of Figure 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Proceeding,
    Completed,
    Confirmed,
    Terminated,
}

/// An INVITE we received.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    key: TransactionKey,
    state: State,
    target: Target,
    config: TimerConfig,
    /// Kept until the user answers, to build the automatic 100 Trying.
    request: Option<Request>,
    last_response: Option<Bytes>,
    /// The current Timer G interval.
    interval: Duration,
    timers: TimerTable,
}

impl ServerInvite {
    /// Creates the transaction in Proceeding and arms the 100 Trying timer.
    pub fn new(
        key: TransactionKey,
        now: Instant,
        request: Request,
        target: Target,
        config: TimerConfig,
    ) -> Self {
        let mut timers = TimerTable::default();
        timers.set(Timer::Trying, now + TRYING_DELAY);
        ServerInvite {
            key,
            state: State::Proceeding,
            target,
            config,
            request: Some(request),
            last_response: None,
            interval: config.t1,
            timers,
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

    /// A retransmitted INVITE: resend the last response (§17.2.1).
    pub fn on_invite(&mut self, out: &mut Output) {
        match (&self.last_response, self.state) {
            (Some(bytes), State::Proceeding | State::Completed) => {
                out.transmit(self.target, bytes);
                tracing::trace!(key = %self.key, "INVITE retransmission answered");
            }
            _ => tracing::trace!(key = %self.key, "INVITE retransmission absorbed"),
        }
    }

    /// An ACK for our non-2xx final response.
    pub fn on_ack(&mut self, now: Instant) {
        if self.state != State::Completed {
            tracing::trace!(key = %self.key, "ACK absorbed");
            return;
        }
        tracing::debug!(key = %self.key, "ACK received, confirmed");
        self.timers.stop(Timer::G);
        self.timers.stop(Timer::H);
        if self.target.transport.is_reliable() {
            self.terminate();
        } else {
            self.state = State::Confirmed;
            self.timers.set(Timer::I, now + self.config.t4);
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
        if self.state != State::Proceeding {
            return Err(TransactionError::InvalidState {
                key: self.key.clone(),
                status,
            });
        }
        self.timers.stop(Timer::Trying);
        self.request = None;
        out.transmit(self.target, &bytes);
        if status < 200 {
            self.last_response = Some(bytes);
        } else if status < 300 {
            // Retransmitting the 2xx is the user's job (§17.2.1).
            tracing::debug!(key = %self.key, status, "2xx ends the INVITE server transaction");
            self.terminate();
        } else {
            tracing::debug!(key = %self.key, status, "non-2xx final response, waiting for ACK");
            self.last_response = Some(bytes);
            self.state = State::Completed;
            if !self.target.transport.is_reliable() {
                self.timers.set(Timer::G, now + self.interval);
            }
            self.timers.set(Timer::H, now + self.config.timeout());
        }
        Ok(())
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Output) {
        while let Some(timer) = self.timers.take_expired(now) {
            match (timer, self.state) {
                (Timer::Trying, State::Proceeding) => {
                    if let Some(request) = self.request.take() {
                        let bytes = fields::encode_response(&fields::build_trying(&request));
                        out.transmit(self.target, &bytes);
                        self.last_response = Some(bytes);
                        tracing::debug!(key = %self.key, "sent 100 Trying on the user's behalf");
                    }
                }
                (Timer::G, State::Completed) => {
                    if let Some(bytes) = &self.last_response {
                        out.transmit(self.target, bytes);
                    }
                    self.interval = self.interval.saturating_mul(2).min(self.config.t2);
                    self.timers.set(Timer::G, now + self.interval);
                    tracing::trace!(key = %self.key, "Timer G: final response retransmitted");
                }
                (Timer::H, State::Completed) => {
                    tracing::debug!(key = %self.key, "Timer H: no ACK came");
                    out.event(TransactionEvent::Timeout {
                        key: self.key.clone(),
                    });
                    self.terminate();
                }
                (Timer::I, State::Confirmed) => self.terminate(),
                _ => {}
            }
            if self.is_terminated() {
                return;
            }
        }
    }

    pub fn on_transport_error(&mut self, out: &mut Output) {
        if self.is_terminated() {
            return;
        }
        out.event(TransactionEvent::TransportError {
            key: self.key.clone(),
        });
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timers.clear();
    }
}
