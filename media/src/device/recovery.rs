//! What a device stream does when its device goes away mid-call: the decisions, without the
//! device (sans-IO: time is an argument).
//!
//! A call never ends because of its sound device. When a stream reports that it is lost (the
//! device was unplugged, the sound server went away), the driver drops the stream and opens the
//! *default* device of the same direction at once. If that fails the call goes on silently
//! (capture gives silence, playback discards) and the driver tries again after 1, 2, 4 and 8 s,
//! then every 10 s, until a default device opens or the call ends. Xruns and reroutes are
//! counted, not acted on. Every change is reported once as a [`DeviceEvent`].
//!
//! Driver loop: feed [`DeviceRecovery::handle_trouble`] with what the stream's error callback
//! reported, act on the returned [`RecoveryStep`], tell the outcome of a reopen to
//! [`DeviceRecovery::handle_reopen`], sleep until [`DeviceRecovery::poll_timeout`] and call
//! [`DeviceRecovery::handle_timeout`], and drain [`DeviceRecovery::poll_event`].

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::error::Direction;

/// What a stream's error callback reported, sorted by what it means for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamTrouble {
    /// A buffer underrun or overrun on the device side: a click, nothing to do.
    Glitch,
    /// The sound server moved the stream to another device by itself.
    Rerouted,
    /// The stream is dead (device gone, server gone, stream invalidated): the reason.
    Lost(String),
}

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStep {
    /// Nothing.
    Nothing,
    /// Drop the current stream (if any) and open the default device, then report the outcome
    /// to [`DeviceRecovery::handle_reopen`].
    ReopenDefault,
}

/// A change in a call's sound device worth telling the user about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The device in use stopped working.
    Lost {
        /// Which way the device moved sound.
        direction: Direction,
        /// The device's name.
        device: String,
        /// What the audio system said.
        reason: String,
    },
    /// The default device took over.
    Reopened {
        /// Which way the device moves sound.
        direction: Direction,
        /// The device now in use.
        device: String,
    },
    /// No device could be opened: the call goes on silently (reported once per loss; retries
    /// continue).
    Silent {
        /// Which way the lost device moved sound.
        direction: Direction,
        /// Why the default device could not be opened.
        reason: String,
    },
}

impl fmt::Display for DeviceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceEvent::Lost {
                direction,
                device,
                reason,
            } => write!(f, "the audio {direction} device '{device}' stopped: {reason}"),
            DeviceEvent::Reopened { direction, device } => {
                write!(f, "audio {direction} continues on '{device}'")
            }
            DeviceEvent::Silent { direction, reason } => match direction {
                Direction::Input => write!(
                    f,
                    "no audio input device could be opened ({reason}); the call goes on sending silence"
                ),
                Direction::Output => write!(
                    f,
                    "no audio output device could be opened ({reason}); the call goes on without playback"
                ),
            },
        }
    }
}

/// Waits between reopening attempts after the first one failed; the last repeats.
const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(10),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// A stream runs on `device`.
    Running { device: String },
    /// A reopen was asked for and its outcome is awaited; `failures` so far for this loss.
    Reopening { failures: usize },
    /// Silent until `retry_at`, after `failures` failed reopens.
    Waiting { failures: usize, retry_at: Instant },
}

/// The reopen-or-continue-silently decisions of one device stream.
#[derive(Debug)]
pub struct DeviceRecovery {
    direction: Direction,
    state: State,
    events: VecDeque<DeviceEvent>,
    glitches: u64,
    reopens: u64,
}

impl DeviceRecovery {
    /// Recovery for a stream that runs on `device`.
    pub fn new(direction: Direction, device: impl Into<String>) -> Self {
        DeviceRecovery {
            direction,
            state: State::Running {
                device: device.into(),
            },
            events: VecDeque::new(),
            glitches: 0,
            reopens: 0,
        }
    }

    /// A stream error. Only a loss of the running stream asks for a reopen; errors that the
    /// old stream still reports while a reopen is under way or awaited are ignored.
    pub fn handle_trouble(&mut self, trouble: StreamTrouble, _now: Instant) -> RecoveryStep {
        match trouble {
            StreamTrouble::Glitch => {
                self.glitches += 1;
                RecoveryStep::Nothing
            }
            StreamTrouble::Rerouted => RecoveryStep::Nothing,
            StreamTrouble::Lost(reason) => match &self.state {
                State::Running { device } => {
                    self.events.push_back(DeviceEvent::Lost {
                        direction: self.direction,
                        device: device.clone(),
                        reason,
                    });
                    self.state = State::Reopening { failures: 0 };
                    RecoveryStep::ReopenDefault
                }
                State::Reopening { .. } | State::Waiting { .. } => RecoveryStep::Nothing,
            },
        }
    }

    /// The outcome of the reopen asked for: the device now in use, or why none opened.
    pub fn handle_reopen(&mut self, result: Result<String, String>, now: Instant) {
        let State::Reopening { failures } = self.state else {
            return;
        };
        match result {
            Ok(device) => {
                self.reopens += 1;
                self.events.push_back(DeviceEvent::Reopened {
                    direction: self.direction,
                    device: device.clone(),
                });
                self.state = State::Running { device };
            }
            Err(reason) => {
                if failures == 0 {
                    self.events.push_back(DeviceEvent::Silent {
                        direction: self.direction,
                        reason,
                    });
                }
                let delay = RETRY_DELAYS[failures.min(RETRY_DELAYS.len() - 1)];
                self.state = State::Waiting {
                    failures: failures + 1,
                    retry_at: now + delay,
                };
            }
        }
    }

    /// When [`DeviceRecovery::handle_timeout`] wants to be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { retry_at, .. } => Some(retry_at),
            _ => None,
        }
    }

    /// Time passed: asks for the next reopen once its time has come.
    pub fn handle_timeout(&mut self, now: Instant) -> RecoveryStep {
        match self.state {
            State::Waiting { failures, retry_at } if now >= retry_at => {
                self.state = State::Reopening { failures };
                RecoveryStep::ReopenDefault
            }
            _ => RecoveryStep::Nothing,
        }
    }

    /// The next event to report.
    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    /// The device a stream runs on now; `None` while silent.
    pub fn device(&self) -> Option<&str> {
        match &self.state {
            State::Running { device } => Some(device),
            _ => None,
        }
    }

    /// Which way the device moves sound.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Device-side xruns reported so far.
    pub fn glitches(&self) -> u64 {
        self.glitches
    }

    /// Successful reopens so far.
    pub fn reopens(&self) -> u64 {
        self.reopens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut DeviceRecovery) -> Vec<DeviceEvent> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    #[test]
    fn a_lost_device_is_replaced_by_the_default_one() {
        let t0 = Instant::now();
        let mut r = DeviceRecovery::new(Direction::Input, "USB headset");
        assert_eq!(
            r.handle_trouble(StreamTrouble::Glitch, t0),
            RecoveryStep::Nothing
        );
        assert_eq!(
            r.handle_trouble(StreamTrouble::Rerouted, t0),
            RecoveryStep::Nothing
        );
        assert!(drain(&mut r).is_empty());
        let step = r.handle_trouble(StreamTrouble::Lost("unplugged".into()), t0);
        assert_eq!(step, RecoveryStep::ReopenDefault);
        // The dying stream repeats itself; that asks for nothing more.
        let again = r.handle_trouble(StreamTrouble::Lost("unplugged".into()), t0);
        assert_eq!(again, RecoveryStep::Nothing);
        r.handle_reopen(Ok("Built-in".into()), t0);
        assert_eq!(r.device(), Some("Built-in"));
        assert_eq!(
            drain(&mut r),
            vec![
                DeviceEvent::Lost {
                    direction: Direction::Input,
                    device: "USB headset".into(),
                    reason: "unplugged".into()
                },
                DeviceEvent::Reopened {
                    direction: Direction::Input,
                    device: "Built-in".into()
                },
            ]
        );
        assert_eq!((r.glitches(), r.reopens()), (1, 1));
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn with_no_device_left_the_call_goes_on_silently_and_retries_with_backoff() {
        let t0 = Instant::now();
        let mut r = DeviceRecovery::new(Direction::Output, "Speakers");
        r.handle_trouble(StreamTrouble::Lost("server gone".into()), t0);
        r.handle_reopen(Err("no audio system".into()), t0);
        assert_eq!(r.device(), None);
        let events = drain(&mut r);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1].to_string(),
            "no audio output device could be opened (no audio system); the call goes on without playback"
        );
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..7 {
            let at = r.poll_timeout().unwrap();
            assert_eq!(
                r.handle_timeout(at - Duration::from_millis(1)),
                RecoveryStep::Nothing
            );
            assert_eq!(r.handle_timeout(at), RecoveryStep::ReopenDefault);
            assert_eq!(r.poll_timeout(), None);
            delays.push((at - now).as_secs());
            now = at;
            r.handle_reopen(Err("still nothing".into()), now);
        }
        assert_eq!(delays, [1, 2, 4, 8, 10, 10, 10]);
        // Silence is reported once per loss, not once per attempt.
        assert!(drain(&mut r).is_empty());
        let at = r.poll_timeout().unwrap();
        r.handle_timeout(at);
        r.handle_reopen(Ok("HDMI".into()), at);
        assert_eq!(
            drain(&mut r),
            vec![DeviceEvent::Reopened {
                direction: Direction::Output,
                device: "HDMI".into()
            }]
        );
        // The replacement can be lost in turn.
        assert_eq!(
            r.handle_trouble(StreamTrouble::Lost("gone too".into()), at),
            RecoveryStep::ReopenDefault
        );
    }

    #[test]
    fn outcomes_nobody_asked_for_are_ignored() {
        let t0 = Instant::now();
        let mut r = DeviceRecovery::new(Direction::Input, "Mic");
        r.handle_reopen(Ok("Other".into()), t0);
        assert_eq!(r.device(), Some("Mic"));
        assert_eq!(
            r.handle_timeout(t0 + Duration::from_secs(60)),
            RecoveryStep::Nothing
        );
        assert!(drain(&mut r).is_empty());
    }
}
