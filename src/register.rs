//! `callisto register`: register accounts, report, and (without `--once`) stay registered until
//! SIGINT/SIGTERM, then unregister.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use callisto_signaling::registration::{FailureKind, RegistrationEvent};
use callisto_signaling::transaction::TimerConfig;
use serde_json::json;

use crate::account;
use crate::cli::{AccountArgs, RegisterArgs};
use crate::config::{Account, Config};
use crate::engine::{self, Command, EngineConfig, EngineEvent};
use crate::transport::{TlsClientSettings, TransportConfig};

/// Exit codes of the headless commands.
pub mod exit {
    pub const OK: u8 = 0;
    pub const AUTH_FAILED: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const OTHER: u8 = 4;
}

/// The accounts a command works on: the one given with `--user`, or the configured ones.
pub fn accounts_from(
    args: &RegisterArgs,
    config: &Config,
    selected: Option<&str>,
) -> Result<Vec<Account>, String> {
    let a = &args.account;
    if let Some(user) = &a.user {
        return Ok(vec![Account {
            name: String::new(),
            user: user.clone(),
            password: a.password.clone(),
            auth_user: a.auth_user.clone(),
            registrar: a.registrar.clone(),
            ws_path: a.ws_path.clone(),
            expires: args.expires.unwrap_or(3600),
            ..Account::default()
        }]);
    }
    let mut accounts: Vec<Account> = match selected {
        Some(name) => config
            .account(Some(name))
            .cloned()
            .map(|a| vec![a])
            .ok_or_else(|| format!("no account named '{name}' in the configuration"))?,
        None => config.accounts.clone(),
    };
    if accounts.is_empty() {
        return Err(
            "no account: give one with --user sip:alice@example.org --password SECRET, \
             or add one to the configuration file"
                .into(),
        );
    }
    for account in &mut accounts {
        if let Some(expires) = args.expires {
            account.expires = expires;
        }
        if a.password.is_some() {
            account.password = a.password.clone();
        }
        if a.registrar.is_some() {
            account.registrar = a.registrar.clone();
        }
        if a.ws_path.is_some() {
            account.ws_path = a.ws_path.clone();
        }
    }
    Ok(accounts)
}

/// The engine set-up the headless commands share: transports and timers from the configuration,
/// with the command line's `--listen` and `--ca-file` on top.
pub fn engine_config(account: &AccountArgs, config: &Config) -> EngineConfig {
    let keepalive = (config.transport.keepalive_secs > 0)
        .then(|| Duration::from_secs(config.transport.keepalive_secs));
    let transport = TransportConfig {
        listen: account.listen.unwrap_or(config.transport.listen),
        tls: TlsClientSettings {
            extra_ca_file: account
                .ca_file
                .clone()
                .or(config.transport.tls_ca_file.clone()),
            use_system_roots: true,
        },
        keepalive_interval: keepalive,
        ws_ping_interval: keepalive,
        ws_pong_timeout: Duration::from_secs(config.transport.ws_pong_timeout_secs.max(1)),
        ..TransportConfig::default()
    };
    EngineConfig {
        transport,
        timers: TimerConfig {
            t1: config.timers.t1(),
            t2: config.timers.t2(),
            t4: config.timers.t4(),
        },
        shutdown_grace: Duration::from_secs(4),
    }
}

/// Runs the command; returns the process exit code.
pub async fn run(
    args: RegisterArgs,
    config: Config,
    selected: Option<&str>,
    data_dir: Option<&Path>,
) -> ExitCode {
    let out = Output { json: args.json };
    let accounts = match accounts_from(&args, &config, selected) {
        Ok(accounts) => accounts,
        Err(message) => return out.fatal(exit::OTHER, &message),
    };
    let engine_config = engine_config(&args.account, &config);
    let mut engine = match engine::start(engine_config).await {
        Ok(engine) => engine,
        Err(error) => {
            return out.fatal(
                exit::OTHER,
                &format!("cannot open the SIP transports: {error}"),
            )
        }
    };
    // In --once mode one failed attempt is the answer; otherwise retries start after 30 s.
    let retry_base = Duration::from_secs(if args.once { 30 } else { 5 });
    let mut names = Vec::new();
    for (index, account) in accounts.iter().enumerate() {
        names.push(account.user.clone());
        match account::resolve(account, data_dir, retry_base, &config.transport.dns_servers).await {
            Ok(resolved) => {
                let _ = engine.commands.send(Command::Register {
                    account: index,
                    resolved: Box::new(resolved),
                });
            }
            Err(error) => {
                let code = match error {
                    account::AccountError::NotFound { .. } => exit::UNREACHABLE,
                    _ => exit::OTHER,
                };
                return out.fatal(code, &error.to_string());
            }
        }
    }

    let mut pending = accounts.len();
    let mut worst = exit::OK;
    let mut shutting_down = false;
    let mut signals = Signals::new();
    loop {
        tokio::select! {
            event = engine.events.recv() => {
                let Some(event) = event else { break };
                match event {
                    EngineEvent::Registration { account, event } => {
                        let name = names.get(account).map(String::as_str).unwrap_or("");
                        out.registration(name, &event);
                        match event {
                            RegistrationEvent::Registered { .. } => {
                                if args.once && !shutting_down {
                                    pending = pending.saturating_sub(1);
                                }
                            }
                            RegistrationEvent::Failed { kind, retry_in, .. } => {
                                if retry_in.is_none() || args.once {
                                    worst = worst.max(exit_code_for(kind));
                                    if args.once || kind.is_final() {
                                        pending = pending.saturating_sub(1);
                                    }
                                }
                            }
                            RegistrationEvent::Unregistered => {}
                        }
                        if pending == 0 && !shutting_down {
                            shutting_down = true;
                            let _ = engine.commands.send(Command::Shutdown);
                        }
                    }
                    EngineEvent::Stopped => break,
                    // `register` takes no calls: the engine declines them itself.
                    EngineEvent::Call { .. } => {}
                }
            }
            _ = signals.recv(), if !shutting_down => {
                shutting_down = true;
                let _ = engine.commands.send(Command::Shutdown);
            }
        }
    }
    ExitCode::from(worst)
}

pub fn exit_code_for(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::AuthenticationFailed => exit::AUTH_FAILED,
        FailureKind::Unreachable => exit::UNREACHABLE,
        FailureKind::Rejected | FailureKind::ServerError | FailureKind::Insecure => exit::OTHER,
    }
}

/// Human sentences on stdout, or JSON lines.
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn registration(&self, account: &str, event: &RegistrationEvent) {
        match (self.json, event) {
            (true, RegistrationEvent::Registered { expires, contact }) => println!(
                "{}",
                json!({"event": "registered", "account": account, "expires": expires, "contact": contact})
            ),
            (false, RegistrationEvent::Registered { expires, .. }) => {
                println!("Registered {account} for {expires} s.")
            }
            (
                true,
                RegistrationEvent::Failed {
                    kind,
                    code,
                    reason,
                    retry_in,
                },
            ) => println!(
                "{}",
                json!({
                    "event": "registration_failed",
                    "account": account,
                    "code": code,
                    "reason": reason,
                    "kind": kind.name(),
                    "retry_in_s": retry_in.map(|d| d.as_secs_f64()),
                })
            ),
            (
                false,
                RegistrationEvent::Failed {
                    kind,
                    code,
                    reason,
                    retry_in,
                },
            ) => {
                let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
                let what = match kind {
                    FailureKind::AuthenticationFailed => "authentication failed: ",
                    FailureKind::Unreachable => "the server could not be reached: ",
                    FailureKind::Rejected => "the server refused: ",
                    FailureKind::ServerError => "the server had a problem: ",
                    FailureKind::Insecure => "the server could not be trusted: ",
                };
                let retry = retry_in
                    .map(|d| format!(" Trying again in {:.0} s.", d.as_secs_f64()))
                    .unwrap_or_default();
                println!("Registration of {account} failed, {what}{reason}{code}.{retry}");
            }
            (true, RegistrationEvent::Unregistered) => {
                println!("{}", json!({"event": "unregistered", "account": account}))
            }
            (false, RegistrationEvent::Unregistered) => println!("Unregistered {account}."),
        }
    }

    pub fn fatal(&self, code: u8, message: &str) -> ExitCode {
        if self.json {
            println!(
                "{}",
                json!({"event": "error", "code": code, "reason": message})
            );
        } else {
            eprintln!("callisto: {message}");
        }
        ExitCode::from(code)
    }
}

/// SIGINT and SIGTERM as one stream. Both are caught from [`Signals::new`] on, and one that
/// arrives while nobody waits in [`Signals::recv`] is kept for the next wait (a fresh
/// `ctrl_c()` future per wait would miss a Ctrl-C pressed between two waits).
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

impl Signals {
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.interrupt) => {}
                _ = next(&mut self.term) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_that_comes_while_nobody_waits_is_kept_for_the_next_wait() {
        let mut signals = Signals::new();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // Caught from `Signals::new` on: raised before anyone waits, it does not end the
            // process, and the next wait sees it.
            unsafe {
                libc::raise(signal);
            }
            tokio::time::timeout(Duration::from_secs(5), signals.recv())
                .await
                .unwrap_or_else(|_| panic!("signal {signal} was lost"));
        }
    }

    #[test]
    fn the_configuration_parsed_sets_t1_t2_and_t4_of_the_engine() {
        let config = Config::parse("[timers]\nt1_ms = 100\nt2_ms = 800\nt4_ms = 2500\n").unwrap();
        let engine = engine_config(&AccountArgs::default(), &config);
        assert_eq!(
            engine.timers,
            TimerConfig {
                t1: Duration::from_millis(100),
                t2: Duration::from_millis(800),
                t4: Duration::from_millis(2500),
            }
        );
    }
}
