//! Filters by aggregate type and by event type, on history (catch-up) and on live events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::time::Duration;

use common::{Seen, cache_hit, cache_miss, config, pipeline_started, wait_until};
use eventlog::{EventLog, ExpectedVersion, NewEvent, Position, SubscriptionFilter};

fn mixed(log: &EventLog, rounds: u64) {
    for n in 0..rounds {
        let event: NewEvent = match n % 3 {
            0 => cache_hit("c1", n),
            1 => cache_miss("c2", n),
            _ => pipeline_started(&format!("p{n}"), 3),
        };
        log.append_own(ExpectedVersion::Any, vec![event]).unwrap();
    }
}

fn expected(log: &EventLog, filter: &SubscriptionFilter, after: u64) -> Vec<u64> {
    log.read_log(Position(after + 1), None)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| filter.matches(e))
        .map(|e| e.position)
        .collect()
}

#[test]
fn filters_apply_to_history_and_live_events() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    mixed(&log, 30);
    let history_end = log.last_position().unwrap().get();

    let filters = [
        SubscriptionFilter::all().aggregate_type("cache"),
        SubscriptionFilter::all().event_type("pipeline_started"),
        SubscriptionFilter::all()
            .aggregate_type("cache")
            .event_type("cache_miss"),
        SubscriptionFilter::all()
            .event_type("cache_hit")
            .event_type("pipeline_started"),
        SubscriptionFilter::all().aggregate_type("retry"),
    ];
    let mut from_start = Vec::new();
    let mut live = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let seen = Seen::default();
        log.subscribe_from(
            format!("h{i}"),
            Position::START,
            filter.clone(),
            seen.handler(),
        )
        .unwrap();
        from_start.push(seen);
        let seen = Seen::default();
        log.subscribe(format!("l{i}"), filter.clone(), seen.handler())
            .unwrap();
        live.push(seen);
    }
    mixed(&log, 30);
    let last = log.last_position().unwrap().get();
    assert!(wait_until(Duration::from_secs(10), || {
        log.health().iter().all(|h| h.last_sequence == last)
    }));

    for (i, filter) in filters.iter().enumerate() {
        assert_eq!(
            from_start[i].positions(),
            expected(&log, filter, 0),
            "{filter:?}"
        );
        assert_eq!(
            live[i].positions(),
            expected(&log, filter, history_end),
            "{filter:?}"
        );
    }
    assert_eq!(from_start[1].len(), 20); // pipeline_started: every third of 60
    assert_eq!(live[4].len(), 0);
    let reports = log.close().unwrap();
    let retry = reports.iter().find(|r| r.name == "h4").unwrap();
    assert_eq!((retry.counts.delivered, retry.counts.filtered), (0, last));
}
