//! `callisto conference --host`: one engine that answers every call and dials the given
//! participants, with every call's audio on one [`ConferenceBridge`]. The host's own
//! `--audio` is the local participant; `--record-audio` and `--play-audio` get what the host
//! hears. It prints who joins and leaves, the roster, active-speaker changes and each leg's
//! summary as it ends (the same `call_ended` lines as `callisto call`).
//!
//! Lines on standard input steer it: `dial URI` adds a participant, `hangup N` (the `call`
//! number of the JSON lines) drops one, and `hangup` alone ends the conference: every leg
//! gets its BYE.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use callisto_media::audio::AudioFormat;
use callisto_media::conference::{BridgeEvent, ConferenceBridge, MixerConfig, RosterEntry};
use callisto_media::video::VideoFormat;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::control::{parse_control, stdin_lines, Action, Control};
use super::report::report;
use super::{failure_exit_code, sleep_until, Session};
use crate::cli::{AccountArgs, ConferenceArgs};
use crate::config::Config;
use crate::engine::{
    self, peer_label, AudioPlayback, CallKey, CallUpdate, Command, ConferenceSeat, EngineEvent,
    MediaOptions, VideoOptions,
};
use crate::register::{exit, Output};

/// Runs `callisto conference`.
pub async fn run_conference(
    args: ConferenceArgs,
    config: Config,
    selected: Option<&str>,
    data_dir: Option<&Path>,
) -> ExitCode {
    let out = Output {
        json: args.media.json,
    };
    if !args.host {
        return out.fatal(
            exit::OTHER,
            "callisto conference needs --host: it hosts the conference here (to join someone \
             else's, call its host with callisto call)",
        );
    }
    let (mut session, media) =
        match Session::prepare(&args.account, &args.media, &config, selected).await {
            Ok(prepared) => prepared,
            Err(code) => return code,
        };
    let (bridge_tx, bridge_rx) = mpsc::unbounded_channel();
    let bridge = match start_bridge(&media, bridge_tx, host_name(&session)) {
        Ok(bridge) => bridge,
        Err(message) => {
            let code = session.out.fatal(exit::OTHER, &message);
            session.close().await;
            return code;
        }
    };
    // The legs' audio and video are the bridge's; the host's input, recording and playback
    // are its own.
    let legs = MediaOptions {
        record: None,
        playback: AudioPlayback::Off,
        conference: Some(ConferenceSeat::at(&bridge)),
        video: media.video.clone().map(|video| VideoOptions {
            record: None,
            ..video
        }),
        ..media
    };
    // Calls are taken before the registrar is told where to send them.
    let _ = session.engine.commands.send(Command::AcceptCalls {
        media: Some(Box::new(legs.clone())),
    });
    if let Err(code) = session.register_chosen(&config, data_dir).await {
        bridge.stop();
        return code;
    }
    let address = session.engine.local_udp.map(|a| a.to_string());
    if session.out.json {
        println!("{}", json!({"event": "conference", "address": address}));
    } else {
        println!(
            "Hosting a conference on {}.",
            address.as_deref().unwrap_or("?")
        );
    }
    let mut conference = Conference::new(bridge.clone(), bridge_rx);
    let dialing = Dialing {
        account: &args.account,
        config: &config,
        legs,
    };
    let mut worst = exit::OK;
    for uri in &args.dial {
        worst = worst.max(conference.dial(&mut session, &dialing, uri).await);
    }
    let ends_at = args
        .media
        .duration
        .map(|secs| Instant::now() + Duration::from_secs_f64(secs));
    let run = conference.run(&mut session, &dialing, args.count, ends_at);
    worst = worst.max(run.await);
    bridge.stop();
    conference.print_end(&session.out);
    session.close().await;
    ExitCode::from(worst)
}

/// The bridge with the host's own audio as its local participant.
fn start_bridge(
    media: &MediaOptions,
    events: mpsc::UnboundedSender<BridgeEvent>,
    host: String,
) -> Result<ConferenceBridge, String> {
    let bridge = ConferenceBridge::start(MixerConfig::default(), move |event| {
        let _ = events.send(event);
    })
    .map_err(|e| format!("cannot start the conference: {e}"))?;
    let (source, sink) = engine::host_audio(media, AudioFormat::new(48_000, 1))?;
    bridge
        .set_local(&host, source, sink)
        .map_err(|e| format!("cannot start the conference: {e}"))?;
    // The mosaic takes the host's picture size and rate; the host's picture is in it.
    if let (Some(video), Some(picture)) = (&media.video, engine::host_video(media)?) {
        let format = VideoFormat::new(video.width, video.height, video.fps)
            .map_err(|e| format!("cannot start the conference's picture: {e}"))?;
        bridge
            .mosaic(format)
            .map_err(|e| format!("cannot start the conference's picture: {e}"))?
            .set_local(picture);
    }
    Ok(bridge)
}

fn host_name(session: &Session) -> String {
    session
        .account
        .as_ref()
        .map(|a| peer_label(None, &a.user))
        .unwrap_or_else(|| "host".to_string())
}

/// What dialing a participant takes: the account and configuration to call from, and the
/// media options of a leg.
struct Dialing<'a> {
    account: &'a AccountArgs,
    config: &'a Config,
    legs: MediaOptions,
}

/// A line the host types.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostLine {
    /// Call someone into the conference.
    Dial(String),
    /// Hang up one participant.
    Drop(CallKey),
    /// Hang up everyone: the conference ends.
    End,
}

/// Reads one host line; `None` when it is not understood. Hanging up takes the words and
/// the call number of `callisto call`'s control lines.
fn parse_host_line(line: &str) -> Option<HostLine> {
    if let ["dial", uri] = line.split_whitespace().collect::<Vec<_>>().as_slice() {
        return Some(HostLine::Dial((*uri).to_string()));
    }
    match parse_control(line)? {
        Control {
            action: Action::HangUp,
            call: Some(key),
        } => Some(HostLine::Drop(key)),
        Control {
            action: Action::HangUp,
            call: None,
        } => Some(HostLine::End),
        _ => None,
    }
}

/// The conference as the command follows it.
struct Conference {
    bridge: ConferenceBridge,
    bridge_events: mpsc::UnboundedReceiver<BridgeEvent>,
    /// Every call's participant, by name (the display name, else the address).
    names: HashMap<CallKey, String>,
    /// Calls not over yet (dialed, ringing, or in the conference).
    live: Vec<CallKey>,
    /// Everyone who took part, in the order they joined, and those still here.
    joined: Vec<CallKey>,
    present: Vec<CallKey>,
    left: u32,
    speakers: Vec<String>,
    /// Each participant's last figures from the bridge (it forgets legs as they leave),
    /// the host's under tag 0.
    figures: HashMap<u64, RosterEntry>,
}

impl Conference {
    fn new(bridge: ConferenceBridge, events: mpsc::UnboundedReceiver<BridgeEvent>) -> Self {
        Conference {
            bridge,
            bridge_events: events,
            names: HashMap::new(),
            live: Vec::new(),
            joined: Vec::new(),
            present: Vec::new(),
            left: 0,
            speakers: Vec::new(),
            figures: HashMap::new(),
        }
    }

    /// Calls `uri` into the conference; the exit code of a failure to start the call.
    async fn dial(&mut self, session: &mut Session, dialing: &Dialing<'_>, uri: &str) -> u8 {
        let legs = dialing.legs.clone();
        match session
            .dial(dialing.account, uri, dialing.config, legs)
            .await
        {
            Ok(key) => {
                self.live.push(key);
                self.names.insert(key, peer_label(None, uri));
                exit::OK
            }
            Err((code, message)) => {
                eprintln!("callisto: cannot call {uri}: {message}");
                code
            }
        }
    }

    /// Follows the calls and the host's lines until `count` participants have left,
    /// `ends_at`, a signal or the host's `hangup`; then hangs up everyone left. Returns the
    /// exit code.
    async fn run(
        &mut self,
        session: &mut Session,
        dialing: &Dialing<'_>,
        count: u32,
        ends_at: Option<Instant>,
    ) -> u8 {
        let mut worst = exit::OK;
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        let mut lines = stdin_lines(parse_host_line);
        loop {
            let done = tokio::select! {
                Some(line) = lines.recv() => match line {
                    HostLine::Dial(uri) => {
                        // A call that cannot start is said; the conference goes on as it was.
                        self.dial(session, dialing, &uri).await;
                        false
                    }
                    HostLine::Drop(key) => {
                        if self.live.contains(&key) {
                            let _ = session.engine.commands.send(Command::HangUp { key });
                        } else {
                            eprintln!("callisto: no participant on call {}", key.0);
                        }
                        false
                    }
                    HostLine::End => true,
                },
                _ = refresh.tick() => {
                    self.keep_figures();
                    false
                }
                event = session.engine.events.recv() => match event {
                    Some(EngineEvent::Call { key, update }) => {
                        worst = worst.max(self.on_call(session, key, update));
                        count > 0 && self.left >= count
                    }
                    Some(EngineEvent::Registration { event, .. }) => {
                        let name = session.account.as_ref().map(|a| a.user.clone()).unwrap_or_default();
                        session.out.registration(&name, &event);
                        false
                    }
                    Some(EngineEvent::Stopped) | None => return worst.max(exit::OTHER),
                },
                Some(event) = self.bridge_events.recv() => {
                    self.on_bridge(session, event);
                    false
                }
                _ = sleep_until(ends_at) => true,
                _ = session.signals.recv() => true,
            };
            if done {
                break;
            }
        }
        self.keep_figures();
        for key in &self.live {
            let _ = session.engine.commands.send(Command::HangUp { key: *key });
        }
        worst
    }

    fn on_call(&mut self, session: &Session, key: CallKey, update: CallUpdate) -> u8 {
        report(&session.out, key, &update);
        match update {
            CallUpdate::Incoming {
                from, display_name, ..
            } => {
                self.names
                    .insert(key, peer_label(display_name.as_deref(), &from));
                self.live.push(key);
                let _ = session
                    .engine
                    .commands
                    .send(Command::Answer { key, video: true });
            }
            CallUpdate::Answered { .. } => {
                self.present.push(key);
                self.joined.push(key);
                self.print_change(&session.out, "joined", key);
            }
            CallUpdate::Failed { code, cause, .. } => {
                self.live.retain(|k| *k != key);
                self.left += 1;
                return failure_exit_code(code, cause);
            }
            CallUpdate::Ended { .. } => {
                self.live.retain(|k| *k != key);
                self.left += 1;
                if self.present.contains(&key) {
                    self.present.retain(|k| *k != key);
                    self.print_change(&session.out, "left", key);
                }
            }
            _ => {}
        }
        exit::OK
    }

    fn on_bridge(&mut self, session: &Session, event: BridgeEvent) {
        match event {
            BridgeEvent::Speaker { tag, label } => {
                self.speakers.push(label.clone());
                if session.out.json {
                    println!(
                        "{}",
                        json!({"event": "speaker", "call": (tag != 0).then_some(tag), "name": label})
                    );
                } else {
                    println!("Speaking: {label}.");
                }
            }
            BridgeEvent::Silent { tag, label } => {
                // Nothing from this leg for a while: it is gone without a word.
                tracing::warn!(tag, %label, "no audio from a participant; hanging up");
                if session.out.json {
                    println!("{}", json!({"event": "silent", "call": tag, "name": label}));
                } else {
                    println!("{label} has sent nothing for a while; dropping them.");
                }
                if tag != 0 {
                    let _ = session
                        .engine
                        .commands
                        .send(Command::HangUp { key: CallKey(tag) });
                }
            }
        }
    }

    fn keep_figures(&mut self) {
        for entry in self.bridge.roster() {
            self.figures.insert(entry.tag, entry);
        }
    }

    /// A participant's name: the display name, else the address.
    fn name(&self, key: CallKey) -> String {
        self.names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("call {}", key.0))
    }

    /// Says that `key` joined or left, and who is here now.
    fn print_change(&self, out: &Output, what: &str, key: CallKey) {
        let name = self.name(key);
        let names: Vec<String> = self.present.iter().map(|k| self.name(*k)).collect();
        if out.json {
            println!(
                "{}",
                json!({"event": what, "call": key.0, "name": name, "participants": names})
            );
        } else {
            println!(
                "{name} {what} the conference; now {} here.",
                names.len() + 1
            );
        }
    }

    fn print_end(&self, out: &Output) {
        let mut figures: Vec<&RosterEntry> = self.figures.values().collect();
        figures.sort_by_key(|e| e.tag);
        let participants: Vec<_> = figures
            .iter()
            .map(|e| {
                json!({
                    "call": (e.tag != 0).then_some(e.tag),
                    "name": e.label,
                    "level_dbfs": (f64::from(e.dbfs) * 10.0).round() / 10.0,
                    "gain_db": (f64::from(e.gain_db) * 10.0).round() / 10.0,
                    "underruns": e.underruns,
                    "dropped_samples": e.dropped,
                })
            })
            .collect();
        let joined: Vec<_> = self
            .joined
            .iter()
            .map(|k| json!({"call": k.0, "name": self.name(*k)}))
            .collect();
        if out.json {
            println!(
                "{}",
                json!({"event": "conference_ended", "joined": joined, "roster": participants, "speakers": self.speakers})
            );
        } else {
            println!("The conference ended; {} took part.", self.joined.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lines_are_understood() {
        assert_eq!(
            parse_host_line("dial sip:carol@127.0.0.1:5064\n"),
            Some(HostLine::Dial("sip:carol@127.0.0.1:5064".into()))
        );
        assert_eq!(
            parse_host_line("hangup 3"),
            Some(HostLine::Drop(CallKey(3)))
        );
        assert_eq!(parse_host_line(" hangup "), Some(HostLine::End));
        for garbage in ["", "dial", "hangup three", "hangup 3 4", "hold"] {
            assert_eq!(parse_host_line(garbage), None, "{garbage:?}");
        }
    }
}
