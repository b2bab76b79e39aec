//! Opus through `audiopus` (the system libopus): 48 kHz, mono or stereo, VOIP application.
//!
//! The encoder codes at most [`EncoderConfig::max_bandwidth`] of audio band — wideband by
//! default, which keeps voice in SILK-only mode, the cheapest to encode and decode — while PCM
//! and the RTP clock stay at 48 kHz, so any Opus peer decodes the stream as usual.
//!
//! The encoder runs with in-band FEC (LBRR) on by default and a packet-loss hint that sizes it;
//! libopus only spends bits on FEC when the hint is above zero and the bitrate allows it. The
//! decoder conceals a lost packet with libopus's PLC (decoding "no packet") and recovers one from
//! the FEC data in the next packet (`opus_decode` with `decode_fec = 1`). Malformed packets are
//! refused by libopus and surface as [`CodecError::Opus`].

use audiopus::coder::{Decoder, Encoder, GenericCtl};
use audiopus::packet::Packet;
use audiopus::{Application, Bandwidth, Bitrate, Channels, MutSignals, SampleRate};

use super::{
    AudioBandwidth, AudioCodecKind, AudioDecoder, AudioEncoder, CodecError, EncoderConfig,
};

/// Opus's sample rate (and RTP clock rate) as Callisto runs it.
const RATE: u32 = 48_000;
/// Samples per channel in the longest Opus packet (120 ms).
const MAX_PACKET_SAMPLES: usize = 5_760;
/// Largest payload an encoder call may produce (the size libopus recommends for its output buffer).
const MAX_PAYLOAD: usize = 4_000;
/// Samples per channel in 20 ms.
const FRAME_20MS: usize = 960;
/// The highest complexity libopus accepts.
const MAX_COMPLEXITY: u8 = 10;

fn opus_channels(channels: u16) -> Result<Channels, CodecError> {
    match channels {
        1 => Ok(Channels::Mono),
        2 => Ok(Channels::Stereo),
        _ => Err(CodecError::UnsupportedChannels {
            codec: AudioCodecKind::Opus,
            channels,
        }),
    }
}

fn opus_bandwidth(bandwidth: AudioBandwidth) -> Bandwidth {
    match bandwidth {
        AudioBandwidth::Narrowband => Bandwidth::Narrowband,
        AudioBandwidth::Mediumband => Bandwidth::Mediumband,
        AudioBandwidth::Wideband => Bandwidth::Wideband,
        AudioBandwidth::SuperWideband => Bandwidth::Superwideband,
        AudioBandwidth::Fullband => Bandwidth::Fullband,
    }
}

/// An Opus encoder.
pub struct OpusEncoder {
    encoder: Encoder,
    channels: u16,
    frame_samples: usize,
    /// libopus's look-ahead in samples per channel.
    lookahead: usize,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("channels", &self.channels)
            .field("frame_samples", &self.frame_samples)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// Lowest bitrate accepted, in bits per second.
    pub const MIN_BITRATE: u32 = 6_000;
    /// Highest bitrate accepted, in bits per second.
    pub const MAX_BITRATE: u32 = 510_000;

    /// An encoder for 48 kHz PCM with `config.channels` (1 or 2) channels and `config.frame_ms`
    /// (10, 20, 40 or 60) frames, in the VOIP application mode, coding at most
    /// `config.max_bandwidth` of audio band.
    pub fn new(config: &EncoderConfig) -> Result<Self, CodecError> {
        let channels = opus_channels(config.channels)?;
        if !matches!(config.frame_ms, 10 | 20 | 40 | 60) {
            return Err(CodecError::UnsupportedFrameDuration {
                codec: AudioCodecKind::Opus,
                frame_ms: config.frame_ms,
            });
        }
        let mut encoder = Encoder::new(SampleRate::Hz48000, channels, Application::Voip)?;
        encoder.set_inband_fec(config.fec)?;
        encoder.set_complexity(config.complexity.min(MAX_COMPLEXITY))?;
        encoder.set_max_bandwidth(opus_bandwidth(config.max_bandwidth))?;
        let lookahead = encoder.lookahead()? as usize;
        let mut this = OpusEncoder {
            encoder,
            lookahead,
            channels: config.channels,
            frame_samples: (RATE / 1000 * config.frame_ms) as usize,
            scratch: vec![0; MAX_PAYLOAD],
        };
        let default_bitrate = 32_000 * u32::from(config.channels);
        this.set_bitrate(config.bitrate_bps.unwrap_or(default_bitrate))?;
        this.set_packet_loss_percent(config.packet_loss_percent)?;
        Ok(this)
    }
}

impl AudioEncoder for OpusEncoder {
    fn kind(&self) -> AudioCodecKind {
        AudioCodecKind::Opus
    }

    fn clock_rate(&self) -> u32 {
        RATE
    }

    fn channels(&self) -> u16 {
        self.channels
    }

    fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    fn delay_samples(&self) -> usize {
        self.lookahead
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        let expected = self.frame_samples * self.channels as usize;
        if pcm.len() != expected {
            return Err(CodecError::WrongFrameLength {
                expected,
                got: pcm.len(),
            });
        }
        let n = self.encoder.encode(pcm, &mut self.scratch)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError> {
        if !(Self::MIN_BITRATE..=Self::MAX_BITRATE).contains(&bitrate_bps) {
            return Err(CodecError::InvalidBitrate {
                bitrate_bps,
                min: Self::MIN_BITRATE,
                max: Self::MAX_BITRATE,
            });
        }
        // Within MAX_BITRATE, the value fits an i32.
        self.encoder
            .set_bitrate(Bitrate::BitsPerSecond(bitrate_bps as i32))?;
        Ok(())
    }

    fn set_packet_loss_percent(&mut self, percent: u8) -> Result<(), CodecError> {
        self.encoder.set_packet_loss_perc(percent.min(100))?;
        Ok(())
    }
}

/// An Opus decoder producing 48 kHz PCM.
pub struct OpusDecoder {
    decoder: Decoder,
    channels: u16,
    /// Room for the longest packet.
    buffer: Vec<i16>,
    /// Samples per channel of the last packet decoded or concealed.
    last_samples: usize,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("channels", &self.channels)
            .field("last_samples", &self.last_samples)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder producing `channels` (1 or 2) channels; streams of either channel count decode.
    pub fn new(channels: u16) -> Result<Self, CodecError> {
        let decoder = Decoder::new(SampleRate::Hz48000, opus_channels(channels)?)?;
        Ok(OpusDecoder {
            decoder,
            channels,
            buffer: vec![0; MAX_PACKET_SAMPLES * channels as usize],
            last_samples: FRAME_20MS,
        })
    }

    /// Runs libopus into the first `samples` samples per channel of the buffer (all of it for
    /// `None`), appends what it produced, and returns the samples per channel.
    fn run(
        &mut self,
        packet: Option<&[u8]>,
        samples: Option<usize>,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        let packet = match packet {
            Some([]) => return Err(CodecError::EmptyPayload),
            Some(bytes) => Some(Packet::try_from(bytes)?),
            None => None,
        };
        let channels = self.channels as usize;
        let len = samples.map_or(self.buffer.len(), |n| n.min(MAX_PACKET_SAMPLES) * channels);
        let signals = MutSignals::try_from(&mut self.buffer[..len])?;
        let n = self.decoder.decode(packet, signals, fec)?;
        out.extend_from_slice(&self.buffer[..n * channels]);
        self.last_samples = n;
        Ok(n)
    }
}

impl AudioDecoder for OpusDecoder {
    fn kind(&self) -> AudioCodecKind {
        AudioCodecKind::Opus
    }

    fn clock_rate(&self) -> u32 {
        RATE
    }

    fn channels(&self) -> u16 {
        self.channels
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        self.run(Some(payload), None, false, out)
    }

    fn conceal(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let samples = self.last_samples;
        self.run(None, Some(samples), false, out)
    }

    fn decode_fec(&mut self, next_payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if next_payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        // The lost packet is taken to last as long as the one that carries its FEC data.
        let samples =
            audiopus::packet::nb_samples(Packet::try_from(next_payload)?, SampleRate::Hz48000)?;
        self.run(Some(next_payload), Some(samples), true, out)
    }

    fn has_fec(&self) -> bool {
        true
    }

    fn reset(&mut self) {
        // Resetting a valid decoder cannot fail; if libopus ever refused, the old state would
        // only colour the first frames of the new stream.
        let _ = self.decoder.reset_state();
        self.last_samples = FRAME_20MS;
    }
}

#[cfg(test)]
mod tests;
