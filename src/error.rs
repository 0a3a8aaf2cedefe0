//! Typed errors of the facade: [`EventLogError`] for every call of [`crate::EventLog`], and
//! [`ApplyError`] for what an [`crate::Aggregate`] or a [`crate::Projection`] refuses.

use events_bus::BusError;
use events_core::{CodecError, RegistryError};
use events_sled::{
    AppendError, CheckpointError, ExpectedVersion, OpenError, ReadError, SnapshotError, StoreError,
};

/// Why a call of [`crate::EventLog`] failed.
///
/// A version conflict is its own variant, [`EventLogError::WrongExpectedVersion`], so it can be
/// matched without looking inside the store's error; [`EventLogError::Append`] carries every
/// other append failure.
///
/// # Example
///
/// ```
/// use eventlog::{CacheMiss, EventContext, EventLog, EventLogConfig, EventLogError, ExpectedVersion};
///
/// let dir = tempfile::tempdir()?;
/// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
/// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
/// log.append_event("cache-1", ExpectedVersion::NoStream, &miss, EventContext::default())?;
/// let again = log.append_event("cache-1", ExpectedVersion::NoStream, &miss, EventContext::default());
/// assert!(matches!(again, Err(EventLogError::WrongExpectedVersion { actual: 1, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventLogError {
    /// A setting of [`crate::EventLogConfig`] is out of range.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The event log was closed (by [`crate::EventLog::close`] on any handle).
    #[error("the event log is closed")]
    Closed,
    /// Optimistic concurrency: the aggregate is not at the version the append expected. Nothing
    /// was stored.
    #[error(
        "`{aggregate_type}/{aggregate_id}` is at version {actual}, the append expected {expected}"
    )]
    WrongExpectedVersion {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The aggregate's actual version (0: it does not exist).
        actual: u64,
    },
    /// Any other append failure (never [`AppendError::WrongExpectedVersion`], which becomes
    /// [`EventLogError::WrongExpectedVersion`]).
    #[error(transparent)]
    Append(AppendError),
    /// A read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Saving or loading a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A checkpoint operation failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A store-wide operation (flush, close, verify, consumers) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus refused a subscription (invalid options, thread spawn failure, ...).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A payload or a state could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The registry refused an event (unknown type, bad JSON, ...).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An aggregate could not apply one of its events.
    #[error("`{aggregate_type}/{aggregate_id}` could not apply version {version}: {source}")]
    Apply {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
        /// The version of the event that failed.
        version: u64,
        /// Why.
        #[source]
        source: ApplyError,
    },
    /// [`crate::EventLog::load_at`] asked for a version the aggregate has not reached.
    #[error("`{aggregate_type}/{aggregate_id}` is at version {current}, not {requested}")]
    VersionNotReached {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
        /// The version asked for.
        requested: u64,
        /// The aggregate's current version.
        current: u64,
    },
    /// [`crate::EventLog::load_omni_state`] was given an aggregate type that has no Omni Writer
    /// aggregate.
    #[error(
        "no Omni Writer aggregate for type `{aggregate_type}` (known: article_generation, \
         prompt_validation, cache, retry, pipeline)"
    )]
    NoOmniAggregate {
        /// The aggregate type asked for.
        aggregate_type: String,
    },
    /// A state could not be turned into JSON.
    #[error("JSON conversion failed: {0}")]
    Json(#[from] serde_json::Error),
    /// A durable subscription or projection of this name is already running in this process.
    #[error("a durable subscription or projection named `{name}` is already running")]
    DuplicateConsumer {
        /// The consumer's name.
        name: String,
    },
    /// A projection's stored state does not decode as its type.
    #[error("the stored state of projection `{name}` does not decode: {reason}")]
    ProjectionState {
        /// The projection's name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl From<AppendError> for EventLogError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::WrongExpectedVersion {
                aggregate_type,
                aggregate_id,
                expected,
                actual,
            } => Self::WrongExpectedVersion {
                aggregate_type,
                aggregate_id,
                expected,
                actual,
            },
            AppendError::Closed => Self::Closed,
            other => Self::Append(other),
        }
    }
}

impl EventLogError {
    /// Whether this is a version conflict ([`EventLogError::WrongExpectedVersion`]): reload the
    /// aggregate and decide again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }
}

/// Why an [`crate::Aggregate`] or a [`crate::Projection`] could not apply an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The event's payload does not decode (or upcast) as its registered type.
    #[error("the payload does not decode: {0}")]
    Decode(#[from] RegistryError),
    /// The event type does not belong to this aggregate or projection.
    #[error("event type `{event_type}` does not apply to `{applies_to}`")]
    UnexpectedEvent {
        /// The event's type.
        event_type: String,
        /// The aggregate type or projection that refused it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_lifted_out_of_append_errors() {
        let error = EventLogError::from(AppendError::WrongExpectedVersion {
            aggregate_type: "cache".into(),
            aggregate_id: "c".into(),
            expected: ExpectedVersion::NoStream,
            actual: 2,
        });
        assert!(error.is_conflict());
        assert!(error.to_string().contains("version 2"));
        assert!(matches!(
            EventLogError::from(AppendError::Empty),
            EventLogError::Append(AppendError::Empty)
        ));
        assert!(matches!(
            EventLogError::from(AppendError::Closed),
            EventLogError::Closed
        ));
    }
}
