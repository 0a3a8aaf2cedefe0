//! Storage for the `eventlog` event store, on sled.
//!
//! One sled database holds a `log` tree (hash-chained log records, the stream and aggregate-type
//! indexes as version- and position-ordered pages, the store's metadata), a `snapshots` tree and a
//! `consumers` tree. One writer thread turns acknowledged appends into atomic group writes. See
//! `docs/design.md` for the layout, the append algorithm and what a crash keeps.

mod checkpoint;
mod config;
mod error;
mod index;
mod keys;
mod read;
mod record;
mod state;
mod store;
mod types;
mod varint;
mod writer;

pub use config::{CheckpointPolicy, Durability, StoreConfig, StoreLimits};
pub use error::{AppendError, CheckpointError, OpenError, ReadError, SnapshotError, StoreError};
pub use read::{LogEvents, StreamEvents, TypeEvents};
pub use state::CommitListener;
pub use store::{STORE_FORMAT, Store, data_dir};
pub use types::{AggregateInfo, AppendBatch, AppendResult, Direction, ExpectedVersion, StreamRead};
