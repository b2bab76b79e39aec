//! A sample queue between two clocks: one side pushes at its pace, the other pops at its own.
//!
//! It primes before it plays (so a reader that runs a little ahead of the writer does not run
//! dry at every tick), plays silence and primes again when it runs dry, and drops the oldest
//! samples, with a short crossfade over the joint, when it holds more than its ceiling (a writer
//! whose clock runs fast). Sans-IO: no clock, no threads.

use std::collections::VecDeque;

/// Samples crossfaded over the joint when old samples are dropped (2.5 ms at 48 kHz).
const FADE: usize = 120;

/// One mono stream's queue between two clocks.
#[derive(Debug, Clone)]
pub struct PcmFifo {
    queue: VecDeque<i16>,
    /// Samples held before the first pop after a start or a dry spell.
    prime: usize,
    /// Beyond this many samples, the oldest are dropped back to halfway between `prime` and
    /// the ceiling.
    ceiling: usize,
    primed: bool,
    counters: FifoCounters,
}

/// What a [`PcmFifo`] had to do to keep two clocks together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FifoCounters {
    /// Pops that found too few samples (the rest was silence).
    pub underruns: u64,
    /// Samples dropped because the writer ran ahead.
    pub dropped: u64,
}

impl PcmFifo {
    /// A queue that primes to `prime` samples and never holds more than `ceiling` (at least
    /// `prime` plus the crossfade).
    pub fn new(prime: usize, ceiling: usize) -> Self {
        PcmFifo {
            queue: VecDeque::with_capacity(ceiling + FADE),
            prime,
            ceiling: ceiling.max(prime + FADE),
            primed: prime == 0,
            counters: FifoCounters::default(),
        }
    }

    /// Appends samples; drops the oldest when the queue is over its ceiling.
    pub fn push(&mut self, samples: &[i16]) {
        self.queue.extend(samples);
        if self.queue.len() > self.ceiling {
            self.drop_to((self.prime + self.ceiling) / 2);
        }
    }

    /// Fills `out`: with queued samples when primed, the shortfall with silence. Returns
    /// whether every sample came from the queue.
    pub fn pop_into(&mut self, out: &mut [i16]) -> bool {
        if !self.primed {
            if self.queue.len() < self.prime.max(out.len()) {
                out.fill(0);
                return false;
            }
            self.primed = true;
        }
        let n = out.len().min(self.queue.len());
        for (o, s) in out.iter_mut().zip(self.queue.drain(..n)) {
            *o = s;
        }
        if n < out.len() {
            out[n..].fill(0);
            self.counters.underruns += 1;
            self.primed = self.prime == 0;
            return false;
        }
        true
    }

    /// Samples queued now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// What the queue has done so far.
    pub fn counters(&self) -> FifoCounters {
        self.counters
    }

    /// Drops the oldest samples until `keep` remain, fading the last dropped samples out over
    /// the first kept ones so the joint does not click.
    fn drop_to(&mut self, keep: usize) {
        let excess = self.queue.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        let fade = FADE.min(excess).min(keep);
        // The samples that would have followed the dropped ones' end, blended into the start of
        // what stays.
        let tail: Vec<i16> = self.queue.range(excess - fade..excess).copied().collect();
        self.queue.drain(..excess);
        for (i, old) in tail.into_iter().enumerate() {
            let w = (i + 1) as f32 / (fade + 1) as f32;
            let new = &mut self.queue[i];
            *new = (f32::from(old) * (1.0 - w) + f32::from(*new) * w).round() as i16;
        }
        self.counters.dropped += excess as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_primes_before_it_plays_and_again_after_running_dry() {
        let mut fifo = PcmFifo::new(4, 100);
        let mut out = [9i16; 2];
        fifo.push(&[1, 2, 3]);
        assert!(!fifo.pop_into(&mut out));
        assert_eq!(out, [0, 0], "not primed yet: silence");
        fifo.push(&[4]);
        assert!(fifo.pop_into(&mut out));
        assert_eq!(out, [1, 2]);
        assert!(fifo.pop_into(&mut out));
        assert_eq!(out, [3, 4]);
        fifo.push(&[5]);
        assert!(!fifo.pop_into(&mut out));
        assert_eq!(out, [5, 0], "what there is, then silence");
        assert_eq!(fifo.counters().underruns, 1);
        fifo.push(&[6, 7]);
        assert!(!fifo.pop_into(&mut out), "primes again after running dry");
        fifo.push(&[8, 9]);
        assert!(fifo.pop_into(&mut out));
        assert_eq!(out, [6, 7]);
    }

    #[test]
    fn primed_at_one_frame_it_holds_nothing_back_until_the_reader_once_runs_ahead() {
        // A conference leg's outbox: the bridge pushes a frame every tick and the leg's session
        // pops one every 20 ms on the same clock, at a phase of its own.
        let mut fifo = PcmFifo::new(4, 24);
        let mut out = [0i16; 4];
        for _ in 0..10 {
            fifo.push(&[1; 4]);
            assert!(fifo.pop_into(&mut out));
            assert!(fifo.is_empty(), "in step, nothing waits");
        }
        // The reader comes once before the writer: a frame of silence, then the late frame and
        // the next one are both there, and one frame of slack stays from then on.
        assert!(!fifo.pop_into(&mut out));
        fifo.push(&[2; 4]);
        fifo.push(&[3; 4]);
        for k in 4..20 {
            assert!(fifo.pop_into(&mut out));
            assert_eq!(fifo.len(), 4);
            fifo.push(&[k; 4]);
        }
        assert_eq!(fifo.counters().underruns, 1);
    }

    #[test]
    fn a_writer_that_runs_ahead_loses_its_oldest_samples_without_a_click() {
        let mut fifo = PcmFifo::new(480, 2_000);
        // A constant level: the crossfade must keep it constant across the joint.
        for _ in 0..30 {
            fifo.push(&[1000; 100]);
        }
        assert!(fifo.len() <= 2_000 + FADE);
        assert!(fifo.counters().dropped > 0);
        let mut out = vec![0; fifo.len()];
        fifo.pop_into(&mut out);
        assert!(
            out.iter().all(|&s| s == 1000),
            "a level does not move at a joint"
        );
    }
}
