//! `AccountsAdapter`: the accounts, their registration in words, the add-account form.

use slint::{ComponentHandle, SharedString};

use super::{sync_rows, AccountRow, AccountsAdapter, Actions, MainWindow};
use crate::app::{AccountForm, Action, Screen};

pub(super) fn connect(window: &MainWindow, actions: &Actions) {
    let adapter = window.global::<AccountsAdapter>();
    let a = actions.clone();
    adapter.on_add_account(move |user, password, registrar, media, srtp| {
        a.send(Action::AddAccount(AccountForm {
            user: user.into(),
            password: password.into(),
            registrar: registrar.into(),
            media: media.into(),
            srtp: srtp.into(),
        }))
    });
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
}
