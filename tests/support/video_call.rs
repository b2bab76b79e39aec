//! A Callisto that calls or answers through Kamailio with a tone and the test pattern,
//! recording what it hears and sees: what the WebRTC call tests share.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::callisto::Callisto;
use super::kamailio::Kamailio;

/// `user`'s address as Callisto and the phones dial it (the proxy's address and port).
pub fn aor(kamailio: &Kamailio, user: &str) -> String {
    format!("sip:{user}@127.0.0.1:{}", kamailio.config().udp_port)
}

/// `callisto COMMAND` as `user` over UDP with a tone and the test pattern (identity
/// `identity`), recording audio and video into `dir`.
pub fn callisto(
    kamailio: &Kamailio,
    dir: &Path,
    user: &str,
    command: &[&str],
    hz: f32,
    identity: u16,
    extra: &[&str],
) -> std::io::Result<Callisto> {
    // A `--registrar` in `extra` replaces the proxy's UDP address.
    let registrar = match extra.iter().position(|a| *a == "--registrar") {
        Some(at) => extra.get(at + 1).copied().unwrap_or_default().to_owned(),
        None => format!("sip:127.0.0.1:{}", kamailio.config().udp_port),
    };
    let extra: Vec<&str> = match extra.iter().position(|a| *a == "--registrar") {
        Some(at) => [&extra[..at], &extra[(at + 2).min(extra.len())..]].concat(),
        None => extra.to_vec(),
    };
    let user_uri = aor(kamailio, user);
    let password = format!("{user}-secret");
    let tone = format!("tone:{hz}");
    let identity = identity.to_string();
    let audio = recording(dir, user, "wav").to_string_lossy().into_owned();
    let video = recording(dir, user, "y4m").to_string_lossy().into_owned();
    let mut args: Vec<&str> = command.to_vec();
    args.extend([
        "--user",
        &user_uri,
        "--password",
        &password,
        "--registrar",
        &registrar,
        "--listen",
        "127.0.0.1:0",
        "--audio",
        &tone,
        "--record-audio",
        &audio,
        "--video",
        "pattern",
        "--pattern-id",
        &identity,
        "--record-video",
        &video,
        "--json",
    ]);
    args.extend(extra);
    Callisto::start(dir, &args)
}

/// Where `user` records what it hears (`wav`) or sees (`y4m`) in `dir`.
pub fn recording(dir: &Path, user: &str, extension: &str) -> PathBuf {
    dir.join(format!("{user}-heard.{extension}"))
}

/// A JSON number, 0 when it is none.
pub fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// Bob answers (registered; pattern 2, `bob_hz`) and alice calls him through the proxy on the
/// WebRTC path for `seconds` (pattern 1, `alice_hz`); `before_call` runs once bob is
/// registered. Returns alice and bob, alice's call answered, and her `answered` line.
pub fn alice_calls_bob_on_webrtc(
    kamailio: &Kamailio,
    dir: &Path,
    (alice_hz, bob_hz): (f32, f32),
    seconds: &str,
    before_call: impl FnOnce() -> std::io::Result<()>,
) -> Result<(Callisto, Callisto, Value), Box<dyn std::error::Error>> {
    let wait = std::time::Duration::from_secs(10);
    let mut bob = callisto(kamailio, dir, "bob", &["answer"], bob_hz, 2, &[])?;
    bob.expect("registered", wait)?;
    before_call()?;
    let bob_uri = aor(kamailio, "bob");
    let mut alice = callisto(
        kamailio,
        dir,
        "alice",
        &["call", &bob_uri],
        alice_hz,
        1,
        &["--media", "webrtc", "--duration", seconds],
    )?;
    let answered = alice.expect("answered", wait)?;
    Ok((alice, bob, answered))
}
