//! The Slint window and its adapters: the only code that touches generated UI types.
//!
//! `ui/*.slint` declares one global per concern (`AccountsAdapter`, `DialerAdapter`,
//! `CallAdapter`, `HistoryAdapter`, `SettingsAdapter`, …); each has one adapter module here that copies the
//! controller's [`Screen`] into the global's properties and turns the global's callbacks into
//! [`Action`]s (STYLE.md, Slint todo-mvc). Screens reach the window through [`WindowDisplay`],
//! which keeps only the latest one and schedules a single update on the event loop, however
//! many arrive meanwhile.

use std::sync::{Arc, Mutex};

use slint::{Model, ModelRc, VecModel};
use tokio::sync::mpsc;

use callisto::app::{Action, Display, Screen};

mod accounts_adapter;
mod call_adapter;
mod contacts_adapter;
mod dialer_adapter;
mod history_adapter;
mod settings_adapter;
pub mod video_image;
mod video_pump;
mod window;

slint::include_modules!();

pub use window::run_window;

/// Sends the window's actions to the controller.
#[derive(Clone)]
pub struct Actions(mpsc::UnboundedSender<Action>);

impl Actions {
    pub fn new(sender: mpsc::UnboundedSender<Action>) -> Self {
        Actions(sender)
    }

    fn send(&self, action: Action) {
        // The controller only goes away when the app quits.
        let _ = self.0.send(action);
    }
}

/// Wires every adapter's callbacks to `actions`.
pub fn connect(window: &MainWindow, actions: &Actions) {
    accounts_adapter::connect(window, actions);
    dialer_adapter::connect(window, actions);
    call_adapter::connect(window, actions);
    history_adapter::connect(window, actions);
    contacts_adapter::connect(window, actions);
    settings_adapter::connect(window, actions);
}

/// Copies a screen into the window.
pub fn apply(window: &MainWindow, screen: &Screen) {
    window
        .global::<Nav>()
        .set_notice(screen.notice.as_str().into());
    window.global::<Nav>().set_first_run(screen.first_run);
    accounts_adapter::apply(window, screen);
    dialer_adapter::apply(window, screen);
    call_adapter::apply(window, screen);
    history_adapter::apply(window, screen);
    contacts_adapter::apply(window, screen);
    settings_adapter::apply(window, screen);
    video_pump::follow(window, &screen.video, screen.self_view.as_ref());
}

/// Hands screens from any thread to the window, coalesced: one pending update at a time,
/// always with the latest screen.
pub struct WindowDisplay {
    window: slint::Weak<MainWindow>,
    latest: Arc<Mutex<Option<Screen>>>,
}

impl WindowDisplay {
    pub fn new(window: &MainWindow) -> Self {
        WindowDisplay {
            window: window.as_weak(),
            latest: Arc::new(Mutex::new(None)),
        }
    }
}

impl Display for WindowDisplay {
    fn show(&self, screen: Screen) {
        let Ok(mut latest) = self.latest.lock() else {
            return;
        };
        let scheduled = latest.replace(screen).is_some();
        drop(latest);
        if scheduled {
            return;
        }
        let slot = Arc::clone(&self.latest);
        let _ = self.window.upgrade_in_event_loop(move |window| {
            let screen = slot.lock().ok().and_then(|mut s| s.take());
            if let Some(screen) = screen {
                apply(&window, &screen);
            }
        });
    }
}

/// Runs `tick` on the window every `period` while `on`, and stops the timer otherwise: the
/// window's pollers (pictures, the Settings meter) cost nothing while there is nothing to show.
fn poll_while(
    timer: &slint::Timer,
    window: &MainWindow,
    on: bool,
    period: std::time::Duration,
    tick: fn(&MainWindow),
) {
    if !on {
        timer.stop();
        return;
    }
    let weak = window.as_weak();
    timer.start(slint::TimerMode::Repeated, period, move || {
        if let Some(window) = weak.upgrade() {
            tick(&window);
        }
    });
}

/// Makes a model property hold `rows`, touching only the rows that changed, so lists keep
/// their scroll position and views are not rebuilt every second. The first time, `install`
/// puts a fresh `VecModel` in place.
fn sync_rows<T: Clone + PartialEq + 'static>(
    current: ModelRc<T>,
    rows: Vec<T>,
    install: impl FnOnce(ModelRc<T>),
) {
    sync_rows_by(current, rows, |a, b| a == b, install);
}

/// [`sync_rows`] with rows compared by `same`.
fn sync_rows_by<T: Clone + 'static>(
    current: ModelRc<T>,
    rows: Vec<T>,
    same: impl Fn(&T, &T) -> bool,
    install: impl FnOnce(ModelRc<T>),
) {
    let Some(model) = current.as_any().downcast_ref::<VecModel<T>>() else {
        install(ModelRc::new(VecModel::from(rows)));
        return;
    };
    for (index, row) in rows.iter().enumerate() {
        if index < model.row_count() {
            if !model.row_data(index).is_some_and(|old| same(&old, row)) {
                model.set_row_data(index, row.clone());
            }
        } else {
            model.push(row.clone());
        }
    }
    while model.row_count() > rows.len() {
        model.remove(model.row_count() - 1);
    }
}
