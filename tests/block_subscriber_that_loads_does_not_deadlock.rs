//! A `Backpressure::Block` subscription whose handler waits for the store's writer (loading an
//! aggregate saves an automatic snapshot, which waits until the writer has written the
//! aggregate's events; `flush`, `chain_head` and a durable subscription's commit wait the same
//! way) must not deadlock the writer: every append completes, the subscription sees every event
//! once and in order, and `close` returns.
//!
//! Each scenario runs on its own thread and the test fails if it has not finished within
//! [`SCENARIO_TIMEOUT`], so a regression fails instead of hanging the suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::sync::mpsc;
use std::time::Duration;

use common::{Seen, cache_hit, config, one_to, wait_until};
use eventlog::{
    Backpressure, Durability, EventLog, ExpectedVersion, RecordedEvent, StreamId, SubscriberState,
    SubscriptionOptions,
};
use omni_domain::Cache;

const EVENTS: u64 = 2_000;
const AGGREGATES: u64 = 4;
/// Generous: the scenario takes about a second when it works.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

fn aggregate(n: u64) -> String {
    format!("c-{}", n % AGGREGATES)
}

/// Runs `scenario` on a thread of its own; panics if it panics or does not finish in time.
fn within_timeout(name: &str, scenario: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            scenario();
            let _ = done_tx.send(());
        })
        .unwrap();
    match done_rx.recv_timeout(SCENARIO_TIMEOUT) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            // Disconnected: the scenario panicked; report its panic.
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name}: not finished after {SCENARIO_TIMEOUT:?}: the writer and the Block \
             subscriber wait for each other"
        ),
    }
}

/// Subscribes `name` with a capacity-1 `Block` queue: `before` runs on each event, then the
/// event is recorded in `seen`.
fn subscribe_block(
    log: &EventLog,
    name: &str,
    seen: &Seen,
    mut before: impl FnMut(&RecordedEvent) -> Result<(), String> + Send + 'static,
) {
    let mut record = seen.handler();
    log.subscribe(
        name,
        SubscriptionOptions::new()
            .bus(|b| b.capacity(1))
            .bus(|b| b.backpressure(Backpressure::Block)),
        move |event: &RecordedEvent| {
            before(event)?;
            record(event)
        },
    )
    .unwrap();
}

/// Appends [`EVENTS`] single-event appends from another thread; returns how many completed.
fn append_from_another_thread(log: &EventLog) -> u64 {
    let appender = log.clone();
    std::thread::spawn(move || {
        let mut completed = 0;
        for n in 0..EVENTS {
            appender
                .append_own(ExpectedVersion::Any, vec![cache_hit(&aggregate(n), n)])
                .unwrap();
            completed += 1;
        }
        completed
    })
    .join()
    .unwrap()
}

/// Waits until the subscription has handled every event, then closes the log (the handler
/// holds a clone of the log, so it must be closed explicitly) and checks the report.
fn finish(log: EventLog, seen: &Seen) {
    assert!(
        wait_until(SCENARIO_TIMEOUT / 2, || seen.len() as u64 >= EVENTS),
        "the subscription handled {} of {EVENTS} events",
        seen.len()
    );
    let reports = log.close().unwrap();
    assert_eq!(seen.positions(), one_to(EVENTS));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].state, SubscriberState::Finished, "{reports:?}");
    assert_eq!(reports[0].counts.delivered, EVENTS);
    assert_eq!(reports[0].counts.errors, 0, "{reports:?}");
    assert_eq!(reports[0].last_sequence, EVENTS);
}

#[test]
fn a_block_subscriber_that_loads_with_snapshot_every_1_does_not_deadlock_the_writer() {
    within_timeout("load-in-handler", || {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(config(dir.path()).snapshot_every(Some(1))).unwrap();
        let seen = Seen::default();
        let reader = log.clone();
        subscribe_block(&log, "loader", &seen, move |event| {
            let loaded = reader
                .load::<Cache>(&event.metadata.aggregate_id)
                .map_err(|e| e.to_string())?;
            if loaded.version < event.metadata.version {
                return Err(format!(
                    "loaded version {} below the delivered event's {}",
                    loaded.version, event.metadata.version
                ));
            }
            Ok(())
        });

        assert_eq!(append_from_another_thread(&log), EVENTS);
        finish(log, &seen);
        // The loads saved snapshots (snapshot_every 1), so the scenario did exercise the wait.
        let reopened = EventLog::open(config(dir.path())).unwrap();
        assert!(
            (0..AGGREGATES)
                .map(|n| reopened
                    .admin()
                    .snapshots(&StreamId::new("cache", aggregate(n)))
                    .unwrap()
                    .len())
                .sum::<usize>()
                > 0
        );
        reopened.close().unwrap();
    });
}

#[test]
fn a_block_subscriber_that_flushes_does_not_deadlock_the_writer() {
    within_timeout("flush-in-handler", || {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(config(dir.path())).unwrap();
        let seen = Seen::default();
        let reader = log.clone();
        subscribe_block(&log, "flusher", &seen, move |event| {
            if event.position.is_multiple_of(100) {
                reader.flush().map_err(|e| e.to_string())?;
            }
            let head = reader.admin().chain_head().map_err(|e| e.to_string())?;
            if head.position < event.position {
                return Err(format!(
                    "chain head {} below the delivered event {}",
                    head.position, event.position
                ));
            }
            Ok(())
        });

        assert_eq!(append_from_another_thread(&log), EVENTS);
        finish(log, &seen);
    });
}

#[test]
fn durable_appends_complete_while_a_block_subscriber_is_stuck_in_its_handler() {
    within_timeout("stuck-handler", || {
        const DURABLE_EVENTS: u64 = 300;
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(config(dir.path()).durability(Durability::Durable)).unwrap();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let seen = Seen::default();
        subscribe_block(&log, "stuck", &seen, move |event| {
            if event.position == 1 {
                // Stuck until every append returned (bounded, so a regression fails).
                release_rx
                    .recv_timeout(SCENARIO_TIMEOUT)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        // Each durable append waits for the writer: none may wait for the stuck handler.
        for n in 0..DURABLE_EVENTS {
            log.append_own(ExpectedVersion::Any, vec![cache_hit(&aggregate(n), n)])
                .unwrap();
        }
        assert!(seen.len() <= 1, "the handler was stuck");
        release_tx.send(()).unwrap();
        let reports = log.close().unwrap();
        assert_eq!(seen.positions(), one_to(DURABLE_EVENTS));
        assert_eq!(reports[0].counts.delivered, DURABLE_EVENTS);
    });
}
