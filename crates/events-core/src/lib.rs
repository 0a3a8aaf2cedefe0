//! Event types, metadata, registry, factory, codec, validation and the aggregate vocabulary for
//! the `eventlog` event store.
//!
//! This crate knows nothing of storage, threads or bytes on disk, and nothing of any one domain
//! (the Omni Writer's events live in `omni-domain`). It defines:
//!
//! - [`EventMetadata`], the fields every event carries (ids, version, time, tracing ids);
//! - [`DomainEvent`], the trait a payload type implements, and the envelopes [`NewEvent`] (about to
//!   be appended) and [`RecordedEvent`] (stored, with its version and global position);
//! - [`StreamId`], [`Version`], [`Position`] and [`ExpectedVersion`]: where events live;
//! - [`Aggregate`] and [`EventSet`] (declared with [`event_set!`]): state folded from typed events;
//! - [`EventRegistry`] and [`EventFactory`]: create events from a type name and JSON, upcast old
//!   payloads, convert events to and from JSON;
//! - [`codec`]: the one module that turns payloads and metadata into bytes;
//! - [`EventValidator`] and [`validate_sequence`].
//!
//! # Example
//!
//! ```
//! use events_core::{DomainEvent, EventContext, EventRegistry, EventValidator, NewEvent};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct OrderPlaced {
//!     sku: String,
//!     quantity: u32,
//! }
//!
//! impl DomainEvent for OrderPlaced {
//!     const EVENT_TYPE: &'static str = "order_placed";
//!     const AGGREGATE_TYPE: &'static str = "order";
//! }
//!
//! let mut registry = EventRegistry::new();
//! registry.register::<OrderPlaced>()?;
//! let placed = OrderPlaced { sku: "book-1".into(), quantity: 2 };
//! let event = NewEvent::from_event("order-7", &placed, EventContext::new("shop"))?;
//! EventValidator::new().with_registry(registry.clone()).validate_event(&event)?;
//!
//! let recorded = event.into_recorded(1, 1);
//! let json = registry.event_to_json(&recorded)?;
//! assert_eq!(json["payload"]["sku"], "book-1");
//! assert_eq!(registry.event_from_json(json)?, recorded);
//! assert_eq!(registry.decode::<OrderPlaced>(&recorded)?, placed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregate;
pub mod codec;
mod error;
mod event;
mod registry;
mod stream;
mod validation;

pub use aggregate::{Aggregate, ApplyError, EventSet};
pub use error::{CodecError, RegistryError, ValidationError};
pub use event::{DomainEvent, EventContext, EventMetadata, NewEvent, RecordedEvent, now_micros};
pub use registry::{EventFactory, EventRegistry, EventTypeInfo};
pub use stream::{ExpectedVersion, Position, StreamId, Version};
pub use validation::{EventValidator, ValidationLimits, validate_sequence};
