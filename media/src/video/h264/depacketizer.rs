//! RFC 6184 depacketization: RTP payloads back into whole access units (sans-IO).
//!
//! # Contract
//!
//! Feed [`H264Depacketizer::handle_packet`] the sequence number, timestamp, marker bit and
//! payload of each RTP packet of one H.264 stream in arrival order (after the jitter buffer has
//! put them in order), then drain [`H264Depacketizer::poll_output`]:
//!
//! - Single NAL unit packets, STAP-A (split into its units) and FU-A (reassembled) are taken —
//!   packetization modes 0 and 1. An access unit is complete at a packet with the marker bit, or
//!   when the timestamp changes (for senders that forget the marker).
//! - A sequence gap means lost packets. The access unit the loss hits is dropped whole: the one
//!   in progress when the gap falls inside it (same timestamp, or its tail lost before the next
//!   timestamp), and the next one when its first packet does not begin a picture (its head was
//!   lost: it neither starts with a parameter set nor with a slice whose `first_mb_in_slice` is
//!   0). Every loss yields one [`DepacketizerOutput::NeedKeyframe`] — the caller sends PLI/FIR,
//!   rate-limited on its side — unless the first access unit after it is a keyframe anyway.
//!   Access units after a loss are still delivered, flagged [`AccessUnit::follows_loss`] until
//!   the next keyframe, so the caller can freeze or decode.
//! - A payload that is truncated, malformed, has the forbidden bit, is of a type modes 0/1 do not
//!   use, or would grow the access unit past [`DepacketizerConfig::max_access_unit_size`] is
//!   refused with its [`H264PayloadError`] (counted in [`DepacketizerStats`]), and its access
//!   unit is dropped as if the packet had been lost. Late and duplicate packets are refused
//!   without harm. Nothing here panics on any input.
//!
//! webrtc-rs's `rtc_rtp::codec::h264::H264Packet` is not used: it indexes past the end of a
//! truncated STAP-A, glues fragments of different NAL units together after a loss (no start or
//! sequence check), and has no size limit.

use std::collections::VecDeque;

use super::error::H264PayloadError;
use super::nal::{
    forbidden_bit, is_slice, join_annex_b, nal_type, slice_starts_picture, NAL_FU_A, NAL_IDR,
    NAL_STAP_A,
};

/// The default limit on one access unit: 2 MiB, several times a 1080p IDR at call bitrates.
pub const DEFAULT_MAX_ACCESS_UNIT_SIZE: usize = 2 * 1024 * 1024;

/// Packets at most this far behind the last one are late or duplicates; further back is taken
/// as a jump of the sequence (a sender restart).
const LATE_WINDOW: i32 = 3000;

/// Limits of an [`H264Depacketizer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepacketizerConfig {
    /// Largest access unit in bytes of NAL unit data; larger ones are dropped.
    pub max_access_unit_size: usize,
}

impl Default for DepacketizerConfig {
    fn default() -> Self {
        DepacketizerConfig {
            max_access_unit_size: DEFAULT_MAX_ACCESS_UNIT_SIZE,
        }
    }
}

/// One reassembled picture's NAL units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The RTP timestamp (90 kHz) of its packets.
    pub timestamp: u32,
    /// NAL units in decoding order, without start codes.
    pub nalus: Vec<Vec<u8>>,
    /// Whether it holds an IDR slice.
    pub is_keyframe: bool,
    /// Whether data was lost since the last keyframe, so it may reference a picture the
    /// decoder never received.
    pub follows_loss: bool,
}

impl AccessUnit {
    /// The access unit as an Annex-B byte stream (4-byte start codes), as decoders take it.
    pub fn to_annex_b(&self) -> Vec<u8> {
        join_annex_b(&self.nalus)
    }
}

/// What the depacketizer has for its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepacketizerOutput {
    /// A complete access unit, ready for the decoder.
    AccessUnit(AccessUnit),
    /// Data was lost or refused; ask the sender for a keyframe. `dropped` is the RTP timestamp
    /// of the access unit discarded, `None` when the loss took whole access units.
    NeedKeyframe {
        /// Timestamp of the dropped access unit, if one was dropped.
        dropped: Option<u32>,
    },
}

/// Counters of an [`H264Depacketizer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepacketizerStats {
    /// Packets handed in.
    pub packets: u64,
    /// Access units delivered.
    pub access_units: u64,
    /// Access units dropped (loss or refused payloads).
    pub dropped_access_units: u64,
    /// Packets missing according to sequence gaps.
    pub lost_packets: u64,
    /// Payloads refused as truncated, malformed, unsupported or oversized.
    pub invalid_packets: u64,
    /// Late or duplicate packets refused.
    pub late_packets: u64,
}

/// Why the access unit in progress will be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    Loss,
    Invalid,
}

#[derive(Debug)]
struct Building {
    timestamp: u32,
    nalus: Vec<Vec<u8>>,
    size: usize,
    /// The fragmented NAL unit in progress (header byte included).
    fragment: Option<Vec<u8>>,
    damage: Option<Damage>,
    /// Its head may have been lost: the first NAL unit must begin a picture.
    check_head: bool,
    /// A gap preceded it that dropped nothing else: report the loss when it completes.
    report_gap: bool,
}

/// Reassembles one H.264 RTP stream into access units (see the module docs).
#[derive(Debug)]
pub struct H264Depacketizer {
    config: DepacketizerConfig,
    last_sequence: Option<u16>,
    current: Option<Building>,
    loss_since_keyframe: bool,
    outputs: VecDeque<DepacketizerOutput>,
    stats: DepacketizerStats,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new(DepacketizerConfig::default())
    }
}

impl H264Depacketizer {
    /// A depacketizer with the given limits.
    pub fn new(config: DepacketizerConfig) -> Self {
        H264Depacketizer {
            config,
            last_sequence: None,
            current: None,
            loss_since_keyframe: false,
            outputs: VecDeque::new(),
            stats: DepacketizerStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> DepacketizerStats {
        self.stats
    }

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<DepacketizerOutput> {
        self.outputs.pop_front()
    }

    /// Completes the access unit in progress as if its marker had arrived (end of stream).
    pub fn flush(&mut self) {
        self.finish_current();
    }

    /// Takes one RTP packet's fields and payload. An `Err` names why the payload was refused;
    /// outputs (including the drop it caused) are queued either way.
    pub fn handle_packet(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), H264PayloadError> {
        self.stats.packets += 1;
        let mut gap = false;
        if let Some(last) = self.last_sequence {
            let delta = i32::from(sequence.wrapping_sub(last) as i16);
            if delta <= 0 && delta > -LATE_WINDOW {
                self.stats.late_packets += 1;
                return Err(H264PayloadError::LateOrDuplicate { sequence });
            }
            if delta != 1 {
                gap = true;
                self.stats.lost_packets += u64::try_from(delta - 1).unwrap_or(0);
            }
        }
        self.last_sequence = Some(sequence);

        let mut dropped_by_gap = false;
        if let Some(current) = &mut self.current {
            if gap && current.timestamp == timestamp {
                current.damage.get_or_insert(Damage::Loss);
            } else if current.timestamp != timestamp {
                if gap {
                    // The marker packet of the unit in progress was lost.
                    current.damage.get_or_insert(Damage::Loss);
                    dropped_by_gap = true;
                }
                self.finish_current();
            }
        }
        let current = self.current.get_or_insert_with(|| Building {
            timestamp,
            nalus: Vec::new(),
            size: 0,
            fragment: None,
            damage: None,
            check_head: gap,
            report_gap: gap && !dropped_by_gap,
        });

        let result = if current.damage.is_some() {
            // The unit is being discarded; its remaining packets need no parsing.
            Ok(())
        } else {
            let limit = self.config.max_access_unit_size;
            let result = parse_into(current, payload, limit);
            if result.is_err() {
                current.damage = Some(Damage::Invalid);
                current.nalus.clear();
                current.fragment = None;
                self.stats.invalid_packets += 1;
            }
            result
        };
        if marker {
            self.finish_current();
        }
        result
    }

    fn finish_current(&mut self) {
        let Some(mut unit) = self.current.take() else {
            return;
        };
        if unit.fragment.is_some() && unit.damage.is_none() {
            // A fragmented NAL unit without its end: the end was lost or never sent.
            unit.damage = Some(Damage::Loss);
        }
        if unit.damage.is_some() {
            self.stats.dropped_access_units += 1;
            self.loss_since_keyframe = true;
            self.outputs.push_back(DepacketizerOutput::NeedKeyframe {
                dropped: Some(unit.timestamp),
            });
            return;
        }
        let is_keyframe = unit
            .nalus
            .iter()
            .any(|n| n.first().is_some_and(|&h| nal_type(h) == NAL_IDR));
        if unit.report_gap && !is_keyframe {
            // Whole access units vanished; a keyframe right after the gap needs no request.
            self.loss_since_keyframe = true;
            self.outputs
                .push_back(DepacketizerOutput::NeedKeyframe { dropped: None });
        }
        if unit.nalus.is_empty() {
            return;
        }
        if is_keyframe {
            self.loss_since_keyframe = false;
        }
        self.stats.access_units += 1;
        self.outputs
            .push_back(DepacketizerOutput::AccessUnit(AccessUnit {
                timestamp: unit.timestamp,
                nalus: unit.nalus,
                is_keyframe,
                follows_loss: self.loss_since_keyframe,
            }));
    }
}

/// Whether a NAL unit with this header and first payload byte may open an access unit.
fn begins_picture(header: u8, first_byte: Option<u8>) -> bool {
    let kind = nal_type(header);
    !is_slice(kind) || first_byte.is_some_and(|b| slice_starts_picture(&[b]))
}

/// Checks that `unit` can take `extra` more bytes; the head check for its first NAL unit.
fn admit(
    unit: &mut Building,
    header: u8,
    first_byte: Option<u8>,
    extra: usize,
    limit: usize,
) -> Result<(), H264PayloadError> {
    if unit.size + extra > limit {
        return Err(H264PayloadError::AccessUnitTooLarge { limit });
    }
    if unit.check_head && unit.nalus.is_empty() && unit.fragment.is_none() {
        unit.check_head = false;
        if !begins_picture(header, first_byte) {
            unit.damage = Some(Damage::Loss);
        }
    }
    unit.size += extra;
    Ok(())
}

fn parse_into(unit: &mut Building, payload: &[u8], limit: usize) -> Result<(), H264PayloadError> {
    let Some(&header) = payload.first() else {
        return Err(H264PayloadError::Truncated { len: 0 });
    };
    if forbidden_bit(header) {
        return Err(H264PayloadError::ForbiddenBit);
    }
    match nal_type(header) {
        1..=23 => {
            if unit.fragment.is_some() {
                return Err(H264PayloadError::MalformedFuA(
                    "unfinished before another NAL unit",
                ));
            }
            admit(unit, header, payload.get(1).copied(), payload.len(), limit)?;
            if unit.damage.is_none() {
                unit.nalus.push(payload.to_vec());
            }
            Ok(())
        }
        NAL_STAP_A => {
            if unit.fragment.is_some() {
                return Err(H264PayloadError::MalformedFuA("unfinished before a STAP-A"));
            }
            let units = split_stap_a(payload)?;
            for nal in units {
                admit(unit, nal[0], nal.get(1).copied(), nal.len(), limit)?;
                if unit.damage.is_some() {
                    return Ok(());
                }
                unit.nalus.push(nal.to_vec());
            }
            Ok(())
        }
        NAL_FU_A => {
            let (Some(&fu_header), Some(body)) = (payload.get(1), payload.get(2..)) else {
                return Err(H264PayloadError::Truncated { len: payload.len() });
            };
            let kind = nal_type(fu_header);
            if kind == 0 || kind >= 24 {
                return Err(H264PayloadError::MalformedFuA(
                    "fragmented unit of an invalid type",
                ));
            }
            let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
            let nal_header = (header & 0xE0) | kind;
            if start {
                if unit.fragment.is_some() {
                    return Err(H264PayloadError::MalformedFuA(
                        "start inside a fragmented unit",
                    ));
                }
                admit(
                    unit,
                    nal_header,
                    body.first().copied(),
                    1 + body.len(),
                    limit,
                )?;
                if unit.damage.is_some() {
                    return Ok(());
                }
                let mut nal = Vec::with_capacity(1 + body.len() * 4);
                nal.push(nal_header);
                nal.extend_from_slice(body);
                unit.fragment = Some(nal);
            } else {
                let Some(nal) = &unit.fragment else {
                    if unit.check_head && unit.nalus.is_empty() {
                        // The start was lost in the gap before this packet.
                        unit.damage = Some(Damage::Loss);
                        return Ok(());
                    }
                    return Err(H264PayloadError::MalformedFuA(
                        "continuation without a start",
                    ));
                };
                if nal.first().map(|&h| nal_type(h)) != Some(kind) {
                    return Err(H264PayloadError::MalformedFuA(
                        "type changes between fragments",
                    ));
                }
                if unit.size + body.len() > limit {
                    return Err(H264PayloadError::AccessUnitTooLarge { limit });
                }
                unit.size += body.len();
                if let Some(nal) = &mut unit.fragment {
                    nal.extend_from_slice(body);
                }
            }
            if end {
                if let Some(nal) = unit.fragment.take() {
                    unit.nalus.push(nal);
                }
            }
            Ok(())
        }
        other => Err(H264PayloadError::UnsupportedType(other)),
    }
}

/// The NAL units of a STAP-A payload, all checked before any is used.
fn split_stap_a(payload: &[u8]) -> Result<Vec<&[u8]>, H264PayloadError> {
    let mut units = Vec::new();
    let mut rest = payload.get(1..).unwrap_or_default();
    if rest.is_empty() {
        return Err(H264PayloadError::Truncated { len: payload.len() });
    }
    while !rest.is_empty() {
        let [a, b, tail @ ..] = rest else {
            return Err(H264PayloadError::MalformedStapA("truncated unit size"));
        };
        let size = usize::from(u16::from_be_bytes([*a, *b]));
        if size == 0 {
            return Err(H264PayloadError::MalformedStapA("empty unit"));
        }
        let Some(nal) = tail.get(..size) else {
            return Err(H264PayloadError::MalformedStapA("unit overruns the packet"));
        };
        if forbidden_bit(nal[0]) {
            return Err(H264PayloadError::ForbiddenBit);
        }
        if !matches!(nal_type(nal[0]), 1..=23) {
            return Err(H264PayloadError::MalformedStapA(
                "unit of an aggregation or reserved type",
            ));
        }
        units.push(nal);
        rest = &tail[size..];
    }
    Ok(units)
}

#[cfg(test)]
#[path = "depacketizer_tests.rs"]
mod tests;
