//! `trace ID`: the causation tree of one trace or correlation id.

use anyhow::bail;
use eventlog::{Position, Trace, TraceQuery};
use serde_json::{Value, json};

use crate::commands::Status;
use crate::event_json::{event_json, payload_summary};
use crate::omni;
use crate::out::Out;
use crate::source::Handle;

/// Where to look and how much to return.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// First position scanned (default: the pipeline's first event, else 1).
    pub from: Option<u64>,
    /// Last position scanned (default: the pipeline's last event once it ended, else the end).
    pub to: Option<u64>,
    /// Most events returned.
    pub max_events: usize,
}

/// `trace ID [--from POS] [--to POS] [--max-events N]`.
///
/// # Errors
///
/// When no event carries `id`, or the log cannot be read.
pub fn trace(
    log: &Handle,
    id: &str,
    window: Window,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let pipeline = omni::pipeline_window(log, id)?;
    let from = window
        .from
        .or(pipeline.map(|(first, _)| first))
        .unwrap_or(1);
    let to = window.to.or(pipeline.and_then(|(_, last)| last));
    let mut query = TraceQuery::new(id)
        .from(Position(from))
        .max_events(window.max_events);
    if let Some(to) = to {
        query = query.to(Position(to));
    }
    let trace = log.trace(&query)?;
    if trace.events().is_empty() {
        bail!(
            "no event has trace id or correlation id `{id}` (scanned positions {from} to {}); \
             pipeline ids look like pipeline-000001 (`events-dump streams --type pipeline`)",
            to.map_or_else(|| "the end".to_string(), |to| to.to_string())
        );
    }
    if json {
        let mut value = trace.to_json(log.registry());
        if let Value::Object(map) = &mut value {
            map.insert("scanned".into(), json!({"from": from, "to": to}));
        }
        out.json(&value)?;
    } else {
        print_tree(log, &trace, out)?;
    }
    Ok(Status::Ok)
}

/// The tree, indented by depth: time since the first event, position, type, aggregate and the
/// payload's gist.
fn print_tree(log: &Handle, trace: &Trace, out: &mut Out) -> anyhow::Result<()> {
    let events = trace.events();
    let (first, last) = (
        events.first().map_or(0, |e| e.position),
        events.last().map_or(0, |e| e.position),
    );
    out.line(format!(
        "trace {}: {} events at positions {first}..{last}, {} root{}{}",
        trace.id(),
        events.len(),
        trace.roots().count(),
        if trace.roots().count() == 1 { "" } else { "s" },
        if trace.truncated() {
            " (TRUNCATED: --max-events)"
        } else {
            ""
        }
    ))?;
    for step in trace.walk() {
        let event = step.event;
        let json = event_json(log.registry(), event);
        out.line(format!(
            "{:>10.3}s  {:>8}  {}{} {}/{} v{}  {}",
            step.offset_ms / 1000.0,
            event.position,
            "  ".repeat(step.depth),
            event.metadata.event_type,
            event.metadata.aggregate_type,
            event.metadata.aggregate_id,
            event.metadata.version,
            payload_summary(json.get("payload").unwrap_or(&Value::Null)),
        ))?;
    }
    Ok(())
}
