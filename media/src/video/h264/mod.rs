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

/// OpenH264's build script silently falls back to plain C when `nasm` fails; this test links
/// one of its SSE2 routines directly, so a build without the assembly fails to link, and checks
/// the routine computes what it should.
#[cfg(all(test, target_arch = "x86_64"))]
mod assembly_tests {
    unsafe extern "C" {
        /// Sum of absolute differences of two 16x16 blocks (`codec/common/x86/satd_sad.asm`);
        /// the first block must be 16-byte aligned.
        fn WelsSampleSad16x16_sse2(a: *const u8, a_stride: i32, b: *const u8, b_stride: i32)
            -> i32;
    }

    #[repr(align(16))]
    struct Block([u8; 256]);

    #[test]
    fn openh264_is_built_with_its_x86_assembly() {
        let a = Block(std::array::from_fn(|i| (i * 7 % 251) as u8));
        let b = Block(std::array::from_fn(|i| (i * 13 % 241) as u8));
        let expected: i32 =
            a.0.iter()
                .zip(&b.0)
                .map(|(&x, &y)| i32::from(x.abs_diff(y)))
                .sum();
        // SAFETY: both blocks are 256 bytes (16 rows of stride 16), `a` is 16-byte aligned as the
        // routine requires, and it only reads them.
        let sad = unsafe { WelsSampleSad16x16_sse2(a.0.as_ptr(), 16, b.0.as_ptr(), 16) };
        assert_eq!(sad, expected);
    }
}
