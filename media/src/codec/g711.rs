//! G.711 (ITU-T G.711, 1988): µ-law (PCMU) and A-law (PCMA) companding of 8 kHz mono audio.
//!
//! The conversions follow the ITU-T reference implementation (G.191 Software Tools Library,
//! `g711.c`): 16-bit linear input, magnitude taken as the one's complement of negative values, so
//! −1 codes as the smallest negative level. The decoding tables are computed at compile time from
//! the same rules. Each payload byte is one sample; a payload of any length decodes.
//!
//! Loss concealment repeats the last decoded frame with a fade: the first lost frame fades from
//! full level to two thirds, the next to one third, the third to silence, and further losses are
//! silence. G.711 has no forward error correction.

use super::{AudioCodecKind, AudioDecoder, AudioEncoder, CodecError, EncoderConfig};

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// µ-law, used in North America and Japan (PCMU).
    MuLaw,
    /// A-law, used elsewhere (PCMA).
    ALaw,
}

impl G711Law {
    /// The RTP codec this law is.
    pub fn kind(self) -> AudioCodecKind {
        match self {
            G711Law::MuLaw => AudioCodecKind::Pcmu,
            G711Law::ALaw => AudioCodecKind::Pcma,
        }
    }

    /// Compresses one linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711Law::MuLaw => linear_to_ulaw(sample),
            G711Law::ALaw => linear_to_alaw(sample),
        }
    }

    /// Expands one code.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            G711Law::MuLaw => ulaw_to_linear(code),
            G711Law::ALaw => alaw_to_linear(code),
        }
    }
}

/// Compresses a 16-bit linear sample to a µ-law code (G.191 `ulaw_compress`).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let x = i32::from(sample);
    // 14-bit magnitude (one's complement for negatives) plus the bias of 33.
    let magnitude = if x < 0 { (!x) >> 2 } else { x >> 2 } + 33;
    let magnitude = magnitude.min(0x1FFF);
    // Segment number 1..=8: the position of the highest bit above bit 5.
    let segment = 32 - ((magnitude >> 6) as u32).leading_zeros() + 1;
    let high_nibble = 8 - segment as i32;
    let low_nibble = 0x0F - ((magnitude >> segment) & 0x0F);
    let code = (high_nibble << 4) | low_nibble;
    let code = if x >= 0 { code | 0x80 } else { code };
    code as u8
}

/// Compresses a 16-bit linear sample to an A-law code (G.191 `alaw_compress`).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let x = i32::from(sample);
    // 12-bit magnitude, one's complement for negatives.
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        let mut exponent = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            exponent += 1;
        }
        ix -= 16;
        ix += exponent << 4;
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

/// Expands a µ-law code to a 16-bit linear sample (G.191 `ulaw_expand`).
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[code as usize]
}

/// Expands an A-law code to a 16-bit linear sample (G.191 `alaw_expand`).
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

const fn ulaw_expand(code: u8) -> i16 {
    let sign = if code < 0x80 { -1 } else { 1 };
    let inverted = !code as i32;
    let exponent = (inverted >> 4) & 0x07;
    let mantissa = inverted & 0x0F;
    let step = 4 << (exponent + 1);
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let exponent = ix >> 4;
    let mut mantissa = ix & 0x0F;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 0x08;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    (if code > 127 { mantissa } else { -mantissa }) as i16
}

const fn expansion_table(mu_law: bool) -> [i16; 256] {
    let mut table = [0; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = if mu_law {
            ulaw_expand(code as u8)
        } else {
            alaw_expand(code as u8)
        };
        code += 1;
    }
    table
}

static ULAW_TO_LINEAR: [i16; 256] = expansion_table(true);
static ALAW_TO_LINEAR: [i16; 256] = expansion_table(false);

/// Checks that G.711 can carry `channels` and the frame duration, returning samples per frame.
fn check_config(law: G711Law, channels: u16, frame_ms: u32) -> Result<usize, CodecError> {
    if channels != 1 {
        return Err(CodecError::UnsupportedChannels {
            codec: law.kind(),
            channels,
        });
    }
    if frame_ms == 0 || frame_ms > 60 || !frame_ms.is_multiple_of(10) {
        return Err(CodecError::UnsupportedFrameDuration {
            codec: law.kind(),
            frame_ms,
        });
    }
    Ok(frame_ms as usize * 8)
}

/// A G.711 encoder (8 kHz mono, one byte per sample, 64 kb/s).
#[derive(Debug, Clone)]
pub struct G711Encoder {
    law: G711Law,
    frame_samples: usize,
}

impl G711Encoder {
    /// An encoder for `law`; `config` must ask for one channel and a frame duration that is a
    /// multiple of 10 ms up to 60 ms. Bitrate and FEC settings do not apply.
    pub fn new(law: G711Law, config: &EncoderConfig) -> Result<Self, CodecError> {
        let frame_samples = check_config(law, config.channels, config.frame_ms)?;
        Ok(G711Encoder { law, frame_samples })
    }
}

impl AudioEncoder for G711Encoder {
    fn kind(&self) -> AudioCodecKind {
        self.law.kind()
    }

    fn clock_rate(&self) -> u32 {
        8_000
    }

    fn channels(&self) -> u16 {
        1
    }

    fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    fn delay_samples(&self) -> usize {
        0
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        if pcm.len() != self.frame_samples {
            return Err(CodecError::WrongFrameLength {
                expected: self.frame_samples,
                got: pcm.len(),
            });
        }
        out.extend(pcm.iter().map(|&s| self.law.encode(s)));
        Ok(pcm.len())
    }

    fn set_bitrate(&mut self, _bitrate_bps: u32) -> Result<(), CodecError> {
        Ok(())
    }

    fn set_packet_loss_percent(&mut self, _percent: u8) -> Result<(), CodecError> {
        Ok(())
    }
}

/// Lost frames after which concealment is silence.
const FADE_FRAMES: usize = 3;

/// A G.711 decoder with repeat-and-fade loss concealment.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    law: G711Law,
    /// The last decoded frame, repeated to conceal losses.
    last: Vec<i16>,
    /// Consecutive frames concealed since the last decoded one.
    concealed: usize,
}

impl G711Decoder {
    /// A decoder for `law`; G.711 is mono, so `channels` must be 1.
    pub fn new(law: G711Law, channels: u16) -> Result<Self, CodecError> {
        check_config(law, channels, 20)?;
        Ok(G711Decoder {
            law,
            last: Vec::new(),
            concealed: 0,
        })
    }
}

impl AudioDecoder for G711Decoder {
    fn kind(&self) -> AudioCodecKind {
        self.law.kind()
    }

    fn clock_rate(&self) -> u32 {
        8_000
    }

    fn channels(&self) -> u16 {
        1
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let start = out.len();
        out.extend(payload.iter().map(|&code| self.law.decode(code)));
        self.last.clear();
        self.last.extend_from_slice(&out[start..]);
        self.concealed = 0;
        Ok(payload.len())
    }

    fn conceal(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if self.last.is_empty() {
            // Nothing heard yet: 20 ms of silence.
            out.extend(std::iter::repeat_n(0, 160));
            return Ok(160);
        }
        let n = self.last.len();
        let fade = FADE_FRAMES as f32;
        let gain_from = 1.0 - (self.concealed as f32 / fade).min(1.0);
        let gain_to = 1.0 - ((self.concealed + 1) as f32 / fade).min(1.0);
        out.extend(self.last.iter().enumerate().map(|(i, &s)| {
            let gain = gain_from + (gain_to - gain_from) * (i as f32 / n as f32);
            (f32::from(s) * gain).round() as i16
        }));
        self.concealed += 1;
        Ok(n)
    }

    fn decode_fec(
        &mut self,
        _next_payload: &[u8],
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        self.conceal(out)
    }

    fn has_fec(&self) -> bool {
        false
    }

    fn reset(&mut self) {
        self.last.clear();
        self.concealed = 0;
    }
}

#[cfg(test)]
mod tests;
