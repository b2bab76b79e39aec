//! baresip as a second user agent in integration tests.
//!
//! [`Baresip::start`] writes a `config` and an `accounts` file into a temporary directory and
//! runs `baresip -f <dir>` in the foreground on 127.0.0.1, with output captured. The default
//! module set is the minimum needed to register (G.711 and the `account` loader). For calls,
//! [`super::baresip_phone::PhoneConfig`] builds a config with audio from a WAV file, recording,
//! codecs, SRTP and the `cons` console; [`super::baresip_phone`] also holds the commands
//! (`dial`, `answer`, …) and [`super::baresip_events`] the events parsed from the log.
//!
//! baresip listens for SIP on `sip_port` (UDP and TCP) and for TLS on `sip_port + 1`;
//! [`BaresipConfig::new`] reserves both.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port_run;
use super::logged_child::LoggedChild;

/// How long [`Baresip::start`] waits for `baresip is ready.`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// baresip unregisters on SIGTERM before exiting; this is how long it gets.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How a baresip instance is set up.
#[derive(Debug, Clone)]
pub struct BaresipConfig {
    /// SIP port on 127.0.0.1 (UDP and TCP); TLS uses the next port.
    pub sip_port: u16,
    /// Lines of the `accounts` file, e.g.
    /// `<sip:alice@127.0.0.1:5060;transport=udp>;auth_pass=secret;regint=60`.
    pub accounts: Vec<String>,
    /// Modules loaded with `module` (codecs, sources, sinks).
    pub modules: Vec<String>,
    /// Modules loaded with `module_app` (account loader, control interfaces).
    pub app_modules: Vec<String>,
    /// Further `config` lines, appended verbatim.
    pub extra_config: Vec<String>,
    /// Port of the `cons` console on 127.0.0.1 (UDP and TCP), which takes `menu` commands
    /// (`/dial …`); `None` loads neither module.
    pub cons_port: Option<u16>,
    /// Record what each call sends and hears with `sndfile`, into [`Baresip::recordings_dir`].
    pub record: bool,
}

impl BaresipConfig {
    /// A config with fresh ports, no accounts, and the modules needed to register.
    pub fn new() -> BaresipConfig {
        BaresipConfig {
            sip_port: free_port_run(2),
            accounts: Vec::new(),
            modules: vec!["g711.so".to_owned()],
            app_modules: vec!["account.so".to_owned()],
            extra_config: Vec::new(),
            cons_port: None,
            record: false,
        }
    }

    /// A config with one account that registers `user`/`password` with the registrar at
    /// `127.0.0.1:registrar_port` over UDP every `regint` seconds.
    pub fn registering(user: &str, password: &str, registrar_port: u16, regint: u32) -> Self {
        let mut config = BaresipConfig::new();
        config.accounts.push(format!(
            "<sip:{user}@127.0.0.1:{registrar_port};transport=udp>;auth_pass={password};regint={regint}"
        ));
        config
    }

    fn render(&self, dir: &Path) -> String {
        let mut config = String::new();
        let _ = writeln!(config, "poll_method\t\tepoll");
        let _ = writeln!(config, "sip_listen\t\t127.0.0.1:{}", self.sip_port);
        let _ = writeln!(config, "sip_trans_def\t\tudp");
        let _ = writeln!(config, "net_interface\t\t127.0.0.1");
        // Media ports apart from the ones the harness hands out (see `free_port_run`).
        let (low, high) = super::BARESIP_RTP_PORTS;
        let _ = writeln!(config, "rtp_ports\t\t{low}-{high}");
        let _ = writeln!(config, "dns_server\t\t127.0.0.1:53");
        let _ = writeln!(config, "module_path\t\t{}", module_path().display());
        for module in &self.modules {
            let _ = writeln!(config, "module\t\t\t{module}");
        }
        if self.record {
            let _ = writeln!(config, "module\t\t\tsndfile.so");
            let _ = writeln!(config, "snd_path\t\t{}", recordings_dir(dir).display());
        }
        if let Some(port) = self.cons_port {
            let _ = writeln!(config, "module\t\t\tcons.so");
            let _ = writeln!(config, "cons_listen\t\t127.0.0.1:{port}");
        }
        for module in &self.app_modules {
            let _ = writeln!(config, "module_app\t\t{module}");
        }
        if self.cons_port.is_some() {
            // The commands cons forwards are menu's; without the status line, every event
            // stays on a line of its own.
            let _ = writeln!(config, "module_app\t\tmenu.so");
            let _ = writeln!(config, "statmode_default\toff");
        }
        for line in &self.extra_config {
            let _ = writeln!(config, "{line}");
        }
        config
    }
}

impl Default for BaresipConfig {
    fn default() -> Self {
        BaresipConfig::new()
    }
}

/// A running baresip. Dropping it stops the process.
pub struct Baresip {
    config: BaresipConfig,
    dir: TempDir,
    child: LoggedChild,
    started_at: Instant,
    /// Connected to the `cons` port, if there is one.
    pub(super) cons: Option<UdpSocket>,
}

impl Baresip {
    /// Writes `config` and `accounts`, starts baresip and waits for `baresip is ready.`.
    pub fn start(config: BaresipConfig) -> io::Result<Baresip> {
        let binary = baresip_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("callisto-baresip-")
            .tempdir()?;
        fs::write(dir.path().join("config"), config.render(dir.path()))?;
        if config.record {
            fs::create_dir_all(recordings_dir(dir.path()))?;
        }
        let mut accounts = config.accounts.join("\n");
        accounts.push('\n');
        fs::write(dir.path().join("accounts"), accounts)?;
        let mut command = Command::new(binary);
        command.arg("-f").arg(dir.path()).current_dir(dir.path());
        let started_at = Instant::now();
        let log_path = dir.path().join("baresip.log");
        let mut child = LoggedChild::spawn("baresip", command, &log_path)?;
        let ready = child.wait_for(
            |lines| lines.iter().any(|line| line.contains("baresip is ready.")),
            STARTUP_TIMEOUT,
        );
        if !ready {
            let what = match child.try_exit_status()? {
                Some(status) => format!("exited during startup with {status}"),
                None => format!("not ready after {STARTUP_TIMEOUT:?}"),
            };
            let error = child.error(io::ErrorKind::Other, &what);
            drop(child);
            // Keep the config and log for whoever reads the failure.
            let mut dir = dir;
            dir.disable_cleanup(true);
            return Err(error);
        }
        let cons = match config.cons_port {
            Some(port) => {
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.connect(("127.0.0.1", port))?;
                socket.set_nonblocking(true)?;
                Some(socket)
            }
            None => None,
        };
        Ok(Baresip {
            config,
            dir,
            child,
            started_at,
            cons,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &BaresipConfig {
        &self.config
    }

    /// The config directory (holds `config`, `accounts` and `baresip.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PID of the process.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Where `sndfile` writes its recordings when [`BaresipConfig::record`] is set.
    pub fn recordings_dir(&self) -> PathBuf {
        recordings_dir(self.dir.path())
    }

    /// Every output line so far with the moment the harness read it.
    pub fn timed_log_lines(&self) -> Vec<(Instant, String)> {
        self.child.timed_lines()
    }

    /// An error of `kind` that names baresip and carries the tail of its log.
    pub fn error(&self, kind: io::ErrorKind, what: &str) -> io::Error {
        self.child.error(kind, what)
    }

    /// When the process was spawned.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// Every output line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.child.lines()
    }

    /// The last output lines, for assertion messages.
    pub fn log_tail(&self, count: usize) -> String {
        self.child.tail(count)
    }

    /// Waits until `predicate` holds for the output lines, or `timeout` passes.
    pub fn wait_for(&self, predicate: impl FnMut(&[String]) -> bool, timeout: Duration) -> bool {
        self.child.wait_for(predicate, timeout)
    }

    /// When the harness first saw an output line matching `predicate`.
    pub fn first_seen(&self, predicate: impl FnMut(&str) -> bool) -> Option<Instant> {
        self.child.first_seen(predicate)
    }

    /// Waits for the first `200 OK` registration line and returns the time from spawning
    /// baresip to the moment the harness saw that line.
    pub fn wait_for_registered(&self, timeout: Duration) -> io::Result<Duration> {
        let registered = |lines: &[String]| lines.iter().any(|line| is_registered_line(line));
        let seen = if self.child.wait_for(registered, timeout) {
            self.child.first_seen(is_registered_line)
        } else {
            None
        };
        if let Some(seen) = seen {
            Ok(seen.duration_since(self.started_at))
        } else {
            Err(self.child.error(
                io::ErrorKind::TimedOut,
                &format!("no `200 OK` registration line within {timeout:?}"),
            ))
        }
    }

    /// Stops baresip (SIGTERM, SIGKILL after a grace period) and waits for it.
    pub fn stop(&mut self) -> io::Result<()> {
        self.child.stop(STOP_GRACE).map(drop)
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("baresip: stopping failed: {error}");
        }
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "baresip: config and log kept in {}",
                self.dir.path().display()
            );
        }
    }
}

/// Whether `line` is baresip's report of a successful registration, e.g.
/// `alice@127.0.0.1: {0/UDP/v4} 200 OK (server) [1 binding]`.
pub fn is_registered_line(line: &str) -> bool {
    line.contains("} 200 OK") && line.contains("binding")
}

/// Finds the baresip binary: `$BARESIP`, then `PATH`, then `/usr/bin`.
pub fn baresip_binary() -> io::Result<PathBuf> {
    if let Some(path) = env::var_os("BARESIP") {
        return Ok(PathBuf::from(path));
    }
    env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("baresip"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "baresip is not installed (looked in $BARESIP, PATH, /usr/bin); \
                 install the test peers with `scripts/install-deps.sh test`",
            )
        })
}

fn recordings_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("recordings")
}

/// Where Debian installs baresip's modules (`$BARESIP_MODULES` overrides).
fn module_path() -> PathBuf {
    env::var_os("BARESIP_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/baresip/modules"))
}
