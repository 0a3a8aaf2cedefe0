//! Links each delivery span to the append span that caused it (`follows_from`).
//!
//! An append whose `eventlog_append` span is enabled records its span under each of its event
//! ids, before the store sees the events (so the link is there whenever the delivery happens);
//! a delivery whose `eventlog_deliver` span is enabled looks its event id up. Both steps are
//! skipped when the span is disabled, so there is no cost without a tracing subscriber. The map
//! is bounded: the oldest entries go first, and an evicted entry just means no link. Keeping the
//! `Span` (not only its id) keeps the append span open while it can still be linked to, so the
//! id never points at a span the subscriber has closed and reused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tracing::Span;
use uuid::Uuid;

/// How many event ids keep a link to their append span.
const MAX_LINKS: usize = 4096;

#[derive(Debug, Default)]
struct Links {
    spans: HashMap<Uuid, Span>,
    order: VecDeque<Uuid>,
}

/// Event id → the append span that stored it, bounded.
#[derive(Debug, Default)]
pub(crate) struct SpanLinks {
    links: Mutex<Links>,
}

impl SpanLinks {
    fn lock(&self) -> MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `span` as the cause of the events `ids`, if the span is enabled.
    pub(crate) fn record(&self, span: &Span, ids: impl IntoIterator<Item = Uuid>) {
        if span.is_disabled() {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut links = self.lock();
            for id in ids {
                if links.spans.insert(id, span.clone()).is_none() {
                    links.order.push_back(id);
                }
                while links.order.len() > MAX_LINKS {
                    if let Some(old) = links.order.pop_front()
                        && let Some(span) = links.spans.remove(&old)
                    {
                        evicted.push(span);
                    }
                }
            }
        }
        // Closing evicted spans happens outside the lock.
        drop(evicted);
    }

    /// Makes `span` follow from the append span of event `id`, if both are known and enabled.
    pub(crate) fn link(&self, span: &Span, id: &Uuid) {
        if span.is_disabled() {
            return;
        }
        let cause = self.lock().spans.get(id).cloned();
        if let Some(cause) = cause {
            span.follows_from(&cause);
        }
    }

    /// How many links are held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().spans.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_spans_record_nothing() {
        let links = SpanLinks::default();
        links.record(&Span::none(), [Uuid::new_v4()]);
        assert_eq!(links.len(), 0);
    }
}
