//! Mutated messages through the whole endpoint — parser, transactions, dialogs and calls —
//! while calls come in and are answered: nothing panics, and the endpoint goes on working.

use std::net::SocketAddr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::call::Body;
use crate::sim::{mutate, SIP_ALPHABET};
use crate::transaction::TimerConfig;
use crate::transport::TransportKind;

const PEER: &str = "127.0.0.1:5099";

/// A small SDP offer.
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// The messages of call `n` from the peer: its INVITE, then what may follow in its dialog
/// (ACK, a new offer, INFO, BYE, CANCEL) and two responses to nothing we sent.
fn call_messages(n: usize) -> Vec<String> {
    let head = |method: &str, cseq: u32, branch: &str, to_tag: &str| {
        format!(
            "{method} sip:alice@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {PEER};branch=z9hG4bK{branch}{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Bob\" <sip:bob@127.0.0.1>;tag=b{n}\r\n\
             To: <sip:alice@127.0.0.1>{to_tag}\r\n\
             Call-ID: mutated-{n}@127.0.0.1\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:bob@{PEER}>\r\n"
        )
    };
    let with_sdp = |head: String| {
        format!(
            "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        )
    };
    let bare = |head: String| format!("{head}Content-Length: 0\r\n\r\n");
    let in_dialog = ";tag=a-unknown";
    vec![
        with_sdp(head("INVITE", 1, "inv", "")),
        bare(head("ACK", 1, "ack", in_dialog)),
        with_sdp(head("INVITE", 2, "reinv", in_dialog)),
        bare(head("INFO", 3, "info", in_dialog)),
        bare(head("BYE", 4, "bye", in_dialog)),
        bare(head("CANCEL", 1, "inv", "")),
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKours{n}\r\n\
             From: <sip:alice@127.0.0.1>;tag=a{n}\r\nTo: <sip:bob@127.0.0.1>;tag=b{n}\r\n\
             Call-ID: ours-{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ),
        format!(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKreg{n}\r\n\
             From: <sip:alice@127.0.0.1>;tag=r{n}\r\nTo: <sip:alice@127.0.0.1>\r\n\
             Call-ID: reg-{n}\r\nCSeq: 1 REGISTER\r\n\
             WWW-Authenticate: Digest realm=\"x\", nonce=\"n{n}\", qop=\"auth\"\r\n\
             Content-Length: 0\r\n\r\n"
        ),
    ]
}

#[test]
fn mutated_messages_never_panic_the_endpoint_and_it_goes_on_answering() {
    let source = Target::new(TransportKind::Udp, PEER.parse::<SocketAddr>().unwrap());
    let mut endpoint = Endpoint::with_seed(TimerConfig::default(), 7);
    let mut rng = ChaCha8Rng::seed_from_u64(0xe4d_9017);
    let mut now = Instant::now();
    let (mut incoming, mut malformed) = (0, 0);
    for round in 0..3_000 {
        // A new call every 20 messages: its INVITE as it is, then mutations of its messages.
        let messages = call_messages(round / 20);
        let bytes = if round % 20 == 0 {
            messages[0].clone().into_bytes()
        } else {
            let mut bytes = messages[rng.gen_range(0..messages.len())]
                .clone()
                .into_bytes();
            mutate(&mut rng, &mut bytes, SIP_ALPHABET);
            bytes
        };
        endpoint.handle_datagram(now, &bytes, source);
        while let Some(event) = endpoint.poll_event() {
            match event {
                EndpointEvent::Call {
                    id,
                    event: CallEvent::Incoming { .. },
                } => {
                    incoming += 1;
                    // Answered, so the dialog's mutated requests meet a call.
                    let _ = endpoint.answer(now, id, Some(Body::sdp(SDP)));
                }
                EndpointEvent::Call {
                    id,
                    event: CallEvent::ReOffer { .. },
                } => {
                    let _ = endpoint.answer_reoffer(now, id, Some(Body::sdp(SDP)));
                }
                EndpointEvent::Malformed { .. } => malformed += 1,
                _ => {}
            }
        }
        while endpoint.poll_transmit().is_some() {}
        now += Duration::from_millis(40);
        endpoint.handle_timeout(now);
        while endpoint.poll_transmit().is_some() {}
    }
    // Both paths ran: calls came in, and malformed messages were refused.
    assert!(incoming >= 150, "{incoming} calls came in");
    assert!(malformed >= 100, "{malformed} malformed messages");

    // Still working: a well-formed OPTIONS gets its 200.
    let options = "OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKafter\r\n\
        From: <sip:bob@127.0.0.1>;tag=after\r\n\
        To: <sip:alice@127.0.0.1>\r\n\
        Call-ID: after-the-storm\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";
    endpoint.handle_datagram(now, options.as_bytes(), source);
    let reply = endpoint.poll_transmit().expect("an answer to OPTIONS");
    let text = String::from_utf8_lossy(&reply.bytes).to_string();
    assert!(text.starts_with("SIP/2.0 200 "), "{text}");
}

/// A request missing a header it must carry is reported and dropped: an answer copies the
/// request's From, To, Call-ID and CSeq, and one without them would not parse at the sender
/// (ours included) any better than no answer.
#[test]
fn a_request_missing_a_mandatory_header_is_reported_and_dropped() {
    let source = Target::new(TransportKind::Udp, PEER.parse::<SocketAddr>().unwrap());
    let mut endpoint = Endpoint::with_seed(TimerConfig::default(), 7);
    let now = Instant::now();
    let options = "OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKmissing\r\n\
        From: <sip:bob@127.0.0.1>;tag=missing\r\n\
        To: <sip:alice@127.0.0.1>\r\n\
        Call-ID: missing-headers\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";
    for missing in ["Call-ID", "From", "To", "CSeq", "Via"] {
        let without: String = options
            .split_inclusive("\r\n")
            .filter(|line| !line.starts_with(&format!("{missing}:")))
            .collect();
        endpoint.handle_datagram(now, without.as_bytes(), source);
        assert!(endpoint.poll_transmit().is_none(), "without {missing}");
        assert!(matches!(
            endpoint.poll_event(),
            Some(EndpointEvent::Malformed { .. })
        ));
    }
}
