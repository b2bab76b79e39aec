//! H.264: the OpenH264 encoder and decoder, `profile-level-id`, and the RFC 6184 RTP payload
//! format.
//!
//! # Data flow
//!
//! ```text
//! send:    VideoFrame ─► H264Encoder ─► EncodedAccessUnit (NAL units) ─► H264Packetizer ─► payloads
//!                                                                              (marker on the last)
//! receive: (seq, ts, marker, payload) ─► H264Depacketizer ─► AccessUnit ─► H264Decoder ─► VideoFrame
//!                                              └─► NeedKeyframe ─► PLI/FIR ─► H264Encoder::force_keyframe
//! ```
//!
//! The encoder produces Constrained Baseline (`profile-level-id` `42e0xx`), what every WebRTC
//! peer and desk phone decodes. The packetizer and depacketizer are sans-IO: payload bytes in,
//! payload bytes or access units out; the RTP header is the caller's. OpenH264 is built from
//! source with its x86 assembly (nasm).

mod decoder;
mod depacketizer;
mod encoder;
mod error;
mod nal;
mod packetizer;
mod profile;

pub use decoder::H264Decoder;
pub use depacketizer::{
    AccessUnit, DepacketizerConfig, DepacketizerOutput, DepacketizerStats, H264Depacketizer,
    DEFAULT_MAX_ACCESS_UNIT_SIZE,
};
pub use encoder::{
    EncodedAccessUnit, H264Encoder, H264EncoderConfig, BITRATE_RANGE, MIN_MAX_NAL_SIZE,
};
pub use error::{H264Error, H264PayloadError};
pub use nal::{
    forbidden_bit, is_slice, join_annex_b, nal_ref_idc, nal_type, split_annex_b, NAL_AUD,
    NAL_FILLER, NAL_FU_A, NAL_IDR, NAL_PPS, NAL_SEI, NAL_SLICE, NAL_SPS, NAL_STAP_A,
};
pub use packetizer::{H264Packetizer, PacketizationMode};
pub use profile::{H264Level, H264Profile, LevelLimits, ProfileLevelError, ProfileLevelId};

#[cfg(test)]
mod tests {
    use super::*;

    /// Codecs and payload state live on media threads: they must move there.
    #[test]
    fn codec_state_is_send() {
        fn movable<T: Send>() {}
        movable::<H264Encoder>();
        movable::<H264Decoder>();
        movable::<H264Depacketizer>();
        movable::<H264Packetizer>();
    }
}
