//! The video media thread of a call, on either media path (DESIGN.md rule 4): source → scale →
//! H.264 encoder → RFC 6184 packetizer → RTP, and RTP → NACK generator → reorder buffer →
//! depacketizer → decoder → sink, with keyframe requests both ways. What carries the RTP and
//! the RTCP feedback (PLI, NACK) is the path's [`VideoOutput`]: the WebRTC session's tasks, or
//! the classic video session's sockets.
//!
//! - **Sending** starts when the transport is up (ICE and DTLS on the WebRTC path; nothing is
//!   read from the source before, so a test pattern's first frame is frame 0 and the first
//!   picture the peer gets is the IDR the encoder starts with). Every `1 / fps` from then on
//!   one frame is read, encoded and sent; a thread more than 200 ms late skips ahead instead
//!   of bursting. When the source ends, sending stops.
//! - **Adapting** (WebRTC path, with a [`SharedController`]): before each frame the thread
//!   reads the session's [`BitrateController`](crate::congestion::BitrateController) (fed by
//!   the interceptor chain, see [`congestion_feed`](crate::webrtc::congestion_feed)): its
//!   target goes to the encoder (`set_bitrate`, when it moved by 5 % or 10 kbps), its layer
//!   advice scales the source frames down ([`scale_i420`](crate::video::scale_i420)) and, at the lowest rung, sends every
//!   other frame. The controller's hysteresis keeps the size from flapping. Without a
//!   controller (the classic path) the encoder keeps the configured bitrate and the source's
//!   size and rate.
//! - **Receiving**: each RTP packet goes to the [`NackGenerator`] when the peer answers NACKs
//!   (it asks for what is missing; the WebRTC peer connection's responder answers on the other
//!   side) and through a [`ReorderBuffer`] that holds packets behind a hole for
//!   min(1.5 × RTT + 50 ms, 150 ms), so a retransmission (or a reordered packet) fills it;
//!   then in sequence order into the depacketizer; a complete access unit is decoded and the
//!   picture handed to the sink at once. A damaged access unit (a hole given up, a refused
//!   payload), a decoder error, a packet the NACK generator gave up on, or a stream that has
//!   not decoded a picture a second after its first packet needs a keyframe: the
//!   [`KeyframeRequester`] asks with a PLI at once, and again, backing off from
//!   max(250 ms, RTT + 100 ms) to 2 s, until a keyframe is decoded.
//! - **Keyframe requests** from the peer (PLI, FIR) go to the [`KeyframeScheduler`], which
//!   makes the next frame an IDR — keyframes made for requests at least max(300 ms, RTT)
//!   apart, a request inside that time served when it ends — and one every 10 s as a safety
//!   net.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use tracing::{debug, info_span, warn};

use crate::congestion::VideoLayerAdvice;
use crate::rtp::{
    Arrival, KeyframeRequester, KeyframeRequesterConfig, KeyframeScheduler,
    KeyframeSchedulerConfig, NackArrival, NackConfig, NackGenerator, ReorderBuffer, ReorderConfig,
    RtpHeader, RtpPacket,
};
use crate::video::h264::{
    DepacketizerConfig, DepacketizerOutput, EncodedAccessUnit, H264Decoder, H264Depacketizer,
    H264Encoder, H264Level, H264Packetizer, H264PayloadError, PacketizationMode,
};
use crate::video::{EncodedFeed, VideoFormat, VideoSink, VideoSource};
use crate::webrtc::congestion_feed::SharedController;
use picture::{coded_format, new_encoder, scale_to, within_level};

/// RTP payload budget per packet (below the path MTU with SRTP, extensions and headers).
pub(crate) const RTP_PAYLOAD_MTU: usize = 1_100;
/// The shortest round trip the thread paces itself by.
const MIN_RTT: Duration = Duration::from_millis(5);
/// A frame tick more than this late is skipped rather than caught up.
const MAX_LATENESS: Duration = Duration::from_millis(200);
/// The RTP clock of video.
const CLOCK_RATE: u64 = 90_000;

/// What the video thread is handed.
pub(crate) enum VideoInput {
    /// An RTP packet from the peer with its arrival time.
    Rtp { at: Instant, packet: RtpPacket },
    /// The peer asked for a keyframe (PLI or FIR).
    KeyframeRequested,
    /// Ask the peer for a keyframe (a PLI, repeated like the decoder's own requests).
    RequestKeyframe,
    /// The round-trip time RTCP measured (the classic path; on the WebRTC path the bitrate
    /// controller tells it): it paces NACKs, the reorder buffer's wait and keyframe requests.
    Rtt(Duration),
    /// Whether generic NACK is negotiated now (a renegotiation of the classic path may add or
    /// drop it): lost packets are asked for only while it is.
    Nack(bool),
    /// The H.264 level the peer decodes now (a renegotiation named another): our pictures,
    /// rate and bitrate are fitted to it from the next picture on, a keyframe first.
    Level(Option<H264Level>),
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
    /// Whether the negotiated direction sends (false on hold): meanwhile the source's frames
    /// are read at their rate but neither encoded nor sent, and the first one after a resume
    /// is a keyframe.
    pub sending: Arc<AtomicBool>,
    /// The session's bitrate controller (the WebRTC path); without one the encoder keeps
    /// `max_bitrate` and the source's size and rate.
    pub controller: Option<SharedController>,
    /// Whether the peer answers generic NACKs: then a [`NackGenerator`] asks for what is
    /// missing through [`VideoOutput::send_nack`]; else holes are only waited for by the
    /// reorder buffer and then given up on.
    pub nack: bool,
    /// The H.264 level the peer decodes (its `profile-level-id`), when it named one: our
    /// pictures, rate and bitrate stay within it ([`H264Level::fit`]), and below level 3.1
    /// the SPS carries it.
    pub level: Option<H264Level>,
}

/// Where the thread's RTP packets and RTCP feedback go. Called on the video thread: an
/// implementation must return quickly.
pub(crate) trait VideoOutput: Send + 'static {
    /// Sends one RTP packet of our stream.
    fn send_rtp(&mut self, packet: RtpPacket);
    /// Asks the peer for a keyframe (a PLI); the thread's [`KeyframeRequester`] paces them.
    fn send_pli(&mut self);
    /// Asks the peer to retransmit these packets of its stream (a generic NACK). Only called
    /// when the thread was configured with [`VideoThreadConfig::nack`].
    fn send_nack(&mut self, sequences: Vec<u16>);
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
    /// caller) and starts the thread. Without a `source` the thread only receives: no encoder
    /// is built and nothing is sent but feedback about the peer's stream (a further stream
    /// of a multistream call).
    pub(crate) fn start(
        config: VideoThreadConfig,
        source: Option<Box<dyn VideoSource>>,
        sink: Box<dyn VideoSink>,
        channels: VideoChannels,
    ) -> Result<VideoThread, VideoThreadError> {
        let video = |e: &dyn std::fmt::Display| VideoThreadError::Codec(e.to_string());
        let format = match &source {
            Some(source) => source.format(),
            None => VideoFormat::new(16, 16, 1).map_err(|e| video(&e))?,
        };
        let fps = format.fps.max(1);
        let (target, layer) = match &config.controller {
            Some(controller) => {
                let controller = controller.lock();
                (controller.target_bitrate(), controller.layer_advice())
            }
            None => (
                u64::from(config.max_bitrate),
                VideoLayerAdvice {
                    width: format.width,
                    height: format.height,
                    fps,
                },
            ),
        };
        let layer = within_level(layer, config.level);
        let target = config
            .level
            .map_or(target, |l| target.min(l.limits().max_bitrate_bps));
        let start_bps = u32::try_from(target).unwrap_or(config.max_bitrate);
        let sender = match source {
            // Pictures encoded elsewhere (a conference's mosaic): sent as they are, cut for
            // this call's packetization mode.
            Some(source) if source.encoded_feed().is_some() => {
                let feed = source.encoded_feed();
                if let Some(feed) = &feed {
                    feed.set_single_nal(config.packetization == PacketizationMode::SingleNalUnit);
                    feed.set_bitrate(start_bps);
                }
                Some(Sending {
                    source,
                    encoder: None,
                    feed,
                })
            }
            Some(source) => {
                let coded = coded_format(format, layer, config.level);
                let encoder = new_encoder(coded, start_bps, config.packetization, config.level)
                    .map_err(|e| video(&e))?;
                Some(Sending {
                    source,
                    encoder: Some(encoder),
                    feed: None,
                })
            }
            None => None,
        };
        let decoder = H264Decoder::new().map_err(|e| video(&e))?;
        let packetizer =
            H264Packetizer::new(config.packetization, RTP_PAYLOAD_MTU).map_err(|e| video(&e))?;
        let mut rng = rand::thread_rng();
        let stats = Arc::new(Mutex::new(VideoStats {
            codec: "H264".to_owned(),
            send_resolution: (layer.width, layer.height),
            target_bitrate_bps: target,
            send_fps: layer.fps,
            ..VideoStats::default()
        }));
        let (stop, inputs) = channels.inbox;
        let media = VideoLoop {
            sender,
            sink,
            decoder,
            packetizer,
            depacketizer: H264Depacketizer::new(DepacketizerConfig::default()),
            reorder: ReorderBuffer::new(ReorderConfig::default()),
            nack: config
                .nack
                .then(|| NackGenerator::new(NackConfig::default())),
            rtt: None,
            controller: config.controller,
            encoder_bps: start_bps,
            max_bitrate: config.max_bitrate,
            layer,
            source_fps: fps,
            frame_credit: 1.0,
            inputs,
            output: channels.output,
            connected: config.connected,
            sending: config.sending,
            held: false,
            ssrc: config.ssrc,
            payload_type: config.payload_type,
            sequence: rng.gen(),
            timestamp_base: rng.gen(),
            last_timestamp: None,
            rebase_timestamps: false,
            packetization: config.packetization,
            level: config.level,
            black: None,
            interval: Duration::from_secs(1) / fps,
            next_frame: None,
            source_ended: false,
            keyframes: KeyframeScheduler::new(KeyframeSchedulerConfig::default(), Instant::now()),
            requester: KeyframeRequester::new(KeyframeRequesterConfig::default()),
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

/// What a thread that sends has: the picture's source and the encoder — or, for a source of
/// pictures encoded elsewhere, its feed of access units.
struct Sending {
    source: Box<dyn VideoSource>,
    encoder: Option<H264Encoder>,
    feed: Option<EncodedFeed>,
}

/// The thread's state.
struct VideoLoop {
    /// `None` on a receive-only thread.
    sender: Option<Sending>,
    sink: Box<dyn VideoSink>,
    decoder: H264Decoder,
    packetizer: H264Packetizer,
    depacketizer: H264Depacketizer,
    reorder: ReorderBuffer<RtpPacket>,
    nack: Option<NackGenerator>,
    /// The last round-trip time told ([`VideoInput::Rtt`], at least [`MIN_RTT`]).
    rtt: Option<Duration>,
    controller: Option<SharedController>,
    /// The bitrate the encoder was last given.
    encoder_bps: u32,
    /// The highest bitrate the encoder aims for ([`VideoThreadConfig::max_bitrate`]).
    max_bitrate: u32,
    /// The frame size and rate in use.
    layer: VideoLayerAdvice,
    source_fps: u32,
    /// Frames owed at the advised rate (a frame is sent when it reaches 1).
    frame_credit: f64,
    inputs: Receiver<VideoInput>,
    output: Box<dyn VideoOutput>,
    connected: Arc<AtomicBool>,
    sending: Arc<AtomicBool>,
    /// Frames were not encoded because the direction did not send.
    held: bool,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    timestamp_base: u32,
    /// The RTP timestamp of the last unit sent, and when it was sent.
    last_timestamp: Option<(u32, Instant)>,
    /// The next unit sent rebases the timestamps on the last (the source was replaced).
    rebase_timestamps: bool,
    packetization: PacketizationMode,
    /// The level the peer decodes.
    level: Option<H264Level>,
    /// What a paused shared feed's sender sends instead.
    black: Option<relay::BlackPictures>,
    interval: Duration,
    next_frame: Option<Instant>,
    source_ended: bool,
    /// When the encoder makes a keyframe.
    keyframes: KeyframeScheduler,
    /// When to ask the peer for one.
    requester: KeyframeRequester,
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
        if let Some(feed) = self.sender.as_ref().and_then(|s| s.feed.as_ref()) {
            feed.wake(thread::current());
        }
        'run: loop {
            loop {
                match self.inputs.try_recv() {
                    Ok(VideoInput::Rtp { at, packet }) => self.receive(at, packet),
                    Ok(VideoInput::KeyframeRequested) => {
                        self.counters.keyframe_requests_received += 1;
                        self.keyframes.on_pli(Instant::now());
                        if let Some(sender) = &mut self.sender {
                            if let Some(feed) = &sender.feed {
                                feed.request_keyframe();
                            }
                        }
                        if let Some(black) = &mut self.black {
                            black.next = Instant::now();
                        }
                    }
                    Ok(VideoInput::RequestKeyframe) => self.requester.request(Instant::now()),
                    Ok(VideoInput::Rtt(rtt)) => self.set_rtt(rtt),
                    Ok(VideoInput::Nack(on)) => self.set_nack(on),
                    Ok(VideoInput::Level(level)) => self.set_level(level),
                    Ok(VideoInput::Stop) | Err(TryRecvError::Disconnected) => break 'run,
                    Err(TryRecvError::Empty) => break,
                }
            }
            let now = Instant::now();
            self.service_receive(now);
            self.send_due(now);
            self.publish(now);
            let wake = [
                self.next_frame,
                self.reorder.poll_timeout(),
                self.nack.as_ref().and_then(NackGenerator::poll_timeout),
                self.requester.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let wait = match wake {
                Some(next) => next.saturating_duration_since(Instant::now()),
                None => Duration::from_millis(10),
            };
            if !wait.is_zero() {
                thread::park_timeout(wait.min(Duration::from_millis(100)));
            }
        }
        // A shared feed asks for nothing more (its source may outlive the thread).
        if let Some(feed) = self.sender.as_ref().and_then(|s| s.feed.as_ref()) {
            feed.set_active(false);
        }
        if let Err(e) = self.sink.finish() {
            warn!(error = %e, "video sink failed to finish");
        }
        self.publish(Instant::now());
        lock(&self.stats).clone()
    }

    /// Encodes and sends every frame due at `now` (none before the connection is up).
    fn send_due(&mut self, now: Instant) {
        self.follow_replacement();
        if let Some(feed) = self.sender.as_ref().and_then(|s| s.feed.clone()) {
            self.relay(&feed, now);
            return;
        }
        if self.source_ended || self.sender.is_none() || !self.connected.load(Ordering::Acquire) {
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
        self.adapt();
        let Some(sender) = &mut self.sender else {
            return;
        };
        let frame = match sender.source.next_frame() {
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
        // At a lower advised frame rate, only some of the source's frames are sent: the
        // credit stays below 2, so at most one a tick, and what is left after a frame counts
        // towards the next (20 of 30 sends two frames in three).
        let share = (f64::from(self.layer.fps) / f64::from(self.source_fps)).min(1.0);
        self.frame_credit += share;
        if self.frame_credit < 1.0 - 1e-9 {
            return;
        }
        self.frame_credit -= 1.0;
        if !self.sending.load(Ordering::Acquire) {
            self.held = true;
            return;
        }
        if std::mem::take(&mut self.held) {
            self.keyframes.request(now);
        }
        let frame = match scale_to(frame, self.layer.width, self.layer.height) {
            Ok(frame) => frame,
            Err(e) => {
                debug!(error = %e, "frame not scaled to the advised size");
                return;
            }
        };
        self.counters.send_resolution = (frame.width(), frame.height());
        let Some(encoder) = &mut sender.encoder else {
            return;
        };
        let forced = self.keyframes.poll_keyframe(now);
        if forced {
            encoder.force_keyframe();
        }
        let unit = match encoder.encode(&frame) {
            Ok(Some(unit)) if unit.is_keyframe => {
                self.keyframes.on_keyframe_sent(now);
                unit
            }
            Ok(Some(unit)) => unit,
            Ok(None) => return,
            Err(e) => {
                debug!(error = %e, "encoder refused a frame");
                if forced {
                    // The keyframe is still owed.
                    self.keyframes.request(now);
                }
                return;
            }
        };
        self.send_unit(&unit, now);
    }

    /// Packetizes one access unit and sends it.
    fn send_unit(&mut self, unit: &EncodedAccessUnit, now: Instant) {
        let payloads = match self.packetizer.packetize(&unit.nalus) {
            Ok(payloads) => payloads,
            Err(e) => {
                debug!(error = %e, "packetizer refused an access unit");
                return;
            }
        };
        let ticks = unit.timestamp.as_micros() as u64 * CLOCK_RATE / 1_000_000;
        if std::mem::take(&mut self.rebase_timestamps) {
            if let Some((last, at)) = self.last_timestamp {
                // On from the last unit by the time that passed, a frame's at least.
                let frame = CLOCK_RATE / u64::from(self.source_fps.max(1));
                let passed =
                    now.saturating_duration_since(at).as_micros() as u64 * CLOCK_RATE / 1_000_000;
                let step = passed.max(frame) as u32;
                self.timestamp_base = last.wrapping_add(step).wrapping_sub(ticks as u32);
            }
        }
        let timestamp = self.timestamp_base.wrapping_add(ticks as u32);
        self.last_timestamp = Some((timestamp, now));
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

    /// Takes the controller's target and layer advice (and the RTT for the receive side).
    fn adapt(&mut self) {
        let Some(controller) = &self.controller else {
            self.counters.send_fps = self.layer.fps;
            return;
        };
        let (target, advice, rtt, acknowledged, feedback_reports) = {
            let mut controller = controller.lock();
            // The state is read whole below; the change events are not needed.
            while controller.poll_event().is_some() {}
            (
                controller.target_bitrate(),
                controller.layer_advice(),
                controller.rtt(),
                controller.acknowledged_bitrate(),
                controller.stats().feedback_reports,
            )
        };
        let advice = within_level(advice, self.level);
        let target = self
            .level
            .map_or(target, |l| target.min(l.limits().max_bitrate_bps));
        self.counters.target_bitrate_bps = target;
        self.counters.acknowledged_bitrate_bps = acknowledged;
        self.counters.transport_feedback_reports = feedback_reports;
        let target = u32::try_from(target).unwrap_or(u32::MAX);
        let moved = target.abs_diff(self.encoder_bps);
        if let Some(sender) = &mut self.sender {
            if moved >= 10_000 || f64::from(moved) >= 0.05 * f64::from(self.encoder_bps) {
                if let Some(encoder) = &mut sender.encoder {
                    match encoder.set_bitrate(target) {
                        Ok(()) => self.encoder_bps = target,
                        Err(e) => debug!(error = %e, "encoder refused the target bitrate"),
                    }
                }
                if let Some(feed) = &sender.feed {
                    feed.set_bitrate(target);
                    self.encoder_bps = target;
                }
            }
        }
        if advice != self.layer {
            debug!(?advice, target, "video layer changes");
            self.layer = advice;
            self.counters.layer_changes += 1;
        }
        self.counters.send_fps = self.layer.fps;
        self.set_rtt(rtt);
    }

    /// The round-trip time to the peer, for what waits on it: at least [`MIN_RTT`] (a round
    /// trip too short to measure is reported as zero, and NACKs every 10 ms would follow).
    fn set_rtt(&mut self, rtt: Duration) {
        let rtt = rtt.max(MIN_RTT);
        self.rtt = Some(rtt);
        if let Some(nack) = &mut self.nack {
            nack.set_rtt(rtt);
        }
        self.reorder.set_rtt(rtt);
        self.keyframes.set_rtt(rtt);
        self.requester.set_rtt(rtt);
    }

    /// Asks for lost packets from now on (a new generator, told the last round trip), or no
    /// longer.
    fn set_nack(&mut self, on: bool) {
        match (on, &self.nack) {
            (true, None) => {
                let mut nack = NackGenerator::new(NackConfig::default());
                if let Some(rtt) = self.rtt {
                    nack.set_rtt(rtt);
                }
                self.nack = Some(nack);
            }
            (false, Some(_)) => self.nack = None,
            _ => {}
        }
    }

    /// One RTP packet from the peer: loss bookkeeping, then into the reorder buffer.
    fn receive(&mut self, at: Instant, packet: RtpPacket) {
        self.counters.rx_packets += 1;
        self.received_bytes += packet.payload.len() as u64 + 12;
        self.first_received_at.get_or_insert(at);
        self.requester.on_packet(at);
        let sequence = packet.header.sequence_number;
        if self
            .nack
            .as_mut()
            .is_some_and(|nack| nack.on_packet(sequence, at) == NackArrival::Recovered)
        {
            self.counters.retransmissions_received += 1;
        }
        match self.reorder.push(sequence, packet, at) {
            Arrival::FilledHole => self.counters.holes_filled += 1,
            Arrival::Late => self.counters.packets_too_late += 1,
            Arrival::InOrder | Arrival::Duplicate => {}
        }
        self.service_receive(at);
    }

    /// Delivers what the reorder buffer releases, sends due NACKs, and the keyframe request
    /// due (the NACK generator giving up needs one too).
    fn service_receive(&mut self, now: Instant) {
        while let Some(packet) = self.reorder.poll(now) {
            self.depacketize(now, &packet);
        }
        if let Some(nack) = &mut self.nack {
            let (sequences, give_up) = (nack.poll_nack(now), nack.take_keyframe_request());
            if let Some(sequences) = sequences {
                self.counters.nacks_sent += 1;
                self.output.send_nack(sequences);
            }
            if give_up {
                self.requester.request(now);
            }
        }
        if self.requester.poll_request(now).is_some() {
            self.counters.keyframe_requests_sent += 1;
            self.output.send_pli();
        }
    }

    /// One packet in sequence order: depacketize, decode what completed, ask for keyframes.
    fn depacketize(&mut self, at: Instant, packet: &RtpPacket) {
        let header = &packet.header;
        if let Err(e) = self.depacketizer.handle_packet(
            header.sequence_number,
            header.timestamp,
            header.marker,
            &packet.payload,
        ) {
            if matches!(e, H264PayloadError::LateOrDuplicate { .. }) {
                // Not the peer's fault: a retransmission that came after all.
                debug!(error = %e, "H.264 payload already depacketized");
            } else {
                self.counters.payloads_refused += 1;
                if self.counters.payloads_refused == 1 {
                    warn!(error = %e, "the peer's video carries a payload that is not H.264 as RFC 6184 packs it (further ones are counted)");
                } else {
                    debug!(error = %e, "H.264 payload refused");
                }
            }
        }
        while let Some(output) = self.depacketizer.poll_output() {
            match output {
                DepacketizerOutput::AccessUnit(unit) => {
                    let pts =
                        Duration::from_micros(u64::from(unit.timestamp) * 1_000_000 / CLOCK_RATE);
                    match self.decoder.decode_nalus(&unit.nalus, pts) {
                        Ok(Some(frame)) => {
                            self.requester.on_frame_decoded(unit.is_keyframe, at);
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
                            self.requester.on_decode_error(at);
                        }
                    }
                }
                DepacketizerOutput::NeedKeyframe { .. } => self.requester.on_frame_lost(at),
            }
        }
    }

    fn publish(&mut self, now: Instant) {
        let depacketizer = self.depacketizer.stats();
        self.counters.lost = depacketizer.lost_packets;
        self.counters.dropped_frames = depacketizer.dropped_access_units;
        let reorder = self.reorder.stats();
        self.counters.packets_given_up = reorder.skipped;
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

#[path = "stream_thread_picture.rs"]
mod picture;
#[path = "stream_thread_stats.rs"]
mod stats;
pub use stats::VideoStats;
#[path = "stream_thread_relay.rs"]
mod relay;
#[cfg(test)]
#[path = "stream_thread_tests.rs"]
mod tests;
