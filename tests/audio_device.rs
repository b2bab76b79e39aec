//! Callisto on real sound devices, against a private PulseAudio server (`support::pulse`) whose
//! null sinks stand in for sound cards: a tone played into a sink is the caller's microphone
//! (the sink's monitor source), and the callee plays what it receives into another sink whose
//! monitor the test records. Media is checked by content: the tone's frequency in the callee's
//! WAV recording and in what reached its speaker.
//!
//! A null sink's monitor delivers its first samples 1.3–1.7 s after a record stream starts
//! (measured with the cpal stream alone), and Callisto does not hold up a call for its
//! microphone, so the first ~2 s of each call here are silence; the checks count seconds of
//! tone against the call's length minus that.

mod support;

use std::error::Error;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use callisto::app::{list_devices, DeviceCheck, DeviceLists, DeviceWatch, Ringer};
use callisto_media::analysis::{dominant_frequency, tone_coverage};
use support::callisto::Callisto;
use support::pulse::PulseServer;
use support::wav;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);
/// The tone played into the microphone sink.
const MIC_HZ: f32 = 1000.0;
/// The tone of the second microphone, which takes over when the first vanishes.
const OTHER_HZ: f32 = 700.0;

/// A child (`paplay`, `parecord`) stopped by its PID when dropped.
struct Tool(Child);

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Plays `seconds` of a tone at `hz` into `sink`, with 40 ms of latency (paplay's default of
/// 2 s makes the null sink render in bursts that a 10 ms record stream on its monitor does not
/// take whole).
fn play_tone(
    pulse: &PulseServer,
    sink: &str,
    hz: f32,
    seconds: f32,
) -> Result<Tool, Box<dyn Error>> {
    let path = pulse.dir().join(format!("tone-{sink}.wav"));
    wav::write_tone(&path, hz, 44_100, 2, seconds)?;
    let child = pulse
        .command("paplay")?
        .arg(format!("--device={sink}"))
        .arg("--latency-msec=40")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Tool(child))
}

/// Records `source` as raw 16-bit mono at 48 kHz into `path`.
fn record_raw(pulse: &PulseServer, source: &str, path: &Path) -> Result<Tool, Box<dyn Error>> {
    let child = pulse
        .command("parecord")?
        .args([
            &format!("--device={source}"),
            "--raw",
            "--format=s16le",
            "--rate=48000",
            "--channels=1",
            "--latency-msec=20",
        ])
        .stdout(File::create(path)?)
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Tool(child))
}

fn read_raw(path: &Path) -> Result<Vec<i16>, Box<dyn Error>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// Seconds of `samples` (48 kHz mono) dominated by a tone at `hz`.
fn tone_seconds(samples: &[i16], rate: u32, hz: f32) -> f32 {
    let seconds = samples.len() as f32 / rate as f32;
    tone_coverage(samples, rate, hz, 0.02, 50, 0.05) * seconds
}

/// One character per 250 ms of `samples`: `#` where the tone at `hz` dominates, `.` where not.
fn timeline(samples: &[i16], rate: u32, hz: f32) -> String {
    samples
        .chunks(rate as usize / 4)
        .map(|w| {
            if tone_coverage(w, rate, hz, 0.02, 50, 0.05) > 0.5 {
                '#'
            } else {
                '.'
            }
        })
        .collect()
}

/// Seconds of the headset's tone ([`MIC_HZ`]) and of the desk microphone's ([`OTHER_HZ`]) in
/// bob's recording at `path`, printed with their timelines.
fn heard_microphones(path: &Path) -> Result<(f32, f32), Box<dyn Error>> {
    let recorded = wav::read_mono(path)?;
    let rate = recorded.sample_rate;
    let headset = tone_seconds(&recorded.samples, rate, MIC_HZ);
    let desk = tone_seconds(&recorded.samples, rate, OTHER_HZ);
    println!(
        "bob heard the headset for {headset:.2} s and the desk microphone for {desk:.2} s, in \
         {:.2} s: {} / {}",
        recorded.seconds(),
        timeline(&recorded.samples, rate, MIC_HZ),
        timeline(&recorded.samples, rate, OTHER_HZ)
    );
    Ok((headset, desk))
}

fn dirs(root: &Path) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (alice, bob) = (root.join("alice"), root.join("bob"));
    std::fs::create_dir_all(&alice)?;
    std::fs::create_dir_all(&bob)?;
    Ok((alice, bob))
}

/// `callisto answer` on a free loopback port, recording and (optionally) playing to a device.
fn start_bob(
    pulse: &PulseServer,
    dir: &Path,
    record: &Path,
    play: Option<&str>,
) -> Result<(Callisto, u16), Box<dyn Error>> {
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let record = record.to_string_lossy();
    let mut args = vec![
        "answer",
        "--listen",
        &listen,
        "--audio",
        "silence",
        "--record-audio",
        &record,
        "--json",
    ];
    if let Some(play) = play {
        args.extend(["--play-audio", play]);
    }
    let mut bob = Callisto::start_with_env(dir, &args, &pulse.env())?;
    bob.expect("listening", WAIT)?;
    Ok((bob, port))
}

fn start_alice(
    pulse: &PulseServer,
    dir: &Path,
    port: u16,
    audio: &str,
    seconds: &str,
) -> std::io::Result<Callisto> {
    let uri = format!("sip:bob@127.0.0.1:{port}");
    Callisto::start_with_env(
        dir,
        &[
            "call",
            &uri,
            "--listen",
            "127.0.0.1:0",
            "--audio",
            audio,
            // These tests follow a steady tone through the device path, which a noise
            // suppressor would take for noise.
            "--voice-processing",
            "none",
            "--duration",
            seconds,
            "--json",
        ],
        &pulse.env(),
    )
}

#[test]
fn a_tone_on_a_monitor_source_is_the_microphone_and_the_callee_plays_it() -> TestResult {
    let _one_call = one_call_at_a_time();
    let pulse = PulseServer::start(&["callisto_mic", "callisto_speaker"])?;
    let dir = tempfile::tempdir()?;
    let (alice_dir, bob_dir) = dirs(dir.path())?;
    let bob_rec = dir.path().join("bob.wav");
    let speaker_raw = dir.path().join("speaker.raw");
    let _tone = play_tone(&pulse, "callisto_mic", MIC_HZ, 30.0)?;
    let speaker = record_raw(&pulse, "callisto_speaker.monitor", &speaker_raw)?;
    let (mut bob, port) = start_bob(&pulse, &bob_dir, &bob_rec, Some("device:callisto_speaker"))?;
    let mut alice = start_alice(&pulse, &alice_dir, port, "device:callisto_mic.monitor", "8")?;
    alice.expect("answered", WAIT)?;
    let ended = alice.expect("call_ended", WAIT)?;
    let bob_ended = bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    drop(speaker);
    println!("alice: {ended}\nbob: {bob_ended}");
    let notices: Vec<_> = alice
        .events(Duration::ZERO)
        .into_iter()
        .chain(bob.events(Duration::ZERO))
        .filter(|e| e["event"] == "audio_device")
        .collect();
    assert!(notices.is_empty(), "devices reported trouble: {notices:?}");

    let recorded = wav::read_mono(&bob_rec)?;
    let heard = tone_seconds(&recorded.samples, recorded.sample_rate, MIC_HZ);
    println!(
        "bob's recording: {heard:.2} s of {MIC_HZ} Hz in {:.2} s: {}",
        recorded.seconds(),
        timeline(&recorded.samples, recorded.sample_rate, MIC_HZ)
    );
    assert!(
        heard >= 5.0,
        "the microphone's tone lasts {heard} s of {:.2} s in bob's recording",
        recorded.seconds()
    );
    let played = read_raw(&speaker_raw)?;
    let played_tone = tone_seconds(&played, 48_000, MIC_HZ);
    println!(
        "bob's speaker: {played_tone:.2} s of {MIC_HZ} Hz in {:.2} s: {}",
        played.len() as f32 / 48_000.0,
        timeline(&played, 48_000, MIC_HZ)
    );
    assert!(
        played_tone >= 4.0,
        "bob's speaker played {played_tone} s of the tone"
    );
    Ok(())
}

/// Alice calls bob with `voice` (a WAV file) for `seconds` and records what comes back. Bob's
/// speakers are the `room` sink and his microphone is its monitor, so his microphone hears
/// everything he plays; he sends nothing else. `processing` is his `--voice-processing`.
/// Returns alice's recording, mono.
fn echo_through_bobs_room(
    pulse: &PulseServer,
    dir: &Path,
    voice: &Path,
    processing: &str,
    seconds: &str,
) -> Result<wav::MonoWav, Box<dyn Error>> {
    let (alice_dir, bob_dir) = dirs(&dir.join(processing.replace(',', "-")))?;
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut bob = Callisto::start_with_env(
        &bob_dir,
        &[
            "answer",
            "--listen",
            &listen,
            "--audio",
            "device:room.monitor",
            "--play-audio",
            "device:room",
            "--voice-processing",
            processing,
            "--json",
        ],
        &pulse.env(),
    )?;
    bob.expect("listening", WAIT)?;
    let recording = alice_dir.join("heard.wav");
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let mut alice = Callisto::start_with_env(
        &alice_dir,
        &[
            "call",
            &uri,
            "--listen",
            "127.0.0.1:0",
            "--audio",
            &voice.to_string_lossy(),
            "--record-audio",
            &recording.to_string_lossy(),
            "--duration",
            seconds,
            "--json",
        ],
        &pulse.env(),
    )?;
    alice.expect("answered", WAIT)?;
    alice.expect("call_ended", Duration::from_secs(30))?;
    bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    Ok(wav::read_mono(&recording)?)
}

#[test]
fn echo_cancellation_keeps_bobs_speakers_out_of_what_his_microphone_sends() -> TestResult {
    let _one_call = one_call_at_a_time();
    use callisto_media::audio::acoustics::{artificial_voice, energy_i16, to_i16};
    let pulse = PulseServer::start(&["room"])?;
    let dir = tempfile::tempdir()?;
    let voice = dir.path().join("voice.wav");
    let samples = to_i16(&artificial_voice(140.0, 11, 0.3, 12.0, 48_000));
    wav::write_samples(&voice, &samples, 48_000, 1)?;
    // What alice hears, second by second, as dBFS (full scale is 32768² per sample).
    let per_second = |heard: &wav::MonoWav| -> Vec<f64> {
        let rate = heard.sample_rate as usize;
        heard
            .samples
            .chunks_exact(rate)
            .map(|second| {
                let full_scale = 32_768.0f64 * 32_768.0 * rate as f64;
                10.0 * (energy_i16(second).max(1.0) / full_scale).log10()
            })
            .collect()
    };
    let open = per_second(&echo_through_bobs_room(
        &pulse,
        dir.path(),
        &voice,
        "none",
        "10",
    )?);
    let cancelled = per_second(&echo_through_bobs_room(
        &pulse,
        dir.path(),
        &voice,
        "aec",
        "10",
    )?);
    let show = |levels: &[f64]| levels.iter().map(|l| format!("{l:.0}")).collect::<Vec<_>>();
    println!("the echo alice hears, dBFS per second:");
    println!("  without echo cancellation {:?}", show(&open));
    println!("  with echo cancellation    {:?}", show(&cancelled));
    // From 3 s on (the monitor starts late, the canceller converges within a second of
    // hearing the voice), each second's reduction. The median second is the canceller's
    // steady state; a busy machine can shift the sound server's delay for a second or two,
    // which the canceller has to find again (and which the printout shows).
    let mut reductions: Vec<f64> = open
        .iter()
        .zip(&cancelled)
        .skip(3)
        .map(|(open, cancelled)| open - cancelled)
        .collect();
    assert!(
        reductions.len() >= 5,
        "the calls were too short: {open:?} {cancelled:?}"
    );
    let quietest_open = open[3..].iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        quietest_open > -40.0,
        "without echo cancellation alice should hear herself every second: {:?}",
        show(&open)
    );
    reductions.sort_by(f64::total_cmp);
    // The lower median: at least half the seconds reach it.
    let median = reductions[(reductions.len() - 1) / 2];
    println!(
        "echo cancellation removes {median:.1} dB in the median second, {:.1} dB in the worst",
        reductions[0]
    );
    assert!(
        median >= 15.0,
        "echo cancellation removes only {median:.1} dB"
    );
    Ok(())
}

#[test]
fn devices_lists_sinks_as_outputs_and_monitors_as_inputs() -> TestResult {
    let pulse = PulseServer::start(&["callisto_list"])?;
    let output = std::process::Command::new(support::callisto::binary())
        .args(["devices", "--json"])
        .envs(pulse.env())
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let devices: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    println!("{devices:#?}");
    let find = |id: &str| devices.iter().find(|d| d["id"] == id).cloned();
    let sink = find("callisto_list").ok_or("the null sink is not listed")?;
    assert_eq!(sink["direction"], "output");
    assert_eq!(sink["host"], "PulseAudio");
    assert_eq!(sink["default"], true);
    let monitor = find("callisto_list.monitor").ok_or("its monitor is not listed")?;
    assert_eq!(monitor["direction"], "input");
    assert_eq!(monitor["name"], "Monitor of callisto_list");
    Ok(())
}

#[test]
fn a_missing_microphone_is_reported_and_the_call_goes_on_with_silence() -> TestResult {
    let _one_call = one_call_at_a_time();
    let pulse = PulseServer::start(&["callisto_mic"])?;
    let dir = tempfile::tempdir()?;
    let (alice_dir, bob_dir) = dirs(dir.path())?;
    let bob_rec = dir.path().join("bob.wav");
    let (mut bob, port) = start_bob(&pulse, &bob_dir, &bob_rec, Some("device:no-such-speaker"))?;
    let mut alice = start_alice(&pulse, &alice_dir, port, "device:no-such-mic", "1.5")?;
    let notice = alice.expect("audio_device", WAIT)?;
    let message = notice["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no-such-mic") && message.contains("silence"),
        "{notice}"
    );
    assert!(message.contains("callisto_mic.monitor"), "{notice}");
    let bob_notice = bob.expect("audio_device", WAIT)?;
    assert!(
        bob_notice["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-speaker") && m.contains("without playback")),
        "{bob_notice}"
    );
    alice.expect("answered", WAIT)?;
    let ended = alice.expect("call_ended", WAIT)?;
    bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    assert!(
        ended["audio"]["rx_packets"].as_u64().unwrap_or(0) >= 50,
        "{ended}"
    );
    let recorded = wav::read_mono(&bob_rec)?;
    assert!(recorded.seconds() >= 1.0, "{} s", recorded.seconds());
    Ok(())
}

#[test]
fn a_sound_server_that_goes_away_mid_call_silences_the_microphone_until_it_is_back() -> TestResult {
    let _one_call = one_call_at_a_time();
    let mut pulse = PulseServer::start(&["callisto_mic"])?;
    let dir = tempfile::tempdir()?;
    let (alice_dir, bob_dir) = dirs(dir.path())?;
    let bob_rec = dir.path().join("bob.wav");
    let first_tone = play_tone(&pulse, "callisto_mic", MIC_HZ, 30.0)?;
    let (mut bob, port) = start_bob(&pulse, &bob_dir, &bob_rec, None)?;
    let mut alice = start_alice(
        &pulse,
        &alice_dir,
        port,
        "device:callisto_mic.monitor",
        "14",
    )?;
    alice.expect("answered", WAIT)?;
    std::thread::sleep(Duration::from_secs(5));
    pulse.stop()?;
    drop(first_tone);
    // Each notice once, in this order: the loss, the silence, the return.
    let says = |text: &'static str| {
        move |event: &serde_json::Value| {
            event["message"]
                .as_str()
                .is_some_and(|message| message.contains(text))
        }
    };
    alice.expect_matching(
        "audio_device",
        says("'Monitor of callisto_mic' stopped"),
        WAIT,
    )?;
    alice.expect_matching("audio_device", says("sending silence"), WAIT)?;
    pulse.restart()?;
    let _second_tone = play_tone(&pulse, "callisto_mic", OTHER_HZ, 30.0)?;
    alice.expect_matching(
        "audio_device",
        says("continues on 'Monitor of callisto_mic'"),
        WAIT,
    )?;
    let ended = alice.expect("call_ended", Duration::from_secs(20))?;
    bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    println!("alice: {ended}");
    let notices: Vec<_> = alice
        .events(Duration::ZERO)
        .into_iter()
        .filter(|e| e["event"] == "audio_device")
        .collect();
    assert_eq!(notices.len(), 3, "{notices:#?}");
    let recorded = wav::read_mono(&bob_rec)?;
    let rate = recorded.sample_rate;
    let before = tone_seconds(&recorded.samples, rate, MIC_HZ);
    let after = tone_seconds(&recorded.samples, rate, OTHER_HZ);
    println!(
        "bob heard {before:.2} s of the tone before the server went away and {after:.2} s after it came back, in {:.2} s: {} / {}",
        recorded.seconds(),
        timeline(&recorded.samples, rate, MIC_HZ),
        timeline(&recorded.samples, rate, OTHER_HZ)
    );
    assert!(before >= 2.0, "{before} s before");
    assert!(after >= 2.0, "{after} s after");
    Ok(())
}

/// A headset unplugged mid-call: the chosen microphone's sink is unloaded while the sound
/// server stays. The sound server moves the call's recording to the default microphone (the
/// desk one, which hears another tone): the call is not dropped and the callee hears the
/// desk microphone from then on.
#[test]
fn a_microphone_unplugged_mid_call_gives_way_to_the_default_one_and_the_call_stays() -> TestResult {
    let _one_call = one_call_at_a_time();
    let pulse = PulseServer::start(&["callisto_desk"])?;
    let loaded = pulse.pactl(&[
        "load-module",
        "module-null-sink",
        "sink_name=callisto_headset",
        "sink_properties=device.description=callisto_headset",
    ])?;
    let module = String::from_utf8_lossy(&loaded.stdout).trim().to_string();
    pulse.pactl(&["set-default-source", "callisto_desk.monitor"])?;
    let dir = tempfile::tempdir()?;
    let (alice_dir, bob_dir) = dirs(dir.path())?;
    let bob_rec = dir.path().join("bob.wav");
    let headset_tone = play_tone(&pulse, "callisto_headset", MIC_HZ, 30.0)?;
    let _desk_tone = play_tone(&pulse, "callisto_desk", OTHER_HZ, 30.0)?;
    let (mut bob, port) = start_bob(&pulse, &bob_dir, &bob_rec, None)?;
    let mut alice = start_alice(
        &pulse,
        &alice_dir,
        port,
        "device:callisto_headset.monitor",
        "10",
    )?;
    alice.expect("answered", WAIT)?;
    std::thread::sleep(Duration::from_secs(4));
    drop(headset_tone);
    pulse.pactl(&["unload-module", &module])?;
    let ended = alice.expect("call_ended", Duration::from_secs(15))?;
    bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    // Alice hung up when her ten seconds were over.
    assert_eq!(ended["by"], "local", "{ended}");
    assert!(
        ended["duration_s"].as_f64().unwrap_or(0.0) >= 9.5,
        "the call ran its course: {ended}"
    );
    let (headset, desk) = heard_microphones(&bob_rec)?;
    assert!(headset >= 1.5, "{headset} s of the headset");
    assert!(
        desk >= 3.0,
        "{desk} s of the desk microphone after the unplug"
    );
    Ok(())
}

/// The Settings page's level meter: it lists the private server's devices, rises with a tone
/// played into the chosen microphone and falls back once the tone stops. No camera here: the
/// check says so and the meter runs alone.
#[test]
fn the_settings_meter_follows_the_chosen_microphone() -> TestResult {
    let pulse = PulseServer::start(&["callisto_meter"])?;
    let _env = in_process_client_of(&pulse);
    let lists = list_devices();
    let ids: Vec<&str> = lists.inputs.iter().map(|d| d.id.as_str()).collect();
    assert!(ids.contains(&"callisto_meter.monitor"), "{lists:?}");
    let (notes_tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let check = DeviceCheck::start(Some("callisto_meter.monitor".into()), None, notes_tx);
    let level_within = |wanted: &dyn Fn(f32) -> bool, seconds: u64| {
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            if wanted(check.preview().level()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        check.preview().level() < 0.05,
        "{}",
        check.preview().level()
    );
    let tone = play_tone(&pulse, "callisto_meter", MIC_HZ, 8.0)?;
    // The tone's peaks are at -10.5 dBFS: 0.82 on the meter's -60..0 dB scale.
    assert!(
        level_within(&|level| level > 0.7, 6),
        "the meter stayed at {}",
        check.preview().level()
    );
    drop(tone);
    assert!(
        level_within(&|level| level < 0.1, 6),
        "the meter stayed at {}",
        check.preview().level()
    );
    let note = notes.try_recv()?;
    assert!(note.starts_with("No camera preview"), "{note}");
    assert!(notes.try_recv().is_err(), "the microphone opened");
    Ok(())
}

/// While the Settings page is open its lists follow the sound system: a sink loaded (a
/// headset plugged in) shows up as speakers and its monitor as a microphone, and goes away
/// again when unloaded, without reopening the page.
#[test]
fn a_device_plugged_in_and_out_while_settings_is_open_comes_and_goes_in_its_lists() -> TestResult {
    let pulse = PulseServer::start(&["callisto_builtin"])?;
    let _env = in_process_client_of(&pulse);
    let runtime = tokio::runtime::Runtime::new()?;
    let (tx, mut lists) = tokio::sync::mpsc::unbounded_channel();
    let _watch = runtime
        .block_on(async { DeviceWatch::start(list_devices, Duration::from_millis(200), tx) });
    let has = |found: &DeviceLists, id: &str| {
        found.outputs.iter().any(|d| d.id == id)
            && found.inputs.iter().any(|d| d.id == format!("{id}.monitor"))
    };
    // The next lists that satisfy `wanted`, within 5 s (each list sent differs from the last).
    let mut until = |what: &str, wanted: &dyn Fn(&DeviceLists) -> bool| {
        runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while let Ok(Some(found)) = tokio::time::timeout_at(deadline, lists.recv()).await {
                if wanted(&found) {
                    return Ok(found);
                }
            }
            Err(format!("no device lists {what}"))
        })
    };
    // A look that finds the server still starting (the machine busy) lists ALSA's devices;
    // the next looks find it.
    let first = until("with the sound server's card", &|l| {
        has(l, "callisto_builtin")
    })?;
    assert!(!has(&first, "callisto_plugged"), "{first:?}");
    let loaded = pulse.pactl(&[
        "load-module",
        "module-null-sink",
        "sink_name=callisto_plugged",
    ])?;
    let module = String::from_utf8_lossy(&loaded.stdout).trim().to_string();
    until("with the sink loaded", &|l| has(l, "callisto_plugged"))?;
    pulse.pactl(&["unload-module", &module])?;
    let unplugged = until("after the sink was unloaded", &|l| {
        !l.outputs.iter().any(|d| d.id == "callisto_plugged")
    })?;
    assert!(has(&unplugged, "callisto_builtin"), "{unplugged:?}");
    // A dozen looks and more leave no connections to the sound server behind.
    let clients = pulse.pactl(&["list", "clients", "short"])?;
    let clients = String::from_utf8_lossy(&clients.stdout).lines().count();
    assert!(clients <= 4, "{clients} clients of the sound server");
    Ok(())
}

/// The ringtone on the chosen speakers: two bursts of 400 and 450 Hz every three seconds, as
/// the monitor of the sink hears them, and quiet once the ringer is dropped.
#[test]
fn the_ringtone_plays_its_cadence_on_the_chosen_speakers_until_stopped() -> TestResult {
    let pulse = PulseServer::start(&["callisto_ring"])?;
    let _env = in_process_client_of(&pulse);
    let path = pulse.dir().join("ring.raw");
    let recorder = record_raw(&pulse, "callisto_ring.monitor", &path)?;
    // The monitor delivers its first samples 1.3-1.7 s after the record stream starts.
    std::thread::sleep(Duration::from_secs(2));
    let ringer = Ringer::start(Some("callisto_ring".into()));
    std::thread::sleep(Duration::from_millis(6500));
    drop(ringer);
    std::thread::sleep(Duration::from_millis(1500));
    drop(recorder);
    let samples = read_raw(&path)?;
    // 100 ms windows: loud ones carry the ring, quiet ones nothing.
    let windows: Vec<&[i16]> = samples.chunks_exact(4800).collect();
    let rms =
        |w: &[i16]| (w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
    let loud: Vec<bool> = windows.iter().map(|w| rms(w) > 1000.0).collect();
    let picture: String = loud.iter().map(|&l| if l { '#' } else { '.' }).collect();
    println!("the monitor, 100 ms a character: {picture}");
    // The ring's tones dominate its windows (a window the scheduler cut into on a loaded
    // machine may smear; not more than one in five).
    let heard: Vec<f32> = windows
        .iter()
        .filter(|w| rms(w) > 1000.0)
        .filter_map(|w| dominant_frequency(w, 48_000).map(|(hz, _)| hz))
        .collect();
    let ring = heard
        .iter()
        .filter(|&&hz| [400.0f32, 450.0].iter().any(|t| (hz - t).abs() < 0.03 * t))
        .count();
    assert!(
        ring * 5 >= heard.len() * 4 && ring > 0,
        "{heard:?} Hz in {picture}"
    );
    let first = loud
        .iter()
        .position(|&l| l)
        .ok_or(format!("no ring: {picture}"))?;
    // One period: 0.8 s of ring in 3 s (edges may split a window), and the next period
    // starts three seconds on.
    let period: usize = loud[first..first + 30].iter().filter(|&&l| l).count();
    assert!(
        (5..=11).contains(&period),
        "{period} loud windows: {picture}"
    );
    assert!(
        loud[first + 29..=first + 31].iter().any(|&l| l),
        "no second period: {picture}"
    );
    // Quiet after the ringer stopped.
    let tail = &loud[loud.len() - 8..];
    assert!(tail.iter().all(|&l| !l), "still ringing: {picture}");
    Ok(())
}

/// The tests that make calls, one at a time: two real-time calls at once (four Callisto
/// processes, two sound servers) on a two-core machine measure the machine, and their
/// recordings miss seconds of tone.
fn one_call_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CALLS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tests that open devices in this process (not in a child) reach their private server
/// through this process's environment: one at a time.
fn in_process_client_of(pulse: &PulseServer) -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (key, value) in pulse.env() {
        std::env::set_var(key, value);
    }
    guard
}

/// The default microphone and the default speakers change mid-call (the user picks others in
/// the system's sound settings): alice's call on the default microphone and bob's on the
/// default speakers follow the change, and the call stays.
#[test]
fn calls_on_the_default_devices_follow_a_change_of_default() -> TestResult {
    let _one_call = one_call_at_a_time();
    let sinks = [
        "callisto_desk",
        "callisto_headset",
        "callisto_tv",
        "callisto_earbuds",
    ];
    let pulse = PulseServer::start(&sinks)?;
    pulse.pactl(&["set-default-source", "callisto_desk.monitor"])?;
    pulse.pactl(&["set-default-sink", "callisto_tv"])?;
    let dir = tempfile::tempdir()?;
    let (alice_dir, bob_dir) = dirs(dir.path())?;
    let bob_rec = dir.path().join("bob.wav");
    let (tv_raw, earbuds_raw) = (dir.path().join("tv.raw"), dir.path().join("earbuds.raw"));
    let _desk_tone = play_tone(&pulse, "callisto_desk", OTHER_HZ, 30.0)?;
    let _headset_tone = play_tone(&pulse, "callisto_headset", MIC_HZ, 30.0)?;
    let tv = record_raw(&pulse, "callisto_tv.monitor", &tv_raw)?;
    let earbuds = record_raw(&pulse, "callisto_earbuds.monitor", &earbuds_raw)?;
    let (mut bob, port) = start_bob(&pulse, &bob_dir, &bob_rec, Some("device"))?;
    let mut alice = start_alice(&pulse, &alice_dir, port, "device", "10")?;
    alice.expect("answered", WAIT)?;
    std::thread::sleep(Duration::from_secs(4));
    pulse.pactl(&["set-default-source", "callisto_headset.monitor"])?;
    pulse.pactl(&["set-default-sink", "callisto_earbuds"])?;
    let ended = alice.expect("call_ended", Duration::from_secs(15))?;
    bob.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    drop((tv, earbuds));
    assert_eq!(ended["by"], "local", "{ended}");

    // What alice's microphone sent, in bob's recording: the desk, then the headset.
    let (headset, desk) = heard_microphones(&bob_rec)?;
    assert!(desk >= 1.5, "{desk} s of the desk microphone");
    assert!(
        headset >= 3.0,
        "{headset} s of the headset after the change"
    );
    // What bob's speakers played: the TV's sink before the change, the earbuds' after it.
    let (on_tv, on_earbuds) = (read_raw(&tv_raw)?, read_raw(&earbuds_raw)?);
    let before = tone_seconds(&on_tv, 48_000, OTHER_HZ);
    let after = tone_seconds(&on_earbuds, 48_000, MIC_HZ);
    println!(
        "bob's TV played the desk tone {before:.2} s: {}; his earbuds the headset's {after:.2} \
         s: {}",
        timeline(&on_tv, 48_000, OTHER_HZ),
        timeline(&on_earbuds, 48_000, MIC_HZ)
    );
    assert!(before >= 1.0, "{before} s on the TV before the change");
    assert!(after >= 3.0, "{after} s on the earbuds after the change");
    Ok(())
}
