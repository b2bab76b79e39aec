//! `cargo bench --bench call_baseline`: the baseline Callisto's calls are compared with —
//! baresip calling baresip through the test Kamailio, on loopback, in one run.
//!
//! Each run starts a fresh Kamailio and two registered baresip phones limited to Opus, each
//! playing an 8 kHz mono tone (baresip resamples it to Opus's 48 kHz stereo) with no recording.
//! The source is 8 kHz because baresip's `aufile` reads the whole WAV before it sends its 200
//! OK: a 48 kHz file as long as the call adds tens of milliseconds of file loading to the
//! callee's answer. Alice calls Bob, who answers at once. Measured:
//!
//! - **INVITE → 200 OK**: Kamailio's receive time of the INVITE to its receive time of the 200
//!   (`CALLISTO-CALL`/`CALLISTO-REPLY` timestamps, microseconds, one clock);
//! - **INVITE → callee's first RTP**: the same INVITE time to the first RTP packet Bob sends,
//!   timed by `strace -f -ttt -e trace=sendto,sendmsg,sendmmsg` attached to Bob before the call
//!   and detached 300 ms after it is up (the wall clock again, so the two compare directly;
//!   tracing adds some tens of microseconds to each of Bob's sends during setup);
//! - **CPU**: user + system time of each baresip process over the call (from `/proc/<pid>/stat`
//!   after the trace is detached), in percent of one core;
//! - **peak RSS**: `VmHWM` of each process at the end of the call.
//!
//! The table shows median, min and max over the runs. Under `cargo test` (no `--bench`
//! argument) it does one run with a 2 s call and fails if any figure is missing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;
use std::time::Duration;

use support::baresip::Baresip;
use support::baresip_events::BaresipEvent;
use support::baresip_phone::{Codec, PhoneConfig};
use support::kamailio::{Kamailio, KamailioConfig};
use support::measure::{measure_established_call, print_spread_table, CallMeasurement, SendTrace};
use support::wav;

const WAIT: Duration = Duration::from_secs(5);

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One call from a fresh start, measured.
fn one_call(call_time: Duration) -> Result<CallMeasurement, Box<dyn Error>> {
    let kamailio = Kamailio::start(KamailioConfig {
        users: vec![
            ("alice".to_owned(), "alice-secret".to_owned()),
            ("bob".to_owned(), "bob-secret".to_owned()),
        ],
        ..KamailioConfig::default()
    })?;
    let port = kamailio.config().udp_port;
    let dir = tempfile::Builder::new()
        .prefix("callisto-call-baseline-")
        .tempdir()?;
    let seconds = call_time.as_secs_f32() + 5.0;
    let alice_wav = dir.path().join("alice.wav");
    let bob_wav = dir.path().join("bob.wav");
    wav::write_tone(&alice_wav, 440.0, 8000, 1, seconds)?;
    wav::write_tone(&bob_wav, 1270.0, 8000, 1, seconds)?;
    let phone = |user: &str, password: &str, wav: &std::path::Path| {
        PhoneConfig::registered(user, password, port)
            .codecs(&[Codec::Opus])
            .recording(false)
            .playing(wav)
    };
    let alice = Baresip::start_phone(phone("alice", "alice-secret", &alice_wav))?;
    let bob = Baresip::start_phone(phone("bob", "bob-secret", &bob_wav))?;
    alice.wait_for_registered(WAIT)?;
    bob.wait_for_registered(WAIT)?;

    let bob_sends = SendTrace::attach(bob.pid(), &dir.path().join("bob.strace"))?;
    alice.dial(&format!("sip:bob@127.0.0.1:{port}"))?;
    let established = |e: &BaresipEvent| matches!(e, BaresipEvent::Established { .. });
    alice.wait_for_event(established, WAIT)?;
    bob.wait_for_event(established, WAIT)?;
    let measurement =
        measure_established_call(&kamailio, alice.pid(), bob.pid(), bob_sends, call_time)?;
    alice.hang_up()?;
    bob.wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
    // Phones stop (and unregister) before the proxy: declared after it, dropped before it.
    drop((alice, bob));
    drop(kamailio);
    Ok(measurement)
}

fn main() -> Result<(), Box<dyn Error>> {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let (runs, call_time) = if benching {
        (5, Duration::from_secs(10))
    } else {
        (1, Duration::from_secs(2))
    };
    let mut measurements = Vec::new();
    for _ in 0..runs {
        measurements.push(one_call(call_time)?);
    }
    let column = |pick: fn(&CallMeasurement) -> Option<f64>| -> Vec<f64> {
        measurements.iter().filter_map(pick).collect()
    };
    let rows = [
        (
            "INVITE -> 200 OK (at the proxy)",
            "ms",
            column(|m| Some(ms(m.setup.invite_to_answer))),
        ),
        (
            "INVITE -> callee's first RTP packet",
            "ms",
            column(|m| m.setup.invite_to_callee_rtp.map(ms)),
        ),
        (
            "caller CPU during the call",
            "%",
            column(|m| Some(m.caller.cpu_percent)),
        ),
        (
            "callee CPU during the call",
            "%",
            column(|m| Some(m.callee.cpu_percent)),
        ),
        (
            "caller peak RSS",
            "MiB",
            column(|m| Some(m.caller.peak_rss_kib as f64 / 1024.0)),
        ),
        (
            "callee peak RSS",
            "MiB",
            column(|m| Some(m.callee.peak_rss_kib as f64 / 1024.0)),
        ),
    ];
    print_spread_table(
        &format!(
            "call_baseline: baresip -> Kamailio -> baresip, Opus, {:?} calls, {runs} run(s)",
            call_time
        ),
        &rows,
    );
    if let Some((label, _, _)) = rows.iter().find(|(_, _, values)| values.len() < runs) {
        return Err(format!("no value for `{label}` in some run").into());
    }
    Ok(())
}
