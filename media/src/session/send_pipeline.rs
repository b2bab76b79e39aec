//! The send half of a session: source → resampler → encoder → RTP (voice and RFC 4733 events)
//! → SRTP. Sans-IO: it is told the time and returns datagrams.
//!
//! Every `ptime` from the start ([`SendPipeline::poll_timeout`]), one packet's worth of audio is
//! taken from the source (in 20 ms frames, converted to the codec's format and buffered, so any
//! ptime that is a multiple of 10 ms works) and either encoded and sent, or — while sending is
//! off or a DTMF event is in progress — dropped with the RTP clock advanced past it
//! ([`RtpSender::skip`]), so the next voice packet starts a talkspurt with the marker bit and a
//! timestamp that tells the true pause.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, warn};

use super::{AudioStreamConfig, SessionError, SrtpKeys};
use crate::audio::{AudioSource, Resampler};
use crate::codec::AudioEncoder;
use crate::rtp::{DtmfSender, DtmfSenderConfig, RtpSender, SrtpError, SrtpSession};

/// A tick more than this late is not caught up: the pipeline skips ahead instead.
pub(crate) const MAX_LATENESS: Duration = Duration::from_millis(200);

/// What the send pipeline has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendCounters {
    /// RTP packets sent (voice and events).
    pub packets: u64,
    /// Bytes of those datagrams (SRTP tag included).
    pub bytes: u64,
    /// Voice packets among them.
    pub voice_packets: u64,
    /// RFC 4733 event packets among them.
    pub event_packets: u64,
    /// When the first packet was sent.
    pub first_sent_at: Option<Instant>,
    /// Packet times skipped because the pipeline ran more than 200 ms late.
    pub skipped_ticks: u64,
    /// Frames the encoder or SRTP refused (sent as a gap instead).
    pub errors: u64,
}

/// The codec-dependent part, rebuilt when the stream changes.
struct Encoding {
    stream: AudioStreamConfig,
    encoder: Box<dyn AudioEncoder>,
    to_codec: Resampler,
    /// Interleaved samples in one packet.
    packet_len: usize,
    /// Samples per channel in one packet: the RTP timestamp increment.
    packet_samples: u32,
}

impl Encoding {
    fn new(stream: &AudioStreamConfig, source: &dyn AudioSource) -> Result<Self, SessionError> {
        stream.validate()?;
        let encoder = stream.codec.make_encoder(&stream.encoder_config())?;
        let to_codec = Resampler::new(source.format(), encoder.pcm_format())?;
        let packet_samples = encoder.frame_samples();
        Ok(Encoding {
            stream: *stream,
            packet_len: packet_samples * usize::from(encoder.channels()),
            packet_samples: packet_samples as u32,
            encoder,
            to_codec,
        })
    }
}

/// The send pipeline of one audio stream.
pub struct SendPipeline {
    source: Box<dyn AudioSource>,
    source_ended: bool,
    /// One 20 ms frame in the source's format.
    capture: Vec<i16>,
    encoding: Encoding,
    /// Codec-format samples read but not yet sent.
    pcm: Vec<i16>,
    payload: Vec<u8>,
    rtp: RtpSender,
    dtmf: Option<DtmfSender>,
    srtp: Option<(SrtpKeys, SrtpSession)>,
    sending: bool,
    /// The packet loss the peer last reported, in percent; `None` before its first report
    /// (the encoder then runs with the configured hint).
    reported_loss: Option<u8>,
    next_tick: Instant,
    out: VecDeque<Bytes>,
    counters: SendCounters,
}

impl std::fmt::Debug for SendPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendPipeline")
            .field("stream", &self.encoding.stream)
            .field("ssrc", &self.rtp.ssrc())
            .field("sending", &self.sending)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SendPipeline {
    /// A pipeline sending `stream` from `source` with the numbering of `rtp` (whose payload type
    /// and clock rate must be the stream's), protected with `srtp` when given. The first packet
    /// is due at `start`.
    pub fn new(
        stream: &AudioStreamConfig,
        srtp: Option<&SrtpKeys>,
        source: Box<dyn AudioSource>,
        rtp: RtpSender,
        start: Instant,
    ) -> Result<Self, SessionError> {
        let encoding = Encoding::new(stream, source.as_ref())?;
        let srtp = srtp.map(outbound_srtp).transpose()?;
        let capture = vec![0; source.format().frame_len()];
        Ok(SendPipeline {
            dtmf: dtmf_sender(stream),
            pcm: Vec::with_capacity(encoding.packet_len * 2),
            payload: Vec::with_capacity(1_500),
            encoding,
            source,
            source_ended: false,
            capture,
            rtp,
            srtp,
            sending: true,
            reported_loss: None,
            next_tick: start,
            out: VecDeque::new(),
            counters: SendCounters::default(),
        })
    }

    /// When [`SendPipeline::poll_packet`] next has work: the next packet time, or an RFC 4733
    /// update before it.
    pub fn poll_timeout(&self) -> Instant {
        let dtmf = self
            .dtmf
            .as_ref()
            .filter(|_| self.sending)
            .and_then(DtmfSender::poll_timeout);
        dtmf.map_or(self.next_tick, |t| t.min(self.next_tick))
    }

    /// The next datagram due at `now`; call until it returns `None`.
    pub fn poll_packet(&mut self, now: Instant) -> Option<Bytes> {
        loop {
            if let Some(packet) = self.out.pop_front() {
                return Some(packet);
            }
            if !self.step(now) {
                return None;
            }
        }
    }

    /// Does the earliest piece of due work; false when nothing is due.
    fn step(&mut self, now: Instant) -> bool {
        if self.sending {
            if let Some(dtmf) = self.dtmf.as_mut() {
                if let Some(packet) = dtmf.poll_packet(now, &mut self.rtp) {
                    self.counters.event_packets += 1;
                    self.emit(now, &packet);
                    return true;
                }
            }
        }
        if now < self.next_tick {
            return false;
        }
        let ptime = self.encoding.stream.ptime();
        let mut tick = self.next_tick;
        let late = now.saturating_duration_since(tick);
        if late > MAX_LATENESS {
            let missed = (late.as_nanos() / ptime.as_nanos().max(1)) as u32;
            debug!(missed, "send pipeline ran late: skipping ahead");
            self.rtp
                .skip(missed.wrapping_mul(self.encoding.packet_samples));
            self.counters.skipped_ticks += u64::from(missed);
            tick += ptime * missed;
        }
        self.next_tick = tick + ptime;
        self.packet_tick(tick, now);
        true
    }

    /// One packet time: read the audio, then send it or let it pass.
    fn packet_tick(&mut self, tick: Instant, now: Instant) {
        let packet_len = self.encoding.packet_len;
        while self.pcm.len() < packet_len {
            self.capture_frame();
        }
        let samples = self.encoding.packet_samples;
        let paused = !self.sending || self.dtmf.as_ref().is_some_and(DtmfSender::is_sending);
        if paused {
            self.rtp.skip(samples);
        } else {
            self.payload.clear();
            match self
                .encoding
                .encoder
                .encode(&self.pcm[..packet_len], &mut self.payload)
            {
                Ok(_) => {
                    let packet = self.rtp.audio_packet(tick, &self.payload, samples);
                    self.counters.voice_packets += 1;
                    self.emit(now, &packet);
                }
                Err(e) => {
                    debug!(error = %e, "encoder refused a frame");
                    self.counters.errors += 1;
                    self.rtp.skip(samples);
                }
            }
        }
        self.pcm.drain(..packet_len);
    }

    /// Reads one 20 ms frame from the source (silence once it has ended) and appends it in the
    /// codec's format.
    fn capture_frame(&mut self) {
        if self.source_ended {
            self.capture.fill(0);
        } else {
            match self.source.read(&mut self.capture) {
                Ok(n) if n == self.capture.len() => {}
                Ok(n) => {
                    debug!("audio source ended: sending silence");
                    self.capture[n..].fill(0);
                    self.source_ended = true;
                }
                Err(e) => {
                    warn!(error = %e, "audio source failed: sending silence");
                    self.capture.fill(0);
                    self.source_ended = true;
                }
            }
        }
        let before = self.pcm.len();
        if let Err(e) = self
            .encoding
            .to_codec
            .process_into(&self.capture, &mut self.pcm)
        {
            // The capture buffer is exactly one frame of the resampler's input format, so this
            // does not happen; silence keeps the timeline if it ever does.
            debug!(error = %e, "resampler refused a frame");
            let frame_len = self.encoding.encoder.pcm_format().frame_len();
            self.pcm.resize(before + frame_len, 0);
        }
    }

    /// Protects (when keyed) and queues a packet.
    fn emit(&mut self, now: Instant, packet: &Bytes) {
        let datagram = match self.srtp.as_mut() {
            Some((_, srtp)) => match srtp.protect_rtp(packet) {
                Ok(protected) => protected,
                Err(e) => {
                    debug!(error = %e, "SRTP refused an outgoing packet");
                    self.counters.errors += 1;
                    return;
                }
            },
            None => packet.clone(),
        };
        self.counters.packets += 1;
        self.counters.bytes += datagram.len() as u64;
        self.counters.first_sent_at.get_or_insert(now);
        self.out.push_back(datagram);
    }

    /// Queues `digits` as RFC 4733 events of `duration` each.
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        digits: &str,
        duration: Duration,
    ) -> Result<(), SessionError> {
        let dtmf = self.dtmf.as_mut().ok_or(SessionError::NoTelephoneEvent)?;
        dtmf.queue_digits(now, digits, duration)?;
        Ok(())
    }

    /// Turns sending on or off; the first packet after a pause starts a talkspurt.
    pub fn set_sending(&mut self, sending: bool) {
        if sending && !self.sending {
            self.rtp.start_talkspurt();
        }
        self.sending = sending;
    }

    /// Sizes the encoder's in-band FEC by the loss the peer reported (RTCP fraction lost, in
    /// 1/256) for its last interval: the encoder's expected-loss hint becomes that loss in
    /// percent, rounded up. Opus spends bits and encoding time on FEC only while the hint is
    /// above zero, so a clean network costs no FEC and a lossy one gets it from the first
    /// report that shows loss; until the first report, the configured hint applies. The hint
    /// survives codec changes.
    pub fn on_reported_loss(&mut self, fraction_lost: u8) {
        let percent = (u32::from(fraction_lost) * 100).div_ceil(256) as u8;
        if self.reported_loss == Some(percent) {
            return;
        }
        self.reported_loss = Some(percent);
        if let Err(e) = self.encoding.encoder.set_packet_loss_percent(percent) {
            debug!(error = %e, "encoder refused a loss hint");
        }
    }

    /// The encoder's expected-loss hint in percent.
    pub fn expected_loss_percent(&self) -> u8 {
        self.reported_loss
            .unwrap_or(self.encoding.stream.encoder.packet_loss_percent)
    }

    /// Whether RTP is being sent.
    pub fn is_sending(&self) -> bool {
        self.sending
    }

    /// Checks that `stream` and `srtp` can be applied, without applying them.
    pub fn check(
        &self,
        stream: &AudioStreamConfig,
        srtp: Option<&SrtpKeys>,
    ) -> Result<(), SessionError> {
        Encoding::new(stream, self.source.as_ref())?;
        srtp.map(outbound_srtp).transpose()?;
        Ok(())
    }

    /// Applies a renegotiated stream. The SSRC and sequence numbering continue; the encoder is
    /// rebuilt when the codec, payload type, encoder settings or ptime changed (the next packet
    /// then starts a talkspurt), the SRTP context when our key changed. The Sender Report's packet
    /// and octet counts go on across a new payload type or clock rate (the SSRC is the same).
    pub fn reconfigure(
        &mut self,
        stream: &AudioStreamConfig,
        srtp: Option<&SrtpKeys>,
    ) -> Result<(), SessionError> {
        let encoding = (*stream != self.encoding.stream)
            .then(|| Encoding::new(stream, self.source.as_ref()))
            .transpose()?;
        super::renegotiate_srtp(&mut self.srtp, srtp)?;
        let Some(encoding) = encoding else {
            return Ok(());
        };
        let old = std::mem::replace(&mut self.encoding, encoding);
        if let Some(percent) = self.reported_loss {
            if let Err(e) = self.encoding.encoder.set_packet_loss_percent(percent) {
                debug!(error = %e, "encoder refused a loss hint");
            }
        }
        if old.stream.telephone_event != stream.telephone_event {
            self.dtmf = dtmf_sender(stream);
        }
        if old.stream.payload_type != stream.payload_type
            || old.stream.codec.clock_rate() != stream.codec.clock_rate()
        {
            self.rtp
                .change_format(stream.payload_type, stream.codec.clock_rate());
        }
        self.rtp.start_talkspurt();
        self.pcm.clear();
        Ok(())
    }

    /// Protects a compound RTCP packet we built (a copy when SRTP is off).
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        match self.srtp.as_mut() {
            Some((_, srtp)) => srtp.protect_rtcp(packet),
            None => Ok(Bytes::copy_from_slice(packet)),
        }
    }

    /// The RTP numbering state (for Sender Reports).
    pub fn rtp_sender(&self) -> &RtpSender {
        &self.rtp
    }

    /// The stream being sent.
    pub fn stream(&self) -> &AudioStreamConfig {
        &self.encoding.stream
    }

    /// Whether SRTP protects what is sent.
    pub fn is_protected(&self) -> bool {
        self.srtp.is_some()
    }

    /// What the pipeline has done.
    pub fn counters(&self) -> SendCounters {
        self.counters
    }
}

/// The outbound half of an SDES session (its inbound half stays unused).
fn outbound_srtp(keys: &SrtpKeys) -> Result<(SrtpKeys, SrtpSession), SessionError> {
    let session = SrtpSession::new(keys.profile, &keys.local, &keys.remote)?;
    Ok((keys.clone(), session))
}

fn dtmf_sender(stream: &AudioStreamConfig) -> Option<DtmfSender> {
    stream
        .telephone_event
        .map(|event| DtmfSender::new(DtmfSenderConfig::new(event.payload_type, event.clock_rate)))
}
