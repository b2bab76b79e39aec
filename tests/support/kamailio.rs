//! Kamailio as a real registrar/proxy for integration tests.
//!
//! [`Kamailio::start`] writes a `kamailio.cfg` (see [`super::kamailio_cfg`]) and a test PKI into
//! a temporary directory, runs `kamailio -DD -E` in the foreground on 127.0.0.1 only, and waits
//! until it answers an OPTIONS over UDP and accepts TCP (and TLS) connections. Its output is
//! captured; the marker lines it logs for REGISTER requests are parsed into
//! [`RegisterLogLine`], [`SavedLogLine`] and [`BindingLogLine`].
//!
//! A missing `kamailio` binary is an error that names the fix (`scripts/install-deps.sh test`);
//! tests propagate it and fail, they never skip.

use std::env;
use std::fs;
use std::io;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port;
use super::kamailio_cfg::{self, TlsFiles, BINDING_MARKER, REGISTER_MARKER, SAVED_MARKER};
use super::logged_child::LoggedChild;
use super::pki::TestPki;

/// How long [`Kamailio::start`] waits for the listeners.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping Kamailio gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The digest algorithm Kamailio challenges with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestAlgorithm {
    /// RFC 2617 MD5 (Kamailio's default; the challenge carries no `algorithm` parameter).
    #[default]
    Md5,
    /// RFC 8760 SHA-256 (`modparam("auth", "algorithm", "SHA-256")`).
    Sha256,
}

/// How the test Kamailio is set up. [`Default`] picks free loopback ports and one user,
/// `alice` / `secret`.
#[derive(Debug, Clone)]
pub struct KamailioConfig {
    /// UDP port on 127.0.0.1.
    pub udp_port: u16,
    /// TCP port on 127.0.0.1 (by default the same number as `udp_port`).
    pub tcp_port: u16,
    /// TLS port on 127.0.0.1, or `None` for no TLS listener.
    pub tls_port: Option<u16>,
    /// Plain WebSocket (`ws://`) port on 127.0.0.1, or `None`. SIP over WebSocket is accepted
    /// on it (RFC 7118), with NAT fix-ups for the `.invalid` contacts browsers use.
    pub ws_port: Option<u16>,
    /// Secure WebSocket (`wss://`) port on 127.0.0.1, or `None`: a TLS listener with the test
    /// PKI's server certificate whose HTTP upgrades are handled like `ws_port`'s.
    pub wss_port: Option<u16>,
    /// Users and their plain-text passwords, seeded into the `users` htable at startup.
    pub users: Vec<(String, String)>,
    /// Registrar `min_expires`: shorter requested intervals are raised to it (or rejected with
    /// 423 when `reject_brief_expires`).
    pub min_expires: u32,
    /// Registrar `default_expires`: used when a REGISTER asks for no interval.
    pub default_expires: u32,
    /// Registrar `max_expires`: longer requested intervals are lowered to it.
    pub max_expires: u32,
    /// Answer 423 Interval Too Brief (with Min-Expires) instead of raising short intervals.
    pub reject_brief_expires: bool,
    /// Digest algorithm of the challenges.
    pub digest_algorithm: DigestAlgorithm,
    /// Challenge (407) initial non-REGISTER requests whose From user is a local user.
    pub authenticate_calls: bool,
    /// Present a self-signed server certificate on TLS instead of one issued by the test CA, so
    /// clients that trust only [`Kamailio::ca_pem_path`] must reject it.
    pub tls_self_signed: bool,
    /// Kamailio `debug` level (2 = info; the marker lines are notices and always show).
    pub debug_level: i32,
    /// The Kamailio binary to run; `None` looks it up (see [`kamailio_binary`]).
    pub binary: Option<PathBuf>,
}

impl KamailioConfig {
    /// A proxy for browsers: a WebSocket listener (no TLS) and the users alice and bob, whose
    /// passwords are `alice-secret` and `bob-secret`.
    pub fn websocket_for_alice_and_bob() -> KamailioConfig {
        KamailioConfig {
            ws_port: Some(free_port()),
            tls_port: None,
            users: vec![
                ("alice".to_owned(), "alice-secret".to_owned()),
                ("bob".to_owned(), "bob-secret".to_owned()),
            ],
            ..KamailioConfig::default()
        }
    }
}

impl Default for KamailioConfig {
    fn default() -> Self {
        let port = free_port();
        KamailioConfig {
            udp_port: port,
            tcp_port: port,
            tls_port: Some(free_port()),
            ws_port: None,
            wss_port: None,
            users: vec![("alice".to_owned(), "secret".to_owned())],
            min_expires: 30,
            default_expires: 120,
            max_expires: 300,
            reject_brief_expires: false,
            digest_algorithm: DigestAlgorithm::Md5,
            authenticate_calls: false,
            tls_self_signed: false,
            debug_level: 2,
            binary: None,
        }
    }
}

/// One `CALLISTO-REG` line: a REGISTER as Kamailio received it, before authentication.
/// Header values Kamailio reported as absent are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterLogLine {
    /// The From URI.
    pub from: String,
    /// The To URI (the address of record).
    pub to: String,
    /// The Contact header value (`*` for unregister-all).
    pub contact: Option<String>,
    /// The Expires header value.
    pub expires: Option<String>,
    /// The source `ip:port`.
    pub source: String,
    /// The transport: `udp`, `tcp`, `tls`, `ws`, `wss`.
    pub proto: String,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// The Authorization header value, if the request carried credentials.
    pub authorization: Option<String>,
    /// When Kamailio received the request: microseconds of its clock.
    pub at: Option<u64>,
}

/// One `CALLISTO-SAVED` line: a REGISTER that was authenticated and saved (including
/// unregistrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedLogLine {
    /// The address of record.
    pub aor: String,
    /// The Contact header value of the request.
    pub contact: Option<String>,
    /// The Expires header value of the request.
    pub expires: Option<String>,
    /// When Kamailio saved the binding: microseconds of its clock.
    pub at: Option<u64>,
}

/// One `CALLISTO-BINDING` line: a binding the AOR had right after a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingLogLine {
    /// The address of record.
    pub aor: String,
    /// The bound contact URI.
    pub contact: String,
    /// Seconds until the binding expires, as granted by the registrar.
    pub expires_in: i64,
}

/// A running Kamailio. Dropping it stops the process group.
pub struct Kamailio {
    config: KamailioConfig,
    dir: TempDir,
    pki: Option<TestPki>,
    config_path: PathBuf,
    child: Option<LoggedChild>,
    /// Lines of earlier runs (before [`Kamailio::restart`]); kept so a log shows everything.
    earlier_lines: Vec<String>,
    binary: PathBuf,
}

impl Kamailio {
    /// Writes the config and PKI, starts Kamailio, and waits until it serves every listener.
    pub fn start(config: KamailioConfig) -> io::Result<Kamailio> {
        let binary = match &config.binary {
            Some(binary) => binary.clone(),
            None => kamailio_binary()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("callisto-kamailio-")
            .tempdir()?;
        let pki = match (config.tls_port, config.wss_port) {
            (None, None) => None,
            _ => Some(TestPki::generate(dir.path(), config.tls_self_signed)?),
        };
        let tls_files = pki.as_ref().map(|pki| TlsFiles {
            certificate: &pki.server_cert_pem,
            private_key: &pki.server_key_pem,
        });
        let config_path = dir.path().join("kamailio.cfg");
        fs::write(
            &config_path,
            kamailio_cfg::render(&config, tls_files.as_ref()),
        )?;
        let mut kamailio = Kamailio {
            config,
            dir,
            pki,
            config_path,
            child: None,
            earlier_lines: Vec::new(),
            binary: PathBuf::new(),
        };
        kamailio.binary = binary;
        if let Err(error) = kamailio.launch() {
            // Keep the config and log of a process that ran, for whoever reads the failure.
            if kamailio.child.is_some() {
                kamailio.dir.disable_cleanup(true);
            }
            return Err(error);
        }
        Ok(kamailio)
    }

    fn launch(&mut self) -> io::Result<()> {
        let runtime_dir = self.dir.path().join("run");
        fs::create_dir_all(&runtime_dir)?;
        let mut command = Command::new(&self.binary);
        command
            .arg("-DD")
            .arg("-E")
            .arg("-f")
            .arg(&self.config_path)
            .arg("-Y")
            .arg(&runtime_dir)
            .arg("-P")
            .arg(runtime_dir.join("kamailio.pid"))
            .arg("-w")
            .arg(self.dir.path())
            .args(["-m", "64", "-M", "8"])
            .current_dir(self.dir.path());
        let child = LoggedChild::spawn("kamailio", command, &self.log_path())?;
        self.child = Some(child);
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut tcp_ports = vec![self.config.tcp_port];
        tcp_ports.extend(self.config.tls_port);
        tcp_ports.extend(self.config.ws_port);
        tcp_ports.extend(self.config.wss_port);
        let probe = UdpSocket::bind("127.0.0.1:0")?;
        probe.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut udp_ready = false;
        let mut attempt = 0u32;
        loop {
            let child = self.child_mut()?;
            if let Some(status) = child.try_exit_status()? {
                // Let the readers collect the last words before quoting them.
                std::thread::sleep(Duration::from_millis(100));
                return Err(child.error(
                    io::ErrorKind::Other,
                    &format!("kamailio exited during startup with {status}"),
                ));
            }
            if !udp_ready {
                attempt += 1;
                udp_ready = options_ping(&probe, self.config.udp_port, attempt)?;
            }
            if udp_ready {
                tcp_ports.retain(|port| TcpStream::connect(("127.0.0.1", *port)).is_err());
                if tcp_ports.is_empty() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(self.child_mut()?.error(
                    io::ErrorKind::TimedOut,
                    &format!(
                        "not ready after {STARTUP_TIMEOUT:?} (UDP answered: {udp_ready}, TCP ports still closed: {tcp_ports:?})"
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn child_mut(&mut self) -> io::Result<&mut LoggedChild> {
        self.child
            .as_mut()
            .ok_or_else(|| io::Error::other("kamailio is not running"))
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &KamailioConfig {
        &self.config
    }

    /// The WebSocket listener's URL, `ws://127.0.0.1:PORT` (port 0 when there is none).
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.config.ws_port.unwrap_or_default())
    }

    /// `sip:127.0.0.1:<udp_port>`: the registrar URI for UDP.
    pub fn udp_uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.config.udp_port)
    }

    /// The test CA certificate clients should trust, if TLS is enabled.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.pki.as_ref().map(|pki| pki.ca_pem.as_path())
    }

    /// The test PKI, if TLS is enabled.
    pub fn pki(&self) -> Option<&TestPki> {
        self.pki.as_ref()
    }

    /// The directory holding the config, certificates and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated `kamailio.cfg`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The log file (stdout and stderr of every run).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.log")
    }

    /// The PID of the main process, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(LoggedChild::pid)
    }

    /// Every output line of the current run.
    pub fn log_lines(&self) -> Vec<String> {
        self.child
            .as_ref()
            .map(LoggedChild::lines)
            .unwrap_or_default()
    }

    /// Every output line of all runs, including those before a [`Kamailio::restart`].
    pub fn all_log_lines(&self) -> Vec<String> {
        let mut lines = self.earlier_lines.clone();
        lines.extend(self.log_lines());
        lines
    }

    /// The REGISTER requests received in the current run, in arrival order.
    pub fn registers(&self) -> Vec<RegisterLogLine> {
        self.log_lines()
            .iter()
            .filter_map(|line| parse_register_line(line))
            .collect()
    }

    /// The REGISTER requests saved (authenticated and accepted) in the current run.
    pub fn saved(&self) -> Vec<SavedLogLine> {
        self.log_lines()
            .iter()
            .filter_map(|line| parse_saved_line(line))
            .collect()
    }

    /// The bindings reported after each save in the current run, in log order.
    pub fn bindings(&self) -> Vec<BindingLogLine> {
        self.log_lines()
            .iter()
            .filter_map(|line| parse_binding_line(line))
            .collect()
    }

    /// Waits until `predicate` holds for the current run's output lines, or `timeout` passes.
    /// Returns whether it held.
    pub fn wait_for(&self, predicate: impl FnMut(&[String]) -> bool, timeout: Duration) -> bool {
        match &self.child {
            Some(child) => child.wait_for(predicate, timeout),
            None => false,
        }
    }

    /// Waits until at least `count` REGISTER requests were saved in the current run.
    pub fn wait_for_saved(&self, count: usize, timeout: Duration) -> bool {
        self.wait_for(
            |lines| {
                lines
                    .iter()
                    .filter(|line| line.contains(SAVED_MARKER))
                    .count()
                    >= count
            },
            timeout,
        )
    }

    /// When the harness first saw a current-run output line matching `predicate`.
    pub fn first_seen(&self, predicate: impl FnMut(&str) -> bool) -> Option<Instant> {
        self.child.as_ref()?.first_seen(predicate)
    }

    /// The last output lines, for assertion messages.
    pub fn log_tail(&self, count: usize) -> String {
        self.child
            .as_ref()
            .map(|child| child.tail(count))
            .unwrap_or_default()
    }

    /// Stops Kamailio (SIGTERM, SIGKILL after a grace period) and waits for it. Idempotent.
    pub fn stop(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.stop(STOP_GRACE)?;
            self.earlier_lines.extend(child.lines());
        }
        Ok(())
    }

    /// Stops and starts again with the same config, ports and certificates; in-memory state
    /// (registrations, nonces) starts empty.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        self.launch()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("kamailio: stopping failed: {error}");
        }
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "kamailio: config and log kept in {}",
                self.dir.path().display()
            );
        }
    }
}

/// Finds the Kamailio binary: `$KAMAILIO`, then `PATH`, then `/usr/sbin` and `/sbin` (not on
/// the `PATH` of unprivileged users on Debian).
pub fn kamailio_binary() -> io::Result<PathBuf> {
    if let Some(path) = env::var_os("KAMAILIO") {
        return Ok(PathBuf::from(path));
    }
    let path_dirs = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("kamailio"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "kamailio is not installed (looked in $KAMAILIO, PATH, /usr/sbin, /sbin); \
                 install the test peers with `scripts/install-deps.sh test`",
            )
        })
}

/// Sends one OPTIONS to Kamailio's UDP port and reports whether a 200 came back in time.
fn options_ping(socket: &UdpSocket, port: u16, attempt: u32) -> io::Result<bool> {
    let local = socket.local_addr()?;
    let request = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{attempt};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:harness@127.0.0.1>;tag=ready\r\n\
         To: <sip:127.0.0.1:{port}>\r\n\
         Call-ID: ready-{attempt}@127.0.0.1\r\n\
         CSeq: {attempt} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(request.as_bytes(), ("127.0.0.1", port))?;
    let mut buffer = [0u8; 4096];
    match socket.recv(&mut buffer) {
        Ok(len) => Ok(buffer
            .get(..len)
            .is_some_and(|reply| reply.starts_with(b"SIP/2.0 200"))),
        // Nothing listening yet (ICMP port unreachable) or no answer within the read timeout.
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Splits the `key=value|key=value…` part after `marker` into fields. `last_key`'s value runs
/// to the end of the line (it may contain `|`).
pub(super) fn marker_fields<'a>(
    line: &'a str,
    marker: &str,
    last_key: &str,
) -> Option<Vec<(&'a str, &'a str)>> {
    let start = line.find(marker)? + marker.len();
    let body = line.get(start..)?;
    let (head, last) = match body.find(&format!("|{last_key}=")) {
        Some(index) => (body.get(..index)?, body.get(index + 1..)),
        None if body.starts_with(&format!("{last_key}=")) => ("", Some(body)),
        None => (body, None),
    };
    let mut fields: Vec<(&str, &str)> = head
        .split('|')
        .filter(|field| !field.is_empty())
        .filter_map(|field| field.split_once('='))
        .collect();
    if let Some(last) = last {
        fields.extend(last.split_once('='));
    }
    Some(fields)
}

pub(super) fn field<'a>(fields: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| *value)
}

/// A field Kamailio may print as `<null>` when the header is absent.
pub(super) fn optional_field(fields: &[(&str, &str)], key: &str) -> Option<String> {
    field(fields, key)
        .filter(|value| *value != "<null>" && !value.is_empty())
        .map(str::to_owned)
}

/// Kamailio's `$TV(Sn)`, `seconds.microseconds`, as microseconds.
fn parse_microseconds(text: &str) -> Option<u64> {
    let (seconds, micros) = text.split_once('.')?;
    let micros: u64 = format!("{micros:0<6}").get(..6)?.parse().ok()?;
    Some(seconds.parse::<u64>().ok()? * 1_000_000 + micros)
}

/// Parses a `CALLISTO-REG` line; other lines give `None`.
pub fn parse_register_line(line: &str) -> Option<RegisterLogLine> {
    let fields = marker_fields(line, REGISTER_MARKER, "auth")?;
    Some(RegisterLogLine {
        from: field(&fields, "from")?.to_owned(),
        to: field(&fields, "to")?.to_owned(),
        contact: optional_field(&fields, "contact"),
        expires: optional_field(&fields, "expires"),
        source: field(&fields, "src")?.to_owned(),
        proto: field(&fields, "proto")?.to_owned(),
        call_id: field(&fields, "callid")?.to_owned(),
        cseq: field(&fields, "cseq")?.parse().ok()?,
        authorization: optional_field(&fields, "auth"),
        at: field(&fields, "t").and_then(parse_microseconds),
    })
}

/// Parses a `CALLISTO-SAVED` line; other lines give `None`.
pub fn parse_saved_line(line: &str) -> Option<SavedLogLine> {
    let fields = marker_fields(line, SAVED_MARKER, "expires")?;
    Some(SavedLogLine {
        aor: field(&fields, "aor")?.to_owned(),
        contact: optional_field(&fields, "contact"),
        expires: optional_field(&fields, "expires"),
        at: field(&fields, "t").and_then(parse_microseconds),
    })
}

/// Parses a `CALLISTO-BINDING` line; other lines give `None`.
pub fn parse_binding_line(line: &str) -> Option<BindingLogLine> {
    let fields = marker_fields(line, BINDING_MARKER, "expires_in")?;
    Some(BindingLogLine {
        aor: field(&fields, "aor")?.to_owned(),
        contact: field(&fields, "contact")?.to_owned(),
        expires_in: field(&fields, "expires_in")?.parse().ok()?,
    })
}
