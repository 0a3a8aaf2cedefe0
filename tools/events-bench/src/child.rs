//! One (workload, system) pair, run in its own process so its peak RSS is its own: the hidden
//! `run-one` subcommand. It prints one JSON line, an [`Outcome`].

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::Instant;

use anyhow::{Context, anyhow, ensure};
use serde::{Deserialize, Serialize};

use crate::input::Input;
use crate::measure::{disk_usage, proc_status_bytes};
use crate::systems::eventlog::Eventlog;
use crate::systems::raw_sled::RawSled;
use crate::systems::sqlite::Sqlite;
use crate::systems::{System, SystemName, Writer};
use crate::workload::{Append, BATCH, SUBSCRIBERS, Scale, Shape, Workload};

/// What one run measured. `events_per_s` is `None` where the workload is not available.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Events appended, read or loaded.
    pub events: usize,
    /// Writer threads.
    pub writers: usize,
    /// Whether every acknowledged append was durable.
    pub durable: bool,
    /// Events per second over the timed section.
    pub events_per_s: Option<f64>,
    /// Seconds of the timed section: appends plus one final flush, or the reads.
    pub secs: Option<f64>,
    /// Appends only: seconds until the last append was acknowledged (before the final flush).
    pub ack_secs: Option<f64>,
    /// Reads only: seconds the reopen took (not timed).
    pub open_secs: Option<f64>,
    /// Bytes allocated on disk by the store's directory after it was closed.
    pub bytes_on_disk: Option<u64>,
    /// Sum of the file lengths of the store's directory after it was closed.
    pub bytes_apparent: Option<u64>,
    /// `bytes_on_disk / events`.
    pub bytes_per_event: Option<f64>,
    /// The process's peak resident set (`VmHWM`), input included.
    pub peak_rss_bytes: Option<u64>,
    /// The process's resident set once the input was generated, before the store was opened.
    pub input_rss_bytes: Option<u64>,
    /// Anything a reader of the figures should know.
    pub note: Option<String>,
}

/// Where `system` keeps the store of `workload` under the run's directory.
pub fn store_dir(root: &Path, system: SystemName, workload: Workload) -> PathBuf {
    root.join(system.name()).join(workload.name())
}

/// The marker `W-append-batch` leaves next to its store once it is complete and closed, holding
/// the event count, so the read workloads can reuse the store.
pub fn batch_marker(root: &Path, system: SystemName) -> PathBuf {
    root.join(system.name()).join("W-append-batch.complete")
}

/// Runs `workload` on `system` and returns what it measured.
pub fn run_one(
    workload: Workload,
    system: SystemName,
    root: &Path,
    scale: Scale,
    durable_events: Option<usize>,
) -> anyhow::Result<Outcome> {
    let shape = Shape::of(workload, scale, durable_events);
    let mut outcome = match system {
        SystemName::Eventlog => run::<Eventlog>(workload, system, root, shape, scale),
        SystemName::Sqlite => run::<Sqlite>(workload, system, root, shape, scale),
        SystemName::RawSled => run::<RawSled>(workload, system, root, shape, scale),
    }?;
    outcome.peak_rss_bytes = proc_status_bytes("VmHWM");
    Ok(outcome)
}

fn run<S: System>(
    workload: Workload,
    system: SystemName,
    root: &Path,
    shape: Shape,
    scale: Scale,
) -> anyhow::Result<Outcome> {
    if workload.needs_facade() {
        return facade_workload::<S>(workload, &store_dir(root, system, workload), shape);
    }
    if workload.reads_batch_store() {
        return read_workload::<S>(workload, system, root, shape, scale);
    }
    let dir = store_dir(root, system, workload);
    let outcome = append_workload::<S>(&dir, shape)?;
    if workload == Workload::AppendBatch {
        std::fs::write(batch_marker(root, system), shape.events.to_string())?;
    }
    Ok(outcome)
}

/// **To fill in once the `eventlog` facade exists** (aggregate loading with snapshots,
/// subscriptions): `W-load`, `W-load-snapshot` and `W-subscribe`, for every system. Until then
/// they report no figure rather than a made-up one.
///
/// To implement: build an aggregate of `shape.events` events in `dir` (and a snapshot for
/// `W-load-snapshot`), reopen, time the load; for `W-subscribe`, run W-append-single with
/// [`SUBSCRIBERS`] subscribers and record p50/p99 publish→deliver latency in extra `Outcome`
/// fields. Each needs a method on [`System`] that every system implements.
fn facade_workload<S: System>(
    workload: Workload,
    _dir: &Path,
    shape: Shape,
) -> anyhow::Result<Outcome> {
    let what = match workload {
        Workload::Load => "loading an aggregate by replaying its events",
        Workload::LoadSnapshot => "loading an aggregate from a snapshot",
        _ => "subscriptions",
    };
    let what = if workload == Workload::Subscribe {
        format!("{what}: publish→deliver latency p50/p99 with {SUBSCRIBERS} subscribers")
    } else {
        what.to_string()
    };
    Ok(Outcome {
        events: shape.events,
        writers: shape.writers,
        note: Some(format!(
            "not yet available (needs the eventlog facade: {what})"
        )),
        ..Outcome::default()
    })
}

fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn append_workload<S: System>(dir: &Path, shape: Shape) -> anyhow::Result<Outcome> {
    fresh_dir(dir)?;
    let input = Input::generate(shape.events)?;
    let plans = shape.plan();
    ensure!(
        plans.iter().flatten().map(|a| a.count).sum::<usize>() == input.len(),
        "the plan does not cover the input"
    );
    let input_rss = proc_status_bytes("VmRSS");
    let system = S::open(dir, shape.durable)?;
    let mut writers = plans
        .iter()
        .map(|_| system.writer())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = match (plans.as_slice(), writers.len()) {
        ([plan], 1) => {
            let mut writer = writers.pop().context("no writer")?;
            let started = Instant::now();
            for append in plan {
                writer.append(&input, append)?;
            }
            started
        }
        _ => run_threads(writers, &plans, &input)?,
    };
    let acked = started.elapsed();
    system.flush()?;
    let total = started.elapsed();
    system.close()?;
    let disk = disk_usage(dir)?;
    let secs = total.as_secs_f64();
    Ok(Outcome {
        events: shape.events,
        writers: shape.writers,
        durable: shape.durable,
        events_per_s: Some(shape.events as f64 / secs),
        secs: Some(secs),
        ack_secs: Some(acked.as_secs_f64()),
        bytes_on_disk: Some(disk.allocated),
        bytes_apparent: Some(disk.apparent),
        bytes_per_event: Some(disk.allocated as f64 / shape.events as f64),
        input_rss_bytes: input_rss,
        ..Outcome::default()
    })
}

/// One thread per writer, all released together; returns when they were released.
fn run_threads<W: Writer>(
    writers: Vec<W>,
    plans: &[Vec<Append>],
    input: &Input,
) -> anyhow::Result<Instant> {
    let barrier = Barrier::new(writers.len() + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .into_iter()
            .zip(plans)
            .map(|(mut writer, plan)| {
                let barrier = &barrier;
                scope.spawn(move || -> anyhow::Result<()> {
                    barrier.wait();
                    for append in plan {
                        writer.append(input, append)?;
                    }
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow!("a writer thread panicked"))??;
        }
        Ok(started)
    })
}

fn read_workload<S: System>(
    workload: Workload,
    system: SystemName,
    root: &Path,
    shape: Shape,
    scale: Scale,
) -> anyhow::Result<Outcome> {
    let dir = store_dir(root, system, Workload::AppendBatch);
    let marker = batch_marker(root, system);
    let ready = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        == Some(shape.events);
    let mut note = None;
    if !ready {
        append_workload::<S>(&dir, Shape::of(Workload::AppendBatch, scale, None))?;
        std::fs::write(&marker, shape.events.to_string())?;
        note = Some("built the batch store in this process: peak RSS includes building it".into());
    }
    let input_rss = proc_status_bytes("VmRSS");
    let opening = Instant::now();
    let store = S::open(&dir, false)?;
    let open_secs = opening.elapsed().as_secs_f64();
    let started = Instant::now();
    let count = match workload {
        Workload::ReadStream => {
            let mut total = 0;
            for aggregate in 0..shape.aggregates as u32 {
                let count = store.read_stream(aggregate)?;
                ensure!(
                    count == BATCH as u64,
                    "gen-{aggregate}: read {count} events, expected {BATCH}"
                );
                total += count;
            }
            total
        }
        _ => store.read_all()?,
    };
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        count == shape.events as u64,
        "read {count} events, expected {}",
        shape.events
    );
    store.close()?;
    let disk = disk_usage(&dir)?;
    Ok(Outcome {
        events: shape.events,
        writers: 1,
        durable: false,
        events_per_s: Some(count as f64 / secs),
        secs: Some(secs),
        open_secs: Some(open_secs),
        bytes_on_disk: Some(disk.allocated),
        bytes_apparent: Some(disk.apparent),
        bytes_per_event: Some(disk.allocated as f64 / shape.events as f64),
        input_rss_bytes: input_rss,
        note,
        ..Outcome::default()
    })
}
