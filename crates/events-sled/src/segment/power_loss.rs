//! Power loss, simulated: thousands of cuts across appends, syncs, seals and recovery itself,
//! each followed by a recovery that must keep every synced record, show no record that was never
//! appended at its position, and continue the log without reusing a kept position.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use super::sim::{Rng, SimDir};
use super::{SegmentLog, SegmentOptions};

/// A record the test appended: its bytes begin with its first position, so a record read back
/// at the wrong place cannot pass for the right one. With `aligned`, its size and event count
/// follow from its position alone: a record appended again at a position a cut took lands at the
/// same offset as the one it replaces, so a stale frame left behind the new ones would continue
/// the positions exactly (only the tail's zeroing keeps it from being read back).
fn record_shape(rng: &mut Rng, first_position: u64, aligned: bool) -> (u32, Vec<u8>) {
    let (count, len) = if aligned {
        let mut shape = Rng::new(first_position);
        // Mostly frames within one sector: a stale one then survives a cut whole more often.
        let max = if shape.chance(10) { 3000 } else { 100 };
        (1 + shape.below(4) as u32, 8 + shape.below(max) as usize)
    } else {
        let max = if rng.chance(10) { 3000 } else { 300 };
        (1 + rng.below(4) as u32, 8 + rng.below(max) as usize)
    };
    let mut bytes = first_position.to_be_bytes().to_vec();
    while bytes.len() < len {
        // Now and then a run of zeros, like a preallocated region, inside a record.
        let byte = if rng.chance(5) { 0 } else { rng.next() as u8 };
        bytes.push(byte);
    }
    (count, bytes)
}

fn options() -> SegmentOptions {
    SegmentOptions {
        segment_bytes: 4096,
        store_id: [7; 16],
        index_every_bytes: 512,
        // As a durable store writes: zeros ahead of the data, torn and kept like any write.
        zero_ahead_bytes: 1024,
        must_hold: 0,
    }
}

/// What the cuts did, summed over a run: a test whose cuts never tear anything proves nothing.
#[derive(Debug, Default)]
struct Stats {
    /// Recoveries that cut a torn tail.
    torn_tails: u64,
    /// Recoveries that lost appended, unsynced records.
    lost_unsynced: u64,
    /// Budgeted opens that the cut interrupted.
    recoveries_cut: u64,
    /// Recoveries that found more segments than one.
    multi_segment: u64,
}

/// What the test knows of the log: every record appended (and not cut since), and how far the
/// log was synced.
#[derive(Default)]
struct Model {
    /// first position -> (event count, bytes).
    records: BTreeMap<u64, (u32, Vec<u8>)>,
    synced: u64,
}

impl Model {
    fn last_position(&self) -> u64 {
        self.records
            .iter()
            .next_back()
            .map_or(0, |(first, (count, _))| first + u64::from(*count) - 1)
    }

    /// After a recovery ending at `last`: every synced position survived, and the records after
    /// `last` are gone.
    fn recovered(&mut self, last: u64, seed: u64, stats: &mut Stats) {
        if last < self.last_position() {
            stats.lost_unsynced += 1;
        }
        assert!(
            last >= self.synced,
            "seed {seed}: recovery ended at {last}, but {} was synced",
            self.synced
        );
        assert!(
            last <= self.last_position(),
            "seed {seed}: recovery ended at {last}, past everything appended ({})",
            self.last_position()
        );
        self.records.retain(|first, _| *first <= last);
        assert_eq!(
            self.last_position(),
            last,
            "seed {seed}: recovery ended inside a record"
        );
        self.synced = last;
    }
}

/// Every position reads back as the record the model holds there, both ways.
fn check_reads(log: &SegmentLog, model: &Model, seed: u64) {
    for (first, (count, bytes)) in &model.records {
        for position in *first..first + u64::from(*count) {
            let read = log
                .record_at(position)
                .unwrap_or_else(|e| panic!("seed {seed}: position {position}: {e}"));
            assert_eq!(&read[..], &bytes[..], "seed {seed}: record at {position}");
        }
    }
    let mut expected = model.records.iter();
    if model.records.is_empty() {
        return;
    }
    for frame in log.reader(1).unwrap() {
        let frame = frame.unwrap_or_else(|e| panic!("seed {seed}: reader: {e}"));
        let (first, (count, bytes)) = expected.next().expect("reader read past the model");
        assert_eq!(
            (frame.first_position, frame.event_count, &frame.record[..]),
            (*first, *count, &bytes[..]),
            "seed {seed}: reader"
        );
    }
    assert!(
        expected.next().is_none(),
        "seed {seed}: reader stopped early"
    );
}

/// Appends and syncs until the budget runs out (or `steps` are done).
fn work(log: &SegmentLog, model: &mut Model, rng: &mut Rng, steps: u64, aligned: bool) {
    for _ in 0..steps {
        if rng.chance(25) {
            let before = model.last_position();
            match log.sync() {
                Ok(synced) => {
                    assert!(synced >= before);
                    model.synced = before;
                }
                Err(_) => return,
            }
            continue;
        }
        let first = model.last_position() + 1;
        let (count, bytes) = record_shape(rng, first, aligned);
        // Inserted before the call: an append cut short may still reach the disk in part.
        model.records.insert(first, (count, bytes.clone()));
        if log.append(first, count, &bytes).is_err() {
            return;
        }
    }
}

fn run(seed: u64, crashes: u32, stats: &mut Stats) {
    let mut rng = Rng::new(seed);
    let mut dir = SimDir::new();
    let mut model = Model::default();
    let aligned = seed.is_multiple_of(2);
    for _ in 0..crashes {
        // A budget makes the crash land anywhere: in an append, a sync, a seal, or the recovery.
        dir.set_budget(Some(rng.below(400)));
        match SegmentLog::open(Arc::new(dir.clone()), options()) {
            Ok((log, recovered)) => {
                model.recovered(recovered.last_position, seed, stats);
                work(&log, &mut model, &mut rng, 200, aligned);
            }
            Err(_) => {
                // The crash hit the recovery itself: what it had done must not cost synced data.
                stats.recoveries_cut += 1;
            }
        }
        dir = dir.crash(&mut rng);
        dir.set_budget(None);
        // Without a budget, recovery must always succeed, and it alone cannot lose data.
        let (log, recovered) = SegmentLog::open(Arc::new(dir.clone()), options())
            .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
        model.recovered(recovered.last_position, seed, stats);
        if recovered.cut_bytes > 0 {
            stats.torn_tails += 1;
        }
        if log.segments().len() > 1 {
            stats.multi_segment += 1;
        }
        check_reads(&log, &model, seed);
        drop(log);
        dir = dir.crash(&mut rng);
    }
}

#[test]
fn every_synced_record_survives_any_power_loss() {
    let seeds: u64 = std::env::var("POWER_LOSS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    // Each seed crashes 5 times: 2 000 cuts by default.
    let mut stats = Stats::default();
    for seed in 0..seeds {
        run(seed, 5, &mut stats);
    }
    eprintln!("{seeds} seeds: {stats:?}");
    // The cuts must reach what the test claims to cover.
    assert!(stats.torn_tails > seeds / 4, "{stats:?}");
    assert!(stats.lost_unsynced > seeds / 4, "{stats:?}");
    assert!(stats.recoveries_cut > seeds / 10, "{stats:?}");
    assert!(stats.multi_segment > seeds / 4, "{stats:?}");
}
