//! Contacts and call history in SQLite, in `<data dir>/callisto.db`.
//!
//! ```text
//!  Store::open(data_dir) ─► quick_check ─┬─ ok ──────────────────────────► migrate ─► Opened
//!                                        └─ not a database / damaged ─► move aside,
//!                                             new empty file ─► migrate ─► Opened { quarantined }
//! ```
//!
//! # Contract
//! - **Nothing half-written.** Every write (a contact with all its addresses, an update that
//!   replaces them, a removal, a call record, clearing the history) is one transaction: after a
//!   crash or a kill at any instant the database holds the state before or after it. The
//!   journal is SQLite's write-ahead log with `synchronous = FULL`, so a committed write also
//!   survives a power cut; foreign keys are enforced (addresses die with their contact).
//! - **A damaged file is moved aside, never deleted or overwritten.** A file that is not a
//!   SQLite database, or fails `PRAGMA quick_check`, is renamed to
//!   `callisto.db.corrupt-<unix-seconds>` (its `-wal`/`-shm` with it, see [`crate::quarantine`]),
//!   a fresh database takes its place, and [`Opened::quarantined`] tells the app so it can tell
//!   the user. A database that is merely busy, unreadable for lack of permission, or written by
//!   a newer Callisto is an error, and the file is left as it is.
//! - **Schema versions.** `PRAGMA user_version` counts the forward migrations applied (see
//!   `schema.rs`); opening applies the missing ones.
//! - **Case-insensitive matching.** Search, completion and [`Store::history_for`] compare
//!   Unicode-lower-cased text and addresses without scheme, parameters or number separators
//!   (`search_key.rs`).
//!
//! [`Store`] owns one connection: it is `Send` but not `Sync`, and lives with whoever owns the
//! app's state (the engine task or a thread of its own). Reads take `&self`, writes `&mut self`.

mod completion;
mod contacts;
mod history;
mod schema;
mod search_key;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode};

pub use crate::quarantine::MovedAside;
pub use completion::{Completion, CompletionSource};
pub use contacts::{Contact, ContactAddress, ContactId, NewContact};
pub use history::{CallDirection, CallRecord, HistoryEntry, HistoryId};

/// The database's file name in the data directory.
pub const DB_FILE_NAME: &str = "callisto.db";

/// How long a write waits for another connection's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database was damaged and could not be moved aside; it was left in place.
    #[error("the database {path} is damaged ({reason}) and cannot be moved aside: {source}")]
    Quarantine {
        path: PathBuf,
        reason: String,
        source: std::io::Error,
    },
    /// A fresh database still failed its check right after the damaged one was moved aside.
    #[error("the new database {path} fails its check: {reason}")]
    StillDamaged { path: PathBuf, reason: String },
    /// The database was written by a newer Callisto; it is left untouched.
    #[error(
        "the database {path} has schema version {found}, newer than this Callisto knows ({known})"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// SQLite refused an operation (busy, disk full, permission, …).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No contact has this id (removed meanwhile, or never stored).
    #[error("no contact with id {0}")]
    NoSuchContact(ContactId),
    /// The contact cannot be stored as given.
    #[error("invalid contact: {0}")]
    InvalidContact(&'static str),
    /// The call record cannot be stored as given.
    #[error("invalid call record: {0}")]
    InvalidCallRecord(&'static str),
    /// A stored value this build cannot read (a row written outside Callisto).
    #[error("unreadable value in the database: {0}")]
    BadValue(String),
}

/// An opened store, and whether a damaged database had to be moved aside to open it.
#[derive(Debug)]
pub struct Opened {
    /// The store, ready for use.
    pub store: Store,
    /// Set when the previous database was damaged: the user's data is in the moved file
    /// (`callisto.db.corrupt-<unix-seconds>`), and the reason says what SQLite found.
    pub quarantined: Option<MovedAside>,
}

/// Contacts and call history, backed by one SQLite connection.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Why a database file cannot be used as it is.
enum OpenFailure {
    /// The file is not a database or is damaged: move it aside.
    Damaged(String),
    /// Anything else: report it and leave the file alone.
    Error(StoreError),
}

impl Store {
    /// Opens (creating when needed) `<data_dir>/callisto.db`, moving a damaged file aside.
    pub fn open(data_dir: &Path) -> Result<Opened, StoreError> {
        Store::open_at(data_dir, SystemTime::now())
    }

    /// [`Store::open`] with the time that names a moved-aside file.
    pub(crate) fn open_at(data_dir: &Path, now: SystemTime) -> Result<Opened, StoreError> {
        fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE_NAME);
        let reason = match Store::open_checked(&path) {
            Ok(store) => {
                return Ok(Opened {
                    store,
                    quarantined: None,
                })
            }
            Err(OpenFailure::Error(e)) => return Err(e),
            Err(OpenFailure::Damaged(reason)) => reason,
        };
        let moved_to = crate::quarantine::move_aside(&path, now, &["-wal", "-shm", "-journal"])
            .map_err(|source| StoreError::Quarantine {
                path: path.clone(),
                reason: reason.clone(),
                source,
            })?;
        tracing::warn!(
            damaged = %path.display(),
            moved_to = %moved_to.display(),
            %reason,
            "the database was damaged; moved it aside and started a new one"
        );
        match Store::open_checked(&path) {
            Ok(store) => Ok(Opened {
                store,
                quarantined: Some(MovedAside { moved_to, reason }),
            }),
            Err(OpenFailure::Error(e)) => Err(e),
            Err(OpenFailure::Damaged(reason)) => Err(StoreError::StillDamaged { path, reason }),
        }
    }

    /// Opens the file, checks it, sets the connection up and migrates the schema.
    fn open_checked(path: &Path) -> Result<Store, OpenFailure> {
        let conn = Connection::open(path).map_err(|e| OpenFailure::Error(e.into()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| OpenFailure::Error(e.into()))?;
        match quick_check(&conn) {
            Ok(problems) if problems.is_empty() => {}
            Ok(problems) => return Err(OpenFailure::Damaged(problems.join("; "))),
            Err(e) if is_damage(&e) => return Err(OpenFailure::Damaged(e.to_string())),
            Err(e) => return Err(OpenFailure::Error(e.into())),
        }
        // A newer Callisto's database is left exactly as it is, journal mode included.
        let found = schema::version(&conn).map_err(|e| OpenFailure::Error(e.into()))?;
        if found > schema::current_version() {
            return Err(OpenFailure::Error(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found,
                known: schema::current_version(),
            }));
        }
        let setup = |conn: &Connection| -> Result<(), rusqlite::Error> {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                // Some file systems (network mounts) cannot hold a write-ahead log; the rollback
                // journal SQLite keeps then is as crash-safe, only slower.
                tracing::warn!(%mode, "the database cannot use write-ahead logging");
            }
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", true)?;
            Ok(())
        };
        match setup(&conn) {
            Ok(()) => {}
            Err(e) if is_damage(&e) => return Err(OpenFailure::Damaged(e.to_string())),
            Err(e) => return Err(OpenFailure::Error(e.into())),
        }
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        schema::migrate(&mut store.conn, schema::MIGRATIONS, path).map_err(OpenFailure::Error)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(schema::version(&self.conn)?)
    }

    /// The schema version this build creates and migrates to.
    pub fn current_schema_version() -> i64 {
        schema::current_version()
    }

    /// Runs SQLite's full `PRAGMA integrity_check`, and checks that the latest call kept per
    /// address agrees with the call history; returns the problems found, empty when the
    /// database is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = check_rows(&self.conn, "PRAGMA integrity_check")?;
        let disagreeing: i64 = self.conn.query_row(
            "SELECT (SELECT count(*) FROM (
                         SELECT remote_key, max(started_at_ms) FROM calls GROUP BY remote_key
                         EXCEPT SELECT remote_key, last_call_ms FROM call_remotes))
                  + (SELECT count(*) FROM (
                         SELECT remote_key, last_call_ms FROM call_remotes
                         EXCEPT SELECT remote_key, max(started_at_ms) FROM calls
                                GROUP BY remote_key))",
            [],
            |row| row.get(0),
        )?;
        if disagreeing > 0 {
            problems.push(format!(
                "{disagreeing} addresses' latest calls disagree with the call history"
            ));
        }
        Ok(problems)
    }
}

/// `PRAGMA quick_check`'s problems; empty when it says "ok".
fn quick_check(conn: &Connection) -> Result<Vec<String>, rusqlite::Error> {
    check_rows(conn, "PRAGMA quick_check")
}

fn check_rows(conn: &Connection, sql: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|row| row != "ok").collect())
}

/// Whether SQLite's error means the file itself is not a (sound) database.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}
