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
/// # use events_core::DomainEvent;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct CacheHit { cache_key: String, cache_type: String, response_time: f64 }
/// # impl DomainEvent for CacheHit {
/// #     const EVENT_TYPE: &'static str = "cache_hit";
/// #     const AGGREGATE_TYPE: &'static str = "cache";
/// # }
///
/// let mut registry = EventRegistry::new();
/// registry.register::<CacheHit>()?;
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
/// # use events_core::DomainEvent;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct RetryAttempted { operation: String, attempt_number: u32 }
/// # impl DomainEvent for RetryAttempted {
/// #     const EVENT_TYPE: &'static str = "retry_attempted";
/// #     const AGGREGATE_TYPE: &'static str = "retry";
/// # }
///
/// let mut registry = EventRegistry::new();
/// registry.register::<RetryAttempted>()?;
/// let factory = EventFactory::new(registry)
///     .with_context(EventContext::new("omni-writer").with_user_id("user-1"));
/// let event = factory.create(
///     "retry_attempted",
///     "retry-9",
///     json!({"operation": "api_call", "attempt_number": 2}),
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
