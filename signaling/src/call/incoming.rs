//! The INVITE server side of a call, until our 2xx (RFC 3261 §13.3, §9.2).
//!
//! A new INVITE is reported as [`CallEvent::Incoming`]; its server transaction answers 100
//! Trying by itself only if the application has not responded within 200 ms (RFC 3261
//! §17.2.1), so a phone that rings or answers at once sends no 100 for its proxy to relay
//! ahead of the 180 and the 200. An INVITE that requires an extension Callisto lacks gets
//! 420, one without what a dialog needs (From tag, Contact) gets 400. The application then
//! rings (180, which creates the early dialog with our tag), answers (200 with our Contact
//! and its body; the session retransmits it until the ACK) or rejects. A CANCEL is answered
//! 200 and the INVITE 487; a BYE on the early dialog is answered 200 and the INVITE 487.
//!
//! When the INVITE requires `100rel` (RFC 3262), the 180 is sent reliably: it carries `Require:
//! 100rel` and an `RSeq`, and is retransmitted (T1, doubling) until the caller's PRACK, which
//! is answered 200. With no PRACK after 64 × T1 the INVITE is refused with 500. The 180 carries
//! no SDP, so the answer still goes in the 200, which may leave before the PRACK arrives; a
//! PRACK after our 200 is answered by the session.

use std::time::{Duration, Instant};

use rsip::prelude::UntypedHeader;
use rsip::{Method, Request, Response};

use super::compose;
use super::pending_answer::PendingAnswer;
use super::session::Session;
use super::session_timer::{self, SessionExpires, MIN_SE};
use super::{Body, CallEvent, CallState, Ctx, Refusal, Shared, TxFailure};
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
    /// The INVITE requires reliable provisional responses (RFC 3262).
    reliable: bool,
    /// The RSeq of our next reliable provisional response.
    next_rseq: u32,
    /// Our reliable 180 until its PRACK.
    unacked: Option<Reliable>,
}

/// A reliable provisional response waiting for its PRACK (RFC 3262 §3).
#[derive(Debug)]
struct Reliable {
    rseq: u32,
    response: Response,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

/// The `RAck` of a PRACK: `(rseq, cseq)` when it acknowledges a response to an INVITE.
pub(super) fn rack(request: &Request) -> Option<(u32, u32)> {
    let value = *request.other_header("RAck").first()?;
    let mut parts = value.split_whitespace();
    let rseq = parts.next()?.parse().ok()?;
    let cseq = parts.next()?.parse().ok()?;
    parts
        .next()
        .filter(|m| m.eq_ignore_ascii_case("INVITE"))
        .map(|_| (rseq, cseq))
}

impl Incoming {
    /// Checks the INVITE and reports the call. `None` when it was refused.
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
        let reliable = compose::lists_option(&invite.headers, "Require", "100rel");
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
            reliable,
            next_rseq: {
                use rand::Rng;
                ctx.rng.gen_range(1..=0x7fff_ffff)
            },
            unacked: None,
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

    /// Sends 180 Ringing: reliably (RFC 3262) when the INVITE requires it.
    pub fn ring(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) -> Result<(), super::CallError> {
        if self.unacked.is_some() {
            // The caller has not acknowledged our last reliable 180 (RFC 3262 §3: one at a time).
            return Ok(());
        }
        let mut response = compose::dialog_response(
            &self.invite,
            180,
            &shared.local_tag,
            &shared.contact_header(),
            ctx.user_agent,
        );
        if self.reliable {
            let rseq = self.next_rseq;
            self.next_rseq = self.next_rseq.wrapping_add(1);
            response
                .headers
                .push(rsip::headers::Require::new("100rel").into());
            response
                .headers
                .push(rsip::Header::Other("RSeq".into(), rseq.to_string()));
            let t1 = ctx.layer.config().t1;
            self.unacked = Some(Reliable {
                rseq,
                response: response.clone(),
                interval: t1,
                next: ctx.now + t1,
                give_up: ctx.now + ctx.layer.config().timeout(),
            });
        }
        ctx.respond(&self.key, response);
        self.rang = true;
        Ok(())
    }

    /// When the reliable 180 is due again, or is given up on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.unacked.as_ref().map(|r| r.next.min(r.give_up))
    }

    /// Retransmits the reliable 180, or refuses the INVITE when no PRACK came in 64 × T1.
    pub fn handle_timeout(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        let Some(reliable) = &mut self.unacked else {
            return;
        };
        if ctx.now >= reliable.give_up {
            self.unacked = None;
            if !shared.ended {
                ctx.respond(
                    &self.key,
                    compose::response(&self.invite, 500, Some(&shared.local_tag)),
                );
                shared.end(ctx, true, "the caller did not acknowledge our ringing");
            }
        } else if ctx.now >= reliable.next {
            tracing::trace!(rseq = reliable.rseq, "reliable 180 retransmitted");
            ctx.respond(&self.key, reliable.response.clone());
            reliable.interval *= 2;
            reliable.next = ctx.now + reliable.interval;
        }
    }

    /// A PRACK on the early dialog: 200 when it acknowledges our reliable 180, else 481.
    fn on_prack(&mut self, ctx: &mut Ctx<'_>, key: &TransactionKey, request: &Request) {
        let invite_seq = self.invite.cseq().map(|c| c.seq);
        let acknowledges = match (rack(request), &self.unacked) {
            (Some((rseq, cseq)), Some(reliable)) => {
                rseq == reliable.rseq && Some(cseq) == invite_seq
            }
            _ => false,
        };
        if acknowledges {
            self.unacked = None;
            ctx.respond(key, compose::response(request, 200, None));
        } else {
            ctx.respond(key, compose::response(request, 481, None));
        }
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
            &shared.contact_header(),
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
        // Our final response ends the 180's retransmissions; its PRACK may still come.
        session.late_prack = self.unacked.take().map(|r| (r.rseq, seq));
        session.timer = timer;
        session.local_body = body;
        session.peer_allows_update = compose::allows(&self.invite.headers, "UPDATE");
        session
    }

    /// Refuses the call.
    pub fn reject(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, refusal: &Refusal) {
        let code = refusal.code;
        let mut response = compose::response(&self.invite, code, Some(&shared.local_tag));
        refusal.apply(&mut response);
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
    /// OPTIONS is answered, UPDATE and INFO as [`Shared::answer_early_request`] says, anything
    /// else refused with 481.
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
            Method::PRack => self.on_prack(ctx, key, request),
            _ if shared.answer_early_request(ctx, key, request) => {}
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
