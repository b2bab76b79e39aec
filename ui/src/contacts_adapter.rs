//! `ContactsAdapter`: search, add, edit, favourite, call and remove contacts.

use slint::ComponentHandle;

use slint::{ModelRc, SharedString, VecModel};

use crate::{sync_rows_by, Actions, ContactRow, ContactsAdapter, MainWindow};
use callisto::app::{Action, Screen};

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
    adapter.on_call(move |id, index, video| {
        if let Ok(index) = usize::try_from(index) {
            a.send(Action::CallContact {
                id: i64::from(id),
                index,
                video,
            })
        }
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
            address_list: ModelRc::new(VecModel::from_iter(
                c.address_list.iter().map(SharedString::from),
            )),
            favourite: c.favourite,
        })
        .collect();
    // A row's address list is a model of its own, equal only to itself: rows are compared by
    // what they show (the joined addresses stand for the list).
    let same = |a: &ContactRow, b: &ContactRow| {
        (a.id, &a.name, &a.addresses, a.favourite) == (b.id, &b.name, &b.addresses, b.favourite)
    };
    sync_rows_by(adapter.get_rows(), rows, same, |m| adapter.set_rows(m));
}
