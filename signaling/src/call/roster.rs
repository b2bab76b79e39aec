//! The conference event package (RFC 4575) in the dialog of a call, both roles. The
//! subscription reuses the call's dialog (RFC 6665 §4.5.2), which RFC 4579 §5.2 lets a
//! participant do with the focus it is in a call with.
//!
//! - Focus: while the application says the call is in a conference it hosts
//!   (`set_conference_info`), our Contact carries `isfocus` (RFC 4579 §3.1); when the call is
//!   already established the new Contact is announced at once by a session refresh (UPDATE, or
//!   a re-INVITE with the current description). A `SUBSCRIBE` with `Event: conference` is
//!   answered 200 with its `Expires` (at most an hour, an hour when it names none) and followed
//!   by a NOTIFY with the whole roster; every roster the application gives after that is
//!   NOTIFYed with the next version. The subscription ends with a `terminated` NOTIFY when it
//!   expires unrefreshed (`reason=timeout`), when the peer unsubscribes (`Expires: 0`) or when
//!   the application stops hosting (`reason=noresource`). Another package, or a call that is
//!   in no conference, gets 489 Bad Event. A NOTIFY the peer refuses ends the subscription
//!   (RFC 5057).
//! - Participant: once the peer's Contact says `isfocus`, we SUBSCRIBE (600 s), refresh at
//!   85 % of the time the focus granted, answer every `conference` NOTIFY 200 and report each
//!   change of the roster as `Roster { info: Some(…) }`. A partial document out of sequence
//!   makes us refresh at once, which brings a full one. A `terminated` NOTIFY, a refused
//!   SUBSCRIBE or one that got no answer reports `Roster { info: None }` (when a roster was
//!   reported) and is not retried in this dialog.

use std::time::{Duration, Instant};

use rsip::prelude::UntypedHeader;
use rsip::{Header, Method, Request, Response};

use super::compose;
use super::session::{OutRequest, Session};
use super::{Body, CallEvent, Ctx, Shared};
use crate::conference_info::{self, ConferenceInfo, Roster, CONTENT_TYPE, EVENT};
use crate::message::HeaderAccess;
use crate::transaction::TransactionKey;

/// The longest subscription we grant, and what a SUBSCRIBE without `Expires` gets.
const SERVE_SECONDS: u32 = 3600;

/// How long we ask to be subscribed to a focus.
const WATCH_SECONDS: u32 = 600;

/// The roster state of a session.
#[derive(Debug, Default)]
pub(super) struct Rosters {
    /// The peer's subscription to the roster we serve.
    subscriber: Option<Subscriber>,
    /// Our Contact gained or lost `isfocus` after the dialog was confirmed: a target refresh
    /// is due.
    announce: bool,
    /// Our subscription to the peer's roster.
    watch: Option<Watch>,
    /// The peer's Contact said `isfocus` when we last looked.
    peer_focus: bool,
}

#[derive(Debug, Clone)]
struct Subscriber {
    expires_at: Instant,
    /// The version of the last document sent.
    version: u32,
    /// The `id` parameter of the subscription's `Event` header, echoed in every NOTIFY.
    id: Option<String>,
    /// Our NOTIFY still unanswered: the next one waits for its answer, so that they arrive
    /// in order.
    in_flight: Option<TransactionKey>,
    /// The roster changed while a NOTIFY was in flight: send it when that one is answered.
    stale: bool,
}

#[derive(Debug, Default)]
struct Watch {
    /// Our SUBSCRIBE, until its final response.
    subscribe: Option<OutRequest>,
    /// When to refresh the subscription.
    refresh_at: Option<Instant>,
    roster: Roster,
    /// A roster was reported: its end is reported too.
    reported: bool,
    /// Refused, unanswered or terminated: not tried again in this dialog until the peer
    /// announces itself as a focus anew.
    over: bool,
}

impl Session {
    /// The application hosts a conference this call is in (`Some`, the roster as it stands
    /// now) or no longer does (`None`).
    pub fn set_conference_info(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        info: Option<ConferenceInfo>,
    ) {
        let was_focus = shared.focus.is_some();
        shared.focus = info;
        if was_focus != shared.focus.is_some() {
            self.rosters.announce = true;
        }
        if self.rosters.subscriber.is_some() {
            let end = shared.focus.is_none().then_some("noresource");
            self.notify_roster(shared, ctx, end);
        }
    }

    /// Ends the peer's roster subscription, if any, with a final NOTIFY (`noresource`): the
    /// call it came with ends.
    pub(super) fn end_roster_subscription(&mut self, shared: &Shared, ctx: &mut Ctx<'_>) {
        if self.rosters.subscriber.is_some() {
            self.notify_roster(shared, ctx, Some("noresource"));
        }
    }

    /// The peer hung up: the subscription it made in this call goes with it, unNOTIFYed.
    pub(super) fn forget_roster_subscription(&mut self) {
        self.rosters.subscriber = None;
    }

    /// A session that starts from our INVITE: when whether we host a conference changed after
    /// the INVITE the peer answered went out (the last one: a challenge or a redirect makes a
    /// new one, with the Contact of its time), its Contact is announced anew.
    pub(super) fn announce_focus(&mut self, shared: &Shared) {
        let said = shared.invites.last().is_some_and(crate::dialog::says_focus);
        if said != shared.focus.is_some() {
            self.rosters.announce = true;
        }
    }

    /// Work that follows any input: announcing a changed Contact, subscribing to a focus.
    pub(super) fn settle_rosters(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if shared.ended || !self.is_established() {
            return;
        }
        let exchanging = self.reinvite_out.is_some()
            || self.reinvite_in.is_some()
            || self.pending_answer.is_some()
            || self.glare_retry.is_some();
        if self.rosters.announce && !exchanging {
            self.rosters.announce = false;
            if self.peer_allows_update || self.local_body.is_some() {
                self.send_refresh(shared, ctx);
            }
        }
        let focus = self.dialog.remote_is_focus();
        let over = self.rosters.watch.as_ref().is_some_and(|w| w.over);
        if focus && !self.rosters.peer_focus && over {
            // The peer hosts a conference again (after ending one, or refusing us).
            self.rosters.watch = None;
        }
        self.rosters.peer_focus = focus;
        if focus && self.rosters.watch.is_none() {
            self.send_subscribe(shared, ctx, WATCH_SECONDS);
        }
    }

    /// A SUBSCRIBE in the dialog.
    pub(super) fn on_subscribe(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        if event_package(request).as_deref() != Some(EVENT) {
            let mut refused = compose::response(request, 489, None);
            refused
                .headers
                .push(Header::Other("Allow-Events".into(), EVENT.into()));
            return ctx.respond(key, refused);
        }
        if shared.focus.is_none() {
            // The package is known, but this call is in no conference of ours.
            return ctx.respond(key, compose::response(request, 403, None));
        }
        let expires = request
            .expires()
            .map_or(SERVE_SECONDS, |e| e.min(SERVE_SECONDS));
        let mut accepted = compose::dialog_response(
            request,
            200,
            &shared.local_tag,
            &shared.contact_header(),
            ctx.user_agent,
        );
        accepted
            .headers
            .push(rsip::headers::Expires::new(expires.to_string()).into());
        ctx.respond(key, accepted);
        let expires_at = ctx.now + Duration::from_secs(expires.into());
        let id = event_id(request);
        match &mut self.rosters.subscriber {
            // A refresh: the same subscription, its versions going on.
            Some(subscriber) if subscriber.id == id => subscriber.expires_at = expires_at,
            other => {
                *other = Some(Subscriber {
                    expires_at,
                    version: 0,
                    id,
                    in_flight: None,
                    stale: false,
                })
            }
        }
        let end = (expires == 0).then_some("timeout");
        self.notify_roster(shared, ctx, end);
    }

    /// Sends the roster to the subscriber with the next version; `end` terminates the
    /// subscription with that reason.
    fn notify_roster(&mut self, shared: &Shared, ctx: &mut Ctx<'_>, end: Option<&str>) {
        let Some(subscriber) = self.rosters.subscriber.as_mut() else {
            return;
        };
        if subscriber.in_flight.is_some() && end.is_none() {
            subscriber.stale = true;
            return;
        }
        subscriber.stale = false;
        subscriber.version += 1;
        let version = subscriber.version;
        let remaining = subscriber.expires_at.saturating_duration_since(ctx.now);
        let body = shared
            .focus
            .as_ref()
            .map(|info| Body::new(CONTENT_TYPE, info.to_xml(version).into_bytes()));
        let state = match end {
            Some(reason) => format!("terminated;reason={reason}"),
            None => format!("active;expires={}", remaining.as_secs()),
        };
        let event = match &subscriber.id {
            Some(id) => format!("{EVENT};id={id}"),
            None => EVENT.to_owned(),
        };
        if end.is_some() {
            self.rosters.subscriber = None;
        }
        let (mut request, next_hop) =
            shared.build_in_dialog(ctx, &mut self.dialog, Method::Notify, None, body.as_ref());
        // Extension headers, so that a resend with credentials carries them again.
        request.headers.push(Header::Other("Event".into(), event));
        request
            .headers
            .push(Header::Other("Subscription-State".into(), state));
        if let Some(key) = ctx.send_request(request.clone(), next_hop) {
            if let Some(subscriber) = &mut self.rosters.subscriber {
                subscriber.in_flight = Some(key.clone());
            }
            self.track(OutRequest {
                key,
                request,
                body,
                attempts: 0,
                refresh: false,
            });
        }
    }

    /// The final answer to a NOTIFY of ours (`code`, 408 when none came), or `resent` when a
    /// challenge made us send it again with credentials. A 481, 405, 489, 501 or no answer
    /// ends the subscription (RFC 5057 §5.2); other failures fail only that NOTIFY. A roster
    /// that changed meanwhile goes out now.
    pub(super) fn roster_notify_answered(
        &mut self,
        shared: &Shared,
        ctx: &mut Ctx<'_>,
        sent: &TransactionKey,
        code: u16,
        resent: Option<&TransactionKey>,
    ) {
        let Some(subscriber) = self
            .rosters
            .subscriber
            .as_mut()
            .filter(|s| s.in_flight.as_ref() == Some(sent))
        else {
            return;
        };
        if let Some(again) = resent {
            subscriber.in_flight = Some(again.clone());
            return;
        }
        subscriber.in_flight = None;
        if matches!(code, 405 | 408 | 481 | 489 | 501) {
            tracing::debug!(code, "the roster subscription ended with a NOTIFY");
            self.rosters.subscriber = None;
        } else if subscriber.stale && !shared.ended {
            self.notify_roster(shared, ctx, None);
        }
    }

    fn send_subscribe(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>, expires: u32) {
        let (mut request, next_hop) =
            shared.build_in_dialog(ctx, &mut self.dialog, Method::Subscribe, None, None);
        // Extension headers, so that a resend with credentials carries them again.
        request
            .headers
            .push(Header::Other("Event".into(), EVENT.into()));
        request
            .headers
            .push(Header::Other("Expires".into(), expires.to_string()));
        request
            .headers
            .push(Header::Other("Accept".into(), CONTENT_TYPE.into()));
        let watch = self.rosters.watch.get_or_insert_with(Watch::default);
        watch.refresh_at = None;
        match ctx.send_request(request.clone(), next_hop) {
            Some(key) => {
                watch.subscribe = Some(OutRequest {
                    key,
                    request,
                    body: None,
                    attempts: 0,
                    refresh: false,
                });
            }
            None => watch.over = true,
        }
    }

    /// Whether `key` is our SUBSCRIBE.
    pub(super) fn is_subscribe(&self, key: &TransactionKey) -> bool {
        self.rosters
            .watch
            .as_ref()
            .and_then(|w| w.subscribe.as_ref())
            .is_some_and(|s| s.key == *key)
    }

    /// The answer to our SUBSCRIBE.
    pub(super) fn on_subscribe_response(
        &mut self,
        shared: &mut Shared,
        ctx: &mut Ctx<'_>,
        response: &Response,
    ) {
        let code = response.status_code.code();
        if code < 200 {
            return;
        }
        let Some(sent) = self.rosters.watch.as_mut().and_then(|w| w.subscribe.take()) else {
            return;
        };
        match code {
            200..=299 => {
                let granted = response
                    .expires()
                    .or_else(|| sent.request.expires())
                    .unwrap_or(WATCH_SECONDS);
                if let Some(watch) = &mut self.rosters.watch {
                    if granted > 0 && !watch.over {
                        let refresh = Duration::from_secs(granted.into()).mul_f64(0.85);
                        watch.refresh_at = Some(ctx.now + refresh);
                    }
                }
            }
            401 | 407 => match self.resend_authorized(shared, ctx, &sent, response) {
                Some(again) => {
                    if let Some(watch) = &mut self.rosters.watch {
                        watch.subscribe = Some(again);
                    }
                }
                None => self.watch_over(shared, ctx),
            },
            _ => {
                tracing::debug!(code, "the focus refused our conference subscription");
                self.watch_over(shared, ctx);
            }
        }
    }

    /// Our SUBSCRIBE got no answer.
    pub(super) fn on_subscribe_failure(&mut self, shared: &Shared, ctx: &mut Ctx<'_>) {
        if let Some(watch) = &mut self.rosters.watch {
            watch.subscribe = None;
        }
        self.watch_over(shared, ctx);
    }

    /// Our subscription ended for good: its end is reported when a roster was.
    fn watch_over(&mut self, shared: &Shared, ctx: &mut Ctx<'_>) {
        let Some(watch) = &mut self.rosters.watch else {
            return;
        };
        watch.over = true;
        watch.refresh_at = None;
        if std::mem::take(&mut watch.reported) && !shared.ended {
            ctx.emit(CallEvent::Roster { info: None });
        }
    }

    /// A NOTIFY of the conference package: the focus's roster.
    pub(super) fn on_roster_notify(
        &mut self,
        shared: &Shared,
        ctx: &mut Ctx<'_>,
        key: &TransactionKey,
        request: &Request,
    ) {
        let Some(watch) = self.rosters.watch.as_mut().filter(|w| !w.over) else {
            return ctx.respond(key, compose::response(request, 481, None));
        };
        ctx.respond(key, compose::response(request, 200, None));
        let terminated = compose::subscription_terminated(request);
        if !request.body.is_empty() {
            match conference_info::parse(&request.body) {
                Ok(document) => match watch.roster.apply(document) {
                    Ok(true) if !shared.ended => {
                        watch.reported = true;
                        ctx.emit(CallEvent::Roster {
                            info: Some(watch.roster.info.clone()),
                        });
                    }
                    Ok(_) => {}
                    Err(gap) => {
                        tracing::debug!(?gap, "roster out of sequence, subscribing again");
                        if watch.subscribe.is_none() {
                            watch.refresh_at = Some(ctx.now);
                        }
                    }
                },
                Err(error) => tracing::debug!(%error, "unreadable conference-info ignored"),
            }
        }
        if let Some(expires) = active_expires(request) {
            // The focus may shorten the subscription (RFC 6665 §4.1.2.3).
            let at = ctx.now + Duration::from_secs(expires.into()).mul_f64(0.85);
            if watch.subscribe.is_none() && watch.refresh_at.is_none_or(|r| r > at) {
                watch.refresh_at = Some(at);
            }
        }
        if terminated {
            match compose::subscription_reason(request).as_deref() {
                // RFC 6665 §4.1.3: subscribe again at once.
                Some("deactivated" | "timeout") if self.dialog.remote_is_focus() => {
                    watch.refresh_at = Some(ctx.now);
                }
                _ => self.watch_over(shared, ctx),
            }
        }
    }

    /// The subscriber's subscription expired; ours is due for a refresh.
    pub(super) fn roster_timeout(&mut self, shared: &mut Shared, ctx: &mut Ctx<'_>) {
        if shared.ended {
            // The dialog is gone, and the subscriptions with it.
            self.rosters.subscriber = None;
            if let Some(watch) = &mut self.rosters.watch {
                watch.over = true;
            }
            return;
        }
        if self
            .rosters
            .subscriber
            .as_ref()
            .is_some_and(|s| s.expires_at <= ctx.now)
        {
            self.notify_roster(shared, ctx, Some("timeout"));
        }
        let refresh = self.rosters.watch.as_ref().is_some_and(|w| {
            !w.over && w.subscribe.is_none() && w.refresh_at.is_some_and(|at| at <= ctx.now)
        });
        if refresh {
            self.send_subscribe(shared, ctx, WATCH_SECONDS);
        }
    }

    /// When [`Session::roster_timeout`] wants to run.
    pub(super) fn roster_deadline(&self) -> Option<Instant> {
        let expiry = self.rosters.subscriber.as_ref().map(|s| s.expires_at);
        let refresh = self
            .rosters
            .watch
            .as_ref()
            .filter(|w| !w.over && w.subscribe.is_none())
            .and_then(|w| w.refresh_at);
        [expiry, refresh].into_iter().flatten().min()
    }
}

/// The event package a SUBSCRIBE or NOTIFY names (its `Event` header without parameters).
pub(super) fn event_package(request: &Request) -> Option<String> {
    let package = request.event()?.split(';').next()?;
    Some(package.trim().to_ascii_lowercase())
}

/// The `id` parameter of a request's `Event` header (RFC 6665 §8.2.1).
fn event_id(request: &Request) -> Option<String> {
    let (_, params) = request.event()?.split_once(';')?;
    crate::message::headers::params(params)
        .find(|(name, _)| name.eq_ignore_ascii_case("id"))
        .and_then(|(_, id)| id.map(str::to_owned))
}

/// The `expires` of an active (or pending) `Subscription-State`, in seconds.
fn active_expires(request: &Request) -> Option<u32> {
    let (head, params) = request.subscription_state()?.split_once(';')?;
    if head.trim().eq_ignore_ascii_case("terminated") {
        return None;
    }
    crate::message::headers::params(params)
        .find(|(name, _)| name.eq_ignore_ascii_case("expires"))
        .and_then(|(_, value)| value?.trim().parse().ok())
}
