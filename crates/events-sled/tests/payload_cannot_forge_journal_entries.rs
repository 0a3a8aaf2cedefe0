//! Event payloads cannot forge durability-journal entries (issue 10, finding 9).
//!
//! The journal files are reused in place: an epoch's entries are written from the front, and the
//! bytes of older, longer entries stay behind them. Opening scans those stale bytes for intact
//! entries of the current epoch (damage, if one follows a torn entry). Payloads land in the journal
//! verbatim, so a payload holding well-formed entries for the epochs to come must not make a later
//! open fail: entries are bound to a per-epoch value no payload can know in advance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_core::{EventContext, NewEvent};
use events_sled::{Durability, ExpectedVersion, Store};
use tempfile::TempDir;

/// The epochs a forging payload covers: far more than the test's opens and flushes reach.
const FORGED_EPOCHS: u64 = 4096;

/// Journal entries the way the journal wrote them before the fix (`len u32 BE · crc32 u32 BE ·
/// epoch u64 BE · (record_len u32 BE · record)*`, the CRC over the bytes after it): one intact,
/// empty entry for each of the epochs 1..=`FORGED_EPOCHS`, back to back.
fn forged_entries() -> Vec<u8> {
    let mut bytes = Vec::new();
    for epoch in 1..=FORGED_EPOCHS {
        let body = epoch.to_be_bytes();
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        bytes.extend_from_slice(&body);
    }
    bytes
}

fn forging_event(id: &str) -> NewEvent {
    NewEvent::from_parts(
        "forged",
        "cache",
        id,
        1,
        forged_entries(),
        EventContext::new("test"),
    )
}

fn durable_open(dir: &TempDir) -> Store {
    Store::open(config(dir).durability(Durability::Durable))
        .unwrap_or_else(|e| panic!("a store whose payloads hold journal-like bytes must open: {e}"))
}

/// (event id, payload) of every event in the log, in order.
fn log_of(store: &Store) -> Vec<(uuid::Uuid, Vec<u8>)> {
    store
        .read_log(1, None)
        .map(|e| {
            let e = e.unwrap();
            (e.metadata.event_id, e.payload)
        })
        .collect()
}

#[test]
fn payloads_holding_journal_entries_of_later_epochs_never_fail_an_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    let store = durable_open(&dir);
    // A large forging append first, so that later (small) entries leave its bytes behind them
    // in the reused file; then small appends.
    for event in [forging_event("f-1"), hit("a", 1), hit("a", 2)] {
        written.push((event.event_id, event.payload.clone()));
        store.append(ExpectedVersion::Any, vec![event]).unwrap();
    }
    store.flush().unwrap();
    let forging = forging_event("f-2");
    written.push((forging.event_id, forging.payload.clone()));
    store.append(ExpectedVersion::Any, vec![forging]).unwrap();
    store.close().unwrap();
    for round in 0..6 {
        let store = durable_open(&dir);
        assert_eq!(log_of(&store), written, "round {round}: every event intact");
        let event = hit("b", round);
        written.push((event.event_id, event.payload.clone()));
        store.append(ExpectedVersion::Any, vec![event]).unwrap();
        store.flush().unwrap();
        store.close().unwrap();
    }
    // Buffered mode replays the same journal on open.
    let store = open(&dir);
    assert_eq!(log_of(&store), written);
    store.close().unwrap();
}
