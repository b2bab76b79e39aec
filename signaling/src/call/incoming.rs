//! The INVITE server side of a call, until our 2xx (RFC 3261 §13.3, §9.2).
//!
//! A new INVITE is answered 100 Trying at once and reported as [`CallEvent::Incoming`]; an
//! INVITE that requires an extension Callisto lacks gets 420, one without what a dialog needs
//! (From tag, Contact) gets 400. The application then rings (180, which creates the early
//! dialog with our tag), answers (200 with our Contact and its body; the session retransmits
//! it until the ACK) or rejects. A CANCEL is answered 200 and the INVITE 487; a BYE on the
//! early dialog is answered 200 and the INVITE 487.

use rsip::prelude::UntypedHeader;
use rsip::{Method, Request};

use super::compose;
use super::pending_answer::PendingAnswer;
use super::session::Session;
use super::session_timer::{self, SessionExpires, MIN_SE};
use super::{Body, CallEvent, CallState, Ctx, Shared, TxFailure};
use crate::dialog::Dialog;
use crate::message::{self, HeaderAccess};
use crate::transaction::{self, TransactionKey};
use crate::transport::Target;

/// An incoming call before our 2xx.
#[derive(Debug)]
pub(super) struct Incoming {
    invite: Request,
    key: TransactionKey,
    source: Target,
    dialog: Dialog,
    rang: bool,
}

impl Incoming {
    /// Checks the INVITE, answers 100 Trying and reports the call. `None` when it was refused.
    pub fn start(
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: TransactionKey,
        invite: Request,
        source: Target,
    ) -> Option<Incoming> {
        let unsupported = compose::unsupported_requirements(&invite);
        if !unsupported.is_empty() {
            let mut response = compose::response(&invite, 420, Some(&shared.local_tag));
            response
                .headers
                .push(rsip::headers::Unsupported::new(unsupported.join(", ")).into());
            ctx.respond(&key, response);
            return None;
        }
        if let Some(se) = SessionExpires::read(&invite.headers) {
            if se.seconds < MIN_SE {
                let mut response = compose::response(&invite, 422, Some(&shared.local_tag));
                response
                    .headers
                    .push(rsip::Header::Other("Min-SE".into(), MIN_SE.to_string()));
                ctx.respond(&key, response);
                return None;
            }
        }
        let dialog = match Dialog::new_uas(&invite, &shared.local_tag) {
            Ok(dialog) => dialog,
            Err(error) => {
                let reason = match error {
                    crate::dialog::DialogError::MissingTag(_) => "Missing From Tag".to_owned(),
                    crate::dialog::DialogError::BadHeader(name) => format!("Missing {name}"),
                    other => other.to_string(),
                };
                ctx.respond(&key, message::response_to(&invite, 400, &reason));
                return None;
            }
        };
        ctx.respond(&key, compose::response(&invite, 100, None));
        let from = invite.from_addr();
        ctx.emit(CallEvent::Incoming {
            from: from.map(|a| a.uri.to_owned()).unwrap_or_default(),
            display_name: from.and_then(|a| a.display_name).map(str::to_owned),
            to: invite
                .to_addr()
                .map(|a| a.uri.to_owned())
                .unwrap_or_default(),
            request_uri: invite.uri.to_string(),
            call_id: shared.call_id.clone(),
            body: compose::body_of(&invite.headers, &invite.body),
            source,
        });
        Some(Incoming {
            invite,
            key,
            source,
            dialog,
            rang: false,
        })
    }

    pub fn state(&self) -> CallState {
        if self.rang {
            CallState::Ringing
        } else {
            CallState::Offered
        }
    }

    /// The INVITE server transaction.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// Whether `request` is this INVITE again (same Call-ID, From tag and CSeq).
    pub fn repeats(&self, request: &Request) -> bool {
        request.call_id() == self.invite.call_id()
            && request.from_tag() == self.invite.from_tag()
            && request.cseq().map(|c| c.seq) == self.invite.cseq().map(|c| c.seq)
    }

    /// Sends 180 Ringing.
    pub fn ring(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) -> Result<(), super::CallError> {
        let response = compose::dialog_response(
            &self.invite,
            180,
            &shared.local_tag,
            &shared.contact,
            ctx.user_agent,
        );
        ctx.respond(&self.key, response);
        self.rang = true;
        Ok(())
    }

    /// Sends 200 OK with `body` and hands the call to the session, which retransmits the 2xx
    /// until the ACK.
    pub fn answer(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        body: Option<Body>,
    ) -> Session {
        let mut response = compose::dialog_response(
            &self.invite,
            200,
            &shared.local_tag,
            &shared.contact,
            ctx.user_agent,
        );
        let timer = session_timer::answer_timer(&self.invite, &mut response, ctx.now);
        compose::set_body(&mut response.headers, &mut response.body, body.as_ref());
        ctx.respond(&self.key, response.clone());
        let mut dialog = self.dialog.clone();
        dialog.confirm();
        let target = transaction::response_target(&self.invite, self.source).unwrap_or(self.source);
        let seq = self.invite.cseq().map_or(0, |c| c.seq);
        let pending = PendingAnswer::new(
            ctx.now,
            ctx.layer.config(),
            seq,
            response,
            target,
            self.invite.body.is_empty(),
        );
        let mut session = Session::new(
            dialog,
            Some((pending, self.invite.branch().map(str::to_owned))),
        );
        session.timer = timer;
        session.local_body = body;
        session.peer_allows_update = compose::allows(&self.invite.headers, "UPDATE");
        session
    }

    /// Refuses the call with `code`.
    pub fn reject(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, code: u16) {
        let mut response = compose::response(&self.invite, code, Some(&shared.local_tag));
        if code == 405 {
            response
                .headers
                .push(rsip::headers::Allow::new(compose::ALLOW).into());
        }
        ctx.respond(&self.key, response);
        let reason = if code == 603 { "declined" } else { "rejected" };
        shared.end(ctx, false, reason);
    }

    /// CANCEL for our INVITE: 200 for the CANCEL, 487 for the INVITE.
    pub fn on_cancel(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        cancel: &Request,
    ) {
        ctx.respond(key, compose::response(cancel, 200, Some(&shared.local_tag)));
        if shared.ended {
            return;
        }
        ctx.respond(
            &self.key,
            compose::response(&self.invite, 487, Some(&shared.local_tag)),
        );
        shared.end(ctx, true, "cancelled by the caller");
    }

    /// A request on the early dialog: a BYE ends the call (200, and 487 for the INVITE),
    /// OPTIONS is answered, anything else refused with 481.
    pub fn on_request(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        match request.method {
            Method::Bye => {
                ctx.respond(key, compose::response(request, 200, None));
                if !shared.ended {
                    ctx.respond(
                        &self.key,
                        compose::response(&self.invite, 487, Some(&shared.local_tag)),
                    );
                    shared.end(ctx, true, "the caller hung up");
                }
            }
            Method::Options => ctx.respond(key, compose::response(request, 200, None)),
            _ => ctx.respond(key, compose::response(request, 481, None)),
        }
    }

    /// Our INVITE server transaction failed: a transport error before we answered ends the
    /// call; Timer H (our refusal never ACKed) changes nothing.
    pub fn on_failure(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        how: TxFailure,
    ) {
        if *key == self.key && how == TxFailure::Transport && !shared.ended {
            shared.end(ctx, true, "the connection to the caller failed");
        }
    }
}
