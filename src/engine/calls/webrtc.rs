//! The WebRTC path of a call (`callisto_media::webrtc`): ICE, DTLS-SRTP, BUNDLE, Opus and
//! H.264, for browsers and other Callistos.
//!
//! A WebRTC session's offer/answer and its end are asynchronous (ICE gathering completes
//! before the SDP goes into SIP, which does not trickle; closing waits for the media threads
//! and the recordings). Each such step runs in the background and reports back to the
//! engine as a [`WebRtcReady`] through the calls' media channel, so the engine task never
//! waits on the network. Once a call has its session, its steps run one after another in
//! the order the engine asked for them ([`Steps`]): a withdrawn offer is rolled back before
//! the peer's new offer is applied, and our answer applied before the next offer is made.
//!
//! ```text
//! outgoing:  start ─► Offer(session, sdp) ─► INVITE ─► 200 ─► Applied ─► Connected
//! incoming:  INVITE ─► Answer(session, sdp) ─► 180 … answer ─► 200 ─► Connected
//! end:       BYE/CANCEL/failure ─► Closed(stats) ─► Ended/Failed with the summary
//! ```

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use callisto_media::audio::AudioFormat;
use callisto_media::codec::AudioCodecKind;
use callisto_media::conference::{ConferenceBridge, MosaicBridge, MosaicSource, TileSink};
use callisto_media::video::camera::{CameraSource, PlaceholderSource, PLACEHOLDER_FPS};
use callisto_media::video::{
    echo_video, CameraSwitch, FrameSlot, NullVideoSink, PreviewSource, SlotSink, StreamSlots,
    TeeVideoSink, TestPattern, VideoFormat, VideoSink, VideoSource, Y4mEnd, Y4mRecorder, Y4mSource,
};
use callisto_media::webrtc::{
    IceServer, RemoteStreamSinks, RemoteStreams, RemoteVideoStream, VideoConfig, WebRtcAudioConfig,
    WebRtcConfig, WebRtcError, WebRtcEvent, WebRtcMedia, WebRtcSession, WebRtcStats,
    WebRtcVideoMedia,
};
use callisto_signaling::call::Refusal;
use callisto_signaling::sdp::AudioPolicy;

use super::media::{
    audio_ends, CallControls, CallMediaEvent, DeviceNotices, MediaEvents, ECHO_DELAY,
    ECHO_IS_NO_HOST_INPUT,
};
use super::{CallKey, ConferenceSeat, MediaOptions, VideoInput, VideoOptions};

/// What a WebRTC step reports when it is done.
pub(crate) enum WebRtcReady {
    /// Our offer for an outgoing call, with the session that made it.
    Offer(Result<(Box<WebRtcSession>, String), String>),
    /// Our answer to an incoming call's offer, with the session that made it.
    Answer(Result<(Box<WebRtcSession>, String), String>),
    /// The peer's answer was applied (media starts).
    Applied(Result<(), String>),
    /// Our offer that holds the call (`hold`) or takes it off.
    HoldOffer {
        hold: bool,
        result: Result<String, String>,
    },
    /// The peer's answer to our new offer was applied.
    ReApplied(Result<(), String>),
    /// Our new offer that changes the streams a conference leg is forwarded (the change is
    /// made even when the offer could not be).
    StreamsOffer {
        change: super::forwarding::StreamsChange,
        result: Result<String, String>,
    },
    /// Our answer to the peer's new offer (a re-INVITE or UPDATE), and whether that offer
    /// puts us on hold.
    ReAnswered {
        result: Result<String, ReofferRefused>,
        held: bool,
    },
    /// The session reported something (connected, failed, first packet…).
    Event(WebRtcEvent),
    /// The session is closed; its final figures.
    Closed(Box<WebRtcStats>),
}

impl std::fmt::Debug for WebRtcReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebRtcReady::Offer(r) => write!(f, "Offer(ok: {})", r.is_ok()),
            WebRtcReady::Answer(r) => write!(f, "Answer(ok: {})", r.is_ok()),
            WebRtcReady::Applied(r) => write!(f, "Applied({r:?})"),
            WebRtcReady::HoldOffer { hold, result } => {
                write!(f, "HoldOffer(hold: {hold}, ok: {})", result.is_ok())
            }
            WebRtcReady::ReApplied(r) => write!(f, "ReApplied({r:?})"),
            WebRtcReady::StreamsOffer { result, .. } => {
                write!(f, "StreamsOffer(ok: {})", result.is_ok())
            }
            WebRtcReady::ReAnswered { result, held } => {
                write!(f, "ReAnswered(ok: {}, held: {held})", result.is_ok())
            }
            WebRtcReady::Event(e) => write!(f, "Event({e:?})"),
            WebRtcReady::Closed(_) => write!(f, "Closed"),
        }
    }
}

/// The session's configuration for a call whose SIP goes out from `ip`: ICE gathers on that
/// address only (so a Callisto listening on loopback stays on loopback), with the options'
/// STUN/TURN servers and no others.
pub(super) fn session_config(ip: IpAddr, options: &MediaOptions) -> WebRtcConfig {
    let codecs = audio_codecs(&options.policy);
    let mut config = if ip.is_loopback() {
        WebRtcConfig::loopback()
    } else {
        WebRtcConfig::default()
    };
    config.udp_addrs = vec![SocketAddr::new(ip, 0)];
    config.relay_only = options.relay_only;
    config.ice_servers = options
        .ice_servers
        .iter()
        .map(|server| IceServer {
            urls: vec![server.url.clone()],
            username: server.username.clone(),
            credential: server.password.clone(),
        })
        .collect();
    config.audio = WebRtcAudioConfig {
        codecs,
        media_timeout: options.media_timeout(),
        ..WebRtcAudioConfig::default()
    };
    config.video = options.video.as_ref().map(|video| VideoConfig {
        width: video.width,
        height: video.height,
        fps: video.fps,
        max_bitrate: video.max_bitrate,
    });
    config
}

/// The audio codecs of the account's policy that the WebRTC path carries, Opus first when
/// the policy has no preference for G.711.
fn audio_codecs(policy: &AudioPolicy) -> Vec<AudioCodecKind> {
    let codecs: Vec<AudioCodecKind> = policy
        .codecs
        .iter()
        .filter_map(|c| AudioCodecKind::from_encoding_name(&c.name))
        .collect();
    if codecs.is_empty() {
        vec![AudioCodecKind::Opus]
    } else {
        codecs
    }
}

/// What the session plays and records. Audio runs at 48 kHz (the Opus clock; G.711 is
/// resampled by the pipelines). What the video has to tell (a camera that cannot be opened,
/// the host's picture taken) goes to `report`.
fn session_media(
    options: &MediaOptions,
    notices: &DeviceNotices,
    report: &VideoReport,
) -> Result<WebRtcMedia, String> {
    let format = AudioFormat::new(48_000, 1);
    let (audio_source, audio_sink) = audio_ends(options, format, notices)?;
    let video = options
        .video
        .as_ref()
        .map(|video| {
            let leg = options.conference.as_ref().map(|seat| (seat, notices.key));
            video_media(video, &options.controls, leg, false, report)
        })
        .transpose()?;
    Ok(WebRtcMedia {
        audio_source,
        audio_sink,
        video,
    })
}

/// Where a call's video reports to the engine: that its camera cannot be used
/// ([`CallMediaEvent::CameraUnavailable`]), or that its input became the host's picture in
/// the conference we host ([`CallMediaEvent::HostsPicture`]).
pub(super) type VideoReport = Arc<dyn Fn(CallMediaEvent) + Send + Sync>;

/// A call's video source and sink. A camera that cannot be opened is replaced by the
/// placeholder picture (at a low rate); one that stops during the call gives way to the
/// placeholder by itself. Either way the reason goes to `report`. The app's
/// self-view and remote picture are kept in `controls`' slots, and its camera switch can
/// blank what is sent. A conference leg (`leg`: its seat and call) sends the conference's
/// mosaic of the others instead of the input — encoded on the mosaic's thread
/// (`single_nal`: NAL units that fit a packet at first, for packetization mode 0; the video
/// thread asks for the cut its call negotiated) — and its pictures become the leg's tile.
pub(super) fn video_media(
    video: &VideoOptions,
    controls: &CallControls,
    leg: Option<(&ConferenceSeat, CallKey)>,
    single_nal: bool,
    report: &VideoReport,
) -> Result<WebRtcVideoMedia, String> {
    let format =
        VideoFormat::new(video.width, video.height, video.fps).map_err(|e| e.to_string())?;
    // The input with the call's self-view and camera switch.
    let preview = |source: Box<dyn VideoSource>| {
        PreviewSource::new(
            source,
            controls.local_video.clone(),
            controls.camera.clone(),
        )
    };
    // Besides the recording and the remote picture, what is decoded may feed the mosaic (a
    // conference leg) or the echo.
    let (source, tap): (Box<dyn VideoSource>, Option<Box<dyn VideoSink>>) = match leg {
        Some((seat, key)) => {
            let (mosaic, source, tile) = mosaic_leg(
                &seat.bridge,
                key,
                format,
                controls,
                single_nal,
                video.max_bitrate,
            )?;
            // A merged conference whose calls had no video running yet: this call's input
            // is the host's picture, and the app is told so (its self-view and camera
            // switch are the conference's).
            if !mosaic.has_local() && video.input != VideoInput::Echo {
                match video_source(video, format, report) {
                    Ok(picture) => {
                        mosaic.set_local(Box::new(preview(picture)));
                        report(CallMediaEvent::HostsPicture);
                    }
                    Err(reason) => tracing::warn!(%reason, "no picture of the host"),
                }
            }
            (Box::new(source), Some(Box::new(tile)))
        }
        None if video.input == VideoInput::Echo => {
            let (source, echo) = echo_video(format, ECHO_DELAY);
            (Box::new(source), Some(Box::new(echo)))
        }
        None => (video_source(video, format, report)?, None),
    };
    let sink: Box<dyn VideoSink> = match &video.record {
        Some(path) => Box::new(
            Y4mRecorder::create(path, video.fps)
                .map_err(|e| format!("cannot record video to {}: {e}", path.display()))?,
        ),
        None => Box::new(NullVideoSink::new()),
    };
    let sink: Box<dyn VideoSink> = match tap {
        Some(tap) => Box::new(TeeVideoSink::new(tap, sink)),
        None => sink,
    };
    let sink: Box<dyn VideoSink> = Box::new(SlotSink::new(controls.remote_video.clone(), sink));
    // The input (camera, pattern, file) with the self-view and the camera switch sits behind
    // the call's switch: a merge into a conference sends the mosaic instead, and the input
    // goes into the mosaic as the host's picture, its self-view and camera switch with it.
    // Held, a call sends black either way.
    let (source, sink): (Box<dyn VideoSource>, Box<dyn VideoSink>) = match leg {
        None if video.input != VideoInput::Echo => {
            let (source, sink) = controls.video.install(Box::new(preview(source)), sink);
            // An unwatched slot copies nothing; the camera switch is the input's.
            let held = PreviewSource::new(source, FrameSlot::new(), CameraSwitch::new())
                .with_hold(controls.held.clone());
            (Box::new(held), Box::new(sink))
        }
        // A conference leg's own picture is the mosaic: the call's self-view and camera
        // switch belong to the input, which is the host's picture when it is one, not to what
        // this leg is sent. Held, it sends black.
        Some(_) => {
            let mosaic = PreviewSource::new(source, FrameSlot::new(), CameraSwitch::new())
                .with_hold(controls.held.clone());
            (Box::new(mosaic), sink)
        }
        None => (
            Box::new(preview(source).with_hold(controls.held.clone())),
            sink,
        ),
    };
    // A conference leg shows its participant's picture in the mosaic and nothing more.
    let more_streams =
        (leg.is_none() && !video.single_stream).then(|| stream_tiles(video, controls));
    Ok(WebRtcVideoMedia {
        source,
        sink,
        more_streams,
    })
}

/// A conference leg's share of `bridge`'s picture at `format`, and its tile: the mosaic of
/// the others — or the host's picture alone while `controls.own_streams` is on, encoded once
/// for every leg of its size — encoded on the mosaic's thread (`single_nal`: NAL units that fit
/// a packet at first, for packetization mode 0), starting at `bitrate`. The mosaic is started
/// by its first leg.
pub(super) fn mosaic_leg(
    bridge: &ConferenceBridge,
    key: CallKey,
    format: VideoFormat,
    controls: &CallControls,
    single_nal: bool,
    bitrate: u32,
) -> Result<(MosaicBridge, MosaicSource, TileSink), String> {
    let mosaic = bridge
        .mosaic(format)
        .map_err(|e| format!("cannot start the conference's picture: {e}"))?;
    let (source, tile) = mosaic.join(key.0, format);
    let own_streams = controls.own_streams.clone();
    let source = source
        .host_only(move || own_streams.is_muted())
        .encoded(single_nal, bitrate);
    Ok((mosaic, source, tile))
}

/// Where a call's further video streams go: tiles of the call, recorded beside its recording.
pub(super) fn stream_tiles(video: &VideoOptions, controls: &CallControls) -> RemoteStreamSinks {
    let record = video.record.clone().map(|path| (path, video.fps));
    Box::new(StreamTiles {
        streams: controls.more_video.clone(),
        own: controls.remote_video.clone(),
        record,
        recorded: Vec::new(),
    })
}

/// Where a call's further video streams go: a named slot each among `streams`, which the
/// window shows as tiles (until the stream ends). The names are the peer's labels; once there
/// are several streams the call's own is named too. With `record` (the call's recording and
/// its rate), each further stream is also recorded beside it, as `NAME.STREAM.y4m`
/// (`NAME.STREAM-N.y4m` for the `N`th stream when an earlier one had that name). When the
/// peer stops sending the call's own stream, `own` (its pictures' slot) is cleared (the late
/// frames refused until the stream is sent again) and the stream is marked ended among
/// `streams`.
struct StreamTiles {
    streams: StreamSlots,
    own: FrameSlot,
    record: Option<(PathBuf, u32)>,
    /// The recordings made so far (a name seen again gets its stream's number).
    recorded: Vec<PathBuf>,
}

impl RemoteStreams for StreamTiles {
    fn sink(&mut self, known: &[RemoteVideoStream]) -> Box<dyn VideoSink> {
        let Some((newest, earlier)) = known.split_last() else {
            return Box::new(NullVideoSink::new());
        };
        // The call's own stream is number 0 (known by name before its packets come).
        if let Some(own) = earlier.iter().find(|stream| stream.number == 0) {
            self.streams.name_first(&stream_name(own));
        }
        let name = stream_name(newest);
        let tile: Box<dyn VideoSink> = Box::new(self.streams.add(&name));
        let Some((path, fps)) = &self.record else {
            return tile;
        };
        let mut recording = stream_recording(path, &name, newest.number);
        if self.recorded.contains(&recording) {
            let again = format!("{name}-{}", newest.number + 1);
            recording = stream_recording(path, &again, newest.number);
        }
        self.recorded.push(recording.clone());
        let path = recording;
        match Y4mRecorder::create(&path, *fps) {
            Ok(recorder) => Box::new(TeeVideoSink::new(tile, Box::new(recorder))),
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot record a stream");
                tile
            }
        }
    }

    fn first_changed(&mut self, first: Option<&RemoteVideoStream>) {
        match first {
            None => {
                self.streams.end_first();
                self.own.clear();
            }
            Some(stream) => {
                self.own.open();
                self.streams.first_back(&stream_name(stream));
            }
        }
    }
}

/// Where a further stream named `name` is recorded beside the call's recording `path`
/// (`alice.y4m` → `alice.bob.y4m`); a name that is no plain file name goes by its number.
fn stream_recording(path: &Path, name: &str, number: usize) -> PathBuf {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '+' | '.'))
        && !name.starts_with('.');
    let part = if plain {
        name.to_owned()
    } else {
        format!("stream{}", number + 1)
    };
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}.{part}.y4m"))
}

/// What a remote stream's tile is called: its media stream id (what a conference names the
/// participant by), else its track id, else its number.
pub(super) fn stream_name(stream: &RemoteVideoStream) -> String {
    [&stream.stream_id, &stream.track_id]
        .into_iter()
        .map(|id| id.trim())
        .find(|id| !id.is_empty() && *id != "-")
        .map_or_else(|| format!("Video {}", stream.number + 1), str::to_owned)
}

/// The host's own picture in a conference: the options' video input, or `None` without
/// video. A camera that cannot be opened gives the placeholder (and a warning in the log).
pub fn host_video(options: &MediaOptions) -> Result<Option<Box<dyn VideoSource>>, String> {
    let Some(video) = &options.video else {
        return Ok(None);
    };
    let format =
        VideoFormat::new(video.width, video.height, video.fps).map_err(|e| e.to_string())?;
    let report: VideoReport = Arc::new(|event| tracing::warn!(?event, "no camera"));
    video_source(video, format, &report).map(Some)
}

/// What `video.input` names, as a source of `format`.
fn video_source(
    video: &VideoOptions,
    format: VideoFormat,
    report: &VideoReport,
) -> Result<Box<dyn VideoSource>, String> {
    Ok(match &video.input {
        VideoInput::Pattern => {
            Box::new(TestPattern::new(format, video.identity).map_err(|e| e.to_string())?)
        }
        VideoInput::File(path) => Box::new(
            Y4mSource::open(path, Y4mEnd::Loop)
                .map_err(|e| format!("cannot play {}: {e}", path.display()))?,
        ),
        VideoInput::Echo => return Err(ECHO_IS_NO_HOST_INPUT.into()),
        VideoInput::Camera { index } => match CameraSource::open(*index, format) {
            Ok(camera) => {
                tracing::info!(camera = camera.name(), mode = %camera.mode(), "camera opened");
                let report = Arc::clone(report);
                camera.on_failure(move |error| {
                    report(CallMediaEvent::CameraUnavailable {
                        reason: error.to_string(),
                    })
                });
                Box::new(camera)
            }
            Err(error) => {
                report(CallMediaEvent::CameraUnavailable {
                    reason: error.to_string(),
                });
                let still = VideoFormat {
                    fps: format.fps.min(PLACEHOLDER_FPS),
                    ..format
                };
                Box::new(PlaceholderSource::new(still).map_err(|e| e.to_string())?)
            }
        },
    })
}

/// Builds the session and reports to `events` as `key`: its own events as they happen, then
/// what `step` made of it.
async fn build(
    key: CallKey,
    ip: IpAddr,
    options: &MediaOptions,
    events: &MediaEvents,
) -> Result<WebRtcSession, String> {
    let config = session_config(ip, options);
    // Opening a camera or a sound device blocks (enumeration, format negotiation, stream
    // start): it runs on a blocking thread, not on a runtime worker.
    let (media_options, media_events) = (options.clone(), events.clone());
    let media = tokio::task::spawn_blocking(move || {
        let notices = DeviceNotices::new(key, &media_events);
        let report: VideoReport = Arc::new(move |event| {
            let _ = media_events.send((key, event));
        });
        session_media(&media_options, &notices, &report)
    })
    .await
    .map_err(|e| format!("preparing the media failed: {e}"))??;
    let events = events.clone();
    WebRtcSession::with_handler(config, media, move |event| {
        let _ = events.send((key, CallMediaEvent::WebRtc(WebRtcReady::Event(event))));
    })
    .await
    .map_err(|e| e.to_string())
}

fn report(events: &MediaEvents, key: CallKey, ready: WebRtcReady) {
    let _ = events.send((key, CallMediaEvent::WebRtc(ready)));
}

/// Makes the offer of an outgoing call in the background; reports [`WebRtcReady::Offer`].
pub(super) fn spawn_offer(key: CallKey, ip: IpAddr, options: MediaOptions, events: MediaEvents) {
    tokio::spawn(async move {
        let result = match build(key, ip, &options, &events).await {
            Ok(session) => match session.create_offer().await {
                Ok(sdp) => Ok((Box::new(session), sdp)),
                Err(error) => {
                    session.close().await;
                    Err(error.to_string())
                }
            },
            Err(error) => Err(error),
        };
        report(&events, key, WebRtcReady::Offer(result));
    });
}

/// Answers an incoming call's offer in the background; reports [`WebRtcReady::Answer`].
pub(super) fn spawn_answer(
    key: CallKey,
    ip: IpAddr,
    options: MediaOptions,
    offer: String,
    events: MediaEvents,
) {
    tokio::spawn(async move {
        let result = match build(key, ip, &options, &events).await {
            Ok(session) => match session.accept_offer(&offer).await {
                Ok(sdp) => Ok((Box::new(session), sdp)),
                Err(error) => {
                    session.close().await;
                    Err(error.to_string())
                }
            },
            Err(error) => Err(error),
        };
        report(&events, key, WebRtcReady::Answer(result));
    });
}

type Step = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The queue of a call's session steps: each runs once the one asked for before it is done
/// (spawned each on its own, a step could overtake an earlier one: the peer's new offer
/// would meet our withdrawn offer not yet rolled back, and get 491). The queue's task starts
/// with the first step and ends when the call (and so the queue) is gone and the steps
/// asked for are done.
#[derive(Default)]
pub(super) struct Steps(OnceLock<tokio::sync::mpsc::UnboundedSender<Step>>);

impl Steps {
    /// Runs `step` after the steps asked for before it.
    pub(super) fn run(&self, step: impl Future<Output = ()> + Send + 'static) {
        let queue = self.0.get_or_init(|| {
            let (queue, mut steps) = tokio::sync::mpsc::unbounded_channel::<Step>();
            tokio::spawn(async move {
                while let Some(step) = steps.recv().await {
                    step.await;
                }
            });
            queue
        });
        let _ = queue.send(Box::pin(step));
    }
}

/// Runs one step of a session in `steps` and reports what `ready` makes of how it went (a
/// failure in words).
fn run_step<T: Send + 'static>(
    steps: &Steps,
    key: CallKey,
    events: MediaEvents,
    step: impl Future<Output = Result<T, WebRtcError>> + Send + 'static,
    ready: impl FnOnce(Result<T, String>) -> WebRtcReady + Send + 'static,
) {
    run_step_with(steps, key, events, step, |e| e.to_string(), ready);
}

/// [`run_step`] with the failure made into an `E` by `failure`.
fn run_step_with<T: Send + 'static, E>(
    steps: &Steps,
    key: CallKey,
    events: MediaEvents,
    step: impl Future<Output = Result<T, WebRtcError>> + Send + 'static,
    failure: impl FnOnce(WebRtcError) -> E + Send + 'static,
    ready: impl FnOnce(Result<T, E>) -> WebRtcReady + Send + 'static,
) {
    steps.run(async move {
        let result = step.await.map_err(failure);
        report(&events, key, ready(result));
    });
}

/// Applies the peer's answer; reports [`WebRtcReady::Applied`].
pub(super) fn apply(
    steps: &Steps,
    key: CallKey,
    session: Arc<WebRtcSession>,
    answer: String,
    events: MediaEvents,
) {
    let step = async move { session.apply_answer(&answer).await };
    run_step(steps, key, events, step, WebRtcReady::Applied);
}

/// Answers the peer's new offer in the running `session` (`held`: whether it puts us on
/// hold); reports [`WebRtcReady::ReAnswered`].
pub(super) fn reanswer(
    steps: &Steps,
    key: CallKey,
    session: Arc<WebRtcSession>,
    offer: String,
    held: bool,
    events: MediaEvents,
) {
    let step = async move { session.accept_reoffer(&offer).await };
    let refused = |error| ReofferRefused::from(&error);
    run_step_with(steps, key, events, step, refused, move |result| {
        WebRtcReady::ReAnswered { result, held }
    });
}

/// Why the peer's new offer is refused, and the status that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReofferRefused {
    /// `491 Request Pending` when the offer crossed ours (RFC 3261 14.2: the peer tries
    /// again later), `488 Not Acceptable Here` when it is unusable (the call goes on as it
    /// was).
    pub(crate) code: u16,
    pub(crate) reason: String,
}

impl ReofferRefused {
    /// The response that refuses the offer: a `491` as it is, a `488` with a `Warning` (399)
    /// giving the reason.
    pub(crate) fn refusal(&self) -> Refusal {
        let refusal = Refusal::new(self.code);
        if self.code == 491 {
            return refusal;
        }
        refusal.with_warning(399, self.reason.clone())
    }
}

impl From<&WebRtcError> for ReofferRefused {
    fn from(error: &WebRtcError) -> Self {
        let code = if matches!(error, WebRtcError::Glare) {
            491
        } else {
            488
        };
        ReofferRefused {
            code,
            reason: error.to_string(),
        }
    }
}

/// Makes our offer that holds the call in `session` (`hold`) or takes it off; reports
/// [`WebRtcReady::HoldOffer`].
pub(super) fn hold_offer(
    steps: &Steps,
    key: CallKey,
    session: Arc<WebRtcSession>,
    hold: bool,
    events: MediaEvents,
) {
    let step = async move { session.hold_offer(hold).await };
    run_step(steps, key, events, step, move |result| {
        WebRtcReady::HoldOffer { hold, result }
    });
}

/// Offers `session` as we want it, after the peer withdrew an offer it had taken in (see
/// `WebRtcSession::restate_offer`); reports [`WebRtcReady::HoldOffer`] with the call's hold
/// as it is (`hold`).
pub(super) fn restate_offer(
    steps: &Steps,
    key: CallKey,
    session: Arc<WebRtcSession>,
    hold: bool,
    events: MediaEvents,
) {
    let step = async move { session.restate_offer().await };
    run_step(steps, key, events, step, move |result| {
        WebRtcReady::HoldOffer { hold, result }
    });
}

/// Applies the peer's answer to our new offer; reports [`WebRtcReady::ReApplied`].
pub(super) fn apply_reanswer(
    steps: &Steps,
    key: CallKey,
    session: Arc<WebRtcSession>,
    answer: String,
    events: MediaEvents,
) {
    let step = async move { session.apply_reanswer(&answer).await };
    run_step(steps, key, events, step, WebRtcReady::ReApplied);
}

/// Withdraws our new offer (the peer refused it, or it gave way to the peer's): the session
/// goes on as before it.
pub(super) fn cancel_reoffer(steps: &Steps, session: Arc<WebRtcSession>) {
    steps.run(async move {
        if let Err(error) = session.cancel_reoffer().await {
            tracing::warn!(%error, "the refused offer could not be withdrawn");
        }
    });
}

/// Closes the session in the background (media threads stop, recordings are finished);
/// reports [`WebRtcReady::Closed`] with the final figures.
pub(super) fn spawn_close(key: CallKey, session: Arc<WebRtcSession>, events: MediaEvents) {
    tokio::spawn(async move {
        // Steps still running hold the session for a moment; wait for them to let go.
        let mut session = session;
        let stats = loop {
            match Arc::try_unwrap(session) {
                Ok(owned) => break owned.close().await,
                Err(shared) => {
                    session = shared;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        };
        // The media threads are joined and the session is gone: what they freed goes back.
        tokio::task::spawn_blocking(callisto_media::memory::release_freed_memory);
        report(&events, key, WebRtcReady::Closed(Box::new(stats)));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crossing_offer_is_refused_491_and_an_unusable_one_488() {
        let glare = ReofferRefused::from(&WebRtcError::Glare);
        assert_eq!(glare.code, 491);
        assert!(glare.reason.contains("crossed"), "{}", glare.reason);
        assert_eq!(glare.refusal(), Refusal::new(491), "a 491 needs no warning");
        for unusable in [
            WebRtcError::BadSdp("no m-line".into()),
            WebRtcError::NoCommonCodec("audio"),
            WebRtcError::Negotiation("a new offer before the first negotiation completed"),
        ] {
            let refused = ReofferRefused::from(&unusable);
            assert_eq!(refused.code, 488, "{unusable}");
            assert_eq!(refused.reason, unusable.to_string());
            let refusal = refused.refusal();
            assert_eq!(refusal.code, 488);
            assert_eq!(refusal.warning, Some((399, unusable.to_string())));
        }
    }

    #[test]
    fn a_server_call_s_own_stream_that_ends_loses_its_picture_and_tile() {
        let streams = StreamSlots::default();
        let own = FrameSlot::new();
        let mut tiles = StreamTiles {
            streams: streams.clone(),
            own: own.clone(),
            record: None,
            recorded: Vec::new(),
        };
        let labels = |number: usize, stream_id: &str| RemoteVideoStream {
            number,
            stream_id: stream_id.into(),
            track_id: format!("{stream_id}-video"),
        };
        let _carol = tiles.sink(&[labels(0, "bob"), labels(1, "carol")]);
        assert_eq!(streams.first_name().as_deref(), Some("bob"));
        let (seen, _) = own.take_change(0).unwrap_or_default();
        own.put(&callisto_media::video::VideoFrame::filled(4, 4, 9, 128, 128).unwrap());
        let (seen, _) = own.take_change(seen).expect("bob's picture");
        // Bob leaves: his picture and his tile go.
        tiles.first_changed(None);
        let (seen, picture) = own.take_change(seen).expect("a change");
        assert!(picture.is_none(), "no picture of bob is left");
        assert!(!streams.first_shown());
        let late = callisto_media::video::VideoFrame::filled(4, 4, 9, 128, 128).unwrap();
        own.put(&late);
        assert!(
            own.take_change(seen).is_none(),
            "bob's late picture is refused"
        );
        // Dave comes on the same m-line: a tile again, under his name, and his pictures.
        tiles.first_changed(Some(&labels(0, "dave")));
        assert!(streams.first_shown());
        assert_eq!(streams.first_name().as_deref(), Some("dave"));
        assert!(own.take_change(seen).is_none(), "until his pictures come");
        own.put(&callisto_media::video::VideoFrame::filled(4, 4, 30, 128, 128).unwrap());
        let (_, picture) = own.take_change(seen).expect("dave's picture");
        assert_eq!(picture.map(|p| p.y()[0]), Some(30));
    }
}
