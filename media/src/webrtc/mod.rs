//! The WebRTC media session: one call's audio (and video) over ICE + DTLS-SRTP with
//! `UDP/TLS/RTP/SAVPF`, BUNDLE and rtcp-mux (DESIGN.md rule 3, the WebRTC path), driven by the
//! `webrtc` 0.21 crate over the sans-IO `rtc` core.
//!
//! # Layers
//!
//! ```text
//!  engine ──► WebRtcSession (session.rs, async): peer connection, offer/answer, timeouts
//!              │  peer.rs: MediaEngine (Opus, H.264), interceptors (NACK responder, reports,
//!              │           TWCC, congestion feed (congestion_feed.rs → BitrateController),
//!              │           RTCP RTT (rtt.rs), keyframe requests to us (keyframe_requests.rs)),
//!              │           SettingEngine (ICE pacing)
//!              ├─ tasks.rs (tokio): remote tracks ──RTP──► media threads' inboxes
//!              │                    media threads ──RTP──► local tracks (TrackLocalStaticRTP)
//!              │                    PLIs out, PLI/FIR in, statistics and the selected pair
//!              ├─ audio_thread.rs (own thread, rule 4): the classic path's sans-IO
//!              │   SendPipeline (source → resample → Opus → RTP) and ReceivePipeline
//!              │   (RTP → statistics → jitter buffer → decode/conceal/FEC → sink)
//!              └─ video::stream_thread (own thread): source → scale → H.264 (rate and size
//!                  from the bitrate controller) → RFC 6184 → RTP, and RTP → NACK generator →
//!                  reorder buffer → depacketizer → decoder → sink, keyframe requests both ways
//! ```
//!
//! Audio is the classic session's pipelines verbatim: the same encoder, jitter buffer, FEC and
//! concealment, and the same [`AudioStats`]. Video uses [`crate::video::h264`]. What differs
//! from the classic path is below RTP: packets go through the peer connection, which does ICE,
//! DTLS-SRTP, RTCP reports, NACK and transport-wide congestion feedback.
//!
//! # Contract
//!
//! - **Offer/answer.** SIP does not trickle: [`WebRtcSession::create_offer`] and
//!   [`WebRtcSession::accept_offer`] return the SDP only after ICE gathering is complete, so it
//!   carries every candidate. Gathering is bounded by [`WebRtcConfig::gathering_timeout`].
//! - **Media start.** Audio starts the moment negotiation completes (the answer applied or
//!   created): the source is read and the sink written every 20 ms from then on; packets made
//!   before DTLS is up are dropped, not queued, so nothing arrives late. Video sending starts
//!   when the connection is up, with an IDR. A peer that declines video leaves the call
//!   audio-only.
//! - **Keyframes.** A damaged access unit or a decoder error sends a PLI (at most one per
//!   300 ms); a PLI or FIR from the peer makes our next frame an IDR.
//! - **Bandwidth.** Video starts at [`VIDEO_START_BITRATE`] (or [`VideoConfig::max_bitrate`]
//!   when lower) and follows a [`BitrateController`](crate::congestion::BitrateController)
//!   fed by transport-wide feedback, REMB and receiver reports, never above
//!   [`VideoConfig::max_bitrate`]; the frame size and rate follow its layer advice.
//!   [`VideoStats`] shows the target.
//! - **Loss.** Lost video packets are NACKed (RTT-aware retries); the peer connection's NACK
//!   responder resends ours. A reorder buffer holds packets behind a hole for
//!   min(1.5 × RTT + 50 ms, 150 ms) so a retransmission fills it; only then is the access
//!   unit given up and a PLI sent.
//! - **Connection.** [`WebRtcSession::wait_connected`] waits for ICE and DTLS, bounded by
//!   [`WebRtcConfig::connect_timeout`]; an ICE failure is [`WebRtcError::ConnectFailed`], a
//!   DTLS handshake that does not complete once ICE is up (a fingerprint that does not match
//!   the certificate) is [`WebRtcError::DtlsHandshake`] after [`WebRtcConfig::dtls_timeout`]:
//!   an error value, never a hang.
//! - **Bad input.** SDP that does not parse, lacks a fingerprint or is not a WebRTC
//!   description is refused with [`WebRtcError::BadSdp`] before it reaches the peer
//!   connection; RTP that fails validation is dropped and counted in [`AudioStats::discarded`].
//! - **ICE pacing.** Connectivity checks run every [`WebRtcConfig::ice_check_interval`]
//!   (default 20 ms, the `rtc` default is 200 ms) and give up on a pair after the same 1.4 s as
//!   the library default, see [`peer`] for why.

mod audio_thread;
pub(crate) mod congestion_feed;
mod forwarding;
mod hold;
mod keyframe_requests;
mod local_media;
mod more_streams;
pub mod peer;
mod relay_nudge;
mod rtt;
mod sdp_check;
mod session;
mod stats;
mod tasks;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use forwarding::{ForwardedVideo, StreamRewriter, VideoTap};
pub use more_streams::{RemoteStreamSinks, RemoteStreams, RemoteVideoStream};
pub use peer::negotiated_audio_codec;
pub use sdp_check::{
    announce_multistream, check_remote_sdp, takes_forwarded_streams, takes_several_streams,
    SdpFacts, MULTISTREAM_ATTRIBUTE,
};
pub use session::{WebRtcMedia, WebRtcSession, WebRtcVideoMedia};
pub use stats::{CandidateKind, VideoStats, WebRtcStats};

use crate::codec::{AudioCodecKind, CodecError, EncoderConfig};
#[cfg(doc)]
use crate::session::AudioStats;
use crate::session::{MediaEvent, SessionError};

/// A STUN or TURN server (`stun:`, `turn:`, `turns:` URLs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// Its URLs, `stun:HOST:PORT` or `turn:HOST:PORT?transport=udp`, naming a server the user
    /// configured (there is none by default).
    pub urls: Vec<String>,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN credential (empty for STUN). Never logged.
    pub credential: String,
}

impl IceServer {
    /// How many of its URLs name a TURN server over UDP (`turn:HOST[:PORT]`, with no
    /// transport or `?transport=udp`): the ones `webrtc` 0.21 allocates a relay address on
    /// (it skips `turns:` and TCP).
    pub fn udp_turn_urls(&self) -> usize {
        self.urls
            .iter()
            .filter(|url| {
                let (scheme, rest) = url.split_once(':').unwrap_or_default();
                let transport = rest
                    .split_once('?')
                    .map(|(_, query)| query)
                    .into_iter()
                    .flat_map(|query| query.split('&'))
                    .find_map(|pair| pair.strip_prefix("transport="));
                scheme.eq_ignore_ascii_case("turn")
                    && transport.is_none_or(|t| t.eq_ignore_ascii_case("udp"))
            })
            .count()
    }
}

/// The audio side of a WebRTC session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcAudioConfig {
    /// Codecs in order of preference. Opus is what WebRTC peers expect; G.711 serves gateways.
    pub codecs: Vec<AudioCodecKind>,
    /// Encoder settings: channels, bitrate, FEC, complexity (`frame_ms` is taken from
    /// `ptime_ms`).
    pub encoder: EncoderConfig,
    /// Packet duration in milliseconds. Default 20.
    pub ptime_ms: u32,
    /// Silence (no RTP from the peer) after which the audio stream reports
    /// [`MediaEvent::MediaTimeout`] (once, again only after packets came back and stopped).
    /// Default none: the connection's own failure ends a one-to-one call, and a peer's hold
    /// may send nothing for a long time.
    pub media_timeout: Option<Duration>,
}

impl Default for WebRtcAudioConfig {
    fn default() -> Self {
        WebRtcAudioConfig {
            codecs: vec![AudioCodecKind::Opus],
            encoder: EncoderConfig::mono(),
            ptime_ms: 20,
            media_timeout: None,
        }
    }
}

/// Where a session's video bitrate starts (unless [`VideoConfig::max_bitrate`] is lower):
/// enough for 640×480 at 30 fps; the controller ramps up or down from there.
pub const VIDEO_START_BITRATE: u32 = 800_000;

/// The lowest target the bitrate controller gives video.
pub const VIDEO_MIN_BITRATE: u32 = 50_000;

/// The video side of a WebRTC session (H.264 constrained baseline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoConfig {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Highest bitrate the encoder aims for, in bits per second: the bitrate controller's
    /// ceiling.
    pub max_bitrate: u32,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            width: 640,
            height: 480,
            fps: 30,
            max_bitrate: 1_000_000,
        }
    }
}

/// Everything a WebRTC session needs before offer/answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// Local UDP addresses to gather host candidates on. `127.0.0.1:0` keeps a session on
    /// loopback (tests); `0.0.0.0:0` means every non-loopback interface of the machine.
    pub udp_addrs: Vec<SocketAddr>,
    /// STUN and TURN servers. Empty by default: no public server is ever contacted unless
    /// configured.
    pub ice_servers: Vec<IceServer>,
    /// Use only relay candidates (the W3C ICE transport policy `relay`): no host or
    /// server-reflexive candidate is gathered or offered, every packet goes through a TURN
    /// server of [`WebRtcConfig::ice_servers`], and neither side learns the other's
    /// addresses. Building the session fails with [`WebRtcError::PeerConnection`] when no
    /// TURN server is configured. Default off.
    pub relay_only: bool,
    /// Audio codecs and encoder settings.
    pub audio: WebRtcAudioConfig,
    /// Video, when the call has it.
    pub video: Option<VideoConfig>,
    /// Our RTCP CNAME and media stream id, shared by the audio and video tracks (so the
    /// peer can synchronise them). Empty (the default): a random one per session.
    pub cname: String,
    /// Bound on ICE gathering before an offer or answer is returned. Default 5 s.
    pub gathering_timeout: Duration,
    /// Bound on ICE + DTLS in [`WebRtcSession::wait_connected`]. Default 10 s.
    pub connect_timeout: Duration,
    /// Bound on the DTLS handshake once ICE is connected. Default 3 s: the handshake takes a
    /// few round trips, and two lost flights (1 s, then 2 s of retransmission backoff) still
    /// fit.
    pub dtls_timeout: Duration,
    /// Interval of ICE connectivity checks while connecting. Default 20 ms.
    pub ice_check_interval: Duration,
    /// Resolve the peer's mDNS (`.local`) host candidates, as browsers send them. This opens a
    /// multicast socket on port 5353 of every interface, so [`WebRtcConfig::loopback`] turns it
    /// off. Default on.
    pub resolve_mdns: bool,
}

impl WebRtcConfig {
    /// Loopback only (`127.0.0.1:0`), no ICE servers, Opus, no video.
    pub fn loopback() -> Self {
        WebRtcConfig {
            udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            resolve_mdns: false,
            ..Self::default()
        }
    }
}

impl Default for WebRtcConfig {
    /// Every interface (`0.0.0.0:0`), no ICE servers, Opus, no video.
    fn default() -> Self {
        WebRtcConfig {
            udp_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            ice_servers: Vec::new(),
            relay_only: false,
            audio: WebRtcAudioConfig::default(),
            video: None,
            cname: String::new(),
            gathering_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            dtls_timeout: Duration::from_secs(3),
            ice_check_interval: peer::ICE_CHECK_INTERVAL,
            resolve_mdns: true,
        }
    }
}

/// Something a WebRTC session reports to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebRtcEvent {
    /// ICE and DTLS are up: media flows.
    Connected {
        /// When.
        at: Instant,
    },
    /// The connection was lost for a while (ICE consent); it may come back.
    Disconnected,
    /// The connection failed (ICE or DTLS) and will not come back.
    Failed,
    /// An audio stream event, as the classic session reports them (first packet, ...).
    Audio(MediaEvent),
}

/// Why a WebRTC session could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebRtcError {
    /// The remote SDP is not a usable WebRTC description.
    #[error("bad SDP: {0}")]
    BadSdp(String),
    /// The peer connection refused the description or the request.
    #[error("peer connection: {0}")]
    PeerConnection(String),
    /// Offer/answer in the wrong order (an answer without an offer, a second offer).
    #[error("offer/answer out of order: {0}")]
    Negotiation(&'static str),
    /// The peer's new offer came while ours is under way (sent and unanswered, or its answer
    /// or refusal not applied yet): refuse it with `491 Request Pending` (RFC 3261 14.2), and
    /// the peer tries again later.
    #[error("the offers crossed: ours awaits its answer")]
    Glare,
    /// No codec in common for a stream.
    #[error("no common {0} codec")]
    NoCommonCodec(&'static str),
    /// ICE gathering did not complete in time.
    #[error("ICE gathering did not complete within {0:?}")]
    GatheringTimeout(Duration),
    /// ICE + DTLS did not connect in time.
    #[error("ICE/DTLS did not connect within {0:?}")]
    ConnectTimeout(Duration),
    /// ICE failed: no candidate pair works.
    #[error("connection failed: no ICE candidate pair works")]
    ConnectFailed,
    /// ICE connected but DTLS did not: the peer's certificate does not match the SDP's
    /// `a=fingerprint`, or the handshake was lost.
    #[error("DTLS handshake did not complete within {0:?} of ICE connecting (certificate fingerprint mismatch, or DTLS lost)")]
    DtlsHandshake(Duration),
    /// The video encoder, decoder or packetizer could not be built.
    #[error("video: {0}")]
    Video(String),
    /// The media pipelines could not be built.
    #[error("media: {0}")]
    Media(#[from] SessionError),
    /// A codec could not be built.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The session has been closed.
    #[error("the session is closed")]
    Closed,
    /// A thread could not be started.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl From<::webrtc::error::Error> for WebRtcError {
    fn from(error: ::webrtc::error::Error) -> Self {
        WebRtcError::PeerConnection(error.to_string())
    }
}
