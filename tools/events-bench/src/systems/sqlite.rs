//! The SQLite baseline: a plain event table, written the way a typical developer writes it.
//!
//! One table `events(global_position INTEGER PRIMARY KEY, stream_id, version, event_type,
//! event_id, payload, metadata, UNIQUE(stream_id, version))`, WAL, `synchronous=NORMAL`
//! (`FULL` for the durable workloads), one `BEGIN IMMEDIATE` transaction per append that checks
//! `MAX(version)` against the expected version, cached prepared statements, one connection per
//! writer thread with a busy timeout and a retry on `SQLITE_BUSY`.
//!
//! Snapshots (W-load-snapshot): `snapshots(stream_id TEXT PRIMARY KEY, version, state)`, one row
//! per aggregate (replaced), the state encoded by the events-core codec. A load reads it, then
//! the rows after its version, and turns each row into a `RecordedEvent` (its timestamp is in
//! the JSON metadata column, which is parsed) before folding it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use eventlog::{EventMetadata, EventRegistry, RecordedEvent};
use events_core::codec;
use omni_domain::ArticleGeneration;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{LoadOutcome, Scanned, System, Writer, apply};
use crate::input::{
    AGGREGATE_TYPE, EVENT_TYPE, Input, SCHEMA_VERSION, SOURCE, aggregate_id, stream_id,
};
use crate::workload::Append;

const DB_FILE: &str = "events.db";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
    global_position INTEGER PRIMARY KEY,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE(stream_id, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state BLOB NOT NULL
)";

const COLUMNS: &str =
    "global_position, stream_id, version, event_type, event_id, payload, metadata";

/// The SQLite event table.
#[derive(Debug)]
pub struct Sqlite {
    path: PathBuf,
    durable: bool,
    /// The connection reads go through.
    conn: Connection,
    registry: EventRegistry,
    /// The writer connection all threads share, in the shared-writer variant.
    shared_writer: Option<Arc<Mutex<Connection>>>,
}

/// The environment variable that selects the shared-writer variant: every writer thread appends
/// through one connection behind a `Mutex` instead of its own connection. Not the default (a
/// typical application opens a connection per thread); measured beside it to show what SQLite's
/// busy handler costs with 16 writers (see BENCHMARKS.md).
pub const SHARED_WRITER_ENV: &str = "EVENTS_BENCH_SQLITE_SHARED_WRITER";

/// An append handle: its own connection (or, with `EVENTS_BENCH_SQLITE_SHARED_WRITER=1`, the one
/// writer connection every thread shares behind a mutex).
#[derive(Debug)]
pub struct SqliteWriter {
    conn: Arc<Mutex<Connection>>,
    /// Appends retried after `SQLITE_BUSY`.
    busy_retries: u64,
}

/// The metadata column: what a typical developer keeps next to the payload.
#[derive(Serialize)]
struct Metadata<'a> {
    event_id: &'a str,
    event_type: &'a str,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    timestamp: String,
    schema_version: u16,
    source: &'a str,
}

/// The metadata column read back (what a load needs to rebuild the event).
#[derive(Deserialize)]
struct MetadataIn {
    event_id: String,
    event_type: String,
    aggregate_type: String,
    aggregate_id: String,
    timestamp: String,
    schema_version: u16,
    source: String,
}

impl Row {
    /// The `RecordedEvent` a load folds: the row's metadata column parsed.
    fn into_recorded(self) -> anyhow::Result<RecordedEvent> {
        let m: MetadataIn = serde_json::from_str(&self.metadata)?;
        Ok(RecordedEvent {
            position: u64::try_from(self.global_position)?,
            metadata: EventMetadata {
                event_id: m.event_id.parse()?,
                event_type: m.event_type,
                aggregate_id: m.aggregate_id,
                aggregate_type: m.aggregate_type,
                version: u64::try_from(self.version)?,
                timestamp: chrono::DateTime::parse_from_rfc3339(&m.timestamp)?.to_utc(),
                trace_id: None,
                user_id: None,
                session_id: None,
                source: m.source,
                correlation_id: None,
                causation_id: None,
                schema_version: m.schema_version,
            },
            payload: self.payload,
        })
    }
}

/// A row, materialised into owned values (as the store materialises `RecordedEvent`s).
#[derive(Debug)]
#[allow(dead_code)] // Some fields are read only through `black_box`.
struct Row {
    global_position: i64,
    stream_id: String,
    version: i64,
    event_type: String,
    event_id: String,
    payload: Vec<u8>,
    metadata: String,
}

impl Row {
    fn from_sql(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            global_position: row.get(0)?,
            stream_id: row.get(1)?,
            version: row.get(2)?,
            event_type: row.get(3)?,
            event_id: row.get(4)?,
            payload: row.get(5)?,
            metadata: row.get(6)?,
        })
    }
}

fn connect(path: &Path, durable: bool) -> anyhow::Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("opening SQLite {}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    ensure!(mode.eq_ignore_ascii_case("wal"), "journal mode is {mode}");
    conn.execute_batch(if durable {
        "PRAGMA synchronous=FULL"
    } else {
        "PRAGMA synchronous=NORMAL"
    })?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}

fn is_busy(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl System for Sqlite {
    type Writer = SqliteWriter;

    fn open(dir: &Path, durable: bool) -> anyhow::Result<Self> {
        let path = dir.join(DB_FILE);
        let conn = connect(&path, durable)?;
        conn.execute_batch(SCHEMA)?;
        let shared_writer = if std::env::var_os(SHARED_WRITER_ENV).is_some_and(|v| v == "1") {
            Some(Arc::new(Mutex::new(connect(&path, durable)?)))
        } else {
            None
        };
        Ok(Self {
            path,
            durable,
            conn,
            registry: omni_domain::registry(),
            shared_writer,
        })
    }

    fn writer(&self) -> anyhow::Result<SqliteWriter> {
        Ok(SqliteWriter {
            conn: match &self.shared_writer {
                Some(shared) => Arc::clone(shared),
                None => Arc::new(Mutex::new(connect(&self.path, self.durable)?)),
            },
            busy_retries: 0,
        })
    }

    fn flush(&self) -> anyhow::Result<()> {
        // Every commit is already in the WAL file (and fsynced with synchronous=FULL); a typical
        // application does nothing more.
        Ok(())
    }

    fn close(self) -> anyhow::Result<()> {
        self.conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }

    fn read_stream(&self, aggregate: u32) -> anyhow::Result<u64> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = ?1 ORDER BY version"
        ))?;
        let mut count = 0;
        for row in statement.query_map([stream_id(aggregate)], Row::from_sql)? {
            let row = row?;
            count += 1;
            ensure!(
                row.version == count,
                "gen-{aggregate}: row {count} has version {}",
                row.version
            );
            std::hint::black_box(row);
        }
        Ok(count as u64)
    }

    fn read_all(&self) -> anyhow::Result<u64> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM events ORDER BY global_position"
        ))?;
        let mut count = 0;
        for row in statement.query_map([], Row::from_sql)? {
            std::hint::black_box(row?);
            count += 1;
        }
        Ok(count)
    }

    /// The same columns in one streaming query, each read with `get_ref` (borrowed from
    /// SQLite's row buffer: no `String`/`Vec` per column).
    fn scan_all(&self) -> anyhow::Result<Scanned> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM events ORDER BY global_position"
        ))?;
        let mut rows = statement.query([])?;
        let mut scanned = Scanned::default();
        while let Some(row) = rows.next()? {
            let position = row.get_ref(0)?.as_i64()?;
            scanned.events += 1;
            ensure!(
                position == scanned.events as i64,
                "row {} has position {position}",
                scanned.events
            );
            let payload = row.get_ref(5)?.as_blob()?;
            scanned.payload_bytes += payload.len() as u64;
            let text = |i| -> anyhow::Result<&[u8]> {
                match row.get_ref(i)? {
                    ValueRef::Text(bytes) => Ok(bytes),
                    other => bail!("column {i} is {:?}", other.data_type()),
                }
            };
            std::hint::black_box((
                text(1)?,
                row.get_ref(2)?.as_i64()?,
                text(3)?,
                text(4)?,
                payload,
                text(6)?,
            ));
        }
        Ok(scanned)
    }

    fn load(&self, aggregate: u32) -> anyhow::Result<LoadOutcome> {
        let (state, outcome) = self.fold(aggregate)?;
        std::hint::black_box(&state);
        Ok(outcome)
    }

    fn snapshot(&self, aggregate: u32) -> anyhow::Result<u64> {
        let (state, outcome) = self.fold(aggregate)?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO snapshots (stream_id, version, state) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                stream_id(aggregate),
                outcome.version as i64,
                codec::encode_payload(&state)?
            ])?;
        Ok(outcome.version)
    }
}

impl Sqlite {
    /// The aggregate's state: its snapshot row (if any), then every event row after it.
    fn fold(&self, aggregate: u32) -> anyhow::Result<(ArticleGeneration, LoadOutcome)> {
        let stream = stream_id(aggregate);
        let snapshot: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT version, state FROM snapshots WHERE stream_id = ?1")?
            .query_row([&stream], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (mut state, from_snapshot) = match snapshot {
            Some((version, bytes)) => (
                codec::decode_payload::<ArticleGeneration>(&bytes)?,
                Some(u64::try_from(version)?),
            ),
            None => (ArticleGeneration::default(), None),
        };
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = ?1 AND version > ?2 ORDER BY version"
        ))?;
        let mut version = from_snapshot.unwrap_or(0);
        let mut applied = 0;
        for row in statement.query_map(params![stream, version as i64], Row::from_sql)? {
            let event = row?.into_recorded()?;
            ensure!(
                event.metadata.version == version + 1,
                "gen-{aggregate}: version {} after {version}",
                event.metadata.version
            );
            version = event.metadata.version;
            apply(&mut state, &event, &self.registry)?;
            applied += 1;
        }
        Ok((
            state,
            LoadOutcome {
                version,
                from_snapshot,
                events_applied: applied,
            },
        ))
    }
}

impl SqliteWriter {
    fn try_append(&mut self, input: &Input, append: &Append) -> anyhow::Result<()> {
        let stream = stream_id(append.aggregate);
        let id = aggregate_id(append.aggregate);
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<i64> = tx
            .prepare_cached("SELECT MAX(version) FROM events WHERE stream_id = ?1")?
            .query_row([&stream], |r| r.get(0))
            .optional()?
            .flatten();
        let current = current.unwrap_or(0) as u64;
        if current != append.expected {
            // Dropping the transaction rolls it back.
            bail!(
                "{stream} is at version {current}, the append expected {}",
                append.expected
            );
        }
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (stream_id, version, event_type, event_id, payload, metadata) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (k, i) in (append.first..append.first + append.count).enumerate() {
                let event_id = input.id(i).to_string();
                let metadata = serde_json::to_string(&Metadata {
                    event_id: &event_id,
                    event_type: EVENT_TYPE,
                    aggregate_type: AGGREGATE_TYPE,
                    aggregate_id: &id,
                    timestamp: input
                        .timestamp(i)
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    schema_version: SCHEMA_VERSION,
                    source: SOURCE,
                })?;
                insert.execute(params![
                    stream,
                    (append.expected + k as u64 + 1) as i64,
                    EVENT_TYPE,
                    event_id,
                    input.payload(i),
                    metadata,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl Writer for SqliteWriter {
    fn append(&mut self, input: &Input, append: &Append) -> anyhow::Result<()> {
        loop {
            match self.try_append(input, append) {
                Err(e) if is_busy(&e) && self.busy_retries < 1_000_000 => {
                    self.busy_retries += 1;
                }
                result => return result,
            }
        }
    }
}
