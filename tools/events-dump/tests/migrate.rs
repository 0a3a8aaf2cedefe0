//! `events-dump migrate`: a format-1 store (an older build's, the log in sled) is copied into a
//! new store; a missing source is explained, with the documented exit status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{arg, dump, stderr, stdout};
use eventlog::{EventContext, NewEvent};
use events_sled::fuzz::{
    consumer_value, encode_chained_record, log_key, record_hash, with_raw_sled,
};

/// A format-1 store at `dir/old`: two records of `cache` events (3 and 2 events, aggregates
/// `x` and `y`), and a consumer at position 4. Returns its path and its chain head, hex.
fn format_1_store(dir: &Path) -> (PathBuf, String) {
    let store = dir.join("old");
    let mut prev = [0_u8; 32];
    with_raw_sled(&store, |db| {
        let log = db.open_tree("log")?;
        log.insert(b"Mformat", &1_u32.to_be_bytes())?;
        let mut versions = [0_u64; 2];
        for (first, ids) in [(1_u64, &["x", "y", "x"][..]), (4, &["y", "x"][..])] {
            let events: Vec<_> = ids
                .iter()
                .zip(first..)
                .map(|(id, position)| {
                    let version = &mut versions[usize::from(*id == "y")];
                    *version += 1;
                    let payload = format!("{{\"n\":{position}}}").into_bytes();
                    NewEvent::from_parts("noted", "cache", *id, 1, payload, EventContext::new("t"))
                        .into_recorded(*version, position)
                })
                .collect();
            let record = encode_chained_record(&prev, &events);
            prev = record_hash(&record);
            log.insert(log_key(first), record)?;
        }
        db.open_tree("consumers")?
            .insert("reader", consumer_value(4, b""))?;
        Ok(())
    })
    .unwrap();
    (store, prev.iter().map(|b| format!("{b:02x}")).collect())
}

/// Needs the real segment layer (the new store's log is written to segment files).
#[test]
fn migrate_copies_a_format_1_store_into_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (old, chain_head) = format_1_store(dir.path());
    let new = dir.path().join("new");
    let output = dump(&["migrate", "--from", arg(&old), "--to", arg(&new)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "5 events",
        "1..=5",
        chain_head.as_str(),
        "0 snapshots",
        "1 consumers",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // The new store opens and holds the events.
    let output = dump(&["--store", arg(&new), "--json", "log"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 5);
    // The old one is still refused, with the command that migrates it.
    let output = dump(&["--store", arg(&old), "info"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("events-dump migrate"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn migrate_explains_a_missing_or_unfit_source() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new");
    let missing = dir.path().join("nothing-here");
    let output = dump(&["migrate", "--from", arg(&missing), "--to", arg(&new)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists() && !new.exists(), "nothing may be created");

    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let output = dump(&["migrate", "--from", arg(&plain), "--to", arg(&new)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not a format-1 store"),
        "{}",
        stderr(&output)
    );
    assert!(!new.exists(), "nothing may be created");

    let output = dump(&["migrate", "--help"]);
    assert!(output.status.success());
    assert!(stdout(&output).contains("--from"), "{}", stdout(&output));
}
