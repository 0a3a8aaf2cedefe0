//! The value layouts of the `log` tree, in one place: log records, index pages and counters.
//!
//! ## Log record (`L` keys)
//!
//! A record holds consecutive events of the global log, written by one group commit:
//!
//! ```text
//! format u8 (= 1) · first_position u64 BE · event_count varint · prev_hash [32]
//! · base_micros zigzag · string_count varint · (len varint · utf-8)*
//! · (event_len varint · event)*
//! event = event_id [16] · flags u8 · event_type ix · aggregate_type ix · aggregate_id ix
//!       · source ix · (trace · user · session · correlation · causation ix, each if flagged)
//!       · version varint · (timestamp − base_micros) zigzag · schema_version varint
//!       · payload_len varint · payload
//! ```
//!
//! Strings repeated within a record (types, ids, sources) are stored once in its string table
//! (`ix` is an index into it). Each event is length-prefixed so one event can be reached without
//! decoding the ones before it. `prev_hash` is the BLAKE3 hash of the previous record's bytes (all
//! zero for the first record): the log is a hash chain, and the hash of the last record is the
//! chain head.
//!
//! ## Index page (`S` and `T` keys)
//!
//! `format u8 (= 1) · run_count varint · (gap varint · count varint)*`: runs of consecutive global
//! positions, each starting `gap` after the end of the previous run (the first run's gap is its
//! position). A stream page covers consecutive versions from the version in its key.
//!
//! ## Counters (`M counters`)
//!
//! `format u8 (= 1)` then varints: events retrieved, checkpoints created, snapshots created, and
//! zigzag microsecond times of the last checkpoint and last snapshot (0 = never), aggregates with
//! at least one event up to the watermark.

use std::borrow::Borrow;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use events_core::{EventMetadata, RecordedEvent};
use rustc_hash::FxHashMap;
use uuid::Uuid;

use crate::varint::{Malformed, Reader, put_bytes, put_i64, put_u64};

pub(crate) const RECORD_FORMAT: u8 = 1;
pub(crate) const PAGE_FORMAT: u8 = 1;
pub(crate) const COUNTERS_FORMAT: u8 = 1;

/// A BLAKE3 hash: of a record, or the head of the chain.
pub(crate) type Hash = [u8; 32];

/// The predecessor hash of the first record.
pub(crate) const GENESIS: Hash = [0; 32];

const HAS_TRACE: u8 = 1;
const HAS_USER: u8 = 2;
const HAS_SESSION: u8 = 4;
const HAS_CORRELATION: u8 = 8;
const HAS_CAUSATION: u8 = 16;
const KNOWN_FLAGS: u8 = 31;

/// The fewest bytes an event takes in a record: its length prefix (1), id (16), flags (1), four
/// string indexes (1 each), version, time and schema version (1 each), payload length (1). Bounds
/// what a record's event count may claim, and so what decoding it reserves.
const MIN_EVENT_BYTES: usize = 26;
/// The range of timestamps chrono can represent, in microseconds since the epoch
/// (`DateTime::<Utc>::MIN_UTC` and `MAX_UTC`): checking an event's timestamp against it is a
/// comparison, where building the `DateTime` is a calendar computation per event.
const MIN_MICROS: i64 = -8_334_601_228_800_000_000;
const MAX_MICROS: i64 = 8_210_266_876_799_999_999;

/// The fewest bytes a run takes in an index page: its gap and its length (1 each).
const MIN_RUN_BYTES: usize = 2;

/// The hash of a record's bytes, which the next record carries as its `prev_hash`.
pub(crate) fn record_hash(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

struct StringTable<'a> {
    index: FxHashMap<&'a str, u32>,
    strings: Vec<&'a str>,
}

impl<'a> StringTable<'a> {
    fn new() -> Self {
        Self {
            index: FxHashMap::default(),
            strings: Vec::new(),
        }
    }

    fn intern(&mut self, text: &'a str) -> u32 {
        let next = self.strings.len() as u32;
        *self.index.entry(text).or_insert_with(|| {
            self.strings.push(text);
            next
        })
    }
}

/// Encodes `events` (consecutive positions, the first at `events[0].position`) as one record.
pub(crate) fn encode_record<E: Borrow<RecordedEvent>>(prev_hash: &Hash, events: &[E]) -> Vec<u8> {
    let first_position = events.first().map_or(0, |e| e.borrow().position);
    let base_micros = events
        .first()
        .map_or(0, |e| e.borrow().metadata.timestamp.timestamp_micros());
    let mut strings = StringTable::new();
    let mut body = Vec::with_capacity(events.len() * 96);
    let mut event_bytes = Vec::with_capacity(256);
    for event in events {
        let event = event.borrow();
        let m = &event.metadata;
        event_bytes.clear();
        event_bytes.extend_from_slice(m.event_id.as_bytes());
        let optional = [
            (HAS_TRACE, &m.trace_id),
            (HAS_USER, &m.user_id),
            (HAS_SESSION, &m.session_id),
            (HAS_CORRELATION, &m.correlation_id),
            (HAS_CAUSATION, &m.causation_id),
        ];
        let flags = optional
            .iter()
            .filter(|(_, value)| value.is_some())
            .fold(0, |acc, (flag, _)| acc | flag);
        event_bytes.push(flags);
        for text in [&m.event_type, &m.aggregate_type, &m.aggregate_id, &m.source] {
            put_u64(&mut event_bytes, u64::from(strings.intern(text)));
        }
        for (_, value) in optional {
            if let Some(text) = value {
                put_u64(&mut event_bytes, u64::from(strings.intern(text)));
            }
        }
        put_u64(&mut event_bytes, m.version);
        put_i64(
            &mut event_bytes,
            m.timestamp.timestamp_micros().wrapping_sub(base_micros),
        );
        put_u64(&mut event_bytes, u64::from(m.schema_version));
        put_bytes(&mut event_bytes, &event.payload);
        put_bytes(&mut body, &event_bytes);
    }
    let table_len: usize = strings.strings.iter().map(|s| s.len() + 2).sum();
    let mut out = Vec::with_capacity(64 + table_len + body.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&first_position.to_be_bytes());
    put_u64(&mut out, events.len() as u64);
    out.extend_from_slice(prev_hash);
    put_i64(&mut out, base_micros);
    put_u64(&mut out, strings.strings.len() as u64);
    for text in &strings.strings {
        put_bytes(&mut out, text.as_bytes());
    }
    out.extend_from_slice(&body);
    out
}

/// A parsed log record: header and string table decoded, events decoded on demand.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    bytes: Bytes,
    first_position: u64,
    count: u64,
    prev_hash: Hash,
    base_micros: i64,
    /// The string table, concatenated and checked to be UTF-8 once, so each use is a slice.
    table: String,
    /// `(start, end)` of each string in `table`.
    ranges: Vec<(u32, u32)>,
    /// Byte offset of the first event's length prefix.
    events_start: usize,
    /// Byte offset of every event's length prefix, built on the first random access.
    offsets: Option<Vec<u32>>,
}

/// An event borrowed from the record (or memory) it lives in: every field of a
/// [`RecordedEvent`] without a single allocation. Read with [`crate::Store::scan_log`]; turn it
/// into an owned event with [`EventRef::to_owned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// Position in the global log.
    pub position: u64,
    /// Unique id of the event.
    pub event_id: Uuid,
    /// The event type's name.
    pub event_type: &'a str,
    /// The aggregate's type.
    pub aggregate_type: &'a str,
    /// The aggregate's id.
    pub aggregate_id: &'a str,
    /// The event's version within its aggregate.
    pub version: u64,
    /// When the event was created, in microseconds since the Unix epoch (UTC).
    pub timestamp_micros: i64,
    /// Distributed trace id.
    pub trace_id: Option<&'a str>,
    /// The user on whose behalf the event happened.
    pub user_id: Option<&'a str>,
    /// The session it happened in.
    pub session_id: Option<&'a str>,
    /// The component that produced the event.
    pub source: &'a str,
    /// Groups every event of one business operation.
    pub correlation_id: Option<&'a str>,
    /// The id of the event or command that caused this one.
    pub causation_id: Option<&'a str>,
    /// The schema version of the payload.
    pub schema_version: u16,
    /// The encoded payload.
    pub payload: &'a [u8],
}

impl<'a> EventRef<'a> {
    /// The timestamp as a UTC time, when it is in chrono's range (it always is for events the
    /// store wrote).
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        DateTime::<Utc>::from_timestamp_micros(self.timestamp_micros)
    }

    /// The owned event. An out-of-range timestamp (never written by the store) becomes the epoch.
    pub fn to_owned(&self) -> RecordedEvent {
        let own = |s: Option<&str>| s.map(str::to_owned);
        RecordedEvent {
            position: self.position,
            metadata: EventMetadata {
                event_id: self.event_id,
                event_type: self.event_type.to_owned(),
                aggregate_id: self.aggregate_id.to_owned(),
                aggregate_type: self.aggregate_type.to_owned(),
                version: self.version,
                timestamp: self.timestamp().unwrap_or_default(),
                trace_id: own(self.trace_id),
                user_id: own(self.user_id),
                session_id: own(self.session_id),
                source: self.source.to_owned(),
                correlation_id: own(self.correlation_id),
                causation_id: own(self.causation_id),
                schema_version: self.schema_version,
            },
            payload: self.payload.to_vec(),
        }
    }
}

impl<'a> From<&'a RecordedEvent> for EventRef<'a> {
    fn from(event: &'a RecordedEvent) -> Self {
        let m = &event.metadata;
        Self {
            position: event.position,
            event_id: m.event_id,
            event_type: &m.event_type,
            aggregate_type: &m.aggregate_type,
            aggregate_id: &m.aggregate_id,
            version: m.version,
            timestamp_micros: m.timestamp.timestamp_micros(),
            trace_id: m.trace_id.as_deref(),
            user_id: m.user_id.as_deref(),
            session_id: m.session_id.as_deref(),
            source: &m.source,
            correlation_id: m.correlation_id.as_deref(),
            causation_id: m.causation_id.as_deref(),
            schema_version: m.schema_version,
            payload: &event.payload,
        }
    }
}

impl Record {
    /// Parses the header and string table; events are checked as they are read.
    pub(crate) fn parse(bytes: Bytes) -> Result<Self, Malformed> {
        let mut reader = Reader::new(&bytes);
        let format = reader.u8("record format")?;
        if format != RECORD_FORMAT {
            return Err(Malformed {
                what: "record format",
                offset: 0,
            });
        }
        let first_position = reader.u64_be("record first position")?;
        let count = reader.varint("record event count")?;
        let prev_hash = reader.array::<32>("record prev hash")?;
        let base_micros = reader.zigzag("record base time")?;
        let string_count = reader.varint_usize("record string count")?;
        // Each string takes at least its length byte.
        if string_count > reader.remaining() {
            return Err(Malformed {
                what: "record string count",
                offset: reader.offset(),
            });
        }
        let table_start = reader.offset();
        // Untrusted counts reserve only what the bytes left can hold: the strings' text is at
        // most the bytes after their length prefixes (a crafted record must not ask for more
        // memory than it brings).
        let mut table = Vec::with_capacity(
            string_count
                .saturating_mul(16)
                .min(reader.remaining() - string_count),
        );
        let mut ranges = Vec::with_capacity(string_count);
        for _ in 0..string_count {
            let text = reader.bytes("record string")?;
            let start = table.len() as u32;
            table.extend_from_slice(text);
            ranges.push((start, table.len() as u32));
        }
        // Each string must be UTF-8 on its own: checking the concatenation and every boundary
        // is the same as checking each.
        let table = String::from_utf8(table).map_err(|_| Malformed {
            what: "record string utf-8",
            offset: table_start,
        })?;
        if ranges
            .iter()
            .any(|&(start, _)| !table.is_char_boundary(start as usize))
        {
            return Err(Malformed {
                what: "record string utf-8",
                offset: table_start,
            });
        }
        let events_start = reader.offset();
        if count == 0
            || count > (reader.remaining() / MIN_EVENT_BYTES) as u64
            || first_position == 0
            // The position after the last must fit too: readers step to it.
            || first_position.checked_add(count).is_none()
        {
            return Err(Malformed {
                what: "record event count",
                offset: events_start,
            });
        }
        Ok(Self {
            first_position,
            count,
            prev_hash,
            base_micros,
            table,
            ranges,
            events_start,
            offsets: None,
            bytes,
        })
    }

    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub(crate) fn first_position(&self) -> u64 {
        self.first_position
    }

    pub(crate) fn last_position(&self) -> u64 {
        // `parse` checked that `first_position + count` fits.
        self.first_position + (self.count - 1)
    }

    pub(crate) fn prev_hash(&self) -> &Hash {
        &self.prev_hash
    }

    pub(crate) fn contains(&self, position: u64) -> bool {
        position >= self.first_position && position <= self.last_position()
    }

    /// The byte offset of the first event (pass it to [`Record::view`]).
    pub(crate) fn start(&self) -> usize {
        self.events_start
    }

    fn string(&self, reader: &mut Reader<'_>, base: usize) -> Result<&str, Malformed> {
        let offset = base + reader.offset();
        let ix = reader.varint_usize("string index")?;
        self.ranges
            .get(ix)
            .and_then(|&(start, end)| self.table.get(start as usize..end as usize))
            .ok_or(Malformed {
                what: "string index",
                offset,
            })
    }

    /// The event whose length prefix is at `offset`, with the offset of the next event.
    pub(crate) fn view(
        &self,
        position: u64,
        offset: usize,
    ) -> Result<(EventRef<'_>, usize), Malformed> {
        let mut outer = Reader::new(self.bytes.get(offset..).unwrap_or_default());
        let body = outer.bytes("event length").map_err(|mut e| {
            e.offset += offset;
            e
        })?;
        let next = offset + outer.offset();
        let base = next - body.len();
        let mut reader = Reader::new(body);
        let event_id = Uuid::from_bytes(reader.array("event id")?);
        let flags = reader.u8("event flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Malformed {
                what: "event flags",
                offset: base + 16,
            });
        }
        let event_type = self.string(&mut reader, base)?;
        let aggregate_type = self.string(&mut reader, base)?;
        let aggregate_id = self.string(&mut reader, base)?;
        let source = self.string(&mut reader, base)?;
        let mut optional = [None; 5];
        for (slot, flag) in optional.iter_mut().zip([
            HAS_TRACE,
            HAS_USER,
            HAS_SESSION,
            HAS_CORRELATION,
            HAS_CAUSATION,
        ]) {
            if flags & flag != 0 {
                *slot = Some(self.string(&mut reader, base)?);
            }
        }
        let version = reader.varint("event version")?;
        let at = base + reader.offset();
        let timestamp_micros = self
            .base_micros
            .checked_add(reader.zigzag("event timestamp")?)
            .filter(|micros| (MIN_MICROS..=MAX_MICROS).contains(micros))
            .ok_or(Malformed {
                what: "event timestamp",
                offset: at,
            })?;
        let schema_version = reader.varint_u16("event schema version")?;
        let payload = reader.bytes("event payload")?;
        if !reader.is_empty() {
            return Err(Malformed {
                what: "bytes after event payload",
                offset: base + reader.offset(),
            });
        }
        let [trace_id, user_id, session_id, correlation_id, causation_id] = optional;
        Ok((
            EventRef {
                position,
                event_id,
                event_type,
                aggregate_type,
                aggregate_id,
                version,
                timestamp_micros,
                trace_id,
                user_id,
                session_id,
                source,
                correlation_id,
                causation_id,
                schema_version,
                payload,
            },
            next,
        ))
    }

    /// Every event, borrowed, in order.
    pub(crate) fn views(&self) -> impl Iterator<Item = Result<EventRef<'_>, Malformed>> + '_ {
        let mut offset = self.events_start;
        let mut failed = false;
        (self.first_position..=self.last_position()).map_while(move |position| {
            if failed {
                return None;
            }
            match self.view(position, offset) {
                Ok((event, next)) => {
                    offset = next;
                    Some(Ok(event))
                }
                Err(e) => {
                    failed = true;
                    Some(Err(e))
                }
            }
        })
    }

    /// Every event, owned.
    #[cfg(test)]
    pub(crate) fn events(&self) -> impl Iterator<Item = Result<RecordedEvent, Malformed>> + '_ {
        self.views().map(|view| view.map(|v| v.to_owned()))
    }

    /// The event at `position`: the first call builds a table of every event's offset, so
    /// reading a record's events in any order costs one pass over it.
    pub(crate) fn event(&mut self, position: u64) -> Result<RecordedEvent, Malformed> {
        let outside = Malformed {
            what: "position outside record",
            offset: 0,
        };
        let index = position
            .checked_sub(self.first_position)
            .ok_or(outside.clone())?;
        if self.offsets.is_none() {
            // `parse` checked that the bytes hold `count` events of at least MIN_EVENT_BYTES.
            let mut offsets = Vec::with_capacity(usize::try_from(self.count).unwrap_or(0));
            let mut reader = Reader::new(self.bytes.get(self.events_start..).unwrap_or_default());
            for _ in 0..self.count {
                offsets.push((self.events_start + reader.offset()) as u32);
                reader.bytes("event length")?;
            }
            self.offsets = Some(offsets);
        }
        let offset = self
            .offsets
            .as_ref()
            .and_then(|o| o.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(outside)?;
        self.view(position, offset as usize)
            .map(|(event, _)| event.to_owned())
    }

    /// Checks that every event decodes and that nothing trails the last one.
    pub(crate) fn check_all(&self) -> Result<(), Malformed> {
        self.check_all_visiting(|_| {})
    }

    /// [`Record::check_all`], showing `visit` each event as it is checked.
    pub(crate) fn check_all_visiting(
        &self,
        mut visit: impl FnMut(&EventRef<'_>),
    ) -> Result<(), Malformed> {
        let mut offset = self.events_start;
        for position in self.first_position..=self.last_position() {
            let (event, next) = self.view(position, offset)?;
            visit(&event);
            offset = next;
        }
        if offset == self.bytes.len() {
            Ok(())
        } else {
            Err(Malformed {
                what: "bytes after the last event",
                offset,
            })
        }
    }
}

/// A run of consecutive global positions in an index page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) position: u64,
    pub(crate) count: u64,
}

impl Run {
    pub(crate) fn end(&self) -> u64 {
        self.position + self.count
    }
}

/// Encodes the runs of an index page. Runs must be in increasing, non-overlapping order.
pub(crate) fn encode_page(runs: &[Run]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + runs.len() * 4);
    out.push(PAGE_FORMAT);
    put_u64(&mut out, runs.len() as u64);
    let mut end = 0;
    for run in runs {
        put_u64(&mut out, run.position - end);
        put_u64(&mut out, run.count);
        end = run.end();
    }
    out
}

/// Decodes an index page, checking that runs are non-empty, ordered and within u64.
pub(crate) fn decode_page(bytes: &[u8]) -> Result<Vec<Run>, Malformed> {
    let mut reader = Reader::new(bytes);
    if reader.u8("page format")? != PAGE_FORMAT {
        return Err(Malformed {
            what: "page format",
            offset: 0,
        });
    }
    let count = reader.varint_usize("page run count")?;
    if count == 0 || count > reader.remaining() / MIN_RUN_BYTES {
        return Err(Malformed {
            what: "page run count",
            offset: reader.offset(),
        });
    }
    let mut runs = Vec::with_capacity(count);
    let mut end: u64 = 0;
    for _ in 0..count {
        let offset = reader.offset();
        let gap = reader.varint("page run gap")?;
        let len = reader.varint("page run length")?;
        let position = end.checked_add(gap);
        match position.and_then(|p| p.checked_add(len).map(|e| (p, e))) {
            Some((position, run_end)) if len > 0 && position > 0 => {
                runs.push(Run {
                    position,
                    count: len,
                });
                end = run_end;
            }
            _ => {
                return Err(Malformed {
                    what: "page run",
                    offset,
                });
            }
        }
    }
    if !reader.is_empty() {
        return Err(Malformed {
            what: "bytes after the last run",
            offset: reader.offset(),
        });
    }
    Ok(runs)
}

/// The value of `M synced`: the last position a flush synced in the segment files and the chain
/// hash of the record ending there (`u64 BE · [32]`).
pub(crate) fn encode_synced(position: u64, hash: &Hash) -> [u8; 40] {
    let mut out = [0; 40];
    out[..8].copy_from_slice(&position.to_be_bytes());
    out[8..].copy_from_slice(hash);
    out
}

/// Decodes [`encode_synced`]'s value.
pub(crate) fn decode_synced(bytes: &[u8]) -> Result<(u64, Hash), Malformed> {
    let mut reader = Reader::new(bytes);
    let position = reader.u64_be("synced position")?;
    let hash = reader.array::<32>("synced hash")?;
    if reader.remaining() != 0 {
        return Err(Malformed {
            what: "synced value length",
            offset: reader.offset(),
        });
    }
    Ok((position, hash))
}

/// Counters that survive a restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PersistedCounters {
    pub(crate) events_retrieved: u64,
    pub(crate) checkpoints_created: u64,
    pub(crate) snapshots_created: u64,
    pub(crate) last_checkpoint_micros: i64,
    pub(crate) last_snapshot_micros: i64,
    /// Aggregates with at least one event, up to the watermark.
    pub(crate) aggregates: u64,
}

pub(crate) fn encode_counters(c: &PersistedCounters) -> Vec<u8> {
    let mut out = vec![COUNTERS_FORMAT];
    put_u64(&mut out, c.events_retrieved);
    put_u64(&mut out, c.checkpoints_created);
    put_u64(&mut out, c.snapshots_created);
    put_i64(&mut out, c.last_checkpoint_micros);
    put_i64(&mut out, c.last_snapshot_micros);
    put_u64(&mut out, c.aggregates);
    out
}

pub(crate) fn decode_counters(bytes: &[u8]) -> Result<PersistedCounters, Malformed> {
    let mut reader = Reader::new(bytes);
    if reader.u8("counters format")? != COUNTERS_FORMAT {
        return Err(Malformed {
            what: "counters format",
            offset: 0,
        });
    }
    Ok(PersistedCounters {
        events_retrieved: reader.varint("events retrieved")?,
        checkpoints_created: reader.varint("checkpoints created")?,
        snapshots_created: reader.varint("snapshots created")?,
        last_checkpoint_micros: reader.zigzag("last checkpoint")?,
        last_snapshot_micros: reader.zigzag("last snapshot")?,
        aggregates: reader.varint("aggregates")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_core::{EventContext, NewEvent};

    #[test]
    fn the_timestamp_range_is_chronos() {
        assert_eq!(MIN_MICROS, DateTime::<Utc>::MIN_UTC.timestamp_micros());
        assert_eq!(MAX_MICROS, DateTime::<Utc>::MAX_UTC.timestamp_micros());
        for micros in [MIN_MICROS, MIN_MICROS + 1, 0, MAX_MICROS - 1, MAX_MICROS] {
            assert!(
                DateTime::<Utc>::from_timestamp_micros(micros).is_some(),
                "{micros}"
            );
        }
        for micros in [i64::MIN, MIN_MICROS - 1, MAX_MICROS + 1, i64::MAX] {
            assert!(
                DateTime::<Utc>::from_timestamp_micros(micros).is_none(),
                "{micros}"
            );
        }
    }

    fn event(position: u64, id: &str, version: u64, with_ids: bool) -> RecordedEvent {
        let mut context = EventContext::new("test");
        if with_ids {
            context = context
                .with_trace_id("trace")
                .with_causation_id("cause")
                .with_user_id("u");
        }
        NewEvent::from_parts("thing_done", "thing", id, 1, vec![7; 40], context)
            .into_recorded(version, position)
    }

    fn sample() -> Vec<RecordedEvent> {
        vec![
            event(5, "a", 1, true),
            event(6, "b", 1, false),
            event(7, "a", 2, true),
        ]
    }

    #[test]
    fn records_round_trip() {
        let events = sample();
        let bytes = encode_record(&GENESIS, &events);
        let mut record = Record::parse(Bytes::from(bytes)).unwrap();
        assert_eq!(record.first_position(), 5);
        assert_eq!(record.last_position(), 7);
        let back: Vec<_> = record.events().map(Result::unwrap).collect();
        assert_eq!(back, events);
        assert_eq!(record.event(6).unwrap(), events[1]);
        assert!(record.event(8).is_err());
        assert!(record.event(4).is_err());
        record.check_all().unwrap();
        let summaries: Vec<_> = record.views().map(Result::unwrap).collect();
        assert_eq!(summaries[2].aggregate_id, "a");
        assert_eq!(summaries[2].version, 2);
        assert_eq!(summaries[1].event_id, events[1].metadata.event_id);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_a_different_value() {
        let events = sample();
        let bytes = encode_record(&GENESIS, &events);
        for cut in 0..bytes.len() {
            let parsed = Record::parse(Bytes::copy_from_slice(&bytes[..cut]));
            if let Ok(record) = parsed {
                assert!(
                    record.check_all().is_err(),
                    "truncation at {cut} went unnoticed"
                );
            }
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(record) = Record::parse(Bytes::from(flipped)) {
                let _ = record.check_all();
                let _ = record.events().count();
            }
        }
    }

    #[test]
    fn pages_round_trip_and_reject_damage() {
        let runs = vec![
            Run {
                position: 3,
                count: 2,
            },
            Run {
                position: 9,
                count: 100,
            },
            Run {
                position: 109,
                count: 1,
            },
        ];
        let bytes = encode_page(&runs);
        assert_eq!(decode_page(&bytes).unwrap(), runs);
        for cut in 0..bytes.len() {
            assert!(decode_page(&bytes[..cut]).is_err());
        }
        assert!(decode_page(&[PAGE_FORMAT, 1, 0, 0]).is_err(), "empty run");
    }

    /// A record header: first position 1, `count` events, genesis predecessor, base time 0.
    fn crafted_header(count: u64, string_count: u64) -> Vec<u8> {
        let mut bytes = vec![RECORD_FORMAT];
        bytes.extend_from_slice(&1_u64.to_be_bytes());
        put_u64(&mut bytes, count);
        bytes.extend_from_slice(&GENESIS);
        put_i64(&mut bytes, 0);
        put_u64(&mut bytes, string_count);
        bytes
    }

    #[test]
    fn a_string_table_reserves_no_more_than_its_bytes_hold() {
        // 4096 empty strings (one length byte each) and room for one event: the count is
        // within the bytes left, but the strings hold no text at all.
        let strings = 4096;
        let mut bytes = crafted_header(1, strings);
        bytes.extend(std::iter::repeat_n(0_u8, strings as usize));
        bytes.extend_from_slice(&[0; 64]);
        let record = Record::parse(Bytes::copy_from_slice(bytes.as_slice())).unwrap();
        assert!(
            record.table.capacity() <= bytes.len(),
            "the string table reserved {} bytes for a {}-byte record",
            record.table.capacity(),
            bytes.len()
        );
        assert!(
            record.ranges.capacity() <= bytes.len(),
            "{} string ranges reserved for a {}-byte record",
            record.ranges.capacity(),
            bytes.len()
        );
    }

    #[test]
    fn a_record_whose_events_cannot_fit_its_bytes_is_refused() {
        // 100 events in 100 bytes: an event takes at least 26 bytes (below).
        let mut bytes = crafted_header(100, 0);
        bytes.extend_from_slice(&[0; 100]);
        let error = Record::parse(Bytes::from(bytes)).unwrap_err();
        assert_eq!(error.what, "record event count");
        // The smallest event the encoder writes: empty strings' indexes, version 1, no payload.
        let smallest = NewEvent::from_parts("t", "a", "i", 1, Vec::new(), EventContext::new("s"))
            .into_recorded(1, 1);
        let encoded = encode_record(&GENESIS, &[smallest]);
        let record = Record::parse(Bytes::copy_from_slice(encoded.as_slice())).unwrap();
        assert_eq!(encoded.len() - record.start(), 26);
    }

    #[test]
    fn a_page_whose_runs_cannot_fit_its_bytes_is_refused_by_its_count() {
        // Four runs claimed, bytes for two: refused before anything is reserved for them.
        let error = decode_page(&[PAGE_FORMAT, 4, 1, 1, 1, 1]).unwrap_err();
        assert_eq!(error.what, "page run count");
    }

    #[test]
    fn counters_round_trip() {
        let c = PersistedCounters {
            events_retrieved: 9,
            checkpoints_created: 2,
            snapshots_created: 3,
            last_checkpoint_micros: 1_700_000_000_000_000,
            last_snapshot_micros: 0,
            aggregates: 12,
        };
        assert_eq!(decode_counters(&encode_counters(&c)).unwrap(), c);
    }
}
