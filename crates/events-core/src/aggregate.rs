//! Aggregates: state folded from the typed events of one aggregate type ([`Aggregate`]), whose
//! events are one enum ([`EventSet`], written with [`event_set!`](crate::event_set)) that the
//! library decodes, upcasting included, before the aggregate sees them.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{CodecError, RegistryError};
use crate::event::{EventContext, EventMetadata, NewEvent, RecordedEvent};
use crate::registry::EventRegistry;

/// The events one aggregate folds, as one enum: each variant one [`DomainEvent`] type.
///
/// Write it with [`event_set!`](crate::event_set), which derives the decoding (by event type,
/// through the registry, so old schemas are upcast) and the encoding; no event type name appears
/// in user code.
///
/// [`DomainEvent`]: crate::DomainEvent
pub trait EventSet: Sized + Send + 'static {
    /// The event types the set holds, in declaration order.
    const EVENT_TYPES: &'static [&'static str];

    /// Decodes a recorded event as the variant of its type.
    ///
    /// # Errors
    ///
    /// [`ApplyError::UnexpectedEvent`] when the type is not in the set;
    /// [`ApplyError::Decode`] when the payload does not decode or upcast.
    fn decode(event: &RecordedEvent, registry: &EventRegistry) -> Result<Self, ApplyError>;

    /// The event as a [`NewEvent`] of aggregate `aggregate_id`, ready to append.
    ///
    /// # Errors
    ///
    /// A [`CodecError`] when the payload cannot be encoded.
    fn to_new_event(
        &self,
        aggregate_id: &str,
        context: EventContext,
    ) -> Result<NewEvent, CodecError>;

    /// The aggregate type of this event (its [`DomainEvent::AGGREGATE_TYPE`]).
    ///
    /// [`DomainEvent::AGGREGATE_TYPE`]: crate::DomainEvent::AGGREGATE_TYPE
    fn aggregate_type(&self) -> &'static str;
}

/// Declares an enum of [`DomainEvent`](crate::DomainEvent) types and implements [`EventSet`]
/// and `From<Event>` for it.
///
/// # Example
///
/// ```
/// use events_core::{DomainEvent, EventRegistry, EventSet, EventContext, event_set};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Deposited { cents: u64 }
/// impl DomainEvent for Deposited {
///     const EVENT_TYPE: &'static str = "deposited";
///     const AGGREGATE_TYPE: &'static str = "account";
/// }
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Withdrawn { cents: u64 }
/// impl DomainEvent for Withdrawn {
///     const EVENT_TYPE: &'static str = "withdrawn";
///     const AGGREGATE_TYPE: &'static str = "account";
/// }
///
/// event_set! {
///     /// What happens to an account.
///     #[derive(Debug, Clone, PartialEq)]
///     pub enum AccountEvent {
///         /// Money came in.
///         Deposited(Deposited),
///         /// Money went out.
///         Withdrawn(Withdrawn),
///     }
/// }
///
/// assert_eq!(AccountEvent::EVENT_TYPES, ["deposited", "withdrawn"]);
/// let event = AccountEvent::from(Withdrawn { cents: 250 });
/// let recorded = event.to_new_event("acc-1", EventContext::default())?.into_recorded(1, 1);
/// let mut registry = EventRegistry::new();
/// registry.register::<Deposited>()?;
/// registry.register::<Withdrawn>()?;
/// let decoded = AccountEvent::decode(&recorded, &registry)?;
/// assert_eq!(decoded, event);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! event_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident($event:ty) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$variant_meta])* $variant($event), )+
        }

        impl $crate::EventSet for $name {
            const EVENT_TYPES: &'static [&'static str] =
                &[$( <$event as $crate::DomainEvent>::EVENT_TYPE ),+];

            fn decode(
                event: &$crate::RecordedEvent,
                registry: &$crate::EventRegistry,
            ) -> ::std::result::Result<Self, $crate::ApplyError> {
                let event_type = event.event_type();
                $(
                    if event_type == <$event as $crate::DomainEvent>::EVENT_TYPE {
                        return Ok(Self::$variant(registry.decode::<$event>(event)?));
                    }
                )+
                Err($crate::ApplyError::UnexpectedEvent {
                    event_type: event_type.to_owned(),
                    applies_to: stringify!($name).to_owned(),
                })
            }

            fn to_new_event(
                &self,
                aggregate_id: &str,
                context: $crate::EventContext,
            ) -> ::std::result::Result<$crate::NewEvent, $crate::CodecError> {
                match self {
                    $( Self::$variant(event) => {
                        $crate::NewEvent::from_event(aggregate_id, event, context)
                    } )+
                }
            }

            fn aggregate_type(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => <$event as $crate::DomainEvent>::AGGREGATE_TYPE, )+
                }
            }
        }

        $(
            impl ::std::convert::From<$event> for $name {
                fn from(event: $event) -> Self {
                    Self::$variant(event)
                }
            }
        )+
    };
}

/// State rebuilt by applying an aggregate's typed events in version order.
///
/// The state is also what snapshots hold: it is encoded with the event codec (bincode behind a
/// format byte), so it must be plain serde data (no `serde_json::Value`, no
/// `skip_serializing_if`, no `flatten`). Raise [`Aggregate::STATE_VERSION`] whenever the state's
/// shape changes: snapshots of another version are ignored, and rebuilt from the events.
///
/// # Example
///
/// ```
/// use events_core::{Aggregate, ApplyError, DomainEvent, EventMetadata, event_set};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// struct Deposited { cents: u64 }
/// impl DomainEvent for Deposited {
///     const EVENT_TYPE: &'static str = "deposited";
///     const AGGREGATE_TYPE: &'static str = "account";
/// }
/// event_set! {
///     /// What happens to an account.
///     pub enum AccountEvent { /// Money came in.
///         Deposited(Deposited) }
/// }
///
/// #[derive(Debug, Default, Serialize, Deserialize)]
/// struct Account { balance: u64 }
///
/// impl Aggregate for Account {
///     const AGGREGATE_TYPE: &'static str = "account";
///     type Event = AccountEvent;
///     fn apply(&mut self, event: AccountEvent, _: &EventMetadata) -> Result<(), ApplyError> {
///         match event {
///             AccountEvent::Deposited(d) => self.balance += d.cents,
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + 'static {
    /// The aggregate type whose events this folds (`"article_generation"`).
    const AGGREGATE_TYPE: &'static str;
    /// The version of the state's shape, stored with each snapshot. Default = 1.
    const STATE_VERSION: u16 = 1;
    /// The aggregate's events: an enum written with [`event_set!`](crate::event_set).
    type Event: EventSet;

    /// Applies one event (the next version), decoded and upcast, with its metadata.
    ///
    /// # Errors
    ///
    /// An [`ApplyError`] when the state refuses the event; the load fails.
    fn apply(&mut self, event: Self::Event, metadata: &EventMetadata) -> Result<(), ApplyError>;

    /// Decodes a recorded event as [`Aggregate::Event`] (upcasting it) and applies it: what a
    /// load does for each event.
    ///
    /// # Errors
    ///
    /// As [`EventSet::decode`] and [`Aggregate::apply`].
    fn apply_recorded(
        &mut self,
        event: &RecordedEvent,
        registry: &EventRegistry,
    ) -> Result<(), ApplyError> {
        let typed = Self::Event::decode(event, registry)?;
        self.apply(typed, &event.metadata)
    }
}

/// Why an aggregate or a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The event's payload does not decode (or upcast) as its registered type.
    #[error("the payload does not decode")]
    Decode(#[from] RegistryError),
    /// The event type does not belong to this aggregate or projection.
    #[error("event type `{event_type}` does not apply to `{applies_to}`")]
    UnexpectedEvent {
        /// The event's type.
        event_type: String,
        /// The aggregate type, event set or projection that refused it.
        applies_to: String,
    },
    /// The event is well-formed but the state refuses it.
    #[error("{reason}")]
    Rejected {
        /// Why.
        reason: String,
    },
}

impl ApplyError {
    /// A [`ApplyError::Rejected`] with this reason.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
        }
    }
}
