//! How a Callisto peer connection is built: codecs and RTCP feedback (the media engine), the
//! interceptor chain, and the settings that pace ICE.
//!
//! # Codecs
//!
//! Audio: the configured codecs in order — Opus 48000/2 with `minptime=10;useinbandfec=1`
//! (PT 111), PCMU (0), PCMA (8). Video: H.264 constrained baseline level 3.1,
//! `level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f` (PT 125), then the
//! same in packetization mode 0 (PT 124) for peers that take only that, both with `nack`,
//! `nack pli`, `ccm fir`, `goog-remb` and `transport-cc` feedback. Our own picture goes out in
//! mode 1 when the peer takes it, else in mode 0 (the encoder then cuts slices that fit one
//! packet); forwarded streams (conferences) only in mode 1, as they come.
//!
//! # Interceptors
//!
//! What the library's `register_default_interceptors` installs (receiver and sender reports,
//! the simulcast header extensions) except the NACK generator — the video thread runs
//! Callisto's own, RTT-aware [`NackGenerator`](crate::rtp::NackGenerator) and writes its NACKs
//! — with the library's NACK responder (retransmission from a [`NACK_HISTORY`]-packet buffer),
//! TWCC both ways instead of receive-only (so `transport-cc` is negotiated and answered for
//! audio and video), [`CongestionFeed`](super::congestion_feed) (feeds the session's bitrate
//! controller), [`RttMeter`](super::rtt) (the library computes no RTCP round-trip time), and
//! [`KeyframeRequestForwarder`] last, which hands PLI/FIR to our video sender.
//!
//! # ICE pacing: the 200 ms connect time
//!
//! Two bare peers on loopback reach `Connected` about 200 ms after the answer is applied. The
//! time is one ICE check interval: `rtc-ice` 0.21.1, `src/agent/agent_config.rs` line 10,
//! `DEFAULT_CHECK_INTERVAL = 200 ms`. The controlling agent (the offerer) pings every pair on
//! its first tick and gets the success response within a millisecond, but it nominates a pair
//! only on its *next* tick (`ControllingSelector::contact_candidates`,
//! `src/agent/agent_selector.rs` lines 216–258): the nomination — a second binding request with
//! USE-CANDIDATE — waits a whole `check_interval`. (The other path to nomination, a binding
//! request from the controlled side arriving after our pair succeeded, also waits for the
//! controlled agent's next tick, 200 ms later.) DTLS then completes in a few milliseconds on
//! loopback; its retransmission timer (`rtc-dtls` `src/conn/mod.rs` line 42,
//! `INITIAL_TICKER_INTERVAL = 1 s`) never fires without loss, gathering host candidates is
//! immediate, and mDNS is off on loopback.
//!
//! `SettingEngineBuilder::with_ice_connection_attempts(check_interval, max_binding_requests)`
//! sets both. Callisto checks every [`ICE_CHECK_INTERVAL`] (20 ms) and scales
//! `max_binding_requests` so a pair is still given the library's 1.4 s (7 × 200 ms) to answer
//! before it is declared failed: a slow path fails no sooner than before, a fast one connects
//! ten times sooner. The faster pacing lasts only while checking (keepalives stay at 2 s), and
//! costs a few dozen extra STUN packets per call; a pair that never answers now costs 70
//! requests instead of 7 (50 per second), so a host with very many candidates may prefer a
//! longer [`WebRtcConfig::ice_check_interval`]. Measured by `media/benches/webrtc_setup.rs`
//! on loopback (release build, median of 10): offer → connected 23 ms instead of 202 ms.
//!
//! # Relay only
//!
//! [`WebRtcConfig::relay_only`] sets the ICE transport policy `relay`: the peer connection
//! gathers only relay candidates (a TURN allocation per TURN server), offers no host
//! address, and fails to build without a TURN server. The controlling agent waits
//! `relay_acceptance_min_wait` from the start of checking before it nominates a relay pair
//! (`rtc-ice` 0.21.1, `src/agent/agent_selector.rs` `is_nominatable`; the default,
//! `DEFAULT_RELAY_ACCEPTANCE_MIN_WAIT` in `src/agent/agent_config.rs`, is 2 s) so that a
//! direct pair can win first. With relay candidates only there is nothing to wait for, so a
//! relay-only session sets that wait to zero: the pair is nominated on the check tick after
//! it succeeds instead of 2 s later. (`SettingEngineBuilder::with_relay_acceptance_min_wait`
//! documents `None` as "immediate acceptance"; `None` is the 2 s default, `Some(ZERO)` is
//! immediate.) Sessions that also have host candidates keep the library's waits.

use std::time::Duration;

use ::webrtc::peer_connection::{
    MediaEngine, RTCBundlePolicy, RTCConfigurationBuilder, RTCIceServer, RTCRtcpMuxPolicy,
    Registry, SettingEngine, SettingEngineBuilder,
};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{NackResponderBuilder, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_PCMA, MIME_TYPE_PCMU,
};
use rtc::peer_connection::configuration::{RTCConfiguration, RTCIceTransportPolicy};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};

use super::congestion_feed::{self, CongestionFeed, SharedController};
use super::keyframe_requests::{self, KeyframeRequestForwarder};
use super::rtt::{self, RttMeter, RttTable};
use super::{IceServer, WebRtcConfig, WebRtcError};
use crate::codec::AudioCodecKind;

/// Callisto's ICE connectivity-check interval while connecting.
pub const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// How long the library lets a candidate pair go unanswered before failing it: its default
/// 7 binding requests, 200 ms apart.
pub const ICE_PAIR_TIMEOUT: Duration = Duration::from_millis(1_400);

/// The H.264 format Callisto prefers: constrained baseline 3.1, mode 1.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// The same in packetization mode 0 (one NAL unit a packet), for peers that ask for it.
pub const H264_MODE_0_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f";

/// The Opus format parameters: in-band FEC on, 10 ms minimum packets.
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

/// Packets the NACK responder keeps for retransmission (a power of two): about 10 s of
/// video at 1 Mbps.
pub const NACK_HISTORY: u16 = 1_024;

/// H.264's dynamic payload type.
pub const H264_PAYLOAD_TYPE: u8 = 125;

/// The payload type of H.264 in packetization mode 0.
pub const H264_MODE_0_PAYLOAD_TYPE: u8 = 124;

/// The description of a track (also what tests' own peers send with).
pub use super::local_media::media_track;

/// The RTP codec description of an audio codec.
pub fn audio_codec(codec: AudioCodecKind) -> RTCRtpCodec {
    let (mime, fmtp, channels) = match codec {
        AudioCodecKind::Opus => (MIME_TYPE_OPUS, OPUS_FMTP, 2),
        AudioCodecKind::Pcmu => (MIME_TYPE_PCMU, "", 0),
        AudioCodecKind::Pcma => (MIME_TYPE_PCMA, "", 0),
    };
    RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate: codec.clock_rate(),
        channels,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The RTP codec description of Callisto's H.264 (mode 1).
pub fn h264_codec() -> RTCRtpCodec {
    h264_codec_with(H264_FMTP)
}

/// The RTP codec description of H.264 with the format parameters `fmtp`.
fn h264_codec_with(fmtp: &str) -> RTCRtpCodec {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![
            feedback("goog-remb", ""),
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
        ],
    }
}

/// Both H.264 formats in our order of preference (mode 1, then mode 0): what the transceiver
/// of our own picture offers.
pub(crate) fn h264_formats() -> Vec<RTCRtpCodecParameters> {
    [
        (H264_FMTP, H264_PAYLOAD_TYPE),
        (H264_MODE_0_FMTP, H264_MODE_0_PAYLOAD_TYPE),
    ]
    .into_iter()
    .map(|(fmtp, payload_type)| RTCRtpCodecParameters {
        rtp_codec: h264_codec_with(fmtp),
        payload_type,
    })
    .collect()
}

/// Which of our audio codecs a negotiated MIME type names.
pub fn negotiated_audio_codec(mime_type: &str) -> Option<AudioCodecKind> {
    [
        AudioCodecKind::Opus,
        AudioCodecKind::Pcmu,
        AudioCodecKind::Pcma,
    ]
    .into_iter()
    .find(|codec| {
        audio_codec(*codec)
            .mime_type
            .eq_ignore_ascii_case(mime_type)
    })
}

/// The media engine and interceptor registry for `config`: its audio codecs in order, H.264
/// when it has video, and the interceptors described in the module docs.
pub(crate) fn build_media_engine(
    config: &WebRtcConfig,
    rtt: RttTable,
    controller: SharedController,
) -> Result<(MediaEngine, Registry), WebRtcError> {
    let mut engine = MediaEngine::default();
    for codec in &config.audio.codecs {
        let payload_type = match codec {
            AudioCodecKind::Opus => 111,
            other => other.default_payload_type(),
        };
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: audio_codec(*codec),
                payload_type,
            },
            RtpCodecKind::Audio,
        )?;
    }
    if config.video.is_some() {
        for format in h264_formats() {
            engine.register_codec(format, RtpCodecKind::Video)?;
        }
    }
    // The library's defaults, with TWCC both ways instead of receive-only (the sender half
    // stamps our packets so the peer's feedback has something to report on), and of NACK only
    // the responder: the video thread asks for lost packets itself (`rtp::NackGenerator`).
    for parameter in ["", "pli"] {
        engine.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    let registry = Registry::new().with(
        Slot::NackResponder,
        NackResponderBuilder::new().with_size(NACK_HISTORY).build(),
    );
    configure_simulcast_extension_headers(&mut engine)?;
    let registry = configure_twcc(registry, &mut engine)?;
    let registry = configure_rtcp_reports(registry)
        .with(
            Slot::from(congestion_feed::SLOT),
            CongestionFeed::new(controller, rtt.clone()),
        )
        .with(Slot::from(rtt::SLOT), RttMeter::new(rtt))
        .with(
            Slot::from(keyframe_requests::SLOT),
            KeyframeRequestForwarder::default(),
        );
    Ok((engine, registry))
}

/// A registry with only the interceptor that hands keyframe requests (PLI, FIR) to the
/// application (`TrackLocal::poll`), for a bare peer connection that answers them itself.
pub fn keyframe_requests_only() -> Registry {
    Registry::new().with(
        Slot::from(keyframe_requests::SLOT),
        KeyframeRequestForwarder::default(),
    )
}

/// The setting engine: ICE check pacing (see the module docs), mDNS, and for
/// [`WebRtcConfig::relay_only`] no wait before nominating a relay pair.
pub fn build_setting_engine(config: &WebRtcConfig) -> SettingEngine {
    let interval = config.ice_check_interval.max(Duration::from_millis(1));
    let attempts = (ICE_PAIR_TIMEOUT.as_millis() / interval.as_millis().max(1)).max(7);
    let mdns = if config.resolve_mdns {
        MulticastDnsMode::QueryOnly
    } else {
        MulticastDnsMode::Disabled
    };
    let builder = SettingEngineBuilder::new()
        .with_ice_connection_attempts(
            Some(interval),
            Some(u16::try_from(attempts).unwrap_or(u16::MAX)),
        )
        .with_multicast_dns_mode(mdns);
    let builder = if config.relay_only {
        // Only relay pairs exist: there is no better path to wait for.
        builder.with_relay_acceptance_min_wait(Some(Duration::ZERO))
    } else {
        builder
    };
    builder.build()
}

/// The peer connection's configuration: ICE servers, the transport policy (`relay` when
/// [`WebRtcConfig::relay_only`], else `all`), max-bundle, rtcp-mux required.
pub fn build_configuration(config: &WebRtcConfig) -> RTCConfiguration {
    let policy = if config.relay_only {
        RTCIceTransportPolicy::Relay
    } else {
        RTCIceTransportPolicy::All
    };
    RTCConfigurationBuilder::new()
        .with_ice_servers(config.ice_servers.iter().map(ice_server).collect())
        .with_ice_transport_policy(policy)
        .with_bundle_policy(RTCBundlePolicy::MaxBundle)
        .with_rtcp_mux_policy(RTCRtcpMuxPolicy::Require)
        .build()
}

fn ice_server(server: &IceServer) -> RTCIceServer {
    RTCIceServer {
        urls: server.urls.clone(),
        username: server.username.clone(),
        credential: server.credential.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn_server() -> IceServer {
        IceServer {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            username: "user".into(),
            credential: "secret".into(),
        }
    }

    #[test]
    fn turn_urls_over_udp_are_counted() {
        let server = |urls: &[&str]| IceServer {
            urls: urls.iter().map(|url| (*url).to_owned()).collect(),
            ..IceServer::default()
        };
        assert_eq!(turn_server().udp_turn_urls(), 1);
        assert_eq!(server(&["TURN:127.0.0.1"]).udp_turn_urls(), 1);
        assert_eq!(
            server(&["turn:127.0.0.1:3478?transport=UDP"]).udp_turn_urls(),
            1
        );
        assert_eq!(
            server(&["turn:127.0.0.1:3478?transport=tcp"]).udp_turn_urls(),
            0
        );
        assert_eq!(server(&["turns:turn.example.org:5349"]).udp_turn_urls(), 0);
        assert_eq!(server(&["stun:127.0.0.1:3478"]).udp_turn_urls(), 0);
        assert_eq!(IceServer::default().udp_turn_urls(), 0);
        let mixed = server(&["stun:127.0.0.1", "turn:127.0.0.1", "turn:127.0.0.2"]);
        assert_eq!(mixed.udp_turn_urls(), 2);
    }

    #[test]
    fn relay_only_sets_the_relay_transport_policy() {
        let mut config = WebRtcConfig::loopback();
        assert_eq!(
            build_configuration(&config).ice_transport_policy(),
            RTCIceTransportPolicy::All
        );
        config.ice_servers = vec![turn_server()];
        config.relay_only = true;
        assert_eq!(
            build_configuration(&config).ice_transport_policy(),
            RTCIceTransportPolicy::Relay
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relay_only_without_a_turn_server_is_refused() {
        use crate::audio::{AudioFormat, NullSink, SilenceSource};
        use crate::webrtc::{WebRtcMedia, WebRtcSession};
        let media = || WebRtcMedia {
            audio_source: Box::new(SilenceSource::new(AudioFormat::MONO_48K)),
            audio_sink: Box::new(NullSink::new(AudioFormat::MONO_48K)),
            video: None,
        };
        let config = WebRtcConfig {
            relay_only: true,
            ..WebRtcConfig::loopback()
        };
        let refused = WebRtcSession::new(config.clone(), media()).await;
        assert!(
            matches!(refused, Err(WebRtcError::PeerConnection(_))),
            "{refused:?}"
        );
        let config = WebRtcConfig {
            ice_servers: vec![turn_server()],
            ..config
        };
        let session = WebRtcSession::new(config, media()).await.expect("session");
        session.close().await;
    }
}
