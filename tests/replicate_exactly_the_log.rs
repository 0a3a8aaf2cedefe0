//! Replicating a log into JetStream: the stream holds exactly the log (count, order, sequence =
//! position, every header, payload bytes), a restarted replicator resumes where the stream
//! ends, and a stream owned by another store is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{AppendOwn, cache_hit, cache_miss, config, stop_when_replicated};
use eventlog::{
    EventContext, EventLog, ExpectedVersion, NewEvent, Position, RecordedEvent, ReplicationConfig,
    ReplicationError, Ship,
};
use events_nats::{LocalServer, StreamReader};

const WAIT: Duration = Duration::from_secs(30);

fn log_events(log: &EventLog) -> Vec<RecordedEvent> {
    log.read_log(Position::START, None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn stream_events(url: &str, stream: &str, count: usize) -> Vec<RecordedEvent> {
    let reader = StreamReader::connect(url, stream, WAIT).unwrap();
    let mut follower = reader.follow(1).unwrap();
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        match follower.next(WAIT).unwrap() {
            Some(event) => events.push(event),
            None => panic!("stream {stream} ended at {} of {count}", events.len()),
        }
    }
    // Nothing beyond.
    assert_eq!(follower.next(Duration::from_millis(200)).unwrap(), None);
    events
}

fn hostile(id: &str, n: u64) -> NewEvent {
    let mut event = cache_hit(id, n);
    event.context = EventContext {
        trace_id: Some(format!("trace {n}.*>")),
        user_id: Some("üser ø".into()),
        session_id: Some("s;1=2".into()),
        source: "src with spaces".into(),
        correlation_id: Some("corr: 100% ünï".into()),
        causation_id: None,
    };
    event
}

#[test]
fn the_stream_holds_exactly_the_log_and_resumes_after_a_restart() {
    let server = LocalServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    for i in 0..50u64 {
        let id = format!("agg-{}", i % 7);
        log.append_own(
            ExpectedVersion::Any,
            vec![cache_hit(&id, i), cache_miss(&id, i)],
        )
        .unwrap();
    }
    for (i, id) in ["a b", "x.y", "*", ">", "ünï cødé", "a.*.>", "%41"]
        .iter()
        .enumerate()
    {
        log.append_own(ExpectedVersion::Any, vec![hostile(id, i as u64)])
            .unwrap();
    }
    let replication = ReplicationConfig::new(server.url())
        .stream("T1")
        .ship(Ship::Committed);
    let replicator = log.replicate(replication.clone()).unwrap();
    let last = log.last_position().unwrap().get();
    let status = stop_when_replicated(&log, replicator, WAIT);
    assert_eq!(status.replicated_position, last);

    // More events while no replicator runs; a new one resumes from the stream's end.
    for i in 0..20u64 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("later", i)])
            .unwrap();
    }
    let replicator = log.replicate(replication).unwrap();
    let last = log.last_position().unwrap().get();
    assert!(
        replicator.wait_replicated(last, WAIT),
        "{:?}",
        replicator.status()
    );
    let metrics = log.admin().metrics().unwrap();
    assert_eq!(metrics.replication.len(), 1);
    assert_eq!(metrics.replication[0].replicated_position, last);
    assert_eq!(metrics.replication[0].replication_lag_events, 0);
    let status = replicator.stop().unwrap();
    assert_eq!(status.publish_errors, 0, "{status:?}");

    let in_log = log_events(&log);
    let in_stream = stream_events(&server.url(), "T1", in_log.len());
    assert_eq!(
        in_stream, in_log,
        "every field and the payload bytes, in order"
    );
    let summary = StreamReader::connect(&server.url(), "T1", WAIT)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(summary.last_sequence, last);
    assert_eq!(summary.messages, last);
    assert_eq!(summary.owner_store, Some(log.admin().store_id().unwrap()));
    log.close().unwrap();
}

#[test]
fn a_stream_owned_by_another_store_is_refused() {
    let server = LocalServer::start().unwrap();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let replication = ReplicationConfig::new(server.url()).stream("OWNED");
    let log = EventLog::open(config(first.path())).unwrap();
    log.append_own(ExpectedVersion::Any, vec![cache_hit("a", 1)])
        .unwrap();
    log.flush().unwrap();
    let replicator = log.replicate(replication.clone()).unwrap();
    assert!(replicator.wait_replicated(1, WAIT));
    replicator.stop().unwrap();

    let other = EventLog::open(config(second.path())).unwrap();
    other
        .append_own(ExpectedVersion::Any, vec![cache_hit("b", 1)])
        .unwrap();
    match other.replicate(replication) {
        Err(ReplicationError::OwnedByAnotherStore { stream, .. }) => assert_eq!(stream, "OWNED"),
        other => panic!("expected OwnedByAnotherStore, got {other:?}"),
    }
}
