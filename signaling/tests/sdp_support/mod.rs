//! Shared samples and builders for the SDP integration tests.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use callisto_signaling::sdp::{
    parse, AudioCodec, AudioPolicy, Direction, LocalMedia, NegotiatedAudio, NegotiationError,
    SdpSession, SessionDescription, SrtpPolicy,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Real-world descriptions, written with LF line ends: (name, text).
pub const SAMPLES: [(&str, &str); 12] = [
    ("baresip", BARESIP),
    ("baresip_video", BARESIP_VIDEO),
    ("linphone", LINPHONE),
    ("asterisk_savp", ASTERISK_SAVP),
    ("asterisk_plain", ASTERISK_PLAIN),
    ("polycom_vvx", POLYCOM_VVX),
    ("yealink_optional_srtp", YEALINK_OPTIONAL_SRTP),
    ("cisco_cp8841", CISCO_CP8841),
    ("cisco_gateway_hold", CISCO_GATEWAY_HOLD),
    ("chrome_webrtc", CHROME_WEBRTC),
    ("rfc4566_example", RFC4566_EXAMPLE),
    ("snom_mki", SNOM_MKI),
];

pub const BARESIP: &str = include_str!("../sdp_samples/baresip_offer.sdp");
/// baresip 1.0 with `avcodec` and `fakevideo`, captured from its INVITE.
pub const BARESIP_VIDEO: &str = include_str!("../sdp_samples/baresip_video_offer.sdp");
pub const LINPHONE: &str = include_str!("../sdp_samples/linphone_offer.sdp");
pub const ASTERISK_SAVP: &str = include_str!("../sdp_samples/asterisk_savp_offer.sdp");
pub const ASTERISK_PLAIN: &str = include_str!("../sdp_samples/asterisk_plain_offer.sdp");
pub const POLYCOM_VVX: &str = include_str!("../sdp_samples/polycom_vvx_offer.sdp");
pub const YEALINK_OPTIONAL_SRTP: &str =
    include_str!("../sdp_samples/yealink_optional_srtp_offer.sdp");
pub const CISCO_CP8841: &str = include_str!("../sdp_samples/cisco_cp8841_offer.sdp");
pub const CISCO_GATEWAY_HOLD: &str = include_str!("../sdp_samples/cisco_gateway_hold.sdp");
pub const CHROME_WEBRTC: &str = include_str!("../sdp_samples/chrome_webrtc_offer.sdp");
pub const RFC4566_EXAMPLE: &str = include_str!("../sdp_samples/rfc4566_example.sdp");
pub const SNOM_MKI: &str = include_str!("../sdp_samples/snom_mki_offer.sdp");

/// Our address in these tests.
pub const OUR_IP: &str = "192.0.2.100";
/// Our RTP port in these tests.
pub const OUR_PORT: u16 = 40000;

pub fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

pub fn sock(text: &str) -> SocketAddr {
    text.parse().expect("test socket address")
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Our sockets: RTP on `OUR_PORT`, RTCP multiplexed.
pub fn local() -> LocalMedia {
    LocalMedia {
        address: ip(OUR_IP),
        rtp_port: OUR_PORT,
        rtcp_port: None,
    }
}

/// The default policy (Opus, PCMU, PCMA, telephone-event, 20 ms) with the given SRTP policy.
pub fn policy(srtp: SrtpPolicy) -> AudioPolicy {
    AudioPolicy {
        srtp,
        ..AudioPolicy::default()
    }
}

/// Our video RTP port in these tests.
pub const VIDEO_PORT: u16 = 40002;

/// Our video sockets: RTP on `VIDEO_PORT`, RTCP multiplexed.
pub fn video_local() -> LocalMedia {
    LocalMedia {
        rtp_port: VIDEO_PORT,
        ..local()
    }
}

/// The default policy with only G.711.
pub fn g711_policy(srtp: SrtpPolicy) -> AudioPolicy {
    AudioPolicy {
        codecs: vec![AudioCodec::pcmu(), AudioCodec::pcma()],
        ..policy(srtp)
    }
}

pub fn session(seed: u64) -> SdpSession {
    SdpSession::new(ip(OUR_IP), &mut rng(seed))
}

/// Answers `offer` (text) from a fresh session with `policy`, wanting `sendrecv`.
pub fn answer_with(
    offer: &str,
    policy: &AudioPolicy,
) -> Result<(SessionDescription, NegotiatedAudio), NegotiationError> {
    let offer = parse(offer).expect("offer parses");
    session(1).answer(&offer, &local(), policy, Direction::SendRecv, &mut rng(2))
}

/// The lines of a description's audio section that start with `prefix`.
pub fn lines_with<'a>(sdp: &'a str, prefix: &str) -> Vec<&'a str> {
    sdp.split("\r\n")
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// A minimal audio offer from 198.51.100.1:30000 with the given m-line tail and extra lines.
pub fn offer_text(media: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=peer 100 100 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
         m=audio 30000 {media}\r\n{extra}"
    )
}
