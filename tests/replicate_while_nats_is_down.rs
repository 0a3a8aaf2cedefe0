//! NATS away: `replicate` still starts (after its connect timeout), appends go on, the lag is
//! visible in the metrics, and once the server is back the stream catches up to exactly the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{AppendOwn, cache_hit, config, stop_when_replicated};
use eventlog::{EventLog, ExpectedVersion, Position, RecordedEvent, ReplicationConfig};
use events_nats::{LocalServer, StreamReader};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn appends_go_on_while_nats_is_down_and_the_stream_catches_up() {
    let mut server = LocalServer::start().unwrap();
    let url = server.url();
    server.kill();

    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let replicator = log
        .replicate(
            ReplicationConfig::new(&url)
                .stream("DOWN")
                .connect_timeout(Duration::from_millis(300))
                .retry_backoff(Duration::from_millis(50), Duration::from_millis(200)),
        )
        .expect("starts while NATS is away");
    for i in 0..2_000u64 {
        log.append_own(
            ExpectedVersion::Any,
            vec![cache_hit(&format!("a{}", i % 5), i)],
        )
        .unwrap();
    }
    log.flush().unwrap();
    let metrics = log.admin().metrics().unwrap();
    assert_eq!(metrics.replication.len(), 1);
    assert_eq!(metrics.replication[0].replicated_position, 0);
    assert_eq!(metrics.replication[0].replication_lag_events, 2_000);

    server.restart().unwrap();
    for i in 0..500u64 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("after", i)])
            .unwrap();
    }
    log.flush().unwrap();
    let status = stop_when_replicated(&log, replicator, WAIT);
    assert_eq!(status.replicated_position, 2_500);

    let in_log: Vec<RecordedEvent> = log
        .read_log(Position::START, None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let reader = StreamReader::connect(&url, "DOWN", WAIT).unwrap();
    assert_eq!(reader.summary().unwrap().messages, 2_500);
    let mut follower = reader.follow(1).unwrap();
    for expected in &in_log {
        assert_eq!(&follower.next(WAIT).unwrap().unwrap(), expected);
    }
}
