//! `cargo bench --bench call_webrtc`: Callisto's WebRTC calls beside the browser-to-browser
//! baseline, on loopback, in one run.
//!
//! - **Setup**: Callisto calls Callisto directly (`callisto answer --listen 127.0.0.1:PORT
//!   --media webrtc --video pattern`, `callisto call sip:bob@127.0.0.1:PORT …`), H.264
//!   640x480@30 and Opus both ways, once per round with a fresh caller and the same callee.
//!   Measured: the caller's `call_ended` summary, `video.first_frame_ms` (INVITE sent → first
//!   decoded frame of the callee's video) and `setup_ms` (INVITE sent → 200 OK). Target: a
//!   median under 150 ms for the first frame.
//! - **Relayed setup**: the same calls with both sides relay-only through coturn on loopback
//!   (`--turn … --relay-only`, `tests/support/coturn.rs`), so that ICE, DTLS and media all
//!   cross the TURN server: the same two figures, from a fresh callee.
//! - **Load**: one such call lasting the measured stretch plus a second of warm-up; the CPU
//!   time (user + system, all threads) of each `callisto` process over the stretch, in percent
//!   of one core (target: under 40 %), and each one's peak RSS (`VmHWM`).
//! - **Browser baseline**: two headless Chromium pages (JsSIP over Kamailio's WebSocket,
//!   `tests/support/browser.rs`, fake 640x480@30 camera, H.264 first) call each other once per
//!   round: INVITE sent → first decoded frame (the caller page's own clock), and over the
//!   first call's measured stretch the CPU of each Chromium process tree.
//!
//! The table shows median, min and max over the rounds, then the ratios Callisto / browser.
//! The browsers' calls cross Kamailio (one proxy hop on loopback); Callisto's are direct.
//! Under `cargo test` (no `--bench` argument) it does one round of each with a 2 s stretch and
//! fails if any figure is missing; it asserts no target.

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::browser::{Browser, BrowserConfig};
use support::callisto::{webrtc_video_args, Callisto};
use support::coturn::{Coturn, TURN_PASSWORD};
use support::kamailio::{Kamailio, KamailioConfig};
use support::measure::{median, print_spread_table, ProcessMeter, ProcessUsage};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(20);
/// Media flows this long before the measured stretch starts.
const WARM_UP: Duration = Duration::from_secs(1);

/// How much to run: rounds of setup and the measured stretch.
struct Plan {
    setup_rounds: usize,
    browser_rounds: usize,
    stretch: Duration,
}

/// What the Callisto side measured.
#[derive(Default)]
struct CallistoFigures {
    first_frame_ms: Vec<f64>,
    setup_ms: Vec<f64>,
    caller: Option<ProcessUsage>,
    callee: Option<ProcessUsage>,
    caller_fps: Vec<f64>,
}

/// What the browser side measured.
#[derive(Default)]
struct BrowserFigures {
    first_frame_ms: Vec<f64>,
    confirmed_ms: Vec<f64>,
    caller_cpu_percent: Vec<f64>,
    callee_cpu_percent: Vec<f64>,
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// `callisto answer` for `count` calls on `port`, in `dir`, with `extra` flags.
fn callee(dir: &Path, port: u16, count: usize, extra: &[String]) -> BenchResult<Callisto> {
    let home = dir.join("bob");
    std::fs::create_dir_all(&home)?;
    let listen = format!("127.0.0.1:{port}");
    let count = count.to_string();
    let mut args = vec!["answer", "--listen", &listen, "--count", &count];
    args.extend(webrtc_video_args("tone:1000", "2"));
    args.extend(extra.iter().map(String::as_str));
    let mut bob = Callisto::start(&home, &args)?;
    bob.expect("listening", WAIT)?;
    Ok(bob)
}

/// `callisto call` to the callee on `port`, hanging up after `seconds`, with `extra` flags.
fn caller(
    dir: &Path,
    port: u16,
    seconds: f64,
    round: usize,
    extra: &[String],
) -> BenchResult<Callisto> {
    let home = dir.join(format!("alice-{round}"));
    std::fs::create_dir_all(&home)?;
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let duration = format!("{seconds}");
    let mut args = vec![
        "call",
        &uri,
        "--listen",
        "127.0.0.1:0",
        "--duration",
        &duration,
    ];
    args.extend(webrtc_video_args("tone:440", "1"));
    args.extend(extra.iter().map(String::as_str));
    Ok(Callisto::start(&home, &args)?)
}

/// The caller's summary of one finished call, after both sides reported its end.
fn finish(alice: &mut Callisto, bob: &mut Callisto, round: usize) -> BenchResult<Value> {
    let ended = alice.expect("call_ended", WAIT)?;
    bob.expect_matching(
        "call_ended",
        |event| event["call"].as_u64() == Some(round as u64 + 1),
        WAIT,
    )?;
    if !alice.wait(WAIT)?.success() {
        return Err(format!("the caller failed: {}", alice.stderr()).into());
    }
    Ok(ended)
}

/// `rounds` one-second calls to `bob` on `port` (which answers `extra` too); their first
/// frames and setup times go into `figures`.
fn setup_rounds(
    dir: &Path,
    port: u16,
    bob: &mut Callisto,
    rounds: usize,
    extra: &[String],
    figures: &mut CallistoFigures,
) -> BenchResult<()> {
    for round in 0..rounds {
        let mut alice = caller(dir, port, 1.0, round, extra)?;
        let ended = finish(&mut alice, bob, round)?;
        let first_frame = number(&ended["video"]["first_frame_ms"])
            .ok_or_else(|| format!("no first frame in {ended}"))?;
        figures.first_frame_ms.push(first_frame);
        if let Some(setup) = number(&ended["setup_ms"]) {
            figures.setup_ms.push(setup);
        }
    }
    Ok(())
}

/// Setup rounds through a TURN server only.
fn relayed_figures(plan: &Plan) -> BenchResult<CallistoFigures> {
    let coturn = Coturn::start()?;
    let dir = tempfile::Builder::new()
        .prefix("callisto-bench-webrtc-relay-")
        .tempdir()?;
    let extra = coturn.relay_only_flags(TURN_PASSWORD);
    let port = support::free_port();
    let mut bob = callee(dir.path(), port, plan.setup_rounds, &extra)?;
    let mut figures = CallistoFigures::default();
    setup_rounds(
        dir.path(),
        port,
        &mut bob,
        plan.setup_rounds,
        &extra,
        &mut figures,
    )?;
    if !bob.wait(WAIT)?.success() {
        return Err(format!("the relayed callee failed: {}", bob.stderr()).into());
    }
    Ok(figures)
}

/// Setup rounds, then the measured call.
fn callisto_figures(plan: &Plan) -> BenchResult<CallistoFigures> {
    let dir = tempfile::Builder::new()
        .prefix("callisto-bench-webrtc-")
        .tempdir()?;
    let port = support::free_port();
    let mut bob = callee(dir.path(), port, plan.setup_rounds + 1, &[])?;
    let mut figures = CallistoFigures::default();
    setup_rounds(
        dir.path(),
        port,
        &mut bob,
        plan.setup_rounds,
        &[],
        &mut figures,
    )?;
    // The measured call.
    let round = plan.setup_rounds;
    let seconds = (WARM_UP + plan.stretch).as_secs_f64() + 0.5;
    let mut alice = caller(dir.path(), port, seconds, round, &[])?;
    alice.expect("answered", WAIT)?;
    std::thread::sleep(WARM_UP);
    let alice_meter = ProcessMeter::start(alice.pid())?;
    let bob_meter = ProcessMeter::start(bob.pid())?;
    std::thread::sleep(plan.stretch);
    figures.caller = Some(alice_meter.finish()?);
    figures.callee = Some(bob_meter.finish()?);
    let ended = finish(&mut alice, &mut bob, round)?;
    figures.caller_fps.extend(number(&ended["video"]["fps"]));
    if !bob.wait(WAIT)?.success() {
        return Err(format!("the callee failed: {}", bob.stderr()).into());
    }
    Ok(figures)
}

/// A browser softphone registered as `user` (password `USER-secret`) over WebSocket, whose
/// microphone plays `hz`.
fn browser(
    kamailio: &Kamailio,
    config: BrowserConfig,
    user: &str,
    hz: f32,
    dir: &Path,
) -> BenchResult<Browser> {
    let password = format!("{user}-secret");
    let ws = kamailio.ws_url();
    Ok(Browser::registered(
        config,
        &ws,
        (user, &password),
        hz,
        dir,
    )?)
}

/// Browser calls: setup every round, CPU over the first call's stretch.
fn browser_figures(plan: &Plan) -> BenchResult<BrowserFigures> {
    let kamailio = Kamailio::start(KamailioConfig::websocket_for_alice_and_bob())?;
    let dir = tempfile::Builder::new()
        .prefix("callisto-bench-browsers-")
        .tempdir()?;
    let alice_config = BrowserConfig {
        prefer_h264: true,
        ..BrowserConfig::new("alice")
    };
    let mut alice = browser(&kamailio, alice_config, "alice", 440.0, dir.path())?;
    let mut bob = browser(
        &kamailio,
        BrowserConfig::auto_answering("bob"),
        "bob",
        1000.0,
        dir.path(),
    )?;
    let mut figures = BrowserFigures::default();
    for round in 0..plan.browser_rounds {
        alice.call_preferring_h264("sip:bob@127.0.0.1", true, true)?;
        let confirmed = alice.wait_for_confirmed(WAIT)?;
        let first_frame = alice.wait_for_event("first_frame", WAIT)?;
        bob.wait_for_event("first_frame", WAIT)?;
        figures.first_frame_ms.push(
            number(&first_frame["ms_since_invite"])
                .ok_or_else(|| format!("no ms_since_invite in {first_frame}"))?,
        );
        figures
            .confirmed_ms
            .extend(number(&confirmed["ms_since_invite"]));
        if round == 0 {
            std::thread::sleep(WARM_UP);
            let (alice_cpu, bob_cpu) = (alice.chromium_cpu_time(), bob.chromium_cpu_time());
            let started = Instant::now();
            std::thread::sleep(plan.stretch);
            let wall = started.elapsed().as_secs_f64();
            let percent = |cpu: Duration| 100.0 * cpu.as_secs_f64() / wall;
            figures
                .caller_cpu_percent
                .push(percent(alice.chromium_cpu_time().saturating_sub(alice_cpu)));
            figures
                .callee_cpu_percent
                .push(percent(bob.chromium_cpu_time().saturating_sub(bob_cpu)));
        }
        alice.hang_up()?;
        alice.wait_for_event("ended", WAIT)?;
        bob.wait_for_event("ended", WAIT)?;
    }
    drop((alice, bob));
    drop(kamailio);
    Ok(figures)
}

fn mib(usage: &Option<ProcessUsage>) -> Vec<f64> {
    usage
        .iter()
        .map(|u| u.peak_rss_kib as f64 / 1024.0)
        .collect()
}

fn cpu(usage: &Option<ProcessUsage>) -> Vec<f64> {
    usage.iter().map(|u| u.cpu_percent).collect()
}

fn main() -> BenchResult<()> {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let plan = if benching {
        Plan {
            setup_rounds: 10,
            browser_rounds: 5,
            stretch: Duration::from_secs(10),
        }
    } else {
        Plan {
            setup_rounds: 1,
            browser_rounds: 1,
            stretch: Duration::from_secs(2),
        }
    };
    let callisto = callisto_figures(&plan)?;
    let relayed = relayed_figures(&plan)?;
    let browsers = browser_figures(&plan)?;
    let rows = [
        (
            "Callisto INVITE -> first decoded frame",
            "ms",
            callisto.first_frame_ms.clone(),
        ),
        ("Callisto INVITE -> 200 OK", "ms", callisto.setup_ms.clone()),
        (
            "Callisto relayed INVITE -> first frame",
            "ms",
            relayed.first_frame_ms.clone(),
        ),
        (
            "Callisto relayed INVITE -> 200 OK",
            "ms",
            relayed.setup_ms.clone(),
        ),
        (
            "browser INVITE -> first decoded frame",
            "ms",
            browsers.first_frame_ms.clone(),
        ),
        (
            "browser INVITE -> 200 OK (confirmed)",
            "ms",
            browsers.confirmed_ms.clone(),
        ),
        ("Callisto caller CPU", "%", cpu(&callisto.caller)),
        ("Callisto callee CPU", "%", cpu(&callisto.callee)),
        (
            "browser caller CPU (Chromium tree)",
            "%",
            browsers.caller_cpu_percent.clone(),
        ),
        (
            "browser callee CPU (Chromium tree)",
            "%",
            browsers.callee_cpu_percent.clone(),
        ),
        ("Callisto caller peak RSS", "MiB", mib(&callisto.caller)),
        ("Callisto callee peak RSS", "MiB", mib(&callisto.callee)),
        (
            "Callisto caller decoded frame rate",
            "fps",
            callisto.caller_fps.clone(),
        ),
    ];
    print_spread_table(
        &format!(
            "call_webrtc: H.264 640x480@30 + Opus both ways on loopback; {} Callisto setup \
             round(s), {} browser round(s), CPU over {:?}",
            plan.setup_rounds, plan.browser_rounds, plan.stretch
        ),
        &rows,
    );
    let ratio = |ours: &[f64], theirs: &[f64]| median(ours.to_vec()) / median(theirs.to_vec());
    println!("  ratios (median Callisto / median browser):");
    println!(
        "    INVITE -> first frame   {:.2}",
        ratio(&callisto.first_frame_ms, &browsers.first_frame_ms)
    );
    println!(
        "    caller CPU              {:.2}",
        ratio(&cpu(&callisto.caller), &browsers.caller_cpu_percent)
    );
    println!(
        "    callee CPU              {:.2}",
        ratio(&cpu(&callisto.callee), &browsers.callee_cpu_percent)
    );
    if let Some((label, _, _)) = rows.iter().find(|(_, _, values)| values.is_empty()) {
        return Err(format!("no value for `{label}`").into());
    }
    Ok(())
}
