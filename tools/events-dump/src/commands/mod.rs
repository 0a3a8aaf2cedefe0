//! The commands: each reads its source and prints through [`Out`].

mod catalog;
mod checkpoint;
mod events;
mod inspect;
mod trace;

use crate::cli::{CheckpointCommand, Cli, Command};
use crate::out::Out;
use crate::source::{self, Source};

/// How a command ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// All good: exit 0.
    Ok,
    /// A verification found problems: exit 1.
    Inconsistent,
}

/// Runs the command `cli` names.
///
/// # Errors
///
/// Whatever stops the command (printed by `main`, exit 2).
pub fn run(cli: &Cli) -> anyhow::Result<Status> {
    let mut out = Out::new();
    let status = match &cli.command {
        Command::Checkpoint(CheckpointCommand::Import { file, into }) => {
            checkpoint::import(file, into, cli.json, &mut out)?
        }
        Command::Checkpoint(CheckpointCommand::Verify { file }) => {
            checkpoint::verify(file, cli.json, &mut out)?
        }
        Command::Checkpoint(CheckpointCommand::List) => {
            checkpoint::list(&cli.source.store, cli.json, &mut out)?
        }
        Command::Checkpoint(CheckpointCommand::Prune { older_than }) => {
            checkpoint::prune(&cli.source.store, *older_than, cli.json, &mut out)?
        }
        Command::Migrate { from, to } => checkpoint::migrate(from, to, cli.json, &mut out)?,
        Command::Repair => checkpoint::repair(&cli.source.store, cli.json, &mut out)?,
        other => {
            let source = match other {
                Command::Log { follow: true, .. } => source::open_live(&cli.source.store)?,
                _ => source::open(&cli.source)?,
            };
            let status = with_source(other, &source, cli.json, &mut out);
            // Close even after a failure (a closed pipe included), then report the first error.
            let closed = source.close();
            let status = status?;
            closed?;
            status
        }
    };
    out.finish()?;
    Ok(status)
}

fn with_source(
    command: &Command,
    source: &Source,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let log = &source.log;
    match command {
        Command::Info { verify } => inspect::info(source, *verify, json, out),
        Command::Streams { aggregate_type } => {
            catalog::streams(log, aggregate_type.as_deref(), json, out)
        }
        Command::Stream {
            aggregate_type,
            aggregate_id,
            from,
            backwards,
            limit,
        } => events::stream(
            log,
            aggregate_type,
            aggregate_id,
            events::StreamOptions {
                from: *from,
                backwards: *backwards,
                limit: *limit,
            },
            json,
            out,
        ),
        Command::Log {
            from,
            limit,
            aggregate_type,
            event_type,
            follow,
        } => events::log(
            log,
            events::LogOptions {
                from: *from,
                limit: *limit,
                aggregate_type: aggregate_type.as_deref(),
                event_type: event_type.as_deref(),
                follow: *follow,
            },
            json,
            out,
        ),
        Command::Types => catalog::types(log, json, out),
        Command::Trace {
            id,
            from,
            to,
            max_events,
        } => trace::trace(
            log,
            id,
            trace::Window {
                from: *from,
                to: *to,
                max_events: *max_events,
            },
            json,
            out,
        ),
        Command::Snapshot {
            aggregate_type,
            aggregate_id,
            create,
        } => inspect::snapshot(
            log.full("snapshot")?,
            aggregate_type,
            aggregate_id,
            *create,
            json,
            out,
        ),
        Command::Verify => inspect::verify(log.full("verify")?, json, out),
        Command::State {
            aggregate_type,
            aggregate_id,
            at,
        } => inspect::state(
            log.full("state")?,
            aggregate_type,
            aggregate_id,
            *at,
            json,
            out,
        ),
        Command::Checkpoint(CheckpointCommand::Export { file }) => {
            checkpoint::export(log.full("checkpoint export")?, file, json, out)
        }
        Command::Checkpoint(_) | Command::Migrate { .. } | Command::Repair => Ok(Status::Ok),
    }
}
