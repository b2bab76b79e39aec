//! Wrap-safe RTP numbering for the jitter buffer.
//!
//! RTP sequence numbers (16 bits) and timestamps (32 bits) wrap. [`StreamMap`] unwraps them
//! into `i64` relative to the highest sequence number seen, and shifts them by a per-stream
//! offset so that a new stream spliced after an old one (sender restart, timestamp jump)
//! continues the old numbering: everything else in the buffer works on these mapped values
//! and never sees a wrap or a discontinuity. [`SeenWindow`] remembers which mapped sequence
//! numbers arrived recently, to tell a duplicate from a first arrival.

/// Sequence numbers further ahead of the highest one than this start a new stream
/// (RFC 3550, appendix A.1, uses the same figure).
pub(crate) const MAX_DROPOUT: i64 = 3000;
/// Sequence numbers further behind the highest one than this start a new stream.
pub(crate) const MAX_MISORDER: i64 = 100;

/// Unwraps one stream's sequence numbers and timestamps into the buffer's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamMap {
    /// Highest unwrapped sequence number of this stream, before the shift.
    raw_seq: i64,
    /// Unwrapped timestamp of the packet with that sequence number, before the shift.
    raw_ts: i64,
    /// Added to unwrapped sequence numbers.
    seq_shift: i64,
    /// Added to unwrapped timestamps.
    ts_shift: i64,
}

impl StreamMap {
    /// A stream whose packet `(sequence, timestamp)` maps to `(mapped_seq, mapped_ts)`.
    pub(crate) fn anchored(sequence: u16, timestamp: u32, mapped_seq: i64, mapped_ts: i64) -> Self {
        StreamMap {
            raw_seq: i64::from(sequence),
            raw_ts: i64::from(timestamp),
            seq_shift: mapped_seq - i64::from(sequence),
            ts_shift: mapped_ts - i64::from(timestamp),
        }
    }

    /// The mapped `(sequence, timestamp)` of a packet of this stream.
    pub(crate) fn map(&self, sequence: u16, timestamp: u32) -> (i64, i64) {
        // Truncating the reference to 16/32 bits and reading the difference as signed picks
        // the unwrapped value nearest to the reference.
        let seq_delta = i64::from(sequence.wrapping_sub(self.raw_seq as u16) as i16);
        let ts_delta = i64::from(timestamp.wrapping_sub(self.raw_ts as u32) as i32);
        (
            self.raw_seq + seq_delta + self.seq_shift,
            self.raw_ts + ts_delta + self.ts_shift,
        )
    }

    /// Records an accepted packet, moving the unwrap reference forward when it is the newest.
    pub(crate) fn accept(&mut self, mapped_seq: i64, mapped_ts: i64) {
        let raw_seq = mapped_seq - self.seq_shift;
        if raw_seq > self.raw_seq {
            self.raw_seq = raw_seq;
            self.raw_ts = mapped_ts - self.ts_shift;
        }
    }
}

/// Which of the last [`SeenWindow::SPAN`] mapped sequence numbers have arrived.
#[derive(Debug, Clone)]
pub(crate) struct SeenWindow {
    bits: [u64; 16],
    /// Highest sequence number marked; `None` until the first one.
    highest: Option<i64>,
}

/// What [`SeenWindow::mark`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// First arrival.
    New,
    /// Already marked: a duplicate.
    Again,
    /// Too far behind the window to tell.
    TooOld,
}

impl SeenWindow {
    /// How many sequence numbers behind the highest one are remembered.
    pub(crate) const SPAN: i64 = 1024;

    /// An empty window.
    pub(crate) fn new() -> Self {
        SeenWindow {
            bits: [0; 16],
            highest: None,
        }
    }

    /// Marks `seq` as arrived and says whether it had arrived before.
    pub(crate) fn mark(&mut self, seq: i64) -> Seen {
        let highest = match self.highest {
            None => {
                self.highest = Some(seq);
                self.set(seq);
                return Seen::New;
            }
            Some(highest) => highest,
        };
        if seq <= highest - Self::SPAN {
            return Seen::TooOld;
        }
        if seq > highest {
            let advance = seq - highest;
            if advance >= Self::SPAN {
                self.bits = [0; 16];
            } else {
                for cleared in highest + 1..=seq {
                    self.clear(cleared);
                }
            }
            self.highest = Some(seq);
            self.set(seq);
            return Seen::New;
        }
        if self.get(seq) {
            Seen::Again
        } else {
            self.set(seq);
            Seen::New
        }
    }

    fn slot(seq: i64) -> (usize, u64) {
        let index = seq.rem_euclid(Self::SPAN) as usize;
        (index / 64, 1u64 << (index % 64))
    }

    fn get(&self, seq: i64) -> bool {
        let (word, bit) = Self::slot(seq);
        self.bits[word] & bit != 0
    }

    fn set(&mut self, seq: i64) {
        let (word, bit) = Self::slot(seq);
        self.bits[word] |= bit;
    }

    fn clear(&mut self, seq: i64) {
        let (word, bit) = Self::slot(seq);
        self.bits[word] &= !bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_and_timestamps_unwrap_across_the_wrap() {
        let mut map =
            StreamMap::anchored(65_534, u32::MAX - 959, 65_534, i64::from(u32::MAX) - 959);
        let (s1, t1) = map.map(65_535, 0u32.wrapping_sub(1));
        map.accept(s1, t1);
        let (s2, t2) = map.map(0, 959);
        map.accept(s2, t2);
        let (s3, t3) = map.map(1, 1919);
        assert_eq!(s1 + 1, s2);
        assert_eq!(s2 + 1, s3);
        assert_eq!(t2 - (i64::from(u32::MAX) - 959), 1919);
        assert_eq!(t3 - t2, 960);
        // A late packet from before the wrap still maps below.
        assert_eq!(map.map(65_533, u32::MAX - 1919).0, s1 - 2);
    }

    #[test]
    fn a_shifted_stream_continues_the_old_numbering() {
        let map = StreamMap::anchored(7, 1_000, 40_000, 5_000_000);
        assert_eq!(map.map(7, 1_000), (40_000, 5_000_000));
        assert_eq!(map.map(8, 1_960), (40_001, 5_000_960));
        assert_eq!(map.map(6, 40), (39_999, 4_999_040));
    }

    #[test]
    fn the_seen_window_tells_duplicates_from_first_arrivals() {
        let mut seen = SeenWindow::new();
        assert_eq!(seen.mark(10), Seen::New);
        assert_eq!(seen.mark(12), Seen::New);
        assert_eq!(seen.mark(11), Seen::New);
        assert_eq!(seen.mark(11), Seen::Again);
        assert_eq!(seen.mark(10), Seen::Again);
        // Moving forward forgets what falls out of the window and clears reused slots.
        assert_eq!(seen.mark(10 + SeenWindow::SPAN), Seen::New);
        assert_eq!(seen.mark(10), Seen::TooOld);
        assert_eq!(seen.mark(12 + SeenWindow::SPAN), Seen::New);
        assert_eq!(seen.mark(11 + SeenWindow::SPAN), Seen::New);
        assert_eq!(seen.mark(5 * SeenWindow::SPAN), Seen::New);
        assert_eq!(seen.mark(5 * SeenWindow::SPAN - 1), Seen::New);
    }
}
