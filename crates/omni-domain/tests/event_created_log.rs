//! Creating an event emits `event_sourcing_event_created` with the seed's fields.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use events_core::*;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

type Fields = Vec<(String, String)>;

#[derive(Default, Clone)]
struct Captured(Arc<Mutex<Vec<Fields>>>);

struct FieldVisitor(Vec<(String, String)>);

impl Visit for FieldVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = FieldVisitor(vec![("name".into(), event.metadata().name().into())]);
        event.record(&mut visitor);
        self.0.lock().unwrap().push(visitor.0);
    }
}

#[test]
fn factory_and_typed_creation_both_log_the_event() {
    let captured = Captured::default();
    let subscriber = Registry::default().with(captured.clone());
    let event = tracing::subscriber::with_default(subscriber, || {
        omni_domain::registry()
            .create(
                "cache_miss",
                "cache_123",
                serde_json::json!({"cache_key": "k", "cache_type": "memory", "reason": "not_found"}),
                EventContext::new("omni-writer").with_trace_id("trace_456"),
            )
            .unwrap()
    });
    let logs = captured.0.lock().unwrap();
    let created: Vec<_> = logs
        .iter()
        .filter(|fields| {
            fields
                .iter()
                .any(|(k, v)| k == "name" && v == "event_sourcing_event_created")
        })
        .collect();
    assert_eq!(created.len(), 1);
    let get = |key: &str| {
        created[0]
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("field {key} missing"))
    };
    assert_eq!(get("event_id"), event.event_id.to_string());
    assert_eq!(get("event_type"), "cache_miss");
    assert_eq!(get("aggregate_id"), "cache_123");
    assert_eq!(get("aggregate_type"), "cache");
    assert_eq!(get("version"), "0");
    assert_eq!(get("trace_id"), "trace_456");
}
