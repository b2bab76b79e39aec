//! Route sets and next hops (RFC 3261 §12.1, §12.2.1.1, §16.12.1.2).
//!
//! A dialog's route set is the Record-Route of the message that created it (reversed by the
//! UAC). Each entry remembers whether its URI is a loose router (`;lr`): a strict router at the
//! head of the set takes the Request-URI itself, and the remote target moves to the last Route.
//! [`resolve`] turns the next hop's URI into a [`Target`] without DNS: only numeric hosts are
//! reachable that way, anything else falls back to the flow the call already uses.

use std::net::{IpAddr, SocketAddr};

use rsip::common::uri::param::Param;
use rsip::prelude::UntypedHeader;
use rsip::{Header, Headers};

use crate::message::NameAddr;
use crate::transport::{Target, TransportKind};

/// One entry of a route set: a Route header value and its parsed URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// The value as it goes into a Route header, `<sip:proxy.example;lr>`.
    pub value: String,
    /// The URI inside it.
    pub uri: rsip::Uri,
    /// Whether the URI carries `lr` (a loose router, RFC 3261 §16.12.1.1).
    pub loose: bool,
}

impl RouteEntry {
    /// Parses one Record-Route or Route value; `None` when its URI does not parse.
    pub fn parse(value: &str) -> Option<RouteEntry> {
        let addr = NameAddr::parse(value)?;
        let uri = addr.parsed_uri()?;
        let loose = uri.params.iter().any(|p| match p {
            Param::Lr => true,
            Param::Other(name, _) => name.value().eq_ignore_ascii_case("lr"),
            _ => false,
        });
        let mut value = format!("<{}>", addr.uri);
        if !addr.params.is_empty() {
            value.push(';');
            value.push_str(addr.params);
        }
        Some(RouteEntry { value, uri, loose })
    }
}

/// The Record-Route values of a message, in order; values that do not parse are skipped.
pub(crate) fn record_route(headers: &Headers) -> Vec<RouteEntry> {
    headers
        .iter()
        .filter_map(|h| match h {
            Header::RecordRoute(v) => Some(v.value()),
            _ => None,
        })
        .flat_map(crate::message::split_list)
        .filter_map(RouteEntry::parse)
        .collect()
}

/// The Request-URI and Route values of a request sent over `routes` to `remote_target`
/// (RFC 3261 §12.2.1.1): with a loose router first, the remote target is the Request-URI and
/// every entry a Route; with a strict router first, its URI is the Request-URI and the remote
/// target becomes the last Route.
pub(crate) fn request_target(
    routes: &[RouteEntry],
    remote_target: &rsip::Uri,
) -> (rsip::Uri, Vec<String>) {
    match routes.split_first() {
        Some((first, rest)) if !first.loose => {
            let mut uri = first.uri.clone();
            // Parameters that are not allowed in a Request-URI (§19.1.1) are dropped.
            uri.params.retain(|p| !matches!(p, Param::Lr));
            let mut values: Vec<String> = rest.iter().map(|r| r.value.clone()).collect();
            values.push(format!("<{remote_target}>"));
            (uri, values)
        }
        _ => (
            remote_target.clone(),
            routes.iter().map(|r| r.value.clone()).collect(),
        ),
    }
}

/// Where a request to `uri` goes: the URI's numeric host and port over its `transport`
/// parameter (else the flow's transport); when the host is a name, which this sans-IO layer
/// cannot resolve, the flow itself.
pub fn resolve(uri: &rsip::Uri, flow: Target) -> Target {
    let Some(ip) = numeric_host(uri) else {
        return flow;
    };
    let transport = uri
        .transport()
        .and_then(|t| TransportKind::parse(&t.to_string()))
        .unwrap_or(flow.transport);
    let port = uri
        .port()
        .map(|p| *p.value())
        .unwrap_or_else(|| transport.default_port());
    Target::new(transport, SocketAddr::new(ip, port))
}

fn numeric_host(uri: &rsip::Uri) -> Option<IpAddr> {
    match uri.host() {
        rsip::Host::IpAddr(ip) => Some(*ip),
        rsip::Host::Domain(domain) => {
            let text = domain.to_string();
            text.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> rsip::Uri {
        rsip::Uri::try_from(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn entry(text: &str) -> RouteEntry {
        RouteEntry::parse(text).unwrap_or_else(|| panic!("{text} does not parse"))
    }

    #[test]
    fn loose_routes_keep_the_remote_target_as_request_uri() {
        let routes = vec![
            entry("<sip:p1.example.com;lr>"),
            entry("<sip:p2.example.com;lr>;x=1"),
        ];
        assert!(routes.iter().all(|r| r.loose));
        let target = uri("sip:bob@192.0.2.4:5070");
        let (request_uri, values) = request_target(&routes, &target);
        assert_eq!(request_uri, target);
        assert_eq!(
            values,
            vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>;x=1"]
        );
    }

    #[test]
    fn a_strict_router_takes_the_request_uri() {
        let routes = vec![
            entry("<sip:strict.example.com>"),
            entry("<sip:p2.example.com;lr>"),
        ];
        assert!(!routes[0].loose);
        let target = uri("sip:bob@192.0.2.4:5070");
        let (request_uri, values) = request_target(&routes, &target);
        assert_eq!(request_uri, uri("sip:strict.example.com"));
        assert_eq!(
            values,
            vec![
                "<sip:p2.example.com;lr>".to_owned(),
                "<sip:bob@192.0.2.4:5070>".to_owned()
            ]
        );
    }

    #[test]
    fn record_route_lists_are_split_and_garbage_skipped() {
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\nRecord-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\nRecord-Route: <>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let response = match crate::message::parse(text.as_bytes()) {
            Ok(rsip::SipMessage::Response(r)) => r,
            other => panic!("{other:?}"),
        };
        let routes = record_route(&response.headers);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1].value, "<sip:p2.example.com;lr>");
    }

    #[test]
    fn next_hops_resolve_numeric_hosts_only() {
        let flow = Target::new(TransportKind::Udp, "192.0.2.1:5060".parse().unwrap());
        assert_eq!(
            resolve(&uri("sip:bob@192.0.2.9:5080"), flow),
            Target::new(TransportKind::Udp, "192.0.2.9:5080".parse().unwrap())
        );
        assert_eq!(
            resolve(&uri("sip:192.0.2.9;transport=tcp;lr"), flow),
            Target::new(TransportKind::Tcp, "192.0.2.9:5060".parse().unwrap())
        );
        assert_eq!(resolve(&uri("sip:proxy.example.com;lr"), flow), flow);
    }
}
