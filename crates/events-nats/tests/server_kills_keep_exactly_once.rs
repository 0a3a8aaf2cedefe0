//! nats-server killed (SIGKILL) at seeded random moments while a replicator publishes with
//! thousands of acks in flight and the log keeps growing: after each restart the replicator
//! reads back what the stream kept and goes on; at the end the stream is exactly the log
//! (no gap, no duplicate, sequence = position).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{MemoryLog, WAIT};
use events_nats::{LocalServer, ReplicationConfig, Replicator, StreamReader};

/// A small deterministic generator (xorshift), so a failing run can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn killing_the_server_repeatedly_keeps_the_stream_exactly_the_log() {
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_1203_u64);
    eprintln!("seed {seed} (KILL_SEED to replay)");
    let mut rng = Rng(seed);
    let mut server = LocalServer::start().unwrap();
    let log = MemoryLog::new("store-k");
    let source: Arc<dyn events_nats::ReplicaSource> = log.clone();
    let replicator = Replicator::start(
        ReplicationConfig::new(server.url())
            .stream("KILLS")
            .ack_timeout(Duration::from_millis(500))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200)),
        source,
    )
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let log = Arc::clone(&log);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                log.append("order", &format!("o{}", n % 17));
                n += 1;
                if n.is_multiple_of(200) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    for round in 0..8 {
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        let replicated = replicator.replicated_position();
        server.kill();
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        server.restart().unwrap();
        eprintln!("round {round}: killed at replicated position {replicated}");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let all = log.events();
    let last = all.len() as u64;
    assert!(
        replicator.wait_replicated(last, WAIT),
        "{:?}",
        replicator.status()
    );
    let status = replicator.stop().unwrap();
    eprintln!("{last} events; {status:?}");
    assert!(status.sessions > 1, "the kills ended sessions: {status:?}");

    let reader = StreamReader::connect(&server.url(), "KILLS", WAIT).unwrap();
    let summary = reader.summary().unwrap();
    assert_eq!((summary.messages, summary.last_sequence), (last, last));
    let mut follower = reader.follow(1).unwrap();
    for expected in &all {
        assert_eq!(&follower.next(WAIT).unwrap().unwrap(), expected);
    }
}
