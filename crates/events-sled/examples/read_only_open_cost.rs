//! What a `ReadOnlyStore` costs to open: builds a store of 1 000 000 events (200-byte payloads,
//! 10 000 aggregates over 4 types) in a temporary directory (or `$STORE` when set and already
//! built), then times `ReadOnlyStore::open` and reports the process's memory around it.
//!
//! `STORE=/tmp/ro-store cargo run --release -p events-sled --example read_only_open_cost`: the
//! first run builds the store (and its memory figures include the build's); run it again for
//! the figures of a fresh process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use events_core::{EventContext, NewEvent};
use events_sled::{ExpectedVersion, ReadOnlyStore, Store, StoreConfig};

const EVENTS: u64 = 1_000_000;
const AGGREGATES: u64 = 10_000;
const TYPES: [&str; 4] = ["pipeline", "cache", "retry", "article_generation"];

/// `VmRSS` and `VmHWM` of this process, in MB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let path = std::env::var_os("STORE").map_or_else(|| temp.path().join("store"), Into::into);
    if !path.join("log").is_dir() {
        let started = Instant::now();
        let store = Store::open(StoreConfig::new(&path))?;
        let mut n = 0;
        while n < EVENTS {
            let batch: Vec<NewEvent> = (n..n + 100)
                .map(|i| {
                    let aggregate = i % AGGREGATES;
                    NewEvent::from_parts(
                        "happened",
                        TYPES[(aggregate % 4) as usize],
                        format!("agg-{aggregate:06}"),
                        1,
                        vec![b'x'; 200],
                        EventContext::new("bench"),
                    )
                })
                .collect();
            store.append_batches(
                batch
                    .into_iter()
                    .map(|e| events_sled::AppendBatch::new(ExpectedVersion::Any, vec![e]))
                    .collect(),
            )?;
            n += 100;
        }
        store.close()?;
        eprintln!("built {EVENTS} events in {:?}", started.elapsed());
    }
    let bytes: u64 = std::fs::read_dir(path.join("log"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    // Warm the page cache, so the figure is the open's work and not the disk's.
    for entry in std::fs::read_dir(path.join("log"))? {
        let _ = std::fs::read(entry?.path())?;
    }
    let (rss_before, _) = memory();
    let started = Instant::now();
    let reader = ReadOnlyStore::open(&path)?;
    let took = started.elapsed();
    let (rss_after, peak) = memory();
    println!(
        "ReadOnlyStore::open of {} events ({} MB of segments, {} aggregates): {took:?}, \
         RSS {rss_before} MB -> {rss_after} MB (+{} MB), peak {peak} MB",
        reader.last_position(),
        bytes >> 20,
        reader.aggregates(None)?.len(),
        rss_after.saturating_sub(rss_before)
    );
    Ok(())
}
