//! The summary printed when the daemon ends: human text, or one JSON object with `--json`.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::replication::ReplicationSummary;

/// What one run of the daemon did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Always true: no model was called.
    pub simulated: bool,
    /// Events this run appended.
    pub events: u64,
    /// `events / elapsed_secs`.
    pub events_per_sec: f64,
    /// The store's last log position at the end (all runs).
    pub last_position: u64,
    /// The position up to which every event is on disk at the end.
    pub durable_position: u64,
    /// Seconds from open to close.
    pub elapsed_secs: f64,
    /// Pipelines this run finished (completed + failed + interrupted).
    pub pipelines: u64,
    /// Pipelines that completed.
    pub pipelines_completed: u64,
    /// Pipelines that failed (simulated archive errors).
    pub pipelines_failed: u64,
    /// Pipelines cut short by the stop.
    pub pipelines_interrupted: u64,
    /// The first pipeline number this run used.
    pub first_pipeline: u64,
    /// The last pipeline number this run started (`first_pipeline - 1` if none).
    pub last_pipeline: u64,
    /// Append calls (one per step; a step may span several aggregates).
    pub appends: u64,
    /// The simulation's seed.
    pub seed: u64,
    /// `--writer-id`.
    pub writer_id: Option<u16>,
    /// `durable` or `buffered`.
    pub durability: String,
    /// Worker threads.
    pub workers: u16,
    /// Why the run ended.
    pub stopped_by: String,
    /// Checkpoints taken by this run.
    pub checkpoints: u64,
    /// The last checkpoint taken by this run.
    pub last_checkpoint: Option<PathBuf>,
    /// The store directory.
    pub store: PathBuf,
    /// With `--replicate`: how far the stream got.
    pub replication: Option<ReplicationSummary>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "omni-writer (simulated generation: no language model was called)"
        )?;
        writeln!(f, "  store             {}", self.store.display())?;
        writeln!(f, "  stopped by        {}", self.stopped_by)?;
        writeln!(
            f,
            "  events            {} in {:.2} s ({:.0} events/s, {} appends)",
            self.events, self.elapsed_secs, self.events_per_sec, self.appends
        )?;
        writeln!(
            f,
            "  pipelines         {} ({} completed, {} failed, {} interrupted), numbers {}..={}",
            self.pipelines,
            self.pipelines_completed,
            self.pipelines_failed,
            self.pipelines_interrupted,
            self.first_pipeline,
            self.last_pipeline
        )?;
        writeln!(f, "  last position     {}", self.last_position)?;
        writeln!(
            f,
            "  durable position  {} ({})",
            self.durable_position, self.durability
        )?;
        match self.writer_id {
            Some(writer) => writeln!(
                f,
                "  seed              {} ({} workers, writer id {writer})",
                self.seed, self.workers
            )?,
            None => writeln!(
                f,
                "  seed              {} ({} workers)",
                self.seed, self.workers
            )?,
        }
        if let Some(r) = &self.replication {
            writeln!(
                f,
                "  replication       {} at {}: replicated position {} ({}), {} published, \
                 {} publish errors, {} disconnects, {} reconnects",
                r.stream,
                r.url,
                r.replicated_position,
                if r.caught_up {
                    "caught up".to_string()
                } else {
                    format!("{} events behind", r.lag_events)
                },
                r.published,
                r.publish_errors,
                r.disconnects,
                r.reconnects
            )?;
            if let Some(error) = &r.error {
                writeln!(f, "  replication error {error}")?;
            }
        }
        match &self.last_checkpoint {
            Some(path) => writeln!(
                f,
                "  checkpoints       {} (last: {})",
                self.checkpoints,
                path.display()
            ),
            None => writeln!(f, "  checkpoints       none taken"),
        }
    }
}
