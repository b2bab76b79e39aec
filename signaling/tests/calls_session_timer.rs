//! Session timers (RFC 4028): the refresher refreshes at half the interval (UPDATE when the
//! peer allows it, else a re-INVITE with the current SDP), the other side ends a session that
//! is not refreshed, a too-short interval is raised after 422, a refresh refused 491 goes
//! again with the session as it is then, after an application offer waiting behind it gave way
//! to the peer's, and refreshes sent again after a Retry-After do not put off the expiry.

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

/// `ua`'s `call` ended just now because its 90 s session timer expired: 90 s − min(32 s,
/// 90 s / 3) after the session was last refreshed at `refreshed`.
fn expired_now(w: &World, ua: usize, call: CallId, refreshed: Instant) {
    let ended = w.now() - refreshed;
    assert!(
        ended >= Duration::from_secs(60) && ended < Duration::from_secs(61),
        "{ended:?}"
    );
    assert_eq!(
        w.uas[ua].events_of(call).last(),
        Some(&CallEvent::Ended {
            by_remote: true,
            reason: "the session timer expired".into()
        })
    );
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
    expired_now(&w, 1, bob_call, answered);
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

/// What a scripted timer peer refuses.
#[derive(Clone, Copy, PartialEq)]
enum Refuses {
    Nothing,
    /// Its `n`th INVITE, with 491 (it allows no UPDATE: refreshes are re-INVITEs).
    Invite(usize),
    /// Every refresh, by UPDATE (which it allows), with 500 and a Retry-After of 10 s.
    EveryUpdate,
}

/// A callee that answers with a session timer and the given refresher (UPDATE in its Allow only
/// to refuse it), and answers any later request 200 — except what it `refuses`.
fn timer_peer(refresher: &'static str, refuses: Refuses) -> ScriptedUas {
    let mut invites = 0;
    let allow = if refuses == Refuses::EveryUpdate {
        "INVITE, ACK, BYE, CANCEL, UPDATE"
    } else {
        "INVITE, ACK, BYE, CANCEL"
    };
    ScriptedUas::new(
        5070,
        Box::new(move |request: &Request, index| match request.method {
            rsip::Method::Invite if refuses == Refuses::Invite(invites + 1) => {
                invites += 1;
                vec![(index, respond(request, 491, "Request Pending", &[]))]
            }
            // A re-INVITE carries our To tag already, which the response keeps.
            rsip::Method::Invite => vec![(index, {
                invites += 1;
                respond(
                    request,
                    200,
                    "OK",
                    &[
                        ("Contact", "<sip:peer@127.0.0.1:5070>".into()),
                        ("Allow", allow.into()),
                        ("Session-Expires", format!("90;refresher={refresher}")),
                    ],
                )
            })],
            rsip::Method::Update if refuses == Refuses::EveryUpdate => vec![(
                index,
                respond(
                    request,
                    500,
                    "Server Internal Error",
                    &[("Retry-After", "10".into())],
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
    w.nodes.push(Box::new(timer_peer("uac", Refuses::Nothing)));
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
    w.nodes.push(Box::new(timer_peer("uas", Refuses::Nothing)));
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

#[test]
fn an_offer_behind_a_refresh_refused_491_gives_way_to_the_peers_and_the_refresh_carries_it() {
    let mut w = World::lan(46);
    w.add_ua("alice", 5061);
    // The second INVITE, alice's refresh, is refused 491: she waits 2.1–4 s (she owns the
    // Call-ID) before she sends it again.
    w.nodes
        .push(Box::new(timer_peer("uac", Refuses::Invite(2))));
    let now = w.now();
    let config = w.uas[0].call_config("sip:peer@example.test", udp(5070), OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_call)));
    assert!(w.run_until(Duration::from_secs(50), |w| w
        .count(|s| s.is_response(491, "INVITE"))
        == 1));
    // Alice holds the call meanwhile: her offer waits behind the refresh.
    let now = w.now();
    w.uas[0]
        .endpoint
        .reinvite(now, alice_call, sdp("hold"))
        .unwrap();
    // The peer's own offer comes before the refresh goes again.
    let ok = w.log.iter().find(|s| s.is_response(200, "INVITE")).unwrap();
    let tag = |name: &str| {
        let line = header(&ok.text, name).unwrap();
        line.split("tag=").nth(1).unwrap().to_owned()
    };
    let call_id = header(&ok.text, "Call-ID").unwrap();
    let (alice_tag, peer_tag) = (tag("From"), tag("To"));
    let in_dialog = |method: &str, branch: &str, body: &str| {
        format!(
            "{method} sip:alice@127.0.0.1:5061 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch}\r\n\
             From: <sip:peer@example.test>;tag={peer_tag}\r\n\
             To: <sip:alice@example.test>;tag={alice_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n\
             Contact: <sip:peer@127.0.0.1:5070>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let now = w.now();
    let offer = in_dialog("INVITE", "peeroffer", "peer-offer");
    w.uas[0]
        .endpoint
        .handle_datagram(now, offer.as_bytes(), udp(5070));
    w.collect();
    let events = w.uas[0].events_of(alice_call);
    assert_eq!(
        events[events.len() - 2..],
        [
            CallEvent::ReInviteYielded,
            CallEvent::ReOffer {
                body: Some(sdp("peer-offer"))
            }
        ]
    );
    let now = w.now();
    w.uas[0]
        .endpoint
        .answer_reoffer(now, alice_call, Some(sdp("alice-answer")))
        .unwrap();
    let ack = in_dialog("ACK", "peerack", "");
    let now = w.now();
    w.uas[0]
        .endpoint
        .handle_datagram(now, ack.as_bytes(), udp(5070));
    w.run_for(Duration::from_secs(5));
    // The refresh went again, with the session as it is now; the hold that gave way did not
    // go by itself.
    let invites: Vec<_> = w
        .log
        .iter()
        .filter(|s| s.is_request("INVITE") && s.from == w.uas[0].addr)
        .collect();
    assert_eq!(invites.len(), 3, "{invites:?}");
    assert!(
        invites[2].text.ends_with("alice-answer"),
        "{}",
        invites[2].text
    );
    assert!(!w.uas[0].has(alice_call, |e| matches!(
        e,
        CallEvent::ReInviteFailed { .. } | CallEvent::ReAnswer { .. }
    )));
}

#[test]
fn refreshes_sent_again_after_a_retry_after_do_not_put_off_the_sessions_expiry() {
    let mut w = World::lan(46);
    w.add_ua("alice", 5061);
    w.nodes
        .push(Box::new(timer_peer("uac", Refuses::EveryUpdate)));
    let now = w.now();
    let mut config = w.uas[0].call_config("sip:peer@example.test", udp(5070), OFFER);
    config.session_expires = Some(90);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_call)));
    let answered = w.now();
    assert!(w.run_until(Duration::from_secs(120), |w| w.uas[0].is_over(alice_call)));
    // The refresh at 45 s and its retries 10 s apart; the session expires 90 s − 30 s after
    // the answer, as if none had been sent again.
    let updates: Vec<Duration> = w
        .log
        .iter()
        .filter(|s| s.is_request("UPDATE"))
        .map(|s| s.at - answered)
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(
        updates[1] - updates[0] >= Duration::from_secs(10),
        "{updates:?}"
    );
    expired_now(&w, 0, alice_call, answered);
}
