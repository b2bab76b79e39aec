//! Two WebRTC sessions in one process on loopback (every socket on 127.0.0.1, no STUN server,
//! no mDNS): offer/answer, ICE + DTLS, tones both ways verified by content, the SDP's
//! attributes, and refusals (a fingerprint that does not match, garbage SDP) within bounded
//! time. Timings are printed (`cargo test -p callisto-media --test webrtc_session --
//! --nocapture`), never asserted.

use std::time::{Duration, Instant};

use callisto_media::analysis::{frequency_level, tone_coverage};
use callisto_media::audio::{AudioFormat, MemorySink, SharedSamples, ToneSource};
use callisto_media::session::MediaEvent;
use callisto_media::webrtc::{WebRtcConfig, WebRtcError, WebRtcEvent, WebRtcMedia, WebRtcSession};

const FORMAT: AudioFormat = AudioFormat::MONO_48K;

fn media(hz: f64) -> (WebRtcMedia, SharedSamples) {
    let sink = MemorySink::new(FORMAT);
    let heard = sink.shared();
    let media = WebRtcMedia {
        audio_source: Box::new(ToneSource::with_dbfs(FORMAT, hz, -12.0)),
        audio_sink: Box::new(sink),
        video: None,
    };
    (media, heard)
}

async fn session(hz: f64) -> (WebRtcSession, SharedSamples) {
    let (media, heard) = media(hz);
    let session = WebRtcSession::new(WebRtcConfig::loopback(), media)
        .await
        .expect("session");
    (session, heard)
}

/// Offer from `a`, answer from `b`, both connected; returns the offer and answer SDP.
async fn connect(a: &WebRtcSession, b: &WebRtcSession) -> (String, String) {
    let offer = a.create_offer().await.expect("offer");
    let answer = b.accept_offer(&offer).await.expect("answer");
    a.apply_answer(&answer).await.expect("apply answer");
    let (ra, rb) = tokio::join!(a.wait_connected(), b.wait_connected());
    ra.expect("a connected");
    rb.expect("b connected");
    (offer, answer)
}

/// The recording without its first `skip`, where start-up silence lives.
fn after(heard: &SharedSamples, skip: Duration) -> Vec<i16> {
    let samples = heard.samples();
    let from = (skip.as_secs_f64() * f64::from(FORMAT.sample_rate)) as usize;
    samples.get(from..).unwrap_or_default().to_vec()
}

fn check_tone(who: &str, samples: &[i16], expected: f32, own: f32) {
    let rate = FORMAT.sample_rate;
    let coverage = tone_coverage(samples, rate, expected, 0.02, 20, 0.05);
    let own_level = frequency_level(samples, rate, own, 0.02, 20);
    println!(
        "{who}: {:.1} s heard, {:.0} Hz coverage {:.1} %, own {own} Hz level {own_level:.4}",
        samples.len() as f64 / f64::from(rate),
        expected,
        coverage * 100.0
    );
    assert!(
        samples.len() > rate as usize,
        "{who}: under a second of audio"
    );
    assert!(
        coverage >= 0.9,
        "{who}: {expected} Hz in {coverage} of windows"
    );
    assert!(
        own_level < 0.01,
        "{who}: hears its own {own} Hz at {own_level}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_cross_both_ways_over_dtls_srtp() {
    let started = Instant::now();
    let (a, heard_by_a) = session(440.0).await;
    let (b, heard_by_b) = session(880.0).await;
    connect(&a, &b).await;
    let connected = started.elapsed();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let stats_a = a.close().await;
    let stats_b = b.close().await;
    println!("connected after {connected:?}");
    println!("a: {stats_a:?}");
    println!("b: {stats_b:?}");

    // Media starts before DTLS is up, and the jitter buffer needs a moment: skip 500 ms.
    check_tone(
        "a",
        &after(&heard_by_a, Duration::from_millis(500)),
        880.0,
        440.0,
    );
    check_tone(
        "b",
        &after(&heard_by_b, Duration::from_millis(500)),
        440.0,
        880.0,
    );
    for (who, stats) in [("a", &stats_a), ("b", &stats_b)] {
        let audio = stats.audio.as_ref().expect("audio stats");
        assert_eq!(audio.codec, "opus", "{who}");
        assert!(audio.tx_packets > 100, "{who}: sent {}", audio.tx_packets);
        assert!(
            audio.rx_packets > 100,
            "{who}: received {}",
            audio.rx_packets
        );
        assert!(
            audio.decoded_frames > 100,
            "{who}: decoded {}",
            audio.decoded_frames
        );
        assert_eq!(audio.discarded, 0, "{who}");
        assert!(
            audio.remote_addr.ip().is_loopback(),
            "{who}: {}",
            audio.remote_addr
        );
        assert!(stats.connected_at.is_some(), "{who}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_and_answer_carry_the_webrtc_attributes() {
    let (a, _) = session(440.0).await;
    let (b, _) = session(880.0).await;
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    println!("offer:\n{offer}\nanswer:\n{answer}");
    for (what, sdp) in [("offer", &offer), ("answer", &answer)] {
        for needle in [
            "UDP/TLS/RTP/SAVPF",
            "a=group:BUNDLE",
            "a=rtcp-mux",
            "a=mid:",
            "a=fingerprint:sha-256 ",
            "a=ice-ufrag:",
            "a=rtpmap:111 opus/48000/2",
            "useinbandfec=1",
            "transport-cc",
            "a=end-of-candidates",
        ] {
            assert!(sdp.contains(needle), "{what} lacks {needle}");
        }
        // Gathering was complete: every candidate is in the SDP, all of them on loopback.
        let candidates: Vec<&str> = sdp
            .lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .collect();
        assert!(!candidates.is_empty(), "{what} has no candidates");
        assert!(
            candidates.iter().all(|c| c.contains(" 127.0.0.1 ")),
            "{what}: {candidates:?}"
        );
    }
    assert!(offer.contains("a=setup:actpass"), "offer");
    assert!(
        answer.contains("a=setup:active") || answer.contains("a=setup:passive"),
        "answer"
    );
    a.close().await;
    b.close().await;
}

/// Replaces the last byte of the SDP's fingerprint with another value.
fn tamper_fingerprint(sdp: &str) -> String {
    sdp.lines()
        .map(|line| match line.strip_prefix("a=fingerprint:") {
            Some(rest) => {
                let (head, last) = rest.rsplit_once(':').expect("fingerprint bytes");
                let flipped = if last == "00" { "01" } else { "00" };
                format!("a=fingerprint:{head}:{flipped}")
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fingerprint_that_does_not_match_fails_within_bounded_time() {
    let mut config = WebRtcConfig::loopback();
    config.dtls_timeout = Duration::from_secs(1);
    let (media_a, _) = media(440.0);
    let a = WebRtcSession::new(config, media_a).await.unwrap();
    let (b, _) = session(880.0).await;
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    let forged = tamper_fingerprint(&answer);
    assert_ne!(forged, answer);
    a.apply_answer(&forged).await.unwrap();
    let started = Instant::now();
    let result = a.wait_connected().await;
    println!(
        "forged fingerprint: {result:?} after {:?}",
        started.elapsed()
    );
    let err = result.unwrap_err();
    assert!(matches!(err, WebRtcError::DtlsHandshake(_)), "{err:?}");
    assert!(err.to_string().contains("fingerprint"), "{err}");
    assert!(!a.is_connected());
    assert!(started.elapsed() < Duration::from_secs(3));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_sdp_is_an_error() {
    let (a, _) = session(440.0).await;
    for garbage in ["", "garbage", "v=0\r\no=broken\r\n", "v=0\r\n\u{0}\u{ff}"] {
        let err = a.accept_offer(garbage).await.unwrap_err();
        assert!(matches!(err, WebRtcError::BadSdp(_)), "{garbage:?}: {err}");
    }
    // A classic offer is not ours to answer.
    let classic = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let err = a.accept_offer(classic).await.unwrap_err();
    assert!(matches!(err, WebRtcError::BadSdp(_)), "{err}");
    // An answer needs an offer first; after an offer, a garbage answer is refused.
    assert!(matches!(
        a.apply_answer("v=0").await,
        Err(WebRtcError::Negotiation(_))
    ));
    a.create_offer().await.unwrap();
    let err = a.apply_answer("garbage").await.unwrap_err();
    assert!(matches!(err, WebRtcError::BadSdp(_)), "{err}");
    a.close().await;
}

/// Audio packets `session` has received so far.
fn received(session: &WebRtcSession) -> u64 {
    session.stats().audio.map_or(0, |audio| audio.rx_packets)
}

/// How many packets `session` receives over the next 400 ms.
async fn receiving(session: &WebRtcSession) -> u64 {
    let before = received(session);
    tokio::time::sleep(Duration::from_millis(400)).await;
    received(session) - before
}

/// `b`'s answer to `a`'s new offer, applied by `a`.
async fn answered(a: &WebRtcSession, b: &WebRtcSession, offer: &str) -> String {
    let answer = b.accept_reoffer(offer).await.expect("an answer");
    a.apply_reanswer(&answer).await.expect("the answer applies");
    answer
}

/// Holds `a`'s call with `b` (`hold`) or takes it off: `a`'s offer, `b`'s answer.
async fn hold(a: &WebRtcSession, b: &WebRtcSession, hold: bool) -> (String, String) {
    let offer = a.hold_offer(hold).await.expect("a hold offer");
    let answer = answered(a, b, &offer).await;
    (offer, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_hold_stops_what_the_peer_sends_and_resuming_brings_it_back() {
    let (a, _) = session(440.0).await;
    let (b, _) = session(880.0).await;
    connect(&a, &b).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let flowing = receiving(&a).await;
    assert!(flowing >= 10, "{flowing} packets in 400 ms before the hold");

    let (offer, answer) = hold(&a, &b, true).await;
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    // A packet or two may still be under way.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = receiving(&a).await;
    assert!(held <= 2, "{held} packets in 400 ms on hold");
    assert!(
        receiving(&b).await >= 10,
        "a goes on sending while it holds"
    );

    let (offer, answer) = hold(&a, &b, false).await;
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert!(answer.contains("a=sendrecv"), "{answer}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resumed = receiving(&a).await;
    assert!(resumed >= 10, "{resumed} packets in 400 ms after resuming");

    // A hold the peer refuses is withdrawn: the call goes on as before (a plain new offer
    // goes both ways again), and can be held later.
    let refused = a.hold_offer(true).await.expect("a hold offer");
    assert!(refused.contains("a=sendonly"), "{refused}");
    // An offer of the peer's that crosses it is glare (491), not an unusable offer (488).
    let crossing = b.create_reoffer().await.expect("the peer's new offer");
    let glare = a.accept_reoffer(&crossing).await;
    assert!(matches!(glare, Err(WebRtcError::Glare)), "{glare:?}");
    b.cancel_reoffer()
        .await
        .expect("the peer's offer withdrawn");
    a.cancel_reoffer().await.expect("withdrawn");
    let offer = a.create_reoffer().await.expect("a new offer");
    assert!(
        offer.contains("a=sendrecv") && !offer.contains("a=sendonly"),
        "{offer}"
    );
    answered(&a, &b, &offer).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_refusal = receiving(&a).await;
    assert!(
        after_refusal >= 10,
        "{after_refusal} packets in 400 ms after a refused hold"
    );
    // An unusable offer with none of ours under way is no glare, and the call goes on.
    let unusable = a.accept_reoffer("v=0\r\nm=audio 9\r\n").await;
    assert!(
        unusable.is_err() && !matches!(unusable, Err(WebRtcError::Glare)),
        "{unusable:?}"
    );
    let (offer, _) = hold(&a, &b, true).await;
    assert!(offer.contains("a=sendonly"), "{offer}");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_offer_the_peer_withdraws_is_undone_by_our_restated_offer() {
    let (a, _) = session(440.0).await;
    let (b, _) = session(880.0).await;
    connect(&a, &b).await;
    // B's hold reaches A, who answers it; then B withdraws it (its re-INVITE was cancelled
    // before A's answer went out): B goes on as before, A stays answered `recvonly`.
    let offer = b.hold_offer(true).await.expect("a hold offer");
    let answer = a.accept_reoffer(&offer).await.expect("an answer");
    assert!(answer.contains("a=recvonly"), "{answer}");
    b.cancel_reoffer().await.expect("withdrawn");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let silent = receiving(&b).await;
    assert!(silent <= 2, "{silent} packets to b in 400 ms out of step");
    // A offers the call as it wants it, and B answers: both ways again.
    let offer = a.restate_offer().await.expect("a restated offer");
    assert!(
        offer.contains("a=sendrecv") && !offer.contains("a=recvonly"),
        "{offer}"
    );
    answered(&a, &b, &offer).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (to_a, to_b) = tokio::join!(receiving(&a), receiving(&b));
    assert!(
        to_a >= 10 && to_b >= 10,
        "after the restated offer: {to_a} to a, {to_b} to b in 400 ms"
    );
    // A hold of A's own is kept by a restated offer.
    hold(&a, &b, true).await;
    let offer = a.restate_offer().await.expect("a restated offer");
    assert!(offer.contains("a=sendonly"), "{offer}");
    a.cancel_reoffer().await.expect("withdrawn");
    a.close().await;
    b.close().await;
}

/// `a` holds its call with `b` offering `inactive`; returns `b`'s answer.
async fn inactive_hold(a: &WebRtcSession, b: &WebRtcSession) -> String {
    let offer = a
        .hold_offer(true)
        .await
        .expect("a hold offer")
        .replace("a=sendonly", "a=inactive");
    answered(a, b, &offer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_inactive_hold_is_answered_and_the_call_comes_back() {
    let (a, _) = session(440.0).await;
    let (b, _) = session(880.0).await;
    connect(&a, &b).await;
    // B holds with `inactive` (as JsSIP does when it holds a call that holds it).
    let answer = inactive_hold(&b, &a).await;
    assert!(answer.contains("a=inactive"), "{answer}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = receiving(&b).await;
    assert!(held <= 2, "{held} packets in 400 ms while inactive");
    // B takes the hold off: media flows both ways again.
    let offer = b.hold_offer(false).await.expect("a resume offer");
    let answer = a.accept_reoffer(&offer).await.expect("an answer");
    assert!(answer.contains("a=sendrecv"), "{answer}");
    b.apply_reanswer(&answer).await.expect("the answer applies");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (to_a, to_b) = tokio::join!(receiving(&a), receiving(&b));
    assert!(
        to_a >= 10 && to_b >= 10,
        "after resuming: {to_a} to a, {to_b} to b in 400 ms"
    );
    // A's stream is still its own to offer: A can hold in turn (a stream the library took
    // as stopped would go out rejected, port 0).
    let (offer, answer) = hold(&a, &b, true).await;
    assert!(
        offer.contains("a=sendonly") && !offer.contains("m=audio 0 "),
        "{offer}"
    );
    assert!(answer.contains("a=recvonly"), "{answer}");
    a.close().await;
    b.close().await;
}

/// Whether `session` reported a media timeout among its events so far.
fn timed_out(session: &WebRtcSession) -> bool {
    let mut timed_out = false;
    while let Some(event) = session.try_event() {
        timed_out |= matches!(event, WebRtcEvent::Audio(MediaEvent::MediaTimeout));
    }
    timed_out
}

/// A session with a media timeout (a conference leg's) that holds its peer receives nothing
/// by its own wish, and must not time out for it; once resumed, a peer that goes quiet does
/// time it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_timeout_waits_while_the_peer_sends_nothing_by_agreement() {
    const TIMEOUT: Duration = Duration::from_millis(800);
    let (media_a, _) = media(440.0);
    let mut config = WebRtcConfig::loopback();
    config.audio.media_timeout = Some(TIMEOUT);
    let a = WebRtcSession::new(config, media_a).await.expect("session");
    let (b, _) = session(880.0).await;
    connect(&a, &b).await;
    let (offer, answer) = hold(&a, &b, true).await;
    assert!(offer.contains("a=sendonly") && answer.contains("a=recvonly"));
    tokio::time::sleep(TIMEOUT * 2).await;
    assert_eq!(receiving(&a).await, 0, "b sends nothing to a holding a");
    assert!(!timed_out(&a), "no media timeout on our own hold");
    // The held peer offers again, both ways (a session refresh from a peer that offers
    // what it would like): still held, no timeout.
    let offer = b
        .create_reoffer()
        .await
        .expect("a new offer")
        .replace("a=recvonly", "a=sendrecv");
    let answer = a.accept_reoffer(&offer).await.expect("an answer");
    assert!(answer.contains("a=sendonly"), "{answer}");
    b.apply_reanswer(&answer).await.expect("the answer applies");
    tokio::time::sleep(TIMEOUT * 2).await;
    assert!(!timed_out(&a), "no media timeout while we still hold");
    // Resumed: b sends again, then B holds with `inactive` — the peer sends nothing by
    // agreement again, and again there is no timeout.
    hold(&a, &b, false).await;
    assert!(receiving(&a).await >= 10);
    inactive_hold(&b, &a).await;
    tokio::time::sleep(TIMEOUT * 2).await;
    assert!(
        !timed_out(&a),
        "no media timeout on the peer's inactive hold"
    );
    // The peer resumes, then its packets stop without a word: that times out.
    let offer = b.hold_offer(false).await.expect("a resume offer");
    let answer = a.accept_reoffer(&offer).await.expect("an answer");
    b.apply_reanswer(&answer).await.expect("the answer applies");
    assert!(receiving(&a).await >= 10);
    b.close().await;
    tokio::time::sleep(TIMEOUT * 2).await;
    assert!(timed_out(&a), "a peer gone silent times out");
    a.close().await;
}

/// The DTLS roles the first exchange settled hold for the whole call (RFC 8842 §5.3): when the
/// peer that answered our offer `active` re-offers (a hold), our answer says `passive` again,
/// not the library's default `active`, which a browser refuses as a reversed role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_the_peers_new_offer_keeps_our_dtls_role() {
    let (a, _) = session(440.0).await;
    let (b, _) = session(880.0).await;
    let (_, first) = connect(&a, &b).await;
    assert!(first.contains("a=setup:active"), "{first}");
    let (offer, answer) = hold(&b, &a, true).await;
    assert!(offer.contains("a=setup:actpass"), "{offer}");
    assert!(answer.contains("a=setup:passive"), "{answer}");
    assert!(!answer.contains("a=setup:active"), "{answer}");
    // The answerer of the first exchange keeps its role too.
    let (_, again) = hold(&a, &b, true).await;
    assert!(again.contains("a=setup:active"), "{again}");
    a.close().await;
    b.close().await;
}
