//! The metrics combine the store's, the subscriptions' and the aggregate loads', in JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::time::Duration;

use common::{Seen, cache_hit, config, wait_until};
use eventlog::{EventLog, ExpectedVersion, SubscriptionFilter};
use omni_domain::Cache;

#[test]
fn metrics_json_has_store_bus_and_aggregate_sections() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let seen = Seen::default();
    log.subscribe("counter", SubscriptionFilter::all(), seen.handler())
        .unwrap();
    for n in 0..5 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
            .unwrap();
    }
    // Counted once the handler has returned.
    assert!(wait_until(Duration::from_secs(10), || {
        seen.len() == 5 && log.health()[0].last_sequence == 5
    }));
    assert_eq!(log.load::<Cache>("c").unwrap().state.hits, 5);

    let json = serde_json::to_value(log.admin().metrics().unwrap()).unwrap();
    let store = &json["store"];
    assert_eq!(store["total_events_stored"], 5);
    assert_eq!(store["storage_path"], dir.path().display().to_string());
    assert_eq!(store["registered_events"].as_object().unwrap().len(), 16);
    assert_eq!(store["durability"], "buffered");
    let bus = &json["bus"];
    assert_eq!(bus["last_published"], 5);
    assert_eq!(bus["subscriptions"], 1);
    assert_eq!(bus["delivered"], 5);
    assert_eq!(bus["subscribers"][0]["name"], "counter");
    assert_eq!(bus["subscribers"][0]["state"], "live");
    assert_eq!(bus["subscribers"][0]["last_sequence"], 5);
    let aggregates = &json["aggregates"];
    assert_eq!(aggregates["snapshot_every"], 1000);
    assert_eq!(aggregates["loads"], 1);
    assert_eq!(aggregates["events_applied"], 5);
    log.close().unwrap();
}
