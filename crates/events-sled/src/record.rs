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

use chrono::{DateTime, Utc};
use events_core::{EventMetadata, RecordedEvent};
use rustc_hash::FxHashMap;
use sled::IVec;
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
    bytes: IVec,
    first_position: u64,
    count: u64,
    prev_hash: Hash,
    base_micros: i64,
    /// `(start, len)` of each string in `bytes`.
    strings: Vec<(u32, u32)>,
    /// Byte offset of the first event's length prefix.
    events_start: usize,
}

/// The fields of an event that the indexes need, borrowed from its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventSummary<'a> {
    pub(crate) position: u64,
    pub(crate) event_id: Uuid,
    pub(crate) aggregate_type: &'a str,
    pub(crate) aggregate_id: &'a str,
    pub(crate) version: u64,
}

impl Record {
    /// Parses the header and string table; events are checked as they are read.
    pub(crate) fn parse(bytes: IVec) -> Result<Self, Malformed> {
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
        if string_count > reader.remaining() {
            return Err(Malformed {
                what: "record string count",
                offset: reader.offset(),
            });
        }
        // Strings are checked to be UTF-8 when an event uses them, once per use.
        let mut strings = Vec::with_capacity(string_count);
        for _ in 0..string_count {
            let text = reader.bytes("record string")?;
            let start = reader.offset() - text.len();
            strings.push((start as u32, text.len() as u32));
        }
        let events_start = reader.offset();
        if count == 0 || count > reader.remaining() as u64 || first_position == 0 {
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
            strings,
            events_start,
            bytes,
        })
    }

    pub(crate) fn bytes(&self) -> &IVec {
        &self.bytes
    }

    pub(crate) fn first_position(&self) -> u64 {
        self.first_position
    }

    pub(crate) fn last_position(&self) -> u64 {
        self.first_position + self.count - 1
    }

    pub(crate) fn prev_hash(&self) -> &Hash {
        &self.prev_hash
    }

    pub(crate) fn contains(&self, position: u64) -> bool {
        position >= self.first_position && position <= self.last_position()
    }

    fn string(&self, reader: &mut Reader<'_>) -> Result<&str, Malformed> {
        let offset = reader.offset();
        let ix = reader.varint_usize("string index")?;
        let &(start, len) = self.strings.get(ix).ok_or(Malformed {
            what: "string index",
            offset,
        })?;
        let bytes = &self.bytes[start as usize..(start + len) as usize];
        std::str::from_utf8(bytes).map_err(|_| Malformed {
            what: "string utf-8",
            offset,
        })
    }

    /// The byte range of each event, in order; checks that exactly `count` events fill the record.
    fn event_slices(&self) -> EventSlices<'_> {
        EventSlices {
            reader: Reader::new(&self.bytes[self.events_start..]),
            left: self.count,
            base: self.events_start,
        }
    }

    /// Every event, decoded.
    pub(crate) fn events(&self) -> impl Iterator<Item = Result<RecordedEvent, Malformed>> + '_ {
        (self.first_position..)
            .zip(self.event_slices())
            .map(|(position, slice)| slice.and_then(|(_, bytes)| self.decode(position, bytes)))
    }

    /// The event at `position`, skipping the ones before it without decoding them.
    pub(crate) fn event(&self, position: u64) -> Result<RecordedEvent, Malformed> {
        let skip = position.checked_sub(self.first_position).ok_or(Malformed {
            what: "position outside record",
            offset: 0,
        })?;
        let slice = self
            .event_slices()
            .nth(usize::try_from(skip).unwrap_or(usize::MAX))
            .ok_or(Malformed {
                what: "position outside record",
                offset: 0,
            })??;
        self.decode(position, slice.1)
    }

    /// The index fields of every event, without decoding payloads.
    pub(crate) fn summaries(&self) -> impl Iterator<Item = Result<EventSummary<'_>, Malformed>> {
        (self.first_position..)
            .zip(self.event_slices())
            .map(|(position, slice)| slice.and_then(|(_, bytes)| self.summary(position, bytes)))
    }

    /// Checks that every event decodes and that nothing trails the last one.
    pub(crate) fn check_all(&self) -> Result<(), Malformed> {
        let mut slices = self.event_slices();
        for (position, slice) in (self.first_position..).zip(&mut slices) {
            let (_, bytes) = slice?;
            self.decode(position, bytes)?;
        }
        if slices.reader.is_empty() {
            Ok(())
        } else {
            Err(Malformed {
                what: "bytes after the last event",
                offset: slices.base + slices.reader.offset(),
            })
        }
    }

    fn summary<'s>(&'s self, position: u64, bytes: &[u8]) -> Result<EventSummary<'s>, Malformed> {
        let mut reader = Reader::new(bytes);
        let event_id = Uuid::from_bytes(reader.array("event id")?);
        let flags = reader.u8("event flags")?;
        let _event_type = self.string(&mut reader)?;
        let aggregate_type = self.string(&mut reader)?;
        let aggregate_id = self.string(&mut reader)?;
        let _source = self.string(&mut reader)?;
        for flag in [
            HAS_TRACE,
            HAS_USER,
            HAS_SESSION,
            HAS_CORRELATION,
            HAS_CAUSATION,
        ] {
            if flags & flag != 0 {
                self.string(&mut reader)?;
            }
        }
        let version = reader.varint("event version")?;
        Ok(EventSummary {
            position,
            event_id,
            aggregate_type,
            aggregate_id,
            version,
        })
    }

    fn decode(&self, position: u64, bytes: &[u8]) -> Result<RecordedEvent, Malformed> {
        let mut reader = Reader::new(bytes);
        let event_id = Uuid::from_bytes(reader.array("event id")?);
        let flags = reader.u8("event flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Malformed {
                what: "event flags",
                offset: 16,
            });
        }
        let event_type = self.string(&mut reader)?.to_owned();
        let aggregate_type = self.string(&mut reader)?.to_owned();
        let aggregate_id = self.string(&mut reader)?.to_owned();
        let source = self.string(&mut reader)?.to_owned();
        let optional = |flag: u8, reader: &mut Reader<'_>| -> Result<Option<String>, Malformed> {
            if flags & flag == 0 {
                Ok(None)
            } else {
                self.string(reader).map(|s| Some(s.to_owned()))
            }
        };
        let trace_id = optional(HAS_TRACE, &mut reader)?;
        let user_id = optional(HAS_USER, &mut reader)?;
        let session_id = optional(HAS_SESSION, &mut reader)?;
        let correlation_id = optional(HAS_CORRELATION, &mut reader)?;
        let causation_id = optional(HAS_CAUSATION, &mut reader)?;
        let version = reader.varint("event version")?;
        let offset = reader.offset();
        let delta = reader.zigzag("event timestamp")?;
        let timestamp = self
            .base_micros
            .checked_add(delta)
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .ok_or(Malformed {
                what: "event timestamp",
                offset,
            })?;
        let schema_version = reader.varint_u16("event schema version")?;
        let payload = reader.bytes("event payload")?.to_vec();
        if !reader.is_empty() {
            return Err(Malformed {
                what: "bytes after event payload",
                offset: reader.offset(),
            });
        }
        Ok(RecordedEvent {
            position,
            metadata: EventMetadata {
                event_id,
                event_type,
                aggregate_id,
                aggregate_type,
                version,
                timestamp,
                trace_id,
                user_id,
                session_id,
                source,
                correlation_id,
                causation_id,
                schema_version,
            },
            payload,
        })
    }
}

struct EventSlices<'a> {
    reader: Reader<'a>,
    left: u64,
    base: usize,
}

impl<'a> Iterator for EventSlices<'a> {
    type Item = Result<(usize, &'a [u8]), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let start = self.base + self.reader.offset();
        match self.reader.bytes("event length") {
            Ok(bytes) => Some(Ok((start, bytes))),
            Err(mut e) => {
                self.left = 0;
                e.offset += self.base;
                Some(Err(e))
            }
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
    if count == 0 || count > reader.remaining() {
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
        let record = Record::parse(IVec::from(bytes)).unwrap();
        assert_eq!(record.first_position(), 5);
        assert_eq!(record.last_position(), 7);
        let back: Vec<_> = record.events().map(Result::unwrap).collect();
        assert_eq!(back, events);
        assert_eq!(record.event(6).unwrap(), events[1]);
        assert!(record.event(8).is_err());
        assert!(record.event(4).is_err());
        record.check_all().unwrap();
        let summaries: Vec<_> = record.summaries().map(Result::unwrap).collect();
        assert_eq!(summaries[2].aggregate_id, "a");
        assert_eq!(summaries[2].version, 2);
        assert_eq!(summaries[1].event_id, events[1].metadata.event_id);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_a_different_value() {
        let events = sample();
        let bytes = encode_record(&GENESIS, &events);
        for cut in 0..bytes.len() {
            let parsed = Record::parse(IVec::from(&bytes[..cut]));
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
            if let Ok(record) = Record::parse(IVec::from(flipped)) {
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
