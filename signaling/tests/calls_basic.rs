//! Calls between two endpoints over the simulated network: set-up in both directions, ringing,
//! CANCEL, rejection, BYE from either side, INFO.

mod call_support;

use std::time::Duration;

use call_support::{sdp, World};
use callisto_signaling::call::{Body, CallEvent, CallId, CallState, FailureCause, Refusal};

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

fn two_party() -> World {
    let mut world = World::lan(1);
    world.add_ua("alice", 5061);
    world.add_ua("bob", 5062);
    world
}

/// Alice calls bob; returns both ends of the call once bob's side has it.
fn alice_calls_bob(w: &mut World) -> (CallId, CallId) {
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@127.0.0.1:5062", w.uas[1].addr, OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].incoming(0).is_some()));
    (alice_call, w.uas[1].incoming(0).unwrap())
}

/// Hanging up an answered call before its ACK came: the BYE waits for the ACK (RFC 3261 §15),
/// and until the BYE is answered the endpoint says the call is finishing, so that an
/// application stopping lets it go out.
#[test]
fn a_hang_up_before_the_ack_is_finishing_until_the_bye_is_answered() {
    let mut w = two_party();
    let (alice_call, bob_call) = alice_calls_bob(&mut w);
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    w.uas[1].endpoint.hang_up(now, bob_call).unwrap();
    assert!(w.uas[1].endpoint.calls_finishing());
    assert!(!w.uas[0].endpoint.calls_finishing());
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_call)));
    let position = |method: &str| w.log.iter().position(|s| s.is_request(method));
    let (ack, bye) = (position("ACK"), position("BYE"));
    assert!(ack.is_some() && ack < bye, "ACK {ack:?}, BYE {bye:?}");
    assert!(w.run_until(Duration::from_secs(1), |w| !w.uas[1]
        .endpoint
        .calls_finishing()));
    assert_eq!(w.count(|s| s.is_response(200, "BYE")), 1);
    // The call is over for both but still remembered (absorbing retransmissions).
    assert!(w.uas[1].endpoint.call_state(bob_call).is_some());
}

/// A phone that rings (or answers) at once sends no 100 Trying: its 180 already tells the caller,
/// and a proxy has nothing to relay ahead of it.
#[test]
fn a_phone_that_rings_at_once_sends_no_100_trying() {
    let mut w = two_party();
    let (alice_call, bob_call) = alice_calls_bob(&mut w);
    let now = w.now();
    w.uas[1].endpoint.ring(now, bob_call).unwrap();
    w.run_for(Duration::from_secs(1));
    assert!(w.uas[0].has(alice_call, |e| matches!(e, CallEvent::Ringing { .. })));
    assert!(!w.uas[0].has(alice_call, |e| *e == CallEvent::Trying));
    assert_eq!(w.count(|s| s.is_response(100, "INVITE")), 0);
    assert_eq!(w.count(|s| s.is_response(180, "INVITE")), 1);
}

#[test]
fn a_call_rings_is_answered_and_ends_with_bye_from_the_caller() {
    let mut w = two_party();
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@127.0.0.1:5062", w.uas[1].addr, OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert_eq!(
        w.uas[0].endpoint.call_state(alice_call),
        Some(CallState::Calling)
    );

    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].incoming(0).is_some()));
    let bob_call = w.uas[1].incoming(0).unwrap();
    match &w.uas[1].events_of(bob_call)[0] {
        CallEvent::Incoming {
            from,
            display_name,
            to,
            body,
            call_id,
            ..
        } => {
            assert_eq!(from, "sip:alice@example.test");
            assert_eq!(display_name.as_deref(), Some("alice (test)"));
            assert_eq!(to, "sip:bob@127.0.0.1:5062");
            assert_eq!(body.as_ref(), Some(&sdp(OFFER)));
            assert_eq!(
                Some(call_id.as_str()),
                w.uas[0].endpoint.call_sip_id(alice_call)
            );
        }
        other => panic!("{other:?}"),
    }
    // Bob's phone has neither rung nor answered: its transaction sends 100 Trying by itself
    // 200 ms after the INVITE (RFC 3261 §17.2.1), and not before.
    let trying = |w: &World| w.uas[0].has(alice_call, |e| *e == CallEvent::Trying);
    assert!(!w.run_until(Duration::from_millis(150), trying));
    assert!(w.run_until(Duration::from_millis(100), trying));
    assert_eq!(w.count(|s| s.is_response(100, "INVITE")), 1);

    let now = w.now();
    w.uas[1].endpoint.ring(now, bob_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].has(
        alice_call,
        |e| matches!(
            e,
            CallEvent::Ringing {
                early_media: None,
                ..
            }
        )
    )));
    assert_eq!(
        w.uas[0].endpoint.call_state(alice_call),
        Some(CallState::Ringing)
    );
    assert_eq!(
        w.uas[1].endpoint.call_state(bob_call),
        Some(CallState::Ringing)
    );

    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1]
        .is_established(bob_call)));
    assert_eq!(
        w.uas[0].events_of(alice_call),
        vec![
            CallEvent::Trying,
            CallEvent::Ringing {
                early_media: None,
                reliable: false
            },
            CallEvent::Answered {
                body: Some(sdp(ANSWER))
            },
            CallEvent::Established { body: None },
        ]
    );
    assert_eq!(
        w.uas[1].endpoint.call_state(bob_call),
        Some(CallState::Established)
    );
    // The 2xx was ACKed once; no retransmission was needed on a perfect network.
    assert_eq!(w.count(|s| s.is_response(200, "INVITE")), 1);
    assert_eq!(w.count(|s| s.is_request("ACK")), 1);

    let now = w.now();
    w.uas[0].endpoint.hang_up(now, alice_call).unwrap();
    w.collect();
    assert!(w.uas[0].has(alice_call, |e| matches!(
        e,
        CallEvent::Ended {
            by_remote: false,
            ..
        }
    )));
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].is_over(bob_call)));
    assert!(w.uas[1].has(bob_call, |e| matches!(
        e,
        CallEvent::Ended {
            by_remote: true,
            ..
        }
    )));
    w.run_for(Duration::from_millis(100));
    assert_eq!(w.count(|s| s.is_response(200, "BYE")), 1);
    // Both calls are forgotten once their signalling had time to finish.
    w.run_for(Duration::from_secs(40));
    assert_eq!(w.uas[0].endpoint.call_state(alice_call), None);
    assert_eq!(w.uas[1].endpoint.call_state(bob_call), None);
    assert_eq!(w.uas[0].endpoint.calls().count(), 0);
}

#[test]
fn the_callee_can_call_back_and_hang_up_first() {
    let mut w = two_party();
    let now = w.now();
    let config = w.uas[1].call_config("sip:alice@127.0.0.1:5061", w.uas[0].addr, ANSWER);
    let bob_call = w.uas[1].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].incoming(0).is_some()));
    let alice_call = w.uas[0].incoming(0).unwrap();
    let now = w.now();
    w.uas[0]
        .endpoint
        .answer(now, alice_call, Some(sdp(OFFER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .is_established(alice_call)
        && w.uas[1].is_established(bob_call)));

    // The callee (UAS of the INVITE) sends the BYE this time.
    let now = w.now();
    w.uas[0].endpoint.hang_up(now, alice_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].is_over(bob_call)));
    assert_eq!(
        w.uas[1].events_of(bob_call).last(),
        Some(&CallEvent::Ended {
            by_remote: true,
            reason: "the other side hung up".into()
        })
    );
    let bye = w.log.iter().find(|s| s.is_request("BYE")).unwrap();
    assert_eq!(bye.from, w.uas[0].addr);
    assert_eq!(bye.to, w.uas[1].addr);
    // A second hang-up is refused: the call is over.
    let now = w.now();
    assert!(w.uas[0].endpoint.hang_up(now, alice_call).is_err());
}

#[test]
fn cancelling_a_ringing_call_gets_487() {
    let mut w = two_party();
    let (alice_call, bob_call) = alice_calls_bob(&mut w);
    let now = w.now();
    w.uas[1].endpoint.ring(now, bob_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .has(alice_call, |e| matches!(e, CallEvent::Ringing { .. }))));

    let now = w.now();
    w.uas[0].endpoint.hang_up(now, alice_call).unwrap();
    w.collect();
    assert_eq!(
        w.uas[0].events_of(alice_call).last(),
        Some(&CallEvent::Ended {
            by_remote: false,
            reason: "cancelled".into()
        })
    );
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[1].is_over(bob_call)));
    assert_eq!(
        w.uas[1].events_of(bob_call).last(),
        Some(&CallEvent::Ended {
            by_remote: true,
            reason: "cancelled by the caller".into()
        })
    );
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.count(|s| s.is_request("CANCEL")), 1);
    assert_eq!(w.count(|s| s.is_response(200, "CANCEL")), 1);
    assert_eq!(w.count(|s| s.is_response(487, "INVITE")), 1);
    // The 487 is ACKed by the INVITE client transaction, and nothing more is reported.
    assert_eq!(w.count(|s| s.is_request("ACK")), 1);
    assert_eq!(
        w.uas[0]
            .events_of(alice_call)
            .iter()
            .filter(|e| matches!(e, CallEvent::Ended { .. } | CallEvent::Failed { .. }))
            .count(),
        1
    );
}

#[test]
fn a_cancel_waits_for_a_provisional_response() {
    let mut w = two_party();
    // Nothing from bob gets through for the first 300 ms.
    let start = w.now();
    let bob = w.uas[1].addr;
    w.drop_rule = Some(Box::new(move |s| {
        s.from == bob && s.at < start + Duration::from_millis(300)
    }));
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@127.0.0.1:5062", w.uas[1].addr, OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    w.run_for(Duration::from_millis(100));
    let now = w.now();
    w.uas[0].endpoint.hang_up(now, alice_call).unwrap();
    w.run_for(Duration::from_millis(150));
    assert_eq!(
        w.count(|s| s.is_request("CANCEL")),
        0,
        "no CANCEL before a provisional response (RFC 3261 §9.1)"
    );
    // The call is over for alice, but her CANCEL is still owed.
    assert!(w.uas[0].is_over(alice_call));
    assert!(w.uas[0].endpoint.calls_finishing());
    // Bob's 100 Trying (its transaction's, 200 ms after the INVITE, lost; then answering the
    // retransmitted INVITE) gets through later.
    assert!(w.run_until(Duration::from_secs(3), |w| w
        .count(|s| s.is_request("CANCEL"))
        == 1));
    let bob_call = w.uas[1].incoming(0).unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[1].is_over(bob_call)));
    // Once the INVITE has its final response (487), nothing is owed.
    assert!(w.run_until(Duration::from_secs(1), |w| w
        .count(|s| s.is_response(487, "INVITE"))
        >= 1));
    assert!(w.run_until(Duration::from_millis(100), |w| !w.uas[0]
        .endpoint
        .calls_finishing()));
}

#[test]
fn an_answer_crossing_the_cancel_is_acked_then_ended_with_bye() {
    let mut w = two_party();
    let (alice_call, bob_call) = alice_calls_bob(&mut w);
    let now = w.now();
    w.uas[1].endpoint.ring(now, bob_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .has(alice_call, |e| matches!(e, CallEvent::Ringing { .. }))));
    // Both act at the same instant: the 200 and the CANCEL cross on the wire.
    let now = w.now();
    w.uas[0].endpoint.hang_up(now, alice_call).unwrap();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[1].is_over(bob_call)));
    // Bob's INVITE transaction had ended with the 2xx: the CANCEL matches nothing.
    assert_eq!(w.count(|s| s.is_response(481, "CANCEL")), 1);
    assert_eq!(w.count(|s| s.is_request("ACK")), 1);
    assert_eq!(w.count(|s| s.is_request("BYE")), 1);
    let bob_events = w.uas[1].events_of(bob_call);
    assert!(
        matches!(bob_events[1], CallEvent::Established { .. }),
        "{bob_events:?}"
    );
    assert!(matches!(
        bob_events.last(),
        Some(CallEvent::Ended {
            by_remote: true,
            ..
        })
    ));
    // Alice's user saw the call end when she hung up, and nothing after that.
    let alice_events = w.uas[0].events_of(alice_call);
    assert!(matches!(
        alice_events.last(),
        Some(CallEvent::Ended {
            by_remote: false,
            ..
        })
    ));
    assert!(!alice_events
        .iter()
        .any(|e| matches!(e, CallEvent::Answered { .. })));
}

#[test]
fn a_busy_callee_fails_the_call_with_busy() {
    let mut w = two_party();
    let (alice_call, bob_call) = alice_calls_bob(&mut w);
    let now = w.now();
    assert!(w.uas[1].endpoint.reject(now, bob_call, 200).is_err());
    w.uas[1].endpoint.reject(now, bob_call, 486).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_call)));
    // A bare code: the standard phrase, no Warning.
    let busy = w.log.iter().find(|s| s.is_response(486, "INVITE")).unwrap();
    assert_eq!(busy.line, "SIP/2.0 486 Busy Here");
    assert!(
        !busy.text.to_ascii_lowercase().contains("warning:"),
        "{}",
        busy.text
    );
    match w.uas[0].events_of(alice_call).last() {
        Some(CallEvent::Failed {
            code,
            reason,
            cause,
            warning,
        }) => {
            assert_eq!(*code, Some(486));
            assert_eq!(reason, "Busy Here");
            assert_eq!(*cause, FailureCause::Busy);
            assert_eq!(cause.to_string(), "busy");
            assert_eq!(*warning, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.uas[1].events_of(bob_call).last(),
        Some(&CallEvent::Ended {
            by_remote: false,
            reason: "rejected".into()
        })
    );
    // The 486 was ACKed by the transaction layer.
    w.run_for(Duration::from_millis(200));
    assert_eq!(w.count(|s| s.is_request("ACK")), 1);
}

#[test]
fn a_refusal_that_says_why_reaches_the_caller_in_words() {
    let mut w = two_party();
    let (alice_call, bob_call) = alice_calls_bob(&mut w);
    let now = w.now();
    let refusal = Refusal::new(488).with_warning(305, "no codec in common: offered PCMU");
    w.uas[1].endpoint.reject(now, bob_call, refusal).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_call)));
    match w.uas[0].events_of(alice_call).last() {
        Some(CallEvent::Failed {
            code,
            cause,
            warning,
            ..
        }) => {
            assert_eq!(*code, Some(488));
            assert_eq!(*cause, FailureCause::NotAcceptable);
            assert_eq!(warning.as_deref(), Some("no codec in common: offered PCMU"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn info_is_delivered_and_a_second_call_is_just_another_call() {
    let mut w = two_party();
    w.add_ua("carol", 5063);
    let (alice_call, bob_call) = alice_calls_bob(&mut w);
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1]
        .is_established(bob_call)));

    let dtmf = Body::new(
        "application/dtmf-relay",
        &b"Signal=5\r\nDuration=160\r\n"[..],
    );
    let now = w.now();
    w.uas[0]
        .endpoint
        .send_info(now, alice_call, dtmf.clone())
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1]
        .has(bob_call, |e| *e == CallEvent::Info { body: dtmf.clone() })));
    assert!(w.run_until(Duration::from_secs(1), |w| w
        .count(|s| s.is_response(200, "INFO"))
        == 1));

    // Carol calls bob while he is on the phone: a second incoming call.
    let now = w.now();
    let config = w.uas[2].call_config("sip:bob@127.0.0.1:5062", w.uas[1].addr, OFFER);
    let carol_call = w.uas[2].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].incoming(1).is_some()));
    let waiting = w.uas[1].incoming(1).unwrap();
    assert_ne!(waiting, bob_call);
    assert_eq!(
        w.uas[1].endpoint.call_state(bob_call),
        Some(CallState::Established)
    );
    assert_eq!(
        w.uas[1].endpoint.call_state(waiting),
        Some(CallState::Offered)
    );
    let now = w.now();
    w.uas[1].endpoint.reject(now, waiting, 486).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[2].is_over(carol_call)));
    assert_eq!(
        w.uas[1].endpoint.call_state(bob_call),
        Some(CallState::Established)
    );
}
