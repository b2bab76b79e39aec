//! Audio codecs: G.711 µ-law and A-law, and Opus.
//!
//! # Contract
//!
//! - An [`AudioEncoder`] turns exactly one frame of interleaved PCM ([`AudioEncoder::frame_samples`]
//!   samples per channel, 20 ms unless configured otherwise) into one RTP payload. A
//!   [`AudioDecoder`] turns one RTP payload into PCM, conceals a lost packet
//!   ([`AudioDecoder::conceal`]), and, for Opus, recovers a lost packet from the in-band FEC data of
//!   the packet after it ([`AudioDecoder::decode_fec`]).
//! - For every codec here the PCM sample rate equals the RTP clock rate ([`AudioCodecKind::clock_rate`]),
//!   so the RTP timestamp advances by the number of samples per channel of each frame.
//! - Output buffers are `Vec`s that calls *append* to: the caller can reuse one buffer, or put an
//!   RTP header first and let the encoder append the payload.
//! - Payloads come from the network: a malformed payload is a [`CodecError`], never a panic, and
//!   leaves the decoder usable (conceal the frame and carry on).
//! - Encoders and decoders are `Send` (they live on media threads), not `Sync`.
//!
//! Choosing a codec from SDP: [`AudioCodecKind::from_encoding_name`] maps an `a=rtpmap` encoding
//! name, and [`AudioCodecKind::make_encoder`] / [`AudioCodecKind::make_decoder`] build the codec.

mod g711;
mod opus;

pub use g711::{
    alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear, G711Decoder, G711Encoder,
    G711Law,
};
pub use opus::{OpusDecoder, OpusEncoder};

use std::fmt;

use crate::audio::AudioFormat;

/// What went wrong encoding or decoding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The PCM given to an encoder is not exactly one frame.
    #[error("expected {expected} interleaved PCM samples (one frame), got {got}")]
    WrongFrameLength {
        /// Interleaved samples in one frame.
        expected: usize,
        /// Interleaved samples given.
        got: usize,
    },
    /// The codec does not carry this many channels.
    #[error("{codec} does not support {channels} channels")]
    UnsupportedChannels {
        /// The codec.
        codec: AudioCodecKind,
        /// The channel count asked for.
        channels: u16,
    },
    /// The codec does not support this frame duration.
    #[error("{codec} does not support {frame_ms} ms frames")]
    UnsupportedFrameDuration {
        /// The codec.
        codec: AudioCodecKind,
        /// The frame duration asked for, in milliseconds.
        frame_ms: u32,
    },
    /// The bitrate is outside what the codec accepts.
    #[error("bitrate {bitrate_bps} b/s is outside {min}..={max} b/s")]
    InvalidBitrate {
        /// The bitrate asked for.
        bitrate_bps: u32,
        /// Lowest accepted bitrate.
        min: u32,
        /// Highest accepted bitrate.
        max: u32,
    },
    /// An empty RTP payload.
    #[error("empty payload")]
    EmptyPayload,
    /// libopus refused the packet or the call (a malformed packet, most often).
    #[error("opus: {0}")]
    Opus(#[from] audiopus::Error),
}

/// The audio codecs Callisto speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodecKind {
    /// Opus (RFC 6716, RTP payload format RFC 7587): 48 kHz, mono or stereo, dynamic payload type.
    Opus,
    /// G.711 µ-law: 8 kHz mono, static payload type 0.
    Pcmu,
    /// G.711 A-law: 8 kHz mono, static payload type 8.
    Pcma,
}

impl AudioCodecKind {
    /// Every codec, in Callisto's order of preference for offers.
    pub const ALL: [AudioCodecKind; 3] = [
        AudioCodecKind::Opus,
        AudioCodecKind::Pcmu,
        AudioCodecKind::Pcma,
    ];

    /// The encoding name in SDP `a=rtpmap` ("opus", "PCMU", "PCMA").
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodecKind::Opus => "opus",
            AudioCodecKind::Pcmu => "PCMU",
            AudioCodecKind::Pcma => "PCMA",
        }
    }

    /// The codec named by an `a=rtpmap` encoding name, compared case-insensitively.
    pub fn from_encoding_name(name: &str) -> Option<AudioCodecKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.encoding_name().eq_ignore_ascii_case(name))
    }

    /// The RTP clock rate in Hz (48000 for Opus, 8000 for G.711); also the PCM sample rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodecKind::Opus => 48_000,
            AudioCodecKind::Pcmu | AudioCodecKind::Pcma => 8_000,
        }
    }

    /// The channel count written in `a=rtpmap`: always 2 for Opus (RFC 7587 §7, whatever is sent),
    /// 1 for G.711 (where it is usually left out).
    pub fn rtpmap_channels(self) -> u16 {
        match self {
            AudioCodecKind::Opus => 2,
            AudioCodecKind::Pcmu | AudioCodecKind::Pcma => 1,
        }
    }

    /// The static RTP payload type of RFC 3551, if the codec has one (PCMU 0, PCMA 8).
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            AudioCodecKind::Opus => None,
            AudioCodecKind::Pcmu => Some(0),
            AudioCodecKind::Pcma => Some(8),
        }
    }

    /// The payload type Callisto offers: the static one, or 111 for Opus (the dynamic number
    /// browsers use).
    pub fn default_payload_type(self) -> u8 {
        self.static_payload_type().unwrap_or(111)
    }

    /// Whether the codec carries `channels` channels of PCM (Opus 1 or 2, G.711 1).
    pub fn supports_channels(self, channels: u16) -> bool {
        match self {
            AudioCodecKind::Opus => matches!(channels, 1 | 2),
            AudioCodecKind::Pcmu | AudioCodecKind::Pcma => channels == 1,
        }
    }

    /// The PCM format encoders take and decoders produce, for `channels` channels.
    pub fn pcm_format(self, channels: u16) -> AudioFormat {
        AudioFormat::new(self.clock_rate(), channels)
    }

    /// An encoder configured by `config`.
    pub fn make_encoder(self, config: &EncoderConfig) -> Result<Box<dyn AudioEncoder>, CodecError> {
        Ok(match self {
            AudioCodecKind::Opus => Box::new(OpusEncoder::new(config)?),
            AudioCodecKind::Pcmu => Box::new(G711Encoder::new(G711Law::MuLaw, config)?),
            AudioCodecKind::Pcma => Box::new(G711Encoder::new(G711Law::ALaw, config)?),
        })
    }

    /// A decoder producing `channels` channels of PCM.
    ///
    /// An Opus decoder decodes mono and stereo streams alike into the channel count asked for.
    pub fn make_decoder(self, channels: u16) -> Result<Box<dyn AudioDecoder>, CodecError> {
        Ok(match self {
            AudioCodecKind::Opus => Box::new(OpusDecoder::new(channels)?),
            AudioCodecKind::Pcmu => Box::new(G711Decoder::new(G711Law::MuLaw, channels)?),
            AudioCodecKind::Pcma => Box::new(G711Decoder::new(G711Law::ALaw, channels)?),
        })
    }
}

impl fmt::Display for AudioCodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// The widest audio band an encoder may code (Opus's `OPUS_SET_MAX_BANDWIDTH`). The encoder
/// still narrows it on its own when the bitrate is too low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioBandwidth {
    /// Up to 4 kHz: telephone band, what G.711 carries.
    Narrowband,
    /// Up to 6 kHz.
    Mediumband,
    /// Up to 8 kHz: wideband ("HD") voice, what G.722 and AMR-WB carry. Opus codes it with
    /// SILK alone.
    Wideband,
    /// Up to 12 kHz (Opus hybrid mode: SILK and CELT).
    SuperWideband,
    /// Up to 20 kHz: music (Opus hybrid or CELT mode).
    Fullband,
}

/// How to set up an encoder. Settings a codec has no use for (bitrate and FEC for G.711) are
/// ignored by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Channels of the PCM given to the encoder.
    pub channels: u16,
    /// Frame duration in milliseconds: 10, 20, 40 or 60 for Opus; a multiple of 10 up to 60 for
    /// G.711. Default 20.
    pub frame_ms: u32,
    /// Target bitrate in bits per second (Opus: 6000..=510000). `None`: 32 kb/s mono, 64 kb/s
    /// stereo.
    pub bitrate_bps: Option<u32>,
    /// Opus in-band forward error correction (LBRR). Default on.
    pub fec: bool,
    /// Expected packet loss in percent (0..=100), the hint that sizes Opus FEC. Default 10.
    pub packet_loss_percent: u8,
    /// Opus encoder complexity, 0 (cheapest) to 10 (libopus's own default, best quality per
    /// bit); values above 10 are taken as 10. Default [`EncoderConfig::DEFAULT_COMPLEXITY`].
    pub complexity: u8,
    /// The widest band Opus may code. Default [`EncoderConfig::DEFAULT_MAX_BANDWIDTH`].
    pub max_bandwidth: AudioBandwidth,
}

impl EncoderConfig {
    /// The Opus complexity Callisto uses unless told otherwise: 1, a choice of CPU over a
    /// little fidelity. With the wideband limit ([`EncoderConfig::DEFAULT_MAX_BANDWIDTH`]) Opus
    /// runs SILK alone, where complexity picks the pitch search, the noise-shaping order and
    /// the quantizer's delayed-decision states; from 2 on the quantizer keeps several states,
    /// and that is most of the encoder's time. Measured here by `cargo bench -p callisto-media
    /// --bench audio_pipeline` (48 kHz mono, 32 kb/s, FEC), encode + decode of 20 ms costs, on a
    /// tone, 71 µs at 1, 108 µs at 2, 118 µs at 3 and 273 µs at 10; on a synthetic voice 94,
    /// 145, 155 and 345 µs. The voice decodes with a segmental SNR of 8.4 dB at 1, 9.3 dB at 3,
    /// 10.4 dB at 5 and 11.2 dB at 10, and a log-spectral distance of 3.45, 3.33, 3.25 and 3.27
    /// dB. Both compare waveforms and spectra; SILK shapes its noise for the ear, which neither
    /// rewards. 1 is the highest complexity with which one end of a call (encode, decode,
    /// jitter buffer, SRTP) runs at least 200 times faster than real time here, on a voice as
    /// on a tone (`audio_call`: 230x and 250x); 3 would give about 0.9 dB of SNR for two
    /// thirds more encoding and decoding time.
    pub const DEFAULT_COMPLEXITY: u8 = 1;

    /// The audio band Callisto codes unless told otherwise: wideband (up to 8 kHz), the band
    /// of HD voice. It is what a voice call carries (a headset microphone and speech have
    /// little above it), and it keeps Opus in SILK-only mode: about a tenth less encoding and a
    /// third less decoding time than letting Opus pick super-wideband or fullband hybrid
    /// coding at 32 kb/s, and the whole bitrate spent on the voice band.
    pub const DEFAULT_MAX_BANDWIDTH: AudioBandwidth = AudioBandwidth::Wideband;

    /// Mono, 20 ms, default bitrate, FEC on with a 10 % loss hint, default complexity.
    pub const fn mono() -> Self {
        EncoderConfig {
            channels: 1,
            frame_ms: 20,
            bitrate_bps: None,
            fec: true,
            packet_loss_percent: 10,
            complexity: Self::DEFAULT_COMPLEXITY,
            max_bandwidth: Self::DEFAULT_MAX_BANDWIDTH,
        }
    }

    /// As [`EncoderConfig::mono`], with two channels.
    pub const fn stereo() -> Self {
        EncoderConfig {
            channels: 2,
            ..Self::mono()
        }
    }

    /// The same settings with another bitrate.
    #[must_use]
    pub const fn with_bitrate(self, bitrate_bps: u32) -> Self {
        EncoderConfig {
            bitrate_bps: Some(bitrate_bps),
            ..self
        }
    }

    /// The same settings with another widest audio band.
    #[must_use]
    pub const fn with_max_bandwidth(self, max_bandwidth: AudioBandwidth) -> Self {
        EncoderConfig {
            max_bandwidth,
            ..self
        }
    }

    /// The same settings with another Opus complexity (0..=10).
    #[must_use]
    pub const fn with_complexity(self, complexity: u8) -> Self {
        EncoderConfig { complexity, ..self }
    }
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self::mono()
    }
}

/// Encodes frames of PCM into RTP payloads.
pub trait AudioEncoder: Send {
    /// Which codec this is.
    fn kind(&self) -> AudioCodecKind;

    /// The RTP clock rate in Hz, equal to the PCM sample rate.
    fn clock_rate(&self) -> u32;

    /// Channels of the PCM taken.
    fn channels(&self) -> u16;

    /// Samples per channel in one frame (960 for 20 ms Opus, 160 for 20 ms G.711); also the RTP
    /// timestamp increment per packet.
    fn frame_samples(&self) -> usize;

    /// The PCM format taken.
    fn pcm_format(&self) -> AudioFormat {
        AudioFormat::new(self.clock_rate(), self.channels())
    }

    /// The codec's own delay in samples per channel: how far decoded audio lags the input beyond
    /// the frame itself (Opus's look-ahead, 312 samples = 6.5 ms; 0 for G.711).
    fn delay_samples(&self) -> usize;

    /// Encodes exactly one frame (`frame_samples() * channels()` interleaved samples), appends the
    /// payload to `out`, and returns its length in bytes.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError>;

    /// Changes the target bitrate (bits per second); fixed-rate codecs ignore it.
    fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError>;

    /// Changes the expected packet loss (percent) that sizes in-band FEC; codecs without FEC
    /// ignore it.
    fn set_packet_loss_percent(&mut self, percent: u8) -> Result<(), CodecError>;
}

/// Decodes RTP payloads into PCM, and makes up for lost ones.
pub trait AudioDecoder: Send {
    /// Which codec this is.
    fn kind(&self) -> AudioCodecKind;

    /// The RTP clock rate in Hz, equal to the PCM sample rate.
    fn clock_rate(&self) -> u32;

    /// Channels of the PCM produced.
    fn channels(&self) -> u16;

    /// The PCM format produced.
    fn pcm_format(&self) -> AudioFormat {
        AudioFormat::new(self.clock_rate(), self.channels())
    }

    /// Decodes one payload, appends the interleaved PCM to `out`, and returns the samples per
    /// channel appended. On error nothing is appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Appends a replacement for one lost packet, as long as the last packet decoded (20 ms before
    /// any), and returns the samples per channel appended. Consecutive calls fade to silence.
    fn conceal(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Recovers the packet lost just before `next_payload` from the forward error correction data
    /// inside `next_payload`, appends it, and returns the samples per channel appended.
    /// `next_payload` itself is decoded afterwards with [`AudioDecoder::decode`], as usual.
    ///
    /// When the codec has no FEC ([`AudioDecoder::has_fec`] is false) or the packet carries none,
    /// this conceals instead, so it can always be called when the next packet is at hand.
    fn decode_fec(&mut self, next_payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Whether this codec can carry in-band FEC (Opus).
    fn has_fec(&self) -> bool;

    /// Forgets all state (for a new stream, e.g. after an SSRC change).
    fn reset(&mut self);
}

#[cfg(test)]
mod tests;
