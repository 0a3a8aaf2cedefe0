//! The registry with the Omni Writer's sixteen types: creation from JSON, decoding, upcasting and
//! the errors of each (moved from `events-core` with the types).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use events_core::*;
use omni_domain::{CacheHit, CacheMiss};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[test]
fn sixteen_omni_writer_types_are_registered() {
    let registry = omni_domain::registry();
    let names: Vec<&str> = registry.event_types().collect();
    assert_eq!(names.len(), 16);
    for expected in [
        "article_generation_started",
        "article_generation_completed",
        "article_generation_failed",
        "prompt_validation_started",
        "prompt_validation_completed",
        "prompt_validation_failed",
        "cache_hit",
        "cache_miss",
        "cache_set",
        "cache_invalidated",
        "retry_attempted",
        "retry_succeeded",
        "retry_failed",
        "pipeline_started",
        "pipeline_completed",
        "pipeline_failed",
    ] {
        assert!(registry.contains(expected), "{expected} missing");
    }
    assert_eq!(
        registry.registered_events()["cache_hit"],
        "CacheHit".to_string()
    );
}

#[test]
fn unknown_type_is_named_in_the_error() {
    let registry = omni_domain::registry();
    let err = registry
        .create("article_exploded", "a", json!({}), EventContext::default())
        .unwrap_err();
    assert_eq!(
        err,
        RegistryError::UnknownEventType {
            event_type: "article_exploded".into()
        }
    );
    assert!(err.to_string().contains("article_exploded"));
}

#[test]
fn wrong_json_shape_is_invalid_payload() {
    let registry = omni_domain::registry();
    let err = registry
        .create(
            "cache_hit",
            "a",
            json!({"cache_key": 5}),
            EventContext::default(),
        )
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidPayload { event_type, .. } if event_type == "cache_hit")
    );
}

#[test]
fn duplicate_registration_is_refused() {
    let mut registry = omni_domain::registry();
    assert_eq!(
        registry.register::<CacheHit>(),
        Err(RegistryError::DuplicateEventType {
            event_type: "cache_hit".into()
        })
    );
}

#[test]
fn upcaster_versions_are_checked() {
    let mut registry = omni_domain::registry();
    let err = registry
        .register_upcaster("cache_hit", 1, |old: CacheHit| old)
        .unwrap_err();
    assert!(matches!(
        err,
        RegistryError::InvalidUpcaster { current: 1, .. }
    ));
    let err = registry
        .register_upcaster("nope", 1, |old: CacheHit| old)
        .unwrap_err();
    assert!(matches!(err, RegistryError::UnknownEventType { .. }));
}

#[test]
fn schema_newer_than_known_is_refused() {
    let registry = omni_domain::registry();
    let bytes = codec::encode_payload(&CacheMiss {
        cache_key: "k".into(),
        cache_type: "memory".into(),
        reason: "expired".into(),
    })
    .unwrap();
    let err = registry.upcast("cache_miss", 2, &bytes).unwrap_err();
    assert_eq!(
        err,
        RegistryError::SchemaTooNew {
            event_type: "cache_miss".into(),
            found: 2,
            current: 1
        }
    );
}

#[test]
fn missing_upcaster_is_reported() {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thrice {
        n: u32,
    }
    impl DomainEvent for Thrice {
        const EVENT_TYPE: &'static str = "thrice";
        const AGGREGATE_TYPE: &'static str = "t";
        const SCHEMA_VERSION: u16 = 3;
    }
    let mut registry = EventRegistry::new();
    registry.register::<Thrice>().unwrap();
    registry
        .register_upcaster("thrice", 2, |old: Thrice| old)
        .unwrap();
    let bytes = codec::encode_payload(&Thrice { n: 1 }).unwrap();
    assert_eq!(
        registry.upcast("thrice", 1, &bytes).unwrap_err(),
        RegistryError::MissingUpcaster {
            event_type: "thrice".into(),
            from_version: 1
        }
    );
    assert_eq!(registry.upcast("thrice", 2, &bytes).unwrap(), &bytes[..]);
}

#[test]
fn decode_checks_the_type() {
    let registry = omni_domain::registry();
    let event = NewEvent::from_event(
        "c",
        &CacheMiss {
            cache_key: "k".into(),
            cache_type: "memory".into(),
            reason: "expired".into(),
        },
        EventContext::default(),
    )
    .unwrap()
    .into_recorded(1, 1);
    let err = registry.decode::<CacheHit>(&event).unwrap_err();
    assert_eq!(
        err,
        RegistryError::TypeMismatch {
            expected: "cache_hit",
            found: "cache_miss".into()
        }
    );
    assert_eq!(
        registry.decode::<CacheMiss>(&event).unwrap().reason,
        "expired"
    );
}

#[test]
fn lossy_json_shows_undecodable_payloads_as_hex() {
    let registry = omni_domain::registry();
    let event = NewEvent::from_parts(
        "made_up",
        "thing",
        "t-1",
        3,
        vec![0, 15, 255],
        EventContext::default(),
    )
    .into_recorded(1, 7);
    assert!(registry.event_to_json(&event).is_err());
    let json = registry.event_to_json_lossy(&event);
    assert_eq!(json["payload"]["hex"], "000fff");
    assert_eq!(json["payload"]["len"], 3);
    assert_eq!(json["schema_version"], 3);
    assert!(json["payload_error"].as_str().unwrap().contains("made_up"));
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        &keys[..5],
        &[
            "position",
            "event_id",
            "event_type",
            "aggregate_type",
            "aggregate_id"
        ]
    );
    assert!(matches!(
        registry.event_from_json(json),
        Err(RegistryError::InvalidEnvelope { .. })
    ));
}

#[test]
fn json_envelope_with_old_schema_version_is_refused() {
    let registry = omni_domain::registry();
    let event = registry
        .create(
            "cache_miss",
            "c",
            json!({"cache_key": "k", "cache_type": "memory", "reason": "x"}),
            EventContext::default(),
        )
        .unwrap()
        .into_recorded(1, 1);
    let mut json = registry.event_to_json(&event).unwrap();
    json["schema_version"] = json!(0);
    assert!(matches!(
        registry.event_from_json(json),
        Err(RegistryError::InvalidEnvelope { .. })
    ));
}
