//! Tests of the parse layer, the header accessors, and the response builders.

use rsip::prelude::UntypedHeader;
use rsip::{Header, SipMessage};

use super::*;
use crate::transport::TransportKind;

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

fn request(text: &str) -> rsip::Request {
    match parse(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn with_headers(headers: &str) -> String {
    format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\n{headers}Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

const BASIC: &str = "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n";

#[test]
fn typical_invite_parses_with_typed_access() {
    let req = request(INVITE);
    assert_eq!(req.method, rsip::Method::Invite);
    assert_eq!(req.body, b"v=0\n");
    let via = req.top_via().unwrap();
    assert_eq!(via.transport(), Some(TransportKind::Udp));
    assert_eq!(via.host, "pc33.atlanta.example.com");
    assert_eq!(via.port, Some(5060));
    assert_eq!(via.rport(), Some(None));
    assert_eq!(req.branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(
        req.call_id(),
        Some("a84b4c76e66710@pc33.atlanta.example.com")
    );
    let cseq = req.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (314159, "INVITE"));
    assert_eq!(req.from_tag(), Some("1928301774"));
    assert_eq!(req.to_tag(), None);
    assert_eq!(req.to_addr().unwrap().display_name, Some("Bob"));
    assert_eq!(req.contacts()[0].uri, "sip:alice@pc33.atlanta.example.com");
}

#[test]
fn every_compact_name_expands() {
    let cases = [
        ("a", "Accept-Contact"),
        ("b", "Referred-By"),
        ("c", "Content-Type"),
        ("d", "Request-Disposition"),
        ("e", "Content-Encoding"),
        ("f", "From"),
        ("i", "Call-ID"),
        ("j", "Reject-Contact"),
        ("k", "Supported"),
        ("l", "Content-Length"),
        ("m", "Contact"),
        ("n", "Identity-Info"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("s", "Subject"),
        ("t", "To"),
        ("u", "Allow-Events"),
        ("v", "Via"),
        ("x", "Session-Expires"),
        ("y", "Identity"),
    ];
    for (short, long) in cases {
        assert_eq!(expand_compact(short), long);
        assert_eq!(expand_compact(&short.to_uppercase()), long);
    }
    assert_eq!(expand_compact("z"), "z");
    assert_eq!(expand_compact("Via"), "Via");

    let text = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/TCP h.example.com;branch=z9hG4bKc\r\n\
f: <sip:a@example.com>;tag=9\r\nt: <sip:b@example.com>\r\ni: compact-1\r\n\
CSeq: 2 OPTIONS\r\nm: <sip:a@h.example.com>\r\nk: timer\r\ns: hi\r\n\
o: presence\r\nu: dialog\r\nr: <sip:c@example.com>\r\nb: <sip:d@example.com>\r\n\
x: 1800;refresher=uac\r\ny: abc\r\ne: gzip\r\nc: text/plain\r\nl: 2\r\n\r\nhi";
    let req = request(text);
    assert_eq!(req.call_id(), Some("compact-1"));
    assert_eq!(req.from_tag(), Some("9"));
    assert_eq!(req.branch(), Some("z9hG4bKc"));
    assert_eq!(req.contacts().len(), 1);
    assert_eq!(
        req.other_header("Session-Expires"),
        vec!["1800;refresher=uac"]
    );
    assert_eq!(req.other_header("refer-to"), vec!["<sip:c@example.com>"]);
    assert_eq!(req.other_header("Referred-By"), vec!["<sip:d@example.com>"]);
    assert_eq!(req.other_header("Allow-Events"), vec!["dialog"]);
    assert_eq!(req.other_header("Identity"), vec!["abc"]);
    assert!(req
        .headers
        .iter()
        .any(|h| matches!(h, Header::Event(e) if e.value() == "presence")));
    assert!(req
        .headers
        .iter()
        .any(|h| matches!(h, Header::Supported(_))));
    assert!(req.headers.iter().any(|h| matches!(h, Header::Subject(_))));
    assert!(req
        .headers
        .iter()
        .any(|h| matches!(h, Header::ContentEncoding(_))));
    assert!(req
        .headers
        .iter()
        .any(|h| matches!(h, Header::ContentType(_))));
    assert_eq!(req.body, b"hi");
}

#[test]
fn folded_lines_join_with_one_space() {
    let text = with_headers(&format!(
        "{BASIC}Subject: I know you're there,\r\n   pick up the phone\r\n\tand talk to me!\r\n"
    ));
    let req = request(&text);
    let subject = req
        .headers
        .iter()
        .find_map(|h| match h {
            Header::Subject(s) => Some(s.value().to_owned()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        subject,
        "I know you're there, pick up the phone and talk to me!"
    );
}

#[test]
fn comma_joined_lists_split_in_order() {
    let text = with_headers(
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070\r\n \
         ;branch=z9hG4bK2,SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK3\r\n\
         From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: \"Lee, Alice\" <sip:a@h1.example.com>;expires=60, sip:a@h2.example.com;q=0.5\r\n\
         Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\n\
         Record-Route: <sip:r1.example.com;lr>, <sip:r2.example.com;lr>, <sip:r3.example.com;lr>\r\n",
    );
    let req = request(&text);
    let vias = req.vias();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        vias.iter().map(|v| v.branch().unwrap()).collect::<Vec<_>>(),
        ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
    );
    assert_eq!(vias[1].port, Some(5070));
    assert_eq!(vias[2].host, "[2001:db8::1]");
    assert_eq!(vias[2].transport(), Some(TransportKind::Tls));
    let contacts = req.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].display_name, Some("Lee, Alice"));
    assert_eq!(contacts[0].expires(), Some(60));
    assert_eq!(contacts[1].uri, "sip:a@h2.example.com");
    assert_eq!(contacts[1].param("q"), Some(Some("0.5")));
    let count = |pred: fn(&Header) -> bool| req.headers.iter().filter(|h| pred(h)).count();
    assert_eq!(count(|h| matches!(h, Header::Via(_))), 3);
    assert_eq!(count(|h| matches!(h, Header::Contact(_))), 2);
    assert_eq!(count(|h| matches!(h, Header::Route(_))), 2);
    assert_eq!(count(|h| matches!(h, Header::RecordRoute(_))), 3);
    let rr: Vec<_> = req
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::RecordRoute(r) => Some(r.value().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(rr[2], "<sip:r3.example.com;lr>");
}

#[test]
fn commas_inside_quotes_and_brackets_do_not_split() {
    let items: Vec<_> =
        split_list(r#""a, \"b, c" <sip:x@y;p=1,2>;foo="1,2", <sip:z@w>,, sip:q@r"#).collect();
    assert_eq!(
        items,
        [
            r#""a, \"b, c" <sip:x@y;p=1,2>;foo="1,2""#,
            "<sip:z@w>",
            "sip:q@r"
        ]
    );
    let req = request(&with_headers(&format!(
        "{BASIC}Contact: \"Quote \\\" and, comma\" <sip:a@b.example.com>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1;expires=3600\r\n"
    )));
    let contacts = req.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].display_name, Some("Quote \\\" and, comma"));
    assert_eq!(
        contacts[0].sip_instance(),
        Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>")
    );
    assert_eq!(contacts[0].reg_id(), Some(1));
    assert_eq!(contacts[0].expires(), Some(3600));
    assert!(contacts[0].parsed_uri().is_some());
}

#[test]
fn wildcard_contact_stays_whole() {
    let req = request(&with_headers(&format!(
        "{BASIC}Contact: *\r\nExpires: 0\r\n"
    )));
    assert!(req.contact_is_wildcard());
    assert!(req.contacts().is_empty());
    assert_eq!(req.expires(), Some(0));
}

#[test]
fn header_names_are_case_insensitive_and_colon_spacing_is_free() {
    let text = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
VIA : SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\nfrom:<sip:a@example.com>;tag=1\r\n\
tO:\t<sip:b@example.com>\r\ncall-id:   ci\r\ncseq: 7 OPTIONS\r\nCONTENT-LENGTH: 0\r\n\r\n";
    let req = request(text);
    assert_eq!(req.branch(), Some("z9hG4bKx"));
    assert_eq!(req.call_id(), Some("ci"));
    assert_eq!(req.cseq().map(|c| c.seq), Some(7));
    assert_eq!(req.from_tag(), Some("1"));
}

#[test]
fn body_is_cut_to_content_length() {
    let mut datagram = INVITE.as_bytes().to_vec();
    datagram.extend_from_slice(b"trailing junk");
    let req = match parse(&datagram).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("request expected"),
    };
    assert_eq!(req.body, b"v=0\n");
    let short = INVITE.replace("Content-Length: 4", "Content-Length: 40");
    assert_eq!(
        parse(short.as_bytes()),
        Err(ParseError::ContentLengthMismatch {
            declared: 40,
            actual: 4
        })
    );
    let leading = format!("\r\n\r\n{INVITE}");
    assert!(parse(leading.as_bytes()).is_ok());
}

#[test]
fn responses_parse_with_accessors() {
    let text = "SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKr;received=192.0.2.4;rport=4000\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>;tag=srv\r\nCall-ID: r1\r\n\
CSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"example.com\", qop=\"auth,auth-int\", nonce=\"n\"\r\n\
WWW-Authenticate: Digest realm=\"example.com\", algorithm=SHA-256, nonce=\"n2\"\r\n\
Proxy-Authenticate: Digest realm=\"p\", nonce=\"m\"\r\n\
Min-Expires: 120\r\nRetry-After: 30 (busy);duration=60\r\nContent-Length: 0\r\n\r\n";
    let SipMessage::Response(resp) = parse(text.as_bytes()).unwrap() else {
        panic!("response expected");
    };
    assert_eq!(resp.status_code.code(), 401);
    let via = resp.top_via().unwrap();
    assert_eq!(via.received(), Some("192.0.2.4"));
    assert_eq!(via.rport(), Some(Some(4000)));
    assert_eq!(resp.to_tag(), Some("srv"));
    assert_eq!(resp.www_authenticate().len(), 2);
    assert!(resp.www_authenticate()[0].contains("qop=\"auth,auth-int\""));
    assert_eq!(
        resp.proxy_authenticate(),
        vec!["Digest realm=\"p\", nonce=\"m\""]
    );
    assert_eq!(resp.min_expires(), Some(120));
    assert_eq!(resp.retry_after(), Some(30));
    let odd = "SIP/2.0 299 Something New\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let SipMessage::Response(resp) = parse(odd.as_bytes()).unwrap() else {
        panic!("response expected");
    };
    assert_eq!(
        resp.status_code,
        rsip::StatusCode::Other(299, "Something New".into())
    );
}

#[test]
fn name_addr_forms() {
    let bare = NameAddr::parse("sip:alice@example.com;tag=abc;expires=30").unwrap();
    assert_eq!(bare.uri, "sip:alice@example.com");
    assert_eq!(bare.tag(), Some("abc"));
    assert_eq!(bare.expires(), Some(30));
    let named = NameAddr::parse("Alice Smith <sips:alice@example.com;transport=tls>").unwrap();
    assert_eq!(named.display_name, Some("Alice Smith"));
    assert_eq!(named.uri, "sips:alice@example.com;transport=tls");
    assert_eq!(named.tag(), None);
    assert!(NameAddr::parse("<sip:a@b").is_none());
    assert!(NameAddr::parse("\"unterminated <sip:a@b>").is_none());
    assert!(Via::parse("SIP / 2.0 / UDP first.example.com: 4000;ttl=16 ;maddr=224.2.0.1 ;branch=z9hG4bKa7c6a8dlze.1").is_some_and(|v| v.port == Some(4000) && v.branch() == Some("z9hG4bKa7c6a8dlze.1")));
    assert!(Via::parse("SIP/2.0/UDP").is_none());
    assert!(Via::parse("SIP/2.0/UDP host:notaport").is_none());
}

#[test]
fn structural_errors_are_named() {
    let cases: Vec<(String, ParseError)> = vec![
        (String::new(), ParseError::Empty),
        ("\r\n\r\n".into(), ParseError::Empty),
        (
            INVITE.replace("Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", ""),
            ParseError::MissingHeader("Call-ID"),
        ),
        (
            INVITE.replace("CSeq: 314159 INVITE\r\n", ""),
            ParseError::MissingHeader("CSeq"),
        ),
        (
            INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 ACK"),
            ParseError::CSeqMethodMismatch,
        ),
        (
            INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"),
            ParseError::BadVersion,
        ),
        (
            INVITE.replace("INVITE sip", "NEWMETHOD sip"),
            ParseError::UnknownMethod("NEWMETHOD".into()),
        ),
        (
            INVITE.replace(
                "INVITE sip:bob@biloxi.example.com SIP",
                "INVITE sip:bob@biloxi.example.com  SIP",
            ),
            ParseError::BadStartLine,
        ),
        (
            INVITE.replace("Max-Forwards: 70", "Max-Forwards 70"),
            ParseError::BadHeader {
                name: "Max-Forwards".into(),
            },
        ),
        (
            INVITE.replace("Content-Length: 4", "Content-Length: four"),
            ParseError::BadHeader {
                name: "Content-Length".into(),
            },
        ),
        (
            INVITE.replace("To: Bob", "To: Bob <sip:x@y>\r\nTo: Bob"),
            ParseError::DuplicateHeader("To"),
        ),
        (
            INVITE.replace("\r\n\r\n", "\r\n"),
            ParseError::UnterminatedHeaders,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text.as_bytes()), Err(expected), "{text:?}");
    }
    let mut not_utf8 = INVITE.as_bytes().to_vec();
    let at = INVITE.find("Bob").unwrap();
    not_utf8[at] = 0xff;
    assert_eq!(parse(&not_utf8), Err(ParseError::NotUtf8));
    assert!(matches!(
        parse(&vec![b'a'; MAX_MESSAGE_LEN + 1]),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn bad_request_copies_the_addressing_headers() {
    let text = INVITE
        .replace("Max-Forwards: 70", "Max-Forwards 70")
        .replace(
            "Via: SIP/2.0/UDP pc33",
            "v: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp, SIP/2.0/UDP pc33",
        );
    let err = parse(text.as_bytes()).unwrap_err();
    let reply = String::from_utf8(bad_request(text.as_bytes(), &err).unwrap()).unwrap();
    assert!(
        reply.starts_with("SIP/2.0 400 Bad Header Max-Forwards\r\n"),
        "{reply}"
    );
    let vias: Vec<_> = reply.lines().filter(|l| l.starts_with("Via: ")).collect();
    assert_eq!(
        vias,
        [
            "Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp",
            "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport"
        ]
    );
    assert!(reply.contains("\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"));
    assert!(reply.contains("\r\nTo: Bob <sip:bob@biloxi.example.com>;tag="));
    assert!(reply.contains("\r\nCall-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"));
    assert!(reply.contains("\r\nCSeq: 314159 INVITE\r\n"));
    assert!(reply.ends_with("Content-Length: 0\r\n\r\n"));
    // The reply itself parses, and the tag is stable across retransmissions.
    let parsed = parse(reply.as_bytes()).unwrap();
    assert!(parsed.is_response());
    assert_eq!(
        bad_request(text.as_bytes(), &err).unwrap(),
        reply.as_bytes()
    );

    let unknown = INVITE.replace("INVITE sip", "FOO sip");
    let err = parse(unknown.as_bytes()).unwrap_err();
    let reply = String::from_utf8(bad_request(unknown.as_bytes(), &err).unwrap()).unwrap();
    assert!(reply.starts_with("SIP/2.0 501 Unsupported Method FOO\r\n"));

    let no_call_id = INVITE.replace("Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", "");
    let err = parse(no_call_id.as_bytes()).unwrap_err();
    assert_eq!(bad_request(no_call_id.as_bytes(), &err), None);
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 9\r\n\r\n";
    let err = parse(response.as_bytes()).unwrap_err();
    assert_eq!(bad_request(response.as_bytes(), &err), None);
    let ack = INVITE
        .replace("INVITE sip", "ACK sip")
        .replace("Content-Length: 4", "Content-Length: 40");
    let err = parse(ack.as_bytes()).unwrap_err();
    assert_eq!(bad_request(ack.as_bytes(), &err), None);
}

#[test]
fn response_to_copies_headers_and_adds_a_to_tag() {
    let text = INVITE.replace(
        "Via: SIP/2.0/UDP pc33",
        "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\nVia: SIP/2.0/UDP pc33",
    );
    let req = request(&text);
    let ringing = response_to(&req, 180, "Ringing");
    assert_eq!(ringing.status_code.code(), 180);
    assert!(ringing.to_string().starts_with("SIP/2.0 180 Ringing\r\n"));
    assert_eq!(ringing.vias().len(), 2);
    assert_eq!(ringing.branch(), Some("z9hG4bKp"));
    assert_eq!(ringing.call_id(), req.call_id());
    assert_eq!(ringing.from_tag(), Some("1928301774"));
    let tag = ringing.to_tag().unwrap().to_owned();
    assert_eq!(response_to(&req, 200, "OK").to_tag(), Some(tag.as_str()));
    assert_eq!(
        ringing.cseq().map(|c| (c.seq, c.method)),
        Some((314159, "INVITE"))
    );
    assert!(ringing.body.is_empty());
    assert!(ringing
        .headers
        .iter()
        .any(|h| matches!(h, Header::ContentLength(l) if l.value() == "0")));
    assert_eq!(response_to(&req, 100, "Trying").to_tag(), None);
    // The built response survives a round trip through the parser.
    let wire = ringing.to_string();
    assert!(
        parse(wire.as_bytes()).is_ok_and(|m| m.is_response()),
        "{wire}"
    );
}
