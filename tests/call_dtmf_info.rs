//! In-dialog requests with a scripted classic peer. DTMF as SIP INFO (`application/dtmf-relay`),
//! with a peer whose SDP has no `telephone-event`: a scripted user agent answers `callisto call
//! --dtmf` and receives the digits as INFO requests, and calls `callisto answer` and sends it
//! digits as INFO requests, which Callisto reports as `dtmf` events. And a hold the peer
//! refuses: Callisto reports the refusal with the peer's `Warning` and the call goes on as it
//! was. Direct calls on loopback, no registrar.

mod support;

use std::error::Error;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use support::callisto::Callisto;
use support::sip_uas::{ScriptedUas, SipMessage};

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(5);

/// A classic PCMU description with no `telephone-event`, its media at `rtp_port` (a socket the
/// test holds, so what Callisto sends lands somewhere).
fn pcmu_only(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// The `Signal=` value of a dtmf-relay body.
fn signal(info: &SipMessage) -> Option<String> {
    info.body().lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("signal")
            .then(|| value.trim().to_owned())
    })
}

/// `callisto call` with `args` (and PCMU in the clear) to a scripted bob, who checks the offer
/// with `check_offer` and answers with PCMU at `media`; returns both once the call is answered.
fn call_scripted_bob(
    dir: &Path,
    media: &UdpSocket,
    args: &[&str],
    check_offer: impl FnOnce(&str),
) -> Result<(ScriptedUas, Callisto), Box<dyn Error>> {
    let answer = pcmu_only(media.local_addr()?.port());
    let mut bob = ScriptedUas::bind("bob", 0)?;
    let uri = format!("sip:bob@127.0.0.1:{}", bob.local_port()?);
    let mut all_args = vec!["--codecs", "pcmu", "--srtp", "off"];
    all_args.extend_from_slice(args);
    let mut alice = Callisto::call(dir, &uri, &all_args)?;
    bob.accept_call(WAIT, |offer| {
        check_offer(offer);
        answer
    })?;
    alice.expect("answered", WAIT)?;
    Ok((bob, alice))
}

#[test]
fn digits_go_as_info_when_the_peer_has_no_telephone_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let media = UdpSocket::bind("127.0.0.1:0")?;
    let (mut bob, mut alice) = call_scripted_bob(
        dir.path(),
        &media,
        &["--dtmf", "19#", "--duration", "3"],
        |offer| assert!(offer.contains("telephone-event"), "{offer}"),
    )?;

    // One INFO per digit, in CSeq order; each is answered, a retransmission again (it is the
    // same request: same CSeq) without counting its digit twice.
    let mut digits = String::new();
    let mut cseqs: Vec<u32> = Vec::new();
    let deadline = Instant::now() + WAIT;
    while digits.len() < 3 && Instant::now() < deadline {
        let Ok(info) = bob.receive(Duration::from_millis(500), |m| m.method() == Some("INFO"))
        else {
            continue;
        };
        assert_eq!(
            info.header("Content-Type").map(str::to_ascii_lowercase),
            Some("application/dtmf-relay".to_owned()),
            "{}",
            info.start_line()
        );
        let cseq = info
            .header("CSeq")
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .ok_or("an INFO without a CSeq number")?;
        bob.respond(&info, "200 OK")?;
        if !cseqs.contains(&cseq) {
            cseqs.push(cseq);
            digits.push_str(&signal(&info).ok_or("an INFO without Signal=")?);
        }
    }
    assert_eq!(digits, "19#", "INFO CSeqs {cseqs:?}");
    assert!(
        cseqs.windows(2).all(|w| w[0] < w[1]),
        "CSeqs in order: {cseqs:?}"
    );

    bob.accept_bye(WAIT)?;
    let ended = alice.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "local", "{ended}");
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    Ok(())
}

#[test]
fn digits_that_come_as_info_are_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = support::free_port();
    let mut bob = Callisto::answer(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &["--codecs", "pcmu", "--srtp", "off", "--count", "1"],
    )?;
    bob.expect("listening", WAIT)?;
    let media = UdpSocket::bind("127.0.0.1:0")?;
    let mut alice = ScriptedUas::bind("alice", port)?;
    let call = alice.place_call(
        &format!("sip:bob@127.0.0.1:{port}"),
        &pcmu_only(media.local_addr()?.port()),
        WAIT,
    )?;
    bob.expect("answered", WAIT)?;

    for digit in ["7", "*"] {
        let body = format!("Signal={digit}\r\nDuration=160\r\n");
        let reply = alice.request_in_dialog(
            &call,
            "INFO",
            Some(("application/dtmf-relay", &body)),
            WAIT,
        )?;
        assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
        bob.expect_matching("dtmf", |event| event["digit"] == digit, WAIT)?;
    }
    // An INFO of another package is answered and is no digit.
    let reply = alice.request_in_dialog(&call, "INFO", Some(("text/plain", "hello")), WAIT)?;
    assert!(
        reply.status().is_some_and(|s| s < 300 || s == 415),
        "{}",
        reply.start_line()
    );

    let reply = alice.request_in_dialog(&call, "BYE", None, WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    let ended = bob.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote", "{ended}");
    let digits: Vec<_> = bob
        .seen("dtmf")
        .iter()
        .map(|e| e["digit"].clone())
        .collect();
    assert_eq!(digits, ["7", "*"], "{:?}", bob.seen("dtmf"));
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    Ok(())
}

#[test]
fn a_hold_the_peer_refuses_is_reported_with_its_warning_and_the_call_goes_on() -> TestResult {
    let dir = tempfile::tempdir()?;
    let media = UdpSocket::bind("127.0.0.1:0")?;
    media.set_read_timeout(Some(Duration::from_millis(100)))?;
    let (mut bob, mut alice) = call_scripted_bob(
        dir.path(),
        &media,
        &["--audio", "tone:440", "--duration", "4"],
        |_| (),
    )?;

    alice.control("hold")?;
    let hold = bob.receive(WAIT, |m| m.method() == Some("INVITE"))?;
    assert!(hold.body().contains("a=sendonly"), "{}", hold.body());
    bob.refuse(
        &hold,
        "488 Not Acceptable Here",
        "304 bob.example \"no hold on this line\"",
    )?;
    let refused = alice.expect("change_refused", WAIT)?;
    assert_eq!(refused["code"], 488, "{refused}");
    assert_eq!(refused["warning"], "no hold on this line", "{refused}");

    // Still a call both ways: Callisto goes on sending its tone (on hold it would send
    // silence).
    media.set_nonblocking(true)?;
    while media.recv(&mut [0; 1500]).is_ok() {}
    media.set_nonblocking(false)?;
    let mut sounding = 0;
    let until = Instant::now() + Duration::from_millis(500);
    let mut packet = [0; 1500];
    while Instant::now() < until {
        if let Ok(len) = media.recv(&mut packet) {
            // µ-law silence is one byte value repeated; the tone's samples vary.
            let payload = &packet[12.min(len)..len];
            if payload.iter().any(|&b| b != payload[0]) {
                sounding += 1;
            }
        }
    }
    assert!(
        sounding >= 15,
        "{sounding} RTP packets with sound in 500 ms after the refusal"
    );

    bob.accept_bye(WAIT)?;
    alice.expect("call_ended", WAIT)?;
    assert!(alice.seen("held").is_empty(), "{:?}", alice.seen("held"));
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    Ok(())
}
