//! Conferences hosted by Callisto: the audio mixer and the bridge that connects calls to it,
//! and the video mosaic for legs that take one stream.
//!
//! - [`Mixer`] (sans-IO): per-leg queues, an N−1 mix per leg every 20 ms, a limiter per mix,
//!   active-speaker detection, silence timeouts.
//! - [`PcmFifo`]: the queue between two clocks that the mixer and the bridge use.
//! - [`ConferenceBridge`]: the mixer on a thread of its own, with an [`AudioSource`] and an
//!   [`AudioSink`] per leg for the call's media session, in the call's own format.
//! - [`Mosaic`] (sans-IO): the layout (the active speaker largest) and the composed frame;
//!   [`MosaicBridge`] draws it on a thread of its own from every leg's latest picture, and
//!   each leg sends it through a [`MosaicSource`].
//!
//! [`AudioSource`]: crate::audio::AudioSource
//! [`AudioSink`]: crate::audio::AudioSink

mod bridge;
mod fifo;
mod mixer;
mod mosaic;
mod video;

pub use bridge::{BridgeEvent, ConferenceBridge, LegSink, LegSource, RosterEntry};
pub use fifo::{FifoCounters, PcmFifo, Trim};
pub use mixer::{LegId, LegLevel, MixReport, Mixer, MixerConfig, MIX_FRAME, MIX_RATE, TARGET_DBFS};
pub use mosaic::{layout, mosaic_stamps, Cell, Mosaic, ScaledPictures};
pub use video::{MosaicBridge, MosaicSource, TileSink};
