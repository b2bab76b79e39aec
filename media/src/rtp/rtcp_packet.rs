//! Compound RTCP packets: strict splitting and parsing of what arrives, building of what leaves.
//!
//! [`parse_compound`] walks a compound packet itself (RFC 3550 §6.1, A.2): every packet must have
//! version 2, a length field inside the datagram, and padding only on the last one; the lengths
//! must add up to the datagram. It then hands SR, RR, SDES, BYE, PLI, FIR and generic NACK to
//! `rtc-rtcp`'s parsers one by one; transport-wide congestion control feedback and REMB are
//! parsed too, but one that `rtc-rtcp` refuses is skipped rather than failing the compound.
//! Everything else (APP, XR, other feedback, types it does not know) is skipped as
//! [`RtcpPacket::Other`], so one unfamiliar block never costs the reports around it. A
//! compound need not begin with SR or RR, which admits RFC 5506 reduced-size feedback.

use bytes::{Bytes, BytesMut};
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::SourceDescription;
use rtc_rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc_shared::marshal::{Marshal, Unmarshal};

/// RTCP packet type: sender report.
pub const RTCP_SR: u8 = 200;
/// RTCP packet type: receiver report.
pub const RTCP_RR: u8 = 201;
/// RTCP packet type: source description.
pub const RTCP_SDES: u8 = 202;
/// RTCP packet type: goodbye.
pub const RTCP_BYE: u8 = 203;
/// RTCP packet type: application-defined.
pub const RTCP_APP: u8 = 204;
/// RTCP packet type: transport-layer feedback (RFC 4585).
pub const RTCP_RTPFB: u8 = 205;
/// RTCP packet type: payload-specific feedback (RFC 4585).
pub const RTCP_PSFB: u8 = 206;
/// RTCP packet type: extended report (RFC 3611).
pub const RTCP_XR: u8 = 207;

/// Why a datagram is not an acceptable compound RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Nothing, or less than one 4-byte header, where a packet should start.
    #[error("RTCP packet truncated at offset {offset}")]
    Truncated {
        /// Where in the compound the truncated packet starts.
        offset: usize,
    },
    /// A version other than 2.
    #[error("RTCP version {version} at offset {offset}")]
    BadVersion {
        /// The version found.
        version: u8,
        /// Where in the compound the packet starts.
        offset: usize,
    },
    /// A length field that runs past the end of the datagram.
    #[error("RTCP length {length_words} at offset {offset} runs past the {len}-byte datagram")]
    LengthOverrun {
        /// The length field (32-bit words minus one).
        length_words: u16,
        /// Where in the compound the packet starts.
        offset: usize,
        /// The datagram's length.
        len: usize,
    },
    /// Padding on a packet that is not the last, or a padding count that is zero, not a multiple
    /// of four, or longer than the packet's body.
    #[error("bad RTCP padding at offset {offset}")]
    BadPadding {
        /// Where in the compound the packet starts.
        offset: usize,
    },
    /// A known packet type whose body does not parse.
    #[error("malformed RTCP packet of type {packet_type}")]
    Malformed {
        /// The packet type.
        packet_type: u8,
    },
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RtcpPacket {
    /// A sender report.
    SenderReport(SenderReport),
    /// A receiver report.
    ReceiverReport(ReceiverReport),
    /// Source descriptions (CNAME and friends).
    SourceDescription(SourceDescription),
    /// A BYE.
    Goodbye(Goodbye),
    /// A picture loss indication (RFC 4585 §6.3.1).
    PictureLossIndication(PictureLossIndication),
    /// A full intra request (RFC 5104 §4.3.1).
    FullIntraRequest(FullIntraRequest),
    /// A generic NACK (RFC 4585 §6.2.1).
    Nack(TransportLayerNack),
    /// Transport-wide congestion control feedback
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01).
    TransportFeedback(TransportLayerCc),
    /// A receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03).
    Remb(ReceiverEstimatedMaximumBitrate),
    /// Any other packet (APP, XR, other transport or payload feedback, unknown types, and TWCC
    /// or REMB bodies that do not parse): skipped unparsed.
    Other {
        /// The packet type.
        packet_type: u8,
        /// The 5-bit count/format field.
        count: u8,
    },
}

/// Splits and parses a compound RTCP packet (plain, or after SRTCP decryption).
pub fn parse_compound(bytes: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if bytes.is_empty() {
        return Err(RtcpError::Truncated { offset: 0 });
    }
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < 4 {
            return Err(RtcpError::Truncated { offset });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { version, offset });
        }
        let length_words = u16::from_be_bytes([rest[2], rest[3]]);
        let len = (usize::from(length_words) + 1) * 4;
        if len > rest.len() {
            return Err(RtcpError::LengthOverrun {
                length_words,
                offset,
                len: bytes.len(),
            });
        }
        let mut packet = &rest[..len];
        let padded = rest[0] & 0x20 != 0;
        let mut unpadded;
        if padded {
            let count = usize::from(packet[len - 1]);
            let last = offset + len == bytes.len();
            if !last || count == 0 || count > len - 4 {
                return Err(RtcpError::BadPadding { offset });
            }
            // Hand the parsers the packet without its padding, as if it had never had any. Some
            // stacks use the P bit to align a BYE reason; what remains is then re-aligned with
            // the null octets RFC 3550 §6.6 prescribes.
            unpadded = packet[..len - count].to_vec();
            unpadded.resize(unpadded.len().div_ceil(4) * 4, 0);
            let words = (unpadded.len() / 4 - 1) as u16;
            unpadded[0] &= !0x20;
            unpadded[2..4].copy_from_slice(&words.to_be_bytes());
            packet = &unpadded;
        }
        packets.push(parse_one(packet)?);
        offset += len;
    }
    Ok(packets)
}

fn parse_one(packet: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let packet_type = packet[1];
    let count = packet[0] & 0x1f;
    let malformed = |_| RtcpError::Malformed { packet_type };
    let mut buf = packet;
    let parsed = match packet_type {
        RTCP_SR => RtcpPacket::SenderReport(SenderReport::unmarshal(&mut buf).map_err(malformed)?),
        RTCP_RR => {
            RtcpPacket::ReceiverReport(ReceiverReport::unmarshal(&mut buf).map_err(malformed)?)
        }
        RTCP_SDES => RtcpPacket::SourceDescription(
            SourceDescription::unmarshal(&mut buf).map_err(malformed)?,
        ),
        RTCP_BYE => RtcpPacket::Goodbye(Goodbye::unmarshal(&mut buf).map_err(malformed)?),
        RTCP_PSFB if count == 1 => RtcpPacket::PictureLossIndication(
            PictureLossIndication::unmarshal(&mut buf).map_err(malformed)?,
        ),
        RTCP_PSFB if count == 4 => {
            RtcpPacket::FullIntraRequest(FullIntraRequest::unmarshal(&mut buf).map_err(malformed)?)
        }
        RTCP_PSFB if count == 15 => match ReceiverEstimatedMaximumBitrate::unmarshal(&mut buf) {
            Ok(remb) if remb.bitrate.is_finite() && remb.bitrate >= 0.0 => RtcpPacket::Remb(remb),
            _ => RtcpPacket::Other { packet_type, count },
        },
        RTCP_RTPFB if count == 1 => {
            RtcpPacket::Nack(TransportLayerNack::unmarshal(&mut buf).map_err(malformed)?)
        }
        RTCP_RTPFB if count == 15 => match TransportLayerCc::unmarshal(&mut buf) {
            Ok(twcc) => RtcpPacket::TransportFeedback(twcc),
            Err(_) => RtcpPacket::Other { packet_type, count },
        },
        _ => RtcpPacket::Other { packet_type, count },
    };
    Ok(parsed)
}

/// Serialises packets into one compound packet.
///
/// Callisto never sends RTCP padding. `rtc-rtcp` marks the alignment octets after a BYE reason
/// with the P bit and a count; those are rewritten as the plain null octets RFC 3550 §6.6 asks
/// for, with the P bit clear, so strict receivers accept the compound.
pub fn build_compound(packets: &[&dyn Marshal]) -> Result<Bytes, RtcpError> {
    let mut out = BytesMut::new();
    for p in packets {
        let mut bytes = p
            .marshal()
            .map_err(|_| RtcpError::Malformed { packet_type: 0 })?;
        if bytes.len() >= 4 && bytes[0] & 0x20 != 0 {
            bytes[0] &= !0x20;
            let last = bytes.len() - 1;
            bytes[last] = 0;
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_rtcp::reception_report::ReceptionReport;
    use rtc_rtcp::source_description::{SdesType, SourceDescriptionChunk, SourceDescriptionItem};

    fn rr() -> ReceiverReport {
        ReceiverReport {
            ssrc: 0x1111,
            reports: vec![ReceptionReport {
                ssrc: 0x2222,
                fraction_lost: 12,
                total_lost: 34,
                last_sequence_number: 5678,
                jitter: 90,
                last_sender_report: 0x1234_5678,
                delay: 0x0001_0000,
            }],
            profile_extensions: Bytes::new(),
        }
    }

    fn sdes() -> SourceDescription {
        SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: 0x1111,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::from_static(b"callisto@example"),
                }],
            }],
        }
    }

    #[test]
    fn round_trips_rr_sdes_bye() {
        let bye = Goodbye {
            sources: vec![0x1111],
            reason: Bytes::from_static(b"done"),
        };
        let bytes = build_compound(&[&rr(), &sdes(), &bye]).unwrap();
        let parsed = parse_compound(&bytes).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0], RtcpPacket::ReceiverReport(rr()));
        assert_eq!(parsed[1], RtcpPacket::SourceDescription(sdes()));
        assert_eq!(parsed[2], RtcpPacket::Goodbye(bye));
    }

    #[test]
    fn skips_app_and_xr_between_reports() {
        let mut bytes = build_compound(&[&rr()]).unwrap().to_vec();
        // APP: V=2, subtype 0, PT 204, length 2: SSRC, name "TEST".
        bytes.extend([
            0x80, RTCP_APP, 0, 2, 0, 0, 0x11, 0x11, b'T', b'E', b'S', b'T',
        ]);
        // XR with an unknown block type: SSRC, then block type 99, length 1, one word.
        bytes.extend([
            0x80, RTCP_XR, 0, 3, 0, 0, 0x11, 0x11, 99, 0, 0, 1, 1, 2, 3, 4,
        ]);
        bytes.extend_from_slice(&build_compound(&[&sdes()]).unwrap());
        let parsed = parse_compound(&bytes).unwrap();
        assert_eq!(parsed.len(), 4);
        assert_eq!(
            parsed[1],
            RtcpPacket::Other {
                packet_type: RTCP_APP,
                count: 0
            }
        );
        assert!(matches!(
            parsed[2],
            RtcpPacket::Other {
                packet_type: RTCP_XR,
                ..
            }
        ));
        assert!(matches!(parsed[3], RtcpPacket::SourceDescription(_)));
    }

    #[test]
    fn strips_padding_on_the_last_packet() {
        let mut bytes = build_compound(&[&rr()]).unwrap().to_vec();
        let words = u16::from_be_bytes([bytes[2], bytes[3]]) + 1;
        bytes[0] |= 0x20;
        bytes[2..4].copy_from_slice(&words.to_be_bytes());
        bytes.extend([0, 0, 0, 4]);
        assert_eq!(
            parse_compound(&bytes).unwrap(),
            vec![RtcpPacket::ReceiverReport(rr())]
        );

        // The same padding on a packet that is not the last is refused.
        let mut two = bytes.clone();
        two.extend_from_slice(&build_compound(&[&sdes()]).unwrap());
        assert_eq!(
            parse_compound(&two),
            Err(RtcpError::BadPadding { offset: 0 })
        );
        // A zero padding count is refused.
        let last = bytes.len() - 1;
        bytes[last] = 0;
        assert_eq!(
            parse_compound(&bytes),
            Err(RtcpError::BadPadding { offset: 0 })
        );
    }

    #[test]
    fn refuses_bad_structure() {
        let good = build_compound(&[&rr(), &sdes()]).unwrap().to_vec();
        assert!(matches!(
            parse_compound(&[]),
            Err(RtcpError::Truncated { .. })
        ));
        assert!(matches!(
            parse_compound(&good[..good.len() - 4]),
            Err(RtcpError::LengthOverrun { .. })
        ));
        let mut trailing = good.clone();
        trailing.extend([0x80, 201]);
        assert!(matches!(
            parse_compound(&trailing),
            Err(RtcpError::Truncated { .. })
        ));
        let mut v1 = good.clone();
        v1[0] = 0x40 | (v1[0] & 0x3f);
        assert!(matches!(
            parse_compound(&v1),
            Err(RtcpError::BadVersion { version: 1, .. })
        ));
        // An RR whose report count claims two blocks but holds one.
        let mut lying = good;
        lying[0] = 0x82;
        assert_eq!(
            parse_compound(&lying),
            Err(RtcpError::Malformed {
                packet_type: RTCP_RR
            })
        );
    }
}
