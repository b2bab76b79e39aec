//! The receive half of a session: datagram → demultiplexer → SRTP → RTP parser → reception
//! statistics (SSRC latching) → RFC 4733 events or the jitter buffer; and every 20 ms, jitter
//! buffer → decoder (decode, conceal, or Opus FEC) → resampler → sink. Sans-IO.
//!
//! The playout clock ticks every 20 ms from the start ([`ReceivePipeline::poll_timeout`]); each
//! tick writes exactly one 20 ms frame to the sink. Decoded audio goes through a small buffer in
//! the codec's format, so packets of any duration play out as 20 ms frames: the jitter buffer
//! is popped whenever that buffer holds less than a frame, at the time its audio will start
//! playing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use audiopus::packet::Packet as OpusPacket;
use audiopus::SampleRate;
use bytes::Bytes;
use tracing::{debug, warn};

use super::send_pipeline::MAX_LATENESS;
use super::{AudioStreamConfig, MediaEvent, SessionError, SessionOptions, SrtpKeys};
use crate::audio::{AudioFormat, AudioFrame, AudioSink, Resampler, FRAME_MS};
use crate::codec::{AudioCodecKind, AudioDecoder};
use crate::jitter_buffer::{BufferedPacket, JitterBuffer, JitterBufferConfig, Playout};
use crate::rtp::{
    Demuxer, DtmfEvent, DtmfReceiver, PacketClass, ReceiverStats, ReceiverStatsConfig, RtpPacket,
    RtpVerdict, SrtpError, SrtpSession,
};

/// The playout tick.
const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscardReason {
    /// Not RTP or RTCP by its first bytes, or a header that fails validation.
    Garbage,
    /// STUN, DTLS, ZRTP or TURN: not the classic path's business.
    NotMedia,
    /// SRTP or SRTCP authentication failed (forged, corrupted, or keyed differently).
    Authentication,
    /// An SRTP or SRTCP packet received before.
    Replayed,
    /// A plain RTP packet the jitter buffer had already received.
    Duplicate,
    /// An RTP packet whose padding or extension block is inconsistent, or SRTP that could not
    /// be processed for another reason.
    Malformed,
    /// RTP from an SSRC other than the latched one.
    ForeignSsrc,
    /// An RTP sequence jump awaiting confirmation.
    BadSequence,
    /// RTP with a payload type that was not negotiated.
    UnknownPayloadType,
}

impl From<&SrtpError> for DiscardReason {
    fn from(error: &SrtpError) -> Self {
        match error {
            SrtpError::AuthenticationFailed => DiscardReason::Authentication,
            SrtpError::Replayed => DiscardReason::Replayed,
            SrtpError::TooShort | SrtpError::MalformedHeader => DiscardReason::Garbage,
            _ => DiscardReason::Malformed,
        }
    }
}

/// What became of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A valid RTP packet of the peer's stream (voice or event).
    Rtp {
        /// Its SSRC.
        ssrc: u32,
        /// Newer than every packet of the stream before it: a packet that may move the latch.
        fresh: bool,
    },
    /// An RTCP compound packet, decrypted and authenticated when SRTP is on; not yet parsed.
    Rtcp(Bytes),
    /// Dropped, and counted.
    Discarded(DiscardReason),
}

/// What the receive pipeline has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveCounters {
    /// Valid RTP packets of the peer's stream.
    pub packets: u64,
    /// Bytes of those datagrams.
    pub bytes: u64,
    /// Datagrams dropped (see [`DiscardReason`]).
    pub discarded: u64,
    /// When the first valid RTP packet arrived.
    pub first_received_at: Option<Instant>,
    /// Packets decoded as received.
    pub decoded_frames: u64,
    /// Lost packets rebuilt from in-band FEC.
    pub fec_recovered_frames: u64,
    /// Packets concealed.
    pub concealed_frames: u64,
    /// Jitter-buffer pops that were silence (nothing received yet, sender silence) or frames
    /// written silent while not receiving.
    pub silent_frames: u64,
    /// 20 ms frames written to the sink.
    pub frames_written: u64,
    /// Playout ticks skipped because the pipeline ran more than 200 ms late.
    pub skipped_ticks: u64,
}

/// The codec-dependent part, rebuilt when the stream changes.
struct Decoding {
    stream: AudioStreamConfig,
    decoder: Box<dyn AudioDecoder>,
    from_codec: Resampler,
    /// Interleaved samples in 20 ms of decoded audio.
    frame_len: usize,
    channels: usize,
    jitter: JitterBuffer,
    dtmf: Option<DtmfReceiver>,
}

impl Decoding {
    fn new(
        stream: &AudioStreamConfig,
        sink_format: AudioFormat,
        options: &SessionOptions,
    ) -> Result<Self, SessionError> {
        stream.validate()?;
        // Opus decodes mono and stereo streams alike into the channel count asked for: ask for
        // the sink's, so no channel mixing is needed afterwards.
        let channels = match stream.codec {
            AudioCodecKind::Opus => sink_format.channels.clamp(1, 2),
            AudioCodecKind::Pcmu | AudioCodecKind::Pcma => 1,
        };
        let decoder = stream.codec.make_decoder(channels)?;
        let from_codec = Resampler::new(decoder.pcm_format(), sink_format)?;
        let clock_rate = stream.codec.clock_rate();
        let jitter = JitterBuffer::new(
            JitterBufferConfig::new(clock_rate)
                .with_frame(stream.ptime())
                .with_delay_range(options.jitter_min_delay, options.jitter_max_delay),
        );
        Ok(Decoding {
            stream: *stream,
            frame_len: decoder.pcm_format().frame_len(),
            channels: usize::from(channels),
            decoder,
            from_codec,
            jitter,
            dtmf: stream
                .telephone_event
                .map(|event| DtmfReceiver::new(event.clock_rate)),
        })
    }
}

/// The receive pipeline of one audio stream.
pub struct ReceivePipeline {
    options: SessionOptions,
    srtp: Option<(SrtpKeys, SrtpSession)>,
    demux: Demuxer,
    stats: ReceiverStats,
    /// Highest extended sequence number of the current source.
    highest: Option<u32>,
    /// Packets lost by earlier sources of the peer.
    lost_before: u64,
    decoding: Decoding,
    /// Decoded samples not yet written, in the decoder's format.
    decoded: Vec<i16>,
    resampled: Vec<i16>,
    sink: Box<dyn AudioSink>,
    sink_frame: AudioFrame,
    sink_failed: bool,
    receiving: bool,
    next_tick: Instant,
    events: VecDeque<MediaEvent>,
    counters: ReceiveCounters,
}

impl std::fmt::Debug for ReceivePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivePipeline")
            .field("stream", &self.decoding.stream)
            .field("remote_ssrc", &self.stats.ssrc())
            .field("receiving", &self.receiving)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl ReceivePipeline {
    /// A pipeline receiving `stream` (SRTP-protected with `srtp` when given) into `sink`; the
    /// first frame is written at `start`.
    pub fn new(
        stream: &AudioStreamConfig,
        srtp: Option<&SrtpKeys>,
        sink: Box<dyn AudioSink>,
        options: &SessionOptions,
        start: Instant,
    ) -> Result<Self, SessionError> {
        let decoding = Decoding::new(stream, sink.format(), options)?;
        let srtp = srtp.map(inbound_srtp).transpose()?;
        Ok(ReceivePipeline {
            options: *options,
            srtp,
            demux: Demuxer::new(),
            stats: ReceiverStats::new(ReceiverStatsConfig::new(stream.codec.clock_rate())),
            highest: None,
            lost_before: 0,
            decoded: Vec::with_capacity(decoding.frame_len * 4),
            resampled: Vec::with_capacity(sink.format().frame_len()),
            sink_frame: AudioFrame::silent_frame(sink.format()),
            decoding,
            sink,
            sink_failed: false,
            receiving: true,
            next_tick: start,
            events: VecDeque::new(),
            counters: ReceiveCounters::default(),
        })
    }

    /// Takes a datagram that arrived at `now` on the session's socket(s).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Received {
        let class = match self.demux.demux(datagram) {
            Ok(class) => class,
            Err(_) => return self.discard(DiscardReason::Garbage),
        };
        match class {
            PacketClass::Rtp => {}
            PacketClass::Rtcp => {
                return match self.srtp.as_mut() {
                    Some((_, srtp)) => match srtp.unprotect_rtcp(datagram) {
                        Ok(plain) => Received::Rtcp(plain),
                        Err(e) => self.discard(DiscardReason::from(&e)),
                    },
                    None => Received::Rtcp(Bytes::copy_from_slice(datagram)),
                };
            }
            _ => return self.discard(DiscardReason::NotMedia),
        }
        let parsed = match self.srtp.as_mut() {
            Some((_, srtp)) => match srtp.unprotect_rtp(datagram) {
                Ok(plain) => self.demux.parse_rtp(&plain),
                Err(e) => return self.discard(DiscardReason::from(&e)),
            },
            None => self.demux.parse_rtp(datagram),
        };
        match parsed {
            Ok(packet) => self.handle_rtp(now, packet, datagram.len()),
            Err(_) => self.discard(DiscardReason::Malformed),
        }
    }

    fn discard(&mut self, reason: DiscardReason) -> Received {
        self.counters.discarded += 1;
        Received::Discarded(reason)
    }

    /// A parsed (decrypted) RTP packet: statistics, latching, then events or the buffer.
    fn handle_rtp(&mut self, now: Instant, packet: RtpPacket, wire_len: usize) -> Received {
        let header = &packet.header;
        let (ssrc, pt) = (header.ssrc, header.payload_type);
        // Packets of any payload type share the stream's sequence numbers, so all of them go
        // through the statistics before unknown ones are dropped.
        let lost = self.lost();
        let verdict = self.stats.on_packet(now, &packet);
        let fresh = match verdict {
            RtpVerdict::ForeignSsrc { .. } => return self.discard(DiscardReason::ForeignSsrc),
            RtpVerdict::BadSequence => return self.discard(DiscardReason::BadSequence),
            RtpVerdict::NewSource { previous } => {
                if previous.is_some() {
                    debug!(ssrc, "the peer's stream changed SSRC");
                    self.lost_before = lost;
                    self.highest = None;
                    self.restart_playback();
                    if let Some(dtmf) = self.decoding.dtmf.as_mut() {
                        dtmf.new_stream();
                    }
                }
                true
            }
            RtpVerdict::Probation => true,
            RtpVerdict::Accepted { extended_sequence } => {
                let fresh = self.highest.is_none_or(|h| extended_sequence > h);
                if fresh {
                    self.highest = Some(extended_sequence);
                }
                fresh
            }
        };
        let stream = &self.decoding.stream;
        let voice = pt == stream.payload_type || stream.receive_payload_type == Some(pt);
        let event = stream
            .telephone_event
            .is_some_and(|e| e.payload_type == pt || e.receive_payload_type == Some(pt));
        if !voice && !event {
            return self.discard(DiscardReason::UnknownPayloadType);
        }
        self.counters.packets += 1;
        self.counters.bytes += wire_len as u64;
        if self.counters.first_received_at.is_none() {
            self.counters.first_received_at = Some(now);
            self.events.push_back(MediaEvent::FirstPacket { at: now });
        }
        if !self.receiving {
            return Received::Rtp { ssrc, fresh };
        }
        if event {
            self.handle_event(&packet);
            return Received::Rtp { ssrc, fresh };
        }
        let samples = payload_samples(self.decoding.stream.codec, &packet.payload);
        let buffered = BufferedPacket {
            sequence: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            quiet: false,
            samples,
            payload: packet.payload,
        };
        let jitter = &mut self.decoding.jitter;
        let duplicates = jitter.stats().duplicate;
        jitter.push(buffered, now);
        if jitter.stats().duplicate > duplicates {
            return self.discard(DiscardReason::Duplicate);
        }
        Received::Rtp { ssrc, fresh }
    }

    fn handle_event(&mut self, packet: &RtpPacket) {
        let Some(dtmf) = self.decoding.dtmf.as_mut() else {
            return;
        };
        if dtmf.handle_packet(packet).is_err() {
            self.counters.discarded += 1;
            return;
        }
        while let Some(event) = dtmf.poll_event() {
            if let DtmfEvent::Ended {
                digit, duration, ..
            } = event
            {
                self.events.push_back(MediaEvent::Dtmf {
                    digit: digit.to_char(),
                    duration,
                });
            }
        }
    }

    /// Starts playback afresh: jitter buffer, decoder and decoded audio (a new SSRC, or
    /// playback resuming).
    fn restart_playback(&mut self) {
        self.decoding.jitter.reset();
        self.decoding.decoder.reset();
        self.decoded.clear();
    }

    /// When the next frame is due at the sink.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// Writes every frame due at `now` to the sink.
    pub fn playout(&mut self, now: Instant) {
        while self.next_tick <= now {
            let mut tick = self.next_tick;
            let late = now.saturating_duration_since(tick);
            if late > MAX_LATENESS {
                let missed = (late.as_nanos() / FRAME.as_nanos()) as u32;
                debug!(missed, "playout ran late: skipping ahead");
                self.counters.skipped_ticks += u64::from(missed);
                tick += FRAME * missed;
            }
            self.next_tick = tick + FRAME;
            self.frame_tick(tick);
        }
    }

    /// One 20 ms frame to the sink.
    fn frame_tick(&mut self, tick: Instant) {
        if !self.receiving {
            self.counters.silent_frames += 1;
            self.sink_frame.samples_mut().fill(0);
            self.write_sink_frame();
            return;
        }
        let frame_len = self.decoding.frame_len;
        while self.decoded.len() < frame_len {
            let ahead = (self.decoded.len() / self.decoding.channels) as u64 * 1_000_000
                / u64::from(self.decoding.stream.codec.clock_rate());
            let playout = self
                .decoding
                .jitter
                .pop(tick + Duration::from_micros(ahead));
            self.render(playout);
        }
        self.resampled.clear();
        let converted = self
            .decoding
            .from_codec
            .process_into(&self.decoded[..frame_len], &mut self.resampled);
        self.decoded.drain(..frame_len);
        match converted {
            Ok(()) if self.resampled.len() == self.sink_frame.samples().len() => {
                self.sink_frame
                    .samples_mut()
                    .copy_from_slice(&self.resampled);
            }
            // One frame in the resampler's input format always converts; silence keeps the
            // timeline if it ever does not.
            _ => self.sink_frame.samples_mut().fill(0),
        }
        self.write_sink_frame();
    }

    /// Decodes, conceals or fills what one jitter-buffer pop stands for.
    fn render(&mut self, playout: Playout) {
        let channels = self.decoding.channels;
        let before = self.decoded.len();
        let samples = playout.samples().max(1) as usize;
        let decoder = &mut self.decoding.decoder;
        match playout {
            Playout::Packet { packet, .. } => {
                match decoder.decode(&packet.payload, &mut self.decoded) {
                    Ok(n) if n > 0 => self.counters.decoded_frames += 1,
                    _ => {
                        self.decoded.truncate(before);
                        self.conceal(samples);
                    }
                }
            }
            Playout::Conceal { next, .. } => {
                let recovered = match next {
                    Some(next) if decoder.has_fec() => {
                        decoder.decode_fec(&next.payload, &mut self.decoded).ok()
                    }
                    _ => None,
                };
                match recovered {
                    Some(n) if n > 0 => self.counters.fec_recovered_frames += 1,
                    _ => {
                        self.decoded.truncate(before);
                        self.conceal(samples);
                    }
                }
            }
            Playout::Silence { .. } | Playout::Wait { .. } => {
                self.counters.silent_frames += 1;
                self.decoded.resize(before + samples * channels, 0);
            }
        }
    }

    /// Appends exactly `samples` (per channel) of packet-loss concealment.
    fn conceal(&mut self, samples: usize) {
        self.counters.concealed_frames += 1;
        let target = self.decoded.len() + samples * self.decoding.channels;
        while self.decoded.len() < target {
            match self.decoding.decoder.conceal(&mut self.decoded) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        self.decoded.resize(target, 0);
    }

    fn write_sink_frame(&mut self) {
        self.counters.frames_written += 1;
        if let Err(e) = self.sink.write(&self.sink_frame) {
            if !self.sink_failed {
                warn!(error = %e, "audio sink refused a frame; playback continues without it");
                self.sink_failed = true;
            }
        }
    }

    /// Turns playback on or off. Resuming starts the stream afresh (jitter buffer and decoder),
    /// keeping the reception statistics.
    pub fn set_receiving(&mut self, receiving: bool) {
        if receiving && !self.receiving {
            self.restart_playback();
        }
        if !receiving {
            self.decoded.clear();
        }
        self.receiving = receiving;
    }

    /// Whether received audio is played.
    pub fn is_receiving(&self) -> bool {
        self.receiving
    }

    /// Checks that `stream` and `srtp` can be applied, without applying them.
    pub fn check(
        &self,
        stream: &AudioStreamConfig,
        srtp: Option<&SrtpKeys>,
    ) -> Result<(), SessionError> {
        Decoding::new(stream, self.sink.format(), &self.options)?;
        srtp.map(inbound_srtp).transpose()?;
        Ok(())
    }

    /// Applies a renegotiated stream: decoder and jitter buffer are rebuilt when the stream
    /// changed, the SRTP context when the peer's key changed. Reception statistics continue (they
    /// restart only when the clock rate changes).
    pub fn reconfigure(
        &mut self,
        stream: &AudioStreamConfig,
        srtp: Option<&SrtpKeys>,
    ) -> Result<(), SessionError> {
        let decoding = (*stream != self.decoding.stream)
            .then(|| Decoding::new(stream, self.sink.format(), &self.options))
            .transpose()?;
        super::renegotiate_srtp(&mut self.srtp, srtp)?;
        let Some(decoding) = decoding else {
            return Ok(());
        };
        let old = std::mem::replace(&mut self.decoding, decoding);
        if old.stream.codec.clock_rate() != stream.codec.clock_rate() {
            self.lost_before = self.lost();
            self.stats = ReceiverStats::new(ReceiverStatsConfig::new(stream.codec.clock_rate()));
            // The new statistics number sequences afresh.
            self.highest = None;
        }
        self.decoded.clear();
        Ok(())
    }

    /// Ends playback: finishes the sink (a WAV recording gets its final header).
    pub fn finish(&mut self) {
        if let Err(e) = self.sink.finish() {
            warn!(error = %e, "audio sink failed to finish");
        }
    }

    /// The next event (first packet, DTMF).
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Reception statistics (for RTCP reports).
    pub fn receiver_stats(&self) -> &ReceiverStats {
        &self.stats
    }

    /// Reception statistics, writable (RTCP reports start a new interval).
    pub fn receiver_stats_mut(&mut self) -> &mut ReceiverStats {
        &mut self.stats
    }

    /// The jitter buffer (for its delay figures).
    pub fn jitter_buffer(&self) -> &JitterBuffer {
        &self.decoding.jitter
    }

    /// Packets lost, summed over the peer's sources (never negative).
    pub fn lost(&self) -> u64 {
        self.lost_before + u64::try_from(self.stats.lost()).unwrap_or(0)
    }

    /// Whether SRTP protects what is received.
    pub fn is_protected(&self) -> bool {
        self.srtp.is_some()
    }

    /// What the pipeline has done.
    pub fn counters(&self) -> ReceiveCounters {
        self.counters
    }
}

/// The inbound half of an SDES session (its outbound half stays unused).
fn inbound_srtp(keys: &SrtpKeys) -> Result<(SrtpKeys, SrtpSession), SessionError> {
    let session = SrtpSession::new(keys.profile, &keys.local, &keys.remote)?;
    Ok((keys.clone(), session))
}

/// A packet's duration in samples per channel, when the payload tells it.
fn payload_samples(codec: AudioCodecKind, payload: &[u8]) -> Option<u32> {
    match codec {
        AudioCodecKind::Opus => {
            let packet = OpusPacket::try_from(payload).ok()?;
            let samples = audiopus::packet::nb_samples(packet, SampleRate::Hz48000).ok()?;
            u32::try_from(samples).ok()
        }
        // One byte per sample, mono.
        AudioCodecKind::Pcmu | AudioCodecKind::Pcma => u32::try_from(payload.len()).ok(),
    }
}
