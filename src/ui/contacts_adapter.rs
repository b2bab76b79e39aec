//! `ContactsAdapter`: search, add, edit, favourite, call and remove contacts.

use slint::ComponentHandle;

use super::{sync_rows, Actions, ContactRow, ContactsAdapter, MainWindow};
use crate::app::{Action, Screen};

pub(super) fn connect(window: &MainWindow, actions: &Actions) {
    let adapter = window.global::<ContactsAdapter>();
    let a = actions.clone();
    adapter.on_search(move |query| a.send(Action::SearchContacts(query.into())));
    let a = actions.clone();
    adapter.on_add(move |name, addresses| {
        a.send(Action::AddContact {
            name: name.into(),
            addresses: addresses.into(),
        })
    });
    let a = actions.clone();
    adapter.on_edit(move |id, name, addresses| {
        a.send(Action::EditContact {
            id: i64::from(id),
            name: name.into(),
            addresses: addresses.into(),
        })
    });
    let a = actions.clone();
    adapter.on_remove(move |id| a.send(Action::RemoveContact(i64::from(id))));
    let a = actions.clone();
    adapter.on_toggle_favourite(move |id| a.send(Action::ToggleFavourite(i64::from(id))));
    let a = actions.clone();
    adapter.on_call(move |id, video| {
        a.send(Action::CallContact {
            id: i64::from(id),
            video,
        })
    });
}

pub(super) fn apply(window: &MainWindow, screen: &Screen) {
    let adapter = window.global::<ContactsAdapter>();
    let rows = screen
        .contacts
        .iter()
        .map(|c| ContactRow {
            id: i32::try_from(c.id).unwrap_or(i32::MAX),
            name: c.name.as_str().into(),
            addresses: c.addresses.as_str().into(),
            favourite: c.favourite,
        })
        .collect();
    sync_rows(adapter.get_rows(), rows, |m| adapter.set_rows(m));
}
