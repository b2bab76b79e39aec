//! Video in a conference we host, for participants that show several streams: instead of
//! the mosaic, each such leg is sent every other participant's video as a stream of its own,
//! forwarded as it arrives (not decoded, not encoded again), and its own video track carries
//! the host's picture alone.
//!
//! A leg takes several streams when its peer says so in its SDP and has H.264 in
//! packetization mode 1 ([`takes_forwarded_streams`]: a Callisto that shows each stream as a
//! tile), on either path; a peer with mode 0 only is sent the mosaic, cut for mode 0.
//! Every leg with video is a sender, on either path: what its session receives
//! is tapped once ([`WebRtcSession::tap_video`], or the classic stream's tap: H.264 packets
//! either way, decrypted) and copied to an [`Outlet`] of every receiving leg — a
//! [`ForwardedVideo`] track of its WebRTC session, or a classic forwarded stream
//! (`classic_forwarding.rs`) — which gives it the stream's SSRC and payload type and
//! encrypts it anew. A WebRTC leg's streams change by a new offer (a re-INVITE) when a
//! participant joins or leaves: tracks are added ([`WebRtcSession::forward_video`], labelled
//! with the participant's name; a track a gone participant's stream left is taken first) or
//! stopped ([`WebRtcSession::stop_forwarding`]: the track stays, inactive), one offer at a
//! time per leg; what changes meanwhile goes into the next one. A receiver's keyframe
//! request about a stream goes to the session that receives it from its sender.
//!
//! [`takes_forwarded_streams`]: callisto_media::webrtc::takes_forwarded_streams
//! [`WebRtcSession::tap_video`]: callisto_media::webrtc::WebRtcSession::tap_video
//! [`WebRtcSession::forward_video`]: callisto_media::webrtc::WebRtcSession::forward_video
//! [`WebRtcSession::stop_forwarding`]: callisto_media::webrtc::WebRtcSession::stop_forwarding

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use callisto_media::rtp::RtpPacket;
use callisto_media::webrtc::{ForwardedVideo, VideoTap, WebRtcSession};
use callisto_signaling::call::Body;
use callisto_signaling::conference_info::ConferenceInfo;
use callisto_signaling::endpoint::Endpoint;

use super::media::MediaEvents;
use super::webrtc::WebRtcReady;
use super::{Call, CallKey, Calls};

/// Where a receiving leg takes a sender's packets in (called on the sender's reader).
pub(super) type Outlet = Arc<dyn Fn(&RtpPacket) + Send + Sync>;

/// Where one sending leg's video goes: each receiving leg's outlet for it.
pub(super) type Destinations = Arc<Mutex<Vec<(CallKey, Outlet)>>>;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A WebRTC leg's outlet: its forwarded track.
fn track_outlet(track: ForwardedVideo) -> Outlet {
    Arc::new(move |packet: &RtpPacket| track.send(packet))
}

/// The conference's forwarding: for each sending leg, where its packets go.
#[derive(Default)]
pub(super) struct Forwarding {
    pub(super) senders: HashMap<CallKey, Destinations>,
}

/// A receiving leg's forwarded streams, and whether a new offer about them is under way.
#[derive(Default)]
pub(super) struct LegStreams {
    /// The participant each forwarded track carries.
    tracks: Vec<(CallKey, ForwardedVideo)>,
    /// A new offer (tracks added or removed) is being made or waits for its answer.
    pub(super) busy: bool,
    /// The peer has not accepted the tracks as they are (an offer failed): offered again
    /// once this time has come.
    retry_at: Option<Instant>,
    /// What this leg's own video is labelled when forwarded to others (given once).
    pub(super) label: Option<String>,
    /// Offers that failed in a row (the wait before the next doubles with each).
    pub(super) failures: u32,
}

impl LegStreams {
    /// Our offer about the streams gave way to the peer's offer: it is made again, as the
    /// forwarding is then, once that is answered.
    pub(super) fn yielded(&mut self, now: Instant) {
        if self.busy {
            self.busy = false;
            self.retry_at = Some(now);
        }
    }
}

/// How long after a failed offer about a leg's streams the next is made (doubling with each
/// failure in a row, up to 16 times as long).
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// What asks a sending leg's peer for a keyframe.
pub(super) type Requester = callisto_media::session::KeyframeSource;

/// A sending leg to add to a receiver: who, by what name, and what asks it for keyframes.
struct NewStream {
    sender: CallKey,
    label: String,
    requester: Requester,
}

/// What asks `call`'s peer for a keyframe: its WebRTC session (held weakly: it closes with
/// the call), or its running classic video stream.
fn keyframe_requester(call: &Call) -> Option<Requester> {
    if let Some(session) = &call.webrtc {
        let session: Weak<WebRtcSession> = Arc::downgrade(session);
        return Some(Arc::new(move || {
            if let Some(session) = session.upgrade() {
                session.request_keyframe();
            }
        }));
    }
    call.media.video.as_ref()?.keyframe_requester()
}

/// Copies what `call` receives of its peer's video to `tap` as well; false when it
/// receives none.
fn install_tap(call: &Call, tap: VideoTap) -> bool {
    if let Some(session) = &call.webrtc {
        session.tap_video(tap);
        return true;
    }
    call.media
        .video
        .as_ref()
        .is_some_and(|video| video.tap(tap))
}

/// What a receiving leg's new offer changed, reported with the offer.
pub(crate) struct StreamsChange {
    added: Vec<(CallKey, ForwardedVideo)>,
    removed: Vec<CallKey>,
}

impl Calls {
    /// Brings every receiving leg's forwarded streams in line with who is in the conference
    /// now; runs after every call event and once a second.
    pub(in crate::engine) fn update_forwarding(&mut self, endpoint: &mut Endpoint) {
        // Senders: established legs with video, on either path.
        let keys = self.video_legs();
        self.name_streams(&keys);
        let senders: Vec<(CallKey, String, Requester)> = keys
            .iter()
            .filter_map(|key| {
                let call = self.calls.get(key)?;
                Some((*key, call.streams.label.clone()?, keyframe_requester(call)?))
            })
            .collect();
        let sending: BTreeSet<CallKey> = senders.iter().map(|(key, _, _)| *key).collect();
        // Forget the calls that ended; a sender that stops sending (its tap stays with its
        // session) goes nowhere until it sends again.
        let calls = &self.calls;
        self.forwarding.senders.retain(|key, destinations| {
            if !sending.contains(key) {
                lock(destinations).clear();
            }
            calls.contains_key(key)
        });
        for destinations in self.forwarding.senders.values() {
            lock(destinations).retain(|(receiver, _)| sending.contains(receiver));
        }
        for key in &sending {
            if self.forwarding.senders.contains_key(key) {
                continue;
            }
            let destinations = Destinations::default();
            let to = Arc::clone(&destinations);
            let tap: VideoTap = Arc::new(move |packet| {
                for (_, outlet) in lock(&to).iter() {
                    outlet(packet);
                }
            });
            if self
                .calls
                .get(key)
                .is_some_and(|call| install_tap(call, tap))
            {
                self.forwarding.senders.insert(*key, destinations);
            }
        }
        let receivers: Vec<CallKey> = senders
            .iter()
            .map(|(key, _, _)| *key)
            .filter(|key| self.calls.get(key).is_some_and(|c| c.takes_streams))
            .collect();
        for receiver in receivers {
            let Some(call) = self.calls.get_mut(&receiver) else {
                continue;
            };
            call.media.options.controls.own_streams.set(true);
            if call.streams.busy || call.pending_hold.is_some() || call.answering {
                continue;
            }
            let retry = call.streams.retry_at.is_some_and(|at| at <= Instant::now());
            let Some(session) = call.webrtc.clone() else {
                let others: Vec<(CallKey, String, Requester)> = senders
                    .iter()
                    .filter(|(key, _, _)| *key != receiver)
                    .filter(|(key, _, _)| self.forwarding.senders.contains_key(key))
                    .map(|(key, label, requester)| (*key, label.clone(), Arc::clone(requester)))
                    .collect();
                self.offer_classic_streams(endpoint, receiver, &others, retry);
                continue;
            };
            if !session.is_connected() {
                continue;
            }
            let have: BTreeSet<CallKey> = call.streams.tracks.iter().map(|(k, _)| *k).collect();
            let add: Vec<NewStream> = senders
                .iter()
                .filter(|(key, _, _)| *key != receiver && !have.contains(key))
                .filter(|(key, _, _)| self.forwarding.senders.contains_key(key))
                .map(|(key, label, requester)| NewStream {
                    sender: *key,
                    label: label.clone(),
                    requester: Arc::clone(requester),
                })
                .collect();
            let remove: Vec<(CallKey, ForwardedVideo)> = call
                .streams
                .tracks
                .iter()
                .filter(|(key, _)| !sending.contains(key))
                .cloned()
                .collect();
            if add.is_empty() && remove.is_empty() && !retry {
                continue;
            }
            call.streams.busy = true;
            let events = self.media_events.clone();
            streams_offer(&call.steps, receiver, session, add, remove, events);
        }
    }

    /// The established legs of a conference we host that have video, in call order.
    pub(super) fn video_legs(&self) -> Vec<CallKey> {
        let mut keys: Vec<CallKey> = self
            .calls
            .values()
            .filter(|c| c.media.options.conference.is_some() && c.established.is_some())
            .filter(|c| c.shows_video())
            .map(|c| c.key)
            .collect();
        keys.sort();
        keys
    }

    /// Gives each of `keys` without one its stream label for good: the participant's name
    /// as an `a=msid` token, followed by the call's number when another call has it already.
    pub(super) fn name_streams(&mut self, keys: &[CallKey]) {
        for key in keys {
            let Some(call) = self.calls.get(key) else {
                continue;
            };
            if call.streams.label.is_some() {
                continue;
            }
            let name = stream_label(&call.peer);
            let taken = self
                .calls
                .values()
                .any(|other| other.streams.label.as_deref() == Some(name.as_str()));
            let label = if taken {
                format!("{name}-{}", key.0)
            } else {
                name
            };
            if let Some(call) = self.calls.get_mut(key) {
                call.streams.label = Some(label);
            }
        }
    }

    /// A receiving leg's new offer is ready: its tracks are the conference's from now on
    /// (packets flow once the answer is applied), and the offer goes out as a re-INVITE.
    pub(super) fn on_streams_offer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        change: StreamsChange,
        result: Result<String, String>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.streams
            .tracks
            .retain(|(sender, _)| !change.removed.contains(sender));
        for (sender, track) in change.added {
            if let Some(destinations) = self.forwarding.senders.get(&sender) {
                lock(destinations).push((key, track_outlet(track.clone())));
            }
            call.streams.tracks.push((sender, track));
        }
        for sender in &change.removed {
            if let Some(destinations) = self.forwarding.senders.get(sender) {
                lock(destinations).retain(|(receiver, _)| *receiver != key);
            }
        }
        let offer = match result {
            Ok(offer) => offer,
            Err(reason) => {
                tracing::warn!(?key, %reason, "cannot offer the conference's streams");
                self.streams_settled(endpoint, now, key, false);
                return;
            }
        };
        if let Err(error) = endpoint.reinvite(now, call.id, Body::sdp(offer)) {
            tracing::warn!(?key, %error, "cannot offer the conference's streams");
            call.withdraw_webrtc_offer();
            self.streams_settled(endpoint, now, key, false);
        }
    }

    /// The offer about a leg's streams is answered (`accepted`) or failed: the next can be
    /// made — at once, or after [`RETRY_AFTER`] (and longer after repeated failures) when the
    /// peer has not accepted the tracks as they are — and a hold asked for meanwhile is made
    /// now ([`Calls::run_deferred_holds`]).
    pub(super) fn streams_settled(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        accepted: bool,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !call.streams.busy {
            return;
        }
        let streams = &mut call.streams;
        streams.busy = false;
        streams.failures = if accepted { 0 } else { streams.failures + 1 };
        streams.retry_at = (!accepted)
            .then(|| now + RETRY_AFTER * 2u32.pow(streams.failures.saturating_sub(1).min(4)));
        self.run_deferred_holds(endpoint, now);
        self.update_forwarding(endpoint);
    }
}

/// Adds and removes a receiving leg's forwarded tracks and makes the new offer; reports
/// [`WebRtcReady::StreamsOffer`].
fn streams_offer(
    steps: &super::webrtc::Steps,
    key: CallKey,
    session: Arc<WebRtcSession>,
    add: Vec<NewStream>,
    remove: Vec<(CallKey, ForwardedVideo)>,
    events: MediaEvents,
) {
    steps.run(async move {
        let mut change = StreamsChange {
            added: Vec::new(),
            removed: Vec::new(),
        };
        for (sender, track) in remove {
            session.stop_forwarding(&track).await;
            change.removed.push(sender);
        }
        for stream in add {
            let requester = stream.requester;
            match session
                .forward_video(&stream.label, move || requester())
                .await
            {
                Ok(track) => change.added.push((stream.sender, track)),
                Err(error) => tracing::warn!(%error, "cannot forward a stream"),
            }
        }
        let result = session.create_reoffer().await.map_err(|e| e.to_string());
        let _ = events.send((
            key,
            super::media::CallMediaEvent::WebRtc(WebRtcReady::StreamsOffer { change, result }),
        ));
    });
}

/// A participant's name as a stream label (`a=msid`'s stream id, RFC 8830: up to 64 token
/// characters): what is not a token character becomes `_`.
pub(super) fn stream_label(name: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`{|}~".contains(c);
    let label: String = name
        .trim()
        .chars()
        .map(|c| if token(c) { c } else { '_' })
        .take(64)
        .collect();
    if label.is_empty() {
        "participant".into()
    } else {
        label
    }
}

/// Each labelled video stream of a conference roster with the name of its participant (the
/// display text, else the bare address).
pub(super) fn stream_titles(info: &ConferenceInfo) -> Vec<(String, String)> {
    info.users
        .iter()
        .flat_map(|user| {
            let title = super::peer_label(user.display.as_deref(), &user.entity);
            user.media
                .iter()
                .filter(|m| m.kind == "video")
                .filter_map(move |m| Some((m.label.clone()?, title.clone())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{stream_label, stream_titles};
    use callisto_signaling::conference_info::{ConferenceInfo, ConferenceMedia, ConferenceUser};

    #[test]
    fn participants_names_become_msid_tokens() {
        assert_eq!(stream_label("carol@127.0.0.1"), "carol_127.0.0.1");
        assert_eq!(stream_label("bob.smith+1"), "bob.smith+1");
        assert_eq!(stream_label(" Carol Smith "), "Carol_Smith");
        assert_eq!(stream_label("Zoë"), "Zo_");
        assert_eq!(stream_label(""), "participant");
        assert_eq!(stream_label(&"x".repeat(80)).len(), 64);
    }

    #[test]
    fn a_rosters_stream_labels_name_the_participants() {
        let media = |kind: &str, label: Option<&str>| ConferenceMedia {
            id: "1".into(),
            kind: kind.into(),
            label: label.map(str::to_owned),
            status: None,
        };
        let user =
            |entity: &str, display: Option<&str>, media: Vec<ConferenceMedia>| ConferenceUser {
                entity: entity.into(),
                display: display.map(str::to_owned),
                status: None,
                media,
            };
        let info = ConferenceInfo {
            entity: "sip:host@example.org".into(),
            subject: None,
            users: vec![
                user(
                    "sip:host@example.org",
                    Some("Host"),
                    vec![media("video", None)],
                ),
                user(
                    "sip:carol@example.org",
                    None,
                    vec![
                        media("audio", Some("a")),
                        media("video", Some("carol_example.org")),
                    ],
                ),
                user(
                    "sip:dave@example.org",
                    Some("Dave Smith"),
                    vec![media("video", Some(&stream_label("Dave Smith")))],
                ),
            ],
        };
        assert_eq!(
            stream_titles(&info),
            [
                (
                    "carol_example.org".to_string(),
                    "carol@example.org".to_string()
                ),
                ("Dave_Smith".to_string(), "Dave Smith".to_string()),
            ]
        );
    }
}
