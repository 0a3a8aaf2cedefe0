//! Oversized appends are refused with a typed error and store nothing — not even the other
//! aggregates of a multi-aggregate append — while the largest append the limits allow (10 000
//! events, 8 MiB of payload, every id at its 256-byte maximum) is stored whole and survives a
//! reopen. After every refusal the next append lands right after the last stored one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::path::Path;

use eventlog::{
    AppendBatch, AppendError, Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion,
    NewEvent, StoreAppendError, StreamId, StreamRead, ValidationError,
};

const MIB: usize = 1 << 20;

fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .durability(Durability::Durable)
        .snapshot_every(None)
        .store(|s| s.cache_capacity(32 << 20))
}

/// A `cache_hit` event with an opaque payload of `bytes` bytes (the store does not decode
/// payloads; the registry only checks the type).
fn event(aggregate_id: &str, bytes: usize) -> NewEvent {
    NewEvent::from_parts(
        "cache_hit",
        "cache",
        aggregate_id,
        1,
        vec![0xA5; bytes],
        EventContext::new("test"),
    )
}

fn stream(aggregate_id: &str) -> StreamId {
    StreamId::new("cache", aggregate_id)
}

/// Checks nothing was stored by a refused call: the log still ends at `last`, and the next
/// append lands at `last + 1`.
fn nothing_stored(log: &EventLog, last: u64) -> u64 {
    assert_eq!(
        log.last_position().unwrap().get(),
        last,
        "a refused append stored events"
    );
    let result = log
        .append_own(ExpectedVersion::Any, vec![event("after", 10)])
        .unwrap();
    assert_eq!(result.first_position, last + 1);
    last + 1
}

#[test]
fn an_oversized_payload_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let mut last = 0;
    match log.append_own(ExpectedVersion::Any, vec![event("a", MIB + 1)]) {
        Err(AppendError::Store(StoreAppendError::Invalid {
            index: 0,
            source: ValidationError::PayloadTooLarge { size, max },
        })) => assert_eq!((size, max), (MIB + 1, MIB)),
        other => panic!("{other:?}"),
    }
    last = nothing_stored(&log, last);
    // In a multi-aggregate append, the other aggregate's events are not stored either.
    let batches = vec![
        AppendBatch::new(
            stream("b"),
            ExpectedVersion::NoStream,
            vec![event("b", 100)],
        ),
        AppendBatch::new(
            stream("c"),
            ExpectedVersion::NoStream,
            vec![event("c", 100), event("c", MIB + 1)],
        ),
    ];
    match log.append_batches(batches) {
        Err(AppendError::Store(StoreAppendError::Invalid { index: 2, .. })) => {}
        other => panic!("{other:?}"),
    }
    last = nothing_stored(&log, last);
    assert_eq!(log.stream_version(&StreamId::new("cache", "b")).unwrap(), 0);
    // Exactly at the limit is accepted.
    let result = log
        .append_own(ExpectedVersion::Any, vec![event("a", MIB)])
        .unwrap();
    assert_eq!(result.first_position, last + 1);
    assert!(log.admin().verify().unwrap().ok);
}

#[test]
fn too_many_events_or_bytes_in_one_append_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let mut last = 0;
    let many: Vec<NewEvent> = (0..10_001).map(|_| event("many", 8)).collect();
    match log.append_own(ExpectedVersion::Any, many) {
        Err(AppendError::Store(StoreAppendError::TooLarge {
            what: "event count",
            size: 10_001,
            max: 10_000,
        })) => {}
        other => panic!("{other:?}"),
    }
    last = nothing_stored(&log, last);
    // 9 MiB over two aggregates: each event within its limit, the call over 8 MiB.
    let batches = vec![
        AppendBatch::new(
            stream("x"),
            ExpectedVersion::Any,
            (0..5).map(|_| event("x", MIB)).collect(),
        ),
        AppendBatch::new(
            stream("y"),
            ExpectedVersion::Any,
            (0..4).map(|_| event("y", MIB)).collect(),
        ),
    ];
    match log.append_batches(batches) {
        Err(AppendError::Store(StoreAppendError::TooLarge {
            what: "payload bytes",
            size,
            max,
        })) => assert_eq!((size, max), (9 * MIB, 8 * MIB)),
        other => panic!("{other:?}"),
    }
    last = nothing_stored(&log, last);
    assert_eq!(log.stream_version(&StreamId::new("cache", "x")).unwrap(), 0);
    match log.append_own(ExpectedVersion::Any, vec![]) {
        Err(AppendError::Store(StoreAppendError::Empty)) => {}
        other => panic!("{other:?}"),
    }
    nothing_stored(&log, last);
    assert!(log.admin().verify().unwrap().ok);
}

#[test]
fn the_largest_append_allowed_is_stored_whole_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = "i".repeat(256);
    let context = EventContext::new("s".repeat(128))
        .with_trace_id("t".repeat(256))
        .with_user_id("u".repeat(256))
        .with_session_id("v".repeat(256))
        .with_correlation_id("w".repeat(256))
        .with_causation_id("x".repeat(256));
    // 10 000 events of 838 bytes: 8 380 000 bytes of payload, within the 8 MiB per call.
    let events: Vec<NewEvent> = (0..10_000_u32)
        .map(|i| {
            let mut payload = vec![0x5A; 838];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            NewEvent::from_parts(
                "cache_hit",
                "cache",
                id.as_str(),
                1,
                payload,
                context.clone(),
            )
        })
        .collect();
    let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
    {
        let log = EventLog::open(config(dir.path())).unwrap();
        let result = log.append_own(ExpectedVersion::NoStream, events).unwrap();
        assert_eq!((result.first_position, result.last_position), (1, 10_000));
        log.close().unwrap();
    }
    let log = EventLog::open(config(dir.path())).unwrap();
    let stored: Vec<_> = log
        .read_stream(&StreamId::new("cache", &id), StreamRead::forwards())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), 10_000);
    for (i, event) in stored.iter().enumerate() {
        assert_eq!(event.metadata.event_id, ids[i]);
        assert_eq!(event.payload.len(), 838);
        assert_eq!(event.payload[..4], (i as u32).to_be_bytes());
        assert_eq!(
            event.metadata.causation_id.as_deref(),
            Some(&*"x".repeat(256))
        );
    }
    let report = log.admin().verify().unwrap();
    assert!(report.ok && report.events == 10_000, "{report:?}");
    log.close().unwrap();
}
