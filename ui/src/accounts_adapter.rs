//! `AccountsAdapter`: the accounts, their registration in words, and the account form that adds
//! one or changes the one being edited.

use std::cell::Cell;

use slint::{ComponentHandle, SharedString};

use crate::{sync_rows, AccountRow, AccountsAdapter, Actions, MainWindow};
use callisto::app::{AccountForm, Action, Screen};

thread_local! {
    /// The form generation last written into the window: the form is only replaced when the
    /// controller's changes, never over what is being typed.
    static FORM_GENERATION: Cell<Option<u64>> = const { Cell::new(None) };
}

pub(super) fn connect(window: &MainWindow, actions: &Actions) {
    let adapter = window.global::<AccountsAdapter>();
    let a = actions.clone();
    let weak = window.as_weak();
    adapter.on_save_account(move || {
        let Some(window) = weak.upgrade() else {
            return;
        };
        let form = window.global::<AccountsAdapter>();
        a.send(Action::SaveAccount(AccountForm {
            user: form.get_form_user().into(),
            password: form.get_form_password().into(),
            registrar: form.get_form_registrar().into(),
            media: form.get_form_media().into(),
            srtp: form.get_form_srtp().into(),
            transport: form.get_form_transport().into(),
            stun: form.get_form_stun().into(),
            turn: form.get_form_turn().into(),
            turn_user: form.get_form_turn_user().into(),
            turn_password: form.get_form_turn_password().into(),
        }))
    });
    let a = actions.clone();
    adapter.on_edit_account(move |index| {
        if let Ok(index) = usize::try_from(index) {
            a.send(Action::EditAccount(index));
        }
    });
    let a = actions.clone();
    adapter.on_cancel_edit(move || a.send(Action::CancelEdit));
    let a = actions.clone();
    adapter.on_remove_account(move |index| {
        if let Ok(index) = usize::try_from(index) {
            a.send(Action::RemoveAccount(index));
        }
    });
    let a = actions.clone();
    adapter.on_retry_account(move |index| {
        if let Ok(index) = usize::try_from(index) {
            a.send(Action::RetryAccount(index));
        }
    });
}

pub(super) fn apply(window: &MainWindow, screen: &Screen) {
    let adapter = window.global::<AccountsAdapter>();
    let rows = screen
        .view
        .accounts
        .iter()
        .map(|a| AccountRow {
            name: SharedString::from(a.name.as_str()),
            user: a.user.as_str().into(),
            state: a.state.as_str().into(),
            detail: a.detail.as_str().into(),
            tone: a.tone,
        })
        .collect();
    sync_rows(adapter.get_accounts(), rows, |m| adapter.set_accounts(m));
    adapter.set_form_error(screen.form_error.as_str().into());
    adapter.set_editing(
        screen
            .editing
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or(-1),
    );
    if FORM_GENERATION.get() != Some(screen.form_generation) {
        FORM_GENERATION.set(Some(screen.form_generation));
        let form = &screen.account_form;
        adapter.set_form_user(form.user.as_str().into());
        adapter.set_form_password(form.password.as_str().into());
        adapter.set_form_registrar(form.registrar.as_str().into());
        let or = |text: &str, default: &str| {
            SharedString::from(if text.is_empty() { default } else { text })
        };
        adapter.set_form_media(or(&form.media, "classic"));
        adapter.set_form_srtp(or(&form.srtp, "optional"));
        adapter.set_form_transport(or(&form.transport, "auto"));
        adapter.set_form_stun(form.stun.as_str().into());
        adapter.set_form_turn(form.turn.as_str().into());
        adapter.set_form_turn_user(form.turn_user.as_str().into());
        adapter.set_form_turn_password(form.turn_password.as_str().into());
    }
}
