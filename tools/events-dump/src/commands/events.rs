//! `log` and `stream`: events, one per line (a table row, or a JSON object).

use std::time::Duration;

use anyhow::{Context as _, bail};
use eventlog::{EventRegistry, Position, RecordedEvent, StoreReadError, StreamId, StreamRead};

use crate::cli::Command;
use crate::commands::Status;
use crate::event_json::{ROW_HEADER, event_json, event_row};
use crate::out::Out;
use crate::source::{Events, Handle};

/// How often `log --follow` looks for new events once it reached the end of the log.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// `stream` options.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// First version shown.
    pub from: Option<u64>,
    /// Newest first.
    pub backwards: bool,
    /// Most events.
    pub limit: Option<usize>,
}

/// `log` options.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions<'a> {
    /// First position.
    pub from: u64,
    /// Most events, after the filters.
    pub limit: Option<usize>,
    /// Only this aggregate type.
    pub aggregate_type: Option<&'a str>,
    /// Only this event type.
    pub event_type: Option<&'a str>,
    /// Keep printing events as the writer appends them (a live store read read-only), until
    /// interrupted.
    pub follow: bool,
}

impl StreamOptions {
    /// A `stream TYPE ID` command's aggregate and options (`None` for another command).
    pub fn of(command: &Command) -> Option<(&str, &str, Self)> {
        match command {
            Command::Stream {
                aggregate_type,
                aggregate_id,
                from,
                backwards,
                limit,
            } => Some((
                aggregate_type,
                aggregate_id,
                Self {
                    from: *from,
                    backwards: *backwards,
                    limit: *limit,
                },
            )),
            _ => None,
        }
    }
}

impl<'a> LogOptions<'a> {
    /// A `log` command's options (`None` for another command).
    pub fn of(command: &'a Command) -> Option<Self> {
        match command {
            Command::Log {
                from,
                limit,
                aggregate_type,
                event_type,
                follow,
            } => Some(Self {
                from: *from,
                limit: *limit,
                aggregate_type: aggregate_type.as_deref(),
                event_type: event_type.as_deref(),
                follow: *follow,
            }),
            _ => None,
        }
    }
}

/// Prints events as they are read (from a store or a NATS stream); with `flush_each`, each
/// line is flushed at once (for `--follow` and `tail`).
pub(super) fn print(
    registry: &EventRegistry,
    events: impl Iterator<Item = anyhow::Result<RecordedEvent>>,
    json: bool,
    flush_each: bool,
    out: &mut Out,
) -> anyhow::Result<u64> {
    if !json {
        out.line(ROW_HEADER)?;
        if flush_each {
            out.flush()?;
        }
    }
    let mut printed = 0;
    for event in events {
        let event = event?;
        let value = event_json(registry, &event);
        if json {
            out.json(&value)?;
        } else {
            out.line(event_row(&value))?;
        }
        if flush_each {
            out.flush()?;
        }
        printed += 1;
    }
    Ok(printed)
}

/// Whether `event` is of `aggregate_type` and `event_type` (each when given).
pub(super) fn wanted(
    event: &RecordedEvent,
    aggregate_type: Option<&str>,
    event_type: Option<&str>,
) -> bool {
    aggregate_type.is_none_or(|t| event.metadata.aggregate_type == t)
        && event_type.is_none_or(|t| event.metadata.event_type == t)
}

/// A store's events, each read error said to be one.
fn from_store(
    events: impl Iterator<Item = Result<RecordedEvent, StoreReadError>>,
) -> impl Iterator<Item = anyhow::Result<RecordedEvent>> {
    events.map(|event| event.context("reading the store"))
}

/// `stream TYPE ID`.
///
/// # Errors
///
/// When the aggregate has no events, or the store cannot be read.
pub fn stream(
    log: &Handle,
    aggregate_type: &str,
    aggregate_id: &str,
    options: StreamOptions,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let stream = StreamId::new(aggregate_type, aggregate_id);
    if log.stream_version(&stream)? == 0 {
        bail!(
            "no aggregate {aggregate_type}/{aggregate_id} in the store (list them with `events-dump streams`)"
        );
    }
    let mut read = if options.backwards {
        StreamRead::backwards()
    } else {
        StreamRead::forwards()
    };
    if let Some(from) = options.from {
        read = read.from(from);
    }
    if let Some(limit) = options.limit {
        read = read.limit(limit);
    }
    let events = log.read_stream(&stream, read)?;
    print(log.registry(), from_store(events), json, false, out)?;
    Ok(Status::Ok)
}

/// `log`.
///
/// # Errors
///
/// When the store cannot be read.
pub fn log(
    log: &Handle,
    options: LogOptions<'_>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let from = options.from.max(1);
    // The filters apply after the read when following (the follower reads the whole log), and
    // the limit after the event-type filter, so the store reads without it then.
    let store_limit = if options.event_type.is_some() || options.follow {
        None
    } else {
        options.limit
    };
    let events: Events = match (options.follow, log) {
        (true, Handle::Live(live)) => {
            Box::new(live.follow(Position(from)).poll_interval(FOLLOW_POLL))
        }
        (true, Handle::Store(_)) => {
            bail!("--follow reads a store directory read-only, not a checkpoint")
        }
        (false, _) => match options.aggregate_type {
            Some(aggregate_type) => log.read_aggregate_type(aggregate_type, from, store_limit)?,
            None => log.read_log(from, store_limit)?,
        },
    };
    // The aggregate type was filtered by the read, unless following.
    let aggregate_type = options.aggregate_type.filter(|_| options.follow);
    let event_type = options.event_type;
    let filtered = events.filter(move |event| match event {
        Ok(event) => wanted(event, aggregate_type, event_type),
        Err(_) => true,
    });
    let limit = options.limit.unwrap_or(usize::MAX);
    print(
        log.registry(),
        from_store(filtered.take(limit)),
        json,
        options.follow,
        out,
    )?;
    Ok(Status::Ok)
}
