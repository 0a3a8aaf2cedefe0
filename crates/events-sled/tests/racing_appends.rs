//! Many threads racing appends on one aggregate: exactly one winner per version, a gap-free log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use events_sled::{AppendError, Durability, ExpectedVersion, StreamRead};

fn race(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store = events_sled::Store::open(config(&dir).durability(durability)).unwrap();
    let threads = 8;
    let attempts = 60;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut wins = Vec::new();
                for n in 0..attempts {
                    let current = store.stream_version("cache", "hot").unwrap();
                    match store.append(
                        ExpectedVersion::exact(current),
                        vec![hit("hot", (t * 1000 + n) as u64)],
                    ) {
                        Ok(r) => wins.push(r.last_version),
                        Err(AppendError::WrongExpectedVersion { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                wins
            })
        })
        .collect();
    let mut wins: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    wins.sort_unstable();
    let count = wins.len() as u64;
    assert_eq!(
        wins,
        (1..=count).collect::<Vec<_>>(),
        "one winner per version"
    );
    assert_eq!(store.stream_version("cache", "hot").unwrap(), count);
    let versions: Vec<u64> = store
        .read_stream("cache", "hot", StreamRead::forwards())
        .unwrap()
        .map(|e| e.unwrap().metadata.version)
        .collect();
    assert_eq!(versions, (1..=count).collect::<Vec<_>>());
    let positions: Vec<u64> = store
        .read_log(1, None)
        .map(|e| e.unwrap().position)
        .collect();
    assert_eq!(positions, (1..=count).collect::<Vec<_>>());
    assert!(store.verify().unwrap().ok);
}

#[test]
fn buffered_racers_get_one_winner_per_version() {
    race(Durability::Buffered);
}

#[test]
fn durable_racers_get_one_winner_per_version() {
    race(Durability::Durable);
}
