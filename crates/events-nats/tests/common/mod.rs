//! An in-memory log for the replicator (the crate knows no store) and event helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use events_core::{EventMetadata, RecordedEvent};
use events_nats::{ReplicaSource, SourceError};
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(30);

/// A log in memory: positions from 1, appended by the test, read by a replicator.
#[derive(Default)]
pub struct MemoryLog {
    pub id: String,
    events: Mutex<Vec<RecordedEvent>>,
    grew: Condvar,
}

impl MemoryLog {
    pub fn new(id: &str) -> Arc<Self> {
        Arc::new(Self {
            id: id.to_owned(),
            ..Self::default()
        })
    }

    /// Appends one event of `aggregate` (its next version) and returns it.
    pub fn append(&self, aggregate_type: &str, aggregate_id: &str) -> RecordedEvent {
        let mut events = self.events.lock().unwrap();
        let version = events
            .iter()
            .filter(|e| {
                e.metadata.aggregate_type == aggregate_type
                    && e.metadata.aggregate_id == aggregate_id
            })
            .count() as u64
            + 1;
        let position = events.len() as u64 + 1;
        let event = RecordedEvent {
            position,
            metadata: EventMetadata {
                event_id: Uuid::new_v4(),
                event_type: "thing_happened".into(),
                aggregate_id: aggregate_id.into(),
                aggregate_type: aggregate_type.into(),
                version,
                timestamp: Utc
                    .timestamp_micros(1_780_000_000_000_000 + position as i64)
                    .unwrap(),
                trace_id: Some(format!("trace-{position}")),
                user_id: None,
                session_id: None,
                source: "memory".into(),
                correlation_id: None,
                causation_id: None,
                schema_version: 1,
            },
            payload: format!("{{\"n\":{position}}}").into_bytes(),
        };
        events.push(event.clone());
        self.grew.notify_all();
        event
    }

    pub fn events(&self) -> Vec<RecordedEvent> {
        self.events.lock().unwrap().clone()
    }
}

impl ReplicaSource for MemoryLog {
    fn store_id(&self) -> Result<String, SourceError> {
        Ok(self.id.clone())
    }

    fn read(
        &self,
        from: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<RecordedEvent>, SourceError> {
        let mut events = self.events.lock().unwrap();
        if (events.len() as u64) < from {
            events = self.grew.wait_timeout(events, wait).unwrap().0;
        }
        let start = (from.max(1) - 1) as usize;
        Ok(events.iter().skip(start).take(max).cloned().collect())
    }

    fn last_position(&self) -> Result<u64, SourceError> {
        Ok(self.events.lock().unwrap().len() as u64)
    }
}
