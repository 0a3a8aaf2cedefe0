//! `trace ID`: the causation tree of one trace or correlation id.

use std::collections::HashMap;

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
        out.json(&trace_json(log, &trace, from, to))?;
    } else {
        print_tree(log, &trace, out)?;
    }
    Ok(Status::Ok)
}

/// Milliseconds from `start` to the event's timestamp.
fn offset_ms(start: i64, event: &eventlog::RecordedEvent) -> f64 {
    (event.metadata.timestamp.timestamp_micros() - start) as f64 / 1000.0
}

fn start_micros(trace: &Trace) -> i64 {
    trace
        .events()
        .iter()
        .map(|e| e.metadata.timestamp.timestamp_micros())
        .min()
        .unwrap_or(0)
}

/// The tree as JSON: the events in walk order (depth first), each with its depth, its parent's
/// position and its children's positions, so any depth encodes without recursion.
fn trace_json(log: &Handle, trace: &Trace, from: u64, to: Option<u64>) -> Value {
    let start = start_micros(trace);
    let mut kids: HashMap<u64, Vec<u64>> = HashMap::new();
    for step in trace.walk() {
        if let Some(parent) = step.parent {
            kids.entry(parent.position)
                .or_default()
                .push(step.event.position);
        }
    }
    let events: Vec<Value> = trace
        .walk()
        .map(|step| {
            let mut value = event_json(log.registry(), step.event);
            if let Value::Object(map) = &mut value {
                map.insert("depth".into(), step.depth.into());
                map.insert(
                    "parent".into(),
                    step.parent.map_or(Value::Null, |p| p.position.into()),
                );
                map.insert(
                    "children".into(),
                    kids.remove(&step.event.position).unwrap_or_default().into(),
                );
                map.insert("offset_ms".into(), offset_ms(start, step.event).into());
            }
            value
        })
        .collect();
    json!({
        "id": trace.id(),
        "events": trace.events().len(),
        "roots": trace.roots().count(),
        "truncated": trace.truncated(),
        "scanned": {"from": from, "to": to},
        "tree": events,
    })
}

/// The tree, indented by depth: time since the first event, position, type, aggregate and the
/// payload's gist.
fn print_tree(log: &Handle, trace: &Trace, out: &mut Out) -> anyhow::Result<()> {
    let start = start_micros(trace);
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
            offset_ms(start, event) / 1000.0,
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
