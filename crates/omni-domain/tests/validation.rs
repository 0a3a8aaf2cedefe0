//! Every validation failure, each with its own typed error and a message a person understands.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeDelta, Utc};
use events_core::*;
use omni_domain::*;
use uuid::Uuid;

fn hit() -> NewEvent {
    NewEvent::from_event(
        "cache-1",
        &CacheHit {
            cache_key: "k".into(),
            cache_type: "memory".into(),
            response_time: 0.001,
        },
        EventContext::new("omni-writer").with_trace_id("trace-1"),
    )
    .unwrap()
}

fn validator() -> EventValidator {
    omni_domain::validator()
}

#[test]
fn a_well_formed_event_passes() {
    assert_eq!(validator().validate_event(&hit()), Ok(()));
}

#[test]
fn empty_required_fields_are_named() {
    for (field, event) in [
        (
            "aggregate_id",
            NewEvent {
                aggregate_id: String::new(),
                ..hit()
            },
        ),
        (
            "event_type",
            NewEvent {
                event_type: String::new(),
                ..hit()
            },
        ),
        (
            "aggregate_type",
            NewEvent {
                aggregate_type: String::new(),
                ..hit()
            },
        ),
    ] {
        let err = validator().validate_event(&event).unwrap_err();
        assert_eq!(err, ValidationError::EmptyField { field });
        assert_eq!(err.to_string(), format!("`{field}` must not be empty"));
    }
    let mut event = hit();
    event.context.source.clear();
    assert_eq!(
        validator().validate_event(&event),
        Err(ValidationError::EmptyField { field: "source" })
    );
    let mut event = hit();
    event.context.trace_id = Some(String::new());
    assert_eq!(
        validator().validate_event(&event),
        Err(ValidationError::EmptyField { field: "trace_id" })
    );
}

#[test]
fn overlong_ids_are_refused() {
    let event = NewEvent {
        aggregate_id: "x".repeat(257),
        ..hit()
    };
    let err = validator().validate_event(&event).unwrap_err();
    assert_eq!(
        err,
        ValidationError::FieldTooLong {
            field: "aggregate_id",
            len: 257,
            max: 256
        }
    );
    assert!(err.to_string().contains("257 bytes"));

    let mut event = hit();
    event.context.causation_id = Some("c".repeat(300));
    assert!(matches!(
        validator().validate_event(&event),
        Err(ValidationError::FieldTooLong {
            field: "causation_id",
            ..
        })
    ));
}

#[test]
fn control_characters_in_ids_are_refused() {
    let event = NewEvent {
        aggregate_id: "gen\0-1".into(),
        ..hit()
    };
    assert_eq!(
        validator().validate_event(&event),
        Err(ValidationError::ControlCharacter {
            field: "aggregate_id",
            character: '\0',
            at: 3
        })
    );
    let mut event = hit();
    event.context.user_id = Some("ana\nbob".into());
    assert!(matches!(
        validator().validate_event(&event),
        Err(ValidationError::ControlCharacter {
            field: "user_id",
            character: '\n',
            ..
        })
    ));
}

#[test]
fn non_ascii_ids_are_fine() {
    let event = NewEvent {
        aggregate_id: "geração-çã-日本".into(),
        ..hit()
    };
    assert_eq!(validator().validate_event(&event), Ok(()));
}

#[test]
fn nil_event_id_is_refused() {
    let event = hit().with_event_id(Uuid::nil());
    assert_eq!(
        validator().validate_event(&event),
        Err(ValidationError::NilEventId)
    );
}

#[test]
fn unregistered_type_is_refused_only_with_a_registry() {
    let event = NewEvent {
        event_type: "cache_exploded".into(),
        ..hit()
    };
    assert_eq!(
        validator().validate_event(&event),
        Err(ValidationError::UnregisteredEventType {
            event_type: "cache_exploded".into()
        })
    );
    assert_eq!(EventValidator::new().validate_event(&event), Ok(()));
}

#[test]
fn wrong_aggregate_type_is_refused() {
    let event = NewEvent {
        aggregate_type: "pipeline".into(),
        ..hit()
    };
    let err = validator().validate_event(&event).unwrap_err();
    assert_eq!(
        err,
        ValidationError::AggregateTypeMismatch {
            event_type: "cache_hit".into(),
            registered: "cache".into(),
            found: "pipeline".into()
        }
    );
}

#[test]
fn schema_versions_outside_the_known_range_are_refused() {
    for found in [0, 2] {
        let event = NewEvent {
            schema_version: found,
            ..hit()
        };
        assert_eq!(
            validator().validate_event(&event),
            Err(ValidationError::InvalidSchemaVersion {
                event_type: "cache_hit".into(),
                found,
                current: 1
            })
        );
    }
}

#[test]
fn payload_over_the_limit_is_refused() {
    let limits = ValidationLimits {
        max_payload_bytes: 16,
        ..ValidationLimits::default()
    };
    let event = NewEvent {
        payload: vec![1; 17],
        ..hit()
    };
    assert_eq!(
        EventValidator::new()
            .with_limits(limits)
            .validate_event(&event),
        Err(ValidationError::PayloadTooLarge { size: 17, max: 16 })
    );
}

#[test]
fn timestamps_far_in_the_future_are_refused() {
    let now = Utc::now();
    let event = hit().with_timestamp(now + TimeDelta::seconds(301));
    assert!(matches!(
        validator().validate_event_at(&event, now),
        Err(ValidationError::TimestampInFuture {
            max_skew_seconds: 300,
            ..
        })
    ));
    let near = hit().with_timestamp(now + TimeDelta::seconds(299));
    assert_eq!(validator().validate_event_at(&near, now), Ok(()));
}

#[test]
fn batch_must_not_be_empty() {
    assert_eq!(
        validator().validate_batch(&[]),
        Err(ValidationError::EmptySequence)
    );
}

#[test]
fn batch_must_be_one_aggregate() {
    let other = NewEvent {
        aggregate_id: "cache-2".into(),
        ..hit()
    };
    let err = validator().validate_batch(&[hit(), other]).unwrap_err();
    assert_eq!(
        err,
        ValidationError::MixedAggregates {
            index: 1,
            expected_type: "cache".into(),
            expected_id: "cache-1".into(),
            found_type: "cache".into(),
            found_id: "cache-2".into()
        }
    );
}

#[test]
fn batch_must_not_repeat_an_event_id() {
    let first = hit();
    let again = hit().with_event_id(first.event_id);
    assert_eq!(
        validator().validate_batch(&[first.clone(), hit(), again]),
        Err(ValidationError::DuplicateEventId {
            event_id: first.event_id,
            first: 0,
            index: 2
        })
    );
}

#[test]
fn batch_reports_an_invalid_member() {
    let bad = NewEvent {
        aggregate_id: String::new(),
        ..hit()
    };
    assert_eq!(
        validator().validate_batch(&[hit(), bad]),
        Err(ValidationError::EmptyField {
            field: "aggregate_id"
        })
    );
}

fn recorded(versions: &[u64]) -> Vec<EventMetadata> {
    versions.iter().map(|&v| hit().metadata(v)).collect()
}

#[test]
fn consecutive_sequence_passes() {
    assert_eq!(validate_sequence(&recorded(&[5, 6, 7]), 5), Ok(()));
}

#[test]
fn sequence_must_not_be_empty() {
    assert_eq!(
        validate_sequence(&[], 1),
        Err(ValidationError::EmptySequence)
    );
}

#[test]
fn sequence_with_a_gap_is_refused() {
    assert_eq!(
        validate_sequence(&recorded(&[1, 2, 4]), 1),
        Err(ValidationError::VersionOutOfSequence {
            index: 2,
            expected: 3,
            found: 4
        })
    );
}

#[test]
fn sequence_with_a_wrong_start_is_refused() {
    assert_eq!(
        validate_sequence(&recorded(&[1, 2]), 3),
        Err(ValidationError::VersionOutOfSequence {
            index: 0,
            expected: 3,
            found: 1
        })
    );
}

#[test]
fn sequence_of_two_aggregates_is_refused() {
    let mut events = recorded(&[1, 2]);
    events[1].aggregate_type = "pipeline".into();
    assert!(matches!(
        validate_sequence(&events, 1),
        Err(ValidationError::MixedAggregates { index: 1, .. })
    ));
}

#[test]
fn sequence_with_a_repeated_id_is_refused() {
    let mut events = recorded(&[1, 2]);
    events[1].event_id = events[0].event_id;
    assert_eq!(
        validate_sequence(&events, 1),
        Err(ValidationError::DuplicateEventId {
            event_id: events[0].event_id,
            first: 0,
            index: 1
        })
    );
}
