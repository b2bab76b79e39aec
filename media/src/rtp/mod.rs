//! RTP, RTCP, SRTP and DTMF for Callisto's classic media path (`RTP/AVP`, `RTP/SAVP`), on the
//! wire formats of the webrtc-rs `rtc-rtp`, `rtc-rtcp` and `rtc-srtp` crates.
//!
//! Every part is sans-IO: it takes bytes, `now: Instant` and (for RTCP) the wallclock as
//! arguments, and returns bytes to send, events, and when it wants to be woken. Nothing here opens
//! a socket, reads a clock, or panics on network input.
//!
//! ```text
//!  send:  encoder ──► RtpSender ──► [SrtpSession::protect_rtp] ──► socket
//!         DtmfSender ──┘ (same SSRC and sequence numbers; voice pauses)
//!         RtcpSession::poll_transmit(sender, receiver stats) ──► [protect_rtcp] ──► socket
//!
//!  recv:  socket ──► Demuxer::demux ─┬─ Rtp  ──► [unprotect_rtp] ──► parse_rtp ──► ReceiverStats
//!                                    │            ──► jitter buffer (voice) / DtmfReceiver (events)
//!                                    ├─ Rtcp ──► [unprotect_rtcp] ──► RtcpSession::handle_rtcp
//!                                    └─ STUN / DTLS / other: not RTP's business
//! ```
//!
//! - [`packet`]: strict RTP header validation and parsing.
//! - [`demux`]: RFC 7983 / RFC 5761 demultiplexing of one port, with counters.
//! - [`sender`]: SSRC, sequence, timestamp and marker of an outgoing stream.
//! - [`receiver_stats`]: RFC 3550 A.1/A.3/A.8 statistics and SSRC latching.
//! - [`rtcp_packet`], [`rtcp_session`]: compound RTCP parsing and the report scheduler.
//! - [`ntp`]: NTP timestamps for SR/LSR/DLSR.
//! - [`srtp`]: SDES-SRTP with replay protection.
//! - [`dtmf`], [`dtmf_relay`]: RFC 4733 events and SIP INFO `application/dtmf-relay` bodies.
//! - [`nack`]: RFC 4585 generic NACK — which lost packets to ask for, and what to resend.
//! - [`reorder_buffer`]: holds video packets behind a hole briefly so retransmissions fill it.
//! - [`keyframe`]: when to encode a key frame (PLI/FIR, rate limit, safety net) and when to
//!   ask for one (decode errors, losses, silent starts, with backoff).
//!
//! Video's feedback loop (the bitrate controller lives in [`crate::congestion`]):
//!
//! ```text
//!  recv:  RTP ──► NackGenerator::on_packet ──► poll_nack ──► build_nack ──► RTCP to the sender
//!          │        └─ gave up ──► KeyframeRequester::request ──► poll_request ──► PLI / FIR
//!          └──► ReorderBuffer::push ──► poll (in order; a hole waits for its retransmission
//!                 min(1.5 RTT + 50 ms, 150 ms)) ──► depacketizer
//!  send:  RtcpSession events: Nack ──► RetransmissionBuffer::on_nack ──► resend
//!                             KeyFrameRequest ──► KeyframeScheduler ──► poll_keyframe ──► encoder
//!                             TransportFeedback / Remb ──► BitrateController
//! ```

pub mod demux;
pub mod dtmf;
pub mod dtmf_relay;
pub mod keyframe;
pub mod nack;
pub mod ntp;
pub mod packet;
pub mod receiver_stats;
pub mod reorder_buffer;
pub mod rtcp_packet;
pub mod rtcp_session;
pub mod sender;
pub mod srtp;

pub use demux::{DemuxCounters, DemuxError, Demuxer, PacketClass};
pub use dtmf::{DtmfDigit, DtmfError, DtmfEvent, DtmfReceiver, DtmfSender, DtmfSenderConfig};
pub use dtmf_relay::DtmfRelay;
pub use keyframe::{
    KeyframeRequest, KeyframeRequester, KeyframeRequesterConfig, KeyframeScheduler,
    KeyframeSchedulerConfig,
};
pub use nack::{
    build_nack, nacked_sequences, NackArrival, NackConfig, NackGenerator, RetransmissionBuffer,
    RetransmissionConfig,
};
pub use ntp::NtpTime;
pub use packet::{parse_rtp, RtpError, RtpHeader, RtpPacket};
pub use receiver_stats::{ReceiverStats, ReceiverStatsConfig, ReceptionStats, RtpVerdict};
pub use reorder_buffer::{Arrival, ReorderBuffer, ReorderConfig, ReorderStats};
pub use rtcp_packet::{RtcpError, RtcpPacket};
pub use rtcp_session::{RemoteReception, RtcpConfig, RtcpEvent, RtcpSession};
pub use sender::{RtpSender, SenderInfo};
pub use srtp::{SrtpError, SrtpKeyMaterial, SrtpProfile, SrtpSession};
