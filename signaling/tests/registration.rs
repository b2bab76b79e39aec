//! The REGISTER client on its own, against a scripted registrar and a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callisto_signaling::auth::Credentials;
use callisto_signaling::message;
use callisto_signaling::registration::{
    FailureKind, Registration, RegistrationConfig, RegistrationEvent, RegistrationState,
};
use callisto_signaling::transport::TransportKind;

const NONCE_1: &str = "4f1c0a5e9b7d";
const NONCE_2: &str = "77aa01bb02cc";

fn config() -> RegistrationConfig {
    let aor = rsip::Uri::try_from("sip:alice@example.org").unwrap();
    let registrar = rsip::Uri::try_from("sip:example.org").unwrap();
    let local: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let mut config = RegistrationConfig::new(aor, registrar, local);
    config.credentials = Some(Credentials::new("alice", "secret"));
    config.expires = 60;
    config.retry_base = Duration::from_secs(2);
    config.retry_max = Duration::from_secs(60);
    config
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A response to `request` with the given status line and extra header lines.
fn respond(request: &rsip::Request, status: &str, extra: &[String]) -> rsip::Response {
    let text = request.to_string();
    let mut out = format!("SIP/2.0 {status}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        out.push_str(&format!("{name}: {}\r\n", header(&text, name).unwrap()));
    }
    out.push_str(&format!(
        "To: {};tag=reg1\r\n",
        header(&text, "To").unwrap()
    ));
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    match message::parse(out.as_bytes()).unwrap() {
        rsip::SipMessage::Response(response) => response,
        other => panic!("not a response: {other}"),
    }
}

fn challenge(nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!("WWW-Authenticate: Digest realm=\"example.org\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5{stale}")
}

fn ok(request: &rsip::Request, expires: u32) -> rsip::Response {
    let text = request.to_string();
    let contact = header(&text, "Contact").unwrap();
    let uri = &contact[..contact.find('>').unwrap() + 1];
    respond(
        request,
        "200 OK",
        &[format!("Contact: {uri};expires={expires}")],
    )
}

fn events(reg: &mut Registration) -> Vec<RegistrationEvent> {
    std::iter::from_fn(|| reg.poll_event()).collect()
}

/// Takes the request the registration wants to send.
fn take(reg: &mut Registration, now: Instant) -> rsip::Request {
    reg.poll_request(now).expect("a REGISTER to send")
}

/// Registers through one digest challenge; returns the time of success.
fn register_through_challenge(reg: &mut Registration, now: Instant) -> rsip::Request {
    reg.start(now);
    let first = take(reg, now);
    assert!(header(&first.to_string(), "Authorization").is_none());
    reg.handle_response(
        now,
        &respond(&first, "401 Unauthorized", &[challenge(NONCE_1, false)]),
    );
    let second = take(reg, now);
    reg.handle_response(now, &ok(&second, 60));
    second
}

#[test]
fn registers_through_a_digest_challenge_and_refreshes_before_expiry() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 7);
    let second = register_through_challenge(&mut reg, t0);
    let text = second.to_string();
    let auth = header(&text, "Authorization").unwrap();
    assert!(auth.starts_with("Digest "), "{auth}");
    assert!(auth.contains("username=\"alice\""), "{auth}");
    assert!(auth.contains(&format!("nonce=\"{NONCE_1}\"")), "{auth}");
    assert!(auth.contains("nc=00000001"), "{auth}");
    assert!(auth.contains("uri=\"sip:example.org\""), "{auth}");
    assert_eq!(
        events(&mut reg),
        vec![RegistrationEvent::Registered {
            expires: 60,
            contact: "sip:alice@127.0.0.1:5070".into()
        }]
    );
    assert_eq!(reg.state(), RegistrationState::Registered);

    // The refresh is due before 90 % of the granted minute has passed, and not long before.
    let wake = reg.poll_timeout().unwrap();
    let delay = wake - t0;
    assert!(delay <= Duration::from_secs(54), "{delay:?}");
    assert!(delay >= Duration::from_secs(45), "{delay:?}");
    assert!(reg.poll_request(t0 + Duration::from_secs(10)).is_none());
    reg.handle_timeout(wake);
    let refresh = take(&mut reg, wake);
    let refresh_text = refresh.to_string();
    // Same Call-ID, next CSeq, credentials from the cached challenge with the next nonce count.
    assert_eq!(header(&refresh_text, "Call-ID"), header(&text, "Call-ID"));
    assert_eq!(header(&refresh_text, "CSeq"), Some("3 REGISTER"));
    assert!(header(&refresh_text, "Authorization")
        .unwrap()
        .contains("nc=00000002"));
    reg.handle_response(wake, &ok(&refresh, 60));
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Registered { expires: 60, .. }]
    ));
}

#[test]
fn every_register_names_the_instance_and_asks_for_rport() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 1);
    reg.start(t0);
    let text = take(&mut reg, t0).to_string();
    let via = header(&text, "Via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK"),
        "{via}"
    );
    assert!(via.contains(";rport"), "{via}");
    let contact = header(&text, "Contact").unwrap();
    assert!(contact.contains("+sip.instance=\"<urn:uuid:"), "{contact}");
    assert!(contact.contains("reg-id=1"), "{contact}");
    assert_eq!(header(&text, "Expires"), Some("60"));
    assert_eq!(header(&text, "CSeq"), Some("1 REGISTER"));
}

/// A registrar's challenge (401, answered in Authorization) or a proxy's (407, answered in
/// Proxy-Authorization), refused again after the answer, is a failure for good.
#[test]
fn a_refused_password_fails_once_and_sends_nothing_more() {
    for (status, asks, answers, code) in [
        ("401 Unauthorized", "WWW-Authenticate", "Authorization", 401),
        (
            "407 Proxy Authentication Required",
            "Proxy-Authenticate",
            "Proxy-Authorization",
            407,
        ),
    ] {
        let challenge = |nonce: &str| challenge(nonce, false).replace("WWW-Authenticate", asks);
        let t0 = Instant::now();
        let mut reg = Registration::new(config(), 3);
        reg.start(t0);
        let first = take(&mut reg, t0);
        reg.handle_response(t0, &respond(&first, status, &[challenge(NONCE_1)]));
        let second = take(&mut reg, t0);
        let text = second.to_string();
        let answer = header(&text, answers).unwrap_or_else(|| panic!("{status}: {text}"));
        assert!(answer.contains(NONCE_1), "{answer}");
        let other = if code == 401 {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        assert!(header(&text, other).is_none(), "{status}: {text}");
        reg.handle_response(t0, &respond(&second, status, &[challenge(NONCE_2)]));
        let events = events(&mut reg);
        assert!(
            matches!(
                events.as_slice(),
                [RegistrationEvent::Failed {
                    kind: FailureKind::AuthenticationFailed,
                    code: Some(c),
                    retry_in: None,
                    ..
                }] if *c == code
            ),
            "{status}: {events:?}"
        );
        assert_eq!(reg.state(), RegistrationState::Failed);
        assert!(reg.poll_request(t0).is_none());
        assert!(
            reg.poll_timeout().is_none(),
            "no retry after an authentication failure"
        );
    }
}

#[test]
fn a_stale_nonce_is_answered_again_with_the_new_nonce() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 4);
    reg.start(t0);
    let first = take(&mut reg, t0);
    reg.handle_response(
        t0,
        &respond(&first, "401 Unauthorized", &[challenge(NONCE_1, false)]),
    );
    let second = take(&mut reg, t0);
    reg.handle_response(
        t0,
        &respond(&second, "401 Unauthorized", &[challenge(NONCE_2, true)]),
    );
    let third = take(&mut reg, t0);
    let auth = header(&third.to_string(), "Authorization")
        .unwrap()
        .to_string();
    assert!(auth.contains(NONCE_2), "{auth}");
    assert!(
        auth.contains("nc=00000001"),
        "a new nonce restarts the count: {auth}"
    );
    reg.handle_response(t0, &ok(&third, 60));
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Registered { .. }]
    ));
}

/// A proxy that asks (407) and then the registrar behind it (401), each for its own realm:
/// both are answered, and the proxy's credentials stay in the request that answers the
/// registrar (RFC 3261 §22.3), where the second challenge was taken for a wrong password.
#[test]
fn a_proxy_challenge_and_then_the_registrars_are_both_answered() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 14);
    reg.start(t0);
    let first = take(&mut reg, t0);
    let proxy = "Proxy-Authenticate: Digest realm=\"proxy.example.org\", nonce=\"p1\", \
                 qop=\"auth\", algorithm=MD5"
        .to_owned();
    reg.handle_response(
        t0,
        &respond(&first, "407 Proxy Authentication Required", &[proxy]),
    );
    let second = take(&mut reg, t0);
    let text = second.to_string();
    assert!(header(&text, "Proxy-Authorization").is_some(), "{text}");
    assert!(header(&text, "Authorization").is_none(), "{text}");
    reg.handle_response(
        t0,
        &respond(&second, "401 Unauthorized", &[challenge(NONCE_1, false)]),
    );
    assert_eq!(events(&mut reg), vec![], "not a wrong password");
    let third = take(&mut reg, t0);
    let text = third.to_string();
    let proxy_auth = header(&text, "Proxy-Authorization").expect("the proxy's credentials");
    assert!(
        proxy_auth.contains("realm=\"proxy.example.org\""),
        "{proxy_auth}"
    );
    let auth = header(&text, "Authorization").expect("the registrar's credentials");
    assert!(auth.contains(NONCE_1), "{auth}");
    reg.handle_response(t0, &ok(&third, 60));
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Registered { .. }]
    ));
}

/// A server that calls every nonce stale is answered a few times, then given up on, not
/// answered forever.
#[test]
fn a_server_that_calls_every_nonce_stale_is_given_up_on() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 15);
    reg.start(t0);
    let mut request = take(&mut reg, t0);
    reg.handle_response(
        t0,
        &respond(&request, "401 Unauthorized", &[challenge(NONCE_1, false)]),
    );
    let mut answered = 0;
    while let Some(next) = reg.poll_request(t0) {
        answered += 1;
        assert!(answered <= 10, "still answering");
        request = next;
        let nonce = format!("stale{answered}");
        reg.handle_response(
            t0,
            &respond(&request, "401 Unauthorized", &[challenge(&nonce, true)]),
        );
    }
    assert_eq!(answered, 4, "the first answer and three stale ones");
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Failed {
            kind: FailureKind::AuthenticationFailed,
            ..
        }]
    ));
}

#[test]
fn a_refresh_refused_with_an_old_nonce_is_retried_with_the_new_challenge() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 5);
    register_through_challenge(&mut reg, t0);
    events(&mut reg);
    let wake = reg.poll_timeout().unwrap();
    reg.handle_timeout(wake);
    let refresh = take(&mut reg, wake);
    // The registrar restarted and forgot its nonces: a plain 401 without stale.
    reg.handle_response(
        wake,
        &respond(&refresh, "401 Unauthorized", &[challenge(NONCE_2, false)]),
    );
    let retry = take(&mut reg, wake);
    assert!(header(&retry.to_string(), "Authorization")
        .unwrap()
        .contains(NONCE_2));
    reg.handle_response(wake, &ok(&retry, 60));
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Registered { .. }]
    ));
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 6);
    reg.start(t0);
    let first = take(&mut reg, t0);
    reg.handle_response(
        t0,
        &respond(
            &first,
            "423 Interval Too Brief",
            &["Min-Expires: 120".into()],
        ),
    );
    let second = take(&mut reg, t0);
    let text = second.to_string();
    assert_eq!(header(&text, "Expires"), Some("120"));
    assert!(header(&text, "Contact").unwrap().contains("expires=120"));
    reg.handle_response(t0, &ok(&second, 120));
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Registered { expires: 120, .. }]
    ));
}

#[test]
fn forbidden_and_not_found_are_final_and_reported_with_their_code() {
    for (status, code) in [("403 Forbidden", 403), ("404 Not Found", 404)] {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(), 8);
        reg.start(t0);
        let first = take(&mut reg, t0);
        reg.handle_response(t0, &respond(&first, status, &[]));
        let events = events(&mut reg);
        assert!(
            matches!(
                events.as_slice(),
                [RegistrationEvent::Failed {
                    kind: FailureKind::Rejected,
                    code: Some(c),
                    retry_in: None,
                    ..
                }] if *c == code
            ),
            "{status}: {events:?}"
        );
        assert!(
            reg.poll_timeout().is_none(),
            "{status}: nothing more is sent"
        );
    }
}

/// RFC 3261 §10.2.4: the time granted is the Contact's `expires` parameter, else the
/// response's Expires header; the refresh follows it.
#[test]
fn without_an_expires_parameter_the_expires_header_grants_the_time() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 8);
    reg.start(t0);
    let first = take(&mut reg, t0);
    let text = first.to_string();
    let contact = header(&text, "Contact").unwrap();
    let uri = &contact[..contact.find('>').unwrap() + 1];
    reg.handle_response(
        t0,
        &respond(
            &first,
            "200 OK",
            &[format!("Contact: {uri}"), "Expires: 200".to_string()],
        ),
    );
    assert!(
        matches!(
            events(&mut reg).as_slice(),
            [RegistrationEvent::Registered { expires: 200, .. }]
        ),
        "the header's 200 s"
    );
    let refresh = reg.poll_timeout().expect("a refresh is due");
    let due = refresh - t0;
    assert!(
        (Duration::from_secs(150)..Duration::from_secs(190)).contains(&due),
        "the refresh {due:?} into a 200 s binding"
    );
}

#[test]
fn service_unavailable_honours_retry_after() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 9);
    reg.start(t0);
    let first = take(&mut reg, t0);
    reg.handle_response(
        t0,
        &respond(
            &first,
            "503 Service Unavailable",
            &["Retry-After: 7".into()],
        ),
    );
    let events = events(&mut reg);
    assert!(
        matches!(
            events.as_slice(),
            [RegistrationEvent::Failed { kind: FailureKind::ServerError, code: Some(503), retry_in: Some(d), .. }] if *d == Duration::from_secs(7)
        ),
        "{events:?}"
    );
    assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(7)));
    assert!(reg.poll_request(t0 + Duration::from_secs(6)).is_none());
    reg.handle_timeout(t0 + Duration::from_secs(7));
    assert!(reg.poll_request(t0 + Duration::from_secs(7)).is_some());
}

#[test]
fn timeouts_back_off_exponentially_within_bounds() {
    let mut now = Instant::now();
    let mut reg = Registration::new(config(), 10);
    reg.start(now);
    let base = Duration::from_secs(2);
    for failure in 0..8u32 {
        take(&mut reg, now);
        reg.handle_failure(now, FailureKind::Unreachable, "no answer");
        let events = events(&mut reg);
        let [RegistrationEvent::Failed {
            kind: FailureKind::Unreachable,
            retry_in: Some(delay),
            ..
        }] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        let full = (base * 2u32.pow(failure)).min(Duration::from_secs(60));
        assert!(
            *delay <= full && *delay >= full / 2,
            "failure {failure}: {delay:?} vs {full:?}"
        );
        now = reg.poll_timeout().unwrap();
        reg.handle_timeout(now);
    }
}

#[test]
fn unregister_sends_expires_zero_and_reports() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 11);
    register_through_challenge(&mut reg, t0);
    events(&mut reg);
    reg.unregister(t0);
    let request = take(&mut reg, t0);
    let text = request.to_string();
    assert_eq!(header(&text, "Expires"), Some("0"));
    assert!(header(&text, "Contact").unwrap().ends_with("expires=0"));
    assert!(
        header(&text, "Authorization").is_some(),
        "cached credentials go along"
    );
    reg.handle_response(t0, &respond(&request, "200 OK", &[]));
    assert_eq!(events(&mut reg), vec![RegistrationEvent::Unregistered]);
    assert_eq!(reg.state(), RegistrationState::Unregistered);
    assert!(reg.poll_timeout().is_none());
}

/// Asked to unregister while a refresh is unanswered: whatever that refresh gets (a 200 that
/// keeps the binding, or no answer at all), the `Expires: 0` REGISTER goes out next, and only
/// its answer ends the registration — no new binding is asked for afterwards.
#[test]
fn unregistering_during_a_refresh_removes_the_binding_the_refresh_may_have_kept() {
    for refresh_answered in [true, false] {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(), 13);
        register_through_challenge(&mut reg, t0);
        events(&mut reg);
        let wake = reg.poll_timeout().unwrap();
        reg.handle_timeout(wake);
        let refresh = take(&mut reg, wake);
        assert_ne!(header(&refresh.to_string(), "Expires"), Some("0"));
        reg.unregister(wake);
        assert!(reg.poll_request(wake).is_none(), "one request at a time");
        if refresh_answered {
            reg.handle_response(wake, &ok(&refresh, 60));
        } else {
            reg.handle_failure(wake, FailureKind::Unreachable, "no answer");
        }
        assert_eq!(events(&mut reg), vec![], "not unregistered yet");
        let unregister = take(&mut reg, wake);
        let text = unregister.to_string();
        assert_eq!(header(&text, "Expires"), Some("0"), "{text}");
        reg.handle_response(wake, &respond(&unregister, "200 OK", &[]));
        assert_eq!(events(&mut reg), vec![RegistrationEvent::Unregistered]);
        assert_eq!(reg.state(), RegistrationState::Unregistered);
        assert!(
            reg.poll_request(wake).is_none(),
            "nothing after the unregister"
        );
        assert!(reg.poll_timeout().is_none());
    }
}

#[test]
fn a_nat_mapping_seen_in_via_rewrites_the_contact() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), 12);
    reg.start(t0);
    let first = take(&mut reg, t0);
    let text = first.to_string();
    let via = header(&text, "Via")
        .unwrap()
        .replace(";rport", ";rport=40000;received=203.0.113.5");
    let mut response = format!("SIP/2.0 200 OK\r\nVia: {via}\r\n");
    for name in ["From", "To", "Call-ID", "CSeq"] {
        response.push_str(&format!("{name}: {}\r\n", header(&text, name).unwrap()));
    }
    response
        .push_str("Contact: <sip:alice@127.0.0.1:5070>;expires=60\r\nContent-Length: 0\r\n\r\n");
    let rsip::SipMessage::Response(response) = message::parse(response.as_bytes()).unwrap() else {
        panic!()
    };
    reg.handle_response(t0, &response);
    assert!(
        events(&mut reg).is_empty(),
        "not registered until the public contact is"
    );
    let second = take(&mut reg, t0);
    let contacts = header(&second.to_string(), "Contact").unwrap().to_string();
    assert!(
        contacts.starts_with("<sip:alice@203.0.113.5:40000>"),
        "{contacts}"
    );
    assert!(
        contacts.contains("<sip:alice@127.0.0.1:5070>;expires=0"),
        "{contacts}"
    );
    reg.handle_response(t0, &ok(&second, 60));
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Registered { contact, .. }] if contact == "sip:alice@203.0.113.5:40000"
    ));
}

#[test]
fn connection_oriented_transports_say_so_in_via_and_contact() {
    let t0 = Instant::now();
    let mut config = config();
    config.transport = TransportKind::Tcp;
    let mut reg = Registration::new(config, 13);
    reg.start(t0);
    let text = take(&mut reg, t0).to_string();
    assert!(header(&text, "Via").unwrap().starts_with("SIP/2.0/TCP "));
    assert!(header(&text, "Contact")
        .unwrap()
        .contains(";transport=tcp>"));
}

#[test]
fn websocket_registrations_name_an_invalid_host_with_transport_ws() {
    use callisto_signaling::transport::websocket_contact_host;
    let t0 = Instant::now();
    for (kind, token) in [(TransportKind::Ws, "WS"), (TransportKind::Wss, "WSS")] {
        let mut config = config();
        config.transport = kind;
        let host = websocket_contact_host(7);
        config.contact_host = Some(host.clone());
        let mut reg = Registration::new(config, 15);
        reg.start(t0);
        let first = take(&mut reg, t0);
        let text = first.to_string();
        let via = header(&text, "Via").unwrap();
        assert!(
            via.starts_with(&format!("SIP/2.0/{token} {host};branch=")),
            "{via}"
        );
        let contact = header(&text, "Contact").unwrap();
        // RFC 7118 §8.1: `sip:` and `transport=ws`, over WSS as well.
        assert!(
            contact.starts_with(&format!("<sip:alice@{host};transport=ws>")),
            "{contact}"
        );
        assert!(contact.contains("+sip.instance="), "{contact}");
        reg.handle_response(
            t0,
            &respond(&first, "401 Unauthorized", &[challenge(NONCE_1, false)]),
        );
        let second = take(&mut reg, t0);
        // A registrar behind a connection answers with received/rport of that connection;
        // the Contact stays the .invalid one (the connection is how we are reached).
        let mut response = ok(&second, 300);
        let via = format!(
            "{};received=192.0.2.1;rport=61000",
            header(&second.to_string(), "Via").unwrap()
        );
        response
            .headers
            .retain(|h| !matches!(h, rsip::Header::Via(_)));
        response
            .headers
            .push(<rsip::headers::Via as rsip::headers::UntypedHeader>::new(via).into());
        reg.handle_response(t0, &response);
        assert!(
            reg.poll_request(t0).is_none(),
            "no Contact rewrite over a connection"
        );
        assert_eq!(
            events(&mut reg),
            vec![RegistrationEvent::Registered {
                expires: 300,
                contact: format!("sip:alice@{host};transport=ws"),
            }]
        );
    }
}

#[test]
fn a_dropped_connection_re_registers_at_once_but_a_refused_one_backs_off() {
    let t0 = Instant::now();
    let mut config = config();
    config.transport = TransportKind::Tcp;
    let mut reg = Registration::new(config, 14);
    register_through_challenge(&mut reg, t0);
    events(&mut reg);
    // The binding's connection closed: register again without waiting for the refresh.
    reg.handle_flow_failure(t0);
    take(&mut reg, t0);
    // The server refuses the new connection: the failure waits out its backoff...
    reg.handle_failure(t0, FailureKind::Unreachable, "connection refused");
    assert!(matches!(
        events(&mut reg).as_slice(),
        [RegistrationEvent::Failed {
            retry_in: Some(_),
            ..
        }]
    ));
    // ...and a further connection failure does not cut it short.
    reg.handle_flow_failure(t0);
    assert!(reg.poll_request(t0).is_none());
    let retry_at = reg.poll_timeout().unwrap();
    assert!(retry_at > t0);
    reg.handle_timeout(retry_at);
    assert!(reg.poll_request(retry_at).is_some());
}
