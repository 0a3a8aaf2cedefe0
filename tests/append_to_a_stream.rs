//! Appends name their stream: typed events go to the stream given, an event naming another
//! stream is refused before anything is stored, and a conflict carries the stream, what was
//! expected and the stream's actual version.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cache_hit, config};
use eventlog::{
    AppendBatch, AppendError, EventContext, EventLog, ExpectedVersion, Position, StreamId,
    StreamRead, Version,
};
use omni_domain::{Cache, CacheEvent, CacheHit, CacheMiss, RetryFailed};

fn hit() -> CacheHit {
    CacheHit {
        cache_key: "k".into(),
        cache_type: "memory".into(),
        response_time: 0.002,
    }
}

fn miss() -> CacheMiss {
    CacheMiss {
        cache_key: "k".into(),
        cache_type: "memory".into(),
        reason: "cold".into(),
    }
}

#[test]
fn typed_events_of_a_set_are_stored_in_order_on_the_stream_given() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let stream = StreamId::of::<CacheHit>("cache-1");
    let events = [CacheEvent::from(miss()), hit().into(), hit().into()];
    let context = EventContext::new("test").with_trace_id("t-1");
    let result = log
        .append_events(&stream, ExpectedVersion::NoStream, events, context)
        .unwrap();
    assert_eq!((result.first_version, result.last_version), (1, 3));
    assert_eq!(log.stream_version(&stream).unwrap(), Version(3));

    let stored: Vec<(String, String, u64)> = log
        .read_stream(&stream, StreamRead::forwards())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let trace = e.metadata.trace_id.clone().unwrap();
            (e.metadata.event_type, trace, e.metadata.version)
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("cache_miss".to_string(), "t-1".to_string(), 1),
            ("cache_hit".to_string(), "t-1".to_string(), 2),
            ("cache_hit".to_string(), "t-1".to_string(), 3),
        ]
    );
    let cache = log.load::<Cache>("cache-1").unwrap();
    assert_eq!((cache.state.hits, cache.state.misses), (2, 1));
    assert_eq!(cache.stream, stream);
    log.close().unwrap();
}

#[test]
fn an_event_of_another_aggregate_type_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let retry = StreamId::of::<RetryFailed>("cache-1");
    let refused = log.append_event(
        &retry,
        ExpectedVersion::Any,
        &hit(),
        EventContext::default(),
    );
    match refused {
        Err(AppendError::WrongStream {
            stream,
            index,
            found,
        }) => {
            assert_eq!((stream, index), (retry, 0));
            assert_eq!(found, StreamId::new("cache", "cache-1"));
        }
        other => panic!("expected WrongStream, got {other:?}"),
    }
    assert_eq!(log.last_position().unwrap(), Position::START);
    log.close().unwrap();
}

#[test]
fn a_list_naming_two_streams_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let stream = StreamId::of::<CacheHit>("a");
    let events = vec![cache_hit("a", 1), cache_hit("b", 2), cache_hit("a", 3)];
    let refused = log.append(&stream, ExpectedVersion::Any, events);
    assert!(
        matches!(&refused, Err(AppendError::WrongStream { index: 1, found, .. }) if found.aggregate_id() == "b"),
        "{refused:?}"
    );

    // In a multi-stream append, one bad batch refuses them all.
    let refused = log.append_batches(vec![
        AppendBatch::new(
            stream.clone(),
            ExpectedVersion::Any,
            vec![cache_hit("a", 4)],
        ),
        AppendBatch::new(
            StreamId::of::<CacheHit>("c"),
            ExpectedVersion::Any,
            vec![cache_hit("d", 5)],
        ),
    ]);
    assert!(
        matches!(&refused, Err(AppendError::WrongStream { index: 0, .. })),
        "{refused:?}"
    );
    assert_eq!(log.last_position().unwrap(), Position::START);
    assert_eq!(log.stream_version(&stream).unwrap(), Version::NONE);
    log.close().unwrap();
}

#[test]
fn a_conflict_names_the_stream_the_expected_and_the_actual_version() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let stream = StreamId::of::<CacheMiss>("cache-9");
    for _ in 0..2 {
        log.append_event(
            &stream,
            ExpectedVersion::Any,
            &miss(),
            EventContext::default(),
        )
        .unwrap();
    }
    let stale = ExpectedVersion::exact(1);
    let error = log
        .append_event(&stream, stale, &miss(), EventContext::default())
        .unwrap_err();
    assert!(error.is_conflict());
    match &error {
        AppendError::WrongExpectedVersion {
            stream: named,
            expected,
            actual,
        } => {
            assert_eq!(named, &stream);
            assert_eq!(*expected, stale);
            assert_eq!(*actual, Version(2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "`cache/cache-9` is at version 2, the append expected version 1"
    );
    // The superset error keeps it recognisable.
    let any: eventlog::Error = error.into();
    assert!(any.is_conflict());
    assert_eq!(log.stream_version(&stream).unwrap(), Version(2));
    log.close().unwrap();
}
