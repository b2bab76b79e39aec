//! What a call reports to the application.

use super::{Body, FailureCause};
use crate::conference_info::ConferenceInfo;
use crate::transport::Target;

/// Something that happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A new incoming call. Answer with `ring`, `answer` or `reject`.
    Incoming {
        /// The caller's URI (From).
        from: String,
        /// The caller's display name, when given.
        display_name: Option<String>,
        /// The called URI (To).
        to: String,
        /// The Request-URI.
        request_uri: String,
        /// The SIP Call-ID.
        call_id: String,
        /// The offer, when the INVITE carries one.
        body: Option<Body>,
        /// Where the INVITE came from.
        source: Target,
    },
    /// Outgoing: 100 Trying arrived.
    Trying,
    /// Outgoing: the far end rings (180), or reports progress (18x). Reported for the first
    /// 18x and again whenever a 18x carries a body that differs from the last one reported.
    Ringing {
        /// The early-media body (SDP) of a 18x, if it carries one.
        early_media: Option<Body>,
        /// The 18x came reliably (`100rel`, RFC 3262): an SDP answer in it is final, and the
        /// 2xx may carry none.
        reliable: bool,
    },
    /// Outgoing: the 2xx arrived (the ACK is already sent).
    Answered {
        /// The 2xx's body (the SDP answer).
        body: Option<Body>,
    },
    /// The dialog is confirmed: for an outgoing call right after `Answered`, for an incoming
    /// call when the ACK for our 2xx arrives.
    Established {
        /// The ACK's body (incoming calls answered with an offer carry the answer here).
        body: Option<Body>,
    },
    /// Outgoing: the call did not connect.
    Failed {
        /// The final status code, when a final response came.
        code: Option<u16>,
        /// The reason phrase as the peer wrote it, or our own words.
        reason: String,
        /// What it means.
        cause: FailureCause,
        /// What the peer's `Warning` header says, in words (its warn-text, or the meaning of
        /// its warn-code when the text is empty), e.g. why a `488` refused the offer.
        warning: Option<String>,
    },
    /// The peer sent a re-INVITE; answer with `answer_reoffer` or `reject_reoffer`.
    ReOffer {
        /// The new offer (`None` for an offerless re-INVITE: answer with an offer).
        body: Option<Body>,
    },
    /// Our re-INVITE was accepted (the ACK is already sent), or the ACK for our answer to an
    /// offerless re-INVITE carried the answer.
    ReAnswer {
        /// The 2xx's body (or the ACK's).
        body: Option<Body>,
    },
    /// Our offer gave way to the peer's (RFC 3261 §14.1): it was answered 491 and waited to
    /// be sent again, or waited behind our own session refresh, when the peer's offer came.
    /// It is not sent: the application withdraws it, answers the `ReOffer` that follows, and
    /// makes its offer again from the session as it is then (`reinvite` keeps it until the
    /// peer's exchange is over).
    ReInviteYielded,
    /// The peer cancelled its re-INVITE before we answered it (it got 487): the session
    /// stays as it was before that offer, and `answer_reoffer` now fails. An application
    /// that already applied the offer to its media makes an offer of its own to bring the
    /// two sides back in step.
    ReOfferCancelled,
    /// Our re-INVITE was refused; the call goes on as before. (One that times out, or is
    /// answered 408 or 481, ends the call instead: `Ended` follows, and no `ReInviteFailed`.)
    ReInviteFailed {
        /// The status code (503 when the request could not be sent, RFC 3261 §8.1.3.1).
        code: u16,
        /// What the refusal's `Warning` header says, in words (see `Failed::warning`).
        warning: Option<String>,
    },
    /// The peer sent an INFO with a body (answered 200).
    Info {
        /// The body, e.g. `application/dtmf-relay`.
        body: Body,
    },
    /// The peer asks us to call `target` instead (REFER, a blind transfer). The application
    /// places that call and reports its progress with `transfer_progress`.
    TransferRequested {
        /// The Refer-To URI.
        target: String,
        /// The Referred-By URI, when given.
        referred_by: Option<String>,
    },
    /// Progress of a transfer we asked for: the answer to our REFER, then the status lines of
    /// the peer's NOTIFYs (`180`, `200`, `486`…).
    TransferProgress {
        /// The status code.
        code: u16,
        /// Its reason phrase.
        reason: String,
        /// No more progress will come for this transfer.
        finished: bool,
    },
    /// The roster of the conference the peer hosts (RFC 4575), each time it changes; `None`
    /// when the subscription to it ended (the call may go on).
    Roster {
        /// The users in the conference, the focus's own among them.
        info: Option<ConferenceInfo>,
    },
    /// The call is over.
    Ended {
        /// Whether the peer (or the network) ended it.
        by_remote: bool,
        /// In plain words.
        reason: String,
    },
}
