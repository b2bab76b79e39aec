//! RFC 4475 torture messages that can be reproduced in text, and a seeded mutation test.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rsip::SipMessage;

use super::*;

/// RFC 4475 §3.1.1.1 "wsinv": a short tortuous INVITE (valid).
const WSINV: &str = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
MaX-fOrWaRdS: 0068\r\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\r\n\
Content-Length   : 150\r\n\
cseq: 0009\r\n  INVITE\r\n\
Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
s :\r\n\
NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n\
Content-Type: application/sdp\r\n\
Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n \
SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  \
secondparam ; q = 0.33\r\n\
\r\n\
v=0\r\n\
o=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n\
s=-\r\n\
c=IN IP4 192.0.2.4\r\n\
t=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\n\
m=video 3227 RTP/AVP 31\r\n\
a=rtpmap:31 LPC\r\n";

#[test]
fn rfc4475_wsinv_parses() {
    let SipMessage::Request(req) = parse(WSINV.as_bytes()).unwrap() else {
        panic!("request expected");
    };
    assert_eq!(req.body.len(), 150);
    assert_eq!(req.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(req.to_tag(), Some("1918181833n"));
    assert_eq!(req.from_tag(), Some("98asjd8"));
    let cseq = req.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, "INVITE"));
    let vias = req.vias();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].host, "spindle.example.com");
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    let contacts = req.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].uri, "sip:jdrosen@example.com");
    assert_eq!(contacts[0].param("q"), Some(Some("0.33")));
    assert_eq!(
        req.other_header("NewFangledHeader"),
        vec!["newfangled value continued newfangled value"]
    );
}

/// RFC 4475 §3.1.1.4 "esc02" style: escaped characters in URIs and display names (valid).
#[test]
fn rfc4475_valid_odd_forms_parse() {
    let base = |start: &str, extra: &str| {
        format!(
            "{start}\r\nTo: sip:user@example.com\r\nFrom: <sip:caller@example.net>;tag=938\r\n\
             Max-Forwards: 87\r\nCall-ID: odd.1@192.0.2.1\r\nCSeq: 1 OPTIONS\r\n\
             Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\r\n{extra}\
             Content-Length: 0\r\n\r\n"
        )
    };
    let valid = [
        // §3.1.1.5 lwsdisp: no LWS between display name and <.
        base(
            "OPTIONS sip:user@example.com SIP/2.0",
            "Contact: caller<sip:caller@example.com>;tag=323\r\n",
        ),
        // §3.1.1.6 longreq-like: a long header value.
        base(
            "OPTIONS sip:user@example.com SIP/2.0",
            &format!("X-Long: {}\r\n", "a".repeat(4000)),
        ),
        // §3.1.1.8 noreason: a response with no reason phrase (as a response start line).
        base("SIP/2.0 100 ", ""),
        // §3.1.1.10 semiuri: parameters on a bracket-less Contact.
        base(
            "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
            "Contact: sip:caller@host5.example.net;expires=100\r\n",
        ),
        // §3.1.1.13 unreason-like: an odd reason phrase.
        base("SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e}", ""),
        // §3.3.15 / escaped quotes in a display name.
        base(
            "OPTIONS sip:user@example.com SIP/2.0",
            "Contact: \"\\\"Alice\\\", the \\\\ boss\" <sip:a@example.com>\r\n",
        ),
    ];
    for text in valid {
        assert!(parse(text.as_bytes()).is_ok(), "{text}");
    }
}

/// RFC 4475 §3.1.2 invalid messages: each must be an error, never a panic.
#[test]
fn rfc4475_invalid_messages_are_errors() {
    let headers = "To: sip:j.user@example.com\r\nFrom: sip:caller@example.net;tag=134161461246\r\n\
                   Max-Forwards: 7\r\nCall-ID: bad.1@192.0.2.1\r\n\
                   Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw\r\n";
    let invalid = [
        // §3.1.2.1 badinv01: Content-Length larger than the body.
        format!("INVITE sip:user@example.com SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\nContent-Length: 9999\r\n\r\nv=0\r\n"),
        // §3.1.2.2 clerr-like: negative Content-Length.
        format!("INVITE sip:user@example.com SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\nContent-Length: -999\r\n\r\n"),
        // §3.1.2.4 scalarlg: CSeq number too large.
        format!("REGISTER sip:example.com SIP/2.0\r\n{headers}CSeq: 36893488147419103232 REGISTER\r\nContent-Length: 0\r\n\r\n"),
        // §3.1.2.6 quotbal: unterminated quote in a display name is caught by accessors;
        // a space inside the Request-URI breaks the request line.
        format!("INVITE sip:user@example.com; lr SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\nContent-Length: 0\r\n\r\n"),
        // §3.1.2.11 mcl01: multiple conflicting Content-Length values.
        format!("OPTIONS sip:user@example.com SIP/2.0\r\n{headers}CSeq: 8 OPTIONS\r\nContent-Length: 0\r\nContent-Length: 12\r\n\r\n"),
        // §3.1.2.12 bcast-like: missing SIP version.
        format!("OPTIONS sip:user@example.com\r\n{headers}CSeq: 8 OPTIONS\r\n\r\n"),
        // §3.1.2.15 ltgtruri: Request-URI in angle brackets.
        format!("INVITE <sip:user@example.com> SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\n\r\n"),
        // §3.1.2.16 lwsruri: LWS inside the Request-URI.
        format!("INVITE sip:user@example.com;lr=a b SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\n\r\n"),
        // §3.1.2.17 lwsstart: extra whitespace in the request line.
        format!("INVITE  sip:user@example.com  SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\n\r\n"),
        // §3.1.2.18 trws: trailing whitespace after the version.
        format!("OPTIONS sip:user@example.com SIP/2.0 \r\n{headers}CSeq: 8 OPTIONS\r\n\r\n"),
        // §3.1.2.19 escruri: escaped spaces are fine, but a raw NUL is not.
        format!("INVITE sip:user@example.com SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\nSubject: a\u{0}b\r\n\r\n"),
        // §3.2 mismatch01: CSeq method differs from the request method.
        format!("OPTIONS sip:user@example.com SIP/2.0\r\n{headers}CSeq: 8 INVITE\r\n\r\n"),
        // §3.3.13 / unknown version.
        format!("OPTIONS sip:user@example.com SIP/7.0\r\n{headers}CSeq: 8 OPTIONS\r\n\r\n"),
        // §3.1.2.10 response with a status code outside 100-699.
        format!("SIP/2.0 4294967301 better not break the receiver\r\n{headers}CSeq: 8 OPTIONS\r\n\r\n"),
        // Missing required header (To).
        "OPTIONS sip:u@example.com SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n".to_owned(),
    ];
    for text in invalid {
        assert!(parse(text.as_bytes()).is_err(), "{text}");
    }
}

#[test]
fn random_mutations_never_panic() {
    let seeds: Vec<Vec<u8>> = [WSINV, include_str!("torture_seed_invite.txt")]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5ee_d5e5);
    let mut parsed = 0;
    for round in 0..6000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        crate::sim::mutate(&mut rng, &mut bytes, crate::sim::SIP_ALPHABET);
        match parse(&bytes) {
            Ok(msg) => {
                parsed += 1;
                let _ = (msg.to_string(), rsip::SipMessage::clone(&msg));
                let _ = (msg.vias(), msg.contacts(), msg.cseq(), msg.to_tag());
                if let SipMessage::Request(req) = &msg {
                    let _ = response_to(req, 200, "OK");
                }
            }
            Err(err) => {
                let _ = bad_request(&bytes, &err);
            }
        }
    }
    // Mutations are small, so a fair share of messages still parse: the test exercises
    // both paths.
    assert!(parsed > 100, "only {parsed} mutated messages parsed");
}
