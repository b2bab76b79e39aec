//! The conference roster (RFC 4575 `conference` event package, RFC 4579 `isfocus`) in the
//! dialog of a call: alice hosts a conference, bob is in it through his call with her.

mod call_support;

use std::time::Duration;

use call_support::{sdp, World};
use callisto_signaling::call::{CallError, CallEvent, CallId};
use callisto_signaling::conference_info::{ConferenceInfo, ConferenceUser};

const OFFER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

const ALICE: usize = 0;
const BOB: usize = 1;

fn world() -> World {
    let mut w = World::lan(77);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w
}

fn user(entity: &str, display: &str) -> ConferenceUser {
    ConferenceUser {
        entity: entity.into(),
        display: Some(display.into()),
        status: Some("connected".into()),
        media: Vec::new(),
    }
}

/// Alice's conference with the given users.
fn roster(users: &[(&str, &str)]) -> ConferenceInfo {
    ConferenceInfo {
        entity: "sip:alice@127.0.0.1:5061".into(),
        subject: None,
        users: users.iter().map(|(e, d)| user(e, d)).collect(),
    }
}

/// The display names of every roster bob's call reported (`None` for an ended subscription).
fn rosters_seen(w: &World, call: CallId) -> Vec<Option<Vec<String>>> {
    w.uas[BOB]
        .events_of(call)
        .into_iter()
        .filter_map(|e| match e {
            CallEvent::Roster { info } => {
                Some(info.map(|i| i.users.iter().map(|u| u.name()).collect()))
            }
            _ => None,
        })
        .collect()
}

/// Bob calls alice; she answers, already hosting a conference when `focus` is given.
fn bob_calls_alice(w: &mut World, focus: Option<ConferenceInfo>) -> (CallId, CallId) {
    let now = w.now();
    let target = w.uas[ALICE].addr;
    let config = w.uas[BOB].call_config("sip:alice@127.0.0.1:5061", target, OFFER);
    let bob_alice = w.uas[BOB].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[ALICE]
        .incoming(0)
        .is_some()));
    let alice_bob = w.uas[ALICE].incoming(0).unwrap();
    let now = w.now();
    if let Some(info) = focus {
        w.uas[ALICE]
            .endpoint
            .set_conference_info(now, alice_bob, Some(info))
            .unwrap();
    }
    w.uas[ALICE]
        .endpoint
        .answer(now, alice_bob, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[ALICE]
        .is_established(alice_bob)
        && w.uas[BOB].is_established(bob_alice)));
    (alice_bob, bob_alice)
}

/// Bob's call to alice, who hosts a conference of herself alone, once bob has her roster.
fn alice_alone_and_bob_subscribed(w: &mut World) -> (CallId, CallId) {
    let calls = bob_calls_alice(w, Some(roster(&[("sip:alice@example.test", "Alice")])));
    assert!(
        w.run_until(Duration::from_secs(2), |w| !rosters_seen(w, calls.1)
            .is_empty())
    );
    calls
}

#[test]
fn a_participant_subscribes_to_its_focus_and_hears_every_change_of_the_roster() {
    let mut w = world();
    let first = roster(&[
        ("sip:alice@example.test", "Alice"),
        ("sip:bob@example.test", "Bob"),
    ]);
    let (alice_bob, bob_alice) = bob_calls_alice(&mut w, Some(first));
    let answer = w.log.iter().find(|s| s.is_response(200, "INVITE")).unwrap();
    assert!(answer.text.contains(";isfocus"), "{}", answer.text);

    assert!(
        w.run_until(Duration::from_secs(2), |w| !rosters_seen(w, bob_alice)
            .is_empty())
    );
    let subscribe = w.log.iter().find(|s| s.is_request("SUBSCRIBE")).unwrap();
    assert!(subscribe.text.contains("Event: conference"));
    assert!(subscribe
        .text
        .contains("Accept: application/conference-info+xml"));
    let notify = w.log.iter().find(|s| s.is_request("NOTIFY")).unwrap();
    assert!(notify
        .text
        .contains("Subscription-State: active;expires=600"));
    assert!(notify.text.contains("version=\"1\""));
    assert_eq!(
        rosters_seen(&w, bob_alice),
        vec![Some(vec!["Alice".to_owned(), "Bob".to_owned()])]
    );

    // Carol joins.
    let now = w.now();
    let second = roster(&[
        ("sip:alice@example.test", "Alice"),
        ("sip:bob@example.test", "Bob"),
        ("sip:carol@example.test", "Carol"),
    ]);
    w.uas[ALICE]
        .endpoint
        .set_conference_info(now, alice_bob, Some(second))
        .unwrap();
    assert!(
        w.run_until(Duration::from_secs(2), |w| rosters_seen(w, bob_alice).len()
            == 2)
    );
    assert_eq!(
        rosters_seen(&w, bob_alice)[1],
        Some(vec!["Alice".into(), "Bob".into(), "Carol".into()])
    );
    let last = w.log.iter().rev().find(|s| s.is_request("NOTIFY")).unwrap();
    assert!(last.text.contains("version=\"2\""));

    // Bob refreshes at 85 % of the 600 s granted; the same roster is not reported again.
    w.run_for(Duration::from_secs(530));
    assert_eq!(w.count(|s| s.is_request("SUBSCRIBE")), 2);
    assert_eq!(w.count(|s| s.is_response(200, "SUBSCRIBE")), 2);
    assert_eq!(rosters_seen(&w, bob_alice).len(), 2);
    let refreshed = w.log.iter().rev().find(|s| s.is_request("NOTIFY")).unwrap();
    assert!(refreshed.text.contains("version=\"3\""));

    // The conference ends while the call goes on: the subscription ends, and alice's Contact
    // loses isfocus in a session refresh.
    let now = w.now();
    w.uas[ALICE]
        .endpoint
        .set_conference_info(now, alice_bob, None)
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| {
        rosters_seen(w, bob_alice).len() == 3
    }));
    assert_eq!(rosters_seen(&w, bob_alice)[2], None);
    let last = w.log.iter().rev().find(|s| s.is_request("NOTIFY")).unwrap();
    assert!(last
        .text
        .contains("Subscription-State: terminated;reason=noresource"));
    w.run_for(Duration::from_secs(1));
    let refresh = w.log.iter().rev().find(|s| s.is_request("UPDATE")).unwrap();
    assert!(refresh
        .text
        .contains("Contact: <sip:alice@127.0.0.1:5061>\r\n"));
    assert!(!w.uas[ALICE].is_over(alice_bob) && !w.uas[BOB].is_over(bob_alice));
    // Bob does not subscribe again to a peer that is no longer a focus.
    w.run_for(Duration::from_secs(700));
    assert_eq!(w.count(|s| s.is_request("SUBSCRIBE")), 2);

    // Alice hosts again: she says so, and bob subscribes anew.
    let now = w.now();
    w.uas[ALICE]
        .endpoint
        .set_conference_info(
            now,
            alice_bob,
            Some(roster(&[("sip:dave@example.test", "Dave")])),
        )
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| {
        rosters_seen(w, bob_alice).len() == 4
    }));
    assert_eq!(w.count(|s| s.is_request("SUBSCRIBE")), 3);
    assert_eq!(
        rosters_seen(&w, bob_alice)[3],
        Some(vec!["Dave".to_owned()])
    );
}

#[test]
fn rosters_changing_quickly_are_notified_one_at_a_time_and_the_latest_wins() {
    let mut w = world();
    let (alice_bob, bob_alice) = alice_alone_and_bob_subscribed(&mut w);
    // The first NOTIFY's answer is back.
    w.run_for(Duration::from_secs(1));
    let notifies = w.count(|s| s.is_request("NOTIFY"));
    // Three changes at once (calls merged in one go): one NOTIFY goes, the last roster
    // follows when it is answered; none overtakes another.
    let now = w.now();
    for people in [
        vec![
            ("sip:alice@example.test", "Alice"),
            ("sip:bob@example.test", "Bob"),
        ],
        vec![
            ("sip:alice@example.test", "Alice"),
            ("sip:bob@example.test", "Bob"),
            ("sip:carol@example.test", "Carol"),
        ],
        vec![
            ("sip:alice@example.test", "Alice"),
            ("sip:bob@example.test", "Bob"),
            ("sip:carol@example.test", "Carol"),
            ("sip:dave@example.test", "Dave"),
        ],
    ] {
        w.uas[ALICE]
            .endpoint
            .set_conference_info(now, alice_bob, Some(roster(&people)))
            .unwrap();
    }
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.count(|s| s.is_request("NOTIFY")), notifies + 2);
    assert_eq!(w.count(|s| s.is_response(500, "NOTIFY")), 0);
    let last = w.log.iter().rev().find(|s| s.is_request("NOTIFY")).unwrap();
    assert!(last.text.contains("version=\"3\""), "{}", last.text);
    assert_eq!(
        rosters_seen(&w, bob_alice).last(),
        Some(&Some(vec![
            "Alice".to_owned(),
            "Bob".to_owned(),
            "Carol".to_owned(),
            "Dave".to_owned()
        ]))
    );
}

#[test]
fn a_call_merged_into_a_conference_announces_the_focus_and_gets_the_roster() {
    let mut w = world();
    let (alice_bob, bob_alice) = bob_calls_alice(&mut w, None);
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.count(|s| s.is_request("SUBSCRIBE")), 0);

    let now = w.now();
    w.uas[ALICE]
        .endpoint
        .set_conference_info(
            now,
            alice_bob,
            Some(roster(&[("sip:alice@example.test", "Alice")])),
        )
        .unwrap();
    assert!(
        w.run_until(Duration::from_secs(2), |w| !rosters_seen(w, bob_alice)
            .is_empty())
    );
    let update = w.log.iter().find(|s| s.is_request("UPDATE")).unwrap();
    assert!(update.text.contains(";isfocus"));
    assert_eq!(
        rosters_seen(&w, bob_alice),
        vec![Some(vec!["Alice".to_owned()])]
    );
    // The refresh was alice's own business: bob's application heard of no re-offer.
    assert!(!w.uas[BOB].has(bob_alice, |e| matches!(e, CallEvent::ReOffer { .. })));
}

#[test]
fn hold_pressed_while_the_focus_announces_itself_goes_out_after_the_announcement() {
    let mut w = world();
    let (alice_bob, bob_alice) = bob_calls_alice(&mut w, None);
    w.run_for(Duration::from_secs(1));
    let now = w.now();
    let endpoint = &mut w.uas[ALICE].endpoint;
    endpoint
        .set_conference_info(
            now,
            alice_bob,
            Some(roster(&[("sip:alice@example.test", "Alice")])),
        )
        .unwrap();
    // The announcing UPDATE is on its way; alice holds bob at that very moment.
    endpoint.reinvite(now, alice_bob, sdp("hold")).unwrap();
    // A second offer while the first still waits is refused, as any overlapping one.
    assert_eq!(
        endpoint.reinvite(now, alice_bob, sdp("again")),
        Err(CallError::ReInviteInProgress)
    );
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[BOB].has(
        bob_alice,
        |e| *e
            == CallEvent::ReOffer {
                body: Some(sdp("hold"))
            }
    )));
    let update = w.log.iter().position(|s| s.is_request("UPDATE")).unwrap();
    // The first INVITE is bob's call; the second is alice's hold.
    let reinvite = w
        .log
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_request("INVITE"))
        .nth(1)
        .unwrap()
        .0;
    assert!(
        update < reinvite,
        "the hold follows the announcement's answer"
    );
    let now = w.now();
    w.uas[BOB]
        .endpoint
        .answer_reoffer(now, bob_alice, Some(sdp("held")))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[ALICE].has(
        alice_bob,
        |e| *e
            == CallEvent::ReAnswer {
                body: Some(sdp("held"))
            }
    )));
    assert!(!w.uas[ALICE].has(alice_bob, |e| matches!(e, CallEvent::ReInviteFailed { .. })));
}

#[test]
fn a_subscription_left_unrefreshed_ends_on_both_sides() {
    let mut w = world();
    let (_alice_bob, bob_alice) = alice_alone_and_bob_subscribed(&mut w);
    // From now on bob's SUBSCRIBEs are lost.
    w.drop_rule = Some(Box::new(|s| s.is_request("SUBSCRIBE")));
    w.run_for(Duration::from_secs(650));
    // Bob's refresh went unanswered: his subscription is over, and so is alice's serving.
    assert_eq!(rosters_seen(&w, bob_alice).last(), Some(&None));
    let last = w.log.iter().rev().find(|s| s.is_request("NOTIFY")).unwrap();
    assert!(last
        .text
        .contains("Subscription-State: terminated;reason=timeout"));
    // Bob had already given up; he says so, and nothing is retried.
    assert_eq!(w.count(|s| s.is_response(481, "NOTIFY")), 1);
    let notifies = w.count(|s| s.is_request("NOTIFY"));
    w.run_for(Duration::from_secs(700));
    assert_eq!(w.count(|s| s.is_request("NOTIFY")), notifies);
}

/// The focus hangs up on a subscribed participant: the subscription ends with a final NOTIFY
/// (`noresource`) before the BYE, not silently, and nothing is NOTIFYed after the BYE.
#[test]
fn the_focus_hanging_up_ends_the_subscription_with_a_final_notify() {
    let mut w = world();
    let (alice_bob, bob_alice) = alice_alone_and_bob_subscribed(&mut w);
    let now = w.now();
    w.uas[ALICE].endpoint.hang_up(now, alice_bob).unwrap();
    w.run_for(Duration::from_secs(2));
    assert!(w.uas[BOB].is_over(bob_alice));
    let notify = w
        .log
        .iter()
        .rposition(|s| s.is_request("NOTIFY"))
        .expect("a NOTIFY");
    let bye = w
        .log
        .iter()
        .position(|s| s.is_request("BYE"))
        .expect("a BYE");
    assert!(notify < bye, "the final NOTIFY is sent before the BYE");
    assert!(w.log[notify]
        .text
        .contains("Subscription-State: terminated;reason=noresource"));
    assert_eq!(rosters_seen(&w, bob_alice).last(), Some(&None));
}
