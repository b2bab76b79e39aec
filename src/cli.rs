//! The command line: `callisto [register|call|answer|conference|devices] …`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Callisto, a desktop video softphone.
#[derive(Debug, Parser)]
#[command(name = "callisto", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `callisto-desktop`: Callisto's window (what `callisto` without a command starts), which
/// runs no command.
#[derive(Debug, Parser)]
#[command(name = "callisto-desktop", version, about)]
pub struct DesktopCli {
    #[command(flatten)]
    pub window: WindowArgs,
}

/// The options of the window, also taken by every command.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// The configuration file (default: the platform config dir's callisto/callisto.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where contacts, history and logs live (default: the platform data dir).
    #[arg(long, global = true, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Which configured account to use (its name or address); all of them when omitted.
    #[arg(long, global = true)]
    pub account: Option<String>,
    /// Call this address as soon as the window opens (a video call; not with a command).
    #[arg(long, value_name = "URI")]
    pub dial: Option<String>,
}

impl WindowArgs {
    /// The configuration file: `--config`, else the platform's.
    pub fn config_path(&self) -> Result<PathBuf, crate::config::ConfigError> {
        self.config
            .clone()
            .map(Ok)
            .unwrap_or_else(crate::config::Config::default_path)
    }
}

/// The headless commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register an account with its SIP server and report the outcome.
    Register(RegisterArgs),
    /// Call someone, play audio to them, record what they send, hang up.
    Call(CallArgs),
    /// Wait for calls and answer them.
    Answer(AnswerArgs),
    /// Host a conference: answer every call, dial others, and mix everyone's audio so each
    /// participant hears all the others (and not themselves), the host's own audio included.
    ///
    /// The host takes part with --audio (what everyone hears from the host) and
    /// --record-audio/--play-audio (what the host hears). --duration ends the conference that
    /// many seconds after it started. Lines on standard input: `dial URI` adds a participant,
    /// `hangup N` drops call N, `hangup` ends the conference.
    Conference(ConferenceArgs),
    /// List the sound devices (PulseAudio when a server answers, else ALSA).
    Devices(DevicesArgs),
}

/// `callisto devices`.
#[derive(Debug, Clone, Default, Args)]
pub struct DevicesArgs {
    /// Print one JSON object per device and line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Account options shared by the headless commands.
#[derive(Debug, Clone, Default, Args)]
pub struct AccountArgs {
    /// The address of record, e.g. sip:alice@example.org (instead of a configured account).
    #[arg(long, value_name = "URI")]
    pub user: Option<String>,
    /// The password for digest authentication.
    #[arg(long, value_name = "SECRET")]
    pub password: Option<String>,
    /// The digest user name, when it differs from the address's user part.
    #[arg(long, value_name = "NAME")]
    pub auth_user: Option<String>,
    /// The registrar, e.g. 'sip:pbx.example.org:5060;transport=tcp', 'sip:pbx:8080;transport=ws'
    /// or 'wss://pbx.example.org/ws' (default: the address's domain).
    #[arg(long, value_name = "URI")]
    pub registrar: Option<String>,
    /// The HTTP resource of a WebSocket registrar (default: /).
    #[arg(long, value_name = "PATH")]
    pub ws_path: Option<String>,
    /// The local address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// A CA certificate (PEM) to trust for TLS, beside the system's.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// `callisto register`.
#[derive(Debug, Clone, Default, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub account: AccountArgs,
    /// The registration interval to ask for, in seconds.
    #[arg(long, value_name = "N")]
    pub expires: Option<u32>,
    /// Register, report, unregister and exit.
    #[arg(long)]
    pub once: bool,
    /// Print one JSON object per line instead of sentences.
    #[arg(long)]
    pub json: bool,
}

/// Media options shared by `call` and `answer`.
#[derive(Debug, Clone, Args)]
pub struct MediaArgs {
    /// What to send: `tone:HZ`, a 16-bit PCM WAV file (played in a loop), `silence`, or a
    /// capture device: `device` (the default one) or `device:NAME` (an id or name from
    /// `callisto devices`). A device that cannot be opened is reported and silence is sent.
    /// `echo` sends back what the other side sends, one second later (an echo service).
    #[arg(
        long,
        value_name = "tone:HZ|FILE.wav|silence|device[:NAME]|echo",
        default_value = "silence"
    )]
    pub audio: String,
    /// Play what the other side sends on a device: `device` (the default one),
    /// `device:NAME`, or `none` (the default). A device that cannot be opened is reported and
    /// the call goes on without playback.
    #[arg(long, value_name = "device[:NAME]|none")]
    pub play_audio: Option<String>,
    /// Record what the other side sends to this WAV file.
    #[arg(long, value_name = "OUT.wav")]
    pub record_audio: Option<PathBuf>,
    /// Voice processing of a microphone (`--audio device…`): echo cancellation (`aec`), noise
    /// suppression (`ns`) and automatic gain control (`agc`), comma separated, or `none`.
    #[arg(long, value_name = "aec,ns,agc|none", default_value = "aec,ns,agc")]
    pub voice_processing: String,
    /// Audio codecs in order of preference.
    #[arg(long, value_name = "opus,pcmu,pcma", default_value = "opus,pcmu,pcma")]
    pub codecs: String,
    /// SDES-SRTP: off, optional (offered, not required) or mandatory.
    /// (Default: the account's `srtp`, else optional.)
    #[arg(long, value_name = "off|optional|mandatory")]
    pub srtp: Option<String>,
    /// The media path to offer: `classic` (RTP/AVP or SDES-SRTP, for desk phones and PBXs) or
    /// `webrtc` (ICE, DTLS-SRTP, BUNDLE; for browsers and other Callistos). Incoming calls
    /// are answered on the path their offer asks for; a WebRTC offer refused with 488 is
    /// retried as classic. (Default: the account's `media`, else classic.)
    #[arg(long, value_name = "classic|webrtc")]
    pub media: Option<String>,
    /// Video to send: a moving test `pattern` with a machine-readable frame counter, the
    /// `camera` (the first one, or `camera:N` for number N), a Y4M file (played in a loop), or
    /// `none`. A camera that cannot be used (none, busy) is reported and replaced by a
    /// placeholder picture, and the call goes on. `echo` sends back the pictures the other
    /// side sends, one second later.
    #[arg(
        long,
        value_name = "pattern|camera[:N]|FILE.y4m|echo|none",
        default_value = "none"
    )]
    pub video: String,
    /// Record the video the other side sends to this Y4M file.
    #[arg(long, value_name = "OUT.y4m")]
    pub record_video: Option<PathBuf>,
    /// Video frame size for the test pattern and the encoder's limit.
    #[arg(long, value_name = "WxH", default_value = "640x480")]
    pub video_size: String,
    /// Video frame rate.
    #[arg(long, value_name = "FPS", default_value_t = 30)]
    pub fps: u32,
    /// The number drawn into the test pattern's stamp next to the frame counter, so a
    /// receiver can tell senders apart.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub pattern_id: u16,
    /// Show only the peer's first video stream: a conference host then sends one mosaic of
    /// everyone instead of each participant as a stream of their own.
    #[arg(long)]
    pub single_stream: bool,
    /// Highest video bitrate, in kbit/s.
    #[arg(long, value_name = "KBPS", default_value_t = 1500)]
    pub video_kbps: u32,
    /// A STUN server for ICE, e.g. stun:HOST:3478 (none by default).
    #[arg(long, value_name = "URI")]
    pub stun: Option<String>,
    /// A TURN server for ICE, e.g. turn:HOST:3478?transport=udp.
    #[arg(long, value_name = "URI")]
    pub turn: Option<String>,
    /// The TURN user name.
    #[arg(long, value_name = "USER", requires = "turn")]
    pub turn_user: Option<String>,
    /// The TURN password.
    #[arg(long, value_name = "PASSWORD", requires = "turn")]
    pub turn_password: Option<String>,
    /// Send WebRTC media only through the TURN server (--turn, or the account's): ICE
    /// transport policy `relay`, no local or server-reflexive address is offered, so the peer
    /// never learns ours.
    #[arg(long)]
    pub relay_only: bool,
    /// Hang up after this many seconds of conversation (default: wait for the other side).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<f64>,
    /// Send these DTMF digits once the call is up.
    #[arg(long, value_name = "DIGITS")]
    pub dtmf: Option<String>,
    /// Print one JSON object per line instead of sentences.
    #[arg(long)]
    pub json: bool,
}

impl Default for MediaArgs {
    /// The same defaults as on the command line (taken from the flags' own declarations).
    fn default() -> Self {
        #[derive(Parser)]
        struct OnlyMedia {
            #[command(flatten)]
            media: MediaArgs,
        }
        OnlyMedia::parse_from(["callisto"]).media
    }
}

/// `callisto call`.
#[derive(Debug, Clone, Default, Args)]
pub struct CallArgs {
    /// Whom to call: sip:bob@example.org, sip:bob@127.0.0.1:5062, or a number or name (completed
    /// with the account's domain).
    #[arg(value_name = "URI")]
    pub uri: String,
    #[command(flatten)]
    pub account: AccountArgs,
    #[command(flatten)]
    pub media: MediaArgs,
}

/// `callisto answer`.
#[derive(Debug, Clone, Default, Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    pub account: AccountArgs,
    #[command(flatten)]
    pub media: MediaArgs,
    /// Exit after this many calls have ended.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub count: u32,
    /// Let each call ring this long before answering it (a caller may cancel meanwhile);
    /// default: answer at once.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub answer_after: Option<f64>,
}

/// The longest wait a command line may ask for: a week.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// A number of seconds for a timer (`--duration`, `--answer-after`): finite, from 0 to a week.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.0..=MAX_SECONDS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0 to {MAX_SECONDS}"
        )),
    }
}

/// `callisto conference`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConferenceArgs {
    /// Host the conference here (the other participants call this account or address, or are
    /// dialed). Joining someone else's conference is a call to its host: `callisto call`.
    #[arg(long)]
    pub host: bool,
    #[command(flatten)]
    pub account: AccountArgs,
    /// Call this participant when the conference starts (repeatable).
    #[arg(long, value_name = "URI")]
    pub dial: Vec<String>,
    /// End the conference once this many participants have left (0: only at --duration or
    /// on a signal).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub count: u32,
    #[command(flatten)]
    pub media: MediaArgs,
}

/// Logs to stderr: warnings, or more with each `-v`; `CALLISTO_LOG` (an `EnvFilter`) overrides.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLISTO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_options_take_seconds_from_zero_to_a_week() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert_eq!(parse_seconds("0"), Ok(0.0));
        for bad in ["-1", "NaN", "inf", "1e9", "soon"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
