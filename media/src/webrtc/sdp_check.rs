//! The checks a remote description passes before it reaches the peer connection: it parses,
//! and it describes DTLS-keyed ICE media (a fingerprint, ICE credentials, a DTLS profile on
//! every active m-line). What fails is refused with [`WebRtcError::BadSdp`] naming the fault,
//! which the engine answers with 488.

use std::io::Cursor;

use rtc::sdp::description::session::SessionDescription;

use super::WebRtcError;

/// What the checks learnt about a valid remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpFacts {
    /// The peer's certificate fingerprint (`sha-256 AB:CD:…`), from the first m-line that has
    /// one, else the session level.
    pub fingerprint: String,
    /// Whether an active (non-zero port or bundled) audio m-line is present.
    pub audio: bool,
    /// Whether an active video m-line is present.
    pub video: bool,
}

/// Checks a remote SDP (offer or answer) as described in the module docs.
pub fn check_remote_sdp(sdp: &str) -> Result<SdpFacts, WebRtcError> {
    let bad = |why: &str| WebRtcError::BadSdp(why.to_owned());
    if !sdp.trim_start().starts_with("v=") {
        return Err(bad("does not start with v="));
    }
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
    if parsed.media_descriptions.is_empty() {
        return Err(bad("no m= line"));
    }
    let session_fingerprint = parsed.attribute("fingerprint").cloned();
    let session_ufrag = parsed.attribute("ice-ufrag").is_some();
    let mut fingerprint = None;
    let (mut audio, mut video) = (false, false);
    for media in &parsed.media_descriptions {
        let name = &media.media_name;
        let bundled_only = media.attribute("bundle-only").is_some();
        if name.port.value == 0 && !bundled_only {
            continue;
        }
        let proto = name.protos.join("/");
        let dtls = name.protos.iter().any(|p| p == "TLS" || p == "DTLS");
        if !dtls {
            return Err(WebRtcError::BadSdp(format!(
                "m={} uses {proto}, not UDP/TLS/RTP/SAVPF",
                name.media
            )));
        }
        if media.attribute("ice-ufrag").is_none() && !session_ufrag {
            return Err(bad("no a=ice-ufrag"));
        }
        if fingerprint.is_none() {
            fingerprint = media.attribute("fingerprint").flatten().map(str::to_owned);
        }
        match name.media.as_str() {
            "audio" => audio = true,
            "video" => video = true,
            _ => {}
        }
    }
    if !audio && !video {
        return Err(bad("no active audio or video m= line"));
    }
    let fingerprint = fingerprint
        .or(session_fingerprint)
        .ok_or_else(|| bad("no a=fingerprint"))?;
    let mut parts = fingerprint.split_whitespace();
    let valid = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(_), Some(hex), None)
            if hex.split(':').all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()))
    );
    if !valid {
        return Err(bad("malformed a=fingerprint"));
    }
    Ok(SdpFacts {
        fingerprint,
        audio,
        video,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n\
        a=fingerprint:sha-256 AB:CD:EF\r\na=setup:actpass\r\na=rtcp-mux\r\n\
        a=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn a_webrtc_offer_passes() {
        let facts = check_remote_sdp(OFFER).unwrap();
        assert_eq!(facts.fingerprint, "sha-256 AB:CD:EF");
        assert!(facts.audio && !facts.video);
    }

    #[test]
    fn garbage_is_refused() {
        for garbage in ["", "hello", "v=0\r\nthis is not sdp", "\u{0}\u{1}\u{2}"] {
            assert!(matches!(
                check_remote_sdp(garbage),
                Err(WebRtcError::BadSdp(_))
            ));
        }
    }

    #[test]
    fn a_classic_offer_is_refused() {
        let classic = OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
        let err = check_remote_sdp(&classic).unwrap_err();
        assert!(err.to_string().contains("RTP/AVP"), "{err}");
    }

    #[test]
    fn a_missing_or_malformed_fingerprint_is_refused() {
        let none = OFFER.replace("a=fingerprint:sha-256 AB:CD:EF\r\n", "");
        assert!(check_remote_sdp(&none)
            .unwrap_err()
            .to_string()
            .contains("fingerprint"));
        let bad = OFFER.replace("AB:CD:EF", "not-hex");
        assert!(check_remote_sdp(&bad)
            .unwrap_err()
            .to_string()
            .contains("malformed"));
    }
}
