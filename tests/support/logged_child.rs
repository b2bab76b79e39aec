//! A child process whose stdout and stderr are captured line by line, both into memory (for
//! assertions) and into a log file (for people reading a failed run).
//!
//! The child runs in its own process group, so stopping it also reaches the workers it forked
//! (Kamailio forks a dozen): SIGTERM to the leader first, SIGKILL to the whole group after a grace
//! period. Only this group is ever signalled.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often waits re-check the captured output or the process state.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running child process with captured output. Dropping it stops the process.
pub struct LoggedChild {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    log_path: PathBuf,
    readers: Vec<JoinHandle<()>>,
    exit_status: Option<ExitStatus>,
}

impl LoggedChild {
    /// Spawns `command` in a new process group with stdin closed and stdout/stderr captured into
    /// `log_path` (appended) and memory. `name` labels error messages.
    pub fn spawn(name: &str, mut command: Command, log_path: &Path) -> io::Result<LoggedChild> {
        let log = Arc::new(Mutex::new(
            File::options().create(true).append(true).open(log_path)?,
        ));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("{name}: cannot start {:?}: {error}", command.get_program()),
            )
        })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(spawn_reader(
                stdout,
                Arc::clone(&lines),
                Arc::clone(&arrivals),
                Arc::clone(&log),
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(spawn_reader(
                stderr,
                Arc::clone(&lines),
                Arc::clone(&arrivals),
                Arc::clone(&log),
            ));
        }
        Ok(LoggedChild {
            name: name.to_owned(),
            child,
            lines,
            arrivals,
            log_path: log_path.to_owned(),
            readers,
            exit_status: None,
        })
    }

    /// The process id of the group leader (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file the output is written to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A snapshot of every output line captured so far (stdout and stderr interleaved).
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).clone()
    }

    /// A snapshot of every output line so far with the moment the harness read it.
    pub fn timed_lines(&self) -> Vec<(Instant, String)> {
        let lines = lock(&self.lines);
        let arrivals = lock(&self.arrivals);
        arrivals
            .iter()
            .copied()
            .zip(lines.iter().cloned())
            .collect()
    }

    /// When the harness first saw a line matching `predicate`, if it has.
    pub fn first_seen(&self, mut predicate: impl FnMut(&str) -> bool) -> Option<Instant> {
        let lines = lock(&self.lines);
        let arrivals = lock(&self.arrivals);
        let index = lines.iter().position(|line| predicate(line))?;
        arrivals.get(index).copied()
    }

    /// The last `count` captured lines joined with newlines, for error messages.
    pub fn tail(&self, count: usize) -> String {
        let lines = lock(&self.lines);
        let start = lines.len().saturating_sub(count);
        lines[start..].join("\n")
    }

    /// Returns the exit status if the process has exited, without blocking.
    pub fn try_exit_status(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.exit_status.is_none() {
            self.exit_status = self.child.try_wait()?;
        }
        Ok(self.exit_status)
    }

    /// Waits until `predicate` holds for the captured lines, or `timeout` passes. Returns whether
    /// the predicate held.
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut(&[String]) -> bool,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if predicate(&lock(&self.lines)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// An error of `kind` that names the process and carries the tail of its output.
    pub fn error(&self, kind: io::ErrorKind, what: &str) -> io::Error {
        io::Error::new(
            kind,
            format!(
                "{}: {what}\n--- last output lines (full log: {}) ---\n{}",
                self.name,
                self.log_path.display(),
                self.tail(40)
            ),
        )
    }

    /// Stops the process: SIGTERM to the leader, then SIGKILL to the whole group if it has not
    /// exited within `grace`. Waits for the leader, then sweeps the group with SIGKILL so no
    /// forked worker survives. Idempotent.
    pub fn stop(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        let status = match self.try_exit_status()? {
            Some(status) => status,
            None => {
                signal(self.pid(), libc::SIGTERM, false);
                let deadline = Instant::now() + grace;
                loop {
                    if let Some(status) = self.try_exit_status()? {
                        break status;
                    }
                    if Instant::now() >= deadline {
                        signal(self.pid(), libc::SIGKILL, true);
                        let status = self.child.wait()?;
                        self.exit_status = Some(status);
                        break status;
                    }
                    thread::sleep(POLL_INTERVAL);
                }
            }
        };
        // Workers that outlived their parent still belong to the group.
        signal(self.pid(), libc::SIGKILL, true);
        for reader in self.readers.drain(..) {
            // The pipes close once every process in the group is gone; a panicking reader only
            // loses log lines, which is not worth failing the stop for.
            let _ = reader.join();
        }
        Ok(status)
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        if let Err(error) = self.stop(Duration::from_secs(3)) {
            eprintln!("{}: stopping failed: {error}", self.name);
        }
    }
}

/// Sends `signal_number` to the process `pid`, or to its whole process group when `group`.
/// A process (group) that is already gone is not an error.
fn signal(pid: u32, signal_number: libc::c_int, group: bool) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) has no memory-safety preconditions; the target is a process (group) this
    // harness spawned itself.
    unsafe {
        libc::kill(target, signal_number);
    }
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    log: Arc<Mutex<File>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer);
                    let line = line.trim_end_matches(['\r', '\n']).to_owned();
                    {
                        let mut file = lock(&log);
                        let _ = writeln!(file, "{line}");
                    }
                    // Lock order lines → arrivals everywhere, so index i of both match.
                    let mut lines = lock(&lines);
                    lock(&arrivals).push(Instant::now());
                    lines.push(line);
                }
            }
        }
    })
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the data is plain lines).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Processes that are still alive (not zombies) in the process group `pgid`, read from `/proc`.
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the parenthesised command: state, ppid, pgrp, …
            let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let group = fields.nth(1).and_then(|field| field.parse::<u32>().ok());
            state != Some("Z") && group == Some(pgid)
        })
        .collect()
}
