//! `callisto call` and `callisto answer`: one engine, an optional registration, calls with audio
//! from a generator or a file, recorded to a WAV file, reported as sentences or JSON lines.
//!
//! While a call runs, lines on standard input steer it (see `control.rs`): `hold`, `resume`,
//! `dtmf DIGITS`, `transfer URI`, `hangup`, each with an optional call number.
//!
//! Exit codes: 0 when every call was established and ended normally; 2 when authentication
//! failed; 3 when the server or callee could not be reached or did not answer; 4 otherwise
//! (busy, declined, not found, media failure…).

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use callisto_signaling::registration::RegistrationEvent;
use callisto_signaling::transport::{Target, TransportKind};
use rand::SeedableRng;
use serde_json::json;
use tokio::time::Instant;

use crate::account::{self, parse_sip_uri};
use crate::cli::{AccountArgs, AnswerArgs, CallArgs, MediaArgs, RegisterArgs};
use crate::config::{Account, Config};
use crate::dns::{first_step, ServerQuery, SipResolver, Step};
use crate::echo::{is_echo_address, EchoTest};
use crate::engine::{
    self, CallFailure, CallKey, CallUpdate, Command, EngineEvent, EngineHandle, MediaOptions,
    OutgoingCall,
};
use crate::register::{self, exit, Output, Signals};
use callisto_signaling::call::FailureCause;

mod conference;
mod control;
mod media_args;
mod report;

pub use conference::run_conference;
use control::control_lines;
pub use media_args::{media_options, media_options_for};
use report::report;

/// Completes what the user typed into a SIP URI: `sip:`/`sips:` as given (a pasted
/// `Name <sip:…>` taken from between its brackets), `tel:+123` and bare numbers or names with
/// the account's domain. What is not a SIP address is explained (see [`typed_sip_uri`]).
pub fn callee_uri(text: &str, domain: Option<&str>) -> Result<rsip::Uri, String> {
    let text = text.trim();
    let text = match (text.rfind('<'), text.strip_suffix('>')) {
        (Some(open), Some(inner)) if open < inner.len() => inner[open + 1..].trim(),
        _ => text,
    };
    if text.starts_with("sip:") || text.starts_with("sips:") {
        return typed_sip_uri(text);
    }
    let (user, phone) = match text.strip_prefix("tel:") {
        Some(number) => (number.split(';').next().unwrap_or(number).to_string(), true),
        None => (text.to_string(), false),
    };
    if user.contains('@') {
        return typed_sip_uri(&format!("sip:{user}"));
    }
    let domain = domain.ok_or_else(|| {
        format!("'{text}' needs a domain: give a full address like sip:{user}@example.org")
    })?;
    let user: String = if phone
        || user
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.() ".contains(c))
    {
        user.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    } else {
        user
    };
    if user.is_empty() {
        return Err(format!("'{text}' has no number or name to call"));
    }
    let params = if phone { ";user=phone" } else { "" };
    typed_sip_uri(&format!("sip:{user}@{domain}{params}"))
}

/// A SIP address as a person typed it, checked more strictly than the parser, which would
/// cut it at a space or take an empty user: no spaces, a user (when there is an `@`) with no
/// `@` of its own, and a host that is a domain name (dot-separated labels of letters, digits
/// and inner hyphens) or an IP address.
fn typed_sip_uri(text: &str) -> Result<rsip::Uri, String> {
    let not_an_address = || format!("'{text}' is not a SIP address");
    if text.chars().any(char::is_whitespace) {
        return Err(format!(
            "'{text}' has a space in it; a SIP address has none"
        ));
    }
    let uri = parse_sip_uri(text).ok_or_else(not_an_address)?;
    let after_scheme = text.split_once(':').map_or(text, |(_, rest)| rest);
    let user_and_host = after_scheme
        .split([';', '?'])
        .next()
        .unwrap_or(after_scheme);
    if let Some((user, _)) = user_and_host.rsplit_once('@') {
        if user.is_empty() || user.contains('@') {
            return Err(not_an_address());
        }
    }
    if let rsip::Host::Domain(domain) = &uri.host_with_port.host {
        let domain = domain.to_string();
        if !is_host_name(&domain) {
            return Err(format!("'{text}': '{domain}' is not a host name"));
        }
    }
    Ok(uri)
}

/// Whether `name` is a host name: dot-separated labels (an optional final dot) of letters,
/// digits and hyphens, none empty or longer than 63, none starting or ending with a hyphen.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The account a call or answer run registers, if any: `--user` with a password or registrar,
/// or the configured one.
fn registering_account(
    args: &AccountArgs,
    config: &Config,
    selected: Option<&str>,
) -> Result<Option<Account>, String> {
    let wants_registration = args.password.is_some() || args.registrar.is_some();
    if args.user.is_some() && !wants_registration {
        return Ok(None);
    }
    if args.user.is_none() && config.accounts.is_empty() {
        return Ok(None);
    }
    let register_args = RegisterArgs {
        account: args.clone(),
        ..RegisterArgs::default()
    };
    let accounts = register::accounts_from(&register_args, config, selected)?;
    Ok(accounts.into_iter().next())
}

/// The engine, registered when an account is given.
struct Session {
    engine: EngineHandle,
    out: Output,
    account: Option<Account>,
    signals: Signals,
    /// The echo test, started by the first call to it.
    echo: EchoTest,
}

impl Session {
    /// Reads the media flags and starts the engine: what every call command does first (then
    /// [`Session::register_chosen`]).
    async fn prepare(
        account: &AccountArgs,
        media: &MediaArgs,
        config: &Config,
        selected: Option<&str>,
    ) -> Result<(Session, MediaOptions), ExitCode> {
        let out = Output { json: media.json };
        let chosen = registering_account(account, config, selected)
            .map_err(|m| out.fatal(exit::OTHER, &m))?;
        let options = media_args::media_options_for(media, chosen.as_ref())
            .map_err(|m| out.fatal(exit::OTHER, &m))?;
        let engine = engine::start(register::engine_config(account, config))
            .await
            .map_err(|e| out.fatal(exit::OTHER, &format!("cannot open the SIP transports: {e}")))?;
        let session = Session {
            engine,
            out,
            account: chosen,
            signals: Signals::new(),
            echo: EchoTest::default(),
        };
        Ok((session, options))
    }

    /// Registers the chosen account, if any, and waits for the outcome. Commands that take
    /// calls do this only once they accept them: the registrar sends INVITEs as soon as the
    /// binding exists, and one arriving earlier would be declined.
    async fn register_chosen(
        &mut self,
        config: &Config,
        data_dir: Option<&Path>,
    ) -> Result<(), ExitCode> {
        match self.account.clone() {
            Some(account) => self.register(&account, config, data_dir).await,
            None => Ok(()),
        }
    }

    /// Registers and waits for the outcome.
    async fn register(
        &mut self,
        account: &Account,
        config: &Config,
        data_dir: Option<&Path>,
    ) -> Result<(), ExitCode> {
        let resolved = account::resolve(
            account,
            data_dir,
            Duration::from_secs(30),
            &config.transport.dns_servers,
        )
        .await
        .map_err(|e| self.out.fatal(exit::UNREACHABLE, &e.to_string()))?;
        let _ = self.engine.commands.send(Command::Register {
            account: 0,
            resolved: Box::new(resolved),
        });
        loop {
            let event = tokio::select! {
                event = self.engine.events.recv() => event,
                _ = self.signals.recv() => return Err(ExitCode::from(exit::OTHER)),
            };
            match event {
                Some(EngineEvent::Registration { event, .. }) => {
                    self.out.registration(&account.user, &event);
                    match event {
                        RegistrationEvent::Registered { .. } => return Ok(()),
                        RegistrationEvent::Failed { kind, .. } => {
                            return Err(ExitCode::from(register::exit_code_for(kind)))
                        }
                        RegistrationEvent::Unregistered => {}
                    }
                }
                Some(_) => {}
                None => return Err(ExitCode::from(exit::OTHER)),
            }
        }
    }

    /// Places a call to what the user typed (completed with the account's domain): through
    /// the account when one is registered, else straight to the address. Fails with an exit
    /// code and the reason.
    async fn dial(
        &mut self,
        account_args: &AccountArgs,
        text: &str,
        config: &Config,
        media: MediaOptions,
    ) -> Result<CallKey, (u8, String)> {
        if is_echo_address(text) {
            // Served in this process, whatever the account.
            let to = self
                .echo
                .uri(media.video.as_ref())
                .await
                .map_err(|m| (exit::OTHER, m))?;
            let call = direct_call(account_args, &self.engine, to, config, media)
                .await
                .map_err(|m| (exit::UNREACHABLE, m))?;
            return Ok(self.place(None, call));
        }
        let domain = self
            .account
            .as_ref()
            .or(config.accounts.first())
            .and_then(|a| parse_sip_uri(&a.user))
            .map(|uri| uri.host_with_port.host.to_string());
        let to = callee_uri(text, domain.as_deref()).map_err(|m| (exit::OTHER, m))?;
        let call = if self.account.is_some() {
            // The engine fills in the account's identity and registrar.
            OutgoingCall {
                from: to.clone(),
                to,
                target: Target::new(TransportKind::Udp, ([127, 0, 0, 1], 5060).into()),
                local_sip: ([0, 0, 0, 0], 0).into(),
                credentials: None,
                contact_host: None,
                media,
            }
        } else {
            direct_call(account_args, &self.engine, to, config, media)
                .await
                .map_err(|m| (exit::UNREACHABLE, m))?
        };
        Ok(self.place(self.account.as_ref().map(|_| 0), call))
    }

    /// Hands `call` to the engine (through `account`, when given); its key.
    fn place(&self, account: Option<usize>, call: OutgoingCall) -> CallKey {
        let key = self.engine.new_call_key();
        let _ = self.engine.commands.send(Command::Call {
            key,
            account,
            call: Box::new(call),
        });
        key
    }

    /// Hangs up what is left, unregisters, and waits for the engine to stop.
    async fn close(mut self) {
        let _ = self.engine.commands.send(Command::Shutdown);
        while let Some(event) = self.engine.events.recv().await {
            match event {
                EngineEvent::Stopped => break,
                EngineEvent::Registration { event, .. } => {
                    let name = self.account.as_ref().map(|a| a.user.as_str()).unwrap_or("");
                    self.out.registration(name, &event);
                }
                EngineEvent::Call { key, update } => report(&self.out, key, &update),
            }
        }
    }
}

/// Runs `callisto call`.
pub async fn run_call(
    args: CallArgs,
    config: Config,
    selected: Option<&str>,
    data_dir: Option<&Path>,
) -> ExitCode {
    let (mut session, media) =
        match Session::prepare(&args.account, &args.media, &config, selected).await {
            Ok(prepared) => prepared,
            Err(code) => return code,
        };
    if let Err(code) = session.register_chosen(&config, data_dir).await {
        return code;
    }
    let key = match session.dial(&args.account, &args.uri, &config, media).await {
        Ok(key) => key,
        Err((code, message)) => {
            let code = session.out.fatal(code, &message);
            session.close().await;
            return code;
        }
    };
    let code = drive_calls(&mut session, &args.media, 1, &[key], None).await;
    session.close().await;
    ExitCode::from(code)
}

/// Runs `callisto answer`.
pub async fn run_answer(
    args: AnswerArgs,
    config: Config,
    selected: Option<&str>,
    data_dir: Option<&Path>,
) -> ExitCode {
    let (mut session, media) =
        match Session::prepare(&args.account, &args.media, &config, selected).await {
            Ok(prepared) => prepared,
            Err(code) => return code,
        };
    // Calls are taken before the registrar is told where to send them.
    let _ = session.engine.commands.send(Command::AcceptCalls {
        media: Some(Box::new(media)),
    });
    if let Err(code) = session.register_chosen(&config, data_dir).await {
        return code;
    }
    if !session.out.json {
        let address = session
            .engine
            .local_udp
            .map(|a| a.to_string())
            .unwrap_or_default();
        println!("Waiting for calls on {address}.");
    } else if let Some(address) = session.engine.local_udp {
        println!(
            "{}",
            json!({"event": "listening", "address": address.to_string()})
        );
    }
    let answer_after = args.answer_after.map(Duration::from_secs_f64);
    let code = drive_calls(&mut session, &args.media, args.count, &[], answer_after).await;
    session.close().await;
    ExitCode::from(code)
}

/// A call without a registrar: the INVITE goes straight to the URI's host.
pub(crate) async fn direct_call(
    account: &AccountArgs,
    engine: &EngineHandle,
    to: rsip::Uri,
    config: &Config,
    media: MediaOptions,
) -> Result<OutgoingCall, String> {
    let query = ServerQuery::from_uri(&to).map_err(|e| format!("cannot call {to}: {e}"))?;
    let resolution = match first_step(&query) {
        Step::Done(resolution) => resolution,
        _ => {
            let resolver = if config.transport.dns_servers.is_empty() {
                SipResolver::from_system().map_err(|e| e.to_string())?
            } else {
                SipResolver::with_name_servers(
                    &config.transport.dns_servers,
                    Duration::from_secs(2),
                )
            };
            let mut rng = rand::rngs::StdRng::from_entropy();
            resolver
                .resolve(&query, &mut rng)
                .await
                .map_err(|e| format!("cannot find {to}: {e}"))?
        }
    };
    let target = *resolution
        .targets
        .first()
        .ok_or_else(|| format!("{to} has no address"))?;
    let local_sip = match target.transport {
        TransportKind::Udp => engine.local_udp,
        _ => engine.local_tcp,
    }
    .ok_or_else(|| format!("no local {} transport", target.transport.uri_param()))?;
    let from = match &account.user {
        Some(user) => {
            parse_sip_uri(user).ok_or_else(|| format!("'{user}' is not a SIP address"))?
        }
        None => parse_sip_uri(&format!("sip:callisto@{}", local_sip.ip()))
            .ok_or_else(|| "no local address".to_string())?,
    };
    Ok(OutgoingCall {
        from,
        to,
        target,
        local_sip,
        credentials: None,
        contact_host: None,
        media,
    })
}

/// Runs calls until `count` of them have ended; returns the exit code.
async fn drive_calls(
    session: &mut Session,
    media: &MediaArgs,
    mut count: u32,
    initial: &[CallKey],
    answer_after: Option<Duration>,
) -> u8 {
    let mut controls = control_lines();
    let mut hang_up_at: HashMap<CallKey, Instant> = HashMap::new();
    let mut dtmf_at: HashMap<CallKey, Instant> = HashMap::new();
    let mut answer_at: HashMap<CallKey, Instant> = HashMap::new();
    // Calls not yet over (control lines go to them), and those that were established.
    let mut live: Vec<CallKey> = initial.to_vec();
    let mut established: Vec<CallKey> = Vec::new();
    let mut ended = 0;
    let mut worst = exit::OK;
    loop {
        let next = hang_up_at
            .values()
            .chain(dtmf_at.values())
            .chain(answer_at.values())
            .min()
            .copied();
        let event = tokio::select! {
            event = session.engine.events.recv() => event,
            Some(control) = controls.recv() => {
                let keys: Vec<CallKey> = live.iter().copied().filter(|k| control.is_for(*k)).collect();
                if control.action == control::Action::Merge {
                    // One merge of all of them, not one per call.
                    let _ = session.engine.commands.send(Command::Merge { keys });
                    continue;
                }
                for key in keys {
                    let _ = session.engine.commands.send(control.command(key));
                }
                continue;
            }
            _ = sleep_until(next) => {
                let now = Instant::now();
                for (key, _) in hang_up_at.iter().filter(|(_, at)| **at <= now) {
                    let _ = session.engine.commands.send(Command::HangUp { key: *key });
                }
                hang_up_at.retain(|_, at| *at > now);
                for (key, _) in answer_at.iter().filter(|(_, at)| **at <= now) {
                    let _ = session.engine.commands.send(Command::Answer { key: *key, video: true });
                }
                answer_at.retain(|_, at| *at > now);
                let due: Vec<CallKey> = dtmf_at.iter().filter(|(_, at)| **at <= now).map(|(k, _)| *k).collect();
                for key in due {
                    dtmf_at.remove(&key);
                    if let Some(digits) = &media.dtmf {
                        let _ = session.engine.commands.send(Command::Dtmf { key, digits: digits.clone() });
                    }
                }
                continue;
            }
            _ = session.signals.recv() => {
                for key in &live {
                    let _ = session.engine.commands.send(Command::HangUp { key: *key });
                }
                return worst.max(exit::OTHER);
            }
        };
        let Some(event) = event else {
            return worst.max(exit::OTHER);
        };
        match event {
            EngineEvent::Call { key, update } => {
                report(&session.out, key, &update);
                match update {
                    CallUpdate::Incoming { .. } => {
                        live.push(key);
                        match answer_after {
                            Some(delay) => {
                                answer_at.insert(key, Instant::now() + delay);
                            }
                            None => {
                                let _ = session
                                    .engine
                                    .commands
                                    .send(Command::Answer { key, video: true });
                            }
                        }
                    }
                    CallUpdate::TransferRequested { new_call, .. } => {
                        // The conversation goes on in the new call: wait for it too.
                        live.push(new_call);
                        count += 1;
                    }
                    CallUpdate::Answered { .. } => {
                        established.push(key);
                        if let Some(secs) = media.duration {
                            hang_up_at.insert(key, Instant::now() + Duration::from_secs_f64(secs));
                        }
                        if media.dtmf.is_some() {
                            // A moment for the far end's media to settle before the digits.
                            dtmf_at.insert(key, Instant::now() + Duration::from_millis(300));
                        }
                    }
                    CallUpdate::Failed { code, cause, .. } => {
                        worst = worst.max(failure_exit_code(code, cause));
                        answer_at.remove(&key);
                        live.retain(|k| *k != key);
                        ended += 1;
                    }
                    CallUpdate::Ended { .. } => {
                        if !established.contains(&key) {
                            // Hung up before it connected: not a call that took place.
                            worst = worst.max(exit::OTHER);
                        }
                        live.retain(|k| *k != key);
                        hang_up_at.remove(&key);
                        dtmf_at.remove(&key);
                        answer_at.remove(&key);
                        ended += 1;
                    }
                    _ => {}
                }
                if ended >= count {
                    return worst;
                }
            }
            EngineEvent::Registration { event, .. } => {
                let name = session
                    .account
                    .as_ref()
                    .map(|a| a.user.as_str())
                    .unwrap_or("");
                session.out.registration(name, &event);
            }
            EngineEvent::Stopped => return worst.max(exit::OTHER),
        }
    }
}

fn failure_exit_code(code: Option<u16>, cause: CallFailure) -> u8 {
    match (code, cause) {
        (Some(401 | 407), _) | (_, CallFailure::Remote(FailureCause::AuthenticationFailed)) => {
            exit::AUTH_FAILED
        }
        (_, CallFailure::Remote(FailureCause::Unreachable | FailureCause::NoAnswer))
        | (Some(408 | 503), _) => exit::UNREACHABLE,
        // Busy, declined, not found… and failures on our side (no RTP port, no offer).
        _ => exit::OTHER,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_are_completed_with_the_domain() {
        let uri = callee_uri("bob", Some("example.org")).unwrap();
        assert_eq!(uri.to_string(), "sip:bob@example.org");
        let uri = callee_uri("+1 (555) 010-0200", Some("pbx.example.org")).unwrap();
        assert_eq!(uri.to_string(), "sip:+15550100200@pbx.example.org");
        let uri = callee_uri("tel:+4930123", Some("example.org")).unwrap();
        assert_eq!(uri.to_string(), "sip:+4930123@example.org;user=phone");
        let uri = callee_uri("sip:carol@127.0.0.1:5062", None).unwrap();
        assert_eq!(uri.to_string(), "sip:carol@127.0.0.1:5062");
        assert!(callee_uri("bob", None).is_err());
    }

    #[test]
    fn what_is_not_a_sip_address_is_explained_not_cut_short() {
        let dial = |text: &str| callee_uri(text, Some("example.org")).map(|u| u.to_string());
        // A pasted name-addr is taken from between its brackets.
        assert_eq!(
            dial("\"Bob\" <sip:bob@example.org>"),
            Ok("sip:bob@example.org".into())
        );
        assert_eq!(
            dial("<sip:bob@example.org>"),
            Ok("sip:bob@example.org".into())
        );
        assert_eq!(dial("sip:bob@127.0.0.1"), Ok("sip:bob@127.0.0.1".into()));
        for (text, why) in [
            // The parser alone took these, cut short or with no user.
            ("sip:bob@exa mple.org", "has a space in it"),
            ("sip:bob example.org", "has a space in it"),
            ("sip:@example.org", "is not a SIP address"),
            ("bob@@example.org", "is not a SIP address"),
            ("sip:bob@example..org", "is not a host name"),
            ("sip:bob@-example.org", "is not a host name"),
            ("sip:bob@.", "is not a host name"),
            ("tel:", "has no number or name"),
            // The parser refused these already.
            ("sip:", "is not a SIP address"),
            ("sip:bob@", "is not a SIP address"),
            ("sip:bob@example.org:99999", "is not a SIP address"),
        ] {
            let error = dial(text).expect_err(text);
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn failures_map_to_exit_codes() {
        let remote = CallFailure::Remote;
        assert_eq!(
            failure_exit_code(Some(486), remote(FailureCause::Busy)),
            exit::OTHER
        );
        assert_eq!(
            failure_exit_code(Some(407), remote(FailureCause::AuthenticationFailed)),
            exit::AUTH_FAILED
        );
        assert_eq!(
            failure_exit_code(None, remote(FailureCause::NoAnswer)),
            exit::UNREACHABLE
        );
        assert_eq!(
            failure_exit_code(None, remote(FailureCause::Unreachable)),
            exit::UNREACHABLE
        );
        assert_eq!(failure_exit_code(None, CallFailure::Local), exit::OTHER);
    }
}
