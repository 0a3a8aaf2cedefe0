//! A follower delivers a store's stream in order from any sequence, each event once; resuming
//! from `next_sequence` after dropping it gives exactly the rest; following one aggregate gives
//! only its events, hostile ids included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{MemoryLog, WAIT};
use events_nats::{LocalServer, ReplicationConfig, Replicator, StreamReader};

#[test]
fn a_follower_resumes_exactly_where_it_stopped_and_filters_one_aggregate() {
    let server = LocalServer::start().unwrap();
    let log = MemoryLog::new("store-a");
    let hostile = "ünï cødé a.b *>";
    for i in 0..300 {
        log.append("order", if i % 3 == 0 { hostile } else { "plain" });
    }
    let source: Arc<dyn events_nats::ReplicaSource> = log.clone();
    let replicator =
        Replicator::start(ReplicationConfig::new(server.url()).stream("F"), source).unwrap();
    assert!(
        replicator.wait_replicated(300, WAIT),
        "{:?}",
        replicator.status()
    );

    let all = log.events();
    let reader = StreamReader::connect(&server.url(), "F", WAIT).unwrap();
    let mut follower = reader.follow(101).unwrap();
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen.push(follower.next(WAIT).unwrap().unwrap());
    }
    let resume = follower.next_sequence();
    assert_eq!(resume, 151);
    drop(follower);
    // Live events arrive while nobody follows.
    for _ in 0..20 {
        log.append("order", "plain");
    }
    let mut follower = reader.follow(resume).unwrap();
    while seen.len() < 220 {
        seen.push(follower.next(WAIT).unwrap().expect("more events"));
    }
    assert_eq!(follower.next(Duration::from_millis(300)).unwrap(), None);
    assert_eq!(seen, log.events()[100..]);

    let mut only = reader.follow_aggregate(1, "order", hostile).unwrap();
    let expected: Vec<_> = all
        .iter()
        .filter(|e| e.metadata.aggregate_id == hostile)
        .cloned()
        .collect();
    for event in &expected {
        assert_eq!(&only.next(WAIT).unwrap().unwrap(), event);
    }
    assert_eq!(only.next(Duration::from_millis(300)).unwrap(), None);
    assert_eq!(
        reader.last_sequence_of("order", hostile).unwrap(),
        expected.last().map(|e| e.position)
    );
    assert_eq!(reader.last_sequence_of("order", "nobody").unwrap(), None);
    assert_eq!(reader.get(7).unwrap().as_ref(), Some(&all[6]));
    assert_eq!(reader.get(10_000).unwrap(), None);
    replicator.stop().unwrap();
}
