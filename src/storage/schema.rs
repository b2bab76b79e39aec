//! The database schema and its forward migrations.
//!
//! `PRAGMA user_version` is the number of migrations applied. [`MIGRATIONS`]`[i]` takes the
//! schema from version `i` to `i + 1`; each runs in its own immediate transaction together with
//! the version bump, so a crash leaves the schema at one version or the next, and two processes
//! opening the same file never apply a migration twice. A database newer than this build is
//! refused, not touched.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Version 1: contacts with their addresses, call history, and each called address's latest
/// call. The `*_key` and `*_folded` columns hold [`super::search_key`] forms of the text beside
/// them.
const V1: &str = "
CREATE TABLE contacts (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    name_key  TEXT NOT NULL,
    favourite INTEGER NOT NULL DEFAULT 0 CHECK (favourite IN (0, 1))
);
CREATE INDEX contacts_order ON contacts (favourite DESC, name_key, id);

CREATE TABLE contact_addresses (
    id             INTEGER PRIMARY KEY,
    contact_id     INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    address        TEXT NOT NULL,
    label          TEXT,
    address_folded TEXT NOT NULL,
    address_key    TEXT NOT NULL,
    UNIQUE (contact_id, position)
);
CREATE INDEX contact_addresses_key ON contact_addresses (address_key);

CREATE TABLE calls (
    id            INTEGER PRIMARY KEY,
    direction     TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing', 'missed')),
    remote_uri    TEXT NOT NULL,
    remote_key    TEXT NOT NULL,
    display_name  TEXT,
    account       TEXT,
    started_at_ms INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL CHECK (duration_ms >= 0),
    end_reason    TEXT NOT NULL
);
CREATE INDEX calls_recent ON calls (started_at_ms DESC, id DESC);
CREATE INDEX calls_remote ON calls (remote_key, started_at_ms DESC);

-- One row per address in the history: its latest call. Kept by the same transactions that
-- write calls, for the dial field's completion.
CREATE TABLE call_remotes (
    remote_key    TEXT PRIMARY KEY,
    remote_uri    TEXT NOT NULL,
    remote_folded TEXT NOT NULL,
    display_name  TEXT,
    display_key   TEXT NOT NULL,
    last_call_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX call_remotes_folded ON call_remotes (remote_folded);
CREATE INDEX call_remotes_display ON call_remotes (display_key);
";

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes.
pub(super) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The schema version of the open database.
pub(super) fn version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies the migrations the database has not seen yet.
pub(super) fn migrate(
    conn: &mut Connection,
    migrations: &[&str],
    path: &Path,
) -> Result<(), StoreError> {
    let known = migrations.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = version(&tx)?;
        if found > known {
            return Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found,
                known,
            });
        }
        let Some(sql) = usize::try_from(found)
            .ok()
            .and_then(|index| migrations.get(index))
        else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrates_an_empty_database_step_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        let steps = ["CREATE TABLE a (x)", "CREATE TABLE b (y)"];
        migrate(&mut conn, &steps[..1], &path).unwrap();
        assert_eq!(version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["a"]);
        migrate(&mut conn, &steps, &path).unwrap();
        assert_eq!(version(&conn).unwrap(), 2);
        assert_eq!(tables(&conn), ["a", "b"]);
        // Nothing left to do: running again changes nothing.
        migrate(&mut conn, &steps, &path).unwrap();
        assert_eq!(version(&conn).unwrap(), 2);
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        let steps = [
            "CREATE TABLE a (x)",
            "CREATE TABLE b (y); CREATE TABLE a (z)",
        ];
        assert!(migrate(&mut conn, &steps, &path).is_err());
        assert_eq!(version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["a"], "table b rolled back with the failure");
    }

    #[test]
    fn a_newer_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        let err = migrate(&mut conn, MIGRATIONS, &path).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 7, .. }),
            "{err}"
        );
        assert!(tables(&conn).is_empty());
    }
}
