//! coturn (Debian's `coturn`, binary `turnserver`) as the TURN server of WebRTC tests, on
//! loopback only.
//!
//! [`Coturn::start`] writes a configuration into a temporary directory and runs `turnserver`
//! in the foreground: UDP and TCP on `127.0.0.1` and a free port, relay addresses on
//! `127.0.0.1` from a small range of free ports (so a test can tell a relayed address from
//! any other), long-term credentials with one static user, one realm, no TLS/DTLS listeners,
//! no telnet CLI, no multicast peers, loopback peers allowed (both peers of a test are on
//! `127.0.0.1`, which coturn refuses by default), its user database and PID file in the
//! temporary directory, and a verbose log in `turnserver.log` there. It is ready once that
//! log says its UDP listener is open. Dropping it stops the process by its PID
//! ([`LoggedChild`]).
//!
//! The log is read back for what the server did: [`Coturn::allocations`] counts successful
//! ALLOCATE requests, [`Coturn::relay_sessions`] the sessions that relayed data.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::logged_child::LoggedChild;

/// How long `turnserver` may take to open its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many relay ports the server may hand out (two peers need one each per call).
const RELAY_PORTS: u16 = 16;

/// The user name of the static TURN user.
pub const TURN_USER: &str = "callisto";

/// That user's password.
pub const TURN_PASSWORD: &str = "turn-secret";

/// The realm of the long-term credentials.
pub const TURN_REALM: &str = "callisto.test";

/// A running coturn on loopback.
pub struct Coturn {
    child: LoggedChild,
    port: u16,
    relay_ports: RangeInclusive<u16>,
    log_path: PathBuf,
    dir: TempDir,
}

impl Coturn {
    /// Starts `turnserver` with the static user [`TURN_USER`]:[`TURN_PASSWORD`] and waits
    /// until it listens. A missing `turnserver` is an error naming the install step.
    pub fn start() -> io::Result<Coturn> {
        let dir = tempfile::Builder::new()
            .prefix("callisto-coturn-")
            .tempdir()?;
        let port = super::free_port();
        let first_relay = super::free_port_run(RELAY_PORTS);
        let relay_ports = first_relay..=first_relay + RELAY_PORTS - 1;
        let log_path = dir.path().join("turnserver.log");
        let config_path = dir.path().join("turnserver.conf");
        fs::write(
            &config_path,
            config_text(port, &relay_ports, dir.path(), &log_path),
        )?;
        let binary = turnserver_binary()?;
        let mut command = Command::new(binary);
        command.arg("-c").arg(&config_path);
        let child = LoggedChild::spawn("turnserver", command, &dir.path().join("stdout.log"))?;
        let coturn = Coturn {
            child,
            port,
            relay_ports,
            log_path,
            dir,
        };
        coturn.wait_until_listening()?;
        Ok(coturn)
    }

    fn wait_until_listening(&self) -> io::Result<()> {
        let listening = format!("UDP listener opened on: 127.0.0.1:{}", self.port);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self
                .log_lines()
                .iter()
                .any(|line| line.contains(&listening))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "turnserver did not open 127.0.0.1:{} within {START_TIMEOUT:?}\n{}\n{}",
                        self.port,
                        self.log_tail(30),
                        self.child.tail(20)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's UDP (and TCP) port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `turn:` URL of the server, UDP transport.
    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    /// The `callisto` flags that send a session's media only through this server, as
    /// [`TURN_USER`] with `password`.
    pub fn relay_only_flags(&self, password: &str) -> Vec<String> {
        vec![
            "--turn".into(),
            self.url(),
            "--turn-user".into(),
            TURN_USER.into(),
            "--turn-password".into(),
            password.into(),
            "--relay-only".into(),
        ]
    }

    /// The ports relay addresses are allocated from.
    pub fn relay_ports(&self) -> RangeInclusive<u16> {
        self.relay_ports.clone()
    }

    /// Whether `address` is one this server relays on (127.0.0.1, a relay port).
    pub fn is_relay_address(&self, address: SocketAddr) -> bool {
        address.ip().is_loopback() && self.relay_ports.contains(&address.port())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The temporary directory with the configuration, database and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every line of the server's log so far.
    pub fn log_lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log_path)
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The last `count` lines of the log, for error messages.
    pub fn log_tail(&self, count: usize) -> String {
        let lines = self.log_lines();
        lines[lines.len().saturating_sub(count)..].join("\n")
    }

    /// How many ALLOCATE requests succeeded (one per relay candidate gathered).
    pub fn allocations(&self) -> usize {
        count_allocations(&self.log_lines())
    }

    /// How many sessions relayed data: sessions whose closing report counts received and
    /// sent peer packets (`peer usage: rp=…, sp=…`, both above zero).
    pub fn relay_sessions(&self) -> usize {
        count_relaying_sessions(&self.log_lines())
    }
}

/// The configuration file's text.
fn config_text(
    port: u16,
    relay_ports: &RangeInclusive<u16>,
    dir: &Path,
    log_path: &Path,
) -> String {
    format!(
        "listening-ip=127.0.0.1\n\
         relay-ip=127.0.0.1\n\
         listening-port={port}\n\
         min-port={min}\n\
         max-port={max}\n\
         lt-cred-mech\n\
         user={TURN_USER}:{TURN_PASSWORD}\n\
         realm={TURN_REALM}\n\
         allow-loopback-peers\n\
         no-tls\n\
         no-dtls\n\
         no-cli\n\
         no-multicast-peers\n\
         fingerprint\n\
         verbose\n\
         simple-log\n\
         log-file={log}\n\
         pidfile={pid}\n\
         userdb={db}\n",
        min = relay_ports.start(),
        max = relay_ports.end(),
        log = log_path.display(),
        pid = dir.join("turnserver.pid").display(),
        db = dir.join("turndb").display(),
    )
}

/// `turnserver` on PATH or in /usr/bin.
fn turnserver_binary() -> io::Result<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("turnserver"));
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "turnserver not found: install Debian's coturn (scripts/install-deps.sh test)",
    ))
}

/// Successful ALLOCATE requests in a coturn log.
pub fn count_allocations(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|line| line.contains("ALLOCATE processed, success"))
        .count()
}

/// Sessions whose usage report shows peer packets both ways.
pub fn count_relaying_sessions(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|line| line.contains("peer usage:"))
        .filter(|line| field(line, "rp=") > 0 && field(line, "sp=") > 0)
        .count()
}

/// The number after `name` in a log line (0 when absent).
fn field(line: &str, name: &str) -> u64 {
    line.split_once(name)
        .map(|(_, rest)| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}
