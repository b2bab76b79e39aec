//! The video media thread of a call, on either media path (DESIGN.md rule 4): source → H.264
//! encoder → RFC 6184 packetizer → RTP, and RTP → depacketizer → decoder → sink, with keyframe
//! requests both ways. What carries the RTP and the PLIs is the path's [`VideoOutput`]: the
//! WebRTC session's tasks, or the classic video session's sockets.
//!
//! - **Sending** starts when ICE and DTLS are up (nothing is read from the source before, so a
//!   test pattern's first frame is frame 0 and the first picture the peer gets is the IDR the
//!   encoder starts with). Every `1 / fps` from then on one frame is read, encoded and sent;
//!   a thread more than 200 ms late skips ahead instead of bursting. When the source ends,
//!   sending stops.
//! - **Receiving**: each RTP packet is depacketized as it arrives (the routing task wakes the
//!   thread); a complete access unit is decoded and the picture handed to the sink at once.
//!   A damaged access unit (loss, refused payload) or a decoder error asks the sender for a
//!   keyframe with a PLI, at most one per [`PLI_MIN_INTERVAL`].
//! - **Keyframe requests** from the peer (PLI, FIR) make the next frame an IDR.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use tracing::{debug, info_span, warn};

use crate::rtp::{RtpHeader, RtpPacket};
use crate::video::h264::{
    DepacketizerConfig, DepacketizerOutput, H264Decoder, H264Depacketizer, H264Encoder,
    H264EncoderConfig, H264Packetizer, PacketizationMode,
};
use crate::video::{VideoSink, VideoSource};

/// Fewest time between two PLIs we send.
pub(crate) const PLI_MIN_INTERVAL: Duration = Duration::from_millis(300);
/// RTP payload budget per packet (below the path MTU with SRTP, extensions and headers).
pub(crate) const RTP_PAYLOAD_MTU: usize = 1_100;
/// A frame tick more than this late is skipped rather than caught up.
const MAX_LATENESS: Duration = Duration::from_millis(200);
/// The RTP clock of video.
const CLOCK_RATE: u64 = 90_000;

/// A snapshot of one video stream's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoStats {
    /// The codec's encoding name ("H264").
    pub codec: String,
    /// Size of the frames we send.
    pub send_resolution: (u32, u32),
    /// Size of the latest frame we decoded.
    pub receive_resolution: Option<(u32, u32)>,
    /// Frames encoded and sent.
    pub frames_sent: u64,
    /// Keyframes (IDR) among them.
    pub keyframes_sent: u64,
    /// Frames decoded and handed to the sink.
    pub frames_decoded: u64,
    /// Decoded frames per second, between the first and the latest decoded frame.
    pub decode_fps: f64,
    /// Bitrate sent, bits per second, since the first frame.
    pub send_bitrate_bps: f64,
    /// Bitrate received, bits per second, since the first packet.
    pub receive_bitrate_bps: f64,
    /// RTP packets sent / received.
    pub tx_packets: u64,
    /// RTP packets received.
    pub rx_packets: u64,
    /// Packets missing from the received sequence.
    pub lost: u64,
    /// Access units dropped as damaged.
    pub dropped_frames: u64,
    /// Pictures the decoder refused.
    pub decode_errors: u64,
    /// PLIs we sent.
    pub keyframe_requests_sent: u64,
    /// PLIs and FIRs the peer sent us.
    pub keyframe_requests_received: u64,
    /// NACKs we sent about the peer's video (from the peer connection's statistics).
    pub nacks_sent: u64,
    /// NACKs the peer sent about ours (from the peer connection's statistics).
    pub nacks_received: u64,
    /// When the first frame was decoded.
    pub first_frame_decoded_at: Option<Instant>,
}

/// What the video thread is handed.
pub(crate) enum VideoInput {
    /// An RTP packet from the peer with its arrival time.
    Rtp { at: Instant, packet: RtpPacket },
    /// The peer asked for a keyframe (PLI or FIR).
    KeyframeRequested,
    /// Ask the peer for a keyframe (a PLI, rate-limited like the decoder's own requests).
    RequestKeyframe,
    /// Stop: finish the sink and return the statistics.
    Stop,
}

/// What the thread needs besides its media.
pub(crate) struct VideoThreadConfig {
    /// Highest bitrate the encoder aims for, in bits per second.
    pub max_bitrate: u32,
    pub ssrc: u32,
    pub payload_type: u8,
    /// The negotiated RFC 6184 packetization mode (mode 0 limits NAL units to one packet).
    pub packetization: PacketizationMode,
    /// Whether the transport is up (sending waits for it).
    pub connected: Arc<AtomicBool>,
}

/// Where the thread's RTP packets and keyframe requests go. Called on the video thread: an
/// implementation must return quickly.
pub(crate) trait VideoOutput: Send + 'static {
    /// Sends one RTP packet of our stream.
    fn send_rtp(&mut self, packet: RtpPacket);
    /// Asks the peer for a keyframe (a PLI); already rate-limited by the thread.
    fn send_pli(&mut self);
}

/// The thread's channels: its inbox (and the sender side, for stopping it), and its output.
pub(crate) struct VideoChannels {
    pub inbox: (Sender<VideoInput>, Receiver<VideoInput>),
    pub output: Box<dyn VideoOutput>,
}

/// Why a video thread could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VideoThreadError {
    /// The encoder, decoder or packetizer refused the configuration.
    #[error("{0}")]
    Codec(String),
    /// The thread could not be spawned.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A running video thread.
pub(crate) struct VideoThread {
    stop: Sender<VideoInput>,
    handle: Option<JoinHandle<VideoStats>>,
    stats: Arc<Mutex<VideoStats>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VideoThread {
    /// Builds the encoder, decoder and packetizer here (so refusals are reported to the
    /// caller) and starts the thread.
    pub(crate) fn start(
        config: VideoThreadConfig,
        source: Box<dyn VideoSource>,
        sink: Box<dyn VideoSink>,
        channels: VideoChannels,
    ) -> Result<VideoThread, VideoThreadError> {
        let video = |e: &dyn std::fmt::Display| VideoThreadError::Codec(e.to_string());
        let format = source.format();
        let fps = format.fps.max(1);
        let mut encoder_config =
            H264EncoderConfig::new(format.width, format.height, fps, config.max_bitrate);
        encoder_config.keyframe_interval = Some(fps.saturating_mul(10));
        if config.packetization == PacketizationMode::SingleNalUnit {
            encoder_config.max_nal_size = Some(RTP_PAYLOAD_MTU);
        }
        let encoder = H264Encoder::new(encoder_config).map_err(|e| video(&e))?;
        let decoder = H264Decoder::new().map_err(|e| video(&e))?;
        let packetizer =
            H264Packetizer::new(config.packetization, RTP_PAYLOAD_MTU).map_err(|e| video(&e))?;
        let mut rng = rand::thread_rng();
        let stats = Arc::new(Mutex::new(VideoStats {
            codec: "H264".to_owned(),
            send_resolution: (format.width, format.height),
            ..VideoStats::default()
        }));
        let (stop, inputs) = channels.inbox;
        let media = VideoLoop {
            source,
            sink,
            encoder,
            decoder,
            packetizer,
            depacketizer: H264Depacketizer::new(DepacketizerConfig::default()),
            inputs,
            output: channels.output,
            connected: config.connected,
            ssrc: config.ssrc,
            payload_type: config.payload_type,
            sequence: rng.gen(),
            timestamp_base: rng.gen(),
            interval: Duration::from_secs(1) / fps,
            next_frame: None,
            source_ended: false,
            last_pli: None,
            counters: VideoStats::clone(&lock(&stats)),
            sent_bytes: 0,
            first_sent_at: None,
            received_bytes: 0,
            first_received_at: None,
            last_decoded_at: None,
            stats: Arc::clone(&stats),
        };
        let span = info_span!("video", ssrc = %format_args!("{:08x}", config.ssrc));
        let handle = thread::Builder::new()
            .name("callisto-video".into())
            .spawn(move || span.in_scope(|| media.run()))?;
        Ok(VideoThread {
            stop,
            handle: Some(handle),
            stats,
        })
    }

    /// The thread, for waking it when input arrives.
    pub(crate) fn thread(&self) -> Option<thread::Thread> {
        self.handle.as_ref().map(|h| h.thread().clone())
    }

    /// The latest statistics.
    pub(crate) fn stats(&self) -> VideoStats {
        lock(&self.stats).clone()
    }

    /// Stops the thread (the sink is finished) and returns the final statistics.
    pub(crate) fn stop(&mut self) -> VideoStats {
        match self.handle.take() {
            Some(handle) => {
                let _ = self.stop.send(VideoInput::Stop);
                handle.thread().unpark();
                handle.join().unwrap_or_else(|_| lock(&self.stats).clone())
            }
            None => lock(&self.stats).clone(),
        }
    }
}

impl Drop for VideoThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's state.
struct VideoLoop {
    source: Box<dyn VideoSource>,
    sink: Box<dyn VideoSink>,
    encoder: H264Encoder,
    decoder: H264Decoder,
    packetizer: H264Packetizer,
    depacketizer: H264Depacketizer,
    inputs: Receiver<VideoInput>,
    output: Box<dyn VideoOutput>,
    connected: Arc<AtomicBool>,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    timestamp_base: u32,
    interval: Duration,
    next_frame: Option<Instant>,
    source_ended: bool,
    last_pli: Option<Instant>,
    counters: VideoStats,
    sent_bytes: u64,
    first_sent_at: Option<Instant>,
    received_bytes: u64,
    first_received_at: Option<Instant>,
    last_decoded_at: Option<Instant>,
    stats: Arc<Mutex<VideoStats>>,
}

impl VideoLoop {
    fn run(mut self) -> VideoStats {
        'run: loop {
            loop {
                match self.inputs.try_recv() {
                    Ok(VideoInput::Rtp { at, packet }) => self.receive(at, packet),
                    Ok(VideoInput::KeyframeRequested) => {
                        self.counters.keyframe_requests_received += 1;
                        self.encoder.force_keyframe();
                    }
                    Ok(VideoInput::RequestKeyframe) => self.request_keyframe(Instant::now()),
                    Ok(VideoInput::Stop) | Err(TryRecvError::Disconnected) => break 'run,
                    Err(TryRecvError::Empty) => break,
                }
            }
            let now = Instant::now();
            self.send_due(now);
            self.publish(now);
            let wait = match self.next_frame {
                Some(next) => next.saturating_duration_since(Instant::now()),
                None => Duration::from_millis(10),
            };
            if !wait.is_zero() {
                thread::park_timeout(wait.min(Duration::from_millis(100)));
            }
        }
        if let Err(e) = self.sink.finish() {
            warn!(error = %e, "video sink failed to finish");
        }
        self.publish(Instant::now());
        lock(&self.stats).clone()
    }

    /// Encodes and sends every frame due at `now` (none before the connection is up).
    fn send_due(&mut self, now: Instant) {
        if self.source_ended || !self.connected.load(Ordering::Acquire) {
            return;
        }
        let due = *self.next_frame.get_or_insert(now);
        if now < due {
            return;
        }
        let late = now.saturating_duration_since(due);
        let tick = if late > MAX_LATENESS {
            let missed = (late.as_nanos() / self.interval.as_nanos().max(1)) as u32;
            debug!(missed, "video ran late: skipping ahead");
            due + self.interval * missed
        } else {
            due
        };
        self.next_frame = Some(tick + self.interval);
        let frame = match self.source.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                debug!("video source ended");
                self.source_ended = true;
                return;
            }
            Err(e) => {
                warn!(error = %e, "video source failed: video stops");
                self.source_ended = true;
                return;
            }
        };
        let unit = match self.encoder.encode(&frame) {
            Ok(Some(unit)) => unit,
            Ok(None) => return,
            Err(e) => {
                debug!(error = %e, "encoder refused a frame");
                return;
            }
        };
        let payloads = match self.packetizer.packetize(&unit.nalus) {
            Ok(payloads) => payloads,
            Err(e) => {
                debug!(error = %e, "packetizer refused an access unit");
                return;
            }
        };
        let ticks = frame.timestamp().as_micros() as u64 * CLOCK_RATE / 1_000_000;
        let timestamp = self.timestamp_base.wrapping_add(ticks as u32);
        let last = payloads.len().saturating_sub(1);
        for (i, payload) in payloads.into_iter().enumerate() {
            self.sent_bytes += payload.len() as u64 + 12;
            let packet = RtpPacket {
                header: RtpHeader {
                    version: 2,
                    marker: i == last,
                    payload_type: self.payload_type,
                    sequence_number: self.sequence,
                    timestamp,
                    ssrc: self.ssrc,
                    ..RtpHeader::default()
                },
                payload: Bytes::from(payload),
            };
            self.sequence = self.sequence.wrapping_add(1);
            self.counters.tx_packets += 1;
            self.output.send_rtp(packet);
        }
        self.first_sent_at.get_or_insert(now);
        self.counters.frames_sent += 1;
        if unit.is_keyframe {
            self.counters.keyframes_sent += 1;
        }
    }

    /// One RTP packet from the peer: depacketize, decode what completed, ask for keyframes.
    fn receive(&mut self, at: Instant, packet: RtpPacket) {
        self.counters.rx_packets += 1;
        self.received_bytes += packet.payload.len() as u64 + 12;
        self.first_received_at.get_or_insert(at);
        let header = &packet.header;
        if let Err(e) = self.depacketizer.handle_packet(
            header.sequence_number,
            header.timestamp,
            header.marker,
            &packet.payload,
        ) {
            debug!(error = %e, "H.264 payload refused");
        }
        while let Some(output) = self.depacketizer.poll_output() {
            match output {
                DepacketizerOutput::AccessUnit(unit) => {
                    let pts =
                        Duration::from_micros(u64::from(unit.timestamp) * 1_000_000 / CLOCK_RATE);
                    match self.decoder.decode_nalus(&unit.nalus, pts) {
                        Ok(Some(frame)) => {
                            self.counters.frames_decoded += 1;
                            self.counters.receive_resolution =
                                Some((frame.width(), frame.height()));
                            let decoded_at = Instant::now();
                            self.counters
                                .first_frame_decoded_at
                                .get_or_insert(decoded_at);
                            self.last_decoded_at = Some(decoded_at);
                            if let Err(e) = self.sink.consume(&frame) {
                                debug!(error = %e, "video sink refused a frame");
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            debug!(error = %e, "decoder refused an access unit");
                            self.counters.decode_errors += 1;
                            self.request_keyframe(at);
                        }
                    }
                }
                DepacketizerOutput::NeedKeyframe { .. } => self.request_keyframe(at),
            }
        }
    }

    fn request_keyframe(&mut self, now: Instant) {
        if self
            .last_pli
            .is_some_and(|last| now.saturating_duration_since(last) < PLI_MIN_INTERVAL)
        {
            return;
        }
        self.last_pli = Some(now);
        self.counters.keyframe_requests_sent += 1;
        self.output.send_pli();
    }

    fn publish(&mut self, now: Instant) {
        let depacketizer = self.depacketizer.stats();
        self.counters.lost = depacketizer.lost_packets;
        self.counters.dropped_frames = depacketizer.dropped_access_units;
        let rate = |bytes: u64, since: Option<Instant>| {
            since
                .map(|t| now.saturating_duration_since(t).as_secs_f64())
                .filter(|secs| *secs > 0.0)
                .map_or(0.0, |secs| bytes as f64 * 8.0 / secs)
        };
        self.counters.send_bitrate_bps = rate(self.sent_bytes, self.first_sent_at);
        self.counters.receive_bitrate_bps = rate(self.received_bytes, self.first_received_at);
        self.counters.decode_fps =
            match (self.counters.first_frame_decoded_at, self.last_decoded_at) {
                (Some(first), Some(last)) if last > first => {
                    self.counters.frames_decoded.saturating_sub(1) as f64
                        / last.duration_since(first).as_secs_f64()
                }
                _ => 0.0,
            };
        *lock(&self.stats) = self.counters.clone();
    }
}
