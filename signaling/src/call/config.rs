//! What the application tells the endpoint about its calls.

use std::net::SocketAddr;

use super::Body;
use crate::auth::Credentials;
use crate::transport::{Target, TransportKind};

/// What an outgoing call needs.
#[derive(Debug, Clone)]
pub struct OutgoingCallConfig {
    /// Our address of record, for From.
    pub from: rsip::Uri,
    /// Our display name, for From.
    pub display_name: Option<String>,
    /// Whom we call, for To.
    pub to: rsip::Uri,
    /// The Request-URI; `to` when `None`.
    pub request_uri: Option<rsip::Uri>,
    /// Where the INVITE goes: the outbound proxy or registrar, or the callee itself.
    pub target: Target,
    /// Whether `target` is an outbound proxy that every request of the call goes through
    /// (RFC 3261 §8.1.2), whatever the route set and the remote target say.
    pub outbound_proxy: bool,
    /// Our address for the Via sent-by.
    pub local_addr: SocketAddr,
    /// Our Contact URI, `sip:alice@192.0.2.1:5070`.
    pub contact: String,
    /// Credentials for digest challenges (401/407).
    pub credentials: Option<Credentials>,
    /// The INVITE's body: the SDP offer. Send one: without it the 2xx carries the offer
    /// (reported in `Answered`), but the ACK goes out at once without an answer.
    pub body: Option<Body>,
    /// How many 3xx redirections are followed before the call fails.
    pub max_redirects: u8,
    /// Ask for a session timer of this many seconds (RFC 4028; the callee picks the
    /// refresher). A 422 raising the minimum is followed once.
    pub session_expires: Option<u32>,
}

impl OutgoingCallConfig {
    /// A configuration with our Contact at `local_addr` (with the target's transport), no
    /// credentials, no body, and up to 5 redirections.
    pub fn new(from: rsip::Uri, to: rsip::Uri, target: Target, local_addr: SocketAddr) -> Self {
        let user = from.user().map(|u| format!("{u}@")).unwrap_or_default();
        let transport = match target.transport {
            TransportKind::Udp => String::new(),
            other => format!(";transport={}", other.uri_param()),
        };
        let scheme = if target.transport.is_secure() {
            "sips"
        } else {
            "sip"
        };
        OutgoingCallConfig {
            contact: format!("{scheme}:{user}{local_addr}{transport}"),
            from,
            display_name: None,
            to,
            request_uri: None,
            target,
            outbound_proxy: false,
            local_addr,
            credentials: None,
            body: None,
            max_redirects: 5,
            session_expires: None,
        }
    }

    /// Presents us as `host` in Contact and Via instead of our socket address: the
    /// `.invalid` name of a WebSocket flow (RFC 7118 §5), where our address means nothing to
    /// the server. WebSocket contacts say `transport=ws` over WSS too, with the `sip` scheme.
    pub fn with_contact_host(mut self, host: &str) -> Self {
        let user = self
            .from
            .user()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let transport = match self.target.transport {
            TransportKind::Ws | TransportKind::Wss => ";transport=ws".to_owned(),
            TransportKind::Udp => String::new(),
            other => format!(";transport={}", other.uri_param()),
        };
        self.contact = format!("sip:{user}{host}{transport}");
        self
    }
}

/// How incoming calls present us.
#[derive(Debug, Clone, Default)]
pub struct IncomingCallConfig {
    /// Our Contact URI per transport, for the responses that create dialogs. Without one for
    /// the INVITE's transport, the INVITE's Request-URI is used: a registrar delivers INVITEs
    /// to the Contact we registered.
    pub contacts: Vec<(TransportKind, String)>,
    /// Send every in-dialog request of an incoming call back to where its INVITE came from
    /// (the flow to an outbound proxy), whatever the route set and remote target say.
    pub reply_via_source: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_flow_presents_its_invalid_host() {
        let from = rsip::Uri::try_from("sip:alice@example.org").unwrap();
        let to = rsip::Uri::try_from("sip:bob@example.org").unwrap();
        let target = Target::new(TransportKind::Wss, ([127, 0, 0, 1], 443).into());
        let local = ([127, 0, 0, 1], 40000).into();
        let plain = OutgoingCallConfig::new(from.clone(), to.clone(), target, local);
        assert_eq!(plain.contact, "sips:alice@127.0.0.1:40000;transport=wss");
        let ws = OutgoingCallConfig::new(from, to, target, local).with_contact_host("k3j.invalid");
        assert_eq!(ws.contact, "sip:alice@k3j.invalid;transport=ws");
    }
}
