//! A sample queue between two clocks: one side pushes at its pace, the other pops at its own.
//!
//! It primes before it plays (so a reader that runs a little ahead of the writer does not run
//! dry at every tick), plays silence and primes again when it runs dry, and drops the oldest
//! samples, with a short crossfade over the joint, when it holds more than its ceiling (a writer
//! whose clock runs fast). Sans-IO: no clock, no threads.
//!
//! With a [`Trim`], it also sheds standing delay: the prime is sized for the worst case, but
//! two clocks in a steady phase leave a whole frame or more that is never needed. Every
//! [`Trim::window`] pops the queue looks at the least it held before a pop; when two windows in
//! a row found more than one pop plus [`Trim::margin`] (the second not less than the first, so
//! a writer that falls behind by a few samples a pop is never trimmed towards running dry), the
//! oldest samples beyond that are dropped, crossfaded (never fewer than the crossfade). A
//! writer that comes later than the margin covers — one that pushes whole frames, once the
//! reader's tick overtakes it — runs the queue dry once; from then on the queue keeps
//! [`Trim::dry_margin`] instead.

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
    trim: Option<Trimmer>,
}

/// How a [`PcmFifo`] sheds delay it does not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    /// Pops per look at the queue's low point (at least 1).
    pub window: u32,
    /// Samples kept beyond one pop at the low point until the queue first runs dry.
    pub margin: usize,
    /// Samples kept beyond one pop from the first dry read on (a writer that pushes whole
    /// frames needs a whole frame to ride out one late push).
    pub dry_margin: usize,
}

#[derive(Debug, Clone)]
struct Trimmer {
    trim: Trim,
    margin: usize,
    pops: u32,
    /// The least queued before a pop in this window.
    low: usize,
    /// The last whole window's low point (less what it trimmed), if the queue has not run dry
    /// since.
    last_low: Option<usize>,
}

impl Trimmer {
    /// Notes the level before a pop of `want`; at a window's end, how many of the oldest
    /// samples to drop.
    fn before_pop(&mut self, level: usize, want: usize) -> usize {
        self.low = self.low.min(level);
        self.pops += 1;
        if self.pops < self.trim.window {
            return 0;
        }
        let low = std::mem::replace(&mut self.low, usize::MAX);
        self.pops = 0;
        let steady = self.last_low.is_some_and(|last| low >= last);
        let excess = low.saturating_sub(want + self.margin);
        // Smaller drops wait until they are worth a crossfade.
        let excess = if steady && excess >= FADE { excess } else { 0 };
        self.last_low = Some(low - excess);
        excess
    }

    fn ran_dry(&mut self) {
        self.margin = self.margin.max(self.trim.dry_margin);
        self.pops = 0;
        self.low = usize::MAX;
        self.last_low = None;
    }
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
            trim: None,
        }
    }

    /// The same queue, shedding the delay it does not need as `trim` says.
    pub fn with_trim(mut self, trim: Trim) -> Self {
        let trim = Trim {
            window: trim.window.max(1),
            ..trim
        };
        self.trim = Some(Trimmer {
            trim,
            margin: trim.margin,
            pops: 0,
            low: usize::MAX,
            last_low: None,
        });
        self
    }

    /// The margin a trimming queue keeps now ([`Trim::dry_margin`] once it ran dry); `None`
    /// without a [`Trim`].
    pub fn margin(&self) -> Option<usize> {
        self.trim.as_ref().map(|t| t.margin)
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
        if let Some(trimmer) = self.trim.as_mut() {
            let excess = trimmer.before_pop(self.queue.len(), out.len());
            if excess > 0 {
                self.drop_to(self.queue.len() - excess);
            }
        }
        let n = out.len().min(self.queue.len());
        let (front, back) = self.queue.as_slices();
        let from_front = n.min(front.len());
        out[..from_front].copy_from_slice(&front[..from_front]);
        out[from_front..n].copy_from_slice(&back[..n - from_front]);
        self.queue.drain(..n);
        if n < out.len() {
            out[n..].fill(0);
            self.counters.underruns += 1;
            self.primed = self.prime == 0;
            if let Some(trimmer) = self.trim.as_mut() {
                trimmer.ran_dry();
            }
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

    const FRAME: usize = 960;
    const TRIM: Trim = Trim {
        window: 50,
        margin: 240,
        dry_margin: FRAME,
    };

    /// A queue primed at two frames that has played its first pop, and where its ramp goes on.
    fn primed(trim: Option<Trim>) -> (PcmFifo, i16) {
        let fifo = PcmFifo::new(2 * FRAME, 6 * FRAME);
        let mut fifo = match trim {
            Some(trim) => fifo.with_trim(trim),
            None => fifo,
        };
        let mut next = 0;
        assert!(!tick(&mut fifo, &mut next, FRAME));
        assert!(tick(&mut fifo, &mut next, FRAME));
        (fifo, next)
    }

    /// One tick: `pushed` samples (a ramp that goes on from `next`), then a frame's pop.
    /// Returns whether the pop was whole and continued the ramp.
    fn tick(fifo: &mut PcmFifo, next: &mut i16, pushed: usize) -> bool {
        let samples: Vec<i16> = (0..pushed)
            .map(|_| {
                *next = next.wrapping_add(1);
                *next
            })
            .collect();
        fifo.push(&samples);
        let mut out = [0; FRAME];
        fifo.pop_into(&mut out) && out.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
    }

    #[test]
    fn trimmed_it_sheds_the_standing_frame_two_clocks_in_step_never_need() {
        let (mut fifo, mut a) = primed(Some(TRIM));
        let (mut untrimmed, mut b) = primed(None);
        // The first pop was the priming one; the hundredth ends the second window.
        for _ in 0..98 {
            assert!(tick(&mut fifo, &mut a, FRAME));
            assert!(tick(&mut untrimmed, &mut b, FRAME));
        }
        assert_eq!(fifo.len(), FRAME, "one window to learn, one to confirm");
        assert!(!tick(&mut fifo, &mut a, FRAME), "the joint is crossfaded");
        assert_eq!(
            fifo.len(),
            240,
            "a pop and the margin before each pop from now on"
        );
        assert_eq!(fifo.counters().dropped, 720);
        for _ in 0..500 {
            assert!(tick(&mut fifo, &mut a, FRAME));
            assert!(tick(&mut untrimmed, &mut b, FRAME));
            assert_eq!(fifo.len(), 240);
        }
        assert_eq!(
            untrimmed.len(),
            FRAME,
            "without a trim a whole frame stands"
        );
        assert_eq!(fifo.counters().underruns, 0);
        assert_eq!(fifo.counters().dropped, 720, "trimmed once");
    }

    #[test]
    fn a_writer_whose_clock_runs_slow_is_never_trimmed_towards_running_dry() {
        // 0.2 % slow: 958 or 959 samples a tick, the queue sinks by about two a tick.
        let (mut fifo, mut a) = primed(Some(TRIM));
        let (mut untrimmed, mut b) = primed(None);
        for i in 0..3_000 {
            let pushed = if i % 13 == 0 { 958 } else { 959 };
            tick(&mut fifo, &mut a, pushed);
            tick(&mut untrimmed, &mut b, pushed);
        }
        assert_eq!(fifo.counters().dropped, 0);
        assert_eq!(fifo.counters().underruns, untrimmed.counters().underruns);
        assert!(
            fifo.counters().underruns > 0,
            "it does run dry now and then"
        );
    }

    #[test]
    fn a_writer_whose_clock_runs_fast_is_trimmed_as_it_gains() {
        let (mut fifo, mut next) = primed(Some(TRIM));
        for i in 0..3_000 {
            let pushed = if i % 2 == 0 { 962 } else { 961 };
            let before = fifo.counters().dropped;
            tick(&mut fifo, &mut next, pushed);
            let dropped = (fifo.counters().dropped - before) as usize;
            assert!(
                dropped == 0 || dropped >= FADE,
                "a drop worth its crossfade: {dropped}"
            );
            assert!(
                fifo.len() <= 240 + FRAME + 150,
                "at most two windows' gain stand"
            );
        }
        assert_eq!(fifo.counters().underruns, 0);
        // Beyond the margin: less than a crossfade's worth waiting, and one window's gain.
        assert!(fifo.len() < 240 + FADE + 75, "{}", fifo.len());
        // What it gained (1.5 a tick) and what stood beyond a pop and the margin at first,
        // less what is queued now beyond the margin.
        let gained = 3_000 * 3 / 2 + (FRAME - 240);
        let dropped = fifo.counters().dropped as usize;
        assert!(
            dropped <= gained && dropped + FADE + 75 >= gained,
            "{dropped} of {gained}"
        );
    }

    #[test]
    fn a_whole_frame_pushed_late_runs_it_dry_once_and_a_frame_is_kept_from_then_on() {
        let (mut fifo, mut next) = primed(Some(TRIM));
        for _ in 0..100 {
            tick(&mut fifo, &mut next, FRAME);
        }
        assert_eq!(fifo.len(), 240, "trimmed to the margin");
        for late in 0..10 {
            // The writer's frame comes just after the reader's tick, then with the next one.
            assert_eq!(tick(&mut fifo, &mut next, 0), late > 0, "late push {late}");
            assert!(tick(&mut fifo, &mut next, 2 * FRAME), "late push {late}");
            for _ in 0..100 {
                assert!(tick(&mut fifo, &mut next, FRAME));
            }
            assert_eq!(fifo.margin(), Some(FRAME));
            assert_eq!(fifo.len(), FRAME, "a frame's slack, never trimmed again");
        }
        assert_eq!(fifo.counters().underruns, 1);
        assert_eq!(fifo.counters().dropped, 720);
        assert_eq!(PcmFifo::new(4, 8).margin(), None);
    }
}
