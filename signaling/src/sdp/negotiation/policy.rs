//! What we can do: codecs, DTMF, SRTP and packet time, and the sockets we bound.

use std::net::IpAddr;

use crate::sdp::attributes::RtpMap;

/// An audio codec Callisto can encode and decode, as it appears in SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioCodec {
    /// The encoding name (`opus`, `PCMU`, `PCMA`); compared case-insensitively.
    pub name: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The channel count in the rtpmap (Opus is always written `/2`, RFC 7587 §7).
    pub channels: u16,
    /// The format parameters we announce for what we receive (`a=fmtp`).
    pub fmtp: Option<String>,
    /// The payload type our offers use: the static one, or a dynamic one (96–127).
    pub payload_type: u8,
}

impl AudioCodec {
    /// Opus (RFC 7587): `opus/48000/2`, payload type 111, `useinbandfec=1` (we decode FEC).
    pub fn opus() -> Self {
        AudioCodec {
            name: "opus".to_owned(),
            clock_rate: 48000,
            channels: 2,
            fmtp: Some("useinbandfec=1".to_owned()),
            payload_type: 111,
        }
    }

    /// G.711 µ-law: `PCMU/8000`, static payload type 0.
    pub fn pcmu() -> Self {
        AudioCodec {
            name: "PCMU".to_owned(),
            clock_rate: 8000,
            channels: 1,
            fmtp: None,
            payload_type: 0,
        }
    }

    /// G.711 A-law: `PCMA/8000`, static payload type 8.
    pub fn pcma() -> Self {
        AudioCodec {
            name: "PCMA".to_owned(),
            clock_rate: 8000,
            channels: 1,
            fmtp: None,
            payload_type: 8,
        }
    }

    /// Whether an rtpmap (or static assignment) names this codec: same encoding name, clock
    /// rate and channel count (the channel count is not compared for Opus, which some peers
    /// write without `/2`).
    pub fn matches(&self, map: &RtpMap) -> bool {
        self.name.eq_ignore_ascii_case(&map.encoding)
            && self.clock_rate == map.clock_rate
            && (self.is_opus() || self.channels == map.channel_count())
    }

    /// The rtpmap this codec is written with under `payload_type`.
    pub fn rtpmap(&self, payload_type: u8) -> RtpMap {
        RtpMap {
            payload_type,
            encoding: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: (self.channels != 1 || self.is_opus()).then_some(self.channels),
        }
    }

    fn is_opus(&self) -> bool {
        self.name.eq_ignore_ascii_case("opus")
    }
}

/// Whether and how calls use SDES-SRTP; see the table in the [module docs](super).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only: offers `RTP/AVP`, rejects `RTP/SAVP` offers.
    Off,
    /// Best-effort SRTP: offers `RTP/AVP` with `a=crypto`, accepts plain and secure offers.
    #[default]
    Optional,
    /// SRTP only: offers `RTP/SAVP`, rejects offers and answers without usable crypto.
    Mandatory,
}

/// Our audio capabilities, from the account's media profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPolicy {
    /// Codecs in our order of preference (the order of our offers).
    pub codecs: Vec<AudioCodec>,
    /// Whether we offer and accept RFC 4733 `telephone-event` (DTMF).
    pub telephone_event: bool,
    /// SDES-SRTP policy.
    pub srtp: SrtpPolicy,
    /// The packet time we ask for (`a=ptime`), in milliseconds.
    pub ptime_ms: u32,
}

impl Default for AudioPolicy {
    /// Opus, PCMU, PCMA; telephone-event; best-effort SRTP; 20 ms packets.
    fn default() -> Self {
        AudioPolicy {
            codecs: vec![AudioCodec::opus(), AudioCodec::pcmu(), AudioCodec::pcma()],
            telephone_event: true,
            srtp: SrtpPolicy::Optional,
            ptime_ms: 20,
        }
    }
}

/// The local end of the audio stream: where we receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalMedia {
    /// The address written in `c=` and `o=` (the public one when known).
    pub address: IpAddr,
    /// The RTP port.
    pub rtp_port: u16,
    /// The separate RTCP port used when RTCP is not multiplexed, or `None` when RTCP shares the
    /// RTP port even then. `rtcp-mux` is offered either way.
    pub rtcp_port: Option<u16>,
}
