//! The JSON factory and readers of `events-core`: the input's first byte picks a registered
//! event type (or an unknown one), the rest is JSON text. `EventRegistry::create`,
//! `event_from_json` and `new_event_from_json` must answer with an event or a typed error,
//! never a panic; and whatever they accept must round-trip through JSON unchanged.
#![no_main]

use events_core::{EventContext, EventRegistry};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let registry = EventRegistry::omni_writer();
    let types: Vec<&str> = registry.event_types().collect();
    let event_type = types
        .get(usize::from(selector) % (types.len() + 1))
        .copied()
        .unwrap_or("not_registered");

    if let Ok(event) = registry.create(
        event_type,
        "aggregate-1",
        json.clone(),
        EventContext::new("fuzz"),
    ) {
        let out = registry
            .new_event_to_json(&event)
            .expect("a created event converts to JSON");
        let back = registry
            .new_event_from_json(out)
            .expect("a created event's JSON reads back");
        assert_eq!(back, event, "a created event changed through JSON");
    }
    if let Ok(event) = registry.event_from_json(json.clone()) {
        let out = registry
            .event_to_json(&event)
            .expect("an accepted event converts to JSON");
        let back = registry
            .event_from_json(out)
            .expect("an accepted event's JSON reads back");
        assert_eq!(back, event, "a recorded event changed through JSON");
    }
    if let Ok(event) = registry.new_event_from_json(json) {
        let out = registry
            .new_event_to_json(&event)
            .expect("an accepted new event converts to JSON");
        let back = registry
            .new_event_from_json(out)
            .expect("an accepted new event's JSON reads back");
        assert_eq!(back, event, "a new event changed through JSON");
    }
});
