//! `DialerAdapter`: the address field, its inline explanation, completions and redial.

use slint::{ComponentHandle, SharedString};

use crate::{sync_rows, Actions, DialerAdapter, MainWindow};
use callisto::app::{Action, Screen};

pub(super) fn connect(window: &MainWindow, actions: &Actions) {
    let adapter = window.global::<DialerAdapter>();
    let a = actions.clone();
    adapter.on_edited(move |text| a.send(Action::DialEdited(text.into())));
    let a = actions.clone();
    adapter.on_dial(move |address, video| {
        a.send(Action::Dial {
            address: address.into(),
            video,
        })
    });
    let a = actions.clone();
    adapter.on_redial(move || a.send(Action::Redial));
}

pub(super) fn apply(window: &MainWindow, screen: &Screen) {
    let adapter = window.global::<DialerAdapter>();
    adapter.set_error(screen.dial_error.as_str().into());
    adapter.set_last_dialed(screen.last_dialed.as_str().into());
    let completions: Vec<SharedString> = screen
        .completions
        .iter()
        .map(|c| SharedString::from(c.as_str()))
        .collect();
    sync_rows(adapter.get_completions(), completions, |m| {
        adapter.set_completions(m)
    });
}
