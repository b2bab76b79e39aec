//! The INVITE client side of a call, until a 2xx (RFC 3261 §13.2, §9.1, §8.1.3.4, §22.2).
//!
//! - Every response to the INVITE is read here: 100 reports `Trying`; a 18x with a To tag
//!   makes or refreshes an early dialog (one per To tag) and reports `Ringing` with its body;
//!   the first 2xx confirms its dialog, is ACKed (by the dialog, outside any transaction) and
//!   hands the call over to the session.
//! - 3xx: the most preferred Contact (highest `q`, then the order given) not tried yet becomes
//!   the new Request-URI, up to `max_redirects` times; when every Contact was tried already,
//!   the redirection is a loop and fails the call. The other Contacts not tried yet are kept,
//!   in order, as the call's alternatives (§8.1.3.4): when a target fails — a 4xx or 5xx,
//!   no final answer, a broken connection, a challenge it cannot pass, a 3xx that leads
//!   nowhere new — the next alternative is called instead; a 6xx is definitive and ends the
//!   search. A later 3xx puts its own Contacts first. Each target after the first counts
//!   against `max_redirects`, so one call tries at most that many more.
//! - 401/407: answered once with digest credentials (again only when the server says the
//!   nonce was stale); a second challenge fails the call as `authentication failed`.
//! - Other final responses fail the call with their code, phrase and cause.
//! - A 18x that requires `100rel` and carries `RSeq` is a reliable provisional response
//!   (RFC 3262): the next one in sequence on its early dialog is acknowledged with a PRACK
//!   (`RAck: <rseq> <invite cseq> INVITE`); retransmissions are not acknowledged again and
//!   responses out of sequence are ignored.
//! - Hanging up sends CANCEL once a provisional response has arrived (§9.1); before that the
//!   CANCEL waits for one. If no final response follows within 64 × T1 of the CANCEL, the
//!   INVITE transaction is abandoned. A 2xx that crosses the CANCEL is ACKed, then BYE'd.

use std::time::Instant;

use rand::Rng;
use rsip::prelude::UntypedHeader;
use rsip::{Header, Method, Request, Response};

use super::compose::{self, ALLOW, SUPPORTED};
use super::digest::{has_credentials, CallDigest};
use super::refusal;
use super::session::Session;
use super::session_timer;
use super::{Body, CallEvent, CallState, Ctx, FailureCause, OutgoingCallConfig, Shared, TxFailure};
use crate::dialog::{self, Dialog};
use crate::message::HeaderAccess;
use crate::transaction::TransactionKey;
use crate::transport::Target;

/// How many INVITEs of one call are remembered for stray 2xx responses.
const INVITES_KEPT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    /// The user has not hung up.
    No,
    /// Hung up before any provisional response: CANCEL when one arrives.
    Wanted,
    /// CANCEL sent.
    Sent,
}

/// An early dialog and the last reliable provisional response acknowledged in it.
#[derive(Debug)]
struct Early {
    dialog: Dialog,
    last_rseq: Option<u32>,
}

/// An outgoing call before its 2xx.
#[derive(Debug)]
pub(super) struct Outgoing {
    config: OutgoingCallConfig,
    request_uri: rsip::Uri,
    /// The INVITE in flight.
    invite: Request,
    key: Option<TransactionKey>,
    target: Target,
    seq: u32,
    /// Early dialogs, one per To tag.
    early: Vec<Early>,
    provisional: bool,
    /// A final response to the INVITE in flight arrived.
    finished: bool,
    cancel: Cancel,
    cancel_deadline: Option<Instant>,
    digest: Option<CallDigest>,
    tried: Vec<String>,
    /// Contacts of the 3xx responses not tried yet, next first.
    alternatives: Vec<rsip::Uri>,
    redirects: u8,
    trying_reported: bool,
    ringing_reported: bool,
    early_media: Option<Body>,
    /// The session interval we ask for, raised once by a 422.
    session_expires: Option<u32>,
    raised_session_expires: bool,
}

impl Outgoing {
    /// Sends the first INVITE.
    pub fn start(shared: &mut Shared, ctx: &mut Ctx<'_>, config: OutgoingCallConfig) -> Outgoing {
        let request_uri = config
            .request_uri
            .clone()
            .unwrap_or_else(|| config.to.clone());
        let session_expires = config.session_expires;
        let mut outgoing = Outgoing {
            tried: vec![request_uri.to_string()],
            request_uri,
            invite: Request {
                method: Method::Invite,
                uri: rsip::Uri::default(),
                version: rsip::Version::V2,
                headers: Default::default(),
                body: Vec::new(),
            },
            key: None,
            target: config.target,
            config,
            seq: 0,
            early: Vec::new(),
            provisional: false,
            finished: false,
            cancel: Cancel::No,
            cancel_deadline: None,
            digest: None,
            alternatives: Vec::new(),
            redirects: 0,
            trying_reported: false,
            ringing_reported: false,
            early_media: None,
            session_expires,
            raised_session_expires: false,
        };
        outgoing.send_invite(shared, ctx);
        outgoing
    }

    pub fn state(&self) -> CallState {
        if self.ringing_reported {
            CallState::Ringing
        } else {
            CallState::Calling
        }
    }

    /// Builds and sends the next INVITE (first, after a challenge, after a redirect).
    fn send_invite(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        self.seq += 1;
        self.early.clear();
        self.provisional = false;
        self.finished = false;
        let branch = ctx.branch();
        let via = compose::via(self.target.transport, &shared.sent_by, &branch);
        let from = match &self.config.display_name {
            Some(name) => format!(
                "\"{}\" <{}>;tag={}",
                name.replace('\\', "\\\\").replace('"', "\\\""),
                self.config.from,
                shared.local_tag
            ),
            None => format!("<{}>;tag={}", self.config.from, shared.local_tag),
        };
        let headers: Vec<Header> = vec![
            rsip::headers::Via::new(via).into(),
            rsip::headers::MaxForwards::new("70").into(),
            rsip::headers::From::new(from).into(),
            rsip::headers::To::new(format!("<{}>", self.config.to)).into(),
            rsip::headers::CallId::new(shared.call_id.clone()).into(),
            rsip::headers::CSeq::new(format!("{} INVITE", self.seq)).into(),
            rsip::headers::Contact::new(shared.contact_header()).into(),
            rsip::headers::Allow::new(ALLOW).into(),
            rsip::headers::Supported::new(SUPPORTED).into(),
            rsip::headers::UserAgent::new(ctx.user_agent).into(),
        ];
        let mut headers = headers;
        if let Some(seconds) = self.session_expires {
            headers.push(Header::Other("Session-Expires".into(), seconds.to_string()));
        }
        headers.push(rsip::headers::ContentLength::new("0").into());
        let mut invite = Request {
            method: Method::Invite,
            uri: self.request_uri.clone(),
            version: rsip::Version::V2,
            headers: headers.into(),
            body: Vec::new(),
        };
        if let Some(body) = &self.config.body {
            compose::set_body(&mut invite.headers, &mut invite.body, Some(body));
        }
        if let (Some(digest), Some(credentials)) = (&mut self.digest, &self.config.credentials) {
            let cnonce = format!("{:016x}", ctx.rng.gen::<u64>());
            digest.authorize(&mut invite, credentials, &cnonce);
        }
        self.invite = invite.clone();
        if shared.invites.len() >= INVITES_KEPT {
            shared.invites.remove(0);
        }
        shared.invites.push(invite.clone());
        self.key = ctx.send_request(invite, self.target);
        if self.key.is_none() {
            self.finished = true;
            self.fail(
                shared,
                ctx,
                None,
                "the INVITE could not be sent",
                FailureCause::Unreachable,
            );
        }
    }

    fn fail(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        code: Option<u16>,
        reason: &str,
        cause: FailureCause,
    ) {
        self.fail_with_warning(shared, ctx, code, reason, cause, None);
    }

    /// Calls the next alternative target, if any is left; else fails the call.
    fn fail_or_next(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        code: Option<u16>,
        reason: &str,
        cause: FailureCause,
    ) {
        if !self.try_alternative(shared, ctx, reason) {
            self.fail(shared, ctx, code, reason, cause);
        }
    }

    fn fail_with_warning(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        code: Option<u16>,
        reason: &str,
        cause: FailureCause,
        warning: Option<String>,
    ) {
        self.cancel_deadline = None;
        shared.finish(
            ctx,
            CallEvent::Failed {
                code,
                reason: reason.to_owned(),
                cause,
                warning,
            },
        );
    }

    /// A response to one of our client transactions. Returns the session when a 2xx
    /// established the call.
    pub fn on_response(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        response: Response,
    ) -> Option<Session> {
        if self.key.as_ref() != Some(key) {
            // The CANCEL's answer, or a BYE's for a 2xx we did not want.
            return None;
        }
        let code = response.status_code.code();
        if code >= 200 {
            self.finished = true;
            self.cancel_deadline = None;
        }
        if code < 200 {
            self.provisional = true;
            if self.cancel == Cancel::Wanted {
                self.send_cancel(ctx);
            }
        }
        match code {
            100 => {
                if !self.trying_reported && !shared.ended {
                    self.trying_reported = true;
                    ctx.emit(CallEvent::Trying);
                }
            }
            101..=199 => self.on_provisional(shared, ctx, &response),
            200..=299 => return self.on_success(shared, ctx, response),
            300..=399 => self.on_redirect(shared, ctx, &response),
            401 | 407 => self.on_challenge(shared, ctx, &response),
            422 if !shared.ended && self.raise_session_expires(&response) => {
                self.send_invite(shared, ctx)
            }
            _ if shared.ended => {}
            400..=599 if self.try_alternative(shared, ctx, &compose::reason_of(&response)) => {}
            _ => {
                let reason = compose::reason_of(&response);
                self.fail_with_warning(
                    shared,
                    ctx,
                    Some(code),
                    &reason,
                    FailureCause::from_status(code),
                    refusal::warning_in_words(&response),
                );
            }
        }
        None
    }

    fn on_provisional(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, response: &Response) {
        let index = match response.to_tag() {
            Some(tag) => match self
                .early
                .iter()
                .position(|e| e.dialog.id().remote_tag == tag)
            {
                Some(index) => {
                    self.early[index].dialog.refresh_target(response);
                    Some(index)
                }
                None => match Dialog::new_uac(&self.invite, response) {
                    Ok(dialog) => {
                        self.early.push(Early {
                            dialog,
                            last_rseq: None,
                        });
                        Some(self.early.len() - 1)
                    }
                    Err(error) => {
                        tracing::debug!(%error, "no early dialog");
                        None
                    }
                },
            },
            None => None,
        };
        let reliable = compose::lists_option(&response.headers, "Require", "100rel");
        let rseq = response
            .other_header("RSeq")
            .first()
            .and_then(|v| v.trim().parse::<u32>().ok());
        if let (true, Some(rseq), Some(index)) = (reliable, rseq, index) {
            let early = &mut self.early[index];
            match early.last_rseq {
                Some(last) if rseq <= last => {
                    tracing::trace!(rseq, "reliable provisional retransmitted");
                    return;
                }
                Some(last) if rseq > last.wrapping_add(1) => {
                    tracing::debug!(rseq, last, "reliable provisional out of sequence ignored");
                    return;
                }
                _ => {}
            }
            early.last_rseq = Some(rseq);
            if !shared.ended {
                let (mut prack, target) =
                    shared.build_in_dialog(ctx, &mut early.dialog, Method::PRack, None, None);
                prack.headers.push(Header::Other(
                    "RAck".into(),
                    format!("{rseq} {} INVITE", self.seq),
                ));
                let _ = ctx.send_request(prack, target);
            }
        }
        if shared.ended {
            return;
        }
        let body = compose::body_of(&response.headers, &response.body);
        let changed = body.is_some() && body != self.early_media;
        if !self.ringing_reported || changed {
            self.ringing_reported = true;
            if body.is_some() {
                self.early_media = body.clone();
            }
            ctx.emit(CallEvent::Ringing {
                early_media: body,
                reliable: reliable && rseq.is_some(),
            });
        }
    }

    fn on_success(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        response: Response,
    ) -> Option<Session> {
        let tag = response.to_tag().unwrap_or_default().to_owned();
        let dialog = match self
            .early
            .iter()
            .position(|e| e.dialog.id().remote_tag == tag)
        {
            Some(index) => {
                let mut dialog = self.early.swap_remove(index).dialog;
                dialog.confirm_with(&response);
                Ok(dialog)
            }
            None => Dialog::new_uac(&self.invite, &response),
        };
        let mut dialog = match dialog {
            Ok(dialog) => dialog,
            Err(error) => {
                tracing::warn!(%error, "2xx without a usable dialog");
                let reason = format!("the answer is malformed: {error}");
                self.fail(
                    shared,
                    ctx,
                    Some(response.status_code.code()),
                    &reason,
                    FailureCause::ServerError,
                );
                return None;
            }
        };
        dialog.raise_local_seq(self.seq);
        shared.send_ack(ctx, &mut dialog, &self.invite, None);
        if shared.ended {
            // The answer crossed our CANCEL: the call is already over for the user.
            let _ = shared.send_in_dialog(ctx, &mut dialog, Method::Bye, None);
            shared.linger(ctx);
            return None;
        }
        let body = compose::body_of(&response.headers, &response.body);
        let mut session = Session::new(dialog, None);
        session.timer = session_timer::uac_timer(&response, ctx.now);
        session.local_body = self.config.body.clone();
        session.peer_allows_update = compose::allows(&response.headers, "UPDATE");
        ctx.emit(CallEvent::Answered { body });
        ctx.emit(CallEvent::Established { body: None });
        Some(session)
    }

    fn on_redirect(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, response: &Response) {
        if shared.ended {
            return;
        }
        let code = response.status_code.code();
        let reason = compose::reason_of(response);
        if self.redirects >= self.config.max_redirects {
            let reason = format!("{reason} (redirected {} times)", self.redirects);
            return self.fail(shared, ctx, Some(code), &reason, FailureCause::Redirected);
        }
        let contacts = by_preference(&response.contacts());
        if contacts.is_empty() {
            let reason = format!("{reason} (no Contact to follow)");
            return self.fail_or_next(shared, ctx, Some(code), &reason, FailureCause::Redirected);
        }
        let mut untried: Vec<rsip::Uri> = Vec::new();
        for uri in contacts.iter().chain(self.alternatives.iter()) {
            let text = uri.to_string();
            if !self.tried.contains(&text) && !untried.iter().any(|u| u.to_string() == text) {
                untried.push(uri.clone());
            }
        }
        if untried.is_empty() {
            let text = contacts[0].to_string();
            let reason = format!("{reason} (redirection loop at {text})");
            return self.fail(shared, ctx, Some(code), &reason, FailureCause::Redirected);
        }
        let next = untried.remove(0);
        self.alternatives = untried;
        self.redirects += 1;
        tracing::debug!(call = %shared.id, to = %next, "following redirection");
        self.call_target(shared, ctx, next);
    }

    /// Calls the next alternative a 3xx named after the target in flight failed with
    /// `reason`. False when there is none left, or the call tried `max_redirects` targets
    /// after its first already. What the failed target reported (trying, ringing, early
    /// media) is forgotten: the next one reports its own.
    fn try_alternative(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, reason: &str) -> bool {
        if shared.ended
            || self.alternatives.is_empty()
            || self.redirects >= self.config.max_redirects
        {
            return false;
        }
        let next = self.alternatives.remove(0);
        self.redirects += 1;
        self.trying_reported = false;
        self.ringing_reported = false;
        self.early_media = None;
        tracing::debug!(
            call = %shared.id, failed = %self.request_uri, reason, to = %next,
            "redirection target failed, trying the next one"
        );
        self.call_target(shared, ctx, next);
        true
    }

    /// Sends a new INVITE to `uri` (a redirection's target), with a fresh digest.
    fn call_target(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, uri: rsip::Uri) {
        self.tried.push(uri.to_string());
        self.target = if shared.pinned {
            shared.flow
        } else {
            dialog::resolve(&uri, self.config.target)
        };
        shared.flow = self.target;
        self.request_uri = uri;
        self.digest = None;
        self.send_invite(shared, ctx);
    }

    fn on_challenge(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, response: &Response) {
        if shared.ended {
            return;
        }
        let code = response.status_code.code();
        let reason = compose::reason_of(response);
        if self.config.credentials.is_none() {
            let reason = format!("{reason} (no credentials configured)");
            return self.fail_or_next(
                shared,
                ctx,
                Some(code),
                &reason,
                FailureCause::AuthenticationFailed,
            );
        }
        let Some(digest) = CallDigest::from_response(response) else {
            let reason = format!("{reason} (no challenge Callisto can answer)");
            return self.fail_or_next(
                shared,
                ctx,
                Some(code),
                &reason,
                FailureCause::AuthenticationFailed,
            );
        };
        if has_credentials(&self.invite) && !digest.is_stale() {
            return self.fail_or_next(
                shared,
                ctx,
                Some(code),
                &reason,
                FailureCause::AuthenticationFailed,
            );
        }
        self.digest = Some(digest);
        self.send_invite(shared, ctx);
    }

    /// Takes the Min-SE of a 422 (RFC 4028 §7.4) when we asked for a shorter interval and
    /// have not raised it yet.
    fn raise_session_expires(&mut self, response: &Response) -> bool {
        let min = response
            .other_header("Min-SE")
            .first()
            .and_then(|v| v.split(';').next())
            .and_then(|v| v.trim().parse::<u32>().ok());
        match (self.session_expires, min) {
            (Some(asked), Some(min)) if min > asked && !self.raised_session_expires => {
                self.raised_session_expires = true;
                self.session_expires = Some(min);
                true
            }
            _ => false,
        }
    }

    /// The INVITE (or CANCEL) transaction timed out or could not be sent.
    pub fn on_failure(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        how: TxFailure,
    ) {
        if self.key.as_ref() != Some(key) || self.finished {
            return;
        }
        self.finished = true;
        let (reason, cause) = match how {
            TxFailure::Timeout => ("no final answer came", FailureCause::NoAnswer),
            TxFailure::Transport => ("the connection failed", FailureCause::Unreachable),
        };
        self.fail_or_next(shared, ctx, None, reason, cause);
    }

    /// A request in an early dialog: OPTIONS is answered, UPDATE and INFO as
    /// [`Shared::answer_early_request`] says, anything else refused with 481.
    pub fn on_request(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        if shared.answer_early_request(ctx, key, request) {
            return;
        }
        let code = if request.method == Method::Options {
            200
        } else {
            481
        };
        ctx.respond(key, compose::response(request, code, None));
    }

    /// The user hangs up before an answer: CANCEL now or when a provisional arrives.
    pub fn hang_up(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if !self.finished {
            if self.provisional {
                self.send_cancel(ctx);
            } else {
                self.cancel = Cancel::Wanted;
            }
        }
        shared.end(ctx, false, "cancelled");
    }

    /// CANCEL for the INVITE in flight (RFC 3261 §9.1): same Request-URI, top Via, From, To,
    /// Call-ID and CSeq number, to the same target.
    fn send_cancel(&mut self, ctx: &mut Ctx<'_>) {
        if self.cancel == Cancel::Sent || self.finished {
            return;
        }
        self.cancel = Cancel::Sent;
        let mut headers: Vec<Header> = Vec::new();
        if let Some(via) = self
            .invite
            .headers
            .iter()
            .find(|h| matches!(h, Header::Via(_)))
        {
            headers.push(via.clone());
        }
        headers.push(rsip::headers::MaxForwards::new("70").into());
        for header in self.invite.headers.iter() {
            if matches!(
                header,
                Header::Route(_) | Header::From(_) | Header::To(_) | Header::CallId(_)
            ) {
                headers.push(header.clone());
            }
        }
        headers.push(rsip::headers::CSeq::new(format!("{} CANCEL", self.seq)).into());
        headers.push(rsip::headers::UserAgent::new(ctx.user_agent).into());
        headers.push(rsip::headers::ContentLength::new("0").into());
        let cancel = Request {
            method: Method::Cancel,
            uri: self.request_uri.clone(),
            version: rsip::Version::V2,
            headers: headers.into(),
            body: Vec::new(),
        };
        tracing::debug!("CANCEL sent");
        let _ = ctx.send_request(cancel, self.target);
        self.cancel_deadline = Some(ctx.now + ctx.timeout());
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.cancel_deadline
    }

    /// Whether hanging up is still under way: a CANCEL waits for a provisional response
    /// (RFC 3261 §9.1), or the INVITE it cancels has no final response yet.
    pub fn finishing(&self) -> bool {
        !self.finished && self.cancel != Cancel::No
    }

    /// Abandons an INVITE whose CANCEL brought no final response within 64 × T1.
    pub fn handle_timeout(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if let Some(at) = self.cancel_deadline {
            if at <= ctx.now {
                self.cancel_deadline = None;
                self.finished = true;
                if let Some(key) = &self.key {
                    tracing::debug!(call = %shared.id, "no final answer after CANCEL, INVITE abandoned");
                    ctx.layer.abandon(key);
                }
            }
        }
    }
}

/// The parsable Contact URIs of a 3xx, most preferred first: by `q` (RFC 3261 §20.10; 1.0
/// when absent or unreadable), and in the order given between equal values.
fn by_preference(contacts: &[crate::message::NameAddr<'_>]) -> Vec<rsip::Uri> {
    let mut ranked: Vec<(f32, rsip::Uri)> = contacts
        .iter()
        .filter_map(|c| {
            let q = c
                .param("q")
                .flatten()
                .and_then(|q| q.parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(1.0);
            Some((q, c.parsed_uri()?))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked.into_iter().map(|(_, uri)| uri).collect()
}
