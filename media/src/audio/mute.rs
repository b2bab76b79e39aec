//! Muting a source while it keeps running: the microphone goes silent for the other side, but
//! the source is still read at its pace (a device's ring never overflows, a file keeps its
//! place), so unmuting resumes at once and in step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::AudioError;
use super::frame::AudioFormat;
use super::source::AudioSource;

/// A switch shared between whoever mutes (the engine) and the source it silences.
#[derive(Debug, Clone, Default)]
pub struct MuteSwitch(Arc<AtomicBool>);

impl MuteSwitch {
    pub fn new() -> Self {
        MuteSwitch::default()
    }

    pub fn set(&self, muted: bool) {
        self.0.store(muted, Ordering::Relaxed);
    }

    pub fn is_muted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for MuteSwitch {
    /// Two switches are equal when they are the same switch.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A source that produces silence while its switch is on.
pub struct MutableSource<S> {
    inner: S,
    switch: MuteSwitch,
}

impl<S: AudioSource> MutableSource<S> {
    pub fn new(inner: S, switch: MuteSwitch) -> Self {
        MutableSource { inner, switch }
    }
}

impl<S: AudioSource> AudioSource for MutableSource<S> {
    fn format(&self) -> AudioFormat {
        self.inner.format()
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let n = self.inner.read(out)?;
        if self.switch.is_muted() {
            let samples = (n * usize::from(self.format().channels)).min(out.len());
            out[..samples].fill(0);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::ToneSource;

    #[test]
    fn a_muted_source_is_silent_and_resumes_in_step() {
        let format = AudioFormat::new(8_000, 1);
        let switch = MuteSwitch::new();
        let mut source = MutableSource::new(ToneSource::new(format, 440.0, 0.5), switch.clone());
        let mut reference = ToneSource::new(format, 440.0, 0.5);
        let mut out = vec![0i16; 160];
        let mut expected = vec![0i16; 160];
        assert_eq!(source.read(&mut out).unwrap(), 160);
        reference.read(&mut expected).unwrap();
        assert_eq!(out, expected);
        switch.set(true);
        assert_eq!(source.read(&mut out).unwrap(), 160);
        reference.read(&mut expected).unwrap();
        assert!(out.iter().all(|&s| s == 0), "muted output is silence");
        switch.set(false);
        source.read(&mut out).unwrap();
        reference.read(&mut expected).unwrap();
        assert_eq!(out, expected, "the tone went on while muted");
        assert_ne!(MuteSwitch::new(), switch);
        assert_eq!(switch.clone(), switch);
    }
}
