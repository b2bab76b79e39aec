//! Two session cores in a call over the seeded simulated network, in virtual time: the
//! socket-free, thread-free way to run whole calls in tests and benches.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::session_core::{LocalSocket, SessionCore, SessionCoreConfig};
use super::{
    AudioStreamConfig, MediaDirection, MediaEvent, MediaUpdate, SessionError, SessionOptions,
    SrtpKeys,
};
use crate::audio::{AudioSink, AudioSource};
use crate::netsim::{NetworkConditions, NetworkStats, SimNetwork};
use crate::rtp::NtpTime;

/// One side of a [`SimulatedCall`].
pub struct SimulatedEndpoint {
    /// The negotiated stream.
    pub stream: AudioStreamConfig,
    /// SRTP keys from this side's point of view (`local` protects what it sends).
    pub srtp: Option<SrtpKeys>,
    /// Its direction.
    pub direction: MediaDirection,
    /// Its microphone.
    pub source: Box<dyn AudioSource>,
    /// Its loudspeaker.
    pub sink: Box<dyn AudioSink>,
    /// Its tuning (the seed is set by the call).
    pub options: SessionOptions,
}

impl SimulatedEndpoint {
    /// A `sendrecv` side without SRTP, with default options.
    pub fn new(
        stream: AudioStreamConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Self {
        SimulatedEndpoint {
            stream,
            srtp: None,
            direction: MediaDirection::SENDRECV,
            source,
            sink,
            options: SessionOptions::default(),
        }
    }
}

/// Which side of a [`SimulatedCall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first side.
    A,
    /// The second side.
    B,
}

/// A datagram a side sent, for tests that look at the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When.
    pub at: Instant,
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes (SRTP-protected when keyed).
    pub payload: Bytes,
}

/// Two session cores in a call over simulated networks, in virtual time.
///
/// [`SimulatedCall`] gives each side an address ([`SimulatedCall::ADDR_A`],
/// [`SimulatedCall::ADDR_B`]), carries every datagram through a [`SimNetwork`] per direction,
/// and steps both cores from event to event (their deadlines and the network's deliveries), so
/// a minute of call runs in well under a second. A datagram addressed anywhere but the peer's
/// address is lost, as it would be on a real network, which lets latching be tested too.
///
/// ```
/// use std::time::Duration;
/// use callisto_media::audio::{AudioFormat, MemorySink, ToneSource};
/// use callisto_media::codec::AudioCodecKind;
/// use callisto_media::netsim::NetworkConditions;
/// use callisto_media::session::{AudioStreamConfig, SimulatedCall, SimulatedEndpoint};
///
/// let stream = AudioStreamConfig::new(AudioCodecKind::Pcmu);
/// let format = AudioFormat::MONO_8K;
/// let side = |hz| SimulatedEndpoint::new(
///     stream,
///     Box::new(ToneSource::new(format, hz, 0.3)),
///     Box::new(MemorySink::new(format)),
/// );
/// let clean = NetworkConditions::clean(Duration::from_millis(10));
/// let mut call = SimulatedCall::new(side(440.0), side(1000.0), clean, clean, 1).unwrap();
/// call.run_for(Duration::from_secs(1));
/// assert!(call.a().stats().rx_packets >= 45);
/// ```
pub struct SimulatedCall {
    a: SessionCore,
    b: SessionCore,
    a_to_b: SimNetwork<Bytes>,
    b_to_a: SimNetwork<Bytes>,
    start: Instant,
    wallclock: NtpTime,
    now: Instant,
    events_a: Vec<(Instant, MediaEvent)>,
    events_b: Vec<(Instant, MediaEvent)>,
    record: bool,
    sent_a: Vec<Sent>,
    sent_b: Vec<Sent>,
    misdirected: u64,
}

impl std::fmt::Debug for SimulatedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedCall")
            .field("a", &self.a)
            .field("b", &self.b)
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

impl SimulatedCall {
    /// Side A's address.
    pub const ADDR_A: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40_000));
    /// Side B's address.
    pub const ADDR_B: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40_002));

    /// A call between `a` and `b` starting now (a real `Instant` as the origin of virtual time),
    /// with `a_to_b` and `b_to_a` conditions; `seed` decides the networks and the SSRCs.
    pub fn new(
        a: SimulatedEndpoint,
        b: SimulatedEndpoint,
        a_to_b: NetworkConditions,
        b_to_a: NetworkConditions,
        seed: u64,
    ) -> Result<Self, SessionError> {
        let start = Instant::now();
        let mut rng = SmallRng::seed_from_u64(seed);
        let a = Self::core(a, Self::ADDR_B, "a@callisto.test", start, &mut rng)?;
        let b = Self::core(b, Self::ADDR_A, "b@callisto.test", start, &mut rng)?;
        Ok(SimulatedCall {
            a,
            b,
            a_to_b: SimNetwork::new(a_to_b, seed.wrapping_add(1)),
            b_to_a: SimNetwork::new(b_to_a, seed.wrapping_add(2)),
            start,
            wallclock: NtpTime::from_unix(Duration::from_secs(1_700_000_000)),
            now: start,
            events_a: Vec::new(),
            events_b: Vec::new(),
            record: false,
            sent_a: Vec::new(),
            sent_b: Vec::new(),
            misdirected: 0,
        })
    }

    fn core(
        side: SimulatedEndpoint,
        remote: SocketAddr,
        cname: &str,
        start: Instant,
        rng: &mut SmallRng,
    ) -> Result<SessionCore, SessionError> {
        let config = SessionCoreConfig {
            remote_rtp: remote,
            remote_rtcp: None,
            rtcp_socket: false,
            stream: side.stream,
            srtp: side.srtp,
            direction: side.direction,
            cname: cname.to_owned(),
            options: side.options,
        };
        SessionCore::new(config, side.source, side.sink, start, rng)
    }

    /// Runs the call for `duration` more of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs the call until `until`, handling every deadline and delivery in time order.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next = [
                self.a.poll_timeout(),
                self.b.poll_timeout(),
                self.a_to_b.next_delivery(),
                self.b_to_a.next_delivery(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&t| t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(delivery) = self.a_to_b.poll_deliver(now) {
                let ntp = self.ntp(delivery.arrival);
                self.b.handle_datagram(
                    delivery.arrival,
                    ntp,
                    LocalSocket::Rtp,
                    Self::ADDR_A,
                    &delivery.item,
                );
                self.collect();
            }
            while let Some(delivery) = self.b_to_a.poll_deliver(now) {
                let ntp = self.ntp(delivery.arrival);
                self.a.handle_datagram(
                    delivery.arrival,
                    ntp,
                    LocalSocket::Rtp,
                    Self::ADDR_B,
                    &delivery.item,
                );
                self.collect();
            }
            let ntp = self.ntp(now);
            self.a.handle_timeout(now, ntp);
            self.b.handle_timeout(now, ntp);
            self.collect();
        }
        self.now = self.now.max(until);
    }

    /// Moves what the cores sent into the networks and keeps their events.
    fn collect(&mut self) {
        let now = self.now;
        while let Some(t) = self.a.poll_transmit() {
            if self.record {
                self.sent_a.push(Sent {
                    at: now,
                    destination: t.destination,
                    payload: t.payload.clone(),
                });
            }
            if t.destination == Self::ADDR_B {
                self.a_to_b.send(now, t.payload);
            } else {
                self.misdirected += 1;
            }
        }
        while let Some(t) = self.b.poll_transmit() {
            if self.record {
                self.sent_b.push(Sent {
                    at: now,
                    destination: t.destination,
                    payload: t.payload.clone(),
                });
            }
            if t.destination == Self::ADDR_A {
                self.b_to_a.send(now, t.payload);
            } else {
                self.misdirected += 1;
            }
        }
        while let Some(event) = self.a.poll_event() {
            self.events_a.push((now, event));
        }
        while let Some(event) = self.b.poll_event() {
            self.events_b.push((now, event));
        }
    }

    /// Delivers `datagram` to `to` now, as if from `from` (a third party on the network).
    pub fn inject(&mut self, to: Side, from: SocketAddr, datagram: &[u8]) {
        let (now, ntp) = (self.now, self.ntp(self.now));
        self.core_mut(to)
            .handle_datagram(now, ntp, LocalSocket::Rtp, from, datagram);
        self.collect();
    }

    /// Applies `update` to `side` now.
    pub fn update(&mut self, side: Side, update: MediaUpdate) -> Result<(), SessionError> {
        let now = self.now;
        self.core_mut(side).update(now, update)
    }

    /// Queues RFC 4733 digits at `side` now.
    pub fn send_dtmf(
        &mut self,
        side: Side,
        digits: &str,
        duration: Duration,
    ) -> Result<(), SessionError> {
        let now = self.now;
        self.core_mut(side).send_dtmf(now, digits, duration)
    }

    /// Closes `side` now: it sends its RTCP BYE (delivered as the call runs on) and finishes
    /// its sink.
    pub fn close(&mut self, side: Side) {
        let (now, ntp) = (self.now, self.ntp(self.now));
        self.core_mut(side).close(now, ntp);
        self.collect();
    }

    /// The wallclock (as RTCP sees it) at `at`.
    pub fn ntp(&self, at: Instant) -> NtpTime {
        self.wallclock
            .plus(at.saturating_duration_since(self.start))
    }

    /// Records every datagram each side sends from now on ([`SimulatedCall::sent`]).
    pub fn record_transmits(&mut self, on: bool) {
        self.record = on;
    }

    /// The datagrams `side` sent while recording.
    pub fn sent(&self, side: Side) -> &[Sent] {
        match side {
            Side::A => &self.sent_a,
            Side::B => &self.sent_b,
        }
    }

    /// The events `side` reported, with when.
    pub fn events(&self, side: Side) -> &[(Instant, MediaEvent)] {
        match side {
            Side::A => &self.events_a,
            Side::B => &self.events_b,
        }
    }

    /// Side A's core.
    pub fn a(&self) -> &SessionCore {
        &self.a
    }

    /// Side B's core.
    pub fn b(&self) -> &SessionCore {
        &self.b
    }

    /// A side's core, for commands ([`SessionCore::update`], [`SessionCore::send_dtmf`]).
    pub fn core_mut(&mut self, side: Side) -> &mut SessionCore {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The virtual time the call started at.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// What each network did: A to B, then B to A.
    pub fn network_stats(&self) -> (NetworkStats, NetworkStats) {
        (self.a_to_b.stats(), self.b_to_a.stats())
    }

    /// Changes both networks' conditions for datagrams sent from now on.
    pub fn set_conditions(&mut self, a_to_b: NetworkConditions, b_to_a: NetworkConditions) {
        self.a_to_b.set_conditions(a_to_b);
        self.b_to_a.set_conditions(b_to_a);
    }

    /// Datagrams sent to an address that was not the peer's (lost).
    pub fn misdirected(&self) -> u64 {
        self.misdirected
    }
}
