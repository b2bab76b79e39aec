//! The audio media thread of a WebRTC session (DESIGN.md rule 4): the classic session's
//! sans-IO [`SendPipeline`] and [`ReceivePipeline`] on their own thread, with RTP handed to and
//! from the peer connection's tokio tasks through channels.
//!
//! The thread sleeps until the pipelines' next deadline (the next packet to send and the next
//! frame to play, both every 20 ms), then takes the RTP packets that arrived meanwhile with
//! their arrival times, sends what is due and plays what is due. Packets from the peer are not
//! woken for: a packet cannot play before the next frame tick, and the jitter buffer and the
//! statistics see the true arrival times. A stop command wakes it at once.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, info_span};

use crate::audio::{AudioSink, AudioSource};
use crate::rtp::{parse_rtp, RtpPacket, RtpSender};
use crate::session::{
    AudioStats, AudioStreamConfig, MediaDirection, MediaEvent, ReceivePipeline, SendPipeline,
    SessionError, SessionOptions, SilenceTimer,
};

/// What the media thread is handed.
pub(crate) enum AudioInput {
    /// An RTP packet from the peer (already SRTP-decrypted), marshalled, with its arrival time.
    Rtp { at: Instant, datagram: Bytes },
    /// Whether the peer sends audio, by the latest offer/answer (not while it holds us, or
    /// we it): the media timeout counts only while it does.
    PeerSends(bool),
    /// Stop: finish the sink and return the statistics.
    Stop,
}

/// A running audio thread.
pub(crate) struct AudioThread {
    stop: Sender<AudioInput>,
    handle: Option<JoinHandle<AudioStats>>,
    stats: Arc<Mutex<AudioStats>>,
}

/// What the thread needs besides its source and sink.
pub(crate) struct AudioThreadConfig {
    /// The negotiated stream (codec, payload type, ptime).
    pub stream: AudioStreamConfig,
    /// Our SSRC, as announced in our SDP.
    pub ssrc: u32,
    /// Jitter-buffer bounds and the like.
    pub options: SessionOptions,
    /// Report [`MediaEvent::MediaTimeout`] after this long without RTP from the peer.
    pub media_timeout: Option<Duration>,
}

impl AudioThread {
    /// Builds both pipelines on the calling thread (so a refused codec is reported here) and
    /// starts the thread. The peer's RTP comes from `inputs` (whose sender is `stop`), outgoing
    /// RTP goes to `outgoing`, events to `on_event`.
    pub(crate) fn start(
        config: AudioThreadConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        (stop, inputs): (Sender<AudioInput>, Receiver<AudioInput>),
        outgoing: UnboundedSender<RtpPacket>,
        on_event: Box<dyn FnMut(MediaEvent) + Send>,
    ) -> Result<AudioThread, SessionError> {
        let AudioThreadConfig {
            stream,
            ssrc,
            options,
            media_timeout,
        } = config;
        stream.validate()?;
        let now = Instant::now();
        let mut rng = rand::thread_rng();
        let rtp = RtpSender::with_start(
            ssrc,
            rng.gen(),
            rng.gen(),
            stream.payload_type,
            stream.codec.clock_rate(),
        );
        let send = SendPipeline::new(&stream, None, source, rtp, now)?;
        let receive = ReceivePipeline::new(&stream, None, sink, &options, now)?;
        let stats = Arc::new(Mutex::new(initial_stats(&stream, ssrc)));
        let media = MediaLoop {
            send,
            receive,
            inputs,
            outgoing,
            on_event,
            stats: Arc::clone(&stats),
            unparseable: 0,
            silence: media_timeout.map(|timeout| SilenceTimer::new(timeout, now)),
            peer_sends: true,
        };
        let span = info_span!("webrtc-audio", ssrc = %format_args!("{ssrc:08x}"));
        let handle = thread::Builder::new()
            .name("callisto-webrtc-audio".into())
            .spawn(move || span.in_scope(|| media.run()))?;
        Ok(AudioThread {
            stop,
            handle: Some(handle),
            stats,
        })
    }

    /// The latest statistics (at most one 20 ms tick old).
    pub(crate) fn stats(&self) -> AudioStats {
        lock(&self.stats).clone()
    }

    /// Stops the thread: the sink is finished; returns the final statistics.
    pub(crate) fn stop(&mut self) -> AudioStats {
        match self.handle.take() {
            Some(handle) => {
                let _ = self.stop.send(AudioInput::Stop);
                handle.thread().unpark();
                handle.join().unwrap_or_else(|_| lock(&self.stats).clone())
            }
            None => lock(&self.stats).clone(),
        }
    }
}

impl Drop for AudioThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn initial_stats(stream: &AudioStreamConfig, ssrc: u32) -> AudioStats {
    AudioStats {
        codec: stream.codec.encoding_name().to_owned(),
        srtp: true,
        tx_packets: 0,
        rx_packets: 0,
        lost: 0,
        jitter_ms: 0.0,
        rtt_ms: None,
        tx_bytes: 0,
        rx_bytes: 0,
        concealed_frames: 0,
        discarded: 0,
        jitter_buffer_delay_ms: 0.0,
        first_rtp_sent_at: None,
        first_rtp_received_at: None,
        remote_addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        decoded_frames: 0,
        fec_recovered_frames: 0,
        local_ssrc: ssrc,
        remote_ssrc: None,
        direction: MediaDirection::SENDRECV,
        rtcp_sent: 0,
        rtcp_received: 0,
    }
}

/// The thread's state.
struct MediaLoop {
    send: SendPipeline,
    receive: ReceivePipeline,
    inputs: Receiver<AudioInput>,
    outgoing: UnboundedSender<RtpPacket>,
    on_event: Box<dyn FnMut(MediaEvent) + Send>,
    stats: Arc<Mutex<AudioStats>>,
    /// Packets our own pipeline made that did not parse back (never expected).
    unparseable: u64,
    /// Since the peer's last RTP (or the start), when a media timeout is set.
    silence: Option<SilenceTimer>,
    /// Whether the peer is to send at all (see [`AudioInput::PeerSends`]).
    peer_sends: bool,
}

impl MediaLoop {
    fn run(mut self) -> AudioStats {
        'run: loop {
            loop {
                match self.inputs.try_recv() {
                    Ok(AudioInput::Rtp { at, datagram }) => {
                        self.receive.handle_datagram(at, &datagram);
                        if let Some(silence) = &mut self.silence {
                            silence.heard(at);
                        }
                    }
                    Ok(AudioInput::PeerSends(sends)) => {
                        if sends && !self.peer_sends {
                            // Counted from when the peer was to start sending again.
                            if let Some(silence) = &mut self.silence {
                                silence.heard(Instant::now());
                            }
                        }
                        self.peer_sends = sends;
                    }
                    Ok(AudioInput::Stop) | Err(TryRecvError::Disconnected) => break 'run,
                    Err(TryRecvError::Empty) => break,
                }
            }
            let now = Instant::now();
            while let Some(datagram) = self.send.poll_packet(now) {
                match parse_rtp(&datagram) {
                    // The peer connection's tasks may be gone at the very end; nothing to do.
                    Ok(packet) => {
                        let _ = self.outgoing.send(packet);
                    }
                    Err(e) => {
                        debug!(error = %e, "own RTP packet did not parse");
                        self.unparseable += 1;
                    }
                }
            }
            self.receive.playout(now);
            while let Some(event) = self.receive.poll_event() {
                (self.on_event)(event);
            }
            if self.peer_sends && self.silence.as_mut().is_some_and(|s| s.fire(now)) {
                info!("no media from the peer: media timeout");
                (self.on_event)(MediaEvent::MediaTimeout);
            }
            self.publish();
            let deadline = self.send.poll_timeout().min(self.receive.poll_timeout());
            let wait = deadline.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                thread::park_timeout(wait.min(Duration::from_millis(100)));
            }
        }
        self.receive.finish();
        self.publish();
        lock(&self.stats).clone()
    }

    fn publish(&self) {
        let sent = self.send.counters();
        let received = self.receive.counters();
        let reception = self.receive.receiver_stats();
        let mut stats = lock(&self.stats);
        stats.tx_packets = sent.packets;
        stats.tx_bytes = sent.bytes;
        stats.first_rtp_sent_at = sent.first_sent_at;
        stats.rx_packets = received.packets;
        stats.rx_bytes = received.bytes;
        stats.first_rtp_received_at = received.first_received_at;
        stats.lost = self.receive.lost();
        stats.jitter_ms = reception.jitter_ms();
        stats.concealed_frames = received.concealed_frames;
        stats.discarded = received.discarded + self.unparseable;
        stats.jitter_buffer_delay_ms =
            self.receive.jitter_buffer().current_delay().as_secs_f64() * 1000.0;
        stats.decoded_frames = received.decoded_frames;
        stats.fec_recovered_frames = received.fec_recovered_frames;
        stats.remote_ssrc = reception.ssrc();
    }
}
