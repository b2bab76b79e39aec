//! baresip as the desk phone of call tests: configured by [`PhoneConfig`], driven through its
//! `cons` console, observed through [`BaresipEvent`]s and its recordings.
//!
//! What each setting becomes in baresip 1.0's files (verified against Debian bookworm's
//! `baresip-core` 1.0.0):
//!
//! - codecs: the account's `audio_codecs=` list. A bare name means `<name>/8000/1`, so Opus must
//!   be written `opus/48000/2` (`opus` alone is "audio codec not found" and the list is ignored).
//! - SRTP: the account's `mediaenc=srtp` (offer `RTP/SAVP` with SDES keys, accept plain) or
//!   `mediaenc=srtp-mand` (SRTP only), with the `srtp.so` module.
//! - answering: the account's `answermode=auto`, `manual` or `early` (then [`Baresip::answer`]).
//! - audio: `audio_source aufile,<wav>` with `ausrc_srate`/`ausrc_channels` set from the WAV
//!   header (they must match it); no `audio_player`, so nothing reaches a sound card.
//! - recording: `sndfile.so` writes `dump-<date>-<time>-enc.wav` (what this side sends) and
//!   `…-dec.wav` (what it hears: one decoded frame per received packet) into `snd_path`, named
//!   to the second, so one phone records one call per second at most. Files are 16-bit PCM at
//!   the codec's rate and channels (Opus: 48 kHz stereo). baresip 1.0 rebuilds its receive
//!   path on a re-INVITE (hold) without the recording filter: the `dec` file ends there, so
//!   what a phone hears after a hold is checked on the wire (see `measure::SendTrace`).
//! - control: `cons.so` with `cons_listen 127.0.0.1:<port>` feeds each datagram to `menu.so` as
//!   typed keys; a command is `/<name> <argument>\n`. Used here: `/dial <uri>`, `/accept`,
//!   `/hangup` (BYE, CANCEL before an answer, 486 for an unanswered incoming call), `/hold`,
//!   `/resume` (re-INVITEs with `a=sendonly` / `a=sendrecv`) and `/sndcode <digits>` (RFC 4733
//!   telephone-events). `statmode_default off` keeps menu's status line out of the log.
//! - video ([`PhoneConfig::video`], [`PhoneConfig::video_file`]): `avcodec.so` (H.264 through
//!   libavcodec: libx264 encodes, `h264` decodes; it offers packetization modes 0 and 1,
//!   `profile-level-id=42e01f`), `fakevideo.so` as display (discards) and as source (vertical
//!   bars) unless a file is played: `avformat.so` reads it (a Y4M of the test pattern) at its
//!   frame rate from the start of each call's video. It tries to rewind at the end, which a
//!   Y4M does not allow: the picture stops there (measured: a 2 s file gives 2 s of video in
//!   a 4 s call), so a file must last as long as the call. avformat is an audio source too, and baresip takes the first audio source loaded
//!   as the default, so a phone playing a video file must play a WAV as well. `video_size
//!   640x480`, `video_fps 30`, the account limited to `video_codecs=H264`; `snapshot.so`
//!   saves the next picture it decodes and the next it encodes as PNGs (`snapshot-recv-….png`,
//!   `snapshot-send-….png`) in baresip's directory on `/snapshot`.
//! - registration: `regint=` on the account; a phone that does not register uses its own
//!   address as its AOR (`sip:<user>@127.0.0.1:<sip port>`) and is called there directly.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::baresip::{Baresip, BaresipConfig};
use super::baresip_events::{parse_event, AudioDirection, BaresipEvent, TimedEvent};
use super::free_port;

/// An audio codec baresip can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law, payload type 0.
    Pcmu,
    /// G.711 A-law, payload type 8.
    Pcma,
    /// Opus at 48 kHz, stereo signalling (baresip's default Opus format), a dynamic payload type.
    Opus,
}

impl Codec {
    /// The name in an account's `audio_codecs` list.
    pub fn account_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
            Codec::Opus => "opus/48000/2",
        }
    }

    /// The encoding name baresip logs and puts into SDP.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// The static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::Opus => None,
        }
    }
}

/// Whether and how media is encrypted (SDES-SRTP, RFC 4568).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpMode {
    /// Plain RTP (`RTP/AVP`).
    #[default]
    Off,
    /// `mediaenc=srtp`: SRTP when the peer does it, plain RTP otherwise.
    Optional,
    /// `mediaenc=srtp-mand`: `RTP/SAVP` only.
    Mandatory,
}

impl SrtpMode {
    fn mediaenc(self) -> Option<&'static str> {
        match self {
            SrtpMode::Off => None,
            SrtpMode::Optional => Some("srtp"),
            SrtpMode::Mandatory => Some("srtp-mand"),
        }
    }
}

/// How incoming calls are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerMode {
    /// At once, with 200 OK.
    #[default]
    Auto,
    /// Ringing until [`Baresip::answer`] (or [`Baresip::hang_up`], which rejects).
    Manual,
    /// At once with 183 Session Progress and its SDP, sending early media, until
    /// [`Baresip::answer`] sends the 200.
    Early,
}

/// A baresip set up as a phone: one account, audio from a WAV file, recordings, a console.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// The user part of the account.
    pub user: String,
    /// The digest password (used only when registering or challenged).
    pub password: String,
    /// Kamailio's UDP port on 127.0.0.1 to register with, or `None` for no registration.
    pub registrar_port: Option<u16>,
    /// Registration interval in seconds.
    pub regint: u32,
    /// The codecs to offer and accept, in order; empty means baresip's whole list.
    pub codecs: Vec<Codec>,
    /// Media encryption.
    pub srtp: SrtpMode,
    /// How incoming calls are answered.
    pub answer: AnswerMode,
    /// The WAV file played as the microphone, looped, or `None` for no audio source.
    pub source: Option<PathBuf>,
    /// Record what each call sends and hears.
    pub record: bool,
    /// Offer and accept H.264 video, and from what.
    pub video: Option<PhoneVideo>,
}

/// What a phone's camera shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneVideo {
    /// `fakevideo`'s still picture of vertical colour bars.
    Bars,
    /// A Y4M file, played from the start of a call's video to its end, not again: as long
    /// as the call (see [`super::video::write_pattern`]).
    File(PathBuf),
}

impl PhoneConfig {
    /// A phone registering `user`/`password` with the registrar at `127.0.0.1:registrar_port`
    /// (UDP), every codec, no SRTP, auto-answer, recording, no audio source yet.
    pub fn registered(user: &str, password: &str, registrar_port: u16) -> PhoneConfig {
        PhoneConfig {
            user: user.to_owned(),
            password: password.to_owned(),
            registrar_port: Some(registrar_port),
            regint: 600,
            codecs: Vec::new(),
            srtp: SrtpMode::Off,
            answer: AnswerMode::Auto,
            source: None,
            record: true,
            video: None,
        }
    }

    /// A phone that does not register: it is called at `sip:<user>@127.0.0.1:<its port>`.
    pub fn direct(user: &str) -> PhoneConfig {
        PhoneConfig {
            registrar_port: None,
            ..PhoneConfig::registered(user, "", 0)
        }
    }

    /// Limits the codecs to `codecs`, in that order of preference.
    pub fn codecs(mut self, codecs: &[Codec]) -> PhoneConfig {
        self.codecs = codecs.to_vec();
        self
    }

    /// Sets the media encryption.
    pub fn srtp(mut self, srtp: SrtpMode) -> PhoneConfig {
        self.srtp = srtp;
        self
    }

    /// Sets how incoming calls are answered.
    pub fn answer(mut self, answer: AnswerMode) -> PhoneConfig {
        self.answer = answer;
        self
    }

    /// Plays `wav` as the microphone.
    pub fn playing(mut self, wav: &Path) -> PhoneConfig {
        self.source = Some(wav.to_owned());
        self
    }

    /// Turns H.264 video (fakevideo's bars as the source) on or off.
    pub fn video(mut self, video: bool) -> PhoneConfig {
        self.video = video.then_some(PhoneVideo::Bars);
        self
    }

    /// Turns H.264 video on, its source the Y4M file `y4m` (needs a WAV to play as well).
    pub fn video_file(mut self, y4m: &Path) -> PhoneConfig {
        self.video = Some(PhoneVideo::File(y4m.to_owned()));
        self
    }

    /// Turns recording on or off.
    pub fn recording(mut self, record: bool) -> PhoneConfig {
        self.record = record;
        self
    }

    /// The baresip configuration: fresh SIP and console ports, the account line, modules.
    /// Fails if the source WAV cannot be read.
    pub fn into_baresip_config(self) -> io::Result<BaresipConfig> {
        let mut config = BaresipConfig::new();
        config.cons_port = Some(free_port());
        config.record = self.record;
        config.modules.push("opus.so".to_owned());
        if self.srtp != SrtpMode::Off {
            config.modules.push("srtp.so".to_owned());
        }
        if let Some(video) = &self.video {
            for module in ["avcodec.so", "fakevideo.so", "snapshot.so"] {
                config.modules.push(module.to_owned());
            }
            let source =
                match video {
                    PhoneVideo::Bars => "fakevideo,nil".to_owned(),
                    PhoneVideo::File(_) if self.source.is_none() => return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a phone playing a video file needs a WAV to play (avformat would be its \
                         audio source)",
                    )),
                    PhoneVideo::File(y4m) => {
                        config.modules.push("avformat.so".to_owned());
                        format!("avformat,{}", y4m.display())
                    }
                };
            config
                .extra_config
                .push(format!("video_source\t\t{source}"));
            for line in [
                "video_display\t\tfakevideo,nil",
                "video_size\t\t640x480",
                "video_fps\t\t30",
            ] {
                config.extra_config.push(line.to_owned());
            }
        }
        if let Some(source) = &self.source {
            let spec = hound::WavReader::open(source)
                .map_err(|error| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{}: {error}", source.display()),
                    )
                })?
                .spec();
            config.modules.push("aufile.so".to_owned());
            config
                .extra_config
                .push(format!("audio_source\t\taufile,{}", source.display()));
            config
                .extra_config
                .push(format!("ausrc_srate\t\t{}", spec.sample_rate));
            config
                .extra_config
                .push(format!("ausrc_channels\t\t{}", spec.channels));
        }
        let mut account = match self.registrar_port {
            Some(port) => format!(
                "<sip:{}@127.0.0.1:{port};transport=udp>;auth_pass={};regint={}",
                self.user, self.password, self.regint
            ),
            None => format!("<sip:{}@127.0.0.1:{}>;regint=0", self.user, config.sip_port),
        };
        let answer = match self.answer {
            AnswerMode::Auto => "auto",
            AnswerMode::Manual => "manual",
            AnswerMode::Early => "early",
        };
        account.push_str(&format!(";answermode={answer}"));
        if !self.codecs.is_empty() {
            let names: Vec<&str> = self.codecs.iter().map(|c| c.account_name()).collect();
            account.push_str(&format!(";audio_codecs={}", names.join(",")));
        }
        if self.video.is_some() {
            account.push_str(";video_codecs=H264");
        }
        if let Some(mediaenc) = self.srtp.mediaenc() {
            account.push_str(&format!(";mediaenc={mediaenc}"));
        }
        config.accounts.push(account);
        Ok(config)
    }
}

impl Baresip {
    /// Starts baresip as the phone `config` describes.
    pub fn start_phone(config: PhoneConfig) -> io::Result<Baresip> {
        Baresip::start(config.into_baresip_config()?)
    }

    /// The address of record of its first account, e.g. `sip:bob@127.0.0.1:5060`: where a
    /// registered phone is called through the registrar, and a direct one at its own port.
    pub fn aor(&self) -> Option<String> {
        let account = self.config().accounts.first()?;
        let uri = account.strip_prefix('<')?.split('>').next()?;
        Some(uri.split(';').next()?.to_owned())
    }

    /// Sends a menu command (without the leading `/`) to the `cons` console, e.g.
    /// `dial sip:bob@127.0.0.1`. Fails if baresip runs without a console.
    pub fn command(&self, command: &str) -> io::Result<()> {
        let cons = self.cons.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "baresip runs without the cons console (BaresipConfig::cons_port)",
            )
        })?;
        // cons echoes every key back to the last sender; drop what came since the last command.
        let mut scratch = [0u8; 2048];
        while cons.recv(&mut scratch).is_ok() {}
        cons.send(format!("/{command}\n").as_bytes())?;
        Ok(())
    }

    /// Calls `uri`.
    pub fn dial(&self, uri: &str) -> io::Result<()> {
        self.command(&format!("dial {uri}"))
    }

    /// Answers the ringing incoming call.
    pub fn answer(&self) -> io::Result<()> {
        self.command("accept")
    }

    /// Hangs up the current call: BYE when established, CANCEL while ringing out, 486 to an
    /// unanswered incoming call.
    pub fn hang_up(&self) -> io::Result<()> {
        self.command("hangup")
    }

    /// Puts the current call on hold (re-INVITE with `a=sendonly`).
    pub fn hold(&self) -> io::Result<()> {
        self.command("hold")
    }

    /// Resumes the held call (re-INVITE with `a=sendrecv`).
    pub fn resume(&self) -> io::Result<()> {
        self.command("resume")
    }

    /// Sends `digits` (`0-9`, `*`, `#`, `A-D`) as RFC 4733 telephone-events in the current call.
    pub fn send_dtmf(&self, digits: &str) -> io::Result<()> {
        if digits.is_empty()
            || !digits
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not DTMF digits: {digits:?}"),
            ));
        }
        self.command(&format!("sndcode {digits}"))
    }

    /// Asks for PNGs of the next decoded and the next encoded video picture (`snapshot.so`),
    /// written into [`Baresip::dir`] as `snapshot-recv-….png` and `snapshot-send-….png`.
    pub fn snapshot(&self) -> io::Result<()> {
        self.command("snapshot")
    }

    /// Asks for snapshots until a new picture of what it decodes is written; returns its path.
    pub fn next_received_snapshot(&self, timeout: Duration) -> io::Result<PathBuf> {
        let before = self.received_snapshots()?.len();
        let deadline = Instant::now() + timeout;
        loop {
            self.snapshot()?;
            thread::sleep(Duration::from_millis(300));
            let snapshots = self.received_snapshots()?;
            if snapshots.len() > before {
                return Ok(snapshots[snapshots.len() - 1].clone());
            }
            if Instant::now() >= deadline {
                return Err(self.error(
                    io::ErrorKind::TimedOut,
                    &format!("no decoded picture saved:\n{}", self.log_tail(30)),
                ));
            }
        }
    }

    /// The PNG snapshots of received video written so far.
    pub fn received_snapshots(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(self.dir())? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| n.starts_with("snapshot-recv") && n.ends_with(".png")) {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Every call event so far, with the moment the harness read it.
    pub fn events(&self) -> Vec<TimedEvent> {
        self.timed_log_lines()
            .into_iter()
            .filter_map(|(at, line)| {
                Some(TimedEvent {
                    at,
                    event: parse_event(&line)?,
                })
            })
            .collect()
    }

    /// Waits for the first event (counting those already seen) that satisfies `predicate`.
    /// The error carries the tail of the log.
    pub fn wait_for_event(
        &self,
        predicate: impl FnMut(&BaresipEvent) -> bool,
        timeout: Duration,
    ) -> io::Result<TimedEvent> {
        self.wait_for_event_since(self.started_at(), predicate, timeout)
    }

    /// Waits for the first event read at or after `since` that satisfies `predicate` (for a
    /// phone's second call, say).
    pub fn wait_for_event_since(
        &self,
        since: Instant,
        mut predicate: impl FnMut(&BaresipEvent) -> bool,
        timeout: Duration,
    ) -> io::Result<TimedEvent> {
        let mut events = self.wait_for_events_since(since, 1, |event| predicate(event), timeout)?;
        Ok(events.swap_remove(0))
    }

    /// Waits until at least `count` events satisfy `predicate` and returns all that do.
    pub fn wait_for_events(
        &self,
        count: usize,
        predicate: impl FnMut(&BaresipEvent) -> bool,
        timeout: Duration,
    ) -> io::Result<Vec<TimedEvent>> {
        self.wait_for_events_since(self.started_at(), count, predicate, timeout)
    }

    /// Waits until at least `count` events read at or after `since` satisfy `predicate` and
    /// returns all that do.
    pub fn wait_for_events_since(
        &self,
        since: Instant,
        count: usize,
        mut predicate: impl FnMut(&BaresipEvent) -> bool,
        timeout: Duration,
    ) -> io::Result<Vec<TimedEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let events: Vec<TimedEvent> = self
                .events()
                .into_iter()
                .filter(|timed| timed.at >= since && predicate(&timed.event))
                .collect();
            if events.len() >= count {
                return Ok(events);
            }
            if Instant::now() >= deadline {
                return Err(self.error(
                    io::ErrorKind::TimedOut,
                    &format!(
                        "{} of {count} awaited events within {timeout:?}",
                        events.len()
                    ),
                ));
            }
            thread::sleep(EVENT_POLL_INTERVAL);
        }
    }

    /// The DTMF digits received so far, one per key release, in order.
    pub fn dtmf_received(&self) -> String {
        self.events()
            .into_iter()
            .filter_map(|timed| match timed.event {
                BaresipEvent::DtmfReceived { digit, end: true } => Some(digit),
                _ => None,
            })
            .collect()
    }

    /// The recordings `sndfile` announced, in order, for `direction`.
    pub fn recordings(&self, direction: AudioDirection) -> Vec<PathBuf> {
        self.events()
            .into_iter()
            .filter_map(|timed| match timed.event {
                BaresipEvent::Recording { direction: d, path } if d == direction => Some(path),
                _ => None,
            })
            .collect()
    }

    /// The recording of what the last call heard, once `sndfile` has closed it (when the call
    /// ended, or when baresip restarted its receive path; see the module docs).
    pub fn last_heard(&self) -> io::Result<PathBuf> {
        let path = self
            .recordings(AudioDirection::Decode)
            .pop()
            .ok_or_else(|| self.error(io::ErrorKind::NotFound, "no call was recorded"))?;
        let deadline = Instant::now() + RECORDING_CLOSE_TIMEOUT;
        while !wav_is_closed(&path)? {
            if Instant::now() >= deadline {
                return Err(self.error(
                    io::ErrorKind::TimedOut,
                    &format!("{} is still being written", path.display()),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(path)
    }
}

/// How often waits for events re-read the log.
const EVENT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long [`Baresip::last_heard`] waits for a recording to be closed.
const RECORDING_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the WAV file at `path` has been closed by its writer: libsndfile writes the RIFF
/// size when it closes a file, so an open recording's header does not yet cover the file.
fn wav_is_closed(path: &Path) -> io::Result<bool> {
    let mut header = [0u8; 8];
    let mut file = fs::File::open(path)?;
    let length = file.metadata()?.len();
    if length <= 44 || file.read_exact(&mut header).is_err() {
        return Ok(false);
    }
    let riff_size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    Ok(&header[..4] == b"RIFF" && u64::from(riff_size) + 8 == length)
}
