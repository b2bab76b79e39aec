//! Writing our audio m-line, the same way in offers and answers.

use super::policy::AudioCodec;
use crate::sdp::attributes::Direction;
use crate::sdp::crypto::CryptoAttribute;
use crate::sdp::model::{Attribute, MediaDescription, MediaKind, Protocol};

/// The RFC 4733 events we receive: DTMF digits and flash.
const TELEPHONE_EVENTS: &str = "0-16";

/// How our m-line announces RTCP.
pub(super) enum RtcpLine {
    /// `a=rtcp-mux`, preceded by `a=rtcp:<port>` when given (the fallback for peers without
    /// RFC 5761).
    Mux { fallback_port: Option<u16> },
    /// `a=rtcp:<port>` alone.
    Port(u16),
}

/// Everything our audio m-line says.
pub(super) struct AudioSection<'a> {
    pub port: u16,
    pub protocol: Protocol,
    /// Payload types and the codecs they stand for, in order.
    pub codecs: Vec<(u8, &'a AudioCodec)>,
    /// `telephone-event` payload types and their clock rates.
    pub telephone_events: Vec<(u8, u32)>,
    pub ptime_ms: u32,
    pub rtcp: RtcpLine,
    pub crypto: Vec<CryptoAttribute>,
    pub direction: Direction,
}

impl AudioSection<'_> {
    /// The m-line and its attributes.
    pub fn write(&self) -> MediaDescription {
        let formats = self
            .codecs
            .iter()
            .map(|(pt, _)| *pt)
            .chain(self.telephone_events.iter().map(|(pt, _)| *pt))
            .map(|pt| pt.to_string())
            .collect();
        let mut m =
            MediaDescription::new(MediaKind::Audio, self.port, self.protocol.clone(), formats);
        let a = &mut m.attributes;
        for (pt, codec) in &self.codecs {
            a.push(Attribute::value("rtpmap", codec.rtpmap(*pt).to_string()));
            if let Some(fmtp) = &codec.fmtp {
                a.push(Attribute::value("fmtp", format!("{pt} {fmtp}")));
            }
        }
        for (pt, rate) in &self.telephone_events {
            a.push(Attribute::value(
                "rtpmap",
                format!("{pt} telephone-event/{rate}"),
            ));
            a.push(Attribute::value("fmtp", format!("{pt} {TELEPHONE_EVENTS}")));
        }
        a.push(Attribute::value("ptime", self.ptime_ms.to_string()));
        match self.rtcp {
            RtcpLine::Mux { fallback_port } => {
                if let Some(port) = fallback_port {
                    a.push(Attribute::value("rtcp", port.to_string()));
                }
                a.push(Attribute::flag("rtcp-mux"));
            }
            RtcpLine::Port(port) => a.push(Attribute::value("rtcp", port.to_string())),
        }
        for crypto in &self.crypto {
            a.push(Attribute::value("crypto", crypto.to_string()));
        }
        a.push(Attribute::flag(self.direction.as_str()));
        m
    }
}

/// An m-line that declines or disables a stream: port 0, the same media type, protocol and
/// formats, no attributes (RFC 3264 §6, §8.2).
pub(super) fn disabled_section(media: &MediaDescription) -> MediaDescription {
    MediaDescription::new(
        media.kind.clone(),
        0,
        media.protocol.clone(),
        media.formats.clone(),
    )
}
