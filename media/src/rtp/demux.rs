//! Telling apart what arrives on one UDP port: RTP, RTCP (rtcp-mux), STUN, DTLS, ZRTP, TURN.
//!
//! RFC 7983 §7 sorts datagrams by their first byte: 0–3 STUN, 16–19 ZRTP, 20–63 DTLS, 64–79 TURN
//! ChannelData, 128–191 RTP or RTCP; anything else is dropped. Within 128–191, RFC 5761 §4
//! separates RTCP from RTP by the second byte: RTCP packet types 192–223 occupy the values that
//! RTP would use for payload types 64–95 with the marker bit, which is why rtcp-mux sessions never
//! use those payload types.
//!
//! [`classify`] is the pure decision. [`Demuxer`] applies it, checks the header of what it calls
//! RTP or RTCP (fields that SRTP leaves in the clear), and counts every class and every refusal, so
//! garbage is dropped *and* visible in the call statistics.

use super::packet::{parse_rtp, validate_rtp_header, RtpError, RtpPacket};

/// What a datagram is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketClass {
    /// STUN (ICE connectivity checks, keep-alives).
    Stun,
    /// ZRTP.
    Zrtp,
    /// DTLS records.
    Dtls,
    /// TURN ChannelData.
    TurnChannel,
    /// RTP (or SRTP) media.
    Rtp,
    /// RTCP (or SRTCP) multiplexed on the RTP port.
    Rtcp,
}

/// Why a datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DemuxError {
    /// An empty datagram.
    #[error("empty datagram")]
    Empty,
    /// A first byte outside every range RFC 7983 assigns.
    #[error("first byte {0:#04x} belongs to no known protocol")]
    UnknownFirstByte(u8),
    /// Looks like RTP or RTCP but is too short to tell which.
    #[error("RTP/RTCP datagram of {len} bytes is too short")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// An RTP header that fails validation.
    #[error("bad RTP header: {0}")]
    Rtp(#[from] RtpError),
    /// An RTCP header that fails validation (shorter than header + SSRC, or a length field that
    /// runs past the datagram).
    #[error("bad RTCP header: length field {length_words} words, datagram {len} bytes")]
    RtcpHeader {
        /// The first packet's length field (32-bit words minus one).
        length_words: u16,
        /// The datagram's length.
        len: usize,
    },
}

/// Classifies a datagram by its first bytes (RFC 7983 §7, RFC 5761 §4), without further checks.
pub fn classify(datagram: &[u8]) -> Result<PacketClass, DemuxError> {
    let first = *datagram.first().ok_or(DemuxError::Empty)?;
    match first {
        0..=3 => Ok(PacketClass::Stun),
        16..=19 => Ok(PacketClass::Zrtp),
        20..=63 => Ok(PacketClass::Dtls),
        64..=79 => Ok(PacketClass::TurnChannel),
        128..=191 => {
            let second = *datagram.get(1).ok_or(DemuxError::TooShort {
                len: datagram.len(),
            })?;
            if (192..=223).contains(&second) {
                Ok(PacketClass::Rtcp)
            } else {
                Ok(PacketClass::Rtp)
            }
        }
        other => Err(DemuxError::UnknownFirstByte(other)),
    }
}

/// Counts of what a [`Demuxer`] has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemuxCounters {
    /// Datagrams accepted as RTP.
    pub rtp: u64,
    /// Datagrams accepted as RTCP.
    pub rtcp: u64,
    /// STUN datagrams.
    pub stun: u64,
    /// DTLS datagrams.
    pub dtls: u64,
    /// ZRTP datagrams.
    pub zrtp: u64,
    /// TURN ChannelData datagrams.
    pub turn_channel: u64,
    /// Datagrams refused before or at header validation (empty, unknown first byte, bad header).
    pub refused: u64,
    /// Packets that passed the demultiplexer but failed [`Demuxer::parse_rtp`] (bad padding,
    /// inconsistent extension block).
    pub malformed_rtp: u64,
}

/// The receive-side entry point for a port carrying RTP with rtcp-mux: classifies, validates and
/// counts.
#[derive(Debug, Clone, Default)]
pub struct Demuxer {
    counters: DemuxCounters,
}

impl Demuxer {
    /// A demultiplexer with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies `datagram` and, for RTP and RTCP, validates the header fields that are never
    /// encrypted. Every outcome is counted.
    pub fn demux(&mut self, datagram: &[u8]) -> Result<PacketClass, DemuxError> {
        let result = classify(datagram).and_then(|class| {
            match class {
                PacketClass::Rtp => {
                    validate_rtp_header(datagram)?;
                }
                PacketClass::Rtcp => validate_rtcp_first_header(datagram)?,
                _ => {}
            }
            Ok(class)
        });
        let c = &mut self.counters;
        match &result {
            Ok(PacketClass::Rtp) => c.rtp += 1,
            Ok(PacketClass::Rtcp) => c.rtcp += 1,
            Ok(PacketClass::Stun) => c.stun += 1,
            Ok(PacketClass::Dtls) => c.dtls += 1,
            Ok(PacketClass::Zrtp) => c.zrtp += 1,
            Ok(PacketClass::TurnChannel) => c.turn_channel += 1,
            Err(_) => c.refused += 1,
        }
        result
    }

    /// Parses a plain or decrypted RTP packet with [`parse_rtp`], counting failures.
    pub fn parse_rtp(&mut self, packet: &[u8]) -> Result<RtpPacket, RtpError> {
        let result = parse_rtp(packet);
        if result.is_err() {
            self.counters.malformed_rtp += 1;
        }
        result
    }

    /// What has been seen so far.
    pub fn counters(&self) -> DemuxCounters {
        self.counters
    }
}

/// Checks the first RTCP header of a compound packet: header and sender SSRC present, and the
/// length field within the datagram (SRTCP's trailer may follow it).
fn validate_rtcp_first_header(datagram: &[u8]) -> Result<(), DemuxError> {
    if datagram.len() < 8 {
        return Err(DemuxError::RtcpHeader {
            length_words: datagram
                .get(2..4)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0),
            len: datagram.len(),
        });
    }
    let length_words = u16::from_be_bytes([datagram[2], datagram[3]]);
    if (usize::from(length_words) + 1) * 4 > datagram.len() {
        return Err(DemuxError::RtcpHeader {
            length_words,
            len: datagram.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_ranges_follow_rfc_7983() {
        assert_eq!(classify(&[0x00, 0x01]), Ok(PacketClass::Stun));
        assert_eq!(classify(&[0x01, 0x01]), Ok(PacketClass::Stun));
        assert_eq!(classify(&[16]), Ok(PacketClass::Zrtp));
        assert_eq!(classify(&[22, 0xfe, 0xfd]), Ok(PacketClass::Dtls));
        assert_eq!(classify(&[63]), Ok(PacketClass::Dtls));
        assert_eq!(classify(&[0x40, 0]), Ok(PacketClass::TurnChannel));
        assert_eq!(classify(&[4]), Err(DemuxError::UnknownFirstByte(4)));
        assert_eq!(classify(&[0xff]), Err(DemuxError::UnknownFirstByte(0xff)));
        assert_eq!(classify(&[]), Err(DemuxError::Empty));
        assert_eq!(classify(&[0x80]), Err(DemuxError::TooShort { len: 1 }));
    }

    #[test]
    fn rtcp_types_are_told_from_rtp_payload_types() {
        // SR (200), RR (201), SDES, BYE, APP, RTPFB, PSFB, XR.
        for pt in 200..=207u8 {
            assert_eq!(classify(&[0x80, pt]), Ok(PacketClass::Rtcp), "type {pt}");
        }
        // Payload types 64-95 with the marker bit are the RTCP range; without it they are RTP
        // (a sender using them under rtcp-mux is non-compliant, but the marker-less byte is RTP).
        assert_eq!(classify(&[0x80, 0x80 | 72]), Ok(PacketClass::Rtcp));
        assert_eq!(classify(&[0x80, 0x80 | 96]), Ok(PacketClass::Rtp));
        assert_eq!(classify(&[0x80, 0]), Ok(PacketClass::Rtp));
        assert_eq!(classify(&[0x80, 111]), Ok(PacketClass::Rtp));
        assert_eq!(classify(&[0x80, 0x80 | 111]), Ok(PacketClass::Rtp));
    }

    #[test]
    fn demuxer_counts_and_validates() {
        let mut d = Demuxer::new();
        let rtp = [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa];
        assert_eq!(d.demux(&rtp), Ok(PacketClass::Rtp));
        // An RR with no report blocks: 8 bytes, length field 1.
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(d.demux(&rr), Ok(PacketClass::Rtcp));
        // RTCP whose length field runs past the datagram.
        assert!(d.demux(&[0x80, 201, 0, 7, 0, 0, 0, 1]).is_err());
        // Truncated RTP header.
        assert!(d.demux(&rtp[..11]).is_err());
        assert!(d.demux(&[0x00, 0x01, 0, 0]).is_ok());
        assert!(d
            .parse_rtp(&[0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0])
            .is_err());
        let c = d.counters();
        assert_eq!(
            (c.rtp, c.rtcp, c.stun, c.refused, c.malformed_rtp),
            (1, 1, 1, 2, 1)
        );
    }
}
