//! Events as JSON objects with a fixed field order, and as one-line table rows.

use eventlog::{EventRegistry, RecordedEvent};
use serde_json::Value;

/// An event as one JSON object, fields in the order the issue lists them, then `payload` decoded
/// through the registry (upcast to the current schema). An event the registry cannot decode keeps
/// its stored schema version and gets `payload: {"hex", "len"}` and `payload_error` (see
/// `EventRegistry::event_to_json_lossy`).
pub fn event_json(registry: &EventRegistry, event: &RecordedEvent) -> Value {
    registry.event_to_json_lossy(event)
}

/// Column headers of event rows.
pub const ROW_HEADER: &str = "POSITION  TIMESTAMP                    VER  EVENT TYPE                    AGGREGATE                                 PAYLOAD";

/// One event as one table row (fixed widths, so rows stream without buffering).
pub fn event_row(json: &Value) -> String {
    let field = |name: &str| json.get(name).cloned().unwrap_or(Value::Null);
    let text = |name: &str| match field(name) {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let aggregate = format!("{}/{}", text("aggregate_type"), text("aggregate_id"));
    format!(
        "{:>8}  {:<27}  {:>3}  {:<28}  {:<40}  {}",
        text("position"),
        text("timestamp"),
        text("version"),
        text("event_type"),
        aggregate,
        payload_summary(&field("payload"))
    )
}

/// The payload's top-level scalar fields as `key=value`, shortened: the gist on one line.
pub fn payload_summary(payload: &Value) -> String {
    const MAX: usize = 100;
    let Value::Object(fields) = payload else {
        return shorten(&payload.to_string(), MAX);
    };
    if let (Some(Value::String(_)), Some(len)) = (fields.get("hex"), fields.get("len")) {
        return format!("<undecoded payload, {len} bytes>");
    }
    let mut parts = Vec::new();
    for (key, value) in fields {
        let shown = match value {
            Value::String(s) => shorten(s, 40),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Array(_) | Value::Object(_) => continue,
        };
        parts.push(format!("{key}={shown}"));
    }
    shorten(&parts.join(" "), MAX)
}

fn shorten(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let kept: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_keep_scalars_and_shorten() {
        let payload = json!({"cache_key": "k", "nested": {"a": 1}, "hit": true, "n": 2});
        assert_eq!(payload_summary(&payload), "cache_key=k hit=true n=2");
        let long = json!({"text": "x".repeat(100)});
        assert!(payload_summary(&long).ends_with('…'));
        let raw = json!({"hex": "00", "len": 1});
        assert_eq!(payload_summary(&raw), "<undecoded payload, 1 bytes>");
    }
}
