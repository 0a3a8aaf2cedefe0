//! A replicated (R3) stream on a 3-node cluster: killing the stream's leader mid-run, then
//! bringing it back, loses and duplicates nothing: the stream equals the log, sequence =
//! position, and appends went on meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{AppendOwn, cache_hit, config, stop_when_replicated};
use eventlog::{EventLog, ExpectedVersion, Position, RecordedEvent, ReplicationConfig};
use events_nats::{LocalCluster, StreamReader};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn killing_the_stream_leader_loses_and_duplicates_nothing() {
    let mut cluster = LocalCluster::start(3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let replicator = log
        .replicate(
            ReplicationConfig::new(cluster.url())
                .stream("R3")
                .replicas(3)
                .ack_timeout(Duration::from_secs(2))
                .retry_backoff(Duration::from_millis(50), Duration::from_millis(500)),
        )
        .unwrap();

    // A writer appends all along, in its own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let log = log.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                log.append_own(
                    ExpectedVersion::Any,
                    vec![cache_hit(&format!("a{}", n % 13), n)],
                )
                .unwrap();
                n += 1;
                if n.is_multiple_of(16) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            n
        })
    };
    // Let some events reach the stream, then kill its leader.
    let started = Instant::now();
    while replicator.replicated_position() < 500 {
        assert!(started.elapsed() < WAIT, "{:?}", replicator.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    let reader = StreamReader::connect(&cluster.url(), "R3", WAIT).unwrap();
    let leader = reader
        .summary()
        .unwrap()
        .leader
        .expect("an R3 stream has a leader");
    let index = cluster.node_index(&leader).unwrap();
    let before_kill = log.last_position().unwrap().get();
    cluster.kill(index);
    std::thread::sleep(Duration::from_secs(3));
    let during_outage = log.last_position().unwrap().get() - before_kill;
    cluster.restart(index).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let appended = writer.join().unwrap();
    assert!(
        during_outage > 0,
        "appends went on while the leader was down"
    );

    log.flush().unwrap();
    let last = log.last_position().unwrap().get();
    assert_eq!(last, appended);
    let status = stop_when_replicated(&log, replicator, WAIT);
    assert_eq!(status.replicated_position, last);

    let in_log: Vec<RecordedEvent> = log
        .read_log(Position::START, None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let reader = StreamReader::connect(&cluster.url(), "R3", WAIT).unwrap();
    let summary = reader.summary().unwrap();
    assert_eq!(summary.last_sequence, last, "{summary:?}");
    assert_eq!(summary.messages, last, "no gap, no duplicate: {summary:?}");
    assert_eq!(summary.replicas, 3);
    let mut follower = reader.follow(1).unwrap();
    for expected in &in_log {
        let got = follower
            .next(WAIT)
            .unwrap()
            .expect("the stream ended early");
        assert_eq!(&got, expected);
    }
    assert_eq!(follower.next(Duration::from_millis(300)).unwrap(), None);
    eprintln!(
        "leader {leader} killed: {during_outage} appends during the outage, {last} events, status {status:?}"
    );
}
