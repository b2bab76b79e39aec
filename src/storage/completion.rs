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
    completion: Completion,
}

impl Store {
    /// Up to `limit` suggestions for the typed `prefix`.
    ///
    /// A contact matches when its name, or a word of it, starts with the prefix (all its
    /// addresses are offered) or one of its addresses does; a past call matches when its
    /// remote URI or its display name (or a word of it) does. Addresses compare with and
    /// without their scheme (`ali` and `sip:ali` both find `sip:alice@example.org`) and numbers
    /// without separators. Each address is offered once (a contact's entry wins over the same
    /// address from history). Order: favourites, then by latest call (most recent first), then
    /// contacts before history, then alphabetically. An empty prefix offers favourites and
    /// recent calls first.
    pub fn complete(&self, prefix: &str, limit: usize) -> Result<Vec<Completion>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let folded = fold(prefix);
        let key = address_key(prefix);
        let mut candidates = self.contact_candidates(&folded, &key)?;
        let history_limit =
            i64::try_from(limit.saturating_add(candidates.len())).unwrap_or(i64::MAX);
        candidates.extend(self.history_candidates(&folded, &key, history_limit)?);

        candidates.sort_by_cached_key(|c| {
            let completion = &c.completion;
            let (favourite, from_history) = match completion.source {
                CompletionSource::Contact { favourite, .. } => (favourite, false),
                CompletionSource::History => (false, true),
            };
            (
                !favourite,
                Reverse(completion.last_call_ms),
                from_history,
                fold(completion.name.as_deref().unwrap_or(&completion.address)),
                completion.address.clone(),
            )
        });
        let mut seen = HashSet::new();
        Ok(candidates
            .into_iter()
            .filter(|c| seen.insert(c.key.clone()))
            .take(limit)
            .map(|c| c.completion)
            .collect())
    }

    fn contact_candidates(&self, folded: &str, key: &str) -> Result<Vec<Candidate>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, c.name, c.favourite, a.address, a.label, a.address_key,
                    (SELECT max(started_at_ms) FROM calls WHERE remote_key = a.address_key)
               FROM contacts c JOIN contact_addresses a ON a.contact_id = c.id
              WHERE substr(c.name_key, 1, length(?1)) = ?1
                 OR instr(c.name_key, ' ' || ?1) > 0
                 OR substr(a.address_folded, 1, length(?1)) = ?1
                 OR substr(a.address_key, 1, length(?2)) = ?2",
        )?;
        let rows = stmt.query_map(params![folded, key], |row| {
            Ok(Candidate {
                key: row.get(5)?,
                completion: Completion {
                    address: row.get(3)?,
                    name: Some(row.get(1)?),
                    label: row.get(4)?,
                    last_call_ms: row.get(6)?,
                    source: CompletionSource::Contact {
                        id: ContactId(row.get(0)?),
                        favourite: row.get(2)?,
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
        // SQLite takes the bare columns of a max() aggregate from the row holding the maximum:
        // the latest call's URI and display name for each address.
        let mut stmt = self.conn.prepare(
            "SELECT remote_key, remote_uri, display_name, max(started_at_ms)
               FROM calls
              WHERE substr(remote_key, 1, length(?2)) = ?2
                 OR substr(remote_folded, 1, length(?1)) = ?1
                 OR substr(display_key, 1, length(?1)) = ?1
                 OR instr(display_key, ' ' || ?1) > 0
              GROUP BY remote_key
              ORDER BY max(started_at_ms) DESC
              LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![folded, key, limit], |row| {
            Ok(Candidate {
                key: row.get(0)?,
                completion: Completion {
                    address: row.get(1)?,
                    name: row.get(2)?,
                    label: None,
                    last_call_ms: row.get(3)?,
                    source: CompletionSource::History,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
