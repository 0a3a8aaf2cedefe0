//! The sustained run (`events-bench sustained`) and the open-time measurement
//! (`events-bench open-time`).
//!
//! The sustained run drives **the writer daemon's own workload** in this process: the Omni
//! Writer's pipeline generator (`tools/omni-writer/src/sim.rs` and the modules it uses, compiled
//! into this binary from the daemon's sources), through the `eventlog` facade configured as the
//! daemon configures it (durable by default, no automatic snapshots), with the daemon's worker
//! loop (N threads, each running whole pipelines). Compared with running the `omni-writer`
//! binary, this adds a timer around every append (an HDR histogram per worker, swapped every
//! interval) and leaves out the daemon's progress and checkpoint threads. Every second it
//! records the events written, events/s, the interval's append-latency percentiles, the
//! process's RSS, the store's bytes on disk, the store's counters, and the CPU time of the
//! store's writer and flusher threads (to tell a CPU-bound writer from one waiting on the disk).
//!
//! With `--replicate` the log is replicated while it is written, as `omni-writer --replicate`
//! does (`EventLog::replicate`, the daemon's defaults: stream `EVENTLOG`, one replica, durable
//! events shipped), into a single-node `nats-server` this process starts on loopback (its store
//! in a temporary directory, on the same machine and its same two cores: the server's CPU is the
//! daemon's loss here, not in a deployment where NATS runs elsewhere). The lag is sampled every
//! 20 ms; after the last append, the run waits until the stream holds the whole log and checks
//! it holds exactly that.
//!
//! `open-time` opens a store (typically the sustained run's) in child processes: after a clean
//! close, and after a child writing the daemon's workload was SIGKILLed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use eventlog::{AppendBatch, Durability, EventLog, EventLogConfig};
use hdrhistogram::Histogram;
use omni_domain::PIPELINE;
use serde::{Deserialize, Serialize};

use crate::child::latency_histogram;
use crate::measure::{disk_usage, proc_status_bytes, thread_cpu_secs};
use crate::replicate::LiveReplication;
use crate::sim::{Sink, run_pipeline};

/// The daemon's store configuration (`tools/omni-writer/src/daemon.rs`): the facade's defaults,
/// the chosen durability, no automatic snapshots.
pub fn daemon_config(store: &Path, durable: bool) -> EventLogConfig {
    EventLogConfig::new(store)
        .registry(omni_domain::registry())
        .durability(if durable {
            Durability::Durable
        } else {
            Durability::Buffered
        })
        .snapshot_every(None)
}

/// The next pipeline number for a store, as the daemon computes it: one past the highest
/// `pipeline-N` aggregate.
fn next_pipeline_number(log: &EventLog) -> anyhow::Result<u64> {
    let highest = log
        .aggregates(Some(PIPELINE))?
        .iter()
        .filter_map(|a| {
            a.aggregate_id
                .strip_prefix("pipeline-")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    Ok(highest + 1)
}

/// What the workers share.
struct Shared {
    log: EventLog,
    /// Stop once this many events were written (`u64::MAX`: never).
    target: u64,
    stop: AtomicBool,
    next: AtomicU64,
    events: AtomicU64,
    appends: AtomicU64,
    /// One histogram per worker: append latencies (ns) since the sampler last took them.
    latencies: Vec<Mutex<Histogram<u64>>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.events.load(Ordering::Relaxed) >= self.target
    }
}

/// The daemon's `StoreSink` (tools/omni-writer/src/runner.rs), timed.
struct TimedSink<'a> {
    shared: &'a Shared,
    worker: usize,
}

impl Sink for TimedSink<'_> {
    fn append(&mut self, mut step: Vec<AppendBatch>) -> anyhow::Result<()> {
        let events: usize = step.iter().map(|b| b.events.len()).sum();
        let started = Instant::now();
        if step.len() == 1 {
            let batch = step.remove(0);
            self.shared
                .log
                .append(&batch.stream, batch.expected, batch.events)?;
        } else {
            self.shared.log.append_batches(step)?;
        }
        let ns = started.elapsed().as_nanos() as u64;
        if let Some(histogram) = self.shared.latencies.get(self.worker) {
            histogram
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .saturating_record(ns.max(1_000));
        }
        self.shared
            .events
            .fetch_add(events as u64, Ordering::Relaxed);
        self.shared.appends.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.shared.stopping()
    }
}

fn work(shared: &Shared, worker: usize, seed: u64) -> anyhow::Result<()> {
    while !shared.stopping() {
        let number = shared.next.fetch_add(1, Ordering::Relaxed);
        run_pipeline(
            seed,
            crate::emitter::Writer::default(),
            number,
            &mut TimedSink { shared, worker },
        )
        .with_context(|| format!("pipeline {number}"))?;
    }
    Ok(())
}

/// Starts `workers` threads running pipelines until `shared` says stop.
fn spawn_workers(
    shared: &Arc<Shared>,
    workers: usize,
    seed: u64,
) -> anyhow::Result<Vec<std::thread::JoinHandle<anyhow::Result<()>>>> {
    (0..workers)
        .map(|worker| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("sustained-{worker}"))
                .spawn(move || {
                    let result = work(&shared, worker, seed);
                    if result.is_err() {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
                .context("starting a worker")
        })
        .collect()
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One sample of the sustained run (one CSV row).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the workers started.
    pub t_secs: f64,
    /// Events written so far.
    pub events: u64,
    /// Events per second over the interval.
    pub events_per_s: f64,
    /// Appends completed in the interval.
    pub appends: u64,
    /// Append latency over the interval, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Resident set, MiB.
    pub rss_mb: f64,
    /// Bytes allocated under the store's directory.
    pub disk_bytes: u64,
    /// Group writes by the store's writer since open.
    pub group_writes: u64,
    /// Sled flushes since open.
    pub flushes: u64,
    /// Events acknowledged but not yet written to sled.
    pub unwritten_events: u64,
    /// The index watermark (position the persisted index pages cover).
    pub index_watermark: u64,
    /// Aggregate heads in memory.
    pub cached_aggregates: u64,
    /// Share of one core the store's writer thread used over the interval (0–1).
    pub writer_cpu: f64,
    /// Share of one core the store's flusher thread used.
    pub flusher_cpu: f64,
    /// Share of one core the worker threads used together.
    pub workers_cpu: f64,
    /// The machine's 1-minute load average.
    pub load1: f64,
}

impl Sample {
    const HEADER: &'static str = "t_secs,events,events_per_s,appends,p50_us,p99_us,p999_us,max_us,rss_mb,disk_bytes,group_writes,flushes,unwritten_events,index_watermark,cached_aggregates,writer_cpu,flusher_cpu,workers_cpu,load1";

    fn csv(&self) -> String {
        format!(
            "{:.3},{},{:.1},{},{:.1},{:.1},{:.1},{:.1},{:.1},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.2}",
            self.t_secs,
            self.events,
            self.events_per_s,
            self.appends,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.rss_mb,
            self.disk_bytes,
            self.group_writes,
            self.flushes,
            self.unwritten_events,
            self.index_watermark,
            self.cached_aggregates,
            self.writer_cpu,
            self.flusher_cpu,
            self.workers_cpu,
            self.load1
        )
    }

    /// Parses a CSV row written by [`Sample::csv`].
    pub fn parse(line: &str) -> anyhow::Result<Self> {
        let f: Vec<&str> = line.trim().split(',').collect();
        ensure!(f.len() == 19, "a sample row has {} fields, not 19", f.len());
        let x = |i: usize| -> anyhow::Result<f64> {
            f[i].parse::<f64>()
                .with_context(|| format!("field {i} of `{line}`"))
        };
        let n = |i: usize| -> anyhow::Result<u64> {
            f[i].parse::<u64>()
                .with_context(|| format!("field {i} of `{line}`"))
        };
        Ok(Self {
            t_secs: x(0)?,
            events: n(1)?,
            events_per_s: x(2)?,
            appends: n(3)?,
            p50_us: x(4)?,
            p99_us: x(5)?,
            p999_us: x(6)?,
            max_us: x(7)?,
            rss_mb: x(8)?,
            disk_bytes: n(9)?,
            group_writes: n(10)?,
            flushes: n(11)?,
            unwritten_events: n(12)?,
            index_watermark: n(13)?,
            cached_aggregates: n(14)?,
            writer_cpu: x(15)?,
            flusher_cpu: x(16)?,
            workers_cpu: x(17)?,
            load1: x(18)?,
        })
    }
}

/// Reads a samples CSV.
pub fn read_samples(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(Sample::parse)
        .collect()
}

/// The sustained run's settings.
#[derive(Debug, Clone)]
pub struct SustainedArgs {
    /// Events to write.
    pub events: u64,
    /// The store (must be empty or absent).
    pub store: PathBuf,
    /// Where the samples CSV goes.
    pub samples: PathBuf,
    /// Where the charts go (none when `None`).
    pub charts: Option<PathBuf>,
    /// Worker threads.
    pub workers: usize,
    /// Durable appends (the daemon's default).
    pub durable: bool,
    /// The generator's seed.
    pub seed: u64,
    /// sled's page cache, when not the daemon's.
    pub cache_bytes: Option<u64>,
    /// Seconds between samples.
    pub interval: Duration,
    /// Font for the charts.
    pub font: PathBuf,
    /// The charts' file name prefix.
    pub name: String,
    /// Replicates into a local `nats-server` while writing (see the module's documentation).
    pub replicate: bool,
}

/// What the sustained run printed at the end.
#[derive(Debug, Clone, Serialize)]
pub struct SustainedSummary {
    events: u64,
    appends: u64,
    workers: usize,
    durable: bool,
    seed: u64,
    open_secs: f64,
    write_secs: f64,
    events_per_s: f64,
    flush_secs: f64,
    close_secs: f64,
    append_p50_us: f64,
    append_p99_us: f64,
    append_p999_us: f64,
    append_max_us: f64,
    peak_rss_mb: f64,
    disk_bytes: u64,
    disk_bytes_per_event: f64,
    last_position: u64,
    samples: String,
    /// With `--replicate`: the lag while writing, and the drain after.
    replication: Option<SustainedReplication>,
}

/// What `--replicate` measured.
#[derive(Debug, Clone, Serialize)]
pub struct SustainedReplication {
    /// The lag while the workers wrote (sampled every 20 ms).
    lag: crate::replicate::LagFigures,
    /// Seconds from the final flush until the stream held the last event.
    drain_secs: f64,
    /// Where the CPU went from the start of the writing until the stream held the last event
    /// (`replicator_secs`: what replication costs the daemon's process when NATS runs
    /// elsewhere; `nats_server_secs`: what the co-located server took).
    cpu: crate::replicate::CpuSplit,
    /// Messages in the stream (checked: = the log's last position = its last sequence).
    stream_messages: u64,
    /// Publishes that failed (each ends a session).
    publish_errors: u64,
    /// The replicator's sessions (1 when nothing failed).
    sessions: u64,
}

/// The stream `--replicate` writes (the daemon's default).
const REPLICATED_STREAM: &str = "EVENTLOG";
/// With `--replicate`: the `nats-server`'s nice value (e.g. 19, so that it runs on what the
/// daemon's workload leaves of the machine: a stand-in for a server on another machine).
pub const NATS_NICE_ENV: &str = "EVENTS_BENCH_NATS_NICE";

/// Runs the daemon's workload until `args.events` events are written, sampling every interval.
pub fn sustained(args: &SustainedArgs) -> anyhow::Result<SustainedSummary> {
    if args.store.exists() && std::fs::read_dir(&args.store)?.next().is_some() {
        bail!(
            "{} is not empty: the sustained run starts from an empty store",
            args.store.display()
        );
    }
    if let Some(dir) = args.samples.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut csv = std::io::BufWriter::new(
        std::fs::File::create(&args.samples)
            .with_context(|| format!("creating {}", args.samples.display()))?,
    );
    writeln!(csv, "{}", Sample::HEADER)?;
    let opening = Instant::now();
    let mut config = daemon_config(&args.store, args.durable);
    if let Some(bytes) = args.cache_bytes {
        config = config.store(|s| s.cache_capacity(bytes));
    }
    let log = EventLog::open(config)?;
    let open_secs = opening.elapsed().as_secs_f64();
    let replication = if args.replicate {
        let server = crate::replicate::start_server()?
            .context("--replicate: no nats-server binary (install nats-server)")?;
        if let Ok(nice) = std::env::var(NATS_NICE_ENV) {
            // Stands in for a server on another machine: it gets what the daemon leaves.
            for pid in crate::measure::child_pids("nats-server") {
                let status = std::process::Command::new("renice")
                    .args(["-n", nice.trim(), "-p", &pid.to_string()])
                    .stdout(Stdio::null())
                    .status()
                    .context("renice")?;
                ensure!(status.success(), "renice -n {nice} -p {pid} failed");
            }
        }
        let settings = crate::replicate::Settings::from_env()?;
        let live = LiveReplication::start(&log, server.url(), REPLICATED_STREAM, settings)?;
        Some((server, live))
    } else {
        None
    };
    let first = next_pipeline_number(&log)?;
    let shared = Arc::new(Shared {
        log: log.clone(),
        target: args.events,
        stop: AtomicBool::new(false),
        next: AtomicU64::new(first),
        events: AtomicU64::new(0),
        appends: AtomicU64::new(0),
        latencies: (0..args.workers)
            .map(|_| latency_histogram().map(Mutex::new))
            .collect::<anyhow::Result<_>>()?,
    });
    eprintln!(
        "sustained: {} events of the writer daemon's workload, {} workers, {}, store {}",
        args.events,
        args.workers,
        if args.durable { "durable" } else { "buffered" },
        args.store.display()
    );
    let thread_names = ["eventlog-writer", "eventlog-flushe", "sustained-"];
    let started = Instant::now();
    let workers = spawn_workers(&shared, args.workers, args.seed)?;
    let mut whole = latency_histogram()?;
    let mut last_events = 0;
    let mut last_appends = 0;
    let mut last_cpu = thread_cpu_secs(&thread_names);
    let mut last_at = started;
    let mut next_at = started + args.interval;
    let mut last_report = started;
    let mut peak_rss: f64 = 0.0;
    loop {
        let finished = workers.iter().all(|w| w.is_finished());
        let now = Instant::now();
        if !finished && now < next_at {
            std::thread::sleep((next_at - now).min(Duration::from_millis(50)));
            continue;
        }
        next_at += args.interval;
        let now = Instant::now();
        let dt = now.duration_since(last_at).as_secs_f64();
        last_at = now;
        let events = shared.events.load(Ordering::Relaxed);
        let appends = shared.appends.load(Ordering::Relaxed);
        let mut interval = latency_histogram()?;
        for histogram in &shared.latencies {
            let mut h = histogram.lock().unwrap_or_else(PoisonError::into_inner);
            interval.add(&*h)?;
            h.reset();
        }
        whole.add(&interval)?;
        let cpu = thread_cpu_secs(&thread_names);
        // Threads that ended take their CPU time with them: never below 0.
        let share = |i: usize| ((cpu[i] - last_cpu[i]) / dt).max(0.0);
        let metrics = log.admin().metrics()?.store;
        let us = |ns: u64| ns as f64 / 1e3;
        let rss_mb = proc_status_bytes("VmRSS").unwrap_or(0) as f64 / (1 << 20) as f64;
        peak_rss = peak_rss.max(rss_mb);
        let sample = Sample {
            t_secs: now.duration_since(started).as_secs_f64(),
            events,
            events_per_s: (events - last_events) as f64 / dt,
            appends: appends - last_appends,
            p50_us: us(interval.value_at_quantile(0.5)),
            p99_us: us(interval.value_at_quantile(0.99)),
            p999_us: us(interval.value_at_quantile(0.999)),
            max_us: us(interval.max()),
            rss_mb,
            disk_bytes: disk_usage(&args.store)?.allocated,
            group_writes: metrics.group_writes_since_open,
            flushes: metrics.flushes_since_open,
            unwritten_events: metrics.unwritten_events,
            index_watermark: metrics.index_watermark,
            cached_aggregates: metrics.cached_aggregates,
            writer_cpu: share(0),
            flusher_cpu: share(1),
            workers_cpu: share(2),
            load1: load_average().unwrap_or(f64::NAN),
        };
        writeln!(csv, "{}", sample.csv())?;
        csv.flush()?;
        last_events = events;
        last_appends = appends;
        last_cpu = cpu;
        if now.duration_since(last_report) >= Duration::from_secs(30) || finished {
            last_report = now;
            eprintln!(
                "  {:>7.0} s  {:>10} events  {:>8.0} ev/s  p99 {:>8.0} µs  RSS {:>6.0} MiB  disk {:>6.2} GB  writer CPU {:>3.0} %  load {:.1}",
                sample.t_secs,
                sample.events,
                sample.events_per_s,
                sample.p99_us,
                sample.rss_mb,
                sample.disk_bytes as f64 / 1e9,
                sample.writer_cpu * 100.0,
                sample.load1
            );
        }
        if finished {
            break;
        }
    }
    let write_secs = started.elapsed().as_secs_f64();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
    }
    drop(shared);
    let flushing = Instant::now();
    let last_position = log.flush()?.get();
    let flush_secs = flushing.elapsed().as_secs_f64();
    let replication = match replication {
        // The server outlives the check of its stream.
        Some((_server, live)) => {
            let drained = live.finish(last_position)?;
            Some(SustainedReplication {
                lag: drained.lag,
                drain_secs: drained.drain.as_secs_f64(),
                cpu: drained.cpu,
                stream_messages: last_position,
                publish_errors: drained.publish_errors,
                sessions: drained.sessions,
            })
        }
        None => None,
    };
    let closing = Instant::now();
    log.close()?;
    let close_secs = closing.elapsed().as_secs_f64();
    let disk = disk_usage(&args.store)?.allocated;
    let events = whole_events(&args.samples)?;
    let us = |ns: u64| ns as f64 / 1e3;
    let summary = SustainedSummary {
        events,
        appends: whole.len(),
        workers: args.workers,
        durable: args.durable,
        seed: args.seed,
        open_secs,
        write_secs,
        events_per_s: events as f64 / write_secs,
        flush_secs,
        close_secs,
        append_p50_us: us(whole.value_at_quantile(0.5)),
        append_p99_us: us(whole.value_at_quantile(0.99)),
        append_p999_us: us(whole.value_at_quantile(0.999)),
        append_max_us: us(whole.max()),
        peak_rss_mb: peak_rss,
        disk_bytes: disk,
        disk_bytes_per_event: disk as f64 / last_position.max(1) as f64,
        last_position,
        samples: args.samples.display().to_string(),
        replication,
    };
    if let Some(out) = &args.charts {
        let samples = read_samples(&args.samples)?;
        crate::charts::draw_all(&samples, out, &args.font, &args.name, &describe(args))?;
    }
    Ok(summary)
}

/// The run, for the charts' titles.
fn describe(args: &SustainedArgs) -> String {
    format!(
        "writer daemon workload, {} workers, {}{}",
        args.workers,
        if args.durable { "durable" } else { "buffered" },
        if args.replicate {
            ", replicated to NATS"
        } else {
            ""
        }
    )
}

/// Events written according to the last sample.
fn whole_events(samples: &Path) -> anyhow::Result<u64> {
    Ok(read_samples(samples)?.last().map_or(0, |s| s.events))
}

// ----- open time ---------------------------------------------------------------------------

/// What an `open-child` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenFigures {
    /// Seconds `EventLog::open` took.
    pub open_secs: f64,
    /// Seconds `close` took.
    pub close_secs: f64,
    /// The log's last position once open.
    pub last_position: u64,
    /// Peak RSS of the opening process, MiB.
    pub peak_rss_mb: f64,
}

/// Opens the store, times it, closes it (the hidden `open-child` subcommand).
pub fn open_child(store: &Path, durable: bool) -> anyhow::Result<OpenFigures> {
    let opening = Instant::now();
    let log = EventLog::open(daemon_config(store, durable))?;
    let open_secs = opening.elapsed().as_secs_f64();
    let last_position = log.last_position()?.get();
    let closing = Instant::now();
    log.close()?;
    Ok(OpenFigures {
        open_secs,
        close_secs: closing.elapsed().as_secs_f64(),
        last_position,
        peak_rss_mb: proc_status_bytes("VmHWM").unwrap_or(0) as f64 / (1 << 20) as f64,
    })
}

/// Opens the store and writes the daemon's workload until killed (the hidden `write-child`
/// subcommand). Prints `writing <position>` once it starts, then `written <events>` every 100 ms.
pub fn write_child(store: &Path, durable: bool, workers: usize, seed: u64) -> anyhow::Result<()> {
    let log = EventLog::open(daemon_config(store, durable))?;
    let first = next_pipeline_number(&log)?;
    let shared = Arc::new(Shared {
        log: log.clone(),
        target: u64::MAX,
        stop: AtomicBool::new(false),
        next: AtomicU64::new(first),
        events: AtomicU64::new(0),
        appends: AtomicU64::new(0),
        latencies: Vec::new(),
    });
    let mut stdout = std::io::stdout();
    writeln!(stdout, "writing {}", log.last_position()?)?;
    stdout.flush()?;
    let workers = spawn_workers(&shared, workers, seed)?;
    while !workers.iter().any(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        writeln!(stdout, "written {}", shared.events.load(Ordering::Relaxed))?;
        stdout.flush()?;
    }
    shared.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
    }
    bail!("a worker stopped before the kill")
}

/// One open measurement.
#[derive(Debug, Clone, Serialize)]
pub struct OpenMeasurement {
    /// `clean` (after a clean close) or `kill9` (after SIGKILL of a writer).
    pub after: String,
    /// Seconds the killed writer wrote before the kill (kill9 only).
    pub wrote_secs: Option<f64>,
    /// Events the killed writer reported acknowledged before the kill (kill9 only).
    pub wrote_events: Option<u64>,
    /// The child's figures.
    #[serde(flatten)]
    pub figures: OpenFigures,
}

fn spawn_open_child(exe: &Path, store: &Path, durable: bool) -> anyhow::Result<OpenFigures> {
    let mut command = Command::new(exe);
    command.arg("open-child").arg("--store").arg(store);
    if !durable {
        command.arg("--buffered");
    }
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    ensure!(
        output.status.success(),
        "open-child failed ({})",
        output.status
    );
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("open-child printed no result")?;
    Ok(serde_json::from_str(line)?)
}

/// Measures open times of `store`: `clean` opens (each after the previous clean close), then
/// for each of `kill_after`, a writer child that writes for that long and is SIGKILLed, then a
/// timed reopen.
pub fn open_time(
    store: &Path,
    clean: usize,
    kill_after: &[f64],
    durable: bool,
    workers: usize,
) -> anyhow::Result<Vec<OpenMeasurement>> {
    let exe = std::env::current_exe()?;
    let mut out = Vec::new();
    for i in 0..clean {
        let figures = spawn_open_child(&exe, store, durable)?;
        eprintln!(
            "open-time: clean close #{}: open {:.3} s ({} events)",
            i + 1,
            figures.open_secs,
            figures.last_position
        );
        out.push(OpenMeasurement {
            after: "clean".into(),
            wrote_secs: None,
            wrote_events: None,
            figures,
        });
    }
    for (k, &secs) in kill_after.iter().enumerate() {
        let mut child = Command::new(&exe)
            .arg("write-child")
            .arg("--store")
            .arg(store)
            .args(["--workers", &workers.to_string()])
            .args(["--seed", &(1_000 + k as u64).to_string()])
            .args(if durable {
                &[][..]
            } else {
                &["--buffered"][..]
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the writer to start writing (it opens the store first).
        let first = rx
            .recv_timeout(Duration::from_secs(600))
            .context("the writer child did not start")?;
        ensure!(first.starts_with("writing"), "unexpected `{first}`");
        let writing = Instant::now();
        let mut written = 0;
        while writing.elapsed() < Duration::from_secs_f64(secs) {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
                && let Some(n) = line.strip_prefix("written ")
            {
                written = n.trim().parse().unwrap_or(written);
            }
        }
        child.kill().context("SIGKILL")?; // SIGKILL on Unix
        let wrote_secs = writing.elapsed().as_secs_f64();
        child.wait()?;
        while let Ok(line) = rx.try_recv() {
            if let Some(n) = line.strip_prefix("written ") {
                written = n.trim().parse().unwrap_or(written);
            }
        }
        let _ = reader.join();
        let figures = spawn_open_child(&exe, store, durable)?;
        eprintln!(
            "open-time: after kill -9 of a writer that wrote {written} events in {wrote_secs:.1} s: open {:.3} s ({} events)",
            figures.open_secs, figures.last_position
        );
        out.push(OpenMeasurement {
            after: "kill9".into(),
            wrote_secs: Some(wrote_secs),
            wrote_events: Some(written),
            figures,
        });
    }
    Ok(out)
}
