//! What the conference tests share: reading tones out of recordings (a tone is "heard" at
//! 0.08 and up, "leaks" at 0.02 and up; see `tests/conference.rs`), a [`Room`] of participants
//! with their folders and recordings, and Kamailio with a user per participant.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use callisto_media::analysis::frequency_level;

use super::baresip::Baresip;
use super::baresip_phone::{Codec, PhoneConfig};
use super::callisto::Callisto;
use super::kamailio::{Kamailio, KamailioConfig};
use super::wav;

pub type TestResult = Result<(), Box<dyn Error>>;

/// A tone at this level or above is heard.
pub const HEARD: f32 = 0.08;
/// A participant hearing its own tone at this level or above hears itself.
pub const LEAK: f32 = 0.02;

/// Kamailio with the users `users` (password `USER-secret`), and a WebSocket listener when
/// `websocket`.
pub fn kamailio_for(users: &[&str], websocket: bool) -> std::io::Result<Kamailio> {
    let mut config = KamailioConfig {
        users: users
            .iter()
            .map(|u| (u.to_string(), format!("{u}-secret")))
            .collect(),
        ..KamailioConfig::default()
    };
    if websocket {
        config.ws_port = Some(super::free_port());
        config.tls_port = None;
    }
    Kamailio::start(config)
}

/// The level of `hz` in `seconds` of `path`, from `from_end` seconds before its end.
pub fn level(path: &Path, hz: f32, window: (f64, f64)) -> Result<f32, Box<dyn Error>> {
    let audio = wav::read_mono(path)?;
    let rate = audio.sample_rate as f64;
    let total = audio.samples.len() as f64 / rate;
    let (from_end, seconds) = window;
    assert!(
        total >= from_end,
        "{} holds {total:.1} s, less than {from_end} s",
        path.display()
    );
    let start = ((total - from_end) * rate) as usize;
    let end = (start + (seconds * rate) as usize).min(audio.samples.len());
    Ok(frequency_level(
        &audio.samples[start..end],
        audio.sample_rate,
        hz,
        0.02,
        100,
    ))
}

/// Asserts that `who` heard each of `others` and not `own` in `window` of its recording.
pub fn assert_hears(
    who: &str,
    path: &Path,
    own: f32,
    others: &[f32],
    window: (f64, f64),
) -> TestResult {
    for &hz in others {
        let l = level(path, hz, window)?;
        println!("{who} hears {hz} Hz at {l:.3}");
        assert!(
            l >= HEARD,
            "{who} hears {hz} Hz only at {l} ({})",
            path.display()
        );
    }
    let l = level(path, own, window)?;
    println!("{who} hears its own {own} Hz at {l:.4}");
    assert!(l < LEAK, "{who} hears itself at {l} ({})", path.display());
    Ok(())
}

/// The 100 ms windows of `path` after its first half second in which `hz` is not heard, and
/// how many windows it has.
pub fn missed_windows(path: &Path, hz: f32) -> Result<(Vec<usize>, usize), Box<dyn Error>> {
    let audio = wav::read_mono(path)?;
    let rate = audio.sample_rate;
    let windows: Vec<&[i16]> = audio.samples.chunks_exact(rate as usize / 10).collect();
    let missing = windows
        .iter()
        .enumerate()
        .skip(5)
        .filter(|(_, w)| frequency_level(w, rate, hz, 0.02, 100) < HEARD)
        .map(|(i, _)| i)
        .collect();
    Ok((missing, windows.len()))
}

/// The length of the longest run of consecutive numbers in the sorted `windows`.
pub fn longest_run(windows: &[usize]) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for (i, w) in windows.iter().enumerate() {
        run = if i > 0 && windows[i - 1] + 1 == *w {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
    }
    longest
}

/// Asserts that `who` did not hear `hz` in `window`.
pub fn assert_not_hearing(who: &str, path: &Path, hz: f32, window: (f64, f64)) -> TestResult {
    let l = level(path, hz, window)?;
    println!("{who} hears {hz} Hz at {l:.4}");
    assert!(l < LEAK, "{who} still hears {hz} Hz at {l}");
    Ok(())
}

/// The `name` events of `count` different calls of `peer`, in the order they came.
pub fn each_call(
    peer: &mut Callisto,
    name: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<serde_json::Value>, Box<dyn Error>> {
    let mut found: Vec<serde_json::Value> = Vec::new();
    for _ in 0..count {
        let calls: Vec<serde_json::Value> = found.iter().map(|e| e["call"].clone()).collect();
        found.push(peer.expect_matching(name, |e| !calls.contains(&e["call"]), timeout)?);
    }
    Ok(found)
}

/// A folder per participant and their recordings, in one temporary directory.
pub struct Room {
    pub dir: tempfile::TempDir,
}

impl Room {
    pub fn new() -> std::io::Result<Room> {
        let dir = tempfile::Builder::new()
            .prefix("callisto-conf-")
            .tempdir()?;
        Ok(Room { dir })
    }

    /// Where `who` records what it hears.
    pub fn recording(&self, who: &str) -> PathBuf {
        self.dir.path().join(format!("{who}.wav"))
    }

    /// `who`'s own folder (its configuration and data).
    pub fn home(&self, who: &str) -> std::io::Result<PathBuf> {
        let home = self.dir.path().join(who);
        std::fs::create_dir_all(&home)?;
        Ok(home)
    }

    /// `callisto COMMAND…` as the host on a free loopback port (returned), sending 440 Hz
    /// and recording what it hears.
    pub fn host(&self, command: &[&str]) -> std::io::Result<(Callisto, String)> {
        let listen = format!("127.0.0.1:{}", super::free_port());
        let rec = path_arg(&self.recording("host"));
        let mut args = command.to_vec();
        args.extend([
            "--listen",
            &listen,
            "--audio",
            "tone:440",
            "--record-audio",
            &rec,
            "--json",
        ]);
        let host = Callisto::start(&self.home("host")?, &args)?;
        Ok((host, listen))
    }

    /// `callisto conference --host --count COUNT` sending test pattern 1 (as [`Room::host`]):
    /// the host of a video conference that ends when `count` calls have.
    pub fn video_host(&self, count: &str) -> std::io::Result<(Callisto, String)> {
        let args = [
            "--host",
            "--count",
            count,
            "--video",
            "pattern",
            "--pattern-id",
            "1",
        ];
        self.host(&[&["conference"], &args[..]].concat())
    }

    /// `callisto call URI` as `who`, sending a tone of `hz` and recording what it hears.
    pub fn call(&self, who: &str, uri: &str, hz: u32, extra: &[&str]) -> std::io::Result<Callisto> {
        self.call_sending(who, uri, &format!("tone:{hz}"), extra)
    }

    /// `callisto call URI` as `who`, sending `audio` (an `--audio` value) and recording what it
    /// hears.
    pub fn call_sending(
        &self,
        who: &str,
        uri: &str,
        audio: &str,
        extra: &[&str],
    ) -> std::io::Result<Callisto> {
        let rec = path_arg(&self.recording(who));
        let mut args = vec!["--audio", audio, "--record-audio", &rec];
        args.extend_from_slice(extra);
        Callisto::call(&self.home(who)?, uri, &args)
    }
}

/// The conference of the issue through Kamailio: a [`Room`], Kamailio with the users host,
/// carol, dave and bob, and bob a baresip desk phone registered there (PCMU, playing 1230 Hz,
/// with H.264 video when asked: the test pattern stamped with the identity given, from a file)
/// for the host to dial.
pub struct Registered {
    pub room: Room,
    pub bob: Baresip,
    pub kamailio: Kamailio,
}

impl Registered {
    pub fn start(bob_pattern: Option<u16>) -> Result<Registered, Box<dyn Error>> {
        let kamailio = kamailio_for(&["host", "carol", "dave", "bob"], false)?;
        let port = kamailio.config().udp_port;
        let room = Room::new()?;
        let tone = room.dir.path().join("bob.wav");
        wav::write_tone(&tone, 1230.0, 8000, 1, 30.0)?;
        let mut phone = PhoneConfig::registered("bob", "bob-secret", port)
            .codecs(&[Codec::Pcmu])
            .playing(&tone);
        if let Some(identity) = bob_pattern {
            let pictures = room.dir.path().join("bob-camera.y4m");
            super::video::write_pattern(&pictures, identity, 15)?;
            phone = phone.video_file(&pictures);
        }
        let bob = Baresip::start_phone(phone)?;
        bob.wait_for_registered(Duration::from_secs(8))?;
        Ok(Registered {
            room,
            bob,
            kamailio,
        })
    }

    /// The host (440 Hz, Opus then PCMU) with `extra` options: it registers, dials bob and
    /// ends the conference after `seconds`; returns once bob is in.
    pub fn start_host(&self, seconds: &str, extra: &[&str]) -> Result<Callisto, Box<dyn Error>> {
        let mut args = vec![
            "conference",
            "--host",
            "--audio",
            "tone:440",
            "--codecs",
            "opus,pcmu",
            "--dial",
            "sip:bob@127.0.0.1",
            "--duration",
            seconds,
        ];
        args.extend_from_slice(extra);
        let mut host = self.start_callisto("host", &args)?;
        let wait = Duration::from_secs(8);
        host.expect("registered", wait)?;
        self.bob.wait_for_event(
            |e| matches!(e, super::baresip_events::BaresipEvent::Established { .. }),
            wait,
        )?;
        Ok(host)
    }

    /// `callisto ARGS…` as `who`, registered with Kamailio, recording what it hears.
    pub fn start_callisto(&self, who: &str, args: &[&str]) -> std::io::Result<Callisto> {
        let port = self.kamailio.config().udp_port;
        let (user, password) = (
            format!("sip:{who}@127.0.0.1:{port}"),
            format!("{who}-secret"),
        );
        let registrar = format!("sip:127.0.0.1:{port}");
        let recording = path_arg(&self.room.recording(who));
        let mut args = args.to_vec();
        args.extend([
            "--user",
            &user,
            "--password",
            &password,
            "--registrar",
            &registrar,
            "--listen",
            "127.0.0.1:0",
            "--record-audio",
            &recording,
            "--json",
        ]);
        Callisto::start(&self.room.home(who)?, &args)
    }
}

/// The `(from_end, seconds)` window of `path` that starts `at` seconds after its beginning.
pub fn host_window(path: &Path, at: f64, seconds: f64) -> Result<(f64, f64), Box<dyn Error>> {
    let total = wav::read_mono(path)?.seconds();
    Ok((total - at, seconds))
}

pub fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
