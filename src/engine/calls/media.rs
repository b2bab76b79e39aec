//! A call's media: the RTP socket bound before the offer (its port goes into the SDP), then the
//! classic session started from the negotiated SDP, updated in place by re-INVITEs (so SSRC and
//! sequence numbers run on through hold and resume), and stopped with the call.
//!
//! The session's events (DTMF, media timeout) are pushed from its media thread into the
//! engine's channel as they happen; the engine never polls for them.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callisto_media::audio::{
    echo_line, AudioEnds, AudioFormat, AudioSink, AudioSource, AudioSwitch, EndOfFile,
    MutableSource, MuteSwitch, NullSink, ProcessingOptions, SilenceSource, TeeSink, ToneSource,
    VoiceProcessor, WavRecorder, WavSource,
};
use callisto_media::codec::{AudioCodecKind, EncoderConfig};
use callisto_media::conference::ConferenceBridge;
use callisto_media::device::{DeviceCapture, DeviceEventHandler, DevicePlayback};
use callisto_media::rtp::{SrtpKeyMaterial, SrtpProfile};
use callisto_media::session::{
    AudioStreamConfig, ClassicSession, ClassicSessionConfig, MediaDirection, MediaEvent,
    MediaUpdate, SessionOptions, SrtpKeys, StreamSockets, TelephoneEventConfig,
};
use callisto_media::video::{CameraSwitch, FrameSlot, StreamSlots, VideoStats, VideoSwitch};
use callisto_media::webrtc::MULTISTREAM_ATTRIBUTE;
use callisto_signaling::sdp::{
    self, Attribute, AudioPolicy, LocalMedia, NegotiatedAudio, NegotiatedSrtp, SdpSession,
    SessionDescription, SrtpSuite, VideoPolicy,
};
use tokio::sync::mpsc;

use super::classic_video::ClassicVideo;
use super::update::classic_summary;
use super::{CallKey, CallSummary};

/// What a call plays to the other side.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioInput {
    /// A sine tone.
    Tone { hz: f64 },
    /// A 16-bit PCM WAV file, played in a loop.
    File(PathBuf),
    /// Nothing audible.
    Silence,
    /// A capture device (a microphone): its id or name, or the default one. Without a usable
    /// device the call sends silence and says why.
    Device(Option<String>),
    /// What the other side sends, sent back [`ECHO_DELAY`] later (the echo test's answering
    /// side). Only a call's input: a conference host cannot echo.
    Echo,
}

/// Why a conference host's input cannot be the echo (it has no call to echo).
pub(super) const ECHO_IS_NO_HOST_INPUT: &str =
    "the echo sends back what a call receives: it is no conference input";

/// How late the echo test sends back what it receives: long enough to tell one's own voice
/// from the echo, short enough to talk against.
pub const ECHO_DELAY: Duration = Duration::from_secs(1);

/// Where a call plays what the other side sends (besides any recording).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioPlayback {
    /// Nowhere: the headless default.
    #[default]
    Off,
    /// A playback device (speakers, a headset): its id or name, or the default one. Without a
    /// usable device the call goes on without playback and says why.
    Device(Option<String>),
}

/// The media path a call offers (an incoming call takes the path its offer asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaProfile {
    /// RTP/AVP or SDES-SRTP (`RTP/SAVP`), no ICE: desk phones, PBXs, SIP providers.
    #[default]
    Classic,
    /// ICE, DTLS-SRTP, BUNDLE, rtcp-mux (`UDP/TLS/RTP/SAVPF`): browsers, other Callistos.
    WebRtc,
}

/// What a call shows.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoInput {
    /// A moving test pattern stamped with its frame counter.
    Pattern,
    /// A Y4M file, played in a loop.
    File(PathBuf),
    /// A camera: number `index` of the system's list, the first when `None`. When it cannot
    /// be opened (none, busy, no readable format) the call sends the placeholder picture and
    /// reports [`CallUpdate::CameraUnavailable`](super::CallUpdate::CameraUnavailable).
    Camera { index: Option<u32> },
    /// The pictures the other side sends, sent back [`ECHO_DELAY`] later in this call's size.
    Echo,
}

/// A call's video (H.264 on either path): what it sends, where it records, its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    pub input: VideoInput,
    /// A Y4M file to record what the other side sends.
    pub record: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The encoder's highest bitrate, in bit/s.
    pub max_bitrate: u32,
    /// The identity drawn into the test pattern's stamp (tells senders apart in tests and
    /// conferences).
    pub identity: u16,
    /// Shows only the peer's first video stream: the call neither announces that it shows
    /// several (so a conference host sends it the mosaic) nor shows further streams.
    pub single_stream: bool,
}

/// A STUN or TURN server for ICE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServerOptions {
    /// `stun:host:port` or `turn:host:port[?transport=udp|tcp]`.
    pub url: String,
    pub username: String,
    pub password: String,
}

/// The media side of a call: what it plays, where it records, what it offers and accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaOptions {
    pub input: AudioInput,
    /// A WAV file to record what the other side sends.
    pub record: Option<PathBuf>,
    /// Where to play what the other side sends.
    pub playback: AudioPlayback,
    pub policy: AudioPolicy,
    /// The path outgoing calls offer.
    pub profile: MediaProfile,
    /// Video: offered and accepted on both paths.
    pub video: Option<VideoOptions>,
    /// ICE servers for the WebRTC path; none by default (no public server is contacted).
    pub ice_servers: Vec<IceServerOptions>,
    /// WebRTC media through a TURN server of `ice_servers` only (relay candidates only).
    pub relay_only: bool,
    /// The call's switches and pictures; every call gets its own (see `for_one_call`).
    pub controls: CallControls,
    /// A conference this app hosts: the call's audio goes to its bridge (and the bridge's mix
    /// comes back), instead of the input and playback above. Answering such a call does not
    /// hold the others.
    pub conference: Option<ConferenceSeat>,
    /// Echo cancellation, noise suppression and gain control of a microphone input (other
    /// inputs are sent as they are).
    pub processing: ProcessingOptions,
}

/// A call's place in a conference this app hosts: the bridge, and the name the roster shows
/// (the engine fills it in with the peer's for every call).
#[derive(Debug, Clone, PartialEq)]
pub struct ConferenceSeat {
    pub bridge: ConferenceBridge,
    pub label: String,
}

impl ConferenceSeat {
    /// A seat at `bridge`, named after the peer once the call exists.
    pub fn at(bridge: &ConferenceBridge) -> Self {
        ConferenceSeat {
            bridge: bridge.clone(),
            label: String::new(),
        }
    }
}

/// What the app holds of one call's media while it runs: switches it flips and pictures it
/// shows. Cloning shares them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallControls {
    /// Silences our microphone.
    pub mute: MuteSwitch,
    /// Silences what we send, and blacks out our picture, while we hold the call (the engine
    /// sets it).
    pub held: MuteSwitch,
    /// Off sends black frames instead of our picture.
    pub camera: CameraSwitch,
    /// Our picture as it is sent (the self-view).
    pub local_video: FrameSlot,
    /// The other side's picture as it is decoded.
    pub remote_video: FrameSlot,
    /// The other side's further pictures, when it sends several video streams (a
    /// conference server sending each participant as a stream of its own).
    pub more_video: StreamSlots,
    /// What the call's audio is read from and played into, replaceable while it runs (a
    /// merge into a conference puts the bridge there).
    pub audio: AudioSwitch,
    /// On while a conference we host forwards every other participant's video to this leg
    /// as a stream of its own: the leg's own video track then carries the host's picture
    /// alone instead of the mosaic (the engine sets it).
    pub own_streams: MuteSwitch,
    /// What the call's video is read from, replaceable while it runs, and a tap on what it
    /// decodes (a merge into a conference puts the conference's picture there and takes the
    /// call's pictures into it).
    pub video: VideoSwitch,
}

impl Default for MediaOptions {
    fn default() -> Self {
        MediaOptions {
            input: AudioInput::Silence,
            record: None,
            playback: AudioPlayback::Off,
            policy: AudioPolicy::default(),
            profile: MediaProfile::Classic,
            video: None,
            ice_servers: Vec::new(),
            relay_only: false,
            controls: CallControls::default(),
            conference: None,
            processing: ProcessingOptions::default(),
        }
    }
}

/// How long a conference leg may send nothing (no valid RTP or RTCP: gone without a BYE,
/// or sending garbage) before the host hangs it up; the others go on.
pub const CONFERENCE_MEDIA_TIMEOUT: Duration = Duration::from_secs(10);

impl MediaOptions {
    /// A media timeout of the call's own: a conference leg's is short, since the others hear
    /// its silence. Otherwise the classic session's 30 s, and none on the WebRTC path (whose
    /// connection reports its own failure).
    pub(super) fn media_timeout(&self) -> Option<Duration> {
        self.conference.as_ref().map(|_| CONFERENCE_MEDIA_TIMEOUT)
    }

    /// These options with switches and pictures of their own, for one call with `peer`
    /// (options shared by all incoming calls must not mute them all at once); a conference seat
    /// takes the peer's name.
    pub(super) fn for_one_call(mut self, peer: &str) -> Self {
        self.controls = CallControls::default();
        if let Some(seat) = &mut self.conference {
            seat.label = peer.to_string();
        }
        self
    }
}

/// What a call sends and where what it receives goes: a conference seat when the options
/// have a bridge, else the input and the recording or playback.
pub(super) fn audio_ends(
    options: &MediaOptions,
    format: AudioFormat,
    notices: &DeviceNotices,
) -> Result<AudioEnds, String> {
    let (source, sink) = match (&options.conference, &options.input) {
        (Some(seat), _) => seat_ends(options, seat, format, notices)?,
        (None, AudioInput::Echo) => echo_ends(options, format, notices)?,
        (None, input) => with_processing(
            options,
            format,
            (
                make_source(input, &options.controls.mute, format, notices)?,
                make_sink(options, format, notices)?,
            ),
        ),
    };
    let (source, sink) = options.controls.audio.install(source, sink);
    let source = MutableSource::new(source, options.controls.held.clone());
    Ok((Box::new(source), Box::new(sink)))
}

/// A conference leg's ends: the bridge's, recorded too when the options ask.
fn seat_ends(
    options: &MediaOptions,
    seat: &ConferenceSeat,
    format: AudioFormat,
    notices: &DeviceNotices,
) -> Result<AudioEnds, String> {
    if format.channels != 1 {
        return Err(format!("a conference leg must be mono, not {format}"));
    }
    let (source, sink) = seat
        .bridge
        .join(notices.key.0, &seat.label, format.sample_rate)
        .map_err(|e| format!("cannot join the conference: {e}"))?;
    let source = MutableSource::new(Box::new(source), options.controls.mute.clone());
    let sink: Box<dyn AudioSink> = match options.record.as_deref() {
        Some(path) => {
            let recorder = WavRecorder::create(path, format)
                .map_err(|e| format!("cannot record to {}: {e}", path.display()))?;
            Box::new(TeeSink::new(recorder, sink).map_err(|e| e.to_string())?)
        }
        None => Box::new(sink),
    };
    Ok((Box::new(source), sink))
}

/// `ends` with voice processing between them when the input is a microphone and the options
/// ask for any: the sink's frames are the echo canceller's reference, the source's are
/// processed.
fn with_processing(options: &MediaOptions, format: AudioFormat, ends: AudioEnds) -> AudioEnds {
    if !matches!(options.input, AudioInput::Device(_)) || !options.processing.any() {
        return ends;
    }
    let processor = VoiceProcessor::new(format, options.processing);
    let (source, sink) = ends;
    (
        Box::new(processor.capture(source)),
        Box::new(processor.render(sink)),
    )
}

/// The echo test's ends: what the call receives goes into a delay line (and to the
/// recording or playback the options ask for), and the line's far end is what it sends.
fn echo_ends(
    options: &MediaOptions,
    format: AudioFormat,
    notices: &DeviceNotices,
) -> Result<AudioEnds, String> {
    let (source, echo) = echo_line(format, ECHO_DELAY);
    let sink =
        TeeSink::new(echo, make_sink(options, format, notices)?).map_err(|e| e.to_string())?;
    let source = MutableSource::new(Box::new(source), options.controls.mute.clone());
    Ok((Box::new(source), Box::new(sink)))
}

/// The host's own audio in a conference: the options' input, and their recording and
/// playback, in `format`. Device trouble is logged.
pub fn host_audio(options: &MediaOptions, format: AudioFormat) -> Result<AudioEnds, String> {
    let (events, _) = mpsc::unbounded_channel();
    let notices = DeviceNotices::new(CallKey(0), &events);
    let source = make_source(&options.input, &options.controls.mute, format, &notices)?;
    let ends = (source, make_sink(options, format, &notices)?);
    Ok(with_processing(options, format, ends))
}

/// What a call's media reports to the engine.
#[derive(Debug)]
pub(crate) enum CallMediaEvent {
    /// The classic session's events (DTMF, media timeout…).
    Classic(MediaEvent),
    /// A WebRTC step finished, or the WebRTC session reported something.
    WebRtc(super::webrtc::WebRtcReady),
    /// A sound device could not be opened, or stopped, or was replaced: the sentence to show.
    Device(String),
    /// The camera could not be opened; the call sends the placeholder picture.
    CameraUnavailable { reason: String },
    /// The call's input became the host's picture in the conference we host (its video
    /// started after the merge).
    HostsPicture,
    /// The conference bridge reported on a participant (the key is the leg's call).
    Conference(callisto_media::conference::BridgeEvent),
}

/// Where media sessions send their events: the engine task, tagged with the call.
pub(crate) type MediaEvents = mpsc::UnboundedSender<(CallKey, CallMediaEvent)>;

/// Where a call's sound devices report trouble: the engine task, tagged with the call.
#[derive(Clone)]
pub(super) struct DeviceNotices {
    pub(super) key: CallKey,
    events: MediaEvents,
}

impl DeviceNotices {
    /// Notices about `key`'s devices, sent to `events`.
    pub(super) fn new(key: CallKey, events: &MediaEvents) -> Self {
        DeviceNotices {
            key,
            events: events.clone(),
        }
    }

    fn report(&self, message: String) {
        tracing::warn!(%message, "audio device");
        let _ = self
            .events
            .send((self.key, CallMediaEvent::Device(message)));
    }

    /// A handler for a device's later events (lost, replaced, silent), on its own thread.
    fn handler(&self) -> DeviceEventHandler {
        let notices = self.clone();
        Box::new(move |event| {
            let _ = notices
                .events
                .send((notices.key, CallMediaEvent::Device(event.to_string())));
        })
    }
}

/// One call's media, from the bound socket to the stopped session.
pub(super) struct CallMedia {
    pub(super) options: MediaOptions,
    /// Where we receive, as our SDP says.
    pub(super) local: LocalMedia,
    /// The RTP and RTCP sockets, until the session takes them.
    sockets: Option<StreamSockets>,
    session: Option<ClassicSession>,
    /// What the last offer/answer agreed.
    pub(super) negotiated: Option<NegotiatedAudio>,
    /// Whether the peer holds the call: an exchange took away the audio we were sending (a
    /// listen-only peer that never let us send holds nothing).
    peer_holds: bool,
    /// The video stream, when the options ask for video (classic path).
    pub(super) video: Option<ClassicVideo>,
}

impl CallMedia {
    /// Whether the peer holds the call (an exchange took away the audio we were sending).
    pub(super) fn peer_holds(&self) -> bool {
        self.peer_holds
    }

    /// Binds the call's RTP and RTCP sockets on `ip`: we offer `rtcp-mux`, and `a=rtcp` names
    /// the RTCP port (RTP + 1) for peers that do not multiplex.
    /// With video options, a second socket is bound for video.
    pub(super) fn bind(ip: IpAddr, options: MediaOptions) -> io::Result<CallMedia> {
        let sockets = StreamSockets::bind(ip)?;
        let video = options
            .video
            .clone()
            .map(|video| ClassicVideo::bind(ip, video, options.controls.clone()))
            .transpose()?;
        let local = LocalMedia {
            address: ip,
            rtp_port: sockets.rtp_port()?,
            rtcp_port: sockets.rtcp_port()?,
        };
        Ok(CallMedia {
            options,
            local,
            sockets: Some(sockets),
            session: None,
            negotiated: None,
            peer_holds: false,
            video,
        })
    }

    /// Media for a call on the WebRTC path: the WebRTC session carries the streams, so no
    /// classic socket is bound.
    pub(super) fn unbound(ip: IpAddr, options: MediaOptions) -> CallMedia {
        CallMedia {
            options,
            local: LocalMedia {
                address: ip,
                rtp_port: 0,
                rtcp_port: None,
            },
            sockets: None,
            session: None,
            negotiated: None,
            peer_holds: false,
            video: None,
        }
    }

    /// Our side of the call's SDP on `ip`. A call that shows every video stream it is sent,
    /// each as a tile (not `--single-stream`, not a leg of a conference we host), says so
    /// ([`MULTISTREAM_ATTRIBUTE`]): a conference host then forwards it each participant's
    /// video as a stream of its own.
    pub(super) fn sdp_session(&self, ip: IpAddr, rng: &mut impl rand::RngCore) -> SdpSession {
        let mut sdp = SdpSession::new(ip, rng);
        let takes_streams = self.video.as_ref().is_some_and(ClassicVideo::takes_streams);
        if takes_streams && self.options.conference.is_none() {
            sdp.announce(Attribute::flag(MULTISTREAM_ATTRIBUTE));
        }
        sdp
    }

    /// What offers and answers say about video: our video socket and policy, when we do video.
    pub(super) fn video_offer(&self) -> Option<(&LocalMedia, &VideoPolicy)> {
        self.video.as_ref().map(|v| (&v.local, &v.policy))
    }

    /// Whether the latest exchange agreed on video.
    pub(super) fn has_video(&self) -> bool {
        self.video.as_ref().is_some_and(|v| v.negotiated.is_some())
    }

    /// Starts, updates or pauses the video stream for the latest exchange's `video`. A video
    /// stream that cannot start is logged; the call goes on with audio. A camera that cannot
    /// be opened is reported to `events`.
    pub(super) fn apply_video(&mut self, sdp: &SdpSession, key: CallKey, events: &MediaEvents) {
        if let Some(stream) = &mut self.video {
            let seat = self.options.conference.as_ref();
            if let Err(reason) = stream.apply(sdp.video(), seat, key, events) {
                tracing::warn!(%reason, "video did not start");
            }
            // Either side's hold pauses the peer's further streams.
            let held = self.options.controls.held.is_muted() || self.peer_holds;
            stream.apply_further(sdp.further_video(), held, key);
        }
    }

    /// The ports an answer to `offer` may give the peer's new further video streams (those
    /// running keep theirs): none without video, for a call that shows one stream and for a
    /// leg of a conference we host.
    pub(super) fn further_ports(&mut self, offer: &SessionDescription) -> Vec<LocalMedia> {
        match &mut self.video {
            Some(video) if self.options.conference.is_none() => video.further_ports(offer),
            _ => Vec::new(),
        }
    }

    /// The further video streams received (a conference bridge's participants): each one's
    /// name and frames decoded so far.
    pub(super) fn further_streams(&self) -> Vec<(String, u64)> {
        self.video
            .as_ref()
            .map(ClassicVideo::further_streams)
            .unwrap_or_default()
    }

    /// The running session, once media started.
    pub(super) fn session(&self) -> Option<&ClassicSession> {
        self.session.as_ref()
    }

    /// The running video stream's figures so far (classic path).
    pub(super) fn video_stats(&self) -> Option<VideoStats> {
        self.video.as_ref().and_then(ClassicVideo::stats)
    }

    /// Whether both sides agreed on RFC 4733 events.
    pub(super) fn has_telephone_event(&self) -> bool {
        self.negotiated
            .as_ref()
            .is_some_and(|n| n.telephone_event.is_some())
    }

    /// Starts the session for `negotiated`, or updates the running one (hold, resume, new
    /// address or codec). Its events go to `events`, tagged with `key`.
    pub(super) fn apply(
        &mut self,
        negotiated: &NegotiatedAudio,
        key: CallKey,
        events: &MediaEvents,
    ) -> Result<(), String> {
        let stream = stream_config(negotiated)?;
        let srtp = srtp_keys(negotiated)?;
        let direction = MediaDirection {
            send: negotiated.direction.sends(),
            receive: negotiated.direction.receives(),
        };
        let remote_rtcp = if negotiated.rtcp_mux {
            None
        } else {
            negotiated.remote_rtcp
        };
        let was_sending = self.negotiated.as_ref().map(|was| was.direction.sends());
        self.peer_holds = peer_holds(self.peer_holds, was_sending, negotiated.direction.sends());
        self.negotiated = Some(negotiated.clone());
        if let Some(session) = &self.session {
            session.update(MediaUpdate {
                remote_rtp: negotiated.remote_rtp,
                remote_rtcp,
                direction,
                stream,
                srtp,
            });
            return Ok(());
        }
        let StreamSockets {
            rtp: rtp_socket,
            rtcp: rtcp_socket,
        } = self
            .sockets
            .take()
            .ok_or_else(|| "the RTP port is gone".to_string())?;
        let format = AudioFormat::new(stream.codec.clock_rate(), 1);
        let notices = DeviceNotices::new(key, events);
        let (source, sink) = audio_ends(&self.options, format, &notices)?;
        let config = ClassicSessionConfig {
            rtp_socket,
            rtcp_socket,
            remote_rtp: negotiated.remote_rtp,
            remote_rtcp,
            stream,
            srtp,
            direction,
            cname: format!("callisto-{:x}", key.0),
        };
        let events = events.clone();
        let on_event = move |event| {
            let _ = events.send((key, CallMediaEvent::Classic(event)));
        };
        let session = ClassicSession::start_with_handler(
            config,
            source,
            sink,
            SessionOptions {
                media_timeout: self
                    .options
                    .media_timeout()
                    .unwrap_or(SessionOptions::default().media_timeout),
                ..SessionOptions::default()
            },
            on_event,
        )
        .map_err(|e| e.to_string())?;
        self.session = Some(session);
        Ok(())
    }

    /// Stops the sessions (RTCP BYE, final WAV and Y4M) and gives back the memory their
    /// threads freed; the summary of the call (`started`: its INVITE; `established`: when it
    /// was up) with what they measured, if they ran.
    pub(super) fn stop(self, started: Instant, established: Option<Instant>) -> CallSummary {
        let (video, further) = self.video.map(ClassicVideo::stop).unwrap_or_default();
        let audio = self.session.map(ClassicSession::stop);
        // The media threads are joined.
        callisto_media::memory::release_freed_memory();
        let now = Instant::now();
        classic_summary(
            started,
            established,
            now,
            audio.as_ref(),
            video.as_ref(),
            further,
        )
    }
}

/// `out.wav` → `out-2.wav` for the second call of an `answer --count N` run.
pub(super) fn numbered(path: &Path, n: u64) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

/// Whether the peer holds the call after an exchange that lets us send audio or not (`sends`):
/// it does when the exchange took away the audio we were sending (`was_sending`, `None` before
/// the first), and goes on holding it until one lets us send again. A peer that never let us
/// send (a listen-only bridge) holds nothing.
fn peer_holds(held: bool, was_sending: Option<bool>, sends: bool) -> bool {
    !sends && (held || was_sending == Some(true))
}

fn stream_config(negotiated: &NegotiatedAudio) -> Result<AudioStreamConfig, String> {
    let codec = AudioCodecKind::from_encoding_name(&negotiated.codec.name)
        .ok_or_else(|| format!("no encoder for {}", negotiated.codec.name))?;
    Ok(AudioStreamConfig {
        codec,
        payload_type: negotiated.codec.payload_type,
        receive_payload_type: other_number(
            negotiated.codec.payload_type,
            negotiated.codec.receive_payload_type,
        ),
        encoder: EncoderConfig::mono(),
        ptime_ms: negotiated.ptime_ms,
        telephone_event: negotiated.telephone_event.map(|t| TelephoneEventConfig {
            payload_type: t.payload_type,
            receive_payload_type: other_number(t.payload_type, t.receive_payload_type),
            clock_rate: t.clock_rate,
        }),
    })
}

/// The number the peer sends with, when it is not the one we send with.
fn other_number(send: u8, receive: u8) -> Option<u8> {
    (receive != send).then_some(receive)
}

fn srtp_keys(negotiated: &NegotiatedAudio) -> Result<Option<SrtpKeys>, String> {
    srtp_keys_of(negotiated.srtp.as_ref())
}

/// The media session's SRTP keys for a negotiated stream's SDES keys.
pub(super) fn srtp_keys_of(srtp: Option<&NegotiatedSrtp>) -> Result<Option<SrtpKeys>, String> {
    let Some(srtp) = srtp else {
        return Ok(None);
    };
    let profile = match srtp.suite {
        SrtpSuite::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32,
    };
    let key = |k: &sdp::SrtpMasterKey| {
        SrtpKeyMaterial::from_bytes(k.as_bytes()).map_err(|e| format!("SRTP key: {e}"))
    };
    Ok(Some(SrtpKeys {
        profile,
        local: key(&srtp.local)?,
        remote: key(&srtp.remote)?,
    }))
}

/// What a call sends: a generator, a file, or a capture device (silence, reported, when the
/// device cannot be opened).
pub(super) fn make_source(
    input: &AudioInput,
    mute: &MuteSwitch,
    format: AudioFormat,
    notices: &DeviceNotices,
) -> Result<Box<dyn AudioSource>, String> {
    let source: Box<dyn AudioSource> = match input {
        AudioInput::Tone { hz } => Box::new(ToneSource::with_dbfs(format, *hz, -12.0)),
        AudioInput::Silence => Box::new(SilenceSource::new(format)),
        AudioInput::File(path) => Box::new(
            WavSource::open(path, EndOfFile::Loop)
                .map_err(|e| format!("cannot play {}: {e}", path.display()))?,
        ),
        AudioInput::Echo => return Err(ECHO_IS_NO_HOST_INPUT.into()),
        AudioInput::Device(name) => {
            match DeviceCapture::open(name.as_deref(), format, notices.handler()) {
                Ok(capture) => {
                    tracing::info!(device = capture.device_name(), format = %capture.device_format(), "capturing");
                    Box::new(capture)
                }
                Err(e) => {
                    notices.report(format!("{e}; the call sends silence"));
                    Box::new(SilenceSource::new(format))
                }
            }
        }
    };
    Ok(Box::new(MutableSource::new(source, mute.clone())))
}

/// Where a call's received audio goes: the recording (or nowhere) and, when asked for, a
/// playback device (left out, reported, when it cannot be opened).
pub(super) fn make_sink(
    options: &MediaOptions,
    format: AudioFormat,
    notices: &DeviceNotices,
) -> Result<Box<dyn AudioSink>, String> {
    let recorder: Box<dyn AudioSink> = match options.record.as_deref() {
        Some(path) => Box::new(
            WavRecorder::create(path, format)
                .map_err(|e| format!("cannot record to {}: {e}", path.display()))?,
        ),
        None => Box::new(NullSink::new(format)),
    };
    let AudioPlayback::Device(name) = &options.playback else {
        return Ok(recorder);
    };
    match DevicePlayback::open(name.as_deref(), format, notices.handler()) {
        Ok(playback) => {
            tracing::info!(device = playback.device_name(), format = %playback.device_format(), "playing");
            let tee = TeeSink::new(recorder, playback).map_err(|e| e.to_string())?;
            Ok(Box::new(tee))
        }
        Err(e) => {
            notices.report(format!("{e}; the call goes on without playback"));
            Ok(recorder)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_of_later_calls_get_numbered() {
        assert_eq!(
            numbered(std::path::Path::new("/tmp/out.wav"), 2),
            PathBuf::from("/tmp/out-2.wav")
        );
        assert_eq!(
            numbered(std::path::Path::new("rec"), 3),
            PathBuf::from("rec-3")
        );
    }

    #[test]
    fn a_peer_holds_the_call_when_it_takes_away_the_audio_we_were_sending() {
        // A listen-only peer, from the first exchange on: no hold.
        assert!(!peer_holds(false, None, false));
        assert!(!peer_holds(false, Some(false), false));
        // A call answered both ways, then put on hold, kept on hold, resumed.
        assert!(!peer_holds(false, None, true));
        assert!(peer_holds(false, Some(true), false));
        assert!(peer_holds(true, Some(false), false));
        assert!(!peer_holds(true, Some(false), true));
    }
}
