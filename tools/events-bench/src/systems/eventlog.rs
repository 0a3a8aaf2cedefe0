//! The system under test, today `events_sled::Store` directly.
//!
//! **Switching to the `eventlog` facade** touches only this file: replace `Store`/`StoreConfig`
//! with the facade's handle (`eventlog::EventLog`) and its builder, keep the same calls (append
//! with an expected version, read a stream forwards, read the log from position 1, flush, close).
//! Nothing else in the runner names the store's types.

use std::path::Path;

use anyhow::{Context, ensure};
use events_core::{EventContext, NewEvent};
use events_sled::{Durability, ExpectedVersion, Store, StoreConfig, StreamRead};

use super::{SLED_CACHE_BYTES, System, Writer};
use crate::input::{AGGREGATE_TYPE, EVENT_TYPE, Input, SCHEMA_VERSION, SOURCE, aggregate_id};
use crate::workload::Append;

/// The eventlog store.
#[derive(Debug)]
pub struct Eventlog {
    store: Store,
}

/// An append handle: a clone of the store (the store is `Send + Sync`).
#[derive(Debug)]
pub struct EventlogWriter {
    store: Store,
}

impl System for Eventlog {
    type Writer = EventlogWriter;

    fn open(dir: &Path, durable: bool) -> anyhow::Result<Self> {
        let durability = if durable {
            Durability::Durable
        } else {
            Durability::Buffered
        };
        let store = Store::open(
            StoreConfig::new(dir)
                .durability(durability)
                .cache_capacity(SLED_CACHE_BYTES),
        )
        .with_context(|| format!("opening the eventlog store in {}", dir.display()))?;
        Ok(Self { store })
    }

    fn writer(&self) -> anyhow::Result<EventlogWriter> {
        Ok(EventlogWriter {
            store: self.store.clone(),
        })
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.store.flush()?;
        Ok(())
    }

    fn close(self) -> anyhow::Result<()> {
        self.store.close()?;
        Ok(())
    }

    fn read_stream(&self, aggregate: u32) -> anyhow::Result<u64> {
        let id = aggregate_id(aggregate);
        let mut count = 0;
        for event in self
            .store
            .read_stream(AGGREGATE_TYPE, &id, StreamRead::forwards())?
        {
            let event = event?;
            count += 1;
            ensure!(
                event.metadata.version == count,
                "{id}: event {count} has version {}",
                event.metadata.version
            );
            std::hint::black_box(event);
        }
        Ok(count)
    }

    fn read_all(&self) -> anyhow::Result<u64> {
        let mut count = 0;
        for event in self.store.read_log(1, None) {
            let event = event?;
            count += 1;
            ensure!(
                event.position == count,
                "log event {count} has position {}",
                event.position
            );
            std::hint::black_box(event);
        }
        Ok(count)
    }
}

impl Writer for EventlogWriter {
    fn append(&mut self, input: &Input, append: &Append) -> anyhow::Result<()> {
        let id = aggregate_id(append.aggregate);
        // What a caller does: one `NewEvent` per event, owning its fields. The id, timestamp and
        // payload are the pre-generated ones (`NewEvent::from_parts` would draw fresh ones).
        let events = (append.first..append.first + append.count)
            .map(|i| NewEvent {
                event_id: input.id(i),
                event_type: EVENT_TYPE.to_string(),
                aggregate_type: AGGREGATE_TYPE.to_string(),
                aggregate_id: id.clone(),
                timestamp: input.timestamp(i),
                schema_version: SCHEMA_VERSION,
                context: EventContext::new(SOURCE),
                payload: input.payload(i).to_vec(),
            })
            .collect();
        let expected = match append.expected {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        let result = self.store.append(expected, events)?;
        ensure!(
            result.last_version == append.expected + append.count as u64,
            "{id}: the append ended at version {}, expected {}",
            result.last_version,
            append.expected + append.count as u64
        );
        Ok(())
    }
}
