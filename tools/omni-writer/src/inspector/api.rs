//! The inspector's JSON API. Each endpoint checks its parameters first (unknown ones, numbers
//! and times that do not parse: 400), caps what it returns, and reads through the facade.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use eventlog::{
    Aggregate, EventLog, EventRef, Loaded, Position, RecordedEvent, StreamId, StreamRead,
    TraceQuery, Version,
};
use omni_domain::{PIPELINE, WithAggregate, pipeline_span, with_aggregate};
use serde_json::{Value, json};

use super::Reply;

/// Most events or aggregates one page returns.
pub const MAX_PAGE: usize = 500;
/// Default page size.
const DEFAULT_PAGE: usize = 50;
/// Most events one filtered log read looks at before it returns what it found (with where to
/// go on): a filter that matches nothing must not scan the whole log in one request.
pub const MAX_SCAN: usize = 100_000;
/// Most events a trace returns.
const MAX_TRACE: usize = 5_000;

/// Why a request is refused.
#[derive(Debug)]
enum Refusal {
    /// 400: the query is malformed.
    Malformed(String),
    /// 404: nothing has that id.
    NotFound(String),
    /// 500: the store could not be read.
    Failed(String),
}

/// A failed read is a 500 with its cause chain.
macro_rules! failed_from {
    ($($error:ty),+) => {
        $(impl From<$error> for Refusal {
            fn from(error: $error) -> Self {
                Self::Failed(format!("{:#}", anyhow::Error::from(error)))
            }
        })+
    };
}

failed_from!(
    eventlog::ReadError,
    eventlog::AdminError,
    eventlog::LoadError,
    eventlog::StoreReadError,
    serde_json::Error
);

type Answer = Result<Value, Refusal>;

/// The query parameters of one request, each taken once; what is left over is refused.
struct Params<'a> {
    params: &'a BTreeMap<String, String>,
    taken: BTreeSet<&'static str>,
}

impl<'a> Params<'a> {
    fn new(params: &'a BTreeMap<String, String>) -> Self {
        Self {
            params,
            taken: BTreeSet::new(),
        }
    }

    fn text(&mut self, name: &'static str) -> Option<&'a str> {
        self.taken.insert(name);
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &'static str) -> Result<&'a str, Refusal> {
        self.text(name)
            .ok_or_else(|| Refusal::Malformed(format!("parameter `{name}` is required")))
    }

    fn number(&mut self, name: &'static str) -> Result<Option<u64>, Refusal> {
        self.text(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    Refusal::Malformed(format!("`{name}` must be a whole number, not `{v}`"))
                })
            })
            .transpose()
    }

    fn limit(&mut self) -> Result<usize, Refusal> {
        let limit = self.number("limit")?.unwrap_or(DEFAULT_PAGE as u64);
        if limit == 0 {
            return Err(Refusal::Malformed("`limit` must be at least 1".into()));
        }
        Ok(usize::try_from(limit).unwrap_or(MAX_PAGE).min(MAX_PAGE))
    }

    fn time(&mut self, name: &'static str) -> Result<Option<DateTime<Utc>>, Refusal> {
        self.text(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        Refusal::Malformed(format!(
                            "`{name}` must be an RFC 3339 time ({e}): `{v}`"
                        ))
                    })
            })
            .transpose()
    }

    /// Refuses the parameters no one took.
    fn done(self) -> Result<(), Refusal> {
        match self
            .params
            .keys()
            .find(|k| !self.taken.contains(k.as_str()))
        {
            Some(unknown) => Err(Refusal::Malformed(format!(
                "unknown parameter `{unknown}` (known: {})",
                self.taken.iter().copied().collect::<Vec<_>>().join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// Answers `/api/<endpoint>`.
pub fn answer(log: &EventLog, endpoint: &str, params: &BTreeMap<String, String>) -> Reply {
    let mut params = Params::new(params);
    let answer = match endpoint {
        "status" => status(log),
        "types" => types(log),
        "aggregates" => aggregates(log, &mut params),
        "stream" => stream(log, &mut params),
        "state" => state(log, &mut params),
        "log" => read_log(log, &mut params),
        "trace" => trace(log, &mut params),
        other => Err(Refusal::NotFound(format!("no endpoint /api/{other}"))),
    }
    .and_then(|value| params.done().map(|()| value));
    match answer {
        Ok(value) => Reply::json(200, &value),
        Err(Refusal::Malformed(reason)) => Reply::error(400, reason),
        Err(Refusal::NotFound(reason)) => Reply::error(404, reason),
        Err(Refusal::Failed(reason)) => Reply::error(500, reason),
    }
}

/// `/api/status`: positions and the store's mode.
fn status(log: &EventLog) -> Answer {
    let metrics = log.admin().metrics()?;
    let store = &metrics.store;
    Ok(json!({
        "last_position": store.last_position,
        "durable_position": store.durable_position,
        "events": store.total_events_stored,
        "aggregates": store.aggregates,
        "durability": store.durability,
        "failure": store.failure,
    }))
}

/// `/api/types`: the aggregate types with their aggregate and event counts.
fn types(log: &EventLog) -> Answer {
    let mut per_type: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for aggregate in log.aggregates(None)? {
        let entry = per_type.entry(aggregate.aggregate_type).or_default();
        entry.0 += 1;
        entry.1 += aggregate.version;
    }
    let types: Vec<Value> = per_type
        .into_iter()
        .map(|(aggregate_type, (aggregates, events))| {
            json!({"aggregate_type": aggregate_type, "aggregates": aggregates, "events": events})
        })
        .collect();
    Ok(json!({ "types": types, "last_position": log.last_position()?.get() }))
}

/// `/api/aggregates?type=T&q=TEXT&offset=N&limit=N`: aggregates whose id contains `q`, by id.
fn aggregates(log: &EventLog, params: &mut Params<'_>) -> Answer {
    let aggregate_type = params.text("type");
    let needle = params.text("q").unwrap_or_default();
    let offset = usize::try_from(params.number("offset")?.unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = params.limit()?;
    // Sorted by type and id already (`EventLog::aggregates`).
    let found: Vec<_> = log
        .aggregates(aggregate_type)?
        .into_iter()
        .filter(|a| a.aggregate_id.contains(needle))
        .collect();
    let total = found.len();
    let page: Vec<Value> = found
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|a| json!({"aggregate_type": a.aggregate_type, "aggregate_id": a.aggregate_id, "version": a.version}))
        .collect();
    Ok(json!({ "aggregates": page, "total": total, "offset": offset, "limit": limit }))
}

/// `/api/stream?type=T&id=ID&from=V&limit=N`: one aggregate's events from version `from`.
fn stream(log: &EventLog, params: &mut Params<'_>) -> Answer {
    let stream = StreamId::new(params.required("type")?, params.required("id")?);
    let from = params.number("from")?.unwrap_or(1).max(1);
    let limit = params.limit()?;
    let version = log.stream_version(&stream)?;
    if version == Version::NONE {
        return Err(Refusal::NotFound(format!("no aggregate {stream}")));
    }
    let events = events_json(
        log,
        log.read_stream(&stream, StreamRead::forwards().from(from).limit(limit))?,
    )?;
    Ok(json!({
        "aggregate_type": stream.aggregate_type(),
        "aggregate_id": stream.aggregate_id(),
        "version": version.get(),
        "from": from,
        "events": events,
    }))
}

/// `/api/state?type=T&id=ID&at=V`: the folded state of an Omni Writer aggregate.
fn state(log: &EventLog, params: &mut Params<'_>) -> Answer {
    struct LoadState<'a> {
        log: &'a EventLog,
        id: &'a str,
        at: Option<u64>,
    }
    impl WithAggregate for LoadState<'_> {
        type Output = Answer;
        fn run<A: Aggregate>(self) -> Answer {
            let current = self
                .log
                .stream_version(&StreamId::new(A::AGGREGATE_TYPE, self.id))?;
            if current == Version::NONE {
                return Err(Refusal::NotFound(format!(
                    "no aggregate {}/{}",
                    A::AGGREGATE_TYPE,
                    self.id
                )));
            }
            let loaded: Loaded<A> = match self.at {
                Some(at) if current < at => {
                    return Err(Refusal::NotFound(format!(
                        "{}/{} is at version {current}, not {at}",
                        A::AGGREGATE_TYPE,
                        self.id
                    )));
                }
                Some(at) => self.log.load_at(self.id, Version(at))?,
                None => self.log.load(self.id)?,
            };
            Ok(serde_json::to_value(&loaded)?)
        }
    }
    let aggregate_type = params.required("type")?;
    let id = params.required("id")?;
    let at = params.number("at")?;
    if at == Some(0) {
        return Err(Refusal::Malformed("`at` must be at least 1".into()));
    }
    with_aggregate(aggregate_type, LoadState { log, id, at }).unwrap_or_else(|| {
        Err(Refusal::NotFound(format!(
            "no Omni Writer aggregate for type `{aggregate_type}`"
        )))
    })
}

/// `/api/log?from=P&limit=N&event_type=E&aggregate_type=T&since=TIME&until=TIME`: the global
/// log from `from` (default: the newest page), filtered, at most `limit` events; `next` is
/// where to continue (null at the end). A filtered read looks at most [`MAX_SCAN`] events.
fn read_log(log: &EventLog, params: &mut Params<'_>) -> Answer {
    let limit = params.limit()?;
    let from = params.number("from")?;
    let event_type = params.text("event_type");
    let aggregate_type = params.text("aggregate_type");
    let since = params.time("since")?;
    let until = params.time("until")?;
    let last = log.last_position()?.get();
    let from = from
        .unwrap_or_else(|| last.saturating_sub(limit as u64 - 1))
        .max(1);
    let (since, until) = (
        since.map(|t| t.timestamp_micros()),
        until.map(|t| t.timestamp_micros()),
    );
    // Filtered on the borrowed events of a scan: only those kept are copied out.
    let keep = |e: &EventRef<'_>| {
        event_type.is_none_or(|t| e.event_type == t)
            && aggregate_type.is_none_or(|t| e.aggregate_type == t)
            && since.is_none_or(|t| e.timestamp_micros >= t)
            && until.is_none_or(|t| e.timestamp_micros <= t)
    };
    let mut events = Vec::new();
    let mut next = None;
    let scanned = log.scan_log(Position(from), Some(MAX_SCAN), |event| {
        if !keep(&event) {
            return ControlFlow::Continue(());
        }
        if events.len() == limit {
            next = Some(event.position);
            return ControlFlow::Break(());
        }
        events.push(event.to_owned());
        ControlFlow::Continue(())
    })?;
    if next.is_none() && from + scanned <= last {
        next = Some(from + scanned);
    }
    Ok(json!({
        "from": from,
        "next": next,
        "scanned": scanned,
        "last_position": last,
        "events": events.iter().map(|e| log.registry().event_to_json_lossy(e)).collect::<Vec<_>>(),
    }))
}

/// `/api/trace?id=ID&max=N`: a trace or correlation id as a causation tree. A pipeline id scans
/// only the pipeline's span of the log.
fn trace(log: &EventLog, params: &mut Params<'_>) -> Answer {
    let id = params.required("id")?;
    let max = params.number("max")?.map_or(MAX_TRACE, |m| {
        usize::try_from(m).unwrap_or(MAX_TRACE).clamp(1, MAX_TRACE)
    });
    let mut query = TraceQuery::new(id).max_events(max);
    let pipeline = log.read_stream(&StreamId::new(PIPELINE, id), StreamRead::forwards())?;
    if let Some((from, to)) = pipeline_span(pipeline)? {
        query = query.from(Position(from));
        if let Some(to) = to {
            query = query.to(Position(to));
        }
    }
    let trace = log.trace(&query)?;
    if trace.events().is_empty() {
        return Err(Refusal::NotFound(format!(
            "no event has trace id or correlation id `{id}`"
        )));
    }
    Ok(trace.to_json(log.registry()))
}

/// Events as the JSON the inspector shows (payload decoded through the registry).
fn events_json<E: Into<Refusal>>(
    log: &EventLog,
    events: impl Iterator<Item = Result<RecordedEvent, E>>,
) -> Result<Vec<Value>, Refusal> {
    events
        .map(|e| Ok(log.registry().event_to_json_lossy(&e.map_err(Into::into)?)))
        .collect()
}
