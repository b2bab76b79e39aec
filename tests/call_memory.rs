//! A callee that takes video calls one after another gives back the memory each call's media
//! freed: `callisto answer` takes four 640x480 WebRTC calls, and its resident set after the
//! fourth stays near what it was after the first. (Without giving it back, glibc kept the
//! freed picture buffers of every call's threads: about 25 MB resident after one such call,
//! 55 MB after four, 64 MB after six.) Linux with glibc only: that is where Callisto gives
//! memory back, and where `/proc` tells the resident set.

mod support;

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use support::callisto::{webrtc_video_args, Callisto};
use support::measure::rss_kib;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(20);
const CALLS: u64 = 4;
/// How far the callee's resident set may grow from the first call's end to the last's.
const GROWTH_KIB: u64 = 15 * 1024;

fn home(dir: &Path, name: &str) -> std::io::Result<std::path::PathBuf> {
    let home = dir.join(name);
    std::fs::create_dir_all(&home)?;
    Ok(home)
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn a_callee_gives_back_the_memory_of_its_finished_video_calls() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    // One call more than made: the callee is still running when the last is measured.
    let count = (CALLS + 1).to_string();
    let mut args = vec!["answer", "--listen", &listen, "--count", &count];
    args.extend(webrtc_video_args("tone:1000", "2"));
    let mut bob = Callisto::start(&home(dir.path(), "bob")?, &args)?;
    bob.expect("listening", WAIT)?;
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let mut resident = Vec::new();
    for call in 1..=CALLS {
        let mut args = vec!["call", &uri, "--listen", "127.0.0.1:0", "--duration", "1"];
        args.extend(webrtc_video_args("tone:440", "1"));
        let mut alice = Callisto::start(&home(dir.path(), &format!("alice-{call}"))?, &args)?;
        let ended = alice.expect("call_ended", WAIT)?;
        assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
        let frames = ended["video"]["frames_decoded"].as_u64().unwrap_or(0);
        assert!(frames > 0, "call {call} showed no video: {ended}");
        bob.expect_matching("call_ended", |e: &Value| e["call"] == call, WAIT)?;
        // The memory goes back once the session is closed, just before the end is reported.
        std::thread::sleep(Duration::from_millis(500));
        resident.push(rss_kib(bob.pid())?);
    }
    println!("callee resident after each call (KiB): {resident:?}");
    bob.kill()?;
    let (first, last) = (resident[0], resident[resident.len() - 1]);
    assert!(
        last <= first + GROWTH_KIB,
        "the callee grew from {first} KiB to {last} KiB over {CALLS} calls: {resident:?}"
    );
    Ok(())
}
