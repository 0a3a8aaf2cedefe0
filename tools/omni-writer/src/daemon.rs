//! One run of the daemon: open the store, start the threads, wait for the end, shut down in
//! order (workers, flush, checkpoint, close), and sum up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use eventlog::{Durability, EventLog, EventLogConfig, StoreLimits};

use crate::acklog::AckLog;
use crate::checkpoints::{self, Checkpointer, Taken};
use crate::cli::{Args, DurabilityArg};
use crate::control::Control;
use crate::emitter::Writer;
use crate::http::HttpServer;
use crate::http::metrics::AppendMetrics;
use crate::logging::BarSlot;
use crate::progress::Reporter;
use crate::rate::RateLimiter;
use crate::replication::Replication;
use crate::runner::{self, Counters, Shared};
use crate::signals::SignalThread;
use crate::summary::Summary;

fn durability(arg: DurabilityArg) -> (Durability, &'static str) {
    match arg {
        DurabilityArg::Durable => (Durability::Durable, "durable"),
        DurabilityArg::Buffered => (Durability::Buffered, "buffered"),
    }
}

/// A seed from the clock and the process id, for runs without `--seed`. Kept below 2^32 so it
/// is short to retype and exact in any JSON reader.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut input = nanos.to_be_bytes().to_vec();
    input.extend_from_slice(&std::process::id().to_be_bytes());
    let hash = blake3::hash(&input);
    let mut bytes = [0_u8; 4];
    bytes.copy_from_slice(&hash.as_bytes()[..4]);
    u64::from(u32::from_be_bytes(bytes))
}

/// The helper threads around the workers: checkpoints, signals, progress.
struct Helpers {
    checkpointer: Option<Checkpointer>,
    signals: SignalThread,
    reporter: Option<std::thread::JoinHandle<()>>,
}

impl Helpers {
    /// Starts them; on a failure, the ones already started are stopped and joined.
    fn start(
        args: &Args,
        log: &EventLog,
        control: &Arc<Control>,
        counters: &Arc<Counters>,
        taken: &Arc<Taken>,
        slot: &BarSlot,
    ) -> anyhow::Result<Self> {
        let every = args.checkpoint_every.map(Duration::from_secs_f64);
        let checkpointer = Checkpointer::spawn(log.clone(), every, Arc::clone(taken))?;
        let signals = match SignalThread::spawn(Arc::clone(control), checkpointer.sender()) {
            Ok(signals) => signals,
            Err(error) => {
                checkpointer.stop();
                return Err(error);
            }
        };
        let mut helpers = Self {
            checkpointer: Some(checkpointer),
            signals,
            reporter: None,
        };
        let reporter = Reporter {
            log: log.clone(),
            counters: Arc::clone(counters),
            control: Arc::clone(control),
            pipelines: args.pipelines,
            every: Duration::from_secs_f64(args.progress_every),
            slot: slot.clone(),
        };
        match reporter.spawn() {
            Ok(handle) => helpers.reporter = Some(handle),
            Err(error) => {
                helpers.finish();
                return Err(error);
            }
        }
        Ok(helpers)
    }

    /// Joins the progress thread (it ends once a stop is requested) and clears the bar.
    fn stop_progress(&mut self) {
        if let Some(handle) = self.reporter.take()
            && handle.join().is_err()
        {
            tracing::error!(name: "omni_writer_progress_panicked", "the progress thread panicked");
        }
    }

    /// Joins the checkpoint thread, after the checkpoint it may be taking.
    fn stop_checkpoints(&mut self) {
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
    }

    /// Joins every helper (a stop must have been requested).
    fn finish(mut self) {
        self.stop_progress();
        self.stop_checkpoints();
        self.signals.close();
    }
}

/// Runs the workers until the end; returns why they stopped and the first worker error.
fn work(args: &Args, shared: &Arc<Shared>, started: Instant) -> (String, anyhow::Result<()>) {
    let result = runner::spawn_workers(shared, args.workers).and_then(|workers| {
        let deadline = args
            .duration
            .map(|secs| started + Duration::from_secs_f64(secs));
        shared.control.wait_for_workers(workers.len(), deadline);
        runner::join_workers(workers)
    });
    shared.control.stop("--pipelines reached");
    (shared.control.reason().unwrap_or_default(), result)
}

/// Runs the daemon as `args` say.
///
/// # Errors
///
/// When the store cannot be opened, a thread cannot start, or an append or the close fails.
pub fn run(args: &Args, slot: &BarSlot) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (mode, mode_name) = durability(args.durability);
    let seed = args.seed.unwrap_or_else(random_seed);
    let min_free_disk_bytes = args.min_free_disk.saturating_mul(1 << 20);
    let config = EventLogConfig::new(&args.store)
        .registry(omni_domain::registry())
        .durability(mode)
        .snapshot_every(None)
        .store(|s| {
            s.limits(StoreLimits {
                min_free_disk_bytes,
                ..StoreLimits::default()
            })
        });
    let log = EventLog::open(config)
        .with_context(|| format!("opening the store at {}", args.store.display()))?;
    let writer = Writer::new(args.writer_id);
    let first = runner::next_pipeline_number(&log, writer)?;
    // Before the workers: appends made meanwhile are shipped all the same (from the store).
    let replication = Replication::start(args, &log)?;
    let ack_log = args.ack_log.as_deref().map(AckLog::open).transpose()?;
    let control = Arc::new(Control::default());
    let counters = Arc::new(Counters::default());
    let taken = Arc::new(Taken::default());
    let append_metrics = Arc::new(AppendMetrics::default());
    let http = args
        .http
        .map(|addr| {
            let refused = replication.as_ref().and_then(Replication::refused);
            HttpServer::start(addr, &log, &control, &append_metrics, &taken, refused)
        })
        .transpose()?;
    let helpers = match Helpers::start(args, &log, &control, &counters, &taken, slot) {
        Ok(helpers) => helpers,
        Err(error) => {
            if let Some(http) = http {
                http.stop();
            }
            return Err(error);
        }
    };
    // Logged once the signal handlers are installed: from here a SIGTERM stops cleanly.
    tracing::info!(
        name: "omni_writer_started",
        store = %args.store.display(),
        durability = mode_name,
        seed,
        workers = args.workers,
        first_pipeline = first,
        writer_id = args.writer_id.map_or_else(|| "none".to_string(), |k| k.to_string()),
        replicate = %replication.as_ref().map_or("off", Replication::stream),
        last_position = log.last_position()?.get(),
        http = %http.as_ref().map_or_else(|| "off".to_string(), |h| h.addr().to_string()),
        "omni-writer started; generation is SIMULATED (no language model is called)"
    );

    let shared = Arc::new(Shared {
        log: log.clone(),
        control: Arc::clone(&control),
        limiter: args.rate.map(RateLimiter::new),
        counters: Arc::clone(&counters),
        seed,
        writer,
        next: AtomicU64::new(first),
        end: args.pipelines.map(|n| first + n),
        ack_log,
        append_metrics: http.as_ref().map(|_| Arc::clone(&append_metrics)),
    });
    counters.last_pipeline.store(first - 1, Ordering::Relaxed);
    let (stopped_by, worked) = work(args, &shared, started);
    drop(shared);
    if let (Some(_), Err(error)) = (&http, &worked)
        && args.http_linger > 0.0
    {
        tracing::warn!(
            name: "omni_writer_lingering",
            error = %format!("{error:#}"),
            secs = args.http_linger,
            "failed: /ready answers 503 for --http-linger seconds, then the daemon exits 1 (SIGTERM ends the wait)"
        );
        control.linger(Duration::try_from_secs_f64(args.http_linger).unwrap_or(Duration::MAX));
    }

    // Shut down in order: progress off screen, everything on disk, checkpoint, HTTP off, close.
    let mut helpers = helpers;
    helpers.stop_progress();
    let flushed = log.flush().context("flushing the store");
    helpers.stop_checkpoints();
    if flushed.is_ok() && (args.checkpoint_every.is_some() || args.checkpoint_on_exit) {
        checkpoints::take(&log, "exit", &taken);
    }
    let last_position = log.last_position().map(|p| p.get());
    // Stop generating, flush, then let the stream catch up (bounded) before the store closes.
    let replication = replication.map(|replication| {
        let drain = if flushed.is_ok() {
            // Capped: a deadline must stay representable (about 30 years is "forever").
            Duration::from_secs_f64(args.replicate_drain.min(1e9))
        } else {
            Duration::ZERO
        };
        replication.finish(last_position.as_ref().map_or(0, |p| *p), drain)
    });
    helpers.finish();
    if let Some(http) = http {
        http.stop();
    }
    let closed = log.close().context("closing the store");
    worked?;
    let last_position = last_position?;
    let durable_position = flushed?.get();
    closed?;

    let elapsed = started.elapsed().as_secs_f64();
    let events = counters.events.load(Ordering::Relaxed);
    let (checkpoints, last_checkpoint) = taken.get();
    let summary = Summary {
        simulated: true,
        events,
        events_per_sec: if elapsed > 0.0 {
            (events as f64 / elapsed).round()
        } else {
            0.0
        },
        last_position,
        durable_position,
        elapsed_secs: (elapsed * 1000.0).round() / 1000.0,
        pipelines: counters.pipelines(),
        pipelines_completed: counters.completed.load(Ordering::Relaxed),
        pipelines_failed: counters.failed.load(Ordering::Relaxed),
        pipelines_interrupted: counters.interrupted.load(Ordering::Relaxed),
        first_pipeline: first,
        last_pipeline: counters.last_pipeline.load(Ordering::Relaxed),
        appends: counters.appends.load(Ordering::Relaxed),
        seed,
        writer_id: args.writer_id,
        durability: mode_name.to_string(),
        workers: args.workers,
        stopped_by,
        checkpoints,
        last_checkpoint,
        store: args.store.clone(),
        replication,
    };
    tracing::info!(
        name: "omni_writer_stopped",
        events,
        events_per_sec = summary.events_per_sec,
        last_position,
        durable_position,
        elapsed_secs = summary.elapsed_secs,
        pipelines = summary.pipelines,
        "omni-writer stopped"
    );
    Ok(summary)
}
