//! `verify()`: checks the whole store against itself and reports every problem with its place.
//!
//! 1. The log: records decode, positions run from 1 without a gap, each record carries its
//!    predecessor's hash (the hash chain), and every aggregate's versions run 1, 2, 3, ... in log
//!    order.
//! 2. The stream index: every page decodes, its runs point at events of its stream with the
//!    versions the page says, and the pages cover every version the watermark covers.
//! 3. The aggregate-type index: every page's positions hold events of its type, and the pages
//!    cover every event of the type up to the watermark.
//! 4. Snapshots decode and do not claim a version their aggregate has not reached.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::error::{ReadError, StoreError};
use crate::index::{page_last_position, page_last_version, show_key};
use crate::keys::{
    StreamKey, TAG_STREAM, TAG_TYPE, parse_stream_page_key, parse_type_page_key, prefix_end,
};
use crate::record::{GENESIS, Hash, Record, decode_page, record_hash};
use crate::snapshot::decode_snapshot;
use crate::state::lock;
use crate::store::Store;

/// Most problems a report lists (the count is exact beyond it).
const MAX_LISTED: usize = 100;

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyIssue {
    /// What kind of problem: `log`, `chain`, `version`, `stream_index`, `type_index`, `snapshot`.
    pub kind: &'static str,
    /// Where: a position, a key.
    pub location: String,
    /// What is wrong.
    pub detail: String,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the store is consistent.
    pub ok: bool,
    /// The last log position checked.
    pub last_position: u64,
    /// The hash of the last record, hex.
    pub chain_head: String,
    /// Log records checked.
    pub records: u64,
    /// Events checked.
    pub events: u64,
    /// Aggregates seen.
    pub aggregates: u64,
    /// Index pages checked.
    pub index_pages: u64,
    /// Snapshots checked.
    pub snapshots: u64,
    /// How many problems were found.
    pub issue_count: u64,
    /// The first problems found (at most 100).
    pub issues: Vec<VerifyIssue>,
}

impl VerifyReport {
    fn issue(
        &mut self,
        kind: &'static str,
        location: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.issue_count += 1;
        if self.issues.len() < MAX_LISTED {
            self.issues.push(VerifyIssue {
                kind,
                location: location.into(),
                detail: detail.into(),
            });
        }
    }
}

/// What the log walk learns of each event, for checking the indexes against it.
struct LoggedEvent {
    stream: u32,
    version: u64,
    aggregate_type: u32,
}

fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The head of the log's hash chain: the hash of the last record, and the position it ends at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    /// The last position the chain covers.
    pub position: u64,
    /// BLAKE3 hash of the last record, hex (all zeros for an empty log).
    pub hash: String,
}

impl Store {
    /// The head of the hash chain over everything acknowledged so far (it waits until that is
    /// written). Recording it elsewhere pins the whole history before it: `verify()` and checkpoint
    /// manifests report the same value.
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] or [`StoreError::Closed`] when the store is not writing;
    /// [`StoreError::Storage`] or [`StoreError::Corrupted`] when the last record cannot be read.
    pub fn chain_head(&self) -> Result<ChainHead, StoreError> {
        let shared = &self.shared;
        let position = shared
            .wait_written()
            .map_err(|reason| StoreError::Failed { reason })?;
        if position == 0 {
            return Ok(ChainHead {
                position,
                hash: hex(&GENESIS),
            });
        }
        let record = shared.record_at(position)?;
        Ok(ChainHead {
            position: record.last_position(),
            hash: hex(&record_hash(record.bytes())),
        })
    }

    /// Checks the hash chain, every aggregate's versions against the log, every index and every
    /// snapshot, and reports exactly what is wrong and where. Appends may continue meanwhile; the
    /// check covers the log as written when it starts.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`] when sled cannot be read. Damage is reported in the
    /// [`VerifyReport`], not as an error.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.verify_with(&mut |_, _| {})
    }

    /// [`Store::verify`] reporting progress: `(position checked, last position)`.
    ///
    /// # Errors
    ///
    /// As [`Store::verify`].
    pub fn verify_with(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport, StoreError> {
        let shared = &self.shared;
        // Cover everything acknowledged before the check began (or what was written, if the
        // store stopped writing).
        let _ = shared.wait_written();
        let (end, watermark) = {
            let state = lock(&shared.state);
            (state.written_upto, state.watermark)
        };
        let mut report = VerifyReport {
            ok: true,
            last_position: 0,
            chain_head: hex(&GENESIS),
            records: 0,
            events: 0,
            aggregates: 0,
            index_pages: 0,
            snapshots: 0,
            issue_count: 0,
            issues: Vec::new(),
        };
        let mut streams: HashMap<StreamKey, (u32, u64)> = HashMap::new();
        let mut types: HashMap<String, u32> = HashMap::new();
        let mut events: Vec<LoggedEvent> = Vec::new();
        let mut chain = GENESIS;
        let mut next_position = 1;
        if end > 0 {
            for frame in shared.segments.reader(1).map_err(ReadError::from)? {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(e) => {
                        report.issue("log", format!("position {next_position}"), e.to_string());
                        break;
                    }
                };
                if frame.first_position > end {
                    break;
                }
                let location = format!("record at position {}", frame.first_position);
                let record = match Record::parse(frame.record) {
                    Ok(record) => record,
                    Err(e) => {
                        report.issue("log", location, e.to_string());
                        break;
                    }
                };
                if record.first_position() != next_position {
                    report.issue(
                        "log",
                        format!("position {next_position}"),
                        format!("gap: the next record starts at {}", record.first_position()),
                    );
                    break;
                }
                if *record.prev_hash() != chain {
                    report.issue(
                        "chain",
                        format!("position {next_position}"),
                        "the record does not carry its predecessor's hash: the log was altered",
                    );
                }
                chain = record_hash(record.bytes());
                if let Err(e) = record.check_all() {
                    report.issue(
                        "log",
                        format!("record at position {next_position}"),
                        e.to_string(),
                    );
                }
                for summary in record.views() {
                    let summary = match summary {
                        Ok(s) => s,
                        Err(e) => {
                            report.issue(
                                "log",
                                format!("record at position {next_position}"),
                                e.to_string(),
                            );
                            break;
                        }
                    };
                    let stream = StreamKey::new(summary.aggregate_type, summary.aggregate_id);
                    let next_id = streams.len() as u32;
                    let (id, head) = streams.entry(stream).or_insert((next_id, 0));
                    if head.checked_add(1) != Some(summary.version) {
                        report.issue(
                            "version",
                            format!("position {}", summary.position),
                            format!(
                                "`{}/{}` version {} follows version {}",
                                summary.aggregate_type, summary.aggregate_id, summary.version, head
                            ),
                        );
                    }
                    *head = summary.version;
                    let next_type = types.len() as u32;
                    let aggregate_type = *types
                        .entry(summary.aggregate_type.to_string())
                        .or_insert(next_type);
                    events.push(LoggedEvent {
                        stream: *id,
                        version: summary.version,
                        aggregate_type,
                    });
                    report.events += 1;
                }
                next_position = record.last_position() + 1;
                report.records += 1;
                progress(record.last_position(), end);
            }
        }
        report.last_position = next_position - 1;
        report.chain_head = hex(&chain);
        report.aggregates = streams.len() as u64;
        let covered = watermark.min(report.last_position);
        self.verify_stream_index(&mut report, &streams, &events, covered)?;
        self.verify_type_index(&mut report, &types, &events, covered)?;
        self.verify_snapshots(&mut report, &streams)?;
        report.ok = report.issue_count == 0;
        tracing::info!(
            name: "event_store_verified",
            ok = report.ok,
            issues = report.issue_count,
            last_position = report.last_position,
            "store verified"
        );
        Ok(report)
    }

    fn verify_stream_index(
        &self,
        report: &mut VerifyReport,
        streams: &HashMap<StreamKey, (u32, u64)>,
        events: &[LoggedEvent],
        covered: u64,
    ) -> Result<(), StoreError> {
        // Versions each stream should have in its pages: those at positions up to `covered`.
        let mut expected: HashMap<u32, u64> = HashMap::new();
        for event in events
            .iter()
            .take(usize::try_from(covered).unwrap_or(usize::MAX))
        {
            expected.insert(event.stream, event.version);
        }
        let mut paged: HashMap<StreamKey, u64> = HashMap::new();
        self.for_each_page(report, TAG_STREAM, "stream_index", parse_stream_page_key, |report, location, (stream, first_version), runs| {
            let reached = paged.entry(stream.clone()).or_insert(0);
            if reached.checked_add(1) != Some(first_version) {
                report.issue(
                    "stream_index",
                    location.clone(),
                    format!("page starts at version {first_version}, after version {reached}"),
                );
            }
            let Some(last_version) = page_last_version(first_version, &runs) else {
                report.issue(
                    "stream_index",
                    location,
                    format!(
                        "versions from {first_version} do not fit the page's positions (up to {})",
                        page_last_position(&runs)
                    ),
                );
                return;
            };
            *reached = last_version;
            let id = streams.get(&stream).map(|(id, _)| *id);
            // Positions past the verified log hold nothing to compare (and a damaged run may
            // claim trillions of them): walk each run only up to the log's last position.
            let limit = report.last_position;
            let mut run_version = first_version;
            for run in &runs {
                for position in run.position..=run.end().saturating_sub(1).min(limit) {
                    let version = run_version.saturating_add(position - run.position);
                    let logged = usize::try_from(position - 1)
                        .ok()
                        .and_then(|i| events.get(i));
                    match (logged, id) {
                        (Some(e), Some(id)) if e.stream == id && e.version == version => {}
                        (Some(e), _) if position <= report.last_position => report.issue(
                            "stream_index",
                            location.clone(),
                            format!(
                                "version {version} points at position {position}, which holds version {} of another or the same aggregate",
                                e.version
                            ),
                        ),
                        _ => {
                            if position <= report.last_position {
                                report.issue(
                                    "stream_index",
                                    location.clone(),
                                    format!("version {version} points at position {position}, which is not in the log"),
                                );
                            }
                        }
                    }
                }
                run_version = run_version.saturating_add(run.count);
            }
        })?;
        for (stream, (id, _)) in streams {
            let want = expected.get(id).copied().unwrap_or(0);
            let have = paged.get(stream).copied().unwrap_or(0);
            if have < want {
                report.issue(
                    "stream_index",
                    stream.label(),
                    format!("pages reach version {have}, the log has version {want} before the watermark"),
                );
            }
        }
        Ok(())
    }

    fn verify_type_index(
        &self,
        report: &mut VerifyReport,
        types: &HashMap<String, u32>,
        events: &[LoggedEvent],
        covered: u64,
    ) -> Result<(), StoreError> {
        let mut expected: HashMap<u32, u64> = HashMap::new();
        for event in events
            .iter()
            .take(usize::try_from(covered).unwrap_or(usize::MAX))
        {
            *expected.entry(event.aggregate_type).or_default() += 1;
        }
        let mut paged: HashMap<String, u64> = HashMap::new();
        self.for_each_page(
            report,
            TAG_TYPE,
            "type_index",
            parse_type_page_key,
            |report, location, (aggregate_type, first), runs| {
                if runs.first().is_some_and(|r| r.position != first) {
                    report.issue(
                        "type_index",
                        location.clone(),
                        "page key and first run disagree",
                    );
                }
                let id = types.get(&aggregate_type).copied();
                for run in &runs {
                    // Only positions up to the watermark are compared (a damaged run may claim
                    // trillions past it).
                    for position in run.position..=run.end().saturating_sub(1).min(covered) {
                        *paged.entry(aggregate_type.clone()).or_default() += 1;
                        let logged = usize::try_from(position - 1)
                            .ok()
                            .and_then(|i| events.get(i));
                        if logged.map(|e| Some(e.aggregate_type)) != Some(id) {
                            report.issue(
                                "type_index",
                                location.clone(),
                                format!(
                                    "position {position} does not hold a `{aggregate_type}` event"
                                ),
                            );
                        }
                    }
                }
            },
        )?;
        for (name, id) in types {
            let want = expected.get(id).copied().unwrap_or(0);
            let have = paged.get(name).copied().unwrap_or(0);
            if have != want {
                report.issue(
                    "type_index",
                    name.clone(),
                    format!("pages list {have} events up to the watermark, the log has {want}"),
                );
            }
        }
        Ok(())
    }

    /// Calls `check` with every index page under `tag` that decodes (its location, parsed key and
    /// runs); pages whose key or value does not decode are reported as `kind` issues.
    fn for_each_page<K>(
        &self,
        report: &mut VerifyReport,
        tag: u8,
        kind: &'static str,
        parse_key: impl Fn(&[u8]) -> Result<K, crate::varint::Malformed>,
        mut check: impl FnMut(&mut VerifyReport, String, K, Vec<crate::record::Run>),
    ) -> Result<(), StoreError> {
        let start = [tag];
        for entry in self.shared.log.range(start.to_vec()..prefix_end(&start)) {
            let (key, value) = entry?;
            report.index_pages += 1;
            let location = show_key(&key);
            match (parse_key(&key), decode_page(&value)) {
                (Ok(parsed), Ok(runs)) => {
                    // Pages only cover written positions; the end is read after the page.
                    let log_end = self.shared.written_upto.load(Ordering::Acquire);
                    let last = page_last_position(&runs);
                    if last > log_end {
                        report.issue(
                            kind,
                            location.clone(),
                            format!(
                                "a run reaches position {last}, past the log's end at {log_end}"
                            ),
                        );
                    }
                    check(report, location, parsed, runs);
                }
                (Err(e), _) | (_, Err(e)) => report.issue(kind, location, e.to_string()),
            }
        }
        Ok(())
    }

    fn verify_snapshots(
        &self,
        report: &mut VerifyReport,
        streams: &HashMap<StreamKey, (u32, u64)>,
    ) -> Result<(), StoreError> {
        for entry in self.shared.snapshots.iter() {
            let (key, value) = entry?;
            report.snapshots += 1;
            match decode_snapshot(&key, &value) {
                Ok(snapshot) => {
                    let stream = StreamKey::new(&snapshot.aggregate_type, &snapshot.aggregate_id);
                    let head = streams.get(&stream).map_or(0, |(_, head)| *head);
                    // Snapshots may be newer than the verified part of a live log; only flag those
                    // beyond what the store has acknowledged.
                    let current =
                        self.stream_version(&snapshot.aggregate_type, &snapshot.aggregate_id)?;
                    if snapshot.version > head.max(current) {
                        report.issue(
                            "snapshot",
                            show_key(&key),
                            format!(
                                "snapshot at version {} but the aggregate is at {}",
                                snapshot.version,
                                head.max(current)
                            ),
                        );
                    }
                }
                Err(e) => report.issue("snapshot", show_key(&key), e.to_string()),
            }
        }
        Ok(())
    }
}
