//! Traces: every event that carries one trace id or correlation id, arranged as a causation
//! tree (an event's parent is the event its `causation_id` names). Found by a scan of the log
//! (zero-copy, [`EventLog::scan_log`]) over a window the caller may narrow; only the events
//! that match are copied out.

use std::collections::HashMap;
use std::ops::ControlFlow;

use events_core::{EventRegistry, Position, RecordedEvent};
use events_sled::EventRef;
use serde_json::{Value, json};

use crate::error::ReadError;
use crate::log::EventLog;
use crate::read_only::ReadOnlyEventLog;

/// Default = at most this many events in one trace; the rest is cut ([`Trace::truncated`]).
pub const DEFAULT_TRACE_EVENTS: usize = 10_000;

/// What [`EventLog::trace`] looks for: the id (matched against each event's trace id and
/// correlation id), the window of the log it scans, and a cap on the events it returns.
///
/// # Example
///
/// ```
/// use eventlog::{Position, TraceQuery};
///
/// let query = TraceQuery::new("pipeline-000001").from(Position(1_000)).to(Position(2_000));
/// assert_eq!(query.id(), "pipeline-000001");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    id: String,
    from: Position,
    to: Option<Position>,
    max_events: usize,
}

impl TraceQuery {
    /// Looks for `id` in the whole log. Default window = from [`Position::START`] to the log's
    /// end; default cap = [`DEFAULT_TRACE_EVENTS`].
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// assert_eq!(trace.events().len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            from: Position::START,
            to: None,
            max_events: DEFAULT_TRACE_EVENTS,
        }
    }

    /// Scans from this position on (inclusive). Default = [`Position::START`].
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1").from(eventlog::Position(2)))?;
    /// assert_eq!(trace.events().len(), 2); // positions 2 and 3
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn from(mut self, from: Position) -> Self {
        self.from = from;
        self
    }

    /// Scans up to this position (inclusive). Default = the log's end when the scan begins.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1").to(eventlog::Position(1)))?;
    /// assert_eq!(trace.events().len(), 1); // position 1 only
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn to(mut self, to: Position) -> Self {
        self.to = Some(to);
        self
    }

    /// Returns at most this many events (at least 1). Default = [`DEFAULT_TRACE_EVENTS`].
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1").max_events(2))?;
    /// assert_eq!((trace.events().len(), trace.truncated()), (2, true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_events(mut self, events: usize) -> Self {
        self.max_events = events.max(1);
        self
    }

    /// The id looked for.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// assert_eq!(TraceQuery::new("t-1").id(), trace.id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many events the scan may visit, if `to` bounds it (`Some(0)`: an empty window).
    fn scan_limit(&self) -> Option<usize> {
        self.to.map(|to| {
            let span = to
                .get()
                .saturating_add(1)
                .saturating_sub(self.from.get().max(1));
            usize::try_from(span).unwrap_or(usize::MAX)
        })
    }
}

/// The events of one trace, in log order, with their causation tree. Built by
/// [`EventLog::trace`] (or [`ReadOnlyEventLog::trace`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    id: String,
    events: Vec<RecordedEvent>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
    truncated: bool,
    /// The earliest timestamp of its events, in microseconds (0: no event).
    start_micros: i64,
}

/// One event of a [`Trace`] as [`Trace::walk`] visits it.
#[derive(Debug, Clone, Copy)]
pub struct TraceStep<'a> {
    /// The event.
    pub event: &'a RecordedEvent,
    /// Its depth in the tree (0: a root, an event whose cause is not in the trace).
    pub depth: usize,
    /// Its parent: the event its `causation_id` names, if that event is in the trace.
    pub parent: Option<&'a RecordedEvent>,
    /// How many events it caused within the trace.
    pub children: usize,
    /// Milliseconds from the trace's earliest event to this one.
    pub offset_ms: f64,
}

impl Trace {
    fn build(id: String, events: Vec<RecordedEvent>, truncated: bool) -> Self {
        let index: HashMap<String, usize> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.metadata.event_id.to_string(), i))
            .collect();
        let mut parent = vec![None; events.len()];
        let mut children = vec![Vec::new(); events.len()];
        let mut roots = Vec::new();
        for (i, event) in events.iter().enumerate() {
            // A cause later in the log than its effect is not a cause (and could make a cycle).
            match event
                .metadata
                .causation_id
                .as_deref()
                .and_then(|c| index.get(c))
            {
                Some(&p) if p < i => {
                    parent[i] = Some(p);
                    children[p].push(i);
                }
                _ => roots.push(i),
            }
        }
        let start_micros = events
            .iter()
            .map(|e| e.metadata.timestamp.timestamp_micros())
            .min()
            .unwrap_or(0);
        Self {
            id,
            events,
            parent,
            children,
            roots,
            truncated,
            start_micros,
        }
    }

    /// The id the trace was looked up by.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// assert_eq!(trace.id(), "t-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its events, in log order.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// let positions: Vec<u64> = trace.events().iter().map(|e| e.position).collect();
    /// assert_eq!(positions, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&self) -> &[RecordedEvent] {
        &self.events
    }

    /// Whether more events matched than the query's cap: the trace holds the first ones.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// assert!(!trace.truncated());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The events whose cause is not in the trace, in log order.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// // No event names a cause: all three are roots.
    /// assert_eq!(trace.roots().count(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn roots(&self) -> impl Iterator<Item = &RecordedEvent> {
        self.roots.iter().map(|&i| &self.events[i])
    }

    /// Every event once, depth first: each root, then what it caused (in log order), and so
    /// on. Iterative, so any depth is safe.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c3"] {
    ///     let context = EventContext::new("docs").with_trace_id("t-1");
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, context)?;
    /// }
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// assert!(trace.walk().all(|step| step.depth == 0 && step.parent.is_none()));
    /// assert_eq!(trace.walk().count(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn walk(&self) -> impl Iterator<Item = TraceStep<'_>> {
        self.depth_first().map(|(i, depth)| TraceStep {
            event: &self.events[i],
            depth,
            parent: self.parent[i].map(|p| &self.events[p]),
            children: self.children[i].len(),
            offset_ms: self.offset_ms(i),
        })
    }

    /// Milliseconds from the earliest event to event `i`.
    fn offset_ms(&self, i: usize) -> f64 {
        let micros = self.events[i].metadata.timestamp.timestamp_micros() - self.start_micros;
        micros as f64 / 1000.0
    }

    /// Each event's index and depth, depth first (roots in log order, then what each caused).
    fn depth_first(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&i| (i, 0)).collect();
        std::iter::from_fn(move || {
            let (i, depth) = stack.pop()?;
            stack.extend(self.children[i].iter().rev().map(|&c| (c, depth + 1)));
            Some((i, depth))
        })
    }

    /// The trace as JSON, for tools and pages: `id`, `events` (how many), `roots`, `truncated`
    /// and `tree`, the events in [`Trace::walk`] order, each as
    /// [`EventRegistry::event_to_json_lossy`] gives it plus `depth`, `parent` (its cause's
    /// position, or null), `children` (the positions it caused) and `offset_ms` (time since the
    /// trace's earliest event). Flat, so any depth encodes without recursion.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let context = EventContext::new("docs").with_trace_id("t-1");
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, context)?;
    /// let json = log.trace(&TraceQuery::new("t-1"))?.to_json(log.registry());
    /// assert_eq!((json["events"].as_u64(), json["tree"][0]["depth"].as_u64()), (Some(1), Some(0)));
    /// assert_eq!(json["tree"][0]["payload"]["cache_key"], "k");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_json(&self, registry: &EventRegistry) -> Value {
        let mut tree = Vec::with_capacity(self.events.len());
        for (i, depth) in self.depth_first() {
            let event = &self.events[i];
            let mut value = registry.event_to_json_lossy(event);
            if let Value::Object(map) = &mut value {
                map.insert("depth".into(), depth.into());
                map.insert(
                    "parent".into(),
                    self.parent[i].map_or(Value::Null, |p| self.events[p].position.into()),
                );
                let children: Vec<u64> = self.children[i]
                    .iter()
                    .map(|&c| self.events[c].position)
                    .collect();
                map.insert("children".into(), children.into());
                map.insert("offset_ms".into(), self.offset_ms(i).into());
            }
            tree.push(value);
        }
        json!({
            "id": self.id,
            "events": self.events.len(),
            "roots": self.roots.len(),
            "truncated": self.truncated,
            "tree": tree,
        })
    }
}

/// Whether `event` belongs to the trace `id`.
fn matches(event: &EventRef<'_>, id: &str) -> bool {
    event.trace_id == Some(id) || event.correlation_id == Some(id)
}

/// The one way a trace is found: one scan of the window (`scan`: either handle's `scan_log`),
/// owning only the events that match.
fn find(
    query: &TraceQuery,
    scan: impl FnOnce(
        Position,
        Option<usize>,
        &mut dyn FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, ReadError>,
) -> Result<Trace, ReadError> {
    let mut events = Vec::new();
    let mut truncated = false;
    if query.scan_limit() != Some(0) {
        scan(query.from, query.scan_limit(), &mut |event| {
            if !matches(&event, &query.id) {
                return ControlFlow::Continue(());
            }
            if events.len() == query.max_events {
                truncated = true;
                return ControlFlow::Break(());
            }
            events.push(event.to_owned());
            ControlFlow::Continue(())
        })?;
    }
    Ok(Trace::build(query.id.clone(), events, truncated))
}

impl EventLog {
    /// Every event whose trace id or correlation id is `query`'s id, in the query's window of
    /// the log, as a causation tree. Scans the window (about as fast as
    /// [`EventLog::scan_log`]), so narrow it when you know where the trace lies (e.g. between
    /// the first and last event of the process's own stream).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::{CacheHit, CacheMiss};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let context = EventContext::new("docs").with_trace_id("t-1");
    /// let first = log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, context.clone())?;
    /// let cause = log.read_log(first.first_position.into(), Some(1))?.next().ok_or("no event")??;
    /// let caused = context.with_causation_id(cause.metadata.event_id.to_string());
    /// log.append_event(&StreamId::of::<CacheHit>("c2"), ExpectedVersion::Any, &hit, caused)?;
    ///
    /// let trace = log.trace(&TraceQuery::new("t-1"))?;
    /// let tree: Vec<(usize, &str)> = trace.walk().map(|s| (s.depth, s.event.event_type())).collect();
    /// assert_eq!(tree, [(0, "cache_miss"), (1, "cache_hit")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] when the log cannot be read; [`ReadError::Closed`].
    pub fn trace(&self, query: &TraceQuery) -> Result<Trace, ReadError> {
        find(query, |from, limit, visit| {
            self.scan_log(from, limit, visit)
        })
    }
}

impl ReadOnlyEventLog {
    /// As [`EventLog::trace`], on the log as this handle sees it.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, TraceQuery};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let context = EventContext::new("docs").with_correlation_id("run-7");
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, context)?;
    /// log.flush()?;
    /// let live = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// assert_eq!(live.trace(&TraceQuery::new("run-7"))?.events().len(), 1);
    /// assert!(live.trace(&TraceQuery::new("run-8"))?.events().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] when the log files cannot be read.
    pub fn trace(&self, query: &TraceQuery) -> Result<Trace, ReadError> {
        find(query, |from, limit, visit| {
            self.scan_log(from, limit, visit)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_core::{EventContext, NewEvent};

    fn event(position: u64, id: u128, cause: Option<u128>) -> RecordedEvent {
        let mut context = EventContext::new("test");
        context.causation_id = cause.map(|c| uuid::Uuid::from_u128(c).to_string());
        NewEvent {
            event_id: uuid::Uuid::from_u128(id),
            event_type: "cache_hit".into(),
            aggregate_type: "cache".into(),
            aggregate_id: "c".into(),
            timestamp: chrono::Utc::now(),
            schema_version: 1,
            context,
            payload: Vec::new(),
        }
        .into_recorded(position, position)
    }

    #[test]
    fn parents_are_the_causes_in_the_trace_and_the_walk_is_depth_first() {
        // 1 caused 2 and 4; 2 caused 3; 5's cause is outside the trace.
        let events = vec![
            event(1, 1, None),
            event(2, 2, Some(1)),
            event(3, 3, Some(2)),
            event(4, 4, Some(1)),
            event(5, 5, Some(99)),
        ];
        let trace = Trace::build("t".into(), events, false);
        let walk: Vec<(u64, usize, usize)> = trace
            .walk()
            .map(|s| (s.event.position, s.depth, s.children))
            .collect();
        assert_eq!(
            walk,
            [(1, 0, 2), (2, 1, 1), (3, 2, 0), (4, 1, 0), (5, 0, 0)]
        );
        assert_eq!(
            trace.roots().map(|e| e.position).collect::<Vec<_>>(),
            [1, 5]
        );
    }

    #[test]
    fn a_cause_after_its_effect_is_not_a_parent_so_a_cycle_cannot_form() {
        let events = vec![event(1, 1, Some(2)), event(2, 2, Some(1))];
        let trace = Trace::build("t".into(), events, false);
        let depths: Vec<usize> = trace.walk().map(|s| s.depth).collect();
        assert_eq!(depths, [0, 1]);
    }

    #[test]
    fn a_deep_chain_walks_without_recursion() {
        let events: Vec<RecordedEvent> = (1..=50_000_u64)
            .map(|p| event(p, u128::from(p), (p > 1).then(|| u128::from(p - 1))))
            .collect();
        let trace = Trace::build("t".into(), events, false);
        assert_eq!(trace.walk().last().map(|s| s.depth), Some(49_999));
    }

    #[test]
    fn windows_bound_the_scan() {
        assert_eq!(TraceQuery::new("x").scan_limit(), None);
        let q = TraceQuery::new("x").from(Position(10)).to(Position(19));
        assert_eq!(q.scan_limit(), Some(10));
        let empty = TraceQuery::new("x").from(Position(10)).to(Position(9));
        assert_eq!(empty.scan_limit(), Some(0));
        assert_eq!(TraceQuery::new("x").to(Position(5)).scan_limit(), Some(5));
    }
}
