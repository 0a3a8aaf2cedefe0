//! `omni-writer`: the Omni Writer daemon, with simulated generation, recording every operation
//! in an embedded eventlog store. See `omni-writer --help`.

mod acklog;
mod checkpoints;
mod cli;
mod content;
mod control;
mod daemon;
mod emitter;
mod http;
mod inspector;
mod logging;
mod progress;
mod rate;
mod replication;
mod rng;
mod runner;
mod signals;
mod sim;
mod summary;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// The process allocator: mimalloc, not glibc's malloc. Under this daemon's workload glibc's heap
/// kept growing (its dynamic mmap threshold moves the store's large short-lived buffers onto a
/// heap that fragments and never shrinks): 1.4 GiB resident after 4 M events with a 256 MiB
/// page cache, and still rising; see BENCHMARKS.md, "Memory".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let slot = logging::BarSlot::default();
    if let Err(error) = logging::init(args.log_format, args.log_level.as_deref(), slot.clone()) {
        eprintln!("omni-writer: error: {error:#}");
        return ExitCode::from(2);
    }
    match daemon::run(&args, &slot) {
        Ok(summary) => {
            let text = if args.json {
                serde_json::to_string(&summary).map(|json| json + "\n")
            } else {
                Ok(summary.to_string())
            };
            match text {
                Ok(text) => {
                    // A closed stdout is not an error of the daemon: its work is done.
                    let _ = std::io::stdout().lock().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("omni-writer: error: printing the summary: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            tracing::error!(name: "omni_writer_failed", error = %format!("{error:#}"), "omni-writer failed");
            eprintln!("omni-writer: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
