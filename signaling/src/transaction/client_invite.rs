//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::{Request, Response};

use super::timer::{Timer, TimerTable};
use super::{fields, Output, TimerConfig, TransactionEvent, TransactionKey};
use crate::transport::Target;

/// Timer D for unreliable transports: "at least 32 seconds" (§17.1.1.2).
const TIMER_D: Duration = Duration::from_secs(32);

/// The states of Figure 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// An INVITE we sent.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    key: TransactionKey,
    state: State,
    target: Target,
    /// Kept to build the ACK for a non-2xx final response.
    request: Request,
    bytes: Bytes,
    /// The ACK, once a non-2xx final response has arrived.
    ack: Option<Bytes>,
    /// The current Timer A interval.
    interval: Duration,
    timers: TimerTable,
}

impl ClientInvite {
    /// Sends the INVITE and arms Timers A (unreliable only) and B.
    pub fn start(
        key: TransactionKey,
        now: Instant,
        request: Request,
        bytes: Bytes,
        target: Target,
        config: TimerConfig,
        out: &mut Output,
    ) -> Self {
        let mut timers = TimerTable::default();
        if !target.transport.is_reliable() {
            timers.set(Timer::A, now + config.t1);
        }
        timers.set(Timer::B, now + config.timeout());
        out.transmit(target, &bytes);
        ClientInvite {
            key,
            state: State::Calling,
            target,
            request,
            bytes,
            ack: None,
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

    pub fn on_response(&mut self, now: Instant, response: Response, out: &mut Output) {
        let status = fields::status(&response);
        match self.state {
            State::Calling | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                out.event(TransactionEvent::Response {
                    key: self.key.clone(),
                    response,
                });
            }
            State::Calling | State::Proceeding if status < 300 => {
                // The 2xx and its ACK belong to the dialog layer (§17.1.1.2).
                tracing::debug!(key = %self.key, status, "2xx ends the INVITE transaction");
                out.event(TransactionEvent::Response {
                    key: self.key.clone(),
                    response,
                });
                self.terminate();
            }
            State::Calling | State::Proceeding => {
                tracing::debug!(key = %self.key, status, "non-2xx final response, sending ACK");
                let ack = fields::encode_request(&fields::build_ack(&self.request, &response));
                out.transmit(self.target, &ack);
                out.event(TransactionEvent::Response {
                    key: self.key.clone(),
                    response,
                });
                self.timers.clear();
                if self.target.transport.is_reliable() {
                    self.terminate();
                } else {
                    self.state = State::Completed;
                    self.timers.set(Timer::D, now + TIMER_D);
                    self.ack = Some(ack);
                }
            }
            State::Completed => {
                if status >= 300 {
                    if let Some(ack) = &self.ack {
                        out.transmit(self.target, ack);
                    }
                    tracing::trace!(key = %self.key, status, "final response retransmitted, ACK resent");
                }
            }
            State::Terminated => {}
        }
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Output) {
        while let Some(timer) = self.timers.take_expired(now) {
            match (timer, self.state) {
                (Timer::A, State::Calling) => {
                    out.transmit(self.target, &self.bytes);
                    // INVITE retransmissions double without the T2 cap (§17.1.1.2).
                    self.interval = self.interval.saturating_mul(2);
                    self.timers.set(Timer::A, now + self.interval);
                    tracing::trace!(key = %self.key, "Timer A: INVITE retransmitted");
                }
                (Timer::B, State::Calling) => {
                    tracing::debug!(key = %self.key, "Timer B: INVITE timed out");
                    out.event(TransactionEvent::Timeout {
                        key: self.key.clone(),
                    });
                    self.terminate();
                }
                (Timer::D, State::Completed) => self.terminate(),
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
