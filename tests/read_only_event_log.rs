//! `EventLog::open_read_only` beside the writing `EventLog`: the same events, decoded by the
//! registry, followed as they are appended.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use eventlog::{
    EventContext, EventLog, EventLogConfig, ExpectedVersion, OpenError, Position, StoreOpenError,
    StreamId, StreamRead,
};
use omni_domain::CacheHit;

fn hit(n: u64) -> CacheHit {
    CacheHit {
        cache_key: format!("key-{n}"),
        cache_type: "memory".into(),
        response_time: 0.001,
    }
}

#[test]
fn a_read_only_log_reads_and_follows_the_writers_events() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry())).unwrap();
    for n in 0..10 {
        log.append_event(
            &StreamId::of::<CacheHit>(format!("c-{}", n % 3)),
            ExpectedVersion::Any,
            &hit(n),
            EventContext::default(),
        )
        .unwrap();
    }
    log.flush().unwrap();
    let reader = EventLog::open_read_only(dir.path(), omni_domain::registry()).unwrap();
    assert_eq!(reader.last_position(), 10);
    let written: Vec<_> = log
        .read_log(Position(1), None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let read: Vec<_> = reader
        .read_log(Position(1), None)
        .map(Result::unwrap)
        .collect();
    assert_eq!(read, written);
    assert_eq!(
        reader.aggregates(None).unwrap(),
        log.aggregates(None).unwrap()
    );
    let stream: Vec<_> = reader
        .read_stream(&StreamId::new("cache", "c-1"), StreamRead::forwards())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stream.len(), 3);
    assert_eq!(
        reader.event_to_json(&stream[0]).unwrap()["payload"]["cache_key"],
        "key-1"
    );
    assert_eq!(reader.store_id().unwrap().len(), 36);

    let mut follower = reader
        .follow(Position(11))
        .poll_interval(Duration::from_millis(5))
        .idle_timeout(Some(Duration::from_secs(20)));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for n in 10..30 {
                log.append_event(
                    &StreamId::of::<CacheHit>("c-new"),
                    ExpectedVersion::Any,
                    &hit(n),
                    EventContext::default(),
                )
                .unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let followed: Vec<_> = follower.by_ref().take(20).map(Result::unwrap).collect();
    writer.join().unwrap();
    assert_eq!(
        followed.iter().map(|e| e.position).collect::<Vec<_>>(),
        (11..=30).collect::<Vec<_>>()
    );
    assert_eq!(reader.stream_version(&StreamId::new("cache", "c-new")), 20);
    log.close().unwrap();
}

#[test]
fn a_missing_store_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let error =
        EventLog::open_read_only(dir.path().join("nothing"), omni_domain::registry()).unwrap_err();
    assert!(
        matches!(error, OpenError::Store(StoreOpenError::NoStore { .. })),
        "{error}"
    );
}
