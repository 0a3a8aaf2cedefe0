//! Concurrency: 16 threads append at once — read-modify-append loops with exact expected
//! versions on 4 hot aggregates (retrying every conflict), and new cold aggregates (no-stream,
//! then exact) — while three subscriptions are attached (a roomy live one, a tiny-queue one that
//! keeps falling back to catch-up, and a durable one). Checked afterwards:
//!
//! - exactly one winner per version of every hot aggregate, and each winner's event is the one
//!   the log holds at that version (its payload names the version it read + 1);
//! - no lost update: every thread's every update landed (conflicts were retried), so each hot
//!   aggregate's version is the number of updates made to it;
//! - the log is gap-free and holds exactly the events acknowledged; `verify()` passes;
//! - every subscription saw every event exactly once, in position order, with the log's ids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use eventlog::{
    Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, Position,
    RecordedEvent, StreamId, SubscriptionFilter, SubscriptionOptions,
};
use omni_domain::CacheHit;
use uuid::Uuid;

const THREADS: usize = 16;
const OPS: usize = 120;
const HOT: [&str; 4] = ["hot-0", "hot-1", "hot-2", "hot-3"];

fn event(aggregate_id: &str, key: String) -> NewEvent {
    let hit = CacheHit {
        cache_key: key,
        cache_type: "concurrency".into(),
        response_time: 0.0,
    };
    NewEvent::from_event(aggregate_id, &hit, EventContext::new("test")).unwrap()
}

fn key_of(event: &RecordedEvent) -> String {
    omni_domain::registry()
        .decode::<CacheHit>(event)
        .unwrap()
        .cache_key
}

type Seen = Arc<Mutex<Vec<(u64, Uuid)>>>;

fn recorder(seen: &Seen) -> impl FnMut(&RecordedEvent) -> Result<(), String> + Send + 'static {
    let seen = Arc::clone(seen);
    move |event: &RecordedEvent| {
        seen.lock()
            .unwrap()
            .push((event.position, event.metadata.event_id));
        Ok(())
    }
}

/// What one thread did.
#[derive(Default)]
struct Work {
    /// (hot aggregate, version won, event id).
    wins: Vec<(usize, u64, Uuid)>,
    conflicts: u64,
    /// (cold aggregate id, event ids in version order).
    cold: Vec<(String, Vec<Uuid>)>,
}

fn worker(log: &EventLog, thread: usize, barrier: &Barrier) -> Work {
    let mut work = Work::default();
    let mut seed = (thread as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    barrier.wait();
    for n in 0..OPS {
        if next() % 2 == 0 {
            let hot = (next() % HOT.len() as u64) as usize;
            // Read-modify-append until it lands: a conflict means someone else won that version.
            loop {
                let version = log
                    .stream_version(&StreamId::new("cache", HOT[hot]))
                    .unwrap();
                // The "modify" step: long enough for other threads to read the same version.
                std::thread::sleep(Duration::from_micros(100));
                let event = event(HOT[hot], format!("{thread}:{n}:{}", version + 1));
                let id = event.event_id;
                match log.append_own(ExpectedVersion::exact(version), vec![event]) {
                    Ok(result) => {
                        assert_eq!(result.last_version, version + 1);
                        work.wins.push((hot, (version + 1).get(), id));
                        break;
                    }
                    Err(e) if e.is_conflict() => work.conflicts += 1,
                    Err(e) => panic!("thread {thread}: {e}"),
                }
            }
        } else {
            let id = format!("cold-{thread}-{n}");
            let first: Vec<NewEvent> = (0..1 + next() % 2)
                .map(|i| event(&id, format!("{thread}:{n}:{i}")))
                .collect();
            let mut ids: Vec<Uuid> = first.iter().map(|e| e.event_id).collect();
            let result = log.append_own(ExpectedVersion::NoStream, first).unwrap();
            if next() % 3 == 0 {
                let more = event(&id, format!("{thread}:{n}:more"));
                ids.push(more.event_id);
                log.append_own(ExpectedVersion::exact(result.last_version), vec![more])
                    .unwrap();
            }
            work.cold.push((id, ids));
        }
    }
    work
}

#[test]
fn one_winner_per_version_no_lost_update_every_subscriber_sees_all_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(
        EventLogConfig::new(dir.path())
            .registry(omni_domain::registry())
            .durability(Durability::Durable)
            .snapshot_every(None)
            .store(|s| {
                s.cache_capacity(32 << 20)
                    .flush_interval(Duration::from_millis(20))
            }),
    )
    .unwrap();
    let live: Seen = Arc::default();
    let tiny: Seen = Arc::default();
    let durable: Seen = Arc::default();
    log.subscribe("live", SubscriptionFilter::all(), recorder(&live))
        .unwrap();
    log.subscribe(
        "tiny",
        SubscriptionOptions::new().bus(|b| b.capacity(2)),
        recorder(&tiny),
    )
    .unwrap();
    log.subscribe_durable("durable", SubscriptionFilter::all(), recorder(&durable))
        .unwrap();

    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let log = log.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || worker(&log, thread, &barrier))
        })
        .collect();
    let works: Vec<Work> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    // Exactly one winner per version, and every update landed.
    let mut winners: HashMap<(usize, u64), Uuid> = HashMap::new();
    let mut updates = [0_u64; HOT.len()];
    for work in &works {
        for &(hot, version, id) in &work.wins {
            assert!(
                winners.insert((hot, version), id).is_none(),
                "two winners of {} version {version}",
                HOT[hot]
            );
            updates[hot] += 1;
        }
    }
    let conflicts: u64 = works.iter().map(|w| w.conflicts).sum();
    assert!(conflicts > 0, "the hot aggregates never raced");
    for (hot, name) in HOT.iter().enumerate() {
        let events: Vec<RecordedEvent> = log
            .read_stream(&StreamId::new("cache", *name), Default::default())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(events.len() as u64, updates[hot], "{name}: a lost update");
        for (v, event) in events.iter().enumerate() {
            let version = v as u64 + 1;
            assert_eq!(event.metadata.version, version);
            assert_eq!(
                Some(&event.metadata.event_id),
                winners.get(&(hot, version)),
                "{name} version {version} is not its winner's event"
            );
            // The winner read version - 1 and wrote on top of it.
            assert!(key_of(event).ends_with(&format!(":{version}")));
        }
    }
    for work in &works {
        for (id, ids) in &work.cold {
            let stored: Vec<Uuid> = log
                .read_stream(&StreamId::new("cache", id), Default::default())
                .unwrap()
                .map(|e| e.unwrap().metadata.event_id)
                .collect();
            assert_eq!(&stored, ids, "{id}");
        }
    }

    // A gap-free log of exactly what was acknowledged.
    let acknowledged: usize = works
        .iter()
        .map(|w| w.wins.len() + w.cold.iter().map(|(_, ids)| ids.len()).sum::<usize>())
        .sum();
    let last = log.last_position().unwrap().get();
    assert_eq!(last, acknowledged as u64);
    let logged: Vec<(u64, Uuid)> = log
        .read_log(Position(1), None)
        .unwrap()
        .map(|e| e.map(|e| (e.position, e.metadata.event_id)).unwrap())
        .collect();
    assert_eq!(
        logged.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>()
    );
    let report = log.admin().verify().unwrap();
    assert!(report.ok, "{report:?}");

    // Close delivers everything committed before returning.
    log.close().unwrap();
    for (name, seen) in [("live", &live), ("tiny", &tiny), ("durable", &durable)] {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), logged.len(), "{name}: missed or doubled events");
        assert_eq!(*seen, logged, "{name}: not every event once in order");
    }
    eprintln!(
        "{THREADS} threads: {last} events, {} hot updates, {conflicts} conflicts retried",
        updates.iter().sum::<u64>()
    );
}
