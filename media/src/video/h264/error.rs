//! The error types of the H.264 codec and its RTP payload format.

/// What went wrong in the H.264 encoder or decoder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum H264Error {
    /// The encoder configuration is unusable (size, rate, bitrate, level, NAL size).
    #[error("invalid H.264 encoder configuration: {0}")]
    InvalidConfig(String),
    /// OpenH264 refused to create, configure or run the encoder.
    #[error("H.264 encoder: {0}")]
    Encoder(String),
    /// The decoder could not decode an access unit (corrupt or missing reference data). The
    /// caller should ask the sender for a keyframe.
    #[error("H.264 decoder: {0}")]
    Decode(String),
    /// The decoder produced a picture Callisto cannot hold (odd or oversized dimensions).
    #[error("decoded picture: {0}")]
    Picture(#[from] crate::video::VideoError),
}

/// Why an RTP payload was not accepted by the H.264 depacketizer, or a NAL unit could not be
/// packetized. Payloads refused by the depacketizer are dropped and counted; the access unit
/// they belonged to is dropped too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum H264PayloadError {
    /// The payload is empty or too short for its header.
    #[error("truncated H.264 payload ({len} bytes)")]
    Truncated {
        /// Payload length.
        len: usize,
    },
    /// The forbidden_zero_bit is set in a NAL header, STAP-A unit or FU indicator.
    #[error("forbidden bit set in an H.264 NAL header")]
    ForbiddenBit,
    /// A payload type Callisto does not take in packetization mode 0 or 1 (0, 25–27, 29–31).
    #[error("unsupported H.264 payload type {0}")]
    UnsupportedType(u8),
    /// A STAP-A whose unit sizes do not match its length, or that holds an empty unit or an
    /// aggregation packet.
    #[error("malformed STAP-A: {0}")]
    MalformedStapA(&'static str),
    /// An FU-A that does not continue the fragmented NAL unit in progress (no start, another
    /// type, a fragmented aggregation packet).
    #[error("malformed FU-A: {0}")]
    MalformedFuA(&'static str),
    /// The access unit grew past the configured size limit.
    #[error("access unit larger than {limit} bytes")]
    AccessUnitTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A packet older than (or equal to) the last one taken: late or duplicated.
    #[error("late or duplicate packet (sequence {sequence})")]
    LateOrDuplicate {
        /// The packet's sequence number.
        sequence: u16,
    },
    /// A NAL unit larger than the MTU in packetization mode 0, which cannot fragment.
    #[error("NAL unit of {size} bytes exceeds the MTU of {mtu} in packetization mode 0")]
    NalTooLarge {
        /// NAL unit size.
        size: usize,
        /// The maximum payload size.
        mtu: usize,
    },
    /// An MTU too small to carry any H.264 payload (at least 3 bytes: FU-A headers + 1).
    #[error("MTU of {0} bytes is too small for H.264")]
    MtuTooSmall(usize),
}
