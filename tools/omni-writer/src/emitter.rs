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

/// Whose ids a daemon writes (`--writer-id K`). Without one, today's ids (`pipeline-000001`,
/// `cache-<key>`) and draws; with one, aggregate ids of its own (`pipeline-wK-000001`,
/// `val-wK-000001-000`, `cache-wK-<key>`) and its own generator streams (so its own event ids and
/// content): several daemons writing to several stores share no aggregate and no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Writer(Option<u16>);

impl Writer {
    /// The writer with id `id` (`None`: the daemon has none).
    pub fn new(id: Option<u16>) -> Self {
        Self(id)
    }

    /// What every aggregate id of this writer carries after its kind: `wK-`, or nothing.
    fn tag(self) -> String {
        self.0.map(|k| format!("w{k}-")).unwrap_or_default()
    }

    /// The id of pipeline `number`: its aggregate id and every event's correlation id.
    pub fn pipeline_id(self, number: u64) -> String {
        format!("pipeline-{}{number:06}", self.tag())
    }

    /// The aggregate id of a per-prompt aggregate (`val`, `gen`, `retry`).
    pub fn prompt_aggregate_id(self, kind: &str, number: u64, prompt: u32) -> String {
        format!("{kind}-{}{number:06}-{prompt:03}", self.tag())
    }

    /// The aggregate id of the cache entry `key`. Shared by this writer's pipelines only.
    pub fn cache_id(self, key: &str) -> String {
        format!("cache-{}{key}", self.tag())
    }

    /// The pipeline number in one of this writer's pipeline aggregate ids
    /// (`pipeline-000123` → 123; `pipeline-w2-000123` → 123 for writer 2 only).
    pub fn parse_pipeline_id(self, aggregate_id: &str) -> Option<u64> {
        aggregate_id
            .strip_prefix("pipeline-")?
            .strip_prefix(&self.tag())?
            .parse()
            .ok()
    }

    /// The generator stream of pipeline `number`: the number itself without a writer id (so
    /// today's draws), else the number with the writer id in its top 16 bits (pipeline numbers
    /// stay far below 2^48).
    pub fn stream(self, number: u64) -> u64 {
        self.0.map_or(number, |k| number ^ (u64::from(k) << 48))
    }
}

/// Makes the events of one pipeline, each with the pipeline's context and a causation id.
#[derive(Debug)]
pub struct Emitter {
    ids: Rng,
    context: EventContext,
    events: u64,
}

impl Emitter {
    /// The emitter of pipeline `number` of `writer` under `seed`.
    pub fn new(seed: u64, writer: Writer, number: u64) -> Self {
        let mut ids = Rng::new(seed ^ ID_STREAM_SALT, writer.stream(number));
        let trace_id = format!("{:016x}{:016x}", ids.next_u64(), ids.next_u64());
        let session_id = format!("session-{:016x}", ids.next_u64());
        let user_id = *ids.pick(USERS);
        let context = EventContext::new(SOURCE)
            .with_trace_id(trace_id)
            .with_correlation_id(writer.pipeline_id(number))
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
        let none = Writer::default();
        let a = Emitter::new(7, none, 3).event("cache-1", &hit(), None)?;
        let b = Emitter::new(7, none, 3).event("cache-1", &hit(), None)?;
        let c = Emitter::new(7, none, 4).event("cache-1", &hit(), None)?;
        assert_eq!(a.event_id, b.event_id);
        assert_eq!(a.context, b.context);
        assert_ne!(a.event_id, c.event_id);
        assert_eq!(a.event_id.get_version_num(), 4);
        assert_eq!(a.context.correlation_id.as_deref(), Some("pipeline-000003"));
        Ok(())
    }

    #[test]
    fn writers_have_their_own_ids() -> anyhow::Result<()> {
        let none = Emitter::new(7, Writer::default(), 3).event("c", &hit(), None)?;
        let one = Emitter::new(7, Writer::new(Some(1)), 3).event("c", &hit(), None)?;
        let two = Emitter::new(7, Writer::new(Some(2)), 3).event("c", &hit(), None)?;
        assert_ne!(none.event_id, one.event_id);
        assert_ne!(one.event_id, two.event_id);
        assert_eq!(
            two.context.correlation_id.as_deref(),
            Some("pipeline-w2-000003")
        );
        Ok(())
    }

    #[test]
    fn pipeline_ids_round_trip() {
        let none = Writer::default();
        assert_eq!(none.parse_pipeline_id(&none.pipeline_id(123)), Some(123));
        assert_eq!(
            none.parse_pipeline_id(&none.pipeline_id(1_234_567)),
            Some(1_234_567)
        );
        assert_eq!(none.parse_pipeline_id("pipeline-x"), None);
        assert_eq!(none.prompt_aggregate_id("gen", 12, 4), "gen-000012-004");
        assert_eq!(none.cache_id("k"), "cache-k");
        // Today's ids are unchanged for the pipeline numbering of the stream too.
        assert_eq!(none.stream(12), 12);

        let w2 = Writer::new(Some(2));
        assert_eq!(w2.pipeline_id(1), "pipeline-w2-000001");
        assert_eq!(w2.prompt_aggregate_id("val", 1, 0), "val-w2-000001-000");
        assert_eq!(w2.cache_id("k"), "cache-w2-k");
        assert_eq!(w2.parse_pipeline_id("pipeline-w2-000017"), Some(17));
        // Each writer counts only its own pipelines.
        assert_eq!(w2.parse_pipeline_id("pipeline-000017"), None);
        assert_eq!(w2.parse_pipeline_id("pipeline-w21-000017"), None);
        assert_eq!(none.parse_pipeline_id("pipeline-w2-000017"), None);
        assert_ne!(w2.stream(12), Writer::new(Some(3)).stream(12));
    }
}
