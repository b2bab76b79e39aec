//! Moving a damaged file aside: `<name>` becomes `<name>.corrupt-<unix-seconds>` in the same
//! directory, so the user (or support) can still recover what it held.
//!
//! A file moved aside is never deleted and never overwritten: when the name for this second is
//! taken, `.1`, `.2`, … are appended, and the rename refuses to replace an existing file (a hard
//! link that fails on an existing name, then removing the old name; where the file system has no
//! hard links, a rename after checking the name is free). Companion files that belong with the
//! damaged one (SQLite's `-wal` and `-shm`) move with it and keep their suffix, so the moved
//! database still opens with its journal.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A damaged file that was moved aside, for telling the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// Where the damaged file is now (`<name>.corrupt-<unix-seconds>`).
    pub moved_to: PathBuf,
    /// What was wrong with it, in the parser's or SQLite's words.
    pub reason: String,
}

/// Attempts at a free name before giving up (`.corrupt-<secs>`, then `.1` … `.999`).
const MAX_ATTEMPTS: u32 = 1000;

/// Moves `path` aside to `<name>.corrupt-<unix-seconds of now>` (or the first free variant) and
/// returns the new path. Each existing `<path><suffix>` for `suffix` in `companions` moves to
/// `<new path><suffix>`.
pub fn move_aside(path: &Path, now: SystemTime, companions: &[&str]) -> io::Result<PathBuf> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name to move aside"))?
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().unwrap_or(Path::new(""));
    for attempt in 0..MAX_ATTEMPTS {
        let name = match attempt {
            0 => format!("{file_name}.corrupt-{secs}"),
            n => format!("{file_name}.corrupt-{secs}.{n}"),
        };
        let target = dir.join(name);
        if companions
            .iter()
            .any(|suffix| exists(&with_suffix(&target, suffix)))
        {
            continue;
        }
        match rename_no_replace(path, &target) {
            Ok(()) => {
                for suffix in companions {
                    let from = with_suffix(path, suffix);
                    if exists(&from) {
                        rename_no_replace(&from, &with_suffix(&target, suffix))?;
                    }
                }
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name to move {} aside", path.display()),
    ))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing `to`.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => {
            if exists(to) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", to.display()),
                ));
            }
            fs::rename(from, to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn moves_the_file_to_a_dated_name_with_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callisto.db");
        fs::write(&path, b"\x00garbage\xff").unwrap();
        let moved = move_aside(&path, at(1_700_000_000), &[]).unwrap();
        assert_eq!(moved, dir.path().join("callisto.db.corrupt-1700000000"));
        assert!(!path.exists());
        assert_eq!(fs::read(&moved).unwrap(), b"\x00garbage\xff");
    }

    #[test]
    fn never_overwrites_an_earlier_quarantined_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callisto.toml");
        let earlier = dir.path().join("callisto.toml.corrupt-42");
        fs::write(&earlier, "first").unwrap();
        fs::write(dir.path().join("callisto.toml.corrupt-42.1"), "second").unwrap();
        fs::write(&path, "third").unwrap();
        let moved = move_aside(&path, at(42), &[]).unwrap();
        assert_eq!(moved, dir.path().join("callisto.toml.corrupt-42.2"));
        assert_eq!(fs::read_to_string(&earlier).unwrap(), "first");
        assert_eq!(
            fs::read_to_string(dir.path().join("callisto.toml.corrupt-42.1")).unwrap(),
            "second"
        );
        assert_eq!(fs::read_to_string(&moved).unwrap(), "third");
    }

    #[test]
    fn companions_move_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callisto.db");
        fs::write(&path, "db").unwrap();
        fs::write(dir.path().join("callisto.db-wal"), "wal").unwrap();
        // A companion name already taken for this second skips to the next name.
        fs::write(dir.path().join("callisto.db.corrupt-7-wal"), "old wal").unwrap();
        let moved = move_aside(&path, at(7), &["-wal", "-shm"]).unwrap();
        assert_eq!(moved, dir.path().join("callisto.db.corrupt-7.1"));
        assert_eq!(
            fs::read_to_string(dir.path().join("callisto.db.corrupt-7.1-wal")).unwrap(),
            "wal"
        );
        assert!(!dir.path().join("callisto.db.corrupt-7.1-shm").exists());
        assert!(!dir.path().join("callisto.db-wal").exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("callisto.db.corrupt-7-wal")).unwrap(),
            "old wal"
        );
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = move_aside(&dir.path().join("absent"), at(1), &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
