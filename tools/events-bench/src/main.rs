//! `events-bench`: runs workload W on the eventlog store and on two baselines (a plain SQLite
//! event table, raw sled) and prints events/s with the ratios, bytes on disk per event and peak
//! RSS per workload.
//!
//! Run it with the release profile:
//!
//! ```text
//! cargo run --release -p events-bench -- --quick          # a tenth of W, about a minute
//! cargo run --release -p events-bench                     # all of W, several minutes
//! cargo run --release -p events-bench -- --json --workload W-append-single --system eventlog
//! ```
//!
//! Each (workload, system) pair runs in a child process (the hidden `run-one` subcommand), so the
//! peak RSS it reports is that pair's own.

mod charts;
mod child;
mod input;
mod measure;
mod replicate;
mod report;
mod sled_usage;
mod sustained;
mod systems;
mod workload;

// The writer daemon's workload generator, compiled from its own sources (tools/omni-writer is a
// binary crate): the sustained run and the open-time writer drive exactly the daemon's
// pipelines. `sim.rs` names its siblings as `crate::content`, `crate::emitter`, `crate::rng`.
#[allow(dead_code)]
#[path = "../../omni-writer/src/content.rs"]
mod content;
#[allow(dead_code)]
#[path = "../../omni-writer/src/emitter.rs"]
mod emitter;
#[allow(dead_code)]
#[path = "../../omni-writer/src/rng.rs"]
mod rng;
#[allow(dead_code)]
#[path = "../../omni-writer/src/sim.rs"]
mod sim;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::child::Outcome;
use crate::report::{Report, RunInfo};
use crate::systems::SystemName;
use crate::workload::{Scale, Workload};

/// The writer daemon's allocator (see tools/omni-writer/src/main.rs), so the sustained run
/// measures what the daemon does; every system in W runs on it alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks the eventlog store against a plain SQLite event table and raw sled on workload W.
///
/// Runs each selected workload on each selected system in turn, each pair in its own child
/// process, and prints a table of events/s with the ratio eventlog/baseline per workload, bytes on
/// disk per event and peak RSS (or one JSON object with --json). Build with --release: debug
/// builds are several times slower. Timings depend on what else runs on the machine.
#[derive(Debug, Parser)]
#[command(name = "events-bench", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Internal: run one workload on one system and print one JSON line (used by the runner to
    /// measure each pair's peak RSS in its own process).
    #[command(hide = true)]
    RunOne(RunOneArgs),
    /// The sustained run: the writer daemon's workload (its pipeline generator, through the
    /// facade, configured as the daemon configures it) until --events are written, sampled every
    /// second (events/s, append latency percentiles, RSS, disk, the store's counters, CPU per
    /// thread), then PNG charts.
    Sustained(SustainedCli),
    /// Open time of a store (typically the sustained run's): after a clean close, and after a
    /// writer child was killed with SIGKILL.
    OpenTime(OpenTimeCli),
    /// How much of a closed store's sled database is live data: key and value bytes per tree
    /// and keyspace against sled's and the log's files on disk (one JSON object).
    SledUsage(SledUsageCli),
    /// Draws the sustained run's charts again from its samples file.
    Charts(ChartsCli),
    /// Internal: opens a store, times it, closes it, prints one JSON line.
    #[command(hide = true)]
    OpenChild(OpenChildCli),
    /// Internal: writes the daemon's workload into a store until killed.
    #[command(hide = true)]
    WriteChild(WriteChildCli),
}

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

#[derive(Debug, Args)]
struct SustainedCli {
    /// Events to write.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// The store directory (must be empty or absent; kept afterwards, for open-time).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The samples file (CSV, one row per second).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "tools/events-bench/results/sustained.csv"
    )]
    samples: PathBuf,
    /// Where the PNG charts go.
    #[arg(long, value_name = "DIR", default_value = "docs")]
    out: PathBuf,
    /// Do not draw charts.
    #[arg(long)]
    no_charts: bool,
    /// The charts' file name prefix (`<name>-throughput.png`, ...).
    #[arg(long, default_value = "sustained")]
    name: String,
    /// Worker threads (the daemon's default: 8).
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Buffered appends instead of the daemon's default, durable.
    #[arg(long)]
    buffered: bool,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// sled's page cache in MiB, to see what memory it accounts for (default: the daemon's,
    /// the store's default of 256 MiB).
    #[arg(long, value_name = "MIB")]
    cache_mib: Option<u64>,
    /// Seconds between samples.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// A TrueType font for the charts' text.
    #[arg(long, value_name = "TTF", default_value = DEFAULT_FONT)]
    font: PathBuf,
    /// Replicates the log while writing, as `omni-writer --replicate` does, into a single-node
    /// nats-server started on loopback; the summary adds the replication lag and the drain.
    #[arg(long)]
    replicate: bool,
}

#[derive(Debug, Args)]
struct OpenTimeCli {
    /// The store.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Opens after a clean close.
    #[arg(long, default_value_t = 3)]
    clean: usize,
    /// Seconds a writer child writes before it is SIGKILLed (repeatable; each followed by a
    /// timed reopen).
    #[arg(long = "kill-after", value_name = "SECS")]
    kill_after: Vec<f64>,
    /// The writer child's worker threads.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Buffered mode instead of durable (the daemon's default).
    #[arg(long)]
    buffered: bool,
}

#[derive(Debug, Args)]
struct ChartsCli {
    /// The charts' file name prefix.
    #[arg(long, default_value = "sustained")]
    name: String,
    /// What the run was, for the titles.
    #[arg(long, default_value = "writer daemon workload, 8 workers, durable")]
    title: String,
    /// The samples file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "tools/events-bench/results/sustained.csv"
    )]
    samples: PathBuf,
    /// Where the PNG charts go.
    #[arg(long, value_name = "DIR", default_value = "docs")]
    out: PathBuf,
    /// A TrueType font for the charts' text.
    #[arg(long, value_name = "TTF", default_value = DEFAULT_FONT)]
    font: PathBuf,
}

#[derive(Debug, Args)]
struct SledUsageCli {
    /// The store's directory (closed: sled takes a lock).
    #[arg(long)]
    store: PathBuf,
}

#[derive(Debug, Args)]
struct OpenChildCli {
    #[arg(long)]
    store: PathBuf,
    #[arg(long)]
    buffered: bool,
}

#[derive(Debug, Args)]
struct WriteChildCli {
    #[arg(long)]
    store: PathBuf,
    #[arg(long)]
    buffered: bool,
    #[arg(long, default_value_t = 8)]
    workers: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Run W at a tenth of its sizes (10 000 single appends, 100 000 batched events). CI runs
    /// this as a smoke test; it asserts nothing about speed.
    #[arg(long, conflicts_with = "tiny")]
    quick: bool,

    /// Run W at a hundredth of its sizes. Meant for the test suite's smoke test only: the
    /// figures are too small to mean anything.
    #[arg(long)]
    tiny: bool,

    /// Print one JSON object instead of the tables: {"workloads": {"<W name>": {"eventlog":
    /// <events/s>, "sqlite": <events/s>, "raw_sled": <events/s>, ...}}, ...}.
    #[arg(long)]
    json: bool,

    /// A workload to run (repeatable). Default: all, in the order listed.
    #[arg(long = "workload", value_name = "NAME", value_enum)]
    workloads: Vec<Workload>,

    /// A system to run (repeatable). Default: all.
    #[arg(long = "system", value_name = "SYSTEM", value_enum)]
    systems: Vec<SystemName>,

    /// Directory the temporary stores go in (a fresh subdirectory, removed at the end).
    /// Default: the system's temporary directory.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,

    /// Events of W-durable-1-writer and W-durable-16-writers (default: the scale's W-append-single
    /// size: 100 000, or 10 000 with --quick). The count used is printed and recorded.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(16..))]
    durable_events: Option<u64>,
}

#[derive(Debug, Args)]
struct RunOneArgs {
    /// The workload.
    #[arg(long, value_enum)]
    workload: Workload,
    /// The system.
    #[arg(long, value_enum)]
    system: SystemName,
    /// The run's directory (the store goes in `<dir>/<system>/<workload>`).
    #[arg(long)]
    dir: PathBuf,
    /// W's size.
    #[arg(long, value_enum)]
    scale: Scale,
    /// Events of the single-event durable workloads.
    #[arg(long)]
    durable_events: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Cmd::RunOne(args)) => run_one(args),
        Some(Cmd::Sustained(args)) => run_sustained(&args),
        Some(Cmd::OpenTime(args)) => sustained::open_time(
            &args.store,
            args.clean,
            &args.kill_after,
            !args.buffered,
            args.workers,
        )
        .and_then(|m| print_json(&serde_json::to_string_pretty(&m)?)),
        Some(Cmd::Charts(args)) => sustained::read_samples(&args.samples).and_then(|samples| {
            charts::draw_all(&samples, &args.out, &args.font, &args.name, &args.title)
        }),
        Some(Cmd::SledUsage(args)) => sled_usage::measure(&args.store)
            .and_then(|usage| print_json(&serde_json::to_string_pretty(&usage)?)),
        Some(Cmd::OpenChild(args)) => sustained::open_child(&args.store, !args.buffered)
            .and_then(|f| print_json(&serde_json::to_string(&f)?)),
        Some(Cmd::WriteChild(args)) => {
            sustained::write_child(&args.store, !args.buffered, args.workers, args.seed)
        }
        None => run_all(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("events-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(json: &str) -> anyhow::Result<()> {
    println!("{json}");
    Ok(())
}

fn run_sustained(args: &SustainedCli) -> anyhow::Result<()> {
    anyhow::ensure!(args.interval > 0.0, "--interval must be positive");
    let summary = sustained::sustained(&sustained::SustainedArgs {
        events: args.events,
        store: args.store.clone(),
        samples: args.samples.clone(),
        charts: (!args.no_charts).then(|| args.out.clone()),
        workers: args.workers.max(1),
        durable: !args.buffered,
        seed: args.seed,
        cache_bytes: args.cache_mib.map(|mib| mib << 20),
        interval: std::time::Duration::from_secs_f64(args.interval),
        font: args.font.clone(),
        name: args.name.clone(),
        replicate: args.replicate,
    })?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn run_one(args: RunOneArgs) -> anyhow::Result<()> {
    let durable_events = args.durable_events.map(usize::try_from).transpose()?;
    let outcome = child::run_one(
        args.workload,
        args.system,
        &args.dir,
        args.scale,
        durable_events,
    )?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

fn run_all(args: RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let scale = if args.tiny {
        Scale::Tiny
    } else if args.quick {
        Scale::Quick
    } else {
        Scale::Full
    };
    let mut workloads = if args.workloads.is_empty() {
        Workload::all()
    } else {
        args.workloads.clone()
    };
    workloads.sort();
    workloads.dedup();
    let mut systems = if args.systems.is_empty() {
        SystemName::all()
    } else {
        args.systems.clone()
    };
    systems.sort();
    systems.dedup();
    let root = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            tempfile::Builder::new()
                .prefix("events-bench-")
                .tempdir_in(dir)
        }
        None => tempfile::Builder::new().prefix("events-bench-").tempdir(),
    }
    .context("creating the run's directory")?;
    let exe = std::env::current_exe().context("finding the runner's own executable")?;
    let durable_events = args.durable_events.map(usize::try_from).transpose()?;
    let info = RunInfo::new(scale, durable_events, &workloads, &systems);
    eprintln!("{}", info.describe(root.path()));

    let mut report = Report::new(info);
    let last_read = workloads.iter().rposition(|w| w.reads_batch_store());
    let total = workloads.len() * systems.len();
    let mut done = 0;
    for (index, &workload) in workloads.iter().enumerate() {
        if workload.reads_batch_store() && !workloads.contains(&Workload::AppendBatch) {
            for &system in &systems {
                if !child::batch_marker(root.path(), system).exists() {
                    eprintln!("  preparing the batch store for {} ...", system.name());
                    spawn(
                        &exe,
                        Workload::AppendBatch,
                        system,
                        root.path(),
                        scale,
                        durable_events,
                    )
                    .with_context(|| format!("preparing the batch store of {}", system.name()))?;
                }
            }
        }
        for &system in &systems {
            done += 1;
            let result = spawn(&exe, workload, system, root.path(), scale, durable_events);
            eprintln!(
                "  [{done:>2}/{total}] {:<22} {:<9} {}",
                workload.name(),
                system.name(),
                report::progress(&result)
            );
            report.add(workload, system, result);
            let dir = child::store_dir(root.path(), system, workload);
            let keep =
                workload == Workload::AppendBatch && last_read.is_some_and(|last| last > index);
            if !keep && dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        if last_read == Some(index) {
            for &system in &systems {
                let dir = child::store_dir(root.path(), system, Workload::AppendBatch);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
            }
        }
    }
    report.finish(started.elapsed());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.tables());
    }
    root.close().context("removing the run's directory")?;
    let failures = report.failures();
    if failures > 0 {
        bail!("{failures} run(s) failed; see the errors above");
    }
    Ok(())
}

/// Runs one pair in a child process and parses the JSON line it prints.
fn spawn(
    exe: &Path,
    workload: Workload,
    system: SystemName,
    root: &Path,
    scale: Scale,
    durable_events: Option<usize>,
) -> anyhow::Result<Outcome> {
    let mut command = Command::new(exe);
    command
        .arg("run-one")
        .args(["--workload", workload.name(), "--system", system.name()])
        .arg("--dir")
        .arg(root)
        .args(["--scale", scale_name(scale)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(n) = durable_events {
        command.args(["--durable-events", &n.to_string()]);
    }
    let output = command
        .output()
        .with_context(|| format!("starting {}", exe.display()))?;
    if !output.status.success() {
        bail!("the child process failed ({})", output.status);
    }
    let stdout = String::from_utf8(output.stdout).context("the child's output is not UTF-8")?;
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .context("the child printed no result")?;
    serde_json::from_str(line).context("parsing the child's result")
}

fn scale_name(scale: Scale) -> &'static str {
    match scale {
        Scale::Full => "full",
        Scale::Quick => "quick",
        Scale::Tiny => "tiny",
    }
}
