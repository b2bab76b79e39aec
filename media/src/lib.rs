//! Callisto media (frames, codecs, RTP sessions). Filled in by the calls issues.
pub mod analysis;
