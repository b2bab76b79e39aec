//! The engine: the one tokio task that owns the SIP endpoint, its transports and the calls.
//!
//! Everything that changes SIP state goes through [`EngineHandle`] as a [`Command`]; everything
//! that happened comes back as an [`EngineEvent`] (DESIGN.md rule 2). The task is a thin driver
//! around the sans-IO [`Endpoint`]: feed it what arrives and what time it is, then send what it
//! wants sent and sleep until it wants to be woken.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callisto_signaling::endpoint::{Endpoint, EndpointEvent, RegistrationId};
use callisto_signaling::registration::{FailureKind, RegistrationConfig, RegistrationEvent};
use callisto_signaling::transaction::TimerConfig;
use callisto_signaling::transport::{Target, TransportKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::account::ResolvedAccount;
use crate::dns::{first_step, ServerQuery, Step};
use crate::transport::{TransportConfig, TransportError, TransportEvent, Transports};
use calls::TransferRequest;

mod calls;
#[cfg(test)]
mod shutdown_tests;

pub use calls::{
    host_audio, host_video, peer_label, refused_change_in_words, AudioInput, AudioPlayback,
    AudioSummary, CallControls, CallFailure, CallKey, CallSummary, CallUpdate, ConferenceSeat,
    IceServerOptions, IceSummary, MediaOptions, MediaProfile, OutgoingCall, VideoInput,
    VideoOptions, VideoSummary,
};

/// What the engine can be asked to do.
#[derive(Debug)]
pub enum Command {
    /// Register an account; its events carry `account`, the caller's index for it.
    Register {
        account: usize,
        resolved: Box<ResolvedAccount>,
    },
    /// Remove one account's binding.
    Unregister {
        account: usize,
    },
    /// Place a call. With `account`, the INVITE goes to that account's registrar as the
    /// account's user; without, `call.target` is used as given.
    Call {
        key: CallKey,
        account: Option<usize>,
        call: Box<OutgoingCall>,
    },
    /// Take incoming calls with this media (they ring and are announced; answer each with
    /// [`Command::Answer`]); `None` declines them with `480`.
    AcceptCalls {
        media: Option<Box<MediaOptions>>,
    },
    /// Answer a ringing call; without `video`, a classic call's video is declined (port 0)
    /// and a WebRTC call starts with the camera off.
    Answer {
        key: CallKey,
        video: bool,
    },
    Reject {
        key: CallKey,
        code: u16,
    },
    HangUp {
        key: CallKey,
    },
    Hold {
        key: CallKey,
    },
    Resume {
        key: CallKey,
    },
    Dtmf {
        key: CallKey,
        digits: String,
    },
    /// Silence our microphone in this call (or let it be heard again).
    Mute {
        key: CallKey,
        muted: bool,
    },
    /// Show our picture in this call (on), or black instead (off); in a conference we host,
    /// the call whose input is the host's picture hides it from everyone.
    Camera {
        key: CallKey,
        on: bool,
    },
    /// Ask the other side to call `target` instead (blind transfer).
    Transfer {
        key: CallKey,
        target: String,
    },
    /// Merge these established calls into one conference hosted here (held ones are
    /// resumed); with a conference already running, they join it.
    Merge {
        keys: Vec<CallKey>,
    },
    /// Hang up every call, unregister everything, then stop.
    Shutdown,
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// A registration changed.
    Registration {
        account: usize,
        event: RegistrationEvent,
    },
    /// Something happened to a call.
    Call { key: CallKey, update: CallUpdate },
    /// The engine stopped (after [`Command::Shutdown`], once every binding was removed).
    Stopped,
}

/// How the engine's transports and timers are set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub transport: TransportConfig,
    pub timers: TimerConfig,
    /// How long shutdown waits for unregistrations before giving up.
    pub shutdown_grace: Duration,
}

/// The application's side of the engine.
pub struct EngineHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub events: mpsc::UnboundedReceiver<EngineEvent>,
    /// The local addresses the transports listen on.
    pub local_udp: Option<SocketAddr>,
    pub local_tcp: Option<SocketAddr>,
    call_keys: Arc<AtomicU64>,
}

impl EngineHandle {
    /// A key for a new outgoing call, unique among this engine's calls.
    pub fn new_call_key(&self) -> CallKey {
        CallKey(self.call_keys.fetch_add(1, Ordering::Relaxed))
    }
}

/// Binds the transports and starts the engine task on the current runtime.
pub async fn start(config: EngineConfig) -> Result<EngineHandle, TransportError> {
    let (transports, incoming) = Transports::bind(config.transport.clone()).await?;
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let call_keys = Arc::new(AtomicU64::new(1));
    let handle = EngineHandle {
        call_keys: Arc::clone(&call_keys),
        commands: command_tx,
        events: event_rx,
        local_udp: transports.local_addr(TransportKind::Udp),
        local_tcp: transports.local_addr(TransportKind::Tcp),
    };
    let (calls, media_events) = calls::Calls::new(call_keys);
    let driver = Driver {
        endpoint: Endpoint::new(config.timers),
        transports,
        events: event_tx,
        accounts: HashMap::new(),
        account_configs: HashMap::new(),
        calls,
        server_names: HashMap::new(),
        shutdown_deadline: None,
        shutdown_grace: config.shutdown_grace,
        keepalive_interval: config.transport.keepalive_interval,
        next_keepalive: None,
    };
    tokio::spawn(driver.run(incoming, command_rx, media_events));
    Ok(handle)
}

struct Driver {
    endpoint: Endpoint,
    transports: Transports,
    events: mpsc::UnboundedSender<EngineEvent>,
    accounts: HashMap<RegistrationId, usize>,
    /// Per account index: its registration and what its calls are made as.
    account_configs: HashMap<usize, (RegistrationId, RegistrationConfig)>,
    calls: calls::Calls,
    server_names: HashMap<Target, String>,
    shutdown_deadline: Option<Instant>,
    shutdown_grace: Duration,
    /// How often to refresh NAT bindings towards UDP servers (RFC 5626 §4.4.2: a double CRLF).
    /// Stream connections send their own CRLF pings in the transport.
    keepalive_interval: Option<Duration>,
    next_keepalive: Option<Instant>,
}

impl Driver {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<TransportEvent>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut media_events: mpsc::UnboundedReceiver<(CallKey, calls::CallMediaEvent)>,
    ) {
        let span = tracing::debug_span!("engine");
        let _entered = span.enter();
        let mut statistics = tokio::time::interval(Duration::from_secs(1));
        statistics.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // Once the application has dropped its handle the channel only says so, at once and
        // forever: it is not read again, or the loop would spin past the network and timers.
        let mut commands_open = true;
        loop {
            self.flush().await;
            if let Some(deadline) = self.shutdown_deadline {
                let ended = self.endpoint.all_registrations_ended()
                    && self.calls.is_empty()
                    && !self.endpoint.calls_finishing();
                if ended || Instant::now() >= deadline {
                    let _ = self.events.send(EngineEvent::Stopped);
                    return;
                }
            }
            let wake = self
                .endpoint
                .poll_timeout()
                .map(Instant::from_std)
                .into_iter()
                .chain(self.shutdown_deadline)
                .chain(self.next_keepalive)
                .min();
            // Commands first: what the application asked for (taking calls, hanging up) is in
            // force before the next message from the network is handled.
            tokio::select! {
                biased;
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.on_command(command).await,
                    None => {
                        commands_open = false;
                        self.begin_shutdown();
                    }
                },
                event = incoming.recv() => match event {
                    Some(event) => self.on_transport_event(event),
                    None => return,
                },
                Some((key, event)) = media_events.recv() => {
                    let now = Instant::now().into_std();
                    self.calls
                        .on_media_event(&mut self.endpoint, now, key, event, &self.events);
                }
                _ = statistics.tick() => {
                    self.calls.report_statistics(&self.events);
                    // Legs whose connection came up since: their streams can be offered;
                    // restated offers whose wait is over are made.
                    self.calls.update_forwarding(&mut self.endpoint);
                    let now = Instant::now().into_std();
                    self.calls.run_deferred_holds(&mut self.endpoint, now);
                }
                _ = sleep_until(wake) => {
                    self.send_keepalives().await;
                    let now = Instant::now().into_std();
                    self.endpoint.handle_timeout(now);
                }
            }
        }
    }

    fn on_transport_event(&mut self, event: TransportEvent) {
        let now = Instant::now().into_std();
        match event {
            TransportEvent::Message(incoming) => {
                self.endpoint
                    .handle_datagram(now, &incoming.bytes, incoming.source);
            }
            TransportEvent::ConnectionClosed { target, reason } => {
                tracing::info!(%target, %reason, "connection closed");
                let reason = format!("the connection to the server closed ({reason})");
                self.endpoint
                    .handle_flow_failure(now, target, FailureKind::Unreachable, &reason);
            }
            TransportEvent::KeepAlivePong { .. } => {}
        }
    }

    async fn on_command(&mut self, command: Command) {
        let now = Instant::now().into_std();
        match command {
            Command::Register { account, resolved } => {
                let ResolvedAccount {
                    registration,
                    targets,
                    server_name,
                    ws_path,
                } = *resolved;
                let Some(&first) = targets.first() else {
                    return;
                };
                let config = Self::with_local_address(&self.transports, registration, first).await;
                if let Some(name) = server_name {
                    for target in &targets {
                        self.server_names.insert(*target, name.clone());
                    }
                }
                if let Some(path) = ws_path {
                    for target in &targets {
                        self.transports.set_websocket_path(*target, &path);
                    }
                }
                if first.transport == TransportKind::Udp && self.next_keepalive.is_none() {
                    self.next_keepalive = self.keepalive_interval.map(|i| Instant::now() + i);
                }
                let seed = rand::random();
                let id = self
                    .endpoint
                    .add_registration(now, config.clone(), targets, seed);
                self.accounts.insert(id, account);
                self.account_configs.insert(account, (id, config));
            }
            Command::Unregister { account } => {
                let ids: Vec<RegistrationId> = self
                    .accounts
                    .iter()
                    .filter(|(_, a)| **a == account)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.endpoint.unregister(now, id);
                }
            }
            Command::Call { key, account, call } => {
                let mut call = *call;
                if let Some(account) = account {
                    let Some((id, config)) = self.account_configs.get(&account) else {
                        return;
                    };
                    if let Some(target) = self.endpoint.registration_target(*id) {
                        call.target = target;
                    }
                    call.from = config.aor.clone();
                    call.local_sip = config.local_addr;
                    call.credentials = config.credentials.clone();
                    call.contact_host = config.contact_host.clone();
                } else if call.local_sip.ip().is_unspecified() {
                    let ip = route_source_ip(call.target.addr).await;
                    call.local_sip.set_ip(ip.unwrap_or(call.local_sip.ip()));
                }
                self.calls
                    .start(&mut self.endpoint, now, key, call, account, &self.events);
            }
            Command::AcceptCalls { media } => self.calls.accept_incoming(media.map(|m| *m)),
            Command::Answer { key, video } => {
                self.calls.answer(&mut self.endpoint, now, key, video)
            }
            Command::Reject { key, code } => self.calls.reject(&mut self.endpoint, now, key, code),
            Command::HangUp { key } => self.calls.hang_up(&mut self.endpoint, now, key),
            Command::Hold { key } => self.calls.set_hold(&mut self.endpoint, now, key, true),
            Command::Resume { key } => self.calls.set_hold(&mut self.endpoint, now, key, false),
            Command::Mute { key, muted } => self.calls.set_mute(key, muted),
            Command::Camera { key, on } => self.calls.set_camera(key, on),
            Command::Merge { keys } => {
                self.calls
                    .merge(&mut self.endpoint, now, &keys, &self.events)
            }
            Command::Dtmf { key, digits } => {
                self.calls.send_dtmf(&mut self.endpoint, now, key, &digits)
            }
            Command::Transfer { key, target } => {
                self.calls.transfer(&mut self.endpoint, now, key, &target)
            }
            Command::Shutdown => self.begin_shutdown(),
        }
    }

    /// Places the new calls of the transfers peers asked for, as the same account (or the
    /// same identity, straight to the target, for calls without one).
    async fn place_transfers(&mut self) {
        for request in self.calls.take_transfer_requests() {
            let now = Instant::now().into_std();
            let account = request
                .account
                .and_then(|a| self.account_configs.get(&a))
                .map(|(id, config)| (self.endpoint.registration_target(*id), config.clone()));
            let local = [TransportKind::Udp, TransportKind::Tcp]
                .map(|kind| self.transports.local_addr(kind));
            let call = transfer_call(&request, account, local).await;
            let placed = match call {
                Ok(call) => self.calls.start(
                    &mut self.endpoint,
                    now,
                    request.new_call,
                    call,
                    request.account,
                    &self.events,
                ),
                Err(reason) => {
                    tracing::warn!(target = %request.target, %reason, "transfer not placed");
                    let _ = self.events.send(EngineEvent::Call {
                        key: request.new_call,
                        update: CallUpdate::Failed {
                            code: None,
                            reason,
                            cause: CallFailure::Local,
                            warning: None,
                        },
                    });
                    false
                }
            };
            self.calls
                .link_transfer(&mut self.endpoint, now, &request, placed);
        }
    }

    async fn send_keepalives(&mut self) {
        let (Some(due), Some(interval)) = (self.next_keepalive, self.keepalive_interval) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        // Only where each registration is now: the other addresses of a registrar hold no binding.
        let mut udp_servers: Vec<Target> = self
            .accounts
            .keys()
            .filter_map(|id| self.endpoint.registration_target(*id))
            .filter(|t| t.transport == TransportKind::Udp)
            .collect();
        udp_servers.sort_by_key(|t| t.addr);
        udp_servers.dedup();
        for target in &udp_servers {
            if let Err(error) = self.transports.send_keepalive(*target).await {
                tracing::debug!(%target, %error, "keep-alive not sent");
            }
        }
        self.next_keepalive = Some(Instant::now() + interval);
    }

    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_none() {
            let now = Instant::now().into_std();
            self.calls.hang_up_all(&mut self.endpoint, now);
            self.endpoint.unregister_all(now);
            self.shutdown_deadline = Some(Instant::now() + self.shutdown_grace);
        }
    }

    /// Our address as seen from `peer`: the listening address, or the route's source address
    /// when listening on all interfaces.
    async fn local_ip_towards(transports: &Transports, peer: SocketAddr) -> IpAddr {
        let listen = transports
            .local_addr(TransportKind::Udp)
            .or_else(|| transports.local_addr(TransportKind::Tcp))
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        if listen.is_unspecified() {
            route_source_ip(peer).await.unwrap_or(listen)
        } else {
            listen
        }
    }

    /// Puts the address we are reachable at for `target` into Via and Contact.
    async fn with_local_address(
        transports: &Transports,
        mut config: RegistrationConfig,
        target: Target,
    ) -> RegistrationConfig {
        let kind = match target.transport {
            TransportKind::Udp => TransportKind::Udp,
            _ => TransportKind::Tcp,
        };
        if let Some(local) = transports.local_addr(kind) {
            let ip = if local.ip().is_unspecified() {
                route_source_ip(target.addr).await.unwrap_or(local.ip())
            } else {
                local.ip()
            };
            config.local_addr = SocketAddr::new(ip, local.port());
        }
        config.transport = target.transport;
        config
    }

    async fn flush(&mut self) {
        loop {
            let mut busy = false;
            while let Some(event) = self.endpoint.poll_event() {
                busy = true;
                self.report(event).await;
            }
            while let Some(transmit) = self.endpoint.poll_transmit() {
                busy = true;
                let server_name = self.server_names.get(&transmit.target).map(String::as_str);
                if let Err(error) = self
                    .transports
                    .send(transmit.target, server_name, transmit.bytes)
                    .await
                {
                    tracing::warn!(target = %transmit.target, %error, "send failed");
                    let kind = match error {
                        TransportError::Tls { .. } | TransportError::CaFile { .. } => {
                            FailureKind::Insecure
                        }
                        _ => FailureKind::Unreachable,
                    };
                    self.endpoint.handle_flow_failure(
                        Instant::now().into_std(),
                        transmit.target,
                        kind,
                        &error.to_string(),
                    );
                }
            }
            // Answers are out: the media of the calls they answered can start.
            let now = Instant::now().into_std();
            busy |= self
                .calls
                .start_answered_media(&mut self.endpoint, now, &self.events);
            if !busy {
                return;
            }
        }
    }

    async fn report(&mut self, event: EndpointEvent) {
        match event {
            EndpointEvent::Registration { id, event } => {
                if let Some(account) = self.accounts.get(&id) {
                    let _ = self.events.send(EngineEvent::Registration {
                        account: *account,
                        event,
                    });
                }
            }
            EndpointEvent::Malformed { source, error } => {
                tracing::warn!(%source, %error, "malformed message");
            }
            EndpointEvent::Call { id, event } => {
                let local_ip = match &event {
                    callisto_signaling::call::CallEvent::Incoming { source, .. } => {
                        Some(Self::local_ip_towards(&self.transports, source.addr).await)
                    }
                    _ => None,
                };
                let now = Instant::now().into_std();
                self.calls
                    .on_event(&mut self.endpoint, now, id, event, local_ip, &self.events);
                Box::pin(self.place_transfers()).await;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The local IP the kernel would use to reach `peer` (a connected UDP socket sends nothing).
async fn route_source_ip(peer: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
    socket.connect(peer).await.ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// The outgoing call a transfer asks for: as `account` (its registrar target and
/// configuration) when the original call had one, else straight to the target from our
/// `local` UDP and TCP addresses.
async fn transfer_call(
    request: &TransferRequest,
    account: Option<(Option<Target>, RegistrationConfig)>,
    local: [Option<SocketAddr>; 2],
) -> Result<OutgoingCall, String> {
    let to = rsip::Uri::try_from(request.target.as_str()).map_err(|e| {
        format!(
            "the transfer target '{}' is not a SIP URI: {e}",
            request.target
        )
    })?;
    if let Some((target, config)) = account {
        let target = target.ok_or("the account has no registrar")?;
        return Ok(OutgoingCall {
            from: config.aor,
            to,
            target,
            local_sip: config.local_addr,
            credentials: config.credentials,
            contact_host: config.contact_host,
            media: request.media.clone(),
        });
    }
    // No account: straight to the target's address, which must be an IP literal.
    let query = ServerQuery::from_uri(&to).map_err(|e| e.to_string())?;
    let Step::Done(resolution) = first_step(&query) else {
        return Err(format!(
            "cannot reach '{}' without an account",
            request.target
        ));
    };
    let target = *resolution
        .targets
        .first()
        .ok_or("the target has no address")?;
    let (transport, addr) = (target.transport, target.addr);
    let local = local[usize::from(transport != TransportKind::Udp)]
        .ok_or("no local transport for the transfer target")?;
    let local_ip = if local.ip().is_unspecified() {
        route_source_ip(addr).await.unwrap_or(local.ip())
    } else {
        local.ip()
    };
    let local_sip = SocketAddr::new(local_ip, local.port());
    let from = request
        .identity
        .clone()
        .ok_or("no identity for the transfer")?;
    Ok(OutgoingCall {
        from,
        to,
        target,
        local_sip,
        credentials: None,
        contact_host: None,
        media: request.media.clone(),
    })
}
