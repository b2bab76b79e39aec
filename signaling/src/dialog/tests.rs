use super::*;
use crate::message;

fn request(text: &str) -> Request {
    match message::parse(text.as_bytes()) {
        Ok(rsip::SipMessage::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn response(text: &str) -> Response {
    match message::parse(text.as_bytes()) {
        Ok(rsip::SipMessage::Response(r)) => r,
        other => panic!("not a response: {other:?}"),
    }
}

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKinv1;rport\r\n\
    Max-Forwards: 70\r\n\
    Record-Route: <sip:p2.example.com;lr>\r\n\
    Record-Route: <sip:p1.example.com;lr>\r\n\
    From: \"Alice\" <sip:alice@atlanta.example.com>;tag=a1\r\n\
    To: Bob <sip:bob@biloxi.example.com>\r\n\
    Call-ID: call-1@192.0.2.1\r\n\
    CSeq: 314 INVITE\r\n\
    Contact: <sip:alice@192.0.2.1:5070>\r\n\
    Content-Length: 0\r\n\r\n";

fn ok_200(to_tag: &str, contact: &str) -> Response {
    response(&format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKinv1;rport=5070\r\n\
         Record-Route: <sip:p2.example.com;lr>\r\n\
         Record-Route: <sip:p1.example.com;lr>\r\n\
         From: \"Alice\" <sip:alice@atlanta.example.com>;tag=a1\r\n\
         To: Bob <sip:bob@biloxi.example.com>;tag={to_tag}\r\n\
         Call-ID: call-1@192.0.2.1\r\n\
         CSeq: 314 INVITE\r\n\
         Contact: <{contact}>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

fn header_values(request: &Request, name: &str) -> Vec<String> {
    request
        .to_string()
        .lines()
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_uac_reverses_record_route_and_targets_the_contact() {
    let invite = request(INVITE);
    let mut dialog = Dialog::new_uac(&invite, &ok_200("b1", "sip:bob@192.0.2.4:5080")).unwrap();
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(
        dialog.id(),
        &DialogId {
            call_id: "call-1@192.0.2.1".into(),
            local_tag: "a1".into(),
            remote_tag: "b1".into()
        }
    );
    assert_eq!(dialog.local_seq(), 314);
    assert_eq!(dialog.remote_target().to_string(), "sip:bob@192.0.2.4:5080");
    assert_eq!(dialog.next_hop().to_string(), "sip:p1.example.com;lr");

    let seq = dialog.next_seq();
    let bye = dialog.request(
        Method::Bye,
        seq,
        "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKbye1;rport",
        None,
    );
    assert_eq!(bye.uri.to_string(), "sip:bob@192.0.2.4:5080");
    assert_eq!(
        header_values(&bye, "Route"),
        vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(bye.cseq().map(|c| (c.seq, c.method)), Some((315, "BYE")));
    assert_eq!(bye.from_tag(), Some("a1"));
    assert_eq!(bye.to_tag(), Some("b1"));
    assert_eq!(
        bye.from_addr().and_then(|a| a.display_name),
        Some("Alice"),
        "the display name survives"
    );
    // The ACK for the 2xx reuses the INVITE's number, and leaves the counter alone.
    let ack = dialog.request(Method::Ack, 314, "SIP/2.0/UDP x;branch=z9hG4bKack", None);
    assert_eq!(ack.cseq().map(|c| c.seq), Some(314));
    assert_eq!(dialog.local_seq(), 315);
}

#[test]
fn the_uas_keeps_record_route_order_and_refuses_old_cseqs() {
    let invite = request(INVITE);
    let mut dialog = Dialog::new_uas(&invite, "b9").unwrap();
    assert_eq!(dialog.state(), DialogState::Early);
    assert_eq!(dialog.id().remote_tag, "a1");
    assert_eq!(dialog.remote_seq(), Some(314));
    assert_eq!(dialog.next_hop().to_string(), "sip:p2.example.com;lr");
    dialog.confirm();
    assert_eq!(dialog.state(), DialogState::Confirmed);

    let seq = dialog.next_seq();
    let bye = dialog.request(Method::Bye, seq, "SIP/2.0/UDP b;branch=z9hG4bKb", None);
    assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.1:5070");
    assert_eq!(bye.from_tag(), Some("b9"));
    assert_eq!(bye.to_tag(), Some("a1"));
    assert_eq!(
        header_values(&bye, "From"),
        vec!["\"Bob\" <sip:bob@biloxi.example.com>;tag=b9"]
    );

    let in_dialog = |seq: u32| {
        request(&format!(
            "BYE sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{seq}\r\n\
             From: <sip:alice@atlanta.example.com>;tag=a1\r\nTo: <sip:bob@biloxi.example.com>;tag=b9\r\n\
             Call-ID: call-1@192.0.2.1\r\nCSeq: {seq} BYE\r\nContent-Length: 0\r\n\r\n"
        ))
    };
    assert!(dialog.matches_request(&in_dialog(315)));
    assert_eq!(
        dialog.check_remote_seq(&in_dialog(313)),
        Err(DialogError::OutOfOrder {
            got: 313,
            last: 314
        })
    );
    assert!(dialog.check_remote_seq(&in_dialog(314)).is_err());
    assert_eq!(dialog.check_remote_seq(&in_dialog(320)), Ok(()));
    assert_eq!(dialog.remote_seq(), Some(320));
}

#[test]
fn a_strict_router_gets_the_request_uri_and_the_target_goes_last() {
    let invite = request(INVITE);
    let mut ok = ok_200("b1", "sip:bob@192.0.2.4:5080");
    ok.headers.retain(|h| !matches!(h, Header::RecordRoute(_)));
    ok.headers
        .push(rsip::headers::RecordRoute::new("<sip:strict.example.com>").into());
    let dialog = Dialog::new_uac(&invite, &ok).unwrap();
    let request = dialog.request(Method::Info, 400, "SIP/2.0/UDP a;branch=z9hG4bKi", None);
    assert_eq!(request.uri.to_string(), "sip:strict.example.com");
    assert_eq!(
        header_values(&request, "Route"),
        vec!["<sip:bob@192.0.2.4:5080>"]
    );
    assert_eq!(dialog.next_hop().to_string(), "sip:strict.example.com");
}

#[test]
fn target_refresh_replaces_the_remote_target() {
    let invite = request(INVITE);
    let mut dialog = Dialog::new_uac(&invite, &ok_200("b1", "sip:bob@192.0.2.4:5080")).unwrap();
    dialog.refresh_target(&ok_200("b1", "sip:bob@192.0.2.44:6000"));
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:bob@192.0.2.44:6000"
    );
    // A message without a usable Contact leaves it alone.
    let mut no_contact = ok_200("b1", "sip:x@y");
    no_contact
        .headers
        .retain(|h| !matches!(h, Header::Contact(_)));
    dialog.refresh_target(&no_contact);
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:bob@192.0.2.44:6000"
    );
}

#[test]
fn responses_without_a_to_tag_make_no_dialog() {
    let invite = request(INVITE);
    let mut ok = ok_200("b1", "sip:bob@192.0.2.4");
    ok.headers.retain(|h| !matches!(h, Header::To(_)));
    ok.headers
        .push(rsip::headers::To::new("<sip:bob@biloxi.example.com>").into());
    assert_eq!(
        Dialog::new_uac(&invite, &ok),
        Err(DialogError::MissingTag("To"))
    );
}

#[test]
fn early_dialogs_confirm_with_the_2xx_route_set() {
    let invite = request(INVITE);
    let mut ringing = ok_200("b1", "sip:bob@192.0.2.4");
    ringing.status_code = rsip::StatusCode::Other(180, "Ringing".into());
    ringing
        .headers
        .retain(|h| !matches!(h, Header::RecordRoute(_)));
    let mut dialog = Dialog::new_uac(&invite, &ringing).unwrap();
    assert_eq!(dialog.state(), DialogState::Early);
    assert!(dialog.route_set().is_empty());
    let ok = ok_200("b1", "sip:bob@192.0.2.5");
    assert!(dialog.matches_response(&ok));
    dialog.confirm_with(&ok);
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(dialog.route_set().len(), 2);
    assert_eq!(dialog.remote_target().to_string(), "sip:bob@192.0.2.5");
}

#[test]
fn tags_are_stripped_and_other_parameters_kept() {
    assert_eq!(
        without_tag("Bob <sip:bob@x>;tag=9;foo=bar"),
        "\"Bob\" <sip:bob@x>;foo=bar"
    );
    assert_eq!(without_tag("sip:bob@x;tag=1"), "<sip:bob@x>");
    assert_eq!(
        without_tag("\"A, B\" <sip:ab@x>;tag=1;p=\"a b\""),
        "\"A, B\" <sip:ab@x>;p=\"a b\""
    );
}
