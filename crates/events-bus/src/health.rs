//! What can be seen of a subscriber: its id, state, counters, health and final report.

use std::fmt;

use serde::Serialize;

/// The most failures a report keeps (the latest ones); the counters count them all.
pub const MAX_REPORTED_FAILURES: usize = 64;

/// A subscriber's id, unique within one bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SubscriberId(pub(crate) u64);

impl SubscriberId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a subscriber stands. Serialized as `{"state": "live"}`, `{"state": "stopped",
/// "reason": "..."}`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubscriberState {
    /// Receiving messages live from the publisher.
    Live,
    /// Lagging: draining its channel or reading missed messages from the catch-up source.
    CatchingUp,
    /// Stopped on a failure (its failure policy, or the catch-up source failing during
    /// shutdown); its thread has ended or is ending. The report's `last_sequence` says where
    /// it stopped.
    Stopped {
        /// Why it stopped.
        reason: String,
    },
    /// Ended normally: unsubscribed, or drained everything at shutdown.
    Finished,
}

impl SubscriberState {
    /// Whether the subscriber has ended (stopped or finished).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SubscriberState::Stopped { .. } | SubscriberState::Finished
        )
    }
}

/// A subscriber's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SubscriberCounts {
    /// Messages handled successfully.
    pub delivered: u64,
    /// Handler calls that returned an error.
    pub errors: u64,
    /// Handler calls (and hooks) that panicked.
    pub panics: u64,
    /// Re-deliveries made by [`FailurePolicy::Retry`](crate::FailurePolicy::Retry).
    pub retries: u64,
    /// Messages given up on by [`FailurePolicy::Skip`](crate::FailurePolicy::Skip).
    pub skipped: u64,
    /// Messages the subscriber's filter left out.
    pub filtered: u64,
    /// Times the subscriber started catching up from the source.
    pub catch_ups: u64,
    /// Failed catch-up reads (errors, panics or missing messages in the source).
    pub source_errors: u64,
}

/// How a subscriber is doing, as returned by [`Bus::health`](crate::Bus::health).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriberHealth {
    /// Its id.
    pub id: SubscriberId,
    /// Its name (its thread is named `bus-<name>`).
    pub name: String,
    /// Where it stands.
    #[serde(flatten)]
    pub state: SubscriberState,
    /// Its counters.
    #[serde(flatten)]
    pub counts: SubscriberCounts,
    /// The last sequence it is done with (handled, skipped by policy or filtered out).
    pub last_sequence: u64,
    /// The last sequence published minus `last_sequence` (0 when it is ahead).
    pub lag: u64,
    /// Messages waiting in its channel.
    pub queue_len: usize,
    /// Its channel's capacity.
    pub capacity: usize,
    /// The last handler or source error, if any.
    pub last_error: Option<String>,
}

/// Whether a handler call returned an error or panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The handler returned an error.
    Error,
    /// The handler panicked.
    Panic,
}

/// One failed handler call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The sequence of the message being handled.
    pub sequence: u64,
    /// Which attempt failed (1 for the first delivery).
    pub attempt: u32,
    /// Error or panic.
    pub kind: FailureKind,
    /// The error's message or the panic's payload.
    pub message: String,
}

/// What a subscriber did, returned once its thread is joined (by
/// [`Bus::unsubscribe`](crate::Bus::unsubscribe) or [`Bus::shutdown`](crate::Bus::shutdown)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriberReport {
    /// Its id.
    pub id: SubscriberId,
    /// Its name.
    pub name: String,
    /// Its final state: [`SubscriberState::Finished`] or [`SubscriberState::Stopped`].
    #[serde(flatten)]
    pub state: SubscriberState,
    /// Its counters.
    #[serde(flatten)]
    pub counts: SubscriberCounts,
    /// The last sequence it is done with (handled, skipped by policy or filtered out): a
    /// stopped subscriber resumes after it.
    pub last_sequence: u64,
    /// The latest failures, oldest first (at most [`MAX_REPORTED_FAILURES`]).
    pub failures: Vec<Failure>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_with_a_tag() {
        let live = serde_json::to_value(SubscriberState::Live).ok();
        assert_eq!(live, Some(serde_json::json!({"state": "live"})));
        let stopped = serde_json::to_value(SubscriberState::Stopped {
            reason: "boom".into(),
        })
        .ok();
        assert_eq!(
            stopped,
            Some(serde_json::json!({"state": "stopped", "reason": "boom"}))
        );
        assert!(SubscriberState::Finished.is_terminal());
        assert!(!SubscriberState::CatchingUp.is_terminal());
    }

    #[test]
    fn health_serializes_flat() {
        let health = SubscriberHealth {
            id: SubscriberId(3),
            name: "projector".into(),
            state: SubscriberState::CatchingUp,
            counts: SubscriberCounts {
                delivered: 5,
                ..SubscriberCounts::default()
            },
            last_sequence: 5,
            lag: 2,
            queue_len: 0,
            capacity: 4,
            last_error: None,
        };
        let json = serde_json::to_value(&health).ok();
        let json = json.unwrap_or_default();
        assert_eq!(json["id"], 3);
        assert_eq!(json["state"], "catching_up");
        assert_eq!(json["delivered"], 5);
        assert_eq!(json["lag"], 2);
        assert_eq!(SubscriberId(3).to_string(), "#3");
        assert_eq!(SubscriberId(3).get(), 3);
    }
}
