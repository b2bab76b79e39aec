//! Driving the window from a test, with Slint's testing backend: the app's own window,
//! adapters and controller run on a real event loop, and a script on a thread of its own
//! clicks, types and reads what the window shows — through the event loop, as the engine does.
//! Included with `#[path]` by the window tests (`tests/ui_*.rs`); one window per test binary,
//! since the testing backend is set up once per process.

// Each window test uses a different part of it.
#![allow(dead_code)]

use std::error::Error;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use callisto::app::{self, AppSetup};
use callisto::config::Config;
use callisto_ui::{
    self as ui, AccountsAdapter, Actions, CallAdapter, CallRow, ContactsAdapter, DialerAdapter,
    HistoryAdapter, MainWindow, Nav,
};
use i_slint_backend_testing::{ElementHandle, ElementQuery};
use slint::platform::{Key, WindowEvent};
use slint::{ComponentHandle, Model};

use crate::support::kamailio::{Kamailio, KamailioConfig};

pub const WAIT: Duration = Duration::from_secs(20);

pub type Weak = slint::Weak<MainWindow>;

/// Runs `f` on the UI thread and returns what it returns.
pub fn on_ui<R: Send + 'static>(
    window: &Weak,
    f: impl FnOnce(&MainWindow) -> R + Send + 'static,
) -> Result<R, String> {
    let (tx, rx) = std_mpsc::channel();
    window
        .upgrade_in_event_loop(move |w| {
            let _ = tx.send(f(&w));
        })
        .map_err(|e| format!("the event loop is gone: {e}"))?;
    rx.recv_timeout(WAIT)
        .map_err(|_| "the UI thread did not answer".to_string())
}

/// Waits until `check` holds on the window; `what` names it in the failure.
pub fn wait_until(
    window: &Weak,
    what: &str,
    check: impl Fn(&MainWindow) -> bool + Send + Clone + 'static,
) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if on_ui(window, check.clone())? {
            return Ok(());
        }
        if Instant::now() > deadline {
            let screen = on_ui(window, describe).unwrap_or_default();
            return Err(format!(
                "timed out waiting for: {what}; on screen: {screen}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Presses the button (or navigation item) labelled `label`.
pub fn click(window: &Weak, label: &str) -> Result<(), String> {
    let wanted = label.to_string();
    let found = on_ui(window, move |w| {
        let all: Vec<ElementHandle> = ElementHandle::find_by_accessible_label(w, &wanted).collect();
        let button = all.iter().find(|e| e.accessible_enabled() != Some(false));
        match button {
            Some(button) => {
                button.invoke_accessible_default_action();
                Ok(())
            }
            None => {
                let labels: Vec<String> = ElementQuery::from_root(w)
                    .match_descendants()
                    .find_all()
                    .iter()
                    .map(|e| format!("{:?}/{:?}", e.type_name(), e.accessible_label()))
                    .take(40)
                    .collect();
                let root = ElementQuery::from_root(w).find_first();
                Err(format!(
                    "{} disabled; seen {labels:?}; window {:?}; root {:?}",
                    all.len(),
                    w.window().size(),
                    root.map(|r| (r.size(), r.type_name()))
                ))
            }
        }
    })?;
    found.map_err(|n| format!("no enabled '{label}' on screen ({n})"))
}

/// Presses the `n`th (from 0) button labelled `label`: the rows of a list repeat theirs.
pub fn click_nth(window: &Weak, label: &str, n: usize) -> Result<(), String> {
    let wanted = label.to_string();
    let pressed = on_ui(window, move |w| {
        let all: Vec<ElementHandle> = ElementHandle::find_by_accessible_label(w, &wanted).collect();
        all.get(n)
            .map(|button| button.invoke_accessible_default_action())
            .is_some()
    })?;
    pressed
        .then_some(())
        .ok_or_else(|| format!("no {n}th '{label}' on screen"))
}

/// Types `text` into the field whose placeholder is `placeholder`.
pub fn type_into(window: &Weak, placeholder: &'static str, text: String) -> Result<(), String> {
    let found = on_ui(window, move |w| {
        let field = ElementQuery::from_root(w)
            .match_descendants()
            .match_predicate(move |e| {
                e.accessible_placeholder_text().as_deref() == Some(placeholder)
            })
            .find_first();
        match field {
            Some(field) => {
                field.set_accessible_value(text);
                true
            }
            None => false,
        }
    })?;
    if found {
        Ok(())
    } else {
        Err(format!("no field '{placeholder}' on screen"))
    }
}

/// The position (logical pixels, in the window) of the element labelled `label`.
pub fn position_of(window: &Weak, label: &str) -> Result<(f32, f32), String> {
    let wanted = label.to_string();
    on_ui(window, move |w| {
        ElementHandle::find_by_accessible_label(w, &wanted)
            .next()
            .map(|e| (e.absolute_position().x, e.absolute_position().y))
    })?
    .ok_or_else(|| format!("no '{label}' on screen"))
}

/// Drags the element labelled `label` by (`dx`, `dy`) logical pixels with the left mouse
/// button: pressed at its middle, moved there in steps, released.
pub fn drag(window: &Weak, label: &str, dx: f32, dy: f32) -> Result<(), String> {
    use slint::platform::PointerEventButton;
    use slint::LogicalPosition;
    let wanted = label.to_string();
    on_ui(window, move |w| {
        let element = ElementHandle::find_by_accessible_label(w, &wanted).next()?;
        let (at, size) = (element.absolute_position(), element.size());
        let start = LogicalPosition::new(at.x + size.width / 2.0, at.y + size.height / 2.0);
        let button = PointerEventButton::Left;
        let window = w.window();
        window.dispatch_event(WindowEvent::PointerMoved { position: start });
        window.dispatch_event(WindowEvent::PointerPressed {
            position: start,
            button,
        });
        let mut position = start;
        for step in 1..=4 {
            let part = step as f32 / 4.0;
            position = LogicalPosition::new(start.x + dx * part, start.y + dy * part);
            window.dispatch_event(WindowEvent::PointerMoved { position });
        }
        window.dispatch_event(WindowEvent::PointerReleased { position, button });
        Some(())
    })?
    .ok_or_else(|| format!("no '{label}' on screen"))
}

/// Presses Enter in the field that has the focus.
pub fn press_enter(window: &Weak) -> Result<(), String> {
    on_ui(window, move |w| {
        let enter = slint::SharedString::from(Key::Return);
        w.window().dispatch_event(WindowEvent::KeyPressed {
            text: enter.clone(),
        });
        w.window()
            .dispatch_event(WindowEvent::KeyReleased { text: enter });
    })
}

/// What the window shows, for failure messages.
pub fn describe(w: &MainWindow) -> String {
    let calls: Vec<String> = w
        .global::<CallAdapter>()
        .get_calls()
        .iter()
        .map(|c| format!("{} {}", c.remote, c.state))
        .collect();
    format!(
        "account '{}', calls {calls:?}, history {:?}, dial error '{}', notice '{}'",
        account_state(w),
        history(w),
        w.global::<DialerAdapter>().get_error(),
        w.global::<Nav>().get_notice()
    )
}

pub fn account_state(w: &MainWindow) -> String {
    let accounts = w.global::<AccountsAdapter>().get_accounts();
    accounts
        .row_data(0)
        .map(|a| format!("{}: {}", a.state, a.detail))
        .unwrap_or_default()
}

pub fn current_call_state(w: &MainWindow) -> String {
    shown_call(w).state.to_string()
}

/// The call the call view shows.
pub fn shown_call(w: &MainWindow) -> CallRow {
    let calls = w.global::<CallAdapter>();
    usize::try_from(calls.get_current())
        .ok()
        .and_then(|i| calls.get_calls().row_data(i))
        .unwrap_or_default()
}

pub fn history(w: &MainWindow) -> Vec<(String, String)> {
    w.global::<HistoryAdapter>()
        .get_rows()
        .iter()
        .map(|r| (r.direction.to_string(), r.remote.to_string()))
        .collect()
}

/// The contacts shown: name and addresses.
pub fn contacts(w: &MainWindow) -> Vec<(String, String)> {
    w.global::<ContactsAdapter>()
        .get_rows()
        .iter()
        .map(|c| (c.name.to_string(), c.addresses.to_string()))
        .collect()
}

/// Ends the event loop when dropped.
struct QuitOnDrop;

impl Drop for QuitOnDrop {
    fn drop(&mut self) {
        let _ = slint::quit_event_loop();
    }
}

/// Opens the window on a fresh configuration (listening on loopback, data in a temporary
/// folder), with Kamailio running for `users`, and runs `script` against it; panics with the
/// script's error and Kamailio's log tail. Returns the data folder's saved configuration text.
pub fn run_window(
    users: &[(&str, &str)],
    script: impl FnOnce(Weak, &Kamailio, &Path) -> Result<(), Box<dyn Error>> + Send + 'static,
) -> String {
    run_window_in(users, |_| Ok(()), script)
}

/// [`run_window`], with `prepare` putting what it likes into the data folder before the window
/// opens it.
pub fn run_window_in(
    users: &[(&str, &str)],
    prepare: impl FnOnce(&Path) -> std::io::Result<()>,
    script: impl FnOnce(Weak, &Kamailio, &Path) -> Result<(), Box<dyn Error>> + Send + 'static,
) -> String {
    i_slint_backend_testing::init_integration_test_with_system_time();
    let kamailio = Kamailio::start(KamailioConfig {
        users: users
            .iter()
            .map(|(user, password)| (user.to_string(), password.to_string()))
            .collect(),
        ..KamailioConfig::default()
    })
    .expect("Kamailio");
    let dir = tempfile::Builder::new()
        .prefix("callisto-ui-")
        .tempdir()
        .expect("a temporary directory");
    prepare(dir.path()).expect("the data folder prepared");
    let mut config = Config::default();
    config.transport.listen = "127.0.0.1:0".parse().expect("an address");
    let setup = AppSetup {
        config,
        config_path: dir.path().join("config.toml"),
        data_dir: Some(dir.path().to_path_buf()),
        notice: String::new(),
        started: std::time::Instant::now(),
        dial: None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let window = MainWindow::new().expect("the window");
    window.show().expect("show the window");
    // The testing backend's window starts empty; elements outside it count as hidden.
    window
        .window()
        .set_size(slint::LogicalSize::new(1024.0, 680.0));
    let (actions_tx, actions_rx) = tokio::sync::mpsc::unbounded_channel();
    ui::connect(&window, &Actions::new(actions_tx.clone()));
    let controller = runtime.spawn(app::run(setup, actions_rx, ui::WindowDisplay::new(&window)));

    let weak = window.as_weak();
    let dir_path = dir.path().to_path_buf();
    let script = std::thread::spawn(move || {
        // The event loop ends with the script, even when an assertion in it panics.
        let _quit = QuitOnDrop;
        let outcome = script(weak, &kamailio, &dir_path).map_err(|e| e.to_string());
        (outcome, kamailio)
    });
    slint::run_event_loop_until_quit().expect("the event loop");
    let (outcome, kamailio) = script.join().expect("the script thread");
    let _ = actions_tx.send(app::Action::Quit);
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), controller).await })
        .expect("the controller stopped")
        .expect("the controller task");
    if let Err(error) = outcome {
        panic!("{error}\nKamailio:\n{}", kamailio.log_tail(30));
    }
    std::fs::read_to_string(dir.path().join("config.toml")).unwrap_or_default()
}
