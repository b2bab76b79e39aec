//! `cargo bench --bench call_baseline`: Callisto's calls beside the baseline they are compared
//! with — baresip calling baresip — through the same test Kamailio, on loopback, in one run.
//!
//! Four scenarios, run in alternating rounds (each round runs every scenario once, starting
//! with a different one each time, so machine load drifts over all of them alike):
//!
//! - **baresip → baresip**: two registered baresip phones limited to Opus, each playing an
//!   8 kHz mono tone from a WAV file (baresip resamples it to Opus's 48 kHz stereo), no
//!   recording. The source is 8 kHz because baresip's `aufile` reads the whole WAV before it
//!   sends its 200 OK: a 48 kHz file as long as the call adds tens of milliseconds of file
//!   loading to the callee's answer.
//! - **Callisto → Callisto**: `callisto call` and `callisto answer`, both registered, Opus
//!   only, plain RTP (as the phones), each playing its tone generator (`--audio tone:HZ`, 48 kHz
//!   mono, Callisto's stand-in for a microphone), no recording.
//! - **Callisto → Callisto, SRTP**: the same with SDES-SRTP (`--srtp mandatory`): encode,
//!   decode, jitter buffer and SRTP both ways, the whole call the CPU figure is about.
//! - **Callisto → baresip**: `callisto call` to the baresip phone.
//!
//! Every call starts from a fresh Kamailio and fresh user agents; the caller calls, the callee
//! answers at once. Measured:
//!
//! - **INVITE → 200 OK**: Kamailio's receive time of the INVITE to its receive time of the 200
//!   (`CALLISTO-CALL`/`CALLISTO-REPLY` timestamps, microseconds, one clock);
//! - **INVITE → callee's first RTP**: the same INVITE time to the first RTP packet the callee
//!   sends, as the kernel timed it leaving on the loopback interface: a packet socket captures
//!   from before the call until 300 ms after it is up, and the callee's packets are those from
//!   its UDP sockets' ports (the wall clock again, so the two compare directly). Nothing is
//!   attached to the user agents: an strace of the callee, which this bench used before,
//!   stopped it at every system call and delayed its answer by about a millisecond;
//! - **CPU**: user + system time of each process over the established call (from its CPU-time
//!   clock, after the capture has stopped), in percent of one core;
//! - **peak RSS**: `VmHWM` of each process at the end of the call;
//! - **private memory**: `RssAnon` of each process at the end of the call — the resident set
//!   less the mapped pages of its executable and libraries (shared, clean, droppable). The
//!   peak RSS of a large executable is mostly such pages.
//!
//! The table shows median, min and max over the rounds, then the ratio of each Callisto
//! scenario's median to baresip's (below 1: Callisto does better). Under `cargo test` (no
//! `--bench` argument) it does one round with 2 s calls and fails if any figure is missing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use support::baresip::Baresip;
use support::baresip_events::BaresipEvent;
use support::baresip_phone::{Codec, PhoneConfig};
use support::callisto::Callisto;
use support::kamailio::{Kamailio, KamailioConfig};
use support::measure::{measure_established_call, median, print_spread_table, CallMeasurement};
use support::wav;
use support::wire_capture::WireCapture;

const WAIT: Duration = Duration::from_secs(5);
const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1270.0;

/// Who calls whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    BaresipToBaresip,
    CallistoToCallisto,
    CallistoToCallistoSrtp,
    CallistoToBaresip,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::BaresipToBaresip,
        Scenario::CallistoToCallisto,
        Scenario::CallistoToCallistoSrtp,
        Scenario::CallistoToBaresip,
    ];

    fn label(self) -> &'static str {
        match self {
            Scenario::BaresipToBaresip => "baresip -> baresip",
            Scenario::CallistoToCallisto => "Callisto -> Callisto",
            Scenario::CallistoToCallistoSrtp => "Callisto -> Callisto, SRTP",
            Scenario::CallistoToBaresip => "Callisto -> baresip",
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A user agent in a measured call.
enum Agent {
    Baresip(Baresip),
    Callisto(Callisto),
}

impl Agent {
    fn pid(&self) -> u32 {
        match self {
            Agent::Baresip(phone) => phone.pid(),
            Agent::Callisto(callisto) => callisto.pid(),
        }
    }

    /// Waits until this agent sees the call established.
    fn wait_established(&mut self) -> Result<(), Box<dyn Error>> {
        match self {
            Agent::Baresip(phone) => {
                phone.wait_for_event(|e| matches!(e, BaresipEvent::Established { .. }), WAIT)?;
            }
            Agent::Callisto(callisto) => {
                callisto.expect("answered", WAIT)?;
            }
        }
        Ok(())
    }
}

/// A registered baresip phone limited to Opus, playing `wav`, not recording.
fn baresip(user: &str, password: &str, port: u16, wav: &Path) -> Result<Baresip, Box<dyn Error>> {
    let phone = Baresip::start_phone(
        PhoneConfig::registered(user, password, port)
            .codecs(&[Codec::Opus])
            .recording(false)
            .playing(wav),
    )?;
    phone.wait_for_registered(WAIT)?;
    Ok(phone)
}

/// `callisto COMMAND` registered as `user`, Opus only, SRTP as `srtp` says (`off`, `mandatory`),
/// playing a tone, not recording.
fn callisto(
    dir: &Path,
    command: &[&str],
    (user, password): (&str, &str),
    port: u16,
    hz: f32,
    srtp: &str,
) -> Result<Callisto, Box<dyn Error>> {
    let dir = dir.join(user);
    std::fs::create_dir_all(&dir)?;
    let aor = format!("sip:{user}@127.0.0.1:{port}");
    let registrar = format!("sip:127.0.0.1:{port}");
    let tone = format!("tone:{hz}");
    let mut args = command.to_vec();
    args.extend([
        "--user",
        &aor,
        "--password",
        password,
        "--registrar",
        &registrar,
        "--listen",
        "127.0.0.1:0",
        "--audio",
        &tone,
        "--codecs",
        "opus",
        "--srtp",
        srtp,
        "--json",
    ]);
    Ok(Callisto::start(&dir, &args)?)
}

/// One call of `scenario` from a fresh start, measured.
fn one_call(scenario: Scenario, call_time: Duration) -> Result<CallMeasurement, Box<dyn Error>> {
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
    wav::write_tone(&alice_wav, ALICE_HZ, 8000, 1, seconds)?;
    wav::write_tone(&bob_wav, BOB_HZ, 8000, 1, seconds)?;
    let bob_uri = format!("sip:bob@127.0.0.1:{port}");
    let srtp = if scenario == Scenario::CallistoToCallistoSrtp {
        "mandatory"
    } else {
        "off"
    };

    let mut bob = match scenario {
        Scenario::BaresipToBaresip | Scenario::CallistoToBaresip => {
            Agent::Baresip(baresip("bob", "bob-secret", port, &bob_wav)?)
        }
        Scenario::CallistoToCallisto | Scenario::CallistoToCallistoSrtp => {
            let bob_user = ("bob", "bob-secret");
            let mut bob = callisto(dir.path(), &["answer"], bob_user, port, BOB_HZ, srtp)?;
            bob.expect("registered", WAIT)?;
            Agent::Callisto(bob)
        }
    };
    let capture = WireCapture::start()?;
    let mut alice = match scenario {
        Scenario::BaresipToBaresip => {
            let alice = baresip("alice", "alice-secret", port, &alice_wav)?;
            alice.dial(&bob_uri)?;
            Agent::Baresip(alice)
        }
        Scenario::CallistoToCallisto
        | Scenario::CallistoToCallistoSrtp
        | Scenario::CallistoToBaresip => Agent::Callisto(callisto(
            dir.path(),
            &["call", &bob_uri],
            ("alice", "alice-secret"),
            port,
            ALICE_HZ,
            srtp,
        )?),
    };
    alice.wait_established()?;
    bob.wait_established()?;
    let measurement =
        measure_established_call(&kamailio, alice.pid(), bob.pid(), capture, call_time)?;
    match &mut alice {
        Agent::Baresip(phone) => phone.hang_up()?,
        Agent::Callisto(callisto) => {
            callisto.control("hangup")?;
            callisto.expect("call_ended", WAIT)?;
        }
    }
    match &mut bob {
        Agent::Baresip(phone) => {
            phone.wait_for_event(|e| matches!(e, BaresipEvent::Closed { .. }), WAIT)?;
        }
        Agent::Callisto(callisto) => {
            callisto.expect("call_ended", WAIT)?;
        }
    }
    // User agents stop (and unregister) before the proxy.
    drop((alice, bob));
    drop(kamailio);
    Ok(measurement)
}

/// A row of the table: its label, unit, and how to read it from a measurement.
type Row = (
    &'static str,
    &'static str,
    fn(&CallMeasurement) -> Option<f64>,
);

const ROWS: [Row; 8] = [
    ("INVITE -> 200 OK (at the proxy)", "ms", |m| {
        Some(ms(m.setup.invite_to_answer))
    }),
    ("INVITE -> callee's first RTP packet", "ms", |m| {
        m.setup.invite_to_callee_rtp.map(ms)
    }),
    ("caller CPU during the call", "%", |m| {
        Some(m.caller.cpu_percent)
    }),
    ("callee CPU during the call", "%", |m| {
        Some(m.callee.cpu_percent)
    }),
    ("caller peak RSS", "MiB", |m| {
        Some(m.caller.peak_rss_kib as f64 / 1024.0)
    }),
    ("callee peak RSS", "MiB", |m| {
        Some(m.callee.peak_rss_kib as f64 / 1024.0)
    }),
    ("caller private memory", "MiB", |m| {
        Some(m.caller.private_kib as f64 / 1024.0)
    }),
    ("callee private memory", "MiB", |m| {
        Some(m.callee.private_kib as f64 / 1024.0)
    }),
];

fn main() -> Result<(), Box<dyn Error>> {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let (rounds, call_time) = if benching {
        (5, Duration::from_secs(10))
    } else {
        (1, Duration::from_secs(2))
    };
    let mut results: Vec<(Scenario, Vec<CallMeasurement>)> =
        Scenario::ALL.iter().map(|&s| (s, Vec::new())).collect();
    for round in 0..rounds {
        for i in 0..Scenario::ALL.len() {
            let index = (round + i) % Scenario::ALL.len();
            let (scenario, measurements) = &mut results[index];
            measurements.push(one_call(*scenario, call_time)?);
        }
    }
    for (scenario, measurements) in &results {
        let rows: Vec<(&str, &str, Vec<f64>)> = ROWS
            .iter()
            .map(|(label, unit, pick)| {
                (
                    *label,
                    *unit,
                    measurements.iter().filter_map(pick).collect(),
                )
            })
            .collect();
        print_spread_table(
            &format!(
                "call_baseline: {} through Kamailio, Opus, {:?} calls, {rounds} round(s)",
                scenario.label(),
                call_time
            ),
            &rows,
        );
        if let Some((label, _, _)) = rows.iter().find(|(_, _, values)| values.len() < rounds) {
            return Err(
                format!("{}: no value for `{label}` in some round", scenario.label()).into(),
            );
        }
    }
    let medians = |scenario: Scenario, pick: fn(&CallMeasurement) -> Option<f64>| {
        let (_, measurements) = &results[Scenario::ALL
            .iter()
            .position(|&s| s == scenario)
            .unwrap_or(0)];
        median(measurements.iter().filter_map(pick).collect())
    };
    println!("call_baseline: Callisto / baresip (medians; below 1 is better)");
    let compared = [
        Scenario::CallistoToCallisto,
        Scenario::CallistoToCallistoSrtp,
        Scenario::CallistoToBaresip,
    ];
    let header: String = compared
        .iter()
        .map(|s| format!(" {:>28}", s.label()))
        .collect();
    println!("  {:<44}{header}", "");
    for (label, _, pick) in ROWS {
        let baseline = medians(Scenario::BaresipToBaresip, pick);
        let ratios: String = compared
            .iter()
            .map(|&s| format!(" {:>28.2}", medians(s, pick) / baseline))
            .collect();
        println!("  {label:<44}{ratios}");
    }
    Ok(())
}
