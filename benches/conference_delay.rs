//! `cargo bench --bench conference_delay`: how long a voice takes through a conference this
//! Callisto hosts, against a direct call, timed with clicks in the sent audio.
//!
//! Bob answers with `--audio echo`: what he hears goes back one second later. Alice sends a
//! click (10 ms of 1 kHz at half of full scale, in silence) every 1.5 s, the first half a second
//! into the call, and records what she hears. (A click in a call's first 20 ms is not played:
//! a jitter buffer waits for a second packet to confirm the stream and, starting at its target
//! delay, drops a first packet that is overdue by then.) Called directly, bob returns each click after one second
//! plus a round trip; in a conference (the host silent, bob dialed in by it) the round trip
//! runs alice → host mix → bob and back through the mix. Half a round trip is the one-way
//! mouth-to-ear delay (loopback, no sound card; target through the host: under 120 ms). Both
//! calls are classic (Opus, jitter buffers at each end of each hop), every process on this
//! machine, so one clock times both ways.
//!
//! Printed: the first click's delay (the jitter buffers still at their start) and the median,
//! least and most of the others that came back, with how many were lost, for both paths. A click may not come back clearly: a 10 ms
//! click travels in one packet, and when a busy machine delays that packet past a jitter
//! buffer's delay (at least 20 ms, adapting to what it has seen), the buffer conceals it and
//! plays a faint trace. Such clicks are counted as lost, and the run fails only when fewer than
//! half of a path's clicks came back. Under `cargo test` (no `--bench` argument) four clicks
//! are sent and only that is checked: at least two back on each path within a bound no
//! working path comes near.

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;
use std::time::Duration;

use callisto_media::analysis::first_burst_onset;
use support::callisto::Callisto;
use support::conference::{path_arg, Room};
use support::wav;

type BenchResult<T> = Result<T, Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);
/// When alice's first click starts, and how often one follows.
const FIRST: Duration = Duration::from_millis(500);
const EVERY: Duration = Duration::from_millis(1_500);
/// A click: its length, pitch and level.
const CLICK: f32 = 0.010;
const CLICK_HZ: f32 = 1_000.0;
const CLICK_LEVEL: f32 = 0.5;
/// How long bob holds what he hears before sending it back.
const ECHO: Duration = Duration::from_secs(1);
/// A click that has not come back this long after bob's hold is lost (a working path takes
/// well under a third of it).
const BOUND: Duration = Duration::from_millis(600);
const RATE: u32 = 48_000;

/// When alice's `n`th click (from 0) starts.
fn click_at(n: usize) -> Duration {
    FIRST + EVERY * n as u32
}

/// Alice's voice: `clicks` clicks [`EVERY`] apart from [`FIRST`] on, silence before, between
/// and a second and a half after them.
fn alice_voice(room: &Room, clicks: usize) -> BenchResult<String> {
    let click = wav::tone_samples(CLICK_HZ, RATE, CLICK, CLICK_LEVEL);
    let gap = (f64::from(RATE) * EVERY.as_secs_f64()) as usize - click.len();
    let mut samples = vec![0; (f64::from(RATE) * FIRST.as_secs_f64()) as usize];
    for _ in 0..clicks {
        samples.extend(&click);
        samples.extend(std::iter::repeat_n(0, gap));
    }
    samples.extend(std::iter::repeat_n(0, RATE as usize));
    let path = room.dir.path().join("alice-clicks.wav");
    wav::write_samples(&path, &samples, RATE, 1)?;
    Ok(path_arg(&path))
}

/// How long each of alice's `clicks` took to come back, less bob's hold, in the order sent;
/// `None` for a click that did not come back clearly within [`BOUND`]. An error when fewer
/// than half came back.
fn round_trips(room: &Room, who: &str, clicks: usize) -> BenchResult<Vec<Option<Duration>>> {
    let audio = wav::read_mono(&room.recording(who))?;
    let rate = f64::from(audio.sample_rate);
    let index = |at: Duration| (at.as_secs_f64() * rate) as usize;
    let trips: Vec<Option<Duration>> = (0..clicks)
        .map(|n| {
            // Nothing comes back before bob's hold has passed, and each click is back before
            // the next one's echo can be.
            let from = click_at(n) + ECHO;
            let heard = audio
                .samples
                .get(index(from)..index(from + BOUND).min(audio.samples.len()))
                .unwrap_or_default();
            first_burst_onset(heard, audio.sample_rate, CLICK_HZ, 0.05)
        })
        .collect();
    let back = trips.iter().flatten().count();
    if back * 2 < clicks {
        return Err(format!("{who}: {back} of the {clicks} clicks came back ({trips:?})").into());
    }
    Ok(trips)
}

/// Alice calls `uri` long enough to hear every click back; returns the media path she got.
fn alice_calls(
    room: &Room,
    who: &str,
    uri: &str,
    voice: &str,
    clicks: usize,
) -> BenchResult<String> {
    let seconds = (click_at(clicks) + ECHO).as_secs_f64();
    let duration = format!("{seconds:.1}");
    let mut alice = room.call_sending(
        who,
        uri,
        voice,
        &["--media", "classic", "--duration", &duration],
    )?;
    let answered = alice.expect("answered", WAIT)?;
    alice.expect("call_ended", WAIT + Duration::from_secs_f64(seconds))?;
    if !alice.wait(WAIT)?.success() {
        return Err(format!("{who}: {}", alice.stderr()).into());
    }
    Ok(answered["media"].as_str().unwrap_or("?").to_owned())
}

/// One-way milliseconds of a round trip.
fn one_way(trip: Duration) -> f64 {
    trip.as_secs_f64() * 1000.0 / 2.0
}

/// The one-way milliseconds of the clicks that came back, least first.
fn sorted_one_way(trips: &[Option<Duration>]) -> Vec<f64> {
    let mut back: Vec<f64> = trips.iter().flatten().map(|&t| one_way(t)).collect();
    back.sort_by(f64::total_cmp);
    back
}

/// "first F ms, then median M ms (least L, most H) over N[, K of T clicks lost]" of `trips`.
fn describe(trips: &[Option<Duration>]) -> String {
    let first = match trips[0] {
        Some(trip) => format!("first {:.0} ms", one_way(trip)),
        None => "first lost".to_owned(),
    };
    let rest = sorted_one_way(&trips[1..]);
    let lost = trips.iter().filter(|trip| trip.is_none()).count();
    let lost = match lost {
        0 => String::new(),
        _ => format!(", {lost} of {} clicks lost", trips.len()),
    };
    match rest.as_slice() {
        [] => format!("{first}{lost}"),
        [only] => format!("{first}, then {only:.0} ms{lost}"),
        _ => format!(
            "{first}, then median {:.0} ms (least {:.0}, most {:.0}) over {}{lost}",
            rest[rest.len() / 2],
            rest[0],
            rest[rest.len() - 1],
            rest.len()
        ),
    }
}

fn main() -> BenchResult<()> {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let clicks = if benching { 9 } else { 4 };
    let room = Room::new()?;
    let bob_listen = format!("127.0.0.1:{}", support::free_port());
    let bob_uri = format!("sip:bob@{bob_listen}");
    let mut bob = Callisto::start(
        &room.home("bob")?,
        &[
            "answer",
            "--listen",
            &bob_listen,
            "--audio",
            "echo",
            "--count",
            "2",
            "--json",
        ],
    )?;
    bob.expect("listening", WAIT)?;
    let voice = alice_voice(&room, clicks)?;

    // Directly.
    let direct_path = alice_calls(&room, "alice-direct", &bob_uri, &voice, clicks)?;
    let direct = round_trips(&room, "alice-direct", clicks)?;

    // Through the host, which sends silence and dials bob before alice calls in.
    let host_listen = format!("127.0.0.1:{}", support::free_port());
    let host_rec = path_arg(&room.recording("host"));
    let mut host = Callisto::start(
        &room.home("host")?,
        &[
            "conference",
            "--host",
            "--listen",
            &host_listen,
            "--audio",
            "silence",
            "--record-audio",
            &host_rec,
            "--dial",
            &bob_uri,
            "--count",
            "1",
            "--media",
            "classic",
            "--json",
        ],
    )?;
    host.expect("joined", WAIT)?;
    let conference_uri = format!("sip:conference@{host_listen}");
    let conference_path = alice_calls(&room, "alice", &conference_uri, &voice, clicks)?;
    let through_host = round_trips(&room, "alice", clicks)?;
    for (who, peer) in [("host", &mut host), ("bob", &mut bob)] {
        if !peer.wait(WAIT)?.success() {
            return Err(format!("{who}: {}", peer.stderr()).into());
        }
    }

    println!("mouth-to-ear, one way (half of alice → bob → alice less bob's hold):");
    println!("  direct ({direct_path}): {}", describe(&direct));
    println!(
        "  through the host ({conference_path}, alice → host mix → bob): {}",
        describe(&through_host)
    );
    let median = |trips: &[Option<Duration>]| {
        let back = sorted_one_way(trips);
        back[back.len() / 2]
    };
    println!(
        "  the host adds about {:.0} ms each way (medians of all clicks back)",
        median(&through_host) - median(&direct)
    );
    Ok(())
}
