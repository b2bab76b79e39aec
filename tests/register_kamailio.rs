//! `callisto register` against a real Kamailio on loopback: UDP, TCP and TLS, digest MD5 and
//! SHA-256, wrong passwords, refresh, a registrar restart, unregister on exit, two accounts.
//! Answers Kamailio does not give (403, 404) come from a scripted registrar.

mod support;

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::callisto::{exited_within, output_within};
use support::kamailio::{DigestAlgorithm, Kamailio, KamailioConfig};
use support::sip_registrar::{asks_for_removal, ScriptedRegistrar};

type TestResult = Result<(), Box<dyn Error>>;

const CALLISTO: &str = env!("CARGO_BIN_EXE_callisto");

fn kamailio(config: KamailioConfig) -> Result<Kamailio, Box<dyn Error>> {
    Ok(Kamailio::start(KamailioConfig {
        users: vec![
            ("alice".into(), "secret".into()),
            ("bob".into(), "hunter2".into()),
        ],
        ..config
    })?)
}

/// `callisto register` with an isolated config file and data dir.
fn register_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(CALLISTO);
    command
        .arg("--config")
        .arg(dir.join("callisto.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("register")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env_remove("CALLISTO_LOG");
    command
}

/// `callisto register` as alice with `password`, at `registrar`, with `flags`; its output once
/// it has exited (a test fails instead of waiting for ever when it does not).
fn alice(
    dir: &std::path::Path,
    password: &str,
    registrar: &str,
    flags: &[&str],
) -> std::io::Result<Output> {
    let mut command = register_command(dir);
    command
        .args(["--user", "sip:alice@127.0.0.1", "--password", password])
        .args(["--registrar", registrar])
        .args(flags);
    output_within(&mut command, Duration::from_secs(30))
}

/// Polls `condition` until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn events(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l["event"].as_str().map(String::from))
        .collect()
}

/// The `registration_failed` JSON line of a run.
fn registration_failed(output: &Output) -> serde_json::Value {
    json_lines(output)
        .into_iter()
        .find(|l| l["event"] == "registration_failed")
        .unwrap_or_else(|| panic!("{}", describe(output)))
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn register_once(kamailio: &Kamailio, registrar: &str, password: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    alice(dir.path(), password, registrar, &["--once", "--json"]).unwrap_or_else(|e| {
        panic!(
            "cannot run callisto: {e}; kamailio log:\n{}",
            kamailio.log_tail(20)
        )
    })
}

fn assert_registered_once(kamailio: &Kamailio, output: &Output, proto: &str) {
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    let lines = json_lines(output);
    assert_eq!(
        events(&lines),
        vec!["registered", "unregistered"],
        "{}",
        describe(output)
    );
    assert_eq!(lines[0]["account"], "sip:alice@127.0.0.1");
    assert_eq!(
        lines[0]["expires"], 300,
        "clamped by the registrar's max_expires"
    );
    // Kamailio's log is read by another thread: let the unregister's line arrive.
    wait_until(Duration::from_secs(2), || {
        kamailio.registers().last().and_then(|r| r.expires.clone()) == Some("0".into())
    });
    let registers = kamailio.registers();
    assert!(registers.iter().all(|r| r.proto == proto), "{registers:?}");
    // 401 challenge, authorised REGISTER, then the unregister with Expires: 0.
    assert!(registers.len() >= 3, "{registers:?}");
    let last = registers.last().unwrap();
    assert_eq!(last.expires.as_deref(), Some("0"), "{registers:?}");
    let call_ids: std::collections::HashSet<_> = registers.iter().map(|r| &r.call_id).collect();
    assert_eq!(call_ids.len(), 1, "one Call-ID for the whole registration");
    let cseqs: Vec<u32> = registers.iter().map(|r| r.cseq).collect();
    assert!(cseqs.windows(2).all(|w| w[1] == w[0] + 1), "{cseqs:?}");
}

#[test]
fn registers_and_unregisters_over_udp() -> TestResult {
    let kamailio = kamailio(KamailioConfig::default())?;
    let registrar = format!("sip:127.0.0.1:{};transport=udp", kamailio.config().udp_port);
    let output = register_once(&kamailio, &registrar, "secret");
    assert_registered_once(&kamailio, &output, "udp");
    Ok(())
}

#[test]
fn registers_and_unregisters_over_tcp() -> TestResult {
    let kamailio = kamailio(KamailioConfig::default())?;
    let registrar = format!("sip:127.0.0.1:{};transport=tcp", kamailio.config().tcp_port);
    let output = register_once(&kamailio, &registrar, "secret");
    assert_registered_once(&kamailio, &output, "tcp");
    Ok(())
}

#[test]
fn registers_with_a_sha256_digest() -> TestResult {
    let kamailio = kamailio(KamailioConfig {
        digest_algorithm: DigestAlgorithm::Sha256,
        ..KamailioConfig::default()
    })?;
    let registrar = format!("sip:127.0.0.1:{}", kamailio.config().udp_port);
    let output = register_once(&kamailio, &registrar, "secret");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let registers = kamailio.registers();
    assert!(
        registers
            .iter()
            .any(|r| r.authorization.as_deref().unwrap_or("").contains("SHA-256")),
        "{registers:?}"
    );
    Ok(())
}

#[test]
fn a_wrong_password_exits_2_without_a_loop_of_registers() -> TestResult {
    let kamailio = kamailio(KamailioConfig::default())?;
    let registrar = format!("sip:127.0.0.1:{}", kamailio.config().udp_port);
    let output = register_once(&kamailio, &registrar, "not-the-password");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let failed = registration_failed(&output);
    assert_eq!(failed["code"], 401);
    assert_eq!(failed["kind"], "authentication_failed");
    // Give a looping client time to show itself, then count.
    std::thread::sleep(Duration::from_millis(1500));
    let registers = kamailio.registers();
    assert_eq!(
        registers.len(),
        2,
        "one unauthenticated, one with credentials: {registers:?}"
    );
    assert!(kamailio.saved().is_empty());
    Ok(())
}

#[test]
fn a_plain_sentence_explains_the_failure_without_json() -> TestResult {
    let kamailio = kamailio(KamailioConfig::default())?;
    let dir = tempfile::tempdir()?;
    let output = alice(dir.path(), "wrong", &kamailio.udp_uri(), &["--once"])?;
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("authentication failed"), "{stdout}");
    assert!(stdout.contains("wrong user name or password"), "{stdout}");
    assert!(
        !stdout.contains("wrong\""),
        "the password is not echoed: {stdout}"
    );
    Ok(())
}

#[test]
fn the_password_reaches_no_output_even_when_everything_is_logged() -> TestResult {
    let kamailio = kamailio(KamailioConfig::default())?;
    let dir = tempfile::tempdir()?;
    let output = register_command(dir.path())
        .env("CALLISTO_LOG", "trace")
        .args(["--user", "sip:bob@127.0.0.1", "--password", "hunter2"])
        .args(["--registrar", &kamailio.udp_uri(), "--once", "--json"])
        .output()?;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("client/REGISTER") && stderr.contains("status=401"),
        "the log follows the REGISTERs through the challenge: {stderr}"
    );
    for (what, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(text);
        assert!(!text.contains("hunter2"), "the password in {what}: {text}");
    }
    Ok(())
}

#[test]
fn an_unreachable_server_exits_3() -> TestResult {
    // A port nobody listens on: no answer over UDP, so Timer F decides (64*T1 with T1 = 50 ms).
    let port = support::free_port();
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("callisto.toml"),
        "[timers]\nt1_ms = 50\nt2_ms = 400\n",
    )?;
    let started = Instant::now();
    let registrar = format!("sip:127.0.0.1:{port}");
    let output = alice(dir.path(), "secret", &registrar, &["--once", "--json"])?;
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(started.elapsed() < Duration::from_secs(10));
    let lines = json_lines(&output);
    assert_eq!(
        lines[0]["event"],
        "registration_failed",
        "{}",
        describe(&output)
    );
    assert_eq!(lines[0]["kind"], "unreachable");
    Ok(())
}

/// A running `callisto register` whose JSON lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(args: &[&str], config: Option<&str>) -> Result<Running, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        if let Some(config) = config {
            std::fs::write(dir.path().join("callisto.toml"), config)?;
        }
        let mut child = register_command(dir.path())
            .args(args)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    if tx.send(value).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Running {
            child,
            lines: rx,
            _dir: dir,
        })
    }

    fn next(&self, timeout: Duration) -> Option<serde_json::Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits for an event named `name`, skipping others.
    fn expect(&self, name: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(line) if line["event"] == name => return line,
                Some(_) => continue,
                None => panic!("no '{name}' event within {timeout:?}"),
            }
        }
    }

    /// Sends `signal` (SIGTERM or SIGINT: the documented ways to stop a registered session)
    /// and waits for the exit.
    fn stop(&mut self, signal: libc::c_int) -> ExitStatus {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
        exited_within(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn short_expiry() -> KamailioConfig {
    KamailioConfig {
        min_expires: 2,
        default_expires: 4,
        max_expires: 4,
        ..KamailioConfig::default()
    }
}

#[test]
fn refreshes_before_expiry_and_unregisters_on_sigterm() -> TestResult {
    let kamailio = kamailio(short_expiry())?;
    let mut running = Running::start(
        &[
            "--user",
            "sip:alice@127.0.0.1",
            "--password",
            "secret",
            "--registrar",
            &kamailio.udp_uri(),
            "--expires",
            "4",
        ],
        None,
    )?;
    let started = Instant::now();
    let first = running.expect("registered", Duration::from_secs(5));
    assert_eq!(first["expires"], 4);
    running.expect("registered", Duration::from_secs(5));
    running.expect("registered", Duration::from_secs(5));
    // Two refreshes of a 4 s binding, each before it expired.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    assert!(
        kamailio.wait_for_saved(3, Duration::from_secs(2)),
        "{:?}",
        kamailio.saved()
    );
    // Each refresh came before the binding ran out, and not much before (RFC 3261 §10.2.4
    // leaves the moment to us; Callisto refreshes at 85 % of the time granted, 3.4 s here):
    // 2.6–3.7 s after the save before, as the registrar's clock saw the saves.
    let saved = kamailio.saved();
    let times: Vec<u64> = saved.iter().filter_map(|s| s.at).take(3).collect();
    assert_eq!(times.len(), 3, "{saved:?}");
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    println!("refreshes {gaps:?} µs after the save before");
    for gap in gaps {
        assert!(
            (2_600_000..3_700_000).contains(&gap),
            "a refresh {gap} µs after the last save: {saved:?}"
        );
    }
    let status = running.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    wait_until(Duration::from_secs(2), || {
        kamailio.registers().last().and_then(|r| r.expires.clone()) == Some("0".into())
    });
    let registers = kamailio.registers();
    assert_eq!(
        registers.last().and_then(|r| r.expires.as_deref()),
        Some("0"),
        "{registers:?}"
    );
    Ok(())
}

#[test]
fn registers_again_by_itself_after_the_registrar_restarts() -> TestResult {
    let mut kamailio = kamailio(short_expiry())?;
    let running = Running::start(
        &[
            "--user",
            "sip:alice@127.0.0.1",
            "--password",
            "secret",
            "--registrar",
            &kamailio.udp_uri(),
            "--expires",
            "4",
        ],
        None,
    )?;
    running.expect("registered", Duration::from_secs(5));
    kamailio.restart()?;
    assert!(
        kamailio.saved().is_empty(),
        "the restarted registrar starts empty"
    );
    // The next refresh meets a registrar that forgot its nonces; Callisto answers the new
    // challenge and the binding is back.
    running.expect("registered", Duration::from_secs(10));
    assert!(kamailio.wait_for_saved(1, Duration::from_secs(2)));
    Ok(())
}

#[test]
fn registers_again_when_the_tcp_connection_drops() -> TestResult {
    let mut kamailio = kamailio(KamailioConfig::default())?;
    let registrar = format!("sip:127.0.0.1:{};transport=tcp", kamailio.config().tcp_port);
    let running = Running::start(
        &[
            "--user",
            "sip:alice@127.0.0.1",
            "--password",
            "secret",
            "--registrar",
            &registrar,
        ],
        Some("[timers]\nt1_ms = 100\n"),
    )?;
    running.expect("registered", Duration::from_secs(5));
    kamailio.restart()?;
    // The connection closed with the old process: Callisto notices and registers again well
    // before the 300 s binding would need a refresh.
    running.expect("registered", Duration::from_secs(15));
    assert!(kamailio.wait_for_saved(1, Duration::from_secs(2)));
    Ok(())
}

#[test]
fn two_accounts_register_at_once_from_the_configuration_file() -> TestResult {
    let kamailio = kamailio(KamailioConfig::default())?;
    let port = kamailio.config().udp_port;
    let config = format!(
        "[[accounts]]\nname = \"a\"\nuser = \"sip:alice@127.0.0.1\"\npassword = \"secret\"\nregistrar = \"sip:127.0.0.1:{port}\"\n\n\
         [[accounts]]\nname = \"b\"\nuser = \"sip:bob@127.0.0.1\"\npassword = \"hunter2\"\nregistrar = \"sip:127.0.0.1:{port};transport=tcp\"\n"
    );
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("callisto.toml"), config)?;
    let output = register_command(dir.path())
        .args(["--once", "--json"])
        .output()?;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let lines = json_lines(&output);
    let registered: std::collections::HashSet<_> = lines
        .iter()
        .filter(|l| l["event"] == "registered")
        .filter_map(|l| l["account"].as_str())
        .collect();
    assert_eq!(
        registered,
        ["sip:alice@127.0.0.1", "sip:bob@127.0.0.1"]
            .into_iter()
            .collect::<std::collections::HashSet<_>>(),
        "{}",
        describe(&output)
    );
    kamailio.wait_for_saved(2, Duration::from_secs(2));
    let saved: std::collections::HashSet<_> = kamailio.saved().into_iter().map(|s| s.aor).collect();
    assert_eq!(saved.len(), 2, "{saved:?}");
    Ok(())
}

#[test]
fn registers_over_tls_trusting_the_test_ca() -> TestResult {
    let kamailio = kamailio(KamailioConfig::default())?;
    let tls_port = kamailio.config().tls_port.ok_or("no TLS port")?;
    let ca = kamailio.ca_pem_path().ok_or("no CA")?.to_path_buf();
    let dir = tempfile::tempdir()?;
    let output = register_command(dir.path())
        .args(["--user", "sip:alice@127.0.0.1", "--password", "secret"])
        .args([
            "--registrar",
            &format!("sip:127.0.0.1:{tls_port};transport=tls"),
        ])
        .arg("--ca-file")
        .arg(&ca)
        .args(["--once", "--json"])
        .output()?;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(kamailio.registers().iter().all(|r| r.proto == "tls"));
    Ok(())
}

#[test]
fn refuses_a_self_signed_tls_certificate() -> TestResult {
    let kamailio = kamailio(KamailioConfig {
        tls_self_signed: true,
        ..KamailioConfig::default()
    })?;
    let tls_port = kamailio.config().tls_port.ok_or("no TLS port")?;
    let ca = kamailio.ca_pem_path().ok_or("no CA")?.to_path_buf();
    let dir = tempfile::tempdir()?;
    let output = register_command(dir.path())
        .args(["--user", "sip:alice@127.0.0.1", "--password", "secret"])
        .args([
            "--registrar",
            &format!("sip:127.0.0.1:{tls_port};transport=tls"),
        ])
        .arg("--ca-file")
        .arg(&ca)
        .args(["--once", "--json"])
        .output()?;
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let lines = json_lines(&output);
    let failed = &lines[0];
    assert_eq!(failed["kind"], "insecure", "{}", describe(&output));
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or("")
            .contains("certificate"),
        "{}",
        describe(&output)
    );
    assert!(
        kamailio.registers().is_empty(),
        "nothing is sent to an untrusted server"
    );
    Ok(())
}

#[test]
fn a_forbidden_account_exits_4_with_the_code_and_reason_and_is_not_retried() -> TestResult {
    let registrar = ScriptedRegistrar::refusing("403 Forbidden")?;
    let dir = tempfile::tempdir()?;
    // Without --once: a final refusal ends the session as well.
    let output = alice(dir.path(), "secret", &registrar.uri(), &["--json"])?;
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let failed = registration_failed(&output);
    assert_eq!(failed["code"], 403);
    assert_eq!(failed["reason"], "Forbidden");
    assert_eq!(failed["kind"], "rejected");
    assert!(failed["retry_in_s"].is_null(), "{failed}");
    // One REGISTER (a retransmission of it, on a slow day, is the same CSeq), never again.
    let registers = registrar.registers();
    let cseqs: std::collections::HashSet<_> =
        registers.iter().filter_map(|r| r.header("CSeq")).collect();
    assert_eq!(cseqs.len(), 1, "{registers:?}");
    Ok(())
}

#[test]
fn a_refusal_and_an_unreachable_server_are_explained_in_plain_sentences() -> TestResult {
    let registrar = ScriptedRegistrar::refusing("404 Not Found")?;
    let dir = tempfile::tempdir()?;
    let output = alice(dir.path(), "secret", &registrar.uri(), &["--once"])?;
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "Registration of sip:alice@127.0.0.1 failed, the server refused: Not Found (404)."
        ),
        "{stdout}"
    );

    // Nobody listens: Timer F decides (64*T1 with T1 = 50 ms).
    std::fs::write(dir.path().join("callisto.toml"), "[timers]\nt1_ms = 50\n")?;
    let nobody = format!("sip:127.0.0.1:{}", support::free_port());
    let output = alice(dir.path(), "secret", &nobody, &["--once"])?;
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "Registration of sip:alice@127.0.0.1 failed, the server could not be reached"
        ),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn sigint_unregisters_before_the_session_exits() -> TestResult {
    let registrar = ScriptedRegistrar::granting(60)?;
    let mut running = Running::start(
        &[
            "--user",
            "sip:alice@127.0.0.1",
            "--password",
            "secret",
            "--registrar",
            &registrar.uri(),
        ],
        None,
    )?;
    let registered = running.expect("registered", Duration::from_secs(5));
    assert_eq!(registered["expires"], 60, "the registrar's grant");
    assert!(!registrar.registers().iter().any(asks_for_removal));
    assert_eq!(running.stop(libc::SIGINT).code(), Some(0));
    running.expect("unregistered", Duration::from_secs(2));
    let registers = registrar.registers();
    assert!(
        registers.last().is_some_and(asks_for_removal),
        "the last REGISTER removes the binding: {registers:?}"
    );
    Ok(())
}
