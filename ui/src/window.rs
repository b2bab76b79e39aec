//! `callisto` with no command: the window on the main thread, the engine and the controller
//! on a tokio runtime beside it.

use std::time::Duration;

use slint::winit_030::{winit, EventResult, WinitWindowAccessor};
use slint::ComponentHandle;
use tokio::sync::mpsc;

use crate::{apply, connect, Actions, MainWindow, WindowDisplay};
use callisto::app::{self, Action, AppSetup, Screen};

/// Opens the window and runs until it is closed; the controller then hangs up, unregisters and
/// stops (bounded). Returns a message when the window cannot be opened.
pub fn run_window(setup: AppSetup) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("callisto-engine")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    let window = MainWindow::new().map_err(|e| format!("cannot open the window: {e}"))?;
    let (actions_tx, actions_rx) = mpsc::unbounded_channel();
    let actions = Actions::new(actions_tx.clone());
    connect(&window, &actions);
    apply(
        &window,
        &Screen {
            notice: setup.notice.clone(),
            first_run: setup.config.accounts.is_empty(),
            ..Screen::default()
        },
    );
    let display = WindowDisplay::new(&window);
    // Start-up time is measured to the end of the first frame: the first redraw the window
    // system asks for is drawn right after this filter, and the timer runs once it is done.
    let started = setup.started;
    let mut first = true;
    window.window().on_winit_window_event(move |_, event| {
        if first && matches!(event, winit::event::WindowEvent::RedrawRequested) {
            first = false;
            slint::Timer::single_shot(Duration::ZERO, move || {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "the window is up"
                );
            });
        }
        EventResult::Propagate
    });
    let controller = runtime.spawn(app::run(setup, actions_rx, display));
    let shown = window
        .run()
        .map_err(|e| format!("cannot show the window: {e}"));
    let _ = actions_tx.send(Action::Quit);
    let _ =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(8), controller).await });
    runtime.shutdown_timeout(Duration::from_secs(1));
    shown
}
