//! Strict RTP header validation and parsing (RFC 3550 §5.1, RFC 8285 header extensions).
//!
//! The wire format itself is `rtc-rtp`'s ([`RtpPacket`], [`RtpHeader`]); this module decides
//! what Callisto accepts from the network before handing bytes to it. [`validate_rtp_header`]
//! checks everything that lies in the clear in both RTP and SRTP (version, CSRC list, extension
//! block); [`parse_rtp`] also checks the padding, which SRTP encrypts and so can only be checked
//! after decryption. Every failure is an [`RtpError`]; nothing here panics on any input, and the
//! tests feed thousands of seeded random and mutated packets through it to keep it so.

use bytes::Bytes;
use rtc_shared::marshal::{MarshalSize, Unmarshal};

/// The RTP packet type of the `rtc-rtp` crate: a parsed header plus the payload (padding removed).
pub use rtc_rtp::packet::Packet as RtpPacket;

/// The RTP header type of the `rtc-rtp` crate.
pub use rtc_rtp::header::Header as RtpHeader;

/// The only RTP version in use (RFC 3550 §5.1).
pub const RTP_VERSION: u8 = 2;

/// Length of the fixed RTP header, without CSRCs or extension.
pub const RTP_FIXED_HEADER_LEN: usize = 12;

/// Why a datagram is not an acceptable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet of {len} bytes is shorter than the 12-byte fixed header")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {version}, expected 2")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The CSRC count announces more identifiers than the packet holds.
    #[error("CSRC count {count} needs {needed} bytes, packet has {len}")]
    CsrcTruncated {
        /// The CSRC count field.
        count: u8,
        /// Header bytes the CSRC list needs.
        needed: usize,
        /// The datagram's length.
        len: usize,
    },
    /// The X bit is set but the extension header or its announced length does not fit.
    #[error("header extension needs {needed} bytes, packet has {len}")]
    ExtensionTruncated {
        /// Header bytes the extension block needs.
        needed: usize,
        /// The datagram's length.
        len: usize,
    },
    /// The extension block's elements (RFC 8285) are inconsistent with its length.
    #[error("malformed header extension block")]
    MalformedExtension,
    /// The P bit is set but the padding count is zero or larger than the payload.
    #[error("padding count {count} invalid for {available} bytes after the header")]
    BadPadding {
        /// The last byte of the packet (the padding count).
        count: u8,
        /// Bytes after the header, padding included.
        available: usize,
    },
}

/// Where the parts of a validated RTP packet lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpLayout {
    /// Length of the header: fixed part, CSRCs and extension block.
    pub header_len: usize,
    /// Length of the payload, padding excluded.
    pub payload_len: usize,
    /// Length of the padding, the count byte included (0 when the P bit is clear).
    pub padding_len: usize,
}

/// Checks the parts of an RTP header that SRTP leaves in the clear and returns the header length.
///
/// Checks: at least 12 bytes, version 2, the CSRC list fits, and when the X bit is set the
/// extension header and its announced length fit. Does not look at padding (see [`parse_rtp`]).
pub fn validate_rtp_header(bytes: &[u8]) -> Result<usize, RtpError> {
    if bytes.len() < RTP_FIXED_HEADER_LEN {
        return Err(RtpError::TooShort { len: bytes.len() });
    }
    let version = bytes[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion { version });
    }
    let count = bytes[0] & 0x0f;
    let mut header_len = RTP_FIXED_HEADER_LEN + 4 * usize::from(count);
    if bytes.len() < header_len {
        return Err(RtpError::CsrcTruncated {
            count,
            needed: header_len,
            len: bytes.len(),
        });
    }
    if bytes[0] & 0x10 != 0 {
        if bytes.len() < header_len + 4 {
            return Err(RtpError::ExtensionTruncated {
                needed: header_len + 4,
                len: bytes.len(),
            });
        }
        let words = u16::from_be_bytes([bytes[header_len + 2], bytes[header_len + 3]]);
        header_len += 4 + 4 * usize::from(words);
        if bytes.len() < header_len {
            return Err(RtpError::ExtensionTruncated {
                needed: header_len,
                len: bytes.len(),
            });
        }
    }
    Ok(header_len)
}

/// Validates a whole plain RTP packet: the header as in [`validate_rtp_header`], then the padding.
pub fn validate_rtp(bytes: &[u8]) -> Result<RtpLayout, RtpError> {
    let header_len = validate_rtp_header(bytes)?;
    let available = bytes.len() - header_len;
    let padding_len = if bytes[0] & 0x20 != 0 {
        let count = bytes[bytes.len() - 1];
        if count == 0 || usize::from(count) > available {
            return Err(RtpError::BadPadding { count, available });
        }
        usize::from(count)
    } else {
        0
    };
    Ok(RtpLayout {
        header_len,
        payload_len: available - padding_len,
        padding_len,
    })
}

/// Parses the header of a packet whose first `header_len` bytes passed [`validate_rtp_header`],
/// and checks that `rtc-rtp` sees the same header length Callisto measured.
///
/// `rtc-rtp` reads RFC 8285 elements leniently (an element may run past the block, id 15 stops
/// the walk); a header whose re-encoded size differs from its wire size would make later offsets
/// wrong, so it is refused.
pub(crate) fn parse_header(bytes: &[u8], header_len: usize) -> Result<RtpHeader, RtpError> {
    let mut wire = &bytes[..header_len];
    let header = RtpHeader::unmarshal(&mut wire).map_err(|_| RtpError::MalformedExtension)?;
    if header.marshal_size() != header_len {
        return Err(RtpError::MalformedExtension);
    }
    Ok(header)
}

/// Strictly validates and parses a plain (or already decrypted) RTP packet.
///
/// The returned packet's payload excludes the padding; `header.padding` tells whether there was
/// some.
pub fn parse_rtp(bytes: &[u8]) -> Result<RtpPacket, RtpError> {
    let layout = validate_rtp(bytes)?;
    let header = parse_header(bytes, layout.header_len)?;
    let payload_end = layout.header_len + layout.payload_len;
    Ok(RtpPacket {
        header,
        payload: Bytes::copy_from_slice(&bytes[layout.header_len..payload_end]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(first: u8, rest_len: usize) -> Vec<u8> {
        let mut p = vec![first, 0, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        p.extend(std::iter::repeat_n(0xaa, rest_len));
        p
    }

    #[test]
    fn parses_a_plain_packet() {
        let p = packet(0x80, 20);
        let parsed = parse_rtp(&p).unwrap();
        assert_eq!(parsed.header.sequence_number, 0x1234);
        assert_eq!(parsed.header.ssrc, 0xdead_beef);
        assert_eq!(parsed.payload.len(), 20);
    }

    #[test]
    fn rejects_short_and_wrong_version() {
        assert_eq!(parse_rtp(&[0x80; 11]), Err(RtpError::TooShort { len: 11 }));
        assert_eq!(
            parse_rtp(&packet(0x40, 4)),
            Err(RtpError::BadVersion { version: 1 })
        );
    }

    #[test]
    fn rejects_truncated_csrc_list() {
        // CC = 3 needs 24 header bytes; only 20 are there.
        assert!(matches!(
            parse_rtp(&packet(0x83, 8)),
            Err(RtpError::CsrcTruncated { count: 3, .. })
        ));
        assert!(parse_rtp(&packet(0x83, 12)).is_ok());
    }

    #[test]
    fn checks_extension_length() {
        // X bit, one-byte profile, one word: id 1, len 1 (two bytes) + one padding byte.
        let mut p = packet(0x90, 0);
        p.extend([0xbe, 0xde, 0x00, 0x01, 0x11, 0xab, 0xcd, 0x00]);
        p.extend([1, 2, 3]);
        let parsed = parse_rtp(&p).unwrap();
        assert_eq!(
            parsed.header.get_extension(1).unwrap().as_ref(),
            &[0xab, 0xcd]
        );
        assert_eq!(parsed.payload.as_ref(), &[1, 2, 3]);

        // The same block announcing two words does not fit.
        p[15] = 2;
        assert!(matches!(
            parse_rtp(&p),
            Err(RtpError::ExtensionTruncated { .. })
        ));
        // Extension header itself missing.
        assert!(matches!(
            parse_rtp(&packet(0x90, 2)),
            Err(RtpError::ExtensionTruncated { .. })
        ));
    }

    #[test]
    fn refuses_element_running_past_the_block() {
        // Block of one word, but its element claims 16 bytes of data.
        let mut p = packet(0x90, 0);
        p.extend([0xbe, 0xde, 0x00, 0x01, 0x1f, 0, 0, 0]);
        p.extend([0u8; 20]);
        assert_eq!(parse_rtp(&p), Err(RtpError::MalformedExtension));
    }

    #[test]
    fn checks_padding() {
        let mut p = packet(0xa0, 7);
        *p.last_mut().unwrap() = 4;
        let parsed = parse_rtp(&p).unwrap();
        assert_eq!(parsed.payload.len(), 3);
        assert!(parsed.header.padding);

        *p.last_mut().unwrap() = 0;
        assert!(matches!(
            parse_rtp(&p),
            Err(RtpError::BadPadding { count: 0, .. })
        ));
        *p.last_mut().unwrap() = 8;
        assert!(matches!(
            parse_rtp(&p),
            Err(RtpError::BadPadding { count: 8, .. })
        ));
        // P bit with no byte after the header at all.
        assert!(matches!(
            parse_rtp(&packet(0xa0, 0)),
            Err(RtpError::BadPadding { available: 0, .. })
        ));
    }
}
