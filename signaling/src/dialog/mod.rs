//! Dialogs (RFC 3261 §12): the state two user agents share for the life of a call.
//!
//! A [`Dialog`] is created from the INVITE and the response that carries a To tag — by the UAC
//! from a 1xx or 2xx ([`Dialog::new_uac`]), by the UAS from the request and the tag it chose
//! ([`Dialog::new_uas`]). It holds what every later request in the dialog needs:
//!
//! - the dialog ID: Call-ID, local tag, remote tag;
//! - the local and remote URIs (From and To of the requests we send);
//! - the remote target (the peer's Contact), replaced by target-refresh requests and responses
//!   ([`Dialog::refresh_target`]);
//! - the route set from Record-Route, reversed for the UAC, with loose (`;lr`) and strict
//!   routers told apart ([`route`]);
//! - the local CSeq counter ([`Dialog::next_seq`]) and the remote one, against which requests
//!   arriving out of order are refused ([`Dialog::check_remote_seq`], answered 500).
//!
//! [`Dialog::request`] builds an in-dialog request (BYE, re-INVITE, INFO, OPTIONS, ACK for a
//! 2xx with the INVITE's CSeq number) and [`Dialog::next_hop`] names the URI it is sent to: the
//! first Route, or the remote target when the route set is empty. The dialog is plain data: it
//! sends nothing and knows no clock.

pub mod route;

use rsip::prelude::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response};

use crate::message::headers::params;
use crate::message::{HeaderAccess, NameAddr};
pub use route::{resolve, RouteEntry};

/// What identifies a dialog (RFC 3261 §12): Call-ID and the two tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag: the From tag of the requests we send.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

/// Whether the dialog was created by a provisional response or confirmed by a 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx with a To tag (RFC 3261 §12.1).
    Early,
    /// Confirmed by a 2xx.
    Confirmed,
}

/// Why a dialog could not be created or a request could not be accepted in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header a dialog needs is missing or malformed.
    #[error("the {0} header is missing or malformed")]
    BadHeader(&'static str),
    /// The message has no tag where the dialog needs one (To of a response, From of a request).
    #[error("the {0} header has no tag")]
    MissingTag(&'static str),
    /// A request arrived with a CSeq number not above the last one (RFC 3261 §12.2.2).
    #[error("CSeq {got} is not above the last one, {last}")]
    OutOfOrder {
        /// The request's CSeq number.
        got: u32,
        /// The highest CSeq number seen from the peer.
        last: u32,
    },
}

/// One dialog, seen from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    /// Our address as it goes into From, without the tag.
    local_uri: String,
    /// The peer's address as it goes into To, without the tag.
    remote_uri: String,
    local_seq: u32,
    remote_seq: Option<u32>,
    remote_target: rsip::Uri,
    /// The peer's Contact carries `isfocus` (RFC 4579 §3.1): it hosts a conference.
    remote_focus: bool,
    route_set: Vec<RouteEntry>,
}

impl Dialog {
    /// The UAC's dialog from the INVITE it sent and a 1xx or 2xx carrying a To tag
    /// (RFC 3261 §12.1.2). The route set is the response's Record-Route, reversed; the remote
    /// target its Contact (the INVITE's Request-URI when it has none).
    pub fn new_uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let call_id = request.call_id().ok_or(DialogError::BadHeader("Call-ID"))?;
        let local_tag = request.from_tag().ok_or(DialogError::MissingTag("From"))?;
        let remote_tag = response.to_tag().ok_or(DialogError::MissingTag("To"))?;
        let seq = request.cseq().ok_or(DialogError::BadHeader("CSeq"))?.seq;
        let local_uri = raw(&request.headers, "From").ok_or(DialogError::BadHeader("From"))?;
        let remote_uri = raw(&request.headers, "To").ok_or(DialogError::BadHeader("To"))?;
        let mut route_set = route::record_route(&response.headers);
        route_set.reverse();
        let remote_target = contact_uri(response).unwrap_or_else(|| request.uri.clone());
        let state = if response.status_code.code() < 200 {
            DialogState::Early
        } else {
            DialogState::Confirmed
        };
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            state,
            local_uri: without_tag(local_uri),
            remote_uri: without_tag(remote_uri),
            local_seq: seq,
            remote_seq: None,
            remote_target,
            remote_focus: says_focus(response),
            route_set,
        })
    }

    /// The UAS's dialog from the INVITE it received and the To tag it chose (RFC 3261
    /// §12.1.1). The route set is the request's Record-Route in order; the dialog starts early
    /// and is confirmed with [`Dialog::confirm`] when the 2xx goes out.
    pub fn new_uas(request: &Request, local_tag: &str) -> Result<Dialog, DialogError> {
        let call_id = request.call_id().ok_or(DialogError::BadHeader("Call-ID"))?;
        let remote_tag = request.from_tag().ok_or(DialogError::MissingTag("From"))?;
        let seq = request.cseq().ok_or(DialogError::BadHeader("CSeq"))?.seq;
        let local_uri = raw(&request.headers, "To").ok_or(DialogError::BadHeader("To"))?;
        let remote_uri = raw(&request.headers, "From").ok_or(DialogError::BadHeader("From"))?;
        let remote_target = contact_uri(request).ok_or(DialogError::BadHeader("Contact"))?;
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            state: DialogState::Early,
            local_uri: without_tag(local_uri),
            remote_uri: without_tag(remote_uri),
            local_seq: 0,
            remote_seq: Some(seq),
            remote_target,
            remote_focus: says_focus(request),
            route_set: route::record_route(&request.headers),
        })
    }

    /// The dialog ID.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Marks the dialog confirmed (a 2xx was sent or received).
    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    /// The peer's Contact: where requests go when the route set is empty.
    pub fn remote_target(&self) -> &rsip::Uri {
        &self.remote_target
    }

    /// Whether the peer's Contact says `isfocus`: it hosts the conference this dialog is in
    /// (RFC 4579 §3.1), and serves its roster.
    pub fn remote_is_focus(&self) -> bool {
        self.remote_focus
    }

    /// The route set, in the order of the Route headers we send.
    pub fn route_set(&self) -> &[RouteEntry] {
        &self.route_set
    }

    /// Our address as in the From of our requests (without the tag).
    pub fn local_uri(&self) -> &str {
        &self.local_uri
    }

    /// The peer's address as in the To of our requests (without the tag).
    pub fn remote_uri(&self) -> &str {
        &self.remote_uri
    }

    /// The CSeq number of the last request we sent in this dialog.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// The highest CSeq number received from the peer, once one was.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Takes the next local CSeq number.
    pub fn next_seq(&mut self) -> u32 {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.local_seq
    }

    /// Raises the local CSeq counter to at least `seq` (requests sent before the dialog was
    /// confirmed, such as PRACKs in an early dialog).
    pub fn raise_local_seq(&mut self, seq: u32) {
        self.local_seq = self.local_seq.max(seq);
    }

    /// Whether a request we received belongs to this dialog: its Call-ID, its To tag (ours)
    /// and its From tag (theirs).
    pub fn matches_request(&self, request: &Request) -> bool {
        request.call_id() == Some(self.id.call_id.as_str())
            && request.to_tag() == Some(self.id.local_tag.as_str())
            && request.from_tag() == Some(self.id.remote_tag.as_str())
    }

    /// Whether a response to one of our requests belongs to this dialog.
    pub fn matches_response(&self, response: &Response) -> bool {
        response.call_id() == Some(self.id.call_id.as_str())
            && response.from_tag() == Some(self.id.local_tag.as_str())
            && response.to_tag() == Some(self.id.remote_tag.as_str())
    }

    /// Accepts the CSeq number of a request from the peer (not ACK or CANCEL, which reuse the
    /// INVITE's): it must be above the last one, or the request is out of order and must be
    /// answered 500 (RFC 3261 §12.2.2).
    pub fn check_remote_seq(&mut self, request: &Request) -> Result<(), DialogError> {
        let seq = request.cseq().ok_or(DialogError::BadHeader("CSeq"))?.seq;
        match self.remote_seq {
            Some(last) if seq <= last => Err(DialogError::OutOfOrder { got: seq, last }),
            _ => {
                self.remote_seq = Some(seq);
                Ok(())
            }
        }
    }

    /// A target-refresh request or its 2xx (re-INVITE, UPDATE) replaces the remote target
    /// with its Contact, when it carries one that parses (RFC 3261 §12.2).
    /// The Contact's `isfocus` parameter is read again with it.
    pub fn refresh_target(&mut self, message: &impl HeaderAccess) {
        if let Some(uri) = contact_uri(message) {
            self.remote_target = uri;
            self.remote_focus = says_focus(message);
        }
    }

    /// Replaces the route set and remote target from a 2xx that confirms an early dialog
    /// (RFC 3261 §12.1.2 computes them from the 2xx).
    pub fn confirm_with(&mut self, response: &Response) {
        let mut route_set = route::record_route(&response.headers);
        route_set.reverse();
        self.route_set = route_set;
        self.refresh_target(response);
        self.state = DialogState::Confirmed;
    }

    /// The URI the next request is sent to: the first Route, or the remote target.
    pub fn next_hop(&self) -> &rsip::Uri {
        self.route_set
            .first()
            .map_or(&self.remote_target, |r| &r.uri)
    }

    /// An in-dialog request (RFC 3261 §12.2.1.1) with CSeq `seq` (from [`Dialog::next_seq`],
    /// or the INVITE's number for the ACK of a 2xx), the given top Via value and, for
    /// target-refresh requests, our Contact header value (`<uri>;params`). It carries Request-URI and Route per the
    /// route set, Max-Forwards, From, To, Call-ID, CSeq and `Content-Length: 0`.
    pub fn request(&self, method: Method, seq: u32, via: &str, contact: Option<&str>) -> Request {
        let (uri, routes) = route::request_target(&self.route_set, &self.remote_target);
        let mut headers: Vec<Header> = vec![
            rsip::headers::Via::new(via).into(),
            rsip::headers::MaxForwards::new("70").into(),
        ];
        headers.extend(
            routes
                .into_iter()
                .map(|r| rsip::headers::Route::new(r).into()),
        );
        headers.push(
            rsip::headers::From::new(format!("{};tag={}", self.local_uri, self.id.local_tag))
                .into(),
        );
        headers.push(
            rsip::headers::To::new(format!("{};tag={}", self.remote_uri, self.id.remote_tag))
                .into(),
        );
        headers.push(rsip::headers::CallId::new(self.id.call_id.clone()).into());
        headers.push(rsip::headers::CSeq::new(format!("{seq} {method}")).into());
        if let Some(contact) = contact {
            headers.push(rsip::headers::Contact::new(contact).into());
        }
        headers.push(rsip::headers::ContentLength::new("0").into());
        Request {
            method,
            uri,
            version: rsip::Version::V2,
            headers: headers.into(),
            body: Vec::new(),
        }
    }
}

/// The raw value of the first header named `name` (From, To).
fn raw<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| match (h, name) {
        (Header::From(v), "From") => Some(v.value()),
        (Header::To(v), "To") => Some(v.value()),
        _ => None,
    })
}

/// The first Contact's URI, parsed.
fn contact_uri(message: &impl HeaderAccess) -> Option<rsip::Uri> {
    message
        .contacts()
        .first()
        .and_then(|contact| contact.parsed_uri())
}

/// Whether the first Contact carries the `isfocus` feature parameter.
pub(crate) fn says_focus(message: &impl HeaderAccess) -> bool {
    message
        .contacts()
        .first()
        .is_some_and(|contact| contact.param("isfocus").is_some())
}

/// A From or To value with its `tag` parameter removed, normalised to `"name" <uri>;params`.
pub(crate) fn without_tag(value: &str) -> String {
    let Some(addr) = NameAddr::parse(value) else {
        return value.trim().to_owned();
    };
    let mut out = String::with_capacity(value.len());
    if let Some(name) = addr.display_name {
        out.push('"');
        out.push_str(name);
        out.push_str("\" ");
    }
    out.push('<');
    out.push_str(addr.uri);
    out.push('>');
    for (name, value) in params(addr.params) {
        if name.eq_ignore_ascii_case("tag") {
            continue;
        }
        out.push(';');
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            let plain = value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~:[]".contains(&b));
            if plain {
                out.push_str(value);
            } else {
                out.push('"');
                out.push_str(value);
                out.push('"');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
