//! A WebRTC session's statistics: the audio stream's [`AudioStats`] (counted by our own
//! pipelines, as in the classic session) plus what only the peer connection knows — the
//! selected ICE path, the round-trip time from RTCP, and the connection timeline — and the
//! video stream's [`VideoStats`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ::webrtc::peer_connection::{RTCIceCandidate, RTCIceCandidateType, RTCStatsReport};

pub use crate::video::VideoStats;

use crate::session::AudioStats;

/// A snapshot of a WebRTC session.
#[derive(Debug, Clone, PartialEq)]
pub struct WebRtcStats {
    /// The audio stream, once negotiation has started it. Its `rtt_ms` comes from the RTCP
    /// receiver reports the peer connection processed, its `remote_addr` is the selected ICE
    /// candidate pair's remote address (unspecified until ICE has selected one), and its
    /// `rtcp_*` counters stay zero: RTCP is the peer connection's.
    pub audio: Option<AudioStats>,
    /// When the session was created.
    pub created_at: Instant,
    /// When ICE and DTLS were up.
    pub connected_at: Option<Instant>,
    /// The local end of the selected ICE candidate pair.
    pub local_addr: Option<SocketAddr>,
    /// The remote end of the selected ICE candidate pair.
    pub remote_addr: Option<SocketAddr>,
    /// What kind of candidate the local end of the selected pair is (`Relay` when our
    /// packets go through a TURN server; `local_addr` is then the relay's address).
    pub local_kind: Option<CandidateKind>,
    /// What kind of candidate the remote end of the selected pair is.
    pub remote_kind: Option<CandidateKind>,
    /// The ICE round-trip time of the selected pair, in milliseconds.
    pub ice_rtt_ms: Option<f64>,
    /// The video stream, when the session has video and negotiation started it.
    pub video: Option<VideoStats>,
    /// The peer's further video streams, with what it labelled them, in order of arrival
    /// (only in a session given [`WebRtcVideoMedia::more_streams`](super::WebRtcVideoMedia)).
    pub more_video: Vec<(super::RemoteVideoStream, VideoStats)>,
}

impl WebRtcStats {
    /// How long ICE and DTLS took from the session's creation.
    pub fn connect_time(&self) -> Option<Duration> {
        self.connected_at
            .map(|at| at.saturating_duration_since(self.created_at))
    }
}

/// The type of an ICE candidate (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// An address of one of our interfaces.
    Host,
    /// Our address as a STUN server saw it.
    ServerReflexive,
    /// Our address as the peer saw it during connectivity checks.
    PeerReflexive,
    /// An address a TURN server allocated for us.
    Relay,
}

impl CandidateKind {
    /// The name SDP and `getStats()` use: `host`, `srflx`, `prflx`, `relay`.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relay => "relay",
        }
    }

    /// The kind of a candidate of the peer connection (`None` for an unspecified type).
    pub(crate) fn of(candidate: &RTCIceCandidate) -> Option<CandidateKind> {
        match candidate.typ {
            RTCIceCandidateType::Host => Some(CandidateKind::Host),
            RTCIceCandidateType::Srflx => Some(CandidateKind::ServerReflexive),
            RTCIceCandidateType::Prflx => Some(CandidateKind::PeerReflexive),
            RTCIceCandidateType::Relay => Some(CandidateKind::Relay),
            _ => None,
        }
    }
}

/// What [`transport_facts`] reads out of a peer connection's stats report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TransportFacts {
    pub local_addr: Option<SocketAddr>,
    pub remote_addr: Option<SocketAddr>,
    pub local_kind: Option<CandidateKind>,
    pub remote_kind: Option<CandidateKind>,
    pub ice_rtt_ms: Option<f64>,
}

/// The selected pair's ICE RTT out of a full report. (The report's candidate entries do not
/// name the remote candidates of 0.21's pairs, and its remote-inbound RTT is never measured:
/// addresses come from the ICE transport, the RTCP RTT from the `rtt` interceptor.)
pub(crate) fn transport_facts(report: &RTCStatsReport) -> TransportFacts {
    let mut facts = TransportFacts::default();
    let selected = report
        .transport()
        .map(|t| t.selected_candidate_pair_id.clone())
        .filter(|id| !id.is_empty());
    let pair = report.candidate_pairs().find(|pair| match &selected {
        Some(id) => &pair.stats.id == id,
        None => pair.nominated,
    });
    if let Some(pair) = pair {
        facts.ice_rtt_ms =
            (pair.current_round_trip_time > 0.0).then_some(pair.current_round_trip_time * 1000.0);
    }
    facts
}

/// A candidate's transport address, when its address is an IP literal (not an mDNS name).
pub(crate) fn candidate_addr(candidate: &RTCIceCandidate) -> Option<SocketAddr> {
    let ip = candidate.address.parse().ok()?;
    Some(SocketAddr::new(ip, candidate.port))
}
