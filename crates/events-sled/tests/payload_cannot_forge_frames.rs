//! Event payloads cannot forge log frames.
//!
//! Payloads land in the segment files verbatim, inside their record's frame. A payload can hold
//! well-formed frames: a correct CRC, positions that continue the log, records that decode and
//! even carry the right predecessor's hash. Reads and scans step from frame to frame by their
//! lengths, so such bytes are never looked at — until the frame around them is torn: when a
//! frame's header is lost (zeroed, or the file cut inside it), its record's bytes stay behind as
//! stale bytes, and a later, shorter frame written in its place ends exactly where a forged frame
//! could begin. Opening therefore zeroes a torn tail before anything is written after it.
//!
//! The test plants the strongest forgery: the payload of the last append holds, at the very
//! offset where the next append's frame will end, a chain of frames that continues the log after
//! that next append (its record computed in advance, so the forged records carry its hash). The
//! append is acknowledged durably to a child process that aborts before any flush; its frame's
//! header is then zeroed or cut. Reopening must cut it (it came after the last flush: the
//! documented limit), the next appends must land where the forged frames were, and after every
//! reopen every event read back is one appended at that position, `verify()` passes, and no
//! forged event appears.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use events_core::{EventContext, NewEvent, RecordedEvent};
use events_sled::fuzz::{self, FrameAt};
use events_sled::{Durability, ExpectedVersion, Store, StoreConfig};

const CHILD: &str = "EVENTLOG_FORGED_FRAMES_CHILD";
/// Forged frames chained after the first one.
const FORGED_FRAMES: u64 = 8;

fn store_config(path: &Path, durability: Durability) -> StoreConfig {
    StoreConfig::new(path)
        .cache_capacity(8 << 20)
        .durability(durability)
        .log_segment_bytes(1 << 20)
}

fn durable_open(path: &Path) -> Store {
    Store::open(store_config(path, Durability::Durable))
        .unwrap_or_else(|e| panic!("a store whose payloads hold frames must open: {e}"))
}

/// (position, event id, payload) of every event in the log, in order.
fn log_of(store: &Store) -> Vec<(u64, uuid::Uuid, Vec<u8>)> {
    store
        .read_log(1, None)
        .map(|e| {
            let e = e.unwrap();
            (e.position, e.metadata.event_id, e.payload)
        })
        .collect()
}

fn event(event_type: &str, aggregate_id: &str, payload: Vec<u8>) -> NewEvent {
    NewEvent::from_parts(
        event_type,
        "cache",
        aggregate_id,
        1,
        payload,
        EventContext::new("test"),
    )
}

fn parse_hash(hex: &str) -> [u8; 32] {
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Frames for positions `first ..`, one event each (of aggregate `b`, versions from
/// `first_version`), chained from `prev_hash`: what the log would hold there. Returns the bytes
/// and the forged events' ids.
fn forged_frames(
    first: u64,
    first_version: u64,
    prev_hash: [u8; 32],
    count: u64,
) -> (Vec<u8>, Vec<uuid::Uuid>) {
    let mut bytes = Vec::new();
    let mut ids = Vec::new();
    let mut prev = prev_hash;
    for k in 0..count {
        let forged: RecordedEvent = event("forged", "b", format!("forged {k}").into_bytes())
            .into_recorded(first_version + k, first + k);
        ids.push(forged.metadata.event_id);
        let record = fuzz::encode_chained_record(&prev, &[forged]);
        prev = fuzz::record_hash(&record);
        bytes.extend(fuzz::encode_frame(first + k, 1, &record).unwrap());
    }
    (bytes, ids)
}

/// How the last frame's header is torn.
#[derive(Debug, Clone, Copy)]
enum Tear {
    /// Its 20 header bytes zeroed: the record's bytes stay behind.
    ZeroHeader,
    /// The file cut in the middle of the header.
    TruncateHeader,
}

/// The active (only) segment file of the store.
fn segment(store: &Path) -> PathBuf {
    store.join("log").join(fuzz::segment_file_name(1))
}

fn frames(store: &Path) -> Vec<FrameAt> {
    fuzz::segment_frames(&std::fs::read(segment(store)).unwrap())
}

/// The child: appends the event whose payload is in `<store>.forging` durably, with no flush
/// (a 1 h flush interval), writes its id to `<store>.acked` once it is acknowledged, and aborts.
fn child(store: &Path) -> ! {
    let payload = std::fs::read(store.with_extension("forging")).unwrap();
    let s = Store::open(
        store_config(store, Durability::Durable).flush_interval(Duration::from_secs(3600)),
    )
    .unwrap();
    let forging = event("forging", "f", payload);
    let id = forging.event_id;
    s.append(ExpectedVersion::Any, vec![forging]).unwrap();
    std::fs::write(store.with_extension("acked"), id.to_string()).unwrap();
    std::process::abort();
}

fn forged_frames_never_read(test_name: &str, tear: Tear) {
    if let Ok(path) = std::env::var(CHILD) {
        child(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store");
    let mut written: Vec<(u64, uuid::Uuid, Vec<u8>)> = Vec::new();
    let mut forged_ids = Vec::new();

    // The log so far, with payloads holding frames that continue it (not torn: never read).
    let store = durable_open(&store_path);
    for k in 0..6_u64 {
        let position = store.last_position() + 1;
        let payload = if k % 2 == 0 {
            let (bytes, ids) = forged_frames(position + 1, 1, [0; 32], 4);
            forged_ids.extend(ids);
            bytes
        } else {
            hit("a", k).payload
        };
        let e = event("base", "a", payload);
        written.push((position, e.event_id, e.payload.clone()));
        store.append(ExpectedVersion::Any, vec![e]).unwrap();
    }
    let head = store.chain_head().unwrap();
    let last = head.position;
    let head_hash = parse_hash(&head.hash);
    store.close().unwrap();
    let data_end = frames(&store_path).last().unwrap().end();

    // The next append after the tear, known in advance: its record, and so its frame's length
    // and its hash.
    let next = event("next", "b", vec![7; 2000]);
    let next_record =
        fuzz::encode_chained_record(&head_hash, &[next.clone().into_recorded(1, last + 1)]);
    let next_frame_end = data_end + fuzz::FRAME_HEADER_LEN + next_record.len() as u64;
    let (forgery, ids) = forged_frames(last + 2, 2, fuzz::record_hash(&next_record), FORGED_FRAMES);
    forged_ids.extend(ids);
    // The forging payload: padding, then the forged frames, placed so that they start where the
    // next append's frame will end. The padding is found by encoding the forging event as the
    // child will (the record ends with the payload).
    let mut pad = 0;
    let payload = loop {
        let mut payload = vec![0xAB; pad];
        payload.extend(&forgery);
        let record = fuzz::encode_chained_record(
            &head_hash,
            &[event("forging", "f", payload.clone()).into_recorded(1, last + 1)],
        );
        let payload_at = data_end + fuzz::FRAME_HEADER_LEN + (record.len() - payload.len()) as u64;
        let forged_at = payload_at + pad as u64;
        if forged_at == next_frame_end {
            break payload;
        }
        assert!(forged_at < next_frame_end, "the next append is too short");
        pad += (next_frame_end - forged_at) as usize;
    };
    std::fs::write(store_path.with_extension("forging"), &payload).unwrap();

    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            test_name,
            "--exact",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD, &store_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");
    assert!(
        store_path.with_extension("acked").exists(),
        "the child's append was not acknowledged"
    );

    // The forging frame is the last one, and the forged frames sit where the next append's frame
    // will end: read from there, they are a valid continuation of the log after it.
    let before = std::fs::read(segment(&store_path)).unwrap();
    let forging = *fuzz::segment_frames(&before).last().unwrap();
    assert_eq!(forging.offset, data_end);
    assert_eq!(forging.first_position, last + 1);
    let mut stale = vec![0; fuzz::SEGMENT_HEADER_LEN as usize];
    stale.extend(&before[next_frame_end as usize..forging.end() as usize]);
    let lined_up = fuzz::segment_frames(&stale);
    assert_eq!(lined_up.len() as u64, FORGED_FRAMES, "{lined_up:?}");
    assert_eq!(lined_up[0].first_position, last + 2);

    // Tear the forging frame's header.
    let file = segment(&store_path);
    match tear {
        Tear::ZeroHeader => {
            let mut bytes = before.clone();
            bytes[data_end as usize..(data_end + fuzz::FRAME_HEADER_LEN) as usize].fill(0);
            std::fs::write(&file, bytes).unwrap();
        }
        Tear::TruncateHeader => {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .unwrap()
                .set_len(data_end + 10)
                .unwrap();
        }
    }

    // Reopen: the torn frame is cut. It was acknowledged after the last flush, so nothing tells
    // it from a torn tail (the documented limit of `flush_interval`).
    let store = durable_open(&store_path);
    assert_eq!(
        log_of(&store),
        written,
        "{tear:?}: the log up to the torn frame"
    );
    let after_cut = std::fs::read(&file).unwrap();
    assert!(
        after_cut[data_end as usize..].iter().all(|&b| b == 0),
        "{tear:?}: the torn frame's bytes were not zeroed"
    );

    // The next append's frame ends exactly where the forged frames began.
    written.push((last + 1, next.event_id, next.payload.clone()));
    store.append(ExpectedVersion::Any, vec![next]).unwrap();
    let now = frames(&store_path);
    let at = now.iter().position(|f| f.offset == data_end).unwrap();
    assert_eq!(
        now[at].end(),
        next_frame_end,
        "{tear:?}: the forgery is lined up"
    );
    assert_eq!(at, now.len() - 1, "{tear:?}: frames follow the last append");

    let check = |store: &Store, written: &[(u64, uuid::Uuid, Vec<u8>)], what: &str| {
        let log = log_of(store);
        for (position, id, _) in &log {
            assert!(
                !forged_ids.contains(id),
                "{tear:?} {what}: a forged event read at position {position}"
            );
        }
        assert_eq!(log, written, "{tear:?} {what}");
        let report = store.verify().unwrap();
        assert!(report.ok, "{tear:?} {what}: {report:?}");
    };
    check(&store, &written, "after the next append");
    // The moment a forged frame would be read: opening scans past the last frame.
    store.close().unwrap();
    let mut store = durable_open(&store_path);
    check(&store, &written, "reopened after the next append");
    for round in 1..=3_u64 {
        for k in 0..3 {
            let e = hit("b", round * 10 + k);
            written.push((store.last_position() + 1, e.event_id, e.payload.clone()));
            store.append(ExpectedVersion::Any, vec![e]).unwrap();
        }
        store.close().unwrap();
        store = durable_open(&store_path);
        check(&store, &written, &format!("reopen {round}"));
    }
    store.close().unwrap();
    let store = Store::open(store_config(&store_path, Durability::Buffered)).unwrap();
    check(&store, &written, "opened buffered");
    store.close().unwrap();
}

#[test]
fn forged_frames_behind_a_zeroed_frame_header_are_never_read() {
    forged_frames_never_read(
        "forged_frames_behind_a_zeroed_frame_header_are_never_read",
        Tear::ZeroHeader,
    );
}

#[test]
fn forged_frames_behind_a_truncated_frame_header_are_never_read() {
    forged_frames_never_read(
        "forged_frames_behind_a_truncated_frame_header_are_never_read",
        Tear::TruncateHeader,
    );
}
