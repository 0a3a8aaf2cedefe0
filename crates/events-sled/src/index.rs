//! The indexes: the stream index (aggregate → versions → positions) and the aggregate-type index
//! (type → positions).
//!
//! Both live in two places. Recent entries are runs in memory (the memtable, guarded by the
//! store's state lock); every `index_flush_events` they are persisted as pages keyed by stream and
//! first version (`S`) or by type and first position (`T`), in the same atomic batch as the
//! watermark that says how far the pages reach. Runs leave memory only after their pages are
//! applied, so a reader that copies the memtable first and reads pages second never misses an entry.
//! A crash loses only the memtable, which an open rebuilds from the log after the watermark.

use std::collections::HashMap;

use sled::{Batch, Tree};
use uuid::Uuid;

use crate::keys::{
    StreamKey, parse_stream_page_key, parse_type_page_key, stream_page_key, stream_prefix,
    type_page_key, type_prefix,
};
use crate::record::{Run, decode_page, encode_page};
use crate::varint::Malformed;

/// Most runs in one persisted page (a page of single-event runs is about 3 KiB).
pub(crate) const MAX_RUNS_PER_PAGE: usize = 1024;

/// A run of a stream: consecutive versions from `first_version` at consecutive positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamRun {
    pub(crate) first_version: u64,
    pub(crate) run: Run,
}

impl StreamRun {
    pub(crate) fn last_version(&self) -> u64 {
        self.first_version + self.run.count - 1
    }

    /// The position of `version`, if this run holds it.
    pub(crate) fn position_of(&self, version: u64) -> Option<u64> {
        (version >= self.first_version && version <= self.last_version())
            .then(|| self.run.position + (version - self.first_version))
    }
}

/// What memory knows of one stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamEntry {
    /// The stream's current version (0: no events).
    pub(crate) head: u64,
    /// Runs not yet persisted (all after the watermark), in version order.
    pub(crate) runs: Vec<StreamRun>,
    /// Id of the stream's last event, when known (for recognising retries).
    pub(crate) last_event_id: Option<Uuid>,
}

impl StreamEntry {
    /// The stream's version as of log position `upto`: its head less the versions at later
    /// positions. Those are all in `runs`: runs leave memory only once persisted, and only
    /// written (in durable mode: durable) positions are persisted.
    pub(crate) fn head_upto(&self, upto: u64) -> u64 {
        let mut later = 0;
        for r in self.runs.iter().rev() {
            if r.run.position > upto {
                later += r.run.count;
            } else {
                later += r.run.end().saturating_sub(upto.saturating_add(1));
                break;
            }
        }
        self.head.saturating_sub(later)
    }

    pub(crate) fn push(&mut self, position: u64) {
        self.head += 1;
        match self.runs.last_mut() {
            Some(last) if last.run.end() == position && last.last_version() + 1 == self.head => {
                last.run.count += 1;
            }
            _ => self.runs.push(StreamRun {
                first_version: self.head,
                run: Run { position, count: 1 },
            }),
        }
    }
}

/// Appends `position` to a list of position runs.
pub(crate) fn push_position(runs: &mut Vec<Run>, position: u64) {
    match runs.last_mut() {
        Some(last) if last.end() == position => last.count += 1,
        _ => runs.push(Run { position, count: 1 }),
    }
}

/// The runs of `runs` at positions up to `upto`, splitting a run that straddles it.
pub(crate) fn runs_upto(runs: &[Run], upto: u64) -> Vec<Run> {
    runs.iter()
        .filter(|r| r.position <= upto)
        .map(|r| Run {
            position: r.position,
            count: r.count.min(upto - r.position + 1),
        })
        .collect()
}

/// Drops from `runs` every position up to `upto`.
pub(crate) fn drop_runs_upto(runs: &mut Vec<Run>, upto: u64) {
    runs.retain_mut(|r| {
        if r.end() <= upto + 1 {
            return false;
        }
        if r.position <= upto {
            let cut = upto + 1 - r.position;
            r.position += cut;
            r.count -= cut;
        }
        true
    });
}

/// The stream runs up to position `upto`, splitting a straddling run.
pub(crate) fn stream_runs_upto(runs: &[StreamRun], upto: u64) -> Vec<StreamRun> {
    runs.iter()
        .filter(|r| r.run.position <= upto)
        .map(|r| StreamRun {
            first_version: r.first_version,
            run: Run {
                position: r.run.position,
                count: r.run.count.min(upto - r.run.position + 1),
            },
        })
        .collect()
}

/// Drops from stream runs every position up to `upto`.
pub(crate) fn drop_stream_runs_upto(runs: &mut Vec<StreamRun>, upto: u64) {
    runs.retain_mut(|r| {
        if r.run.end() <= upto + 1 {
            return false;
        }
        if r.run.position <= upto {
            let cut = upto + 1 - r.run.position;
            r.run.position += cut;
            r.run.count -= cut;
            r.first_version += cut;
        }
        true
    });
}

fn corrupted(key: &[u8], e: Malformed) -> String {
    format!("index page {}: {e}", show_key(key))
}

/// A key, printable: text where it is text, hex escapes elsewhere.
pub(crate) fn show_key(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

/// The last version of a stream page that starts at `first_version`, if the page is possible:
/// versions start at 1, fit in `u64`, and none lies beyond its position (version `v` of a stream
/// sits at a position of at least `v`, since positions start at 1 and never repeat). That bound
/// keeps every version computed from a page below `u64::MAX`.
pub(crate) fn page_last_version(first_version: u64, runs: &[Run]) -> Option<u64> {
    let len = runs.iter().try_fold(0_u64, |n, r| n.checked_add(r.count))?;
    let last = first_version.checked_add(len.checked_sub(1)?)?;
    let last_run = runs.last()?;
    let last_position = last_run
        .position
        .checked_add(last_run.count)?
        .checked_sub(1)?;
    (first_version >= 1 && last <= last_position).then_some(last)
}

/// The last position a page's runs reach (0 for no runs).
pub(crate) fn page_last_position(runs: &[Run]) -> u64 {
    runs.last()
        .map_or(0, |r| r.position.saturating_add(r.count).saturating_sub(1))
}

/// Decodes a stream page entry, checking that its versions are possible ([`page_last_version`]):
/// its first version, last version and runs.
fn stream_page(key: &[u8], value: &[u8]) -> Result<(u64, u64, Vec<Run>), PageError> {
    let (_, first_version) =
        parse_stream_page_key(key).map_err(|e| PageError::Corrupted(corrupted(key, e)))?;
    let runs = decode_page(value).map_err(|e| PageError::Corrupted(corrupted(key, e)))?;
    let Some(last_version) = page_last_version(first_version, &runs) else {
        return Err(PageError::Corrupted(format!(
            "index page {}: versions from {first_version} do not fit its positions (up to {})",
            show_key(key),
            page_last_position(&runs)
        )));
    };
    Ok((first_version, last_version, runs))
}

/// The last persisted page of a stream: its first version, last version and runs.
fn last_stream_page(
    log: &Tree,
    stream: &StreamKey,
) -> Result<Option<(u64, u64, Vec<Run>)>, PageError> {
    let prefix = stream_prefix(stream);
    let Some(entry) = log.scan_prefix(&prefix).next_back() else {
        return Ok(None);
    };
    let (key, value) = entry?;
    stream_page(&key, &value).map(Some)
}

/// The persisted stream page holding `version`: its first version and runs.
pub(crate) fn stream_page_at(
    log: &Tree,
    stream: &StreamKey,
    version: u64,
) -> Result<Option<(u64, Vec<Run>)>, PageError> {
    let Some(entry) = log
        .range(stream_page_key(stream, 0)..=stream_page_key(stream, version))
        .next_back()
    else {
        return Ok(None);
    };
    let (key, value) = entry?;
    let (first_version, _, runs) = stream_page(&key, &value)?;
    Ok(Some((first_version, runs)))
}

/// The persisted version of a stream: the last version of its last page (0: none). `log_end`
/// gives the log's last written position, read after the page (pages only ever cover written
/// positions): a page reaching past it is damaged.
pub(crate) fn persisted_head(
    log: &Tree,
    stream: &StreamKey,
    log_end: impl FnOnce() -> u64,
) -> Result<u64, PageError> {
    let Some((first, head, runs)) = last_stream_page(log, stream)? else {
        return Ok(0);
    };
    let last_position = page_last_position(&runs);
    let end = log_end();
    if last_position > end {
        return Err(PageError::Corrupted(format!(
            "index page {}: a run reaches position {last_position}, past the log's end at {end}",
            show_key(&stream_page_key(stream, first))
        )));
    }
    Ok(head)
}

/// Why a page could not be read.
#[derive(Debug)]
pub(crate) enum PageError {
    Storage(sled::Error),
    Corrupted(String),
}

impl From<sled::Error> for PageError {
    fn from(e: sled::Error) -> Self {
        Self::Storage(e)
    }
}

/// The position of `version` within a page that starts at `first_version`.
pub(crate) fn page_position(first_version: u64, runs: &[Run], version: u64) -> Option<u64> {
    let mut v = first_version;
    for run in runs {
        let offset = version.checked_sub(v)?;
        if offset < run.count {
            return run.position.checked_add(offset);
        }
        v = v.checked_add(run.count)?;
    }
    None
}

fn merge_runs(into: &mut Vec<Run>, more: &[Run]) {
    for run in more {
        match into.last_mut() {
            Some(last) if last.end() == run.position => last.count += run.count,
            _ => into.push(*run),
        }
    }
}

/// Adds the persistence of stream runs to `batch`: appended to the stream's last page while it
/// has room, in new pages after that.
pub(crate) fn persist_stream_runs(
    log: &Tree,
    batch: &mut Batch,
    stream: &StreamKey,
    runs: &[StreamRun],
) -> Result<(), PageError> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let mut page = match last_stream_page(log, stream)? {
        Some((page_first, page_last, page_runs)) => {
            let page_next = page_last.saturating_add(1);
            if page_next > first.first_version {
                return Err(PageError::Corrupted(format!(
                    "stream page {} already holds version {}",
                    show_key(&stream_page_key(stream, page_first)),
                    first.first_version
                )));
            }
            if page_next == first.first_version && page_runs.len() < MAX_RUNS_PER_PAGE {
                (page_first, page_runs)
            } else {
                (first.first_version, Vec::new())
            }
        }
        None => (first.first_version, Vec::new()),
    };
    for stream_run in runs {
        if page.1.len() >= MAX_RUNS_PER_PAGE {
            batch.insert(stream_page_key(stream, page.0), encode_page(&page.1));
            page = (stream_run.first_version, Vec::new());
        }
        merge_runs(&mut page.1, &[stream_run.run]);
    }
    batch.insert(stream_page_key(stream, page.0), encode_page(&page.1));
    Ok(())
}

/// The last persisted page of an aggregate type: its first position and runs.
fn last_type_page(log: &Tree, aggregate_type: &str) -> Result<Option<(u64, Vec<Run>)>, PageError> {
    let Some(entry) = log.scan_prefix(type_prefix(aggregate_type)).next_back() else {
        return Ok(None);
    };
    let (key, value) = entry?;
    let (_, page_first) =
        parse_type_page_key(&key).map_err(|e| PageError::Corrupted(corrupted(&key, e)))?;
    let page_runs = decode_page(&value).map_err(|e| PageError::Corrupted(corrupted(&key, e)))?;
    Ok(Some((page_first, page_runs)))
}

/// The last position an aggregate type's persisted pages reach (0: none).
pub(crate) fn persisted_type_end(log: &Tree, aggregate_type: &str) -> Result<u64, PageError> {
    Ok(last_type_page(log, aggregate_type)?.map_or(0, |(_, runs)| page_last_position(&runs)))
}

/// Adds the persistence of type runs to `batch`, like [`persist_stream_runs`].
pub(crate) fn persist_type_runs(
    log: &Tree,
    batch: &mut Batch,
    aggregate_type: &str,
    runs: &[Run],
) -> Result<(), PageError> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let mut page = match last_type_page(log, aggregate_type)? {
        Some((page_first, page_runs)) => {
            let page_end = page_runs.last().map_or(0, Run::end);
            if page_end > first.position {
                return Err(PageError::Corrupted(format!(
                    "type page {} already reaches position {}",
                    show_key(&type_page_key(aggregate_type, page_first)),
                    page_end - 1
                )));
            }
            if page_runs.len() < MAX_RUNS_PER_PAGE {
                (page_first, page_runs)
            } else {
                (first.position, Vec::new())
            }
        }
        None => (first.position, Vec::new()),
    };
    for run in runs {
        if page.1.len() >= MAX_RUNS_PER_PAGE {
            batch.insert(type_page_key(aggregate_type, page.0), encode_page(&page.1));
            page = (run.position, Vec::new());
        }
        merge_runs(&mut page.1, &[*run]);
    }
    batch.insert(type_page_key(aggregate_type, page.0), encode_page(&page.1));
    Ok(())
}

/// Memory's view of the indexes after the watermark.
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    pub(crate) streams: HashMap<StreamKey, StreamEntry>,
    pub(crate) types: HashMap<String, Vec<Run>>,
}

impl Memtable {
    /// Forgets streams with nothing unpersisted until at most `max` remain.
    pub(crate) fn evict(&mut self, max: usize) {
        if self.streams.len() <= max {
            return;
        }
        let mut excess = self.streams.len() - max;
        self.streams.retain(|_, entry| {
            if excess > 0 && entry.runs.is_empty() {
                excess -= 1;
                false
            } else {
                true
            }
        });
        self.types.retain(|_, runs| !runs.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_upto_leaves_out_the_versions_after_a_position() {
        let mut entry = StreamEntry {
            head: 4,
            ..StreamEntry::default()
        };
        for p in [10, 11, 12, 20, 21] {
            entry.push(p);
        }
        assert_eq!(entry.head, 9);
        for (upto, head) in [
            (u64::MAX, 9),
            (21, 9),
            (20, 8),
            (15, 7),
            (12, 7),
            (11, 6),
            (10, 5),
            (9, 4),
            (0, 4),
        ] {
            assert_eq!(entry.head_upto(upto), head, "upto {upto}");
        }
    }

    #[test]
    fn stream_entry_coalesces_consecutive_positions() {
        let mut entry = StreamEntry::default();
        for p in [10, 11, 12, 20, 21] {
            entry.push(p);
        }
        assert_eq!(entry.head, 5);
        assert_eq!(
            entry.runs,
            vec![
                StreamRun {
                    first_version: 1,
                    run: Run {
                        position: 10,
                        count: 3
                    }
                },
                StreamRun {
                    first_version: 4,
                    run: Run {
                        position: 20,
                        count: 2
                    }
                },
            ]
        );
        assert_eq!(entry.runs[1].position_of(5), Some(21));
        assert_eq!(entry.runs[1].position_of(3), None);
    }

    #[test]
    fn splitting_runs_at_a_position() {
        let runs = vec![
            Run {
                position: 1,
                count: 5,
            },
            Run {
                position: 10,
                count: 5,
            },
        ];
        assert_eq!(
            runs_upto(&runs, 11),
            vec![
                Run {
                    position: 1,
                    count: 5
                },
                Run {
                    position: 10,
                    count: 2
                }
            ]
        );
        let mut rest = runs.clone();
        drop_runs_upto(&mut rest, 11);
        assert_eq!(
            rest,
            vec![Run {
                position: 12,
                count: 3
            }]
        );

        let mut entry = StreamEntry::default();
        for p in 1..=6 {
            entry.push(p);
        }
        let head = stream_runs_upto(&entry.runs, 4);
        assert_eq!(head[0].run.count, 4);
        drop_stream_runs_upto(&mut entry.runs, 4);
        assert_eq!(entry.runs[0].first_version, 5);
        assert_eq!(entry.runs[0].run.position, 5);
    }

    #[test]
    fn page_position_walks_runs() {
        let runs = vec![
            Run {
                position: 100,
                count: 2,
            },
            Run {
                position: 200,
                count: 3,
            },
        ];
        assert_eq!(page_position(7, &runs, 7), Some(100));
        assert_eq!(page_position(7, &runs, 9), Some(200));
        assert_eq!(page_position(7, &runs, 11), Some(202));
        assert_eq!(page_position(7, &runs, 12), None);
        assert_eq!(page_position(7, &runs, 6), None);
        // A damaged key near u64::MAX: no overflow, just no position.
        assert_eq!(page_position(u64::MAX - 1, &runs, u64::MAX), Some(101));
        assert_eq!(page_position(u64::MAX - 1, &runs, 5), None);
    }

    #[test]
    fn a_page_versions_must_fit_its_positions() {
        let runs = vec![
            Run {
                position: 3,
                count: 2,
            },
            Run {
                position: 10,
                count: 3,
            },
        ];
        // Five versions, the last at position 12: from 1 to 8 they fit.
        assert_eq!(page_last_version(1, &runs), Some(5));
        assert_eq!(page_last_version(8, &runs), Some(12));
        assert_eq!(
            page_last_version(9, &runs),
            None,
            "version 13 at position 12"
        );
        assert_eq!(page_last_version(0, &runs), None, "version 0");
        assert_eq!(page_last_version(u64::MAX - 1, &runs), None, "overflow");
        assert_eq!(page_last_version(1, &[]), None, "no runs");
        assert_eq!(page_last_position(&runs), 12);
    }
}
