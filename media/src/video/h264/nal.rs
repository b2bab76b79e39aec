//! NAL units: types, and Annex-B byte streams split into and joined from them.

/// NAL unit type 1: a slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type 5: a slice of an IDR picture (a keyframe).
pub const NAL_IDR: u8 = 5;
/// NAL unit type 6: supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type 7: sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type 8: picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type 9: access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// NAL unit type 12: filler data.
pub const NAL_FILLER: u8 = 12;
/// RTP payload type 24: STAP-A (RFC 6184 §5.7.1).
pub const NAL_STAP_A: u8 = 24;
/// RTP payload type 28: FU-A (RFC 6184 §5.8).
pub const NAL_FU_A: u8 = 28;

/// The type field (low 5 bits) of a NAL header byte.
pub fn nal_type(header: u8) -> u8 {
    header & 0x1F
}

/// The `nal_ref_idc` field (bits 5–6, unshifted) of a NAL header byte.
pub fn nal_ref_idc(header: u8) -> u8 {
    header & 0x60
}

/// Whether the forbidden_zero_bit of a NAL header byte is set.
pub fn forbidden_bit(header: u8) -> bool {
    header & 0x80 != 0
}

/// Whether a NAL unit of this type is a coded slice (carries picture data).
pub fn is_slice(nal_type: u8) -> bool {
    matches!(nal_type, 1..=5)
}

/// Whether the slice payload (the bytes after the NAL header) starts a picture: its
/// `first_mb_in_slice`, the first Exp-Golomb code, is 0 — a single `1` bit.
pub fn slice_starts_picture(payload_after_header: &[u8]) -> bool {
    payload_after_header.first().is_some_and(|b| b & 0x80 != 0)
}

/// Splits an Annex-B byte stream at its start codes (`00 00 01` or `00 00 00 01`) into NAL
/// units (without start codes). Bytes before the first start code are ignored; trailing zero
/// bytes of a NAL unit (before the next start code) are dropped; empty units are skipped. A
/// stream without any start code is taken as one NAL unit.
pub fn split_annex_b(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut zeros = 0usize;
    for (i, &b) in stream.iter().enumerate() {
        if b == 1 && zeros >= 2 {
            starts.push((i + 1 - zeros.min(3) - 1, i + 1));
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if starts.is_empty() {
        return if stream.is_empty() {
            Vec::new()
        } else {
            vec![stream]
        };
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &(_, begin)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(stream.len(), |&(code, _)| code);
        let mut unit = &stream[begin..end.max(begin)];
        while let [rest @ .., 0] = unit {
            unit = rest;
        }
        if !unit.is_empty() {
            units.push(unit);
        }
    }
    units
}

/// Joins NAL units into an Annex-B byte stream with 4-byte start codes.
pub fn join_annex_b<T: AsRef<[u8]>>(units: &[T]) -> Vec<u8> {
    let len = units.iter().map(|u| u.as_ref().len() + 4).sum();
    let mut out = Vec::with_capacity(len);
    for unit in units {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(unit.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splits_at_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1,
        ];
        let units = split_annex_b(&stream);
        assert_eq!(
            units,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0, 0, 3, 1][..]]
        );
        assert_eq!(split_annex_b(&join_annex_b(&units)), units);
        assert_eq!(split_annex_b(&[0x41, 9]), vec![&[0x41, 9][..]]);
        assert!(split_annex_b(&[]).is_empty());
        assert!(split_annex_b(&[0, 0, 1, 0, 0, 1]).is_empty());
    }

    #[test]
    fn header_fields() {
        assert_eq!(nal_type(0x67), NAL_SPS);
        assert_eq!(nal_ref_idc(0x67), 0x60);
        assert!(!forbidden_bit(0x67));
        assert!(forbidden_bit(0xE5));
        assert!(is_slice(NAL_IDR) && !is_slice(NAL_SPS));
        assert!(slice_starts_picture(&[0x88]) && !slice_starts_picture(&[0x40]));
    }
}
