//! `log` and `stream`: events, one per line (a table row, or a JSON object).

use anyhow::{Context as _, bail};
use eventlog::{EventLog, ReadError, RecordedEvent, StreamRead};

use crate::commands::Status;
use crate::event_json::{ROW_HEADER, event_json, event_row};
use crate::out::Out;

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
}

/// Prints events as they are read.
fn print(
    log: &EventLog,
    events: impl Iterator<Item = Result<RecordedEvent, ReadError>>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<u64> {
    if !json {
        out.line(ROW_HEADER)?;
    }
    let mut printed = 0;
    for event in events {
        let event = event.context("reading the store")?;
        let value = event_json(log, &event);
        if json {
            out.json(&value)?;
        } else {
            out.line(event_row(&value))?;
        }
        printed += 1;
    }
    Ok(printed)
}

/// `stream TYPE ID`.
///
/// # Errors
///
/// When the aggregate has no events, or the store cannot be read.
pub fn stream(
    log: &EventLog,
    aggregate_type: &str,
    aggregate_id: &str,
    options: StreamOptions,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    if log.stream_version(aggregate_type, aggregate_id)? == 0 {
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
    let events = log.read_stream(aggregate_type, aggregate_id, read)?;
    print(log, events, json, out)?;
    Ok(Status::Ok)
}

/// `log`.
///
/// # Errors
///
/// When the store cannot be read.
pub fn log(
    log: &EventLog,
    options: LogOptions<'_>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let from = options.from.max(1);
    // The limit applies after the event-type filter, so the store reads without it then.
    let store_limit = if options.event_type.is_some() {
        None
    } else {
        options.limit
    };
    let events: Box<dyn Iterator<Item = Result<RecordedEvent, ReadError>>> =
        match options.aggregate_type {
            Some(aggregate_type) => {
                Box::new(log.read_aggregate_type(aggregate_type, from, store_limit)?)
            }
            None => Box::new(log.read_log(from, store_limit)?),
        };
    let wanted = options.event_type;
    let filtered = events.filter(|event| match (event, wanted) {
        (Ok(event), Some(wanted)) => event.metadata.event_type == wanted,
        _ => true,
    });
    let limit = options.limit.unwrap_or(usize::MAX);
    print(log, filtered.take(limit), json, out)?;
    Ok(Status::Ok)
}
