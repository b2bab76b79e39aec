//! The store's cost where a person waits on it: a completion as they type in the dial field, a
//! search in the contacts view, the history list, and the durable writes (a contact with three
//! addresses, a call record: each one transaction with `synchronous = FULL`, so mostly the
//! disk's flush time). The database holds 1,000 contacts with two addresses each and 10,000
//! calls, in a temporary directory.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use callisto::storage::{CallDirection, CallRecord, ContactAddress, NewContact, Store};

const CONTACTS: usize = 1_000;
const CALLS: usize = 10_000;

fn contact(i: usize) -> NewContact {
    NewContact {
        name: format!("Person {i:04} Surname{}", i % 97),
        favourite: i.is_multiple_of(50),
        addresses: vec![
            ContactAddress::labelled(format!("sip:person{i}@example.org"), "work"),
            ContactAddress::labelled(
                format!("tel:+33 6 {:02} {:02} {:02}", i % 100, i / 100, i % 7),
                "mobile",
            ),
        ],
    }
}

fn call(i: usize) -> CallRecord {
    CallRecord {
        direction: match i % 3 {
            0 => CallDirection::Incoming,
            1 => CallDirection::Outgoing,
            _ => CallDirection::Missed,
        },
        remote_uri: format!("sip:person{}@example.org", (i * 7) % (CONTACTS * 2)),
        display_name: Some(format!("Caller {}", i % 500)),
        account: Some("work".into()),
        started_at_ms: 1_700_000_000_000 + i as i64 * 60_000,
        duration_ms: (i as u64 % 600) * 1_000,
        end_reason: "hung up".into(),
    }
}

fn filled_store(dir: &std::path::Path) -> Store {
    let mut store = Store::open(dir).expect("open").store;
    for i in 0..CONTACTS {
        store.add_contact(&contact(i)).expect("add");
    }
    for i in 0..CALLS {
        store.record_call(&call(i)).expect("record");
    }
    store
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = filled_store(dir.path());
    let mut group = c.benchmark_group("storage_read");
    group.bench_function("complete_one_letter", |b| {
        b.iter(|| store.complete("p", 8).expect("complete"))
    });
    group.bench_function("complete_address_prefix", |b| {
        b.iter(|| store.complete("sip:person12", 8).expect("complete"))
    });
    group.bench_function("search_contacts", |b| {
        b.iter(|| store.search("surname4").expect("search"))
    });
    group.bench_function("history_100", |b| {
        b.iter(|| store.history(100).expect("history"))
    });
    group.bench_function("contacts_all", |b| {
        b.iter(|| store.contacts().expect("contacts"))
    });
    group.finish();
}

fn writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open").store;
    let mut group = c.benchmark_group("storage_write");
    group.sample_size(20);
    let mut next = 0;
    group.bench_function("add_contact_3_addresses", |b| {
        b.iter_batched(
            || {
                next += 1;
                let mut new = contact(next);
                new.addresses
                    .push(ContactAddress::new(format!("sip:{next}@home.example")));
                new
            },
            |new| store.add_contact(&new).expect("add"),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("record_call", |b| {
        b.iter_batched(
            || {
                next += 1;
                call(next)
            },
            |record| store.record_call(&record).expect("record"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, reads, writes);
criterion_main!(benches);
