//! Consumers: named positions in the log (durable subscriptions), optionally with the consumer's
//! own state committed atomically with its position (projections). Kept in the `consumers` tree:
//! `name → format u8 (= 1) · position u64 BE · state bytes`.

use crate::error::StoreError;
use crate::state::lock;
use crate::store::Store;
use crate::varint::Reader;

const CONSUMER_FORMAT: u8 = 1;

/// A consumer's committed position and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerCheckpoint {
    /// The last position the consumer handled.
    pub position: u64,
    /// The consumer's own state as of that position (empty if it keeps none).
    pub state: Vec<u8>,
}

pub(crate) fn encode_consumer(position: u64, state: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + state.len());
    out.push(CONSUMER_FORMAT);
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(state);
    out
}

pub(crate) fn decode_consumer(value: &[u8]) -> Result<ConsumerCheckpoint, String> {
    let mut reader = Reader::new(value);
    let format = reader.u8("consumer format").map_err(|e| e.to_string())?;
    if format != CONSUMER_FORMAT {
        return Err(format!("consumer format {format}"));
    }
    let position = reader
        .u64_be("consumer position")
        .map_err(|e| e.to_string())?;
    Ok(ConsumerCheckpoint {
        position,
        state: value[reader.offset()..].to_vec(),
    })
}

impl Store {
    /// Commits a consumer's position and its state together, atomically. With `durable`, waits
    /// until the commit is on disk. The position must be one readers can see (at most
    /// [`Store::last_position`]): a consumer cannot have handled an event the log does not hold.
    ///
    /// # Errors
    ///
    /// [`StoreError::PositionBeyondLog`] for a position past the log's end, nothing committed;
    /// [`StoreError::Storage`]; [`StoreError::Failed`] when the store is not writing, or when
    /// the durable commit's sync failed — which fails the store: every later append gets
    /// [`crate::AppendError::Failed`] until it is reopened (a failed `fdatasync` is reported
    /// once, so a later one could "succeed" over lost data).
    pub fn commit_consumer(
        &self,
        name: &str,
        position: u64,
        state: &[u8],
        durable: bool,
    ) -> Result<(), StoreError> {
        {
            let state = lock(&self.shared.state);
            if let Some(reason) = &state.failed {
                return Err(StoreError::Failed {
                    reason: reason.clone(),
                });
            }
            let last_position = self.shared.visible_end(&state);
            if position > last_position {
                return Err(StoreError::PositionBeyondLog {
                    position,
                    last_position,
                });
            }
        }
        // A consumer's position goes to sled after the events it covers (see `save_snapshot`).
        if position
            > self
                .shared
                .written_upto
                .load(std::sync::atomic::Ordering::Acquire)
        {
            self.shared
                .wait_written()
                .map_err(|reason| StoreError::Failed { reason })?;
        }
        self.shared
            .consumers
            .insert(name.as_bytes(), encode_consumer(position, state))?;
        if durable {
            let shared = &self.shared;
            let synced = shared
                .db
                .flush()
                .map_err(|e| format!("flushing sled for consumer `{name}`: {e}"))
                .and_then(|_| {
                    shared.sync_data_file().map_err(|e| {
                        format!("fdatasync of sled's data file for consumer `{name}`: {e}")
                    })
                });
            if let Err(reason) = synced {
                shared.fail(reason.clone());
                return Err(StoreError::Failed { reason });
            }
        }
        Ok(())
    }

    /// A consumer's last committed position and state, if it committed any.
    ///
    /// A committed position is never beyond the log (see [`Store::commit_consumer`]), but damaged
    /// files can make it so. Then a consumer that keeps no state resumes at the log's end, and one
    /// with state is reported as absent — that state was folded over events the log does not
    /// hold, so it would be wrong at any position; the projection starts over from the log. Both
    /// are logged (`event_store_consumer_ahead_of_log`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`]; [`StoreError::Corrupted`] when the entry does not decode.
    pub fn consumer(&self, name: &str) -> Result<Option<ConsumerCheckpoint>, StoreError> {
        let Some(value) = self.shared.consumers.get(name.as_bytes())? else {
            return Ok(None);
        };
        let mut checkpoint = decode_consumer(&value).map_err(|detail| StoreError::Corrupted {
            detail: format!("consumer `{name}`: {detail}"),
        })?;
        let end = self.shared.last_visible();
        if checkpoint.position > end {
            let starts_over = !checkpoint.state.is_empty();
            tracing::warn!(
                name: "event_store_consumer_ahead_of_log",
                consumer = name,
                position = checkpoint.position,
                log_end = end,
                starts_over,
                "consumer position is beyond the log's end"
            );
            if starts_over {
                return Ok(None);
            }
            checkpoint.position = end;
        }
        Ok(Some(checkpoint))
    }

    /// Every consumer's name and committed position.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`]; [`StoreError::Corrupted`].
    pub fn consumers(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.shared.consumers.iter() {
            let (key, value) = entry?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let checkpoint = decode_consumer(&value).map_err(|detail| StoreError::Corrupted {
                detail: format!("consumer `{name}`: {detail}"),
            })?;
            out.push((name, checkpoint.position));
        }
        Ok(out)
    }

    /// Forgets a consumer.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`].
    pub fn remove_consumer(&self, name: &str) -> Result<(), StoreError> {
        self.shared.consumers.remove(name.as_bytes())?;
        Ok(())
    }
}
