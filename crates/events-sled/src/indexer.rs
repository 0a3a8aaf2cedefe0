//! Index persistence, off the writer's path: once the log has grown `index_flush_events` past the
//! watermark, the indexer thread copies the memtable runs up to the written position (under the
//! state lock, briefly), rewrites the touched aggregates' and types' last pages, and applies them
//! with the new watermark and the counters in one atomic batch; only then are those runs dropped
//! from memory. The batch covers only records already written to the segment files (a power loss
//! that keeps the batch and loses those records is found on open: the indexes past the log's end
//! are rebuilt). Closing persists whatever is left.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::index::{
    StreamRun, drop_runs_upto, drop_stream_runs_upto, persist_stream_runs, persist_type_runs,
    runs_upto, stream_runs_upto,
};
use crate::keys::{COUNTERS_KEY, INDEXING_KEY, StreamKey, WATERMARK_KEY};
use crate::record::{PersistedCounters, Run, encode_counters};
use crate::state::{Shared, lock};

/// Streams and types whose pages go in one sled batch (see `persist_indexes`).
const PAGES_PER_BATCH: usize = 256;

/// The runs of one stream or one type, to write to its pages.
enum Pages<'a> {
    Stream(&'a StreamKey, &'a [StreamRun]),
    Type(&'a str, &'a [Run]),
}

impl Shared {
    /// Persists the indexes up to the written position; returns the new watermark.
    pub(crate) fn persist_indexes(&self) -> Result<u64, String> {
        // One persistence at a time (the indexer thread, or closing after it stopped).
        let _serial = lock(&self.indexing);
        let (upto, streams, types, aggregates) = {
            let state = lock(&self.state);
            let upto = state.written_upto;
            if upto <= state.watermark {
                return Ok(state.watermark);
            }
            let streams: Vec<_> = state
                .memtable
                .streams
                .iter()
                .filter(|(_, entry)| entry.runs.first().is_some_and(|r| r.run.position <= upto))
                .map(|(key, entry)| (key.clone(), stream_runs_upto(&entry.runs, upto)))
                .collect();
            let types: Vec<_> = state
                .memtable
                .types
                .iter()
                .filter(|(_, runs)| runs.first().is_some_and(|r| r.position <= upto))
                .map(|(name, runs)| (name.clone(), runs_upto(runs, upto)))
                .collect();
            (
                upto,
                streams,
                types,
                self.counters.aggregates.load(Ordering::Relaxed),
            )
        };
        let page_error = |e| match e {
            crate::index::PageError::Storage(e) => format!("reading index pages: {e}"),
            crate::index::PageError::Corrupted(d) => format!("corrupted index: {d}"),
        };
        // The pages go in batches of at most `PAGES_PER_BATCH` streams or types, the watermark
        // and the counters with the last: sled applies a batch under a process-wide write lock
        // that every sled read waits for (appends read the head of a stream memory does not
        // hold), so one batch of every page touched would stall appends for its whole length.
        // A stream's or a type's pages are always in one batch. A crash between batches leaves
        // pages past the watermark: recovery takes what they hold as indexed (see
        // `recovery::recover`), and the next persistence starts after it.
        let pages: Vec<Pages<'_>> = streams
            .iter()
            .map(|(stream, runs)| Pages::Stream(stream, runs))
            .chain(types.iter().map(|(name, runs)| Pages::Type(name, runs)))
            .collect();
        // At least one batch: it carries the watermark.
        let chunks: Vec<&[Pages<'_>]> = if pages.is_empty() {
            vec![&[]]
        } else {
            pages.chunks(PAGES_PER_BATCH).collect()
        };
        if chunks.len() > 1 {
            // Where this persistence's pages may reach, noted first: should it be cut, recovery
            // knows how far past the watermark pages can go (and rebuilds them all if the log
            // lost that much). One batch needs no note: it lands whole or not at all.
            self.log
                .insert(INDEXING_KEY, &upto.to_be_bytes())
                .map_err(|e| format!("noting the index persistence: {e}"))?;
        }
        let counters = PersistedCounters {
            aggregates,
            ..self.counters.persisted()
        };
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            let mut batch = sled::Batch::default();
            for page in *chunk {
                match page {
                    Pages::Stream(stream, runs) => {
                        persist_stream_runs(&self.log, &mut batch, stream, runs)
                    }
                    Pages::Type(name, runs) => persist_type_runs(&self.log, &mut batch, name, runs),
                }
                .map_err(page_error)?;
            }
            if i == last {
                batch.insert(WATERMARK_KEY, &upto.to_be_bytes());
                batch.insert(COUNTERS_KEY, encode_counters(&counters));
                batch.remove(INDEXING_KEY);
            }
            // Each stream and type touched: its last page read, then written (rarely two); the
            // watermark and the counters.
            crate::reclaim::apply_batch(&self.log, batch, 2 * chunk.len() + 2)
                .map_err(|e| format!("writing index pages: {e}"))?;
        }
        {
            let mut state = lock(&self.state);
            for entry in state.memtable.streams.values_mut() {
                drop_stream_runs_upto(&mut entry.runs, upto);
            }
            for runs in state.memtable.types.values_mut() {
                drop_runs_upto(runs, upto);
            }
            state.watermark = upto;
            let max = self.config.max_cached_streams;
            state.memtable.evict(max);
        }
        tracing::debug!(
            name: "event_store_index_persisted",
            upto,
            streams = streams.len(),
            types = types.len(),
            "indexes persisted"
        );
        Ok(upto)
    }
}

/// Starts the thread that persists the indexes whenever the log has grown `index_flush_events`
/// past the watermark.
pub(crate) fn start(shared: &Arc<Shared>) -> std::io::Result<()> {
    let thread_shared = Arc::clone(shared);
    let handle = std::thread::Builder::new()
        .name("eventlog-indexer".into())
        .spawn(move || run(&thread_shared))?;
    *lock(&shared.indexer) = Some(handle);
    Ok(())
}

fn run(shared: &Shared) {
    loop {
        {
            let mut state = lock(&shared.state);
            loop {
                if state.closing || state.failed.is_some() {
                    return;
                }
                if state.written_upto - state.watermark >= shared.config.index_flush_events {
                    break;
                }
                state = shared
                    .indexer_wake
                    .wait_timeout(state, Duration::from_secs(1))
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
        }
        if let Err(reason) = shared.persist_indexes() {
            shared.fail(reason);
            return;
        }
    }
}
