//! `EventLog::scan_log` visits exactly what `read_log` reads — events still queued for the writer
//! and events in stored records alike — honours its start, limit and `Break`, and refuses a closed
//! log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::ops::ControlFlow;

use common::*;
use eventlog::{EventLog, ExpectedVersion, Position, ReadError, RecordedEvent};

fn scanned(log: &EventLog, from: u64, limit: Option<usize>) -> (u64, Vec<RecordedEvent>) {
    let mut events = Vec::new();
    let visited = log
        .scan_log(Position(from), limit, |event| {
            events.push(event.to_owned());
            ControlFlow::Continue(())
        })
        .unwrap();
    (visited, events)
}

fn read(log: &EventLog, from: u64, limit: Option<usize>) -> Vec<RecordedEvent> {
    log.read_log(Position(from), limit)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn scan_matches_read_log_before_and_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    for n in 0..600 {
        let id = format!("cache-{}", n % 7);
        let events = if n % 3 == 0 {
            vec![cache_hit(&id, n), cache_miss(&id, n)]
        } else {
            vec![cache_hit(&id, n)]
        };
        log.append_own(ExpectedVersion::Any, events).unwrap();
    }
    // Some of these may still be queued for the writer: the scan must see them too.
    let all = read(&log, 1, None);
    assert_eq!(all.len(), 800);
    assert_eq!(scanned(&log, 1, None), (800, all.clone()));
    for (from, limit) in [(1, Some(1)), (17, Some(100)), (700, None), (800, Some(5))] {
        let (visited, events) = scanned(&log, from, limit);
        assert_eq!(
            events,
            read(&log, from, limit),
            "from {from}, limit {limit:?}"
        );
        assert_eq!(visited, events.len() as u64);
    }
    assert_eq!(scanned(&log, 801, None), (0, Vec::new()));
    log.close().unwrap();

    let log = EventLog::open(config(dir.path())).unwrap();
    assert_eq!(scanned(&log, 1, None), (800, all));
    log.close().unwrap();
}

#[test]
fn break_stops_the_scan_at_the_event_that_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let events = (0..50).map(|n| cache_hit("cache-1", n)).collect();
    log.append_own(ExpectedVersion::NoStream, events).unwrap();
    let mut positions = Vec::new();
    let visited = log
        .scan_log(Position(10), None, |event| {
            positions.push(event.position);
            if event.position == 20 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(visited, 11);
    assert_eq!(positions, (10..=20).collect::<Vec<_>>());
    log.close().unwrap();
}

#[test]
fn a_closed_log_refuses_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    log.append_own(ExpectedVersion::Any, vec![cache_hit("cache-1", 1)])
        .unwrap();
    let other = log.clone();
    log.close().unwrap();
    let result = other.scan_log(Position(1), None, |_| ControlFlow::Continue(()));
    assert!(matches!(result, Err(ReadError::Closed)), "got {result:?}");
}
