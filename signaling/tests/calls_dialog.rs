//! In-dialog behaviour: re-INVITE (hold, resume, refusal), glare, the Record-Route route set,
//! and what the endpoint answers to in-dialog requests it cannot accept.

mod call_support;

use std::time::{Duration, Instant};

use call_support::{respond, sdp, udp, Proxy, ScriptedUas, World};
use callisto_signaling::call::{CallError, CallEvent, CallId, Refusal};
use rsip::Request;

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

/// Alice (5061) calls bob (5062) through `via` (bob himself when `None`); bob answers.
fn established(w: &mut World, via: Option<u16>) -> (CallId, CallId) {
    let target = via.map_or(w.uas[1].addr, udp);
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@127.0.0.1:5062", target, OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(5), |w| w.uas[1].incoming(0).is_some()));
    let bob_call = w.uas[1].incoming(0).unwrap();
    w.command(1, |e, now| e.answer(now, bob_call, Some(sdp(ANSWER))))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(5), |w| w.uas[0]
        .is_established(alice_call)
        && w.uas[1].is_established(bob_call)));
    (alice_call, bob_call)
}

fn two_party() -> World {
    let mut w = World::lan(11);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w
}

fn count_events(w: &World, ua: usize, id: CallId, pred: impl Fn(&CallEvent) -> bool) -> usize {
    w.uas[ua].events_of(id).iter().filter(|e| pred(e)).count()
}

#[test]
fn hold_and_resume_by_re_invite_and_a_refused_re_offer_keeps_the_call() {
    let mut w = two_party();
    let (alice_call, bob_call) = established(&mut w, None);
    for (offer, answer, round) in [("hold", "held", 1), ("resume", "resumed", 2)] {
        w.command(0, |e, now| e.reinvite(now, alice_call, sdp(offer)))
            .unwrap();
        // Only one INVITE transaction at a time on a dialog.
        assert_eq!(
            w.command(0, |e, now| e.reinvite(now, alice_call, sdp(offer))),
            Err(CallError::ReInviteInProgress)
        );
        assert!(w.run_until(Duration::from_secs(1), |w| count_events(
            w,
            1,
            bob_call,
            |e| { matches!(e, CallEvent::ReOffer { .. }) }
        ) == round));
        assert!(w.uas[1].has(bob_call, |e| *e
            == CallEvent::ReOffer {
                body: Some(sdp(offer))
            }));
        w.command(1, |e, now| {
            e.answer_reoffer(now, bob_call, Some(sdp(answer)))
        })
        .unwrap();
        assert!(
            w.run_until(Duration::from_secs(1), |w| w.uas[0].has(alice_call, |e| *e
                == CallEvent::ReAnswer {
                    body: Some(sdp(answer))
                }))
        );
    }
    // Each re-INVITE's 2xx was ACKed with the re-INVITE's CSeq number.
    w.run_for(Duration::from_millis(100));
    let acks: Vec<String> = w
        .log
        .iter()
        .filter(|s| s.is_request("ACK"))
        .map(|s| {
            s.text
                .lines()
                .find(|l| l.starts_with("CSeq"))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(acks, vec!["CSeq: 1 ACK", "CSeq: 2 ACK", "CSeq: 3 ACK"]);

    // Bob refuses the next offer: alice hears 488 and the call goes on.
    w.command(0, |e, now| e.reinvite(now, alice_call, sdp("video")))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| count_events(
        w,
        1,
        bob_call,
        |e| { matches!(e, CallEvent::ReOffer { .. }) }
    ) == 3));
    let refusal = Refusal::new(488).with_warning(305, "No common codec");
    w.command(1, |e, now| e.reject_reoffer(now, bob_call, refusal.clone()))
        .unwrap();
    assert!(
        w.run_until(Duration::from_secs(1), |w| w.uas[0].has(alice_call, |e| *e
            == CallEvent::ReInviteFailed {
                code: 488,
                warning: Some("No common codec".into())
            }))
    );
    // The 488 says why on the wire.
    let refused = w.log.iter().find(|s| s.is_response(488, "INVITE")).unwrap();
    assert_eq!(refused.line, "SIP/2.0 488 Not Acceptable Here");
    assert!(
        refused
            .text
            .contains("\r\nWarning: 305 callisto \"No common codec\"\r\n"),
        "{}",
        refused.text
    );
    // The dialog is intact: INFO still flows, and the hang-up works.
    w.command(0, |e, now| e.send_info(now, alice_call, sdp("still here")))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1]
        .has(bob_call, |e| matches!(e, CallEvent::Info { .. }))));
    let now = w.now();
    w.uas[1].endpoint.hang_up(now, bob_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_call)));
}

#[test]
fn crossing_offers_get_491_and_the_owners_gives_way_to_the_other_sides_retry() {
    let mut w = two_party();
    let (alice_call, bob_call) = established(&mut w, None);
    w.command(0, |e, now| e.reinvite(now, alice_call, sdp("alice-offer")))
        .unwrap();
    w.command(1, |e, now| e.reinvite(now, bob_call, sdp("bob-offer")))
        .unwrap();
    // Each side answers the other's offers as they arrive, and makes its own offer again
    // when it gave way, until both have their answer.
    let ids = [alice_call, bob_call];
    let mut answered = [0usize; 2];
    let mut remade = [0usize; 2];
    let end = w.now() + Duration::from_secs(20);
    let both_answered = |w: &World| {
        (0..2).all(|i| w.uas[i].has(ids[i], |e| matches!(e, CallEvent::ReAnswer { .. })))
    };
    while !both_answered(&w) && w.step(end) {
        w.collect();
        for i in 0..2 {
            let offers = count_events(&w, i, ids[i], |e| matches!(e, CallEvent::ReOffer { .. }));
            if offers > answered[i] {
                answered[i] = offers;
                w.command(i, |e, now| {
                    e.answer_reoffer(now, ids[i], Some(sdp("answer")))
                })
                .unwrap();
            }
            let yielded = count_events(&w, i, ids[i], |e| *e == CallEvent::ReInviteYielded);
            if yielded > remade[i] {
                remade[i] = yielded;
                // The peer's 2xx awaits its ACK: the offer waits for it.
                w.command(i, |e, now| e.reinvite(now, ids[i], sdp("offer-again")))
                    .unwrap();
            }
        }
    }
    for (i, id) in ids.iter().enumerate() {
        assert!(
            w.uas[i].has(*id, |e| matches!(e, CallEvent::ReAnswer { .. })),
            "{:?}",
            w.uas[i].events_of(*id)
        );
        assert!(!w.uas[i].has(*id, |e| matches!(e, CallEvent::ReInviteFailed { .. })));
    }
    assert_eq!(w.count(|s| s.is_response(491, "INVITE")), 2);
    // Bob (0–2 s) tried again first, during alice's wait (2.1–4 s): alice's offer gave way
    // and her application answered his; neither offer was refused a second time.
    assert_eq!(remade, [1, 0]);
    let reinvites = |from| -> Vec<&call_support::Sent> {
        w.log
            .iter()
            .filter(|s| s.is_request("INVITE") && s.from == from)
            .filter(|s| {
                let to = s.text.lines().find(|l| l.starts_with("To:")).unwrap();
                to.contains("tag=")
            })
            .collect()
    };
    let bodies = |sent: &[&call_support::Sent]| -> Vec<String> {
        sent.iter()
            .map(|s| s.text.rsplit("\r\n").next().unwrap().to_owned())
            .collect()
    };
    let alice = reinvites(w.uas[0].addr);
    let bob = reinvites(w.uas[1].addr);
    assert_eq!(bodies(&alice), ["alice-offer", "offer-again"]);
    assert_eq!(bodies(&bob), ["bob-offer", "bob-offer"]);
    // Alice's new offer went out once bob's ACK for her answer to his had come.
    let acked = w
        .log
        .iter()
        .filter(|s| s.is_request("ACK") && s.from == w.uas[1].addr)
        .map(|s| s.at)
        .max()
        .unwrap();
    assert!(alice[1].at >= acked, "{:?} {acked:?}", alice[1].at);
    let got_491 = w
        .log
        .iter()
        .find(|s| s.is_response(491, "INVITE") && s.to == w.uas[1].addr)
        .unwrap()
        .at;
    // (Plus 10 ms for the 491 to arrive.)
    let bob_wait = bob[1].at - got_491;
    assert!(bob_wait <= Duration::from_millis(2010), "{bob_wait:?}");
}

/// A peer that answers every INVITE with 200, except the first re-INVITE, which it refuses
/// with `code` and the `extra` headers (491: as if it had crossed an offer of its own that it
/// then gave up).
fn refusing_a_reinvite_once(
    code: u16,
    reason: &'static str,
    extra: Vec<(&'static str, String)>,
) -> ScriptedUas {
    let mut invites = 0;
    ScriptedUas::new(
        5070,
        Box::new(move |request: &Request, index| {
            if request.method != rsip::Method::Invite {
                return Vec::new();
            }
            invites += 1;
            let response = if invites == 2 {
                respond(request, code, reason, &extra)
            } else {
                respond(
                    request,
                    200,
                    "OK",
                    &[("Contact", "<sip:bob@127.0.0.1:5070>".to_owned())],
                )
            };
            vec![(index, response)]
        }),
    )
}

/// Alice calls the peer and, once in the call, offers again: the times of every INVITE sent,
/// and when the peer's refusal `code` was sent; what alice heard.
fn reinvite_refused_once(
    code: u16,
    reason: &'static str,
    extra: Vec<(&'static str, String)>,
) -> (World, CallId, Vec<Instant>, Instant) {
    let mut w = two_party();
    w.nodes
        .push(Box::new(refusing_a_reinvite_once(code, reason, extra)));
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@127.0.0.1:5070", udp(5070), OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_call)));
    w.command(0, |e, now| e.reinvite(now, alice_call, sdp("alice-offer")))
        .unwrap();
    w.run_until(Duration::from_secs(15), |w| {
        w.uas[0].has(alice_call, |e| {
            matches!(
                e,
                CallEvent::ReAnswer { .. } | CallEvent::ReInviteFailed { .. }
            )
        })
    });
    let invites: Vec<Instant> = w
        .log
        .iter()
        .filter(|s| s.is_request("INVITE"))
        .map(|s| s.at)
        .collect();
    let refused = w
        .log
        .iter()
        .find(|s| s.is_response(code, "INVITE"))
        .unwrap()
        .at;
    (w, alice_call, invites, refused)
}

#[test]
fn a_reinvite_answered_481_or_408_ends_the_call_and_is_no_refusal() {
    for (code, reason, ended) in [
        (
            481,
            "Call/Transaction Does Not Exist",
            "the other side lost the call",
        ),
        (408, "Request Timeout", "the other side stopped answering"),
    ] {
        let (w, alice_call, _, _) = reinvite_refused_once(code, reason, vec![]);
        let events = w.uas[0].events_of(alice_call);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, CallEvent::ReInviteFailed { .. })),
            "{code}: {events:?}"
        );
        assert_eq!(
            events.last(),
            Some(&CallEvent::Ended {
                by_remote: true,
                reason: ended.into()
            }),
            "{code}"
        );
    }
}

#[test]
fn hanging_up_during_the_peers_re_invite_ends_the_call_before_refusing_the_offer() {
    let mut w = two_party();
    let (alice_call, bob_call) = established(&mut w, None);
    w.command(0, |e, now| e.reinvite(now, alice_call, sdp("hold")))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1]
        .has(bob_call, |e| matches!(e, CallEvent::ReOffer { .. }))));
    // Bob hangs up before he answers: his BYE goes before the 487 the offer gets
    // (RFC 3261 §15.1.2), so alice learns the call is over before she hears the refusal.
    let mark = w.log.len();
    w.command(1, |e, now| e.hang_up(now, bob_call)).unwrap();
    w.run_for(Duration::from_millis(200));
    let bye = w.log[mark..].iter().position(|s| s.is_request("BYE"));
    let refused = w.log[mark..]
        .iter()
        .position(|s| s.is_response(487, "INVITE"));
    assert!(bye.is_some() && refused.is_some(), "{:?}", &w.log[mark..]);
    assert!(bye < refused, "{:?}", &w.log[mark..]);
    let events = w.uas[0].events_of(alice_call);
    assert!(
        !w.uas[0].has(alice_call, |e| matches!(
            e,
            CallEvent::ReInviteFailed { .. }
        )),
        "{events:?}"
    );
    assert!(
        matches!(
            events.last(),
            Some(CallEvent::Ended {
                by_remote: true,
                ..
            })
        ),
        "{events:?}"
    );
}

#[test]
fn the_owner_of_the_call_id_tries_again_2_1_to_4_seconds_after_a_491() {
    let (w, alice_call, invites, refused) = reinvite_refused_once(491, "Request Pending", vec![]);
    assert!(w.uas[0].has(alice_call, |e| matches!(e, CallEvent::ReAnswer { .. })));
    assert_eq!(invites.len(), 3);
    // Alice sent the first INVITE: she owns the Call-ID and waits 2.1–4 s (plus 10 ms for
    // the 491 to arrive).
    let wait = invites[2] - refused;
    assert!(
        wait >= Duration::from_millis(2110) && wait <= Duration::from_millis(4010),
        "{wait:?}"
    );
    assert!(!w.uas[0].has(alice_call, |e| matches!(
        e,
        CallEvent::ReInviteYielded | CallEvent::ReInviteFailed { .. }
    )));
}

#[test]
fn a_re_invite_refused_with_a_short_retry_after_is_sent_again_once_it_has_passed() {
    for (code, reason) in [(500, "Server Internal Error"), (503, "Service Unavailable")] {
        let retry_after = vec![("Retry-After", "7".to_owned())];
        let (w, alice_call, invites, refused) = reinvite_refused_once(code, reason, retry_after);
        assert!(
            w.uas[0].has(alice_call, |e| matches!(e, CallEvent::ReAnswer { .. })),
            "{code}"
        );
        assert_eq!(invites.len(), 3, "{code}");
        // 7 s, plus 10 ms for the refusal to arrive.
        let wait = invites[2] - refused;
        assert!(
            wait >= Duration::from_secs(7) && wait <= Duration::from_millis(7020),
            "{code}: {wait:?}"
        );
        assert!(!w.uas[0].has(alice_call, |e| matches!(
            e,
            CallEvent::ReInviteFailed { .. }
        )));
    }
    // Without a Retry-After, or with one longer than a peer busy with its own INVITE gives,
    // the refusal stands.
    for extra in [vec![], vec![("Retry-After", "60 (overloaded)".to_owned())]] {
        let (w, alice_call, invites, _) =
            reinvite_refused_once(500, "Server Internal Error", extra.clone());
        assert!(
            w.uas[0].has(alice_call, |e| *e
                == CallEvent::ReInviteFailed {
                    code: 500,
                    warning: None
                }),
            "{extra:?}"
        );
        assert_eq!(invites.len(), 2, "{extra:?}");
    }
}

#[test]
fn an_offer_made_while_the_peers_is_answered_goes_out_after_the_exchange() {
    for accept in [true, false] {
        let mut w = two_party();
        let (alice_call, bob_call) = established(&mut w, None);
        w.command(0, |e, now| e.reinvite(now, alice_call, sdp("alice-offer")))
            .unwrap();
        assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1]
            .has(bob_call, |e| matches!(e, CallEvent::ReOffer { .. }))));
        // Bob holds alice while her offer waits for his answer: his offer waits.
        w.command(1, |e, now| e.reinvite(now, bob_call, sdp("bob-offer")))
            .unwrap();
        assert_eq!(
            w.command(1, |e, now| e.reinvite(now, bob_call, sdp("again"))),
            Err(CallError::ReInviteInProgress)
        );
        w.run_for(Duration::from_millis(200));
        let from_bob = |w: &World| {
            w.log
                .iter()
                .filter(|s| s.is_request("INVITE") && s.from == w.uas[1].addr)
                .count()
        };
        assert_eq!(from_bob(&w), 0, "{accept}");
        let now = w.now();
        if accept {
            w.uas[1]
                .endpoint
                .answer_reoffer(now, bob_call, Some(sdp("bob-answer")))
                .unwrap();
        } else {
            w.uas[1]
                .endpoint
                .reject_reoffer(now, bob_call, 488)
                .unwrap();
        }
        assert!(
            w.run_until(Duration::from_secs(1), |w| w.uas[0].has(alice_call, |e| *e
                == CallEvent::ReOffer {
                    body: Some(sdp("bob-offer"))
                }))
        );
        // After the 2xx bob's offer waited for alice's ACK; after a refusal it went at once.
        let first =
            |pred: &dyn Fn(&call_support::Sent) -> bool| w.log.iter().position(pred).unwrap();
        let bob_invite = first(&|s| s.is_request("INVITE") && s.from == w.uas[1].addr);
        let closed = if accept {
            first(&|s| {
                s.is_request("ACK") && s.from == w.uas[0].addr && s.text.contains("CSeq: 2 ")
            })
        } else {
            first(&|s| s.is_response(488, "INVITE"))
        };
        assert!(closed < bob_invite, "{accept}");
        assert!(!w.uas[1].has(bob_call, |e| matches!(
            e,
            CallEvent::ReInviteFailed { .. } | CallEvent::ReInviteYielded
        )));
    }
}

#[test]
fn the_record_route_set_carries_in_dialog_requests_through_the_proxy() {
    let mut w = two_party();
    w.nodes.push(Box::new(Proxy::new(5060, true, Vec::new())));
    let (alice_call, bob_call) = established(&mut w, Some(5060));
    let proxy = udp(5060);
    // The ACK followed the route set.
    let ack = w.log.iter().find(|s| s.is_request("ACK")).unwrap();
    assert_eq!(ack.to, proxy);
    assert!(
        ack.text.contains("Route: <sip:127.0.0.1:5060;lr>"),
        "{}",
        ack.text
    );
    // So does a BYE from the callee, whose route set is the Record-Route in order.
    let now = w.now();
    w.uas[1].endpoint.hang_up(now, bob_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_call)));
    let bye = w.log.iter().find(|s| s.is_request("BYE")).unwrap();
    assert_eq!(bye.from, w.uas[1].addr);
    assert_eq!(bye.to, proxy);
    assert!(bye.text.starts_with("BYE sip:alice@127.0.0.1:5061 SIP/2.0"));
    // Nothing went directly between the two user agents.
    let (a, b) = (w.uas[0].addr, w.uas[1].addr);
    assert_eq!(
        w.count(|s| (s.from == a && s.to == b) || (s.from == b && s.to == a)),
        0
    );
}

/// Bob's dialog identifiers as seen on the wire: Call-ID, alice's tag, bob's tag.
fn dialog_ids(w: &World) -> (String, String, String) {
    let ok = w.log.iter().find(|s| s.is_response(200, "INVITE")).unwrap();
    let header = |name: &str| {
        ok.text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_owned()
    };
    let tag = |line: String| line.split("tag=").nth(1).unwrap().trim().to_owned();
    let call_id = header("Call-ID:")["Call-ID:".len()..].trim().to_owned();
    (call_id, tag(header("From:")), tag(header("To:")))
}

fn raw_request(method: &str, call_id: &str, from_tag: &str, to_tag: &str, seq: u32) -> String {
    format!(
        "{method} sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKraw{method}{seq}\r\n\
         From: <sip:alice@example.test>;tag={from_tag}\r\n\
         To: <sip:bob@127.0.0.1:5062>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A re-INVITE from alice's side (CSeq 2, her Contact at 5099) carrying `offer`, or no
/// offer when it is empty.
fn raw_reinvite(call_id: &str, alice_tag: &str, bob_tag: &str, offer: &str) -> String {
    let body = if offer.is_empty() {
        "Content-Length: 0\r\n\r\n".to_owned()
    } else {
        format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            offer.len()
        )
    };
    raw_request("INVITE", call_id, alice_tag, bob_tag, 2).replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Contact: <sip:alice@127.0.0.1:5099>\r\n{body}"),
    )
}

#[test]
fn in_dialog_requests_out_of_order_unknown_or_for_no_dialog_are_refused() {
    let mut w = two_party();
    let (_alice_call, bob_call) = established(&mut w, None);
    w.run_for(Duration::from_millis(50));
    let (call_id, alice_tag, bob_tag) = dialog_ids(&w);
    let source = udp(5099);
    let ask = |w: &mut World, text: String| -> String {
        let now = w.now();
        w.uas[1]
            .endpoint
            .handle_datagram(now, text.as_bytes(), source);
        let reply = w.uas[1].endpoint.poll_transmit().expect("a reply");
        assert_eq!(reply.target, source);
        String::from_utf8_lossy(&reply.bytes)
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    // The INVITE had CSeq 1: a request with CSeq 1 is out of order.
    assert_eq!(
        ask(
            &mut w,
            raw_request("INFO", &call_id, &alice_tag, &bob_tag, 1)
        ),
        "SIP/2.0 500 Server Internal Error"
    );
    assert_eq!(
        ask(
            &mut w,
            raw_request("INFO", &call_id, &alice_tag, &bob_tag, 7)
        ),
        "SIP/2.0 200 OK"
    );
    assert_eq!(
        ask(
            &mut w,
            raw_request("MESSAGE", &call_id, &alice_tag, &bob_tag, 8)
        ),
        "SIP/2.0 501 Not Implemented"
    );
    assert_eq!(
        ask(
            &mut w,
            raw_request("OPTIONS", &call_id, &alice_tag, &bob_tag, 9)
        ),
        "SIP/2.0 200 OK"
    );
    // The wrong remote tag, an unknown local tag, an unknown Call-ID: no such dialog.
    for (cid, from, to) in [
        (call_id.as_str(), "intruder", bob_tag.as_str()),
        (call_id.as_str(), alice_tag.as_str(), "nope"),
        ("unknown-call", alice_tag.as_str(), bob_tag.as_str()),
    ] {
        assert_eq!(
            ask(&mut w, raw_request("BYE", cid, from, to, 10)),
            "SIP/2.0 481 Call/Transaction Does Not Exist"
        );
    }
    // Out of a dialog, dialog-only methods get 481 too.
    let mut bye = raw_request("BYE", "other-call", "x", "y", 1);
    bye = bye.replace(";tag=y", "");
    assert_eq!(
        ask(&mut w, bye),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    // Garbage is answered 400 and counted; the call is untouched.
    let now = w.now();
    w.uas[1].endpoint.handle_datagram(
        now,
        raw_request("BYE", &call_id, &alice_tag, &bob_tag, 11)
            .replace("CSeq: 11 BYE", "CSeq: eleven BYE")
            .as_bytes(),
        source,
    );
    assert!(w.uas[1].endpoint.poll_transmit().is_some());
    let malformed = std::iter::from_fn(|| w.uas[1].endpoint.poll_event()).count();
    assert_eq!(malformed, 1);
    assert_eq!(
        w.uas[1].endpoint.call_state(bob_call),
        Some(callisto_signaling::call::CallState::Established)
    );
    // Incoming INVITEs the endpoint cannot take: a required extension, no Contact.
    let invite = |extra: &str, contact: bool| {
        format!(
            "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKinv{}\r\n\
             From: <sip:eve@example.test>;tag=e1\r\n\
             To: <sip:bob@127.0.0.1:5062>\r\n\
             Call-ID: new-call-{}\r\n\
             CSeq: 1 INVITE\r\n{}{}\
             Content-Length: 0\r\n\r\n",
            extra.len(),
            contact,
            if contact {
                "Contact: <sip:eve@127.0.0.1:5099>\r\n"
            } else {
                ""
            },
            extra
        )
    };
    assert_eq!(
        ask(&mut w, invite("Require: foo\r\n", true)),
        "SIP/2.0 420 Bad Extension"
    );
    assert_eq!(
        ask(&mut w, invite("", false)),
        "SIP/2.0 400 Missing Contact"
    );
    assert_eq!(w.uas[1].endpoint.calls().count(), 1);
}

#[test]
fn an_offerless_re_invite_is_answered_with_an_offer_and_the_answer_comes_in_the_ack() {
    let mut w = two_party();
    let (_alice_call, bob_call) = established(&mut w, None);
    w.run_for(Duration::from_millis(50));
    let (call_id, alice_tag, bob_tag) = dialog_ids(&w);
    let source = udp(5099);
    let reinvite = raw_reinvite(&call_id, &alice_tag, &bob_tag, "");
    let now = w.now();
    w.uas[1]
        .endpoint
        .handle_datagram(now, reinvite.as_bytes(), source);
    w.collect();
    assert!(w.uas[1].has(bob_call, |e| *e == CallEvent::ReOffer { body: None }));
    w.command(1, |e, now| {
        e.answer_reoffer(now, bob_call, Some(sdp("bob-offer")))
    })
    .unwrap();
    let ok = std::iter::from_fn(|| w.uas[1].endpoint.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.bytes).to_string())
        .find(|t| t.starts_with("SIP/2.0 200"))
        .expect("a 200");
    assert!(ok.ends_with("bob-offer"), "{ok}");
    // The ACK brings alice's answer.
    let ack = raw_request("ACK", &call_id, &alice_tag, &bob_tag, 2)
        .replace("branch=z9hG4bKrawACK2", "branch=z9hG4bKrawACK2b")
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Type: application/sdp\r\nContent-Length: 12\r\n\r\nalice-answer",
        );
    let now = w.now();
    w.uas[1]
        .endpoint
        .handle_datagram(now, ack.as_bytes(), source);
    w.collect();
    assert!(w.uas[1].has(bob_call, |e| *e
        == CallEvent::ReAnswer {
            body: Some(sdp("alice-answer"))
        }));
    // The remote target followed the re-INVITE's Contact.
    let now = w.now();
    w.uas[1].endpoint.hang_up(now, bob_call).unwrap();
    let bye = std::iter::from_fn(|| w.uas[1].endpoint.poll_transmit())
        .find(|t| t.bytes.starts_with(b"BYE"))
        .expect("a BYE");
    assert_eq!(bye.target, source);
}

#[test]
fn an_offer_that_waited_for_the_peers_goes_out_when_the_peer_cancels_its_own() {
    let mut w = two_party();
    let (_alice_call, bob_call) = established(&mut w, None);
    w.run_for(Duration::from_millis(50));
    let (call_id, alice_tag, bob_tag) = dialog_ids(&w);
    let source = udp(5099);
    let reinvite = raw_reinvite(&call_id, &alice_tag, &bob_tag, "alice-offer");
    let now = w.now();
    w.uas[1]
        .endpoint
        .handle_datagram(now, reinvite.as_bytes(), source);
    w.collect();
    assert!(w.uas[1].has(bob_call, |e| matches!(e, CallEvent::ReOffer { .. })));
    // Bob holds alice before he answers: his offer waits for her exchange.
    w.command(1, |e, now| e.reinvite(now, bob_call, sdp("bob-offer")))
        .unwrap();
    let sent = |w: &mut World| -> Vec<String> {
        std::iter::from_fn(|| w.uas[1].endpoint.poll_transmit())
            .map(|t| {
                String::from_utf8_lossy(&t.bytes)
                    .lines()
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert!(
        !sent(&mut w).iter().any(|l| l.starts_with("INVITE")),
        "bob's offer went before alice's exchange was over"
    );
    // Alice cancels her re-INVITE: it is answered 487, and bob's offer goes.
    let cancel = raw_request("CANCEL", &call_id, &alice_tag, &bob_tag, 2)
        .replace("branch=z9hG4bKrawCANCEL2", "branch=z9hG4bKrawINVITE2");
    let now = w.now();
    w.uas[1]
        .endpoint
        .handle_datagram(now, cancel.as_bytes(), source);
    let lines = sent(&mut w);
    let position = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    assert!(position("SIP/2.0 487").is_some(), "{lines:?}");
    assert!(position("INVITE") > position("SIP/2.0 487"), "{lines:?}");
    // Bob is told, and his answer to the cancelled offer is refused.
    w.collect();
    assert!(w.uas[1].has(bob_call, |e| *e == CallEvent::ReOfferCancelled));
    assert!(w
        .command(1, |e, now| e.answer_reoffer(
            now,
            bob_call,
            Some(sdp("late"))
        ))
        .is_err());
}
