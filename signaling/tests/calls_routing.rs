//! Outgoing calls meeting the network's intermediaries: a forking proxy (two 2xx), redirect
//! servers (3xx followed, loops and chains bounded), digest challenges (401/407 answered once),
//! and silence (no final answer).

mod call_support;

use std::time::Duration;

use call_support::{respond, sdp, udp, Proxy, ScriptedUas, World};
use callisto_signaling::auth::Credentials;
use callisto_signaling::call::{CallEvent, FailureCause};
use md5::{Digest, Md5};
use rsip::prelude::UntypedHeader;
use rsip::{Request, Response};

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

fn failure(w: &World, id: callisto_signaling::call::CallId) -> (Option<u16>, FailureCause) {
    match w.uas[0].events_of(id).last() {
        Some(CallEvent::Failed { code, cause, .. }) => (*code, *cause),
        other => panic!("not failed: {other:?}"),
    }
}

/// Alice calls `sip:bob@example.test` through the server on port 5070.
fn call_bob_through_5070(w: &mut World) -> callisto_signaling::call::CallId {
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@example.test", udp(5070), OFFER);
    w.uas[0].endpoint.start_call(now, config)
}

#[test]
fn a_second_2xx_from_another_fork_is_acked_and_ended_with_bye() {
    let mut w = World::lan(21);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w.add_ua("carol", 5063);
    w.nodes.push(Box::new(Proxy::new(
        5060,
        false,
        vec![udp(5062), udp(5063)],
    )));
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@example.test", udp(5060), OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(
        w.run_until(Duration::from_secs(1), |w| w.uas[1].incoming(0).is_some()
            && w.uas[2].incoming(0).is_some())
    );
    let bob_call = w.uas[1].incoming(0).unwrap();
    let carol_call = w.uas[2].incoming(0).unwrap();
    // Both forks ring, then both answer: bob first.
    let now = w.now();
    w.uas[1].endpoint.ring(now, bob_call).unwrap();
    w.uas[2].endpoint.ring(now, carol_call).unwrap();
    w.run_for(Duration::from_millis(100));
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    w.run_for(Duration::from_millis(5));
    let now = w.now();
    w.uas[2]
        .endpoint
        .answer(now, carol_call, Some(sdp("v=0 carol")))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[2].is_over(carol_call)));
    // Carol's answer was ACKed (so her 2xx stops) and her dialog ended by BYE.
    assert!(w.uas[2].is_established(carol_call));
    assert_eq!(
        w.uas[2].events_of(carol_call).last(),
        Some(&CallEvent::Ended {
            by_remote: true,
            reason: "the other side hung up".into()
        })
    );
    // Alice's user saw one answer: bob's.
    let answers: Vec<_> = w.uas[0]
        .events_of(alice_call)
        .into_iter()
        .filter(|e| matches!(e, CallEvent::Answered { .. }))
        .collect();
    assert_eq!(
        answers,
        vec![CallEvent::Answered {
            body: Some(sdp(ANSWER))
        }]
    );
    // Early dialogs were reported as ringing once per distinct 18x.
    assert!(w.uas[0].has(alice_call, |e| matches!(e, CallEvent::Ringing { .. })));
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[1]
        .is_established(bob_call)));
    assert!(!w.uas[1].is_over(bob_call));
    let carol = w.uas[2].addr;
    assert_eq!(w.count(|s| s.is_request("BYE") && s.to == carol), 1);
    assert_eq!(w.count(|s| s.is_request("BYE") && s.to == w.uas[1].addr), 0);
    // The call with bob goes on and ends normally.
    let now = w.now();
    w.uas[0].endpoint.hang_up(now, alice_call).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].is_over(bob_call)));
}

#[test]
fn a_redirection_goes_to_the_most_preferred_contact_not_tried_yet() {
    let mut w = World::lan(25);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    // The 302 names the redirect server itself (already tried: the INVITE went there) at the
    // highest q, a dead end at a low q, and bob in between.
    w.nodes.push(Box::new(redirecting_server(|_| {
        "<sip:nobody@127.0.0.1:5090>;q=0.1, <sip:bob@example.test>;q=1.0, \
         <sip:bob@127.0.0.1:5062>;q=0.7"
            .to_owned()
    })));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].incoming(0).is_some()));
    let bob_call = w.uas[1].incoming(0).unwrap();
    match &w.uas[1].events_of(bob_call)[0] {
        CallEvent::Incoming { request_uri, .. } => {
            assert_eq!(request_uri, "sip:bob@127.0.0.1:5062")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.count(|s| s.is_request("INVITE")), 2);
    assert_eq!(w.count(|s| s.is_request("INVITE") && s.to == udp(5090)), 0);
    assert!(!w.uas[0].is_over(alice_call));
}

/// A UAS on `port` that rings, then answers every INVITE with `code`.
fn refusing_uas(port: u16, code: u16, phrase: &'static str) -> ScriptedUas {
    ScriptedUas::new(
        port,
        Box::new(move |request: &Request, index| {
            if request.method != rsip::Method::Invite {
                return Vec::new();
            }
            vec![
                (index, respond(request, 180, "Ringing", &[])),
                (index, respond(request, code, phrase, &[])),
            ]
        }),
    )
}

fn ringing_events(w: &World, id: callisto_signaling::call::CallId) -> usize {
    w.uas[0]
        .events_of(id)
        .iter()
        .filter(|e| matches!(e, CallEvent::Ringing { .. }))
        .count()
}

#[test]
fn a_failed_redirection_target_gives_way_to_the_next_contact() {
    let mut w = World::lan(30);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    // Most preferred: a busy phone, then an address where nothing answers, then bob.
    w.nodes.push(Box::new(redirecting_server(|_| {
        "<sip:bob@127.0.0.1:5062>;q=0.5, <sip:desk@127.0.0.1:5090>;q=1.0, \
         <sip:gone@127.0.0.1:5999>;q=0.8"
            .to_owned()
    })));
    w.nodes.push(Box::new(refusing_uas(5090, 486, "Busy Here")));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(40), |w| w.uas[1].incoming(0).is_some()));
    assert_eq!(w.count(|s| s.is_request("INVITE") && s.to == udp(5090)), 1);
    // The silent address was given timer B's 32 s (7 transmissions) before bob was called.
    assert_eq!(w.count(|s| s.is_request("INVITE") && s.to == udp(5999)), 7);
    assert!(
        !w.uas[0].is_over(alice_call),
        "{:?}",
        w.uas[0].events_of(alice_call)
    );
    let bob_call = w.uas[1].incoming(0).unwrap();
    // The busy phone rang before it refused; bob's ringing is reported afresh.
    assert_eq!(ringing_events(&w, alice_call), 1);
    let now = w.now();
    w.uas[1].endpoint.ring(now, bob_call).unwrap();
    assert!(
        w.run_until(Duration::from_secs(1), |w| ringing_events(w, alice_call)
            == 2)
    );
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .is_established(alice_call)));
}

#[test]
fn the_targets_tried_after_a_redirection_are_bounded() {
    let mut w = World::lan(32);
    w.add_ua("alice", 5061);
    // Eight busy addresses: the first is followed, then four alternatives (five targets
    // after the first INVITE, as many as redirections allow).
    w.nodes.push(Box::new(redirecting_server(|_| {
        (1..=8)
            .map(|n| format!("<sip:desk{n}@127.0.0.1:5090>"))
            .collect::<Vec<_>>()
            .join(", ")
    })));
    w.nodes.push(Box::new(refusing_uas(5090, 486, "Busy Here")));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_over(alice_call)));
    assert_eq!(failure(&w, alice_call), (Some(486), FailureCause::Busy));
    assert_eq!(w.count(|s| s.is_request("INVITE") && s.to == udp(5090)), 5);
}

#[test]
fn a_global_failure_from_a_redirection_target_ends_the_search() {
    let mut w = World::lan(31);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w.nodes.push(Box::new(redirecting_server(|_| {
        "<sip:desk@127.0.0.1:5090>, <sip:bob@127.0.0.1:5062>;q=0.5".to_owned()
    })));
    w.nodes.push(Box::new(refusing_uas(5090, 603, "Decline")));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_over(alice_call)));
    assert_eq!(failure(&w, alice_call), (Some(603), FailureCause::Declined));
    assert_eq!(w.count(|s| s.is_request("INVITE") && s.to == udp(5062)), 0);
}

fn redirect_server(contact: impl Fn(usize) -> String + 'static) -> ScriptedUas {
    redirecting_server(move |n| format!("<{}>", contact(n)))
}

/// A server that answers every INVITE with a 302 whose Contact header value is `contact(n)`.
fn redirecting_server(contact: impl Fn(usize) -> String + 'static) -> ScriptedUas {
    ScriptedUas::new(
        5070,
        Box::new(move |request: &Request, index| {
            if request.method != rsip::Method::Invite {
                return Vec::new();
            }
            vec![(
                index,
                respond(
                    request,
                    302,
                    "Moved Temporarily",
                    &[("Contact", contact(index))],
                ),
            )]
        }),
    )
}

#[test]
fn a_redirection_is_followed_to_the_callee() {
    let mut w = World::lan(22);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w.nodes.push(Box::new(redirect_server(|_| {
        "sip:bob@127.0.0.1:5062".to_owned()
    })));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[1].incoming(0).is_some()));
    let bob_call = w.uas[1].incoming(0).unwrap();
    match &w.uas[1].events_of(bob_call)[0] {
        CallEvent::Incoming {
            request_uri, to, ..
        } => {
            assert_eq!(request_uri, "sip:bob@127.0.0.1:5062");
            assert_eq!(to, "sip:bob@example.test", "To stays what the user dialled");
        }
        other => panic!("{other:?}"),
    }
    let invites: Vec<_> = w.log.iter().filter(|s| s.is_request("INVITE")).collect();
    assert_eq!(invites.len(), 2);
    assert!(invites[1].text.contains("CSeq: 2 INVITE"));
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .is_established(alice_call)));
    // The 302 was ACKed by the INVITE transaction.
    assert!(w
        .log
        .iter()
        .any(|s| s.is_request("ACK") && s.to == udp(5070)));
}

#[test]
fn a_redirection_loop_fails_the_call() {
    let mut w = World::lan(23);
    w.add_ua("alice", 5061);
    w.nodes.push(Box::new(redirect_server(|_| {
        "sip:loop@127.0.0.1:5070".to_owned()
    })));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_call)));
    assert_eq!(
        failure(&w, alice_call),
        (Some(302), FailureCause::Redirected)
    );
    assert_eq!(w.count(|s| s.is_request("INVITE")), 2);
}

#[test]
fn redirection_chains_are_bounded() {
    let mut w = World::lan(24);
    w.add_ua("alice", 5061);
    w.nodes.push(Box::new(redirect_server(|n| {
        format!("sip:hop{n}@127.0.0.1:5070")
    })));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_over(alice_call)));
    assert_eq!(
        failure(&w, alice_call),
        (Some(302), FailureCause::Redirected)
    );
    // The first INVITE and five redirections.
    assert_eq!(w.count(|s| s.is_request("INVITE")), 6);
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A parameter of a digest credentials value.
fn param<'a>(value: &'a str, name: &str) -> &'a str {
    value
        .trim_start_matches("Digest ")
        .split(',')
        .find_map(|p| {
            let (n, v) = p.trim().split_once('=')?;
            (n.trim() == name).then(|| v.trim().trim_matches('"'))
        })
        .unwrap_or_else(|| panic!("no {name} in {value}"))
}

/// Checks an MD5 qop=auth digest answer for alice/secret in realm "sim".
fn digest_is_right(request: &Request, header: &str) -> bool {
    let text = request.to_string();
    let Some(value) = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{header}: ")))
    else {
        return false;
    };
    let ha1 = md5_hex("alice:sim:secret");
    let ha2 = md5_hex(&format!("INVITE:{}", param(value, "uri")));
    let expected = md5_hex(&format!(
        "{ha1}:{}:{}:{}:auth:{ha2}",
        param(value, "nonce"),
        param(value, "nc"),
        param(value, "cnonce")
    ));
    param(value, "username") == "alice" && param(value, "response") == expected
}

/// The header a challenge of `code` (401 or 407) comes in, and the one that answers it.
fn challenge_headers(code: u16) -> (&'static str, &'static str) {
    if code == 401 {
        ("WWW-Authenticate", "Authorization")
    } else {
        ("Proxy-Authenticate", "Proxy-Authorization")
    }
}

/// A digest challenge of `code` (401 or 407) to `request`, the `index`th.
fn challenge(request: &Request, code: u16, index: usize) -> Response {
    let reason = if code == 401 {
        "Unauthorized"
    } else {
        "Proxy Authentication Required"
    };
    let challenge =
        format!("Digest realm=\"sim\", nonce=\"n{index}\", qop=\"auth\", algorithm=MD5");
    respond(
        request,
        code,
        reason,
        &[(challenge_headers(code).0, challenge)],
    )
}

/// A UAS that challenges each INVITE with `code` (401 or 407), `rounds` times, then answers
/// it (authorized, when it was challenged) with what `then` says.
fn challenging_then(
    code: u16,
    rounds: usize,
    then: impl Fn(&Request) -> Vec<Response> + 'static,
) -> ScriptedUas {
    ScriptedUas::new(
        5070,
        Box::new(move |request: &Request, index| {
            if request.method != rsip::Method::Invite {
                return Vec::new();
            }
            if index < rounds {
                return vec![(index, challenge(request, code, index))];
            }
            assert!(
                rounds == 0 || digest_is_right(request, challenge_headers(code).1),
                "{request}"
            );
            then(request).into_iter().map(|r| (index, r)).collect()
        }),
    )
}

/// A UAS that challenges with `code` (401 or 407), `rounds` times, then answers 180 and 486.
fn challenging_uas(code: u16, rounds: usize) -> ScriptedUas {
    challenging_then(code, rounds, |request| {
        vec![
            respond(request, 180, "Ringing", &[]),
            respond(request, 486, "Busy Here", &[]),
        ]
    })
}

/// A UAS that challenges `rounds` times with 401, then answers 200 with SDP (and allows
/// UPDATE).
fn answering_uas(rounds: usize) -> ScriptedUas {
    challenging_then(401, rounds, |request| {
        let mut ok = respond(
            request,
            200,
            "OK",
            &[
                ("Contact", "<sip:bob@127.0.0.1:5070>".to_owned()),
                ("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE".to_owned()),
                ("Content-Type", "application/sdp".to_owned()),
            ],
        );
        ok.headers
            .retain(|h| !matches!(h, rsip::Header::ContentLength(_)));
        ok.headers
            .push(rsip::headers::ContentLength::new(ANSWER.len().to_string()).into());
        ok.body = ANSWER.as_bytes().to_vec();
        vec![ok]
    })
}

fn call_with_credentials(w: &mut World) -> callisto_signaling::call::CallId {
    let now = w.now();
    let mut config = w.uas[0].call_config("sip:bob@example.test", udp(5070), OFFER);
    config.credentials = Some(Credentials::new("alice", "secret"));
    w.uas[0].endpoint.start_call(now, config)
}

#[test]
fn a_challenge_is_answered_once_with_digest_credentials() {
    for code in [401, 407] {
        let mut w = World::lan(25);
        w.add_ua("alice", 5061);
        w.nodes.push(Box::new(challenging_uas(code, 1)));
        let alice_call = call_with_credentials(&mut w);
        assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_over(alice_call)));
        // The challenge was answered: the authenticated INVITE rang, then got 486.
        assert!(w.uas[0].has(alice_call, |e| matches!(e, CallEvent::Ringing { .. })));
        assert_eq!(failure(&w, alice_call), (Some(486), FailureCause::Busy));
        let invites: Vec<_> = w.log.iter().filter(|s| s.is_request("INVITE")).collect();
        assert_eq!(invites.len(), 2, "{code}");
        assert!(invites[1].text.contains("CSeq: 2 INVITE"));
        let call_id = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("Call-ID"))
                .unwrap()
                .to_owned()
        };
        assert_eq!(call_id(&invites[0].text), call_id(&invites[1].text));
    }
}

#[test]
fn a_second_challenge_means_the_credentials_are_wrong() {
    let mut w = World::lan(26);
    w.add_ua("alice", 5061);
    w.nodes.push(Box::new(challenging_uas(401, usize::MAX)));
    let alice_call = call_with_credentials(&mut w);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_over(alice_call)));
    assert_eq!(
        failure(&w, alice_call),
        (Some(401), FailureCause::AuthenticationFailed)
    );
    assert_eq!(w.count(|s| s.is_request("INVITE")), 2);

    // Without credentials, the first challenge already fails the call.
    let mut w = World::lan(27);
    w.add_ua("alice", 5061);
    w.nodes.push(Box::new(challenging_uas(401, usize::MAX)));
    let alice_call = call_bob_through_5070(&mut w);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_over(alice_call)));
    assert_eq!(
        failure(&w, alice_call),
        (Some(401), FailureCause::AuthenticationFailed)
    );
    assert_eq!(w.count(|s| s.is_request("INVITE")), 1);
}

#[test]
fn a_focus_announces_itself_after_the_answer_only_when_the_answered_invite_did_not() {
    use callisto_signaling::conference_info::ConferenceInfo;
    let info = || ConferenceInfo {
        entity: "sip:alice@127.0.0.1:5061".into(),
        subject: None,
        users: Vec::new(),
    };
    // Challenged once: the INVITE sent again after alice became a focus says so, and the
    // answer to it needs no refresh. Not challenged: the INVITE went out before, so a
    // refresh (an UPDATE, which the callee allows) says so once the call is up.
    for (rounds, updates) in [(1, 0), (0, 1)] {
        let mut w = World::lan(29);
        w.add_ua("alice", 5061);
        w.nodes.push(Box::new(answering_uas(rounds)));
        let alice_call = call_with_credentials(&mut w);
        let now = w.now();
        w.uas[0]
            .endpoint
            .set_conference_info(now, alice_call, Some(info()))
            .unwrap();
        assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
            .is_established(alice_call)));
        w.run_for(Duration::from_secs(2));
        let invites: Vec<_> = w.log.iter().filter(|s| s.is_request("INVITE")).collect();
        assert_eq!(invites.len(), rounds + 1, "{rounds}");
        assert_eq!(
            invites[rounds].text.contains(";isfocus"),
            rounds > 0,
            "{}",
            invites[rounds].text
        );
        let sent_updates = w
            .log
            .iter()
            .filter(|s| s.is_request("UPDATE") && s.from == w.uas[0].addr)
            .map(|s| s.text.lines().find(|l| l.starts_with("CSeq")).unwrap_or(""))
            .collect::<std::collections::BTreeSet<_>>();
        assert_eq!(sent_updates.len(), updates, "{rounds}: {sent_updates:?}");
    }
}

#[test]
fn silence_fails_the_call_as_no_answer_after_timer_b() {
    let mut w = World::lan(28);
    w.add_ua("alice", 5061);
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@example.test", udp(5999), OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    let started = w.now();
    assert!(w.run_until(Duration::from_secs(40), |w| w.uas[0].is_over(alice_call)));
    assert_eq!(w.now() - started, Duration::from_secs(32));
    match w.uas[0].events_of(alice_call).last() {
        Some(CallEvent::Failed { code, cause, .. }) => {
            assert_eq!(*code, None);
            assert_eq!(cause.to_string(), "no answer from the network");
        }
        other => panic!("{other:?}"),
    }
    // INVITE retransmissions: 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert_eq!(w.count(|s| s.is_request("INVITE")), 7);
}

#[test]
fn a_failed_flow_fails_the_call_as_unreachable() {
    let mut w = World::lan(29);
    w.add_ua("alice", 5061);
    let now = w.now();
    let target = udp(5999);
    let config = w.uas[0].call_config("sip:bob@example.test", target, OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    w.uas[0].endpoint.handle_flow_failure(
        now,
        target,
        callisto_signaling::registration::FailureKind::Unreachable,
        "connection refused",
    );
    w.collect();
    assert_eq!(failure(&w, alice_call), (None, FailureCause::Unreachable));
}

/// Over a secure WebSocket, the answer's Contact says `transport=ws` (RFC 7118 §5.2 writes it
/// so for WSS too) at an address Callisto cannot connect to: the ACK and the BYE still go over
/// the flow to the server, with a WSS Via.
#[test]
fn in_dialog_requests_of_a_websocket_call_go_over_its_flow() {
    use callisto_signaling::transport::{Target, TransportKind};
    let mut w = World::lan(71);
    w.add_ua("alice", 5061);
    let server = Target::new(TransportKind::Wss, udp(5070).addr);
    let mut uas = ScriptedUas::new(
        5070,
        Box::new(|request: &Request, index| match request.method {
            rsip::Method::Invite => vec![(
                index,
                respond(
                    request,
                    200,
                    "OK",
                    &[("Contact", "<sip:bob@127.0.0.1:5090;transport=ws>".into())],
                ),
            )],
            rsip::Method::Bye => vec![(index, respond(request, 200, "OK", &[]))],
            _ => Vec::new(),
        }),
    );
    uas.addr = server;
    w.nodes.push(Box::new(uas));
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@example.test", server, "v=0\r\n");
    let call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_established(call)));
    let now = w.now();
    w.uas[0].endpoint.hang_up(now, call).unwrap();
    w.run_for(Duration::from_millis(200));
    for method in ["ACK", "BYE"] {
        let sent = w.log.iter().find(|s| s.is_request(method)).expect(method);
        assert_eq!(sent.to, server, "{method}: {}", sent.text);
        assert!(sent.text.contains("Via: SIP/2.0/WSS "), "{}", sent.text);
    }
}
