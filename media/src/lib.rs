//! Callisto's media: audio frames, sources and sinks, codecs, the jitter buffer and the RTP
//! machinery of a call's media session.
//!
//! - [`analysis`]: tone analysis (dominant frequency, coverage, burst onset) for tests and benches.
//! - [`audio`]: frames and formats, sources (tone, WAV, silence) and sinks (WAV recorder, null,
//!   memory), resampling.
//! - [`codec`]: Opus, G.711 µ-law and A-law behind one encoder/decoder interface.
//! - [`conference`]: the conference mixer (N−1 mixes, limiter, active speaker) and its bridge.
//! - [`congestion`]: send-side bandwidth estimation (GCC) and TWCC feedback (sans-IO).
//! - [`device`]: sound devices through cpal (PulseAudio or ALSA): listing, capture, playback,
//!   lock-free rings, recovery from a lost device.
//! - [`jitter_buffer`]: the adaptive playout buffer (sans-IO).
//! - [`memory`]: giving the memory a call's media freed back to the system.
//! - [`netsim`]: a seeded network simulator for media tests.
//! - [`quality`]: the ITU-T G.107 E-model: R factor and MOS from delay, loss and codec.
//! - [`rtp`]: RTP/RTCP packets, send and receive state, RTCP reports, SDES-SRTP, DTMF (RFC 4733).
//! - [`session`]: the classic media session (plain RTP or SDES-SRTP) that ties them together.
//! - [`video`]: I420 frames, sources (test pattern, Y4M) and sinks, scaling; H.264 (OpenH264)
//!   and its RFC 6184 RTP payload format.
//! - [`webrtc`]: the WebRTC media session (ICE, DTLS-SRTP, BUNDLE) over the `webrtc` crate.

pub mod analysis;
pub mod audio;
pub mod codec;
pub mod conference;
pub mod congestion;
pub mod device;
pub mod jitter_buffer;
pub mod memory;
pub mod netsim;
pub mod quality;
pub mod rtp;
pub mod session;
pub mod video;
pub mod webrtc;
