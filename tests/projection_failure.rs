//! A projection whose apply fails (error or panic) after changing its state gets its committed
//! state back, so the retry applies the event once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{cache_hit, config, wait_until};
use eventlog::{
    ApplyError, EventLog, EventRegistry, ExpectedVersion, FailurePolicy, Projection, RecordedEvent,
    SubscriptionOptions,
};
use serde::{Deserialize, Serialize};

static FAILURES_LEFT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Applied(Vec<u64>);

impl Projection for Applied {
    fn apply(&mut self, event: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
        // Change the state first, then fail: the change must not survive.
        self.0.push(event.position);
        if event.position.is_multiple_of(4) && FAILURES_LEFT.load(Ordering::SeqCst) > 0 {
            let left = FAILURES_LEFT.fetch_sub(1, Ordering::SeqCst);
            if left.is_multiple_of(2) {
                panic!("flaky panic at {}", event.position);
            }
            return Err(ApplyError::rejected(format!("flaky at {}", event.position)));
        }
        Ok(())
    }
}

#[test]
fn failed_applies_are_rolled_back_before_the_retry() {
    FAILURES_LEFT.store(4, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let projection = log
        .project::<Applied>(
            "applied",
            SubscriptionOptions::new().bus(|b| {
                b.failure_policy(FailurePolicy::Retry {
                    max_attempts: 10,
                    backoff: Duration::from_millis(1),
                })
            }),
        )
        .unwrap();
    for n in 0..12 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
            .unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || projection
        .position()
        == 12));
    projection.read(|state, _| assert_eq!(state.0, (1..=12).collect::<Vec<_>>()));
    let health = projection.health().unwrap();
    assert_eq!(health.counts.errors + health.counts.panics, 4);
    let (position, stored) = log.projection_state::<Applied>("applied").unwrap().unwrap();
    assert_eq!(position, 12);
    assert_eq!(stored.0, (1..=12).collect::<Vec<_>>());
    log.close().unwrap();
}
