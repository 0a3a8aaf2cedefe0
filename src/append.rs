//! Appends: one stream's events with optimistic concurrency ([`EventLog::append`] and its typed
//! forms), or several streams atomically ([`EventLog::append_batches`]).

use events_core::{DomainEvent, EventContext, EventSet, ExpectedVersion, NewEvent, StreamId};
use events_sled::{AppendBatch as StoreBatch, AppendResult};
use tracing::field::Empty;

use crate::error::AppendError;
use crate::log::EventLog;

/// One stream's events within [`EventLog::append_batches`], with the version it expects.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendBatch {
    /// The stream appended to.
    pub stream: StreamId,
    /// What the stream's version must be.
    pub expected: ExpectedVersion,
    /// The events, in order; each must name `stream`.
    pub events: Vec<NewEvent>,
}

impl AppendBatch {
    /// A batch of `events` for `stream`, expecting `expected`.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{AppendBatch, AppendError, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let new_hit = || NewEvent::from_event("c1", &hit, EventContext::default());
    /// let batch = AppendBatch::new(StreamId::of::<CacheHit>("c1"), ExpectedVersion::NoStream, vec![new_hit()?, new_hit()?]);
    /// assert_eq!((batch.stream.aggregate_id(), batch.events.len()), ("c1", 2));
    /// assert_eq!(log.append_batches(vec![batch])?[0].last_version, 2);
    /// // The stream exists now: a batch expecting no stream is refused.
    /// let again = AppendBatch::new(StreamId::of::<CacheHit>("c1"), ExpectedVersion::NoStream, vec![new_hit()?]);
    /// assert!(matches!(log.append_batches(vec![again]), Err(AppendError::WrongExpectedVersion { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            stream,
            expected,
            events,
        }
    }
}

/// Refuses an event that names another stream than the one appended to.
fn check_stream(stream: &StreamId, events: &[NewEvent]) -> Result<(), AppendError> {
    match events
        .iter()
        .position(|e| !stream.is(&e.aggregate_type, &e.aggregate_id))
    {
        None => Ok(()),
        Some(index) => Err(AppendError::WrongStream {
            stream: stream.clone(),
            index,
            found: StreamId::new(
                events[index].aggregate_type.clone(),
                events[index].aggregate_id.clone(),
            ),
        }),
    }
}

impl EventLog {
    /// Appends `events` to `stream` if it is at `expected`: all are stored or none. Versions
    /// follow the stream's, global positions the log's end. Appending the same event ids again
    /// after an unseen outcome returns the original result (idempotent retry). In durable mode
    /// it returns once the events are on disk.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("cache-1");
    /// let events = vec![
    ///     NewEvent::from_event("cache-1", &hit, EventContext::default())?,
    ///     NewEvent::from_event("cache-1", &hit, EventContext::default())?,
    /// ];
    /// let result = log.append(&stream, ExpectedVersion::NoStream, events)?;
    /// assert_eq!((result.first_version, result.last_version), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AppendError::WrongExpectedVersion`] on a conflict; [`AppendError::WrongStream`] when an
    /// event names another stream; [`AppendError::Store`] for an invalid, empty or too large
    /// append or a failed store; [`AppendError::Closed`].
    pub fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, AppendError> {
        check_stream(stream, &events)?;
        let span = tracing::debug_span!(
            "eventlog_append",
            aggregate_type = stream.aggregate_type(),
            aggregate_id = stream.aggregate_id(),
            events = events.len(),
            expected = %expected,
            first_position = Empty,
            last_position = Empty,
        );
        let _entered = span.enter();
        self.inner()
            .links
            .record(&span, events.iter().map(|e| e.event_id));
        let result =
            self.with_store(|store| Ok::<_, AppendError>(store.append(expected, events)?))?;
        span.record("first_position", result.first_position);
        span.record("last_position", result.last_position);
        Ok(result)
    }

    /// Appends one typed event to `stream`.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheMiss;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
    /// let stream = StreamId::of::<CacheMiss>("cache-1");
    /// let result = log.append_event(&stream, ExpectedVersion::NoStream, &miss, EventContext::default())?;
    /// assert_eq!((result.last_version, result.last_position), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AppendError::Encode`] when the payload cannot be encoded; [`AppendError::WrongStream`]
    /// when `E` belongs to another aggregate type than `stream`'s; otherwise as
    /// [`EventLog::append`].
    pub fn append_event<E: DomainEvent>(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        event: &E,
        context: EventContext,
    ) -> Result<AppendResult, AppendError> {
        let event = NewEvent::from_event(stream.aggregate_id(), event, context)?;
        self.append(stream, expected, vec![event])
    }

    /// Appends typed events of an [`EventSet`] (an aggregate's event enum) to `stream`, each
    /// with `context`.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::{Cache, CacheEvent, CacheHit, CacheMiss};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let stream = StreamId::of::<CacheHit>("cache-1");
    /// let events = [
    ///     CacheEvent::from(CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() }),
    ///     CacheEvent::from(CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 }),
    /// ];
    /// log.append_events(&stream, ExpectedVersion::NoStream, events, EventContext::default())?;
    /// let cache = log.load::<Cache>("cache-1")?;
    /// assert_eq!((cache.state.hits, cache.state.misses), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`EventLog::append_event`].
    pub fn append_events<S: EventSet>(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = S>,
        context: EventContext,
    ) -> Result<AppendResult, AppendError> {
        let events = events
            .into_iter()
            .map(|event| event.to_new_event(stream.aggregate_id(), context.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        self.append(stream, expected, events)
    }

    /// Appends to several streams atomically, each batch with its own expected version: all
    /// batches are stored, at consecutive positions in the order given, or none is.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{AppendBatch, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, StreamId};
    /// use omni_domain::CacheSet;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let set = CacheSet { cache_key: "k".into(), cache_type: "memory".into(), ttl_seconds: Some(60), size_bytes: 512 };
    /// let event = |id: &str| NewEvent::from_event(id, &set, EventContext::default());
    /// let results = log.append_batches(vec![
    ///     AppendBatch::new(StreamId::of::<CacheSet>("a"), ExpectedVersion::NoStream, vec![event("a")?]),
    ///     AppendBatch::new(StreamId::of::<CacheSet>("b"), ExpectedVersion::NoStream, vec![event("b")?, event("b")?]),
    /// ])?;
    /// assert_eq!((results[1].first_position, results[1].last_version), (2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`EventLog::append`], plus [`AppendError::Store`] with
    /// [`StoreAppendError::DuplicateAggregate`](crate::StoreAppendError::DuplicateAggregate) when
    /// two batches name the same stream.
    pub fn append_batches(
        &self,
        batches: Vec<AppendBatch>,
    ) -> Result<Vec<AppendResult>, AppendError> {
        for batch in &batches {
            check_stream(&batch.stream, &batch.events)?;
        }
        let span = tracing::debug_span!(
            "eventlog_append",
            batches = batches.len(),
            events = batches.iter().map(|b| b.events.len()).sum::<usize>(),
            first_position = Empty,
            last_position = Empty,
        );
        let _entered = span.enter();
        self.inner().links.record(
            &span,
            batches
                .iter()
                .flat_map(|b| b.events.iter().map(|e| e.event_id)),
        );
        let batches = batches
            .into_iter()
            .map(|b| StoreBatch::new(b.expected, b.events))
            .collect();
        let results =
            self.with_store(|store| Ok::<_, AppendError>(store.append_batches(batches)?))?;
        if let (Some(first), Some(last)) = (results.first(), results.last()) {
            span.record("first_position", first.first_position);
            span.record("last_position", last.last_position);
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omni_domain::CacheHit;

    #[test]
    fn events_of_another_stream_are_named() {
        let hit = CacheHit {
            cache_key: "k".into(),
            cache_type: "memory".into(),
            response_time: 0.0,
        };
        let ok = NewEvent::from_event("a", &hit, EventContext::default()).unwrap();
        let other = NewEvent::from_event("b", &hit, EventContext::default()).unwrap();
        let stream = StreamId::new("cache", "a");
        assert!(check_stream(&stream, std::slice::from_ref(&ok)).is_ok());
        let err = check_stream(&stream, &[ok, other]).unwrap_err();
        assert!(
            matches!(err, AppendError::WrongStream { index: 1, ref found, .. } if found.aggregate_id() == "b")
        );
        assert!(
            check_stream(
                &StreamId::new("pipeline", "a"),
                &[NewEvent::from_event("a", &hit, EventContext::default()).unwrap()]
            )
            .is_err()
        );
    }
}
