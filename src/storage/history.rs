//! Call history: one row per call, incoming, outgoing or missed.

use std::fmt;

use rusqlite::{params, Connection, Row};

use super::search_key::{address_key, fold};
use super::{Store, StoreError};

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallDirection {
    /// A call we answered.
    Incoming,
    /// A call we placed (answered or not).
    Outgoing,
    /// An incoming call nobody answered here.
    Missed,
}

impl CallDirection {
    /// The stored name: `incoming`, `outgoing` or `missed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Incoming => "incoming",
            CallDirection::Outgoing => "outgoing",
            CallDirection::Missed => "missed",
        }
    }

    /// The direction with this stored name.
    pub fn from_name(name: &str) -> Option<CallDirection> {
        match name {
            "incoming" => Some(CallDirection::Incoming),
            "outgoing" => Some(CallDirection::Outgoing),
            "missed" => Some(CallDirection::Missed),
            _ => None,
        }
    }
}

impl fmt::Display for CallDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Incoming, outgoing or missed.
    pub direction: CallDirection,
    /// The other party's URI (`sip:bob@example.org`, `tel:+3361234`), not blank.
    pub remote_uri: String,
    /// The other party's display name, when the call carried one.
    pub display_name: Option<String>,
    /// The account the call went through (its name or AOR); `None` for a direct IP call.
    pub account: Option<String>,
    /// When the call started (rang or was dialled), in milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// How long it was connected, in milliseconds (0 for a call never answered).
    pub duration_ms: u64,
    /// How it ended, in words ("hung up by remote", "486 Busy Here", "cancelled").
    pub end_reason: String,
}

/// A stored call's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HistoryId(pub i64);

/// A stored call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its identity in the store (stable, for list models).
    pub id: HistoryId,
    /// The call.
    pub call: CallRecord,
}

const HISTORY_COLUMNS: &str = "id, direction, remote_uri, display_name, account, started_at_ms,
     duration_ms, end_reason FROM calls";

const NEWEST_FIRST: &str = "ORDER BY started_at_ms DESC, id DESC";

impl Store {
    /// Adds a call to the history (and, in the same transaction, to its address's latest call
    /// for completion).
    pub fn record_call(&mut self, call: &CallRecord) -> Result<HistoryId, StoreError> {
        let remote_uri = call.remote_uri.trim();
        if remote_uri.is_empty() {
            return Err(StoreError::InvalidCallRecord("the remote URI is blank"));
        }
        let duration_ms = i64::try_from(call.duration_ms)
            .map_err(|_| StoreError::InvalidCallRecord("the duration is out of range"))?;
        let display_name = call
            .display_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO calls (direction, remote_uri, remote_key, display_name, account,
                 started_at_ms, duration_ms, end_reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                call.direction.as_str(),
                remote_uri,
                address_key(remote_uri),
                display_name,
                call.account,
                call.started_at_ms,
                duration_ms,
                call.end_reason,
            ],
        )?;
        let id = HistoryId(tx.last_insert_rowid());
        // The address's latest call; a record older than the one known changes nothing.
        tx.execute(
            "INSERT INTO call_remotes (remote_key, remote_uri, remote_folded, display_name,
                 display_key, last_call_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (remote_key) DO UPDATE SET
                 remote_uri = excluded.remote_uri,
                 remote_folded = excluded.remote_folded,
                 display_name = excluded.display_name,
                 display_key = excluded.display_key,
                 last_call_ms = excluded.last_call_ms
             WHERE excluded.last_call_ms >= call_remotes.last_call_ms",
            params![
                address_key(remote_uri),
                remote_uri,
                fold(remote_uri),
                display_name,
                display_name.map(fold).unwrap_or_default(),
                call.started_at_ms,
            ],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// The `limit` most recent calls, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("SELECT {HISTORY_COLUMNS} {NEWEST_FIRST} LIMIT ?1");
        query_history(&self.conn, &sql, params![limit])
    }

    /// Every call with this address, newest first. Addresses compare by their key: scheme,
    /// case, URI parameters and number separators do not matter (`sip:Bob@example.org;transport=tcp`
    /// finds calls with `sip:bob@example.org`).
    pub fn history_for(&self, uri: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let sql = format!("SELECT {HISTORY_COLUMNS} WHERE remote_key = ?1 {NEWEST_FIRST}");
        query_history(&self.conn, &sql, params![address_key(uri)])
    }

    /// Forgets every call; returns how many there were.
    pub fn clear_history(&mut self) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let removed = tx.execute("DELETE FROM calls", [])?;
        tx.execute("DELETE FROM call_remotes", [])?;
        tx.commit()?;
        Ok(removed)
    }
}

fn query_history(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        entries.push(entry_from_row(row)?);
    }
    Ok(entries)
}

fn entry_from_row(row: &Row<'_>) -> Result<HistoryEntry, StoreError> {
    let direction: String = row.get(1)?;
    let direction = CallDirection::from_name(&direction)
        .ok_or_else(|| StoreError::BadValue(format!("call direction {direction:?}")))?;
    let duration_ms: i64 = row.get(6)?;
    Ok(HistoryEntry {
        id: HistoryId(row.get(0)?),
        call: CallRecord {
            direction,
            remote_uri: row.get(2)?,
            display_name: row.get(3)?,
            account: row.get(4)?,
            started_at_ms: row.get(5)?,
            duration_ms: u64::try_from(duration_ms)
                .map_err(|_| StoreError::BadValue(format!("call duration {duration_ms}")))?,
            end_reason: row.get(7)?,
        },
    })
}
