//! A session's statistics: the snapshot the engine shows and logs.

use std::net::SocketAddr;
use std::time::Instant;

use super::MediaDirection;

/// A snapshot of one audio stream's statistics.
///
/// Byte counts are whole RTP datagrams as they cross the socket (header, payload and SRTP tag);
/// packet counts include RFC 4733 event packets. `lost`, `jitter_ms` and `rtt_ms` follow RFC
/// 3550 (A.3, A.8, §6.4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioStats {
    /// The codec's encoding name: "opus", "PCMU" or "PCMA".
    pub codec: String,
    /// Whether SRTP protects the stream.
    pub srtp: bool,
    /// RTP packets sent.
    pub tx_packets: u64,
    /// Valid RTP packets received from the peer's stream (played or not).
    pub rx_packets: u64,
    /// Packets the peer sent that never arrived (RFC 3550 cumulative loss, never negative here),
    /// summed over the peer's SSRCs.
    pub lost: u64,
    /// Interarrival jitter of the received stream, in milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time from the latest RTCP report block about our stream.
    pub rtt_ms: Option<f64>,
    /// RTP bytes sent.
    pub tx_bytes: u64,
    /// RTP bytes received in valid packets.
    pub rx_bytes: u64,
    /// Frames the decoder made up for missing packets (packet-loss concealment).
    pub concealed_frames: u64,
    /// Datagrams dropped unused: garbage, truncated or malformed headers, unknown payload
    /// types, foreign SSRCs, failed SRTP/SRTCP authentication, replays and duplicates.
    pub discarded: u64,
    /// The jitter buffer's current delay, in milliseconds.
    pub jitter_buffer_delay_ms: f64,
    /// When the first RTP packet was sent.
    pub first_rtp_sent_at: Option<Instant>,
    /// When the first valid RTP packet arrived.
    pub first_rtp_received_at: Option<Instant>,
    /// Where RTP goes now: the configured address, or the latched one.
    pub remote_addr: SocketAddr,
    /// Packets decoded as received.
    pub decoded_frames: u64,
    /// Lost packets rebuilt from the next packet's in-band FEC (Opus).
    pub fec_recovered_frames: u64,
    /// Our SSRC.
    pub local_ssrc: u32,
    /// The peer's latched SSRC.
    pub remote_ssrc: Option<u32>,
    /// The direction in effect.
    pub direction: MediaDirection,
    /// RTCP compound packets sent.
    pub rtcp_sent: u64,
    /// Valid RTCP compound packets received.
    pub rtcp_received: u64,
}
