//! Codec impairment values for the E-model: ITU-T G.113 Appendix I, and Callisto's choice for
//! Opus.

use crate::codec::AudioCodecKind;

/// How a codec degrades speech in the E-model: the equipment impairment factor `ie` (the codec's
/// own distortion, no loss) and the packet-loss robustness factor `bpl` (how gracefully it
/// conceals lost packets; higher is more robust).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor Ie (0 for a transparent codec; the scale is R points).
    pub ie: f64,
    /// Packet-loss robustness factor Bpl (> 0).
    pub bpl: f64,
}

impl CodecImpairment {
    /// G.711 (µ-law or A-law) with the packet loss concealment of G.711 Appendix I: Ie 0,
    /// Bpl 25.1 (ITU-T G.113 Appendix I, random loss).
    pub const G711_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };

    /// G.711 (µ-law or A-law) without packet loss concealment (lost packets played as silence):
    /// Ie 0, Bpl 4.3 (ITU-T G.113 Appendix I, random loss).
    pub const G711_NO_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 4.3 };

    /// Opus (RFC 6716) at the bitrates Callisto uses for speech (24 kbit/s and more), with
    /// libopus's own concealment: Ie 0, Bpl 25.1.
    ///
    /// ITU-T G.113 lists no narrowband Ie or Bpl for Opus. At these bitrates Opus is at least as
    /// clean as G.711 on the narrowband scale (Ie 0; a value above 0 would rank it below the
    /// reference codec it outperforms in listening tests), and libopus's pitch-based concealment
    /// is of the same kind as G.711 Appendix I's, so Callisto borrows that robustness (25.1)
    /// rather than claim a better one that no ITU-T table backs. In-band FEC, when the peer
    /// sends it, recovers some losses before they count; the loss fed to the model should be
    /// the loss after FEC recovery.
    pub const OPUS: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };

    /// The values for a Callisto codec as Callisto decodes it.
    ///
    /// G.711 maps to [`G711_NO_PLC`](Self::G711_NO_PLC): Callisto's G.711 decoder conceals a
    /// loss by repeating the last frame with a fade, which is not the G.711 Appendix I algorithm
    /// the 25.1 was measured with, so the estimate takes the conservative published value.
    pub fn for_codec(codec: AudioCodecKind) -> CodecImpairment {
        match codec {
            AudioCodecKind::Opus => Self::OPUS,
            AudioCodecKind::Pcmu | AudioCodecKind::Pcma => Self::G711_NO_PLC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_has_values_in_range() {
        for codec in AudioCodecKind::ALL {
            let values = CodecImpairment::for_codec(codec);
            assert!((0.0..95.0).contains(&values.ie), "{codec:?}: {values:?}");
            assert!(values.bpl > 0.0, "{codec:?}: {values:?}");
        }
        assert_eq!(
            CodecImpairment::for_codec(AudioCodecKind::Pcma),
            CodecImpairment::for_codec(AudioCodecKind::Pcmu)
        );
    }
}
