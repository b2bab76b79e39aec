//! Conferences hosted by `callisto conference --host`: everyone hears everyone else and not
//! themselves, across the WebRTC and classic paths and G.711 and Opus, through Kamailio with a
//! baresip desk phone; participants join and leave while the others go on.
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

use std::error::Error;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use callisto_media::analysis::frequency_level;
use support::baresip::Baresip;
use support::baresip_events::BaresipEvent;
use support::baresip_phone::{Codec, PhoneConfig};
use support::browser::{Browser, BrowserConfig};
use support::callisto::Callisto;
use support::kamailio::{Kamailio, KamailioConfig};
use support::wav;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(8);
const HEARD: f32 = 0.08;
const LEAK: f32 = 0.02;

/// The level of `hz` in `seconds` of `path`, from `from_end` seconds before its end.
fn level(path: &Path, hz: f32, window: (f64, f64)) -> Result<f32, Box<dyn Error>> {
    let audio = wav::read_mono(path)?;
    let rate = audio.sample_rate as f64;
    let total = audio.samples.len() as f64 / rate;
    let (from_end, seconds) = window;
    assert!(
        total >= from_end,
        "{} holds {total:.1} s, less than {from_end} s",
        path.display()
    );
    let start = ((total - from_end) * rate) as usize;
    let end = (start + (seconds * rate) as usize).min(audio.samples.len());
    Ok(frequency_level(
        &audio.samples[start..end],
        audio.sample_rate,
        hz,
        0.02,
        100,
    ))
}

/// Asserts that `who` heard each of `others` and not `own` in `window` of its recording.
fn assert_hears(
    who: &str,
    path: &Path,
    own: f32,
    others: &[f32],
    window: (f64, f64),
) -> TestResult {
    for &hz in others {
        let l = level(path, hz, window)?;
        println!("{who} hears {hz} Hz at {l:.3}");
        assert!(
            l >= HEARD,
            "{who} hears {hz} Hz only at {l} ({})",
            path.display()
        );
    }
    let l = level(path, own, window)?;
    println!("{who} hears its own {own} Hz at {l:.4}");
    assert!(l < LEAK, "{who} hears itself at {l} ({})", path.display());
    Ok(())
}

/// The 100 ms windows of `path` after its first half second in which `hz` is not heard, and
/// how many windows it has.
fn missed_windows(path: &Path, hz: f32) -> Result<(Vec<usize>, usize), Box<dyn Error>> {
    let audio = wav::read_mono(path)?;
    let rate = audio.sample_rate;
    let windows: Vec<&[i16]> = audio.samples.chunks_exact(rate as usize / 10).collect();
    let missing = windows
        .iter()
        .enumerate()
        .skip(5)
        .filter(|(_, w)| frequency_level(w, rate, hz, 0.02, 100) < HEARD)
        .map(|(i, _)| i)
        .collect();
    Ok((missing, windows.len()))
}

/// A participant that calls the conference from a scripted user agent (PCMU, plain RTP) and
/// sends its leg's RTP port nothing but garbage, 50 datagrams a second: bytes that are not RTP,
/// RTP headers with a payload type never negotiated, truncated headers, RTCP with a wrong
/// length. It answers the host's BYE and counts what the host sent it.
struct Garbler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    media: thread::JoinHandle<std::io::Result<(u64, u64)>>,
    sip: thread::JoinHandle<std::io::Result<Duration>>,
}

/// What a [`Garbler`] did.
struct Garbage {
    sent: u64,
    rtp_heard: u64,
    hung_up_after: Duration,
}

impl Garbler {
    fn join(uri: &str) -> Result<Garbler, Box<dyn Error>> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let host_port: u16 = uri
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("no port in the conference URI")?;
        let media = std::net::UdpSocket::bind("127.0.0.1:0")?;
        media.set_read_timeout(Some(Duration::from_millis(5)))?;
        let offer = format!(
            "v=0\r\no=mallory 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
            media.local_addr()?.port()
        );
        let mut agent = support::sip_uas::ScriptedUas::bind("mallory", host_port)?;
        let call = agent.place_call(uri, &offer, WAIT)?;
        let answered = std::time::Instant::now();
        let rtp_port: u16 = call
            .answer
            .body()
            .lines()
            .find_map(|line| line.strip_prefix("m=audio "))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|port| port.parse().ok())
            .ok_or("no audio port in the host's answer")?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let media = {
            let stop = stop.clone();
            thread::spawn(move || {
                use rand::{Rng, SeedableRng};
                let mut rng = rand::rngs::StdRng::seed_from_u64(0x6a7b);
                let (mut sent, mut heard) = (0u64, 0u64);
                let mut buffer = [0u8; 2048];
                let mut next = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if std::time::Instant::now() >= next {
                        let mut datagram = vec![0u8; rng.gen_range(1..200)];
                        rng.fill(&mut datagram[..]);
                        match sent % 4 {
                            // First byte below 128: not RTP or RTCP (some read as STUN
                            // or DTLS to a demultiplexer, which the classic path drops).
                            0 => datagram[0] &= 0x7f,
                            // RTP version 2, payload type 77: never negotiated.
                            1 if datagram.len() >= 12 => {
                                datagram[0] = 0x80;
                                datagram[1] = 77;
                            }
                            // Seven bytes: shorter than any RTP header.
                            2 => datagram.truncate(7),
                            // RTCP sender report whose length runs past the datagram.
                            _ if datagram.len() >= 4 => {
                                datagram[0] = 0x80;
                                datagram[1] = 200;
                                datagram[2] = 0xff;
                            }
                            _ => {}
                        }
                        media.send_to(&datagram, ("127.0.0.1", rtp_port))?;
                        sent += 1;
                        next += Duration::from_millis(20);
                    }
                    if let Ok((len, _)) = media.recv_from(&mut buffer) {
                        heard +=
                            u64::from(len >= 12 && buffer[0] >> 6 == 2 && buffer[1] & 0x7f == 0);
                    }
                }
                Ok((sent, heard))
            })
        };
        let sip = thread::spawn(move || {
            agent.accept_bye(Duration::from_secs(20))?;
            Ok(answered.elapsed())
        });
        Ok(Garbler { stop, media, sip })
    }

    /// Waits for the host's BYE, stops the garbage and tells what happened.
    fn finish(self) -> Result<Garbage, Box<dyn Error>> {
        let hung_up_after = self.sip.join().map_err(|_| "the SIP thread panicked")??;
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (sent, rtp_heard) = self
            .media
            .join()
            .map_err(|_| "the media thread panicked")??;
        Ok(Garbage {
            sent,
            rtp_heard,
            hung_up_after,
        })
    }
}

/// The length of the longest run of consecutive numbers in the sorted `windows`.
fn longest_run(windows: &[usize]) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for (i, w) in windows.iter().enumerate() {
        run = if i > 0 && windows[i - 1] + 1 == *w {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
    }
    longest
}

/// Asserts that `who` did not hear `hz` in `window`.
fn assert_not_hearing(who: &str, path: &Path, hz: f32, window: (f64, f64)) -> TestResult {
    let l = level(path, hz, window)?;
    println!("{who} hears {hz} Hz at {l:.4}");
    assert!(l < LEAK, "{who} still hears {hz} Hz at {l}");
    Ok(())
}

/// Four participants through Kamailio: the host (440 Hz, Opus/G.711 per leg), carol and dave
/// on the WebRTC path (700 and 1060 Hz), and bob, a baresip desk phone on the classic path
/// with PCMU (1230 Hz), dialed by the host. Each of the four recordings holds the other
/// three tones and not its own.
#[test]
fn four_participants_on_mixed_paths_hear_the_three_others() -> TestResult {
    let users = ["host", "carol", "dave", "bob"];
    let kamailio = Kamailio::start(KamailioConfig {
        users: users
            .iter()
            .map(|u| (u.to_string(), format!("{u}-secret")))
            .collect(),
        ..KamailioConfig::default()
    })?;
    let port = kamailio.config().udp_port;
    let registrar = format!("sip:127.0.0.1:{port}");
    let room = Room::new()?;
    let tone = room.dir.path().join("bob.wav");
    wav::write_tone(&tone, 1230.0, 8000, 1, 30.0)?;
    let bob = Baresip::start_phone(
        PhoneConfig::registered("bob", "bob-secret", port)
            .codecs(&[Codec::Pcmu])
            .playing(&tone),
    )?;
    bob.wait_for_registered(WAIT)?;
    let account = |user: &str| {
        vec![
            "--user".to_string(),
            format!("sip:{user}@127.0.0.1:{port}"),
            "--password".to_string(),
            format!("{user}-secret"),
            "--registrar".to_string(),
            registrar.clone(),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
        ]
    };
    let recording = |who: &str| room.recording(who);
    let start = |who: &str, mut args: Vec<String>| -> std::io::Result<Callisto> {
        let home = room.home(who)?;
        args.extend(account(who));
        args.extend(["--record-audio".to_string(), path_arg(&recording(who))]);
        args.push("--json".to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Callisto::start(&home, &args)
    };
    let strings = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let mut host = start(
        "host",
        strings(&[
            "conference",
            "--host",
            "--audio",
            "tone:440",
            "--codecs",
            "opus,pcmu",
            "--dial",
            "sip:bob@127.0.0.1",
            "--duration",
            "7",
        ]),
    )?;
    host.expect("registered", WAIT)?;
    bob.wait_for_event(|e| matches!(e, BaresipEvent::Established { .. }), WAIT)?;
    let host_uri = "sip:host@127.0.0.1";
    let mut carol = start(
        "carol",
        strings(&["call", host_uri, "--media", "webrtc", "--audio", "tone:700"]),
    )?;
    let mut dave = start(
        "dave",
        strings(&[
            "call",
            host_uri,
            "--media",
            "webrtc",
            "--audio",
            "tone:1060",
        ]),
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

/// Video in a conference: the host sends pattern 1, carol (WebRTC) pattern 2 and dave
/// (classic path) pattern 3, each with a tone. Everyone is sent the host's mosaic of all
/// three pictures; carol's and dave's recordings each hold frames in which all three
/// identities read in the mosaic's cells.
#[test]
fn video_participants_see_everyone_in_the_mosaic() -> TestResult {
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
        args.extend(["--record-video", &picture, "--media", path]);
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
    for who in ["carol", "dave"] {
        let frames = support::video::mosaic_identities(&pictures(who), 3)?;
        let everyone = frames
            .iter()
            .filter(|cells| {
                let mut ids: Vec<u16> = cells.iter().flatten().copied().collect();
                ids.sort_unstable();
                ids == [1, 2, 3]
            })
            .count();
        println!(
            "{who}: {everyone} of {} frames show all three; the last reads {:?}",
            frames.len(),
            frames.last()
        );
        assert!(
            everyone >= 30,
            "{who} sees all three participants in {everyone} of {} frames",
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
    let _quiet = timing_sensitive();
    let kamailio = Kamailio::start(KamailioConfig {
        ws_port: Some(support::free_port()),
        tls_port: None,
        users: ["host", "carol", "erin"]
            .iter()
            .map(|u| (u.to_string(), format!("{u}-secret")))
            .collect(),
        ..KamailioConfig::default()
    })?;
    let port = kamailio.config().udp_port;
    let room = Room::new()?;
    let mut erin = Browser::registered(
        BrowserConfig {
            listen_for: vec![440.0, 700.0, 1060.0],
            ..BrowserConfig::new("erin")
        },
        &kamailio.ws_url(),
        ("erin", "erin-secret"),
        1060.0,
        room.dir.path(),
    )?;
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
    assert!(
        at("1060") < at("440").min(at("700")) - 30.0,
        "erin hears herself: {levels}"
    );
    let ended = host.expect("conference_ended", Duration::from_secs(15))?;
    println!("host: {ended}");
    assert!(host.wait(WAIT)?.success(), "{}", host.stderr());
    carol.expect("call_ended", WAIT)?;
    assert!(carol.wait(WAIT)?.success(), "{}", carol.stderr());
    // Both Callistos hear each other and the browser in the seconds before the end. Chromium
    // runs its own audio processing on the microphone (noise suppression and gain control,
    // on by default in getUserMedia), which takes a steady tone down to about -33 dBFS (the
    // host's roster): the browser's tone is heard above BROWSER_HEARD, a few times Opus's
    // noise floor, where a Callisto's arrives above HEARD.
    const BROWSER_HEARD: f32 = 0.015;
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

/// Tests whose measurements a second Chromium or a busy core next to them could upset take
/// turns.
fn timing_sensitive() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Participants that vanish without a BYE (their processes killed: dave on the classic path,
/// erin on the WebRTC path), and mallory, who joins as they vanish and sends nothing but
/// garbage to her leg's RTP port, are hung up by the host after the legs' 10 s media timeout,
/// while carol goes on hearing the host without a gap.
#[test]
fn participants_gone_without_bye_or_sending_garbage_are_dropped_while_the_others_go_on(
) -> TestResult {
    let _quiet = timing_sensitive();
    let room = Room::new()?;
    let (mut host, listen) = room.host(&["conference", "--host", "--duration", "20"])?;
    host.expect("conference", WAIT)?;
    let uri = format!("sip:conference@{listen}");
    let mut carol = room.call(
        "carol",
        &uri,
        700,
        &["--media", "webrtc", "--duration", "17"],
    )?;
    let mut dave = room.call("dave", &uri, 1060, &["--media", "classic"])?;
    let mut erin = room.call("erin", &uri, 1230, &["--media", "webrtc"])?;
    carol.expect("answered", WAIT)?;
    // carol's recording starts with her call's media: its timeline, give or take a packet.
    let carol_started = std::time::Instant::now();
    for peer in [&mut dave, &mut erin] {
        peer.expect("answered", WAIT)?;
    }
    each_call(&mut host, "joined", 3, WAIT)?;
    thread::sleep(Duration::from_secs(2));
    dave.kill()?;
    erin.kill()?;
    let killed = std::time::Instant::now();
    let mallory = Garbler::join(&uri)?;
    host.expect_matching(
        "joined",
        |e| e["name"].as_str().is_some_and(|n| n.starts_with("mallory")),
        WAIT,
    )?;
    // Each leg's "left", and when it was read.
    let mut left: Vec<(serde_json::Value, std::time::Instant)> = Vec::new();
    for _ in 0..3 {
        let calls: Vec<serde_json::Value> = left.iter().map(|(e, _)| e["call"].clone()).collect();
        let event = host.expect_matching(
            "left",
            |e| !calls.contains(&e["call"]),
            Duration::from_secs(15),
        )?;
        left.push((event, std::time::Instant::now()));
    }
    let is_mallory =
        |e: &serde_json::Value| e["name"].as_str().is_some_and(|n| n.starts_with("mallory"));
    for (event, at) in &left {
        let gone = *at - killed;
        println!("{:.1} s after the kill: {event}", gone.as_secs_f64());
        // dave and erin were killed then, mallory joined then: none goes before 10 s of
        // silence (or garbage).
        assert!(
            gone >= Duration::from_secs(9),
            "dropped {gone:?} after the kill, before the 10 s timeout: {event}"
        );
    }
    assert!(
        left.iter().any(|(e, _)| is_mallory(e)),
        "mallory was not dropped"
    );
    assert_eq!(left[2].0["participants"].as_array().map(Vec::len), Some(1));
    let garbage = mallory.finish()?;
    println!(
        "mallory sent {} garbage datagrams, heard {} RTP packets, dropped after {:.1} s",
        garbage.sent,
        garbage.rtp_heard,
        garbage.hung_up_after.as_secs_f64()
    );
    assert!(
        garbage.rtp_heard > 50,
        "mallory was not sent the conference's audio"
    );
    assert!(
        garbage.hung_up_after >= Duration::from_secs(9),
        "mallory was hung up after {:?}, before the media timeout",
        garbage.hung_up_after
    );
    carol.expect("call_ended", Duration::from_secs(12))?;
    assert!(carol.wait(WAIT)?.success(), "{}", carol.stderr());
    let ended = host.expect("conference_ended", WAIT)?;
    assert!(host.wait(WAIT)?.success(), "{}", host.stderr());
    assert_eq!(ended["joined"].as_array().map(Vec::len), Some(4), "{ended}");

    // carol heard the host all along, dave and erin while they were there, and not after.
    let carol_rec = room.recording("carol");
    let (missing, windows) = missed_windows(&carol_rec, 440.0)?;
    let window_of = |at: std::time::Instant| (at - carol_started).as_millis() as usize / 100;
    let events: Vec<usize> = std::iter::once(killed)
        .chain(left.iter().map(|(_, at)| *at))
        .map(window_of)
        .collect();
    println!(
        "carol misses the host in windows {missing:?} of {windows}; the kill and the drops \
         were in windows {events:?}"
    );
    // Around the moments the others vanish and are dropped, the host is never lost for two
    // windows in a row; elsewhere a loaded test machine may stall a process for a moment (the
    // last window also holds the hang-up): a few windows, none longer than 300 ms, pass.
    let near_an_event: Vec<usize> = missing
        .iter()
        .copied()
        .filter(|w| {
            events
                .iter()
                .any(|at| (at.saturating_sub(5)..=at + 15).contains(w))
        })
        .collect();
    assert!(
        longest_run(&near_an_event) <= 1,
        "carol misses the host in windows {near_an_event:?}, near the kill or a drop \
         ({events:?})"
    );
    assert!(
        missing.len() <= 4 && longest_run(&missing) <= 3,
        "carol misses the host in 100 ms windows {missing:?} of {windows}"
    );
    assert_not_hearing("carol (the others gone)", &carol_rec, 1060.0, (2.5, 2.0))?;
    assert_not_hearing("carol (the others gone)", &carol_rec, 1230.0, (2.5, 2.0))?;
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

/// The `name` events of `count` different calls of `peer`, in the order they came.
fn each_call(
    peer: &mut Callisto,
    name: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<serde_json::Value>, Box<dyn Error>> {
    let mut found: Vec<serde_json::Value> = Vec::new();
    for _ in 0..count {
        let calls: Vec<serde_json::Value> = found.iter().map(|e| e["call"].clone()).collect();
        found.push(peer.expect_matching(name, |e| !calls.contains(&e["call"]), timeout)?);
    }
    Ok(found)
}

/// A folder per participant and their recordings, in one temporary directory.
struct Room {
    dir: tempfile::TempDir,
}

impl Room {
    fn new() -> std::io::Result<Room> {
        let dir = tempfile::Builder::new()
            .prefix("callisto-conf-")
            .tempdir()?;
        Ok(Room { dir })
    }

    /// Where `who` records what it hears.
    fn recording(&self, who: &str) -> PathBuf {
        self.dir.path().join(format!("{who}.wav"))
    }

    /// `who`'s own folder (its configuration and data).
    fn home(&self, who: &str) -> std::io::Result<PathBuf> {
        let home = self.dir.path().join(who);
        std::fs::create_dir_all(&home)?;
        Ok(home)
    }

    /// `callisto COMMAND…` as the host on a free loopback port (returned), sending 440 Hz
    /// and recording what it hears.
    fn host(&self, command: &[&str]) -> std::io::Result<(Callisto, String)> {
        let listen = format!("127.0.0.1:{}", support::free_port());
        let rec = path_arg(&self.recording("host"));
        let mut args = command.to_vec();
        args.extend([
            "--listen",
            &listen,
            "--audio",
            "tone:440",
            "--record-audio",
            &rec,
            "--json",
        ]);
        let host = Callisto::start(&self.home("host")?, &args)?;
        Ok((host, listen))
    }

    /// `callisto call URI` as `who`, sending a tone of `hz` and recording what it hears.
    fn call(&self, who: &str, uri: &str, hz: u32, extra: &[&str]) -> std::io::Result<Callisto> {
        let rec = path_arg(&self.recording(who));
        let tone = format!("tone:{hz}");
        let mut args = vec!["--audio", &tone, "--record-audio", &rec];
        args.extend_from_slice(extra);
        Callisto::call(&self.home(who)?, uri, &args)
    }
}

/// The `(from_end, seconds)` window of `path` that starts `at` seconds after its beginning.
fn host_window(path: &Path, at: f64, seconds: f64) -> Result<(f64, f64), Box<dyn Error>> {
    let total = wav::read_mono(path)?.seconds();
    Ok((total - at, seconds))
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
