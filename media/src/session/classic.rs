//! The thread driver of a classic session: sockets, sleeps and channels around a
//! [`SessionCore`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tracing::{debug, info_span, warn};

use super::session_core::{LocalSocket, SessionCore, SessionCoreConfig};
use super::timestamped_socket;
use super::{
    AudioStats, AudioStreamConfig, ClassicSessionConfig, MediaEvent, MediaUpdate, SessionError,
    SessionOptions,
};
use crate::audio::{AudioSink, AudioSource};
use crate::rtp::{DtmfDigit, DtmfError, NtpTime, SrtpSession};

/// Largest datagram read; longer ones are truncated (and then fail validation).
const MAX_DATAGRAM: usize = 2_048;
/// How often a blocked reader checks whether the session stopped.
const READER_POLL: Duration = Duration::from_millis(500);

/// What the media thread is handed.
enum Input {
    Datagram(Datagram),
    Update(Box<MediaUpdate>),
    Dtmf { digits: String, duration: Duration },
    Stop,
}

struct Datagram {
    at: Instant,
    wallclock: SystemTime,
    socket: LocalSocket,
    from: SocketAddr,
    buffer: Vec<u8>,
    len: usize,
}

/// Where the media thread delivers events.
enum EventOut {
    Channel(Sender<MediaEvent>),
    Handler(Box<dyn FnMut(MediaEvent) + Send>),
}

impl EventOut {
    fn deliver(&mut self, event: MediaEvent) {
        match self {
            // The owner may have stopped listening; the session carries on regardless.
            EventOut::Channel(events) => {
                let _ = events.send(event);
            }
            EventOut::Handler(handler) => handler(event),
        }
    }
}

/// A running classic audio session: the thread driver around a [`SessionCore`].
///
/// # Threads
/// - One **media thread** owns the core, the source, the sink and (on Unix) the sockets, and is
///   the only thread that touches session state (nothing on the media path is locked). It
///   sleeps until the core's next deadline — the next packet to send and the next frame to play
///   (both every 20 ms, on the same ticks), an RTCP report — then reads every datagram queued
///   on its sockets, each with the arrival time the kernel stamped on it (`SO_TIMESTAMP`), runs
///   the due timers, sends what the core produced, forwards events and publishes statistics.
///   Commands (update, DTMF, stop) wake it at once. Reading on the ticks costs no latency: a
///   packet cannot play before the next frame tick anyway, and the jitter buffer, the
///   statistics and RTCP see the true arrival times. The sleep is a timed park, which wakes
///   within a fraction of a millisecond (a socket read timeout would not be a usable timer:
///   Linux rounds `SO_RCVTIMEO` up to the scheduler tick, 5–10 ms late measured).
/// - Where sockets give no arrival timestamps (not Unix), one **reader thread** per socket
///   (one with rtcp-mux, two with a separate RTCP socket) blocks in `recv_from` and queues each
///   datagram for the media thread, stamped with its arrival time, without waking it; datagram
///   buffers go back to their reader for reuse. Readers wake every half second to notice a
///   stop, and are woken at once on stop by an empty datagram the media thread sends to its own
///   sockets.
///
/// So a session wakes 50 times a second for both directions (100 with reader threads), and
/// never polls.
///
/// Dropping it stops it as [`ClassicSession::stop`] does.
pub struct ClassicSession {
    inputs: Sender<Input>,
    events: Receiver<MediaEvent>,
    stats: Arc<Mutex<AudioStats>>,
    stream: Mutex<AudioStreamConfig>,
    media: Option<JoinHandle<AudioStats>>,
    readers: Vec<JoinHandle<()>>,
    sockets: Vec<Arc<UdpSocket>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for ClassicSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicSession")
            .field("stats", &*lock(&self.stats))
            .finish_non_exhaustive()
    }
}

impl ClassicSession {
    /// Starts the session with [`SessionOptions::default`]: sending and playing begin at once.
    /// Events come out of [`ClassicSession::events`].
    pub fn start(
        config: ClassicSessionConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Result<ClassicSession, SessionError> {
        Self::start_with(config, source, sink, SessionOptions::default())
    }

    /// Starts the session with explicit `options` (media timeout, jitter-buffer bounds, RTCP
    /// interval, seed).
    pub fn start_with(
        config: ClassicSessionConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        options: SessionOptions,
    ) -> Result<ClassicSession, SessionError> {
        let (events_tx, events) = mpsc::channel();
        Self::launch(
            config,
            source,
            sink,
            options,
            EventOut::Channel(events_tx),
            events,
        )
    }

    /// Starts the session with `options`, handing each event to `on_event` on the media thread
    /// as it happens (for example to forward it into the engine's async channel) instead of
    /// queueing it for [`ClassicSession::events`], which then stays empty. `on_event` must
    /// return quickly: the media thread waits for it.
    pub fn start_with_handler(
        config: ClassicSessionConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        options: SessionOptions,
        on_event: impl FnMut(MediaEvent) + Send + 'static,
    ) -> Result<ClassicSession, SessionError> {
        let (_, events) = mpsc::channel();
        let out = EventOut::Handler(Box::new(on_event));
        Self::launch(config, source, sink, options, out, events)
    }

    fn launch(
        config: ClassicSessionConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        options: SessionOptions,
        events_out: EventOut,
        events: Receiver<MediaEvent>,
    ) -> Result<ClassicSession, SessionError> {
        let ClassicSessionConfig {
            rtp_socket,
            rtcp_socket,
            remote_rtp,
            remote_rtcp,
            stream,
            srtp,
            direction,
            cname,
        } = config;
        let mut sockets = vec![(LocalSocket::Rtp, rtp_socket)];
        sockets.extend(rtcp_socket.map(|socket| (LocalSocket::Rtcp, socket)));
        for (_, socket) in &sockets {
            socket.set_read_timeout(Some(READER_POLL))?;
        }
        let core_config = SessionCoreConfig {
            remote_rtp,
            remote_rtcp,
            rtcp_socket: sockets.len() > 1,
            stream,
            srtp,
            direction,
            cname,
            options,
        };
        let mut rng = match options.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_entropy(),
        };
        let core = SessionCore::new(core_config, source, sink, Instant::now(), &mut rng)?;
        let stats = Arc::new(Mutex::new(core.stats()));
        // A child of the caller's span (the engine's per-call span), entered by every thread.
        let span = info_span!("media", ssrc = %format_args!("{:08x}", lock(&stats).local_ssrc));
        let (inputs, input_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let sockets: Vec<(LocalSocket, Arc<UdpSocket>)> = sockets
            .into_iter()
            .map(|(kind, socket)| (kind, Arc::new(socket)))
            .collect();

        let mut session = ClassicSession {
            inputs,
            events,
            stats: Arc::clone(&stats),
            stream: Mutex::new(stream),
            media: None,
            readers: Vec::new(),
            sockets: sockets.iter().map(|(_, s)| Arc::clone(s)).collect(),
            stop: Arc::clone(&stop),
        };
        // With arrival timestamps from the kernel the media thread reads the sockets itself
        // on its ticks; without them, a reader thread per socket stamps each datagram.
        let drain = timestamped_socket::SUPPORTED
            && sockets
                .iter()
                .all(|(_, socket)| timestamped_socket::enable_timestamps(socket).is_ok());
        let mut sides = Vec::new();
        for (kind, socket) in sockets {
            if drain {
                sides.push(SocketSide {
                    kind,
                    socket,
                    free: None,
                });
                continue;
            }
            let (free, free_rx) = mpsc::channel();
            let reader = Reader {
                kind,
                socket: Arc::clone(&socket),
                inputs: session.inputs.clone(),
                free: free_rx,
                stop: Arc::clone(&stop),
            };
            let name = match kind {
                LocalSocket::Rtp => "callisto-rtp-in",
                LocalSocket::Rtcp => "callisto-rtcp-in",
            };
            // On failure, dropping `session` stops the readers already started.
            let span = span.clone();
            let handle = thread::Builder::new()
                .name(name.into())
                .spawn(move || span.in_scope(|| reader.run()))?;
            session.readers.push(handle);
            sides.push(SocketSide {
                kind,
                socket,
                free: Some(free),
            });
        }
        let media = MediaThread {
            core,
            sides,
            drain,
            buffer: if drain {
                vec![0; MAX_DATAGRAM]
            } else {
                Vec::new()
            },
            inputs: input_rx,
            events: events_out,
            stats,
            stop,
        };
        let handle = thread::Builder::new()
            .name("callisto-media".into())
            .spawn(move || span.in_scope(|| media.run()))?;
        session.media = Some(handle);
        Ok(session)
    }

    /// Applies a renegotiated stream (hold, resume, new address, codec change). A refused update
    /// is logged and leaves the session as it was; [`ClassicSession::try_update`] reports it.
    pub fn update(&self, update: MediaUpdate) {
        if let Err(e) = self.try_update(update) {
            warn!(error = %e, "media update refused");
        }
    }

    /// As [`ClassicSession::update`], checking the new stream and keys first (on the calling
    /// thread) and reporting a refusal.
    pub fn try_update(&self, update: MediaUpdate) -> Result<(), SessionError> {
        let stream = update.stream;
        check_stream(&stream)?;
        if let Some(keys) = &update.srtp {
            SrtpSession::new(keys.profile, &keys.local, &keys.remote)?;
        }
        self.command(Input::Update(Box::new(update)))?;
        *lock(&self.stream) = stream;
        Ok(())
    }

    /// Sends `digits` as RFC 4733 events of `duration` each, one after another. Without a
    /// negotiated telephone-event payload type (the engine sends SIP INFO then), or with a
    /// character that is not a key, nothing is sent and a warning is logged;
    /// [`ClassicSession::try_send_dtmf`] reports it.
    pub fn send_dtmf(&self, digits: &str, duration: Duration) {
        if let Err(e) = self.try_send_dtmf(digits, duration) {
            warn!(error = %e, "DTMF not sent");
        }
    }

    /// As [`ClassicSession::send_dtmf`], reporting a refusal.
    pub fn try_send_dtmf(&self, digits: &str, duration: Duration) -> Result<(), SessionError> {
        if lock(&self.stream).telephone_event.is_none() {
            return Err(SessionError::NoTelephoneEvent);
        }
        if let Some(c) = digits.chars().find(|&c| DtmfDigit::from_char(c).is_none()) {
            return Err(DtmfError::NotADigit(c.to_string()).into());
        }
        self.command(Input::Dtmf {
            digits: digits.to_owned(),
            duration,
        })
    }

    fn command(&self, input: Input) -> Result<(), SessionError> {
        let media = self.media.as_ref().ok_or(SessionError::Stopped)?;
        self.inputs.send(input).map_err(|_| SessionError::Stopped)?;
        media.thread().unpark();
        Ok(())
    }

    /// A snapshot of the statistics, as of the media thread's latest wake-up (at most 20 ms
    /// old).
    pub fn stats(&self) -> AudioStats {
        lock(&self.stats).clone()
    }

    /// The session's events, in order. Receive with `try_recv` (or `recv_timeout` from a thread
    /// that may block); the channel disconnects when the session has stopped. Empty when the
    /// session was started with [`ClassicSession::start_with_handler`].
    pub fn events(&self) -> &Receiver<MediaEvent> {
        &self.events
    }

    /// The next event, if one is waiting.
    pub fn try_event(&self) -> Option<MediaEvent> {
        self.events.try_recv().ok()
    }

    /// Stops the session: sends the final RTCP packet with a BYE, finishes the sink (a WAV
    /// recording gets its final header), joins the threads and returns the final statistics.
    pub fn stop(mut self) -> AudioStats {
        self.shutdown()
    }

    fn shutdown(&mut self) -> AudioStats {
        let last = match self.media.take() {
            Some(media) => {
                let _ = self.inputs.send(Input::Stop);
                media.thread().unpark();
                media.join().ok()
            }
            None => None,
        };
        // The media thread stops the readers; this covers a media thread that never ran or
        // panicked.
        self.stop.store(true, Ordering::Release);
        if !self.readers.is_empty() {
            for socket in &self.sockets {
                wake(socket);
            }
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        last.unwrap_or_else(|| lock(&self.stats).clone())
    }
}

impl Drop for ClassicSession {
    fn drop(&mut self) {
        if self.media.is_some() || !self.readers.is_empty() {
            self.shutdown();
        }
    }
}

/// Checks a stream on the caller's thread: payload types and that both codecs can be built.
fn check_stream(stream: &AudioStreamConfig) -> Result<(), SessionError> {
    stream.validate()?;
    stream.codec.make_encoder(&stream.encoder_config())?;
    stream.codec.make_decoder(1)?;
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder leaves a complete value behind (statistics are written whole).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The wallclock as RTCP wants it.
fn ntp(time: SystemTime) -> NtpTime {
    NtpTime::from_system_time(time)
}

/// Sends an empty datagram to the socket itself, so a reader blocked on it returns at once.
fn wake(socket: &UdpSocket) {
    let Ok(mut own) = socket.local_addr() else {
        return;
    };
    if own.ip().is_unspecified() {
        own.set_ip(match own.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let _ = socket.send_to(&[], own);
}

/// A socket's reader thread.
struct Reader {
    kind: LocalSocket,
    socket: Arc<UdpSocket>,
    inputs: Sender<Input>,
    free: Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(self) {
        let mut buffer = vec![0; MAX_DATAGRAM];
        while !self.stop.load(Ordering::Acquire) {
            match self.socket.recv_from(&mut buffer) {
                Ok((len, from)) => {
                    let at = Instant::now();
                    if self.stop.load(Ordering::Acquire) {
                        break;
                    }
                    let next = self
                        .free
                        .try_recv()
                        .unwrap_or_else(|_| vec![0; MAX_DATAGRAM]);
                    let datagram = Datagram {
                        at,
                        wallclock: SystemTime::now(),
                        socket: self.kind,
                        from,
                        buffer: std::mem::replace(&mut buffer, next),
                        len,
                    };
                    if self.inputs.send(Input::Datagram(datagram)).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // ICMP errors reported on the socket (Windows, connected sockets) and the
                    // like: not fatal for a media stream.
                    debug!(error = %e, "socket read failed");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// One socket as the media thread sees it.
struct SocketSide {
    kind: LocalSocket,
    socket: Arc<UdpSocket>,
    /// Returns datagram buffers to the socket's reader; `None` when the media thread reads the
    /// socket itself.
    free: Option<Sender<Vec<u8>>>,
}

/// The media thread's state.
struct MediaThread {
    core: SessionCore,
    sides: Vec<SocketSide>,
    /// The media thread reads the sockets itself (timestamped, on its ticks).
    drain: bool,
    /// The datagram buffer when it does.
    buffer: Vec<u8>,
    inputs: Receiver<Input>,
    events: EventOut,
    stats: Arc<Mutex<AudioStats>>,
    stop: Arc<AtomicBool>,
}

impl MediaThread {
    fn run(mut self) -> AudioStats {
        'run: loop {
            loop {
                let input = match self.inputs.try_recv() {
                    Ok(input) => input,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'run,
                };
                match input {
                    Input::Datagram(datagram) => self.datagram(datagram),
                    Input::Update(update) => {
                        if let Err(e) = self.core.update(Instant::now(), *update) {
                            warn!(error = %e, "media update refused");
                        }
                    }
                    Input::Dtmf { digits, duration } => {
                        if let Err(e) = self.core.send_dtmf(Instant::now(), &digits, duration) {
                            warn!(error = %e, "DTMF not sent");
                        }
                    }
                    Input::Stop => break 'run,
                }
            }
            if self.drain {
                self.drain_sockets();
            }
            self.core
                .handle_timeout(Instant::now(), ntp(SystemTime::now()));
            self.flush();
            if let Some(deadline) = self.core.poll_timeout() {
                // Commands unpark the thread early; a spurious wake-up only costs a loop.
                thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
            }
        }
        self.core.close(Instant::now(), ntp(SystemTime::now()));
        self.flush();
        self.stop.store(true, Ordering::Release);
        if !self.drain {
            for side in &self.sides {
                wake(&side.socket);
            }
        }
        self.core.stats()
    }

    fn datagram(&mut self, datagram: Datagram) {
        let Datagram {
            at,
            wallclock,
            socket,
            from,
            buffer,
            len,
        } = datagram;
        self.core
            .handle_datagram(at, ntp(wallclock), socket, from, &buffer[..len]);
        if let Some(free) = self
            .sides
            .iter()
            .find(|side| side.kind == socket)
            .and_then(|side| side.free.as_ref())
        {
            let _ = free.send(buffer);
        }
    }

    /// Hands the core every datagram queued on the sockets, with the kernel's arrival times.
    fn drain_sockets(&mut self) {
        let (now, wallclock) = (Instant::now(), SystemTime::now());
        let MediaThread {
            core,
            sides,
            buffer,
            ..
        } = self;
        for side in sides.iter() {
            loop {
                match timestamped_socket::recv(&side.socket, buffer) {
                    Ok(Some(arrival)) => {
                        let (at, arrived) = arrival.times(now, wallclock);
                        let datagram = &buffer[..arrival.len.min(buffer.len())];
                        core.handle_datagram(at, ntp(arrived), side.kind, arrival.from, datagram);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // ICMP errors reported on the socket and the like: not fatal for a
                        // media stream; the next tick reads on.
                        debug!(error = %e, "socket read failed");
                        break;
                    }
                }
            }
        }
    }

    /// Sends what the core produced, delivers its events and publishes its statistics.
    fn flush(&mut self) {
        while let Some(transmit) = self.core.poll_transmit() {
            let side = self
                .sides
                .iter()
                .find(|side| side.kind == transmit.socket)
                .or_else(|| self.sides.first());
            if let Some(side) = side {
                if let Err(e) = side.socket.send_to(&transmit.payload, transmit.destination) {
                    debug!(error = %e, to = %transmit.destination, "send failed");
                }
            }
        }
        while let Some(event) = self.core.poll_event() {
            self.events.deliver(event);
        }
        self.core.write_stats(&mut lock(&self.stats));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<ClassicSession>();
    }
}
