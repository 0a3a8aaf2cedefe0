//! Validation of one event and of a sequence of events, each failure its own [`ValidationError`].

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::error::ValidationError;
use crate::event::{EventMetadata, NewEvent};
use crate::registry::EventRegistry;

/// Limits an event must stay within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationLimits {
    /// Longest aggregate id, trace, user, session, correlation or causation id, in bytes.
    /// Default = 256.
    pub max_id_len: usize,
    /// Longest event type, aggregate type or source, in bytes. Default = 128.
    pub max_name_len: usize,
    /// Largest encoded payload, in bytes. Default = 1 MiB.
    pub max_payload_bytes: usize,
    /// How far ahead of the validator's clock a timestamp may be, in seconds. Default = 300.
    pub max_future_skew_seconds: i64,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_id_len: 256,
            max_name_len: 128,
            max_payload_bytes: 1 << 20,
            max_future_skew_seconds: 300,
        }
    }
}

/// Checks events against [`ValidationLimits`] and, when it has one, a registry.
///
/// # Example
///
/// ```
/// use events_core::{EventContext, EventRegistry, EventValidator, NewEvent, ValidationError};
/// # use events_core::DomainEvent;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct CacheHit { cache_key: String, cache_type: String, response_time: f64 }
/// # impl DomainEvent for CacheHit {
/// #     const EVENT_TYPE: &'static str = "cache_hit";
/// #     const AGGREGATE_TYPE: &'static str = "cache";
/// # }
///
/// let mut registry = EventRegistry::new();
/// registry.register::<CacheHit>().unwrap();
/// let validator = EventValidator::new().with_registry(registry);
/// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
/// let event = NewEvent::from_event("cache-1", &hit, EventContext::new("omni-writer")).unwrap();
/// assert_eq!(validator.validate_event(&event), Ok(()));
///
/// let nameless = NewEvent { aggregate_id: String::new(), ..event };
/// assert_eq!(
///     validator.validate_event(&nameless),
///     Err(ValidationError::EmptyField { field: "aggregate_id" })
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventValidator {
    registry: Option<Arc<EventRegistry>>,
    limits: ValidationLimits,
}

impl EventValidator {
    /// A validator with default limits and no registry: any event type is accepted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept only types registered in `registry`, at a schema version it knows, on the aggregate
    /// type they are registered with. Default = no registry (any type).
    #[must_use]
    pub fn with_registry(mut self, registry: impl Into<Arc<EventRegistry>>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// Sets the limits. Default = [`ValidationLimits::default`].
    #[must_use]
    pub fn with_limits(mut self, limits: ValidationLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &ValidationLimits {
        &self.limits
    }

    /// Validates one event against the current time.
    ///
    /// # Errors
    ///
    /// The first [`ValidationError`] found: empty, overlong or control-character fields, a nil
    /// id, an unregistered type, a wrong aggregate type or schema version, an oversized payload, a
    /// timestamp too far in the future.
    pub fn validate_event(&self, event: &NewEvent) -> Result<(), ValidationError> {
        self.validate_event_at(event, Utc::now())
    }

    /// Validates one event as if the time were `now`.
    ///
    /// # Errors
    ///
    /// As [`EventValidator::validate_event`].
    pub fn validate_event_at(
        &self,
        event: &NewEvent,
        now: DateTime<Utc>,
    ) -> Result<(), ValidationError> {
        let limits = &self.limits;
        if event.event_id.is_nil() {
            return Err(ValidationError::NilEventId);
        }
        check_text("event_type", &event.event_type, limits.max_name_len)?;
        check_text("aggregate_type", &event.aggregate_type, limits.max_name_len)?;
        check_text("aggregate_id", &event.aggregate_id, limits.max_id_len)?;
        check_text("source", &event.context.source, limits.max_name_len)?;
        let optional_ids = [
            ("trace_id", &event.context.trace_id),
            ("user_id", &event.context.user_id),
            ("session_id", &event.context.session_id),
            ("correlation_id", &event.context.correlation_id),
            ("causation_id", &event.context.causation_id),
        ];
        for (field, value) in optional_ids {
            if let Some(value) = value {
                check_text(field, value, limits.max_id_len)?;
            }
        }
        if event.payload.len() > limits.max_payload_bytes {
            return Err(ValidationError::PayloadTooLarge {
                size: event.payload.len(),
                max: limits.max_payload_bytes,
            });
        }
        let skew = TimeDelta::seconds(limits.max_future_skew_seconds);
        if event.timestamp > now + skew {
            return Err(ValidationError::TimestampInFuture {
                timestamp: event.timestamp,
                now,
                max_skew_seconds: limits.max_future_skew_seconds,
            });
        }
        self.check_registered(event)
    }

    fn check_registered(&self, event: &NewEvent) -> Result<(), ValidationError> {
        let Some(registry) = &self.registry else {
            return Ok(());
        };
        let info = registry.info(&event.event_type).ok_or_else(|| {
            ValidationError::UnregisteredEventType {
                event_type: event.event_type.clone(),
            }
        })?;
        if info.aggregate_type != event.aggregate_type {
            return Err(ValidationError::AggregateTypeMismatch {
                event_type: event.event_type.clone(),
                registered: info.aggregate_type.to_string(),
                found: event.aggregate_type.clone(),
            });
        }
        if event.schema_version == 0 || event.schema_version > info.schema_version {
            return Err(ValidationError::InvalidSchemaVersion {
                event_type: event.event_type.clone(),
                found: event.schema_version,
                current: info.schema_version,
            });
        }
        Ok(())
    }

    /// Validates the events of one append: each event, all of one aggregate, no id twice.
    ///
    /// # Errors
    ///
    /// [`ValidationError::EmptySequence`], [`ValidationError::MixedAggregates`],
    /// [`ValidationError::DuplicateEventId`], or the first event's own error.
    pub fn validate_batch(&self, events: &[NewEvent]) -> Result<(), ValidationError> {
        let first = events.first().ok_or(ValidationError::EmptySequence)?;
        let now = Utc::now();
        let mut seen = IdTracker::default();
        for (index, event) in events.iter().enumerate() {
            self.validate_event_at(event, now)?;
            if event.aggregate_type != first.aggregate_type
                || event.aggregate_id != first.aggregate_id
            {
                return Err(mixed(index, first, event));
            }
            seen.check(event.event_id, index)?;
        }
        Ok(())
    }
}

fn mixed(index: usize, first: &NewEvent, event: &NewEvent) -> ValidationError {
    ValidationError::MixedAggregates {
        index,
        expected_type: first.aggregate_type.clone(),
        expected_id: first.aggregate_id.clone(),
        found_type: event.aggregate_type.clone(),
        found_id: event.aggregate_id.clone(),
    }
}

/// Validates a recorded sequence: one aggregate, versions consecutive from `expected_start`, no
/// event id twice.
///
/// # Errors
///
/// [`ValidationError::EmptySequence`], [`ValidationError::MixedAggregates`],
/// [`ValidationError::VersionOutOfSequence`] or [`ValidationError::DuplicateEventId`], naming the
/// index of the first offending event.
///
/// # Example
///
/// ```
/// use events_core::{validate_sequence, EventContext, NewEvent, ValidationError};
/// # use events_core::DomainEvent;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct CacheHit { cache_key: String, cache_type: String, response_time: f64 }
/// # impl DomainEvent for CacheHit {
/// #     const EVENT_TYPE: &'static str = "cache_hit";
/// #     const AGGREGATE_TYPE: &'static str = "cache";
/// # }
///
/// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.0 };
/// let events: Vec<_> = (1..=3)
///     .map(|v| NewEvent::from_event("c", &hit, EventContext::default()).unwrap().metadata(v))
///     .collect();
/// assert_eq!(validate_sequence(&events, 1), Ok(()));
/// assert_eq!(
///     validate_sequence(&events, 2),
///     Err(ValidationError::VersionOutOfSequence { index: 0, expected: 2, found: 1 })
/// );
/// ```
pub fn validate_sequence<'a>(
    events: impl IntoIterator<Item = &'a EventMetadata>,
    expected_start: u64,
) -> Result<(), ValidationError> {
    let mut events = events.into_iter().enumerate();
    let (_, first) = events.next().ok_or(ValidationError::EmptySequence)?;
    let mut seen = IdTracker::default();
    let mut expected = expected_start;
    for (index, event) in std::iter::once((0, first)).chain(events) {
        if event.aggregate_type != first.aggregate_type || event.aggregate_id != first.aggregate_id
        {
            return Err(ValidationError::MixedAggregates {
                index,
                expected_type: first.aggregate_type.clone(),
                expected_id: first.aggregate_id.clone(),
                found_type: event.aggregate_type.clone(),
                found_id: event.aggregate_id.clone(),
            });
        }
        if event.version != expected {
            return Err(ValidationError::VersionOutOfSequence {
                index,
                expected,
                found: event.version,
            });
        }
        seen.check(event.event_id, index)?;
        expected = expected.saturating_add(1);
    }
    Ok(())
}

#[derive(Default)]
struct IdTracker(HashMap<Uuid, usize>);

impl IdTracker {
    fn check(&mut self, event_id: Uuid, index: usize) -> Result<(), ValidationError> {
        match self.0.insert(event_id, index) {
            Some(first) => Err(ValidationError::DuplicateEventId {
                event_id,
                first,
                index,
            }),
            None => Ok(()),
        }
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::EmptyField { field });
    }
    if value.len() > max {
        return Err(ValidationError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if let Some((at, character)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(ValidationError::ControlCharacter {
            field,
            character,
            at,
        });
    }
    Ok(())
}
