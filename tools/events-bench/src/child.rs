//! One (workload, system) pair, run in its own process so its peak RSS is its own: the hidden
//! `run-one` subcommand. It prints one JSON line, an [`Outcome`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use eventlog::{RecordedEvent, SubscriptionFilter};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::input::{Input, payload_json_bytes};
use crate::measure::{DiskUsage, disk_usage, proc_status_bytes};
use crate::systems::eventlog::Eventlog;
use crate::systems::raw_sled::RawSled;
use crate::systems::sqlite::Sqlite;
use crate::systems::{System, SystemName, Writer};
use crate::workload::{Append, BATCH, SNAPSHOT_EVERY, SUBSCRIBERS, Scale, Shape, Workload};

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
    /// Reads only: how many full passes were timed (`secs` is the median pass).
    pub read_passes: Option<usize>,
    /// Reads only: seconds of the first pass after the reopen.
    pub first_pass_secs: Option<f64>,
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
    /// Bytes of one payload's JSON form (the stored payload is the codec's, 200 bytes).
    pub payload_json_bytes: Option<usize>,
    /// W-load, W-load-snapshot: the loads.
    pub load: Option<LoadFigures>,
    /// W-subscribe: publish→deliver latency.
    pub deliver: Option<LatencyFigures>,
    /// W-replicate: shipping, the append rate with replication on and the lag.
    pub replicate: Option<crate::replicate::ReplicateFigures>,
}

/// What W-load and W-load-snapshot measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadFigures {
    /// Loads timed.
    pub loads: usize,
    /// The first load after reopening, milliseconds.
    pub first_ms: f64,
    /// Median of every timed load (the first included), milliseconds.
    pub median_ms: f64,
    /// Fastest load, milliseconds.
    pub min_ms: f64,
    /// The snapshot the loads started from.
    pub from_snapshot: Option<u64>,
    /// Events each load applied.
    pub events_applied: u64,
    /// W-load-snapshot: median load time once a snapshot at the head was saved (nothing to
    /// apply: the best case), milliseconds.
    pub head_snapshot_median_ms: Option<f64>,
}

/// Publish→deliver latency over every delivery of every subscriber, microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyFigures {
    /// Subscriptions.
    pub subscribers: usize,
    /// Deliveries recorded (events × subscribers).
    pub deliveries: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p99_9_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Seconds after the last append was acknowledged until every subscriber had handled it
    /// (closing the log waits for that).
    pub drain_secs: f64,
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
    let mut outcome = match (workload, system) {
        (Workload::Subscribe, SystemName::Eventlog) => {
            subscribe_workload(&store_dir(root, system, workload), shape)
        }
        (Workload::Subscribe, _) => Ok(Outcome {
            events: shape.events,
            writers: shape.writers,
            note: Some(
                "no push delivery (a subscriber would have to poll the table/keys): reported as null"
                    .into(),
            ),
            ..Outcome::default()
        }),
        (Workload::Replicate, SystemName::Eventlog) => {
            crate::replicate::replicate_workload(&store_dir(root, system, workload), shape)
        }
        (Workload::Replicate, _) => Ok(Outcome {
            events: shape.events,
            writers: shape.writers,
            note: Some("no replication to NATS: the eventlog only, reported as null".into()),
            ..Outcome::default()
        }),
        _ => match system {
            SystemName::Eventlog => run::<Eventlog>(workload, system, root, shape, scale),
            SystemName::Sqlite => run::<Sqlite>(workload, system, root, shape, scale),
            SystemName::RawSled => run::<RawSled>(workload, system, root, shape, scale),
        },
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
    if matches!(workload, Workload::Load | Workload::LoadSnapshot) {
        return load_workload::<S>(
            &store_dir(root, system, workload),
            shape,
            workload == Workload::LoadSnapshot,
            if scale == Scale::Full {
                Duration::from_secs(2)
            } else {
                Duration::from_millis(200)
            },
        );
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

/// Empties `dir` (creating it).
pub fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// W's input for `shape`, the plan of appends over it (checked to cover it), and the RSS once
/// it is generated.
pub fn planned_input(shape: Shape) -> anyhow::Result<(Input, Vec<Vec<Append>>, Option<u64>)> {
    let input = Input::generate(shape.events)?;
    let plans = shape.plan();
    ensure!(
        plans.iter().flatten().map(|a| a.count).sum::<usize>() == input.len(),
        "the plan does not cover the input"
    );
    Ok((input, plans, proc_status_bytes("VmRSS")))
}

fn append_workload<S: System>(dir: &Path, shape: Shape) -> anyhow::Result<Outcome> {
    fresh_dir(dir)?;
    let (input, plans, input_rss) = planned_input(shape)?;
    let system = S::open(dir, shape.durable)?;
    let timed = timed_appends(&system, &plans, &input)?;
    system.close()?;
    let disk = disk_usage(dir)?;
    let secs = timed.total.as_secs_f64();
    Ok(Outcome {
        events: shape.events,
        writers: shape.writers,
        durable: shape.durable,
        events_per_s: Some(shape.events as f64 / secs),
        secs: Some(secs),
        ack_secs: Some(timed.acked.as_secs_f64()),
        bytes_on_disk: Some(disk.allocated),
        bytes_apparent: Some(disk.apparent),
        bytes_per_event: Some(disk.allocated as f64 / shape.events as f64),
        input_rss_bytes: input_rss,
        payload_json_bytes: payload_json_bytes(input.payload(0)).ok(),
        ..Outcome::default()
    })
}

/// How long a run of appends took.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// Until the last append was acknowledged.
    pub acked: Duration,
    /// Until the final flush returned.
    pub total: Duration,
}

/// Makes every append of `plans` on `system` (one thread per plan when there are several),
/// then one flush: the timed section of every append workload.
pub fn timed_appends<S: System>(
    system: &S,
    plans: &[Vec<Append>],
    input: &Input,
) -> anyhow::Result<Timed> {
    let mut writers = plans
        .iter()
        .map(|_| system.writer())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = match (plans, writers.len()) {
        ([plan], 1) => {
            let mut writer = writers.pop().context("no writer")?;
            let started = Instant::now();
            for append in plan {
                writer.append(input, append)?;
            }
            started
        }
        _ => run_threads(writers, plans, input)?,
    };
    let acked = started.elapsed();
    system.flush()?;
    Ok(Timed {
        acked,
        total: started.elapsed(),
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
    // Every pass reads everything and is checked; the figure is the median pass, so one pass
    // slowed by the machine (others share its two cores) does not make the ratio.
    let mut passes = Vec::with_capacity(READ_PASSES);
    for _ in 0..READ_PASSES {
        let started = Instant::now();
        let count = read_pass(&store, workload, shape)?;
        passes.push(started.elapsed().as_secs_f64());
        ensure!(
            count == shape.events as u64,
            "read {count} events, expected {}",
            shape.events
        );
    }
    let first_pass_secs = passes.first().copied();
    let secs = median(&mut passes);
    store.close()?;
    let disk = disk_usage(&dir)?;
    Ok(Outcome {
        first_pass_secs,
        read_passes: Some(READ_PASSES),
        note,
        ..reopened_outcome(shape.events, secs, open_secs, &disk, input_rss)
    })
}

/// The figures every workload that reads a reopened store reports: `events` read in `secs`.
fn reopened_outcome(
    events: usize,
    secs: f64,
    open_secs: f64,
    disk: &DiskUsage,
    input_rss: Option<u64>,
) -> Outcome {
    Outcome {
        events,
        writers: 1,
        durable: false,
        events_per_s: Some(events as f64 / secs),
        secs: Some(secs),
        open_secs: Some(open_secs),
        bytes_on_disk: Some(disk.allocated),
        bytes_apparent: Some(disk.apparent),
        bytes_per_event: Some(disk.allocated as f64 / events as f64),
        input_rss_bytes: input_rss,
        ..Outcome::default()
    }
}

/// Passes of each read workload; its figure is the median.
const READ_PASSES: usize = 5;

/// One full pass of a read workload; returns the events read.
fn read_pass<S: System>(store: &S, workload: Workload, shape: Shape) -> anyhow::Result<u64> {
    Ok(match workload {
        Workload::ReadAllScan => {
            let scanned = store.scan_all()?;
            ensure!(
                scanned.payload_bytes == scanned.events * crate::input::PAYLOAD_BYTES as u64,
                "the scan saw {} payload bytes in {} events",
                scanned.payload_bytes,
                scanned.events
            );
            scanned.events
        }
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
    })
}

/// Median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Times `load` at least 5 times and for at least `budget` (2 s at full scale, 0.2 s otherwise), at most 1 000 times; returns the
/// durations in milliseconds.
fn time_loads(
    mut load: impl FnMut() -> anyhow::Result<()>,
    budget: Duration,
) -> anyhow::Result<Vec<f64>> {
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < 5 || (started.elapsed() < budget && times.len() < 1_000) {
        let at = Instant::now();
        load()?;
        times.push(at.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// W-load / W-load-snapshot: builds aggregate `gen-0` of `shape.events` events (appends of
/// [`BATCH`]), with a snapshot every [`SNAPSHOT_EVERY`] events up to `events - SNAPSHOT_EVERY`
/// when `with_snapshots`; closes and reopens; times loads of it.
fn load_workload<S: System>(
    dir: &Path,
    shape: Shape,
    with_snapshots: bool,
    budget: Duration,
) -> anyhow::Result<Outcome> {
    fresh_dir(dir)?;
    let input = Input::generate(shape.events)?;
    let plans = shape.plan();
    let plan = plans.first().context("no plan")?;
    let last_snapshot = shape.events.saturating_sub(SNAPSHOT_EVERY);
    let system = S::open(dir, false)?;
    {
        let mut writer = system.writer()?;
        for append in plan {
            writer.append(&input, append)?;
            let version = append.first + append.count;
            if with_snapshots && version.is_multiple_of(SNAPSHOT_EVERY) && version <= last_snapshot
            {
                let at = system.snapshot(append.aggregate)?;
                ensure!(at == version as u64, "snapshot at {at}, expected {version}");
            }
        }
    }
    system.flush()?;
    system.close()?;
    let disk = disk_usage(dir)?;
    let input_rss = proc_status_bytes("VmRSS");
    drop(input);

    let opening = Instant::now();
    let system = S::open(dir, false)?;
    let open_secs = opening.elapsed().as_secs_f64();
    let expected_snapshot =
        (with_snapshots && last_snapshot >= SNAPSHOT_EVERY).then_some(last_snapshot as u64);
    let mut first = None;
    let mut applied = 0;
    let check = |system: &S, snapshot: Option<u64>| -> anyhow::Result<u64> {
        let outcome = system.load(0)?;
        ensure!(
            outcome.version == shape.events as u64,
            "loaded version {}, expected {}",
            outcome.version,
            shape.events
        );
        ensure!(
            outcome.from_snapshot == snapshot,
            "loaded from snapshot {:?}, expected {snapshot:?}",
            outcome.from_snapshot
        );
        Ok(outcome.events_applied)
    };
    let mut times = time_loads(
        || {
            let at = Instant::now();
            applied = check(&system, expected_snapshot)?;
            first.get_or_insert(at.elapsed().as_secs_f64() * 1e3);
            Ok(())
        },
        budget,
    )?;
    let events_applied = applied;
    let loads = times.len();
    let min_ms = times.iter().copied().fold(f64::INFINITY, f64::min);
    let median_ms = median(&mut times);
    let head_snapshot_median_ms = if with_snapshots {
        system.snapshot(0)?;
        let mut times = time_loads(
            || check(&system, Some(shape.events as u64)).map(drop),
            budget,
        )?;
        Some(median(&mut times))
    } else {
        None
    };
    system.close()?;
    let secs = median_ms / 1e3;
    Ok(Outcome {
        load: Some(LoadFigures {
            loads,
            first_ms: first.unwrap_or(f64::NAN),
            median_ms,
            min_ms,
            from_snapshot: expected_snapshot,
            events_applied,
            head_snapshot_median_ms,
        }),
        ..reopened_outcome(shape.events, secs, open_secs, &disk, input_rss)
    })
}

/// A latency histogram: 1 µs to 10 min, 3 significant digits, in nanoseconds.
pub fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1_000, 600_000_000_000, 3)?)
}

/// W-subscribe (eventlog only): W-append-single with [`SUBSCRIBERS`] live subscriptions; each
/// records, on delivery, the time since its event's `append` call began.
fn subscribe_workload(dir: &Path, shape: Shape) -> anyhow::Result<Outcome> {
    fresh_dir(dir)?;
    let input = Input::generate(shape.events)?;
    let plans = shape.plan();
    let plan = plans.first().context("no plan")?;
    let input_rss = proc_status_bytes("VmRSS");
    let system = Eventlog::open(dir, false)?;
    let epoch = Instant::now();
    let sent: Arc<Vec<AtomicU64>> =
        Arc::new((0..shape.events).map(|_| AtomicU64::new(0)).collect());
    let mut histograms = Vec::new();
    for k in 0..SUBSCRIBERS {
        let histogram = Arc::new(Mutex::new(latency_histogram()?));
        histograms.push(Arc::clone(&histogram));
        let sent = Arc::clone(&sent);
        system.log().subscribe(
            format!("w-subscriber-{k}"),
            SubscriptionFilter::all(),
            move |event: &RecordedEvent| -> Result<(), String> {
                let now = epoch.elapsed().as_nanos() as u64;
                // A fresh store and one writer: position p holds input event p - 1.
                let index = event.position.checked_sub(1).ok_or("position 0")? as usize;
                let at = sent
                    .get(index)
                    .ok_or_else(|| format!("position {} beyond the input", event.position))?
                    .load(Ordering::Acquire);
                histogram
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .saturating_record(now.saturating_sub(at).max(1_000));
                Ok(())
            },
        )?;
    }
    let mut writer = system.writer()?;
    let started = Instant::now();
    for append in plan {
        sent[append.first].store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
        writer.append(&input, append)?;
    }
    let acked = started.elapsed();
    system.flush()?;
    let total = started.elapsed();
    drop(writer);
    let closing = Instant::now();
    let reports = system.log().clone().close()?;
    let drain_secs = closing.elapsed().as_secs_f64();
    drop(system);
    let delivered: u64 = reports.iter().map(|r| r.counts.delivered).sum();
    ensure!(
        delivered == (shape.events * SUBSCRIBERS) as u64,
        "{delivered} deliveries, expected {}",
        shape.events * SUBSCRIBERS
    );
    let mut all = latency_histogram()?;
    for histogram in &histograms {
        all.add(&*histogram.lock().unwrap_or_else(PoisonError::into_inner))?;
    }
    ensure!(
        all.len() == delivered,
        "{} latencies recorded for {delivered} deliveries",
        all.len()
    );
    let us = |ns: u64| ns as f64 / 1e3;
    let disk = disk_usage(dir)?;
    let secs = total.as_secs_f64();
    Ok(Outcome {
        events: shape.events,
        writers: 1,
        durable: false,
        events_per_s: Some(shape.events as f64 / secs),
        secs: Some(secs),
        ack_secs: Some(acked.as_secs_f64()),
        bytes_on_disk: Some(disk.allocated),
        bytes_apparent: Some(disk.apparent),
        bytes_per_event: Some(disk.allocated as f64 / shape.events as f64),
        input_rss_bytes: input_rss,
        deliver: Some(LatencyFigures {
            subscribers: SUBSCRIBERS,
            deliveries: delivered,
            p50_us: us(all.value_at_quantile(0.5)),
            p99_us: us(all.value_at_quantile(0.99)),
            p99_9_us: us(all.value_at_quantile(0.999)),
            max_us: us(all.max()),
            drain_secs,
        }),
        ..Outcome::default()
    })
}
