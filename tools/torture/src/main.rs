//! `torture`: SIGKILLs the omni-writer daemon and a multi-threaded appender with subscribers at
//! random moments, and checks after each kill everything a crash must keep. See the crate docs
//! and `torture --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use torture::{Mode, Options, appender};

/// Crash torture for the eventlog store: runs a writer, SIGKILLs it at a random moment (while it
/// opens the store, right after a checkpoint export or snapshot write began, or at random),
/// reopens the store and checks every acknowledged append, whole appends, the hash chain, every
/// index, checkpoints, snapshots, the projection and the durable subscription. Exit 0 when every
/// kill was survived, 1 on the first failed check (the work directory is kept), 2 on bad
/// arguments.
#[derive(Debug, Parser)]
#[command(name = "torture", version, about, long_about)]
struct Args {
    /// Kills in total, spread round-robin over the chosen (mode, durability) pairs.
    #[arg(long, default_value_t = 500)]
    kills: usize,

    /// Which writer: the omni-writer daemon, the appender child, or both.
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    mode: ModeArg,

    /// Durability mode of the writers.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Both)]
    durability: DurabilityArg,

    /// Seed of every random choice (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,

    /// Work directory (default: a new temporary directory). Kept when a check fails.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// The omni-writer binary (default: `omni-writer` next to this binary).
    #[arg(long, value_name = "PATH")]
    omni_writer: Option<PathBuf>,

    /// Rounds on one store before starting a fresh one.
    #[arg(long, default_value_t = 25)]
    rounds_per_store: usize,

    /// Shortest run before a plain random kill, in milliseconds.
    #[arg(long, default_value_t = 50)]
    min_run_ms: u64,

    /// Longest run before a plain random kill, in milliseconds.
    #[arg(long, default_value_t = 700)]
    max_run_ms: u64,

    /// Appender threads of the child; workers of the daemon.
    #[arg(long, default_value_t = 4)]
    threads: usize,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,

    /// No line per kill.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Daemon,
    Appender,
    Both,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Durable,
    Buffered,
    Both,
}

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(appender::CHILD_ENV) {
        // The appender child: runs until killed.
        return match appender::child_main(&spec) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("torture child: error: {error:#}");
                ExitCode::from(3)
            }
        };
    }
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("torture: FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    });
    let exe = std::env::current_exe()?;
    let scratch;
    let work_dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile::Builder::new().prefix("torture-").tempdir()?;
            scratch.path().to_path_buf()
        }
    };
    let mut options = Options::new(args.kills, &work_dir);
    options.modes = match args.mode {
        ModeArg::Daemon => vec![Mode::Daemon],
        ModeArg::Appender => vec![Mode::Appender],
        ModeArg::Both => vec![Mode::Daemon, Mode::Appender],
    };
    options.durable = match args.durability {
        DurabilityArg::Durable => vec![true],
        DurabilityArg::Buffered => vec![false],
        DurabilityArg::Both => vec![true, false],
    };
    options.seed = seed;
    options.omni_writer = Some(
        args.omni_writer
            .clone()
            .unwrap_or_else(|| exe.with_file_name("omni-writer")),
    );
    options.child_exe = Some(exe);
    options.rounds_per_store = args.rounds_per_store.max(1);
    options.run_ms = (args.min_run_ms, args.max_run_ms.max(args.min_run_ms));
    options.threads = args.threads.max(1);
    options.verbose = !args.quiet;
    eprintln!(
        "torture: {} kills, seed {seed}, work directory {}",
        args.kills,
        work_dir.display()
    );
    let started = std::time::Instant::now();
    let result = torture::run(&options);
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            if let Some(scratch) = scratch_keep(args, &work_dir) {
                eprintln!("torture: the work directory is kept: {}", scratch.display());
            }
            return Err(error);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "torture: {} kills survived in {:.0} s (seed {seed})",
            summary.total.kills,
            started.elapsed().as_secs_f64()
        );
        for pair in &summary.pairs {
            println!("{}", serde_json::to_string(pair)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// On a failure, keeps the temporary work directory (it would be deleted on drop).
fn scratch_keep(args: &Args, work_dir: &std::path::Path) -> Option<PathBuf> {
    if args.dir.is_none() {
        let kept = work_dir.with_extension("kept");
        std::fs::rename(work_dir, &kept).ok()?;
        return Some(kept);
    }
    Some(work_dir.to_path_buf())
}
