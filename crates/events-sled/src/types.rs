//! The values the store's API takes and returns.

use events_core::{ExpectedVersion, NewEvent};
use serde::Serialize;

/// The events for one aggregate within an append, with the version they expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendBatch {
    /// What the aggregate's version must be.
    pub expected: ExpectedVersion,
    /// The events, all of one aggregate, in order.
    pub events: Vec<NewEvent>,
}

impl AppendBatch {
    /// A batch of `events` expecting `expected`.
    pub fn new(expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self { expected, events }
    }
}

/// Where an aggregate's appended events landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendResult {
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Version of the first event appended.
    pub first_version: u64,
    /// Version of the last event appended: the aggregate's version after the append.
    pub last_version: u64,
    /// Global position of the first event appended.
    pub first_position: u64,
    /// Global position of the last event appended.
    pub last_position: u64,
}

/// Which way a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// From the given version up. Default.
    #[default]
    Forwards,
    /// From the given version down.
    Backwards,
}

/// Which events of an aggregate to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRead {
    /// First version to read (forwards) or the highest (backwards). Default = 1 forwards, the
    /// current version backwards.
    pub from: Option<u64>,
    /// Which way to read. Default = forwards.
    pub direction: Direction,
    /// Most events to return. Default = all.
    pub limit: Option<usize>,
}

impl Default for StreamRead {
    fn default() -> Self {
        Self::forwards()
    }
}

impl StreamRead {
    /// Every event, oldest first.
    pub fn forwards() -> Self {
        Self {
            from: None,
            direction: Direction::Forwards,
            limit: None,
        }
    }

    /// Every event, newest first.
    pub fn backwards() -> Self {
        Self {
            direction: Direction::Backwards,
            ..Self::forwards()
        }
    }

    /// Start at `version`.
    #[must_use]
    pub fn from(mut self, version: u64) -> Self {
        self.from = Some(version);
        self
    }

    /// Return at most `limit` events.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// An aggregate and its current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AggregateInfo {
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Its current version (its number of events).
    pub version: u64,
}
