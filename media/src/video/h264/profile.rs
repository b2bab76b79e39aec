//! The `profile-level-id` SDP parameter (RFC 6184 §8.1) and the H.264 level limits (ITU-T H.264
//! Table A-1) that say which frame sizes and rates a negotiated level allows.
//!
//! The parameter is three bytes in hex: `profile_idc`, `profile-iop` (the constraint_set flags)
//! and `level_idc`, e.g. `42e01f` = Constrained Baseline, level 3.1. Profiles are recognised the
//! way browsers do (the same bit patterns as libwebrtc), so `42e01f`, `42c01f`, `4d801f` and
//! `58c01f` all read as Constrained Baseline. Level 1b is `level_idc` 11 with constraint_set3 in
//! the Baseline/Main/Extended profiles, or `level_idc` 9 in High.

use std::fmt;
use std::str::FromStr;

/// H.264 profiles Callisto recognises in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum H264Profile {
    /// Constrained Baseline: what Callisto's encoder produces and every WebRTC peer decodes.
    ConstrainedBaseline,
    /// Baseline (allows FMO/ASO/redundant slices, which Callisto's decoder does not need).
    Baseline,
    /// Main.
    Main,
    /// High.
    High,
    /// Constrained High (High without B-frames).
    ConstrainedHigh,
}

/// H.264 levels, from Table A-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum H264Level {
    L1,
    L1b,
    L1_1,
    L1_2,
    L1_3,
    L2,
    L2_1,
    L2_2,
    L3,
    L3_1,
    L3_2,
    L4,
    L4_1,
    L4_2,
    L5,
    L5_1,
    L5_2,
}

/// What a level allows (H.264 Table A-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelLimits {
    /// Macroblocks per second (MaxMBPS).
    pub max_macroblocks_per_second: u32,
    /// Macroblocks per frame (MaxFS).
    pub max_frame_macroblocks: u32,
    /// Video bitrate for Baseline/Main in bits per second (MaxBR × 1000).
    pub max_bitrate_bps: u64,
}

/// Levels with their `level_idc` (1b excepted) and limits, in ascending order.
const LEVELS: [(H264Level, u8, u32, u32, u64); 17] = [
    (H264Level::L1, 10, 1_485, 99, 64),
    (H264Level::L1b, 11, 1_485, 99, 128),
    (H264Level::L1_1, 11, 3_000, 396, 192),
    (H264Level::L1_2, 12, 6_000, 396, 384),
    (H264Level::L1_3, 13, 11_880, 396, 768),
    (H264Level::L2, 20, 11_880, 396, 2_000),
    (H264Level::L2_1, 21, 19_800, 792, 4_000),
    (H264Level::L2_2, 22, 20_250, 1_620, 4_000),
    (H264Level::L3, 30, 40_500, 1_620, 10_000),
    (H264Level::L3_1, 31, 108_000, 3_600, 14_000),
    (H264Level::L3_2, 32, 216_000, 5_120, 20_000),
    (H264Level::L4, 40, 245_760, 8_192, 20_000),
    (H264Level::L4_1, 41, 245_760, 8_192, 50_000),
    (H264Level::L4_2, 42, 522_240, 8_704, 50_000),
    (H264Level::L5, 50, 589_824, 22_080, 135_000),
    (H264Level::L5_1, 51, 983_040, 36_864, 240_000),
    (H264Level::L5_2, 52, 2_073_600, 36_864, 240_000),
];

impl H264Level {
    fn row(self) -> (H264Level, u8, u32, u32, u64) {
        LEVELS
            .iter()
            .copied()
            .find(|row| row.0 == self)
            .unwrap_or(LEVELS[0])
    }

    /// What this level allows.
    pub fn limits(self) -> LevelLimits {
        let (_, _, mbps, fs, br) = self.row();
        LevelLimits {
            max_macroblocks_per_second: mbps,
            max_frame_macroblocks: fs,
            max_bitrate_bps: br * 1000,
        }
    }

    /// Whether `width`x`height` at `fps` frames per second fits this level: frame size in
    /// macroblocks, macroblock rate, and each side at most √(8 × MaxFS) macroblocks.
    pub fn allows(self, width: u32, height: u32, fps: u32) -> bool {
        let limits = self.limits();
        let (mb_w, mb_h) = (
            u64::from(width.div_ceil(16)),
            u64::from(height.div_ceil(16)),
        );
        let frame = mb_w * mb_h;
        let side_limit = u64::from(limits.max_frame_macroblocks) * 8;
        frame <= u64::from(limits.max_frame_macroblocks)
            && frame * u64::from(fps) <= u64::from(limits.max_macroblocks_per_second)
            && mb_w * mb_w <= side_limit
            && mb_h * mb_h <= side_limit
    }

    /// The lowest level that allows `width`x`height` at `fps`; `None` above level 5.2.
    pub fn minimum_for(width: u32, height: u32, fps: u32) -> Option<H264Level> {
        LEVELS
            .iter()
            .map(|row| row.0)
            .find(|level| level.allows(width, height, fps))
    }

    /// What of `width`x`height` at `fps` this level allows a sender: the picture halved (even
    /// sides) until it fits, then the rate lowered to what the macroblock rate leaves, at
    /// least 1.
    pub fn fit(self, width: u32, height: u32, fps: u32) -> (u32, u32, u32) {
        let (mut width, mut height) = (width, height);
        while !self.allows(width, height, 1) && width >= 32 && height >= 32 {
            width = (width / 2) & !1;
            height = (height / 2) & !1;
        }
        let macroblocks = (width.div_ceil(16) * height.div_ceil(16)).max(1);
        let most = self.limits().max_macroblocks_per_second / macroblocks;
        (width, height, fps.min(most).max(1))
    }
}

/// Why a `profile-level-id` was not understood, or a format does not fit a level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileLevelError {
    /// Not six hexadecimal digits.
    #[error("profile-level-id {0:?} is not six hex digits")]
    Syntax(String),
    /// A profile_idc / constraint combination Callisto does not know.
    #[error(
        "unknown H.264 profile: profile_idc {profile_idc:#04x}, profile-iop {profile_iop:#04x}"
    )]
    UnknownProfile {
        /// The profile_idc byte.
        profile_idc: u8,
        /// The constraint flags byte.
        profile_iop: u8,
    },
    /// A level_idc that is not in Table A-1.
    #[error("unknown H.264 level_idc {0}")]
    UnknownLevel(u8),
    /// The frame size or rate exceeds what the level allows.
    #[error("{width}x{height}@{fps} exceeds H.264 level {level:?}")]
    ExceedsLevel {
        /// The level negotiated.
        level: H264Level,
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// Frame rate asked for.
        fps: u32,
    },
}

/// A parsed `profile-level-id`: profile and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileLevelId {
    /// The profile.
    pub profile: H264Profile,
    /// The level.
    pub level: H264Level,
}

/// (profile_idc, constraint mask, constraint value, profile), as libwebrtc matches them.
const PROFILE_PATTERNS: [(u8, u8, u8, H264Profile); 8] = [
    (0x42, 0x4F, 0x40, H264Profile::ConstrainedBaseline),
    (0x4D, 0x8F, 0x80, H264Profile::ConstrainedBaseline),
    (0x58, 0xCF, 0xC0, H264Profile::ConstrainedBaseline),
    (0x42, 0x4F, 0x00, H264Profile::Baseline),
    (0x58, 0xCF, 0x80, H264Profile::Baseline),
    (0x4D, 0xAF, 0x00, H264Profile::Main),
    (0x64, 0xFF, 0x00, H264Profile::High),
    (0x64, 0xFF, 0x0C, H264Profile::ConstrainedHigh),
];

const CONSTRAINT_SET3: u8 = 0x10;

impl ProfileLevelId {
    /// What RFC 6184 implies when the parameter is absent: Baseline, level 1 (`42000a`).
    pub const RFC_DEFAULT: ProfileLevelId = ProfileLevelId {
        profile: H264Profile::Baseline,
        level: H264Level::L1,
    };

    /// Constrained Baseline at `level`.
    pub fn constrained_baseline(level: H264Level) -> Self {
        ProfileLevelId {
            profile: H264Profile::ConstrainedBaseline,
            level,
        }
    }

    /// Reads the three bytes of a `profile-level-id`.
    pub fn from_bytes(
        profile_idc: u8,
        profile_iop: u8,
        level_idc: u8,
    ) -> Result<Self, ProfileLevelError> {
        let profile = PROFILE_PATTERNS
            .iter()
            .find(|(idc, mask, value, _)| *idc == profile_idc && profile_iop & mask == *value)
            .map(|p| p.3)
            .ok_or(ProfileLevelError::UnknownProfile {
                profile_idc,
                profile_iop,
            })?;
        let level = match level_idc {
            9 => H264Level::L1b,
            11 if profile_iop & CONSTRAINT_SET3 != 0
                && matches!(
                    profile,
                    H264Profile::ConstrainedBaseline | H264Profile::Baseline | H264Profile::Main
                ) =>
            {
                H264Level::L1b
            }
            _ => LEVELS
                .iter()
                .find(|row| row.1 == level_idc && row.0 != H264Level::L1b)
                .map(|row| row.0)
                .ok_or(ProfileLevelError::UnknownLevel(level_idc))?,
        };
        Ok(ProfileLevelId { profile, level })
    }

    /// The three bytes as offered: `42e0xx` for Constrained Baseline (the form browsers
    /// offer), `4200xx` Baseline, `4d00xx` Main, `6400xx` High, `640cxx` Constrained High.
    pub fn to_bytes(&self) -> [u8; 3] {
        let (idc, mut iop) = match self.profile {
            H264Profile::ConstrainedBaseline => (0x42, 0xE0),
            H264Profile::Baseline => (0x42, 0x00),
            H264Profile::Main => (0x4D, 0x00),
            H264Profile::High => (0x64, 0x00),
            H264Profile::ConstrainedHigh => (0x64, 0x0C),
        };
        let high = matches!(
            self.profile,
            H264Profile::High | H264Profile::ConstrainedHigh
        );
        let level_idc = match self.level {
            H264Level::L1b if high => 9,
            H264Level::L1b => {
                iop |= CONSTRAINT_SET3;
                11
            }
            level => level.row().1,
        };
        [idc, iop, level_idc]
    }

    /// Checks that `width`x`height` at `fps` fits the level.
    pub fn check_format(&self, width: u32, height: u32, fps: u32) -> Result<(), ProfileLevelError> {
        if self.level.allows(width, height, fps) {
            Ok(())
        } else {
            Err(ProfileLevelError::ExceedsLevel {
                level: self.level,
                width,
                height,
                fps,
            })
        }
    }
}

impl FromStr for ProfileLevelId {
    type Err = ProfileLevelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || ProfileLevelError::Syntax(text.chars().take(16).collect());
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(syntax());
        }
        let byte = |i: usize| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| syntax());
        Self::from_bytes(byte(0)?, byte(2)?, byte(4)?)
    }
}

impl fmt::Display for ProfileLevelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.to_bytes();
        write!(f, "{a:02x}{b:02x}{c:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use H264Level::*;
    use H264Profile::*;

    #[test]
    fn a_sender_fits_its_pictures_to_the_level_the_peer_decodes() {
        // CIF-class levels take a quarter of VGA, at the rate their macroblock rate leaves.
        assert_eq!(L1_2.fit(640, 480, 30), (320, 240, 20));
        assert_eq!(L1_3.fit(640, 480, 30), (320, 240, 30));
        assert_eq!(L1.fit(640, 480, 30), (160, 120, 18));
        assert_eq!(L2_2.fit(1280, 720, 30), (640, 360, 22));
        // Within the level nothing changes.
        assert_eq!(L3_1.fit(1280, 720, 30), (1280, 720, 30));
        assert_eq!(L3_1.fit(640, 480, 30), (640, 480, 30));
        for (w, h, fps) in [(640, 480, 30), (1280, 720, 30), (320, 240, 15)] {
            for level in [L1, L1_1, L1_2, L2, L2_1, L3, L3_1] {
                let (fw, fh, ffps) = level.fit(w, h, fps);
                assert!(level.allows(fw, fh, ffps), "{level:?} {fw}x{fh}@{ffps}");
            }
        }
    }

    #[test]
    fn parses_what_peers_offer() {
        for (text, profile, level) in [
            ("42e01f", ConstrainedBaseline, L3_1),
            ("42E01F", ConstrainedBaseline, L3_1),
            ("42c01e", ConstrainedBaseline, L3),
            ("4d801f", ConstrainedBaseline, L3_1),
            ("58c028", ConstrainedBaseline, L4),
            ("42001f", Baseline, L3_1),
            ("42000a", Baseline, L1),
            ("42f00b", ConstrainedBaseline, L1b),
            ("42e00b", ConstrainedBaseline, L1_1),
            ("4d0032", Main, L5),
            ("640c34", ConstrainedHigh, L5_2),
            ("64001f", High, L3_1),
            ("640009", High, L1b),
        ] {
            let parsed: ProfileLevelId = text.parse().unwrap();
            assert_eq!((parsed.profile, parsed.level), (profile, level), "{text}");
        }
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(
            ProfileLevelId::constrained_baseline(L3_1).to_string(),
            "42e01f"
        );
        assert_eq!(
            ProfileLevelId::constrained_baseline(L1b).to_string(),
            "42f00b"
        );
        assert_eq!(ProfileLevelId::RFC_DEFAULT.to_string(), "42000a");
        for profile in [ConstrainedBaseline, Baseline, Main, High, ConstrainedHigh] {
            for (level, ..) in LEVELS {
                let id = ProfileLevelId { profile, level };
                assert_eq!(id.to_string().parse::<ProfileLevelId>(), Ok(id), "{id}");
            }
        }
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        for text in ["42e01", "42e01fa", "42e0g1", "", "+2e01f"] {
            assert!(
                matches!(
                    text.parse::<ProfileLevelId>(),
                    Err(ProfileLevelError::Syntax(_))
                ),
                "{text}"
            );
        }
        assert!(matches!(
            "6e001f".parse::<ProfileLevelId>(),
            Err(ProfileLevelError::UnknownProfile {
                profile_idc: 0x6e,
                ..
            })
        ));
        assert!(matches!(
            "42e0ff".parse::<ProfileLevelId>(),
            Err(ProfileLevelError::UnknownLevel(255))
        ));
        // Constraint flags outside the pattern (constraint_set4 on Baseline) are not Baseline.
        assert!("42e81f".parse::<ProfileLevelId>().is_err());
    }

    #[test]
    fn level_limits_decide_what_fits() {
        // Table A-1 rows used most.
        assert_eq!(L3_1.limits().max_frame_macroblocks, 3_600);
        assert_eq!(L3_1.limits().max_macroblocks_per_second, 108_000);
        assert_eq!(L3_1.limits().max_bitrate_bps, 14_000_000);
        // 720p is 3600 macroblocks: 30 fps fits 3.1 exactly, 60 fps needs 3.2.
        assert!(L3_1.allows(1280, 720, 30));
        assert!(!L3_1.allows(1280, 720, 31));
        assert_eq!(H264Level::minimum_for(1280, 720, 60), Some(L3_2));
        assert_eq!(H264Level::minimum_for(640, 480, 30), Some(L3));
        assert_eq!(H264Level::minimum_for(320, 240, 30), Some(L1_3));
        assert_eq!(H264Level::minimum_for(176, 144, 15), Some(L1));
        assert_eq!(H264Level::minimum_for(176, 144, 30), Some(L1_1));
        assert_eq!(H264Level::minimum_for(1920, 1080, 30), Some(L4));
        assert_eq!(H264Level::minimum_for(7680, 4320, 30), None);
        // 1080p is within level 3.1's frame rate budget at 1 fps but not its frame size.
        assert!(!L3_1.allows(1920, 1080, 1));
        // A very wide strip fits the frame size but not the side limit √(8 × 396) ≈ 56 MBs.
        assert!(!L1_2.allows(16 * 60, 16, 1));
        let id = ProfileLevelId::constrained_baseline(L3);
        assert!(id.check_format(640, 480, 30).is_ok());
        assert!(matches!(
            id.check_format(1280, 720, 30),
            Err(ProfileLevelError::ExceedsLevel { level: L3, .. })
        ));
    }
}
