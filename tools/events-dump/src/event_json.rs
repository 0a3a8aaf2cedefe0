//! Events as JSON objects with a fixed field order, and as one-line table rows.

use eventlog::{EventLog, RecordedEvent};
use serde_json::{Map, Value};

/// The metadata fields of an event line, in the order printed (the payload follows).
pub const FIELDS: [&str; 14] = [
    "position",
    "event_id",
    "event_type",
    "aggregate_type",
    "aggregate_id",
    "version",
    "timestamp",
    "trace_id",
    "user_id",
    "session_id",
    "source",
    "correlation_id",
    "causation_id",
    "schema_version",
];

/// An event as one JSON object: [`FIELDS`] in order, then `payload` decoded through the
/// registry (upcast to the current schema). An event the registry cannot decode keeps its
/// stored schema version and gets `payload: {"hex", "len"}` and `payload_error`.
pub fn event_json(log: &EventLog, event: &RecordedEvent) -> Value {
    match log.event_to_json(event) {
        Ok(Value::Object(mut decoded)) => {
            let mut ordered = Map::new();
            for field in FIELDS.iter().chain(&["payload"]) {
                if let Some(value) = decoded.remove(*field) {
                    ordered.insert((*field).to_string(), value);
                }
            }
            ordered.extend(decoded);
            Value::Object(ordered)
        }
        Ok(other) => other,
        Err(error) => undecoded(event, &error.to_string()),
    }
}

fn undecoded(event: &RecordedEvent, error: &str) -> Value {
    let m = &event.metadata;
    let text = |s: &Option<String>| s.as_ref().map_or(Value::Null, |s| Value::from(s.as_str()));
    let mut ordered = Map::new();
    let fields: [(&str, Value); 14] = [
        ("position", event.position.into()),
        ("event_id", m.event_id.to_string().into()),
        ("event_type", m.event_type.as_str().into()),
        ("aggregate_type", m.aggregate_type.as_str().into()),
        ("aggregate_id", m.aggregate_id.as_str().into()),
        ("version", m.version.into()),
        (
            "timestamp",
            serde_json::to_value(m.timestamp).unwrap_or(Value::Null),
        ),
        ("trace_id", text(&m.trace_id)),
        ("user_id", text(&m.user_id)),
        ("session_id", text(&m.session_id)),
        ("source", m.source.as_str().into()),
        ("correlation_id", text(&m.correlation_id)),
        ("causation_id", text(&m.causation_id)),
        ("schema_version", m.schema_version.into()),
    ];
    for (name, value) in fields {
        ordered.insert(name.to_string(), value);
    }
    let mut payload = Map::new();
    payload.insert("hex".into(), hex(&event.payload).into());
    payload.insert("len".into(), event.payload.len().into());
    ordered.insert("payload".into(), Value::Object(payload));
    ordered.insert("payload_error".into(), error.into());
    Value::Object(ordered)
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
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
    fn hex_is_lower_case_pairs() {
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
    }

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
