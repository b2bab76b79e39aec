//! Estimated call quality: the ITU-T G.107 E-model, reduced to what a live call can measure.
//!
//! ```text
//!  one-way delay Ta (ms) ──► Id  = Idd(Ta)                          (G.107 §7.4, default mT, sT)
//!  loss Ppl (%), BurstR ──┐
//!  codec (Ie, Bpl) ───────┴► Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)   (G.107 §7.6)
//!                            R = 93.2 − Id − Ie,eff, clamped to [0, 100]
//!                            MOS = mos_from_r(R)                                    (G.107 Annex B)
//! ```
//!
//! # Contract
//! Pure functions of their arguments: no clock, no state, no I/O. [`r_factor`] takes an
//! [`Impairments`] snapshot (what the call's statistics say now) and returns the transmission
//! rating R; [`mos_from_r`] maps R to the conversational MOS on the 1 to 4.5 scale. Inputs outside
//! their meaningful range are clamped rather than rejected (a negative or NaN loss counts as no
//! loss, a loss above 100 % as 100 %, a burst ratio below 1 as 1, a negative or NaN delay as none),
//! so a glitch in the statistics never turns into a panic or a NaN on screen.
//!
//! # What the model leaves at its defaults
//! Everything the call cannot measure keeps G.107's default values (loudness ratings, circuit and
//! room noise, sidetone, a talker echo loss of 65 dB from echo cancellation, expectation factor
//! A = 0). With those defaults the basic signal-to-noise ratio less the simultaneous impairment is
//! R = 93.2, and the talker and listener echo terms Idte and Idle are negligible, so the delay
//! impairment is the absolute-delay term Idd alone. The caller supplies the mouth-to-ear delay:
//! half the RTCP round-trip time plus the local jitter buffer's playout delay and the codec's
//! frame and look-ahead time.
//!
//! # Codec values
//! [`CodecImpairment`] carries the equipment impairment factor Ie and the packet-loss robustness
//! factor Bpl. G.711's come from ITU-T G.113 Appendix I (Ie 0; Bpl 25.1 with the G.711
//! Appendix I concealment, 4.3 without concealment). G.113 gives no narrowband values for Opus;
//! [`CodecImpairment::OPUS`] uses Ie 0 and Bpl 25.1, and its documentation says why.
//!
//! This is the narrowband model: its best score is MOS 4.41 (R 93.2), also for a wideband Opus
//! call, whose extra bandwidth the narrowband scale cannot express.

mod codec_impairment;
mod e_model;

pub use codec_impairment::CodecImpairment;
pub use e_model::{
    burst_ratio, delay_impairment, effective_equipment_impairment, mos_from_r, r_factor,
    Impairments, DEFAULT_R,
};
