//! A replicator refuses a stream that is not a prefix of its log: one that holds more events
//! than the log (a copy of the store taken earlier, same store id) and one that holds other
//! events at the same positions. It names the position and never publishes over them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{AppendOwn, cache_hit, cache_miss, config, replicate_all};
use eventlog::{EventLog, ExpectedVersion, ReplicationConfig, ReplicationError};
use events_nats::{LocalServer, StreamReader};

const WAIT: Duration = Duration::from_secs(30);

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy (same store id) of a store taken at 10 events; the store then goes on to 15 events,
/// all replicated into `replication`'s stream. Returns the copy.
fn copy_behind_its_replicated_store(replication: &ReplicationConfig) -> tempfile::TempDir {
    let original = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(original.path())).unwrap();
    for i in 0..10 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("a", i)])
            .unwrap();
    }
    log.close().unwrap();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original.path(), copy.path());
    let log = EventLog::open(config(original.path())).unwrap();
    for i in 0..5 {
        log.append_own(ExpectedVersion::Any, vec![cache_miss("a", i)])
            .unwrap();
    }
    replicate_all(&log, replication);
    log.close().unwrap();
    copy
}

fn stream_last(server: &LocalServer, stream: &str) -> u64 {
    StreamReader::connect(&server.url(), stream, WAIT)
        .unwrap()
        .summary()
        .unwrap()
        .last_sequence
}

#[test]
fn a_stream_ahead_of_the_log_is_refused() {
    let server = LocalServer::start().unwrap();
    let replication = ReplicationConfig::new(server.url()).stream("AHEAD");
    let copy = copy_behind_its_replicated_store(&replication);

    // The earlier copy has 10 events; the stream 15.
    let older = EventLog::open(config(copy.path())).unwrap();
    match older.replicate(replication) {
        Err(ReplicationError::StreamAhead {
            stream_last,
            log_last,
            ..
        }) => assert_eq!((stream_last, log_last), (15, 10)),
        other => panic!("expected StreamAhead, got {other:?}"),
    }
    assert_eq!(stream_last(&server, "AHEAD"), 15);
}

#[test]
fn a_stream_with_other_events_at_its_positions_is_refused() {
    let server = LocalServer::start().unwrap();
    let replication = ReplicationConfig::new(server.url()).stream("DIVERGED");
    let copy = copy_behind_its_replicated_store(&replication);

    // The copy goes its own way: other events at positions 11 to 17.
    let diverged = EventLog::open(config(copy.path())).unwrap();
    for i in 0..7 {
        diverged
            .append_own(ExpectedVersion::Any, vec![cache_hit("b", i)])
            .unwrap();
    }
    diverged.flush().unwrap();
    match diverged.replicate(replication) {
        Err(ReplicationError::ContentMismatch {
            position, in_log, ..
        }) => {
            assert_eq!(position, 15);
            let at_15 = diverged
                .read_log(eventlog::Position(15), Some(1))
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(in_log, at_15.metadata.event_id);
        }
        other => panic!("expected ContentMismatch, got {other:?}"),
    }
    assert_eq!(
        stream_last(&server, "DIVERGED"),
        15,
        "nothing published over it"
    );
}
