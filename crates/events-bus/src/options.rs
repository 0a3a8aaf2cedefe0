//! Per-subscriber settings: [`SubscriberOptions`], [`Backpressure`] and [`FailurePolicy`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::BusError;

/// The default channel capacity of a subscriber: 1024 messages.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The default number of messages a catching-up subscriber reads from the source at once: 256.
pub const DEFAULT_CATCH_UP_BATCH: usize = 256;

/// The default first pause after a failed catch-up read: 10 ms (it doubles up to
/// [`MAX_SOURCE_BACKOFF`]).
pub const DEFAULT_SOURCE_BACKOFF: Duration = Duration::from_millis(10);

/// The longest pause between two failed catch-up reads: 1 s.
pub const MAX_SOURCE_BACKOFF: Duration = Duration::from_secs(1);

/// The longest pause between two attempts of [`FailurePolicy::Retry`]: 60 s.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

/// What the publisher does when a subscriber's channel is full.
///
/// Default = [`Backpressure::CatchUp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backpressure {
    /// The publisher waits until the subscriber's channel has room: a slow subscriber slows
    /// every publish down, and so delivery to every other subscriber. Needs no catch-up source
    /// (except to start from a past sequence).
    ///
    /// Whatever thread calls [`Bus::publish`](crate::Bus::publish) is the one that waits, on the
    /// subscriber's handler: a publisher whose handlers may wait for it (an event store's writer
    /// thread, whose subscribers read or snapshot the store) must publish from a thread of its
    /// own. The `eventlog` facade does: there `Block` holds up its publisher thread, never the
    /// appends.
    Block,
    /// The publisher never waits and nothing is dropped. When the subscriber's channel is
    /// full, the publisher marks it *lagging* and stops sending it messages; the subscriber
    /// drains its channel, reads what it missed from the bus's [`CatchUpSource`](crate::CatchUpSource),
    /// and goes back to live delivery once it has reached the last published sequence.
    ///
    /// Needs a catch-up source: subscribing with `CatchUp` on a bus without one fails with
    /// [`BusError::NoCatchUpSource`] (there is no silent fallback to `Block`).
    #[default]
    CatchUp,
}

/// What a subscriber does when its handler returns an error or panics.
///
/// Every failure is counted, logged with `tracing` and kept in the subscriber's report.
/// Default = `Retry { max_attempts: 3, backoff: 10 ms }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Deliver the same message again after `backoff`, doubling the pause after each failed
    /// attempt (capped at [`MAX_RETRY_BACKOFF`]); once `max_attempts` attempts (the first one
    /// included) have failed, stop the subscriber. Its last sequence stays the one before the
    /// failing message.
    Retry {
        /// How many attempts in all, the first included (at least 1).
        max_attempts: u32,
        /// The pause before the second attempt.
        backoff: Duration,
    },
    /// Count the failure and move on to the next message: the failing message counts as
    /// handled (its sequence becomes the subscriber's last sequence) and is listed in the
    /// report's failures.
    Skip,
    /// Stop the subscriber at once. Its last sequence stays the one before the failing
    /// message.
    Stop,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy::Retry {
            max_attempts: 3,
            backoff: Duration::from_millis(10),
        }
    }
}

/// A predicate choosing the messages a subscriber handles.
pub(crate) type Filter<M> = Arc<dyn Fn(&M) -> bool + Send + Sync + 'static>;

/// How one subscriber runs: its channel, backpressure, failure policy and catch-up reads. The
/// one definition of these knobs: the bus takes them in [`SubscriberOptions`], the `eventlog`
/// facade as its defaults and per-subscription overrides.
///
/// ```
/// use std::time::Duration;
/// use events_bus::{Backpressure, FailurePolicy, SubscriberSettings};
///
/// let settings = SubscriberSettings::new()
///     .capacity(64)
///     .backpressure(Backpressure::Block)
///     .failure_policy(FailurePolicy::Retry { max_attempts: 5, backoff: Duration::from_millis(1) });
/// assert!(settings.validate().is_ok());
/// assert!(SubscriberSettings::new().capacity(0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberSettings {
    pub(crate) capacity: usize,
    pub(crate) backpressure: Backpressure,
    pub(crate) failure_policy: FailurePolicy,
    pub(crate) catch_up_batch: usize,
    pub(crate) source_backoff: Duration,
}

impl Default for SubscriberSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl SubscriberSettings {
    /// The defaults: capacity 1024, [`Backpressure::CatchUp`], `Retry { 3 attempts, 10 ms }`,
    /// catch-up batches of 256, source backoff 10 ms.
    pub const fn new() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            backpressure: Backpressure::CatchUp,
            failure_policy: FailurePolicy::Retry {
                max_attempts: 3,
                backoff: Duration::from_millis(10),
            },
            catch_up_batch: DEFAULT_CATCH_UP_BATCH,
            source_backoff: DEFAULT_SOURCE_BACKOFF,
        }
    }

    /// How many messages the subscriber's channel holds. Must be at least 1.
    /// Default = [`DEFAULT_CAPACITY`] (1024).
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// What the publisher does when the channel is full. Default = [`Backpressure::CatchUp`]:
    /// the subscriber falls behind and reads what it missed from the catch-up source.
    /// [`Backpressure::Block`]: the publisher waits for room.
    #[must_use]
    pub fn backpressure(mut self, backpressure: Backpressure) -> Self {
        self.backpressure = backpressure;
        self
    }

    /// What happens when the handler fails or panics. Default = `Retry { max_attempts: 3,
    /// backoff: 10 ms }`, then the subscriber stops.
    #[must_use]
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = policy;
        self
    }

    /// How many messages a catching-up subscriber asks the source for at once. Must be at
    /// least 1. Default = [`DEFAULT_CATCH_UP_BATCH`] (256).
    #[must_use]
    pub fn catch_up_batch(mut self, max: usize) -> Self {
        self.catch_up_batch = max;
        self
    }

    /// The first pause after a failed catch-up read; it doubles after each further failure,
    /// up to [`MAX_SOURCE_BACKOFF`]. Default = [`DEFAULT_SOURCE_BACKOFF`] (10 ms).
    #[must_use]
    pub fn source_backoff(mut self, backoff: Duration) -> Self {
        self.source_backoff = backoff;
        self
    }

    /// The channel capacity.
    pub fn get_capacity(&self) -> usize {
        self.capacity
    }

    /// The backpressure.
    pub fn get_backpressure(&self) -> Backpressure {
        self.backpressure
    }

    /// The failure policy.
    pub fn get_failure_policy(&self) -> FailurePolicy {
        self.failure_policy
    }

    /// The catch-up batch.
    pub fn get_catch_up_batch(&self) -> usize {
        self.catch_up_batch
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`BusError::InvalidOptions`] for a zero capacity, a zero catch-up batch or a `Retry`
    /// policy with zero attempts.
    pub fn validate(&self) -> Result<(), BusError> {
        if self.capacity == 0 {
            return Err(BusError::InvalidOptions {
                option: "capacity",
                reason: "must be at least 1",
            });
        }
        if self.catch_up_batch == 0 {
            return Err(BusError::InvalidOptions {
                option: "catch_up_batch",
                reason: "must be at least 1",
            });
        }
        if let FailurePolicy::Retry {
            max_attempts: 0, ..
        } = self.failure_policy
        {
            return Err(BusError::InvalidOptions {
                option: "failure_policy",
                reason: "Retry needs max_attempts of at least 1",
            });
        }
        Ok(())
    }
}

/// One subscriber's [`SubscriberSettings`] and its filter, validated when it is added.
///
/// ```
/// use events_bus::{Backpressure, SubscriberOptions};
///
/// let options = SubscriberOptions::<u64>::new()
///     .settings(|s| s.capacity(64).backpressure(Backpressure::Block))
///     .filter(|n: &u64| n % 2 == 0);
/// assert!(options.validate().is_ok());
/// ```
pub struct SubscriberOptions<M> {
    pub(crate) settings: SubscriberSettings,
    pub(crate) filter: Option<Filter<M>>,
}

impl<M> SubscriberOptions<M> {
    /// Default settings ([`SubscriberSettings::new`]), no filter.
    pub fn new() -> Self {
        Self::with_settings(SubscriberSettings::new())
    }

    /// These settings, no filter.
    pub fn with_settings(settings: SubscriberSettings) -> Self {
        Self {
            settings,
            filter: None,
        }
    }

    /// Changes the settings: `change` gets the current ones and returns the new ones.
    #[must_use]
    pub fn settings(
        mut self,
        change: impl FnOnce(SubscriberSettings) -> SubscriberSettings,
    ) -> Self {
        self.settings = change(self.settings);
        self
    }

    /// Handle only the messages for which `filter` returns true, live and during catch-up
    /// alike. Messages filtered out still advance the subscriber's last sequence (and are
    /// counted as `filtered`). Default = no filter: every message is handled.
    #[must_use]
    pub fn filter(mut self, filter: impl Fn(&M) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// As [`SubscriberSettings::validate`].
    pub fn validate(&self) -> Result<(), BusError> {
        self.settings.validate()
    }
}

impl<M> Default for SubscriberOptions<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Clone for SubscriberOptions<M> {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings,
            filter: self.filter.clone(),
        }
    }
}

impl<M> fmt::Debug for SubscriberOptions<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberOptions")
            .field("settings", &self.settings)
            .field("filter", &self.filter.as_ref().map(|_| "Fn(&M) -> bool"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let options = SubscriberOptions::<u64>::default();
        assert!(options.filter.is_none());
        let o = options.settings;
        assert_eq!(o, SubscriberSettings::default());
        assert_eq!(o.capacity, 1024);
        assert_eq!(o.backpressure, Backpressure::CatchUp);
        assert_eq!(
            o.failure_policy,
            FailurePolicy::Retry {
                max_attempts: 3,
                backoff: Duration::from_millis(10)
            }
        );
        assert_eq!(o.catch_up_batch, 256);
        assert_eq!(o.source_backoff, Duration::from_millis(10));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        let zero_cap = SubscriberSettings::new().capacity(0).validate();
        assert!(matches!(
            zero_cap,
            Err(BusError::InvalidOptions {
                option: "capacity",
                ..
            })
        ));
        let zero_batch = SubscriberSettings::new().catch_up_batch(0).validate();
        assert!(matches!(
            zero_batch,
            Err(BusError::InvalidOptions {
                option: "catch_up_batch",
                ..
            })
        ));
        let zero_attempts = SubscriberSettings::new()
            .failure_policy(FailurePolicy::Retry {
                max_attempts: 0,
                backoff: Duration::ZERO,
            })
            .validate();
        assert!(matches!(
            zero_attempts,
            Err(BusError::InvalidOptions {
                option: "failure_policy",
                ..
            })
        ));
    }

    #[test]
    fn debug_shows_filter_presence() {
        let o = SubscriberOptions::<u64>::new().filter(|_| true);
        assert!(format!("{o:?}").contains("Fn(&M) -> bool"));
        let cloned = o.clone();
        assert!(cloned.filter.is_some());
    }
}
