//! Reliable provisional responses (RFC 3262): the caller acknowledges each 18x that requires
//! `100rel` with a PRACK in its early dialog, once, in sequence.

mod call_support;

use std::time::Duration;

use call_support::{respond, sdp, udp, ScriptedUas, World};
use callisto_signaling::call::CallEvent;
use rsip::{Request, Response};

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const EARLY: &str = "v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=early\r\n";

fn with_body(mut response: Response, body: &str) -> Response {
    response
        .headers
        .retain(|h| !matches!(h, rsip::Header::ContentLength(_)));
    response
        .headers
        .push(rsip::headers::ContentType::from("application/sdp".to_owned()).into());
    response
        .headers
        .push(rsip::headers::ContentLength::from(body.len().to_string()).into());
    response.body = body.as_bytes().to_vec();
    response
}

fn reliable(request: &Request, code: u16, reason: &str, rseq: u32) -> Response {
    respond(
        request,
        code,
        reason,
        &[
            ("Require", "100rel".into()),
            ("RSeq", rseq.to_string()),
            ("Contact", "<sip:uas@127.0.0.1:5070>".into()),
        ],
    )
}

fn header(request: &Request, name: &str) -> String {
    request
        .to_string()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn reliable_provisionals_are_pracked_once_and_in_sequence() {
    let mut w = World::lan(31);
    w.add_ua("alice", 5061);
    let mut invite: Option<Request> = None;
    w.nodes.push(Box::new(ScriptedUas::new(
        5070,
        Box::new(move |request: &Request, index| match request.method {
            rsip::Method::Invite => {
                assert!(header(request, "Supported").contains("100rel"));
                invite = Some(request.clone());
                let early = with_body(reliable(request, 183, "Session Progress", 1), EARLY);
                vec![
                    (index, early.clone()),
                    // A retransmission, and one out of sequence: neither is acknowledged.
                    (index, early),
                    (index, reliable(request, 183, "Session Progress", 3)),
                ]
            }
            rsip::Method::PRack if index == 1 => {
                assert_eq!(header(request, "RAck"), "1 1 INVITE");
                assert_eq!(header(request, "CSeq"), "2 PRACK");
                assert_eq!(request.uri.to_string(), "sip:uas@127.0.0.1:5070");
                let invite = invite.as_ref().unwrap();
                vec![
                    (index, respond(request, 200, "OK", &[])),
                    (0, reliable(invite, 180, "Ringing", 2)),
                ]
            }
            rsip::Method::PRack => {
                assert_eq!(header(request, "RAck"), "2 1 INVITE");
                assert_eq!(header(request, "CSeq"), "3 PRACK");
                let invite = invite.as_ref().unwrap();
                let ok = respond(
                    invite,
                    200,
                    "OK",
                    &[("Contact", "<sip:uas@127.0.0.1:5070>".into())],
                );
                vec![(index, respond(request, 200, "OK", &[])), (0, ok)]
            }
            rsip::Method::Bye => {
                assert_eq!(header(request, "CSeq"), "4 BYE");
                vec![(index, respond(request, 200, "OK", &[]))]
            }
            _ => Vec::new(),
        }),
    )));
    let now = w.now();
    let config = w.uas[0].call_config("sip:uas@example.test", udp(5070), OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_call)));
    assert_eq!(w.count(|s| s.is_request("PRACK")), 2);
    let events = w.uas[0].events_of(alice_call);
    assert_eq!(
        events,
        vec![
            CallEvent::Ringing {
                early_media: Some(sdp(EARLY))
            },
            CallEvent::Answered { body: None },
            CallEvent::Established { body: None },
        ]
    );
    // The confirmed dialog continues the CSeq numbering of the early one.
    let now = w.now();
    w.uas[0].endpoint.hang_up(now, alice_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w
        .count(|s| s.is_response(200, "BYE"))
        == 1));
    let ack = w.log.iter().find(|s| s.is_request("ACK")).unwrap();
    assert!(ack.text.contains("CSeq: 1 ACK"));
}
