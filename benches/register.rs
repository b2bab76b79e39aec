//! `cargo bench --bench register`: `callisto register --once` against a local Kamailio, beside
//! baresip registering with the same Kamailio in the same run.
//!
//! Reports, as medians over the runs:
//! - Callisto's process wall time (start → registered → unregistered → exit) and peak RSS;
//! - the registrar-side time from the first REGISTER to the saved binding (REGISTER, 401,
//!   authorised REGISTER), for Callisto and for baresip;
//! - baresip's time from its start to its `200 OK`.
//!
//! Run under `cargo test` (no `--bench` argument) it does one round of each, as a smoke test.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::baresip::{Baresip, BaresipConfig};
use support::kamailio::{Kamailio, KamailioConfig};

const CALLISTO: &str = env!("CARGO_BIN_EXE_callisto");

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Registrar-side time from the first REGISTER to the saved binding, in ms, by Kamailio's own
/// microsecond timestamps in its log lines.
fn register_to_saved(kamailio: &Kamailio) -> Option<f64> {
    let first = kamailio.registers().first()?.at?;
    let saved = kamailio.saved().first()?.at?;
    Some(saved.checked_sub(first)? as f64 / 1000.0)
}

/// Registrar-side time from the 401 to the REGISTER that answers it (the client's turnaround
/// plus loopback), in ms.
fn challenge_turnaround(kamailio: &Kamailio) -> Option<f64> {
    let registers = kamailio.registers();
    Some(registers.get(1)?.at?.checked_sub(registers.first()?.at?)? as f64 / 1000.0)
}

/// Waits for `child` and returns whether it succeeded and its peak RSS in MB.
fn wait_with_rss(child: std::process::Child) -> (bool, f64) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let ok = waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, usage.ru_maxrss as f64 / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds = if benching { 15 } else { 1 };
    let config = || KamailioConfig {
        users: vec![("alice".into(), "secret".into())],
        ..KamailioConfig::default()
    };

    let (mut wall, mut callisto_reg, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let (mut callisto_turn, mut baresip_turn) = (Vec::new(), Vec::new());
    let (mut baresip_start, mut baresip_reg) = (Vec::new(), Vec::new());
    let (mut outbound_reg, mut outbound_turn) = (Vec::new(), Vec::new());
    // Rounds alternate between the two clients so both see the same machine.
    // Kamailio's helper processes finish starting after it listens; both clients meet a settled
    // server.
    let settle = Duration::from_millis(if benching { 300 } else { 50 });
    for _ in 0..rounds {
        let kamailio = Kamailio::start(config())?;
        std::thread::sleep(settle);
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let child = Command::new(CALLISTO)
            .arg("--config")
            .arg(dir.path().join("callisto.toml"))
            .args([
                "register",
                "--user",
                "sip:alice@127.0.0.1",
                "--password",
                "secret",
            ])
            .args([
                "--registrar",
                &kamailio.udp_uri(),
                "--listen",
                "127.0.0.1:0",
                "--once",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let (ok, peak) = wait_with_rss(child);
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        rss.push(peak);
        assert!(ok, "callisto register --once failed");
        kamailio.wait_for_saved(1, Duration::from_secs(2));
        callisto_reg.extend(register_to_saved(&kamailio));
        callisto_turn.extend(challenge_turnaround(&kamailio));
        drop(kamailio);

        let kamailio = Kamailio::start(config())?;
        std::thread::sleep(settle);
        let baresip = Baresip::start(BaresipConfig::registering(
            "alice",
            "secret",
            kamailio.config().udp_port,
            600,
        ))?;
        let took = baresip.wait_for_registered(Duration::from_secs(5))?;
        baresip_start.push(took.as_secs_f64() * 1000.0);
        kamailio.wait_for_saved(1, Duration::from_secs(2));
        baresip_reg.extend(register_to_saved(&kamailio));
        baresip_turn.extend(challenge_turnaround(&kamailio));
        drop(baresip);
        drop(kamailio);

        // baresip with RFC 5626 outbound, so that its REGISTER carries `+sip.instance` and
        // `reg-id` as Callisto's does: the registrar's work is then the same for both.
        let kamailio = Kamailio::start(config())?;
        std::thread::sleep(settle);
        let port = kamailio.config().udp_port;
        let mut outbound = BaresipConfig::registering("alice", "secret", port, 600);
        outbound.accounts[0].push_str(&format!(
            ";sipnat=outbound;outbound=\"sip:127.0.0.1:{port};transport=udp\""
        ));
        // Outbound needs an instance UUID, which the `uuid` module creates.
        outbound.app_modules.insert(0, "uuid.so".to_owned());
        let baresip = Baresip::start(outbound)?;
        baresip.wait_for_registered(Duration::from_secs(5))?;
        kamailio.wait_for_saved(1, Duration::from_secs(2));
        let registers = kamailio.registers();
        assert!(
            registers
                .first()
                .and_then(|r| r.contact.as_deref())
                .is_some_and(|c| c.contains("reg-id")),
            "baresip sends reg-id with outbound: {registers:?}"
        );
        outbound_reg.extend(register_to_saved(&kamailio));
        outbound_turn.extend(challenge_turnaround(&kamailio));
    }

    println!("register ({rounds} rounds, medians)");
    println!(
        "  callisto register --once wall time   {:8.2} ms",
        median(wall)
    );
    println!(
        "  callisto peak RSS                    {:8.2} MB",
        median(rss)
    );
    println!(
        "  callisto REGISTER -> saved (server)  {:8.3} ms",
        median(callisto_reg)
    );
    println!(
        "  baresip  REGISTER -> saved (server)  {:8.3} ms",
        median(baresip_reg)
    );
    println!(
        "  callisto 401 -> next REGISTER        {:8.3} ms",
        median(callisto_turn)
    );
    println!(
        "  baresip  401 -> next REGISTER        {:8.3} ms",
        median(baresip_turn)
    );
    println!(
        "  baresip+outbound REGISTER -> saved   {:8.3} ms",
        median(outbound_reg)
    );
    println!(
        "  baresip+outbound 401 -> REGISTER     {:8.3} ms",
        median(outbound_turn)
    );
    println!(
        "  baresip  start -> 200 OK             {:8.2} ms",
        median(baresip_start)
    );
    Ok(())
}
