//! Snapshots: an aggregate's folded state at a version, kept in the `snapshots` tree under
//! `stream · version (u64 BE)`, newest last. The value is
//! `format u8 (= 1) · schema_version varint · created_micros zigzag · state bytes`.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::SnapshotError;
use crate::keys::{StreamKey, prefix_end};
use crate::store::Store;
use crate::varint::{Malformed, Reader, put_i64, put_u64};

const SNAPSHOT_FORMAT: u8 = 1;

/// An aggregate's state at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The version the state reflects.
    pub version: u64,
    /// The schema version of the state's encoding.
    pub schema_version: u16,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
    /// The encoded state.
    #[serde(skip)]
    pub state: Vec<u8>,
}

pub(crate) fn snapshot_key(stream: &StreamKey, version: u64) -> Vec<u8> {
    let mut key = stream.as_bytes().to_vec();
    key.extend_from_slice(&version.to_be_bytes());
    key
}

pub(crate) fn encode_snapshot(schema_version: u16, created_micros: i64, state: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(state.len() + 16);
    out.push(SNAPSHOT_FORMAT);
    put_u64(&mut out, u64::from(schema_version));
    put_i64(&mut out, created_micros);
    out.extend_from_slice(state);
    out
}

/// Decodes a snapshot entry of the `snapshots` tree.
pub(crate) fn decode_snapshot(key: &[u8], value: &[u8]) -> Result<Snapshot, Malformed> {
    let (aggregate_type, aggregate_id, rest) = StreamKey::parse(key)?;
    let version = Reader::new(rest).u64_be("snapshot key version")?;
    if rest.len() != 8 {
        return Err(Malformed {
            what: "snapshot key",
            offset: key.len(),
        });
    }
    let mut reader = Reader::new(value);
    if reader.u8("snapshot format")? != SNAPSHOT_FORMAT {
        return Err(Malformed {
            what: "snapshot format",
            offset: 0,
        });
    }
    let schema_version = reader.varint_u16("snapshot schema version")?;
    let offset = reader.offset();
    let created_at = DateTime::<Utc>::from_timestamp_micros(reader.zigzag("snapshot time")?)
        .ok_or(Malformed {
            what: "snapshot time",
            offset,
        })?;
    let state = value[reader.offset()..].to_vec();
    Ok(Snapshot {
        aggregate_type,
        aggregate_id,
        version,
        schema_version,
        created_at,
        state,
    })
}

fn corrupted(key: &[u8], e: &Malformed) -> SnapshotError {
    SnapshotError::Corrupted {
        detail: format!("snapshot {}: {e}", crate::index::show_key(key)),
    }
}

impl Store {
    /// Saves `state` as the aggregate's state at `version`, encoded with the state's
    /// `schema_version`, and deletes all but the newest `snapshots_to_keep` snapshots of it.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::VersionZero`]; [`SnapshotError::VersionAhead`] when the aggregate has not
    /// reached `version`; [`SnapshotError::NotWriting`] when the store is closed or stopped writing
    /// after a failure (a failed sync: nothing more goes to its files until it is reopened);
    /// [`SnapshotError::Storage`].
    pub fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: u64,
        schema_version: u16,
        state: &[u8],
    ) -> Result<(), SnapshotError> {
        if version == 0 {
            return Err(SnapshotError::VersionZero);
        }
        let current = self.stream_version(aggregate_type, aggregate_id)?;
        if version > current {
            return Err(SnapshotError::VersionAhead {
                aggregate_type: aggregate_type.to_string(),
                aggregate_id: aggregate_id.to_string(),
                version,
                current,
            });
        }
        let shared = &self.shared;
        // The events the snapshot reflects go to sled first: sled recovers a prefix of its own
        // log after a crash, so a surviving snapshot never outlives its events.
        shared
            .wait_written()
            .map_err(|reason| SnapshotError::NotWriting { reason })?;
        let stream = StreamKey::new(aggregate_type, aggregate_id);
        let now = Utc::now();
        let new_key = snapshot_key(&stream, version);
        let prefix = stream.as_bytes().to_vec();
        let mut keys = Vec::new();
        for key in shared
            .snapshots
            .range(prefix.clone()..prefix_end(&prefix))
            .keys()
        {
            let key = key?;
            if key.len() == new_key.len() {
                keys.push(key.to_vec());
            }
        }
        keys.push(new_key.clone());
        keys.sort();
        keys.dedup();
        let mut batch = sled::Batch::default();
        batch.insert(
            new_key,
            encode_snapshot(schema_version, now.timestamp_micros(), state),
        );
        // Keep the newest `snapshots_to_keep` (by version), this one included.
        let excess = keys.len().saturating_sub(shared.config.snapshots_to_keep);
        for key in &keys[..excess] {
            batch.remove(key.as_slice());
        }
        shared.snapshots.apply_batch(batch)?;
        let counters = &shared.counters;
        counters.snapshots_created.fetch_add(1, Ordering::Relaxed);
        counters
            .last_snapshot_micros
            .store(now.timestamp_micros(), Ordering::Relaxed);
        tracing::info!(
            name: "event_store_snapshot_created",
            aggregate_type,
            aggregate_id,
            version,
            schema_version,
            bytes = state.len(),
            "snapshot created"
        );
        Ok(())
    }

    /// The newest snapshot of the aggregate whose state has `schema_version` and whose version the
    /// aggregate still reaches. Snapshots of another schema version are skipped, not misread; so
    /// are snapshots beyond the aggregate's version (possible when a crash in buffered mode lost
    /// the events after a snapshot).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Storage`]; [`SnapshotError::Corrupted`] when a snapshot does not decode.
    pub fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        schema_version: u16,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        let current = self.stream_version(aggregate_type, aggregate_id)?;
        for snapshot in self
            .snapshots(aggregate_type, aggregate_id)?
            .into_iter()
            .rev()
        {
            if snapshot.schema_version == schema_version && snapshot.version <= current {
                return Ok(Some(snapshot));
            }
            tracing::debug!(
                name: "event_store_snapshot_skipped",
                aggregate_type,
                aggregate_id,
                version = snapshot.version,
                schema_version = snapshot.schema_version,
                wanted_schema_version = schema_version,
                current,
                "snapshot skipped"
            );
        }
        Ok(None)
    }

    /// Every kept snapshot of the aggregate, oldest first, whatever its schema version.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Storage`]; [`SnapshotError::Corrupted`] when a snapshot does not decode.
    pub fn snapshots(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<Snapshot>, SnapshotError> {
        let prefix = StreamKey::new(aggregate_type, aggregate_id)
            .as_bytes()
            .to_vec();
        let mut out = Vec::new();
        for entry in self
            .shared
            .snapshots
            .range(prefix.clone()..prefix_end(&prefix))
        {
            let (key, value) = entry?;
            if key.len() != prefix.len() + 8 {
                continue; // Another stream whose id extends this one's bytes.
            }
            out.push(decode_snapshot(&key, &value).map_err(|e| corrupted(&key, &e))?);
        }
        Ok(out)
    }
}
