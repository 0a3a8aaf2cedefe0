//! The commands: each reads its source and prints through [`Out`].

mod catalog;
mod checkpoint;
mod events;
mod inspect;
mod nats;
mod trace;

use anyhow::bail;

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
    if let Some(url) = &cli.nats.url {
        let status = nats::run(&cli.command, url, &cli.nats.stream, cli.json, &mut out)?;
        out.finish()?;
        return Ok(status);
    }
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
        Command::Tail { .. } | Command::Restore { .. } | Command::Merge { .. } => {
            bail!(
                "`{}` reads a NATS stream: give --nats URL (and --stream NAME)",
                nats::name(&cli.command)
            )
        }
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
    if let Some(options) = events::LogOptions::of(command) {
        return events::log(log, options, json, out);
    }
    if let Some((aggregate_type, aggregate_id, options)) = events::StreamOptions::of(command) {
        return events::stream(log, aggregate_type, aggregate_id, options, json, out);
    }
    match command {
        Command::Info { verify } => inspect::info(source, *verify, json, out),
        Command::Streams { aggregate_type } => {
            catalog::streams(log, aggregate_type.as_deref(), json, out)
        }
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
        // `log` and `stream` are handled above.
        Command::Log { .. }
        | Command::Stream { .. }
        | Command::Checkpoint(_)
        | Command::Migrate { .. }
        | Command::Repair
        | Command::Tail { .. }
        | Command::Restore { .. }
        | Command::Merge { .. } => Ok(Status::Ok),
    }
}
