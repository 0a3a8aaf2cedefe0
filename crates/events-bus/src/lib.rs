//! A publisher with subscriber threads on bounded crossbeam channels, generic over the message.
//!
//! The bus knows one thing of a message: its sequence number ([`Sequenced`]), which the
//! publisher makes strictly increase. Around that it gives:
//!
//! - one named thread per subscriber (`bus-<name>`), fed by a bounded channel, added with a
//!   closure ([`Bus::subscribe`]) or a [`Subscriber`] trait object ([`Bus::subscribe_boxed`]);
//! - failure isolation: handler errors and panics are caught, counted, logged with `tracing`
//!   and handled by a per-subscriber [`FailurePolicy`] (retry with backoff, skip or stop);
//! - backpressure per subscriber ([`Backpressure`]): block the publisher, or never block it and
//!   let a lagging subscriber catch up from a [`CatchUpSource`], then hand over to live delivery
//!   with no gap and no duplicate; [`Bus::subscribe_from`] starts a subscriber from a past
//!   sequence the same way;
//! - [`Bus::health`] and a [`SubscriberReport`] per subscriber at
//!   [`unsubscribe`](Bus::unsubscribe) and [`shutdown`](Bus::shutdown); every thread is
//!   joined, on drop too.
//!
//! The crate never installs a `tracing` subscriber: it emits events and spans (`bus.subscriber`,
//! `bus.deliver`) with the subscriber's name and the message's sequence as fields.
//!
//! # Example
//!
//! A bus whose source is an in-memory log, a subscriber that falls behind and catches up:
//!
//! ```
//! use std::sync::{Arc, Mutex, RwLock};
//! use events_bus::{Bus, CatchUpSource, SourceError, SubscriberOptions};
//!
//! struct Log(RwLock<Vec<u64>>);
//! impl CatchUpSource<u64> for Log {
//!     fn read_after(&self, after: u64, max: usize) -> Result<Vec<u64>, SourceError> {
//!         let log = self.0.read().map_err(|_| SourceError::new("poisoned"))?;
//!         Ok(log.iter().copied().filter(|n| *n > after).take(max).collect())
//!     }
//! }
//!
//! let log = Arc::new(Log(RwLock::new(Vec::new())));
//! let bus = Bus::builder().catch_up_source(Arc::clone(&log)).build();
//! let total = Arc::new(Mutex::new(0u64));
//! let sum = Arc::clone(&total);
//! // A channel of 2: the subscriber lags behind at once, the publisher never waits.
//! bus.subscribe("summer", SubscriberOptions::new().settings(|s| s.capacity(2)), move |n: &u64| {
//!     *sum.lock().map_err(|_| "poisoned")? += n;
//!     Ok::<(), &str>(())
//! })?;
//! for n in 1..=100 {
//!     log.0.write().map_err(|_| "poisoned")?.push(n); // commit, then publish
//!     bus.publish(n)?;
//! }
//! let reports = bus.shutdown()?;
//! assert_eq!(reports[0].last_sequence, 100);
//! assert_eq!(*total.lock().map_err(|_| "poisoned")?, 5050);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bus;
mod error;
mod health;
mod options;
mod source;
mod subscriber;
mod worker;

pub use bus::{Bus, BusBuilder};
pub use error::{BusError, SourceError, SubscriberError};
pub use health::{
    Failure, FailureKind, MAX_REPORTED_FAILURES, SubscriberCounts, SubscriberHealth, SubscriberId,
    SubscriberReport, SubscriberState,
};
pub use options::{
    Backpressure, DEFAULT_CAPACITY, DEFAULT_CATCH_UP_BATCH, DEFAULT_SOURCE_BACKOFF, FailurePolicy,
    MAX_RETRY_BACKOFF, MAX_SOURCE_BACKOFF, SubscriberOptions, SubscriberSettings,
};
pub use source::{CatchUpSource, Sequenced};
pub use subscriber::Subscriber;
