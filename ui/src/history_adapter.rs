//! `HistoryAdapter`: past calls, newest first, with "call back".

use slint::ComponentHandle;

use crate::{sync_rows, Actions, HistoryAdapter, HistoryRow, MainWindow};
use callisto::app::{Action, Screen};

pub(super) fn connect(window: &MainWindow, actions: &Actions) {
    let adapter = window.global::<HistoryAdapter>();
    let a = actions.clone();
    adapter.on_call_back(move |index, video| {
        if let Ok(index) = usize::try_from(index) {
            a.send(Action::CallBack { index, video });
        }
    });
    let a = actions.clone();
    adapter.on_clear(move || a.send(Action::ClearHistory));
}

pub(super) fn apply(window: &MainWindow, screen: &Screen) {
    let adapter = window.global::<HistoryAdapter>();
    let rows = screen
        .history
        .iter()
        .map(|h| HistoryRow {
            direction: h.direction.as_str().into(),
            remote: h.remote.as_str().into(),
            name: h.name.as_str().into(),
            when: h.when.as_str().into(),
            duration: h.duration.as_str().into(),
        })
        .collect();
    sync_rows(adapter.get_rows(), rows, |m| adapter.set_rows(m));
}
