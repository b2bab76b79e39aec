//! The lock-free sample ring between an audio device callback and a media thread.
//!
//! One ring carries interleaved `i16` samples one way: capture rings from the device callback
//! (writer) to the media thread (reader), playback rings from the media thread (writer) to the
//! device callback (reader). Both ends are wait-free (`rtrb`, single producer, single consumer)
//! and never allocate, so either may run in a real-time callback.
//!
//! The reader keeps the latency bounded and the output continuous:
//! - it starts *unprimed* and gives silence until the ring holds `prime` samples, so the small
//!   jitter between the device's and the media thread's clocks does not cut holes in the audio;
//! - a primed reader that runs short gives what there is, completes with silence, counts the
//!   missing samples as *underflow* and primes again;
//! - when the ring holds more than `max` samples (the writer's clock is faster, or the reader
//!   stalled), the reader drops the oldest samples down to `prime` and counts them as *overflow*.
//!
//! A writer that finds the ring full (the reader stopped) keeps what fits and drops the rest of
//! what it was given, counted as overflow too. Counts are in samples per channel, readable at
//! any time through [`RingCounters`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rtrb::{Consumer, Producer, RingBuffer};

/// Underflow and overflow counts of one ring, shared by both ends and whoever watches.
#[derive(Debug, Default)]
pub struct RingCounters {
    underflow: AtomicU64,
    overflow: AtomicU64,
}

impl RingCounters {
    /// Samples per channel the reader had to make up with silence after it was primed.
    pub fn underflow(&self) -> u64 {
        self.underflow.load(Ordering::Relaxed)
    }

    /// Samples per channel dropped: the oldest, beyond the latency bound, by the reader, and
    /// the newest, when the ring was full, by the writer.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    fn add_underflow(&self, n: usize) {
        self.underflow.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn add_overflow(&self, n: usize) {
        self.overflow.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The sizes of a ring, in samples per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// Samples the reader waits for before it gives audio, and keeps after trimming.
    pub prime: usize,
    /// Samples beyond which the reader drops the oldest.
    pub max: usize,
    /// Room in the ring; more than `max` so a writer can run ahead between reads.
    pub capacity: usize,
}

impl RingLimits {
    /// Limits in milliseconds at `sample_rate`: priming `prime_ms`, bound `max_ms`, and room
    /// for twice the bound.
    pub fn millis(sample_rate: u32, prime_ms: u32, max_ms: u32) -> Self {
        let per_ms = |ms: u32| (u64::from(sample_rate) * u64::from(ms) / 1000) as usize;
        let prime = per_ms(prime_ms);
        let max = per_ms(max_ms).max(prime);
        RingLimits {
            prime,
            max,
            capacity: (2 * max).max(1),
        }
    }
}

/// A new ring of `channels` interleaved channels: its writing and reading ends, and their
/// shared counters.
pub fn sample_ring(channels: u16, limits: RingLimits) -> (RingWriter, RingReader) {
    sample_ring_with(channels, limits, Arc::new(RingCounters::default()))
}

/// A new ring like [`sample_ring`] that adds to existing `counters` (so counts run on across
/// the rings of reopened devices).
pub fn sample_ring_with(
    channels: u16,
    limits: RingLimits,
    counters: Arc<RingCounters>,
) -> (RingWriter, RingReader) {
    let channels = usize::from(channels.max(1));
    let (producer, consumer) = RingBuffer::new(limits.capacity * channels);
    (
        RingWriter {
            producer,
            channels,
            counters: Arc::clone(&counters),
        },
        RingReader {
            consumer,
            channels,
            prime: limits.prime * channels,
            max: limits.max * channels,
            primed: false,
            counters,
        },
    )
}

/// The writing end of a sample ring.
#[derive(Debug)]
pub struct RingWriter {
    producer: Producer<i16>,
    channels: usize,
    counters: Arc<RingCounters>,
}

impl RingWriter {
    /// Appends the samples of `input` (whole sample frames, converted by `convert`), as many as
    /// fit; the rest is dropped and counted. Returns the samples written.
    pub fn write_from<T: Copy>(&mut self, input: &[T], convert: impl Fn(T) -> i16) -> usize {
        let whole = input.len() - input.len() % self.channels;
        let free = self.producer.slots();
        let n = whole.min(free - free % self.channels);
        if n > 0 {
            if let Ok(chunk) = self.producer.write_chunk_uninit(n) {
                chunk.fill_from_iter(input[..n].iter().map(|&s| convert(s)));
            }
        }
        if n < whole {
            self.counters.add_overflow((whole - n) / self.channels);
        }
        n
    }

    /// Appends `input` as it is; see [`RingWriter::write_from`].
    pub fn write(&mut self, input: &[i16]) -> usize {
        self.write_from(input, |s| s)
    }

    /// The ring's counters.
    pub fn counters(&self) -> Arc<RingCounters> {
        Arc::clone(&self.counters)
    }

    /// Whether the reading end is gone.
    pub fn is_abandoned(&self) -> bool {
        self.producer.is_abandoned()
    }
}

/// The reading end of a sample ring.
#[derive(Debug)]
pub struct RingReader {
    consumer: Consumer<i16>,
    channels: usize,
    prime: usize,
    max: usize,
    primed: bool,
    counters: Arc<RingCounters>,
}

impl RingReader {
    /// Fills all of `out` (whole sample frames; a partial tail is left alone) with the oldest
    /// samples, converted by `convert`, or with `silence` where there are none (see the module
    /// docs for priming, underflow and trimming). Returns the samples taken from the ring.
    pub fn read_into<T: Copy>(
        &mut self,
        out: &mut [T],
        silence: T,
        convert: impl Fn(i16) -> T,
    ) -> usize {
        let wanted = out.len() - out.len() % self.channels;
        let mut available = self.consumer.slots();
        if available > self.max {
            let excess = available - self.prime;
            if let Ok(chunk) = self.consumer.read_chunk(excess) {
                chunk.commit_all();
            }
            self.counters.add_overflow(excess / self.channels);
            available = self.prime;
        }
        if !self.primed {
            if available < self.prime.max(1) {
                out[..wanted].fill(silence);
                return 0;
            }
            self.primed = true;
        }
        let n = wanted.min(available - available % self.channels);
        if n > 0 {
            if let Ok(chunk) = self.consumer.read_chunk(n) {
                let (first, second) = chunk.as_slices();
                for (o, &s) in out.iter_mut().zip(first.iter().chain(second)) {
                    *o = convert(s);
                }
                chunk.commit_all();
            }
        }
        if n < wanted {
            out[n..wanted].fill(silence);
            self.counters.add_underflow((wanted - n) / self.channels);
            self.primed = false;
        }
        n
    }

    /// Fills `out` with samples as they are; see [`RingReader::read_into`].
    pub fn read(&mut self, out: &mut [i16]) -> usize {
        self.read_into(out, 0, |s| s)
    }

    /// Samples waiting in the ring.
    pub fn available(&self) -> usize {
        self.consumer.slots()
    }

    /// The ring's counters.
    pub fn counters(&self) -> Arc<RingCounters> {
        Arc::clone(&self.counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(prime: usize, max: usize, capacity: usize) -> RingLimits {
        RingLimits {
            prime,
            max,
            capacity,
        }
    }

    #[test]
    fn reader_gives_silence_until_primed_then_the_samples_in_order() {
        let (mut w, mut r) = sample_ring(1, limits(4, 8, 16));
        let mut out = [9i16; 3];
        w.write(&[1, 2, 3]);
        assert_eq!(r.read(&mut out), 0);
        assert_eq!(out, [0, 0, 0]);
        w.write(&[4, 5]);
        assert_eq!(r.read(&mut out), 3);
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(r.counters().underflow(), 0);
        assert_eq!(r.counters().overflow(), 0);
    }

    #[test]
    fn a_primed_reader_that_runs_short_fills_with_silence_counts_and_primes_again() {
        let (mut w, mut r) = sample_ring(2, limits(2, 8, 16));
        w.write(&[1, -1, 2, -2, 3, -3]);
        let mut out = [7i16; 8];
        assert_eq!(r.read(&mut out), 6);
        assert_eq!(out, [1, -1, 2, -2, 3, -3, 0, 0]);
        assert_eq!(r.counters().underflow(), 1);
        // Unprimed again: one sample frame is not enough.
        w.write(&[4, -4]);
        assert_eq!(r.read(&mut out[..2]), 0);
        assert_eq!(out[..2], [0, 0]);
        w.write(&[5, -5]);
        assert_eq!(r.read(&mut out[..2]), 2);
        assert_eq!(out[..2], [4, -4]);
        assert_eq!(r.counters().underflow(), 1);
    }

    #[test]
    fn a_reader_beyond_the_bound_drops_the_oldest_down_to_the_priming_level() {
        let (mut w, mut r) = sample_ring(1, limits(3, 6, 16));
        let input: Vec<i16> = (1..=10).collect();
        assert_eq!(w.write(&input), 10);
        let mut out = [0i16; 3];
        assert_eq!(r.read(&mut out), 3);
        assert_eq!(out, [8, 9, 10]);
        assert_eq!(r.counters().overflow(), 7);
        assert_eq!(r.available(), 0);
    }

    #[test]
    fn a_writer_on_a_full_ring_keeps_whole_frames_and_counts_the_rest() {
        let (mut w, mut r) = sample_ring(2, limits(1, 2, 3));
        // Room for 3 sample frames of 2 channels; 5 are offered, and a stray half frame.
        assert_eq!(w.write(&[1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]), 6);
        assert_eq!(w.counters().overflow(), 2);
        let mut out = [0i16; 4];
        // Three frames are beyond the bound of two: the oldest two go.
        assert_eq!(r.read(&mut out), 2);
        assert_eq!(out, [3, 3, 0, 0]);
        assert_eq!(r.counters().overflow(), 4);
        assert_eq!(r.counters().underflow(), 1);
    }

    #[test]
    fn conversions_run_on_both_ends() {
        let (mut w, mut r) = sample_ring(1, limits(1, 8, 8));
        w.write_from(&[0.5f32, -1.0], |s| (s * 32767.0) as i16);
        let mut out = [1.0f32; 3];
        assert_eq!(r.read_into(&mut out, 0.0, |s| f32::from(s) / 32768.0), 2);
        assert!((out[0] - 0.5).abs() < 1e-3 && (out[1] + 1.0).abs() < 1e-3);
        assert_eq!(out[2], 0.0);
    }

    #[test]
    fn the_ends_work_across_threads() {
        let (mut w, mut r) = sample_ring(1, limits(0, 100_000, 200_000));
        let writer = std::thread::spawn(move || {
            for block in 0..100i16 {
                let samples = [block; 100];
                let mut done = 0;
                while done < samples.len() {
                    done += w.write(&samples[done..]);
                }
            }
        });
        let mut got = Vec::new();
        let mut buf = [0i16; 37];
        while got.len() < 10_000 {
            let n = r.read(&mut buf);
            got.extend_from_slice(&buf[..n]);
            if n == 0 {
                std::thread::yield_now();
            }
        }
        writer.join().unwrap();
        let expected: Vec<i16> = (0..100i16).flat_map(|b| [b; 100]).collect();
        assert_eq!(got, expected);
    }
}
