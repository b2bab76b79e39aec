//! Locating SIP servers from `sip:` and `sips:` URIs (RFC 3263 §4).
//!
//! The decisions are pure functions, tested without a network: [`first_step`] says what to look
//! up for a URI, [`srv_queries_from_naptr`] and [`fallback_srv_queries`] say which SRV names to ask,
//! [`order_srv`] orders SRV records by priority with the weighted random choice of RFC 2782 (the
//! random source is an argument). [`SipResolver`] performs the lookups with hickory-resolver:
//!
//! ```text
//!   IP literal ─────────────────────────────────────────────► targets (no DNS at all)
//!   name + port ──────────────────────────────► A/AAAA ─────► targets
//!   name + transport ─────────────► SRV ──────► A/AAAA ─────► targets
//!   name ──► NAPTR ──(none)──► SRV _sip._udp, _sip._tcp, _sips._tcp ──(none)──► A/AAAA, default port
//! ```
//!
//! A TLS certificate is checked against the URI's host, never against an SRV target
//! (RFC 5922 §4): that name travels in [`Resolution::server_name`].

mod resolver;
#[cfg(test)]
#[path = "../tests/support/dns_server.rs"]
#[allow(dead_code)]
mod test_server;

use std::net::IpAddr;

use rand::Rng;

pub use callisto_signaling::transport::{Target, TransportKind};
pub use resolver::SipResolver;

/// Why a server could not be located.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The system has no usable DNS configuration (no name servers, unreadable resolv.conf).
    #[error("no DNS configuration: {0}")]
    NoConfig(String),
    /// A lookup failed for a reason other than "no such records" (time-out, network error).
    #[error("DNS lookup of {name} failed: {reason}")]
    Lookup {
        /// The name looked up.
        name: String,
        /// Why, in words.
        reason: String,
    },
    /// Every step came back empty.
    #[error("no SIP server found for {0}")]
    NotFound(String),
    /// The URI cannot be resolved (no host, or not a `sip:`/`sips:` URI, or a transport with no
    /// RFC 3263 mapping).
    #[error("cannot locate a server for this URI: {0}")]
    BadUri(String),
}

/// A URI's host: an IP literal needs no DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A domain name (without a trailing dot).
    Name(String),
}

impl Host {
    /// Parses a URI host: an IP literal (IPv6 may be bracketed) or a domain name.
    pub fn parse(host: &str) -> Host {
        let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        match unbracketed.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// What RFC 3263 looks at in a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerQuery {
    /// The host part.
    pub host: Host,
    /// An explicit port, if the URI has one.
    pub port: Option<u16>,
    /// The `transport=` parameter, if any.
    pub transport: Option<TransportKind>,
    /// Whether the scheme is `sips:` (only TLS is then acceptable).
    pub secure: bool,
}

impl ServerQuery {
    /// Takes the host, port, transport and scheme from a `sip:` or `sips:` URI.
    pub fn from_uri(uri: &rsip::Uri) -> Result<ServerQuery, DnsError> {
        let secure = match &uri.scheme {
            None | Some(rsip::Scheme::Sip) => false,
            Some(rsip::Scheme::Sips) => true,
            Some(rsip::Scheme::Other(other)) => {
                return Err(DnsError::BadUri(format!("the scheme {other:?}")))
            }
        };
        let host = match &uri.host_with_port.host {
            rsip::Host::IpAddr(ip) => Host::Ip(*ip),
            rsip::Host::Domain(domain) => Host::parse(&domain.to_string()),
        };
        let transport = match uri.transport() {
            None => None,
            Some(rsip::Transport::Udp) => Some(TransportKind::Udp),
            Some(rsip::Transport::Tcp) => Some(TransportKind::Tcp),
            Some(rsip::Transport::Tls) => Some(TransportKind::Tls),
            Some(rsip::Transport::Ws) => Some(TransportKind::Ws),
            Some(rsip::Transport::Wss) => Some(TransportKind::Wss),
            Some(other) => return Err(DnsError::BadUri(format!("transport {other}"))),
        };
        Ok(ServerQuery {
            host,
            port: uri.host_with_port.port.map(|port| *port.value()),
            transport,
            secure,
        })
    }

    /// The transport when DNS does not choose (RFC 3263 §4.1): the URI's, else UDP for `sip:`
    /// and TLS for `sips:` (where TCP also means TLS, and WS means WSS).
    pub fn default_transport(&self) -> TransportKind {
        match (self.transport, self.secure) {
            (Some(TransportKind::Tcp), true) => TransportKind::Tls,
            (Some(TransportKind::Ws), true) => TransportKind::Wss,
            (Some(kind), _) => kind,
            (None, false) => TransportKind::Udp,
            (None, true) => TransportKind::Tls,
        }
    }
}

/// Where a request goes: targets to try in order, and the name a TLS certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The targets, best first; on failure the next one is tried (RFC 3263 §4.3).
    pub targets: Vec<Target>,
    /// The URI's host, for TLS verification and SNI (an IP literal is written as the address).
    pub server_name: String,
}

/// An SRV name to ask, and the transport its records stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvQuery {
    /// For example `_sips._tcp.example.com`.
    pub name: String,
    /// The transport of the servers it lists.
    pub transport: TransportKind,
}

/// The first thing to do for a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to look up: the host is an IP literal.
    Done(Resolution),
    /// An explicit port: look up A/AAAA only (RFC 3263 §4.2).
    LookupAddress {
        /// The host name.
        name: String,
        /// The port to use.
        port: u16,
        /// The transport to use.
        transport: TransportKind,
    },
    /// A transport but no port: ask SRV for that transport (RFC 3263 §4.2).
    LookupSrv(Vec<SrvQuery>),
    /// Neither: start with NAPTR (RFC 3263 §4.1).
    LookupNaptr {
        /// The host name.
        name: String,
    },
}

/// Decides the first step for a URI.
pub fn first_step(query: &ServerQuery) -> Step {
    let transport = query.default_transport();
    match (&query.host, query.port, query.transport) {
        (Host::Ip(ip), port, _) => Step::Done(Resolution {
            targets: vec![Target::new(
                transport,
                (*ip, port.unwrap_or(transport.default_port())).into(),
            )],
            server_name: ip.to_string(),
        }),
        (Host::Name(name), Some(port), _) => Step::LookupAddress {
            name: name.clone(),
            port,
            transport,
        },
        (Host::Name(name), None, Some(kind)) => match srv_query_for(name, kind, query.secure) {
            Some(srv) => Step::LookupSrv(vec![srv]),
            // No SRV service for this transport (WebSocket): the name with the default port
            // of the transport the URI stands for (a `sips:` URI's `ws` is WSS, RFC 3261
            // §26.2.2).
            None => Step::LookupAddress {
                name: name.clone(),
                port: transport.default_port(),
                transport,
            },
        },
        (Host::Name(name), None, None) => Step::LookupNaptr { name: name.clone() },
    }
}

fn srv_query_for(domain: &str, kind: TransportKind, secure: bool) -> Option<SrvQuery> {
    let service = match (kind, secure) {
        (TransportKind::Udp, false) => "_sip._udp",
        (TransportKind::Tcp, false) => "_sip._tcp",
        (TransportKind::Tls, _) | (TransportKind::Tcp, true) => "_sips._tcp",
        _ => return None,
    };
    let transport = if secure { TransportKind::Tls } else { kind };
    Some(SrvQuery {
        name: format!("{service}.{domain}"),
        transport,
    })
}

/// One NAPTR record, as far as RFC 3263 cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Lower first.
    pub order: u16,
    /// Lower first among equal `order`.
    pub preference: u16,
    /// `S` for records that lead to SRV.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, …
    pub service: String,
    /// The SRV name to ask (without a trailing dot).
    pub replacement: String,
}

/// Picks the usable NAPTR records (flag `S`, a service we speak, TLS only for `sips:`) and
/// turns them into SRV queries, by order and then preference.
pub fn srv_queries_from_naptr(records: &[NaptrRecord], secure: bool) -> Vec<SrvQuery> {
    let mut usable: Vec<(&NaptrRecord, TransportKind)> = records
        .iter()
        .filter(|record| record.flags.eq_ignore_ascii_case("s"))
        .filter_map(|record| {
            let transport = match record.service.to_ascii_uppercase().as_str() {
                "SIP+D2U" if !secure => TransportKind::Udp,
                "SIP+D2T" if !secure => TransportKind::Tcp,
                "SIPS+D2T" => TransportKind::Tls,
                _ => return None,
            };
            Some((record, transport))
        })
        .collect();
    usable.sort_by_key(|(record, _)| (record.order, record.preference));
    usable
        .into_iter()
        .map(|(record, transport)| SrvQuery {
            name: record.replacement.trim_end_matches('.').to_owned(),
            transport,
        })
        .collect()
}

/// The SRV queries to make when a domain has no usable NAPTR records, in order of preference.
pub fn fallback_srv_queries(domain: &str, secure: bool) -> Vec<SrvQuery> {
    let kinds: &[TransportKind] = if secure {
        &[TransportKind::Tls]
    } else {
        &[TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls]
    };
    kinds
        .iter()
        .filter_map(|kind| srv_query_for(domain, *kind, false))
        .collect()
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower first.
    pub priority: u16,
    /// Relative share among equal priority.
    pub weight: u16,
    /// The server's port.
    pub port: u16,
    /// The server's host name (without a trailing dot); `.` means "no service here".
    pub target: String,
}

/// Orders SRV records as RFC 2782 says: by priority, and within a priority by repeated weighted
/// random choice (weight-0 records first in the running sum, so they are rarely picked first).
/// Records whose target is `.` are dropped.
pub fn order_srv<R: Rng + ?Sized>(records: &[SrvRecord], rng: &mut R) -> Vec<SrvRecord> {
    let mut remaining: Vec<SrvRecord> = records
        .iter()
        .filter(|record| !record.target.is_empty() && record.target != ".")
        .cloned()
        .collect();
    remaining.sort_by_key(|record| (record.priority, record.weight != 0));
    let mut ordered = Vec::with_capacity(remaining.len());
    while let Some(priority) = remaining.first().map(|record| record.priority) {
        let group_end = remaining
            .iter()
            .position(|record| record.priority != priority)
            .unwrap_or(remaining.len());
        let mut group: Vec<SrvRecord> = remaining.drain(..group_end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|record| u32::from(record.weight)).sum();
            let pick = rng.gen_range(0..=total);
            let mut running = 0u32;
            let chosen = group
                .iter()
                .position(|record| {
                    running += u32::from(record.weight);
                    running >= pick
                })
                .unwrap_or(0);
            ordered.push(group.remove(chosen));
        }
    }
    ordered
}

/// Targets for the addresses of one host.
pub fn targets_for(addresses: &[IpAddr], port: u16, transport: TransportKind) -> Vec<Target> {
    addresses
        .iter()
        .map(|ip| Target::new(transport, (*ip, port).into()))
        .collect()
}

#[cfg(test)]
mod tests;
