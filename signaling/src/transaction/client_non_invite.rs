//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::Response;

use super::timer::{Timer, TimerTable};
use super::{fields, Output, TimerConfig, TransactionEvent, TransactionKey};
use crate::transport::Target;

/// The states of Figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE request we sent and the responses it gets.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    key: TransactionKey,
    state: State,
    target: Target,
    request: Bytes,
    config: TimerConfig,
    /// The current Timer E interval.
    interval: Duration,
    timers: TimerTable,
}

impl ClientNonInvite {
    /// Sends the request and arms Timers E (unreliable only) and F.
    pub fn start(
        key: TransactionKey,
        now: Instant,
        request: Bytes,
        target: Target,
        config: TimerConfig,
        out: &mut Output,
    ) -> Self {
        let mut timers = TimerTable::default();
        if !target.transport.is_reliable() {
            timers.set(Timer::E, now + config.t1);
        }
        timers.set(Timer::F, now + config.timeout());
        out.transmit(target, &request);
        ClientNonInvite {
            key,
            state: State::Trying,
            target,
            request,
            config,
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
            State::Trying | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                out.event(TransactionEvent::Response {
                    key: self.key.clone(),
                    response,
                });
            }
            State::Trying | State::Proceeding => {
                out.event(TransactionEvent::Response {
                    key: self.key.clone(),
                    response,
                });
                self.timers.clear();
                if self.target.transport.is_reliable() {
                    self.state = State::Terminated;
                } else {
                    self.state = State::Completed;
                    self.timers.set(Timer::K, now + self.config.t4);
                }
                tracing::debug!(key = %self.key, status, "final response");
            }
            State::Completed | State::Terminated => {
                tracing::trace!(key = %self.key, status, "response retransmission absorbed");
            }
        }
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Output) {
        while let Some(timer) = self.timers.take_expired(now) {
            match (timer, self.state) {
                (Timer::E, State::Trying | State::Proceeding) => {
                    out.transmit(self.target, &self.request);
                    // In Proceeding the interval is T2 (§17.1.2.2); in Trying it doubles to T2.
                    self.interval = if self.state == State::Proceeding {
                        self.config.t2
                    } else {
                        self.interval.saturating_mul(2).min(self.config.t2)
                    };
                    self.timers.set(Timer::E, now + self.interval);
                    tracing::trace!(key = %self.key, "Timer E: request retransmitted");
                }
                (Timer::F, State::Trying | State::Proceeding) => {
                    tracing::debug!(key = %self.key, "Timer F: transaction timed out");
                    out.event(TransactionEvent::Timeout {
                        key: self.key.clone(),
                    });
                    self.terminate();
                }
                (Timer::K, State::Completed) => self.terminate(),
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
