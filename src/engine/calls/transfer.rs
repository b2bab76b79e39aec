//! Blind transfer (RFC 3515 REFER, RFC 5589), both roles.
//!
//! - Transferor: [`Calls::transfer`] sends the REFER; the peer's NOTIFYs come back as
//!   `CallUpdate::TransferProgress`, and a final 2xx ends our call (the peer now talks to the
//!   target).
//! - Transferee: a REFER becomes a [`TransferRequest`], which the engine turns into a new call
//!   to the target as the same account and identity (only the engine knows the accounts). The
//!   new call's ringing, answer or failure go back to the transferor as NOTIFY sipfrag
//!   (`180`, `200`, `486`…); once it is answered, the original call is hung up.

use std::time::Instant;

use callisto_signaling::endpoint::Endpoint;
use tokio::sync::mpsc;

use super::{CallKey, CallUpdate, Calls, MediaOptions};
use crate::engine::EngineEvent;

/// A transfer the peer of `original` asked for: a new call to `target`, to be placed by the
/// engine.
#[derive(Debug, Clone)]
pub(in crate::engine) struct TransferRequest {
    /// The call whose peer sent the REFER.
    pub original: CallKey,
    /// The key the new call gets.
    pub new_call: CallKey,
    /// The Refer-To URI.
    pub target: String,
    /// The account of the original call, when it was placed with one.
    pub account: Option<usize>,
    /// Who we were in the original call.
    pub identity: Option<rsip::Uri>,
    /// The original call's media options (the new call plays and records the same way).
    pub media: MediaOptions,
}

impl Calls {
    /// Asks the peer of `key` to call `target` instead (REFER).
    pub(in crate::engine) fn transfer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        target: &str,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if let Err(error) = endpoint.transfer(now, call.id, target) {
            tracing::warn!(%error, "cannot transfer");
        }
    }

    /// The transfers the peers asked for since the last call; the engine places each one with
    /// [`Calls::start`] and then [`Calls::link_transfer`].
    pub(in crate::engine) fn take_transfer_requests(&mut self) -> Vec<TransferRequest> {
        std::mem::take(&mut self.transfer_requests)
    }

    /// Ties a placed transfer call to the call it came from, or tells the transferor that it
    /// could not be placed.
    pub(in crate::engine) fn link_transfer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        request: &TransferRequest,
        placed: bool,
    ) {
        match self.calls.get_mut(&request.new_call) {
            Some(call) if placed => call.transfer_of = Some(request.original),
            _ => {
                self.transfer_progress(endpoint, now, request.original, 503, "Service Unavailable")
            }
        }
    }

    /// The peer of `key` asked us to call `target`: accept (the endpoint already answered
    /// `202`), tell it we are trying, and queue the new call for the engine.
    pub(super) fn on_transfer_requested(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        target: String,
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        tracing::info!(%target, "transfer requested");
        let request = TransferRequest {
            original: key,
            new_call: CallKey(self.keys.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            target: target.clone(),
            account: call.account,
            identity: call.identity.clone(),
            media: call.media.options.clone(),
        };
        let _ = events.send(EngineEvent::Call {
            key,
            update: CallUpdate::TransferRequested {
                target,
                new_call: request.new_call,
            },
        });
        self.transfer_progress(endpoint, now, key, 100, "Trying");
        self.transfer_requests.push(request);
    }

    /// Reports the new call's progress to the transferor of `original`.
    pub(super) fn transfer_progress(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        original: CallKey,
        code: u16,
        reason: &str,
    ) {
        let Some(call) = self.calls.get(&original) else {
            return;
        };
        if let Err(error) = endpoint.transfer_progress(now, call.id, code, reason) {
            tracing::debug!(%error, "transfer progress not sent");
        }
    }

    /// The transfer target answered: tell the transferor, and leave the original call.
    pub(super) fn transfer_succeeded(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        original: CallKey,
    ) {
        self.transfer_progress(endpoint, now, original, 200, "OK");
        self.hang_up(endpoint, now, original);
    }
}
