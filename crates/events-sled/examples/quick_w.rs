//! Quick W-append-single / W-append-batch / read timing (scratch; the real runner is events-bench).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use events_core::{EventContext, NewEvent};
use events_sled::{Durability, ExpectedVersion, Store, StoreConfig, StreamRead};

fn payload(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..200)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "[(x % 63) as usize]
        })
        .collect()
}

fn event(agg: u64, n: u64) -> NewEvent {
    NewEvent::from_parts(
        "article_generation_started",
        "article_generation",
        format!("gen-{agg}"),
        1,
        payload(n),
        EventContext::new("bench"),
    )
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "single".into());
    let dur = if std::env::args().nth(2).as_deref() == Some("durable") {
        Durability::Durable
    } else {
        Durability::Buffered
    };
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let rt: usize = std::env::var("RT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32 << 10);
    let store = Store::open(
        StoreConfig::new(dir.path())
            .durability(dur)
            .record_target_bytes(rt),
    )
    .unwrap();
    let start = Instant::now();
    let total;
    if mode == "single" {
        total = 100_000u64;
        let mut versions = vec![0u64; 10_000];
        for i in 0..total {
            let agg = i % 10_000;
            let exp = if versions[agg as usize] == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(versions[agg as usize])
            };
            let r = store.append(exp, vec![event(agg, i)]).unwrap();
            versions[agg as usize] = r.last_version;
        }
    } else {
        total = 1_000_000u64;
        for a in 0..10_000u64 {
            let events = (0..100).map(|k| event(a, a * 100 + k)).collect();
            store.append(ExpectedVersion::NoStream, events).unwrap();
        }
    }
    let appended = start.elapsed().as_secs_f64();
    store.flush().unwrap();
    let flushed = start.elapsed().as_secs_f64();
    println!(
        "{mode}: {total} events, {:.0} ev/s acked, {:.0} ev/s incl. flush",
        total as f64 / appended,
        total as f64 / flushed
    );
    if std::env::var("NOREAD").is_ok() {
        return;
    }
    let path = dir.path().to_path_buf();
    store.close().unwrap();
    let size: u64 = walk(&path);
    println!("disk {:.1} B/event", size as f64 / total as f64);
    let t = Instant::now();
    let store = Store::open(StoreConfig::new(&path).durability(dur)).unwrap();
    println!("reopen {:.3}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let n = store.read_log(1, None).filter(|e| e.is_ok()).count();
    println!(
        "read_all {:.0} ev/s ({n})",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut n = 0;
    for a in 0..10_000u64 {
        n += store
            .read_stream(
                "article_generation",
                &format!("gen-{a}"),
                StreamRead::forwards(),
            )
            .unwrap()
            .filter(|e| e.is_ok())
            .count();
    }
    println!(
        "read_streams {:.0} ev/s ({n})",
        n as f64 / t.elapsed().as_secs_f64()
    );
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() { walk(&e.path()) } else { m.len() }
        })
        .sum()
}
