//! The REGISTER client (RFC 3261 §10), sans-IO.
//!
//! A [`Registration`] keeps one binding of one account alive at one registrar. It builds the
//! REGISTER requests, reads the final responses the transaction layer hands it, and says when it
//! next wants to act. It never touches a socket or the clock:
//!
//! 1. [`Registration::start`] (or a timer, or a response) makes it want to send: take the request
//!    with [`Registration::poll_request`] and send it in a new client transaction.
//! 2. Feed the transaction's final response to [`Registration::handle_response`], or its failure
//!    (Timer F, transport error) to [`Registration::handle_failure`].
//! 3. Read what happened with [`Registration::poll_event`].
//! 4. Call [`Registration::handle_timeout`] at [`Registration::poll_timeout`].
//!
//! Behaviour, in the terms of the RFCs:
//! - Call-ID stays the same for the life of the registration and CSeq grows by one per request.
//! - Digest challenges (401/407) are answered; a challenge in answer to credentials that were
//!   computed from a fresh challenge means the credentials are wrong: the registration fails with
//!   [`FailureKind::AuthenticationFailed`] and sends nothing more. `stale=true` is answered again.
//! - The granted expiry is read from our Contact's `expires` parameter, else `Expires`, and the
//!   binding is refreshed when 85 % of it has passed (RFC 3261 §10.2.4 asks for "before expiry").
//! - `423 Interval Too Brief` is retried at once with the server's `Min-Expires`.
//! - Timeouts, transport errors, 408, 480, 5xx and 6xx are retried with exponential backoff
//!   (RFC 5626 §4.5), honouring `Retry-After`. Other 4xx answers are final.
//! - Every Contact carries `+sip.instance` and `reg-id` (RFC 5626 §4.2). When a 200 OK's top Via
//!   shows a `received`/`rport` different from the Contact's address (we are behind a NAT), the
//!   Contact is rewritten to the public address and re-registered, removing the old binding in the
//!   same request.
//! - Over WebSocket (RFC 7118) Via and Contact carry [`RegistrationConfig::contact_host`] (a
//!   `.invalid` name) and the Contact says `transport=ws`, for WSS too (RFC 7118 §5.2 and the
//!   example of its §8.1): the registrar reaches the client over the registering connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;

use crate::auth::{Challenge, Credentials, DigestSession};
use crate::message::HeaderAccess;
use crate::transaction::BRANCH_MAGIC_COOKIE;
use crate::transport::TransportKind;

/// What a registration needs to know about the account and the local side.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// The address of record, `sip:alice@example.org`.
    pub aor: rsip::Uri,
    /// The Request-URI of the REGISTER: the registrar's domain (`sip:example.org`).
    pub registrar: rsip::Uri,
    /// Credentials for digest authentication, if the account has them.
    pub credentials: Option<Credentials>,
    /// The expiry asked for, in seconds.
    pub expires: u32,
    /// The transport the requests travel on.
    pub transport: TransportKind,
    /// The local address put in Via and Contact (corrected by `received`/`rport` later).
    pub local_addr: SocketAddr,
    /// A host name put in Via and Contact instead of `local_addr`. A WebSocket client cannot be
    /// reached at an address of its own, so it names itself with a `.invalid` domain and the
    /// registrar reaches it over the registering connection (RFC 7118 §5).
    pub contact_host: Option<String>,
    /// `+sip.instance` (RFC 5626): a URN that identifies this device, stable across restarts.
    pub instance_id: String,
    /// `reg-id` (RFC 5626).
    pub reg_id: u32,
    /// The User-Agent header value.
    pub user_agent: String,
    /// The first retry delay after a failure; doubled per consecutive failure.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_max: Duration,
}

impl RegistrationConfig {
    /// A configuration with the usual defaults: one hour, retry from 30 s up to 30 min.
    pub fn new(aor: rsip::Uri, registrar: rsip::Uri, local_addr: SocketAddr) -> Self {
        RegistrationConfig {
            aor,
            registrar,
            credentials: None,
            expires: 3600,
            transport: TransportKind::Udp,
            local_addr,
            contact_host: None,
            instance_id: String::from("urn:uuid:00000000-0000-0000-0000-000000000000"),
            reg_id: 1,
            user_agent: format!("Callisto/{}", env!("CARGO_PKG_VERSION")),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(1800),
        }
    }
}

/// Why a registration did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server refused our credentials (or we had none to give). Final.
    AuthenticationFailed,
    /// The server answered with a final refusal such as 403 or 404. Final.
    Rejected,
    /// No answer in time, or the transport failed. Retried.
    Unreachable,
    /// The server is busy or broken (408, 480, 5xx, 6xx). Retried.
    ServerError,
    /// The server's identity could not be verified (its TLS certificate is not trusted). Final.
    Insecure,
}

impl FailureKind {
    /// A stable snake_case name, as the JSON output uses.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::AuthenticationFailed => "authentication_failed",
            FailureKind::Rejected => "rejected",
            FailureKind::Unreachable => "unreachable",
            FailureKind::ServerError => "server_error",
            FailureKind::Insecure => "insecure",
        }
    }

    /// Whether the registration gives up after this failure.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            FailureKind::AuthenticationFailed | FailureKind::Rejected | FailureKind::Insecure
        )
    }
}

/// Something the application should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// The binding is in place for `expires` seconds.
    Registered { expires: u32, contact: String },
    /// The attempt failed. When `retry_in` is set, the registration tries again by itself.
    Failed {
        kind: FailureKind,
        code: Option<u16>,
        reason: String,
        retry_in: Option<Duration>,
    },
    /// The binding was removed (or the unregister attempt ended).
    Unregistered,
}

/// The lifecycle, as far as the application cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    Idle,
    Registering,
    Registered,
    WaitingToRetry,
    Unregistering,
    Unregistered,
    Failed,
}

/// Index of the registrar's digest state (401) in [`Registration`]'s per-challenger arrays.
const REGISTRAR: usize = 0;
/// Index of a proxy's digest state (407).
const PROXY: usize = 1;
/// How many challenges in a row may call our nonce stale before the registration gives up.
const MAX_STALE_IN_A_ROW: u8 = 3;

/// One account's binding at one registrar.
#[derive(Debug)]
pub struct Registration {
    config: RegistrationConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: RegistrationState,
    /// The Contact address in use (corrected from `received`/`rport`).
    contact_addr: SocketAddr,
    /// A Contact address being replaced, removed with `expires=0` in the next request.
    stale_contact: Option<SocketAddr>,
    /// The expiry we ask for (raised by 423).
    expires: u32,
    /// The digest state for each challenger: the registrar (401, `[REGISTRAR]`) and a proxy on
    /// the way (407, `[PROXY]`), which may both ask, each for its own realm (RFC 3261 §22.3).
    digest: [Option<DigestSession>; 2],
    /// Whether each `digest` comes straight from the answer to our previous request in this
    /// attempt.
    challenge_is_fresh: [bool; 2],
    /// Challenges in a row that called our nonce stale (bounded: a server that calls every
    /// nonce stale would otherwise be answered forever).
    stale_in_a_row: u8,
    /// Whether the request in flight carries credentials, for each challenger.
    in_flight_has_credentials: [bool; 2],
    in_flight: bool,
    /// Whether the request in flight is the unregister (`Expires: 0`), not a REGISTER sent
    /// before [`Registration::unregister`] was asked for.
    in_flight_unregisters: bool,
    interval_retries: u8,
    consecutive_failures: u32,
    wake_at: Option<Instant>,
    want_send: bool,
    events: VecDeque<RegistrationEvent>,
    rng_state: u64,
}

impl Registration {
    /// A registration with its own Call-ID and From tag. `seed` feeds the random parts (tags,
    /// cnonces, backoff jitter) so that tests are deterministic; the driver passes real entropy.
    pub fn new(config: RegistrationConfig, seed: u64) -> Self {
        let mut rng_state = seed | 1;
        let call_id = format!("{:016x}{:08x}", next_random(&mut rng_state), seed as u32);
        let from_tag = format!("{:012x}", next_random(&mut rng_state) & 0xffff_ffff_ffff);
        Registration {
            contact_addr: config.local_addr,
            expires: config.expires,
            config,
            call_id,
            from_tag,
            cseq: 0,
            state: RegistrationState::Idle,
            stale_contact: None,
            digest: [None, None],
            challenge_is_fresh: [false; 2],
            stale_in_a_row: 0,
            in_flight_has_credentials: [false; 2],
            in_flight: false,
            in_flight_unregisters: false,
            interval_retries: 0,
            consecutive_failures: 0,
            wake_at: None,
            want_send: false,
            events: VecDeque::new(),
            rng_state,
        }
    }

    /// The registration's configuration.
    pub fn config(&self) -> &RegistrationConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> RegistrationState {
        self.state
    }

    /// The Call-ID shared by every REGISTER of this registration.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Begins registering.
    pub fn start(&mut self, _now: Instant) {
        self.state = RegistrationState::Registering;
        self.challenge_is_fresh = [false; 2];
        self.stale_in_a_row = 0;
        self.interval_retries = 0;
        self.wake_at = None;
        self.want_send = true;
    }

    /// Removes the binding (`Expires: 0`). The registration ends with
    /// [`RegistrationEvent::Unregistered`] once the server answered or the attempt failed.
    pub fn unregister(&mut self, _now: Instant) {
        match self.state {
            RegistrationState::Unregistering | RegistrationState::Unregistered => {}
            RegistrationState::Idle | RegistrationState::Failed => {
                self.state = RegistrationState::Unregistered;
                self.events.push_back(RegistrationEvent::Unregistered);
            }
            _ => {
                self.state = RegistrationState::Unregistering;
                self.challenge_is_fresh = [false; 2];
                self.wake_at = None;
                self.want_send = true;
            }
        }
    }

    /// The connection under a binding that was in place closed (RFC 5626 §4.4): register again
    /// now. A registration already waiting to retry keeps its backoff, so a server that refuses
    /// connections is not hammered.
    pub fn handle_flow_failure(&mut self, now: Instant) {
        if self.state == RegistrationState::Registered && !self.in_flight {
            self.start(now);
        }
    }

    /// The next REGISTER to send, if any. Each request must go out in a new client transaction.
    pub fn poll_request(&mut self, _now: Instant) -> Option<rsip::Request> {
        if !self.want_send || self.in_flight {
            return None;
        }
        self.want_send = false;
        self.in_flight = true;
        self.in_flight_unregisters = self.state == RegistrationState::Unregistering;
        Some(self.build_request())
    }

    /// A final response (>= 200) to the REGISTER in flight. Provisional ones are ignored.
    pub fn handle_response(&mut self, now: Instant, response: &rsip::Response) {
        let code = response.status_code.code();
        if code < 200 || !self.in_flight {
            return;
        }
        self.in_flight = false;
        let unregistering = self.state == RegistrationState::Unregistering;
        if unregistering && !self.in_flight_unregisters && !matches!(code, 401 | 407) {
            // The answer to a REGISTER sent before the unregister was asked for: whatever it
            // says, the binding it may have made is removed next (`want_send` is set). A
            // challenge is answered by the unregister itself.
            return;
        }
        match code {
            200..=299 if unregistering => self.finish_unregister(),
            200..=299 => self.handle_success(now, response),
            401 | 407 => self.handle_challenge(now, response, code),
            423 => self.handle_interval_too_brief(now, response),
            _ if unregistering => self.finish_unregister(),
            408 | 480 | 500..=699 => {
                let retry_after = response
                    .retry_after()
                    .map(|secs| Duration::from_secs(u64::from(secs)));
                self.fail_and_retry(
                    now,
                    FailureKind::ServerError,
                    Some(code),
                    reason_of(response),
                    retry_after,
                );
            }
            _ => self.fail(FailureKind::Rejected, Some(code), reason_of(response)),
        }
    }

    /// The REGISTER in flight got no final response (Timer F) or its transport failed. `kind` is
    /// [`FailureKind::Unreachable`] or, when the server's identity could not be verified,
    /// [`FailureKind::Insecure`].
    pub fn handle_failure(&mut self, now: Instant, kind: FailureKind, reason: &str) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        if self.state == RegistrationState::Unregistering {
            // A REGISTER sent before the unregister was asked for may still have reached the
            // registrar: the unregister goes out next. The unregister's own failure ends it.
            if self.in_flight_unregisters {
                self.finish_unregister();
            }
            return;
        }
        if kind.is_final() {
            self.fail(kind, None, reason.to_string());
        } else {
            self.fail_and_retry(now, kind, None, reason.to_string(), None);
        }
    }

    /// The request in flight will get no answer from where it went, and the endpoint sends it to
    /// another address of the registrar (RFC 3263 §4.3): send it again at once, in a new
    /// transaction, without counting a failure. Another server's challenge will be new to us,
    /// so it is answered rather than taken for a wrong password.
    pub fn resend(&mut self, _now: Instant) {
        if self.in_flight {
            self.in_flight = false;
            self.want_send = true;
            self.challenge_is_fresh = [false; 2];
        }
    }

    /// Acts on timers (refresh, retry).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.wake_at {
            Some(at) if at <= now => {
                self.wake_at = None;
                if matches!(
                    self.state,
                    RegistrationState::Registered | RegistrationState::WaitingToRetry
                ) {
                    self.state = RegistrationState::Registering;
                    self.challenge_is_fresh = [false; 2];
                    self.interval_retries = 0;
                    self.want_send = true;
                }
            }
            _ => {}
        }
    }

    /// When [`Registration::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake_at
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    fn handle_success(&mut self, now: Instant, response: &rsip::Response) {
        self.stale_contact = None;
        // Only a datagram transport learns its public address this way; over a connection the
        // rport is the connection's ephemeral port, which is not where we listen.
        let public = public_address(response).filter(|_| !self.config.transport.is_reliable());
        if let Some(public) = public {
            if public != self.contact_addr && self.state == RegistrationState::Registering {
                tracing::info!(old = %self.contact_addr, new = %public, "contact rewritten from received/rport");
                self.stale_contact = Some(self.contact_addr);
                self.contact_addr = public;
                self.want_send = true;
                return;
            }
        }
        let granted = self.granted_expiry(response);
        self.challenge_is_fresh = [false; 2];
        self.stale_in_a_row = 0;
        self.consecutive_failures = 0;
        self.interval_retries = 0;
        if granted == 0 {
            self.fail(
                FailureKind::Rejected,
                Some(response.status_code.code()),
                "the registrar granted no time to the binding".into(),
            );
            return;
        }
        self.state = RegistrationState::Registered;
        // Refresh when 85 % of the granted time has passed.
        let refresh = Duration::from_millis(u64::from(granted) * 850);
        self.wake_at = Some(now + refresh);
        self.events.push_back(RegistrationEvent::Registered {
            expires: granted,
            contact: self.contact_uri(self.contact_addr),
        });
    }

    fn handle_challenge(&mut self, now: Instant, response: &rsip::Response, code: u16) {
        let is_proxy = code == 407;
        let values = if is_proxy {
            response.proxy_authenticate()
        } else {
            response.www_authenticate()
        };
        let challenges: Vec<Challenge> = values
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .collect();
        let session = crate::auth::choose(&challenges)
            .cloned()
            .and_then(|challenge| DigestSession::new(challenge).ok());
        let Some(session) = session else {
            let reason = format!("{code} without a challenge Callisto can answer");
            return self.finish_with_auth_failure(now, code, reason);
        };
        if self.config.credentials.is_none() {
            return self.finish_with_auth_failure(
                now,
                code,
                "the server asks for a password and none is configured".into(),
            );
        }
        let stale = session.challenge().stale;
        let k = usize::from(is_proxy);
        if self.in_flight_has_credentials[k] && self.challenge_is_fresh[k] && !stale {
            return self.finish_with_auth_failure(now, code, "wrong user name or password".into());
        }
        if stale {
            self.stale_in_a_row += 1;
            if self.stale_in_a_row > MAX_STALE_IN_A_ROW {
                let reason = "the server calls every nonce stale".into();
                return self.finish_with_auth_failure(now, code, reason);
            }
        } else {
            self.stale_in_a_row = 0;
        }
        self.digest[k] = Some(session);
        self.challenge_is_fresh[k] = true;
        self.want_send = true;
    }

    fn finish_with_auth_failure(&mut self, _now: Instant, code: u16, reason: String) {
        if self.state == RegistrationState::Unregistering {
            self.finish_unregister();
            return;
        }
        self.fail(FailureKind::AuthenticationFailed, Some(code), reason);
    }

    fn handle_interval_too_brief(&mut self, now: Instant, response: &rsip::Response) {
        // The next request reuses our nonces; a challenge to it is not an answer to them.
        self.challenge_is_fresh = [false; 2];
        match response.min_expires() {
            Some(min) if min > self.expires && self.interval_retries < 2 => {
                self.interval_retries += 1;
                self.expires = min;
                self.want_send = true;
            }
            _ => {
                let reason =
                    "the registrar wants a longer interval and did not say how long".into();
                self.fail_and_retry(now, FailureKind::ServerError, Some(423), reason, None);
            }
        }
    }

    fn finish_unregister(&mut self) {
        self.state = RegistrationState::Unregistered;
        self.wake_at = None;
        self.want_send = false;
        self.events.push_back(RegistrationEvent::Unregistered);
    }

    fn fail(&mut self, kind: FailureKind, code: Option<u16>, reason: String) {
        self.state = RegistrationState::Failed;
        self.wake_at = None;
        self.events.push_back(RegistrationEvent::Failed {
            kind,
            code,
            reason,
            retry_in: None,
        });
    }

    fn fail_and_retry(
        &mut self,
        now: Instant,
        kind: FailureKind,
        code: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    ) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let delay = retry_after.unwrap_or_else(|| self.backoff());
        self.state = RegistrationState::WaitingToRetry;
        self.wake_at = Some(now + delay);
        self.events.push_back(RegistrationEvent::Failed {
            kind,
            code,
            reason,
            retry_in: Some(delay),
        });
    }

    /// RFC 5626 §4.5: min(max, base * 2^(failures-1)), then a random point between half and all of it.
    fn backoff(&mut self) -> Duration {
        let exponent = self.consecutive_failures.saturating_sub(1).min(16);
        let full = self
            .config
            .retry_base
            .saturating_mul(1u32 << exponent)
            .min(self.config.retry_max);
        let fraction = 500 + next_random(&mut self.rng_state) % 501; // 50.0 % .. 100.0 %
        full.mul_f64(fraction as f64 / 1000.0)
    }

    /// The expiry the registrar granted: our Contact's `expires`, else `Expires`, else what we
    /// asked for. Our Contact is recognised by its URI or its `+sip.instance`.
    fn granted_expiry(&self, response: &rsip::Response) -> u32 {
        let ours = self.contact_user_host(self.contact_addr);
        let contacts = response.contacts();
        let mine = contacts.iter().find(|c| {
            let user_host = c.uri.split_once(':').map_or(c.uri, |(_, rest)| rest);
            user_host.split(';').next() == Some(ours.as_str())
                || c.sip_instance()
                    .is_some_and(|i| i.contains(&self.config.instance_id))
        });
        let single = (contacts.len() == 1).then(|| contacts.first()).flatten();
        mine.or(single)
            .and_then(|c| c.expires())
            .or_else(|| response.expires())
            .unwrap_or(self.expires)
    }

    /// The host part of Via and Contact: the configured host name, else `addr`.
    fn sent_by(&self, addr: SocketAddr) -> String {
        match &self.config.contact_host {
            Some(host) => host.clone(),
            None => addr.to_string(),
        }
    }

    /// `user@host:port` of our Contact at `addr`.
    fn contact_user_host(&self, addr: SocketAddr) -> String {
        let host = self.sent_by(addr);
        match self.config.aor.auth.as_ref() {
            Some(auth) if !auth.user.is_empty() => format!("{}@{host}", auth.user),
            _ => host,
        }
    }

    /// Our Contact URI at `addr`. WebSocket contacts say `transport=ws` over WSS too, with the
    /// `sip` scheme, as RFC 7118 §8.1 shows.
    fn contact_uri(&self, addr: SocketAddr) -> String {
        let (scheme, transport) = match self.config.transport {
            TransportKind::Udp => ("sip", ""),
            TransportKind::Tcp => ("sip", ";transport=tcp"),
            TransportKind::Tls => ("sips", ";transport=tls"),
            TransportKind::Ws | TransportKind::Wss => ("sip", ";transport=ws"),
        };
        format!("{scheme}:{}{transport}", self.contact_user_host(addr))
    }

    fn build_request(&mut self) -> rsip::Request {
        self.cseq += 1;
        let unregistering = self.state == RegistrationState::Unregistering;
        let expires = if unregistering { 0 } else { self.expires };
        let branch = format!(
            "{BRANCH_MAGIC_COOKIE}{:016x}",
            next_random(&mut self.rng_state)
        );
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.config.transport.via_token(),
            self.sent_by(self.config.local_addr),
        );
        let aor = self.config.aor.to_string();
        let instance = format!(
            ";+sip.instance=\"<{}>\";reg-id={}",
            self.config.instance_id, self.config.reg_id
        );
        let mut contact = format!(
            "<{}>{instance};expires={expires}",
            self.contact_uri(self.contact_addr)
        );
        if let Some(stale) = self.stale_contact {
            contact.push_str(&format!(", <{}>;expires=0", self.contact_uri(stale)));
        }
        let mut headers: Vec<rsip::Header> = vec![
            rsip::headers::Via::new(via).into(),
            rsip::headers::MaxForwards::new("70").into(),
            rsip::headers::From::new(format!("<{aor}>;tag={}", self.from_tag)).into(),
            rsip::headers::To::new(format!("<{aor}>")).into(),
            rsip::headers::CallId::new(self.call_id.clone()).into(),
            rsip::headers::CSeq::new(format!("{} REGISTER", self.cseq)).into(),
            rsip::headers::Contact::new(contact).into(),
            rsip::headers::Expires::new(expires.to_string()).into(),
            rsip::headers::Supported::new("path, outbound").into(),
            rsip::headers::UserAgent::new(self.config.user_agent.clone()).into(),
        ];
        self.in_flight_has_credentials = [false; 2];
        for k in [REGISTRAR, PROXY] {
            let (Some(digest), Some(credentials)) =
                (self.digest[k].as_mut(), &self.config.credentials)
            else {
                continue;
            };
            let cnonce = format!("{:016x}", next_random(&mut self.rng_state));
            let uri = self.config.registrar.to_string();
            let value = digest.authorization(credentials, "REGISTER", &uri, &cnonce);
            let header = if k == PROXY {
                rsip::Header::ProxyAuthorization(rsip::headers::ProxyAuthorization::new(value))
            } else {
                rsip::Header::Authorization(rsip::headers::Authorization::new(value))
            };
            headers.push(header);
            self.in_flight_has_credentials[k] = true;
        }
        headers.push(rsip::headers::ContentLength::new("0").into());
        rsip::Request {
            method: rsip::Method::Register,
            uri: self.config.registrar.clone(),
            version: rsip::Version::V2,
            headers: headers.into(),
            body: Vec::new(),
        }
    }
}

/// `received`/`rport` of the top Via, if the server told us our public address.
fn public_address(response: &rsip::Response) -> Option<SocketAddr> {
    let via = response.top_via()?;
    let ip: std::net::IpAddr = via
        .received()?
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .ok()?;
    let port = via.rport().flatten()?;
    Some(SocketAddr::new(ip, port))
}

/// The reason phrase of a response (the parser keeps the server's own words).
fn reason_of(response: &rsip::Response) -> String {
    match &response.status_code {
        rsip::StatusCode::Other(_, reason) if !reason.is_empty() => reason.clone(),
        other => other.to_string(),
    }
}

/// xorshift64*: enough for tags and jitter; the seed comes from the driver.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}
