//! The `callisto` binary as a test peer: started with arguments, its `--json` lines read as they
//! come, steered through standard input (`hold`, `resume`, `dtmf 12`, `hangup`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The flags of a WebRTC call with `tone` (`tone:HZ`) and the 640x480@30 test pattern
/// stamped with `identity`, reporting in JSON.
pub fn webrtc_video_args<'a>(tone: &'a str, identity: &'a str) -> Vec<&'a str> {
    vec![
        "--media",
        "webrtc",
        "--audio",
        tone,
        "--video",
        "pattern",
        "--video-size",
        "640x480",
        "--fps",
        "30",
        "--pattern-id",
        identity,
        "--json",
    ]
}

/// The binary under test (the integration test's own build of it).
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_callisto")
}

/// The command that starts the binary: itself, or — when `CALLISTO_CALLGRIND_DIR` names a
/// folder — the binary under valgrind's callgrind, which writes the functions each process
/// ran to `callgrind.PID` there (`scripts/hot-code.sh` orders the executable's code by them).
fn command() -> Command {
    let Some(dir) = std::env::var_os("CALLISTO_CALLGRIND_DIR") else {
        return Command::new(binary());
    };
    let mut out = std::ffi::OsString::from("--callgrind-out-file=");
    out.push(Path::new(&dir).join("callgrind.%p"));
    let mut command = Command::new("valgrind");
    command
        .args([
            "--tool=callgrind",
            "--demangle=no",
            "--compress-strings=no",
            "--compress-pos=no",
        ])
        .arg(out)
        .arg(binary());
    command
}

/// A running `callisto` with `--json`.
pub struct Callisto {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
    stderr: Arc<Mutex<String>>,
}

impl Callisto {
    /// Starts `callisto ARGS…` with an empty configuration in `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> std::io::Result<Callisto> {
        Self::start_with_env(dir, args, &[])
    }

    /// Starts `callisto answer --listen LISTEN ARGS… --json`: a direct answerer at `listen`
    /// (`127.0.0.1:0` for any port; its `listening` event names the one it got).
    pub fn answer(dir: &Path, listen: &str, args: &[&str]) -> std::io::Result<Callisto> {
        Self::start(dir, &Self::with_json(&["answer", "--listen", listen], args))
    }

    /// Starts `callisto call URI --listen 127.0.0.1:0 ARGS… --json`.
    pub fn call(dir: &Path, uri: &str, args: &[&str]) -> std::io::Result<Callisto> {
        Self::start(
            dir,
            &Self::with_json(&["call", uri, "--listen", "127.0.0.1:0"], args),
        )
    }

    fn with_json<'a>(command: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
        let mut all = command.to_vec();
        all.extend_from_slice(args);
        all.push("--json");
        all
    }

    /// Starts `callisto ARGS…` like [`Callisto::start`], with `env` added to its environment
    /// (e.g. `PULSE_SERVER` for a private sound server).
    pub fn start_with_env(
        dir: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> std::io::Result<Callisto> {
        let mut child = command()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("--config")
            .arg(dir.join("callisto.toml"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(args)
            // CALLISTO_TEST_LOG=debug shows a failing test's engine in its output.
            .env(
                "CALLISTO_LOG",
                std::env::var("CALLISTO_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "no stdout"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut text) = sink.lock() {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Callisto {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line (read so far, or arriving within `timeout`) whose `event` is `name`.
    pub fn expect(&mut self, name: &str, timeout: Duration) -> Result<serde_json::Value, String> {
        self.expect_matching(name, |_| true, timeout)
    }

    /// The port of the `listening` line (arriving within `timeout`).
    pub fn listening_port(&mut self, timeout: Duration) -> Result<u16, String> {
        let listening = self.expect("listening", timeout)?;
        listening["address"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .ok_or(format!("no port in {listening}"))
    }

    /// Every line read so far whose `event` is `name`, in order.
    pub fn seen(&self, name: &str) -> Vec<serde_json::Value> {
        self.seen
            .iter()
            .filter(|v| v["event"] == name)
            .cloned()
            .collect()
    }

    /// The first line whose `event` is `name` and whose `call` is `call`.
    pub fn expect_call(
        &mut self,
        name: &str,
        call: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, String> {
        self.expect_matching(name, |v| v["call"] == *call, timeout)
    }

    /// The first line (read so far, or arriving within `timeout`) whose `event` is `name` and
    /// that `matches`; every line read is kept in `seen`.
    pub fn expect_matching(
        &mut self,
        name: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> Result<serde_json::Value, String> {
        let deadline = Instant::now() + timeout;
        let wanted = |v: &serde_json::Value| v["event"] == name && matches(v);
        if let Some(found) = self.seen.iter().find(|v| wanted(v)) {
            return Ok(found.clone());
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) => {
                    self.seen.push(value.clone());
                    if wanted(&value) {
                        return Ok(value);
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "no '{name}' within {timeout:?}; saw {:?}\nstderr:\n{}",
                        self.seen,
                        self.stderr()
                    ))
                }
            }
        }
    }

    /// Every line read so far, plus what arrives within `wait`.
    pub fn events(&mut self, wait: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + wait;
        while let Ok(value) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(value);
        }
        self.seen.clone()
    }

    /// Sends one control line.
    pub fn control(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// What the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL, through `Child`): it says goodbye to nobody.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(|_| ())
    }

    /// Waits for the process to exit; kills it (by its PID, through `Child`) after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                return self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Callisto {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if std::env::var_os("CALLISTO_CALLGRIND_DIR").is_some() {
                // Callgrind writes its profile when the process exits, not when it is killed:
                // ask it to stop first.
                if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                    // SAFETY: kill(2) on our own child's PID; it cannot have been reaped
                    // (try_wait just found it running) and so not reused.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
                let _ = self.wait(Duration::from_secs(30));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `command` with its standard output and error piped, to its exit, and returns what it
/// printed; kills it and fails the test when it has not exited within `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> std::io::Result<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = exited_within(&mut child, limit);
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for `child` to exit; kills it and fails the test after `limit`.
pub fn exited_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("callisto's status") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("callisto was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
