//! What the bus knows of a message ([`Sequenced`]) and where a lagging subscriber reads the
//! messages it missed ([`CatchUpSource`]).

use std::sync::Arc;

use crate::error::SourceError;

/// A message with a sequence number: the only thing the bus knows about a message.
///
/// The publisher assigns sequences: they strictly increase from one published message to the
/// next, and may skip values. Sequence 0 means "before the first message", so no published
/// message has sequence 0.
pub trait Sequenced {
    /// This message's sequence number.
    fn sequence(&self) -> u64;
}

/// A bare `u64` is its own sequence: handy for tests and examples.
impl Sequenced for u64 {
    fn sequence(&self) -> u64 {
        *self
    }
}

impl<T: Sequenced + ?Sized> Sequenced for Arc<T> {
    fn sequence(&self) -> u64 {
        (**self).sequence()
    }
}

impl<T: Sequenced + ?Sized> Sequenced for Box<T> {
    fn sequence(&self) -> u64 {
        (**self).sequence()
    }
}

/// Where a subscriber reads the messages it did not receive live: when it lagged behind
/// ([`Backpressure::CatchUp`](crate::Backpressure::CatchUp)) or when it starts from a past
/// sequence ([`Bus::subscribe_from`](crate::Bus::subscribe_from)).
///
/// Supplied by whoever creates the bus (for an event store: a read of the log by global
/// position). The contract:
///
/// - every message the publisher published (or is about to publish) with a sequence up to the
///   last published one can be read here: a store commits before it publishes;
/// - the source returns the same messages the publisher publishes, with the same sequences
///   (if the publisher filters, the source filters the same way).
///
/// The bus never delivers a message with a sequence beyond the last one published, and drops
/// any message whose sequence is not greater than the subscriber's last one, so a source may
/// return messages that are not yet published or already handled: they are ignored.
pub trait CatchUpSource<M>: Send + Sync {
    /// Up to `max` messages with sequence greater than `after_sequence`, in increasing
    /// sequence order.
    ///
    /// # Errors
    ///
    /// A [`SourceError`] when the messages cannot be read; the subscriber retries with a
    /// backoff and counts the error in its health.
    fn read_after(&self, after_sequence: u64, max: usize) -> Result<Vec<M>, SourceError>;
}

impl<M, S: CatchUpSource<M> + ?Sized> CatchUpSource<M> for Arc<S> {
    fn read_after(&self, after_sequence: u64, max: usize) -> Result<Vec<M>, SourceError> {
        (**self).read_after(after_sequence, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_forward_the_sequence() {
        assert_eq!(7u64.sequence(), 7);
        assert_eq!(Arc::new(9u64).sequence(), 9);
        assert_eq!(Box::new(11u64).sequence(), 11);
    }

    struct Fixed;
    impl CatchUpSource<u64> for Fixed {
        fn read_after(&self, after: u64, max: usize) -> Result<Vec<u64>, SourceError> {
            Ok((after + 1..=10).take(max).collect())
        }
    }

    #[test]
    fn arc_source_forwards() {
        let source: Arc<dyn CatchUpSource<u64>> = Arc::new(Fixed);
        assert_eq!(source.read_after(7, 10).ok(), Some(vec![8, 9, 10]));
        assert_eq!(Arc::new(Fixed).read_after(0, 2).ok(), Some(vec![1, 2]));
    }
}
