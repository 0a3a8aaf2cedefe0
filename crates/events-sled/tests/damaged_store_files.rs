//! Damaged store files: sled's data file (`data/db`) truncated and bit-flipped; sled's blob files
//! (`data/blobs/*`, where sled keeps large values: here a large snapshot), its `conf` and its
//! snapshot files; and the log's segment files (`log/seg-….evl`, sealed ones with a `seg-….idx`),
//! truncated at many offsets, bit-flipped across the header, the frames and the preallocated zero
//! tail, deleted, their index files deleted or damaged — for a store closed cleanly and for one
//! whose durable appends were acknowledged to a child process that then aborted without closing.
//!
//! Each damaged copy of a store must end in one of:
//!
//! - **refused**: `Store::open` returns a typed error — and leaves every segment file as it was
//!   (a refused open must not cut what a repair could still read);
//! - **reported**: it opens, and `verify()` (or a read) reports the damage;
//! - **intact**: it opens, verifies, and holds exactly what was written (the damage hit bytes that
//!   no longer matter: the zero tail, a rebuildable index file, sled's free space);
//! - **side data reverted**: every event intact, but a snapshot or consumer position older or gone
//!   (sled holds only data derived from the log or side data: a lost snapshot costs load time, a
//!   reverted consumer re-delivers events it had acknowledged);
//! - **cut after the last flush**: it opens, verifies, and holds a prefix of the log that reaches
//!   the position the last flush synced (`M synced`). Damage in the active segment past that
//!   position looks exactly like a torn tail and is cut: a known, documented limit for durable
//!   appends acknowledged after the last flush (`flush_interval`). It is accepted only for damage
//!   in the active segment at or past the end of the synced frame.
//!
//! Every case also names the outcomes the damage allows (e.g. a bit flip in the zero tail must be
//! intact, one in a sealed segment's frames reported or refused); anything else fails the test,
//! and so does a panic or **silent loss**: opening, verifying, and holding fewer (or other) events
//! than were acknowledged. The outcome counts are printed (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use events_sled::fuzz::{self, FrameAt};
use events_sled::{Durability, ExpectedVersion, Store, StoreConfig};

const CHILD: &str = "EVENTLOG_DAMAGED_SEGMENTS_CHILD";
/// Small segments, so that the log has several sealed ones.
const SEGMENT_BYTES: u64 = 64 << 10;
/// Sealed segments the segment-file templates hold.
const SEALED: usize = 3;

const REFUSED: &str = "refused";
const REPORTED: &str = "reported";
const INTACT: &str = "intact";
const SIDE_DATA: &str = "side data reverted (events intact)";
const CUT: &str = "cut after the last flush";
const SILENT_LOSS: &str = "SILENT LOSS";
const PANIC: &str = "PANIC";
/// A refused open that changed a segment file.
const REFUSED_CHANGED: &str = "REFUSED AFTER CHANGING THE LOG";

/// Outcomes any damage to sled's files may have: the log is not in sled.
const SLED_DAMAGE: &[&str] = &[REFUSED, REPORTED, INTACT, SIDE_DATA];

/// What a store holds: events (position, id, payload), snapshots, consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    events: Vec<(u64, uuid::Uuid, Vec<u8>)>,
    snapshots: Vec<(u64, Vec<u8>)>,
    consumers: Vec<(String, u64)>,
}

fn store_config(path: &Path, durability: Durability) -> StoreConfig {
    StoreConfig::new(path)
        .cache_capacity(8 << 20)
        .durability(durability)
        .index_flush_events(500)
        .log_segment_bytes(SEGMENT_BYTES)
}

/// The aggregates whose snapshots [`content`] reads.
const SNAPSHOTTED: [&str; 6] = ["s0", "s1", "s2", "s3", "s4", "big"];

/// The content, or why it could not be read (a read error reports damage).
fn content(store: &Store) -> Result<Content, String> {
    let events = store
        .read_log(1, None)
        .map(|e| {
            e.map(|e| (e.position, e.metadata.event_id, e.payload))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut snapshots = Vec::new();
    for id in SNAPSHOTTED {
        for s in store.snapshots("cache", id).map_err(|e| e.to_string())? {
            snapshots.push((s.version, s.state));
        }
    }
    let consumers = store.consumers().map_err(|e| e.to_string())?;
    Ok(Content {
        events,
        snapshots,
        consumers,
    })
}

fn sealed_count(store: &Path) -> usize {
    std::fs::read_dir(store.join("log"))
        .map(|entries| {
            entries
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".idx")
                })
                .count()
        })
        .unwrap_or(0)
}

/// A store with small appends and 6 batches of 100 events, snapshots and a consumer; with
/// `big_snapshot`, also a snapshot of that many bytes (more than a quarter of sled's 1 MiB
/// segment: sled keeps it as a blob file) and a consumer state as large. Closed cleanly.
fn build(path: &Path, big_snapshot: usize) -> Content {
    let store = Store::open(store_config(path, Durability::Buffered)).unwrap();
    let mut n = 0;
    for round in 0..6 {
        for i in 0..150 {
            n += 1;
            store
                .append(ExpectedVersion::Any, vec![hit(&format!("s{}", i % 5), n)])
                .unwrap();
        }
        let batch: Vec<_> = (0..100)
            .map(|_| {
                n += 1;
                hit(&format!("big{round}"), n)
            })
            .collect();
        store.append(ExpectedVersion::Any, batch).unwrap();
        store.flush().unwrap();
    }
    for i in 0..5 {
        let id = format!("s{i}");
        let version = store.stream_version("cache", &id).unwrap();
        store
            .save_snapshot("cache", &id, version, 1, id.as_bytes())
            .unwrap();
    }
    let mut consumer_state = b"state".to_vec();
    if big_snapshot > 0 {
        n += 1;
        store
            .append(ExpectedVersion::Any, vec![hit("big", n)])
            .unwrap();
        let state: Vec<u8> = (0..big_snapshot).map(|i| (i % 251) as u8).collect();
        store.save_snapshot("cache", "big", 1, 1, &state).unwrap();
        consumer_state = state;
    }
    store
        .commit_consumer("reader", 700, &consumer_state, true)
        .unwrap();
    let content = content(&store).unwrap();
    store.close().unwrap();
    content
}

/// A store whose log has `SEALED` sealed segments and about 100 appends in the active one, with
/// snapshots and a consumer, closed cleanly (so the last flush synced every event).
fn build_segments(path: &Path) -> Content {
    let store = Store::open(store_config(path, Durability::Buffered)).unwrap();
    let mut n = 0;
    let mut after_sealed = None;
    while after_sealed.is_none_or(|extra| extra > 0) {
        n += 1;
        let events = (0..n % 3 + 1)
            .map(|k| hit(&format!("s{}", n % 5), n * 10 + k))
            .collect();
        store.append(ExpectedVersion::Any, events).unwrap();
        // Wait until written: a segment is sealed by the write that overflows it.
        store.chain_head().unwrap();
        after_sealed = match after_sealed {
            None if sealed_count(path) >= SEALED => Some(100),
            Some(extra) => Some(extra - 1),
            None => None,
        };
        assert!(
            n < 100_000,
            "the log never reached {SEALED} sealed segments"
        );
    }
    for i in 0..5 {
        let id = format!("s{i}");
        let version = store.stream_version("cache", &id).unwrap();
        store
            .save_snapshot("cache", &id, version, 1, id.as_bytes())
            .unwrap();
    }
    store
        .commit_consumer("reader", store.last_position() / 2, b"state", true)
        .unwrap();
    let content = content(&store).unwrap();
    store.close().unwrap();
    content
}

/// What a damaged copy turned out to be.
#[derive(Debug)]
enum Outcome {
    Refused,
    /// Refused, but a segment file is not what it was before the open.
    RefusedChanged(String),
    Reported,
    Intact,
    SideDataReverted(String),
    /// A prefix of the events that reaches the synced position: the tail past the last flush cut.
    CutAfterLastFlush(String),
    SilentLoss(String),
    Panicked(String),
}

/// The segment files of a store (name, bytes).
fn segment_bytes(store: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(store.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "evl"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Opens the damaged copy at `path` and classifies it against what was acknowledged
/// (`original`); `synced` is the position the last flush synced.
fn classify(path: &Path, durability: Durability, original: &Content, synced: u64) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let before = segment_bytes(path);
        let store = match Store::open(store_config(path, durability)) {
            Ok(store) => store,
            Err(e) => {
                let after = segment_bytes(path);
                if after == before {
                    return Outcome::Refused;
                }
                let changed: Vec<_> = before
                    .keys()
                    .chain(after.keys())
                    .filter(|name| before.get(*name) != after.get(*name))
                    .collect();
                return Outcome::RefusedChanged(format!("{e}; changed: {changed:?}"));
            }
        };
        let outcome = match store.verify() {
            Err(_) => Outcome::Reported,
            Ok(report) if !report.ok => Outcome::Reported,
            Ok(_) => match content(&store) {
                Err(_) => Outcome::Reported,
                Ok(found) if &found == original => Outcome::Intact,
                Ok(found) if found.events == original.events => Outcome::SideDataReverted(format!(
                    "{} snapshots of {}, consumers {:?} (was {:?})",
                    found.snapshots.len(),
                    original.snapshots.len(),
                    found.consumers,
                    original.consumers
                )),
                Ok(found)
                    if found.events.len() < original.events.len()
                        && original.events.starts_with(&found.events)
                        && found.events.last().map_or(0, |e| e.0) >= synced =>
                {
                    Outcome::CutAfterLastFlush(format!(
                        "{} events of {} (synced: {synced})",
                        found.events.len(),
                        original.events.len()
                    ))
                }
                Ok(found) => Outcome::SilentLoss(format!(
                    "{} events of {} (synced: {synced}), {} snapshots of {}, consumers {:?} (was {:?})",
                    found.events.len(),
                    original.events.len(),
                    found.snapshots.len(),
                    original.snapshots.len(),
                    found.consumers,
                    original.consumers
                )),
            },
        };
        let _ = store.close();
        outcome
    }));
    result.unwrap_or_else(|panic| {
        Outcome::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        )
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn files_under(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A damage applied to one file of a fresh copy.
#[derive(Debug, Clone, Copy)]
enum Damage {
    TruncateTo(u64),
    FlipBit(u64, u8),
    Delete,
}

fn apply(file: &Path, damage: Damage) {
    match damage {
        Damage::TruncateTo(len) => {
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .unwrap()
                .set_len(len)
                .unwrap();
        }
        Damage::FlipBit(at, bit) => {
            let mut bytes = std::fs::read(file).unwrap();
            bytes[at as usize] ^= 1 << bit;
            std::fs::write(file, bytes).unwrap();
        }
        Damage::Delete => std::fs::remove_file(file).unwrap(),
    }
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A random bit of a random byte in `from..to`.
fn flip_in(seed: &mut u64, from: u64, to: u64) -> Damage {
    let at = from + rng(seed) % (to - from).max(1);
    Damage::FlipBit(at, (rng(seed) % 8) as u8)
}

/// Truncations at 16 points (and 1 byte short), and `flips` single-bit flips at random offsets.
fn damages(len: u64, flips: usize, seed: u64) -> Vec<Damage> {
    let mut out: Vec<Damage> = (0..16).map(|k| Damage::TruncateTo(len * k / 16)).collect();
    out.push(Damage::TruncateTo(len.saturating_sub(1)));
    let mut seed = seed | 1;
    for _ in 0..flips {
        out.push(flip_in(&mut seed, 0, len));
    }
    out
}

fn describe(damage: Damage) -> String {
    match damage {
        Damage::TruncateTo(len) => format!("truncated to {len} bytes"),
        Damage::FlipBit(at, bit) => format!("bit {bit} of byte {at} flipped"),
        Damage::Delete => "deleted".into(),
    }
}

/// One damaged copy to make: which file, what damage, what part of the file it hits, and the
/// outcomes it allows.
struct Case {
    file: PathBuf,
    damage: Damage,
    region: String,
    allowed: &'static [&'static str],
}

fn case(file: &Path, damage: Damage, region: impl Into<String>, allowed: &'static [&str]) -> Case {
    Case {
        file: file.to_path_buf(),
        damage,
        region: region.into(),
        allowed,
    }
}

/// The outcomes of a run, by kind, and the cases whose outcome their damage does not allow.
struct Outcomes {
    by_kind: BTreeMap<&'static str, Vec<String>>,
    failures: Vec<String>,
}

impl Outcomes {
    fn count(&self, kind: &str) -> usize {
        self.by_kind.get(kind).map_or(0, Vec::len)
    }

    fn assert_ok(&self) {
        assert!(
            self.failures.is_empty(),
            "{} cases with an outcome their damage does not allow:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Runs every case against a fresh copy of `template`; prints the outcomes.
fn torture(
    template: &Path,
    durability: Durability,
    original: &Content,
    synced: u64,
    cases: Vec<Case>,
) -> Outcomes {
    let scratch = tempfile::tempdir().unwrap();
    let mut by_kind: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let copy = scratch.path().join(format!("case-{i}"));
        copy_dir(template, &copy);
        apply(&copy.join(&case.file), case.damage);
        let what = format!(
            "{} {} ({})",
            case.file.display(),
            describe(case.damage),
            case.region
        );
        let (kind, detail) = match classify(&copy, durability, original, synced) {
            Outcome::Refused => (REFUSED, what),
            Outcome::RefusedChanged(why) => (REFUSED_CHANGED, format!("{what}: {why}")),
            Outcome::Reported => (REPORTED, what),
            Outcome::Intact => (INTACT, what),
            Outcome::SideDataReverted(found) => (SIDE_DATA, format!("{what}: {found}")),
            Outcome::CutAfterLastFlush(found) => (CUT, format!("{what}: {found}")),
            Outcome::SilentLoss(found) => (SILENT_LOSS, format!("{what}: {found}")),
            Outcome::Panicked(message) => (PANIC, format!("{what}: {message}")),
        };
        if !case.allowed.contains(&kind) {
            failures.push(format!("{kind} (allowed: {:?}): {detail}", case.allowed));
        }
        by_kind.entry(kind).or_default().push(detail);
        let _ = std::fs::remove_dir_all(&copy);
    }
    for (kind, cases) in &by_kind {
        eprintln!("{kind}: {}", cases.len());
        if *kind == CUT {
            for case in cases {
                eprintln!("    {case}");
            }
        }
    }
    for failure in &failures {
        eprintln!("FAILED {failure}");
    }
    Outcomes { by_kind, failures }
}

fn relative_files(template: &Path, dir: &str, prefix: &str) -> Vec<PathBuf> {
    files_under(&template.join(dir), prefix)
        .into_iter()
        .map(|p| p.strip_prefix(template).unwrap().to_path_buf())
        .collect()
}

fn data_file_cases() -> Outcomes {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("store");
    let original = build(&template, 0);
    let db = PathBuf::from("data/db");
    let len = std::fs::metadata(template.join(&db)).unwrap().len();
    let cases = damages(len, 30, 0xDB)
        .into_iter()
        .map(|d| case(&db, d, "sled's data file", SLED_DAMAGE))
        .collect();
    torture(&template, Durability::Buffered, &original, u64::MAX, cases)
}

fn blob_and_other_file_cases() -> Outcomes {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("store");
    let original = build(&template, 400 << 10);
    let mut cases = Vec::new();
    let blobs = relative_files(&template, "data/blobs", "");
    assert!(!blobs.is_empty(), "the template has no blob file");
    let mut seed = 0xB10B_u64;
    for blob in blobs.iter().take(4) {
        let len = std::fs::metadata(template.join(blob)).unwrap().len();
        for damage in [
            Damage::TruncateTo(len / 2),
            Damage::TruncateTo(0),
            flip_in(&mut seed, 0, len),
            Damage::Delete,
        ] {
            cases.push(case(blob, damage, "a sled blob", SLED_DAMAGE));
        }
    }
    for file in relative_files(&template, "data", "conf")
        .into_iter()
        .chain(relative_files(&template, "data", "snap."))
    {
        let len = std::fs::metadata(template.join(&file)).unwrap().len();
        for damage in [
            Damage::TruncateTo(len / 2),
            Damage::FlipBit(len / 3, 0),
            Damage::Delete,
        ] {
            cases.push(case(&file, damage, "sled's conf or snapshot", SLED_DAMAGE));
        }
    }
    torture(&template, Durability::Buffered, &original, u64::MAX, cases)
}

/// The position sled noted as synced by the last flush (`M synced`), read from a copy of the
/// store's sled directory.
fn synced_position(store: &Path) -> u64 {
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("data");
    copy_dir(&store.join("data"), &copy);
    let db = sled::Config::new()
        .path(&copy)
        .segment_size(1 << 20)
        .open()
        .unwrap();
    let value = db
        .open_tree("log")
        .unwrap()
        .get(fuzz::SYNCED_KEY)
        .unwrap()
        .expect("no synced position");
    fuzz::decode_synced(&value).unwrap().0
}

/// Damages to every segment file and index file of `template`, each with the outcomes it
/// allows. `synced` is the position the last flush synced; `sealed_frames` the outcomes a
/// damaged frame of a sealed segment allows.
fn segment_cases(
    template: &Path,
    synced: u64,
    sealed_frames: &'static [&'static str],
) -> Vec<Case> {
    let segments = relative_files(template, "log", "seg-")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "evl"))
        .collect::<Vec<_>>();
    assert_eq!(segments.len(), SEALED + 1, "{segments:?}");
    let header = fuzz::SEGMENT_HEADER_LEN;
    let mut seed = 0x5E6_u64;
    let mut cases = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let bytes = std::fs::read(template.join(segment)).unwrap();
        let len = bytes.len() as u64;
        let frames: Vec<FrameAt> = fuzz::segment_frames(&bytes);
        assert!(frames.len() >= 3, "{}: {frames:?}", segment.display());
        let data_end = frames.last().unwrap().end();
        let active = i == SEALED;
        // Frame boundaries and the start of a frame's record, where truncation is cleanest.
        let boundaries: Vec<u64> = [1, frames.len() / 2, frames.len() - 1]
            .into_iter()
            .flat_map(|k| [frames[k].offset, frames[k].offset + fuzz::FRAME_HEADER_LEN])
            .collect();
        // Flips in the frames' header fields (len, crc, first_position, event_count) and records.
        let mut frame_flips = Vec::new();
        for (k, field) in [
            (0, 0),
            (frames.len() / 2, 4),
            (1, 8),
            (frames.len() - 1, 16),
        ] {
            frame_flips.push(Damage::FlipBit(frames[k].offset + field + 3, 0));
        }
        for _ in 0..12 {
            frame_flips.push(flip_in(&mut seed, header, data_end));
        }
        let header_flips: Vec<Damage> = (0..4).map(|_| flip_in(&mut seed, 0, header)).collect();
        let mut truncations: Vec<u64> = (0..16).map(|k| len * k / 16).collect();
        truncations.extend([32, header, data_end - 1]);
        truncations.extend(&boundaries);

        if !active {
            // Sealed: trimmed to its data, indexed, never scanned on open unless its index is
            // missing or damaged (then strictly: any bad frame is refused).
            assert_eq!(data_end, len, "a sealed segment ends with its data");
            for at in truncations {
                let region = if at < header { "header" } else { "frames" };
                cases.push(case(
                    segment,
                    Damage::TruncateTo(at),
                    format!("sealed segment {i}, {region}"),
                    &[REFUSED],
                ));
            }
            for damage in header_flips {
                cases.push(case(
                    segment,
                    damage,
                    format!("sealed segment {i}, header"),
                    &[REFUSED],
                ));
            }
            for damage in frame_flips {
                cases.push(case(
                    segment,
                    damage,
                    format!("sealed segment {i}, frames"),
                    sealed_frames,
                ));
            }
            // A gap, or (the first segment) a log that would start after position 1.
            cases.push(case(
                segment,
                Damage::Delete,
                format!("sealed segment {i}"),
                &[REFUSED],
            ));
            // Its index: rebuilt from the (intact) segment.
            let index = segment.with_extension("idx");
            let index_len = std::fs::metadata(template.join(&index)).unwrap().len();
            for damage in [
                Damage::Delete,
                Damage::TruncateTo(index_len / 2),
                Damage::TruncateTo(0),
                flip_in(&mut seed, 0, 40),
                flip_in(&mut seed, 40, index_len),
            ] {
                cases.push(case(
                    &index,
                    damage,
                    format!("index of sealed segment {i}"),
                    &[INTACT],
                ));
            }
            continue;
        }

        // The active segment: scanned on open, cut at the first bad frame. Cutting is allowed
        // only for damage at or past the end of the frame holding the synced position.
        let synced_end = frames
            .iter()
            .find(|f| f.first_position <= synced && synced <= f.last_position())
            .map_or(header, FrameAt::end);
        let classify_at = |at: u64| -> (String, &'static [&'static str]) {
            if at >= data_end {
                (format!("active segment at {at}, the zero tail"), &[INTACT])
            } else if frames[0].first_position > synced {
                // Nothing in this segment was synced by a flush: any of it may be cut.
                (
                    format!("active segment at {at}, all past the synced position"),
                    &[REFUSED, CUT],
                )
            } else if at >= synced_end {
                (
                    format!("active segment at {at}, past the synced frame"),
                    &[CUT],
                )
            } else {
                (
                    format!("active segment at {at}, before the synced frame's end"),
                    &[REFUSED],
                )
            }
        };
        truncations.extend([synced_end, synced_end.saturating_sub(1), data_end]);
        truncations.sort_unstable();
        truncations.dedup();
        for at in truncations {
            // A header cut short and no frame: the segment is removed as a crash mid-roll.
            let (region, allowed) = classify_at(if at < header { 0 } else { at });
            cases.push(case(segment, Damage::TruncateTo(at), region, allowed));
        }
        for damage in header_flips {
            cases.push(case(segment, damage, "active segment, header", &[REFUSED]));
        }
        frame_flips.extend([
            Damage::FlipBit(synced_end.saturating_sub(1), 2),
            Damage::FlipBit(synced_end, 0),
            Damage::FlipBit(data_end - 1, 1),
        ]);
        for damage in frame_flips {
            let Damage::FlipBit(at, _) = damage else {
                unreachable!()
            };
            if at >= len {
                // Past a segment a clean close cut to its data.
                continue;
            }
            let (region, allowed) = classify_at(at);
            cases.push(case(segment, damage, region, allowed));
        }
        // A clean close cuts the active segment to its data: a zero tail exists only after a
        // crash (the preallocated part).
        if data_end < len {
            for _ in 0..6 {
                cases.push(case(
                    segment,
                    flip_in(&mut seed, data_end, len),
                    "active segment, the zero tail",
                    &[INTACT],
                ));
            }
            cases.push(case(
                segment,
                Damage::FlipBit(data_end, 0),
                "active segment, the zero tail's first byte",
                &[INTACT],
            ));
        }
        let (_, allowed) = classify_at(0);
        cases.push(case(segment, Damage::Delete, "the active segment", allowed));
    }
    cases
}

/// A store closed cleanly: its last flush synced every event, so no damage may cut any.
fn closed_store_segment_cases() -> Outcomes {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("store");
    let original = build_segments(&template);
    let last = original.events.last().unwrap().0;
    let synced = synced_position(&template);
    assert_eq!(synced, last, "closing syncs every event");
    // Closing persisted the indexes: nothing is replayed on open, so a damaged sealed frame
    // is found by verify or a read.
    let cases = segment_cases(&template, synced, &[REPORTED]);
    torture(&template, Durability::Buffered, &original, synced, cases)
}

/// The child: appends durably (the log's `fdatasync` acknowledges each append; sled is flushed
/// only by an explicit flush, with a 1 h flush interval) until the log has `SEALED` sealed
/// segments, appends 40 more, flushes (the synced position sled notes), appends 60 more, writes
/// the ids it was acknowledged to `<store>.acked`, and aborts (no destructor runs).
fn abort_child(path: &Path) -> ! {
    let store = Store::open(
        store_config(path, Durability::Durable).flush_interval(Duration::from_secs(3600)),
    )
    .unwrap();
    let mut acked = String::new();
    let mut n = 0_u64;
    let mut append = |n: &mut u64| {
        *n += 1;
        let events: Vec<_> = (0..*n % 3 + 1)
            .map(|k| hit(&format!("s{}", *n % 5), *n * 10 + k))
            .collect();
        let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
        store.append(ExpectedVersion::Any, events).unwrap();
        for id in ids {
            acked.push_str(&format!("{id}\n"));
        }
    };
    while sealed_count(path) < SEALED {
        append(&mut n);
        assert!(
            n < 100_000,
            "the log never reached {SEALED} sealed segments"
        );
    }
    for _ in 0..40 {
        append(&mut n);
    }
    store.flush().unwrap();
    for _ in 0..60 {
        append(&mut n);
    }
    std::fs::write(path.with_extension("acked"), acked).unwrap();
    std::process::abort();
}

/// Damages the segment files of a store whose durable appends were acknowledged to a child that
/// aborted: those after its last flush are durable in the log only.
fn aborted_store_segment_cases(test_name: &str) -> Outcomes {
    if let Ok(path) = std::env::var(CHILD) {
        abort_child(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("store");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            test_name,
            "--exact",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD, &template)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");
    let acked: Vec<uuid::Uuid> = std::fs::read_to_string(template.with_extension("acked"))
        .expect("the child wrote no acknowledged ids")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    // What the child acknowledged: all of it in the log, read by an undamaged open.
    let healthy = dir.path().join("healthy");
    copy_dir(&template, &healthy);
    let store = Store::open(store_config(&healthy, Durability::Durable)).unwrap();
    let original = content(&store).unwrap();
    assert!(store.verify().unwrap().ok);
    store.close().unwrap();
    let found: Vec<uuid::Uuid> = original.events.iter().map(|e| e.1).collect();
    assert_eq!(
        found, acked,
        "an undamaged open holds every acknowledged append"
    );
    let synced = synced_position(&template);
    assert!(
        synced > 0 && synced < acked.len() as u64,
        "the last flush synced {synced} of {} events",
        acked.len()
    );
    // Indexes were persisted every 500 events at most: opening replays the events after the
    // watermark, which may start in a sealed segment and find its damaged frame (refused).
    let cases = segment_cases(&template, synced, &[REFUSED, REPORTED]);
    torture(&template, Durability::Durable, &original, synced, cases)
}

#[test]
fn a_damaged_data_file_never_panics() {
    let outcomes = data_file_cases();
    assert_eq!(
        outcomes.count(PANIC),
        0,
        "{:#?}",
        outcomes.by_kind.get(PANIC)
    );
}

#[test]
fn a_damaged_data_file_never_loses_events_silently() {
    data_file_cases().assert_ok();
}

#[test]
fn damaged_blobs_conf_and_snapshot_files_never_panic() {
    let outcomes = blob_and_other_file_cases();
    assert_eq!(
        outcomes.count(PANIC),
        0,
        "{:#?}",
        outcomes.by_kind.get(PANIC)
    );
}

#[test]
fn damaged_blobs_conf_and_snapshot_files_never_lose_events_silently() {
    blob_and_other_file_cases().assert_ok();
}

#[test]
fn damaged_segment_files_of_a_closed_store_are_refused_reported_or_harmless() {
    let outcomes = closed_store_segment_cases();
    outcomes.assert_ok();
    assert_eq!(outcomes.count(CUT), 0);
    for kind in [REFUSED, REPORTED, INTACT] {
        assert!(outcomes.count(kind) > 0, "no case was {kind}");
    }
}

#[test]
fn damaged_segment_files_never_lose_acknowledged_appends_silently_after_an_abort() {
    let outcomes = aborted_store_segment_cases(
        "damaged_segment_files_never_lose_acknowledged_appends_silently_after_an_abort",
    );
    outcomes.assert_ok();
    for kind in [REFUSED, INTACT, CUT] {
        assert!(outcomes.count(kind) > 0, "no case was {kind}");
    }
}
