//! A browser softphone as a test peer: Debian's headless Chromium running JsSIP over Kamailio's
//! WebSocket listener, with fake camera and microphone, for calls with WebRTC media.
//!
//! [`Browser::start`] runs `node tests/browser/peer.mjs` (playwright-core drives Chromium; see
//! that file for the control protocol), waits for its page to load and then steers it with JSON
//! lines: [`Browser::register`], [`Browser::call`], [`Browser::answer`], [`Browser::hang_up`],
//! [`Browser::stats`] (a summary of the page's `RTCPeerConnection.getStats()`), and reads its
//! events (`registered`, `incoming`, `progress`, `confirmed`, `first_frame`, `ended`, `failed`,
//! …) with [`Browser::wait_for_event`]. [`BrowserConfig::auto_answering`] makes a callee that
//! answers every call with video and prefers H.264 (Callisto's video codec).
//!
//! Everything stays on 127.0.0.1: the page comes from a loopback HTTP server inside the node
//! process, Chromium runs without background networking, no ICE server is configured and only
//! loopback candidates are signalled. The logs (`peer.log`: the page's console and the peer's
//! diagnostics; `events.jsonl`: every line the peer wrote) and Chromium's profile live in a
//! temporary directory that is kept when the test panics (or when `CALLISTO_KEEP_BROWSER_LOGS`
//! is set); `CALLISTO_BROWSER_DEBUG` logs JsSIP's SIP traffic and Chromium's output there.
//!
//! Chromium, Node.js and `tests/browser/node_modules` come from `scripts/install-deps.sh test`;
//! when one is missing, [`Browser::start`] fails with a message naming that fix. Nothing skips.
//! The node process runs in its own process group; Playwright starts Chromium in another one,
//! so stopping walks `/proc` for the peer's descendants and signals each of them by PID.

use std::collections::HashMap;
use std::env;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

use super::measure::cpu_time;

/// How long [`Browser::start`] waits for the page to be ready (Chromium's first start on a
/// loaded machine takes a few seconds).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(45);
/// How long a command waits for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Browser::register`] waits for `registered`.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping peer gets to close Chromium before everything is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Events after which the peer cannot go on; waits end with an error when one arrives.
const FATAL_EVENTS: [&str; 3] = ["fatal", "page_crashed", "closed"];

/// The fake camera's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second the fake camera produces.
    pub fps: u32,
}

impl Default for VideoFormat {
    fn default() -> Self {
        VideoFormat {
            width: 640,
            height: 480,
            fps: 30,
        }
    }
}

/// How a browser peer is set up.
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// A label for logs and error messages (`alice`, `bob`).
    pub name: String,
    /// Answer every incoming call as soon as it arrives.
    pub auto_answer: bool,
    /// When auto-answering, answer with video if the offer has video.
    pub auto_answer_video: bool,
    /// Put H.264 Constrained Baseline (packetization-mode=1) first in offers and answers, via
    /// `RTCRtpTransceiver.setCodecPreferences`.
    pub prefer_h264: bool,
    /// The `RTCPeerConnection` bundle policy: `max-bundle` (one transport, what Callisto's
    /// WebRTC session does) or `balanced` (a transport per media kind, for peers that do not
    /// bundle: under `max-bundle` the W3C rules let a browser negotiate only one m-line with a
    /// peer that is not bundle-aware).
    pub bundle_policy: &'static str,
    /// A 16-bit PCM WAV file the fake microphone plays in a loop (Chromium's
    /// `--use-file-for-fake-audio-capture`); `None` keeps Chromium's beeps.
    pub audio_file: Option<PathBuf>,
    /// The fake camera's format (also what `getUserMedia` asks for).
    pub video: VideoFormat,
    /// Log JsSIP's SIP traffic to the page console (and so to `peer.log`).
    pub debug_sip: bool,
    /// Frequencies whose levels in the received audio the statistics report
    /// (`remote_audio_levels`, dBFS keyed by the frequency).
    pub listen_for: Vec<f32>,
    /// The Chromium binary; `None` uses `$CHROMIUM` or `/usr/bin/chromium`.
    pub chromium: Option<PathBuf>,
    /// The node binary; `None` uses `$NODE` or `node` from `PATH`.
    pub node: Option<PathBuf>,
}

impl BrowserConfig {
    /// A peer named `name` that answers only when told to, with VP8 first (Chromium's default).
    pub fn new(name: &str) -> BrowserConfig {
        BrowserConfig {
            name: name.to_owned(),
            auto_answer: false,
            auto_answer_video: true,
            prefer_h264: false,
            bundle_policy: "max-bundle",
            audio_file: None,
            video: VideoFormat::default(),
            debug_sip: env::var_os("CALLISTO_BROWSER_DEBUG").is_some(),
            listen_for: Vec::new(),
            chromium: None,
            node: None,
        }
    }

    /// A callee for Callisto: answers every call at once, with video when offered, H.264 first.
    pub fn auto_answering(name: &str) -> BrowserConfig {
        BrowserConfig {
            auto_answer: true,
            prefer_h264: true,
            ..BrowserConfig::new(name)
        }
    }

    fn to_json(&self, user_data_dir: &Path, chromium: &Path) -> Value {
        json!({
            "name": self.name,
            "chromium": chromium,
            "audioFile": self.audio_file,
            "video": {
                "width": self.video.width,
                "height": self.video.height,
                "fps": self.video.fps,
            },
            "autoAnswer": self.auto_answer,
            "autoAnswerVideo": self.auto_answer_video,
            "preferH264": self.prefer_h264,
            "bundlePolicy": self.bundle_policy,
            "userDataDir": user_data_dir,
            "debugSip": self.debug_sip,
            "listenFor": self.listen_for,
        })
    }
}

/// A running browser peer. Dropping it closes Chromium and stops every process it started.
pub struct Browser {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    /// Events read and not yet taken by a wait, in arrival order.
    pending: Vec<Value>,
    /// Every line read, for error messages.
    seen: Vec<Value>,
    next_id: u64,
    dir: TempDir,
    /// Set once [`Browser::stop`] reaped the node process: its PID may belong to another
    /// process from then on, so nothing is looked up or signalled by it again.
    stopped: bool,
}

/// `tests/browser/` in this source tree.
pub fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("browser")
}

impl Browser {
    /// Starts the peer and waits until its page is loaded.
    pub fn start(config: BrowserConfig) -> io::Result<Browser> {
        let node = node_binary(config.node.as_deref())?;
        let chromium = chromium_binary(config.chromium.as_deref())?;
        check_node_modules()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("callisto-browser-{}-", config.name))
            .tempdir()?;
        let profile = dir.path().join("profile");
        fs::create_dir_all(&profile)?;
        let peer_log = File::create(dir.path().join("peer.log"))?;
        let mut command = Command::new(&node);
        command
            .arg(peer_dir().join("peer.mjs"))
            .arg(config.to_json(&profile, &chromium).to_string())
            .current_dir(peer_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(peer_log))
            .process_group(0);
        if config.debug_sip {
            command.env("DEBUG", "pw:browser");
        }
        let mut child = command.spawn().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "browser {}: cannot start {}: {error}",
                    config.name,
                    node.display()
                ),
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "no stdout"))?;
        let events_log = File::create(dir.path().join("events.jsonl"))?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || read_events(stdout, events_log, &tx));
        let stdin = child.stdin.take();
        let mut browser = Browser {
            name: config.name.clone(),
            child,
            stdin,
            lines,
            pending: Vec::new(),
            seen: Vec::new(),
            next_id: 1,
            dir,
            stopped: false,
        };
        browser.wait_for_event("ready", STARTUP_TIMEOUT)?;
        Ok(browser)
    }

    /// The label given in [`BrowserConfig::name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID of the node process (the leader of its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory with `peer.log`, `events.jsonl` and Chromium's profile.
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a browser whose microphone plays the tone `hz` (a file written into `dir`) and
    /// registers it as `user` with `password` through the WebSocket URL `ws`.
    pub fn registered(
        mut config: BrowserConfig,
        ws: &str,
        (user, password): (&str, &str),
        hz: f32,
        dir: &Path,
    ) -> io::Result<Browser> {
        let tone = dir.join(format!("{user}-{hz}.wav"));
        super::wav::write_tone(&tone, hz, 48_000, 1, 10.0)?;
        config.audio_file = Some(tone);
        let mut browser = Browser::start(config)?;
        browser.register(ws, &format!("sip:{user}@127.0.0.1"), password)?;
        Ok(browser)
    }

    /// Registers `uri` (e.g. `sip:bob@127.0.0.1`) with `password` through the WebSocket URL
    /// `ws` (e.g. `ws://127.0.0.1:8080`), and waits for the registrar's 200. A
    /// `registration_failed` is an error carrying its cause.
    pub fn register(&mut self, ws: &str, uri: &str, password: &str) -> io::Result<Value> {
        self.request(json!({"cmd": "register", "ws": ws, "uri": uri, "password": password}))?;
        let event =
            self.wait_for_one_of(&["registered", "registration_failed"], REGISTER_TIMEOUT)?;
        if event["event"] == "registered" {
            Ok(event)
        } else {
            Err(self.error(&format!("registration of {uri} failed: {event}")))
        }
    }

    /// Starts a call to `target` (a SIP URI) with audio, and video when `video`; returns when
    /// the INVITE is on its way (the reply carries `call_id`). The call's progress comes as
    /// events: `progress`, `accepted`, `confirmed`, `first_audio`, `first_frame`, or `failed`.
    pub fn call(&mut self, target: &str, video: bool) -> io::Result<Value> {
        self.request(json!({"cmd": "call", "target": target, "video": video}))
    }

    /// Like [`Browser::call`], choosing for this call whether H.264 goes first in the offer.
    pub fn call_preferring_h264(
        &mut self,
        target: &str,
        video: bool,
        prefer_h264: bool,
    ) -> io::Result<Value> {
        self.request(json!({
            "cmd": "call", "target": target, "video": video, "preferH264": prefer_h264,
        }))
    }

    /// Answers the ringing call (after an `incoming` event), with video when `video`.
    pub fn answer(&mut self, video: bool) -> io::Result<Value> {
        self.request(json!({"cmd": "answer", "video": video}))
    }

    /// Ends the current call (CANCEL, reject or BYE, as JsSIP's `terminate` sees fit).
    pub fn hang_up(&mut self) -> io::Result<Value> {
        self.request(json!({"cmd": "hangup"}))
    }

    /// Puts the current call on hold (`on`) or takes it off: a re-INVITE, waited for until
    /// the peer accepted it. An error when the peer refused it (JsSIP then hangs up).
    pub fn hold(&mut self, on: bool) -> io::Result<Value> {
        self.request(json!({"cmd": "hold", "on": on}))
    }

    /// Unregisters; the outcome comes as an `unregistered` event.
    pub fn unregister(&mut self) -> io::Result<Value> {
        self.request(json!({"cmd": "unregister"}))
    }

    /// Changes page-wide options: `autoAnswer`, `autoAnswerVideo`, `preferH264`.
    pub fn configure(&mut self, options: Value) -> io::Result<Value> {
        let mut command = json!({"cmd": "configure"});
        if let (Some(target), Some(options)) = (command.as_object_mut(), options.as_object()) {
            target.extend(options.clone());
        }
        self.request(command)
    }

    /// The current call's statistics, summarised from `getStats()`: `inbound_audio`
    /// (`packetsReceived`, `audioLevel`, `totalAudioEnergy`, `codec`, …), `inbound_video`
    /// (`framesDecoded`, `frameWidth`, `frameHeight`, `framesPerSecond`, `codec`, `pliCount`,
    /// `nackCount`, …), `outbound_audio`, `outbound_video` (`framesEncoded`, `codec`,
    /// `encoderImplementation`, …), `candidate_pair` (`local`/`remote` address, port, protocol),
    /// `transport` (DTLS and ICE state), and `first_frame_ms`/`first_audio_ms` (from `call()` or
    /// `answer()` to the first decoded frame / received audio packet). `{"in_call": false}`
    /// outside a call.
    pub fn stats(&mut self) -> io::Result<Value> {
        let reply = self.request(json!({"cmd": "stats"}))?;
        Ok(reply["stats"].clone())
    }

    /// Sends `command` (a JSON object with `cmd`) with a fresh `id` and waits for its reply;
    /// an `error` reply is an error.
    pub fn request(&mut self, mut command: Value) -> io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(object) = command.as_object_mut() {
            object.insert("id".to_owned(), json!(id));
        }
        self.send_line(&command.to_string())?;
        let reply = self.wait_matching(
            |event| {
                event["id"] == id
                    && matches!(event["event"].as_str(), Some("ok" | "error" | "stats"))
            },
            &format!("the reply to {command}"),
            REPLY_TIMEOUT,
        )?;
        if reply["event"] == "error" {
            return Err(self.error(&format!("{command} failed: {}", reply["message"])));
        }
        Ok(reply)
    }

    fn send_line(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Takes the first event named `name` that arrived and was not taken yet, waiting up to
    /// `timeout` for it. Fails early if the peer dies.
    pub fn wait_for_event(&mut self, name: &str, timeout: Duration) -> io::Result<Value> {
        self.wait_matching(
            |event| event["event"] == name,
            &format!("'{name}'"),
            timeout,
        )
    }

    /// Takes the first event whose name is one of `names`.
    pub fn wait_for_one_of(&mut self, names: &[&str], timeout: Duration) -> io::Result<Value> {
        self.wait_matching(
            |event| names.iter().any(|name| event["event"] == *name),
            &format!("one of {names:?}"),
            timeout,
        )
    }

    /// Waits for `confirmed` (the call is up); a `failed` or `ended` before it is an error.
    pub fn wait_for_confirmed(&mut self, timeout: Duration) -> io::Result<Value> {
        let event = self.wait_for_one_of(&["confirmed", "failed", "ended"], timeout)?;
        if event["event"] == "confirmed" {
            Ok(event)
        } else {
            Err(self.error(&format!("the call did not come up: {event}")))
        }
    }

    /// Polls [`Browser::stats`] every 200 ms until `condition` holds, for up to `timeout`;
    /// returns the last statistics, or an error showing them.
    pub fn wait_for_stats(
        &mut self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&Value) -> bool,
    ) -> io::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats()?;
            if condition(&stats) {
                return Ok(stats);
            }
            if Instant::now() >= deadline {
                return Err(self.error(&format!(
                    "{what}: not within {timeout:?}; last stats {stats}"
                )));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every line the peer wrote so far (events and replies), plus what arrives within `wait`.
    pub fn events(&mut self, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        while let Ok(value) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(value.clone());
            self.pending.push(value);
        }
        self.seen.clone()
    }

    fn wait_matching(
        &mut self,
        wanted: impl Fn(&Value) -> bool,
        what: &str,
        timeout: Duration,
    ) -> io::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(index) = self.pending.iter().position(&wanted) {
                return Ok(self.pending.remove(index));
            }
            if let Some(fatal) = self
                .pending
                .iter()
                .find(|event| FATAL_EVENTS.iter().any(|name| event["event"] == *name))
            {
                let fatal = fatal.clone();
                return Err(self.error(&format!("waiting for {what}, the peer stopped: {fatal}")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) => {
                    self.seen.push(value.clone());
                    self.pending.push(value);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        self.describe(&format!("no {what} within {timeout:?}")),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.error(&format!("waiting for {what}, the peer exited")));
                }
            }
        }
    }

    /// The processes Chromium runs for this peer (the node process's descendants); none once
    /// stopped.
    pub fn chromium_pids(&self) -> Vec<u32> {
        if self.stopped {
            return Vec::new();
        }
        descendants(self.pid())
    }

    /// CPU time (user + system) used so far by the processes Chromium runs now.
    pub fn chromium_cpu_time(&self) -> Duration {
        self.chromium_pids()
            .into_iter()
            .filter_map(|pid| cpu_time(pid).ok())
            .sum()
    }

    /// The last lines of `peer.log`, for error messages.
    pub fn log_tail(&self, count: usize) -> String {
        let text = fs::read_to_string(self.dir.path().join("peer.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(count)..].join("\n")
    }

    fn describe(&self, what: &str) -> String {
        let recent: Vec<String> = self
            .seen
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(Value::to_string)
            .collect();
        format!(
            "browser {}: {what}\n--- last events ---\n{}\n--- last log lines (logs: {}) ---\n{}",
            self.name,
            recent.join("\n"),
            self.dir.path().display(),
            self.log_tail(30)
        )
    }

    fn error(&self, what: &str) -> io::Error {
        io::Error::other(self.describe(what))
    }

    /// Closes Chromium and stops the peer: `quit` first, then SIGKILL by PID to whatever of
    /// it is left after [`STOP_GRACE`]. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        // Chromium's processes are re-parented once node exits: note them first.
        let processes: Vec<(u32, u64)> = descendants(self.pid())
            .into_iter()
            .filter_map(|pid| Some((pid, start_time(pid)?)))
            .collect();
        if let Ok(None) = self.child.try_wait() {
            let _ = self.send_line(r#"{"cmd":"quit"}"#);
            self.stdin = None;
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        // Only the processes we noted: a recycled PID has another start time.
        let running = |&(pid, started): &(u32, u64)| {
            start_time(pid) == Some(started)
                && stat_fields(pid).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
        };
        for &(pid, started) in &processes {
            if running(&(pid, started)) {
                kill(pid, false);
            }
        }
        if let Ok(None) = self.child.try_wait() {
            kill(self.pid(), true);
        }
        let _ = self.child.wait();
        // A killed process ends when it next runs, which on a busy machine is not at once:
        // wait (bounded) so that a stopped browser has left nothing behind.
        let deadline = Instant::now() + STOP_GRACE;
        while processes.iter().any(running) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        self.stopped = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() || env::var_os("CALLISTO_KEEP_BROWSER_LOGS").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "browser {}: logs kept in {}",
                self.name,
                self.dir.path().display()
            );
        }
    }
}

fn read_events(stdout: impl io::Read, mut log: File, tx: &mpsc::Sender<Value>) {
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let _ = writeln!(log, "{line}");
        let value = serde_json::from_str::<Value>(&line)
            .unwrap_or_else(|_| json!({"event": "unparsed", "line": line}));
        if tx.send(value).is_err() {
            return;
        }
    }
}

fn node_binary(configured: Option<&Path>) -> io::Result<PathBuf> {
    if let Some(path) = configured {
        return Ok(path.to_owned());
    }
    if let Some(path) = env::var_os("NODE") {
        return Ok(PathBuf::from(path));
    }
    env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| missing("node (Node.js) is not installed"))
}

fn chromium_binary(configured: Option<&Path>) -> io::Result<PathBuf> {
    let path = configured
        .map(Path::to_owned)
        .or_else(|| env::var_os("CHROMIUM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(missing(&format!(
            "Chromium is not installed ({} is missing; Debian package `chromium`)",
            path.display()
        )))
    }
}

fn check_node_modules() -> io::Result<()> {
    let modules = peer_dir().join("node_modules");
    for package in ["playwright-core", "jssip", "esbuild"] {
        if !modules.join(package).join("package.json").is_file() {
            return Err(missing(&format!(
                "{} has no {package} (npm ci in tests/browser)",
                modules.display()
            )));
        }
    }
    Ok(())
}

fn missing(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("browser peer: {what}; install the test peers with `scripts/install-deps.sh test`"),
    )
}

/// Fields of `/proc/<pid>/stat` after the parenthesised command name (field 3 onwards).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The start time of `pid` in clock ticks since boot (field 22), telling a process from a
/// later one that got the same PID.
fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Every live process whose chain of parents reaches `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
    {
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.first().map(String::as_str) == Some("Z") {
            continue;
        }
        if let Some(parent) = fields.get(1).and_then(|field| field.parse::<u32>().ok()) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            found.push(child);
            stack.push(child);
        }
    }
    found
}

/// SIGKILL to `pid`, or to its process group when `group`. Only PIDs this harness started (or
/// their descendants) are passed here.
fn kill(pid: u32, group: bool) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(target, libc::SIGKILL);
    }
}
