//! The [`Subscriber`] trait, and the adapter that turns a closure into one.

use std::fmt::Display;

use crate::error::SubscriberError;
use crate::health::SubscriberReport;

/// A message handler running on its own thread, added with
/// [`Bus::subscribe_boxed`](crate::Bus::subscribe_boxed).
///
/// Every method runs on the subscriber's thread (named `bus-<name>`). A panic in any of them is
/// caught and counted; it never reaches the publisher or the other subscribers.
pub trait Subscriber<M>: Send {
    /// Handles one message. Messages come in strictly increasing sequence order, each once
    /// (unless the failure policy retries it after a failure).
    ///
    /// # Errors
    ///
    /// A [`SubscriberError`] when the message could not be handled: the subscriber's
    /// [`FailurePolicy`](crate::FailurePolicy) decides what happens next.
    fn handle(&mut self, message: &M) -> Result<(), SubscriberError>;

    /// Called once, before the first message. Default = does nothing.
    fn on_start(&mut self) {}

    /// Called each time the subscriber has caught up from the source and goes back to live
    /// delivery, with the last sequence it is done with. Default = does nothing.
    fn on_live(&mut self, last_sequence: u64) {
        let _ = last_sequence;
    }

    /// Called once, after the last message, with the subscriber's report. Default = does
    /// nothing.
    fn on_stop(&mut self, report: &SubscriberReport) {
        let _ = report;
    }
}

/// A closure `FnMut(&M) -> Result<(), E>` as a [`Subscriber`]; the error's `Display` becomes the
/// [`SubscriberError`]'s message.
pub(crate) struct FnSubscriber<F>(pub(crate) F);

impl<M, F, E> Subscriber<M> for FnSubscriber<F>
where
    F: FnMut(&M) -> Result<(), E> + Send,
    E: Display,
{
    fn handle(&mut self, message: &M) -> Result<(), SubscriberError> {
        (self.0)(message).map_err(|e| SubscriberError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_errors_become_subscriber_errors() {
        let mut seen = Vec::new();
        {
            let mut sub = FnSubscriber(|m: &u64| {
                seen.push(*m);
                if *m == 2 { Err("two is bad") } else { Ok(()) }
            });
            assert!(Subscriber::handle(&mut sub, &1).is_ok());
            let err = Subscriber::handle(&mut sub, &2).err();
            assert_eq!(
                err.map(|e| e.message().to_owned()),
                Some("two is bad".into())
            );
            // The default hooks do nothing.
            Subscriber::<u64>::on_start(&mut sub);
            Subscriber::<u64>::on_live(&mut sub, 2);
        }
        assert_eq!(seen, vec![1, 2]);
    }
}
