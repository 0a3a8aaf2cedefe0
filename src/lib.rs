//! `eventlog`: an embedded event-sourcing event log on sled.
pub use events_core;
