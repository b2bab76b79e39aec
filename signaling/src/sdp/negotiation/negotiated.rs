//! The outcome of an offer/answer exchange: everything a classic media session needs.

use std::net::SocketAddr;

use crate::sdp::attributes::Direction;
use crate::sdp::crypto::{SrtpMasterKey, SrtpSuite};

/// The audio stream both sides agreed on, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Where to send RTP (the peer's connection address and m-line port). Under RFC 2543 hold
    /// the address is `0.0.0.0` and `direction` does not send.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP when it is not multiplexed: the peer's `a=rtcp`, else its RTP port
    /// plus one. `None` when `rtcp_mux` is set (or, without `a=rtcp`, for RTP port 65535).
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether both sides multiplex RTP and RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// The codec to send and receive.
    pub codec: NegotiatedCodec,
    /// RFC 4733 events at the codec's clock rate, when both sides use them.
    pub telephone_event: Option<TelephoneEvent>,
    /// The packet time to send with, in milliseconds: the peer's `a=ptime` when it gives a
    /// sensible one (10–120), else ours, capped by the peer's `a=maxptime`.
    pub ptime_ms: u32,
    /// Whether we send ([`Direction::sends`]) and whether we receive ([`Direction::receives`]).
    pub direction: Direction,
    /// SDES-SRTP keys, when the stream is encrypted.
    pub srtp: Option<NegotiatedSrtp>,
}

/// The negotiated codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// The payload type number we send with: the answer's (RFC 3264 §6.1).
    pub payload_type: u8,
    /// The number the peer sends with: what our offer named the codec when we offered (§5.1:
    /// the offerer receives with its own numbers), else `payload_type`.
    pub receive_payload_type: u8,
    /// The encoding name, as in our policy (`opus`, `PCMU`, `PCMA`).
    pub name: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The channel count of the rtpmap.
    pub channels: u16,
    /// The peer's format parameters for this payload type: what our encoder must honour
    /// (for Opus: `useinbandfec`, `maxplaybackrate`, `stereo`, …).
    pub fmtp: Option<String>,
}

/// The negotiated `telephone-event` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEvent {
    /// The payload type number we send events with.
    pub payload_type: u8,
    /// The number the peer sends events with (as for [`NegotiatedCodec::receive_payload_type`]).
    pub receive_payload_type: u8,
    /// The clock rate, equal to the codec's.
    pub clock_rate: u32,
}

/// The SRTP parameters of an encrypted stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedSrtp {
    /// The suite both sides use.
    pub suite: SrtpSuite,
    /// Our master key and salt: the key of what we send (RTP and RTCP).
    pub local: SrtpMasterKey,
    /// The peer's master key and salt: the key of what we receive.
    pub remote: SrtpMasterKey,
}
