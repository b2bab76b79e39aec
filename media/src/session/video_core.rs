//! [`VideoTransportCore`]: the sans-IO transport of a classic video stream — RTP numbering,
//! SDES-SRTP, symmetric RTP latching, RTCP reports and keyframe requests — around the video
//! thread's encoded packets (DESIGN.md rule 1: time and datagrams are arguments).
//!
//! # Contract
//!
//! - **Sending.** [`VideoTransportCore::send_rtp`] renumbers a packet of the video thread in this
//!   stream's sequence space (keeping its 90 kHz timestamp and marker), protects it with SRTP when
//!   negotiated and returns the datagram for the (latched) peer. Nothing is sent while the
//!   direction does not send, nor to an unspecified address or port 0.
//! - **Receiving.** [`VideoTransportCore::handle_datagram`] demultiplexes RTP and RTCP
//!   (RFC 5761), authenticates and decrypts them, checks the payload type, runs the RFC 3550
//!   statistics (SSRC latching), and returns what the video thread needs: playable RTP packets
//!   (only while the direction receives), the peer's keyframe requests (PLI, FIR) and the
//!   round-trip time its reports about our stream give. Garbage,
//!   failed authentication, foreign SSRCs and other payload types are dropped and counted.
//! - **Latching.** RTP goes to the announced address until a valid, authenticated packet of the
//!   stream newer than any before arrives from elsewhere; then it follows that address. RTCP
//!   follows where valid RTCP comes from.
//! - **RTCP.** [`VideoTransportCore::poll_transmit`] gives the SR/RR + SDES report when due
//!   ([`VideoTransportCore::poll_timeout`]); [`VideoTransportCore::pli`] a picture loss
//!   indication about the peer's stream (RFC 4585, in a compound packet after an empty RR and
//!   our CNAME);
//!   [`VideoTransportCore::close`] the final report with a BYE.
//! - **NACK** (when negotiated, [`VideoTransportConfig::nack`]). Every datagram sent is kept in
//!   a [`RetransmissionBuffer`] as sent (already protected: resending the same SRTP packet is
//!   what a receiver that lost it accepts, and needs no second encryption of one index); a
//!   generic NACK from the peer about our stream queues the packets it names, which
//!   [`VideoTransportCore::poll_resend`] hands out. [`VideoTransportCore::nack`] builds our
//!   NACK about the peer's stream (compound, like the PLI).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;

use super::session_core::{LocalSocket, Transmit};
use super::{MediaDirection, SessionError, SrtpKeys};
use crate::rtp::nack::{build_nack, RetransmissionBuffer, RetransmissionConfig};
use crate::rtp::{
    Demuxer, NtpTime, PacketClass, ReceiverStats, ReceiverStatsConfig, RtcpConfig, RtcpEvent,
    RtcpSession, RtpPacket, RtpSender, RtpVerdict, SrtpSession,
};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

/// The RTP clock of video.
const VIDEO_CLOCK_RATE: u32 = 90_000;

/// What a received datagram means for the video thread.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoDelivery {
    /// A playable RTP packet of the peer's stream.
    Rtp(RtpPacket),
    /// The peer asked for a keyframe (PLI or FIR about our stream).
    KeyframeRequested,
    /// The peer's report about our stream gave the round-trip time.
    Rtt(std::time::Duration),
}

/// Where a classic video stream sends, and how: what the SDP negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTransportConfig {
    /// The peer's RTP address (until latching finds it elsewhere).
    pub remote_rtp: SocketAddr,
    /// The peer's RTCP address; `None`: rtcp-mux, to the RTP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether we have a separate RTCP socket.
    pub rtcp_socket: bool,
    /// The H.264 payload type.
    pub payload_type: u8,
    /// SDES-SRTP keys; `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// The negotiated direction.
    pub direction: MediaDirection,
    /// Our RTCP CNAME.
    pub cname: String,
    /// Whether both sides negotiated generic NACK feedback: we keep what we send for resending
    /// and answer the peer's NACKs.
    pub nack: bool,
}

/// Counters of a [`VideoTransportCore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoTransportCounters {
    /// Datagrams dropped: garbage, failed authentication, foreign SSRCs, other payload types.
    pub discarded: u64,
    /// RTP packets sent.
    pub rtp_sent: u64,
    /// RTCP packets sent (reports, PLIs, the BYE).
    pub rtcp_sent: u64,
    /// RTCP packets received and understood.
    pub rtcp_received: u64,
    /// Times the RTP destination moved to where the peer's packets come from.
    pub latches: u64,
    /// Generic NACK packets the peer sent about our stream.
    pub nacks_received: u64,
    /// Packets resent because the peer asked for them.
    pub resent: u64,
}

/// The sans-IO transport of one classic video stream. See the [module docs](self).
#[derive(Debug)]
pub struct VideoTransportCore {
    config: VideoTransportConfig,
    rtp_destination: SocketAddr,
    rtcp_destination: Option<SocketAddr>,
    srtp: Option<SrtpSession>,
    sender: RtpSender,
    receiver: ReceiverStats,
    rtcp: RtcpSession,
    demux: Demuxer,
    highest_latched: Option<u32>,
    counters: VideoTransportCounters,
    /// What we sent, for resending; `None` without NACK.
    sent: Option<RetransmissionBuffer>,
    /// Packets asked for again, waiting for [`VideoTransportCore::poll_resend`].
    resend: std::collections::VecDeque<Bytes>,
}

impl VideoTransportCore {
    /// A transport for `config`, created at `now`, sending as `ssrc`.
    pub fn new<R: Rng + ?Sized>(
        config: VideoTransportConfig,
        ssrc: u32,
        now: Instant,
        rng: &mut R,
    ) -> Result<Self, SessionError> {
        let srtp = srtp_session(config.srtp.as_ref())?;
        let sender =
            RtpSender::with_start(ssrc, rng.gen(), 0, config.payload_type, VIDEO_CLOCK_RATE);
        let rtcp = RtcpSession::new(RtcpConfig::new(config.cname.clone()), ssrc, now, rng);
        let mut core = VideoTransportCore {
            rtp_destination: config.remote_rtp,
            rtcp_destination: config.remote_rtcp,
            srtp,
            sender,
            receiver: ReceiverStats::new(ReceiverStatsConfig::new(VIDEO_CLOCK_RATE)),
            rtcp,
            demux: Demuxer::new(),
            highest_latched: None,
            counters: VideoTransportCounters::default(),
            sent: None,
            resend: std::collections::VecDeque::new(),
            config,
        };
        core.start_resending();
        Ok(core)
    }

    /// The direction negotiated now.
    pub fn direction(&self) -> MediaDirection {
        self.config.direction
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc()
    }

    /// Where RTP goes now (the announced address, or the latched one).
    pub fn rtp_destination(&self) -> SocketAddr {
        self.rtp_destination
    }

    /// The counters.
    pub fn counters(&self) -> VideoTransportCounters {
        self.counters
    }

    /// The peer's SSRC, once latched.
    pub fn remote_ssrc(&self) -> Option<u32> {
        self.receiver.ssrc()
    }

    /// Applies a renegotiation: new addresses (a latched address stays when the announced one
    /// did not change), direction and keys. Numbering continues.
    pub fn update(
        &mut self,
        remote_rtp: SocketAddr,
        remote_rtcp: Option<SocketAddr>,
        direction: MediaDirection,
        srtp: Option<SrtpKeys>,
    ) -> Result<(), SessionError> {
        if srtp != self.config.srtp {
            let ours =
                |keys: &Option<SrtpKeys>| keys.as_ref().map(|k| (k.profile, k.local.clone()));
            let ours_changed = ours(&srtp) != ours(&self.config.srtp);
            match (&mut self.srtp, &srtp) {
                (Some(session), Some(keys)) => {
                    session.rekey(keys.profile, &keys.local, &keys.remote)?
                }
                (current, keys) => *current = srtp_session(keys.as_ref())?,
            }
            self.config.srtp = srtp;
            if ours_changed {
                // What we kept was protected with our old key: the peer could not read it now.
                self.start_resending();
            }
        }
        if remote_rtp != self.config.remote_rtp {
            self.config.remote_rtp = remote_rtp;
            self.rtp_destination = remote_rtp;
            self.highest_latched = None;
        }
        if remote_rtcp != self.config.remote_rtcp {
            self.config.remote_rtcp = remote_rtcp;
            self.rtcp_destination = remote_rtcp;
        }
        self.config.direction = direction;
        Ok(())
    }

    /// Whether generic NACK is negotiated now (a renegotiation may add or drop it): without
    /// it, nothing is kept or resent and no NACK is built.
    pub fn set_nack(&mut self, nack: bool) {
        if nack != self.config.nack {
            self.config.nack = nack;
            self.start_resending();
        }
    }

    /// Forgets what was kept for resending, and keeps what is sent from now on while NACK is
    /// negotiated.
    fn start_resending(&mut self) {
        let nack = self.config.nack;
        self.sent = nack.then(|| RetransmissionBuffer::new(RetransmissionConfig::default()));
        self.resend.clear();
    }

    /// The datagram carrying `packet` (from the video thread) to the peer, if it is to be sent.
    pub fn send_rtp(&mut self, now: Instant, packet: &RtpPacket) -> Option<Transmit> {
        self.send(now, packet, false)
    }

    /// Like [`send_rtp`](Self::send_rtp) for a packet forwarded from another stream: it keeps
    /// its sequence number (the forwarder made it continuous across sources) instead of
    /// taking the next of ours.
    pub fn send_forwarded(&mut self, now: Instant, packet: &RtpPacket) -> Option<Transmit> {
        self.send(now, packet, true)
    }

    fn send(&mut self, now: Instant, packet: &RtpPacket, numbered: bool) -> Option<Transmit> {
        if !self.config.direction.send {
            return None;
        }
        let header = &packet.header;
        let plain = if numbered {
            self.sender.packet_numbered(
                now,
                header.sequence_number,
                header.timestamp,
                header.marker,
                &packet.payload,
            )
        } else {
            self.sender.packet(
                now,
                self.config.payload_type,
                header.timestamp,
                header.marker,
                &packet.payload,
            )
        };
        let sequence = u16::from_be_bytes([plain[2], plain[3]]);
        let payload = match &mut self.srtp {
            Some(srtp) => srtp.protect_rtp(&plain).ok()?,
            None => plain,
        };
        if let Some(sent) = &mut self.sent {
            sent.on_packet_sent(sequence, payload.clone(), now);
        }
        self.counters.rtp_sent += 1;
        transmit(LocalSocket::Rtp, self.rtp_destination, payload)
    }

    /// The next packet the peer asked for again, to send as it is.
    pub fn poll_resend(&mut self) -> Option<Transmit> {
        while let Some(payload) = self.resend.pop_front() {
            if !self.config.direction.send {
                continue;
            }
            self.counters.resent += 1;
            return transmit(LocalSocket::Rtp, self.rtp_destination, payload);
        }
        None
    }

    /// A generic NACK asking the peer to resend `sequences` of its stream, once its SSRC is
    /// known and when NACK was negotiated.
    pub fn nack(&mut self, sequences: &[u16]) -> Option<Transmit> {
        if !self.config.nack || sequences.is_empty() {
            return None;
        }
        let media_ssrc = self.receiver.ssrc()?;
        let nack = build_nack(self.ssrc(), media_ssrc, sequences);
        let packet = self.rtcp.feedback(&nack).ok()?;
        self.rtcp_transmit(packet)
    }

    /// A PLI about the peer's stream, once its SSRC is known (in a compound packet after an
    /// empty receiver report and our CNAME).
    pub fn pli(&mut self) -> Option<Transmit> {
        let media_ssrc = self.receiver.ssrc()?;
        let pli = PictureLossIndication {
            sender_ssrc: self.ssrc(),
            media_ssrc,
        };
        let packet = self.rtcp.feedback(&pli).ok()?;
        self.rtcp_transmit(packet)
    }

    /// When [`poll_transmit`](Self::poll_transmit) wants to be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rtcp.poll_timeout()
    }

    /// The RTCP report due at `now` (the wallclock reading `ntp`), if one is.
    pub fn poll_transmit(&mut self, now: Instant, ntp: NtpTime) -> Option<Transmit> {
        let report =
            self.rtcp
                .poll_transmit(now, ntp, Some(&self.sender), Some(&mut self.receiver))?;
        self.rtcp_transmit(report)
    }

    /// The final report with a BYE; the transport then sends no more reports.
    pub fn close(&mut self, now: Instant, ntp: NtpTime) -> Option<Transmit> {
        if self.rtcp.is_closed() {
            return None;
        }
        let bye = self
            .rtcp
            .close(now, ntp, Some(&self.sender), Some(&mut self.receiver), None);
        self.rtcp_transmit(bye)
    }

    /// A datagram that arrived at `now` on `socket` from `from`: what it delivers.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        socket: LocalSocket,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Vec<VideoDelivery> {
        let class = match self.demux.demux(datagram) {
            Ok(class) => class,
            Err(_) => return self.discard(),
        };
        match class {
            PacketClass::Rtcp => self.handle_rtcp(now, ntp, from, datagram),
            PacketClass::Rtp if socket == LocalSocket::Rtp => self.handle_rtp(now, from, datagram),
            _ => self.discard(),
        }
    }

    fn handle_rtp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Vec<VideoDelivery> {
        let parsed = match &mut self.srtp {
            Some(srtp) => match srtp.unprotect_rtp(datagram) {
                Ok(plain) => self.demux.parse_rtp(&plain),
                Err(_) => return self.discard(),
            },
            None => self.demux.parse_rtp(datagram),
        };
        let Ok(packet) = parsed else {
            return self.discard();
        };
        if packet.header.payload_type != self.config.payload_type {
            return self.discard();
        }
        let verdict = self.receiver.on_packet(now, &packet);
        if !verdict.is_playable() {
            return self.discard();
        }
        let newer = match verdict {
            RtpVerdict::NewSource { .. } => true,
            RtpVerdict::Accepted { extended_sequence } => {
                self.highest_latched.is_none_or(|h| extended_sequence > h)
            }
            _ => false,
        };
        if newer {
            if let RtpVerdict::Accepted { extended_sequence } = verdict {
                self.highest_latched = Some(extended_sequence);
            }
            if from != self.rtp_destination {
                self.rtp_destination = from;
                self.counters.latches += 1;
            }
        }
        if self.config.direction.receive {
            vec![VideoDelivery::Rtp(packet)]
        } else {
            Vec::new()
        }
    }

    fn handle_rtcp(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Vec<VideoDelivery> {
        let plain = match &mut self.srtp {
            Some(srtp) => match srtp.unprotect_rtcp(datagram) {
                Ok(plain) => plain,
                Err(_) => return self.discard(),
            },
            None => Bytes::copy_from_slice(datagram),
        };
        if self.rtcp.handle_rtcp(now, ntp, &plain).is_err() {
            return self.discard();
        }
        self.counters.rtcp_received += 1;
        if self.config.remote_rtcp.is_some() {
            self.rtcp_destination = Some(from);
        }
        let ssrc = self.ssrc();
        let mut out = Vec::new();
        // One keyframe request per packet, however many PLIs and FIRs it holds.
        let mut keyframe_asked = false;
        while let Some(event) = self.rtcp.poll_event() {
            match event {
                RtcpEvent::KeyFrameRequest { media_ssrc }
                    if (media_ssrc == ssrc || media_ssrc == 0) && !keyframe_asked =>
                {
                    keyframe_asked = true;
                    out.push(VideoDelivery::KeyframeRequested);
                }
                RtcpEvent::Nack {
                    media_ssrc,
                    sequences,
                } if media_ssrc == ssrc => {
                    self.counters.nacks_received += 1;
                    if let Some(sent) = &mut self.sent {
                        self.resend.extend(sent.on_nack(&sequences, now));
                    }
                }
                RtcpEvent::ReceptionReport(report) => {
                    if let Some(rtt) = report.rtt {
                        if let Some(sent) = &mut self.sent {
                            sent.set_rtt(rtt);
                        }
                        out.push(VideoDelivery::Rtt(rtt));
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn rtcp_transmit(&mut self, packet: Bytes) -> Option<Transmit> {
        let payload = match &mut self.srtp {
            Some(srtp) => srtp.protect_rtcp(&packet).ok()?,
            None => packet,
        };
        // Our RTCP socket sends only while RTCP is not multiplexed (RFC 5761 §4).
        let socket = if self.config.rtcp_socket && self.config.remote_rtcp.is_some() {
            LocalSocket::Rtcp
        } else {
            LocalSocket::Rtp
        };
        let destination = self.rtcp_destination.unwrap_or(self.rtp_destination);
        self.counters.rtcp_sent += 1;
        transmit(socket, destination, payload)
    }

    fn discard(&mut self) -> Vec<VideoDelivery> {
        self.counters.discarded += 1;
        Vec::new()
    }
}

/// A transmit, unless the destination is unspecified or port 0 (an RFC 2543 hold).
fn transmit(socket: LocalSocket, destination: SocketAddr, payload: Bytes) -> Option<Transmit> {
    if destination.ip().is_unspecified() || destination.port() == 0 {
        return None;
    }
    Some(Transmit {
        socket,
        destination,
        payload,
    })
}

fn srtp_session(keys: Option<&SrtpKeys>) -> Result<Option<SrtpSession>, SessionError> {
    keys.map(|k| SrtpSession::new(k.profile, &k.local, &k.remote))
        .transpose()
        .map_err(SessionError::from)
}
