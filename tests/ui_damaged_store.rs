//! The window opened on a data folder whose contacts database is damaged (not an SQLite file
//! at all): the window says so in its notice, naming where the damaged file was moved, and a
//! new database takes its place — a contact added in the window is saved in it.
//!
//! One test per binary: Slint's testing backend is set up once per process.

mod support;
#[path = "support/window_script.rs"]
mod window_script;

use std::error::Error;
use std::path::Path;

use callisto::storage::Store;
use callisto_ui::Nav;
use slint::ComponentHandle;
use window_script::{click, contacts, on_ui, run_window_in, type_into, wait_until, Weak};

/// What the data folder's `callisto.db` holds before the window opens: bytes no database has.
fn garbage() -> Vec<u8> {
    (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect()
}

fn script(window: Weak, dir: &Path) -> Result<(), Box<dyn Error>> {
    wait_until(&window, "the notice of the damaged database", |w| {
        w.global::<Nav>().get_notice().contains("damaged")
    })?;
    let notice = on_ui(&window, |w| w.global::<Nav>().get_notice().to_string())?;
    println!("notice: {notice}");
    // The damaged file is kept, whole, where the notice says.
    let moved: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_prefix("callisto.db.corrupt-"))
                .is_some_and(|time| time.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(notice.contains(&moved[0].display().to_string()), "{notice}");
    assert_eq!(std::fs::read(&moved[0])?, garbage());

    // The new database takes what the window saves.
    click(&window, "Contacts")?;
    type_into(&window, "Name", "Carol".to_owned())?;
    type_into(
        &window,
        "sip:bob@example.org, +49 30 1234",
        "sip:carol@example.org".to_owned(),
    )?;
    click(&window, "Add contact")?;
    wait_until(&window, "carol saved", |w| {
        contacts(w) == [("Carol".to_owned(), "sip:carol@example.org".to_owned())]
    })?;
    let saved = Store::open(dir)?.store.contacts()?;
    let names: Vec<&str> = saved.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Carol"]);
    Ok(())
}

#[test]
fn a_damaged_database_is_moved_aside_and_the_window_says_where() {
    // No account is used here; `run_window_in` starts a registrar for every window.
    run_window_in(
        &[("alice", "secret")],
        |dir| std::fs::write(dir.join("callisto.db"), garbage()),
        |window, _kamailio, dir| script(window, dir),
    );
}
