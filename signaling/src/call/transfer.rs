//! Blind transfer with REFER (RFC 3515), in a confirmed dialog, both roles.
//!
//! - Transferor: `transfer` sends REFER with `Refer-To` (and `Referred-By`). Its answer and
//!   then every NOTIFY of the implicit subscription (`Event: refer`, a `message/sipfrag` body
//!   such as `SIP/2.0 180 Ringing`) are reported as `TransferProgress`; `finished` is set by a
//!   failure answer to the REFER, a final sipfrag status, or `Subscription-State: terminated`.
//!   The NOTIFYs are answered 200. Hanging up after a successful transfer is the
//!   application's choice.
//! - Transferee: a REFER with one `Refer-To` is accepted with 202, followed at once by a NOTIFY
//!   with `SIP/2.0 100 Trying` (§2.4.4), and reported as `TransferRequested`. The application
//!   places the new call itself and reports its progress with `transfer_progress`, which sends
//!   a NOTIFY carrying that status; a final status (≥ 200) ends the subscription. A REFER
//!   without exactly one Refer-To gets 400; one while a transfer is still running gets 491.

use rsip::{Header, Method, Request, Response};

use super::compose;
use super::session::{OutRequest, Session};
use super::{Body, CallError, CallEvent, Ctx, Shared};
use crate::message::HeaderAccess;
use crate::transaction::TransactionKey;

/// The content type of NOTIFY bodies for REFER (RFC 3420).
const SIPFRAG: &str = "message/sipfrag;version=2.0";

/// How long the implicit subscription is said to last, in seconds.
const SUBSCRIPTION_SECONDS: u32 = 60;

/// The transfer state of a session.
#[derive(Debug, Default)]
pub(super) struct Transfers {
    /// Our REFER, until its final response.
    refer_out: Option<OutRequest>,
    /// We sent a REFER and its subscription has not finished: NOTIFYs are reported.
    subscribed: bool,
    /// We ever sent a REFER in this dialog: its NOTIFYs are answered 200.
    referred: bool,
    /// We accepted a REFER and have not sent a final status yet.
    serving: bool,
}

impl Session {
    /// Sends REFER asking the peer to call `target`.
    pub fn transfer(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        target: &str,
        referred_by: &str,
    ) -> Result<(), CallError> {
        if self.transfers.refer_out.is_some() || self.transfers.subscribed {
            return Err(CallError::TransferInProgress);
        }
        let (mut request, next_hop) =
            shared.build_in_dialog(ctx, &mut self.dialog, Method::Refer, None, None);
        request
            .headers
            .push(Header::Other("Refer-To".into(), format!("<{target}>")));
        request.headers.push(Header::Other(
            "Referred-By".into(),
            format!("<{referred_by}>"),
        ));
        if let Some(key) = ctx.send_request(request.clone(), next_hop) {
            self.transfers.refer_out = Some(OutRequest {
                key,
                request,
                body: None,
                attempts: 0,
                refresh: false,
            });
            self.transfers.subscribed = true;
            self.transfers.referred = true;
        }
        Ok(())
    }

    /// Whether `key` is our REFER.
    pub(super) fn is_refer(&self, key: &TransactionKey) -> bool {
        self.transfers
            .refer_out
            .as_ref()
            .is_some_and(|r| r.key == *key)
    }

    /// The answer to our REFER.
    pub(super) fn on_refer_response(
        &mut self,
        shared: &Shared,
        ctx: &mut Ctx<'_>,
        response: &Response,
    ) {
        let code = response.status_code.code();
        if code < 200 {
            return;
        }
        self.transfers.refer_out = None;
        let finished = code >= 300;
        if finished {
            self.transfers.subscribed = false;
        }
        if !shared.ended {
            ctx.emit(CallEvent::TransferProgress {
                code,
                reason: compose::reason_of(response),
                finished,
            });
        }
    }

    /// Our REFER got no answer.
    pub(super) fn on_refer_failure(&mut self, shared: &Shared, ctx: &mut Ctx<'_>) {
        self.transfers.refer_out = None;
        self.transfers.subscribed = false;
        if !shared.ended {
            ctx.emit(CallEvent::TransferProgress {
                code: 408,
                reason: "no answer from the network".into(),
                finished: true,
            });
        }
    }

    /// A NOTIFY in the dialog: the progress of our REFER.
    pub(super) fn on_notify(
        &mut self,
        shared: &Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        let is_refer = super::roster::event_package(request).as_deref() == Some("refer");
        if !is_refer || !self.transfers.referred {
            return ctx.respond(key, compose::response(request, 481, None));
        }
        ctx.respond(key, compose::response(request, 200, None));
        if !self.transfers.subscribed || shared.ended {
            return;
        }
        let terminated = compose::subscription_terminated(request);
        let status = sipfrag_status(&request.body);
        let finished = terminated || status.as_ref().is_some_and(|(code, _)| *code >= 200);
        if finished {
            self.transfers.subscribed = false;
        }
        if let Some((code, reason)) = status {
            ctx.emit(CallEvent::TransferProgress {
                code,
                reason,
                finished,
            });
        } else if finished {
            ctx.emit(CallEvent::TransferProgress {
                code: 487,
                reason: "the transfer subscription ended".into(),
                finished,
            });
        }
    }

    /// A REFER from the peer.
    pub(super) fn on_refer(
        &mut self,
        shared: &Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        let targets = request.other_header("Refer-To");
        let target = match targets.as_slice() {
            [one] => crate::message::NameAddr::parse(one).map(|a| a.uri.to_owned()),
            _ => None,
        };
        let Some(target) = target else {
            return ctx.respond(
                key,
                crate::message::response_to(request, 400, "Exactly One Refer-To Expected"),
            );
        };
        if self.transfers.serving {
            return ctx.respond(key, compose::response(request, 491, None));
        }
        let referred_by = request
            .other_header("Referred-By")
            .first()
            .and_then(|v| crate::message::NameAddr::parse(v))
            .map(|a| a.uri.to_owned());
        let mut accepted = compose::dialog_response(
            request,
            202,
            &shared.local_tag,
            &shared.contact_header(),
            ctx.user_agent,
        );
        accepted.status_code = rsip::StatusCode::Other(202, "Accepted".into());
        ctx.respond(key, accepted);
        self.transfers.serving = true;
        self.send_notify(shared, ctx, 100, "Trying");
        ctx.emit(CallEvent::TransferRequested {
            target,
            referred_by,
        });
    }

    /// Reports the progress of the transfer the peer asked for (transferee).
    pub fn transfer_progress(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        code: u16,
        reason: &str,
    ) -> Result<(), CallError> {
        if !self.transfers.serving {
            return Err(CallError::NoTransfer);
        }
        if !(100..=699).contains(&code) {
            return Err(CallError::InvalidStatus(code));
        }
        self.send_notify(shared, ctx, code, reason);
        Ok(())
    }

    fn send_notify(&mut self, shared: &Shared, ctx: &mut Ctx<'_>, code: u16, reason: &str) {
        let finished = code >= 200;
        if finished {
            self.transfers.serving = false;
        }
        let body = Body::new(SIPFRAG, format!("SIP/2.0 {code} {reason}\r\n").into_bytes());
        let (mut request, next_hop) =
            shared.build_in_dialog(ctx, &mut self.dialog, Method::Notify, None, Some(&body));
        let state = if finished {
            "terminated;reason=noresource".to_owned()
        } else {
            format!("active;expires={SUBSCRIPTION_SECONDS}")
        };
        // Extension headers, so that a resend with credentials carries them again.
        request
            .headers
            .push(Header::Other("Event".into(), "refer".into()));
        request
            .headers
            .push(Header::Other("Subscription-State".into(), state));
        if let Some(key) = ctx.send_request(request.clone(), next_hop) {
            self.track(OutRequest {
                key,
                request,
                body: Some(body),
                attempts: 0,
                refresh: false,
            });
        }
    }
}

/// The status line of a `message/sipfrag` body: code and reason.
fn sipfrag_status(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok()?;
    (100..=699)
        .contains(&code)
        .then(|| (code, reason.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::sipfrag_status;

    #[test]
    fn sipfrag_status_lines_parse() {
        assert_eq!(
            sipfrag_status(b"SIP/2.0 180 Ringing\r\n"),
            Some((180, "Ringing".into()))
        );
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK"), Some((200, "OK".into())));
        assert_eq!(sipfrag_status(b"garbage"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 99 Low"), None);
    }
}
