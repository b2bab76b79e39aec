//! The window clicked through with Slint's testing backend, against a real registrar and real
//! peers: try the echo test (dragging the self-view) and call an address with an IP before any
//! account, add an account and see it register, dial and hang up, answer an incoming call and
//! hang up, and find both calls in the history; call back from the history, edit and call a
//! contact, use the in-call buttons, decline a call; transfer a call; answer a waiting call,
//! merge both calls into a conference and end it; add a participant to a call, see both merged
//! into a conference, drop one of them, end it.
//!
//! The window, its adapters and the controller are the app's own; only the platform is Slint's
//! headless testing backend (no pixels). The script runs on its own thread and touches the
//! window only through the event loop, as the engine does. One test per binary: the testing
//! backend is set up once per process.

mod support;
#[path = "support/window_script.rs"]
mod window_script;

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use callisto::config::Config;
use callisto_ui::{AccountsAdapter, CallAdapter, CallRow, MainWindow, Nav, SettingsAdapter};
use slint::{ComponentHandle, Model};
use support::callisto::Callisto;
use support::kamailio::Kamailio;
use window_script::{
    account_state, click, contacts, current_call_state, drag, history, on_ui, position_of,
    press_enter, run_window, shown_call, type_into, wait_until, Weak, WAIT,
};

/// Bob, registered as `bob_account` (address, registrar) and able to take video, answers the
/// call the button labelled `button` places; once it is hung up the history has `rows` rows.
/// Returns whether bob's call had video.
fn bob_takes_the_call(
    window: &Weak,
    dir: &Path,
    (bob_uri, registrar): (&str, &str),
    button: &str,
    rows: usize,
) -> Result<bool, Box<dyn Error>> {
    let mut bob = start_bob(
        dir,
        &["answer"],
        bob_uri,
        registrar,
        &["--video", "pattern"],
    )?;
    bob.expect("registered", WAIT)?;
    click(window, button)?;
    let answered = bob.expect("answered", WAIT)?;
    println!("{button}: {answered}");
    click(window, "Hang up")?;
    wait_until(
        window,
        &format!("the call of '{button}' in the history"),
        move |w| w.global::<CallAdapter>().get_calls().row_count() == 0 && history(w).len() == rows,
    )?;
    bob.wait(WAIT)?;
    Ok(answered["video"] == true)
}

/// Types a contact into the contacts page's form, sends it with `button`, and waits until it
/// is the one contact shown.
fn save_contact(window: &Weak, name: &str, addresses: String, button: &str) -> Result<(), String> {
    type_into(window, "Name", name.to_string())?;
    let field = "sip:bob@example.org, +49 30 1234";
    // Separators alone are no address yet.
    type_into(window, field, " , ,".to_owned())?;
    if click(window, button).is_ok() {
        return Err(format!("'{button}' took a contact without an address"));
    }
    type_into(window, field, addresses.clone())?;
    click(window, button)?;
    let saved = [(name.to_string(), addresses)];
    wait_until(window, &format!("{name} saved"), move |w| {
        contacts(w) == saved
    })
}

/// The user's script: everything a person would click, checked on screen.
fn script(window: Weak, kamailio: &Kamailio, dir: &Path) -> Result<(), Box<dyn Error>> {
    let port = kamailio.config().udp_port;
    let registrar = format!("sip:127.0.0.1:{port}");
    wait_until(&window, "the first-run welcome", |w| {
        w.global::<Nav>().get_first_run()
    })?;

    // Before any account, the echo test: it connects, its tile shows our own picture (the
    // camera placeholder: this machine has no camera) coming back; hang up; it is in the
    // history.
    click(&window, "Try the echo test")?;
    wait_until(&window, "the echo test connected, our picture back", |w| {
        current_call_state(w) == "Connected"
            && w.global::<CallAdapter>()
                .get_tiles()
                .iter()
                .any(|t| t.has_video && t.frame.size().width > 0)
    })?;
    // The self-view (bottom right) is dragged up and to the left, and stays where it was
    // left.
    let before = position_of(&window, "Self-view")?;
    drag(&window, "Self-view", -200.0, -100.0)?;
    let after = position_of(&window, "Self-view")?;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (-200.0, -100.0),
        "the self-view went from {before:?} to {after:?}"
    );
    click(&window, "Hang up")?;
    wait_until(&window, "the echo test in the history", |w| {
        w.global::<CallAdapter>().get_calls().row_count() == 0 && history(w).len() == 1
    })?;
    let rows = on_ui(&window, history)?;
    assert_eq!(
        rows[0],
        ("out".into(), "sip:echo@localhost".into()),
        "{rows:?}"
    );
    click(&window, "Dial")?;

    // Still without an account, a direct call to an address with an IP: dave, a headless
    // Callisto listening on loopback and registered nowhere, answers; hang up; it is in the
    // history.
    let dave_port = support::free_port();
    let dave_dir = dir.join("dave");
    std::fs::create_dir_all(&dave_dir)?;
    let dave_listen = format!("127.0.0.1:{dave_port}");
    let mut dave = Callisto::answer(
        &dave_dir,
        &dave_listen,
        &["--audio", "tone:660", "--count", "1"],
    )?;
    dave.expect("listening", WAIT)?;
    let dave_uri = format!("sip:dave@{dave_listen}");
    dial_audio(&window, &dave_uri)?;
    dave.expect("answered", WAIT)?;
    click(&window, "Hang up")?;
    dave.expect("call_ended", WAIT)?;
    wait_until(&window, "the direct call in the history", |w| {
        w.global::<CallAdapter>().get_calls().row_count() == 0 && history(w).len() == 2
    })?;
    let rows = on_ui(&window, history)?;
    assert_eq!(rows[0], ("out".into(), dave_uri.clone()), "{rows:?}");
    assert!(dave.wait(WAIT)?.success(), "{}", dave.stderr());

    // Add an account and see it register.
    click(&window, "Accounts")?;
    type_into(
        &window,
        "Address, e.g. sip:alice@example.org",
        format!("sip:alice@127.0.0.1:{port}"),
    )?;
    type_into(&window, "Password", "alice-secret".into())?;
    type_into(
        &window,
        "Server (optional), e.g. sip:pbx.example.org",
        registrar.clone(),
    )?;
    click(&window, "Add account")?;
    wait_until(&window, "the account registered", |w| {
        account_state(w).starts_with("Registered")
    })
    .map_err(|e| {
        format!(
            "{e}; the account shows '{}'",
            on_ui(&window, account_state).unwrap_or_default()
        )
    })?;
    assert!(!on_ui(&window, |w| w.global::<Nav>().get_first_run())?);

    // Change the account: the form holds it; a wrong password is refused by the server and
    // said in words; the right one registers again. It is saved, still one account.
    click(&window, "Edit")?;
    wait_until(&window, "the form holding the account", |w| {
        let form = w.global::<AccountsAdapter>();
        form.get_editing() == 0
            && form.get_form_user().contains("alice")
            && form.get_form_password() == "alice-secret"
    })?;
    type_into(&window, "Password", "not-the-password".into())?;
    click(&window, "Save changes")?;
    wait_until(&window, "the wrong password refused", |w| {
        let state = account_state(w);
        state.starts_with("Failed") || state.starts_with("Retrying")
    })?;
    let refused = on_ui(&window, account_state)?;
    assert!(
        refused.contains("403") || refused.to_lowercase().contains("password"),
        "{refused}"
    );
    click(&window, "Edit")?;
    wait_until(&window, "the form holding the changed account", |w| {
        let form = w.global::<AccountsAdapter>();
        form.get_editing() == 0 && form.get_form_password() == "not-the-password"
    })?;
    type_into(&window, "Password", "alice-secret".into())?;
    // And over TCP this time (the transport box).
    on_ui(&window, |w| {
        w.global::<AccountsAdapter>()
            .set_form_transport("tcp".into())
    })?;
    click(&window, "Save changes")?;
    wait_until(&window, "the account registered again", |w| {
        account_state(w).starts_with("Registered")
            && w.global::<AccountsAdapter>().get_editing() < 0
    })?;
    let saved = Config::load(&dir.join("config.toml"))?;
    assert_eq!(saved.accounts.len(), 1);
    assert_eq!(saved.accounts[0].password.as_deref(), Some("alice-secret"));
    assert_eq!(
        saved.accounts[0].registrar.as_deref(),
        Some(format!("{registrar};transport=tcp").as_str())
    );

    // Dial bob, who answers; hang up.
    let bob_uri = format!("sip:bob@127.0.0.1:{port}");
    let mut bob = start_bob(dir, &["answer"], &bob_uri, &registrar, &[])?;
    bob.expect("registered", WAIT)?;
    dial_audio(&window, &bob_uri)?;
    bob.expect("answered", WAIT)?;
    click(&window, "Hang up")?;
    wait_until(&window, "the call to bob in the history", |w| {
        w.global::<CallAdapter>().get_calls().row_count() == 0 && history(w).len() == 3
    })?;
    let rows = on_ui(&window, history)?;
    assert_eq!(rows[0].0, "out", "{rows:?}");
    assert!(rows[0].1.contains("bob"), "{rows:?}");
    bob.wait(WAIT)?;

    // Redial: bob again, audio only as before (bob would take video).
    let bob_account = (bob_uri.as_str(), registrar.as_str());
    click(&window, "Dial")?;
    let redial = format!("Redial {bob_uri}");
    let video = bob_takes_the_call(&window, dir, bob_account, &redial, 4)?;
    assert!(!video, "redial repeats an audio call");

    // Bob calls back; answer audio-only; hang up.
    let alice_uri = format!("sip:alice@127.0.0.1:{port}");
    let mut caller = start_bob(
        dir,
        &["call", &alice_uri],
        &bob_uri,
        &registrar,
        &["--duration", "30"],
    )?;
    wait_until(&window, "bob's call ringing", |w| {
        let calls = w.global::<CallAdapter>();
        calls.get_ringing() && calls.get_ringing_address().contains("bob")
    })?;
    click(&window, "Answer audio only")?;
    wait_until(&window, "bob's call connected", |w| {
        current_call_state(w) == "Connected" && !w.global::<CallAdapter>().get_ringing()
    })?;
    // The Settings page leaves the devices to the call, and says so.
    click(&window, "Settings")?;
    wait_until(&window, "the settings page waiting for the call", |w| {
        let notice = w.global::<SettingsAdapter>().get_device_notice();
        notice.contains("wait until the call ends")
    })?;
    click(&window, "Hang up")?;
    wait_until(&window, "bob's call in the history", |w| {
        history(w).len() == 5
    })?;
    wait_until(
        &window,
        "the settings page checking the devices again",
        |w| {
            let notice = w.global::<SettingsAdapter>().get_device_notice();
            !notice.contains("wait until the call ends")
        },
    )?;
    click(&window, "Dial")?;
    let rows = on_ui(&window, history)?;
    assert_eq!(rows[0].0, "in", "the newest row first: {rows:?}");
    assert!(rows[0].1.contains("bob"), "{rows:?}");
    caller.expect("call_ended", WAIT)?;
    caller.wait(WAIT)?;

    // From the history: bob's row is called back with video, which he takes.
    click(&window, "History")?;
    let call_back = format!("Video call back {}", rows[0].1);
    let video = bob_takes_the_call(&window, dir, bob_account, &call_back, 6)?;
    assert!(video, "a video call back");

    // Contacts: one added with a wrong address is corrected by editing it (bob's address
    // second, after a number), then called audio only at that second address.
    click(&window, "Contacts")?;
    let wrong = format!("sip:nobody@127.0.0.1:{port}");
    save_contact(&window, "Bob", wrong, "Add contact")?;
    click(&window, "Edit Bob")?;
    let right = format!("+49 30 1234, {bob_uri}");
    save_contact(&window, "Bob Builder", right, "Save contact")?;
    let call_bob = format!("Call {bob_uri}");
    let video = bob_takes_the_call(&window, dir, bob_account, &call_bob, 7)?;
    assert!(!video, "a contact's audio call");

    // Bob calls with video: answered with video, his picture shows on a tile. In the call:
    // the camera off and on, hold and resume, a keypad digit, mute; hang up.
    let mut caller = start_bob(
        dir,
        &["call", &alice_uri],
        &bob_uri,
        &registrar,
        &["--duration", "30", "--video", "pattern"],
    )?;
    wait_until(&window, "bob's video call ringing", |w| {
        w.global::<CallAdapter>().get_ringing()
    })?;
    click(&window, "Answer with video")?;
    let answered = caller.expect("answered", WAIT)?;
    assert_eq!(answered["video"], true, "answered with video: {answered}");
    wait_until(&window, "bob's picture on a tile", |w| {
        w.global::<CallAdapter>()
            .get_tiles()
            .iter()
            .any(|t| t.has_video && t.frame.size().width > 0)
    })?;
    click(&window, "Camera off")?;
    wait_until(&window, "the camera off", |w| !shown_call(w).camera_on)?;
    click(&window, "Camera on")?;
    wait_until(&window, "the camera on", |w| shown_call(w).camera_on)?;
    click(&window, "Hold")?;
    caller.expect("held", WAIT)?;
    wait_until(&window, "bob on hold", |w| shown_call(w).held)?;
    click(&window, "Resume")?;
    caller.expect("resumed", WAIT)?;
    click(&window, "Keypad")?;
    click(&window, "Keypad 5")?;
    let digit = caller.expect("dtmf", WAIT)?;
    assert_eq!(digit["digit"], "5", "{digit}");
    click(&window, "Mute")?;
    wait_until(&window, "the microphone muted", |w| shown_call(w).muted)?;
    click(&window, "Unmute")?;
    wait_until(&window, "the microphone on", |w| !shown_call(w).muted)?;
    click(&window, "Hang up")?;
    caller.expect("call_ended", WAIT)?;
    caller.wait(WAIT)?;

    // Bob calls again and is declined: his call fails with 603, the history says so.
    let mut caller = start_bob(dir, &["call", &alice_uri], &bob_uri, &registrar, &[])?;
    wait_until(&window, "bob's call ringing again", |w| {
        w.global::<CallAdapter>().get_ringing()
    })?;
    click(&window, "Decline")?;
    let failed = caller.expect("call_failed", WAIT)?;
    assert_eq!(failed["code"], 603, "{failed}");
    wait_until(&window, "the declined call in the history", |w| {
        w.global::<CallAdapter>().get_calls().row_count() == 0 && history(w).len() == 9
    })?;
    let _ = caller.wait(WAIT)?;
    click(&window, "Dial")?;

    // Settings: the device lists start with the system's default; a codec list calls cannot
    // use is explained and not saved; a good one is saved to the configuration file.
    click(&window, "Settings")?;
    wait_until(&window, "the settings page's lists", |w| {
        let page = w.global::<SettingsAdapter>();
        page.get_inputs().row_data(0).as_deref() == Some("System default")
            && page.get_cameras().row_data(0).as_deref() == Some("System default")
            && page.get_video_sizes().row_count() == 3
            && page.get_video_rates().row_count() == 3
    })?;
    type_into(&window, "opus, pcmu, pcma", "opus, g729".into())?;
    click(&window, "Use these codecs")?;
    wait_until(&window, "the codec list refused", |w| {
        w.global::<SettingsAdapter>().get_error().contains("g729")
    })?;
    type_into(&window, "opus, pcmu, pcma", "pcma, opus".into())?;
    click(&window, "Use these codecs")?;
    wait_until(&window, "the codec list saved", |w| {
        w.global::<SettingsAdapter>().get_error().is_empty()
    })?;
    let saved = Config::load(&dir.join("config.toml"))?;
    assert_eq!(saved.media.codecs, "pcma, opus");
    // Noise suppression off is saved, echo cancellation stays on.
    click(&window, "Noise suppression")?;
    let deadline = Instant::now() + WAIT;
    let saved = loop {
        let saved = Config::load(&dir.join("config.toml"))?;
        if !saved.media.noise_suppression || Instant::now() > deadline {
            break saved;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!saved.media.noise_suppression, "{:?}", saved.media);
    assert!(saved.media.echo_cancellation && saved.media.gain_control);
    // Fifteen frames a second chosen from the list is saved for the calls' video.
    on_ui(&window, |w| {
        let page = w.global::<SettingsAdapter>();
        page.set_video_fps("15".into());
        page.invoke_changed();
    })?;
    let deadline = Instant::now() + WAIT;
    let saved = loop {
        let saved = Config::load(&dir.join("config.toml"))?;
        if saved.media.video_fps == 15 || Instant::now() > deadline {
            break saved;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(saved.media.video_fps, 15, "{:?}", saved.media);

    // A blind transfer: alice calls bob and hands him to carol from the call view. Bob is
    // asked to call carol, who answers; alice's call ends and is in the history.
    let carol_dir = dir.join("carol");
    std::fs::create_dir_all(&carol_dir)?;
    let carol_uri = format!("sip:carol@127.0.0.1:{port}");
    let carol_account = (carol_uri.as_str(), "carol-secret");
    let (mut bob, mut carol) =
        talk_to_bob_with_carol_ready(&window, dir, bob_account, &carol_dir, carol_account)?;
    click(&window, "Transfer…")?;
    for blank in ["", "   "] {
        type_into(&window, "Transfer to…", blank.to_owned())?;
        assert!(
            click(&window, "Transfer").is_err(),
            "nobody to transfer to yet in {blank:?}: the button is disabled"
        );
    }
    type_into(&window, "Transfer to…", carol_uri.clone())?;
    // The field opened with the focus: Enter there transfers, as the button does.
    press_enter(&window)?;
    let asked = bob.expect("transfer_requested", WAIT)?;
    assert_eq!(asked["target"], carol_uri.as_str(), "{asked}");
    carol.expect("answered", WAIT)?;
    wait_until(
        &window,
        "the transferred call over and in the history",
        |w| w.global::<CallAdapter>().get_calls().row_count() == 0 && history(w).len() == 10,
    )?;
    bob.control("hangup")?;
    bob.wait(WAIT)?;
    carol.wait(WAIT)?;
    click(&window, "Dial")?;

    // Call waiting and merging: while alice talks with bob, carol calls. Answering her puts
    // bob on hold; "Merge calls" joins both into a conference, bob taken off hold.
    let mut bob = start_bob(dir, &["answer"], &bob_uri, &registrar, &[])?;
    bob.expect("registered", WAIT)?;
    dial_audio(&window, &bob_uri)?;
    bob.expect("answered", WAIT)?;
    let mut carol = start_peer(
        &carol_dir,
        &["call", &alice_uri],
        carol_account,
        &registrar,
        &["--duration", "120"],
    )?;
    wait_until(&window, "carol's call waiting", |w| {
        let calls = w.global::<CallAdapter>();
        calls.get_ringing() && calls.get_ringing_address().contains("carol")
    })?;
    click(&window, "Answer audio only")?;
    bob.expect("held", WAIT)?;
    wait_until(
        &window,
        "bob held, carol connected, the calls mergeable",
        |w| {
            let calls = w.global::<CallAdapter>();
            let rows: Vec<CallRow> = calls.get_calls().iter().collect();
            rows.len() == 2
                && rows.iter().any(|c| c.held && c.remote.contains("bob"))
                && rows
                    .iter()
                    .any(|c| !c.held && c.remote.contains("carol") && c.state == "Connected")
                && calls.get_can_merge()
        },
    )?;
    click(&window, "Merge calls")?;
    bob.expect("resumed", WAIT)?;
    wait_until(&window, "bob and carol merged", two_merged_calls)?;
    // "End conference" hangs up both.
    click(&window, "End conference")?;
    wait_until(&window, "no call left", |w| {
        w.global::<CallAdapter>().get_calls().row_count() == 0
    })?;
    bob.expect("call_ended", WAIT)?;
    carol.expect("call_ended", WAIT)?;
    bob.wait(WAIT)?;
    carol.wait(WAIT)?;
    click(&window, "Dial")?;

    // A conference: bob answers a call, carol is added from the call view; once she answers
    // both calls are merged, and the view shows a tile for each. Hang up both.
    let (mut bob, mut carol) =
        talk_to_bob_with_carol_ready(&window, dir, bob_account, &carol_dir, carol_account)?;
    click(&window, "Add participant")?;
    type_into(&window, "Add to the conference…", " ".to_owned())?;
    assert!(click(&window, "Add").is_err(), "nobody to add yet");
    type_into(&window, "Add to the conference…", carol_uri.clone())?;
    click(&window, "Add")?;
    carol.expect("answered", WAIT)?;
    wait_until(&window, "bob and carol in the conference", two_merged_calls)?;
    // Each participant has a button that drops them: bob goes, carol stays.
    let bob_row = on_ui(&window, |w| {
        let people: Vec<CallRow> = w
            .global::<CallAdapter>()
            .get_participants()
            .iter()
            .collect();
        people.into_iter().find(|c| c.remote.contains("bob"))
    })?
    .ok_or("bob among the participants")?;
    click(&window, &format!("Remove {}", bob_row.remote))?;
    bob.expect("call_ended", WAIT)?;
    wait_until(&window, "carol alone in the conference", |w| {
        let people: Vec<CallRow> = w
            .global::<CallAdapter>()
            .get_participants()
            .iter()
            .collect();
        people.len() == 1 && people[0].remote.contains("carol") && people[0].state == "Connected"
    })?;
    click(&window, "End conference")?;
    carol.expect("call_ended", WAIT)?;
    bob.wait(WAIT)?;
    carol.wait(WAIT)?;
    click(&window, "Dial")?;
    Ok(())
}

/// Bob and carol registered and ready to answer; alice calls bob, who answers. Returns both.
fn talk_to_bob_with_carol_ready(
    window: &Weak,
    dir: &Path,
    (bob_uri, registrar): (&str, &str),
    carol_dir: &Path,
    carol_account: (&str, &str),
) -> Result<(Callisto, Callisto), Box<dyn Error>> {
    let mut bob = start_bob(dir, &["answer"], bob_uri, registrar, &[])?;
    bob.expect("registered", WAIT)?;
    let mut carol = start_peer(carol_dir, &["answer"], carol_account, registrar, &[])?;
    carol.expect("registered", WAIT)?;
    dial_audio(window, bob_uri)?;
    bob.expect("answered", WAIT)?;
    Ok((bob, carol))
}

/// Two calls, both connected, merged and not held, a tile for each; nothing left to merge.
fn two_merged_calls(w: &MainWindow) -> bool {
    let calls = w.global::<CallAdapter>();
    let rows = calls.get_calls();
    rows.row_count() == 2
        && rows
            .iter()
            .all(|c| c.in_conference && !c.held && c.state == "Connected")
        && calls.get_tiles().row_count() == 2
        && !calls.get_can_merge()
}

/// Dials `address` from the dial page as an audio call and waits until it is connected.
fn dial_audio(window: &Weak, address: &str) -> Result<(), String> {
    click(window, "Dial")?;
    let field = "sip:bob@example.org, a number or a name";
    type_into(window, field, "  ".to_owned())?;
    if click(window, "Audio call").is_ok() {
        return Err("a blank address can be called".into());
    }
    type_into(window, field, address.to_string())?;
    click(window, "Audio call")?;
    wait_until(window, &format!("the call to {address} connected"), |w| {
        current_call_state(w) == "Connected"
    })
}

/// Bob as a headless Callisto registered with the registrar and playing a tone: `command` is
/// the subcommand and its operands, `extra` the options after the shared ones.
fn start_bob(
    dir: &Path,
    command: &[&str],
    bob_uri: &str,
    registrar: &str,
    extra: &[&str],
) -> std::io::Result<Callisto> {
    start_peer(dir, command, (bob_uri, "bob-secret"), registrar, extra)
}

/// A headless Callisto registered as `account` (address, password), playing a tone.
fn start_peer(
    dir: &Path,
    command: &[&str],
    account: (&str, &str),
    registrar: &str,
    extra: &[&str],
) -> std::io::Result<Callisto> {
    let shared = [
        "--user",
        account.0,
        "--password",
        account.1,
        "--registrar",
        registrar,
        "--listen",
        "127.0.0.1:0",
        "--audio",
        "tone:880",
    ];
    let args: Vec<&str> = command
        .iter()
        .chain(&shared)
        .chain(extra)
        .chain(&["--json"])
        .copied()
        .collect();
    Callisto::start(dir, &args)
}

#[test]
fn add_an_account_dial_answer_hang_up_and_see_the_history() {
    let users = [
        ("alice", "alice-secret"),
        ("bob", "bob-secret"),
        ("carol", "carol-secret"),
    ];
    let saved = run_window(&users, script);
    assert!(
        saved.contains("sip:alice@127.0.0.1"),
        "the new account was saved: {saved}"
    );
}
