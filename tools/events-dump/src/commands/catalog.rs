//! `streams` and `types`: what the store holds.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;

use crate::commands::Status;
use crate::out::{Out, Table};
use crate::progress;
use crate::source::Handle;

/// `streams [--type T]`.
///
/// # Errors
///
/// When the store cannot be read.
pub fn streams(
    log: &Handle,
    aggregate_type: Option<&str>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let aggregates = log.aggregates(aggregate_type)?;
    if json {
        for aggregate in &aggregates {
            out.json(aggregate)?;
        }
        return Ok(Status::Ok);
    }
    let mut table = Table::new(&["AGGREGATE TYPE", "AGGREGATE ID", ">VERSION"]);
    for a in aggregates {
        table.row(vec![
            a.aggregate_type,
            a.aggregate_id,
            a.version.to_string(),
        ]);
    }
    table.write(out)?;
    Ok(Status::Ok)
}

/// One line of `types`.
#[derive(Debug, Serialize)]
struct TypeCount {
    event_type: String,
    aggregate_type: String,
    schema_version: u16,
    count: u64,
    /// Whether the registry knows the type.
    registered: bool,
    /// The registry's current schema version of the type (older ones are upcast on read).
    current_schema_version: Option<u16>,
}

/// `types`: counts per event type and stored schema version, from a scan of the log.
///
/// # Errors
///
/// When the store cannot be read.
pub fn types(log: &Handle, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    let last = log.last_position()?;
    let bar = progress::bar(last, "scanning the log");
    let mut counts: BTreeMap<(String, u16), (String, u64)> = BTreeMap::new();
    for event in log.read_log(1, None)? {
        let event = event.context("reading the log")?;
        let m = event.metadata;
        let entry = counts
            .entry((m.event_type, m.schema_version))
            .or_insert_with(|| (m.aggregate_type, 0));
        entry.1 += 1;
        if event.position % 4096 == 0 {
            bar.set_position(event.position);
        }
    }
    bar.finish_and_clear();
    let rows: Vec<TypeCount> = counts
        .into_iter()
        .map(|((event_type, schema_version), (aggregate_type, count))| {
            let info = log.registry().info(&event_type);
            TypeCount {
                registered: info.is_some(),
                current_schema_version: info.map(|i| i.schema_version),
                event_type,
                aggregate_type,
                schema_version,
                count,
            }
        })
        .collect();
    if json {
        for row in &rows {
            out.json(row)?;
        }
        return Ok(Status::Ok);
    }
    let mut table = Table::new(&[
        "EVENT TYPE",
        "AGGREGATE TYPE",
        ">SCHEMA",
        ">COUNT",
        "REGISTRY",
    ]);
    let total: u64 = rows.iter().map(|r| r.count).sum();
    for row in rows {
        let registry = match row.current_schema_version {
            None => "unknown type".to_string(),
            Some(current) if current == row.schema_version => "current".to_string(),
            Some(current) => format!("upcast to {current}"),
        };
        table.row(vec![
            row.event_type,
            row.aggregate_type,
            row.schema_version.to_string(),
            row.count.to_string(),
            registry,
        ]);
    }
    table.write(out)?;
    out.line(format!("{total} events"))?;
    Ok(Status::Ok)
}
