//! The command line: a source (store, checkpoint, or the store's newest checkpoint) and one
//! command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default store directory: where `omni-writer` writes by default.
pub const DEFAULT_STORE: &str = "./omni-writer-data";

/// Inspect an eventlog store, or a checkpoint of it, from the shell.
///
/// Reads a store directory (default `./omni-writer-data`, where omni-writer writes), or a
/// checkpoint file. A store held by a running process (the daemon) is read live, read-only,
/// from its log files: `log` (and `log --follow`, which tails it as the daemon appends),
/// `stream`, `streams`, `types` and `info` work on it and see what the daemon has written so
/// far. `snapshot`, `state`, `verify` and `checkpoint export` need the store's sled data, which
/// only the daemon can read: stop it, or read its newest checkpoint with `--latest-checkpoint`
/// (take one with `kill -USR1 <daemon pid>`).
///
/// Read commands print aligned tables; with `--json` they print JSON Lines (one object per
/// line: one per event for `log` and `stream`), ready for jq.
#[derive(Debug, Parser)]
#[command(name = "events-dump", version, about, long_about)]
#[command(after_help = AFTER_HELP)]
pub struct Cli {
    /// Where to read from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// Read a NATS JetStream stream instead (`log`, `stream`, `tail`, `info`), restore a store
    /// from one (`restore`), or merge several (`merge`).
    #[command(flatten)]
    pub nats: NatsArgs,

    /// Print JSON Lines instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, RUST_LOG syntax. Default: the RUST_LOG environment variable, else `warn`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const AFTER_HELP: &str = "\
JSON Lines event fields, in order: position, event_id, event_type, aggregate_type, aggregate_id,
version, timestamp, trace_id, user_id, session_id, source, correlation_id, causation_id,
schema_version, payload. The payload is decoded (and upcast: schema_version is then the current
one). An event whose type is unknown, or whose payload does not decode, keeps its stored
schema_version and shows `\"payload\": {\"hex\": \"...\", \"len\": N}` plus `\"payload_error\"`.

With --nats URL (and --stream NAME, default EVENTLOG), `log`, `stream`, `tail` and `info` read
that JetStream stream instead of a store, in the same formats (`log --from` and `tail --from` are
stream sequences: positions, in a store's own stream); `restore --into DIR` rebuilds a store
from it, and `merge --sources A,B` merges several into it. Other commands need a store.

Exit status: 0 success (also when the reader of stdout goes away, as with `| head`);
1 `verify` or `checkpoint verify` found the store or file inconsistent; 2 an error (bad
arguments, no store, a command that needs a store in use by a running process, a damaged file).";

/// Where events come from: one of a store directory, a checkpoint file, or the newest
/// checkpoint of the store.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The store directory.
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_STORE)]
    pub store: PathBuf,

    /// Read this checkpoint file instead of the store (verified and imported into a temporary
    /// directory first).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "latest_checkpoint"
    )]
    pub checkpoint: Option<PathBuf>,

    /// Read the newest checkpoint in `<store>/checkpoints` instead of the store: works while a
    /// running process holds the store.
    #[arg(long, global = true)]
    pub latest_checkpoint: bool,
}

/// A NATS JetStream stream a store was replicated into (`omni-writer --nats URL`,
/// `EventLog::replicate`).
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// The NATS server(s), `nats://HOST:PORT[,nats://HOST:PORT...]`: read the stream there
    /// instead of a store.
    #[arg(
        long = "nats",
        global = true,
        value_name = "URL",
        conflicts_with_all = ["checkpoint", "latest_checkpoint"]
    )]
    pub url: Option<String>,

    /// The stream's name.
    #[arg(long = "stream", global = true, value_name = "NAME", default_value = DEFAULT_STREAM)]
    pub stream: String,
}

/// The stream a replicator writes to by default.
pub const DEFAULT_STREAM: &str = "EVENTLOG";

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Metrics and a summary: events, positions, aggregates per type, checkpoints.
    Info {
        /// Also verify the store, to report its hash-chain head.
        #[arg(long)]
        verify: bool,
    },
    /// The aggregates (streams) and their versions.
    Streams {
        /// Only aggregates of this type.
        #[arg(long = "type", value_name = "T")]
        aggregate_type: Option<String>,
    },
    /// One aggregate's events.
    Stream {
        /// The aggregate's type (`pipeline`, `article_generation`, ...).
        aggregate_type: String,
        /// The aggregate's id (`pipeline-000001`).
        aggregate_id: String,
        /// Start at this version (forwards: the first shown; backwards: the last).
        #[arg(long, value_name = "V")]
        from: Option<u64>,
        /// Newest first.
        #[arg(long)]
        backwards: bool,
        /// At most N events.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The global log, in position order.
    Log {
        /// Start at this position.
        #[arg(long, value_name = "POS", default_value_t = 1)]
        from: u64,
        /// At most N events (after the filters).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Only events of this aggregate type.
        #[arg(long = "type", value_name = "T")]
        aggregate_type: Option<String>,
        /// Only events of this event type.
        #[arg(long, value_name = "E")]
        event_type: Option<String>,
        /// Keep printing events as they are appended (reads the store read-only, even while
        /// the daemon holds it), until interrupted (Ctrl-C) or `--limit` events were printed.
        #[arg(long, conflicts_with_all = ["checkpoint", "latest_checkpoint"])]
        follow: bool,
    },
    /// Follow a NATS stream's new events as they arrive (needs --nats), until interrupted
    /// (Ctrl-C) or --max-events were printed.
    Tail {
        /// Start at this stream sequence (in a store's own stream, a position) instead of
        /// after the stream's last message.
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// Stop after N events (after the filters).
        #[arg(long, value_name = "N")]
        max_events: Option<usize>,
        /// Only events of this aggregate type.
        #[arg(long = "type", value_name = "T")]
        aggregate_type: Option<String>,
        /// Only events of this event type.
        #[arg(long, value_name = "E")]
        event_type: Option<String>,
    },
    /// Rebuild a store from a NATS stream (needs --nats): the same positions, event ids,
    /// versions, timestamps, metadata and payloads, then verified and read back. Exit status 0
    /// only when the restored store verified.
    Restore {
        /// The new store's directory (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
    },
    /// Merge several stores' streams into the stream --stream names (needs --nats): one feed,
    /// each event keeping its position in its own log. Merges what the sources hold now, then
    /// prints the merged stream; with --follow, keeps merging until interrupted.
    Merge {
        /// The streams to merge, comma-separated.
        #[arg(long, value_name = "A,B", value_delimiter = ',', required = true)]
        sources: Vec<String>,
        /// Replicas of the merged stream, when it is created.
        #[arg(long, value_name = "N", default_value_t = 1)]
        replicas: usize,
        /// Keep merging new events until interrupted (Ctrl-C).
        #[arg(long)]
        follow: bool,
    },
    /// Event counts per event type and schema version (scans the log).
    Types,
    /// Every event of one trace or correlation id (a pipeline's id, or its trace id) as a
    /// causation tree: each event under the event that caused it, with its time since the
    /// first. A pipeline id scans only the pipeline's span of the log; another id scans the
    /// whole log (or --from/--to).
    Trace {
        /// The trace id or correlation id (`pipeline-000001`).
        id: String,
        /// Scan from this position (default: the pipeline's first event, else 1).
        #[arg(long, value_name = "POS")]
        from: Option<u64>,
        /// Scan up to this position (default: the pipeline's last event if it has ended, else
        /// the log's end).
        #[arg(long, value_name = "POS")]
        to: Option<u64>,
        /// At most N events (the first N of the trace).
        #[arg(long, value_name = "N", default_value_t = eventlog::DEFAULT_TRACE_EVENTS)]
        max_events: usize,
    },
    /// An aggregate's stored snapshots, with the state each holds (Omni Writer types).
    Snapshot {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
        /// Take a snapshot at the aggregate's current version first (writes to the source).
        #[arg(long)]
        create: bool,
    },
    /// Check the hash chain, every aggregate's versions, the indexes and the snapshots. Exit
    /// status 0 only when all is consistent.
    Verify,
    /// The folded state of an Omni Writer aggregate (article_generation, prompt_validation,
    /// cache, retry, pipeline).
    State {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
        /// As of this version (default: the latest).
        #[arg(long, value_name = "VERSION")]
        at: Option<u64>,
    },
    /// Export, import, verify, list and prune checkpoint files.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Copy a format-1 store (written by an older build, which kept the log in sled) into a new
    /// store of this build's format, through a checkpoint. The old store is left as it was; it
    /// must not be in use.
    Migrate {
        /// The format-1 store's directory.
        #[arg(long, value_name = "OLD")]
        from: PathBuf,
        /// The new store's directory (must not exist, or be empty).
        #[arg(long, value_name = "NEW_DIR")]
        to: PathBuf,
    },
    /// Rebuild the store's sled part (indexes, kept snapshots and consumers) from its log: for
    /// damage `verify` reports in the indexes. sled's directory is moved aside to
    /// `data.damaged-<micros>` (kept), the log is not touched. The store must not be in use.
    Repair,
}

/// `checkpoint ...`.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Export a consistent checkpoint of the source to FILE (which must not exist).
    Export {
        /// The file to write.
        file: PathBuf,
    },
    /// Restore a checkpoint file into a new store directory.
    Import {
        /// The checkpoint file.
        file: PathBuf,
        /// The new store's directory (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
    },
    /// Verify a checkpoint file completely (hash, records, chain, manifest). Exit status 0
    /// only when it is intact.
    Verify {
        /// The checkpoint file.
        file: PathBuf,
    },
    /// The checkpoints in `<store>/checkpoints`, oldest first (works while the store is in
    /// use).
    List,
    /// Delete the checkpoints in `<store>/checkpoints` older than DAYS days, except each store's
    /// newest checkpoint that passes full verification (pruning never leaves a store with none).
    Prune {
        /// Age in days.
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
    },
}
