//! The Omni Writer's aggregates, chosen by aggregate type name (what `state` and
//! `snapshot --create` load), and where a pipeline's trace lies in the log (`trace`). The
//! library knows no application's aggregates; the dump reads the Omni Writer's store, so it
//! names them here, through `omni_domain::with_aggregate`.

use anyhow::{Context as _, bail};
use eventlog::{Aggregate, EventLog, Loaded, StreamId, StreamRead, Version};
use omni_domain::{AGGREGATE_TYPES, PIPELINE, WithAggregate, pipeline_span, with_aggregate};
use serde_json::Value;

use crate::source::Handle;

/// The error for a type without an Omni Writer aggregate.
fn unknown_type(aggregate_type: &str) -> String {
    format!(
        "no Omni Writer aggregate for type `{aggregate_type}` (known: {})",
        AGGREGATE_TYPES.join(", ")
    )
}

/// The aggregate's state as JSON (the [`Loaded`] value: `aggregate_type`, `aggregate_id`,
/// `version`, `from_snapshot`, `events_applied`, `snapshot_saved`, `state`), at `at` or its
/// current version; `None` when it has no events.
///
/// # Errors
///
/// For a type without an Omni Writer aggregate; a version the aggregate has not reached; a
/// store that cannot be read or an event that does not apply.
pub fn load_state(
    log: &EventLog,
    aggregate_type: &str,
    aggregate_id: &str,
    at: Option<u64>,
) -> anyhow::Result<Option<Value>> {
    struct LoadState<'a> {
        log: &'a EventLog,
        aggregate_id: &'a str,
        at: Option<u64>,
    }
    impl WithAggregate for LoadState<'_> {
        type Output = anyhow::Result<Option<Value>>;
        fn run<A: Aggregate>(self) -> anyhow::Result<Option<Value>> {
            let loaded: Loaded<A> = match self.at {
                Some(version) => self.log.load_at(self.aggregate_id, Version(version))?,
                None => self.log.load(self.aggregate_id)?,
            };
            if loaded.version == Version::NONE {
                return Ok(None);
            }
            Ok(Some(serde_json::to_value(&loaded)?))
        }
    }
    let job = LoadState {
        log,
        aggregate_id,
        at,
    };
    with_aggregate(aggregate_type, job).with_context(|| unknown_type(aggregate_type))?
}

/// Takes a snapshot of the aggregate now; returns its version.
///
/// # Errors
///
/// For a type without an Omni Writer aggregate, an aggregate with no events, or a store that
/// cannot be read or written.
pub fn snapshot_now(
    log: &EventLog,
    aggregate_type: &str,
    aggregate_id: &str,
) -> anyhow::Result<u64> {
    struct SnapshotNow<'a> {
        log: &'a EventLog,
        aggregate_id: &'a str,
    }
    impl WithAggregate for SnapshotNow<'_> {
        type Output = anyhow::Result<Version>;
        fn run<A: Aggregate>(self) -> anyhow::Result<Version> {
            Ok(self.log.snapshot::<A>(self.aggregate_id)?.version)
        }
    }
    let job = SnapshotNow { log, aggregate_id };
    let version =
        with_aggregate(aggregate_type, job).with_context(|| unknown_type(aggregate_type))??;
    if version == Version::NONE {
        bail!("no events for {aggregate_type}/{aggregate_id}: nothing to snapshot");
    }
    Ok(version.get())
}

/// Where the trace of `id` lies in the log when `id` is an Omni Writer pipeline's id
/// (`omni_domain::pipeline_span`); `None` for another id.
///
/// # Errors
///
/// When the pipeline's stream cannot be read.
pub fn pipeline_window(log: &Handle, id: &str) -> anyhow::Result<Option<(u64, Option<u64>)>> {
    let stream = StreamId::new(PIPELINE, id);
    Ok(pipeline_span(
        log.read_stream(&stream, StreamRead::forwards())?,
    )?)
}
