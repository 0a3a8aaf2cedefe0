//! The segment log on a real directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::layout::{self, HEADER_LEN, SegmentIndex};
use super::read_only::ReadOnlySegmentLog;
use super::vfs::{Dir, FsDir};
use super::*;

const STORE: [u8; 16] = [7; 16];

fn options() -> SegmentOptions {
    SegmentOptions {
        segment_bytes: 4096,
        store_id: STORE,
        index_every_bytes: 256,
        zero_ahead_bytes: 0,
        must_hold: 0,
    }
}

fn open(path: &Path) -> (SegmentLog, Recovered) {
    try_open(path).unwrap()
}

fn try_open(path: &Path) -> Result<(SegmentLog, Recovered), SegmentError> {
    let dir: Arc<dyn Dir> = Arc::new(FsDir::create(path).unwrap());
    SegmentLog::open(dir, options())
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The record content of the record starting at `first`.
fn content(first: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (first.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8 + 1)
        .collect()
}

/// The records appended, as (first_position, event_count, bytes).
type Model = Vec<(u64, u32, Vec<u8>)>;

fn append_random(log: &SegmentLog, model: &mut Model, rng: &mut Rng, n: usize, max_len: u64) {
    let mut i = 0;
    while i < n {
        if rng.below(4) == 0 {
            // A group of up to 5 records in one call.
            let k = (1 + rng.below(5) as usize).min(n - i);
            let mut group = Vec::new();
            let mut next = log.last_position() + 1;
            for _ in 0..k {
                let count = 1 + rng.below(4) as u32;
                let len = 1 + rng.below(max_len) as usize;
                group.push((next, count, content(next, len)));
                next += u64::from(count);
            }
            let refs: Vec<(u64, u32, &[u8])> = group
                .iter()
                .map(|(f, c, r)| (*f, *c, r.as_slice()))
                .collect();
            log.append_all(&refs).unwrap();
            model.extend(group);
            i += k;
        } else {
            let first = log.last_position() + 1;
            let count = 1 + rng.below(4) as u32;
            let len = 1 + rng.below(max_len) as usize;
            let record = content(first, len);
            log.append(first, count, &record).unwrap();
            model.push((first, count, record));
            i += 1;
        }
    }
}

/// Checks every position through `record_at` and the whole log (and some suffixes) through
/// readers.
fn check_all(log: &SegmentLog, model: &Model) {
    let last = model.last().map_or(0, |(f, c, _)| f + u64::from(*c) - 1);
    assert_eq!(log.last_position(), last);
    for (first, count, record) in model {
        for p in *first..first + u64::from(*count) {
            assert_eq!(log.record_at(p).unwrap(), record.as_slice(), "position {p}");
        }
    }
    for start in [1, last / 3, last / 2, last] {
        if start == 0 || start > last {
            continue;
        }
        let skip = model
            .iter()
            .position(|(f, c, _)| f + u64::from(*c) > start)
            .unwrap();
        let frames: Vec<Frame> = log.reader(start).unwrap().map(|f| f.unwrap()).collect();
        assert_eq!(frames.len(), model.len() - skip, "reader from {start}");
        for (frame, (first, count, record)) in frames.iter().zip(&model[skip..]) {
            assert_eq!(frame.first_position, *first);
            assert_eq!(frame.event_count, *count);
            assert_eq!(frame.record, record.as_slice());
        }
    }
}

fn segment_path(path: &Path, first: u64) -> std::path::PathBuf {
    path.join(layout::segment_name(first))
}

/// (data_end before, data_end after) of the active segment around the last append.
fn active_data_end(log: &SegmentLog) -> (String, u64) {
    let table = log.shared.table();
    let seg = table.last().unwrap();
    (seg.name.clone(), seg.data_end)
}

fn flip(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    file.write_all_at(&b, offset).unwrap();
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

fn is_corrupted<T>(result: Result<T, SegmentError>) -> bool {
    matches!(result, Err(SegmentError::Corrupted { .. }))
}

#[test]
fn empty_log_opens_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.last_position, 0);
    assert!(rec.last_record.is_none());
    assert_eq!(log.segments(), vec![(layout::segment_name(1), 1)]);
    assert!(matches!(
        log.record_at(1),
        Err(SegmentError::NotFound { .. })
    ));
    assert_eq!(log.reader(1).unwrap().count(), 0);
    drop(log);
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.last_position, 0);
    assert_eq!(log.segments().len(), 1);
}

#[test]
fn round_trip_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = open(tmp.path());
    let mut model = Model::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    append_random(&log, &mut model, &mut rng, 400, 600);
    let segments = log.segments();
    assert!(segments.len() > 5, "{} segments", segments.len());
    check_all(&log, &model);
    assert_eq!(log.sync().unwrap(), log.last_position());
    assert_eq!(log.synced_position(), log.last_position());
    drop(log);

    // Every sealed segment has its index, trimmed to its data.
    for (name, first) in &segments[..segments.len() - 1] {
        let bytes = std::fs::read(tmp.path().join(layout::index_name(*first))).unwrap();
        let index = SegmentIndex::decode(&bytes).unwrap();
        let len = std::fs::metadata(tmp.path().join(name)).unwrap().len();
        assert_eq!(index.data_end, len);
        assert!(index.entries.len() > 1, "sparse entries every 256 bytes");
    }

    let (log, rec) = open(tmp.path());
    assert_eq!(rec.cut_bytes, 0);
    assert_eq!(rec.cut_frames, 0);
    assert_eq!(
        rec.last_position,
        model.last().map(|(f, c, _)| f + u64::from(*c) - 1).unwrap()
    );
    assert_eq!(rec.last_record.unwrap(), model.last().unwrap().2.as_slice());
    assert_eq!(log.segments(), segments);
    check_all(&log, &model);
    // And it goes on.
    append_random(&log, &mut model, &mut rng, 100, 600);
    check_all(&log, &model);
    drop(log);
    let (log, _) = open(tmp.path());
    check_all(&log, &model);
}

#[test]
fn record_bigger_than_a_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = open(tmp.path());
    let mut model = Model::new();
    for (len, count) in [
        (100, 1),
        (10_000, 3),
        (50, 2),
        (9_000, 1),
        (20_000, 1),
        (70, 1),
    ] {
        let first = log.last_position() + 1;
        let record = content(first, len);
        log.append(first, count, &record).unwrap();
        model.push((first, count, record));
    }
    check_all(&log, &model);
    drop(log);
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.cut_bytes, 0);
    check_all(&log, &model);
    // The big records sit in segments of their own.
    let segments = log.segments();
    assert_eq!(segments.len(), 6, "{segments:?}");
    let len = std::fs::metadata(tmp.path().join(&segments[1].0))
        .unwrap()
        .len();
    assert_eq!(len, HEADER_LEN + 20 + 10_000);

    // A group with a big record in the middle.
    let first = log.last_position() + 1;
    let a = content(first, 10);
    let b = content(first + 1, 5000);
    let c = content(first + 2, 10);
    log.append_all(&[(first, 1, &a), (first + 1, 1, &b), (first + 2, 1, &c)])
        .unwrap();
    model.extend([(first, 1, a), (first + 1, 1, b), (first + 2, 1, c)]);
    check_all(&log, &model);
}

#[test]
fn appends_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = open(tmp.path());
    log.append(1, 2, b"ab").unwrap();
    let refused = [
        log.append(1, 1, b"x"),
        log.append(4, 1, b"x"),
        log.append(3, 0, b"x"),
        log.append(3, 1, b""),
        log.append_all(&[(3, 1, b"x"), (5, 1, b"y")]),
    ];
    for r in refused {
        assert!(
            matches!(r, Err(SegmentError::InvalidAppend { .. })),
            "{r:?}"
        );
    }
    // A refused group wrote nothing.
    assert_eq!(log.last_position(), 2);
    log.append_all(&[]).unwrap();
    log.append(3, 1, b"c").unwrap();
    assert!(matches!(
        log.record_at(0),
        Err(SegmentError::NotFound { .. })
    ));
    assert!(matches!(
        log.record_at(4),
        Err(SegmentError::NotFound {
            position: 4,
            last_position: 3
        })
    ));
    assert!(matches!(log.reader(0), Err(SegmentError::NotFound { .. })));
    assert!(matches!(log.reader(5), Err(SegmentError::NotFound { .. })));
    assert_eq!(log.record_at(2).unwrap(), b"ab".as_slice());
    assert_eq!(log.reader(4).unwrap().count(), 0);
}

/// Appends `n` records and returns the active segment's data end before the last one.
fn append_then_mark_last(log: &SegmentLog, model: &mut Model, n: usize) -> (String, u64) {
    let mut rng = Rng(42);
    append_random(log, model, &mut rng, n, 300);
    // One more, alone in the active segment's tail, so we know where its frame starts.
    loop {
        let (name, before) = active_data_end(log);
        let first = log.last_position() + 1;
        let record = content(first, 200);
        log.append(first, 2, &record).unwrap();
        model.push((first, 2, record));
        let (name_after, _) = active_data_end(log);
        if name_after == name {
            return (name, before);
        }
    }
}

#[test]
fn torn_tail_is_cut_and_the_log_goes_on() {
    for damage in ["crc", "truncate", "half_header"] {
        let tmp = tempfile::tempdir().unwrap();
        let (log, _) = open(tmp.path());
        let mut model = Model::new();
        let (name, frame_at) = append_then_mark_last(&log, &mut model, 50);
        log.sync().unwrap();
        drop(log);
        let torn = model.pop().unwrap();
        let file = tmp.path().join(&name);
        match damage {
            "crc" => flip(&file, frame_at + 20 + 100),
            "truncate" => {
                let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                f.set_len(frame_at + 20 + 150).unwrap();
            }
            _ => write_at(&file, frame_at + 10, &[0; 190]),
        }
        let (log, rec) = open(tmp.path());
        let last = torn.0 - 1;
        assert_eq!(rec.last_position, last, "{damage}");
        assert_eq!(log.last_position(), last);
        assert!(rec.cut_bytes > 0, "{damage}");
        assert_eq!(rec.cut_frames, 1, "{damage}");
        assert_eq!(rec.last_record.unwrap(), model.last().unwrap().2.as_slice());
        assert!(matches!(
            log.record_at(torn.0),
            Err(SegmentError::NotFound { .. })
        ));
        // Re-allocated after a truncation.
        assert!(std::fs::metadata(&file).unwrap().len() >= 4096);
        check_all(&log, &model);
        // A new append (shorter than the torn frame) reads back, then and after a reopen.
        let record = content(torn.0, 30);
        log.append(torn.0, 1, &record).unwrap();
        model.push((torn.0, 1, record));
        check_all(&log, &model);
        drop(log);
        let (log, rec) = open(tmp.path());
        assert_eq!(rec.cut_bytes, 0, "{damage}");
        assert_eq!(rec.last_position, torn.0);
        check_all(&log, &model);
    }
}

#[test]
fn garbage_after_a_cut_never_resurfaces() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = open(tmp.path());
    let mut model = Model::new();
    let (name, frame_at) = append_then_mark_last(&log, &mut model, 20);
    drop(log);
    let torn = model.pop().unwrap();
    let file = tmp.path().join(&name);
    // The torn frame's crc fails; after where a 30-byte record at its position would end, plant
    // a valid frame for the position after it.
    flip(&file, frame_at + 4);
    let planted_at = frame_at + 20 + 30;
    let mut planted = Vec::new();
    layout::encode_frame(torn.0 + 1, 1, b"stale bytes", &mut planted).unwrap();
    write_at(&file, planted_at, &planted);

    let (log, rec) = open(tmp.path());
    assert_eq!(rec.last_position, torn.0 - 1);
    assert!(rec.cut_bytes >= 20 + 30 + planted.len() as u64);
    let record = content(torn.0, 30);
    log.append(torn.0, 1, &record).unwrap();
    model.push((torn.0, 1, record));
    drop(log);
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.cut_bytes, 0);
    assert_eq!(rec.last_position, torn.0);
    assert!(log.record_at(torn.0 + 1).is_err());
    assert_eq!(log.reader(torn.0).unwrap().count(), 1);
    check_all(&log, &model);
}

fn fill(path: &Path, n: usize) -> (Model, Vec<(String, u64)>) {
    let (log, _) = open(path);
    let mut model = Model::new();
    append_random(&log, &mut model, &mut Rng(7), n, 500);
    log.sync().unwrap();
    let segments = log.segments();
    assert!(segments.len() >= 4);
    (model, segments)
}

#[test]
fn missing_or_damaged_index_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, segments) = fill(tmp.path(), 200);
    let missing = tmp.path().join(layout::index_name(segments[1].1));
    let damaged = tmp.path().join(layout::index_name(segments[2].1));
    let original = std::fs::read(&missing).unwrap();
    std::fs::remove_file(&missing).unwrap();
    flip(&damaged, 20);
    // A leftover temporary index is removed.
    std::fs::write(tmp.path().join(layout::index_tmp_name(segments[3].1)), b"x").unwrap();
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.cut_bytes, 0);
    check_all(&log, &model);
    assert_eq!(std::fs::read(&missing).unwrap(), original);
    SegmentIndex::decode(&std::fs::read(&damaged).unwrap()).unwrap();
    assert!(
        !tmp.path()
            .join(layout::index_tmp_name(segments[3].1))
            .exists()
    );
}

#[test]
fn damaged_sealed_segment_is_corrupted() {
    // Without its index, the scan that rebuilds it finds the damage.
    let tmp = tempfile::tempdir().unwrap();
    let (_, segments) = fill(tmp.path(), 200);
    let (name, first) = &segments[1];
    std::fs::remove_file(tmp.path().join(layout::index_name(*first))).unwrap();
    flip(&tmp.path().join(name), HEADER_LEN + 20 + 3);
    assert!(is_corrupted(try_open(tmp.path())));

    // With its index, opening trusts it; reading the damaged frame finds it.
    let tmp = tempfile::tempdir().unwrap();
    let (model, segments) = fill(tmp.path(), 200);
    let (name, first) = &segments[1];
    flip(&tmp.path().join(name), HEADER_LEN + 20 + 3);
    let (log, _) = open(tmp.path());
    assert!(is_corrupted(log.record_at(*first)));
    let results: Vec<_> = log.reader(1).unwrap().collect();
    assert!(results.last().unwrap().is_err());
    let last = model.last().map(|(f, _, _)| *f).unwrap();
    assert!(log.record_at(last).is_ok());

    // A damaged sealed header.
    let tmp = tempfile::tempdir().unwrap();
    let (_, segments) = fill(tmp.path(), 200);
    flip(&tmp.path().join(&segments[1].0), 20);
    assert!(is_corrupted(try_open(tmp.path())));
}

#[test]
fn a_gap_is_corrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, segments) = fill(tmp.path(), 200);
    let (name, first) = &segments[2];
    std::fs::remove_file(tmp.path().join(name)).unwrap();
    std::fs::remove_file(tmp.path().join(layout::index_name(*first))).unwrap();
    assert!(is_corrupted(try_open(tmp.path())));
}

#[test]
fn a_segment_of_another_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fill(tmp.path(), 100);
    let dir: Arc<dyn Dir> = Arc::new(FsDir::create(tmp.path()).unwrap());
    let other = SegmentOptions {
        store_id: [8; 16],
        ..options()
    };
    assert!(is_corrupted(SegmentLog::open(dir, other)));
}

/// Appends until a roll just happened (the active segment is empty) and returns the model.
fn fill_until_rolled(path: &Path) -> (Model, Vec<(String, u64)>) {
    let (log, _) = open(path);
    let mut model = Model::new();
    let mut rng = Rng(99);
    loop {
        let before = log.segments().len();
        append_random(&log, &mut model, &mut rng, 1, 400);
        let (_, end) = active_data_end(&log);
        if log.segments().len() > before && before >= 3 && end > HEADER_LEN {
            // The new segment holds the record that did not fit: remove it from the file
            // so the active segment is empty, as right after a roll.
            let (name, _) = active_data_end(&log);
            let (first, _, _) = model.pop().unwrap();
            drop(log);
            write_at(&path.join(name), HEADER_LEN, &[0; 420]);
            assert!(segment_path(path, first).exists());
            let segments = open(path).0.segments();
            return (model, segments);
        }
    }
}

#[test]
fn crash_mid_roll_recovers() {
    // The next segment exists, its header never reached the disk.
    let tmp = tempfile::tempdir().unwrap();
    let (mut model, segments) = fill_until_rolled(tmp.path());
    let (active, active_first) = segments.last().unwrap().clone();
    write_at(&tmp.path().join(&active), 0, &[0; 64]);
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.last_position, active_first - 1);
    assert_eq!(rec.last_record.unwrap(), model.last().unwrap().2.as_slice());
    assert_eq!(log.segments(), segments);
    check_all(&log, &model);
    log.append(active_first, 1, b"after").unwrap();
    model.push((active_first, 1, b"after".to_vec()));
    drop(log);
    let (log, _) = open(tmp.path());
    check_all(&log, &model);

    // The next segment was never created: the sealed segment stays sealed, a fresh one follows.
    let tmp = tempfile::tempdir().unwrap();
    let (mut model, segments) = fill_until_rolled(tmp.path());
    let (active, active_first) = segments.last().unwrap().clone();
    std::fs::remove_file(tmp.path().join(&active)).unwrap();
    let sealed = &segments[segments.len() - 2];
    let sealed_len = std::fs::metadata(tmp.path().join(&sealed.0)).unwrap().len();
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.last_position, active_first - 1);
    assert_eq!(log.segments(), segments);
    log.append(active_first, 1, b"after").unwrap();
    model.push((active_first, 1, b"after".to_vec()));
    check_all(&log, &model);
    drop(log);
    assert_eq!(
        std::fs::metadata(tmp.path().join(&sealed.0)).unwrap().len(),
        sealed_len
    );

    // The crash came before the index was written: the trimmed segment is the active one again.
    let tmp = tempfile::tempdir().unwrap();
    let (mut model, segments) = fill_until_rolled(tmp.path());
    let (active, active_first) = segments.last().unwrap().clone();
    std::fs::remove_file(tmp.path().join(&active)).unwrap();
    let sealed = segments[segments.len() - 2].clone();
    std::fs::remove_file(tmp.path().join(layout::index_name(sealed.1))).unwrap();
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.last_position, active_first - 1);
    assert_eq!(rec.cut_bytes, 0);
    assert_eq!(log.segments(), &segments[..segments.len() - 1]);
    assert_eq!(
        std::fs::metadata(tmp.path().join(&sealed.0)).unwrap().len(),
        4096
    );
    log.append(active_first, 1, b"after").unwrap();
    model.push((active_first, 1, b"after".to_vec()));
    check_all(&log, &model);
}

#[test]
fn the_only_segment_with_a_torn_header() {
    // Nothing at all in it: a crash while the log was created.
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    write_at(&segment_path(tmp.path(), 1), 0, &[0; 64]);
    let (log, rec) = open(tmp.path());
    assert_eq!(rec.last_position, 0);
    log.append(1, 1, b"a").unwrap();
    drop(log);

    // It holds a frame: refused.
    write_at(&segment_path(tmp.path(), 1), 0, &[0; 64]);
    assert!(is_corrupted(try_open(tmp.path())));
}

#[test]
fn reader_follows_later_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = open(tmp.path());
    let mut reader = log.reader(1).unwrap();
    assert!(reader.next().is_none());
    let mut next = 1;
    for round in 0..40u64 {
        let len = 1 + (round * 97 % 700) as usize;
        log.append(next, 1, &content(next, len)).unwrap();
        if round % 3 == 0 {
            log.append(next + 1, 2, &content(next + 1, 10)).unwrap();
        }
        let frame = reader.next().unwrap().unwrap();
        assert_eq!(frame.first_position, next);
        assert_eq!(frame.record, content(next, len).as_slice());
        if round % 3 == 0 {
            let frame = reader.next().unwrap().unwrap();
            assert_eq!(frame.first_position, next + 1);
            next += 3;
        } else {
            next += 1;
        }
        assert!(reader.next().is_none());
    }
    assert!(log.segments().len() > 3);
    // A reader at the end.
    let mut at_end = log.reader(next).unwrap();
    assert!(at_end.next().is_none());
    log.append(next, 1, b"z").unwrap();
    assert_eq!(at_end.next().unwrap().unwrap().first_position, next);
}

#[test]
fn concurrent_readers_while_appending() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = open(tmp.path());
    let log = Arc::new(log);
    let done = Arc::new(AtomicBool::new(false));
    let total = 1500u64;
    let follower = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut reader = log.reader(1).unwrap();
            let mut expected = 1;
            while expected <= total {
                match reader.next() {
                    Some(frame) => {
                        let frame = frame.unwrap();
                        assert_eq!(frame.first_position, expected);
                        let len = 1 + (expected * 37 % 300) as usize;
                        assert_eq!(frame.record, content(expected, len).as_slice());
                        expected += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
        })
    };
    let pointer = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut rng = Rng(5);
            let mut reads = 0;
            while !done.load(Ordering::Acquire) {
                let last = log.last_position();
                if last == 0 {
                    continue;
                }
                let p = 1 + rng.below(last);
                let len = 1 + (p * 37 % 300) as usize;
                assert_eq!(log.record_at(p).unwrap(), content(p, len).as_slice());
                reads += 1;
            }
            reads
        })
    };
    for p in 1..=total {
        let len = 1 + (p * 37 % 300) as usize;
        log.append(p, 1, &content(p, len)).unwrap();
        if p % 100 == 0 {
            log.sync().unwrap();
        }
    }
    follower.join().unwrap();
    done.store(true, Ordering::Release);
    assert!(pointer.join().unwrap() > 0);
    assert!(log.segments().len() > 10);
}

#[test]
fn the_log_is_send_sync() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<SegmentLog>();
    check::<SegmentReader>();
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Truncating or overwriting the active segment anywhere after its header keeps exactly
        /// the frames that end before the damage, and the log goes on from there.
        #[test]
        fn any_damage_to_the_active_tail_recovers(
            lens in proptest::collection::vec(1usize..700, 1..40),
            frac in 0.0f64..1.0,
            truncate in any::<bool>(),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let (log, _) = open(tmp.path());
            let mut model = Model::new();
            // (segment name, frame end) of every record.
            let mut ends = Vec::new();
            for len in lens {
                let first = log.last_position() + 1;
                let record = content(first, len);
                log.append(first, 1, &record).unwrap();
                model.push((first, 1, record));
                ends.push(active_data_end(&log));
            }
            let (active, data_end) = active_data_end(&log);
            drop(log);
            let cut = HEADER_LEN + ((data_end - HEADER_LEN) as f64 * frac) as u64;
            let file = tmp.path().join(&active);
            if truncate {
                let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                f.set_len(cut).unwrap();
            } else if data_end > cut {
                write_at(&file, cut, &vec![0xab; (data_end - cut) as usize]);
            }
            let keep = ends
                .iter()
                .take_while(|(name, end)| *name != active || *end <= cut)
                .count();
            model.truncate(keep);
            let (log, rec) = open(tmp.path());
            prop_assert_eq!(rec.last_position, keep as u64);
            check_all(&log, &model);
            let next = keep as u64 + 1;
            log.append(next, 1, b"next").unwrap();
            model.push((next, 1, b"next".to_vec()));
            drop(log);
            let (log, rec) = open(tmp.path());
            prop_assert_eq!(rec.cut_bytes, 0);
            check_all(&log, &model);
        }
    }
}

// ---- The read-only log beside a live writer ----

fn open_read_only(path: &Path) -> ReadOnlySegmentLog {
    let dir: Arc<dyn Dir> = Arc::new(FsDir::existing(path).unwrap());
    SegmentLog::open_read_only(dir).unwrap()
}

/// Every file of the directory with its bytes.
fn snapshot_dir(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Checks the read-only log against the model: every record by position and through a reader.
fn check_read_only(log: &ReadOnlySegmentLog, model: &Model) {
    let last = model.last().map_or(0, |(f, c, _)| f + u64::from(*c) - 1);
    assert_eq!(log.last_position(), last);
    for (first, count, record) in model {
        for p in [*first, first + u64::from(*count) - 1] {
            assert_eq!(log.record_at(p).unwrap(), record.as_slice(), "position {p}");
        }
    }
    if last > 0 {
        let frames: Vec<Frame> = log.reader(1).unwrap().map(|f| f.unwrap()).collect();
        assert_eq!(frames.len(), model.len());
        for (frame, (first, count, record)) in frames.iter().zip(model) {
            assert_eq!((frame.first_position, frame.event_count), (*first, *count));
            assert_eq!(frame.record, record.as_slice());
        }
    }
}

#[test]
fn read_only_open_reads_sealed_and_active_segments_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    let mut model = Model::new();
    append_random(&log, &mut model, &mut Rng(3), 200, 300);
    assert!(log.segments().len() > 2);
    let before = snapshot_dir(dir.path());
    let ro = open_read_only(dir.path());
    check_read_only(&ro, &model);
    assert_eq!(ro.store_id(), Some(STORE));
    assert_eq!(ro.segments(), log.segments());
    assert_eq!(ro.refresh().unwrap(), log.last_position());
    // A missing and a damaged index are rebuilt in memory, not written.
    let sealed = log.segments();
    std::fs::remove_file(dir.path().join(layout::index_name(sealed[0].1))).unwrap();
    flip(&dir.path().join(layout::index_name(sealed[1].1)), 10);
    let before_damaged = snapshot_dir(dir.path());
    let ro = open_read_only(dir.path());
    check_read_only(&ro, &model);
    assert_eq!(snapshot_dir(dir.path()), before_damaged);
    drop(ro);
    assert_ne!(before, before_damaged);
}

#[test]
fn read_only_open_of_an_empty_directory_then_the_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let ro = open_read_only(dir.path());
    assert_eq!(ro.last_position(), 0);
    assert_eq!(ro.store_id(), None);
    assert!(ro.reader(1).is_err());
    let (log, _) = open(dir.path());
    assert_eq!(ro.refresh().unwrap(), 0);
    assert_eq!(ro.store_id(), Some(STORE));
    let mut model = Model::new();
    append_random(&log, &mut model, &mut Rng(5), 30, 200);
    ro.refresh().unwrap();
    check_read_only(&ro, &model);
}

#[test]
fn read_only_stops_at_a_half_written_frame_without_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    let mut model = Model::new();
    append_random(&log, &mut model, &mut Rng(9), 5, 50);
    let (name, end) = active_data_end(&log);
    let path = dir.path().join(&name);
    // A frame whose header is written and whose record is not complete yet.
    let first = log.last_position() + 1;
    let record = content(first, 100);
    let mut frame = Vec::new();
    layout::encode_frame(first, 2, &record, &mut frame).unwrap();
    write_at(&path, end, &frame[..60]);
    let before = snapshot_dir(dir.path());
    let ro = open_read_only(dir.path());
    check_read_only(&ro, &model);
    assert_eq!(
        snapshot_dir(dir.path()),
        before,
        "nothing cut, nothing zeroed"
    );
    // The rest of the frame lands: the next refresh reads it.
    write_at(&path, end + 60, &frame[60..]);
    assert_eq!(ro.refresh().unwrap(), first + 1);
    model.push((first, 2, record));
    check_read_only(&ro, &model);
}

#[test]
fn read_only_follows_a_writer_appending_on_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    let log = Arc::new(log);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut model = Model::new();
            let mut rng = Rng(77);
            for _ in 0..300 {
                append_random(&log, &mut model, &mut rng, 1, 400);
                if rng.below(10) == 0 {
                    log.sync().unwrap();
                }
            }
            done.store(true, Ordering::Release);
            model
        })
    };
    let ro = open_read_only(dir.path());
    let mut reader: Option<SegmentReader> = None;
    let mut frames: Vec<Frame> = Vec::new();
    let mut refreshes = 0u64;
    loop {
        let finished = done.load(Ordering::Acquire);
        let last = ro.refresh().unwrap();
        refreshes += 1;
        if reader.is_none() && last > 0 {
            reader = Some(ro.reader(1).unwrap());
        }
        if let Some(reader) = reader.as_mut() {
            for frame in reader.by_ref() {
                frames.push(frame.unwrap());
            }
        }
        // A random point read below the end must be a record the writer wrote in full.
        if last > 0 {
            let p = 1 + (refreshes * 7919) % last;
            let record = ro.record_at(p).unwrap();
            let frame = frames
                .iter()
                .find(|f| f.first_position <= p && p < f.first_position + u64::from(f.event_count))
                .unwrap();
            assert_eq!(record, frame.record);
        }
        if finished {
            break;
        }
    }
    let model = writer.join().unwrap();
    assert_eq!(ro.refresh().unwrap(), log.last_position());
    if let Some(reader) = reader.as_mut() {
        for frame in reader.by_ref() {
            frames.push(frame.unwrap());
        }
    }
    assert!(
        log.segments().len() > 3,
        "the writer rolled across segments"
    );
    assert_eq!(ro.segments(), log.segments());
    assert_eq!(frames.len(), model.len());
    for (frame, (first, count, record)) in frames.iter().zip(&model) {
        assert_eq!((frame.first_position, frame.event_count), (*first, *count));
        assert_eq!(frame.record, record.as_slice());
    }
    check_read_only(&ro, &model);
}

#[test]
fn zero_ahead_overwrites_only_what_lies_past_the_data() {
    for ahead in [0, 1024] {
        let tmp = tempfile::tempdir().unwrap();
        let dir: Arc<dyn Dir> = Arc::new(FsDir::create(tmp.path()).unwrap());
        let options = SegmentOptions {
            segment_bytes: 16 << 10,
            zero_ahead_bytes: ahead,
            ..options()
        };
        let (log, _) = SegmentLog::open(dir, options).unwrap();
        let mut model = Model::new();
        log.append(1, 1, &content(1, 50)).unwrap();
        model.push((1, 1, content(1, 50)));
        let (name, first_end) = active_data_end(&log);
        let file = tmp.path().join(&name);
        // Junk past the first zeroed run (as a torn write of an earlier life could leave).
        let junk_at = first_end + 1024;
        write_at(&file, junk_at, &[0xab; 1024]);
        while active_data_end(&log).1 < junk_at {
            let first = log.last_position() + 1;
            log.append(first, 1, &content(first, 100)).unwrap();
            model.push((first, 1, content(first, 100)));
        }
        check_all(&log, &model);
        let (_, end) = active_data_end(&log);
        let bytes = std::fs::read(&file).unwrap();
        let past_data = &bytes[end as usize..(junk_at + 1024) as usize];
        if ahead == 0 {
            assert!(
                past_data.contains(&0xab),
                "without zero-ahead the junk stays"
            );
        } else {
            assert!(
                past_data.iter().all(|&b| b == 0),
                "the run past the data is zeros"
            );
        }
    }
}
