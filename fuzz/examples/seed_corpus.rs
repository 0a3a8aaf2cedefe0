//! Writes the seed corpus of the three fuzz targets from real stores:
//!
//! ```sh
//! ../target/release/omni-writer --store /tmp/seed-store --pipelines 1 --workers 1 --seed 1
//! cargo run --example seed_corpus -- /tmp/seed-store
//! ```
//!
//! - `corpus/checkpoint_reader`: checkpoints exported by the store (an empty one, a small one
//!   with snapshots and consumers);
//! - `corpus/record_decoder`: the raw log records (read from its segment files), index pages and
//!   snapshot entries (read from sled) of that small store, each prefixed by the target's
//!   selector byte;
//! - `corpus/segment_recovery`: the small store's segment files (one, then two), in the target's
//!   input layout (the first segment's length as u16 BE, then the segments);
//! - `corpus/json_factory`: for one event of each type in the omni-writer store, its payload,
//!   its recorded-event JSON and its new-event JSON (prefixed by the type's selector byte).

use std::path::{Path, PathBuf};

use events_core::{EventContext, EventRegistry, NewEvent};
use events_sled::{AppendBatch, Durability, ExpectedVersion, Store, StoreConfig, StreamRead};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let source: PathBuf = std::env::args()
        .nth(1)
        .expect("usage: seed_corpus <omni-writer store>")
        .into();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let registry = EventRegistry::omni_writer();
    let types: Vec<String> = registry.event_types().map(str::to_string).collect();

    // The omni-writer store: one event of each type.
    let omni = Store::open(
        StoreConfig::new(&source)
            .durability(Durability::Buffered)
            .cache_capacity(8 << 20),
    )
    .unwrap();
    let events: Vec<_> = omni.read_log(1, None).map(Result::unwrap).collect();
    omni.close().unwrap();
    let json_dir = corpus.join("json_factory");
    for (selector, event_type) in types.iter().enumerate() {
        let Some(event) = events.iter().find(|e| &e.metadata.event_type == event_type) else {
            continue;
        };
        let recorded = registry.event_to_json(event).unwrap();
        let new = registry.new_event_to_json(&event.to_new_event()).unwrap();
        let payload = recorded["payload"].clone();
        for (kind, json) in [("payload", payload), ("recorded", recorded), ("new", new)] {
            let mut bytes = vec![selector as u8];
            bytes.extend_from_slice(serde_json::to_string(&json).unwrap().as_bytes());
            write(&json_dir, &format!("{event_type}-{kind}"), &bytes);
        }
    }

    // A small store: small records, indexes persisted every few events, every context field,
    // multi-aggregate appends, snapshots and consumers.
    let scratch = tempfile::tempdir().unwrap();
    let empty = scratch.path().join("empty");
    let store = Store::open(StoreConfig::new(&empty).cache_capacity(1 << 20)).unwrap();
    store
        .export_checkpoint(&corpus.join("checkpoint_reader").join("empty.evlc"))
        .unwrap();
    store.close().unwrap();

    let small = scratch.path().join("small");
    let config = StoreConfig::new(&small)
        .cache_capacity(1 << 20)
        .log_segment_bytes(64 << 10)
        .record_target_bytes(1024)
        .index_flush_events(3);
    let store = Store::open(config.clone()).unwrap();
    let sample: Vec<NewEvent> = events.iter().take(12).map(|e| e.to_new_event()).collect();
    for (i, event) in sample.iter().enumerate() {
        let mut event = event.clone();
        event.event_id = uuid_from(i as u64 + 1);
        event.context = EventContext::new("seed")
            .with_trace_id("trace")
            .with_user_id("user")
            .with_session_id("session")
            .with_correlation_id("correlation")
            .with_causation_id("causation");
        store.append(ExpectedVersion::Any, vec![event]).unwrap();
    }
    let pair: Vec<AppendBatch> = sample
        .iter()
        .take(2)
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            e.event_id = uuid_from(100 + i as u64);
            e.aggregate_id = format!("multi-{i}");
            AppendBatch::new(ExpectedVersion::NoStream, vec![e])
        })
        .collect();
    store.append_batches(pair).unwrap();
    let first = &sample[0];
    let version = store
        .stream_version(&first.aggregate_type, &first.aggregate_id)
        .unwrap();
    store
        .save_snapshot(
            &first.aggregate_type,
            &first.aggregate_id,
            version,
            1,
            b"state",
        )
        .unwrap();
    store
        .commit_consumer("reader", 5, b"consumer-state", true)
        .unwrap();
    let read: Vec<_> = store
        .read_stream(
            &first.aggregate_type,
            &first.aggregate_id,
            StreamRead::forwards(),
        )
        .unwrap()
        .collect();
    assert!(!read.is_empty());
    store
        .export_checkpoint(&corpus.join("checkpoint_reader").join("small.evlc"))
        .unwrap();
    store.close().unwrap();

    // Raw values, read from sled.
    let db = sled::Config::new()
        .path(events_sled::data_dir(&small))
        .segment_size(1 << 20)
        .open()
        .unwrap();
    let dir = corpus.join("record_decoder");
    let log = db.open_tree("log").unwrap();
    for (n, entry) in log.iter().enumerate() {
        let (key, value) = entry.unwrap();
        if !matches!(key.first(), Some(b'S' | b'T')) {
            continue;
        }
        let mut bytes = vec![1_u8];
        bytes.extend_from_slice(&value);
        write(&dir, &format!("page-{n}"), &bytes);
    }
    // Records, and whole segment files, from the log.
    let mut segments: Vec<_> = std::fs::read_dir(small.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "evl"))
        .collect();
    segments.sort();
    let files: Vec<Vec<u8>> = segments.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (n, frame) in events_sled::fuzz::segment_frames(&files[0]).iter().enumerate() {
        let mut bytes = vec![0_u8];
        bytes.extend_from_slice(&files[0][frame.record()]);
        write(&dir, &format!("record-{n}"), &bytes);
    }
    let recovery = corpus.join("segment_recovery");
    for count in 1..=files.len().min(2) {
        let first = u16::try_from(files[0].len()).unwrap_or(u16::MAX);
        let mut bytes = first.to_be_bytes().to_vec();
        for file in &files[..count] {
            bytes.extend_from_slice(file);
        }
        write(&recovery, &format!("segments-{count}"), &bytes);
    }
    for (n, entry) in db.open_tree("snapshots").unwrap().iter().enumerate() {
        let (key, value) = entry.unwrap();
        let mut bytes = vec![2_u8, u8::try_from(key.len()).unwrap()];
        bytes.extend_from_slice(&key);
        bytes.extend_from_slice(&value);
        write(&dir, &format!("snapshot-{n}"), &bytes);
    }
}

fn uuid_from(n: u64) -> uuid::Uuid {
    uuid::Builder::from_random_bytes((u128::from(n) << 64 | 0xABCD).to_be_bytes()).into_uuid()
}
