//! A private PulseAudio server for audio device tests: a child of the test (never the system
//! instance), listening on a unix socket in a temp dir, with null sinks standing in for sound
//! cards. A null sink's monitor source (`NAME.monitor`) captures what is played to the sink, so
//! a tone played to one sink is a microphone for Callisto.
//!
//! Clients reach it through [`PulseServer::env`] (`PULSE_SERVER=unix:…`); anonymous auth is on,
//! so no cookie is needed. It runs as whoever runs the tests, root included (PulseAudio only
//! warns), without D-Bus, shared memory or real-time scheduling, and stops by its PID on drop.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::logged_child::LoggedChild;

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running private PulseAudio server.
pub struct PulseServer {
    child: LoggedChild,
    socket: PathBuf,
    sinks: Vec<String>,
    dir: TempDir,
}

impl PulseServer {
    /// Starts `pulseaudio` with one null sink per name in `sinks` (44.1 kHz stereo, so clients
    /// resample and mix; the name is also its description, so its monitor is `Monitor of
    /// NAME`) and waits until it accepts connections. A missing `pulseaudio` is an error naming
    /// the install step.
    pub fn start(sinks: &[&str]) -> io::Result<PulseServer> {
        let dir = tempfile::Builder::new()
            .prefix("callisto-pulse-")
            .tempdir()?;
        let socket = dir.path().join("native");
        let sinks: Vec<String> = sinks.iter().map(|s| s.to_string()).collect();
        let child = spawn(dir.path(), &socket, &sinks)?;
        let server = PulseServer {
            child,
            socket,
            sinks,
            dir,
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// Stops the server (by its PID), as if the sound system went away.
    pub fn stop(&mut self) -> io::Result<()> {
        self.child.stop(Duration::from_secs(2))?;
        Ok(())
    }

    /// Starts a stopped server again on the same socket, with the same sinks.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        let _ = std::fs::remove_file(&self.socket);
        self.child = spawn(self.dir.path(), &self.socket, &self.sinks)?;
        self.wait_until_ready()
    }

    fn wait_until_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.child.error(
                    io::ErrorKind::TimedOut,
                    &format!(
                        "no connection on {} within {START_TIMEOUT:?}",
                        self.socket.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `PULSE_SERVER=unix:<socket>` and a private runtime dir: the environment of a client of
    /// this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PULSE_SERVER".into(),
                format!("unix:{}", self.socket.display()),
            ),
            (
                "XDG_RUNTIME_DIR".into(),
                self.dir.path().join("runtime").display().to_string(),
            ),
        ]
    }

    /// Runs a PulseAudio client tool (`pactl`, `paplay`, `parecord`…) against this server.
    pub fn command(&self, tool: &str) -> io::Result<Command> {
        let mut command = Command::new(binary(tool)?);
        command
            .envs(self.env())
            .env("HOME", self.dir.path().join("home"));
        Ok(command)
    }

    /// Runs `pactl ARGS…` and returns its output; a failure is an error with its stderr.
    pub fn pactl(&self, args: &[&str]) -> io::Result<Output> {
        let output = self.command("pactl")?.args(args).output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "pactl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(output)
    }

    /// The server's temp dir (its log is `pulseaudio.log` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The last `count` lines the server logged.
    pub fn log_tail(&self, count: usize) -> String {
        self.child.tail(count)
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        let _ = self.child.stop(Duration::from_secs(2));
    }
}

/// Starts `pulseaudio` in `dir`, listening on `socket`, with a null sink per name.
fn spawn(dir: &Path, socket: &Path, sinks: &[String]) -> io::Result<LoggedChild> {
    let home = dir.join("home");
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&runtime)?;
    let mut command = Command::new(binary("pulseaudio")?);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("PULSE_RUNTIME_PATH", runtime.join("pulse"))
        .env("PULSE_STATE_PATH", home.join("state"))
        .args([
            "-n",
            "--daemonize=no",
            "--system=false",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--use-pid-file=no",
            "--disable-shm=yes",
            "--log-target=stderr",
        ])
        .arg(format!(
            "--load=module-native-protocol-unix socket={} auth-anonymous=1",
            socket.display()
        ));
    for sink in sinks {
        command.arg(format!(
            "--load=module-null-sink sink_name={sink} rate=44100 channels=2 sink_properties=device.description={sink}"
        ));
    }
    LoggedChild::spawn("pulseaudio", command, &dir.join("pulseaudio.log"))
}

/// The path of a PulseAudio program, or an error naming the install step.
fn binary(name: &str) -> io::Result<PathBuf> {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{name} is not installed: run scripts/install-deps.sh test (pulseaudio, pulseaudio-utils)"),
    ))
}
