//! In durable mode an event reaches a subscription only once it is on disk (and readable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cache_hit, wait_until};
use eventlog::{
    Durability, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, StreamRead,
    SubscriptionFilter,
};

#[test]
fn durable_events_are_delivered_only_once_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(
        EventLogConfig::new(dir.path())
            .registry(omni_domain::registry())
            .durability(Durability::Durable)
            .store(|s| s.cache_capacity(16 << 20)),
    )
    .unwrap();
    let checks = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&checks);
    let reader = log.clone();
    log.subscribe(
        "checker",
        SubscriptionFilter::all(),
        move |event: &RecordedEvent| {
            let durable = reader.durable_position().map_err(|e| e.to_string())?;
            let stored = reader
                .read_stream(
                    &StreamId::new("cache", &event.metadata.aggregate_id),
                    StreamRead::forwards().from(event.metadata.version).limit(1),
                )
                .map_err(|e| e.to_string())?
                .next()
                .and_then(Result::ok);
            sink.lock()
                .unwrap()
                .push((event.position, durable, stored.map(|s| s.position)));
            Ok::<(), String>(())
        },
    )
    .unwrap();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..30 {
                    log.append_own(ExpectedVersion::Any, vec![cache_hit(&format!("c{t}"), n)])
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(wait_until(Duration::from_secs(20), || checks
        .lock()
        .unwrap()
        .len()
        == 60));
    // The handler holds a handle: close explicitly.
    log.close().unwrap();
    for (position, durable, stored) in checks.lock().unwrap().iter() {
        assert!(
            durable >= position,
            "{position} delivered at durable {durable}"
        );
        assert_eq!(stored, &Some(*position));
    }
}
