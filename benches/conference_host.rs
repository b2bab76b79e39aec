//! `cargo bench --bench conference_host`: what hosting a video conference costs the host.
//!
//! - **Forwarding**: `callisto conference --host` (640x480@30 test pattern, a tone) and three
//!   Callisto participants on the WebRTC path (640x480@30 patterns, tones) calling it
//!   directly on loopback: each participant is sent the host's picture and the two others'
//!   video as forwarded streams. Measured: the CPU time (user + system, all threads) of the
//!   host process over the stretch, in percent of one core (target: under 60 %), and its
//!   peak RSS.
//! - **With a mosaic leg**: a fourth participant started with `--single-stream` joins, so the
//!   host draws the mosaic and encodes it for that leg; the same figures again, and the
//!   difference. (The mosaic's end-to-end delay is `media/benches/mosaic_delay.rs`.)
//!
//! Every participant's `call_ended` summary must show the streams it was sent decoded (three
//! per forwarding participant, the mosaic for the fourth), so the figures are those of a
//! conference that works. Under `cargo test` (no `--bench` argument) each stretch is 2 s and
//! no target is asserted.

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;
use std::path::Path;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use support::callisto::Callisto;
use support::measure::{ProcessMeter, ProcessUsage};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(20);
/// Media (and the host's new offers of the streams) settle this long before a stretch.
const WARM_UP: Duration = Duration::from_secs(3);

/// A participant calling the conference at `uri`: pattern `identity`, a tone, WebRTC.
fn participant(dir: &Path, uri: &str, identity: u16, extra: &[&str]) -> BenchResult<Callisto> {
    let home = dir.join(format!("p{identity}"));
    std::fs::create_dir_all(&home)?;
    let (pattern, tone) = (
        identity.to_string(),
        format!("tone:{}", 300 + 200 * identity),
    );
    let mut args = vec![
        "--media",
        "webrtc",
        "--audio",
        &tone,
        "--video",
        "pattern",
        "--pattern-id",
        &pattern,
    ];
    args.extend_from_slice(extra);
    let mut peer = Callisto::call(&home, uri, &args)?;
    peer.expect("answered", WAIT)?;
    Ok(peer)
}

/// The further streams a participant's summary lists, with their decoded frames.
fn streams(summary: &Value) -> Vec<(String, u64)> {
    summary["video"]["streams"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .map(|s| {
                    let name = s["name"].as_str().unwrap_or_default().to_owned();
                    (name, s["frames_decoded"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn measure(host: &Callisto, stretch: Duration) -> BenchResult<ProcessUsage> {
    thread::sleep(WARM_UP);
    let meter = ProcessMeter::start(host.pid())?;
    thread::sleep(stretch);
    Ok(meter.finish()?)
}

fn main() -> BenchResult<()> {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let stretch = Duration::from_secs(if benching { 10 } else { 2 });
    let dir = tempfile::Builder::new()
        .prefix("callisto-conference-bench-")
        .tempdir()?;
    let listen = format!("127.0.0.1:{}", support::free_port());
    // The conference outlasts both stretches; ending it hangs everyone up.
    let seconds = (2 * (WARM_UP + stretch) + Duration::from_secs(6)).as_secs();
    let host_home = dir.path().join("host");
    std::fs::create_dir_all(&host_home)?;
    let duration = seconds.to_string();
    let mut host = Callisto::start(
        &host_home,
        &[
            "conference",
            "--host",
            "--listen",
            &listen,
            "--audio",
            "tone:440",
            "--video",
            "pattern",
            "--pattern-id",
            "1",
            "--duration",
            &duration,
            "--json",
        ],
    )?;
    host.expect("conference", WAIT)?;
    let uri = format!("sip:conference@{listen}");
    let mut forwarding: Vec<Callisto> = (2..=4)
        .map(|identity| participant(dir.path(), &uri, identity, &[]))
        .collect::<BenchResult<_>>()?;
    let four = measure(&host, stretch)?;
    let mut mosaic = participant(dir.path(), &uri, 5, &["--single-stream"])?;
    let five = measure(&host, stretch)?;

    let ended = host.expect("conference_ended", WAIT + Duration::from_secs(seconds))?;
    let joined = ended["joined"].as_array().map_or(0, Vec::len);
    assert_eq!(joined, 4, "{ended}");
    for (number, peer) in forwarding.iter_mut().enumerate() {
        let summary = peer.expect("call_ended", WAIT)?;
        let streams = streams(&summary);
        let host_frames = summary["video"]["frames_decoded"].as_u64().unwrap_or(0);
        println!(
            "participant {}: host {host_frames} frames, streams {streams:?}",
            number + 2
        );
        assert!(host_frames > 0, "no host picture: {summary}");
        assert!(
            streams.len() >= 2 && streams.iter().all(|(_, frames)| *frames > 0),
            "forwarded streams not decoded: {summary}"
        );
    }
    let summary = mosaic.expect("call_ended", WAIT)?;
    let frames = summary["video"]["frames_decoded"].as_u64().unwrap_or(0);
    println!("mosaic participant: {frames} frames of the mosaic");
    assert!(frames > 0 && streams(&summary).is_empty(), "{summary}");

    println!();
    println!(
        "{:<58} {:>8} {:>12}",
        "host of a 640x480@30 video conference", "CPU %", "peak RSS KiB"
    );
    let row = |what: &str, usage: &ProcessUsage| {
        println!(
            "{what:<58} {:>8.1} {:>12}",
            usage.cpu_percent, usage.peak_rss_kib
        );
    };
    row(
        "4 parties (host + 3 WebRTC participants), forwarding",
        &four,
    );
    row("the same + 1 single-stream participant (mosaic leg)", &five);
    println!(
        "{:<58} {:>8.1}",
        "extra cost of the mosaic leg",
        five.cpu_percent - four.cpu_percent
    );
    println!(
        "(measured over {} s each, after {} s of warm-up)",
        stretch.as_secs(),
        WARM_UP.as_secs()
    );
    Ok(())
}
