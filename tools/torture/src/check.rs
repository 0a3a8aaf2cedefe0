//! The checks every round runs on the reopened store, whoever wrote it: a gap-free log, the hash
//! chain and indexes (`verify`), every index read against the log itself, and every checkpoint
//! file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use eventlog::{
    Durability, EventLog, EventLogConfig, Position, StreamId, StreamRead, import_checkpoint,
    verify_checkpoint,
};
use uuid::Uuid;

use crate::rng::Rng;

/// The log as read back, kept small: ids and aggregates by position.
#[derive(Debug, Default)]
pub struct Observed {
    /// Event ids; `ids[p - 1]` is position `p`.
    pub ids: Vec<Uuid>,
    /// Aggregate of each event (index into `aggregates`).
    pub aggregate_of: Vec<u32>,
    /// Every aggregate: (type, id).
    pub aggregates: Vec<(String, String)>,
    /// Positions of each aggregate's events, in version order (version `v` is `[v - 1]`).
    pub positions: Vec<Vec<u64>>,
    index: HashMap<(String, String), u32>,
}

impl Observed {
    /// The log's last position.
    pub fn last(&self) -> u64 {
        self.ids.len() as u64
    }

    /// The aggregate's index, if it has events.
    pub fn aggregate(&self, aggregate_type: &str, aggregate_id: &str) -> Option<usize> {
        self.index
            .get(&(aggregate_type.to_string(), aggregate_id.to_string()))
            .map(|&i| i as usize)
    }

    fn intern(&mut self, aggregate_type: &str, aggregate_id: &str) -> u32 {
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.aggregates.len() as u32;
        self.aggregates.push(key.clone());
        self.positions.push(Vec::new());
        self.index.insert(key, i);
        i
    }
}

/// Reads the whole log and checks it against itself and every index. `since`: the log's end
/// when the round began; aggregates written after it are all read back through the stream
/// index, up to `sample` others at random.
///
/// # Errors
///
/// Naming the first check that fails.
pub fn check_store(
    log: &EventLog,
    since: u64,
    sample: usize,
    rng: &mut Rng,
) -> anyhow::Result<Observed> {
    let last = log.last_position()?.get();
    let mut observed = Observed::default();
    for (i, event) in log.read_log(Position(1), None)?.enumerate() {
        let event = event.with_context(|| format!("reading the log at position {}", i + 1))?;
        let position = i as u64 + 1;
        ensure!(
            event.position == position,
            "the log has a gap: position {} where {position} was due",
            event.position
        );
        let meta = &event.metadata;
        let aggregate = observed.intern(&meta.aggregate_type, &meta.aggregate_id);
        let versions = &mut observed.positions[aggregate as usize];
        ensure!(
            meta.version == versions.len() as u64 + 1,
            "position {position}: {}/{} at version {} after {} events",
            meta.aggregate_type,
            meta.aggregate_id,
            meta.version,
            versions.len()
        );
        versions.push(position);
        observed.ids.push(meta.event_id);
        observed.aggregate_of.push(aggregate);
    }
    ensure!(
        observed.last() == last,
        "the log reads {} events but its last position is {last}",
        observed.last()
    );

    // The hash chain, versions, index pages and snapshots, as the store checks them.
    let report = log.admin().verify()?;
    ensure!(
        report.ok,
        "verify found {} problems: {:?}",
        report.issue_count,
        report.issues
    );
    ensure!(
        report.events == last && report.last_position == last,
        "verify checked {} events up to {}, the log holds {last}",
        report.events,
        report.last_position
    );

    // The aggregates listing.
    let listed = log.aggregates(None)?;
    ensure!(
        listed.len() == observed.aggregates.len(),
        "aggregates() lists {} aggregates, the log holds {}",
        listed.len(),
        observed.aggregates.len()
    );
    for info in &listed {
        let Some(i) = observed.aggregate(&info.aggregate_type, &info.aggregate_id) else {
            bail!(
                "aggregates() lists {}/{}, which has no event",
                info.aggregate_type,
                info.aggregate_id
            );
        };
        ensure!(
            info.version == observed.positions[i].len() as u64,
            "aggregates() says {}/{} is at version {}, the log holds {} events of it",
            info.aggregate_type,
            info.aggregate_id,
            info.version,
            observed.positions[i].len()
        );
    }

    // The stream index: every aggregate written this round, and a sample of the others.
    let mut to_check: Vec<usize> = (0..observed.aggregates.len())
        .filter(|&i| observed.positions[i].last().is_some_and(|&p| p > since))
        .collect();
    let others = observed.aggregates.len().saturating_sub(to_check.len());
    for _ in 0..sample.min(others) {
        to_check.push(rng.below(observed.aggregates.len() as u64) as usize);
    }
    for i in to_check {
        check_stream(log, &observed, i, rng)?;
    }

    // The type index: every type, whole, and from a random position.
    let mut by_type: HashMap<&str, Vec<u64>> = HashMap::new();
    for (i, &aggregate) in observed.aggregate_of.iter().enumerate() {
        by_type
            .entry(observed.aggregates[aggregate as usize].0.as_str())
            .or_default()
            .push(i as u64 + 1);
    }
    for (aggregate_type, positions) in &by_type {
        let read: Vec<u64> = log
            .read_aggregate_type(aggregate_type, Position(1), None)?
            .map(|e| e.map(|e| e.position))
            .collect::<Result<_, _>>()?;
        ensure!(
            &read == positions,
            "the type index of `{aggregate_type}` holds {} positions, the log {}",
            read.len(),
            positions.len()
        );
        let from = 1 + rng.below(last.max(1));
        let read: Vec<u64> = log
            .read_aggregate_type(aggregate_type, Position(from), Some(5))?
            .map(|e| e.map(|e| e.position))
            .collect::<Result<_, _>>()?;
        let want: Vec<u64> = positions
            .iter()
            .copied()
            .filter(|&p| p >= from)
            .take(5)
            .collect();
        ensure!(
            read == want,
            "the type index of `{aggregate_type}` from {from}: {read:?}, the log {want:?}"
        );
    }
    Ok(observed)
}

fn check_stream(
    log: &EventLog,
    observed: &Observed,
    i: usize,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    let (aggregate_type, aggregate_id) = &observed.aggregates[i];
    let positions = &observed.positions[i];
    let want: Vec<Uuid> = positions
        .iter()
        .map(|&p| observed.ids[(p - 1) as usize])
        .collect();
    let stream = StreamId::new(aggregate_type.as_str(), aggregate_id.as_str());
    let version = log.stream_version(&stream)?;
    ensure!(
        version == want.len() as u64,
        "{aggregate_type}/{aggregate_id}: stream_version {version}, the log holds {} events",
        want.len()
    );
    let read: Vec<(u64, u64, Uuid)> = log
        .read_stream(&stream, StreamRead::forwards())?
        .map(|e| e.map(|e| (e.metadata.version, e.position, e.metadata.event_id)))
        .collect::<Result<_, _>>()?;
    let expected: Vec<(u64, u64, Uuid)> = positions
        .iter()
        .enumerate()
        .map(|(v, &p)| (v as u64 + 1, p, observed.ids[(p - 1) as usize]))
        .collect();
    ensure!(
        read == expected,
        "{aggregate_type}/{aggregate_id}: the stream index reads {} events that differ from the \
         log's {}",
        read.len(),
        expected.len()
    );
    let top = 1 + rng.below(want.len() as u64);
    let back: Vec<Uuid> = log
        .read_stream(&stream, StreamRead::backwards().from(top).limit(3))?
        .map(|e| e.map(|e| e.metadata.event_id))
        .collect::<Result<_, _>>()?;
    let want_back: Vec<Uuid> = want[..top as usize].iter().rev().take(3).copied().collect();
    ensure!(
        back == want_back,
        "{aggregate_type}/{aggregate_id}: reading backwards from version {top} disagrees with the log"
    );
    Ok(())
}

/// What [`check_checkpoints`] found.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckpointCheck {
    /// Checkpoint files verified whole.
    pub verified: u64,
    /// Checkpoints imported and compared event by event with the store.
    pub compared: u64,
    /// Temporary files of exports cut by the kill (deleted here).
    pub partial: u64,
}

/// Checks every checkpoint in `<store>/checkpoints`: each file under a checkpoint name verifies
/// whole; none covers more than the surviving log (a checkpoint covers only what is flushed, in
/// both modes, see docs/design.md); the newest one not compared
/// before is imported and holds the store's events, position by position. Deletes temporary
/// files of cut exports and keeps the newest `keep` checkpoints.
///
/// # Errors
///
/// Naming the checkpoint that fails.
pub fn check_checkpoints(
    store: &Path,
    observed: &Observed,
    compared: &mut HashSet<PathBuf>,
    keep: usize,
) -> anyhow::Result<CheckpointCheck> {
    let dir = store.join("checkpoints");
    let mut check = CheckpointCheck::default();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(check);
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".partial") {
            check.partial += 1;
            std::fs::remove_file(&path)?;
        } else if name.ends_with(".evlc") {
            let manifest = verify_checkpoint(&path)
                .with_context(|| format!("checkpoint {} after the kill", path.display()))?;
            check.verified += 1;
            ensure!(
                manifest.last_position <= observed.last(),
                "checkpoint {} covers position {}, beyond the log's end at {} after the kill",
                path.display(),
                manifest.last_position,
                observed.last()
            );
            files.push((manifest.created_at, manifest.last_position, path));
        }
    }
    files.sort();
    if let Some((_, position, path)) = files.last()
        && !compared.contains(path)
    {
        compare(path, *position, observed)?;
        compared.insert(path.clone());
        check.compared += 1;
    }
    let excess = files.len().saturating_sub(keep);
    for (_, _, path) in files.drain(..excess) {
        std::fs::remove_file(&path)?;
        compared.remove(&path);
    }
    Ok(check)
}

/// Imports `file` and checks it holds the store's events (as far as both reach).
fn compare(file: &Path, position: u64, observed: &Observed) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let into = scratch.path().join("imported");
    import_checkpoint(file, &into, None)
        .with_context(|| format!("importing {}", file.display()))?;
    let log = EventLog::open(
        EventLogConfig::new(&into)
            .registry(omni_domain::registry())
            .durability(Durability::Buffered)
            .snapshot_every(None)
            .store(|s| s.cache_capacity(16 << 20)),
    )?;
    ensure!(
        log.last_position()? == position,
        "{} imports up to {}, its manifest says {position}",
        file.display(),
        log.last_position()?
    );
    let upto = position.min(observed.last());
    for (i, event) in log.read_log(Position(1), Some(upto as usize))?.enumerate() {
        let event = event?;
        ensure!(
            event.metadata.event_id == observed.ids[i],
            "checkpoint {} holds another event than the store at position {}",
            file.display(),
            i + 1
        );
    }
    for (name, consumer) in log.admin().consumers()? {
        ensure!(
            consumer <= position,
            "checkpoint {}: consumer {name} at {consumer}, beyond its log",
            file.display()
        );
    }
    log.close()?;
    Ok(())
}
