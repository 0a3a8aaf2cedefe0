//! A v1 payload written before a field was added reads back as v2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use events_core::*;
use omni_domain::*;

fn v1_completed() -> ArticleGenerationCompletedV1 {
    ArticleGenerationCompletedV1 {
        article_output: ArticleOutput {
            content: "Texto".into(),
            filename: "artigo_1.txt".into(),
            metadata: BTreeMap::new(),
        },
        generation_time: 5.5,
        model_used: "gpt-4o".into(),
    }
}

/// What an older build stored: the v1 struct's bytes, tagged schema version 1.
fn stored_v1() -> RecordedEvent {
    let payload = codec::encode_payload(&v1_completed()).unwrap();
    NewEvent::from_parts(
        "article_generation_completed",
        "article_generation",
        "gen_123",
        1,
        payload,
        EventContext::new("old-build"),
    )
    .into_recorded(2, 10)
}

#[test]
fn v1_payload_reads_back_as_v2() {
    let registry = omni_domain::registry();
    let event = stored_v1();
    let current: ArticleGenerationCompleted = registry.decode(&event).unwrap();
    assert_eq!(current.tokens_used, None);
    assert_eq!(current.model_used, "gpt-4o");
    assert_eq!(current.generation_time, 5.5);
    assert_eq!(ArticleGenerationCompleted::SCHEMA_VERSION, 2);
}

#[test]
fn v1_payload_cannot_be_decoded_without_the_upcaster() {
    // The v1 bytes lack `tokens_used`: reading them straight as v2 fails, which is why the
    // upcaster exists.
    let event = stored_v1();
    assert!(codec::decode_payload::<ArticleGenerationCompleted>(&event.payload).is_err());
}

#[test]
fn v1_payload_is_shown_as_current_json() {
    let registry = omni_domain::registry();
    let json = registry.event_to_json(&stored_v1()).unwrap();
    assert_eq!(json["schema_version"], 2);
    assert_eq!(json["payload"]["tokens_used"], serde_json::Value::Null);
    assert_eq!(json["payload"]["model_used"], "gpt-4o");
    // ...and that JSON reads back as a current (v2) event.
    let back = registry.event_from_json(json).unwrap();
    assert_eq!(back.metadata.schema_version, 2);
}

#[test]
fn a_user_registered_chain_applies_in_order() {
    use serde::{Deserialize, Serialize};
    #[derive(Debug, Serialize, Deserialize)]
    struct V1 {
        name: String,
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct V2 {
        name: String,
        age: u32,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Person {
        name: String,
        age: u32,
        email: Option<String>,
    }
    impl DomainEvent for Person {
        const EVENT_TYPE: &'static str = "person_registered";
        const AGGREGATE_TYPE: &'static str = "person";
        const SCHEMA_VERSION: u16 = 3;
    }
    let mut registry = EventRegistry::new();
    registry.register::<Person>().unwrap();
    registry
        .register_upcaster("person_registered", 1, |v: V1| V2 {
            name: v.name,
            age: 0,
        })
        .unwrap();
    registry
        .register_upcaster("person_registered", 2, |v: V2| Person {
            name: v.name,
            age: v.age,
            email: None,
        })
        .unwrap();
    let bytes = codec::encode_payload(&V1 { name: "Ana".into() }).unwrap();
    let event = NewEvent::from_parts(
        "person_registered",
        "person",
        "p1",
        1,
        bytes,
        EventContext::default(),
    )
    .into_recorded(1, 1);
    assert_eq!(
        registry.decode::<Person>(&event).unwrap(),
        Person {
            name: "Ana".into(),
            age: 0,
            email: None
        }
    );
}
