//! A small world for call tests: user agents (each an `Endpoint`), scripted nodes (a stateless
//! proxy that can record-route and fork, a scripted UAS on the transaction layer), a seeded
//! simulated network and a virtual clock. Every datagram sent is logged by its first line so
//! tests can count INVITEs, ACKs, CANCELs and BYEs.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use callisto_signaling::call::{Body, CallEvent, CallId, IncomingCallConfig, OutgoingCallConfig};
use callisto_signaling::endpoint::{Endpoint, EndpointEvent};
use callisto_signaling::message::{self, HeaderAccess};
use callisto_signaling::sim::{NetworkConfig, SimClock, SimNetwork};
use callisto_signaling::transaction::{TimerConfig, TransactionEvent, TransactionLayer, Transmit};
use callisto_signaling::transport::{Target, TransportKind};
use rsip::prelude::UntypedHeader;
use rsip::{Header, Request, Response, SipMessage};

pub fn udp(port: u16) -> Target {
    Target::new(TransportKind::Udp, SocketAddr::from(([127, 0, 0, 1], port)))
}

pub fn uri(text: &str) -> rsip::Uri {
    rsip::Uri::try_from(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn sdp(text: &str) -> Body {
    Body::sdp(text.as_bytes().to_vec())
}

/// Something on the simulated network.
pub trait Node {
    fn addr(&self) -> Target;
    fn receive(&mut self, now: Instant, from: Target, bytes: &[u8]);
    fn poll_transmit(&mut self) -> Option<Transmit>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}

/// A user agent: an endpoint and the call events it reported.
pub struct Ua {
    pub name: &'static str,
    pub endpoint: Endpoint,
    pub addr: Target,
    pub events: Vec<(CallId, CallEvent)>,
}

impl Ua {
    /// A user agent listening on 127.0.0.1:`port`, presenting `sip:<name>@127.0.0.1:<port>`
    /// as its Contact in incoming calls.
    pub fn new(name: &'static str, port: u16, seed: u64) -> Ua {
        let mut endpoint = Endpoint::with_seed(TimerConfig::default(), seed);
        endpoint.set_incoming_call_config(IncomingCallConfig {
            contacts: vec![(TransportKind::Udp, format!("sip:{name}@127.0.0.1:{port}"))],
            reply_via_source: false,
        });
        Ua {
            name,
            endpoint,
            addr: udp(port),
            events: Vec::new(),
        }
    }

    /// Moves the endpoint's events into `events`.
    pub fn collect(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                EndpointEvent::Call { id, event } => self.events.push((id, event)),
                EndpointEvent::Malformed { source, error } => {
                    panic!("{}: malformed message from {source}: {error}", self.name)
                }
                other => panic!("{}: unexpected {other:?}", self.name),
            }
        }
    }

    /// A configuration for calling `to` (a URI) through `target`, with an SDP offer.
    pub fn call_config(&self, to: &str, target: Target, offer: &str) -> OutgoingCallConfig {
        let from = uri(&format!("sip:{}@example.test", self.name));
        let mut config = OutgoingCallConfig::new(from, uri(to), target, self.addr.addr);
        config.display_name = Some(format!("{} (test)", self.name));
        config.body = Some(sdp(offer));
        config
    }

    /// The events of one call.
    pub fn events_of(&self, id: CallId) -> Vec<CallEvent> {
        self.events
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The id of the `n`th incoming call (0-based).
    pub fn incoming(&self, n: usize) -> Option<CallId> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, CallEvent::Incoming { .. }))
            .nth(n)
            .map(|(id, _)| *id)
    }

    pub fn has(&self, id: CallId, pred: impl Fn(&CallEvent) -> bool) -> bool {
        self.events.iter().any(|(i, e)| *i == id && pred(e))
    }

    /// Whether the call reported its end (`Ended` or `Failed`).
    pub fn is_over(&self, id: CallId) -> bool {
        self.has(id, |e| {
            matches!(e, CallEvent::Ended { .. } | CallEvent::Failed { .. })
        })
    }

    pub fn is_established(&self, id: CallId) -> bool {
        self.has(id, |e| matches!(e, CallEvent::Established { .. }))
    }
}

impl Node for Ua {
    fn addr(&self) -> Target {
        self.addr
    }
    fn receive(&mut self, now: Instant, from: Target, bytes: &[u8]) {
        self.endpoint.handle_datagram(now, bytes, from);
        self.collect();
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.endpoint.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.collect();
    }
}

/// One datagram put on the network.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Instant,
    pub from: Target,
    pub to: Target,
    /// The start line.
    pub line: String,
    pub text: String,
}

impl Sent {
    pub fn is_request(&self, method: &str) -> bool {
        self.line.starts_with(&format!("{method} "))
    }
    pub fn is_response(&self, code: u16, cseq_method: &str) -> bool {
        self.line.starts_with(&format!("SIP/2.0 {code} "))
            && self.text.lines().any(|l| {
                l.to_ascii_lowercase().starts_with("cseq:") && l.trim_end().ends_with(cseq_method)
            })
    }
}

/// Decides whether a datagram is lost on purpose (beyond the network's own loss).
pub type DropRule = Box<dyn FnMut(&Sent) -> bool>;

pub struct World {
    pub clock: SimClock,
    pub net: SimNetwork,
    pub uas: Vec<Ua>,
    pub nodes: Vec<Box<dyn Node>>,
    pub log: Vec<Sent>,
    pub drop_rule: Option<DropRule>,
}

impl World {
    pub fn new(config: NetworkConfig, seed: u64) -> World {
        World {
            clock: SimClock::new(Instant::now()),
            net: SimNetwork::new(config, seed),
            uas: Vec::new(),
            nodes: Vec::new(),
            log: Vec::new(),
            drop_rule: None,
        }
    }

    /// A perfect network with 10 ms of delay each way.
    pub fn lan(seed: u64) -> World {
        World::new(
            NetworkConfig {
                delay: Duration::from_millis(10),
                ..NetworkConfig::perfect()
            },
            seed,
        )
    }

    pub fn add_ua(&mut self, name: &'static str, port: u16) -> usize {
        let seed = u64::from(port) * 7919 + self.uas.len() as u64;
        self.uas.push(Ua::new(name, port, seed));
        self.uas.len() - 1
    }

    /// Gathers the events the user agents reported since the last step (after a command).
    pub fn collect(&mut self) {
        for ua in &mut self.uas {
            ua.collect();
        }
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Runs a command on the endpoint of user agent `ua` at the present time.
    pub fn command<R>(
        &mut self,
        ua: usize,
        command: impl FnOnce(&mut Endpoint, Instant) -> R,
    ) -> R {
        let now = self.clock.now();
        command(&mut self.uas[ua].endpoint, now)
    }

    /// Moves queued datagrams to the network, advances the clock to the next event and
    /// delivers what is due. Returns false when nothing is left to happen.
    pub fn step(&mut self, limit: Instant) -> bool {
        let now = self.clock.now();
        let mut outgoing: Vec<(Target, Transmit)> = Vec::new();
        for ua in &mut self.uas {
            ua.collect();
            while let Some(t) = ua.poll_transmit() {
                outgoing.push((ua.addr, t));
            }
        }
        for node in &mut self.nodes {
            while let Some(t) = node.poll_transmit() {
                outgoing.push((node.addr(), t));
            }
        }
        for (from, t) in outgoing {
            let text = String::from_utf8_lossy(&t.bytes).to_string();
            let sent = Sent {
                at: now,
                from,
                to: t.target,
                line: text.lines().next().unwrap_or("").to_owned(),
                text,
            };
            let dropped = self.drop_rule.as_mut().is_some_and(|rule| rule(&sent));
            self.log.push(sent);
            if !dropped {
                self.net.send(now, from, t.target, t.bytes);
            }
        }
        let next = self
            .uas
            .iter()
            .filter_map(|u| u.poll_timeout())
            .chain(self.nodes.iter().filter_map(|n| n.poll_timeout()))
            .chain(self.net.next_delivery())
            .min();
        let Some(next) = next else {
            return false;
        };
        if next > limit {
            self.clock.advance_to(limit);
            return false;
        }
        self.clock.advance_to(next);
        let now = self.clock.now();
        while let Some(d) = self.net.poll_deliver(now) {
            if let Some(ua) = self.uas.iter_mut().find(|u| u.addr == d.to) {
                ua.receive(now, d.from, &d.bytes);
            } else if let Some(node) = self.nodes.iter_mut().find(|n| n.addr() == d.to) {
                node.receive(now, d.from, &d.bytes);
            }
        }
        for ua in &mut self.uas {
            if ua.poll_timeout().is_some_and(|at| at <= now) {
                ua.handle_timeout(now);
            }
        }
        for node in &mut self.nodes {
            if node.poll_timeout().is_some_and(|at| at <= now) {
                node.handle_timeout(now);
            }
        }
        true
    }

    /// Runs until `done` holds (checked between steps) or `limit` of virtual time passes.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) -> bool {
        let end = self.clock.now() + limit;
        loop {
            for ua in &mut self.uas {
                ua.collect();
            }
            if done(self) {
                return true;
            }
            if self.clock.now() >= end || !self.step(end) {
                for ua in &mut self.uas {
                    ua.collect();
                }
                return done(self);
            }
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }

    pub fn count(&self, pred: impl Fn(&Sent) -> bool) -> usize {
        self.log.iter().filter(|s| pred(s)).count()
    }
}

fn parse(bytes: &[u8]) -> Option<SipMessage> {
    message::parse(bytes).ok()
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Where a SIP URI with a numeric host points.
fn uri_target(uri: &rsip::Uri) -> Option<Target> {
    let text = uri.host_with_port.to_string();
    let addr = if text.contains(':') {
        text.parse().ok()?
    } else {
        SocketAddr::new(text.parse().ok()?, 5060)
    };
    Some(Target::new(TransportKind::Udp, addr))
}

/// A stateless proxy (RFC 3261 §16.11): loose routing, optional Record-Route, and forking of
/// initial requests to fixed targets.
pub struct Proxy {
    pub addr: Target,
    pub record_route: bool,
    /// Initial requests (no To tag) go to every one of these instead of the Request-URI.
    pub forks: Vec<Target>,
    queue: VecDeque<Transmit>,
    /// The start lines of everything the proxy received.
    pub seen: Vec<String>,
}

impl Proxy {
    pub fn new(port: u16, record_route: bool, forks: Vec<Target>) -> Proxy {
        Proxy {
            addr: udp(port),
            record_route,
            forks,
            queue: VecDeque::new(),
            seen: Vec::new(),
        }
    }

    fn me(&self) -> String {
        self.addr.addr.to_string()
    }

    fn forward_request(&mut self, mut request: Request) {
        let me = self.me();
        // Our own Route entry is consumed.
        let mut removed = false;
        let mut headers: Vec<Header> = Vec::new();
        for h in request.headers.iter() {
            if let Header::Route(r) = h {
                if !removed && r.value().contains(&me) {
                    removed = true;
                    continue;
                }
            }
            headers.push(h.clone());
        }
        let next_route = headers.iter().find_map(|h| match h {
            Header::Route(r) => message::NameAddr::parse(r.value()).and_then(|a| a.parsed_uri()),
            _ => None,
        });
        let initial = request.to_tag().is_none();
        let targets: Vec<Target> = if let Some(route) = next_route {
            uri_target(&route).into_iter().collect()
        } else if initial && !self.forks.is_empty() {
            self.forks.clone()
        } else {
            uri_target(&request.uri).into_iter().collect()
        };
        let original_branch = request.branch().unwrap_or("none").to_owned();
        for (index, target) in targets.into_iter().enumerate() {
            let mut out: Vec<Header> = vec![rsip::headers::Via::new(format!(
                "SIP/2.0/UDP {me};branch=z9hG4bK-px-{index}-{original_branch}"
            ))
            .into()];
            if self.record_route && initial && request.method == rsip::Method::Invite {
                out.push(rsip::headers::RecordRoute::new(format!("<sip:{me};lr>")).into());
            }
            out.extend(headers.iter().cloned());
            request.headers = out.into();
            self.queue.push_back(Transmit {
                target,
                bytes: request.to_string().into_bytes().into(),
            });
        }
    }

    fn forward_response(&mut self, response: Response) {
        let mut headers: Vec<Header> = Vec::new();
        let mut popped = false;
        for h in response.headers.iter() {
            if matches!(h, Header::Via(_)) && !popped {
                popped = true;
                continue;
            }
            headers.push(h.clone());
        }
        let mut response = response;
        response.headers = headers.into();
        let Some(via) = response.top_via() else {
            return;
        };
        let port = via.port.unwrap_or(5060);
        let Ok(ip) = via.host.parse() else {
            return;
        };
        let target = Target::new(TransportKind::Udp, SocketAddr::new(ip, port));
        self.queue.push_back(Transmit {
            target,
            bytes: response.to_string().into_bytes().into(),
        });
    }
}

impl Node for Proxy {
    fn addr(&self) -> Target {
        self.addr
    }
    fn receive(&mut self, _now: Instant, _from: Target, bytes: &[u8]) {
        self.seen.push(first_line(bytes));
        match parse(bytes) {
            Some(SipMessage::Request(request)) => self.forward_request(request),
            Some(SipMessage::Response(response)) => self.forward_response(response),
            None => {}
        }
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.queue.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

/// Builds the responses of a scripted UAS to each new request, given the request and its
/// index: each response goes to the request with the index it is paired with (the new one,
/// or an earlier one whose transaction is still open).
pub type Script = Box<dyn FnMut(&Request, usize) -> Vec<(usize, Response)>>;

/// A UAS on a transaction layer whose answers come from a script.
pub struct ScriptedUas {
    pub addr: Target,
    layer: TransactionLayer,
    script: Script,
    keys: Vec<callisto_signaling::transaction::TransactionKey>,
    pub requests: Vec<Request>,
}

impl ScriptedUas {
    pub fn new(port: u16, script: Script) -> ScriptedUas {
        ScriptedUas {
            addr: udp(port),
            layer: TransactionLayer::new(TimerConfig::default()),
            script,
            keys: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn serve(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            if let TransactionEvent::Request { key, request, .. } = event {
                let index = self.requests.len();
                self.requests.push(request.clone());
                self.keys.push(key);
                for (to, response) in (self.script)(&request, index) {
                    if let Some(key) = self.keys.get(to) {
                        let _ = self.layer.respond(now, key, response);
                    }
                }
            }
        }
    }
}

impl Node for ScriptedUas {
    fn addr(&self) -> Target {
        self.addr
    }
    fn receive(&mut self, now: Instant, from: Target, bytes: &[u8]) {
        if let Some(message) = parse(bytes) {
            self.layer.handle_message(now, message, from);
            self.serve(now);
        }
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.layer.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.serve(now);
    }
}

/// A peer that sends what the test gives it and answers nothing by itself; what reaches it
/// is read from the world's log.
pub struct RawNode {
    pub addr: Target,
    pub outbox: Rc<RefCell<VecDeque<Transmit>>>,
}

impl RawNode {
    /// Adds a raw peer at `port`; returns its outbox.
    pub fn join(w: &mut World, port: u16) -> Rc<RefCell<VecDeque<Transmit>>> {
        let outbox = Rc::new(RefCell::new(VecDeque::new()));
        w.nodes.push(Box::new(RawNode {
            addr: udp(port),
            outbox: Rc::clone(&outbox),
        }));
        outbox
    }
}

impl Node for RawNode {
    fn addr(&self) -> Target {
        self.addr
    }
    fn receive(&mut self, _now: Instant, _from: Target, _: &[u8]) {}
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.borrow_mut().pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

/// A response to `request` with a To tag and extra header lines.
pub fn respond(request: &Request, code: u16, reason: &str, extra: &[(&str, String)]) -> Response {
    let mut response = message::response_to(request, code, reason);
    response
        .headers
        .retain(|h| !matches!(h, Header::ContentLength(_)));
    for (name, value) in extra {
        let header: Header = rsip::headers::header::Tokenizer {
            name: name.as_bytes(),
            value: value.as_bytes(),
        }
        .try_into()
        .unwrap_or_else(|_| panic!("bad test header {name}"));
        response.headers.push(header);
    }
    response
        .headers
        .push(rsip::headers::ContentLength::new("0").into());
    response
}
