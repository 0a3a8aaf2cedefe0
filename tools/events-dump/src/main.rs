//! `events-dump`: inspect an eventlog store, or a checkpoint of it, from the shell. See
//! `events-dump --help`.

mod cli;
mod commands;
mod event_json;
mod logging;
mod omni;
mod out;
mod progress;
mod source;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::Status;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(error) = logging::init(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("events-dump: error: {error:#}");
        return ExitCode::from(2);
    }
    match commands::run(&cli) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Inconsistent) => ExitCode::from(1),
        // The reader of stdout went away (`| head`): nothing is wrong.
        Err(error) if out::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("events-dump: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
