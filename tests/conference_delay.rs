//! How long a voice takes through a conference this Callisto hosts, against a direct call.
//! Bob answers with `--audio echo`: what he hears goes back one second later. Alice sends a
//! tone and records what she hears. Called directly, bob returns her tone after one second
//! plus a round trip; in a conference (the host silent, bob dialed in by it) the round trip
//! runs alice → host mix → bob and back through the mix. The figures are printed; the test
//! asserts that the tone went through and came back, not how fast (a binary of its own, so
//! no busy neighbour skews them).

mod support;

use std::error::Error;
use std::time::Duration;

use callisto_media::analysis::first_burst_onset;
use support::callisto::Callisto;
use support::conference::{path_arg, Room, TestResult};
use support::wav;

const WAIT: Duration = Duration::from_secs(10);

/// When alice's tone first comes back in her recording.
fn echo_onset(room: &Room, who: &str) -> Result<Duration, Box<dyn Error>> {
    let audio = wav::read_mono(&room.recording(who))?;
    first_burst_onset(&audio.samples, audio.sample_rate, 440.0, 0.05)
        .ok_or_else(|| format!("{who}: the tone never came back").into())
}

/// Alice calls `uri` for `seconds`, sending 440 Hz; returns the media path she got.
fn alice_calls(room: &Room, who: &str, uri: &str, seconds: &str) -> Result<String, Box<dyn Error>> {
    let mut alice = room.call(
        who,
        uri,
        440,
        &["--media", "classic", "--duration", seconds],
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

    // Directly.
    let direct_path = alice_calls(&room, "alice-direct", &bob_uri, "2.5")?;
    let direct = echo_onset(&room, "alice-direct")?;

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
        "2.5",
    )?;
    let through_host = echo_onset(&room, "alice")?;
    for (who, peer) in [("host", &mut host), ("bob", &mut bob)] {
        assert!(peer.wait(WAIT)?.success(), "{who}: {}", peer.stderr());
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let one_way = |d: Duration| (ms(d) - 1000.0) / 2.0;
    println!(
        "direct ({direct_path}): back after {:.0} ms, about {:.0} ms one way; \
         through the host ({conference_path}): back after {:.0} ms, about {:.0} ms one way \
         (alice → host → bob); the host adds about {:.0} ms each way",
        ms(direct),
        one_way(direct),
        ms(through_host),
        one_way(through_host),
        one_way(through_host) - one_way(direct),
    );
    for (what, onset) in [("direct", direct), ("through the host", through_host)] {
        assert!(
            (0.95..1.6).contains(&onset.as_secs_f64()),
            "{what}: the tone came back after {onset:?}"
        );
    }
    Ok(())
}
