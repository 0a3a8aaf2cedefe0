//! Builds a pipeline's events: deterministic event ids, and the trace, correlation, user and
//! session ids every event of the pipeline carries.

use eventlog::{DomainEvent, EventContext, NewEvent};
use uuid::Uuid;

use crate::content::USERS;
use crate::rng::Rng;

/// The `source` of every event the daemon writes.
pub const SOURCE: &str = "omni-writer";

/// Salt of the id stream, so ids and content draws of one pipeline are unrelated.
const ID_STREAM_SALT: u64 = 0x1D5_1D5_1D5;

/// The id of pipeline `number`: its aggregate id and every event's correlation id.
pub fn pipeline_id(number: u64) -> String {
    format!("pipeline-{number:06}")
}

/// The aggregate id of a per-prompt aggregate (`val`, `gen`, `retry`).
pub fn prompt_aggregate_id(kind: &str, number: u64, prompt: u32) -> String {
    format!("{kind}-{number:06}-{prompt:03}")
}

/// The pipeline number in a pipeline aggregate id (`pipeline-000123` → 123).
pub fn parse_pipeline_id(aggregate_id: &str) -> Option<u64> {
    aggregate_id.strip_prefix("pipeline-")?.parse().ok()
}

/// Makes the events of one pipeline, each with the pipeline's context and a causation id.
#[derive(Debug)]
pub struct Emitter {
    ids: Rng,
    context: EventContext,
    events: u64,
}

impl Emitter {
    /// The emitter of pipeline `number` under `seed`.
    pub fn new(seed: u64, number: u64) -> Self {
        let mut ids = Rng::new(seed ^ ID_STREAM_SALT, number);
        let trace_id = format!("{:016x}{:016x}", ids.next_u64(), ids.next_u64());
        let session_id = format!("session-{:016x}", ids.next_u64());
        let user_id = *ids.pick(USERS);
        let context = EventContext::new(SOURCE)
            .with_trace_id(trace_id)
            .with_correlation_id(pipeline_id(number))
            .with_user_id(user_id)
            .with_session_id(session_id);
        Self {
            ids,
            context,
            events: 0,
        }
    }

    /// The next event id: a version-4 UUID made from the id stream.
    fn next_id(&mut self) -> Uuid {
        let mut bytes = [0_u8; 16];
        bytes[..8].copy_from_slice(&self.ids.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&self.ids.next_u64().to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// An event of aggregate `aggregate_id`, caused by the event `cause`.
    pub fn event<E: DomainEvent>(
        &mut self,
        aggregate_id: &str,
        payload: &E,
        cause: Option<Uuid>,
    ) -> anyhow::Result<NewEvent> {
        let mut context = self.context.clone();
        context.causation_id = cause.map(|id| id.to_string());
        let id = self.next_id();
        self.events += 1;
        Ok(NewEvent::from_event(aggregate_id, payload, context)?.with_event_id(id))
    }

    /// Events made so far.
    pub fn events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omni_domain::CacheHit;

    fn hit() -> CacheHit {
        CacheHit {
            cache_key: "k".into(),
            cache_type: "memory".into(),
            response_time: 0.001,
        }
    }

    #[test]
    fn ids_are_deterministic_per_seed_and_pipeline() -> anyhow::Result<()> {
        let a = Emitter::new(7, 3).event("cache-1", &hit(), None)?;
        let b = Emitter::new(7, 3).event("cache-1", &hit(), None)?;
        let c = Emitter::new(7, 4).event("cache-1", &hit(), None)?;
        assert_eq!(a.event_id, b.event_id);
        assert_eq!(a.context, b.context);
        assert_ne!(a.event_id, c.event_id);
        assert_eq!(a.event_id.get_version_num(), 4);
        assert_eq!(a.context.correlation_id.as_deref(), Some("pipeline-000003"));
        Ok(())
    }

    #[test]
    fn pipeline_ids_round_trip() {
        assert_eq!(parse_pipeline_id(&pipeline_id(123)), Some(123));
        assert_eq!(parse_pipeline_id(&pipeline_id(1_234_567)), Some(1_234_567));
        assert_eq!(parse_pipeline_id("pipeline-x"), None);
        assert_eq!(prompt_aggregate_id("gen", 12, 4), "gen-000012-004");
    }
}
