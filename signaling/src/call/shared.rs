//! What every phase of a call shares: identity, our Contact and Via, the flow, the end of the
//! call, and the ACKs we sent for 2xx responses (re-sent when a 2xx is retransmitted).

use rsip::prelude::UntypedHeader;
use rsip::{Header, Method, Request, Response};

use super::compose::{self, ALLOW, SUPPORTED};
use super::{Body, CallDirection, CallEvent, CallId, Ctx};
use crate::auth::Credentials;
use crate::conference_info::ConferenceInfo;
use crate::dialog::{self, Dialog};
use crate::message::HeaderAccess;
use crate::transaction::TransactionKey;
use crate::transport::Target;

/// An ACK we sent for a 2xx, kept to answer that 2xx's retransmissions (RFC 3261 §13.2.2.4).
#[derive(Debug, Clone)]
struct SentAck {
    seq: u32,
    remote_tag: String,
    ack: Request,
    target: Target,
}

/// How many ACKs are remembered: the first INVITE's, forks', and the latest re-INVITEs'.
const ACKS_KEPT: usize = 8;

/// The parts of a call every phase reads and writes.
#[derive(Debug)]
pub(crate) struct Shared {
    pub id: CallId,
    pub direction: CallDirection,
    pub call_id: String,
    pub local_tag: String,
    /// Our Contact URI.
    pub contact: String,
    /// Our Via sent-by, `host[:port]`.
    pub sent_by: String,
    /// Where the first INVITE went (outgoing) or came from (incoming).
    pub flow: Target,
    /// Whether every request goes to `flow` whatever the dialog says.
    pub pinned: bool,
    pub credentials: Option<Credentials>,
    /// We host a conference this call is in (RFC 4579 focus): the roster the application
    /// last gave, served to the peer's `conference` subscription. Our Contact then says
    /// `isfocus`.
    pub focus: Option<ConferenceInfo>,
    /// `Ended` or `Failed` was reported.
    pub ended: bool,
    /// When an ended call may be forgotten.
    pub linger_until: Option<std::time::Instant>,
    /// The dialog-creating INVITEs we sent, to answer a stray 2xx to any of them.
    pub invites: Vec<Request>,
    acks: Vec<SentAck>,
}

impl Shared {
    /// Answers an UPDATE or INFO in an early dialog (RFC 3311 §5.1, RFC 6086 §4.2.1; a 481
    /// there would end the dialog for the peer, RFC 5057 §5.1); `false` for other methods and
    /// once the call has ended. An UPDATE without a body (a PBX telling the connected party, a
    /// refresh) gets 200 with our Contact; one with an offer 500 and `Retry-After` — the
    /// session is not renegotiated before the call is answered, and the peer may offer again
    /// in the confirmed dialog. INFO gets 200 and its body is reported.
    pub fn answer_early_request(
        &self,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) -> bool {
        if self.ended {
            return false;
        }
        let response = match request.method {
            Method::Update => {
                if let Some(refusal) = compose::refuse_requirements(request) {
                    refusal
                } else if request.body.is_empty() {
                    let contact = self.contact_header();
                    compose::dialog_response(
                        request,
                        200,
                        &self.local_tag,
                        &contact,
                        ctx.user_agent,
                    )
                } else {
                    compose::retry_later(request, ctx.rng)
                }
            }
            Method::Info => {
                if let Some(body) = compose::body_of(&request.headers, &request.body) {
                    ctx.emit(CallEvent::Info { body });
                }
                compose::response(request, 200, None)
            }
            _ => return false,
        };
        ctx.respond(key, response);
        true
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: CallId,
        direction: CallDirection,
        call_id: String,
        local_tag: String,
        contact: String,
        sent_by: String,
        flow: Target,
        pinned: bool,
    ) -> Shared {
        Shared {
            id,
            direction,
            call_id,
            local_tag,
            contact,
            sent_by,
            flow,
            pinned,
            credentials: None,
            focus: None,
            ended: false,
            linger_until: None,
            invites: Vec::new(),
            acks: Vec::new(),
        }
    }

    /// Our Contact header value: `<uri>`, with the `isfocus` feature parameter while we host
    /// a conference (RFC 4579 §3.1).
    pub fn contact_header(&self) -> String {
        if self.focus.is_some() {
            format!("<{}>;isfocus", self.contact)
        } else {
            format!("<{}>", self.contact)
        }
    }

    /// Reports the call's last event (`Ended` or `Failed`), once; later calls only linger.
    pub fn finish(&mut self, ctx: &mut Ctx<'_>, event: CallEvent) {
        if !self.ended {
            tracing::debug!(call = %self.id, ?event, "call over");
            self.ended = true;
            ctx.emit(event);
        }
        self.linger(ctx);
    }

    /// Ends the call with [`CallEvent::Ended`].
    pub fn end(&mut self, ctx: &mut Ctx<'_>, by_remote: bool, reason: &str) {
        self.finish(
            ctx,
            CallEvent::Ended {
                by_remote,
                reason: reason.to_owned(),
            },
        );
    }

    /// Keeps an ended call around for 64 × T1 from now, to finish its signalling.
    pub fn linger(&mut self, ctx: &mut Ctx<'_>) {
        if self.ended {
            let until = ctx.now + ctx.timeout();
            self.linger_until = Some(self.linger_until.map_or(until, |at| at.max(until)));
        }
    }

    /// Where a request to `uri` goes.
    pub fn hop(&self, uri: &rsip::Uri) -> Target {
        if self.pinned {
            self.flow
        } else {
            dialog::resolve(uri, self.flow)
        }
    }

    /// An in-dialog request with a fresh branch, sent to the dialog's next hop. ACK takes
    /// `ack_seq` (the INVITE's number); every other method takes the next local CSeq.
    pub fn build_in_dialog(
        &self,
        ctx: &mut Ctx<'_>,
        dialog: &mut Dialog,
        method: Method,
        ack_seq: Option<u32>,
        body: Option<&Body>,
    ) -> (Request, Target) {
        let seq = ack_seq.unwrap_or_else(|| dialog.next_seq());
        let target = self.hop(dialog.next_hop());
        let branch = ctx.branch();
        let via = compose::via(target.transport, &self.sent_by, &branch);
        let refresh = matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
        );
        let contact = refresh.then(|| self.contact_header());
        let mut request = dialog.request(method, seq, &via, contact.as_deref());
        if method == Method::Invite || method == Method::Update {
            request
                .headers
                .push(rsip::headers::Allow::new(ALLOW).into());
            request
                .headers
                .push(rsip::headers::Supported::new(SUPPORTED).into());
        }
        if method != Method::Ack {
            request
                .headers
                .push(rsip::headers::UserAgent::new(ctx.user_agent).into());
        }
        if body.is_some() {
            compose::set_body(&mut request.headers, &mut request.body, body);
        }
        (request, target)
    }

    /// Sends an in-dialog request in a client transaction.
    pub fn send_in_dialog(
        &self,
        ctx: &mut Ctx<'_>,
        dialog: &mut Dialog,
        method: Method,
        body: Option<&Body>,
    ) -> Option<(crate::transaction::TransactionKey, Request)> {
        let (request, target) = self.build_in_dialog(ctx, dialog, method, None, body);
        let key = ctx.send_request(request.clone(), target)?;
        Some((key, request))
    }

    /// Sends the ACK for a 2xx to `invite` (RFC 3261 §13.2.2.4): built by the dialog with the
    /// INVITE's CSeq number and its credentials, sent directly, and remembered so that a
    /// retransmitted 2xx is ACKed again.
    pub fn send_ack(
        &mut self,
        ctx: &mut Ctx<'_>,
        dialog: &mut Dialog,
        invite: &Request,
        body: Option<&Body>,
    ) {
        let seq = invite.cseq().map_or(dialog.local_seq(), |c| c.seq);
        let (mut ack, target) = self.build_in_dialog(ctx, dialog, Method::Ack, Some(seq), body);
        for header in invite.headers.iter() {
            if matches!(
                header,
                Header::Authorization(_) | Header::ProxyAuthorization(_)
            ) {
                ack.headers.push(header.clone());
            }
        }
        tracing::debug!(call = %self.id, seq, %target, "ACK for 2xx");
        ctx.layer
            .send_stateless(target, &rsip::SipMessage::Request(ack.clone()));
        let remote_tag = dialog.id().remote_tag.clone();
        self.acks
            .retain(|a| !(a.seq == seq && a.remote_tag == remote_tag));
        if self.acks.len() >= ACKS_KEPT {
            self.acks.remove(1.min(self.acks.len() - 1));
        }
        self.acks.push(SentAck {
            seq,
            remote_tag,
            ack,
            target,
        });
    }

    /// A 2xx outside any transaction. One we ACKed before is ACKed again; one we never
    /// accepted (a second fork, or an answer after we gave up) is ACKed and its dialog ended
    /// with a BYE (RFC 3261 §13.2.2.4).
    pub fn on_stray_2xx(&mut self, ctx: &mut Ctx<'_>, response: &Response) {
        let code = response.status_code.code();
        let Some(cseq) = response.cseq() else {
            return;
        };
        if !(200..300).contains(&code) || !cseq.method.eq_ignore_ascii_case("INVITE") {
            tracing::debug!(call = %self.id, code, "stray response ignored");
            return;
        }
        let remote_tag = response.to_tag().unwrap_or_default();
        if let Some(sent) = self
            .acks
            .iter()
            .find(|a| a.seq == cseq.seq && a.remote_tag == remote_tag)
        {
            tracing::trace!(call = %self.id, "2xx retransmitted, ACK re-sent");
            ctx.layer
                .send_stateless(sent.target, &rsip::SipMessage::Request(sent.ack.clone()));
            return;
        }
        let invite = self
            .invites
            .iter()
            .find(|i| i.cseq().is_some_and(|c| c.seq == cseq.seq))
            .cloned();
        match invite {
            Some(invite) => self.ack_and_bye(ctx, &invite, response),
            None => tracing::debug!(call = %self.id, "2xx to an INVITE we did not send ignored"),
        }
    }

    /// ACKs a 2xx we do not want and ends its dialog.
    pub fn ack_and_bye(&mut self, ctx: &mut Ctx<'_>, invite: &Request, response: &Response) {
        let mut dialog = match Dialog::new_uac(invite, response) {
            Ok(dialog) => dialog,
            Err(error) => {
                tracing::warn!(call = %self.id, %error, "unusable 2xx ignored");
                return;
            }
        };
        tracing::debug!(call = %self.id, remote_tag = %dialog.id().remote_tag, "unwanted 2xx: ACK and BYE");
        self.send_ack(ctx, &mut dialog, invite, None);
        let _ = self.send_in_dialog(ctx, &mut dialog, Method::Bye, None);
        self.linger(ctx);
    }
}
