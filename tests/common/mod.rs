//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod full_disk;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventlog::{
    AppendError, AppendResult, Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion,
    NewEvent, RecordedEvent, ReplicationConfig, ReplicationStatus, Replicator, StreamId,
};
use omni_domain::{CacheHit, CacheMiss, GenerationConfig, PipelineStarted};

/// The stream the events name (that of the first one; an empty list gets a placeholder
/// stream, so that the store's own refusal of an empty append is what the test sees).
pub fn stream_of(events: &[NewEvent]) -> StreamId {
    events.first().map_or_else(
        || StreamId::new("cache", "empty"),
        |e| StreamId::new(e.aggregate_type.clone(), e.aggregate_id.clone()),
    )
}

/// Appends to the stream the events name: most tests append one aggregate's events and do not
/// care to spell its stream out.
pub trait AppendOwn {
    fn append_own(
        &self,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, AppendError>;
}

impl AppendOwn for EventLog {
    fn append_own(
        &self,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, AppendError> {
        self.append(&stream_of(&events), expected, events)
    }
}

/// A buffered store with a small cache: fast to open, fast to append.
pub fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .durability(Durability::Buffered)
        .store(|s| {
            s.cache_capacity(16 << 20)
                .flush_interval(Duration::from_millis(20))
        })
}

pub fn cache_hit(aggregate_id: &str, n: u64) -> NewEvent {
    let hit = CacheHit {
        cache_key: format!("key-{n}"),
        cache_type: "memory".into(),
        response_time: 0.001,
    };
    NewEvent::from_event(aggregate_id, &hit, EventContext::new("test")).unwrap()
}

pub fn cache_miss(aggregate_id: &str, n: u64) -> NewEvent {
    let miss = CacheMiss {
        cache_key: format!("key-{n}"),
        cache_type: "memory".into(),
        reason: "not_found".into(),
    };
    NewEvent::from_event(aggregate_id, &miss, EventContext::new("test")).unwrap()
}

pub fn generation_config() -> GenerationConfig {
    GenerationConfig {
        model_type: "openai".into(),
        temperature: 0.7,
        max_tokens: 4096,
        language: "pt-BR".into(),
    }
}

pub fn pipeline_started(aggregate_id: &str, prompts: u32) -> NewEvent {
    let started = PipelineStarted {
        pipeline_type: "single_instance".into(),
        config: generation_config(),
        total_prompts: prompts,
    };
    NewEvent::from_event(aggregate_id, &started, EventContext::new("test")).unwrap()
}

/// Positions handed to a subscription handler, shared with the test.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<u64>>>);

impl Seen {
    pub fn handler(&self) -> impl FnMut(&RecordedEvent) -> Result<(), String> + Send + 'static {
        let seen = Arc::clone(&self.0);
        move |event: &RecordedEvent| {
            seen.lock().unwrap().push(event.position);
            Ok(())
        }
    }

    pub fn positions(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// 1..=n.
pub fn one_to(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

/// Flushes `log`, replicates it as `replication` says until the stream holds all of it (at most
/// 30 s), and stops the replicator.
pub fn replicate_all(log: &EventLog, replication: &ReplicationConfig) {
    log.flush().unwrap();
    let replicator = log.replicate(replication.clone()).unwrap();
    stop_when_replicated(log, replicator, Duration::from_secs(30));
}

/// Waits at most `wait` until `replicator`'s stream holds `log` up to its last position, then
/// stops it; its final status.
pub fn stop_when_replicated(
    log: &EventLog,
    replicator: Replicator,
    wait: Duration,
) -> ReplicationStatus {
    let last = log.last_position().unwrap().get();
    assert!(
        replicator.wait_replicated(last, wait),
        "{:?}",
        replicator.status()
    );
    replicator.stop().unwrap()
}
