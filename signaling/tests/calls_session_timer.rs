//! Session timers (RFC 4028): the refresher refreshes at half the interval (UPDATE when the
//! peer allows it, else a re-INVITE with the current SDP), the other side ends a session that
//! is not refreshed, and a too-short interval is raised after 422.

mod call_support;

use std::time::{Duration, Instant};

use call_support::{respond, sdp, udp, ScriptedUas, World};
use callisto_signaling::call::{CallEvent, CallId};
use rsip::Request;

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

/// Alice calls bob asking for a session timer; bob answers. Returns the calls and when bob
/// answered.
fn timed_call(w: &mut World, seconds: u32) -> (CallId, CallId, Instant) {
    let now = w.now();
    let mut config = w.uas[0].call_config("sip:bob@127.0.0.1:5062", w.uas[1].addr, OFFER);
    config.session_expires = Some(seconds);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[1].incoming(0).is_some()));
    let bob_call = w.uas[1].incoming(0).unwrap();
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_call)
        && w.uas[1].is_established(bob_call)));
    (alice_call, bob_call, now)
}

fn two_party(seed: u64) -> World {
    let mut w = World::lan(seed);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w
}

fn header(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

#[test]
fn the_caller_refreshes_with_update_at_half_the_interval() {
    let mut w = two_party(41);
    let (alice_call, bob_call, answered) = timed_call(&mut w, 90);
    let ok = w.log.iter().find(|s| s.is_response(200, "INVITE")).unwrap();
    // Bob lets the caller, who supports timers, refresh.
    assert_eq!(
        header(&ok.text, "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert_eq!(header(&ok.text, "Require").as_deref(), Some("timer"));
    w.run_for(Duration::from_secs(200));
    let updates: Vec<_> = w
        .log
        .iter()
        .filter(|s| s.is_request("UPDATE"))
        .map(|s| s.at - answered)
        .collect();
    assert_eq!(updates.len(), 4, "{updates:?}");
    assert!(updates[0] >= Duration::from_secs(45) && updates[0] < Duration::from_secs(46));
    assert!(w
        .log
        .iter()
        .filter(|s| s.is_request("UPDATE"))
        .all(|s| header(&s.text, "Session-Expires").as_deref() == Some("90;refresher=uac")));
    // Nobody hung up, and refreshes are not offers the application must answer.
    assert!(!w.uas[0].is_over(alice_call) && !w.uas[1].is_over(bob_call));
    assert!(!w.uas[1].has(bob_call, |e| matches!(e, CallEvent::ReOffer { .. })));
}

#[test]
fn an_unrefreshed_session_is_ended_by_the_other_side() {
    let mut w = two_party(42);
    w.drop_rule = Some(Box::new(|s| s.is_request("UPDATE")));
    let (alice_call, bob_call, answered) = timed_call(&mut w, 90);
    assert!(w.run_until(Duration::from_secs(100), |w| w.uas[1].is_over(bob_call)));
    // 90 s − min(32 s, 90 s / 3).
    let ended = w.now() - answered;
    assert!(
        ended >= Duration::from_secs(60) && ended < Duration::from_secs(61),
        "{ended:?}"
    );
    assert_eq!(
        w.uas[1].events_of(bob_call).last(),
        Some(&CallEvent::Ended {
            by_remote: true,
            reason: "the session timer expired".into()
        })
    );
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_call)));
}

#[test]
fn a_too_short_interval_is_raised_after_422() {
    let mut w = two_party(43);
    let (alice_call, _bob_call, _) = timed_call(&mut w, 30);
    assert_eq!(w.count(|s| s.is_response(422, "INVITE")), 1);
    let invites: Vec<_> = w.log.iter().filter(|s| s.is_request("INVITE")).collect();
    assert_eq!(invites.len(), 2);
    assert_eq!(
        header(&invites[1].text, "Session-Expires").as_deref(),
        Some("90")
    );
    assert!(w.uas[0].is_established(alice_call));
}

/// A callee that answers with a session timer and the given refresher, without UPDATE in its
/// Allow, and answers any later request 200.
fn timer_peer(refresher: &'static str) -> ScriptedUas {
    ScriptedUas::new(
        5070,
        Box::new(move |request: &Request, index| match request.method {
            // A re-INVITE carries our To tag already, which the response keeps.
            rsip::Method::Invite => vec![(
                index,
                respond(
                    request,
                    200,
                    "OK",
                    &[
                        ("Contact", "<sip:peer@127.0.0.1:5070>".into()),
                        ("Allow", "INVITE, ACK, BYE, CANCEL".into()),
                        ("Session-Expires", format!("90;refresher={refresher}")),
                    ],
                ),
            )],
            rsip::Method::Ack => Vec::new(),
            _ => vec![(index, respond(request, 200, "OK", &[]))],
        }),
    )
}

#[test]
fn without_update_the_refresh_is_a_re_invite_with_the_current_sdp() {
    let mut w = World::lan(44);
    w.add_ua("alice", 5061);
    w.nodes.push(Box::new(timer_peer("uac")));
    let now = w.now();
    let config = w.uas[0].call_config("sip:peer@example.test", udp(5070), OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_call)));
    let answered = w.now();
    w.run_for(Duration::from_secs(50));
    let invites: Vec<_> = w.log.iter().filter(|s| s.is_request("INVITE")).collect();
    assert_eq!(invites.len(), 2);
    let refresh = invites[1];
    assert!(refresh.at - answered >= Duration::from_secs(44));
    assert_eq!(
        header(&refresh.text, "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert!(refresh.text.ends_with(OFFER), "{}", refresh.text);
    // Its 2xx was ACKed and reported nothing.
    assert_eq!(w.count(|s| s.is_request("ACK")), 2);
    assert_eq!(
        w.uas[0].events_of(alice_call),
        vec![
            CallEvent::Answered { body: None },
            CallEvent::Established { body: None }
        ]
    );
}

#[test]
fn a_peer_that_should_refresh_and_does_not_gets_a_bye() {
    let mut w = World::lan(45);
    w.add_ua("alice", 5061);
    w.nodes.push(Box::new(timer_peer("uas")));
    let now = w.now();
    let config = w.uas[0].call_config("sip:peer@example.test", udp(5070), OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_call)));
    let answered = w.now();
    assert!(w.run_until(Duration::from_secs(70), |w| w.uas[0].is_over(alice_call)));
    let ended = w.now() - answered;
    assert!(
        ended >= Duration::from_secs(59) && ended < Duration::from_secs(61),
        "{ended:?}"
    );
    assert_eq!(w.count(|s| s.is_request("INVITE")), 1, "we never refreshed");
    assert!(
        w.run_until(Duration::from_secs(1), |w| w.count(|s| s.is_request("BYE"))
            == 1)
    );
}
