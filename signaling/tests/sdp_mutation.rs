//! Thousands of seeded mutations of real-world descriptions: the parser and the offer/answer
//! code never panic, errors are reason phrases, and whatever parses writes back to the same
//! model.

mod sdp_support;

use callisto_signaling::sdp::{
    offer_kind, parse, Direction, MediaKind, SessionDescription, SrtpPolicy, VideoPolicy,
};
use rand::Rng;
use sdp_support::*;

const ROUNDS: usize = 12_000;

/// `bytes` mutated as a fuzzer would, with an alphabet of SDP's separators and letters.
fn mutate(rng: &mut impl Rng, bytes: &mut Vec<u8>) {
    callisto_signaling::sim::mutate(
        rng,
        bytes,
        b"\r\n \t:;/|=-0123456789aceimostvIPNRTAV^*\xff\x00",
    );
}

/// Reads everything a caller might read from a parsed description.
fn exercise(sdp: &SessionDescription) {
    let _ = (
        sdp.direction(),
        sdp.fingerprint(),
        sdp.setup(),
        sdp.ice_ufrag(),
        offer_kind(sdp),
    );
    for m in &sdp.media {
        let _ = (
            sdp.direction_of(m),
            sdp.connection_for(m).map(|c| (c.ip(), c.is_hold_address())),
        );
        let _ = m.rtpmaps().count();
        for pt in m.payload_types() {
            let _ = (m.codec(pt), m.fmtp(pt));
        }
        let _ = (
            m.ptime(),
            m.maxptime(),
            m.rtcp(),
            m.rtcp_mux(),
            m.crypto().count(),
            m.mid(),
        );
        let _ = (
            m.fingerprint(),
            m.setup(),
            m.ice_pwd(),
            m.candidates().count(),
        );
    }
}

#[test]
fn mutated_descriptions_never_panic_and_round_trip() {
    let seeds: Vec<Vec<u8>> = SAMPLES
        .iter()
        .flat_map(|(_, text)| [text.as_bytes().to_vec(), crlf(text).into_bytes()])
        .collect();
    let mut rng = rng(0x5d9_5eed);
    let (mut parsed, mut answered, mut applied, mut videos) = (0, 0, 0, 0);
    for round in 0..ROUNDS {
        let mut bytes = seeds[round % seeds.len()].clone();
        mutate(&mut rng, &mut bytes);
        let sdp = match parse(&bytes) {
            Ok(sdp) => sdp,
            Err(err) => {
                assert!(err.to_string().starts_with("Bad SDP: "), "{err}");
                continue;
            }
        };
        parsed += 1;
        exercise(&sdp);
        let written = sdp.to_string();
        assert_eq!(
            parse(&written).as_ref(),
            Ok(&sdp),
            "round trip of {written:?}"
        );

        // As an offer to us, under each policy.
        for srtp in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Mandatory] {
            let result =
                session(1).answer(&sdp, &local(), &policy(srtp), Direction::SendRecv, &mut rng);
            match result {
                Ok((answer, _)) => {
                    answered += 1;
                    assert_eq!(answer.media.len(), sdp.media.len());
                    assert!(parse(answer.to_string()).is_ok());
                }
                Err(err) => assert!(matches!(err.status_code(), 488), "{err}"),
            }
            let video = (&video_local(), &VideoPolicy::default());
            let mut with_video = session(1);
            let result = with_video.answer_with_video(
                &sdp,
                &local(),
                &policy(srtp),
                Some(video),
                Direction::SendRecv,
                &mut rng,
            );
            match result {
                Ok((answer, _)) => {
                    assert_eq!(answer.media.len(), sdp.media.len());
                    let reparsed = parse(answer.to_string()).expect("our answer parses");
                    if let Some(v) = with_video.video() {
                        videos += 1;
                        assert!(reparsed
                            .media
                            .iter()
                            .any(|m| m.kind == MediaKind::Video && m.port == VIDEO_PORT));
                        assert!(v.packetization_mode <= 1);
                    }
                }
                Err(err) => assert!(matches!(err.status_code(), 488), "{err}"),
            }
        }
        // As the answer to our offer.
        let mut ours = session(1);
        ours.create_offer(
            &local(),
            &policy(SrtpPolicy::Optional),
            Direction::SendRecv,
            &mut rng,
        )
        .expect("offer");
        if ours.apply_answer(&sdp).is_ok() {
            applied += 1;
        }
        let mut ours = session(1);
        ours.create_offer_with_video(
            &local(),
            &policy(SrtpPolicy::Optional),
            Some((&video_local(), &VideoPolicy::default())),
            Direction::SendRecv,
            &mut rng,
        )
        .expect("offer");
        if ours.apply_answer(&sdp).is_ok() {
            if let Some(v) = ours.video() {
                assert!([96, 97].contains(&v.payload_type), "{v:?}");
            }
        }
    }
    eprintln!(
        "{ROUNDS} mutants: {parsed} parsed, {answered} answers ({videos} with video), \
         {applied} answers applied"
    );
    assert!(videos > ROUNDS / 100, "only {videos} answers with video");
    // Mutations are small: a fair share still parses and negotiates, so every path runs.
    assert!(parsed > ROUNDS / 5, "only {parsed} of {ROUNDS} parsed");
    assert!(answered > ROUNDS / 10, "only {answered} answers");
    assert!(applied > ROUNDS / 100, "only {applied} answers applied");
}
