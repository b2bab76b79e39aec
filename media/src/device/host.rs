//! The cpal side of devices: which audio system, which device, which format, and the streams
//! whose callbacks only move samples between the device and a [`sample_ring`].
//!
//! Callisto uses cpal's PulseAudio host (a native client of the PulseAudio protocol, which
//! PipeWire's `pipewire-pulse` also speaks) when a PulseAudio server answers, and ALSA
//! otherwise. A device is named by its host id (PulseAudio's sink or source name, e.g.
//! `alsa_output.pci-0000_00_1f.3.analog-stereo` or `null.monitor`) or by its description.

use std::sync::Arc;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{
    BufferSize, ErrorKind, FromSample, HostId, Sample, SampleFormat, SizedSample, StreamConfig,
    SupportedBufferSize, SupportedStreamConfig,
};

use super::error::{DeviceError, Direction};
use super::recovery::StreamTrouble;
use super::ring::{sample_ring_with, RingCounters, RingLimits, RingReader, RingWriter};
use super::worker::TroubleSender;
use crate::audio::AudioFormat;

/// How long opening a stream may take before the device counts as unavailable.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
/// Audio the reader of a ring waits for before it plays, in milliseconds.
const PRIME_MS: u32 = 40;
/// Audio beyond which the reader of a ring drops the oldest, in milliseconds.
const MAX_MS: u32 = 200;
/// The device period asked for, in milliseconds (the audio system may choose another).
const PERIOD_MS: u32 = 10;

/// One audio device as the audio system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDeviceInfo {
    /// The human-readable name (PulseAudio's description, e.g. `Monitor of Null Output`).
    pub name: String,
    /// The audio system's identifier (PulseAudio's sink or source name, e.g.
    /// `null.monitor`); `--audio device:ID` accepts either this or the name.
    pub id: String,
    /// Which way the device moves sound.
    pub direction: Direction,
    /// Whether it is the audio system's default device for its direction.
    pub is_default: bool,
    /// The audio system: `PulseAudio` or `ALSA`.
    pub host: String,
}

/// The audio system Callisto talks to: PulseAudio when a server answers, else ALSA.
pub(crate) fn audio_system() -> Result<cpal::Host, DeviceError> {
    let mut reasons = Vec::new();
    for id in [HostId::PulseAudio, HostId::Alsa] {
        if !cpal::available_hosts().contains(&id) {
            continue;
        }
        match cpal::host_from_id(id) {
            Ok(host) => return Ok(host),
            Err(e) => reasons.push(format!("{}: {e}", id.name())),
        }
    }
    if reasons.is_empty() {
        reasons.push("neither PulseAudio nor ALSA is present".into());
    }
    Err(DeviceError::NoAudioSystem(reasons.join("; ")))
}

/// Every input and output device of the audio system, inputs first, defaults marked.
pub fn audio_devices() -> Result<Vec<AudioDeviceInfo>, DeviceError> {
    let host = audio_system()?;
    let host_name = host.id().name().to_owned();
    let default_in = host.default_input_device().and_then(|d| d.id().ok());
    let default_out = host.default_output_device().and_then(|d| d.id().ok());
    let devices: Vec<cpal::Device> = host
        .devices()
        .map_err(|e| DeviceError::List(e.to_string()))?
        .collect();
    let mut list = Vec::new();
    for direction in [Direction::Input, Direction::Output] {
        for device in &devices {
            let supports = match direction {
                Direction::Input => device.supports_input(),
                Direction::Output => device.supports_output(),
            };
            if !supports {
                continue;
            }
            let id = device.id().ok();
            let default = match direction {
                Direction::Input => &default_in,
                Direction::Output => &default_out,
            };
            list.push(AudioDeviceInfo {
                name: device_name(device),
                id: id
                    .as_ref()
                    .map(|i| i.id().to_owned())
                    .unwrap_or_else(|| device_name(device)),
                direction,
                is_default: id.is_some() && id == *default,
                host: host_name.clone(),
            });
        }
    }
    Ok(list)
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| device.to_string())
}

/// The device called `name` (by id, by name, then by a unique case-insensitive part of the
/// name), or the default device of `direction`.
fn find_device(
    host: &cpal::Host,
    direction: Direction,
    name: Option<&str>,
) -> Result<cpal::Device, DeviceError> {
    let Some(name) = name else {
        let default = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return default.ok_or(DeviceError::NoDevice(direction));
    };
    let devices: Vec<cpal::Device> = match direction {
        Direction::Input => host.input_devices().map(|d| d.collect()),
        Direction::Output => host.output_devices().map(|d| d.collect()),
    }
    .map_err(|e| DeviceError::List(e.to_string()))?;
    let ids: Vec<String> = devices
        .iter()
        .map(|d| d.id().map(|i| i.id().to_owned()).unwrap_or_default())
        .collect();
    let names: Vec<String> = devices.iter().map(device_name).collect();
    let lower = name.to_lowercase();
    let index = ids
        .iter()
        .position(|i| i == name)
        .or_else(|| names.iter().position(|n| n == name))
        .or_else(|| {
            let mut parts = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.to_lowercase().contains(&lower));
            match (parts.next(), parts.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        });
    match index {
        Some(i) => Ok(devices[i].clone()),
        None => Err(DeviceError::NotFound {
            direction,
            name: name.to_owned(),
            available: ids,
        }),
    }
}

/// A format Callisto can work with: the device's default when its rate is a multiple of
/// 50 Hz, else 48 kHz or 44.1 kHz among what the device supports.
fn choose_config(
    device: &cpal::Device,
    direction: Direction,
    name: &str,
) -> Result<SupportedStreamConfig, DeviceError> {
    let unsupported = |reason: String| DeviceError::UnsupportedFormat {
        direction,
        name: name.to_owned(),
        reason,
    };
    let usable = |c: &SupportedStreamConfig| {
        AudioFormat::new(c.sample_rate(), c.channels())
            .validate()
            .is_ok()
            && sample_format_supported(c.sample_format())
    };
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    };
    if let Ok(config) = &default {
        if usable(config) {
            return Ok(*config);
        }
    }
    let ranges: Vec<_> = match direction {
        Direction::Input => device.supported_input_configs().map(|r| r.collect()),
        Direction::Output => device.supported_output_configs().map(|r| r.collect()),
    }
    .map_err(|e| unsupported(e.to_string()))?;
    for rate in [48_000, 44_100, 16_000] {
        for range in &ranges {
            if let Some(config) = range.try_with_sample_rate(rate) {
                if usable(&config) {
                    return Ok(config);
                }
            }
        }
    }
    Err(unsupported(match default {
        Ok(c) => format!(
            "{} Hz, {} channels, {}",
            c.sample_rate(),
            c.channels(),
            c.sample_format()
        ),
        Err(e) => e.to_string(),
    }))
}

fn sample_format_supported(format: SampleFormat) -> bool {
    matches!(
        format,
        SampleFormat::I16
            | SampleFormat::F32
            | SampleFormat::I32
            | SampleFormat::U16
            | SampleFormat::U8
            | SampleFormat::I8
    )
}

/// What the stream's error callback reports means for the call.
fn trouble(error: &cpal::Error) -> StreamTrouble {
    match error.kind() {
        ErrorKind::Xrun => StreamTrouble::Glitch,
        ErrorKind::DeviceChanged => StreamTrouble::Rerouted,
        _ => StreamTrouble::Lost(error.to_string()),
    }
}

/// A device stream and the media thread's end of its ring.
pub(crate) struct Opened<End> {
    /// The stream, built but not yet played; it runs from `play()` until dropped.
    pub stream: cpal::Stream,
    /// The device's name.
    pub device: String,
    /// The format of the samples in the ring.
    pub format: AudioFormat,
    /// The media thread's end of the ring.
    pub end: End,
}

/// What a device opener needs: the device, where stream errors go, the shared counters.
pub(crate) struct OpenRequest<'a> {
    /// The device's id or name; `None` for the default device.
    pub name: Option<&'a str>,
    /// Where the stream's error callback sends what it reports.
    pub troubles: TroubleSender,
    /// The ring counters every stream of this capture or playback adds to.
    pub counters: Arc<RingCounters>,
}

fn prepare(
    direction: Direction,
    name: Option<&str>,
) -> Result<
    (
        cpal::Device,
        String,
        StreamConfig,
        SampleFormat,
        AudioFormat,
    ),
    DeviceError,
> {
    let host = audio_system()?;
    let device = find_device(&host, direction, name)?;
    let device_name = device_name(&device);
    let supported = choose_config(&device, direction, &device_name)?;
    let format = AudioFormat::new(supported.sample_rate(), supported.channels());
    let period = format.samples_per_channel_in_ms(PERIOD_MS) as u32;
    let buffer_size = match supported.buffer_size() {
        SupportedBufferSize::Range { min, max } if (*min..=*max).contains(&period) => {
            BufferSize::Fixed(period)
        }
        _ => BufferSize::Default,
    };
    let config = StreamConfig {
        channels: supported.channels(),
        sample_rate: supported.sample_rate(),
        buffer_size,
    };
    Ok((
        device,
        device_name,
        config,
        supported.sample_format(),
        format,
    ))
}

/// Calls `build::<T>(args…)` with `T` the Rust type of a cpal sample format; `None` for a
/// format Callisto does not read.
macro_rules! by_sample_type {
    ($format:expr, $build:ident($($arg:expr),* $(,)?)) => {
        match $format {
            SampleFormat::I16 => Some($build::<i16>($($arg),*)),
            SampleFormat::F32 => Some($build::<f32>($($arg),*)),
            SampleFormat::I32 => Some($build::<i32>($($arg),*)),
            SampleFormat::U16 => Some($build::<u16>($($arg),*)),
            SampleFormat::U8 => Some($build::<u8>($($arg),*)),
            SampleFormat::I8 => Some($build::<i8>($($arg),*)),
            _ => None,
        }
    };
}

fn open_error(direction: Direction, name: &str, e: impl ToString) -> DeviceError {
    DeviceError::Open {
        direction,
        name: name.to_owned(),
        reason: e.to_string(),
    }
}

/// Opens a capture stream whose callback writes into a new ring; it runs once played.
pub(crate) fn open_capture(request: OpenRequest<'_>) -> Result<Opened<RingReader>, DeviceError> {
    let direction = Direction::Input;
    let (device, name, config, sample_format, format) = prepare(direction, request.name)?;
    let limits = RingLimits::millis(format.sample_rate, PRIME_MS, MAX_MS);
    let (writer, reader) = sample_ring_with(format.channels, limits, request.counters);
    let troubles = request.troubles;
    let stream = by_sample_type!(
        sample_format,
        build_capture(&device, &config, writer, troubles)
    )
    .ok_or_else(|| open_error(direction, &name, format!("sample format {sample_format}")))?
    .map_err(|e| open_error(direction, &name, e))?;
    Ok(Opened {
        stream,
        device: name,
        format,
        end: reader,
    })
}

/// Opens a playback stream whose callback reads from a new ring; it runs once played.
pub(crate) fn open_playback(request: OpenRequest<'_>) -> Result<Opened<RingWriter>, DeviceError> {
    let direction = Direction::Output;
    let (device, name, config, sample_format, format) = prepare(direction, request.name)?;
    let limits = RingLimits::millis(format.sample_rate, PRIME_MS, MAX_MS);
    let (writer, reader) = sample_ring_with(format.channels, limits, request.counters);
    let troubles = request.troubles;
    let stream = by_sample_type!(
        sample_format,
        build_playback(&device, &config, reader, troubles)
    )
    .ok_or_else(|| open_error(direction, &name, format!("sample format {sample_format}")))?
    .map_err(|e| open_error(direction, &name, e))?;
    Ok(Opened {
        stream,
        device: name,
        format,
        end: writer,
    })
}

/// The capture callback converts each sample to `i16` and writes it into the ring; nothing
/// else. The error callback hands the error to the device's worker thread.
fn build_capture<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    mut writer: RingWriter,
    troubles: TroubleSender,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    i16: FromSample<T>,
{
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _| {
            writer.write_from(data, i16::from_sample);
        },
        move |error| {
            troubles.report(trouble(&error));
        },
        Some(OPEN_TIMEOUT),
    )
}

/// The playback callback reads from the ring (silence when it is short) and converts each
/// sample to the device's format; nothing else.
fn build_playback<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    mut reader: RingReader,
    troubles: TroubleSender,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<i16>,
{
    device.build_output_stream::<T, _, _>(
        *config,
        move |data: &mut [T], _| {
            reader.read_into(data, T::EQUILIBRIUM, T::from_sample);
        },
        move |error| {
            troubles.report(trouble(&error));
        },
        Some(OPEN_TIMEOUT),
    )
}
