//! Reliable provisional responses (RFC 3262).
//!
//! - As caller: each 18x that requires `100rel` is acknowledged with a PRACK in its early
//!   dialog, once, in sequence.
//! - As callee, when the INVITE requires `100rel`: the 180 carries `Require: 100rel` and an
//!   `RSeq`, is retransmitted until its PRACK (which is answered 200; a PRACK for another RSeq
//!   gets 481), refuses the call with 500 when never acknowledged, and a PRACK overtaken by our
//!   200 is still answered.

mod call_support;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use call_support::{respond, sdp, udp, RawNode, ScriptedUas, World};
use callisto_signaling::call::{CallEvent, CallId};
use callisto_signaling::transaction::Transmit;
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
                early_media: Some(sdp(EARLY)),
                reliable: true
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

const CALLER: u16 = 5061;
const CALLEE: u16 = 5062;

/// bob (an endpoint) and a raw caller that requires `100rel`; returns the world, the caller's
/// outbox and bob's call once its INVITE arrived.
fn call_requiring_100rel(seed: u64) -> (World, Rc<RefCell<VecDeque<Transmit>>>, CallId) {
    let mut w = World::lan(seed);
    w.add_ua("bob", CALLEE);
    let outbox = RawNode::join(&mut w, CALLER);
    send(&outbox, &invite());
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].incoming(0).is_some()));
    let id = w.uas[0].incoming(0).unwrap();
    (w, outbox, id)
}

fn send(outbox: &Rc<RefCell<VecDeque<Transmit>>>, text: &str) {
    outbox.borrow_mut().push_back(Transmit {
        target: udp(CALLEE),
        bytes: text.replace('\n', "\r\n").into_bytes().into(),
    });
}

fn invite() -> String {
    format!(
        "INVITE sip:bob@127.0.0.1:{CALLEE} SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bK-rel-1;rport\n\
         Max-Forwards: 70\n\
         From: <sip:alice@127.0.0.1:{CALLER}>;tag=alice-1\n\
         To: <sip:bob@127.0.0.1:{CALLEE}>\n\
         Call-ID: rel-call-1\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:alice@127.0.0.1:{CALLER}>\n\
         Require: 100rel\n\
         Supported: 100rel\n\
         Content-Type: application/sdp\n\
         Content-Length: {}\n\n{OFFER}",
        OFFER.len()
    )
}

/// An in-dialog request from the caller: `PRACK` (with `RAck`) or `ACK`.
fn in_dialog(method: &str, seq: u32, to_tag: &str, rack: Option<String>) -> String {
    let rack = rack.map(|r| format!("RAck: {r}\n")).unwrap_or_default();
    format!(
        "{method} sip:bob@127.0.0.1:{CALLEE} SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bK-rel-{method}-{seq};rport\n\
         Max-Forwards: 70\n\
         From: <sip:alice@127.0.0.1:{CALLER}>;tag=alice-1\n\
         To: <sip:bob@127.0.0.1:{CALLEE}>;tag={to_tag}\n\
         Call-ID: rel-call-1\n\
         CSeq: {seq} {method}\n\
         {rack}Content-Length: 0\n\n"
    )
}

/// What bob sent to the caller: `(start line, RSeq, To tag)` of each response.
fn to_caller(w: &World) -> Vec<(String, Option<u32>, String)> {
    w.log
        .iter()
        .filter(|s| s.to == udp(CALLER))
        .map(|s| {
            let field = |name: &str| {
                s.text.lines().find_map(|l| {
                    l.strip_prefix(&format!("{name}: "))
                        .map(|v| v.trim().to_owned())
                })
            };
            let tag = field("To")
                .and_then(|to| to.split(";tag=").nth(1).map(str::to_owned))
                .unwrap_or_default();
            let rseq = field("RSeq").and_then(|r| r.parse().ok());
            (s.line.clone(), rseq, tag)
        })
        .collect()
}

fn ringing(w: &World) -> Vec<(Option<u32>, String)> {
    to_caller(w)
        .into_iter()
        .filter(|(line, ..)| line.starts_with("SIP/2.0 180"))
        .map(|(_, rseq, tag)| (rseq, tag))
        .collect()
}

#[test]
fn a_required_reliable_180_is_retransmitted_until_its_prack() {
    let (mut w, outbox, id) = call_requiring_100rel(41);
    let now = w.now();
    w.uas[0].endpoint.ring(now, id).unwrap();
    w.run_for(Duration::from_millis(1600));
    // Sent at 0, then after T1 and 2·T1: three copies, all with the same RSeq.
    let rings = ringing(&w);
    assert_eq!(rings.len(), 3, "{rings:?}");
    let (Some(rseq), tag) = rings[0].clone() else {
        panic!("the 180 has no RSeq: {rings:?}");
    };
    assert!(rings.iter().all(|r| r.0 == Some(rseq)));
    let text = &w
        .log
        .iter()
        .find(|s| s.line.starts_with("SIP/2.0 180"))
        .unwrap()
        .text;
    assert!(text.contains("Require: 100rel"), "{text}");

    // A PRACK for another RSeq is refused; the right one is accepted and ends the copies.
    send(
        &outbox,
        &in_dialog("PRACK", 2, &tag, Some(format!("{} 1 INVITE", rseq + 7))),
    );
    send(
        &outbox,
        &in_dialog("PRACK", 3, &tag, Some(format!("{rseq} 1 INVITE"))),
    );
    w.run_for(Duration::from_millis(100));
    let answers: Vec<String> = to_caller(&w)
        .into_iter()
        .map(|(line, ..)| line)
        .filter(|l| !l.contains("180") && !l.contains("100 Trying"))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers[0].starts_with("SIP/2.0 481"), "{answers:?}");
    assert!(answers[1].starts_with("SIP/2.0 200"), "{answers:?}");
    let before = ringing(&w).len();
    w.run_for(Duration::from_secs(10));
    assert_eq!(ringing(&w).len(), before, "the 180 went on after its PRACK");

    // The call is answered and confirmed as usual.
    let now = w.now();
    w.uas[0].endpoint.answer(now, id, Some(sdp(EARLY))).unwrap();
    w.run_for(Duration::from_millis(50));
    send(&outbox, &in_dialog("ACK", 1, &tag, None));
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_established(id)));
}

#[test]
fn a_reliable_180_never_acknowledged_refuses_the_call() {
    let (mut w, _outbox, id) = call_requiring_100rel(42);
    let now = w.now();
    w.uas[0].endpoint.ring(now, id).unwrap();
    assert!(w.run_until(Duration::from_secs(40), |w| w.uas[0].is_over(id)));
    w.run_for(Duration::from_millis(100));
    // T1 doubling over 64·T1: at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s.
    assert_eq!(ringing(&w).len(), 7);
    assert!(to_caller(&w)
        .iter()
        .any(|(line, ..)| line.starts_with("SIP/2.0 500")));
}

#[test]
fn a_prack_after_our_200_is_still_answered() {
    let (mut w, outbox, id) = call_requiring_100rel(43);
    let now = w.now();
    w.uas[0].endpoint.ring(now, id).unwrap();
    w.run_for(Duration::from_millis(10));
    let (Some(rseq), tag) = ringing(&w)[0].clone() else {
        panic!("no RSeq");
    };
    // The answer overtakes the PRACK: the 180 carried no SDP, so the 200 may go at once.
    let now = w.now();
    w.uas[0].endpoint.answer(now, id, Some(sdp(EARLY))).unwrap();
    w.run_for(Duration::from_millis(10));
    send(
        &outbox,
        &in_dialog("PRACK", 2, &tag, Some(format!("{rseq} 1 INVITE"))),
    );
    send(&outbox, &in_dialog("ACK", 1, &tag, None));
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_established(id)));
    w.run_for(Duration::from_secs(5));
    assert!(w.count(|s| s.is_response(200, "PRACK")) == 1);
    assert_eq!(ringing(&w).len(), 1, "no 180 after the 200");
}
