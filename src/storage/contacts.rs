//! Contacts: a name, a favourite flag and several addresses (SIP URIs or numbers, each with an
//! optional label such as "work" or "mobile").

use std::fmt;

use rusqlite::{params, Connection, Transaction};

use super::search_key::{address_key, fold};
use super::{Store, StoreError};

/// A stored contact's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(pub i64);

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One way to reach a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAddress {
    /// A SIP URI (`sip:alice@example.org`), a `tel:` URI or a number, as the user wrote it.
    pub address: String,
    /// What it is ("work", "mobile"), if the user said.
    pub label: Option<String>,
}

impl ContactAddress {
    /// An address without a label.
    pub fn new(address: impl Into<String>) -> Self {
        ContactAddress {
            address: address.into(),
            label: None,
        }
    }

    /// An address with a label.
    pub fn labelled(address: impl Into<String>, label: impl Into<String>) -> Self {
        ContactAddress {
            address: address.into(),
            label: Some(label.into()),
        }
    }
}

/// A contact to add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewContact {
    /// The name shown (required, not blank).
    pub name: String,
    /// Favourites come first in lists and completions.
    pub favourite: bool,
    /// Its addresses, in the order the user gave them (none is allowed).
    pub addresses: Vec<ContactAddress>,
}

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Its identity in the store.
    pub id: ContactId,
    /// The name shown.
    pub name: String,
    /// Whether it is a favourite.
    pub favourite: bool,
    /// Its addresses, in their stored order.
    pub addresses: Vec<ContactAddress>,
}

/// The columns [`collect_contacts`] reads, for a query joining contacts to their addresses.
const CONTACT_COLUMNS: &str = "c.id, c.name, c.favourite, a.address, a.label
     FROM contacts c LEFT JOIN contact_addresses a ON a.contact_id = c.id";

/// The list order: favourites first, then by name (case-insensitive), addresses in order.
const CONTACT_ORDER: &str = "ORDER BY c.favourite DESC, c.name_key, c.id, a.position";

impl Store {
    /// Stores a new contact with all its addresses, in one transaction.
    pub fn add_contact(&mut self, contact: &NewContact) -> Result<ContactId, StoreError> {
        let name = checked_name(&contact.name)?;
        check_addresses(&contact.addresses)?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO contacts (name, name_key, favourite) VALUES (?1, ?2, ?3)",
            params![name, fold(name), contact.favourite],
        )?;
        let id = ContactId(tx.last_insert_rowid());
        insert_addresses(&tx, id, &contact.addresses)?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces a stored contact's name, favourite flag and addresses, in one transaction.
    pub fn update_contact(&mut self, contact: &Contact) -> Result<(), StoreError> {
        let name = checked_name(&contact.name)?;
        check_addresses(&contact.addresses)?;
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE contacts SET name = ?2, name_key = ?3, favourite = ?4 WHERE id = ?1",
            params![contact.id.0, name, fold(name), contact.favourite],
        )?;
        if changed == 0 {
            return Err(StoreError::NoSuchContact(contact.id));
        }
        tx.execute(
            "DELETE FROM contact_addresses WHERE contact_id = ?1",
            [contact.id.0],
        )?;
        insert_addresses(&tx, contact.id, &contact.addresses)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a contact and its addresses (call history is kept).
    pub fn remove_contact(&mut self, id: ContactId) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let removed = tx.execute("DELETE FROM contacts WHERE id = ?1", [id.0])?;
        if removed == 0 {
            return Err(StoreError::NoSuchContact(id));
        }
        tx.commit()?;
        Ok(())
    }

    /// The contact with this id, if it exists.
    pub fn contact(&self, id: ContactId) -> Result<Option<Contact>, StoreError> {
        let sql = format!("SELECT {CONTACT_COLUMNS} WHERE c.id = ?1 {CONTACT_ORDER}");
        Ok(collect_contacts(&self.conn, &sql, params![id.0])?
            .into_iter()
            .next())
    }

    /// Every contact: favourites first, then by name.
    pub fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let sql = format!("SELECT {CONTACT_COLUMNS} {CONTACT_ORDER}");
        Ok(collect_contacts(&self.conn, &sql, [])?)
    }

    /// The contacts whose name or one of whose addresses contains `query`, case-insensitively
    /// (an address also matches without its scheme, parameters and number separators: "0612" finds
    /// "06 12 34 56"), in the order of [`Store::contacts`]. A blank query finds every contact.
    pub fn search(&self, query: &str) -> Result<Vec<Contact>, StoreError> {
        let folded = fold(query);
        let key = address_key(query);
        let key = (!key.is_empty()).then_some(key);
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} WHERE c.id IN (
                 SELECT id FROM contacts WHERE instr(name_key, ?1) > 0
                 UNION
                 SELECT contact_id FROM contact_addresses
                  WHERE instr(address_folded, ?1) > 0 OR instr(address_key, ?2) > 0
             ) {CONTACT_ORDER}"
        );
        Ok(collect_contacts(&self.conn, &sql, params![folded, key])?)
    }
}

fn checked_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::InvalidContact("the name is blank"));
    }
    Ok(name)
}

fn check_addresses(addresses: &[ContactAddress]) -> Result<(), StoreError> {
    if addresses.iter().any(|a| a.address.trim().is_empty()) {
        return Err(StoreError::InvalidContact("an address is blank"));
    }
    Ok(())
}

fn insert_addresses(
    tx: &Transaction<'_>,
    id: ContactId,
    addresses: &[ContactAddress],
) -> Result<(), rusqlite::Error> {
    let mut stmt = tx.prepare(
        "INSERT INTO contact_addresses
             (contact_id, position, address, label, address_folded, address_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (position, entry) in addresses.iter().enumerate() {
        let address = entry.address.trim();
        let label = entry
            .label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        stmt.execute(params![
            id.0,
            position as i64,
            address,
            label,
            fold(address),
            address_key(address)
        ])?;
    }
    Ok(())
}

/// Runs a query over [`CONTACT_COLUMNS`] ordered by contact, and folds its rows (one per
/// address, or one with no address) into contacts.
fn collect_contacts(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Contact>, rusqlite::Error> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut contacts: Vec<Contact> = Vec::new();
    while let Some(row) = rows.next()? {
        let id = ContactId(row.get(0)?);
        if contacts.last().map(|c| c.id) != Some(id) {
            contacts.push(Contact {
                id,
                name: row.get(1)?,
                favourite: row.get(2)?,
                addresses: Vec::new(),
            });
        }
        let address: Option<String> = row.get(3)?;
        if let (Some(address), Some(contact)) = (address, contacts.last_mut()) {
            contact.addresses.push(ContactAddress {
                address,
                label: row.get(4)?,
            });
        }
    }
    Ok(contacts)
}
