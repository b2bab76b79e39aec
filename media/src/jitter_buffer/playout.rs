//! The playout side of the jitter buffer: what each pop returns, and how the delay is steered.
//!
//! All positions are mapped media times in samples. The delay at a pop is
//! `now − media time of the playout position − base transit`: how long a packet that came on
//! the fastest recent path waits before it plays. Each pop either plays the head packet,
//! conceals a missing frame, or returns silence, and moves the playout position by what it
//! returned — except when the delay is below target, where a frame whose packet is missing
//! (or a frame of silence) is produced *without* moving it: a frame inserted, the delay one
//! frame longer. Packets are dropped only when the head is due, the next packet is there to
//! take its place, and the delay has stayed high.

use std::time::{Duration, Instant};

use super::{JitterBuffer, Playout};

/// How long the delay must stay above the drop threshold before a quiet packet is dropped.
const DROP_HOLD_US: i64 = 500_000;
/// How much longer to wait for a quiet packet before dropping whatever is due.
const QUIET_PATIENCE_US: i64 = 1_500_000;
/// How long the delay must stay below the insert threshold before a frame is inserted in
/// front of a packet that is not quiet.
const INSERT_HOLD_US: i64 = 100_000;

impl JitterBuffer {
    /// Returns what to play at `now`, the time the returned audio starts playing. Call it
    /// again when that audio has played (`now` plus [`Playout::samples`], which is
    /// [`next_pop`](Self::next_pop)): the calls' cadence is the playout clock the buffer
    /// steers against.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let now_us = self.micros(now);
        let playout = self.playout(now_us);
        let micros = self.ts_us(i64::from(playout.samples()));
        self.next_pop = Some(now + Duration::from_micros(u64::try_from(micros).unwrap_or(0)));
        playout
    }

    fn playout(&mut self, now: i64) -> Playout {
        let frame_us = self.ts_us(self.frame_samples);
        let target =
            self.estimator
                .update_target(now, frame_us, self.min_delay_us, self.max_delay_us);
        let Some(base) = self.estimator.base() else {
            return self.wait();
        };
        // The playout position that puts the delay exactly on target.
        let on_target = self.ts_at(now - base - target);
        let play_ts = match self.play_ts {
            Some(play_ts) => play_ts,
            None => {
                let Some(head) = self.queue.values().next() else {
                    return self.wait();
                };
                // A lone first packet may be a stray: wait for a second one to confirm the
                // stream, but not more than a frame past the target unless a packet that
                // does not fit is waiting too.
                let overdue = on_target >= head.ts + self.frame_samples;
                if self.stream_packets < 2 && (self.candidate.is_some() || !overdue) {
                    return self.wait();
                }
                let start = on_target.min(self.skip_stale_start(on_target));
                self.play_ts = Some(start);
                self.prerolling = true;
                start
            }
        };
        let mut delay = now - self.ts_us(play_ts) - base;
        if delay > self.max_delay_us + frame_us {
            self.catch_up(on_target);
            delay = now - self.ts_us(self.play_position()) - base;
        }
        self.delay_us = delay;

        let Some((&seq, head)) = self.queue.first_key_value() else {
            if self.prerolling {
                return self.wait();
            }
            return self.underrun(delay, target);
        };
        let head_ts = head.ts;
        if 2 * (head_ts - self.play_position()) >= self.frame_samples {
            if seq == self.next_seq {
                return self.sender_gap(on_target, head_ts);
            }
            return self.conceal_missing(delay, target, head_ts);
        }
        self.due(now, delay, target)
    }

    /// Playout is about to start with the stream's first two packets. The first was held
    /// back while the second confirmed the stream, so it may be overdue by the wait alone:
    /// when it came no slower than the second (within a quarter frame) and its turn lies
    /// nearer the past than the second's (more than half a frame overdue), it is skipped, so
    /// that playout starts as close to the target delay as the packets allow rather than up
    /// to a frame above it — an excess steering would keep for the whole call, as it drops
    /// only past three quarters of a frame. A first packet that came slower is the network's
    /// jitter showing, and the deeper start it gives is kept; so are starts with more packets
    /// buffered (a burst, reordering), whose timing says little yet. A skipped packet is
    /// passed as a dropped one is (its content is not weighed, as steering weighs quiet
    /// frames: one 20 ms frame at the very start), and the second plays at this same pop.
    /// Returns the media time of the packet that starts playout.
    fn skip_stale_start(&mut self, on_target: i64) -> i64 {
        let mut entries = self.queue.iter();
        if let (2, Some((&seq, first)), Some((&second_seq, second))) =
            (self.stream_packets, entries.next(), entries.next())
        {
            let frame_us = self.ts_us(self.frame_samples);
            if self.queue.len() == 2
                && second_seq == seq + 1
                && 4 * (first.transit - second.transit) <= frame_us
                && 2 * on_target > first.ts + second.ts
            {
                let ts = first.ts;
                self.queue.pop_first();
                self.pass(seq, ts);
                self.stats.dropped += 1;
            }
        }
        self.queue.values().next().map_or(on_target, |head| head.ts)
    }

    /// Nothing buffered, playout running: conceal, and stand still if the delay is short.
    fn underrun(&mut self, delay: i64, target: i64) -> Playout {
        self.stats.concealed += 1;
        self.stats.underruns += 1;
        if self.below_target(delay, target) {
            self.stats.inserted += 1;
        } else {
            self.advance(self.frame_samples);
        }
        Playout::Conceal {
            samples: self.frame_u32(),
            next: None,
        }
    }

    /// The next packet in sequence lies ahead in media time: the sender was silent. Set the
    /// delay to the target by shortening or lengthening the silence, then play out the rest
    /// of it (or play the packet, once it is due).
    fn sender_gap(&mut self, on_target: i64, head_ts: i64) -> Playout {
        let frame = self.frame_samples;
        self.over_since = None;
        self.under_since = None;
        let mut play_ts = self.play_position();
        if 2 * (on_target - play_ts) >= frame {
            let to = on_target.min(head_ts);
            if !self.prerolling {
                self.stats.silence_skipped += ((to - play_ts + frame / 2) / frame) as u64;
            }
            play_ts = to;
        }
        if 2 * (head_ts - play_ts) < frame {
            self.play_ts = Some(play_ts);
            return self.play_head();
        }
        if 2 * (play_ts - on_target) >= frame {
            if !self.prerolling {
                self.stats.inserted += 1;
            }
        } else {
            play_ts += frame;
        }
        self.play_ts = Some(play_ts);
        if self.prerolling {
            Playout::Wait {
                samples: self.frame_u32(),
            }
        } else {
            Playout::Silence {
                samples: self.frame_u32(),
            }
        }
    }

    /// Packets are missing before the head: conceal one frame. With the delay on target the
    /// frame is given up (the head, when it directly follows, comes along for FEC); below
    /// target the position stands still, waiting for the missing packet.
    fn conceal_missing(&mut self, delay: i64, target: i64, head_ts: i64) -> Playout {
        let frame = self.frame_samples;
        self.stats.concealed += 1;
        let next = if self.below_target(delay, target) {
            self.stats.inserted += 1;
            None
        } else {
            let adjacent = 2 * (head_ts - self.play_position()) < 3 * frame;
            self.advance(frame);
            adjacent
                .then(|| self.queue.values().next().map(|entry| entry.packet.clone()))
                .flatten()
        };
        Playout::Conceal {
            samples: self.frame_u32(),
            next,
        }
    }

    /// The head packet is due: play it, or steer the delay by dropping it or by inserting a
    /// frame in front of it.
    fn due(&mut self, now: i64, delay: i64, target: i64) -> Playout {
        let frame_us = self.ts_us(self.frame_samples);
        let excess = delay - target;
        if 4 * excess > 3 * frame_us {
            self.over_since.get_or_insert(now);
        } else {
            self.over_since = None;
        }
        if self.below_target(delay, target) {
            self.under_since.get_or_insert(now);
        } else {
            self.under_since = None;
        }
        let quiet = self
            .queue
            .values()
            .next()
            .is_some_and(|entry| entry.packet.quiet);

        if self.should_drop(now, delay, excess, quiet) && self.next_is_contiguous() {
            if let Some((seq, entry)) = self.queue.pop_first() {
                let samples = self.duration_of(seq, entry.ts, entry.packet.samples);
                self.pass(seq, entry.ts);
                self.play_ts = Some(entry.ts + samples);
                self.stats.dropped += 1;
                self.over_since = None;
            }
        } else if self.should_insert(now, quiet) {
            self.under_since = None;
            self.stats.inserted += 1;
            self.stats.concealed += 1;
            return Playout::Conceal {
                samples: self.frame_u32(),
                next: None,
            };
        }
        self.play_head()
    }

    fn should_drop(&self, now: i64, delay: i64, excess: i64, quiet: bool) -> bool {
        if delay > self.max_delay_us {
            return true;
        }
        let Some(since) = self.over_since else {
            return false;
        };
        let held = now - since;
        let frame_us = self.ts_us(self.frame_samples);
        held >= DROP_HOLD_US
            && (quiet || held >= DROP_HOLD_US + QUIET_PATIENCE_US || excess > 3 * frame_us)
    }

    fn should_insert(&self, now: i64, quiet: bool) -> bool {
        self.under_since
            .is_some_and(|since| quiet || now - since >= INSERT_HOLD_US)
    }

    fn below_target(&self, delay: i64, target: i64) -> bool {
        2 * (target - delay) > self.ts_us(self.frame_samples)
    }

    fn next_is_contiguous(&self) -> bool {
        let mut keys = self.queue.keys();
        match (keys.next(), keys.next()) {
            (Some(first), Some(second)) => *second == first + 1,
            _ => false,
        }
    }

    /// Plays the head packet.
    fn play_head(&mut self) -> Playout {
        let Some((seq, entry)) = self.queue.pop_first() else {
            return self.wait();
        };
        let samples = self.duration_of(seq, entry.ts, entry.packet.samples);
        self.pass(seq, entry.ts);
        self.play_ts = Some(entry.ts + samples);
        self.prerolling = false;
        self.stats.played += 1;
        Playout::Packet {
            packet: entry.packet,
            samples: u32::try_from(samples).unwrap_or(u32::MAX),
        }
    }

    /// Drops packets whose turn lies before `on_target`, and moves the playout position
    /// there: the delay is far past `max_delay` (the playout clock stalled, or the path got
    /// much faster).
    fn catch_up(&mut self, on_target: i64) {
        while let Some((&seq, entry)) = self.queue.first_key_value() {
            if entry.ts + self.frame_samples > on_target {
                break;
            }
            let ts = entry.ts;
            self.queue.pop_first();
            self.pass(seq, ts);
            self.stats.dropped += 1;
        }
        if self.play_position() < on_target {
            self.play_ts = Some(on_target);
        }
    }

    /// Moves the sequence position past `seq`, counting the skipped sequence numbers as lost.
    fn pass(&mut self, seq: i64, ts: i64) {
        if seq > self.next_seq {
            self.stats.lost += (seq - self.next_seq) as u64;
        }
        self.next_seq = self.next_seq.max(seq + 1);
        self.last_played = Some((seq, ts));
    }

    /// Duration of the packet `seq` (already taken off the queue) with timestamp `ts`: what
    /// the caller said, or the gap to the next packet when shorter than the usual duration,
    /// or the usual duration.
    fn duration_of(&self, seq: i64, ts: i64, samples: Option<u32>) -> i64 {
        if let Some(samples) = samples.map(i64::from) {
            if self.plausible_frame(samples) {
                return samples;
            }
        }
        match self.queue.get(&(seq + 1)) {
            Some(next) if next.ts > ts => (next.ts - ts).min(self.frame_samples),
            _ => self.frame_samples,
        }
    }

    fn advance(&mut self, samples: i64) {
        let position = self.play_position();
        self.play_ts = Some(position + samples);
    }

    fn play_position(&self) -> i64 {
        self.play_ts.unwrap_or(0)
    }

    fn wait(&self) -> Playout {
        Playout::Wait {
            samples: self.frame_u32(),
        }
    }

    fn frame_u32(&self) -> u32 {
        u32::try_from(self.frame_samples).unwrap_or(u32::MAX)
    }
}
