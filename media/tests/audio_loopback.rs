//! The audio send and receive paths end to end through the public API: a file or generator,
//! conversion to the codec's format, encoding, decoding, conversion back, and a recording —
//! checked by content (tone frequency and level) and by timing (the delay of a burst).

use std::f64::consts::TAU;

use callisto_media::audio::{
    AudioFormat, AudioFrame, AudioSink, AudioSource, Burst, BurstSource, EndOfFile, MemorySink,
    Resampler, ToneSource, WavRecorder, WavSource,
};
use callisto_media::codec::{AudioCodecKind, AudioDecoder, AudioEncoder, EncoderConfig};

/// Amplitude (fraction of full scale) of the component at `hz`, by a Hann-windowed Goertzel filter.
fn tone_amplitude(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let n = samples.len() as f64;
    let coeff = 2.0 * (TAU * hz / f64::from(rate)).cos();
    let (mut s1, mut s2, mut window_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in samples.iter().enumerate() {
        let w = 0.5 - 0.5 * (TAU * i as f64 / n).cos();
        window_sum += w;
        let s0 = w * f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / window_sum
}

/// One direction of a call: device-format frames in, device-format frames out, through a codec.
struct Path {
    to_codec: Resampler,
    encoder: Box<dyn AudioEncoder>,
    decoder: Box<dyn AudioDecoder>,
    from_codec: Resampler,
    payload: Vec<u8>,
    pcm: Vec<i16>,
}

impl Path {
    fn new(device: AudioFormat, kind: AudioCodecKind) -> Self {
        let encoder = kind.make_encoder(&EncoderConfig::mono()).unwrap();
        let decoder = kind.make_decoder(1).unwrap();
        Path {
            to_codec: Resampler::new(device, encoder.pcm_format()).unwrap(),
            from_codec: Resampler::new(decoder.pcm_format(), device).unwrap(),
            encoder,
            decoder,
            payload: Vec::new(),
            pcm: Vec::new(),
        }
    }

    fn carry(&mut self, frame: &AudioFrame) -> AudioFrame {
        let codec_frame = self.to_codec.process(frame).unwrap();
        self.payload.clear();
        self.encoder
            .encode(codec_frame.samples(), &mut self.payload)
            .unwrap();
        self.pcm.clear();
        self.decoder.decode(&self.payload, &mut self.pcm).unwrap();
        let decoded = AudioFrame::new(self.decoder.pcm_format(), self.pcm.clone()).unwrap();
        self.from_codec.process(&decoded).unwrap()
    }

    /// The delay the path adds, in device samples, from the documented figures.
    fn documented_delay(&self, device_rate: u32) -> usize {
        let codec_rate = self.encoder.clock_rate() as usize;
        let at_device_rate = |n: usize| n * device_rate as usize / codec_rate;
        at_device_rate(self.to_codec.delay_samples())
            + at_device_rate(self.encoder.delay_samples())
            + self.from_codec.delay_samples()
    }
}

#[test]
fn a_wav_file_through_g711_to_a_recording_keeps_its_tone() {
    let dir = tempfile::tempdir().unwrap();
    let device = AudioFormat::new(44_100, 2);
    let input = dir.path().join("input.wav");
    let output = dir.path().join("output.wav");

    let mut tone = ToneSource::with_dbfs(device, 1_000.0, -12.0);
    let mut recorder = WavRecorder::create(&input, device).unwrap();
    for _ in 0..50 {
        recorder
            .write(&tone.read_frame().unwrap().unwrap())
            .unwrap();
    }
    recorder.finish().unwrap();

    let mut source = WavSource::open(&input, EndOfFile::Stop).unwrap();
    let mut path = Path::new(device, AudioCodecKind::Pcma);
    let mut recording = WavRecorder::create(&output, device).unwrap();
    let mut frames = 0;
    while let Some(frame) = source.read_frame().unwrap() {
        recording.write(&path.carry(&frame)).unwrap();
        frames += 1;
    }
    recording.finish().unwrap();
    assert_eq!(frames, 50);

    let mut played = WavSource::open(&output, EndOfFile::Stop).unwrap();
    assert_eq!(played.format(), device);
    let mut samples = Vec::new();
    while let Some(frame) = played.read_frame().unwrap() {
        samples.extend_from_slice(frame.samples());
    }
    assert_eq!(samples.len(), 44_100 * 2);
    for channel in 0..2 {
        let side: Vec<i16> = samples[8_820..]
            .iter()
            .skip(channel)
            .step_by(2)
            .copied()
            .collect();
        let amplitude = tone_amplitude(&side, 44_100, 1_000.0);
        let db = 20.0 * amplitude.log10();
        assert!(
            (db - (-12.0)).abs() < 1.0,
            "channel {channel}: {db:.2} dBFS peak"
        );
    }
}

/// The lag (in samples) at which `reference` best matches `signal`, searched up to `max_lag`.
fn best_lag(signal: &[i16], reference: &[i16], max_lag: usize) -> usize {
    (0..max_lag)
        .max_by_key(|&lag| {
            reference
                .iter()
                .zip(&signal[lag..])
                .map(|(&r, &s)| i64::from(r) * i64::from(s))
                .sum::<i64>()
        })
        .unwrap_or(0)
}

#[test]
fn a_burst_arrives_after_the_documented_mouth_to_ear_delay() {
    let device = AudioFormat::MONO_48K;
    let burst = Burst::millis(device, 200, 40, 1_000.0, 0.5);
    for kind in AudioCodecKind::ALL {
        let mut source = BurstSource::new(device, burst);
        let mut path = Path::new(device, kind);
        let mut ear = MemorySink::new(device);
        for _ in 0..25 {
            let frame = source.read_frame().unwrap().unwrap();
            ear.write(&path.carry(&frame)).unwrap();
        }
        ear.finish().unwrap();
        let heard = ear.samples();

        let mut reference = vec![0; heard.len()];
        BurstSource::new(device, burst)
            .read(&mut reference)
            .unwrap();
        let start = burst.start as usize;
        let window = &reference[start..start + burst.length as usize];
        let lag = best_lag(&heard[start..], window, 2_000);
        let expected = path.documented_delay(device.sample_rate);
        // G.711 paths land on the sample; Opus's coding moves the correlation peak by a few
        // samples (well under 0.1 ms).
        assert!(
            lag.abs_diff(expected) <= 4,
            "{kind}: burst arrived {lag} samples late, documented {expected}"
        );
    }
}
