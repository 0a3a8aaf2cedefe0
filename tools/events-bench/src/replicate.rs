//! W-replicate: W-append-batch's events shipped into a local single-node NATS JetStream
//! (`events_nats::LocalServer`: Debian's `nats-server` on loopback, its store in a temporary
//! directory), eventlog only. In one process, on the same pre-generated input:
//!
//! 1. append the events into a fresh store, no replicator (the append rate alone);
//! 2. replicate that whole log from position 1 into a fresh server (events shipped per second,
//!    from `EventLog::replicate` until `wait_replicated(last)`), then check the stream holds
//!    exactly the log (its last sequence and message count = the log's last position); then,
//!    on the same server, the baseline: the same payloads published straight to another stream
//!    the way the replicator publishes (one current-thread runtime, at most `max_in_flight`
//!    acks pending, awaited in order) with only the replicator's two JetStream checks
//!    (`Nats-Msg-Id`, `Nats-Expected-Last-Sequence`), no log read and no metadata headers:
//!    what this machine's JetStream takes for W's payloads;
//! 3. append the events into a second fresh store with a replicator running from the start
//!    (the append rate with replication on), sampling the replication lag every 20 ms from
//!    `Admin::metrics` until the stream has every event; counts checked as in 2;
//! 4. append them into a third fresh store, no replicator (the append rate alone again, so the
//!    ratio of 3 compares with both sides of it on a machine whose load drifts).
//!
//! The stores are buffered (W-append-batch's mode) and the replicator ships what is durable
//! (its default, `Ship::Durable`): the store's flusher makes events durable every 200 ms, so
//! that is part of the lag. `EVENTS_BENCH_REPLICATE_MAX_IN_FLIGHT` and
//! `EVENTS_BENCH_REPLICATE_READ_BATCH` set `ReplicationConfig::max_in_flight` and `read_batch`,
//! `EVENTS_BENCH_REPLICATE_LINGER_MS` its `linger` (default: the config's; `sustained
//! --replicate` reads them too).
//!
//! Without `nats-server` the workload is skipped (no figure, a note saying why), not failed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use eventlog::{EventLog, ReplicationConfig, Replicator};
use events_nats::{LocalServer, StreamReader, header};
use serde::{Deserialize, Serialize};

use crate::child::{Outcome, fresh_dir, planned_input, timed_appends};
use crate::input::{AGGREGATE_TYPE, Input, aggregate_id};
use crate::measure::{child_cpu_secs, process_cpu_secs, thread_cpu_secs};
use crate::systems::System;
use crate::systems::eventlog::Eventlog;
use crate::workload::{Append, BATCH, Shape};

/// Sets `ReplicationConfig::max_in_flight` for W-replicate.
pub const MAX_IN_FLIGHT_ENV: &str = "EVENTS_BENCH_REPLICATE_MAX_IN_FLIGHT";
/// Sets `ReplicationConfig::read_batch` for W-replicate.
pub const READ_BATCH_ENV: &str = "EVENTS_BENCH_REPLICATE_READ_BATCH";
/// Sets `ReplicationConfig::linger` (milliseconds) for W-replicate and `sustained --replicate`.
pub const LINGER_MS_ENV: &str = "EVENTS_BENCH_REPLICATE_LINGER_MS";
/// `ReplicationConfig`'s default `linger`, in milliseconds.
const LINGER_MS: usize = 50;
/// `ReplicationConfig`'s default `max_in_flight`, set explicitly so the baseline uses the same.
const MAX_IN_FLIGHT: usize = 4096;
/// `ReplicationConfig`'s default `read_batch`, set explicitly (recorded with the figures).
const READ_BATCH: usize = 2048;
/// The baseline's stream.
const BARE_STREAM: &str = "W_REPLICATE_BARE";
/// How often the lag is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// How long the stream may take to hold every event (far above any rate seen).
const WAIT: Duration = Duration::from_secs(600);
/// The replicator's threads (`events-nats-replicator`, `events-nats-replicator-io`): Linux
/// keeps 15 bytes of a thread's name, so both show as this.
const REPLICATOR_THREADS: &str = "events-nats-rep";

/// What W-replicate measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicateFigures {
    /// Events/s of the appends alone (no replicator): before shipping, and after the run with
    /// replication on.
    pub append_alone_per_s: Vec<f64>,
    /// Events shipped per second: the whole log from position 1, from `EventLog::replicate`
    /// until the stream held its last event.
    pub shipped_per_s: f64,
    /// Seconds that took.
    pub ship_secs: f64,
    /// Where the CPU went while shipping.
    pub ship_cpu: CpuSplit,
    /// The baseline: W's payloads published straight to JetStream, messages per second.
    pub bare_publish_per_s: f64,
    /// Where the CPU went while publishing them (`process_secs`: the publisher).
    pub bare_cpu: CpuSplit,
    /// `shipped_per_s / bare_publish_per_s`.
    pub shipped_vs_bare: f64,
    /// Events/s of the same appends with a replicator running.
    pub append_with_replication_per_s: f64,
    /// `append_with_replication_per_s` over the mean of `append_alone_per_s`.
    pub append_ratio: f64,
    /// Seconds from the end of those appends (their final flush) until the stream held the
    /// last event.
    pub drain_secs: f64,
    /// Where the CPU went during those appends and the drain.
    pub concurrent_cpu: CpuSplit,
    /// The lag while appending with replication on, until the stream held every event.
    pub lag: LagFigures,
    /// Messages in each stream (checked: = the log's last position = its last sequence).
    pub stream_messages: u64,
    /// Bytes JetStream reports for the shipped stream.
    pub stream_bytes: u64,
    /// Publishes that failed, over both replicators (each ends a session).
    pub publish_errors: u64,
    /// Sessions over both replicators (1 each when nothing failed).
    pub sessions: u64,
    /// `ReplicationConfig::max_in_flight` (and the baseline's).
    pub max_in_flight: usize,
    /// `ReplicationConfig::read_batch`.
    pub read_batch: usize,
    /// `ReplicationConfig::linger`, milliseconds.
    pub linger_ms: usize,
}

/// CPU seconds (user + system) over one phase.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CpuSplit {
    /// Wall-clock seconds of the phase.
    pub wall_secs: f64,
    /// This whole process (appender, store threads and the replicator).
    pub process_secs: f64,
    /// The replicator's threads (its runtime and its log reads).
    pub replicator_secs: f64,
    /// The `nats-server` process.
    pub nats_server_secs: f64,
}

/// Replication lag, sampled every [`SAMPLE_EVERY`] from `Admin::metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LagFigures {
    /// Samples taken.
    pub samples: usize,
    /// Milliseconds between samples.
    pub interval_ms: f64,
    /// `replication_lag_events`: committed events not yet in the stream.
    pub p50_events: u64,
    /// 99th percentile.
    pub p99_events: u64,
    /// Largest.
    pub max_events: u64,
    /// How long the oldest event not yet in the stream had been committed, in seconds: an
    /// upper bound, from the samples' (time, last position) pairs (it was committed after the
    /// last sample whose last position was below it), so at most one interval too high.
    pub p50_secs: f64,
    /// 99th percentile.
    pub p99_secs: f64,
    /// Largest.
    pub max_secs: f64,
}

/// One lag sample.
#[derive(Debug, Clone, Copy)]
struct LagSample {
    /// Seconds since the appends began.
    t: f64,
    /// The log's last position.
    last: u64,
    /// Every event up to here is in the stream.
    replicated: u64,
    /// `replication_lag_events` as the metrics report it.
    lag_events: u64,
}

/// The replicator's settings: the config's defaults, or the environment's.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    max_in_flight: usize,
    read_batch: usize,
    linger_ms: usize,
}

impl Settings {
    /// The defaults, or what the environment sets.
    pub fn from_env() -> anyhow::Result<Self> {
        let read = |name: &str, default: usize| -> anyhow::Result<usize> {
            std::env::var(name).map_or(Ok(default), |v| {
                v.trim().parse().with_context(|| format!("{name}={v}"))
            })
        };
        Ok(Self {
            max_in_flight: read(MAX_IN_FLIGHT_ENV, MAX_IN_FLIGHT)?,
            read_batch: read(READ_BATCH_ENV, READ_BATCH)?,
            linger_ms: read(LINGER_MS_ENV, LINGER_MS)?,
        })
    }

    /// A replicator's config with these settings.
    pub fn config(self, url: &str, stream: &str) -> ReplicationConfig {
        ReplicationConfig::new(url)
            .stream(stream)
            .max_in_flight(self.max_in_flight)
            .read_batch(self.read_batch)
            .linger(Duration::from_millis(self.linger_ms as u64))
    }
}

/// A fresh `nats-server`, or `None` when there is no such binary.
pub fn start_server() -> anyhow::Result<Option<LocalServer>> {
    match LocalServer::start() {
        Ok(server) => Ok(Some(server)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("starting nats-server"),
    }
}

/// The CPU counters a phase is measured between.
struct CpuMark {
    at: Instant,
    process: f64,
    replicator: f64,
    server: f64,
}

impl CpuMark {
    /// The counters now.
    fn now() -> Self {
        Self {
            at: Instant::now(),
            process: process_cpu_secs(),
            replicator: thread_cpu_secs(&[REPLICATOR_THREADS])[0],
            server: child_cpu_secs("nats-server"),
        }
    }

    /// Since `self` (taken while the replicator's threads are alive: a thread's time leaves
    /// `/proc` with it).
    fn since(&self) -> CpuSplit {
        let now = Self::now();
        CpuSplit {
            wall_secs: now.at.duration_since(self.at).as_secs_f64(),
            process_secs: now.process - self.process,
            replicator_secs: now.replicator - self.replicator,
            nats_server_secs: now.server - self.server,
        }
    }
}

/// Stops `replicator` and checks that the stream holds exactly `last` events, the last at
/// sequence `last`; returns the stream's bytes, publish errors and sessions.
fn stop_and_check(
    replicator: Replicator,
    url: &str,
    stream: &str,
    last: u64,
) -> anyhow::Result<(u64, u64, u64)> {
    let status = replicator.stop()?;
    ensure!(
        status.replicated_position == last,
        "{stream}: replicated up to {} of {last}",
        status.replicated_position
    );
    let summary = StreamReader::connect(url, stream, Duration::from_secs(30))?.summary()?;
    ensure!(
        summary.last_sequence == last && summary.messages == last,
        "{stream}: the stream holds {} messages up to sequence {}, the log {last} events",
        summary.messages,
        summary.last_sequence
    );
    Ok((summary.bytes, status.publish_errors, status.sessions))
}

/// W-replicate (see the module's documentation).
pub fn replicate_workload(dir: &Path, shape: Shape) -> anyhow::Result<Outcome> {
    fresh_dir(dir)?;
    let settings = Settings::from_env()?;
    let Some(server) = start_server()? else {
        return Ok(Outcome {
            events: shape.events,
            writers: shape.writers,
            note: Some(
                "skipped: no nats-server binary (install nats-server, or set NATS_SERVER_BIN)"
                    .into(),
            ),
            ..Outcome::default()
        });
    };
    let (input, plans, input_rss) = planned_input(shape)?;
    let events = shape.events as u64;

    // 1 and 2: appends alone, then the whole log shipped.
    let store = dir.join("alone-then-shipped");
    let system = Eventlog::open(&store, false)?;
    let alone_first = timed_appends(&system, &plans, &input)?.total;
    let last = system.log().last_position()?.get();
    ensure!(last == events, "the log ends at {last}, expected {events}");
    let url = server.url();
    let cpu = CpuMark::now();
    let started = Instant::now();
    let replicator = system
        .log()
        .replicate(settings.config(&url, "W_REPLICATE_SHIPPED"))?;
    ensure!(
        replicator.wait_replicated(last, WAIT),
        "shipping: the stream holds {} of {last} events after {WAIT:?} ({:?})",
        replicator.replicated_position(),
        replicator.status().last_error
    );
    let ship = started.elapsed();
    let ship_cpu = cpu.since();
    let (stream_bytes, errors_shipped, sessions_shipped) =
        stop_and_check(replicator, &url, "W_REPLICATE_SHIPPED", last)?;
    system.close()?;
    std::fs::remove_dir_all(&store)?;
    let (bare_publish_per_s, bare_cpu) = bare_publish(&url, &input, settings.max_in_flight)?;
    drop(server);

    // 3: appends with replication on.
    let server = start_server()?.context("nats-server vanished")?;
    let concurrent = with_replication(&dir.join("replicated"), &server, settings, &plans, &input)?;

    // 4: appends alone again.
    let store = dir.join("alone-again");
    let system = Eventlog::open(&store, false)?;
    let alone_again = timed_appends(&system, &plans, &input)?.total;
    system.close()?;
    std::fs::remove_dir_all(&store)?;

    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let alone = vec![rate(alone_first), rate(alone_again)];
    let with = rate(concurrent.appends);
    let drained = concurrent.drained;
    let ship_secs = ship.as_secs_f64();
    let shipped_per_s = events as f64 / ship_secs;
    Ok(Outcome {
        events: shape.events,
        writers: shape.writers,
        durable: false,
        events_per_s: Some(shipped_per_s),
        secs: Some(ship_secs),
        input_rss_bytes: input_rss,
        replicate: Some(ReplicateFigures {
            append_ratio: with / (alone.iter().sum::<f64>() / alone.len() as f64),
            append_alone_per_s: alone,
            shipped_per_s,
            ship_secs,
            ship_cpu,
            bare_publish_per_s,
            bare_cpu,
            shipped_vs_bare: shipped_per_s / bare_publish_per_s,
            append_with_replication_per_s: with,
            drain_secs: drained.drain.as_secs_f64(),
            concurrent_cpu: drained.cpu,
            lag: drained.lag,
            stream_messages: last,
            stream_bytes,
            publish_errors: errors_shipped + drained.publish_errors,
            sessions: sessions_shipped + drained.sessions,
            max_in_flight: settings.max_in_flight,
            read_batch: settings.read_batch,
            linger_ms: settings.linger_ms,
        }),
        ..Outcome::default()
    })
}

/// The baseline (see the module's documentation): `input`'s payloads published to a new
/// stream configured as the replicator configures its own; messages per second and the CPU.
fn bare_publish(url: &str, input: &Input, max_in_flight: usize) -> anyhow::Result<(f64, CpuSplit)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = async_nats::connect(url).await?;
        let js = jetstream::context::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .max_ack_inflight(max_in_flight)
            .backpressure_on_inflight(true)
            .build(client);
        js.create_stream(stream::Config {
            name: BARE_STREAM.into(),
            subjects: vec![format!("{BARE_STREAM}.>")],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..stream::Config::default()
        })
        .await?;
        let (acks_tx, mut acks_rx) = tokio::sync::mpsc::channel(max_in_flight);
        let cpu = CpuMark::now();
        let send = async {
            for i in 0..input.len() {
                let sequence = i as u64 + 1;
                let mut headers = HeaderMap::new();
                headers.insert(header::NATS_MSG_ID, input.id(i).to_string().as_str());
                headers.insert(
                    header::NATS_EXPECTED_LAST_SEQUENCE,
                    (sequence - 1).to_string().as_str(),
                );
                let aggregate = aggregate_id((i / BATCH) as u32);
                let message = PublishMessage::build()
                    .payload(bytes::Bytes::copy_from_slice(input.payload(i)))
                    .headers(headers);
                let ack = js
                    .send_publish(
                        events_nats::subject(BARE_STREAM, AGGREGATE_TYPE, &aggregate),
                        message,
                    )
                    .await?;
                acks_tx.send((sequence, ack)).await?;
            }
            drop(acks_tx);
            Ok::<_, anyhow::Error>(())
        };
        let acks = async {
            while let Some((sequence, ack)) = acks_rx.recv().await {
                let ack = ack.await?;
                ensure!(
                    ack.sequence == sequence,
                    "the baseline's message {sequence} was stored as {}",
                    ack.sequence
                );
            }
            Ok(())
        };
        tokio::try_join!(send, acks)?;
        let cpu = cpu.since();
        Ok((input.len() as f64 / cpu.wall_secs, cpu))
    })
}

/// What the appends with replication on measured.
struct Concurrent {
    appends: Duration,
    drained: Drained,
}

/// Appends `plans` into a fresh store at `store` with a replicator running from the start,
/// sampling the lag until the stream holds every event.
fn with_replication(
    store: &Path,
    server: &LocalServer,
    settings: Settings,
    plans: &[Vec<Append>],
    input: &Input,
) -> anyhow::Result<Concurrent> {
    let system = Eventlog::open(store, false)?;
    let live = LiveReplication::start(system.log(), server.url(), "W_REPLICATE_LIVE", settings)?;
    let appends = timed_appends(&system, plans, input)?.total;
    let last = system.log().last_position()?.get();
    let drained = live.finish(last)?;
    system.close()?;
    std::fs::remove_dir_all(store)?;
    Ok(Concurrent { appends, drained })
}

/// A replicator started on a log, its lag sampled every [`SAMPLE_EVERY`] on a thread of its
/// own and the CPU counted from the start: what runs beside a workload that writes.
pub struct LiveReplication {
    replicator: Replicator,
    url: String,
    stream: String,
    sampling: StopOnDrop,
    sampler: std::thread::JoinHandle<anyhow::Result<Vec<LagSample>>>,
    cpu: CpuMark,
}

/// What a [`LiveReplication`] measured, once the stream held the whole log.
pub struct Drained {
    /// From [`LiveReplication::finish`] until the stream held the last event.
    pub drain: Duration,
    /// From the start until then.
    pub cpu: CpuSplit,
    /// The lag over the same time.
    pub lag: LagFigures,
    /// Publishes that failed.
    pub publish_errors: u64,
    /// The replicator's sessions.
    pub sessions: u64,
}

/// Sets its flag when dropped: the sampler stops even when the workload fails.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl LiveReplication {
    /// Starts replicating `log` into `stream` at `url` with `settings`, and sampling.
    pub fn start(
        log: &EventLog,
        url: String,
        stream: &str,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let replicator = log.replicate(settings.config(&url, stream))?;
        let stop = Arc::new(AtomicBool::new(false));
        let cpu = CpuMark::now();
        let sampler = {
            let (log, stop) = (log.clone(), Arc::clone(&stop));
            let epoch = Instant::now();
            std::thread::Builder::new()
                .name("lag-sampler".into())
                .spawn(move || sample_lag(&log, epoch, &stop))?
        };
        Ok(Self {
            replicator,
            url,
            stream: stream.to_owned(),
            sampling: StopOnDrop(stop),
            sampler,
            cpu,
        })
    }

    /// Waits until the stream holds the log up to `last`, stops sampling and the replicator,
    /// and checks the stream holds exactly that.
    pub fn finish(self, last: u64) -> anyhow::Result<Drained> {
        let draining = Instant::now();
        ensure!(
            self.replicator.wait_replicated(last, WAIT),
            "{}: the stream holds {} of {last} events after {WAIT:?} ({:?})",
            self.stream,
            self.replicator.replicated_position(),
            self.replicator.status().last_error
        );
        let drain = draining.elapsed();
        let cpu = self.cpu.since();
        drop(self.sampling);
        let samples = self
            .sampler
            .join()
            .map_err(|_| anyhow!("the lag sampler panicked"))??;
        let (_, publish_errors, sessions) =
            stop_and_check(self.replicator, &self.url, &self.stream, last)?;
        Ok(Drained {
            drain,
            cpu,
            lag: lag_figures(&samples),
            publish_errors,
            sessions,
        })
    }
}

/// Samples the log's last position and its replicator's progress every [`SAMPLE_EVERY`] until
/// `stop`.
fn sample_lag(log: &EventLog, epoch: Instant, stop: &AtomicBool) -> anyhow::Result<Vec<LagSample>> {
    let mut samples = Vec::new();
    loop {
        let metrics = log.admin().metrics()?;
        let replication = metrics
            .replication
            .first()
            .context("the metrics list no replicator")?;
        samples.push(LagSample {
            t: epoch.elapsed().as_secs_f64(),
            last: metrics.store.last_position,
            replicated: replication.replicated_position,
            lag_events: replication.replication_lag_events,
        });
        if stop.load(Ordering::Relaxed) {
            return Ok(samples);
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// The `q` quantile of sorted `values` (nearest rank).
fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The lag in events and in seconds over `samples`.
fn lag_figures(samples: &[LagSample]) -> LagFigures {
    let mut events: Vec<u64> = samples.iter().map(|s| s.lag_events).collect();
    let mut secs: Vec<f64> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.replicated >= s.last {
                return 0.0;
            }
            // The first sample whose last position covers the oldest event not yet shipped:
            // that event was committed after the sample before it.
            let covered = samples[..=i].partition_point(|earlier| earlier.last <= s.replicated);
            let after = covered.checked_sub(1).map_or(0.0, |j| samples[j].t);
            s.t - after
        })
        .collect();
    events.sort_unstable();
    secs.sort_by(f64::total_cmp);
    LagFigures {
        samples: samples.len(),
        interval_ms: SAMPLE_EVERY.as_secs_f64() * 1e3,
        p50_events: quantile(&events, 0.5),
        p99_events: quantile(&events, 0.99),
        max_events: events.last().copied().unwrap_or(0),
        p50_secs: quantile(&secs, 0.5),
        p99_secs: quantile(&secs, 0.99),
        max_secs: secs.last().copied().unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn sample(t: f64, last: u64, replicated: u64) -> LagSample {
        LagSample {
            t,
            last,
            replicated,
            lag_events: last - replicated,
        }
    }

    #[test]
    fn lag_in_seconds_dates_the_oldest_unshipped_event_from_the_samples() {
        let samples = [
            sample(0.0, 0, 0),
            sample(0.1, 100, 0),
            sample(0.2, 200, 100),
            sample(0.3, 300, 300),
            sample(0.4, 300, 250),
        ];
        let lag = lag_figures(&samples);
        // Sample 1: event 1 was committed after t=0.0: 0.1 s. Sample 2: event 101 after t=0.1:
        // 0.1 s. Sample 4 (made up: shipped fell back): event 251 after t=0.2: 0.2 s.
        assert_eq!(lag.samples, 5);
        assert!((lag.max_secs - 0.2).abs() < 1e-9, "{lag:?}");
        assert!((lag.p50_secs - 0.1).abs() < 1e-9, "{lag:?}");
        assert_eq!((lag.p50_events, lag.max_events), (50, 100));
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), 50);
        assert_eq!(quantile(&values, 0.99), 99);
        assert_eq!(quantile(&values, 1.0), 100);
        assert_eq!(quantile::<u64>(&[], 0.5), 0);
    }
}
