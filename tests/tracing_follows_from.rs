//! The delivery span of an event follows from the append span that stored it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Seen, cache_hit, config, wait_until};
use eventlog::{EventLog, ExpectedVersion, SubscriptionFilter};
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Default)]
struct Captured {
    /// Span id → (name, the `position` or `last_position` field when set at creation).
    names: HashMap<u64, &'static str>,
    /// (span, the span it follows from).
    follows: Vec<(u64, u64)>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Captured>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        self.0
            .lock()
            .unwrap()
            .names
            .insert(id.into_u64(), attrs.metadata().name());
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, _: Context<'_, S>) {
        self.0
            .lock()
            .unwrap()
            .follows
            .push((span.into_u64(), follows.into_u64()));
    }
}

#[test]
fn delivery_spans_follow_from_their_append_span() {
    let capture = Capture::default();
    // Subscriber threads must see it: install it globally (this binary has one test).
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let seen = Seen::default();
    log.subscribe("traced", SubscriptionFilter::all(), seen.handler())
        .unwrap();
    for n in 0..3 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
            .unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || seen.len() == 3));
    log.close().unwrap();

    let captured = capture.0.lock().unwrap();
    let links: Vec<(&str, &str)> = captured
        .follows
        .iter()
        .map(|(span, follows)| (captured.names[span], captured.names[follows]))
        .collect();
    assert_eq!(
        links
            .iter()
            .filter(|link| **link == ("eventlog_deliver", "eventlog_append"))
            .count(),
        3,
        "{links:?}"
    );
}
