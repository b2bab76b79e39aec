//! [`ClassicVideoSession`]: the video stream of a classic call (plain RTP or SDES-SRTP), run on
//! threads of its own (DESIGN.md rule 4).
//!
//! The video thread (`video::stream_thread`, shared with the WebRTC path) encodes, packetizes,
//! depacketizes, decodes and asks for keyframes; a [`VideoTransportCore`] numbers, encrypts,
//! latches and reports; this driver binds them to the sockets:
//!
//! ```text
//!  source ─► video thread ─► send_rtp ─► VideoTransportCore ─► send_to (latched peer)
//!  recv_from ─► reader thread ─► VideoTransportCore::handle_datagram ─┬─ Rtp ─► video thread ─► sink
//!                                     (RTCP timer on the RTP reader)  ├─ PLI/FIR ─► IDR next
//!                                                                     └─ NACK ─► poll_resend ─► send_to
//! ```
//!
//! With NACK negotiated the video thread asks for the peer's lost packets (its
//! `NackGenerator`, through [`VideoTransportCore::nack`]) and the core keeps what we send to
//! resend it.
//!
//! The core sits behind one mutex that the video thread (sending) and the readers (receiving)
//! take briefly; nothing else is shared.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, info_span};

use super::session_core::{LocalSocket, Transmit};
use super::video_core::{
    VideoDelivery, VideoTransportConfig, VideoTransportCore, VideoTransportCounters,
};
use super::{MediaDirection, SessionError, SrtpKeys};
use crate::rtp::{NtpTime, RtpPacket};
use crate::video::h264::{H264Level, PacketizationMode};
use crate::video::stream_thread::{
    VideoChannels, VideoInput, VideoOutput, VideoThread, VideoThreadConfig, VideoThreadError,
};
use crate::video::{VideoSink, VideoSource, VideoStats};
use crate::webrtc::VideoTap;

/// Largest datagram read; longer ones are truncated (and then fail validation).
const MAX_DATAGRAM: usize = 2_048;
/// How often a blocked reader checks the RTCP timer and whether the session stopped.
pub(super) const READER_POLL: Duration = Duration::from_millis(50);

/// Everything a classic video stream needs, from the engine's SDP negotiation.
#[derive(Debug)]
pub struct ClassicVideoConfig {
    /// Our video RTP socket, bound by the engine (its port is in our SDP).
    pub rtp_socket: UdpSocket,
    /// Our video RTCP socket; `None`: RTCP uses the RTP socket.
    pub rtcp_socket: Option<UdpSocket>,
    /// Where to send RTP until latching finds the peer elsewhere.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP; `None`: rtcp-mux, to the RTP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// The H.264 payload type.
    pub payload_type: u8,
    /// The negotiated RFC 6184 packetization mode.
    pub packetization: PacketizationMode,
    /// Highest bitrate the encoder aims for, in bits per second.
    pub max_bitrate: u32,
    /// SDES-SRTP keys; `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// The negotiated direction.
    pub direction: MediaDirection,
    /// Our RTCP CNAME.
    pub cname: String,
    /// The H.264 level the peer decodes, from its `profile-level-id`: what we send stays
    /// within it.
    pub level: Option<H264Level>,
    /// Whether both sides negotiated generic NACK (`a=rtcp-fb:<pt> nack`).
    pub nack: bool,
}

/// A renegotiated video stream (hold, resume, new address, re-keying). SSRC and numbering
/// continue; the codec state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoUpdate {
    /// The peer's RTP address now announced.
    pub remote_rtp: SocketAddr,
    /// The peer's RTCP address; `None`: rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// The new direction.
    pub direction: MediaDirection,
    /// The new keys; `None`: plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// Whether generic NACK is negotiated now: the stream asks for lost packets and resends
    /// what the peer asks for only while it is.
    pub nack: bool,
    /// The H.264 level the peer decodes now (its `profile-level-id`), when it names one: what
    /// we send is fitted to it from the next picture on.
    pub level: Option<H264Level>,
}

/// The sockets of the stream, as the core names them.
#[derive(Debug, Clone)]
pub(super) struct Sockets {
    pub(super) rtp: Arc<UdpSocket>,
    pub(super) rtcp: Option<Arc<UdpSocket>>,
}

impl Sockets {
    pub(super) fn send(&self, transmit: Option<Transmit>) {
        let Some(transmit) = transmit else { return };
        let socket = match transmit.socket {
            LocalSocket::Rtp => &self.rtp,
            LocalSocket::Rtcp => self.rtcp.as_ref().unwrap_or(&self.rtp),
        };
        if let Err(e) = socket.send_to(&transmit.payload, transmit.destination) {
            debug!(error = %e, to = %transmit.destination, "video send failed");
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn ntp_now() -> NtpTime {
    NtpTime::from_system_time(SystemTime::now())
}

/// The video thread's output on the classic path: through the core to the socket.
struct SocketOutput {
    core: Arc<Mutex<VideoTransportCore>>,
    sockets: Sockets,
}

impl VideoOutput for SocketOutput {
    fn send_rtp(&mut self, packet: RtpPacket) {
        let transmit = lock(&self.core).send_rtp(Instant::now(), &packet);
        self.sockets.send(transmit);
    }

    fn send_pli(&mut self) {
        let transmit = lock(&self.core).pli();
        self.sockets.send(transmit);
    }

    fn send_nack(&mut self, sequences: Vec<u16>) {
        let transmit = lock(&self.core).nack(&sequences);
        self.sockets.send(transmit);
    }
}

/// A running classic video stream. Dropping it stops it as [`ClassicVideoSession::stop`] does.
pub struct ClassicVideoSession {
    core: Arc<Mutex<VideoTransportCore>>,
    sockets: Sockets,
    thread: VideoThread,
    inbox: Sender<VideoInput>,
    readers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    final_stats: Option<VideoStats>,
    /// Where every received packet is copied as well ([`ClassicVideoSession::tap_video`]).
    taps: Arc<Mutex<Vec<VideoTap>>>,
    /// Whether the direction sends: the video thread encodes only then.
    sending: Arc<AtomicBool>,
}

impl std::fmt::Debug for ClassicVideoSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicVideoSession")
            .field("counters", &lock(&self.core).counters())
            .finish_non_exhaustive()
    }
}

impl ClassicVideoSession {
    /// Starts the stream: the encoder is built for the source's format, and sending and
    /// receiving begin at once (the first frame sent is an IDR).
    pub fn start(
        config: ClassicVideoConfig,
        source: Box<dyn VideoSource>,
        sink: Box<dyn VideoSink>,
    ) -> Result<ClassicVideoSession, SessionError> {
        Self::start_with(config, Some(source), sink)
    }

    /// Starts a stream we only receive (a peer's further stream: no encoder, nothing sent but
    /// RTCP reports and keyframe requests), whatever the direction says.
    pub fn receive_only(
        config: ClassicVideoConfig,
        sink: Box<dyn VideoSink>,
    ) -> Result<ClassicVideoSession, SessionError> {
        Self::start_with(config, None, sink)
    }

    fn start_with(
        config: ClassicVideoConfig,
        source: Option<Box<dyn VideoSource>>,
        sink: Box<dyn VideoSink>,
    ) -> Result<ClassicVideoSession, SessionError> {
        let (packetization, max_bitrate, level, nack) = (
            config.packetization,
            config.max_bitrate,
            config.level,
            config.nack,
        );
        let sending = Arc::new(AtomicBool::new(config.direction.send));
        let Transport {
            sockets,
            core,
            ssrc,
            payload_type,
        } = Transport::open(config)?;
        let (inbox, inputs) = mpsc::channel();
        let thread = VideoThread::start(
            VideoThreadConfig {
                max_bitrate,
                ssrc,
                payload_type,
                packetization,
                connected: Arc::new(AtomicBool::new(true)),
                sending: Arc::clone(&sending),
                controller: None,
                nack,
                level,
            },
            source,
            sink,
            VideoChannels {
                inbox: (inbox.clone(), inputs),
                output: Box::new(SocketOutput {
                    core: Arc::clone(&core),
                    sockets: sockets.clone(),
                }),
            },
        )
        .map_err(|e| match e {
            VideoThreadError::Codec(e) => SessionError::Video(e),
            VideoThreadError::Io(e) => SessionError::Io(e),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let taps: Arc<Mutex<Vec<VideoTap>>> = Arc::default();
        let span = info_span!("classic-video", ssrc = %format_args!("{ssrc:08x}"));
        let deliver: Deliver = {
            let (inbox, video, taps) = (inbox.clone(), thread.thread(), Arc::clone(&taps));
            let inbox = Mutex::new(inbox);
            Arc::new(move |at, delivery| {
                let input = match delivery {
                    VideoDelivery::Rtp(packet) => {
                        for tap in lock(&taps).iter() {
                            tap(&packet);
                        }
                        VideoInput::Rtp { at, packet }
                    }
                    VideoDelivery::KeyframeRequested => VideoInput::KeyframeRequested,
                    VideoDelivery::Rtt(rtt) => VideoInput::Rtt(rtt),
                };
                if lock(&inbox).send(input).is_err() {
                    return false;
                }
                if let Some(video) = &video {
                    video.unpark();
                }
                true
            })
        };
        let readers = Reader::spawn(&sockets, &core, &deliver, &stop, &span)?;
        Ok(ClassicVideoSession {
            core,
            sockets,
            thread,
            inbox,
            readers,
            stop,
            final_stats: None,
            taps,
            sending,
        })
    }

    /// Copies every received video packet (decrypted, as the peer numbered it) to `tap` as
    /// well, for the session's life: a conference host forwards it to participants that take
    /// each participant as a stream of its own.
    pub fn tap_video(&self, tap: VideoTap) {
        lock(&self.taps).push(tap);
    }

    /// Applies a renegotiated stream.
    pub fn update(&self, update: VideoUpdate) -> Result<(), SessionError> {
        let send = update.direction.send;
        let mut core = lock(&self.core);
        core.update(
            update.remote_rtp,
            update.remote_rtcp,
            update.direction,
            update.srtp,
        )?;
        core.set_nack(update.nack);
        drop(core);
        self.sending.store(send, Ordering::Release);
        // The receiving side asks for lost packets only while NACK is negotiated; the sending
        // side fits the level of a peer it sends to (a stream paused both ways says none).
        let mut inputs = vec![VideoInput::Nack(update.nack)];
        if send {
            inputs.push(VideoInput::Level(update.level));
        }
        let told = inputs
            .into_iter()
            .all(|input| self.inbox.send(input).is_ok());
        if told {
            if let Some(thread) = self.thread.thread() {
                thread.unpark();
            }
        }
        Ok(())
    }

    /// Asks the peer for a keyframe (a PLI, rate-limited with the decoder's own requests).
    pub fn request_keyframe(&self) {
        (self.keyframe_requester())();
    }

    /// What asks the peer for a keyframe from elsewhere (another call's session relaying a
    /// receiver's request); it does nothing once the session stopped.
    pub fn keyframe_requester(&self) -> Arc<dyn Fn() + Send + Sync> {
        let (inbox, thread) = (Mutex::new(self.inbox.clone()), self.thread.thread());
        Arc::new(move || {
            let _ = lock(&inbox).send(VideoInput::RequestKeyframe);
            if let Some(thread) = &thread {
                thread.unpark();
            }
        })
    }

    /// The latest statistics.
    pub fn stats(&self) -> VideoStats {
        self.final_stats
            .clone()
            .unwrap_or_else(|| self.with_transport(self.thread.stats()))
    }

    /// `stats` with what only the transport counts: the peer's NACKs about our stream.
    fn with_transport(&self, mut stats: VideoStats) -> VideoStats {
        stats.nacks_received = lock(&self.core).counters().nacks_received;
        stats
    }

    /// The transport's counters (discarded datagrams, latching, RTCP).
    pub fn transport_counters(&self) -> VideoTransportCounters {
        lock(&self.core).counters()
    }

    /// Stops the stream: readers end, the final RTCP report with a BYE goes out, the sink is
    /// finished. Returns the final statistics; later calls return them again.
    pub fn stop(&mut self) -> VideoStats {
        if let Some(stats) = &self.final_stats {
            return stats.clone();
        }
        self.stop.store(true, Ordering::Release);
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let stats = self.thread.stop();
        let stats = self.with_transport(stats);
        say_bye(&self.core, &self.sockets);
        self.final_stats = Some(stats.clone());
        stats
    }
}

impl Drop for ClassicVideoSession {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A classic video stream's transport: its sockets (read with [`READER_POLL`] timeouts) and
/// its core, sending as a random SSRC in the negotiated payload type.
pub(super) struct Transport {
    pub(super) sockets: Sockets,
    pub(super) core: Arc<Mutex<VideoTransportCore>>,
    pub(super) ssrc: u32,
    pub(super) payload_type: u8,
}

impl Transport {
    /// The transport `config` describes (its packetization and bitrate are the caller's).
    pub(super) fn open(config: ClassicVideoConfig) -> Result<Transport, SessionError> {
        let ClassicVideoConfig {
            rtp_socket,
            rtcp_socket,
            remote_rtp,
            remote_rtcp,
            payload_type,
            srtp,
            direction,
            cname,
            nack,
            ..
        } = config;
        rtp_socket.set_read_timeout(Some(READER_POLL))?;
        if let Some(socket) = &rtcp_socket {
            socket.set_read_timeout(Some(READER_POLL))?;
        }
        let sockets = Sockets {
            rtp: Arc::new(rtp_socket),
            rtcp: rtcp_socket.map(Arc::new),
        };
        let mut rng = SmallRng::from_entropy();
        let ssrc: u32 = rng.gen();
        let core = VideoTransportCore::new(
            VideoTransportConfig {
                remote_rtp,
                remote_rtcp,
                rtcp_socket: sockets.rtcp.is_some(),
                payload_type,
                srtp,
                direction,
                cname,
                nack,
            },
            ssrc,
            Instant::now(),
            &mut rng,
        )?;
        Ok(Transport {
            sockets,
            core: Arc::new(Mutex::new(core)),
            ssrc,
            payload_type,
        })
    }
}

/// Sends the final RTCP report with a BYE.
pub(super) fn say_bye(core: &Mutex<VideoTransportCore>, sockets: &Sockets) {
    let bye = lock(core).close(Instant::now(), ntp_now());
    sockets.send(bye);
}

/// What a reader does with the core's deliveries (false: the session is gone, the reader ends).
pub(super) type Deliver = Arc<dyn Fn(Instant, VideoDelivery) -> bool + Send + Sync>;

/// One socket's reader: datagrams into the core, deliveries handed on; the RTP reader also
/// sends the RTCP reports when due.
pub(super) struct Reader {
    pub(super) kind: LocalSocket,
    pub(super) socket: Arc<UdpSocket>,
    pub(super) sockets: Sockets,
    pub(super) core: Arc<Mutex<VideoTransportCore>>,
    pub(super) deliver: Deliver,
    pub(super) stop: Arc<AtomicBool>,
}

impl Reader {
    /// The session's readers, one per socket, each on a thread of its own in `span`.
    pub(super) fn spawn(
        sockets: &Sockets,
        core: &Arc<Mutex<VideoTransportCore>>,
        deliver: &Deliver,
        stop: &Arc<AtomicBool>,
        span: &tracing::Span,
    ) -> std::io::Result<Vec<JoinHandle<()>>> {
        let mut readers = Vec::new();
        let mut kinds = vec![(LocalSocket::Rtp, Arc::clone(&sockets.rtp))];
        kinds.extend(sockets.rtcp.clone().map(|s| (LocalSocket::Rtcp, s)));
        for (kind, socket) in kinds {
            let reader = Reader {
                kind,
                socket,
                sockets: sockets.clone(),
                core: Arc::clone(core),
                deliver: Arc::clone(deliver),
                stop: Arc::clone(stop),
            };
            let span = span.clone();
            readers.push(
                thread::Builder::new()
                    .name("callisto-video-rx".into())
                    .spawn(move || span.in_scope(|| reader.run()))?,
            );
        }
        Ok(readers)
    }

    fn run(self) {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        while !self.stop.load(Ordering::Acquire) {
            let received = self.socket.recv_from(&mut buffer);
            let now = Instant::now();
            if let Ok((len, from)) = received {
                let deliveries = lock(&self.core).handle_datagram(
                    now,
                    ntp_now(),
                    self.kind,
                    from,
                    &buffer[..len],
                );
                for delivery in deliveries {
                    if !(self.deliver)(now, delivery) {
                        return;
                    }
                }
                loop {
                    let resend = lock(&self.core).poll_resend();
                    if resend.is_none() {
                        break;
                    }
                    self.sockets.send(resend);
                }
            }
            if self.kind == LocalSocket::Rtp {
                let mut core = lock(&self.core);
                if core.poll_timeout().is_some_and(|due| due <= now) {
                    let report = core.poll_transmit(now, ntp_now());
                    drop(core);
                    self.sockets.send(report);
                }
            }
        }
    }
}
