//! The sans-IO core of a classic session: both pipelines, RTCP, latching, direction, media
//! timeout, events and statistics.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use tracing::{debug, info};

use super::receive_pipeline::{ReceivePipeline, Received};
use super::send_pipeline::SendPipeline;
use super::silence_timer::SilenceTimer;
use super::stats::AudioStats;
use super::{
    AudioStreamConfig, MediaDirection, MediaEvent, MediaUpdate, SessionError, SessionOptions,
    SrtpKeys,
};
use crate::audio::{AudioSink, AudioSource};
use crate::rtp::{NtpTime, RtcpConfig, RtcpEvent, RtcpSession, RtpSender};

/// Which of our sockets a datagram came in on or goes out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalSocket {
    /// The RTP socket (which also carries RTCP without a separate RTCP socket).
    Rtp,
    /// The separate RTCP socket.
    Rtcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The socket to send it from.
    pub socket: LocalSocket,
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram.
    pub payload: Bytes,
}

/// A session's configuration without its sockets: what [`super::ClassicSessionConfig`] says,
/// plus whether a separate RTCP socket exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCoreConfig {
    /// The peer's RTP address (until latching finds it elsewhere).
    pub remote_rtp: SocketAddr,
    /// The peer's RTCP address; `None`: rtcp-mux, to the RTP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether our RTCP has its own socket ([`LocalSocket::Rtcp`]); it sends only while RTCP
    /// is not multiplexed (`remote_rtcp` is some), the RTP socket otherwise (RFC 5761 §4).
    pub rtcp_socket: bool,
    /// The negotiated stream.
    pub stream: AudioStreamConfig,
    /// SDES-SRTP keys; `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// The negotiated direction.
    pub direction: MediaDirection,
    /// Our RTCP CNAME.
    pub cname: String,
    /// Tuning.
    pub options: SessionOptions,
}

/// The sans-IO classic audio session.
///
/// # Driving it
/// Like `quinn-proto`, the core has getters, `handle_*` inputs, mutators and `poll_*` outputs.
/// A driver loops:
/// 1. wait until [`SessionCore::poll_timeout`] or until a datagram arrives;
/// 2. feed the datagram with its arrival time ([`SessionCore::handle_datagram`]) or the time
///    ([`SessionCore::handle_timeout`]) — each first runs every timer due by then, in order;
/// 3. send every [`SessionCore::poll_transmit`], deliver every [`SessionCore::poll_event`].
///
/// Commands ([`SessionCore::update`], [`SessionCore::send_dtmf`], [`SessionCore::close`]) may
/// come between any two steps. Wallclock time for RTCP is an argument ([`NtpTime`]), read by the
/// driver from the same clock every time.
pub struct SessionCore {
    send: SendPipeline,
    receive: ReceivePipeline,
    rtcp: RtcpSession,
    /// The RTP address SDP announced, and the one in use (latched).
    announced_rtp: SocketAddr,
    remote_rtp: SocketAddr,
    /// The RTCP address SDP announced, and the one in use; `None`: rtcp-mux.
    announced_rtcp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    rtcp_socket: LocalSocket,
    direction: MediaDirection,
    /// Since the last valid RTP or RTCP, or since receiving (re)started.
    silence: SilenceTimer,
    bye_reported: bool,
    closed: bool,
    /// RTCP datagrams that failed to parse.
    rtcp_discarded: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MediaEvent>,
}

impl std::fmt::Debug for SessionCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCore")
            .field("send", &self.send)
            .field("receive", &self.receive)
            .field("remote_rtp", &self.remote_rtp)
            .field("remote_rtcp", &self.remote_rtcp)
            .field("direction", &self.direction)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl SessionCore {
    /// A session starting at `now`: the first packet and the first frame are due at once. The
    /// SSRC, first sequence number and timestamp and the RTCP timing come from `rng`.
    pub fn new<R: Rng + ?Sized>(
        config: SessionCoreConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        now: Instant,
        rng: &mut R,
    ) -> Result<Self, SessionError> {
        let stream = &config.stream;
        stream.validate()?;
        let rtp = RtpSender::new(stream.payload_type, stream.codec.clock_rate(), rng);
        let ssrc = rtp.ssrc();
        let mut send = SendPipeline::new(stream, config.srtp.as_ref(), source, rtp, now)?;
        let mut receive =
            ReceivePipeline::new(stream, config.srtp.as_ref(), sink, &config.options, now)?;
        send.set_sending(config.direction.send);
        receive.set_receiving(config.direction.receive);
        let rtcp_config = RtcpConfig {
            interval: config.options.rtcp_interval,
            ..RtcpConfig::new(config.cname)
        };
        Ok(SessionCore {
            send,
            receive,
            rtcp: RtcpSession::new(rtcp_config, ssrc, now, rng),
            announced_rtp: config.remote_rtp,
            remote_rtp: config.remote_rtp,
            announced_rtcp: config.remote_rtcp,
            remote_rtcp: config.remote_rtcp,
            rtcp_socket: if config.rtcp_socket {
                LocalSocket::Rtcp
            } else {
                LocalSocket::Rtp
            },
            direction: config.direction,
            silence: SilenceTimer::new(config.options.media_timeout, now),
            bye_reported: false,
            closed: false,
            rtcp_discarded: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Takes a datagram that arrived at `now` (wallclock `ntp`) on `socket` from `from`. Timers
    /// due by `now` run first.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        socket: LocalSocket,
        from: SocketAddr,
        datagram: &[u8],
    ) {
        if self.closed {
            return;
        }
        self.handle_timeout(now, ntp);
        match self.receive.handle_datagram(now, datagram) {
            Received::Rtp { fresh, .. } => {
                self.heard(now);
                if fresh && socket == LocalSocket::Rtp && from != self.remote_rtp {
                    info!(from = %from, was = %self.remote_rtp, "RTP latched to the peer's source address");
                    self.remote_rtp = from;
                }
            }
            Received::Rtcp(plain) => match self.rtcp.handle_rtcp(now, ntp, &plain) {
                Ok(()) => {
                    self.heard(now);
                    let separate = socket == LocalSocket::Rtcp && self.remote_rtcp.is_some();
                    if separate && self.remote_rtcp != Some(from) {
                        info!(from = %from, "RTCP latched to the peer's source address");
                        self.remote_rtcp = Some(from);
                    }
                    self.take_rtcp_events();
                }
                Err(e) => {
                    debug!(error = %e, "malformed RTCP dropped");
                    self.rtcp_discarded += 1;
                }
            },
            Received::Discarded(reason) => debug!(?reason, from = %from, "datagram dropped"),
        }
        self.take_receive_events();
    }

    /// Runs every timer due by `now` (wallclock `ntp`): packets to send, frames to play, RTCP
    /// reports, the media timeout.
    pub fn handle_timeout(&mut self, now: Instant, ntp: NtpTime) {
        if self.closed {
            return;
        }
        while let Some(payload) = self.send.poll_packet(now) {
            self.transmit(LocalSocket::Rtp, self.remote_rtp, payload);
        }
        self.receive.playout(now);
        if self.rtcp.poll_timeout().is_some_and(|t| t <= now) {
            let report = self.rtcp.poll_transmit(
                now,
                ntp,
                Some(self.send.rtp_sender()),
                Some(self.receive.receiver_stats_mut()),
            );
            if let Some(report) = report {
                self.send_rtcp(&report);
            }
        }
        if self.direction.receive && self.silence.fire(now) {
            info!("no media from the peer: media timeout");
            self.events.push_back(MediaEvent::MediaTimeout);
        }
        self.take_receive_events();
    }

    fn heard(&mut self, now: Instant) {
        self.silence.heard(now);
    }

    fn timeout_deadline(&self) -> Option<Instant> {
        self.silence.deadline().filter(|_| self.direction.receive)
    }

    fn send_rtcp(&mut self, report: &[u8]) {
        match self.send.protect_rtcp(report) {
            Ok(payload) => {
                let (socket, destination) = match self.remote_rtcp {
                    Some(rtcp) => (self.rtcp_socket, rtcp),
                    None => (LocalSocket::Rtp, self.remote_rtp),
                };
                self.transmit(socket, destination, payload);
            }
            Err(e) => debug!(error = %e, "SRTCP refused a report"),
        }
    }

    /// Queues a datagram, unless its destination is no address at all: an RFC 2543 hold
    /// (`c=IN IP4 0.0.0.0`) or port 0, which Linux would deliver to this very host.
    fn transmit(&mut self, socket: LocalSocket, destination: SocketAddr, payload: Bytes) {
        if destination.ip().is_unspecified() || destination.port() == 0 {
            return;
        }
        self.transmits.push_back(Transmit {
            socket,
            destination,
            payload,
        });
    }

    fn take_rtcp_events(&mut self) {
        while let Some(event) = self.rtcp.poll_event() {
            if let RtcpEvent::ReceptionReport(report) = &event {
                self.send.on_reported_loss(report.fraction_lost);
            }
            if let RtcpEvent::Bye { ssrc, .. } = event {
                let ours = self
                    .receive
                    .receiver_stats()
                    .ssrc()
                    .is_none_or(|s| s == ssrc);
                if ours && !self.bye_reported {
                    info!(ssrc, "the peer sent RTCP BYE");
                    self.bye_reported = true;
                    self.events.push_back(MediaEvent::RemoteBye);
                }
            }
        }
    }

    fn take_receive_events(&mut self) {
        while let Some(event) = self.receive.poll_event() {
            self.events.push_back(event);
        }
    }

    // ---- commands -----------------------------------------------------------------------

    /// Applies a renegotiated stream at `now`. Nothing changes when any part is refused.
    pub fn update(&mut self, now: Instant, update: MediaUpdate) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Stopped);
        }
        let srtp = update.srtp.as_ref();
        self.send.check(&update.stream, srtp)?;
        self.receive.check(&update.stream, srtp)?;
        self.send.reconfigure(&update.stream, srtp)?;
        self.receive.reconfigure(&update.stream, srtp)?;
        if update.remote_rtp != self.announced_rtp {
            self.announced_rtp = update.remote_rtp;
            self.remote_rtp = update.remote_rtp;
        }
        if update.remote_rtcp != self.announced_rtcp {
            self.announced_rtcp = update.remote_rtcp;
            self.remote_rtcp = update.remote_rtcp;
        }
        self.send.set_sending(update.direction.send);
        self.receive.set_receiving(update.direction.receive);
        if update.direction.receive && !self.direction.receive {
            self.heard(now);
        }
        self.direction = update.direction;
        Ok(())
    }

    /// Queues `digits` as RFC 4733 events of `duration` each.
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        digits: &str,
        duration: Duration,
    ) -> Result<(), SessionError> {
        self.send.send_dtmf(now, digits, duration)
    }

    /// Ends the session at `now`: queues the final RTCP packet with a BYE and finishes the sink.
    /// Afterwards the core takes no input and has no timeout.
    pub fn close(&mut self, now: Instant, ntp: NtpTime) {
        if self.closed {
            return;
        }
        self.handle_timeout(now, ntp);
        let bye = self.rtcp.close(
            now,
            ntp,
            Some(self.send.rtp_sender()),
            Some(self.receive.receiver_stats_mut()),
            None,
        );
        self.send_rtcp(&bye);
        self.receive.finish();
        self.closed = true;
    }

    // ---- outputs ------------------------------------------------------------------------

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`SessionCore::handle_timeout`] should next be called; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut next = self.send.poll_timeout().min(self.receive.poll_timeout());
        for t in [self.rtcp.poll_timeout(), self.timeout_deadline()]
            .into_iter()
            .flatten()
        {
            next = next.min(t);
        }
        Some(next)
    }

    // ---- getters ------------------------------------------------------------------------

    /// A statistics snapshot.
    pub fn stats(&self) -> AudioStats {
        let mut stats = AudioStats {
            codec: String::new(),
            srtp: false,
            tx_packets: 0,
            rx_packets: 0,
            lost: 0,
            jitter_ms: 0.0,
            rtt_ms: None,
            tx_bytes: 0,
            rx_bytes: 0,
            concealed_frames: 0,
            discarded: 0,
            jitter_buffer_delay_ms: 0.0,
            first_rtp_sent_at: None,
            first_rtp_received_at: None,
            remote_addr: self.remote_rtp,
            decoded_frames: 0,
            fec_recovered_frames: 0,
            local_ssrc: 0,
            remote_ssrc: None,
            direction: self.direction,
            rtcp_sent: 0,
            rtcp_received: 0,
        };
        self.write_stats(&mut stats);
        stats
    }

    /// Writes the statistics into `stats`, allocating only when the codec's name changed.
    pub fn write_stats(&self, stats: &mut AudioStats) {
        let sent = self.send.counters();
        let received = self.receive.counters();
        let reception = self.receive.receiver_stats();
        let codec = self.send.stream().codec.encoding_name();
        if stats.codec != codec {
            codec.clone_into(&mut stats.codec);
        }
        stats.srtp = self.send.is_protected();
        stats.tx_packets = sent.packets;
        stats.rx_packets = received.packets;
        stats.lost = self.receive.lost();
        stats.jitter_ms = reception.jitter_ms();
        stats.rtt_ms = self.rtcp.rtt().map(|rtt| rtt.as_secs_f64() * 1000.0);
        stats.tx_bytes = sent.bytes;
        stats.rx_bytes = received.bytes;
        stats.concealed_frames = received.concealed_frames;
        stats.discarded = received.discarded + self.rtcp_discarded;
        stats.jitter_buffer_delay_ms =
            self.receive.jitter_buffer().current_delay().as_secs_f64() * 1000.0;
        stats.first_rtp_sent_at = sent.first_sent_at;
        stats.first_rtp_received_at = received.first_received_at;
        stats.remote_addr = self.remote_rtp;
        stats.decoded_frames = received.decoded_frames;
        stats.fec_recovered_frames = received.fec_recovered_frames;
        stats.local_ssrc = self.send.rtp_sender().ssrc();
        stats.remote_ssrc = reception.ssrc();
        stats.direction = self.direction;
        let rtcp = self.rtcp.counters();
        stats.rtcp_sent = rtcp.sent;
        stats.rtcp_received = rtcp.received;
    }

    /// Where RTP goes now.
    pub fn remote_rtp(&self) -> SocketAddr {
        self.remote_rtp
    }

    /// Where RTCP goes now.
    pub fn remote_rtcp(&self) -> SocketAddr {
        self.remote_rtcp.unwrap_or(self.remote_rtp)
    }

    /// The direction in effect.
    pub fn direction(&self) -> MediaDirection {
        self.direction
    }

    /// The stream in effect.
    pub fn stream(&self) -> &AudioStreamConfig {
        self.send.stream()
    }

    /// Whether [`SessionCore::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The send pipeline.
    pub fn send_pipeline(&self) -> &SendPipeline {
        &self.send
    }

    /// The receive pipeline.
    pub fn receive_pipeline(&self) -> &ReceivePipeline {
        &self.receive
    }

    /// The RTCP session.
    pub fn rtcp(&self) -> &RtcpSession {
        &self.rtcp
    }
}
