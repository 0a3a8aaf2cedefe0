//! Crash torture for the eventlog store.
//!
//! Each round starts a writer, SIGKILLs it at a random moment, reopens the store through the
//! `eventlog` facade and checks every guarantee a crash must keep. Two writers:
//!
//! - **daemon**: the real `omni-writer` binary (8 kinds of appends, multi-aggregate ones
//!   included, several workers, a checkpoint every 100 ms and on SIGUSR1), with `--ack-log`;
//! - **appender**: this binary re-executed as a child: several appender threads on a few hot
//!   aggregates (read-modify-append with exact expected versions, any, stream-exists, no-stream)
//!   and many cold ones, multi-aggregate appends, a durable subscription, a projection and a live
//!   subscription attached, a snapshot thread and a checkpoint thread.
//!
//! Kills land at random moments: some while the writer still opens the store (tail recovery,
//! index rebuild), some right after a checkpoint export or a snapshot write began, the others
//! at a random time. After each kill:
//!
//! - every append acknowledged in durable mode is present, at its positions, with its event ids;
//!   in buffered mode the acknowledged appends that survive are a prefix, none cut;
//! - the log is made of whole appends (each begun by the writer), with no gap;
//! - `verify()` passes (hash chain, versions, index pages, snapshots) and every index read
//!   (streams forwards and backwards, aggregate types, the aggregates listing, stream versions)
//!   agrees with the log itself;
//! - every checkpoint file verifies, none covers more than the log kept, and the newest
//!   is imported and compared with the store event by event;
//! - (appender) snapshots reflect the log at their version; the projection's state is the fold of
//!   the log up to its stored position; the durable subscription resumed exactly after its
//!   stored position, then handled every event once, in order, and its position never goes back.

pub mod acks;
pub mod appender;
pub mod check;
pub mod daemon;
pub mod process;
pub mod rng;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::rng::Rng;

/// Which writer a round kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The `omni-writer` daemon.
    Daemon,
    /// The multi-threaded appender child, with subscribers.
    Appender,
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Kills in total, spread round-robin over every (mode, durability) pair.
    pub kills: usize,
    /// The writers.
    pub modes: Vec<Mode>,
    /// Durable (`true`) and/or buffered (`false`).
    pub durable: Vec<bool>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Where stores and logs go (one subdirectory per pair).
    pub work_dir: PathBuf,
    /// The `omni-writer` binary (daemon mode).
    pub omni_writer: Option<PathBuf>,
    /// The binary to re-execute as the appender child (the `torture` binary).
    pub child_exe: Option<PathBuf>,
    /// Rounds on one store before a fresh one is started.
    pub rounds_per_store: usize,
    /// A writer runs between these many milliseconds before a plain random kill.
    pub run_ms: (u64, u64),
    /// Appender threads in the child; workers of the daemon.
    pub threads: usize,
    /// Aggregates sampled for the stream-index check besides those written in the round.
    pub sample: usize,
    /// Print one line per round on stderr.
    pub verbose: bool,
}

impl Options {
    /// Defaults for `kills` kills in `work_dir`.
    pub fn new(kills: usize, work_dir: impl Into<PathBuf>) -> Self {
        Self {
            kills,
            modes: vec![Mode::Daemon, Mode::Appender],
            durable: vec![true, false],
            seed: 1,
            work_dir: work_dir.into(),
            omni_writer: None,
            child_exe: None,
            rounds_per_store: 25,
            run_ms: (50, 700),
            threads: 4,
            sample: 200,
            verbose: false,
        }
    }
}

/// What a run did, per (mode, durability) pair. Every count is measured, not configured.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PairStats {
    /// The writer.
    pub mode: Option<Mode>,
    /// `durable` or `buffered`.
    pub durability: String,
    /// Kills survived (the store reopened and every check passed).
    pub kills: u64,
    /// Kills that landed before the writer said it was ready (opening: tail recovery, index
    /// rebuild, subscriptions catching up).
    pub kills_before_ready: u64,
    /// Kills that landed while a checkpoint export was in progress.
    pub kills_during_export: u64,
    /// Kills that landed while a snapshot write was in progress (appender).
    pub kills_during_snapshot: u64,
    /// SIGUSR1 (checkpoint now) sent shortly before a kill (daemon).
    pub sigusr1_sent: u64,
    /// Stores used (a fresh one every `rounds_per_store` rounds).
    pub stores: u64,
    /// The largest log after a kill.
    pub max_events: u64,
    /// Events read back and checked, over all rounds.
    pub events_checked: u64,
    /// Acknowledged appends found whole at their positions, over all rounds.
    pub acks_checked: u64,
    /// Appends acknowledged, then lost by the crash (buffered only).
    pub acks_lost: u64,
    /// Appends the logs were found to be made of, over all rounds.
    pub appends_tiled: u64,
    /// Checkpoint files verified.
    pub checkpoints_verified: u64,
    /// Checkpoints imported and compared event by event with the store.
    pub checkpoints_compared: u64,
    /// Temporary files of exports cut by a kill, found and deleted.
    pub partial_checkpoint_files: u64,
    /// Snapshots checked against the log (appender).
    pub snapshots_checked: u64,
    /// Durable-subscription deliveries checked (appender).
    pub deliveries_checked: u64,
    /// Deliveries of events then lost by the crash (buffered only, appender).
    pub deliveries_lost: u64,
    /// Resumes of the durable subscription checked to start right after its stored position.
    pub resumes_checked: u64,
    /// Projection states checked against a fold of the log.
    pub projections_checked: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl PairStats {
    fn add(&mut self, other: &Self) {
        self.kills += other.kills;
        self.kills_before_ready += other.kills_before_ready;
        self.kills_during_export += other.kills_during_export;
        self.kills_during_snapshot += other.kills_during_snapshot;
        self.sigusr1_sent += other.sigusr1_sent;
        self.stores += other.stores;
        self.max_events = self.max_events.max(other.max_events);
        self.events_checked += other.events_checked;
        self.acks_checked += other.acks_checked;
        self.acks_lost += other.acks_lost;
        self.appends_tiled += other.appends_tiled;
        self.checkpoints_verified += other.checkpoints_verified;
        self.checkpoints_compared += other.checkpoints_compared;
        self.partial_checkpoint_files += other.partial_checkpoint_files;
        self.snapshots_checked += other.snapshots_checked;
        self.deliveries_checked += other.deliveries_checked;
        self.deliveries_lost += other.deliveries_lost;
        self.resumes_checked += other.resumes_checked;
        self.projections_checked += other.projections_checked;
        self.seconds += other.seconds;
    }
}

/// A run's result.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Per pair.
    pub pairs: Vec<PairStats>,
    /// Sums over the pairs.
    pub total: PairStats,
}

/// The state of one (mode, durability) pair across its rounds.
#[derive(Debug)]
pub struct Pair {
    /// The writer.
    pub mode: Mode,
    /// Durable mode.
    pub durable: bool,
    /// This pair's directory.
    pub dir: PathBuf,
    /// Rounds on the current store.
    pub rounds_on_store: usize,
    /// The durable subscription's stored position after the last check (appender).
    pub consumer_position: u64,
    /// The projection's stored position after the last check (appender).
    pub projection_position: u64,
    /// The log's end after the last check.
    pub last: u64,
    /// Checkpoints already compared.
    pub compared: HashSet<PathBuf>,
    /// What happened.
    pub stats: PairStats,
}

impl Pair {
    /// The current store.
    pub fn store(&self) -> PathBuf {
        self.dir.join(format!("store-{}", self.stats.stores))
    }

    /// The current store's ack log.
    pub fn acks(&self) -> PathBuf {
        self.dir.join(format!("acks-{}.log", self.stats.stores))
    }

    fn fresh_store(&mut self) -> anyhow::Result<()> {
        if self.stats.stores > 0 {
            remove_dir(&self.store())?;
            let _ = std::fs::remove_file(self.acks());
        }
        self.stats.stores += 1;
        self.rounds_on_store = 0;
        self.consumer_position = 0;
        self.projection_position = 0;
        self.last = 0;
        self.compared.clear();
        Ok(())
    }

    /// `durable` or `buffered`.
    pub fn durability_name(&self) -> &'static str {
        if self.durable { "durable" } else { "buffered" }
    }
}

fn remove_dir(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// What one round observed, for the progress line.
#[derive(Debug, Default)]
pub struct Round {
    /// Milliseconds the writer ran.
    pub ran_ms: u64,
    /// What the kill hit.
    pub moment: &'static str,
    /// The log's end after the kill.
    pub last: u64,
}

/// Runs the torture as `options` say.
///
/// # Errors
///
/// The first failed check, naming the pair, the round and the seed; the work directory is
/// kept for inspection.
pub fn run(options: &Options) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&options.work_dir)
        .with_context(|| format!("creating {}", options.work_dir.display()))?;
    let mut pairs = Vec::new();
    for &mode in &options.modes {
        for &durable in &options.durable {
            let mut pair = Pair {
                mode,
                durable,
                dir: options.work_dir.join(format!(
                    "{}-{}",
                    match mode {
                        Mode::Daemon => "daemon",
                        Mode::Appender => "appender",
                    },
                    if durable { "durable" } else { "buffered" }
                )),
                rounds_on_store: 0,
                consumer_position: 0,
                projection_position: 0,
                last: 0,
                compared: HashSet::new(),
                stats: PairStats {
                    mode: Some(mode),
                    durability: if durable { "durable" } else { "buffered" }.into(),
                    ..PairStats::default()
                },
            };
            std::fs::create_dir_all(&pair.dir)?;
            pair.fresh_store()?;
            pairs.push(pair);
        }
    }
    anyhow::ensure!(!pairs.is_empty(), "no mode or no durability chosen");
    let mut rng = Rng::new(options.seed);
    for kill in 0..options.kills {
        let index = kill % pairs.len();
        let pair = &mut pairs[index];
        if pair.rounds_on_store >= options.rounds_per_store {
            pair.fresh_store()?;
        }
        let started = Instant::now();
        let round_number = pair.stats.kills;
        let result = match pair.mode {
            Mode::Daemon => daemon::round(options, pair, &mut rng),
            Mode::Appender => appender::round(options, pair, &mut rng),
        };
        let round = result.with_context(|| {
            format!(
                "{} {} round {round_number} (kill {kill} of the run, seed {}, store {})",
                pair.durability_name(),
                match pair.mode {
                    Mode::Daemon => "daemon",
                    Mode::Appender => "appender",
                },
                options.seed,
                pair.store().display()
            )
        })?;
        pair.rounds_on_store += 1;
        pair.stats.kills += 1;
        pair.stats.max_events = pair.stats.max_events.max(round.last);
        pair.stats.seconds += started.elapsed().as_secs_f64();
        if options.verbose {
            eprintln!(
                "kill {:>4}: {:<8} {:<9} ran {:>4} ms, killed {:<16} log at {:>8}, checked in {:>5} ms",
                kill + 1,
                match pair.mode {
                    Mode::Daemon => "daemon",
                    Mode::Appender => "appender",
                },
                pair.durability_name(),
                round.ran_ms,
                round.moment,
                round.last,
                (started.elapsed().as_millis() as u64).saturating_sub(round.ran_ms),
            );
        }
    }
    let mut summary = Summary {
        seed: options.seed,
        ..Summary::default()
    };
    for pair in &pairs {
        summary.total.add(&pair.stats);
        summary.pairs.push(pair.stats.clone());
    }
    summary.total.durability = "all".into();
    for pair in &pairs {
        // The stores are kept on failure only.
        remove_dir(&pair.dir)?;
    }
    Ok(summary)
}

/// Sleeps `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
