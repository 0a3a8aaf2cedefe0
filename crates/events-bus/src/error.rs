//! Typed errors of `events-bus`: what the bus refuses ([`BusError`]), what a subscriber reports
//! ([`SubscriberError`]) and what a catch-up source reports ([`SourceError`]).

use std::error::Error as StdError;
use std::fmt;

use crate::health::SubscriberId;

/// Why the bus refused a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The bus was shut down (by [`Bus::shutdown`](crate::Bus::shutdown)): it takes no more
    /// messages or subscribers.
    #[error("the bus is shut down")]
    ShutDown,
    /// No subscriber of this id is registered (it never was, or it was already unsubscribed).
    #[error("unknown subscriber {id}")]
    UnknownSubscriber {
        /// The id asked for.
        id: SubscriberId,
    },
    /// The subscriber needs a catch-up source (it uses [`Backpressure::CatchUp`](crate::Backpressure::CatchUp)
    /// or starts from a past sequence) and the bus was built without one.
    #[error(
        "subscriber `{name}` needs a catch-up source (CatchUp backpressure or a start sequence) and the bus has none"
    )]
    NoCatchUpSource {
        /// The subscriber's name.
        name: String,
    },
    /// A message's sequence is not greater than the last one published.
    #[error("out-of-order publish: sequence {got} is not greater than the last published {last}")]
    OutOfOrder {
        /// The last sequence published.
        last: u64,
        /// The sequence refused.
        got: u64,
    },
    /// A subscriber option is invalid (a zero capacity, zero retry attempts, ...).
    #[error("invalid subscriber option `{option}`: {reason}")]
    InvalidOptions {
        /// The option at fault.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The subscriber's name cannot name a thread (it contains a NUL byte).
    #[error("invalid subscriber name {name:?}: {reason}")]
    InvalidName {
        /// The name refused.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The operating system could not start the subscriber's thread.
    #[error("could not spawn the thread of subscriber `{name}`: {source}")]
    Spawn {
        /// The subscriber's name.
        name: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A subscriber's failure to handle one message, as returned by
/// [`Subscriber::handle`](crate::Subscriber::handle).
///
/// It carries a message and, optionally, the underlying error.
#[derive(Debug)]
pub struct SubscriberError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl SubscriberError {
    /// An error with this message and no underlying error.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error wrapping `error`; its message is `error.to_string()`.
    pub fn from_error(error: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SubscriberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for SubscriberError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// A catch-up source's failure to read, as returned by
/// [`CatchUpSource::read_after`](crate::CatchUpSource::read_after).
///
/// The subscriber retries the read with a backoff; the error is counted in its health.
#[derive(Debug)]
pub struct SourceError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl SourceError {
    /// An error with this message and no underlying error.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error wrapping `error`; its message is `error.to_string()`.
    pub fn from_error(error: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_error_keeps_message_and_source() {
        let io = std::io::Error::other("disk gone");
        let err = SubscriberError::from_error(io);
        assert_eq!(err.message(), "disk gone");
        assert_eq!(err.to_string(), "disk gone");
        assert!(StdError::source(&err).is_some());
        assert!(StdError::source(&SubscriberError::new("x")).is_none());
    }

    #[test]
    fn source_error_keeps_message_and_source() {
        let err = SourceError::from_error(std::io::Error::other("locked"));
        assert_eq!(err.message(), "locked");
        assert!(StdError::source(&err).is_some());
        assert_eq!(SourceError::new("gone").to_string(), "gone");
    }

    #[test]
    fn bus_error_messages_name_the_values() {
        let err = BusError::OutOfOrder { last: 7, got: 7 };
        assert_eq!(
            err.to_string(),
            "out-of-order publish: sequence 7 is not greater than the last published 7"
        );
    }
}
