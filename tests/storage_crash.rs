//! A process killed while it writes contacts leaves a consistent database.
//!
//! The test re-executes its own binary as a child (`--exact <this test> --nocapture`, with
//! [`WRITER_ENV`] naming the data directory), which opens the store and adds, updates and
//! removes contacts with several addresses, and records calls, in a tight loop. After a short
//! random delay the parent kills it with SIGKILL, by its PID, and opens the store again: the
//! database must open without being moved aside, pass [`Store::integrity_check`] (SQLite's full
//! check, and each address's latest call agreeing with the call history), and every
//! contact must hold exactly the addresses its name promises: a contact with some of its
//! addresses, or a mix of an old and a new set, fails the test. Several rounds run on the same
//! database, each one a restart after a crash.
//!
//! The delays come from a seed printed at the start; `CALLISTO_STORE_CRASH_SEED=<n>` replays a
//! run. SIGKILL makes this a Unix test.
#![cfg(unix)]

use std::env;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callisto::storage::{
    CallDirection, CallRecord, Contact, ContactAddress, ContactId, NewContact, Store,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Set in the child: the data directory to write into.
const WRITER_ENV: &str = "CALLISTO_STORE_CRASH_WRITER";
/// Set in the child: the round number, which makes its contacts' names unique.
const ROUND_ENV: &str = "CALLISTO_STORE_CRASH_ROUND";
/// Replays the delays of an earlier run.
const SEED_ENV: &str = "CALLISTO_STORE_CRASH_SEED";
/// The child prints this once it has committed its first write.
const READY: &str = "crash-writer: writing";
/// This test's name, for `--exact`.
const TEST_NAME: &str = "a_writer_killed_mid_write_leaves_a_consistent_database";
const ROUNDS: u32 = 20;
/// A child that is never killed stops by itself after this long.
const WRITER_LIFETIME: Duration = Duration::from_secs(60);

#[test]
fn a_writer_killed_mid_write_leaves_a_consistent_database() {
    if let Ok(dir) = env::var(WRITER_ENV) {
        let round = env::var(ROUND_ENV)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        run_writer(Path::new(&dir), round);
    }

    let seed = env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{SEED_ENV}={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut calls_before = 0;
    let mut contacts_seen = 0;

    for round in 0..ROUNDS {
        let mut writer = Writer::start(&data_dir, round);
        let delay = Duration::from_millis(rng.gen_range(10..150));
        std::thread::sleep(delay);
        let status = writer.kill();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "round {round}: the writer stopped by itself ({status:?}) instead of being killed:\n{}",
            writer.stderr()
        );

        let opened = Store::open(&data_dir).unwrap();
        assert_eq!(
            opened.quarantined, None,
            "round {round}: the database was damaged by the kill"
        );
        let store = opened.store;
        assert_eq!(
            store.integrity_check().unwrap(),
            Vec::<String>::new(),
            "round {round}"
        );
        let contacts = store.contacts().unwrap();
        let problems = inconsistencies(&contacts);
        assert!(
            problems.is_empty(),
            "round {round} (seed {seed}): {problems:#?}"
        );
        let calls = store.history(usize::MAX).unwrap().len();
        assert!(
            calls > calls_before,
            "round {round}: the writer committed nothing before it was killed"
        );
        println!(
            "round {round}: killed after {} ms; {} contacts, {calls} calls, consistent",
            delay.as_millis(),
            contacts.len()
        );
        calls_before = calls;
        contacts_seen = contacts_seen.max(contacts.len());
    }
    assert!(contacts_seen > 0, "no contact survived any round");
}

#[test]
fn the_consistency_check_finds_a_partial_or_mixed_contact() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap().store;
    let whole = store.add_contact(&generation("r0w1", 4)).unwrap();
    let partial = store.add_contact(&generation("r0w2", 3)).unwrap();
    let mixed = store.add_contact(&generation("r0w3", 3)).unwrap();
    assert!(inconsistencies(&store.contacts().unwrap()).is_empty());

    // Lose an address of one contact, and give another one an address of a different write.
    let mut lost = store.contact(partial).unwrap().unwrap();
    lost.addresses.pop();
    store.update_contact(&lost).unwrap();
    let mut blend = store.contact(mixed).unwrap().unwrap();
    blend.addresses[1] = generation("r0w9", 3).addresses[1].clone();
    store.update_contact(&blend).unwrap();

    let problems = inconsistencies(&store.contacts().unwrap());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let about = |id: ContactId| {
        let prefix = format!("contact {id}:");
        problems.iter().any(|p| p.starts_with(&prefix))
    };
    assert!(about(partial));
    assert!(about(mixed));
    assert!(!about(whole));
}

/// A contact as one write makes it: `crash <tag> k<k>` with the addresses
/// `sip:<tag>a<i>@crash.example` labelled `a<i>/<k>`, for i in 0..k.
fn generation(tag: &str, k: usize) -> NewContact {
    NewContact {
        name: format!("crash {tag} k{k}"),
        favourite: k.is_multiple_of(2),
        addresses: (0..k)
            .map(|i| {
                ContactAddress::labelled(
                    format!("sip:{tag}a{i}@crash.example"),
                    format!("a{i}/{k}"),
                )
            })
            .collect(),
    }
}

/// What is wrong with the contacts: any whose addresses are not exactly those of
/// [`generation`] for its name.
fn inconsistencies(contacts: &[Contact]) -> Vec<String> {
    let mut problems = Vec::new();
    for contact in contacts {
        let parsed = contact
            .name
            .strip_prefix("crash ")
            .and_then(|rest| rest.rsplit_once(" k"))
            .and_then(|(tag, k)| Some((tag, k.parse::<usize>().ok()?)));
        let Some((tag, k)) = parsed else {
            problems.push(format!(
                "contact {}: unexpected name {:?}",
                contact.id, contact.name
            ));
            continue;
        };
        let expected = generation(tag, k);
        if contact.addresses != expected.addresses || contact.favourite != expected.favourite {
            problems.push(format!(
                "contact {}: {:?} holds {} addresses {:?}, expected {}",
                contact.id,
                contact.name,
                contact.addresses.len(),
                contact.addresses,
                k
            ));
        }
    }
    problems
}

/// The child's side: write until killed.
fn run_writer(dir: &Path, round: u32) -> ! {
    let opened = Store::open(dir).expect("the writer opens the store");
    assert_eq!(
        opened.quarantined, None,
        "the writer found a damaged database"
    );
    let mut store = opened.store;
    let deadline = Instant::now() + WRITER_LIFETIME;
    let mut mine: Vec<ContactId> = Vec::new();
    let mut write: u64 = 0;
    loop {
        write += 1;
        let tag = format!("r{round}w{write}");
        let k = 2 + (write % 5) as usize;
        match write % 4 {
            0 | 1 => mine.push(store.add_contact(&generation(&tag, k)).unwrap()),
            2 => {
                if let Some(&id) = mine.last() {
                    let new = generation(&tag, k);
                    store
                        .update_contact(&Contact {
                            id,
                            name: new.name,
                            favourite: new.favourite,
                            addresses: new.addresses,
                        })
                        .unwrap();
                }
            }
            _ => {
                if mine.len() > 8 {
                    store.remove_contact(mine.remove(0)).unwrap();
                }
            }
        }
        store
            .record_call(&CallRecord {
                direction: CallDirection::Outgoing,
                remote_uri: format!("sip:{tag}a0@crash.example"),
                display_name: Some(format!("crash {tag}")),
                account: None,
                started_at_ms: write as i64,
                duration_ms: write,
                end_reason: "crash test".into(),
            })
            .unwrap();
        if write == 1 {
            println!("{READY}");
        }
        assert!(
            Instant::now() < deadline,
            "the writer was never killed; stopping"
        );
    }
}

/// The child process, killed when dropped.
struct Writer {
    child: Child,
    stderr: String,
}

impl Writer {
    /// Starts the child and waits until it has committed its first write.
    fn start(data_dir: &Path, round: u32) -> Writer {
        let exe = env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(WRITER_ENV, data_dir)
            .env(ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut writer = Writer {
            child,
            stderr: String::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.any(|line| line.map(|l| l.contains(READY)).unwrap_or(false));
        if !ready {
            let status = writer.kill();
            panic!(
                "round {round}: the writer ended ({status:?}) before writing:\n{}",
                writer.stderr()
            );
        }
        // Keep draining the child's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        writer
    }

    /// Sends SIGKILL to the child (by its PID) and reaps it.
    fn kill(&mut self) -> std::process::ExitStatus {
        // `Child::kill` is kill(pid, SIGKILL) on Unix; an error means it already exited.
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut self.stderr);
        }
        status
    }

    /// What the child wrote to stderr (after [`Writer::kill`]).
    fn stderr(&self) -> &str {
        &self.stderr
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
