//! Restoring a store from its JetStream stream: the restored store equals the original event
//! for event (positions, ids, versions, timestamps, context, payload bytes; hostile ids too)
//! and verifies; a target that holds something, a merged stream and an event type the registry
//! lacks are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{AppendOwn, cache_hit, cache_miss, config, pipeline_started, replicate_all};
use eventlog::{
    EventContext, EventLog, EventRegistry, ExpectedVersion, NewEvent, Position, RecordedEvent,
    ReplicationConfig, RestoreError, StoreLimits, StreamId, StreamRead, StreamReader,
    restore_from_stream, restore_from_stream_with,
};
use events_nats::{LocalServer, MergeConfig, merge_until_caught_up};

const WAIT: Duration = Duration::from_secs(30);

/// Aggregate ids NATS subjects cannot carry as they are.
const HOSTILE_IDS: [&str; 8] = [
    "a b",
    "x.y",
    "*",
    ">",
    "ünï cødé",
    "a.*.>",
    "%41",
    "emoji \u{1F600} !",
];

fn all(log: &EventLog) -> Vec<RecordedEvent> {
    log.read_log(Position::START, None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// An event whose every context field is set, with characters headers do not carry as they are.
fn with_context(mut event: NewEvent, n: u64) -> NewEvent {
    event.context = EventContext::new(format!("source {n} ü"))
        .with_trace_id(format!("trace.{n}.*>"))
        .with_user_id("user ø")
        .with_session_id("s;1=2, x")
        .with_correlation_id(format!("corr %{n} ï"))
        .with_causation_id(format!("cause {n}"));
    event
}

/// A store of about 2 000 events: appends of one to three events, aggregates interleaved (so a
/// stream comes back within one restore batch), three event types, hostile ids and contexts.
fn build(dir: &Path) -> EventLog {
    let log = EventLog::open(config(dir)).unwrap();
    for i in 0..600u64 {
        let id = format!("agg-{}", i % 37);
        let events = match i % 3 {
            0 => vec![cache_hit(&id, i)],
            1 => vec![cache_miss(&id, i), with_context(cache_hit(&id, i), i)],
            _ => vec![cache_hit(&id, i), cache_miss(&id, i), cache_hit(&id, i)],
        };
        log.append_own(ExpectedVersion::Any, events).unwrap();
        let hostile = HOSTILE_IDS[(i % HOSTILE_IDS.len() as u64) as usize];
        log.append_own(
            ExpectedVersion::Any,
            vec![with_context(cache_miss(hostile, i), i)],
        )
        .unwrap();
        if i % 50 == 0 {
            log.append_own(
                ExpectedVersion::Any,
                vec![pipeline_started(&format!("pipeline {i}"), 3)],
            )
            .unwrap();
        }
    }
    log
}

/// Replicates `log` into `stream` and waits until the stream holds all of it.
fn replicate(log: &EventLog, url: &str, stream: &str) {
    replicate_all(log, &ReplicationConfig::new(url).stream(stream));
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.insert(
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    found
}

#[test]
fn a_restored_store_equals_the_original_and_verifies() {
    let server = LocalServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = build(&dir.path().join("original"));
    replicate(&log, &server.url(), "ORIG");
    let original = all(&log);
    let store_id = log.admin().store_id().unwrap();

    let reader = StreamReader::connect(&server.url(), "ORIG", WAIT).unwrap();
    let target = dir.path().join("restored");
    let mut progress = Vec::new();
    let report = restore_from_stream_with(&reader, config(&target), &mut |done, last| {
        progress.push((done, last))
    })
    .unwrap();
    let last = original.len() as u64;
    assert_eq!((report.events, report.last_position), (last, last));
    assert_eq!(report.owner_store.as_deref(), Some(store_id.as_str()));
    assert_eq!(report.stream, "ORIG");
    assert_eq!(report.path, target);
    assert_eq!(progress.last(), Some(&(last, last)));
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "{progress:?}");

    let restored = EventLog::open(config(&target)).unwrap();
    assert_eq!(
        all(&restored),
        original,
        "positions, ids, versions, timestamps, metadata and payload bytes"
    );
    let verified = restored.admin().verify().unwrap();
    assert!(verified.ok, "{:?}", verified.issues);
    assert_eq!(verified.chain_head, report.chain_head);
    for id in HOSTILE_IDS {
        let stream = StreamId::new("cache", id);
        let read = |log: &EventLog| {
            log.read_stream(&stream, StreamRead::forwards())
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        };
        let events = read(&restored);
        assert!(!events.is_empty(), "{id:?}");
        assert_eq!(events, read(&log), "{id:?}");
    }
    restored.close().unwrap();
    log.close().unwrap();
}

#[test]
fn a_restore_in_small_appends_equals_the_original() {
    let server = LocalServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = build(&dir.path().join("original"));
    replicate(&log, &server.url(), "SMALL");
    let reader = StreamReader::connect(&server.url(), "SMALL", WAIT).unwrap();
    let target = dir.path().join("restored");
    // Three events at most per append: streams are cut across appends.
    let limits = StoreLimits {
        max_events_per_append: 3,
        ..StoreLimits::default()
    };
    let report = restore_from_stream(&reader, config(&target).store(|s| s.limits(limits))).unwrap();
    assert_eq!(report.last_position, log.last_position().unwrap().get());
    let restored = EventLog::open(config(&target)).unwrap();
    assert_eq!(all(&restored), all(&log));
}

#[test]
fn a_target_that_holds_something_is_refused_and_left_as_it_was() {
    let server = LocalServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original");
    let log = build(&original);
    replicate(&log, &server.url(), "FULL");
    log.close().unwrap();
    let reader = StreamReader::connect(&server.url(), "FULL", WAIT).unwrap();

    // The original store itself.
    let before = files(&original);
    match restore_from_stream(&reader, config(&original)) {
        Err(RestoreError::TargetNotEmpty { path }) => assert_eq!(path, original),
        other => panic!("expected TargetNotEmpty, got {other:?}"),
    }
    assert_eq!(files(&original), before, "the store is untouched");

    // Any file makes a directory not empty.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    assert!(matches!(
        restore_from_stream(&reader, config(&other)),
        Err(RestoreError::TargetNotEmpty { .. })
    ));
    assert_eq!(files(&other).len(), 1);
}

#[test]
fn a_merged_stream_is_refused() {
    let server = LocalServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(&dir.path().join("original"))).unwrap();
    log.append_own(ExpectedVersion::Any, vec![cache_hit("a", 1)])
        .unwrap();
    replicate(&log, &server.url(), "ONE");
    merge_until_caught_up(MergeConfig::new(server.url(), "ALL", ["ONE"]), WAIT).unwrap();
    let reader = StreamReader::connect(&server.url(), "ALL", WAIT).unwrap();
    assert!(reader.summary().unwrap().is_merged());
    let target = dir.path().join("restored");
    match restore_from_stream(&reader, config(&target)) {
        Err(RestoreError::MergedStream { stream, sources }) => {
            assert_eq!((stream.as_str(), sources), ("ALL", vec!["ONE".to_string()]));
        }
        other => panic!("expected MergedStream, got {other:?}"),
    }
    assert!(!target.exists(), "nothing was created");
}

#[test]
fn an_event_type_the_registry_lacks_is_named() {
    let server = LocalServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(&dir.path().join("original"))).unwrap();
    log.append_own(ExpectedVersion::Any, vec![cache_hit("a", 1)])
        .unwrap();
    log.append_own(ExpectedVersion::Any, vec![pipeline_started("p", 1)])
        .unwrap();
    replicate(&log, &server.url(), "TYPES");

    // A registry that knows the cache's types, not the pipeline's.
    let mut registry = EventRegistry::new();
    registry.register::<omni_domain::CacheHit>().unwrap();
    let reader = StreamReader::connect(&server.url(), "TYPES", WAIT).unwrap();
    let target = dir.path().join("restored");
    match restore_from_stream(&reader, config(&target).registry(registry)) {
        Err(RestoreError::UnknownEventType {
            event_type,
            position,
        }) => assert_eq!((event_type.as_str(), position), ("pipeline_started", 2)),
        other => panic!("expected UnknownEventType, got {other:?}"),
    }
}
