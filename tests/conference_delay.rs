//! How long a voice takes through a conference this Callisto hosts, against a direct call.
//! Bob answers with `--audio echo`: what he hears goes back one second later. Alice sends two
//! short bursts of a tone, one as the call starts and one once it has settled, and records
//! what she hears. Called directly, bob returns each burst after one second plus a round trip;
//! in a conference (the host silent, bob dialed in by it) the round trip runs alice → host
//! mix → bob and back through the mix. The figures are printed; the test asserts only that
//! the bursts went through and came back within a bound no working path comes near (a binary
//! of its own, so no busy neighbour skews the figures).

mod support;

use std::error::Error;
use std::time::Duration;

use callisto_media::analysis::first_burst_onset;
use support::callisto::Callisto;
use support::conference::{path_arg, Room, TestResult};
use support::wav;

const WAIT: Duration = Duration::from_secs(10);
/// When alice's second burst starts: the host's queues have settled by then.
const SETTLED: Duration = Duration::from_secs(3);
/// Each burst's length.
const BURST: f32 = 0.5;
/// How long bob holds what he hears before sending it back.
const ECHO: Duration = Duration::from_secs(1);
const RATE: u32 = 48_000;

/// Alice's voice: 440 Hz at once and again at [`SETTLED`], silence around them.
fn alice_voice(room: &Room) -> Result<String, Box<dyn Error>> {
    let burst = wav::tone_samples(440.0, RATE, BURST, wav::TONE_LEVEL);
    let pause = |until: f32| vec![0; (RATE as f32 * (until - BURST)) as usize];
    let mut samples = burst.clone();
    samples.extend(pause(SETTLED.as_secs_f32()));
    samples.extend(burst);
    samples.extend(pause(3.0));
    let path = room.dir.path().join("alice-voice.wav");
    wav::write_samples(&path, &samples, RATE, 1)?;
    Ok(path_arg(&path))
}

/// How long each of alice's bursts took to come back, less bob's hold: as the call started,
/// and once it had settled.
fn round_trips(room: &Room, who: &str) -> Result<[Duration; 2], Box<dyn Error>> {
    let audio = wav::read_mono(&room.recording(who))?;
    let rate = audio.sample_rate;
    let back_after = |sent: Duration| -> Result<Duration, Box<dyn Error>> {
        // Nothing can come back before the burst has ended (bob holds it for a second), and
        // the first is back well before the second is sent.
        let from = ((sent.as_secs_f64() + f64::from(BURST)) * f64::from(rate)) as usize;
        let heard = audio.samples.get(from..).unwrap_or_default();
        let onset = first_burst_onset(heard, rate, 440.0, 0.05)
            .ok_or_else(|| format!("{who}: the burst sent at {sent:?} never came back"))?;
        let from = Duration::from_secs_f64(from as f64 / f64::from(rate));
        (from + onset)
            .checked_sub(sent + ECHO)
            .ok_or_else(|| format!("{who}: the burst sent at {sent:?} came back early").into())
    };
    Ok([back_after(Duration::ZERO)?, back_after(SETTLED)?])
}

/// Alice calls `uri` for long enough to hear both bursts back; returns the media path she got.
fn alice_calls(room: &Room, who: &str, uri: &str, voice: &str) -> Result<String, Box<dyn Error>> {
    let mut alice = room.call_sending(
        who,
        uri,
        voice,
        &["--media", "classic", "--duration", "5.5"],
    )?;
    let answered = alice.expect("answered", WAIT)?;
    alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{who}: {}", alice.stderr());
    Ok(answered["media"].as_str().unwrap_or("?").to_owned())
}

#[test]
fn a_voice_through_the_host_and_back_is_timed_against_a_direct_call() -> TestResult {
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

    let voice = alice_voice(&room)?;

    // Directly.
    let direct_path = alice_calls(&room, "alice-direct", &bob_uri, &voice)?;
    let direct = round_trips(&room, "alice-direct")?;

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
    let conference_path = alice_calls(
        &room,
        "alice",
        &format!("sip:conference@{host_listen}"),
        &voice,
    )?;
    let through_host = round_trips(&room, "alice")?;
    for (who, peer) in [("host", &mut host), ("bob", &mut bob)] {
        assert!(peer.wait(WAIT)?.success(), "{who}: {}", peer.stderr());
    }

    let one_way = |d: Duration| d.as_secs_f64() * 1000.0 / 2.0;
    let [direct_start, direct_settled] = direct.map(one_way);
    let [host_start, host_settled] = through_host.map(one_way);
    println!(
        "one way, as the call starts / once settled: direct ({direct_path}) about \
         {direct_start:.0} / {direct_settled:.0} ms; through the host ({conference_path}, \
         alice → host → bob) about {host_start:.0} / {host_settled:.0} ms; the host adds about \
         {:.0} / {:.0} ms each way",
        host_start - direct_start,
        host_settled - direct_settled,
    );
    for (what, trips) in [("direct", direct), ("through the host", through_host)] {
        assert!(
            trips.iter().all(|&trip| trip < Duration::from_millis(600)),
            "{what}: the bursts came back {trips:?} after bob's hold"
        );
    }
    Ok(())
}
