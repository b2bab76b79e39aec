//! RFC 6184 packetization: NAL units of one access unit into RTP payloads (sans-IO).
//!
//! - Packetization mode 1 (non-interleaved): a NAL unit that fits the MTU travels alone
//!   (single NAL unit packet) or, with its small neighbours, in a STAP-A (§5.7.1) — SPS, PPS and
//!   a small slice typically share one packet; a larger one is cut into FU-A fragments (§5.8) of
//!   balanced size.
//! - Packetization mode 0: single NAL unit packets only; a NAL unit above the MTU is an error
//!   ([`H264PayloadError::NalTooLarge`]) — the encoder's `max_nal_size` prevents it.
//!
//! The caller puts every payload of an access unit into RTP packets with the same timestamp and
//! consecutive sequence numbers, and sets the marker bit on the last one. Filler data NAL units
//! (type 12) are not sent.
//!
//! webrtc-rs's `rtc_rtp::codec::h264::H264Payloader` is not used here: it only aggregates SPS
//! with PPS (and silently drops them when they exceed the MTU), holds them across calls, and
//! has no mode 0; its output is still accepted by [`H264Depacketizer`](super::H264Depacketizer).

use super::error::H264PayloadError;
use super::nal::{
    forbidden_bit, nal_ref_idc, nal_type, split_annex_b, NAL_FILLER, NAL_FU_A, NAL_STAP_A,
};

/// The `packetization-mode` SDP parameter (RFC 6184 §8.1); mode 2 (interleaved) is not
/// supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketizationMode {
    /// Mode 0: one NAL unit per packet, no aggregation or fragmentation.
    SingleNalUnit,
    /// Mode 1: single NAL units, STAP-A and FU-A.
    NonInterleaved,
}

impl PacketizationMode {
    /// The mode for an fmtp value (absent means 0); `None` for unsupported modes.
    pub fn from_fmtp(value: u8) -> Option<Self> {
        match value {
            0 => Some(PacketizationMode::SingleNalUnit),
            1 => Some(PacketizationMode::NonInterleaved),
            _ => None,
        }
    }

    /// The fmtp value of this mode.
    pub fn fmtp_value(self) -> u8 {
        match self {
            PacketizationMode::SingleNalUnit => 0,
            PacketizationMode::NonInterleaved => 1,
        }
    }
}

/// Turns access units into RTP payloads of at most `mtu` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Packetizer {
    mode: PacketizationMode,
    mtu: usize,
}

const FU_HEADER_LEN: usize = 2;

impl H264Packetizer {
    /// A packetizer for `mode` with payloads of at most `mtu` bytes (at least 3).
    pub fn new(mode: PacketizationMode, mtu: usize) -> Result<Self, H264PayloadError> {
        if mtu <= FU_HEADER_LEN {
            return Err(H264PayloadError::MtuTooSmall(mtu));
        }
        Ok(H264Packetizer { mode, mtu })
    }

    /// The packetization mode.
    pub fn mode(&self) -> PacketizationMode {
        self.mode
    }

    /// The largest payload in bytes.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Payloads for one access unit given as an Annex-B byte stream.
    pub fn packetize_annex_b(&self, stream: &[u8]) -> Result<Vec<Vec<u8>>, H264PayloadError> {
        self.packetize(&split_annex_b(stream))
    }

    /// Payloads for one access unit given as NAL units without start codes, in decoding order.
    /// Empty and filler NAL units are skipped.
    pub fn packetize<T: AsRef<[u8]>>(&self, nalus: &[T]) -> Result<Vec<Vec<u8>>, H264PayloadError> {
        let nalus = nalus
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| n.first().is_some_and(|&h| nal_type(h) != NAL_FILLER));
        let mut payloads = Vec::new();
        match self.mode {
            PacketizationMode::SingleNalUnit => {
                for nal in nalus {
                    if nal.len() > self.mtu {
                        return Err(H264PayloadError::NalTooLarge {
                            size: nal.len(),
                            mtu: self.mtu,
                        });
                    }
                    payloads.push(nal.to_vec());
                }
            }
            PacketizationMode::NonInterleaved => {
                let mut pending: Vec<&[u8]> = Vec::new();
                let mut pending_len = 1; // The STAP-A header.
                                         // STAP-A unit sizes are 16-bit.
                let stap_limit = self.mtu.min(usize::from(u16::MAX));
                for nal in nalus {
                    if nal.len() > self.mtu {
                        flush(&mut pending, &mut payloads);
                        pending_len = 1;
                        self.fragment(nal, &mut payloads);
                    } else if 1 + 2 + nal.len() > stap_limit {
                        flush(&mut pending, &mut payloads);
                        pending_len = 1;
                        payloads.push(nal.to_vec());
                    } else if pending_len + 2 + nal.len() <= stap_limit {
                        pending.push(nal);
                        pending_len += 2 + nal.len();
                    } else {
                        flush(&mut pending, &mut payloads);
                        pending_len = 1 + 2 + nal.len();
                        pending.push(nal);
                    }
                }
                flush(&mut pending, &mut payloads);
            }
        }
        Ok(payloads)
    }

    /// FU-A fragments of one NAL unit, of balanced sizes.
    fn fragment(&self, nal: &[u8], payloads: &mut Vec<Vec<u8>>) {
        let (header, body) = (nal[0], &nal[1..]);
        let max = self.mtu - FU_HEADER_LEN;
        let count = body.len().div_ceil(max).max(1);
        let size = body.len().div_ceil(count).max(1);
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut fu_header = nal_type(header);
            if i == 0 {
                fu_header |= 0x80;
            }
            if i == last {
                fu_header |= 0x40;
            }
            let mut payload = Vec::with_capacity(FU_HEADER_LEN + chunk.len());
            payload.push((header & 0xE0) | NAL_FU_A);
            payload.push(fu_header);
            payload.extend_from_slice(chunk);
            payloads.push(payload);
        }
    }
}

/// Emits the pending NAL units: one alone as a single NAL unit packet, several as a STAP-A.
fn flush(pending: &mut Vec<&[u8]>, payloads: &mut Vec<Vec<u8>>) {
    match pending.as_slice() {
        [] => {}
        [nal] => payloads.push(nal.to_vec()),
        nals => {
            let forbidden = nals.iter().any(|n| forbidden_bit(n[0]));
            let nri = nals.iter().map(|n| nal_ref_idc(n[0])).max().unwrap_or(0);
            let len = 1 + nals.iter().map(|n| 2 + n.len()).sum::<usize>();
            let mut payload = Vec::with_capacity(len);
            payload.push(if forbidden { 0x80 } else { 0 } | nri | NAL_STAP_A);
            for nal in nals {
                // Fits: only units of less than 64 KiB are aggregated.
                payload.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                payload.extend_from_slice(nal);
            }
            payloads.push(payload);
        }
    }
    pending.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nal(header: u8, len: usize) -> Vec<u8> {
        let mut n = vec![header];
        n.extend((1..len).map(|i| i as u8));
        n
    }

    #[test]
    fn small_units_share_a_stap_a_and_large_ones_fragment() {
        let p = H264Packetizer::new(PacketizationMode::NonInterleaved, 100).unwrap();
        let (sps, pps, idr) = (nal(0x67, 10), nal(0x68, 4), nal(0x65, 250));
        let out = p.packetize(&[&sps, &pps, &idr]).unwrap();
        // STAP-A(SPS, PPS), then 250-byte IDR: 249 bytes of body in 3 fragments of 83.
        assert_eq!(out.len(), 4);
        assert_eq!(out[0][0], 0x78);
        assert_eq!(&out[0][1..3], &[0, 10]);
        assert_eq!(&out[0][3..13], &sps[..]);
        assert_eq!(&out[0][13..15], &[0, 4]);
        assert_eq!(&out[0][15..], &pps[..]);
        assert_eq!(out[1][..2], [0x7C, 0x85]);
        assert_eq!(out[2][..2], [0x7C, 0x05]);
        assert_eq!(out[3][..2], [0x7C, 0x45]);
        assert!(out.iter().all(|p| p.len() <= 100));
        let body: Vec<u8> = out[1..].iter().flat_map(|p| p[2..].to_vec()).collect();
        assert_eq!(body, idr[1..]);
    }

    #[test]
    fn a_lone_small_unit_is_a_single_nal_packet() {
        let p = H264Packetizer::new(PacketizationMode::NonInterleaved, 1200).unwrap();
        let slice = nal(0x41, 700);
        let big = nal(0x41, 600);
        // 700 + 600 do not fit one STAP-A: two single NAL unit packets.
        let out = p.packetize(&[&slice, &big]).unwrap();
        assert_eq!(out, vec![slice, big]);
        assert!(p.packetize::<&[u8]>(&[]).unwrap().is_empty());
        assert!(p.packetize(&[vec![], nal(0x0C, 50)]).unwrap().is_empty());
    }

    #[test]
    fn mode_zero_refuses_what_does_not_fit() {
        let p = H264Packetizer::new(PacketizationMode::SingleNalUnit, 100).unwrap();
        let out = p
            .packetize(&[nal(0x67, 10), nal(0x68, 4), nal(0x65, 100)])
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            p.packetize(&[nal(0x65, 101)]),
            Err(H264PayloadError::NalTooLarge {
                size: 101,
                mtu: 100
            })
        );
        assert_eq!(
            H264Packetizer::new(PacketizationMode::SingleNalUnit, 2),
            Err(H264PayloadError::MtuTooSmall(2))
        );
        assert_eq!(PacketizationMode::from_fmtp(2), None);
        assert_eq!(
            PacketizationMode::from_fmtp(1).map(PacketizationMode::fmtp_value),
            Some(1)
        );
    }

    #[test]
    fn annex_b_input_is_split_first() {
        let p = H264Packetizer::new(PacketizationMode::NonInterleaved, 1200).unwrap();
        let out = p
            .packetize_annex_b(&[0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2])
            .unwrap();
        assert_eq!(out, vec![vec![0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2]]);
    }
}
