//! Completion for the dial field: addresses from contacts and from call history that match
//! what has been typed so far.

use std::cmp::Reverse;
use std::collections::HashSet;

use rusqlite::params;

use super::contacts::ContactId;
use super::search_key::{address_key, fold};
use super::{Store, StoreError};

/// One suggestion for the dial field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// What to dial, as stored (a contact's address or a past call's remote URI).
    pub address: String,
    /// Who it is: the contact's name, or the display name a past call carried.
    pub name: Option<String>,
    /// The contact address's label ("work"), if any.
    pub label: Option<String>,
    /// The start of the latest call with this address, in Unix milliseconds, if any.
    pub last_call_ms: Option<i64>,
    /// Where the suggestion comes from.
    pub source: CompletionSource,
}

/// Where a [`Completion`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionSource {
    /// A contact's address.
    Contact {
        /// The contact.
        id: ContactId,
        /// Whether the contact is a favourite.
        favourite: bool,
    },
    /// A past call's remote URI that no contact has.
    History,
}

/// A candidate before ranking, with the key it is deduplicated by.
struct Candidate {
    key: String,
    rank: Rank,
    completion: Completion,
}

/// The order of suggestions, best first (field order is significance).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    not_favourite: bool,
    last_call: Reverse<Option<i64>>,
    from_history: bool,
    sort_name: String,
    address: String,
}

/// Which contact addresses match: the name or a word of it starts with the folded prefix
/// (`?1`), or the address does, as written (`?1`) or as a key (`?2`).
const CONTACT_MATCH: &str = "FROM contacts c JOIN contact_addresses a ON a.contact_id = c.id
     WHERE substr(c.name_key, 1, length(?1)) = ?1
        OR instr(c.name_key, ' ' || ?1) > 0
        OR substr(a.address_folded, 1, length(?1)) = ?1
        OR substr(a.address_key, 1, length(?2)) = ?2";

/// The upper end of the range of strings that start with `prefix` (in SQLite's binary order).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

impl Store {
    /// Up to `limit` suggestions for the typed `prefix`.
    ///
    /// A contact matches when its name, or a word of it, starts with the prefix (all its
    /// addresses are offered) or one of its addresses does; a past call matches when its
    /// remote URI or its display name starts with it. Addresses compare with and without their
    /// scheme (`ali` and `sip:ali` both find `sip:alice@example.org`) and numbers without
    /// separators. Each address is offered once (a contact's entry wins over the same address
    /// from history). Order: favourites, then by latest call (most recent first), then contacts
    /// before history, then alphabetically. An empty prefix offers favourites and recent calls
    /// first.
    ///
    /// History is searched once per address called, not once per call, through indexes.
    pub fn complete(&self, prefix: &str, limit: usize) -> Result<Vec<Completion>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let folded = fold(prefix);
        let key = address_key(prefix);
        let mut candidates = self.contact_candidates(&folded, &key)?;
        let history_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        candidates.extend(self.history_candidates(&folded, &key, history_limit)?);

        candidates.sort_by(|a, b| a.rank.cmp(&b.rank));
        let mut seen = HashSet::new();
        Ok(candidates
            .into_iter()
            .filter(|c| seen.insert(c.key.clone()))
            .take(limit)
            .map(|c| c.completion)
            .collect())
    }

    fn contact_candidates(&self, folded: &str, key: &str) -> Result<Vec<Candidate>, StoreError> {
        let sql = format!(
            "SELECT c.id, c.name, c.favourite, a.address, a.label, a.address_key,
                    (SELECT last_call_ms FROM call_remotes WHERE remote_key = a.address_key),
                    c.name_key
             {CONTACT_MATCH}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![folded, key], |row| {
            let favourite: bool = row.get(2)?;
            let last_call_ms: Option<i64> = row.get(6)?;
            let address: String = row.get(3)?;
            Ok(Candidate {
                key: row.get(5)?,
                rank: Rank {
                    not_favourite: !favourite,
                    last_call: Reverse(last_call_ms),
                    from_history: false,
                    sort_name: row.get(7)?,
                    address: address.clone(),
                },
                completion: Completion {
                    address,
                    name: Some(row.get(1)?),
                    label: row.get(4)?,
                    last_call_ms,
                    source: CompletionSource::Contact {
                        id: ContactId(row.get(0)?),
                        favourite,
                    },
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn history_candidates(
        &self,
        folded: &str,
        key: &str,
        limit: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        // One row per address called (its latest call), searched by prefix ranges on the
        // indexed keys. Addresses a matching contact offers are left out here, so the limit
        // counts only entries that will be shown.
        let sql = format!(
            "SELECT remote_key, remote_uri, display_name, last_call_ms, remote_folded
               FROM call_remotes
              WHERE ((remote_key >= ?2 AND remote_key < ?4)
                     OR (remote_folded >= ?1 AND remote_folded < ?3)
                     OR (display_key >= ?1 AND display_key < ?3))
                AND remote_key NOT IN (SELECT a.address_key {CONTACT_MATCH})
              ORDER BY last_call_ms DESC
              LIMIT ?5"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let params = params![folded, key, prefix_end(folded), prefix_end(key), limit];
        let rows = stmt.query_map(params, |row| {
            let display_name: Option<String> = row.get(2)?;
            let last_call_ms: Option<i64> = row.get(3)?;
            let address: String = row.get(1)?;
            let sort_name = match &display_name {
                Some(name) => fold(name),
                None => row.get(4)?,
            };
            Ok(Candidate {
                key: row.get(0)?,
                rank: Rank {
                    not_favourite: true,
                    last_call: Reverse(last_call_ms),
                    from_history: true,
                    sort_name,
                    address: address.clone(),
                },
                completion: Completion {
                    address,
                    name: display_name,
                    label: None,
                    last_call_ms,
                    source: CompletionSource::History,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
