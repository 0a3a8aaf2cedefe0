//! The registry of event types: the factory that creates events from a type name and JSON, the
//! upcasters that lift old payloads to the current schema, and JSON conversion both ways.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::codec;
use crate::error::RegistryError;
use crate::event::{DomainEvent, EventContext, EventMetadata, NewEvent, RecordedEvent};
use crate::omni;

type ToJsonFn = fn(&str, &[u8]) -> Result<Value, RegistryError>;
type FromJsonFn = fn(&str, Value) -> Result<Vec<u8>, RegistryError>;
type UpcastFn = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, RegistryError> + Send + Sync>;

#[derive(Clone)]
struct Registration {
    rust_type: &'static str,
    aggregate_type: &'static str,
    schema_version: u16,
    to_json: ToJsonFn,
    from_json: FromJsonFn,
    /// Upcaster from schema version `k` to `k + 1`, keyed by `k`.
    upcasters: BTreeMap<u16, UpcastFn>,
}

/// What the registry knows of one event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventTypeInfo {
    /// The event type's name.
    pub event_type: String,
    /// The aggregate type it belongs to.
    pub aggregate_type: &'static str,
    /// Its current schema version.
    pub schema_version: u16,
    /// The Rust type that carries its payload.
    pub rust_type: &'static str,
    /// The schema versions it can upcast from.
    pub upcasts_from: Vec<u16>,
}

/// The registered event types: create events from JSON, decode and upcast payloads, convert
/// events to and from JSON.
///
/// Cloning is cheap enough to share; wrap it in an `Arc` to share it widely.
///
/// # Example
///
/// ```
/// use events_core::{EventContext, EventRegistry};
/// use serde_json::json;
///
/// let registry = EventRegistry::omni_writer();
/// let event = registry.create(
///     "cache_hit",
///     "cache-1",
///     json!({"cache_key": "prompt:1", "cache_type": "memory", "response_time": 0.001}),
///     EventContext::new("omni-writer").with_trace_id("trace-456"),
/// )?;
/// assert_eq!(event.aggregate_type, "cache");
/// let payload = registry.payload_to_json(&event.event_type, event.schema_version, &event.payload)?;
/// assert_eq!(payload["cache_key"], "prompt:1");
///
/// let unknown = registry.create("no_such_event", "x", json!({}), EventContext::default());
/// assert!(unknown.is_err());
/// # Ok::<(), events_core::RegistryError>(())
/// ```
#[derive(Clone, Default)]
pub struct EventRegistry {
    types: BTreeMap<String, Registration>,
}

impl fmt::Debug for EventRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRegistry")
            .field("types", &self.types.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn payload_to_json<E: DomainEvent>(event_type: &str, bytes: &[u8]) -> Result<Value, RegistryError> {
    let event: E = codec::decode_payload(bytes)?;
    serde_json::to_value(&event).map_err(|e| RegistryError::InvalidPayload {
        event_type: event_type.to_string(),
        reason: e.to_string(),
    })
}

fn payload_from_json<E: DomainEvent>(
    event_type: &str,
    json: Value,
) -> Result<Vec<u8>, RegistryError> {
    let event: E = serde_json::from_value(json).map_err(|e| RegistryError::InvalidPayload {
        event_type: event_type.to_string(),
        reason: e.to_string(),
    })?;
    Ok(codec::encode_payload(&event)?)
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

impl EventRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the sixteen Omni Writer event types and their upcasters.
    pub fn omni_writer() -> Self {
        let mut registry = Self::new();
        registry.register_omni_writer();
        registry
    }

    fn register_omni_writer(&mut self) {
        fn add<E: DomainEvent>(registry: &mut EventRegistry) {
            registry.insert::<E>();
        }
        add::<omni::ArticleGenerationStarted>(self);
        add::<omni::ArticleGenerationCompleted>(self);
        add::<omni::ArticleGenerationFailed>(self);
        add::<omni::PromptValidationStarted>(self);
        add::<omni::PromptValidationCompleted>(self);
        add::<omni::PromptValidationFailed>(self);
        add::<omni::CacheHit>(self);
        add::<omni::CacheMiss>(self);
        add::<omni::CacheSet>(self);
        add::<omni::CacheInvalidated>(self);
        add::<omni::RetryAttempted>(self);
        add::<omni::RetrySucceeded>(self);
        add::<omni::RetryFailed>(self);
        add::<omni::PipelineStarted>(self);
        add::<omni::PipelineCompleted>(self);
        add::<omni::PipelineFailed>(self);
        self.insert_upcaster(
            omni::ArticleGenerationCompleted::EVENT_TYPE,
            1,
            |v1: omni::ArticleGenerationCompletedV1| omni::ArticleGenerationCompleted::from(v1),
        );
    }

    fn insert<E: DomainEvent>(&mut self) {
        self.types.insert(
            E::EVENT_TYPE.to_string(),
            Registration {
                rust_type: short_type_name::<E>(),
                aggregate_type: E::AGGREGATE_TYPE,
                schema_version: E::SCHEMA_VERSION,
                to_json: payload_to_json::<E>,
                from_json: payload_from_json::<E>,
                upcasters: BTreeMap::new(),
            },
        );
    }

    /// Registers the event type `E`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::DuplicateEventType`] when a type of that name is already registered.
    pub fn register<E: DomainEvent>(&mut self) -> Result<(), RegistryError> {
        if self.types.contains_key(E::EVENT_TYPE) {
            return Err(RegistryError::DuplicateEventType {
                event_type: E::EVENT_TYPE.to_string(),
            });
        }
        self.insert::<E>();
        Ok(())
    }

    /// Registers an upcaster that lifts `event_type` payloads from schema `from_version` (decoded
    /// as `Old`) to `from_version + 1` (encoded from `New`). Chains of upcasters are applied in
    /// order up to the current schema version.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownEventType`] if the type is not registered;
    /// [`RegistryError::InvalidUpcaster`] if `from_version` is 0 or not below the current version.
    pub fn register_upcaster<Old, New, F>(
        &mut self,
        event_type: &str,
        from_version: u16,
        upcast: F,
    ) -> Result<(), RegistryError>
    where
        Old: DeserializeOwned + 'static,
        New: Serialize + 'static,
        F: Fn(Old) -> New + Send + Sync + 'static,
    {
        let registration =
            self.types
                .get(event_type)
                .ok_or_else(|| RegistryError::UnknownEventType {
                    event_type: event_type.to_string(),
                })?;
        if from_version == 0 || from_version >= registration.schema_version {
            return Err(RegistryError::InvalidUpcaster {
                event_type: event_type.to_string(),
                from_version,
                current: registration.schema_version,
            });
        }
        self.insert_upcaster(event_type, from_version, upcast);
        Ok(())
    }

    fn insert_upcaster<Old, New, F>(&mut self, event_type: &str, from_version: u16, upcast: F)
    where
        Old: DeserializeOwned + 'static,
        New: Serialize + 'static,
        F: Fn(Old) -> New + Send + Sync + 'static,
    {
        if let Some(registration) = self.types.get_mut(event_type) {
            let step: UpcastFn = Arc::new(move |bytes: &[u8]| {
                let old: Old = codec::decode_payload(bytes)?;
                Ok(codec::encode_payload(&upcast(old))?)
            });
            registration.upcasters.insert(from_version, step);
        }
    }

    fn registration(&self, event_type: &str) -> Result<&Registration, RegistryError> {
        self.types
            .get(event_type)
            .ok_or_else(|| RegistryError::UnknownEventType {
                event_type: event_type.to_string(),
            })
    }

    /// Whether `event_type` is registered.
    pub fn contains(&self, event_type: &str) -> bool {
        self.types.contains_key(event_type)
    }

    /// The registered type names, sorted.
    pub fn event_types(&self) -> impl Iterator<Item = &str> + '_ {
        self.types.keys().map(String::as_str)
    }

    /// What the registry knows of `event_type`, if it is registered.
    pub fn info(&self, event_type: &str) -> Option<EventTypeInfo> {
        self.types.get(event_type).map(|r| EventTypeInfo {
            event_type: event_type.to_string(),
            aggregate_type: r.aggregate_type,
            schema_version: r.schema_version,
            rust_type: r.rust_type,
            upcasts_from: r.upcasters.keys().copied().collect(),
        })
    }

    /// The seed's "registered events": each type name with the Rust type carrying it.
    pub fn registered_events(&self) -> BTreeMap<String, String> {
        self.types
            .iter()
            .map(|(name, r)| (name.clone(), r.rust_type.to_string()))
            .collect()
    }

    /// The factory: creates a new event of a registered type from a JSON payload, with a fresh id
    /// and the current time. Emits `event_sourcing_event_created`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownEventType`] naming the type when it is not registered;
    /// [`RegistryError::InvalidPayload`] when the JSON does not fit the type.
    pub fn create(
        &self,
        event_type: &str,
        aggregate_id: impl Into<String>,
        payload: Value,
        context: EventContext,
    ) -> Result<NewEvent, RegistryError> {
        let registration = self.registration(event_type)?;
        let bytes = (registration.from_json)(event_type, payload)?;
        Ok(NewEvent::from_parts(
            event_type,
            registration.aggregate_type,
            aggregate_id,
            registration.schema_version,
            bytes,
            context,
        ))
    }

    /// Lifts a payload stored at `schema_version` to the type's current schema version through
    /// the registered upcasters. A payload already current is borrowed, not copied.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownEventType`], [`RegistryError::SchemaTooNew`],
    /// [`RegistryError::MissingUpcaster`], or a decode error from an upcaster.
    pub fn upcast<'a>(
        &self,
        event_type: &str,
        schema_version: u16,
        payload: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, RegistryError> {
        let registration = self.registration(event_type)?;
        if schema_version > registration.schema_version {
            return Err(RegistryError::SchemaTooNew {
                event_type: event_type.to_string(),
                found: schema_version,
                current: registration.schema_version,
            });
        }
        let mut bytes = Cow::Borrowed(payload);
        for version in schema_version..registration.schema_version {
            let step = registration.upcasters.get(&version).ok_or_else(|| {
                RegistryError::MissingUpcaster {
                    event_type: event_type.to_string(),
                    from_version: version,
                }
            })?;
            bytes = Cow::Owned(step(&bytes)?);
        }
        Ok(bytes)
    }

    /// Decodes a recorded event's payload as `E`, upcasting it first if it is older.
    ///
    /// # Errors
    ///
    /// [`RegistryError::TypeMismatch`] when the event is not an `E`; otherwise as
    /// [`EventRegistry::upcast`] and [`codec::decode_payload`].
    pub fn decode<E: DomainEvent>(&self, event: &RecordedEvent) -> Result<E, RegistryError> {
        if event.metadata.event_type != E::EVENT_TYPE {
            return Err(RegistryError::TypeMismatch {
                expected: E::EVENT_TYPE,
                found: event.metadata.event_type.clone(),
            });
        }
        let bytes = self.upcast(
            &event.metadata.event_type,
            event.metadata.schema_version,
            &event.payload,
        )?;
        Ok(codec::decode_payload(&bytes)?)
    }

    /// A stored payload as JSON, upcast to the current schema version.
    ///
    /// # Errors
    ///
    /// As [`EventRegistry::upcast`], or a decode error when the bytes do not fit the type.
    pub fn payload_to_json(
        &self,
        event_type: &str,
        schema_version: u16,
        payload: &[u8],
    ) -> Result<Value, RegistryError> {
        let registration = self.registration(event_type)?;
        let bytes = self.upcast(event_type, schema_version, payload)?;
        (registration.to_json)(event_type, &bytes)
    }

    /// A recorded event as one flat JSON object: `position`, `event_id`, `event_type`,
    /// `aggregate_type`, `aggregate_id`, `version`, `timestamp`, `trace_id`, `user_id`,
    /// `session_id`, `source`, `correlation_id`, `causation_id`, `schema_version` (that of the
    /// payload shown: the current one) and the decoded `payload`, in that order.
    ///
    /// # Errors
    ///
    /// As [`EventRegistry::payload_to_json`].
    pub fn event_to_json(&self, event: &RecordedEvent) -> Result<Value, RegistryError> {
        let payload = self.payload_to_json(
            &event.metadata.event_type,
            event.metadata.schema_version,
            &event.payload,
        )?;
        let schema_version = self
            .registration(&event.metadata.event_type)?
            .schema_version;
        to_json_value(&RecordedJson::new(event, schema_version, payload))
    }

    /// As [`EventRegistry::event_to_json`], but an event whose payload cannot be decoded (an
    /// unregistered type, a damaged payload, a schema this build does not know) keeps its stored
    /// `schema_version`, shows its payload as `{"hex": "...", "len": N}` and says why in
    /// `payload_error`. For inspection tools: it never fails.
    pub fn event_to_json_lossy(&self, event: &RecordedEvent) -> Value {
        match self.event_to_json(event) {
            Ok(json) => json,
            Err(error) => {
                let mut payload = serde_json::Map::new();
                payload.insert("hex".into(), hex(&event.payload).into());
                payload.insert("len".into(), event.payload.len().into());
                let mut json =
                    RecordedJson::new(event, event.metadata.schema_version, Value::Object(payload));
                json.payload_error = Some(error.to_string());
                to_json_value(&json).unwrap_or(Value::Null)
            }
        }
    }

    /// Reads back an event written by [`EventRegistry::event_to_json`].
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidEnvelope`] when a field is missing or malformed or the schema
    /// version is not the current one; [`RegistryError::UnknownEventType`];
    /// [`RegistryError::InvalidPayload`].
    pub fn event_from_json(&self, json: Value) -> Result<RecordedEvent, RegistryError> {
        let parsed: RecordedJson = from_json_value(json)?;
        if let Some(error) = &parsed.payload_error {
            return Err(RegistryError::InvalidEnvelope {
                reason: format!("the payload was not decoded when exported: {error}"),
            });
        }
        let metadata = parsed.metadata();
        let payload = self.current_payload_from_json(
            &metadata.event_type,
            metadata.schema_version,
            parsed.payload,
        )?;
        Ok(RecordedEvent {
            position: parsed.position,
            metadata,
            payload,
        })
    }

    /// A new event as one flat JSON object (no version, no position).
    ///
    /// # Errors
    ///
    /// As [`EventRegistry::payload_to_json`].
    pub fn new_event_to_json(&self, event: &NewEvent) -> Result<Value, RegistryError> {
        let payload =
            self.payload_to_json(&event.event_type, event.schema_version, &event.payload)?;
        let schema_version = self.registration(&event.event_type)?.schema_version;
        to_json_value(&NewEventJson {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            timestamp: event.timestamp,
            schema_version,
            context: event.context.clone(),
            payload,
        })
    }

    /// Reads back a new event written by [`EventRegistry::new_event_to_json`].
    ///
    /// # Errors
    ///
    /// As [`EventRegistry::event_from_json`].
    pub fn new_event_from_json(&self, json: Value) -> Result<NewEvent, RegistryError> {
        let parsed: NewEventJson = from_json_value(json)?;
        let payload = self.current_payload_from_json(
            &parsed.event_type,
            parsed.schema_version,
            parsed.payload,
        )?;
        Ok(NewEvent {
            event_id: parsed.event_id,
            event_type: parsed.event_type,
            aggregate_type: parsed.aggregate_type,
            aggregate_id: parsed.aggregate_id,
            timestamp: parsed.timestamp,
            schema_version: parsed.schema_version,
            context: parsed.context,
            payload,
        })
    }

    fn current_payload_from_json(
        &self,
        event_type: &str,
        schema_version: u16,
        payload: Value,
    ) -> Result<Vec<u8>, RegistryError> {
        let registration = self.registration(event_type)?;
        if schema_version != registration.schema_version {
            return Err(RegistryError::InvalidEnvelope {
                reason: format!(
                    "`{event_type}` JSON has schema version {schema_version}; JSON payloads are read \
                     at the current version {}",
                    registration.schema_version
                ),
            });
        }
        (registration.from_json)(event_type, payload)
    }
}

/// The JSON shape of a recorded event: fields in the order the dump tool prints them.
#[derive(Serialize, Deserialize)]
struct RecordedJson {
    position: u64,
    event_id: uuid::Uuid,
    event_type: String,
    aggregate_type: String,
    aggregate_id: String,
    version: u64,
    timestamp: chrono::DateTime<chrono::Utc>,
    trace_id: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    source: String,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    schema_version: u16,
    payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_error: Option<String>,
}

impl RecordedJson {
    fn new(event: &RecordedEvent, schema_version: u16, payload: Value) -> Self {
        let m = &event.metadata;
        Self {
            position: event.position,
            event_id: m.event_id,
            event_type: m.event_type.clone(),
            aggregate_type: m.aggregate_type.clone(),
            aggregate_id: m.aggregate_id.clone(),
            version: m.version,
            timestamp: m.timestamp,
            trace_id: m.trace_id.clone(),
            user_id: m.user_id.clone(),
            session_id: m.session_id.clone(),
            source: m.source.clone(),
            correlation_id: m.correlation_id.clone(),
            causation_id: m.causation_id.clone(),
            schema_version,
            payload,
            payload_error: None,
        }
    }

    fn metadata(&self) -> EventMetadata {
        EventMetadata {
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            aggregate_type: self.aggregate_type.clone(),
            version: self.version,
            timestamp: self.timestamp,
            trace_id: self.trace_id.clone(),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            source: self.source.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            schema_version: self.schema_version,
        }
    }
}

/// Lower-case hex digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

#[derive(Serialize, Deserialize)]
struct NewEventJson {
    event_id: uuid::Uuid,
    event_type: String,
    aggregate_type: String,
    aggregate_id: String,
    timestamp: chrono::DateTime<chrono::Utc>,
    schema_version: u16,
    #[serde(flatten)]
    context: EventContext,
    payload: Value,
}

fn to_json_value<T: Serialize>(value: &T) -> Result<Value, RegistryError> {
    serde_json::to_value(value).map_err(|e| RegistryError::InvalidEnvelope {
        reason: e.to_string(),
    })
}

fn from_json_value<T: DeserializeOwned>(json: Value) -> Result<T, RegistryError> {
    serde_json::from_value(json).map_err(|e| RegistryError::InvalidEnvelope {
        reason: e.to_string(),
    })
}

/// Creates events from a type name and JSON, with a default context: the seed's `EventFactory`.
///
/// # Example
///
/// ```
/// use events_core::{EventContext, EventFactory, EventRegistry};
/// use serde_json::json;
///
/// let factory = EventFactory::new(EventRegistry::omni_writer())
///     .with_context(EventContext::new("omni-writer").with_user_id("user-1"));
/// let event = factory.create(
///     "retry_attempted",
///     "retry-9",
///     json!({"operation": "api_call", "attempt_number": 2, "max_attempts": 3,
///            "delay_seconds": 1.0, "error_message": "Connection timeout"}),
/// )?;
/// assert_eq!(event.context.user_id.as_deref(), Some("user-1"));
/// # Ok::<(), events_core::RegistryError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventFactory {
    registry: Arc<EventRegistry>,
    context: EventContext,
}

impl EventFactory {
    /// A factory over `registry` with [`EventContext::default`].
    pub fn new(registry: impl Into<Arc<EventRegistry>>) -> Self {
        Self {
            registry: registry.into(),
            context: EventContext::default(),
        }
    }

    /// Sets the context every created event gets. Default = [`EventContext::default`].
    #[must_use]
    pub fn with_context(mut self, context: EventContext) -> Self {
        self.context = context;
        self
    }

    /// The registry behind the factory.
    pub fn registry(&self) -> &EventRegistry {
        &self.registry
    }

    /// Creates an event of a registered type from its JSON payload, with the factory's context.
    ///
    /// # Errors
    ///
    /// As [`EventRegistry::create`].
    pub fn create(
        &self,
        event_type: &str,
        aggregate_id: impl Into<String>,
        payload: Value,
    ) -> Result<NewEvent, RegistryError> {
        self.registry
            .create(event_type, aggregate_id, payload, self.context.clone())
    }

    /// Creates an event of a registered type with its own context.
    ///
    /// # Errors
    ///
    /// As [`EventRegistry::create`].
    pub fn create_with(
        &self,
        event_type: &str,
        aggregate_id: impl Into<String>,
        payload: Value,
        context: EventContext,
    ) -> Result<NewEvent, RegistryError> {
        self.registry
            .create(event_type, aggregate_id, payload, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omni::*;
    use serde_json::json;

    #[test]
    fn sixteen_omni_writer_types_are_registered() {
        let registry = EventRegistry::omni_writer();
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
        let registry = EventRegistry::omni_writer();
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
        let registry = EventRegistry::omni_writer();
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
        let mut registry = EventRegistry::omni_writer();
        assert_eq!(
            registry.register::<CacheHit>(),
            Err(RegistryError::DuplicateEventType {
                event_type: "cache_hit".into()
            })
        );
    }

    #[test]
    fn upcaster_versions_are_checked() {
        let mut registry = EventRegistry::omni_writer();
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
        let registry = EventRegistry::omni_writer();
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
        let registry = EventRegistry::omni_writer();
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
        let registry = EventRegistry::omni_writer();
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
        let registry = EventRegistry::omni_writer();
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
}
