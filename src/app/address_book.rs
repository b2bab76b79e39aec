//! Contacts and call history for the window: the SQLite store (`crate::storage`) with the
//! rows the window shows kept beside it, so a screen never waits for the disk.
//!
//! When the database cannot be opened the app still works: the history of this run is kept in
//! memory, contacts cannot be saved, and the notice says why.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::storage::{
    CallDirection, CallRecord, Contact, ContactAddress, ContactId, NewContact, Store,
};

use super::controller::HistoryRow;
use super::format::{duration_words, when};
use super::view_model::{Direction, FinishedCall};

/// How many past calls the history page shows.
const HISTORY_ROWS: usize = 200;
/// How many completions the dial field offers.
const COMPLETIONS: usize = 6;

/// One contact row in words.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactRow {
    pub id: i64,
    pub name: String,
    /// The addresses as the form shows them, comma separated.
    pub addresses: String,
    /// Each address, to call it.
    pub address_list: Vec<String>,
    pub favourite: bool,
}

/// The store and what the window shows of it.
pub struct AddressBook {
    store: Option<Store>,
    /// Newest first.
    history: Vec<CallRecord>,
    contacts: Vec<Contact>,
    query: String,
}

impl AddressBook {
    /// Opens `<data_dir>/callisto.db`; the message says what went wrong or was moved aside.
    pub fn open(data_dir: Option<&Path>) -> (AddressBook, Option<String>) {
        let mut book = AddressBook {
            store: None,
            history: Vec::new(),
            contacts: Vec::new(),
            query: String::new(),
        };
        let Some(dir) = data_dir else {
            return (
                book,
                Some("No data folder: history and contacts are not saved.".into()),
            );
        };
        let message = match Store::open(dir) {
            Ok(opened) => {
                book.store = Some(opened.store);
                opened.quarantined.map(|moved| {
                    format!(
                        "The contacts database was damaged ({}); it was moved to {} and a new one started.",
                        moved.reason,
                        moved.moved_to.display()
                    )
                })
            }
            Err(error) => Some(format!("Contacts and history cannot be saved: {error}")),
        };
        let reload = book.reload();
        (book, message.or(reload.err()))
    }

    fn reload(&mut self) -> Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        self.history = store
            .history(HISTORY_ROWS)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|entry| entry.call)
            .collect();
        self.contacts = if self.query.trim().is_empty() {
            store.contacts()
        } else {
            store.search(&self.query)
        }
        .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Adds a finished call to the history.
    pub fn record(&mut self, call: &FinishedCall, account: Option<&str>) -> Result<(), String> {
        let record = CallRecord {
            direction: match call.direction {
                Direction::Incoming => CallDirection::Incoming,
                Direction::Outgoing => CallDirection::Outgoing,
                Direction::Missed => CallDirection::Missed,
            },
            remote_uri: call.remote.clone(),
            display_name: call.display_name.clone(),
            account: account.map(str::to_string),
            started_at_ms: unix_ms(call.started),
            duration_ms: call
                .duration
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            end_reason: call.reason.clone(),
        };
        match &mut self.store {
            Some(store) => {
                store.record_call(&record).map_err(|e| e.to_string())?;
                self.reload()
            }
            None => {
                self.history.insert(0, record);
                self.history.truncate(HISTORY_ROWS);
                Ok(())
            }
        }
    }

    /// The history in words, newest first.
    pub fn history_rows(&self, now: SystemTime) -> Vec<HistoryRow> {
        self.history
            .iter()
            .map(|call| HistoryRow {
                direction: match call.direction {
                    CallDirection::Incoming => "in",
                    CallDirection::Outgoing => "out",
                    CallDirection::Missed => "missed",
                }
                .to_string(),
                remote: call.remote_uri.clone(),
                name: call.display_name.clone().unwrap_or_default(),
                when: when(from_unix_ms(call.started_at_ms), now),
                duration: if call.duration_ms > 0 {
                    duration_words(Duration::from_millis(call.duration_ms))
                } else {
                    String::new()
                },
            })
            .collect()
    }

    /// The address of the history row at `index` (newest first).
    pub fn history_address(&self, index: usize) -> Option<String> {
        self.history.get(index).map(|c| c.remote_uri.clone())
    }

    pub fn clear_history(&mut self) -> Result<(), String> {
        self.history.clear();
        match &mut self.store {
            Some(store) => store.clear_history().map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// The contacts in words (those matching the search, when there is one).
    pub fn contact_rows(&self) -> Vec<ContactRow> {
        self.contacts
            .iter()
            .map(|c| {
                let address_list: Vec<String> =
                    c.addresses.iter().map(|a| a.address.clone()).collect();
                ContactRow {
                    id: c.id.0,
                    name: c.name.clone(),
                    addresses: address_list.join(", "),
                    address_list,
                    favourite: c.favourite,
                }
            })
            .collect()
    }

    pub fn search(&mut self, query: &str) -> Result<(), String> {
        self.query = query.to_string();
        self.reload()
    }

    /// Adds a contact; `addresses` is what the user typed, comma separated.
    pub fn add_contact(&mut self, name: &str, addresses: &str) -> Result<(), String> {
        let (name, addresses) = typed_contact(name, addresses, &[])?;
        self.writable()?
            .add_contact(&NewContact {
                name,
                favourite: false,
                addresses,
            })
            .map_err(|e| e.to_string())?;
        self.reload()
    }

    /// Gives a contact the name and addresses typed, as `add_contact` takes them (whether or
    /// not the search shows it). An address kept unchanged keeps its label; the favourite
    /// mark stays.
    pub fn edit_contact(&mut self, id: i64, name: &str, addresses: &str) -> Result<(), String> {
        let store = self.writable()?;
        let Some(contact) = store.contact(ContactId(id)).map_err(|e| e.to_string())? else {
            return Err("That contact is no longer there.".into());
        };
        let (name, addresses) = typed_contact(name, addresses, &contact.addresses)?;
        store
            .update_contact(&Contact {
                name,
                addresses,
                ..contact
            })
            .map_err(|e| e.to_string())?;
        self.reload()
    }

    pub fn remove_contact(&mut self, id: i64) -> Result<(), String> {
        self.writable()?
            .remove_contact(ContactId(id))
            .map_err(|e| e.to_string())?;
        self.reload()
    }

    pub fn toggle_favourite(&mut self, id: i64) -> Result<(), String> {
        let Some(mut contact) = self.contacts.iter().find(|c| c.id.0 == id).cloned() else {
            return Ok(());
        };
        contact.favourite = !contact.favourite;
        self.writable()?
            .update_contact(&contact)
            .map_err(|e| e.to_string())?;
        self.reload()
    }

    /// A contact's address number `index` (in its order), to call it.
    pub fn contact_address(&self, id: i64, index: usize) -> Option<String> {
        self.contacts
            .iter()
            .find(|c| c.id.0 == id)
            .and_then(|c| c.addresses.get(index))
            .map(|a| a.address.clone())
    }

    /// What the dial field could become: addresses of contacts and past calls starting with
    /// (or whose names start with) `prefix`, shown as `Name <address>` or the address.
    pub fn completions(&self, prefix: &str) -> Vec<String> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        if prefix.trim().is_empty() {
            return Vec::new();
        }
        store
            .complete(prefix.trim(), COMPLETIONS)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.address != prefix.trim())
            .map(|c| c.address)
            .collect()
    }

    /// The address behind a contact's exact name, so a name can be dialed.
    pub fn address_of_name(&self, name: &str) -> Option<String> {
        let store = self.store.as_ref()?;
        let name = name.trim();
        store
            .search(name)
            .ok()?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .and_then(|c| c.addresses.into_iter().next())
            .map(|a| a.address)
    }

    fn writable(&mut self) -> Result<&mut Store, String> {
        self.store
            .as_mut()
            .ok_or_else(|| "Contacts cannot be saved: there is no database.".to_string())
    }
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A contact's name and addresses from what the user typed (addresses comma separated, an
/// address typed twice taken once); an address among `before` keeps its label.
fn typed_contact(
    name: &str,
    addresses: &str,
    before: &[ContactAddress],
) -> Result<(String, Vec<ContactAddress>), String> {
    let name = name.trim();
    let mut kept: Vec<ContactAddress> = Vec::new();
    for typed in addresses.split(',').map(str::trim) {
        if typed.is_empty() || kept.iter().any(|a| a.address == typed) {
            continue;
        }
        let old = before.iter().find(|old| old.address == typed);
        kept.push(old.cloned().unwrap_or_else(|| ContactAddress::new(typed)));
    }
    let addresses = kept;
    if name.is_empty() || addresses.is_empty() {
        return Err("A contact needs a name and at least one address or number.".into());
    }
    Ok((name.to_string(), addresses))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(remote: &str, direction: Direction) -> FinishedCall {
        FinishedCall {
            direction,
            remote: remote.into(),
            display_name: None,
            started: SystemTime::now(),
            duration: Some(Duration::from_secs(125)),
            reason: "hung up".into(),
        }
    }

    #[test]
    fn history_and_contacts_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut book, message) = AddressBook::open(Some(dir.path()));
            assert_eq!(message, None);
            book.record(
                &call("sip:bob@example.org", Direction::Outgoing),
                Some("work"),
            )
            .unwrap();
            book.record(&call("sip:carol@example.org", Direction::Missed), None)
                .unwrap();
            book.add_contact("Bob Smith", "sip:bob@example.org, +49 30 1234")
                .unwrap();
        }
        let (mut book, _) = AddressBook::open(Some(dir.path()));
        let rows = book.history_rows(SystemTime::now());
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].direction.as_str(), rows[0].remote.as_str()),
            ("missed", "sip:carol@example.org")
        );
        assert_eq!(rows[1].duration, "2 min");
        assert_eq!(
            book.history_address(1).as_deref(),
            Some("sip:bob@example.org")
        );
        let contacts = book.contact_rows();
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].addresses, "sip:bob@example.org, +49 30 1234");
        assert_eq!(
            book.address_of_name("bob smith").as_deref(),
            Some("sip:bob@example.org")
        );
        assert!(book
            .completions("bob")
            .contains(&"sip:bob@example.org".to_string()));
        book.toggle_favourite(contacts[0].id).unwrap();
        assert!(book.contact_rows()[0].favourite);
        book.search("carol").unwrap();
        assert!(book.contact_rows().is_empty());
        assert!(book.add_contact("", "sip:x@example.org").is_err());
    }

    #[test]
    fn an_edited_contact_keeps_its_mark_and_the_labels_of_addresses_it_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let (mut book, _) = AddressBook::open(Some(dir.path()));
            let store = book.writable().unwrap();
            let id = store
                .add_contact(&NewContact {
                    name: "Bob".into(),
                    favourite: true,
                    addresses: vec![
                        ContactAddress::labelled("sip:bob@example.org", "work"),
                        ContactAddress::labelled("+49 30 1234", "mobile"),
                    ],
                })
                .unwrap();
            book.reload().unwrap();
            // Edited while the search hides it; an address typed twice is taken once.
            book.search("nobody").unwrap();
            book.edit_contact(
                id.0,
                " Bob Smith ",
                "+49 30 1234, sip:bob@home.example, +49 30 1234",
            )
            .unwrap();
            assert!(book.edit_contact(id.0, "Bob", " , ").is_err());
            assert!(book
                .edit_contact(id.0 + 1, "Bob", "sip:x@example.org")
                .is_err());
            id
        };
        let (book, _) = AddressBook::open(Some(dir.path()));
        let rows = book.contact_rows();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (
                rows[0].name.as_str(),
                rows[0].addresses.as_str(),
                rows[0].favourite
            ),
            ("Bob Smith", "+49 30 1234, sip:bob@home.example", true)
        );
        let stored = &book.contacts[0];
        assert_eq!(stored.id, id);
        let labels: Vec<Option<&str>> = stored
            .addresses
            .iter()
            .map(|a| a.label.as_deref())
            .collect();
        assert_eq!(labels, [Some("mobile"), None]);
        assert_eq!(
            book.contact_address(id.0, 0).as_deref(),
            Some("+49 30 1234")
        );
        assert_eq!(
            book.contact_address(id.0, 1).as_deref(),
            Some("sip:bob@home.example")
        );
        assert_eq!(book.contact_address(id.0, 2), None);
        assert_eq!(
            rows[0].address_list,
            ["+49 30 1234", "sip:bob@home.example"]
        );
    }

    #[test]
    fn without_a_database_the_history_of_this_run_is_kept() {
        let (mut book, message) = AddressBook::open(None);
        assert!(message.unwrap().contains("not saved"));
        book.record(&call("sip:bob@example.org", Direction::Incoming), None)
            .unwrap();
        assert_eq!(book.history_rows(SystemTime::now()).len(), 1);
        assert!(book.add_contact("Bob", "sip:bob@example.org").is_err());
    }
}
