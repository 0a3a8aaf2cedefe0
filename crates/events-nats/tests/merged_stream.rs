//! Two stores' streams merged into one feed by a `Merger`: the merged stream holds every event
//! of both exactly once, each store's in its own position order, headers intact; a restarted
//! merger resumes after what the merged stream holds (no duplicate, no gap). And why a merger
//! rather than JetStream `sources`: nats-server 2.9 checks a sourced message's
//! `Nats-Expected-Last-Sequence` against the merging stream and the merge stalls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{MemoryLog, WAIT};
use events_core::RecordedEvent;
use events_nats::{
    LocalServer, MergeConfig, Merger, ReplicationConfig, ReplicationError, Replicator,
    StreamReader, merge_until_caught_up,
};

fn replicate(server: &LocalServer, log: &Arc<MemoryLog>, stream: &str) -> Replicator {
    let source: Arc<dyn events_nats::ReplicaSource> = log.clone();
    let replicator =
        Replicator::start(ReplicationConfig::new(server.url()).stream(stream), source).unwrap();
    assert!(replicator.wait_replicated(log.events().len() as u64, WAIT));
    replicator
}

/// Every event of the merged stream, split by the store it came from.
fn merged_by_store(server: &LocalServer, stream: &str) -> HashMap<char, Vec<RecordedEvent>> {
    let reader = StreamReader::connect(&server.url(), stream, WAIT).unwrap();
    let summary = reader.summary().unwrap();
    assert!(summary.is_merged(), "{summary:?}");
    let mut follower = reader.follow(1).unwrap();
    let mut by_store: HashMap<char, Vec<RecordedEvent>> = HashMap::new();
    for _ in 0..summary.messages {
        let event = follower.next(WAIT).unwrap().unwrap();
        let store = event.metadata.aggregate_id.chars().next().unwrap();
        by_store.entry(store).or_default().push(event);
    }
    assert_eq!(follower.next(Duration::from_millis(300)).unwrap(), None);
    by_store
}

#[test]
fn a_merger_feeds_one_stream_with_both_stores_exactly_once() {
    let server = LocalServer::start().unwrap();
    let (a, b) = (MemoryLog::new("store-a"), MemoryLog::new("store-b"));
    for i in 0..200 {
        a.append("order", &format!("a{}", i % 4));
        b.append("order", &format!("b{} ü.*>", i % 5));
    }
    let replicators = [replicate(&server, &a, "W1"), replicate(&server, &b, "W2")];
    let config = MergeConfig::new(server.url(), "ALL", ["W1", "W2"]);
    let status = merge_until_caught_up(config.clone(), WAIT).unwrap();
    assert_eq!(status.replicated_position, 400);
    let merged = merged_by_store(&server, "ALL");
    assert_eq!(merged[&'a'], a.events());
    assert_eq!(merged[&'b'], b.events());

    // One aggregate of the merged feed: its subjects name the sources, so the follower filters.
    let reader = StreamReader::connect(&server.url(), "ALL", WAIT).unwrap();
    let mut only = reader.follow_aggregate(1, "order", "a1").unwrap();
    let wanted: Vec<RecordedEvent> = a
        .events()
        .into_iter()
        .filter(|e| e.metadata.aggregate_id == "a1")
        .collect();
    for event in &wanted {
        assert_eq!(only.next(WAIT).unwrap().as_ref(), Some(event));
    }
    assert_eq!(only.next(Duration::from_millis(300)).unwrap(), None);
    assert!(matches!(
        reader.last_sequence_of("order", "a1"),
        Err(events_nats::FollowError::InvalidConfig {
            setting: "stream",
            ..
        })
    ));

    // More events; a new merger goes on from where the merged stream ends, live.
    let merger = Merger::start(config.clone()).unwrap();
    for i in 0..50 {
        a.append("order", &format!("a{}", i % 4));
        b.append("order", "b-late");
    }
    for (replicator, log) in replicators.iter().zip([&a, &b]) {
        assert!(replicator.wait_replicated(log.events().len() as u64, WAIT));
    }
    let deadline = std::time::Instant::now() + WAIT;
    while merger.status().replicated_position < 500 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            merger.status()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    merger.stop().unwrap();
    let merged = merged_by_store(&server, "ALL");
    assert_eq!(merged[&'a'], a.events());
    assert_eq!(merged[&'b'], b.events());

    // The merged stream is tied to its sources.
    match Merger::start(MergeConfig::new(server.url(), "ALL", ["W1"])) {
        Err(ReplicationError::NotAnEventLogStream { stream, .. }) => assert_eq!(stream, "ALL"),
        other => panic!("expected NotAnEventLogStream, got {other:?}"),
    }
    match Merger::start(MergeConfig::new(server.url(), "ALL2", ["W1", "W1"])) {
        Err(ReplicationError::InvalidConfig { setting, .. }) => assert_eq!(setting, "sources"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// The reason for the merger. Should a later nats-server stop checking sourced messages'
/// expectations, this fails, and JetStream `sources` become an option again.
#[test]
fn jetstream_sources_stall_on_replicated_messages() {
    use async_nats::jetstream::stream::{Config, Source};

    let server = LocalServer::start().unwrap();
    let (a, b) = (MemoryLog::new("store-a"), MemoryLog::new("store-b"));
    for i in 0..20 {
        a.append("order", &format!("a{i}"));
        b.append("order", &format!("b{i}"));
    }
    let _replicators = [replicate(&server, &a, "S1"), replicate(&server, &b, "S2")];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.create_stream(Config {
            name: "SOURCED".into(),
            sources: Some(
                ["S1", "S2"]
                    .iter()
                    .map(|name| Source {
                        name: (*name).into(),
                        ..Source::default()
                    })
                    .collect(),
            ),
            ..Config::default()
        })
        .await
        .unwrap();
    });
    std::thread::sleep(Duration::from_secs(3));
    let held = StreamReader::connect(&server.url(), "SOURCED", WAIT)
        .unwrap()
        .summary()
        .unwrap()
        .messages;
    assert!(
        held < 40,
        "JetStream sources merged all 40 events: the merger may be unneeded"
    );
}
