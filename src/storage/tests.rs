//! The store's behaviour: contacts, search, history, completion, schema, reopening, damage.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

#[test]
fn a_store_can_move_to_the_thread_or_task_that_owns_it() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
    assert_send::<Opened>();
}

fn open(dir: &Path) -> Store {
    let opened = Store::open(dir).unwrap();
    assert_eq!(opened.quarantined, None);
    opened.store
}

fn contact(name: &str, favourite: bool, addresses: &[&str]) -> NewContact {
    NewContact {
        name: name.into(),
        favourite,
        addresses: addresses.iter().map(|a| ContactAddress::new(*a)).collect(),
    }
}

fn call(direction: CallDirection, uri: &str, name: Option<&str>, at_ms: i64) -> CallRecord {
    CallRecord {
        direction,
        remote_uri: uri.into(),
        display_name: name.map(Into::into),
        account: Some("work".into()),
        started_at_ms: at_ms,
        duration_ms: 61_500,
        end_reason: "hung up by remote".into(),
    }
}

fn names(contacts: &[Contact]) -> Vec<&str> {
    contacts.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn adds_reads_updates_and_removes_a_contact() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let new = NewContact {
        name: "Alice Martin".into(),
        favourite: false,
        addresses: vec![
            ContactAddress::labelled("sip:alice@example.org", "work"),
            ContactAddress::labelled("tel:+33612345678", "mobile"),
            ContactAddress::new("sip:alice@home.example"),
        ],
    };
    let id = store.add_contact(&new).unwrap();
    let stored = store.contact(id).unwrap().unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.name, new.name);
    assert_eq!(stored.addresses, new.addresses, "all addresses, in order");

    let updated = Contact {
        name: "Alice Martin-Dupont".into(),
        favourite: true,
        addresses: vec![ContactAddress::labelled("tel:+33699999999", "mobile")],
        ..stored
    };
    store.update_contact(&updated).unwrap();
    assert_eq!(store.contact(id).unwrap().unwrap(), updated);

    store.remove_contact(id).unwrap();
    assert_eq!(store.contact(id).unwrap(), None);
    assert!(store.contacts().unwrap().is_empty());
    // Its addresses went with it.
    let orphans: i64 = store
        .conn
        .query_row("SELECT count(*) FROM contact_addresses", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0);
    assert!(matches!(
        store.remove_contact(id),
        Err(StoreError::NoSuchContact(gone)) if gone == id
    ));
    assert!(matches!(
        store.update_contact(&updated),
        Err(StoreError::NoSuchContact(_))
    ));
}

#[test]
fn invalid_contacts_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    assert!(matches!(
        store.add_contact(&contact("  ", false, &["sip:a@b"])),
        Err(StoreError::InvalidContact(_))
    ));
    assert!(matches!(
        store.add_contact(&contact("Bob", false, &["sip:bob@b", " "])),
        Err(StoreError::InvalidContact(_))
    ));
    assert!(store.contacts().unwrap().is_empty());
    // A contact with no address yet is fine.
    let id = store.add_contact(&contact("Carol", false, &[])).unwrap();
    assert!(store.contact(id).unwrap().unwrap().addresses.is_empty());
}

#[test]
fn a_failed_update_keeps_the_old_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let id = store
        .add_contact(&contact("Dan", false, &["sip:dan@a", "sip:dan@b"]))
        .unwrap();
    let before = store.contact(id).unwrap().unwrap();
    // Make the second address insert fail inside the transaction: a trigger refuses it.
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON contact_addresses
             WHEN NEW.position = 1 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let mut changed = before.clone();
    changed.name = "Daniel".into();
    changed.addresses = vec![
        ContactAddress::new("sip:daniel@a"),
        ContactAddress::new("sip:daniel@b"),
    ];
    assert!(store.update_contact(&changed).is_err());
    assert_eq!(store.contact(id).unwrap().unwrap(), before);
    // And an add that fails half-way leaves no contact behind.
    assert!(store
        .add_contact(&contact("Eve", false, &["sip:eve@a", "sip:eve@b"]))
        .is_err());
    assert_eq!(names(&store.contacts().unwrap()), ["Dan"]);
}

#[test]
fn contacts_list_favourites_first_then_by_name_ignoring_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    for (name, favourite) in [
        ("zoë", false),
        ("Bob", false),
        ("Yann", true),
        ("alice", false),
        ("Émile", false),
        ("Carl", true),
    ] {
        store
            .add_contact(&contact(name, favourite, &["sip:x@example.org"]))
            .unwrap();
    }
    assert_eq!(
        names(&store.contacts().unwrap()),
        ["Carl", "Yann", "alice", "Bob", "zoë", "Émile"]
    );
}

#[test]
fn search_matches_names_and_addresses_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .add_contact(&contact(
            "Élodie Durand",
            false,
            &["sip:elodie@Example.org"],
        ))
        .unwrap();
    store
        .add_contact(&contact("Bob Smith", true, &["tel:+33 6 12 34 56 78"]))
        .unwrap();
    store
        .add_contact(&contact("Carol", false, &["sip:carol@pbx.example.net"]))
        .unwrap();
    assert_eq!(names(&store.search("ÉLODIE").unwrap()), ["Élodie Durand"]);
    assert_eq!(names(&store.search("smi").unwrap()), ["Bob Smith"]);
    assert_eq!(
        names(&store.search("EXAMPLE.ORG").unwrap()),
        ["Élodie Durand"]
    );
    assert_eq!(
        names(&store.search("example").unwrap()),
        ["Carol", "Élodie Durand"]
    );
    // A number matches with or without its separators.
    assert_eq!(names(&store.search("0612345").unwrap()), Vec::<&str>::new());
    assert_eq!(names(&store.search("612345").unwrap()), ["Bob Smith"]);
    assert_eq!(names(&store.search("6 12 34").unwrap()), ["Bob Smith"]);
    assert!(store.search("nobody").unwrap().is_empty());
    assert_eq!(store.search("").unwrap().len(), 3);
    // A match on two addresses still returns the contact once, with all its addresses.
    let id = store
        .add_contact(&contact(
            "Dave",
            false,
            &["sip:dave@x.org", "sip:dave@y.org"],
        ))
        .unwrap();
    let found = store.search("dave@").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(found[0].addresses.len(), 2);
}

#[test]
fn history_is_newest_first_limited_and_clearable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let records = [
        call(
            CallDirection::Outgoing,
            "sip:bob@example.org",
            Some("Bob"),
            1_000,
        ),
        call(CallDirection::Missed, "sip:carol@example.org", None, 3_000),
        call(
            CallDirection::Incoming,
            "sip:bob@example.org",
            Some("Bob"),
            2_000,
        ),
    ];
    for record in &records {
        store.record_call(record).unwrap();
    }
    let history = store.history(10).unwrap();
    let calls: Vec<&CallRecord> = history.iter().map(|e| &e.call).collect();
    assert_eq!(calls, [&records[1], &records[2], &records[0]]);
    assert_eq!(store.history(2).unwrap().len(), 2);
    assert!(store.history(0).unwrap().is_empty());

    let bob = store
        .history_for("sip:Bob@example.org;transport=tcp")
        .unwrap();
    let times: Vec<i64> = bob.iter().map(|e| e.call.started_at_ms).collect();
    assert_eq!(times, [2_000, 1_000]);
    assert!(store
        .history_for("sip:dave@example.org")
        .unwrap()
        .is_empty());

    assert_eq!(store.clear_history().unwrap(), 3);
    assert!(store.history(10).unwrap().is_empty());
    assert!(store.complete("", 10).unwrap().is_empty());
    assert!(store.integrity_check().unwrap().is_empty());
}

#[test]
fn integrity_check_reports_a_latest_call_that_disagrees_with_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .record_call(&call(
            CallDirection::Incoming,
            "sip:bob@example.org",
            None,
            10,
        ))
        .unwrap();
    assert!(store.integrity_check().unwrap().is_empty());
    store
        .conn
        .execute("UPDATE call_remotes SET last_call_ms = 11", [])
        .unwrap();
    assert_eq!(store.integrity_check().unwrap().len(), 1);
    store.conn.execute("DELETE FROM call_remotes", []).unwrap();
    assert_eq!(store.integrity_check().unwrap().len(), 1);
}

#[test]
fn a_call_without_a_remote_uri_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    assert!(matches!(
        store.record_call(&call(CallDirection::Incoming, " ", None, 1)),
        Err(StoreError::InvalidCallRecord(_))
    ));
    let mut long = call(CallDirection::Incoming, "sip:a@b", None, 1);
    long.duration_ms = u64::MAX;
    assert!(matches!(
        store.record_call(&long),
        Err(StoreError::InvalidCallRecord(_))
    ));
    assert!(store.history(10).unwrap().is_empty());
}

#[test]
fn completion_offers_contacts_and_history_once_favourites_and_recent_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let alice = store
        .add_contact(&NewContact {
            name: "Alice Martin".into(),
            favourite: false,
            addresses: vec![
                ContactAddress::labelled("sip:alice@example.org", "work"),
                ContactAddress::labelled("sip:alice@home.example", "home"),
            ],
        })
        .unwrap();
    let albert = store
        .add_contact(&contact("Albert", true, &["sip:albert@example.org"]))
        .unwrap();
    store
        .add_contact(&contact("Bob", false, &["sip:bob@example.org"]))
        .unwrap();
    // Alice's home address was called recently; an unknown "alistair" earlier; the work
    // address long ago.
    store
        .record_call(&call(
            CallDirection::Outgoing,
            "sip:alice@example.org",
            None,
            100,
        ))
        .unwrap();
    store
        .record_call(&call(
            CallDirection::Incoming,
            "sip:alistair@example.net",
            Some("Alistair"),
            500,
        ))
        .unwrap();
    store
        .record_call(&call(
            CallDirection::Outgoing,
            "SIP:Alice@Home.Example",
            Some("Alice"),
            900,
        ))
        .unwrap();

    let got = store.complete("al", 10).unwrap();
    let addresses: Vec<&str> = got.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "sip:albert@example.org",
            "sip:alice@home.example",
            "sip:alistair@example.net",
            "sip:alice@example.org",
        ],
        "{got:#?}"
    );
    assert_eq!(
        got[0].source,
        CompletionSource::Contact {
            id: albert,
            favourite: true
        }
    );
    assert_eq!(
        got[1].source,
        CompletionSource::Contact {
            id: alice,
            favourite: false
        }
    );
    assert_eq!(got[1].label.as_deref(), Some("home"));
    assert_eq!(got[1].last_call_ms, Some(900));
    assert_eq!(got[2].source, CompletionSource::History);
    assert_eq!(got[2].name.as_deref(), Some("Alistair"));
    assert_eq!(got[3].last_call_ms, Some(100));

    // The limit holds, the best first.
    let two = store.complete("al", 2).unwrap();
    assert_eq!(two, got[..2]);
    // A word of the name matches; so does the address with its scheme typed.
    let martin = store.complete("mart", 10).unwrap();
    assert_eq!(martin.len(), 2);
    assert!(martin
        .iter()
        .all(|c| c.name.as_deref() == Some("Alice Martin")));
    let by_uri = store.complete("sip:bo", 10).unwrap();
    assert_eq!(by_uri.len(), 1);
    assert_eq!(by_uri[0].address, "sip:bob@example.org");
    assert!(store.complete("zz", 10).unwrap().is_empty());
    assert!(store.complete("al", 0).unwrap().is_empty());
}

#[test]
fn completion_finds_past_callers_by_display_name_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    for i in 0..30 {
        let uri = format!("sip:{i}@pbx.example.org");
        let name = format!("Reception desk {i}");
        store
            .record_call(&call(CallDirection::Incoming, &uri, Some(&name), i))
            .unwrap();
    }
    // The same caller again, most recently: offered once, with its latest call.
    store
        .record_call(&call(
            CallDirection::Missed,
            "sip:3@pbx.example.org",
            Some("Reception desk 3"),
            100,
        ))
        .unwrap();
    // A call recorded late but older than the latest one changes nothing.
    store
        .record_call(&call(
            CallDirection::Incoming,
            "sip:29@pbx.example.org",
            Some("Old name"),
            0,
        ))
        .unwrap();
    assert!(store.integrity_check().unwrap().is_empty());
    let got = store.complete("RECEPTION", 4).unwrap();
    let addresses: Vec<&str> = got.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "sip:3@pbx.example.org",
            "sip:29@pbx.example.org",
            "sip:28@pbx.example.org",
            "sip:27@pbx.example.org",
        ]
    );
    assert_eq!(got[0].last_call_ms, Some(100));
    assert_eq!(got[1].name.as_deref(), Some("Reception desk 29"));
    assert_eq!(got[1].last_call_ms, Some(29));
    assert!(got.iter().all(|c| c.source == CompletionSource::History));
    // Nothing matches in the middle of a URI or name.
    assert!(store.complete("desk", 4).unwrap().is_empty());
    assert!(store.complete("pbx", 4).unwrap().is_empty());
}

#[test]
fn completion_of_numbers_ignores_separators() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .add_contact(&contact("Desk", false, &["tel:+33 1 23 45 67 89"]))
        .unwrap();
    store
        .record_call(&call(
            CallDirection::Missed,
            "sip:+33987654@pbx.example.org",
            None,
            5,
        ))
        .unwrap();
    let got = store.complete("+33 1 2", 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].name.as_deref(), Some("Desk"));
    let got = store.complete("+3398", 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].address, "sip:+33987654@pbx.example.org");
}

#[test]
fn an_empty_file_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(DB_FILE_NAME), b"").unwrap();
    let mut store = open(dir.path());
    assert_eq!(
        store.schema_version().unwrap(),
        Store::current_schema_version()
    );
    assert!(Store::current_schema_version() >= 1);
    store
        .add_contact(&contact("Ann", false, &["sip:ann@a"]))
        .unwrap();
    let journal: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let foreign_keys: bool = store
        .conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(foreign_keys);
}

#[test]
fn contacts_and_history_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (id, written) = {
        let mut store = open(&data_dir);
        let new = NewContact {
            name: "Frank".into(),
            favourite: true,
            addresses: vec![
                ContactAddress::labelled("sip:frank@example.org", "work"),
                ContactAddress::new("tel:+4930123"),
            ],
        };
        let id = store.add_contact(&new).unwrap();
        store
            .record_call(&call(
                CallDirection::Incoming,
                "sip:frank@example.org",
                Some("Frank"),
                42,
            ))
            .unwrap();
        (id, new)
    };
    let store = open(&data_dir);
    let contact = store.contact(id).unwrap().unwrap();
    assert_eq!(contact.name, written.name);
    assert!(contact.favourite);
    assert_eq!(contact.addresses, written.addresses);
    let history = store.history(10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].call,
        call(
            CallDirection::Incoming,
            "sip:frank@example.org",
            Some("Frank"),
            42
        )
    );
    assert!(store.integrity_check().unwrap().is_empty());
}

#[test]
fn a_garbage_file_is_moved_aside_with_its_bytes_and_a_new_database_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    fs::write(&path, &garbage).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_763_700_000);
    let opened = Store::open_at(dir.path(), now).unwrap();
    let quarantined = opened.quarantined.expect("the garbage is reported");
    assert_eq!(
        quarantined.moved_to,
        dir.path().join("callisto.db.corrupt-1763700000")
    );
    assert!(!quarantined.reason.is_empty());
    assert_eq!(fs::read(&quarantined.moved_to).unwrap(), garbage);

    let mut store = opened.store;
    let id = store
        .add_contact(&contact("Gus", false, &["sip:gus@a"]))
        .unwrap();
    assert_eq!(store.contact(id).unwrap().unwrap().name, "Gus");
    drop(store);
    // The new database opens cleanly; the moved file is still there, untouched.
    let store = open(dir.path());
    assert_eq!(names(&store.contacts().unwrap()), ["Gus"]);
    assert_eq!(fs::read(&quarantined.moved_to).unwrap(), garbage);
}

#[test]
fn a_second_damaged_file_in_the_same_second_does_not_overwrite_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let now = UNIX_EPOCH + Duration::from_secs(99);
    fs::write(&path, b"first garbage, long enough to be a header?").unwrap();
    let first = Store::open_at(dir.path(), now).unwrap();
    drop(first.store);
    fs::write(&path, b"second garbage").unwrap();
    let second = Store::open_at(dir.path(), now).unwrap();
    let first_path = first.quarantined.unwrap().moved_to;
    let second_path = second.quarantined.unwrap().moved_to;
    assert_ne!(first_path, second_path);
    assert_eq!(
        fs::read(&first_path).unwrap(),
        b"first garbage, long enough to be a header?"
    );
    assert_eq!(fs::read(&second_path).unwrap(), b"second garbage");
}

#[test]
fn a_database_with_damaged_pages_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    {
        let mut store = open(dir.path());
        for i in 0..300u32 {
            let name = format!("Contact {i} with a name long enough to fill pages");
            store
                .add_contact(&contact(
                    &name,
                    i.is_multiple_of(3),
                    &["sip:someone@example.org"],
                ))
                .unwrap();
        }
        // Fold the write-ahead log into the file so the damage below hits live pages.
        store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let mut bytes = fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 4096, "{} bytes", bytes.len());
    // Keep the 100-byte header; scribble over the rest of every page from the second on.
    let page = 4096;
    for start in (page..bytes.len()).step_by(page) {
        for b in &mut bytes[start..start + 64] {
            *b = 0xA5;
        }
    }
    fs::write(&path, &bytes).unwrap();
    let opened = Store::open(dir.path()).unwrap();
    let quarantined = opened.quarantined.expect("damage is detected");
    assert_eq!(fs::read(&quarantined.moved_to).unwrap(), bytes);
    assert!(opened.store.contacts().unwrap().is_empty());
}

#[test]
fn a_database_from_a_newer_callisto_is_an_error_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", Store::current_schema_version() + 1)
            .unwrap();
    }
    let before = fs::read(&path).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(!fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("corrupt")));
}

#[test]
fn open_reports_the_real_time_in_the_moved_name() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(DB_FILE_NAME),
        b"not a database at all, really",
    )
    .unwrap();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let opened = Store::open(dir.path()).unwrap();
    let name = opened
        .quarantined
        .unwrap()
        .moved_to
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let secs: u64 = name
        .strip_prefix("callisto.db.corrupt-")
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= before && secs <= before + 60, "{name}");
}
