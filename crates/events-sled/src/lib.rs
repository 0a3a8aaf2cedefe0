//! Storage for the `eventlog` event store, on sled.
//!
//! One sled database holds a `log` tree (hash-chained log records, the stream and aggregate-type
//! indexes as version- and position-ordered pages, the store's metadata), a `snapshots` tree and a
//! `consumers` tree. One writer thread turns acknowledged appends into atomic group writes. See
//! `docs/design.md` for the layout, the append algorithm and what a crash keeps.

mod checkpoint;
mod config;
mod consumer;
mod error;
mod flusher;
mod index;
mod journal;
mod keys;
mod metrics;
mod read;
mod record;
mod snapshot;
mod state;
mod store;
mod types;
mod varint;
mod verify;
mod writer;

pub use checkpoint::{
    CHECKPOINT_EXTENSION, CHECKPOINT_FORMAT, CheckpointInfo, CheckpointManifest, Progress,
    import_checkpoint, list_checkpoints, prune_checkpoints, read_manifest, verify_checkpoint,
    verify_checkpoint_with,
};
pub use config::{CheckpointPolicy, Durability, StoreConfig, StoreLimits};
pub use consumer::ConsumerCheckpoint;
pub use error::{AppendError, CheckpointError, OpenError, ReadError, SnapshotError, StoreError};
pub use metrics::StoreMetrics;
pub use read::{LogEvents, StreamEvents, TypeEvents};
pub use record::EventRef;
pub use snapshot::Snapshot;
pub use state::CommitListener;
pub use store::{STORE_FORMAT, Store, data_dir};
pub use types::{AggregateInfo, AppendBatch, AppendResult, Direction, ExpectedVersion, StreamRead};
pub use verify::{ChainHead, VerifyIssue, VerifyReport};
