//! The configuration file: accounts, transports and SIP timers, in one TOML file.
//!
//! The file lives in the platform config dir (`~/.config/callisto/callisto.toml` on Linux) unless
//! `--config` names another. It is written atomically: a temporary file beside it, flushed to
//! disk, then renamed over the old one, so a crash leaves either the old or the new file, never a
//! torn one. A file that cannot be read or parsed is reported with its path and the parser's
//! words; it is never silently replaced. [`Config::load`] (the CLI) refuses to go on;
//! [`Config::load_or_quarantine`] (the desktop app) moves the broken file aside to
//! `<name>.corrupt-<unix-seconds>` (never deleting or overwriting it, see [`crate::quarantine`])
//! and starts from the defaults, returning the parser's message for the user.
//!
//! Passwords are stored in the file (it is created readable by its owner only) and never appear
//! in logs: [`Account`]'s `Debug` prints `password: "***"`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::quarantine::MovedAside;

/// Errors reading or writing the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write the configuration file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no platform configuration directory is known; pass --config PATH")]
    NoConfigDir,
    /// The file is not valid and could not be moved aside; it was left in place.
    #[error("the configuration file {path} is not valid ({message}) and cannot be moved aside: {source}")]
    Quarantine {
        path: PathBuf,
        message: String,
        source: std::io::Error,
    },
}

/// What [`Config::load_or_quarantine`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The configuration: the file's, or the defaults when it was moved aside.
    pub config: Config,
    /// Set when the file was not valid: where it went and the parser's message.
    pub quarantined: Option<MovedAside>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub accounts: Vec<Account>,
    pub transport: TransportSettings,
    pub timers: TimerSettings,
    /// The window's device and media choices (its Settings page).
    pub media: MediaSettings,
}

/// One SIP account.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// A short name to pick the account with (`--account work`).
    #[serde(default)]
    pub name: String,
    /// The address of record, `sip:alice@example.org`.
    pub user: String,
    /// The password for digest authentication.
    #[serde(default)]
    pub password: Option<String>,
    /// The user name for digest authentication, when it differs from the AOR's user part.
    #[serde(default)]
    pub auth_user: Option<String>,
    /// Where to send REGISTER: `sip:host[:port][;transport=udp|tcp|tls|ws|wss]`, or a WebSocket
    /// URL `ws[s]://host[:port][/path]`. Default: the AOR's domain.
    #[serde(default)]
    pub registrar: Option<String>,
    /// The HTTP resource of a WebSocket registrar (`/` when unset); a `ws[s]://` registrar URL's
    /// own path wins.
    #[serde(default)]
    pub ws_path: Option<String>,
    /// The expiry to ask for, in seconds.
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// The media path calls offer: `classic` (RTP, SDES-SRTP; the default) or `webrtc`.
    #[serde(default)]
    pub media: Option<String>,
    /// SDES-SRTP on the classic path: `off`, `optional` (the default) or `mandatory`.
    #[serde(default)]
    pub srtp: Option<String>,
    /// A STUN server for the WebRTC path, `stun:host:port`. None by default.
    #[serde(default)]
    pub stun: Option<String>,
    /// A TURN server for the WebRTC path, `turn:host:port`, with its credentials.
    #[serde(default)]
    pub turn: Option<String>,
    #[serde(default)]
    pub turn_user: Option<String>,
    #[serde(default)]
    pub turn_password: Option<String>,
}

fn default_expires() -> u32 {
    3600
}

impl Default for Account {
    /// No user, no password, the registrar from the AOR, an hour's expiry, classic media.
    fn default() -> Self {
        Account {
            name: String::new(),
            user: String::new(),
            password: None,
            auth_user: None,
            registrar: None,
            ws_path: None,
            expires: default_expires(),
            media: None,
            srtp: None,
            stun: None,
            turn: None,
            turn_user: None,
            turn_password: None,
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("auth_user", &self.auth_user)
            .field("registrar", &self.registrar)
            .field("ws_path", &self.ws_path)
            .field("expires", &self.expires)
            .field("media", &self.media)
            .field("srtp", &self.srtp)
            .field("stun", &self.stun)
            .field("turn", &self.turn)
            .field("turn_user", &self.turn_user)
            .field("turn_password", &self.turn_password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Local transports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TransportSettings {
    /// The local address for UDP and TCP; port 0 picks a free one.
    pub listen: SocketAddr,
    /// An extra CA certificate file (PEM) trusted for TLS, beside the system roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Keep-alive interval for NAT bindings and connections, in seconds (0 = off). WebSocket
    /// connections send a WebSocket ping when they have heard nothing for this long.
    pub keepalive_secs: u64,
    /// How long a WebSocket ping waits for its pong before the connection counts as dropped.
    pub ws_pong_timeout_secs: u64,
    /// DNS servers to ask (`["192.0.2.53:53"]`); empty means the system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            tls_ca_file: None,
            keepalive_secs: 25,
            ws_pong_timeout_secs: 10,
            dns_servers: Vec::new(),
        }
    }
}

/// The devices and media the window's calls use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// The microphone: a capture device's id or name; none for the system's default.
    pub input: Option<String>,
    /// The speakers or headset: a playback device's id or name; none for the default.
    pub output: Option<String>,
    /// Where the ringtone plays: a playback device's id or name; none for `output`.
    pub ringer: Option<String>,
    /// The camera's number in the system's list; none for the first.
    pub camera: Option<u32>,
    /// The picture size video calls send, `WIDTHxHEIGHT`.
    pub video_size: String,
    /// The frames per second video calls send.
    pub video_fps: u32,
    /// Audio codecs in order of preference, e.g. `opus, pcmu, pcma`.
    pub codecs: String,
    /// Remove the speakers' sound from what the microphone sends.
    pub echo_cancellation: bool,
    /// Lower steady background noise in what the microphone sends.
    pub noise_suppression: bool,
    /// Keep the microphone's level steady.
    pub gain_control: bool,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            input: None,
            output: None,
            ringer: None,
            camera: None,
            video_size: "640x480".into(),
            video_fps: 30,
            codecs: "opus, pcmu, pcma".into(),
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

/// SIP timers (RFC 3261 §17): T1, T2 and T4 in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TimerSettings {
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
}

impl Default for TimerSettings {
    fn default() -> Self {
        TimerSettings {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

impl TimerSettings {
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }
}

impl Config {
    /// The default location of the file.
    pub fn default_path() -> Result<PathBuf, ConfigError> {
        directories::ProjectDirs::from("org", "Callisto", "callisto")
            .map(|dirs| dirs.config_dir().join("callisto.toml"))
            .ok_or(ConfigError::NoConfigDir)
    }

    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Reads the file like [`Config::load`], but a file that is not valid UTF-8 TOML for this
    /// configuration is moved aside to `<name>.corrupt-<unix-seconds>` and the defaults are
    /// returned with the parser's message. A file that cannot be read at all (permissions, I/O)
    /// is still an error and stays where it is.
    pub fn load_or_quarantine(path: &Path) -> Result<LoadedConfig, ConfigError> {
        Config::load_or_quarantine_at(path, SystemTime::now())
    }

    /// [`Config::load_or_quarantine`] with the time that names a moved-aside file.
    pub(crate) fn load_or_quarantine_at(
        path: &Path,
        now: SystemTime,
    ) -> Result<LoadedConfig, ConfigError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LoadedConfig {
                    config: Config::default(),
                    quarantined: None,
                })
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let parsed = String::from_utf8(bytes)
            .map_err(|e| format!("not UTF-8 text: {e}"))
            .and_then(|text| Config::parse(&text));
        let message = match parsed {
            Ok(config) => {
                return Ok(LoadedConfig {
                    config,
                    quarantined: None,
                })
            }
            Err(message) => message,
        };
        let moved_to = crate::quarantine::move_aside(path, now, &[]).map_err(|source| {
            ConfigError::Quarantine {
                path: path.to_path_buf(),
                message: message.clone(),
                source,
            }
        })?;
        tracing::warn!(
            broken = %path.display(),
            moved_to = %moved_to.display(),
            %message,
            "the configuration file is not valid; moved it aside and started from the defaults"
        );
        Ok(LoadedConfig {
            config: Config::default(),
            quarantined: Some(MovedAside {
                moved_to,
                reason: message,
            }),
        })
    }

    /// Parses the TOML text.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Writes the file atomically (temporary file, fsync, rename), readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_error = |source| ConfigError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string_pretty(self)
            .map_err(|e| write_error(std::io::Error::other(e.to_string())))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(write_error)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "callisto.toml".into());
        let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut options = fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, path)?;
            if let Ok(dir) = fs::File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map_err(write_error)
    }

    /// The account named `name`, or the first one when `name` is `None`.
    pub fn account(&self, name: Option<&str>) -> Option<&Account> {
        match name {
            Some(name) => self
                .accounts
                .iter()
                .find(|a| a.name == name || a.user == name),
            None => self.accounts.first(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            accounts: vec![Account {
                name: "work".into(),
                user: "sip:alice@example.org".into(),
                password: Some("s3cret-Pa55".into()),
                auth_user: None,
                registrar: Some("sip:pbx.example.org;transport=tcp".into()),
                ws_path: None,
                expires: 600,
                ..Account::default()
            }],
            transport: TransportSettings::default(),
            timers: TimerSettings::default(),
            media: MediaSettings {
                input: Some("alsa_input.usb-headset".into()),
                output: None,
                ringer: Some("alsa_output.pci-speakers".into()),
                camera: Some(2),
                video_size: "1280x720".into(),
                video_fps: 24,
                codecs: "pcma, opus".into(),
                echo_cancellation: true,
                noise_suppression: false,
                gain_control: true,
            },
        }
    }

    #[test]
    fn saves_and_loads_the_same_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("callisto.toml");
        let config = sample();
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), config);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("callisto.toml")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the file holds passwords: owner only");
        }
    }

    #[test]
    fn a_missing_file_is_an_empty_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&dir.path().join("absent.toml")).unwrap();
        assert!(config.accounts.is_empty());
        assert_eq!(config.timers.t1(), Duration::from_millis(500));
    }

    #[test]
    fn a_broken_file_is_reported_with_its_path_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callisto.toml");
        fs::write(&path, "[[accounts]]\nuser = 42\n").unwrap();
        let err = Config::load(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("callisto.toml"), "{text}");
        assert!(text.contains("not valid"), "{text}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[[accounts]]\nuser = 42\n"
        );
    }

    #[test]
    fn load_or_quarantine_moves_a_broken_file_aside_with_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callisto.toml");
        let broken = b"[[accounts]]\nuser = 42\n\xff";
        fs::write(&path, broken).unwrap();
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_763_700_000);
        let loaded = Config::load_or_quarantine_at(&path, now).unwrap();
        assert_eq!(loaded.config, Config::default());
        let moved = loaded.quarantined.expect("the broken file is reported");
        assert_eq!(
            moved.moved_to,
            dir.path().join("callisto.toml.corrupt-1763700000")
        );
        assert!(moved.reason.contains("UTF-8"), "{}", moved.reason);
        assert_eq!(fs::read(&moved.moved_to).unwrap(), broken);
        assert!(!path.exists());
        // The defaults can be saved in its place; the moved file stays as it was.
        loaded.config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        assert_eq!(fs::read(&moved.moved_to).unwrap(), broken);
    }

    #[test]
    fn load_or_quarantine_never_overwrites_an_earlier_moved_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callisto.toml");
        let now = std::time::UNIX_EPOCH + Duration::from_secs(5);
        fs::write(&path, "[timers]\nt1_ms = \"soon\"\n").unwrap();
        let first = Config::load_or_quarantine_at(&path, now).unwrap();
        fs::write(&path, "[transport]\nfoo = 1\n").unwrap();
        let second = Config::load_or_quarantine_at(&path, now).unwrap();
        let first = first.quarantined.unwrap();
        let second = second.quarantined.unwrap();
        assert_ne!(first.moved_to, second.moved_to);
        assert!(second.reason.contains("foo"), "{}", second.reason);
        assert_eq!(
            fs::read_to_string(&first.moved_to).unwrap(),
            "[timers]\nt1_ms = \"soon\"\n"
        );
        assert_eq!(
            fs::read_to_string(&second.moved_to).unwrap(),
            "[transport]\nfoo = 1\n"
        );
    }

    #[test]
    fn load_or_quarantine_keeps_a_valid_or_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callisto.toml");
        let missing = Config::load_or_quarantine(&path).unwrap();
        assert_eq!(missing.config, Config::default());
        assert_eq!(missing.quarantined, None);
        sample().save(&path).unwrap();
        let loaded = Config::load_or_quarantine(&path).unwrap();
        assert_eq!(loaded.config, sample());
        assert_eq!(loaded.quarantined, None);
        assert!(path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn load_or_quarantine_leaves_an_unreadable_path_alone() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read as one: an error, not a move.
        let path = dir.path().join("callisto.toml");
        fs::create_dir(&path).unwrap();
        assert!(matches!(
            Config::load_or_quarantine(&path),
            Err(ConfigError::Read { .. })
        ));
        assert!(path.is_dir());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("s3cret-Pa55"), "{text}");
        assert!(text.contains("***"));
    }

    #[test]
    fn accounts_are_found_by_name_or_uri() {
        let config = sample();
        assert_eq!(config.account(Some("work")).unwrap().expires, 600);
        assert!(config.account(Some("sip:alice@example.org")).is_some());
        assert!(config.account(Some("home")).is_none());
        assert!(config.account(None).is_some());
    }

    #[test]
    fn unknown_keys_are_errors_not_silently_ignored() {
        assert!(Config::parse("[transport]\nlisten = \"127.0.0.1:5060\"\nfoo = 1\n").is_err());
        let config = Config::parse("[timers]\nt1_ms = 100\n").unwrap();
        assert_eq!(config.timers.t1_ms, 100);
        assert_eq!(config.timers.t2_ms, 4000);
    }
}
