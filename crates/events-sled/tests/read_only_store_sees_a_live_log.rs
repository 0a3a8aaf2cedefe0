//! A `ReadOnlyStore` beside a `Store` that holds sled's lock and appends: it reads the log,
//! streams and types, refreshes and follows, sees only whole, valid events, and never changes
//! a byte of the store's directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{cache_key_of, hit};
use events_core::RecordedEvent;
use events_sled::{
    Durability, ExpectedVersion, OpenError, ReadOnlyStore, Store, StoreConfig, StreamRead,
};

fn durable_config(dir: &Path) -> StoreConfig {
    StoreConfig::new(dir)
        .cache_capacity(16 << 20)
        .durability(Durability::Durable)
        // Small segments: the writer rolls while the reader reads.
        .log_segment_bytes(64 << 10)
}

/// Every file under `dir` with a hash of its bytes and its length.
fn hash_tree(dir: &Path) -> BTreeMap<String, (u64, [u8; 32])> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    (bytes.len() as u64, *blake3::hash(&bytes).as_bytes()),
                );
            }
        }
    }
    out
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("agg-{i}")).collect()
}

/// Checks one read-only view for consistency: the log continuous from 1, each aggregate's
/// events in version order, the type read equal to the log's events of that type.
fn check_view(reader: &ReadOnlyStore) -> Vec<RecordedEvent> {
    let last = reader.last_position();
    let log: Vec<RecordedEvent> = reader.read_log(1, None).map(Result::unwrap).collect();
    assert_eq!(log.len() as u64, last);
    for (i, event) in log.iter().enumerate() {
        assert_eq!(event.position, i as u64 + 1);
    }
    let mut visited = 0;
    reader
        .scan_log(1, None, |event| {
            assert_eq!(event.to_owned(), log[visited]);
            visited += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(visited, log.len());
    let aggregates = reader.aggregates(None).unwrap();
    let mut total = 0;
    for info in &aggregates {
        let events: Vec<RecordedEvent> = reader
            .read_stream(
                &info.aggregate_type,
                &info.aggregate_id,
                StreamRead::forwards(),
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(events.len() as u64, info.version);
        for (v, event) in events.iter().enumerate() {
            assert_eq!(event.metadata.version, v as u64 + 1);
            assert_eq!(event, &log[event.position as usize - 1]);
        }
        total += events.len();
    }
    assert_eq!(total, log.len());
    let typed: Vec<RecordedEvent> = reader
        .read_aggregate_type("cache", 1, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<&RecordedEvent> = log
        .iter()
        .filter(|e| e.metadata.aggregate_type == "cache")
        .collect();
    assert_eq!(typed.iter().collect::<Vec<_>>(), expected);
    log
}

#[test]
fn a_read_only_store_reads_refreshes_and_follows_a_durable_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(durable_config(dir.path())).unwrap());
    // sled's lock is held: a second read-write open is refused.
    assert!(matches!(
        Store::open(durable_config(dir.path())),
        Err(OpenError::Locked { .. })
    ));
    let reader = ReadOnlyStore::open(dir.path()).unwrap();
    assert_eq!(reader.last_position(), 0);

    let total = 2_000u64;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let ids = ids(17);
            let mut n = 0u64;
            while n < total {
                let id = &ids[(n % 17) as usize];
                let batch = (1 + n % 3).min(total - n);
                let events = (0..batch).map(|k| hit(id, n + k)).collect();
                store.append(ExpectedVersion::Any, events).unwrap();
                n += batch;
            }
            done.store(true, Ordering::Release);
        })
    };
    let mut follower = reader
        .follow(1)
        .poll_interval(Duration::from_millis(5))
        .idle_timeout(Some(Duration::from_secs(30)));
    let mut followed = Vec::new();
    let mut checks = 0;
    while followed.len() < total as usize {
        let event = follower.next().unwrap().unwrap();
        assert_eq!(event.position, followed.len() as u64 + 1);
        followed.push(event);
        if followed.len() % 400 == 0 {
            // Mid-stream: a consistent view of whatever the files hold right now.
            reader.refresh().unwrap();
            check_view(&reader);
            checks += 1;
        }
    }
    writer.join().unwrap();
    assert!(done.load(Ordering::Acquire));
    assert!(checks >= 4);
    assert_eq!(reader.refresh().unwrap(), total);
    let log = check_view(&reader);
    assert_eq!(log, followed);
    // What the writer itself reads is the same.
    let own: Vec<RecordedEvent> = store.read_log(1, None).map(Result::unwrap).collect();
    assert_eq!(own, log);
    for (i, event) in log.iter().enumerate() {
        assert!(cache_key_of(event).starts_with("key-"), "event {i}");
    }
    assert_eq!(reader.store_id().as_deref(), Some(store.store_id()));
    assert_eq!(
        reader.aggregates(None).unwrap(),
        store.aggregates(None).unwrap()
    );
    let backwards: Vec<u64> = reader
        .read_stream("cache", "agg-0", StreamRead::backwards().limit(3))
        .unwrap()
        .map(|e| e.unwrap().metadata.version)
        .collect();
    let head = reader.stream_version("cache", "agg-0");
    assert_eq!(backwards, [head, head - 1, head - 2]);
    assert_eq!(head, store.stream_version("cache", "agg-0").unwrap());
    let segments = std::fs::read_dir(dir.path().join("log")).unwrap().count();
    assert!(segments > 4, "the writer rolled segments: {segments} files");

    // A follower at the end ends on its stop flag.
    let follower = reader
        .follow(total + 1)
        .poll_interval(Duration::from_millis(5));
    let stop = follower.stop_flag();
    let waiting = std::thread::spawn(move || follower.count());
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Release);
    assert_eq!(waiting.join().unwrap(), 0);
    Arc::into_inner(store).unwrap().close().unwrap();
}

#[test]
fn a_read_only_open_changes_no_byte_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(durable_config(dir.path())).unwrap();
        for (n, id) in ids(40).iter().enumerate() {
            store
                .append(ExpectedVersion::NoStream, vec![hit(id, n as u64)])
                .unwrap();
        }
        store
            .append(
                ExpectedVersion::Any,
                (0..500).map(|n| hit("big", n)).collect(),
            )
            .unwrap();
        store.close().unwrap();
    }
    // A torn tail a crashed writer left (never cut by the read-only open).
    let log_dir = dir.path().join("log");
    let mut segments: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "evl"))
        .collect();
    segments.sort();
    let active = segments.last().unwrap();
    let mut bytes = std::fs::read(active).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 9, 1, 2, 3, 4, 5]);
    std::fs::write(active, &bytes).unwrap();

    let before = hash_tree(dir.path());
    let reader = ReadOnlyStore::open(dir.path()).unwrap();
    assert_eq!(reader.last_position(), 540);
    check_view(&reader);
    assert_eq!(reader.refresh().unwrap(), 540);
    let followed = reader
        .follow(530)
        .poll_interval(Duration::from_millis(1))
        .idle_timeout(Some(Duration::from_millis(20)))
        .count();
    assert_eq!(followed, 11);
    drop(reader);
    assert_eq!(hash_tree(dir.path()), before);
}

#[test]
fn a_format_1_store_needs_migration_and_no_store_is_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old");
    std::fs::create_dir_all(old.join("data")).unwrap();
    assert!(matches!(
        ReadOnlyStore::open(&old),
        Err(OpenError::NeedsMigration {
            found: 1,
            supported: 2,
            ..
        })
    ));
    let none = dir.path().join("none");
    assert!(matches!(
        ReadOnlyStore::open(&none),
        Err(OpenError::NoStore { .. })
    ));
    std::fs::create_dir_all(&none).unwrap();
    assert!(matches!(
        ReadOnlyStore::open(&none),
        Err(OpenError::NoStore { .. })
    ));
    assert!(!none.join("log").exists(), "nothing was created");
}

#[test]
fn damage_in_a_sealed_segment_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(durable_config(dir.path())).unwrap();
        for n in 0..600 {
            store
                .append(ExpectedVersion::Any, vec![hit("a", n)])
                .unwrap();
        }
        store.close().unwrap();
    }
    let log_dir = dir.path().join("log");
    let mut segments: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "evl"))
        .collect();
    segments.sort();
    assert!(segments.len() > 1);
    let first = &segments[0];
    let mut bytes = std::fs::read(first).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(first, &bytes).unwrap();
    let reader = ReadOnlyStore::open(dir.path());
    // Opening indexes the whole log: the damaged frame is found then (crc), not later.
    assert!(
        matches!(reader, Err(OpenError::Corrupted { .. })),
        "{reader:?}"
    );
}
