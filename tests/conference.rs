//! Conferences hosted by `callisto conference --host`: everyone hears everyone else and not
//! themselves, across the WebRTC and classic paths and G.711 and Opus, through Kamailio with a
//! baresip desk phone; participants join and leave while the others go on; the host dials,
//! drops and ends from its console.
//!
//! Every participant sends a tone of its own and records what it hears. The tones (440, 700,
//! 1060, 1230 Hz) are chosen so that no sum or difference of two or three of them lies within
//! 7 % of another: codec intermodulation cannot pass for a participant hearing itself. A tone is "heard"
//! when its level in the recording's steady part (everyone in the call) is at least 0.08 (a
//! -12 dBFS tone arrives near 0.25); a participant "hears itself" above 0.02. (Opus's noise
//! floor under a three-tone mix measures 0.004–0.008 at any frequency, the own one included;
//! G.711 and the host's recording stay below 0.001. A participant fed back its own tone would
//! measure near 0.25.)

mod support;

use std::thread;
use std::time::Duration;

use support::baresip_events::BaresipEvent;
use support::browser::{Browser, BrowserConfig};
use support::callisto::Callisto;
use support::conference::{
    assert_hears, assert_not_hearing, each_call, host_window, kamailio_for, level, missed_windows,
    path_arg, Registered, Room, TestResult,
};
use support::wav;

const WAIT: Duration = Duration::from_secs(8);

/// Four participants through Kamailio: the host (440 Hz, Opus/G.711 per leg), carol and dave
/// on the WebRTC path (700 and 1060 Hz), and bob, a baresip desk phone on the classic path
/// with PCMU (1230 Hz), dialed by the host. Each of the four recordings holds the other
/// three tones and not its own.
#[test]
fn four_participants_on_mixed_paths_hear_the_three_others() -> TestResult {
    let registered = Registered::start(None)?;
    let (room, bob) = (&registered.room, &registered.bob);
    let recording = |who: &str| room.recording(who);
    let mut host = registered.start_host("7", &[])?;
    let host_uri = "sip:host@127.0.0.1";
    let mut carol = registered.start_callisto(
        "carol",
        &["call", host_uri, "--media", "webrtc", "--audio", "tone:700"],
    )?;
    let mut dave = registered.start_callisto(
        "dave",
        &[
            "call",
            host_uri,
            "--media",
            "webrtc",
            "--audio",
            "tone:1060",
        ],
    )?;
    for (who, peer) in [("carol", &mut carol), ("dave", &mut dave)] {
        let answered = peer.expect("answered", WAIT)?;
        assert_eq!(answered["media"], "webrtc", "{who}: {answered}");
    }
    each_call(&mut host, "joined", 3, WAIT)?;
    let ended = host.expect("conference_ended", Duration::from_secs(15))?;
    println!("host: {ended}");
    assert!(host.wait(WAIT)?.success(), "{}", host.stderr());
    for (who, peer) in [("carol", &mut carol), ("dave", &mut dave)] {
        let summary = peer.expect("call_ended", WAIT)?;
        assert_eq!(
            summary["by"], "remote",
            "{who}: the host ends the call: {summary}"
        );
        assert!(peer.wait(WAIT)?.success(), "{who}: {}", peer.stderr());
    }
    bob.wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
    let roster = ended["roster"].as_array().cloned().unwrap_or_default();
    assert_eq!(roster.len(), 4, "the host and three legs: {ended}");
    for entry in &roster {
        assert!(
            entry["level_dbfs"].as_f64().unwrap_or(-96.0) > -30.0,
            "everyone was heard by the mixer: {entry}"
        );
    }

    // Everyone has been in the call for the last 3 s of each recording but its final 0.5 s.
    let window = (3.5, 3.0);
    let (host_hz, carol_hz, dave_hz, bob_hz) = (440.0, 700.0, 1060.0, 1230.0);
    assert_hears(
        "host",
        &recording("host"),
        host_hz,
        &[carol_hz, dave_hz, bob_hz],
        window,
    )?;
    assert_hears(
        "carol",
        &recording("carol"),
        carol_hz,
        &[host_hz, dave_hz, bob_hz],
        window,
    )?;
    assert_hears(
        "dave",
        &recording("dave"),
        dave_hz,
        &[host_hz, carol_hz, bob_hz],
        window,
    )?;
    assert_hears(
        "bob",
        &bob.last_heard()?,
        bob_hz,
        &[host_hz, carol_hz, dave_hz],
        window,
    )?;
    Ok(())
}

/// Direct calls to a host without a registrar: carol and dave join, dave leaves after 3 s,
/// erin joins later. While dave is gone the others do not hear him; carol hears the host
/// throughout, and erin once erin is in.
#[test]
fn participants_join_and_leave_while_the_others_go_on() -> TestResult {
    let room = Room::new()?;
    let recording = |who: &str| room.recording(who);
    let (mut host, listen) = room.host(&["conference", "--host", "--count", "3"])?;
    host.expect("conference", WAIT)?;
    let uri = format!("sip:conference@{listen}");
    let join = |who: &str, hz: u32, secs: &str, codecs: &str| {
        room.call(who, &uri, hz, &["--duration", secs, "--codecs", codecs])
    };
    let mut carol = join("carol", 700, "8", "opus")?;
    let mut dave = join("dave", 1060, "3", "pcmu")?;
    carol.expect("answered", WAIT)?;
    dave.expect("answered", WAIT)?;
    let left = host.expect("left", WAIT)?;
    assert_eq!(
        left["participants"].as_array().map(Vec::len),
        Some(1),
        "{left}"
    );
    dave.expect("call_ended", WAIT)?;
    thread::sleep(Duration::from_millis(1500));
    let mut erin = join("erin", 1230, "2.5", "pcma")?;
    erin.expect("answered", WAIT)?;
    let erin_ended = erin.expect("call_ended", WAIT)?;
    println!("erin: {erin_ended}");
    carol.expect("call_ended", Duration::from_secs(10))?;
    // Carol follows the roster the host serves (RFC 4575): the host first, then whoever is
    // in; dave came and went, then erin.
    let rosters = carol.seen("roster");
    let mut sizes: Vec<usize> = Vec::new();
    for roster in &rosters {
        let Some(people) = roster["participants"].as_array() else {
            continue;
        };
        assert_eq!(people[0]["name"], "host", "{roster}");
        assert!(
            people.iter().all(|p| p["status"] == "connected"),
            "{roster}"
        );
        if sizes.last() != Some(&people.len()) {
            sizes.push(people.len());
        }
    }
    let expected = [3, 2, 3, 2];
    assert!(
        sizes.windows(4).any(|w| w == expected),
        "carol's rosters had {sizes:?} people: {rosters:?}"
    );
    let ended = host.expect("conference_ended", WAIT)?;
    println!("host: {ended}");
    assert_eq!(ended["joined"].as_array().map(Vec::len), Some(3), "{ended}");
    for (who, peer) in [
        ("host", &mut host),
        ("carol", &mut carol),
        ("dave", &mut dave),
        ("erin", &mut erin),
    ] {
        assert!(peer.wait(WAIT)?.success(), "{who}: {}", peer.stderr());
    }

    // carol: 8 s in the call. Dave was there for the first 3 s, erin for about 2.5 s from
    // about 4.5 s; the host's tone all along, without a gap.
    let carol_rec = recording("carol");
    let (missing, windows) = missed_windows(&carol_rec, 440.0)?;
    let with_host = windows - 5 - missing.len();
    assert!(
        with_host >= windows - 5 - 1,
        "carol hears the host in {with_host} of {} windows",
        windows - 5
    );
    assert_hears(
        "carol (with dave)",
        &carol_rec,
        700.0,
        &[440.0, 1060.0],
        (7.0, 1.8),
    )?;
    assert_not_hearing("carol (dave gone)", &carol_rec, 1060.0, (4.5, 4.0))?;
    assert_hears(
        "dave",
        &recording("dave"),
        1060.0,
        &[440.0, 700.0],
        (2.5, 2.0),
    )?;
    assert_hears(
        "erin",
        &recording("erin"),
        1230.0,
        &[440.0, 700.0],
        (2.0, 1.5),
    )?;
    assert_not_hearing(
        "erin (dave gone before)",
        &recording("erin"),
        1060.0,
        (2.0, 1.5),
    )?;
    // The host heard all three, and erin only in erin's time.
    assert_hears(
        "host (early)",
        &recording("host"),
        440.0,
        &[700.0, 1060.0],
        host_window(&recording("host"), 1.0, 2.0)?,
    )?;
    Ok(())
}

/// The host steers the conference from its console (standard input): `dial URI` calls dave
/// in, `hangup N` drops carol while dave stays, and `hangup` ends the conference, dave's leg
/// with a BYE. Dave hears the host and carol while both are in, then the host alone.
#[test]
fn the_host_dials_drops_and_ends_from_its_console() -> TestResult {
    let room = Room::new()?;
    let (mut host, listen) = room.host(&["conference", "--host"])?;
    host.expect("conference", WAIT)?;
    let uri = format!("sip:conference@{listen}");
    let mut carol = room.call("carol", &uri, 700, &["--duration", "30"])?;
    carol.expect("answered", WAIT)?;
    let carol_call = host.expect("joined", WAIT)?["call"]
        .as_u64()
        .ok_or("no call number for carol")?;
    let dave_rec = room.recording("dave");
    let rec = path_arg(&dave_rec);
    let dave_args = [
        "--audio",
        "tone:1060",
        "--record-audio",
        &rec,
        "--count",
        "1",
    ];
    let mut dave = Callisto::answer(&room.home("dave")?, "127.0.0.1:0", &dave_args)?;
    let dave_port = dave.listening_port(WAIT)?;
    host.control(&format!("dial sip:dave@127.0.0.1:{dave_port}"))?;
    dave.expect("answered", WAIT)?;
    // (`expect` finds the first matching line, carol's join among them.)
    let joined = host.expect_matching("joined", |e| e["call"] != carol_call, WAIT)?;
    assert_eq!(
        joined["participants"].as_array().map(Vec::len),
        Some(2),
        "{joined}"
    );
    thread::sleep(Duration::from_secs(2));
    host.control(&format!("hangup {carol_call}"))?;
    let ended = carol.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote", "{ended}");
    let left = host.expect("left", WAIT)?;
    assert_eq!(left["call"], carol_call, "{left}");
    assert_eq!(
        left["participants"].as_array().map(Vec::len),
        Some(1),
        "{left}"
    );
    thread::sleep(Duration::from_secs(2));
    host.control("hangup")?;
    let ended = dave.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote", "{ended}");
    let ended = host.expect("conference_ended", WAIT)?;
    assert_eq!(ended["joined"].as_array().map(Vec::len), Some(2), "{ended}");
    for (who, peer) in [
        ("host", &mut host),
        ("carol", &mut carol),
        ("dave", &mut dave),
    ] {
        assert!(peer.wait(WAIT)?.success(), "{who}: {}", peer.stderr());
    }
    // Dave's 4 s: the host and carol in the first two, the host alone in the last.
    assert_hears(
        "dave (with carol)",
        &dave_rec,
        1060.0,
        &[440.0, 700.0],
        host_window(&dave_rec, 0.5, 1.2)?,
    )?;
    assert_hears("dave (carol gone)", &dave_rec, 1060.0, &[440.0], (1.5, 1.2))?;
    assert_not_hearing("dave (carol gone)", &dave_rec, 700.0, (1.5, 1.2))?;
    Ok(())
}

/// Video in a conference: the host sends pattern 1, carol (WebRTC, forced to show one
/// stream) pattern 2 and dave (classic path) pattern 3, each with a tone. Each is sent the
/// host's mosaic of the two others' pictures, not its own: carol's and dave's recordings each
/// hold frames in which the two others' identities read in the mosaic's cells.
#[test]
fn video_participants_see_everyone_else_in_the_mosaic() -> TestResult {
    let room = Room::new()?;
    let (mut host, listen) = room.host(&[
        "conference",
        "--host",
        "--video",
        "pattern",
        "--pattern-id",
        "1",
        "--duration",
        "9",
    ])?;
    host.expect("conference", WAIT)?;
    let uri = format!("sip:conference@{listen}");
    let pictures = |who: &str| room.dir.path().join(format!("{who}.y4m"));
    let join = |who: &str, hz: u32, id: &str, path: &str| {
        let picture = path_arg(&pictures(who));
        let mut args = vec!["--duration", "7", "--video", "pattern", "--pattern-id", id];
        args.extend([
            "--record-video",
            &picture,
            "--media",
            path,
            "--single-stream",
        ]);
        room.call(who, &uri, hz, &args)
    };
    let mut carol = join("carol", 700, "2", "webrtc")?;
    let mut dave = join("dave", 1060, "3", "classic")?;
    for (who, peer) in [("carol", &mut carol), ("dave", &mut dave)] {
        let answered = peer.expect("answered", WAIT)?;
        println!("{who}: {answered}");
    }
    // The host's cost with two video legs (a figure for the record, not a limit).
    let meter = support::measure::ProcessMeter::start(host.pid())?;
    thread::sleep(Duration::from_secs(4));
    let usage = meter.finish()?;
    println!(
        "host with two 640x480 video legs: {:.0} % of a core, peak RSS {} KiB",
        usage.cpu_percent, usage.peak_rss_kib
    );
    for (who, peer) in [("carol", &mut carol), ("dave", &mut dave)] {
        let ended = peer.expect("call_ended", Duration::from_secs(12))?;
        println!("{who}: {ended}");
        assert!(peer.wait(WAIT)?.success(), "{who}: {}", peer.stderr());
    }
    host.expect("conference_ended", WAIT)?;
    assert!(host.wait(WAIT)?.success(), "{}", host.stderr());
    for (who, others) in [("carol", [1, 3]), ("dave", [1, 2])] {
        let frames = support::video::mosaic_identities(&pictures(who), 2)?;
        let everyone = frames
            .iter()
            .filter(|cells| {
                let mut ids: Vec<u16> = cells.iter().flatten().copied().collect();
                ids.sort_unstable();
                ids == others
            })
            .count();
        println!(
            "{who}: {everyone} of {} frames show the two others; the last reads {:?}",
            frames.len(),
            frames.last()
        );
        assert!(
            everyone >= 30,
            "{who} sees the two others in {everyone} of {} frames",
            frames.len()
        );
    }
    Ok(())
}

/// A browser softphone (headless Chromium + JsSIP over WebSocket) joins a conference with
/// a Callisto on the WebRTC path, both calling the host through Kamailio: the browser hears
/// the host (440 Hz) and carol (700 Hz) and not itself (1060 Hz), as its own analyser of the
/// received track measures, and the host and carol hear the browser.
#[test]
fn a_browser_softphone_joins_and_hears_the_others() -> TestResult {
    let kamailio = kamailio_for(&["host", "carol", "erin"], true)?;
    let port = kamailio.config().udp_port;
    let room = Room::new()?;
    // Erin talks as people do, in words with pauses between them: her tone for 800 ms of
    // every second (the pauses tell the host's mixer her voice from her line's noise).
    let words = room.dir.path().join("erin-words.wav");
    let mut samples = wav::tone_samples(1060.0, 48_000, 10.0, wav::TONE_LEVEL);
    for second in samples.chunks_mut(48_000) {
        second[38_400..].fill(0);
    }
    wav::write_samples(&words, &samples, 48_000, 1)?;
    let mut erin = Browser::start(BrowserConfig {
        listen_for: vec![440.0, 700.0, 1060.0],
        audio_file: Some(words),
        ..BrowserConfig::new("erin")
    })?;
    erin.register(&kamailio.ws_url(), "sip:erin@127.0.0.1", "erin-secret")?;
    let account = |user: &str, rest: &[&str]| -> std::io::Result<Callisto> {
        let mut args: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--user".to_string(),
            format!("sip:{user}@127.0.0.1:{port}"),
            "--password".to_string(),
            format!("{user}-secret"),
            "--registrar".to_string(),
            format!("sip:127.0.0.1:{port}"),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--record-audio".to_string(),
            path_arg(&room.recording(user)),
            "--json".to_string(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Callisto::start(&room.home(user)?, &args)
    };
    let mut host = account(
        "host",
        &[
            "conference",
            "--host",
            "--audio",
            "tone:440",
            "--duration",
            "12",
        ],
    )?;
    host.expect("registered", WAIT)?;
    let mut carol = account(
        "carol",
        &[
            "call",
            "sip:host@127.0.0.1",
            "--media",
            "webrtc",
            "--audio",
            "tone:700",
        ],
    )?;
    carol.expect("answered", WAIT)?;
    erin.call("sip:host@127.0.0.1", false)?;
    each_call(&mut host, "joined", 2, WAIT)?;
    let stats = erin.wait_for_stats(Duration::from_secs(10), "the host and carol heard", |s| {
        let at = |hz: &str| s["remote_audio_levels"][hz].as_f64().unwrap_or(-200.0);
        at("440") > -50.0 && at("700") > -50.0
    })?;
    let levels = &stats["remote_audio_levels"];
    println!("erin hears (dBFS): {levels}");
    let at = |hz: &str| levels[hz].as_f64().unwrap_or(-200.0);
    // Her own tone is not in what she is sent: near the analyser's floor, far below the
    // others (against the louder one: the quieter one's level varies with the moment read).
    assert!(
        at("1060") < at("440").max(at("700")) - 30.0 && at("1060") < -60.0,
        "erin hears herself: {levels}"
    );
    let ended = host.expect("conference_ended", Duration::from_secs(15))?;
    println!("host: {ended}");
    assert!(host.wait(WAIT)?.success(), "{}", host.stderr());
    carol.expect("call_ended", WAIT)?;
    assert!(carol.wait(WAIT)?.success(), "{}", carol.stderr());
    // The host's mixer brings everyone to one level: carol's tone (-15 dBFS) down, erin's
    // quieter words up. (Carol's steady tone counts as speech because her leg starts with
    // the silence of its queue's first fill, below which the tone stands out.)
    let gain = |name: &str| {
        ended["roster"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|e| e["name"].as_str().unwrap_or("").starts_with(name))
            })
            .and_then(|e| e["gain_db"].as_f64())
            .unwrap_or(f64::NAN)
    };
    assert!(gain("carol") < -3.0, "carol's gain: {ended}");
    assert!(gain("erin") > 0.5, "erin's gain: {ended}");
    // Both Callistos hear each other and the browser in the seconds before the end. Chromium
    // runs its own audio processing on the microphone (noise suppression and gain control, on
    // by default in getUserMedia), which brings erin's words to about -24 dBFS (the host's
    // roster); the host's mixer raises them to the conference's level. Her pauses take a
    // fifth of the time, so her tone is heard above BROWSER_HEARD where a Callisto's steady
    // one arrives above HEARD.
    const BROWSER_HEARD: f32 = 0.05;
    let window = (3.0, 2.0);
    assert_hears("carol", &room.recording("carol"), 700.0, &[440.0], window)?;
    assert_hears("host", &room.recording("host"), 440.0, &[700.0], window)?;
    for who in ["carol", "host"] {
        let l = level(&room.recording(who), 1060.0, window)?;
        println!("{who} hears the browser's 1060 Hz at {l:.3}");
        assert!(l >= BROWSER_HEARD, "{who} hears the browser only at {l}");
    }
    Ok(())
}

/// `callisto answer` takes two calls (the second holds the first: call waiting), then the
/// `merge` control line puts both into a conference hosted by the answerer: carol and dave
/// hear each other and the host, and the host's recording (the first call's) holds both.
#[test]
fn two_calls_are_merged_into_a_conference() -> TestResult {
    let room = Room::new()?;
    let recording = |who: &str| room.recording(who);
    let (mut host, listen) = room.host(&["answer", "--count", "2"])?;
    host.expect("listening", WAIT)?;
    let uri = format!("sip:host@{listen}");
    let call = |who: &str, hz: u32, secs: &str| room.call(who, &uri, hz, &["--duration", secs]);
    let mut carol = call("carol", 700, "9")?;
    carol.expect("answered", WAIT)?;
    thread::sleep(Duration::from_millis(300));
    let mut dave = call("dave", 1060, "6")?;
    dave.expect("answered", WAIT)?;
    carol.expect("held", WAIT)?;
    thread::sleep(Duration::from_millis(700));
    host.control("merge")?;
    let merged = [host.expect("merged", WAIT)?, host.expect("merged", WAIT)?];
    println!("{merged:?}");
    carol.expect("resumed", WAIT)?;
    for (who, peer) in [
        ("dave", &mut dave),
        ("carol", &mut carol),
        ("host", &mut host),
    ] {
        peer.expect("call_ended", Duration::from_secs(12))?;
        assert!(peer.wait(WAIT)?.success(), "{who}: {}", peer.stderr());
    }
    // Dave's last 2.5 s; carol's and the host's time with dave after the merge.
    assert_hears(
        "dave",
        &recording("dave"),
        1060.0,
        &[440.0, 700.0],
        (2.7, 2.5),
    )?;
    assert_hears(
        "carol",
        &recording("carol"),
        700.0,
        &[440.0, 1060.0],
        (6.0, 3.0),
    )?;
    assert_hears(
        "host",
        &recording("host"),
        440.0,
        &[700.0, 1060.0],
        (6.0, 3.0),
    )?;
    Ok(())
}
