//! The event abstraction: the trait domain events implement, the metadata every event carries,
//! and the envelopes for an event about to be appended and for one already recorded.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::codec;
use crate::error::CodecError;

/// A domain event: a payload type with a stable name, the aggregate type it belongs to, and the
/// version of its schema.
///
/// # Example
///
/// ```
/// use events_core::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct AccountOpened {
///     owner: String,
/// }
///
/// impl DomainEvent for AccountOpened {
///     const EVENT_TYPE: &'static str = "account_opened";
///     const AGGREGATE_TYPE: &'static str = "account";
/// }
///
/// assert_eq!(AccountOpened::SCHEMA_VERSION, 1);
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The event type's name, snake_case (`"article_generation_started"`).
    const EVENT_TYPE: &'static str;
    /// The aggregate type the event belongs to (`"article_generation"`).
    const AGGREGATE_TYPE: &'static str;
    /// The schema version of the payload. Default = 1; raise it when the payload's shape changes
    /// and register an upcaster from the previous version.
    const SCHEMA_VERSION: u16 = 1;
}

/// Who and what caused an event: the tracing and audit fields of [`EventMetadata`] that are not
/// assigned by the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventContext {
    /// Distributed trace id. Default = none.
    pub trace_id: Option<String>,
    /// The user on whose behalf the event happened. Default = none.
    pub user_id: Option<String>,
    /// The session it happened in. Default = none.
    pub session_id: Option<String>,
    /// The component that produced the event. Default = `"eventlog"`.
    pub source: String,
    /// Groups every event of one business operation. Default = none.
    pub correlation_id: Option<String>,
    /// The id of the event or command that caused this one. Default = none.
    pub causation_id: Option<String>,
}

impl Default for EventContext {
    fn default() -> Self {
        Self::new("eventlog")
    }
}

impl EventContext {
    /// A context with the given source and no ids.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            trace_id: None,
            user_id: None,
            session_id: None,
            source: source.into(),
            correlation_id: None,
            causation_id: None,
        }
    }

    /// Sets the trace id.
    #[must_use]
    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// Sets the user id.
    #[must_use]
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the session id.
    #[must_use]
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// Sets the causation id.
    #[must_use]
    pub fn with_causation_id(mut self, causation_id: impl Into<String>) -> Self {
        self.causation_id = Some(causation_id.into());
        self
    }
}

/// Every field the seed names for an event, plus the payload's schema version.
///
/// Versions start at 1 and are assigned by the store, consecutively per aggregate. Timestamps are
/// UTC with microsecond precision (finer digits are dropped when an event is created).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventMetadata {
    /// Unique id of the event.
    pub event_id: Uuid,
    /// The event type's name.
    pub event_type: String,
    /// The aggregate the event belongs to.
    pub aggregate_id: String,
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The event's version within its aggregate, from 1.
    pub version: u64,
    /// When the event was created.
    pub timestamp: DateTime<Utc>,
    /// Distributed trace id.
    pub trace_id: Option<String>,
    /// The user on whose behalf the event happened.
    pub user_id: Option<String>,
    /// The session it happened in.
    pub session_id: Option<String>,
    /// The component that produced the event.
    pub source: String,
    /// Groups every event of one business operation.
    pub correlation_id: Option<String>,
    /// The id of the event or command that caused this one.
    pub causation_id: Option<String>,
    /// The schema version of the payload.
    pub schema_version: u16,
}

impl EventMetadata {
    /// The context fields of this metadata.
    pub fn context(&self) -> EventContext {
        EventContext {
            trace_id: self.trace_id.clone(),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            source: self.source.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
        }
    }
}

/// An event about to be appended: everything but the version and the global position, which the
/// store assigns. The payload is already encoded by [`crate::codec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id of the event; appending the same ids again is recognised as a retry.
    pub event_id: Uuid,
    /// The event type's name.
    pub event_type: String,
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// When the event was created (UTC, microsecond precision).
    pub timestamp: DateTime<Utc>,
    /// The schema version of the payload.
    pub schema_version: u16,
    /// Trace, user, session, source, correlation and causation.
    pub context: EventContext,
    /// The encoded payload.
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// Wraps a typed domain event for the aggregate `aggregate_id`, with a fresh id and the current
    /// time, and emits the `event_sourcing_event_created` tracing event.
    ///
    /// # Errors
    ///
    /// [`CodecError::Encode`] when the payload cannot be encoded.
    ///
    /// # Example
    ///
    /// ```
    /// use events_core::{DomainEvent, EventContext, NewEvent};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct CacheMiss { cache_key: String, cache_type: String, reason: String }
    /// # impl DomainEvent for CacheMiss {
    /// #     const EVENT_TYPE: &'static str = "cache_miss";
    /// #     const AGGREGATE_TYPE: &'static str = "cache";
    /// # }
    ///
    /// let miss = CacheMiss {
    ///     cache_key: "prompt:42".into(),
    ///     cache_type: "memory".into(),
    ///     reason: "not_found".into(),
    /// };
    /// let event = NewEvent::from_event("cache-1", &miss, EventContext::new("omni-writer"))?;
    /// assert_eq!(event.event_type, "cache_miss");
    /// assert_eq!(event.aggregate_type, CacheMiss::AGGREGATE_TYPE);
    /// # Ok::<(), events_core::CodecError>(())
    /// ```
    pub fn from_event<E: DomainEvent>(
        aggregate_id: impl Into<String>,
        event: &E,
        context: EventContext,
    ) -> Result<Self, CodecError> {
        let payload = codec::encode_payload(event)?;
        Ok(Self::from_parts(
            E::EVENT_TYPE,
            E::AGGREGATE_TYPE,
            aggregate_id.into(),
            E::SCHEMA_VERSION,
            payload,
            context,
        ))
    }

    /// Assembles an event from already-encoded parts, with a fresh id and the current time, and
    /// emits the `event_sourcing_event_created` tracing event.
    pub fn from_parts(
        event_type: impl Into<String>,
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        schema_version: u16,
        payload: Vec<u8>,
        context: EventContext,
    ) -> Self {
        let event = Self {
            event_id: Uuid::new_v4(),
            event_type: event_type.into(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            timestamp: now_micros(),
            schema_version,
            context,
            payload,
        };
        tracing::debug!(
            name: "event_sourcing_event_created",
            event_id = %event.event_id,
            event_type = %event.event_type,
            aggregate_id = %event.aggregate_id,
            aggregate_type = %event.aggregate_type,
            // Not yet assigned: the store gives the version on append.
            version = 0_u64,
            trace_id = event.context.trace_id.as_deref().unwrap_or(""),
            "event_sourcing_event_created"
        );
        event
    }

    /// Replaces the event id, so a retry after an unknown outcome can resend the same ids.
    #[must_use]
    pub fn with_event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    /// Replaces the timestamp (truncated to microseconds).
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = timestamp.trunc_subsecs(6);
        self
    }

    /// The metadata this event gets once the store gives it `version`.
    pub fn metadata(&self, version: u64) -> EventMetadata {
        EventMetadata {
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            aggregate_type: self.aggregate_type.clone(),
            version,
            timestamp: self.timestamp,
            trace_id: self.context.trace_id.clone(),
            user_id: self.context.user_id.clone(),
            session_id: self.context.session_id.clone(),
            source: self.context.source.clone(),
            correlation_id: self.context.correlation_id.clone(),
            causation_id: self.context.causation_id.clone(),
            schema_version: self.schema_version,
        }
    }

    /// The recorded event this becomes at `version` and global `position` (moves every field).
    pub fn into_recorded(self, version: u64, position: u64) -> RecordedEvent {
        let EventContext {
            trace_id,
            user_id,
            session_id,
            source,
            correlation_id,
            causation_id,
        } = self.context;
        RecordedEvent {
            position,
            metadata: EventMetadata {
                event_id: self.event_id,
                event_type: self.event_type,
                aggregate_id: self.aggregate_id,
                aggregate_type: self.aggregate_type,
                version,
                timestamp: self.timestamp,
                trace_id,
                user_id,
                session_id,
                source,
                correlation_id,
                causation_id,
                schema_version: self.schema_version,
            },
            payload: self.payload,
        }
    }
}

/// An event as the store holds it: its metadata (with its version), its global position and its
/// encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Position in the global log, from 1, gap-free in commit order.
    pub position: u64,
    /// The event's metadata, version included.
    pub metadata: EventMetadata,
    /// The encoded payload, at `metadata.schema_version`.
    pub payload: Vec<u8>,
}

impl RecordedEvent {
    /// The event's version within its aggregate.
    pub fn version(&self) -> u64 {
        self.metadata.version
    }

    /// The event type's name.
    pub fn event_type(&self) -> &str {
        &self.metadata.event_type
    }

    /// The envelope this event was appended from (for re-appending it elsewhere, e.g. on import).
    pub fn to_new_event(&self) -> NewEvent {
        NewEvent {
            event_id: self.metadata.event_id,
            event_type: self.metadata.event_type.clone(),
            aggregate_type: self.metadata.aggregate_type.clone(),
            aggregate_id: self.metadata.aggregate_id.clone(),
            timestamp: self.metadata.timestamp,
            schema_version: self.metadata.schema_version,
            context: self.metadata.context(),
            payload: self.payload.clone(),
        }
    }
}

/// The current time, truncated to the microsecond precision events are stored with.
pub fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
