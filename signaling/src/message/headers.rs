//! Typed access to the header values Callisto reads everywhere.
//!
//! These accessors read the raw header text `rsip` keeps and parse it themselves, leniently:
//! display names with commas or quotes, Contacts without angle brackets, quoted
//! `+sip.instance="<urn:uuid:…>"` parameters, and whitespace inside a Via
//! (`SIP / 2.0 / UDP host : 5060`) all work. Values borrow from the message; nothing is copied.

use rsip::message::HasHeaders;
use rsip::prelude::UntypedHeader;
use rsip::Header;

use crate::transport::TransportKind;

/// One Via value: `SIP/2.0/<transport> <host>[:<port>];<params>` (RFC 3261 §20.42).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The transport token as written (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, or another).
    pub transport_token: &'a str,
    /// The sent-by host: a name, an IPv4 address, or a bracketed IPv6 reference.
    pub host: &'a str,
    /// The sent-by port, when present.
    pub port: Option<u16>,
    /// The raw parameter text after the first `;`.
    pub params: &'a str,
}

impl<'a> Via<'a> {
    /// Parses one Via value; `None` when it is not of the form above.
    pub fn parse(value: &'a str) -> Option<Via<'a>> {
        let (head, params) = value.split_once(';').unwrap_or((value, ""));
        let mut parts = head.splitn(3, '/');
        let protocol = parts.next()?.trim();
        let version = parts.next()?.trim();
        let rest = parts.next()?.trim();
        if !protocol.eq_ignore_ascii_case("SIP") || version.is_empty() {
            return None;
        }
        let split_at = rest.find([' ', '\t'])?;
        let (transport_token, sent_by) = rest.split_at(split_at);
        let (host, port) = split_host_port(sent_by.trim())?;
        if transport_token.is_empty() || host.is_empty() {
            return None;
        }
        Some(Via {
            transport_token,
            host,
            port,
            params,
        })
    }

    /// The transport, when it is one Callisto speaks.
    pub fn transport(&self) -> Option<TransportKind> {
        TransportKind::parse(self.transport_token)
    }

    /// A parameter: `None` when absent, `Some(None)` when present without a value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        find_param(self.params, name)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.param("received").flatten()
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when requested but not filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport")
            .map(|v| v.and_then(|port| port.parse().ok()))
    }
}

fn split_host_port(sent_by: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if sent_by.starts_with('[') {
        let close = sent_by.find(']')?;
        let host = sent_by.get(..=close)?;
        let after = sent_by.get(close + 1..)?.trim();
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port.trim())),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match sent_by.split_once(':') {
            Some((host, port)) => (host.trim(), Some(port.trim())),
            None => (sent_by, None),
        }
    };
    if host.contains([' ', '\t']) {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    Some((host, port))
}

/// A `name-addr` or `addr-spec` with header parameters, as in From, To, Contact, Route
/// (RFC 3261 §20.10, §20.20, §20.39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, without its quotes (escapes are left as written).
    pub display_name: Option<&'a str>,
    /// The URI text, without angle brackets.
    pub uri: &'a str,
    /// The raw header-parameter text after the URI (without the leading `;`).
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    /// Parses `"Name" <uri>;params`, `Name <uri>;params`, `<uri>;params` or `uri;params`.
    pub fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        let value = value.trim();
        let (display_name, after_name) = if let Some(quoted) = value.strip_prefix('"') {
            let close = closing_quote(quoted)?;
            (
                Some(quoted.get(..close)?),
                quoted.get(close + 1..)?.trim_start(),
            )
        } else if let Some(open) = value.find('<') {
            let name = value.get(..open)?.trim();
            ((!name.is_empty()).then_some(name), value.get(open..)?)
        } else {
            let (uri, params) = value.split_once(';').unwrap_or((value, ""));
            let uri = uri.trim();
            if uri.is_empty() || uri.contains([' ', '\t', '<', '>']) {
                return None;
            }
            return Some(NameAddr {
                display_name: None,
                uri,
                params: params.trim(),
            });
        };
        let inner = after_name.strip_prefix('<')?;
        let close = inner.find('>')?;
        let uri = inner.get(..close)?.trim();
        let rest = inner.get(close + 1..)?.trim();
        let params = match rest.strip_prefix(';') {
            Some(params) => params.trim(),
            None if rest.is_empty() => "",
            None => return None,
        };
        if uri.is_empty() {
            return None;
        }
        Some(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// A header parameter, with surrounding quotes removed: `None` when absent, `Some(None)`
    /// when present without a value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        find_param(self.params, name)
    }

    /// The `tag` parameter (From, To).
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }

    /// The `expires` parameter (Contact).
    pub fn expires(&self) -> Option<u32> {
        self.param("expires")
            .flatten()
            .and_then(parse_delta_seconds)
    }

    /// The `+sip.instance` parameter (RFC 5626), unquoted: `<urn:uuid:…>`.
    pub fn sip_instance(&self) -> Option<&'a str> {
        self.param("+sip.instance").flatten()
    }

    /// The `reg-id` parameter (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        self.param("reg-id").flatten().and_then(|v| v.parse().ok())
    }

    /// The URI parsed by `rsip`, when it can.
    pub fn parsed_uri(&self) -> Option<rsip::Uri> {
        rsip::Uri::try_from(self.uri).ok()
    }
}

/// The index of the closing `"` in text that follows an opening one, honouring `\` escapes.
fn closing_quote(quoted: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in quoted.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Iterates `name[=value]` pairs separated by `;`, ignoring `;` inside quoted values.
pub fn params(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let mut rest = text;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let mut in_quotes = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, b) in rest.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_quotes => escaped = true,
                b'"' => in_quotes = !in_quotes,
                b';' if !in_quotes => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let item = rest.get(..end).unwrap_or("").trim();
        rest = rest.get(end + 1..).unwrap_or("");
        if item.is_empty() {
            continue;
        }
        return Some(match item.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
            None => (item, None),
        });
    })
}

fn find_param<'a>(text: &'a str, name: &str) -> Option<Option<&'a str>> {
    params(text)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Parses delta-seconds, saturating at `u32::MAX` (RFC 3261 §20.19 treats larger values so).
fn parse_delta_seconds(text: &str) -> Option<u32> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        digits
            .parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32),
    )
}

/// A CSeq value: sequence number and method token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number.
    pub seq: u32,
    /// The method, as written.
    pub method: &'a str,
}

/// Typed access to the headers of any `rsip` message (request, response, or either).
pub trait HeaderAccess {
    /// The message's headers.
    fn header_list(&self) -> &rsip::Headers;

    /// Every Via value, top first; values that do not parse are skipped.
    fn vias(&self) -> Vec<Via<'_>> {
        raw_vias(self.header_list())
            .filter_map(Via::parse)
            .collect()
    }

    /// The topmost Via, if it parses.
    fn top_via(&self) -> Option<Via<'_>> {
        raw_vias(self.header_list()).next().and_then(Via::parse)
    }

    /// The topmost Via's branch parameter: the transaction key (RFC 3261 §17.2.3).
    fn branch(&self) -> Option<&str> {
        self.top_via().and_then(|via| via.branch())
    }

    /// The Call-ID.
    fn call_id(&self) -> Option<&str> {
        self.header_list().iter().find_map(|h| match h {
            Header::CallId(v) => Some(v.value().trim()),
            _ => None,
        })
    }

    /// The CSeq number and method.
    fn cseq(&self) -> Option<CSeq<'_>> {
        let value = self.header_list().iter().find_map(|h| match h {
            Header::CSeq(v) => Some(v.value()),
            _ => None,
        })?;
        let (seq, method) = value.trim().split_once([' ', '\t'])?;
        let method = method.trim();
        (!method.is_empty()).then_some(())?;
        Some(CSeq {
            seq: seq.parse().ok()?,
            method,
        })
    }

    /// The From header.
    #[allow(clippy::wrong_self_convention)] // "from" names the SIP From header
    fn from_addr(&self) -> Option<NameAddr<'_>> {
        self.header_list().iter().find_map(|h| match h {
            Header::From(v) => NameAddr::parse(v.value()),
            _ => None,
        })
    }

    /// The To header.
    fn to_addr(&self) -> Option<NameAddr<'_>> {
        self.header_list().iter().find_map(|h| match h {
            Header::To(v) => NameAddr::parse(v.value()),
            _ => None,
        })
    }

    /// The From tag.
    #[allow(clippy::wrong_self_convention)] // "from" names the SIP From header
    fn from_tag(&self) -> Option<&str> {
        self.from_addr().and_then(|a| a.tag())
    }

    /// The To tag.
    fn to_tag(&self) -> Option<&str> {
        self.to_addr().and_then(|a| a.tag())
    }

    /// Every Contact address, in order; `Contact: *` and values that do not parse are skipped
    /// (see [`HeaderAccess::contact_is_wildcard`]).
    fn contacts(&self) -> Vec<NameAddr<'_>> {
        raw_contacts(self.header_list())
            .flat_map(super::parser::split_list)
            .filter(|v| *v != "*")
            .filter_map(NameAddr::parse)
            .collect()
    }

    /// Whether the message carries `Contact: *` (RFC 3261 §10.2.2).
    fn contact_is_wildcard(&self) -> bool {
        raw_contacts(self.header_list()).any(|v| v.trim() == "*")
    }

    /// The Expires header, in seconds (typed, or built by us as an extension header).
    fn expires(&self) -> Option<u32> {
        self.header_list().iter().find_map(|h| match h {
            Header::Expires(v) => parse_delta_seconds(v.value()),
            Header::Other(n, v) if n.eq_ignore_ascii_case("Expires") => parse_delta_seconds(v),
            _ => None,
        })
    }

    /// The Event header's raw value (RFC 6665 §8.2.1), typed or not.
    fn event(&self) -> Option<&str> {
        self.header_list().iter().find_map(|h| match h {
            Header::Event(v) => Some(v.value()),
            Header::Other(n, v) if n.eq_ignore_ascii_case("Event") => Some(v.as_str()),
            _ => None,
        })
    }

    /// The Subscription-State header's raw value (RFC 6665 §8.2.3): the parser leaves it
    /// untyped, the typed form is read too.
    fn subscription_state(&self) -> Option<&str> {
        self.header_list().iter().find_map(|h| match h {
            Header::SubscriptionState(v) => Some(v.value()),
            Header::Other(n, v) if n.eq_ignore_ascii_case("Subscription-State") => Some(v.as_str()),
            _ => None,
        })
    }

    /// The Min-Expires header (RFC 3261 §20.23), in seconds.
    fn min_expires(&self) -> Option<u32> {
        self.header_list().iter().find_map(|h| match h {
            Header::MinExpires(v) => parse_delta_seconds(v.value()),
            _ => None,
        })
    }

    /// The Retry-After delay in seconds; a comment and parameters are ignored.
    fn retry_after(&self) -> Option<u32> {
        self.header_list().iter().find_map(|h| match h {
            Header::RetryAfter(v) => {
                let value = v.value().trim();
                let end = value
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(value.len());
                parse_delta_seconds(value.get(..end)?)
            }
            _ => None,
        })
    }

    /// Every WWW-Authenticate value, raw.
    fn www_authenticate(&self) -> Vec<&str> {
        self.header_list()
            .iter()
            .filter_map(|h| match h {
                Header::WwwAuthenticate(v) => Some(v.value()),
                _ => None,
            })
            .collect()
    }

    /// Every Proxy-Authenticate value, raw.
    fn proxy_authenticate(&self) -> Vec<&str> {
        self.header_list()
            .iter()
            .filter_map(|h| match h {
                Header::ProxyAuthenticate(v) => Some(v.value()),
                _ => None,
            })
            .collect()
    }

    /// Every value of a header `rsip` has no type for (e.g. `Session-Expires`, `Refer-To`),
    /// matched case-insensitively by full name.
    fn other_header(&self, name: &str) -> Vec<&str> {
        self.header_list()
            .iter()
            .filter_map(|h| match h {
                Header::Other(n, v) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl<T: HasHeaders> HeaderAccess for T {
    fn header_list(&self) -> &rsip::Headers {
        self.headers()
    }
}

fn raw_vias(headers: &rsip::Headers) -> impl Iterator<Item = &str> {
    headers.iter().filter_map(|h| match h {
        Header::Via(v) => Some(v.value()),
        _ => None,
    })
}

fn raw_contacts(headers: &rsip::Headers) -> impl Iterator<Item = &str> {
    headers.iter().filter_map(|h| match h {
        Header::Contact(v) => Some(v.value()),
        _ => None,
    })
}
