//! What we can do for video: H.264 (RFC 6184) with its `profile-level-id` and packetization
//! modes, and the outcome of negotiating it.

use std::net::SocketAddr;

use super::negotiated::NegotiatedSrtp;
use crate::sdp::attributes::Direction;

/// `profile_idc` of the Baseline profile.
const PROFILE_BASELINE: u8 = 0x42;
/// `constraint_set1_flag` in `profile-iop`: the stream obeys the Main profile's constraints,
/// so with Baseline (or Main) it is Constrained Baseline compatible.
const CONSTRAINT_SET1: u8 = 0x40;
/// The `profile-level-id` RFC 6184 §8.1 implies when the parameter is absent (Baseline 1.0).
const DEFAULT_PROFILE_LEVEL_ID: u32 = 0x42_00_0a;

/// Our H.264 video capabilities, from the account's media profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPolicy {
    /// The `profile-level-id` we announce: profile, constraints and the highest level we
    /// decode (`0x42e01f`: Constrained Baseline, level 3.1).
    pub profile_level_id: u32,
    /// The packetization modes we offer and accept, in our order of preference (0 and 1).
    pub packetization_modes: Vec<u8>,
    /// The first payload type of our offers; each further mode takes the next one.
    pub payload_type: u8,
    /// The frame rate we announce (`a=framerate`), if any.
    pub framerate: Option<u32>,
}

impl Default for VideoPolicy {
    /// Constrained Baseline level 3.1, packetization modes 1 then 0, payload types 96 and 97,
    /// 30 frames per second.
    fn default() -> Self {
        VideoPolicy {
            profile_level_id: 0x42_e0_1f,
            packetization_modes: vec![1, 0],
            payload_type: 96,
            framerate: Some(30),
        }
    }
}

impl VideoPolicy {
    /// The offered payload types and their packetization modes (modes other than 0 and 1,
    /// duplicates and payload types past 127 are left out).
    pub(super) fn offered_formats(&self) -> Vec<(u8, u8)> {
        let mut formats: Vec<(u8, u8)> = Vec::new();
        for mode in &self.packetization_modes {
            if *mode > 1 || formats.iter().any(|(_, m)| m == mode) {
                continue;
            }
            let pt = self.payload_type.saturating_add(formats.len() as u8);
            if (96..=127).contains(&pt) {
                formats.push((pt, *mode));
            }
        }
        formats
    }

    /// The `a=fmtp` value we announce for `mode`.
    pub(super) fn fmtp(&self, mode: u8) -> String {
        h264_fmtp(self.profile_level_id, mode)
    }
}

/// `profile-level-id=…;packetization-mode=…` for H.264.
pub(super) fn h264_fmtp(profile_level_id: u32, mode: u8) -> String {
    format!("profile-level-id={profile_level_id:06x};packetization-mode={mode}")
}

/// The H.264 parameters of one offered or answered payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct H264Format {
    pub profile_level_id: u32,
    pub packetization_mode: u8,
    /// Whether `profile-level-id` was given (else it is RFC 6184's default, `42000a`).
    pub level_named: bool,
}

impl H264Format {
    /// The `profile-level-id` when the peer named one.
    pub fn named_profile_level_id(&self) -> Option<u32> {
        self.level_named.then_some(self.profile_level_id)
    }
}

impl H264Format {
    /// Reads an `a=fmtp` value (absent parameters take RFC 6184's defaults); `None` when a
    /// parameter is malformed.
    pub fn parse(fmtp: Option<&str>) -> Option<Self> {
        let mut format = H264Format {
            profile_level_id: DEFAULT_PROFILE_LEVEL_ID,
            packetization_mode: 0,
            level_named: false,
        };
        for parameter in fmtp.unwrap_or_default().split(';') {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "profile-level-id" => {
                    if value.len() != 6 {
                        return None;
                    }
                    format.profile_level_id = u32::from_str_radix(value, 16).ok()?;
                    format.level_named = true;
                }
                "packetization-mode" => format.packetization_mode = value.parse().ok()?,
                _ => {}
            }
        }
        Some(format)
    }

    /// Whether our Constrained Baseline encoder and decoder can run this profile: Baseline,
    /// or any profile whose `constraint_set1_flag` makes it Constrained Baseline compatible.
    pub fn is_constrained_baseline_compatible(&self) -> bool {
        let [_, profile, iop, _] = self.profile_level_id.to_be_bytes();
        profile == PROFILE_BASELINE || iop & CONSTRAINT_SET1 != 0
    }

    /// The `level_idc`.
    pub fn level(&self) -> u8 {
        self.profile_level_id.to_be_bytes()[3]
    }
}

/// The video stream both sides agreed on, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedVideo {
    /// Where to send RTP (the peer's connection address and m-line port).
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP when it is not multiplexed; `None` with `rtcp_mux`.
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether both sides multiplex RTP and RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// The H.264 payload type, used in both directions.
    pub payload_type: u8,
    /// The RFC 6184 packetization mode (0: single NAL unit, 1: non-interleaved).
    pub packetization_mode: u8,
    /// The `profile-level-id` the peer announced for the payload type: the profile and the
    /// highest level it decodes, which our encoder must respect. `None` when it named none:
    /// RFC 6184 then implies level 1 (`42000a`, 176x144 at 15 fps), but phones that leave it
    /// out decode more than that, so what we send is not capped for them.
    pub profile_level_id: Option<u32>,
    /// Whether we send and whether we receive.
    pub direction: Direction,
    /// SDES-SRTP keys, when the stream is encrypted.
    pub srtp: Option<NegotiatedSrtp>,
    /// Whether both sides take generic NACK feedback (RFC 4585): the receiver asks for lost
    /// packets again and the sender resends them.
    pub nack: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmtp_defaults_and_parameters() {
        let absent = H264Format::parse(None).unwrap();
        assert_eq!(absent.profile_level_id, 0x42000a);
        assert_eq!(absent.packetization_mode, 0);
        let f = H264Format::parse(Some("packetization-mode=1; profile-level-id=42E01F")).unwrap();
        assert_eq!((f.profile_level_id, f.packetization_mode), (0x42e01f, 1));
        assert_eq!(f.level(), 0x1f);
        assert!(H264Format::parse(Some("profile-level-id=42e0")).is_none());
        assert!(H264Format::parse(Some("packetization-mode=x")).is_none());
    }

    #[test]
    fn constrained_baseline_compatibility() {
        let compatible = |id| {
            H264Format {
                profile_level_id: id,
                packetization_mode: 1,
                level_named: true,
            }
            .is_constrained_baseline_compatible()
        };
        assert!(compatible(0x42e01f));
        assert!(compatible(0x42801f));
        assert!(compatible(0x4d401f));
        assert!(compatible(0x64401f));
        assert!(!compatible(0x64001f));
        assert!(!compatible(0x4d001f));
    }

    #[test]
    fn offered_formats_skip_unknown_and_repeated_modes() {
        let policy = VideoPolicy {
            packetization_modes: vec![1, 2, 1, 0],
            ..VideoPolicy::default()
        };
        assert_eq!(policy.offered_formats(), vec![(96, 1), (97, 0)]);
    }
}
