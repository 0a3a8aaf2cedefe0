//! The command line: every option of the daemon, with its default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The default store directory, relative to the working directory.
pub const DEFAULT_STORE: &str = "./omni-writer-data";

/// The Omni Writer daemon, with SIMULATED generation: it runs article-generation pipelines
/// (prompt validation, cache lookups, generation with retries, cache writes) and records every
/// operation as an event in an embedded eventlog store. No language model is called: prompts,
/// outcomes, delays and articles are drawn from a seeded random generator.
///
/// It runs until SIGINT (Ctrl-C) or SIGTERM, or until `--pipelines` or `--duration` is reached.
/// On a stop it finishes the prompt in flight, closes the pipeline (as `pipeline_failed`,
/// error type `Interrupted`, when prompts remain), flushes, takes a checkpoint if asked and
/// exits 0. A restart on the same store continues the pipeline numbering.
#[derive(Debug, Parser)]
#[command(name = "omni-writer", version, about, long_about)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The store directory (created if missing).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STORE)]
    pub store: PathBuf,

    /// Stop after this many pipelines (default: run until stopped).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pipelines: Option<u64>,

    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = positive)]
    pub duration: Option<f64>,

    /// Most events written per second, over all workers (default: unlimited).
    #[arg(long, value_name = "EVENTS_PER_SEC", value_parser = positive)]
    pub rate: Option<f64>,

    /// `durable`: an append returns once it is on disk (survives kill -9 and power loss).
    /// `buffered`: once it is readable; flushed every 200 ms.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Durable)]
    pub durability: DurabilityArg,

    /// Seed of the simulation (default: random, printed in the summary). Pipeline N of a
    /// seed always holds the same events: see `--help` below.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Pipelines run at once, one per worker thread (their appends share disk flushes).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// Take a checkpoint every SECS seconds while running, and one on exit.
    #[arg(long, value_name = "SECS", value_parser = positive)]
    pub checkpoint_every: Option<f64>,

    /// Take a checkpoint on exit.
    #[arg(long)]
    pub checkpoint_on_exit: bool,

    /// For crash testing: append one line per append call to FILE, `begin COUNT FIRST_EVENT_ID
    /// HASH` before the call and `ack FIRST_POSITION LAST_POSITION COUNT HASH` once it returned
    /// (HASH: BLAKE3, hex, of the event ids' 16 bytes in append order). An `ack` line is written
    /// only for an acknowledged append; `tools/torture` checks them after killing the daemon.
    #[arg(long, value_name = "FILE")]
    pub ack_log: Option<PathBuf>,

    /// Serve the operators' HTTP surface on ADDR, an IP address and a port (127.0.0.1:9464; no
    /// host names): GET /metrics (OpenMetrics text, the Prometheus format), /health and /ready;
    /// see "HTTP" below. Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// With --http: seconds the daemon keeps serving after a failure (its store failed, or an
    /// append failed), /ready answering 503 with the reason, before it exits 1. 0: exit at once.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = non_negative)]
    pub http_linger: f64,

    /// Appends are refused while the store's filesystem has less than MIB mebibytes free; the
    /// daemon then stops (exit 1) with nothing half-written. 0 turns the check off: a disk that
    /// fills up then fails the store's writes ("no space left on device"), which also stops it.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub min_free_disk: u64,

    /// This daemon's writer id, 1 to 65535: every aggregate id it writes carries it
    /// (`pipeline-wK-000001`, `cache-wK-...`), its event ids and content come from generator
    /// streams of its own, and its default --stream is EVENTLOG-W<K>. Daemons with different ids
    /// (each on its own store) never write the same aggregate or event; their streams merge into
    /// one feed (see "Replication" below). A restart continues this writer's numbering. Without
    /// it: today's ids (`pipeline-000001`).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub writer_id: Option<u16>,

    /// Replicate the log into NATS JetStream at URL (`nats://host:port`, or several
    /// comma-separated: a cluster's nodes): every event in log order, exactly once, the
    /// stream's sequence equal to its position. Appends never wait for NATS; see "Replication"
    /// below. Off unless given.
    #[arg(long, value_name = "URL")]
    pub replicate: Option<String>,

    /// With --replicate: the stream this store owns (letters, digits, `-`, `_`). Default:
    /// EVENTLOG, or EVENTLOG-W<K> with --writer-id K.
    #[arg(long, value_name = "NAME", requires = "replicate")]
    pub stream: Option<String>,

    /// With --replicate: replicas of the stream when it is created (1 to 5; a cluster needs as
    /// many nodes). An existing stream keeps its own.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,

    /// With --replicate: `durable` ships an event once it is on disk (the stream never gets
    /// ahead of the log); `committed` once it is readable (lower lag with --durability
    /// buffered, but a crash of the daemon can then leave the stream ahead of the log, which
    /// the replicator refuses on the next run).
    #[arg(long, value_enum, default_value_t = ShipArg::Durable)]
    pub ship: ShipArg,

    /// With --replicate: seconds a stop waits for the stream to catch up with the log before
    /// the replicator stops; what is left is shipped by the next run.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = non_negative)]
    pub replicate_drain: f64,

    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Seconds between progress log lines when stderr is not a terminal.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = positive)]
    pub progress_every: f64,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, RUST_LOG syntax (`info`, `omni_writer=debug,eventlog=info`). Default: the
    /// RUST_LOG environment variable, else `info`.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

const AFTER_HELP: &str = "\
Signals:
  SIGINT, SIGTERM  stop: finish the prompt in flight, close the pipelines, flush, checkpoint
                   (with --checkpoint-every or --checkpoint-on-exit), exit 0. A second one exits
                   at once with status 130 (durable appends are on disk all the same).
  SIGUSR1          take a checkpoint now, into <store>/checkpoints (readable with
                   `events-dump --checkpoint FILE` or `events-dump --latest-checkpoint`).

What --seed guarantees:
  Pipeline number N of seed S always holds the same events: the same event ids, types,
  aggregates, payloads, trace/correlation/causation ids and user/session ids, in the same order
  within the pipeline. Only wall-clock values differ (event timestamps and
  article_generation_started.started_at), and a pipeline cut short by a stop ends differently.
  Aggregates owned by one pipeline (pipeline-*, val-*, gen-*, retry-*) therefore hold the same
  events at the same versions. Cache entries (cache-*) are shared by pipelines: they receive the
  same events, but with several workers the interleaving of pipelines in the global log (and so
  positions and cache versions) varies; with --workers 1 the whole log is the same run after run.
  A restart continues numbering, so running 10 pipelines then 10 more writes the same pipelines
  as running 20. With --writer-id K the same holds for pipeline N of seed S and writer K.

Replication (--replicate URL):
  Once the store is open the daemon starts a replicator: on its own threads it ships the log
  (by default every durable event) into the stream, whose sequence is the log position, so a
  restart, a kill -9 or a NATS outage never duplicates nor skips an event. When NATS is
  unreachable the daemon starts (after waiting up to 5 s for it) and appends all the same; the
  replicator retries in the background and catches up from the store. If the stream belongs
  to another store, or disagrees with the log, replication stops for good (logged as an
  error): the daemon goes on appending (appends never wait for the network), /ready answers
  503 with the reason, and the summary shows the error. On a stop the daemon stops
  generating, flushes, waits up to --replicate-drain seconds for the stream to reach the last
  position, stops the replicator and reports the replicated position in its summary.
  Several writers: give each daemon its own --writer-id (and store); each replicates into its
  own stream (EVENTLOG-W<K>), and `events-dump --nats URL merge --stream ALL --sources
  EVENTLOG-W1,EVENTLOG-W2` feeds one stream with all of them (each writer's events in its own
  log order).

HTTP (--http ADDR; every answer but /metrics is a small JSON object):
  GET /metrics  200, OpenMetrics text: events appended by type, append latency, the store's group
                sizes and log sync latency, subscription lag, positions, checkpoint age,
                resident memory, store failure (0/1); with --replicate, per stream: replicated
                position, lag in events, messages published, publish errors, disconnects,
                reconnects and the replicator's state.
  GET /health   200 {\"status\":\"alive\"} while the process serves.
  GET /ready    200 {\"status\":\"ready\",\"last_position\":N,...} while the store is open, has not
                failed, replication (with --replicate) has not failed and the daemon is not
                stopping; else 503 {\"status\":\"not_ready\",\"reason\":...}.
  other paths   404 {\"status\":\"not_found\",...}.
  After a failure the daemon keeps serving (/ready 503) for --http-linger seconds, then exits 1;
  a SIGINT/SIGTERM ends that wait. The server stops before the store closes.

Exit status: 0 on a clean stop; 1 on an error (the store could not be opened, an append failed);
2 on bad arguments.";

/// `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Appends return once on disk.
    Durable,
    /// Appends return once readable; flushed every 200 ms.
    Buffered,
}

/// `--ship`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShipArg {
    /// Events on disk only.
    Durable,
    /// Every committed event.
    Committed,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses a finite number of seconds, zero or more.
fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Ok(value) => Err(format!("must be zero or a positive number, not {value}")),
        Err(e) => Err(format!("`{text}` is not a number: {e}")),
    }
}

/// Parses a positive, finite number (seconds or events per second).
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        Ok(value) => Err(format!("must be a positive number, not {value}")),
        Err(e) => Err(format!("`{text}` is not a number: {e}")),
    }
}
