//! The system under test: the `eventlog` facade, [`EventLog`], opened the way a user opens it.
//!
//! Its registry is the Omni Writer's (`omni_domain::registry()`): every W event is a real
//! `article_generation_started` whose payload is a codec-encoded `ArticleGenerationStarted`, so
//! appends are validated against the registered type and loads fold the real aggregate.
//! Automatic snapshots are off (`snapshot_every(None)`): a measured load never writes;
//! W-load-snapshot saves its snapshots explicitly with [`EventLog::snapshot`].

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use eventlog::{
    Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, Position,
    StreamId, StreamRead,
};
use omni_domain::ArticleGeneration;

use super::{LoadOutcome, SLED_CACHE_BYTES, Scanned, System, Writer};
use crate::input::{AGGREGATE_TYPE, EVENT_TYPE, Input, SCHEMA_VERSION, SOURCE, aggregate_id};
use crate::workload::Append;

/// The eventlog, through its facade.
#[derive(Debug)]
pub struct Eventlog {
    log: EventLog,
}

/// An append handle: a clone of the facade handle (`EventLog` is `Send + Sync`).
#[derive(Debug)]
pub struct EventlogWriter {
    log: EventLog,
}

/// The facade's configuration for W: the store's settings beside the baselines' (256 MiB sled
/// cache), everything else the facade's defaults.
pub fn config(dir: &Path, durable: bool) -> EventLogConfig {
    let durability = if durable {
        Durability::Durable
    } else {
        Durability::Buffered
    };
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .durability(durability)
        .store(|s| s.cache_capacity(SLED_CACHE_BYTES))
        .snapshot_every(None)
}

impl Eventlog {
    /// The facade handle.
    pub fn log(&self) -> &EventLog {
        &self.log
    }
}

impl System for Eventlog {
    type Writer = EventlogWriter;

    fn open(dir: &Path, durable: bool) -> anyhow::Result<Self> {
        let log = EventLog::open(config(dir, durable))
            .with_context(|| format!("opening the event log in {}", dir.display()))?;
        Ok(Self { log })
    }

    fn writer(&self) -> anyhow::Result<EventlogWriter> {
        Ok(EventlogWriter {
            log: self.log.clone(),
        })
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.log.flush()?;
        Ok(())
    }

    fn close(self) -> anyhow::Result<()> {
        self.log.close()?;
        Ok(())
    }

    fn read_stream(&self, aggregate: u32) -> anyhow::Result<u64> {
        let id = aggregate_id(aggregate);
        let mut count = 0;
        for event in self.log.read_stream(
            &StreamId::new(AGGREGATE_TYPE, id.as_str()),
            StreamRead::forwards(),
        )? {
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
        for event in self.log.read_log(Position(1), None)? {
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

    fn scan_all(&self) -> anyhow::Result<Scanned> {
        let mut scanned = Scanned::default();
        let mut out_of_order = None;
        self.log.scan_log(Position(1), None, |event| {
            scanned.events += 1;
            scanned.payload_bytes += event.payload.len() as u64;
            if event.position != scanned.events {
                out_of_order = Some(event.position);
                return ControlFlow::Break(());
            }
            std::hint::black_box((
                event.event_id,
                event.event_type,
                event.aggregate_id,
                event.version,
                event.payload,
            ));
            ControlFlow::Continue(())
        })?;
        if let Some(position) = out_of_order {
            bail!("scan event {} has position {position}", scanned.events);
        }
        Ok(scanned)
    }

    fn load(&self, aggregate: u32) -> anyhow::Result<LoadOutcome> {
        let loaded = self
            .log
            .load::<ArticleGeneration>(&aggregate_id(aggregate))?;
        ensure!(!loaded.snapshot_saved, "a measured load saved a snapshot");
        std::hint::black_box(&loaded.state);
        Ok(LoadOutcome {
            version: loaded.version.get(),
            from_snapshot: loaded.from_snapshot.map(|v| v.get()),
            events_applied: loaded.events_applied,
        })
    }

    fn snapshot(&self, aggregate: u32) -> anyhow::Result<u64> {
        let loaded = self
            .log
            .snapshot::<ArticleGeneration>(&aggregate_id(aggregate))?;
        Ok(loaded.version.get())
    }
}

impl Writer for EventlogWriter {
    fn append(&mut self, input: &Input, append: &Append) -> anyhow::Result<()> {
        let id = aggregate_id(append.aggregate);
        // What a caller does: one `NewEvent` per event, owning its fields. The id, timestamp and
        // payload are the pre-generated ones (`NewEvent::from_event` would draw fresh ones and
        // encode the payload: the input holds it encoded already).
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
            v => ExpectedVersion::exact(v),
        };
        let stream = StreamId::new(AGGREGATE_TYPE, id.as_str());
        let result = self.log.append(&stream, expected, events)?;
        ensure!(
            result.last_version == append.expected + append.count as u64,
            "{id}: the append ended at version {}, expected {}",
            result.last_version,
            append.expected + append.count as u64
        );
        Ok(())
    }
}
