//! The worker threads: each takes the next pipeline number, runs the pipeline through the
//! store, and counts what it wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context as _;
use eventlog::{AppendBatch, EventLog};
use omni_domain::PIPELINE;

use crate::acklog::{AckLog, AppendIds};
use crate::control::Control;
use crate::emitter::Writer;
use crate::http::metrics::AppendMetrics;
use crate::rate::RateLimiter;
use crate::sim::{PipelineEnd, Sink, run_pipeline};

/// What the workers wrote, read by the progress reporter and the summary.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events appended by this run.
    pub events: AtomicU64,
    /// Append calls made by this run.
    pub appends: AtomicU64,
    /// Pipelines that ended with `pipeline_completed`.
    pub completed: AtomicU64,
    /// Pipelines that ended with a simulated `pipeline_failed`.
    pub failed: AtomicU64,
    /// Pipelines cut short by a stop.
    pub interrupted: AtomicU64,
    /// The highest pipeline number started.
    pub last_pipeline: AtomicU64,
    /// The highest log position an append of this run returned.
    pub last_position: AtomicU64,
}

impl Counters {
    /// Pipelines finished, whichever way.
    pub fn pipelines(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.interrupted.load(Ordering::Relaxed)
    }
}

/// The next pipeline number of `writer` in this store: one past the highest of its pipeline
/// aggregates (`pipeline-N`, or `pipeline-wK-N`), so a restart never reuses an aggregate id (a
/// pipeline's `pipeline_started` is its first append).
///
/// # Errors
///
/// When the store cannot be read.
pub fn next_pipeline_number(log: &EventLog, writer: Writer) -> anyhow::Result<u64> {
    let highest = log
        .aggregates(Some(PIPELINE))
        .context("reading the pipelines already in the store")?
        .iter()
        .filter_map(|a| writer.parse_pipeline_id(&a.aggregate_id))
        .max()
        .unwrap_or(0);
    Ok(highest + 1)
}

/// What the workers share.
#[derive(Debug)]
pub struct Shared {
    /// The store.
    pub log: EventLog,
    /// Stop flag.
    pub control: Arc<Control>,
    /// `--rate`.
    pub limiter: Option<RateLimiter>,
    /// What was written.
    pub counters: Arc<Counters>,
    /// The simulation's seed.
    pub seed: u64,
    /// `--writer-id`: whose ids the pipelines carry.
    pub writer: Writer,
    /// The next pipeline number to hand out.
    pub next: AtomicU64,
    /// One past the last pipeline number to run (`--pipelines`).
    pub end: Option<u64>,
    /// `--ack-log`.
    pub ack_log: Option<AckLog>,
    /// With `--http`: the appends' counters and latency, for `/metrics`.
    pub append_metrics: Option<Arc<AppendMetrics>>,
}

impl Shared {
    fn take_number(&self) -> Option<u64> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        match self.end {
            Some(end) if number >= end => None,
            _ => Some(number),
        }
    }
}

/// Appends a pipeline's steps to the store, paced by `--rate`.
struct StoreSink<'a> {
    shared: &'a Shared,
}

impl Sink for StoreSink<'_> {
    fn append(&mut self, mut step: Vec<AppendBatch>) -> anyhow::Result<()> {
        let events: usize = step.iter().map(|b| b.events.len()).sum();
        if let Some(limiter) = &self.shared.limiter {
            limiter.acquire(
                u32::try_from(events).unwrap_or(u32::MAX),
                &self.shared.control,
            );
        }
        let ack = match &self.shared.ack_log {
            Some(log) => {
                let ids = AppendIds::of(&step);
                log.begin(&ids)?;
                Some((log, ids))
            }
            None => None,
        };
        let types = self
            .shared
            .append_metrics
            .as_ref()
            .map(|_| AppendMetrics::types_of(step.iter().flat_map(|b| &b.events)));
        let started = Instant::now();
        let (first_position, last_position) = if step.len() == 1 {
            let batch = step.remove(0);
            let result = self
                .shared
                .log
                .append(&batch.stream, batch.expected, batch.events)?;
            (result.first_position, result.last_position)
        } else {
            let results = self.shared.log.append_batches(step)?;
            (
                results.first().map_or(0, |r| r.first_position),
                results.last().map_or(0, |r| r.last_position),
            )
        };
        if let (Some(metrics), Some(types)) = (&self.shared.append_metrics, types) {
            metrics.appended(types, started.elapsed());
        }
        if let Some((log, ids)) = ack {
            log.ack(&ids, first_position, last_position)?;
        }
        let counters = &self.shared.counters;
        counters.events.fetch_add(events as u64, Ordering::Relaxed);
        counters.appends.fetch_add(1, Ordering::Relaxed);
        counters
            .last_position
            .fetch_max(last_position, Ordering::Relaxed);
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.shared.control.stopping()
    }
}

/// One worker: pipelines until there are no more numbers or a stop is requested.
fn work(shared: &Shared) -> anyhow::Result<()> {
    while !shared.control.stopping() {
        let Some(number) = shared.take_number() else {
            break;
        };
        let counters = &shared.counters;
        counters.last_pipeline.fetch_max(number, Ordering::Relaxed);
        let outcome = run_pipeline(
            shared.seed,
            shared.writer,
            number,
            &mut StoreSink { shared },
        )
        .with_context(|| format!("pipeline {number}"))?;
        let counter = match outcome.end {
            PipelineEnd::Completed => &counters.completed,
            PipelineEnd::Failed => &counters.failed,
            PipelineEnd::Interrupted => &counters.interrupted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            name: "omni_writer_pipeline_done",
            pipeline = number,
            end = ?outcome.end,
            events = outcome.events,
            "pipeline finished"
        );
    }
    Ok(())
}

/// Starts `count` named worker threads.
///
/// # Errors
///
/// When a thread cannot be started (the ones already started are stopped and joined).
pub fn spawn_workers(
    shared: &Arc<Shared>,
    count: u16,
) -> anyhow::Result<Vec<JoinHandle<anyhow::Result<()>>>> {
    let mut handles = Vec::new();
    for index in 0..count {
        let worker = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("omni-worker-{index}"))
            .spawn(move || {
                let result = work(&worker);
                if let Err(error) = &result {
                    worker.control.stop(format!("a worker failed: {error:#}"));
                }
                worker.control.worker_done();
                result
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                shared.control.stop("a worker thread could not start");
                for handle in handles {
                    let _ = handle.join();
                }
                return Err(error).context("starting a worker thread");
            }
        }
    }
    Ok(handles)
}

/// Joins the workers; the first error wins.
///
/// # Errors
///
/// A worker's error, or a worker that panicked.
pub fn join_workers(handles: Vec<JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    let mut first = Ok(());
    for handle in handles {
        let result = match handle.join() {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("a worker thread panicked")),
        };
        if first.is_ok() {
            first = result;
        }
    }
    first
}
