//! The classic media session: one audio stream of a call over plain RTP/RTCP or SDES-SRTP
//! (DESIGN.md rule 3, the classic path), run on its own threads (rule 4), and beside it, when
//! video was negotiated, a [`ClassicVideoSession`] (H.264 over its own socket, on the video
//! thread the WebRTC path runs too, with a sans-IO [`VideoTransportCore`]).
//!
//! # Layers
//!
//! ```text
//!             ┌──────────── ClassicSession (classic.rs): threads and sockets ─────────────┐
//!  commands ─►│ media thread: wakes on the next deadline (or a command), reads every queued │
//!  (update,   │ datagram with its kernel arrival time ─────────────────► SessionCore ──►  │─► send_to
//!  dtmf,stop) │               publishes AudioStats, forwards MediaEvents                  │
//!             └───────────────────────────────────────────────────────────────────────────┘
//!             ┌──────────── SessionCore (session_core.rs): sans-IO ───────────────────────┐
//!             │ SendPipeline:    source ─► Resampler ─► encoder ─► RtpSender/DtmfSender    │
//!             │                  ─► [SRTP protect] ─► Transmit to the (latched) remote     │
//!             │ ReceivePipeline: Demuxer ─► [SRTP unprotect] ─► parse ─► ReceiverStats ─┬─►│
//!             │                  DtmfReceiver (events) ◄─ telephone-event PT ───────────┘  │
//!             │                  JitterBuffer ─► decode/conceal/FEC ─► Resampler ─► sink   │
//!             │ RtcpSession: SR/RR + SDES on its timer, BYE on close; RTT, remote BYE      │
//!             │ latching, direction (hold), media timeout, statistics                      │
//!             └────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! [`SessionCore`] never reads a clock, opens a socket or spawns a thread: time (`now: Instant`
//! and the wallclock as an [`NtpTime`](crate::rtp::NtpTime)) and datagrams are arguments; it
//! returns [`Transmit`]s, [`MediaEvent`]s and its next deadline ([`SessionCore::poll_timeout`]).
//! [`SimulatedCall`] runs two cores against each other over the seeded [`crate::netsim`]
//! network in virtual time, which is how the tests check minutes of lossy calls in milliseconds.
//! [`ClassicSession`] is the thin thread driver the engine starts after SDP negotiation.
//!
//! # Contract
//!
//! - **Timing.** Every `ptime` the send pipeline reads audio from the source (in 20 ms frames,
//!   as many as the packet needs), converts it to the codec's format, encodes it and sends one
//!   packet. Every 20 ms the receive pipeline writes one frame to the sink. Both run on absolute
//!   deadlines from the session's start, so nothing drifts; a thread that wakes late catches up
//!   (more than 200 ms late — a suspended machine — it skips ahead instead).
//! - **Source end.** When the source ends, the session keeps sending encoded silence: the peer's
//!   jitter buffer, NAT bindings and media-timeout detectors see a live stream until the call
//!   is hung up.
//! - **Symmetric RTP (latching).** RTP and RTCP go to the configured remote addresses until a
//!   packet arrives that is valid, authenticated (when SRTP is on), of the stream's SSRC and
//!   newer than any seen before; if it came from another address, RTP (and muxed RTCP) follows
//!   it there. Garbage, failed authentication, replays, duplicates and foreign SSRCs never move
//!   the latch. A separate RTCP socket latches its destination on valid RTCP the same way.
//! - **Direction.** `send = false`: no RTP leaves (the source is still read and the RTP clock
//!   advances, so after resume the timestamps tell the true pause); RTCP continues. `receive =
//!   false`: RTP is still received, validated and counted (and still latches), but not played:
//!   the sink gets silent frames so a recording keeps its timeline, and no DTMF is reported.
//!   Changing the direction never changes the SSRC or the sequence numbering; the first packet
//!   after a pause carries the marker bit. Nothing is ever sent to an unspecified address or
//!   port 0 (an RFC 2543 hold, `c=IN IP4 0.0.0.0`), which Linux would deliver to this host.
//! - **DTMF.** [`SessionCore::send_dtmf`] queues RFC 4733 events (when a telephone-event payload
//!   type was negotiated); voice pauses while an event is sent. Received events become
//!   [`MediaEvent::Dtmf`] when they end. While a digit is sent, the peer's jitter buffer sees the
//!   sequence numbers the event packets used as missing voice and conceals, as RFC 4733 allows.
//! - **FEC sizing.** The encoder's expected-loss hint, which sizes Opus in-band FEC, starts at
//!   the configured value and then follows the loss the peer reports in RTCP for our stream
//!   (its last interval, rounded up to whole percent): no FEC bits or encoding time on a clean
//!   path, FEC from the first report that shows loss.
//! - **Bad input** (DESIGN.md rule 6): garbage, truncated headers, unknown payload types, foreign
//!   SSRCs, failed SRTP authentication, replays and duplicates are dropped and counted in
//!   [`AudioStats::discarded`]; nothing panics and the session carries on.
//! - **Media timeout.** While receiving, [`MediaEvent::MediaTimeout`] is reported once when no
//!   valid RTP or RTCP arrived for [`SessionOptions::media_timeout`]; it is reported again only
//!   after media came back and stopped again.

mod classic;
mod classic_forward;
mod classic_video;
#[cfg(test)]
mod pipeline_tests;
mod ports;
mod receive_pipeline;
mod send_pipeline;
mod session_core;
mod silence_timer;
mod simulated;
mod stats;
mod timestamped_socket;
mod video_core;
#[cfg(test)]
mod video_core_tests;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub use classic::ClassicSession;
pub use classic_forward::{ClassicForwarder, ForwardOutlet, KeyframeSource};
pub use classic_video::{ClassicVideoConfig, ClassicVideoSession, VideoUpdate};
pub use ports::StreamSockets;
pub use receive_pipeline::{DiscardReason, ReceiveCounters, ReceivePipeline, Received};
pub use send_pipeline::{SendCounters, SendPipeline};
pub use session_core::{LocalSocket, SessionCore, SessionCoreConfig, Transmit};
pub(crate) use silence_timer::SilenceTimer;
pub use simulated::{Sent, Side, SimulatedCall, SimulatedEndpoint};
pub use stats::AudioStats;
pub use video_core::{
    VideoDelivery, VideoTransportConfig, VideoTransportCore, VideoTransportCounters,
};

use crate::audio::AudioError;
use crate::codec::{AudioCodecKind, CodecError, EncoderConfig};
use crate::rtp::{DtmfError, SrtpError, SrtpKeyMaterial, SrtpProfile, SrtpSession};

/// Highest RTP payload type (7 bits).
const MAX_PAYLOAD_TYPE: u8 = 127;

/// The negotiated RFC 4733 `telephone-event` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEventConfig {
    /// Its payload type (commonly 101).
    pub payload_type: u8,
    /// Another number the peer's events may come with (the one our offer named, when the
    /// answer named another: we send with the answer's, the peer with ours).
    pub receive_payload_type: Option<u8>,
    /// Its clock rate from `a=rtpmap`; the voice codec's clock rate when negotiated properly
    /// (8000 with G.711, 48000 with Opus).
    pub clock_rate: u32,
}

/// The negotiated audio stream: codec, payload types, packet duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioStreamConfig {
    /// The voice codec.
    pub codec: AudioCodecKind,
    /// Its payload type (0 PCMU, 8 PCMA, dynamic for Opus).
    pub payload_type: u8,
    /// Another number the peer's voice may come with (the one our offer named, when the
    /// answer named another: RFC 3264 §5.1, §6.1).
    pub receive_payload_type: Option<u8>,
    /// Encoder settings: channels, bitrate, FEC, complexity. Its `frame_ms` is ignored:
    /// `ptime_ms` decides the packet duration.
    pub encoder: EncoderConfig,
    /// Packet duration in milliseconds (`a=ptime`): 10, 20, 40 or 60 for Opus, a multiple of 10
    /// up to 60 for G.711. 20 is what nearly everybody uses.
    pub ptime_ms: u32,
    /// RFC 4733 events, when negotiated.
    pub telephone_event: Option<TelephoneEventConfig>,
}

impl AudioStreamConfig {
    /// `codec` with its default payload type, mono with default encoder settings, 20 ms, no
    /// telephone events.
    pub fn new(codec: AudioCodecKind) -> Self {
        AudioStreamConfig {
            codec,
            payload_type: codec.default_payload_type(),
            receive_payload_type: None,
            encoder: EncoderConfig::mono(),
            ptime_ms: 20,
            telephone_event: None,
        }
    }

    /// The same stream with RFC 4733 events on `payload_type`, at the codec's clock rate.
    #[must_use]
    pub fn with_telephone_event(mut self, payload_type: u8) -> Self {
        self.telephone_event = Some(TelephoneEventConfig {
            payload_type,
            receive_payload_type: None,
            clock_rate: self.codec.clock_rate(),
        });
        self
    }

    /// The encoder configuration with the packet duration applied.
    pub fn encoder_config(&self) -> EncoderConfig {
        EncoderConfig {
            frame_ms: self.ptime_ms,
            ..self.encoder
        }
    }

    /// The packet duration.
    pub fn ptime(&self) -> Duration {
        Duration::from_millis(u64::from(self.ptime_ms))
    }

    /// Checks what the codecs cannot: payload types within 7 bits and distinct. Codec settings
    /// (ptime, channels, bitrate) are checked when the encoder is built.
    pub fn validate(&self) -> Result<(), SessionError> {
        if self.payload_type > MAX_PAYLOAD_TYPE {
            return Err(SessionError::PayloadType(self.payload_type));
        }
        if let Some(event) = self.telephone_event {
            if event.payload_type > MAX_PAYLOAD_TYPE {
                return Err(SessionError::PayloadType(event.payload_type));
            }
            if event.payload_type == self.payload_type {
                return Err(SessionError::PayloadTypeClash(event.payload_type));
            }
            if event.clock_rate == 0 {
                return Err(SessionError::TelephoneEventClockRate);
            }
        }
        Ok(())
    }
}

/// SDES-SRTP keys of a call (RFC 4568): the suite and both sides' master keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The negotiated crypto suite.
    pub profile: SrtpProfile,
    /// The key we announced: it protects what we send.
    pub local: SrtpKeyMaterial,
    /// The key the peer announced: it unprotects what we receive.
    pub remote: SrtpKeyMaterial,
}

/// Applies a stream's renegotiated `keys` to its SRTP `current` (the keys it runs with and
/// its session): turned on, turned off, or rekeyed in place — [`SrtpSession::rekey`] keeps
/// the context of a direction whose key did not change.
fn renegotiate_srtp(
    current: &mut Option<(SrtpKeys, SrtpSession)>,
    keys: Option<&SrtpKeys>,
) -> Result<(), SessionError> {
    match (current.as_mut(), keys) {
        (Some((old, _)), Some(new)) if old == new => {}
        (Some((old, session)), Some(new)) => {
            session.rekey(new.profile, &new.local, &new.remote)?;
            *old = new.clone();
        }
        (_, None) => *current = None,
        (None, Some(new)) => {
            let session = SrtpSession::new(new.profile, &new.local, &new.remote)?;
            *current = Some((new.clone(), session));
        }
    }
    Ok(())
}

/// Which ways media flows (SDP `sendrecv`, `sendonly`, `recvonly`, `inactive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaDirection {
    /// We send RTP.
    pub send: bool,
    /// We play received RTP.
    pub receive: bool,
}

impl MediaDirection {
    /// `sendrecv`.
    pub const SENDRECV: MediaDirection = MediaDirection {
        send: true,
        receive: true,
    };
    /// `sendonly` (we hold the peer).
    pub const SENDONLY: MediaDirection = MediaDirection {
        send: true,
        receive: false,
    };
    /// `recvonly` (the peer holds us).
    pub const RECVONLY: MediaDirection = MediaDirection {
        send: false,
        receive: true,
    };
    /// `inactive`.
    pub const INACTIVE: MediaDirection = MediaDirection {
        send: false,
        receive: false,
    };
}

/// Everything a classic session needs, from the engine's SDP negotiation.
#[derive(Debug)]
pub struct ClassicSessionConfig {
    /// Our RTP socket, bound by the engine (its port is in our SDP).
    pub rtp_socket: UdpSocket,
    /// Our RTCP socket; `None`: RTCP uses the RTP socket (rtcp-mux, or `a=rtcp:<rtp port>`).
    pub rtcp_socket: Option<UdpSocket>,
    /// Where to send RTP until latching finds the peer elsewhere.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP; `None`: rtcp-mux, to the RTP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// The negotiated stream.
    pub stream: AudioStreamConfig,
    /// SDES-SRTP keys; `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// The negotiated direction.
    pub direction: MediaDirection,
    /// Our RTCP CNAME.
    pub cname: String,
}

/// A renegotiated stream after a re-INVITE or UPDATE (hold, resume, new address, codec change,
/// re-keying). SSRC and sequence numbering continue; codec state is rebuilt only when the codec,
/// payload type or ptime changed, SRTP contexts only when the keys changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaUpdate {
    /// The peer's RTP address now announced. When it equals the one announced before, a
    /// latched address stays in use.
    pub remote_rtp: SocketAddr,
    /// The peer's RTCP address; `None`: rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// The new direction.
    pub direction: MediaDirection,
    /// The new stream.
    pub stream: AudioStreamConfig,
    /// The new keys; `None`: plain RTP.
    pub srtp: Option<SrtpKeys>,
}

/// Something the session reports to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The first valid RTP packet of the session arrived.
    FirstPacket {
        /// When it arrived.
        at: Instant,
    },
    /// An RFC 4733 digit ended.
    Dtmf {
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
        /// How long the key was held.
        duration: Duration,
    },
    /// The peer sent an RTCP BYE for its stream.
    RemoteBye,
    /// No valid RTP or RTCP for [`SessionOptions::media_timeout`] while receiving.
    MediaTimeout,
}

/// Tuning that SDP does not negotiate. [`SessionOptions::default`] is what calls use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// Silence (no valid RTP or RTCP while receiving) after which
    /// [`MediaEvent::MediaTimeout`] is reported. Default 30 s.
    pub media_timeout: Duration,
    /// Lowest jitter-buffer delay. Default 20 ms.
    pub jitter_min_delay: Duration,
    /// Highest jitter-buffer delay. Default 200 ms.
    pub jitter_max_delay: Duration,
    /// Nominal RTCP report interval. Default 5 s (RFC 3550's minimum).
    pub rtcp_interval: Duration,
    /// Seed for the SSRC, first sequence number, first timestamp and RTCP timing; `None`:
    /// from the operating system's entropy (what calls use; seeds are for tests).
    pub seed: Option<u64>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            media_timeout: Duration::from_secs(30),
            jitter_min_delay: Duration::from_millis(20),
            jitter_max_delay: Duration::from_millis(200),
            rtcp_interval: Duration::from_secs(5),
            seed: None,
        }
    }
}

/// Why a session could not start or a command was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The codec refused the configuration (ptime, channels, bitrate).
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The source's or sink's format cannot be converted to or from the codec's.
    #[error("audio format: {0}")]
    Audio(#[from] AudioError),
    /// The SRTP keys could not be used.
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    /// A payload type outside 0..=127.
    #[error("payload type {0} is outside 0..=127")]
    PayloadType(u8),
    /// The telephone-event payload type equals the voice payload type.
    #[error("telephone-event and voice share payload type {0}")]
    PayloadTypeClash(u8),
    /// A telephone-event clock rate of zero.
    #[error("telephone-event clock rate is zero")]
    TelephoneEventClockRate,
    /// DTMF asked for without a negotiated telephone-event payload type (send SIP INFO).
    #[error("no telephone-event payload type was negotiated")]
    NoTelephoneEvent,
    /// A character that is not a DTMF key.
    #[error("DTMF: {0}")]
    Dtmf(#[from] DtmfError),
    /// A socket option or thread could not be set up.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The video encoder, decoder or packetizer refused the configuration.
    #[error("video: {0}")]
    Video(String),
    /// The session's media thread has ended.
    #[error("the media session has stopped")]
    Stopped,
}
