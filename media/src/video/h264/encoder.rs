//! The H.264 encoder: OpenH264, Constrained Baseline, tuned for real-time calls.
//!
//! One [`H264Encoder`] turns [`VideoFrame`]s into [`EncodedAccessUnit`]s (one per frame, a list
//! of NAL units without start codes). Rate control is by bitrate ([`H264Encoder::set_bitrate`]
//! changes it between frames without a keyframe); [`H264Encoder::force_keyframe`] makes the next
//! frame an IDR (with SPS and PPS in front), as a receiver's PLI/FIR asks; a periodic IDR
//! interval is a safety net against lost requests. A frame of another size reconfigures the
//! encoder (the next frame is an IDR). With [`H264EncoderConfig::max_nal_size`] the encoder cuts
//! pictures into slices so no NAL unit exceeds it — what packetization mode 0 needs.

use std::time::Duration;

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level,
    Profile, RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};
use openh264_sys2::{
    SBitrateInfo, WelsTraceCallback, ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE,
    ENCODER_OPTION_TRACE_CALLBACK, SPATIAL_LAYER_0, SPATIAL_LAYER_ALL, WELS_LOG_ERROR,
    WELS_LOG_WARNING,
};

use super::error::H264Error;
use super::nal::{join_annex_b, nal_type, split_annex_b, NAL_IDR};
use super::profile::{H264Level, ProfileLevelId};
use crate::video::{check_dimensions, VideoFrame};

/// The smallest NAL size limit accepted (OpenH264 needs room for a macroblock row's slice).
pub const MIN_MAX_NAL_SIZE: usize = 500;
/// Bitrates outside this range are clamped to it.
pub const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 30_000..=20_000_000;

/// How an [`H264Encoder`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264EncoderConfig {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Frames per second the caller feeds.
    pub fps: u32,
    /// Target bitrate in bits per second (clamped to [`BITRATE_RANGE`]).
    pub bitrate_bps: u32,
    /// Largest NAL unit in bytes (at least [`MIN_MAX_NAL_SIZE`]); `None` for one slice per
    /// picture (packetization mode 1 fragments large NAL units instead).
    pub max_nal_size: Option<usize>,
    /// Frames between periodic IDRs (`None` or 0: only on request and at the start).
    pub keyframe_interval: Option<u32>,
    /// The level written into the SPS; `None` picks the lowest that fits size and rate (at
    /// least 3.1, which every WebRTC peer accepts).
    pub level: Option<H264Level>,
    /// Encoder threads (1 keeps a call on one core).
    pub threads: u16,
    /// Whether the rate control may skip frames to hold the bitrate (then
    /// [`H264Encoder::encode`] returns `None` for skipped frames).
    pub allow_frame_skip: bool,
}

impl H264EncoderConfig {
    /// A configuration for a call: the given size, rate and bitrate, one slice per picture, an
    /// IDR every 10 seconds, one thread, no frame skipping.
    pub fn new(width: u32, height: u32, fps: u32, bitrate_bps: u32) -> Self {
        H264EncoderConfig {
            width,
            height,
            fps,
            bitrate_bps,
            max_nal_size: None,
            keyframe_interval: Some(fps.saturating_mul(10)),
            level: None,
            threads: 1,
            allow_frame_skip: false,
        }
    }

    /// The level the encoder writes for this configuration.
    pub fn effective_level(&self) -> Result<H264Level, H264Error> {
        let level = match self.level {
            Some(level) => level,
            None => H264Level::minimum_for(self.width, self.height, self.fps)
                .ok_or_else(|| {
                    H264Error::InvalidConfig(format!(
                        "{}x{}@{} exceeds every H.264 level",
                        self.width, self.height, self.fps
                    ))
                })?
                .max(H264Level::L3_1),
        };
        if !level.allows(self.width, self.height, self.fps) {
            return Err(H264Error::InvalidConfig(format!(
                "{}x{}@{} exceeds H.264 level {level:?}",
                self.width, self.height, self.fps
            )));
        }
        Ok(level)
    }

    fn validate(&self) -> Result<(), H264Error> {
        check_dimensions(self.width, self.height)
            .map_err(|e| H264Error::InvalidConfig(e.to_string()))?;
        if self.width < 16 || self.height < 16 || self.width > 3840 || self.height > 2160 {
            return Err(H264Error::InvalidConfig(format!(
                "{}x{} is outside 16x16..3840x2160",
                self.width, self.height
            )));
        }
        if self.fps == 0 || self.fps > 120 {
            return Err(H264Error::InvalidConfig(format!("{} fps", self.fps)));
        }
        if self.max_nal_size.is_some_and(|n| n < MIN_MAX_NAL_SIZE) {
            return Err(H264Error::InvalidConfig(format!(
                "max NAL size below {MIN_MAX_NAL_SIZE} bytes"
            )));
        }
        self.effective_level().map(|_| ())
    }
}

/// One encoded picture: its NAL units in decoding order, without start codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedAccessUnit {
    /// NAL units (SPS and PPS first when this is a keyframe).
    pub nalus: Vec<Vec<u8>>,
    /// Whether this is an IDR picture: decodable without any earlier one.
    pub is_keyframe: bool,
    /// The capture time of the frame it encodes.
    pub timestamp: Duration,
}

impl EncodedAccessUnit {
    /// The access unit as an Annex-B byte stream (4-byte start codes).
    pub fn to_annex_b(&self) -> Vec<u8> {
        join_annex_b(&self.nalus)
    }

    /// Bytes of NAL unit data (without start codes).
    pub fn len(&self) -> usize {
        self.nalus.iter().map(Vec::len).sum()
    }

    /// Whether there is no NAL unit data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn openh264_level(level: H264Level) -> Level {
    match level {
        H264Level::L1 => Level::Level_1_0,
        H264Level::L1b => Level::Level_1_B,
        H264Level::L1_1 => Level::Level_1_1,
        H264Level::L1_2 => Level::Level_1_2,
        H264Level::L1_3 => Level::Level_1_3,
        H264Level::L2 => Level::Level_2_0,
        H264Level::L2_1 => Level::Level_2_1,
        H264Level::L2_2 => Level::Level_2_2,
        H264Level::L3 => Level::Level_3_0,
        H264Level::L3_1 => Level::Level_3_1,
        H264Level::L3_2 => Level::Level_3_2,
        H264Level::L4 => Level::Level_4_0,
        H264Level::L4_1 => Level::Level_4_1,
        H264Level::L4_2 => Level::Level_4_2,
        H264Level::L5 => Level::Level_5_0,
        H264Level::L5_1 => Level::Level_5_1,
        H264Level::L5_2 => Level::Level_5_2,
    }
}

/// An OpenH264 encoder producing Constrained Baseline for real-time calls.
pub struct H264Encoder {
    config: H264EncoderConfig,
    encoder: Encoder,
    frames: u64,
    /// Whether OpenH264 has encoded a frame with the current `encoder` (it initialises then).
    initialised: bool,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("config", &self.config)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

fn build_encoder(config: &H264EncoderConfig) -> Result<Encoder, H264Error> {
    let level = config.effective_level()?;
    let bitrate = config
        .bitrate_bps
        .clamp(*BITRATE_RANGE.start(), *BITRATE_RANGE.end());
    let mut settings = EncoderConfig::new()
        .usage_type(UsageType::CameraVideoRealTime)
        .profile(Profile::Baseline)
        .level(openh264_level(level))
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(bitrate))
        .max_frame_rate(FrameRate::from_hz(config.fps as f32))
        .skip_frames(config.allow_frame_skip)
        .sps_pps_strategy(SpsPpsStrategy::ConstantId)
        .complexity(Complexity::Low)
        .num_threads(config.threads.max(1))
        .intra_frame_period(IntraFramePeriod::from_num_frames(
            config.keyframe_interval.unwrap_or(0),
        ));
    if let Some(max) = config.max_nal_size {
        settings = settings.max_slice_len(u32::try_from(max).unwrap_or(u32::MAX));
    }
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), settings)
        .map_err(|e| H264Error::Encoder(e.to_string()))?;
    let mut callback: WelsTraceCallback = Some(openh264_log);
    // SAFETY: the encoder exists; the option takes a pointer to a callback pointer, which
    // OpenH264 copies during the call. OpenH264 accepts this option before initialisation.
    let status = unsafe {
        encoder
            .raw_api()
            .set_option(ENCODER_OPTION_TRACE_CALLBACK, (&raw mut callback).cast())
    };
    if status != 0 {
        tracing::debug!(status, "OpenH264 kept its own log output");
    }
    Ok(encoder)
}

/// Routes OpenH264's log lines (parameter warnings at initialisation) into `tracing` instead
/// of stderr.
unsafe extern "C" fn openh264_log(
    _context: *mut std::ffi::c_void,
    level: std::ffi::c_int,
    message: *const std::ffi::c_char,
) {
    if message.is_null() {
        return;
    }
    // SAFETY: OpenH264 passes a NUL-terminated string that lives for the call.
    let text = unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy();
    match level {
        WELS_LOG_ERROR => tracing::warn!(target: "openh264", "{}", text.trim_end()),
        WELS_LOG_WARNING => tracing::debug!(target: "openh264", "{}", text.trim_end()),
        _ => tracing::trace!(target: "openh264", "{}", text.trim_end()),
    }
}

impl H264Encoder {
    /// An encoder for `config`; the first frame it encodes is an IDR.
    pub fn new(config: H264EncoderConfig) -> Result<Self, H264Error> {
        config.validate()?;
        let encoder = build_encoder(&config)?;
        Ok(H264Encoder {
            config,
            encoder,
            frames: 0,
            initialised: false,
        })
    }

    /// The current configuration (size and bitrate follow reconfigurations).
    pub fn config(&self) -> &H264EncoderConfig {
        &self.config
    }

    /// The `profile-level-id` the stream conforms to (Constrained Baseline at the level used).
    pub fn profile_level_id(&self) -> Result<ProfileLevelId, H264Error> {
        Ok(ProfileLevelId::constrained_baseline(
            self.config.effective_level()?,
        ))
    }

    /// Frames encoded so far (skipped ones included).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Changes the target bitrate from the next frame on, without a keyframe. Values outside
    /// [`BITRATE_RANGE`] are clamped.
    pub fn set_bitrate(&mut self, bps: u32) -> Result<(), H264Error> {
        let bps = bps.clamp(*BITRATE_RANGE.start(), *BITRATE_RANGE.end());
        if !self.initialised {
            // OpenH264 initialises at the first frame and refuses options before: start over
            // with the new rate instead.
            let config = H264EncoderConfig {
                bitrate_bps: bps,
                ..self.config
            };
            self.encoder = build_encoder(&config)?;
            self.config = config;
            return Ok(());
        }
        let old = self.config.bitrate_bps;
        let target = |layer| SBitrateInfo {
            iLayer: layer,
            iBitrate: bps as i32,
        };
        let (mut max, mut all) = (target(SPATIAL_LAYER_0), target(SPATIAL_LAYER_ALL));
        // OpenH264 refuses a target above the layer's maximum: raise the maximum first, lower
        // it last.
        let steps: [(i32, *mut SBitrateInfo); 2] = if bps >= old {
            [
                (ENCODER_OPTION_MAX_BITRATE, &raw mut max),
                (ENCODER_OPTION_BITRATE, &raw mut all),
            ]
        } else {
            [
                (ENCODER_OPTION_BITRATE, &raw mut all),
                (ENCODER_OPTION_MAX_BITRATE, &raw mut max),
            ]
        };
        for (option, value) in steps {
            // SAFETY: the encoder is initialised (built in `new`); both options take a pointer
            // to an `SBitrateInfo` that lives for the call and is only read.
            let status = unsafe { self.encoder.raw_api().set_option(option, value.cast()) };
            if status != 0 {
                return Err(H264Error::Encoder(format!(
                    "setting the bitrate to {bps} bps failed ({status})"
                )));
            }
        }
        self.config.bitrate_bps = bps;
        Ok(())
    }

    /// Makes the next encoded frame an IDR (with SPS and PPS).
    pub fn force_keyframe(&mut self) {
        self.encoder.force_intra_frame();
    }

    /// Encodes one frame. A frame of another size than configured reconfigures the encoder
    /// first (the result is an IDR). `Ok(None)` when the rate control skipped the frame
    /// (only with [`H264EncoderConfig::allow_frame_skip`]).
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Option<EncodedAccessUnit>, H264Error> {
        if (frame.width(), frame.height()) != (self.config.width, self.config.height) {
            let mut config = self.config;
            config.width = frame.width();
            config.height = frame.height();
            if self
                .config
                .level
                .is_some_and(|l| !l.allows(config.width, config.height, config.fps))
            {
                config.level = None;
            }
            config.validate()?;
            self.encoder = build_encoder(&config)?;
            self.config = config;
            self.initialised = false;
        }
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let source = YUVSlices::new((frame.y(), frame.u(), frame.v()), (w, h), (w, w / 2, w / 2));
        let millis = u64::try_from(frame.timestamp().as_millis()).unwrap_or(u64::MAX);
        self.frames += 1;
        let stream = self
            .encoder
            .encode_at(&source, Timestamp::from_millis(millis))
            .map_err(|e| H264Error::Encoder(e.to_string()))?;
        self.initialised = true;
        if matches!(stream.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        let bytes = stream.to_vec();
        let nalus: Vec<Vec<u8>> = split_annex_b(&bytes)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        if nalus.is_empty() {
            return Ok(None);
        }
        let is_keyframe = nalus
            .iter()
            .any(|n| n.first().is_some_and(|&h| nal_type(h) == NAL_IDR));
        Ok(Some(EncodedAccessUnit {
            nalus,
            is_keyframe,
            timestamp: frame.timestamp(),
        }))
    }
}
