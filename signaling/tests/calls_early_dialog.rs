//! Requests in an early dialog (RFC 3311 §5.1, RFC 6086 §4.2.1) and peers that require
//! session timers (RFC 4028 §7.1).
//!
//! - While a call rings, either way: an UPDATE without a body (a PBX telling who is on the
//!   line) gets 200 with our Contact, an UPDATE with an offer 500 and `Retry-After`, an INFO
//!   200 with its body reported; none is refused 481, which would end the dialog for the
//!   peer, and the call is answered as usual afterwards.
//! - An INVITE, and a refresh, that carry `Require: timer` are served, not refused 420.
//! - The peer's offer while our session refresh by UPDATE (no body, so no offer) is out is
//!   answered, not refused 491.

mod call_support;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use call_support::{respond, sdp, udp, RawNode, World};
use callisto_signaling::call::{CallEvent, CallId};
use callisto_signaling::transaction::Transmit;
use rsip::Request;

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const DTMF: &str = "Signal=5\r\nDuration=160\r\n";

/// The raw peer's port and the endpoint's.
const RAW: u16 = 5061;
const UA: u16 = 5062;

type Outbox = Rc<RefCell<VecDeque<Transmit>>>;

fn send(outbox: &Outbox, text: &str) {
    outbox.borrow_mut().push_back(Transmit {
        target: udp(UA),
        bytes: text.replace('\n', "\r\n").into_bytes().into(),
    });
}

/// A request from the raw peer in the dialog `(from_tag, to_tag)` of Call-ID `call_id`, with
/// extra header lines and an optional body of `content_type`.
fn request(
    method: &str,
    seq: u32,
    (call_id, from_tag, to_tag): (&str, &str, Option<&str>),
    extra: &str,
    body: Option<(&str, &str)>,
) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let (content, body) = match body {
        Some((kind, text)) => (format!("Content-Type: {kind}\n"), text),
        None => (String::new(), ""),
    };
    format!(
        "{method} sip:bob@127.0.0.1:{UA} SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:{RAW};branch=z9hG4bK-early-{method}-{seq};rport\n\
         Max-Forwards: 70\n\
         From: <sip:raw@127.0.0.1:{RAW}>;tag={from_tag}\n\
         To: <sip:bob@127.0.0.1:{UA}>{to_tag}\n\
         Call-ID: {call_id}\n\
         CSeq: {seq} {method}\n\
         Contact: <sip:raw@127.0.0.1:{RAW}>\n\
         {extra}{content}Content-Length: {}\n\n{body}",
        body.len()
    )
}

/// The responses the endpoint sent to the raw peer for `method`: their start lines and texts.
fn answers(w: &World, method: &str) -> Vec<(String, String)> {
    w.log
        .iter()
        .filter(|s| s.to == udp(RAW) && s.line.starts_with("SIP/2.0 "))
        .filter(|s| {
            s.text
                .lines()
                .any(|l| l.starts_with("CSeq: ") && l.trim_end().ends_with(&format!(" {method}")))
        })
        .map(|s| (s.line.clone(), s.text.clone()))
        .collect()
}

fn tag_of(text: &str, header: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{header}: ")))
        .and_then(|v| v.split(";tag=").nth(1))
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
        .unwrap_or_default()
}

/// The endpoint `bob` and a raw caller whose INVITE (with `extra` header lines) reached him.
fn called(seed: u64, extra: &str) -> (World, Outbox, CallId) {
    let mut w = World::lan(seed);
    w.add_ua("bob", UA);
    let outbox = RawNode::join(&mut w, RAW);
    let ids = ("early-call", "raw-1", None);
    send(
        &outbox,
        &request("INVITE", 1, ids, extra, Some(("application/sdp", OFFER))),
    );
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].incoming(0).is_some()));
    let id = w.uas[0].incoming(0).unwrap();
    (w, outbox, id)
}

/// bob answers the raw caller's call `id`; the caller ACKs the 200. Returns the 200's text and
/// bob's tag.
fn answered(w: &mut World, outbox: &Outbox, id: CallId) -> (String, String) {
    let now = w.now();
    w.uas[0]
        .endpoint
        .answer(now, id, Some(sdp(ANSWER)))
        .unwrap();
    w.run_for(Duration::from_millis(50));
    let (_, ok) = answers(w, "INVITE")
        .into_iter()
        .find(|(line, _)| line.starts_with("SIP/2.0 200"))
        .expect("a 200");
    let bob = tag_of(&ok, "To");
    let ids = ("early-call", "raw-1", Some(bob.as_str()));
    send(outbox, &request("ACK", 1, ids, "", None));
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_established(id)));
    (ok, bob)
}

#[test]
fn update_and_info_while_the_callee_rings_are_answered_and_the_call_goes_on() {
    let (mut w, outbox, id) = called(61, "");
    let now = w.now();
    w.uas[0].endpoint.ring(now, id).unwrap();
    w.run_for(Duration::from_millis(50));
    let (_, ringing) = answers(&w, "INVITE")
        .into_iter()
        .find(|(line, _)| line.starts_with("SIP/2.0 180"))
        .expect("a 180");
    let bob = tag_of(&ringing, "To");
    let ids = ("early-call", "raw-1", Some(bob.as_str()));
    send(&outbox, &request("UPDATE", 2, ids, "", None));
    send(
        &outbox,
        &request("INFO", 3, ids, "", Some(("application/dtmf-relay", DTMF))),
    );
    send(
        &outbox,
        &request("UPDATE", 4, ids, "", Some(("application/sdp", OFFER))),
    );
    w.run_for(Duration::from_millis(100));
    let updates = answers(&w, "UPDATE");
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(updates[0].0.starts_with("SIP/2.0 200"), "{updates:?}");
    assert!(
        updates[0].1.contains("Contact: "),
        "a target refresh is answered with our Contact: {}",
        updates[0].1
    );
    assert!(updates[1].0.starts_with("SIP/2.0 500"), "{updates:?}");
    assert!(updates[1].1.contains("Retry-After: "), "{}", updates[1].1);
    let infos = answers(&w, "INFO");
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert!(infos[0].0.starts_with("SIP/2.0 200"), "{infos:?}");
    assert!(
        w.uas[0].events_of(id).iter().any(|e| matches!(
            e,
            CallEvent::Info { body } if body.content_type == "application/dtmf-relay"
        )),
        "{:?}",
        w.uas[0].events_of(id)
    );

    // Still ringing: bob answers and the call is confirmed as usual, in the same dialog.
    let (_, answered_by) = answered(&mut w, &outbox, id);
    assert_eq!(answered_by, bob);
}

#[test]
fn an_invite_and_a_refresh_that_require_timer_are_served() {
    let timer = "Supported: timer\nRequire: timer\nSession-Expires: 1800;refresher=uac\n";
    let (mut w, outbox, id) = called(62, timer);
    let refused = answers(&w, "INVITE");
    assert!(
        refused
            .iter()
            .all(|(line, _)| !line.starts_with("SIP/2.0 420")),
        "{refused:?}"
    );
    let (ok, bob) = answered(&mut w, &outbox, id);
    assert!(ok.contains("Session-Expires: 1800;refresher=uac"), "{ok}");
    assert!(ok.contains("Require: timer"), "{ok}");
    let ids = ("early-call", "raw-1", Some(bob.as_str()));

    // The caller refreshes before half the interval is over, requiring the extension again.
    w.run_for(Duration::from_secs(850));
    send(&outbox, &request("UPDATE", 2, ids, timer, None));
    w.run_for(Duration::from_millis(100));
    let refreshes = answers(&w, "UPDATE");
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert!(refreshes[0].0.starts_with("SIP/2.0 200"), "{refreshes:?}");
    assert!(
        refreshes[0]
            .1
            .contains("Session-Expires: 1800;refresher=uac"),
        "{}",
        refreshes[0].1
    );
    // Refreshed: bob does not end the call when the first interval would have run out.
    w.run_for(Duration::from_secs(1000));
    assert!(w.uas[0].is_established(id), "{:?}", w.uas[0].events_of(id));
}

#[test]
fn update_and_info_in_the_early_dialog_of_our_call_are_answered() {
    let mut w = World::lan(63);
    w.add_ua("alice", UA);
    let outbox = RawNode::join(&mut w, RAW);
    let now = w.now();
    let config = w.uas[0].call_config("sip:raw@127.0.0.1:5061", udp(RAW), OFFER);
    let call = w.uas[0].endpoint.start_call(now, config);
    w.run_for(Duration::from_millis(50));
    let invite = w
        .log
        .iter()
        .find(|s| s.is_request("INVITE"))
        .expect("alice's INVITE");
    let invite = Request::try_from(invite.text.as_str()).unwrap();
    let ringing = respond(
        &invite,
        180,
        "Ringing",
        &[("Contact", format!("<sip:raw@127.0.0.1:{RAW}>"))],
    );
    let callee = tag_of(&ringing.to_string(), "To");
    let alice = tag_of(&invite.to_string(), "From");
    outbox.borrow_mut().push_back(Transmit {
        target: udp(UA),
        bytes: ringing.to_string().into_bytes().into(),
    });
    w.run_for(Duration::from_millis(50));
    assert!(
        matches!(
            w.uas[0].events_of(call).first(),
            Some(CallEvent::Ringing { .. })
        ),
        "{:?}",
        w.uas[0].events_of(call)
    );
    let call_id = invite
        .to_string()
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: ").map(str::to_owned))
        .unwrap();
    // From the callee: its tag is From's, alice's is To's.
    let early = |method: &str, seq: u32, body: Option<(&str, &str)>| {
        request(method, seq, (&call_id, &callee, Some(&alice)), "", body)
            .replace(
                &format!("To: <sip:bob@127.0.0.1:{UA}>"),
                &format!("To: <sip:alice@127.0.0.1:{UA}>"),
            )
            .replace(
                &format!("{method} sip:bob@"),
                &format!("{method} sip:alice@"),
            )
    };
    send(&outbox, &early("UPDATE", 1, None));
    send(
        &outbox,
        &early("INFO", 2, Some(("application/dtmf-relay", DTMF))),
    );
    w.run_for(Duration::from_millis(100));
    let updates = answers(&w, "UPDATE");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0].0.starts_with("SIP/2.0 200"), "{updates:?}");
    let infos = answers(&w, "INFO");
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert!(infos[0].0.starts_with("SIP/2.0 200"), "{infos:?}");
    assert!(!w.uas[0].is_over(call), "{:?}", w.uas[0].events_of(call));
}

#[test]
fn the_peers_offer_while_our_bodiless_refresh_is_out_is_served_not_refused_491() {
    // bob refreshes (refresher=uas), by UPDATE since the caller allows it.
    let timer = "Supported: timer\nAllow: INVITE, ACK, CANCEL, BYE, UPDATE\n\
                 Session-Expires: 90;refresher=uas\n";
    let (mut w, outbox, id) = called(64, timer);
    let (ok, bob) = answered(&mut w, &outbox, id);
    assert!(ok.contains("refresher=uas"), "{ok}");
    let ids = ("early-call", "raw-1", Some(bob.as_str()));

    // At half the interval bob's UPDATE goes out; the caller leaves it unanswered a while and
    // puts bob on hold meanwhile.
    assert!(w.run_until(Duration::from_secs(50), |w| w
        .count(|s| s.is_request("UPDATE"))
        > 0));
    let update = w.log.iter().find(|s| s.is_request("UPDATE")).unwrap();
    assert!(!update.text.contains("Content-Type"), "{}", update.text);
    send(
        &outbox,
        &request("INVITE", 2, ids, "", Some(("application/sdp", OFFER))),
    );
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .has(id, |e| matches!(e, CallEvent::ReOffer { .. }))));
    let now = w.now();
    w.uas[0]
        .endpoint
        .answer_reoffer(now, id, Some(sdp(ANSWER)))
        .unwrap();
    w.run_for(Duration::from_millis(50));
    let reinvite: Vec<String> = answers(&w, "INVITE")
        .into_iter()
        .filter(|(_, text)| text.contains("CSeq: 2 INVITE"))
        .map(|(line, _)| line)
        .collect();
    assert_eq!(reinvite, vec!["SIP/2.0 200 OK".to_owned()]);
}
