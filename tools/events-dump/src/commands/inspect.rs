//! `info`, `verify`, `state` and `snapshot`: what the store says about itself and its
//! aggregates.

use std::collections::BTreeMap;

use anyhow::bail;
use eventlog::{EventLog, StreamId, VerifyReport, list_checkpoints};
use serde_json::{Value, json};

use crate::commands::Status;
use crate::omni;
use crate::out::{Out, Table};
use crate::progress;
use crate::source::{Handle, Source, checkpoint_dir};

fn verify_with_bar(log: &EventLog) -> anyhow::Result<VerifyReport> {
    let bar = progress::bar(log.last_position()?.get(), "verifying");
    let report = {
        let mut report = progress::callback(&bar);
        log.admin().verify_with(&mut report)
    };
    bar.finish_and_clear();
    Ok(report?)
}

/// `info [--verify]`.
///
/// # Errors
///
/// When the store cannot be read.
pub fn info(source: &Source, verify: bool, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    let log = match &source.log {
        Handle::Live(_) if verify => source.log.full("info --verify")?,
        Handle::Live(_) => return live_info(source, json, out),
        Handle::Store(log) => log,
    };
    let metrics = log.admin().metrics()?;
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    for aggregate in log.aggregates(None)? {
        *per_type.entry(aggregate.aggregate_type).or_default() += 1;
    }
    let report = if verify {
        Some(verify_with_bar(log)?)
    } else {
        None
    };
    // The chain head: from a verification, else from the checkpoint read (exact at its
    // position), else the store's own.
    let chain_head = match (&report, &source.manifest) {
        (Some(report), _) => Some(report.chain_head.clone()),
        (None, Some(manifest)) => Some(manifest.chain_head.clone()),
        (None, None) => Some(log.admin().chain_head()?.hash),
    };
    let checkpoints = list_checkpoints(&checkpoint_dir(&source.store_dir)).unwrap_or_default();
    let summary = json!({
        "source": source.description,
        "last_position": log.last_position()?,
        "durable_position": log.durable_position()?,
        "events": metrics.store.total_events_stored,
        "aggregates": per_type.values().sum::<u64>(),
        "aggregates_per_type": per_type,
        "chain_head": chain_head,
        "consistent": report.as_ref().map(|r| r.ok),
        "checkpoint": source.manifest,
        "store_checkpoints": checkpoints,
        "metrics": metrics,
    });
    if json {
        out.json(&summary)?;
        return Ok(Status::Ok);
    }
    let s = &metrics.store;
    out.line(format!("source            {}", source.description))?;
    out.line(format!("events            {}", s.total_events_stored))?;
    out.line(format!("last position     {}", s.last_position))?;
    out.line(format!("durable position  {}", s.durable_position))?;
    out.line(format!(
        "chain head        {}",
        chain_head.as_deref().unwrap_or("-")
    ))?;
    if let Some(report) = &report {
        out.line(format!(
            "consistent        {}",
            if report.ok {
                "yes".to_string()
            } else {
                format!(
                    "NO: {} problems (see `events-dump verify`)",
                    report.issue_count
                )
            }
        ))?;
    }
    out.line(format!("bytes on disk     {}", s.bytes_on_disk))?;
    out.line(format!(
        "snapshots         {} created since open, last {}",
        s.snapshots_created,
        s.last_snapshot_time
            .map_or_else(|| "never".to_string(), |t| t.to_rfc3339())
    ))?;
    out.line(format!("registered types  {}", s.registered_events.len()))?;
    out.line("")?;
    let mut table = Table::new(&["AGGREGATE TYPE", ">AGGREGATES"]);
    for (aggregate_type, count) in &per_type {
        table.row(vec![aggregate_type.clone(), count.to_string()]);
    }
    table.write(out)?;
    out.line("")?;
    if checkpoints.is_empty() {
        out.line(format!(
            "no checkpoints in {}",
            checkpoint_dir(&source.store_dir).display()
        ))?;
    } else {
        out.line(format!(
            "{} checkpoints in {} (see `events-dump checkpoint list`), newest at position {}",
            checkpoints.len(),
            checkpoint_dir(&source.store_dir).display(),
            checkpoints
                .iter()
                .rev()
                .find_map(|c| c.manifest.as_ref().map(|m| m.last_position))
                .map_or_else(|| "?".to_string(), |p| p.to_string())
        ))?;
    }
    Ok(Status::Ok)
}

/// `verify`: exit status 0 only when the store is consistent.
///
/// # Errors
///
/// When the store cannot be read at all (damage is reported, not an error).
pub fn verify(log: &EventLog, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    let report = verify_with_bar(log)?;
    if json {
        out.json(&report)?;
    } else {
        out.line(format!(
            "{}: {} events in {} records, {} aggregates, {} index pages, {} snapshots; chain head {}",
            if report.ok { "consistent" } else { "INCONSISTENT" },
            report.events,
            report.records,
            report.aggregates,
            report.index_pages,
            report.snapshots,
            report.chain_head
        ))?;
        if !report.ok {
            let mut table = Table::new(&["KIND", "LOCATION", "PROBLEM"]);
            for issue in &report.issues {
                table.row(vec![
                    issue.kind.to_string(),
                    issue.location.clone(),
                    issue.detail.clone(),
                ]);
            }
            table.write(out)?;
            if report.issue_count > report.issues.len() as u64 {
                out.line(format!(
                    "... and {} more",
                    report.issue_count - report.issues.len() as u64
                ))?;
            }
        }
    }
    Ok(if report.ok {
        Status::Ok
    } else {
        Status::Inconsistent
    })
}

/// `state TYPE ID [--at VERSION]`.
///
/// # Errors
///
/// For a type without an Omni Writer aggregate, an aggregate with no events, or a version it
/// has not reached.
pub fn state(
    log: &EventLog,
    aggregate_type: &str,
    aggregate_id: &str,
    at: Option<u64>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let Some(state) = omni::load_state(log, aggregate_type, aggregate_id, at)? else {
        bail!(
            "no events for {aggregate_type}/{aggregate_id} (list aggregates with `events-dump streams`)"
        );
    };
    if json {
        out.json(&state)?;
    } else {
        out.line(serde_json::to_string_pretty(&state)?)?;
    }
    Ok(Status::Ok)
}

/// `snapshot TYPE ID [--create]`: the kept snapshots, each with the state it holds.
///
/// # Errors
///
/// When the store cannot be read, or `--create` cannot snapshot.
pub fn snapshot(
    log: &EventLog,
    aggregate_type: &str,
    aggregate_id: &str,
    create: bool,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    if create {
        let version = omni::snapshot_now(log, aggregate_type, aggregate_id)?;
        tracing::info!(aggregate_type, aggregate_id, version, "snapshot taken");
    }
    let stream = StreamId::new(aggregate_type, aggregate_id);
    let snapshots = log.admin().snapshots(&stream)?;
    if snapshots.is_empty() {
        let version = log.stream_version(&stream)?;
        if version == 0 {
            bail!("no aggregate {aggregate_type}/{aggregate_id} in the store");
        }
        if !json {
            out.line(format!(
                "no snapshots of {aggregate_type}/{aggregate_id} (at version {version}); \
                 `--create` takes one"
            ))?;
        }
        return Ok(Status::Ok);
    }
    let mut table = Table::new(&[">VERSION", ">SCHEMA", "CREATED", ">BYTES"]);
    let mut newest_state = None;
    for snapshot in &snapshots {
        // The state at the snapshot's version, loaded from it (`from_snapshot` says so).
        let state = omni::load_state(log, aggregate_type, aggregate_id, Some(snapshot.version))
            .ok()
            .flatten();
        if json {
            let mut line = serde_json::to_value(snapshot)?;
            if let Value::Object(map) = &mut line {
                map.insert("state_bytes".into(), snapshot.state.len().into());
                map.insert("state".into(), state.unwrap_or(Value::Null));
            }
            out.json(&line)?;
        } else {
            table.row(vec![
                snapshot.version.to_string(),
                snapshot.schema_version.to_string(),
                snapshot.created_at.to_rfc3339(),
                snapshot.state.len().to_string(),
            ]);
            newest_state = state;
        }
    }
    if !json {
        table.write(out)?;
        if let Some(state) = newest_state {
            out.line("")?;
            out.line("state at the newest snapshot:")?;
            out.line(serde_json::to_string_pretty(&state)?)?;
        }
    }
    Ok(Status::Ok)
}

/// `info` of a live store read read-only: what its log files say (metrics, snapshots and the
/// durable position are the daemon's).
fn live_info(source: &Source, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    let log = &source.log;
    let last_position = log.last_position()?;
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    for aggregate in log.aggregates(None)? {
        *per_type.entry(aggregate.aggregate_type).or_default() += 1;
    }
    let checkpoints = list_checkpoints(&checkpoint_dir(&source.store_dir)).unwrap_or_default();
    let note = "the store is in use by a running process: read live, read-only, from its log \
                files (what the daemon has written so far); metrics, snapshots and the durable \
                position are the daemon's (stop it, or read a checkpoint, for those)";
    if json {
        out.json(&json!({
            "source": source.description,
            "live": true,
            "last_position": last_position,
            "events": last_position,
            "aggregates": per_type.values().sum::<u64>(),
            "aggregates_per_type": per_type,
            "store_checkpoints": checkpoints,
            "note": note,
        }))?;
        return Ok(Status::Ok);
    }
    out.line(format!("source            {}", source.description))?;
    out.line(format!("events            {last_position}"))?;
    out.line(format!("last position     {last_position}"))?;
    out.line(format!("note              {note}"))?;
    out.line("")?;
    let mut table = Table::new(&["AGGREGATE TYPE", ">AGGREGATES"]);
    for (aggregate_type, count) in &per_type {
        table.row(vec![aggregate_type.clone(), count.to_string()]);
    }
    table.write(out)?;
    out.line("")?;
    out.line(format!(
        "{} checkpoints in {}",
        checkpoints.len(),
        checkpoint_dir(&source.store_dir).display()
    ))?;
    Ok(Status::Ok)
}
