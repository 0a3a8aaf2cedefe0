//! `--ack-log FILE`: one line per append, for crash testing (`tools/torture`).
//!
//! Before each append call the daemon writes `begin COUNT FIRST_EVENT_ID HASH`; after the call
//! returns, `ack FIRST_POSITION LAST_POSITION COUNT HASH`. `HASH` is the BLAKE3 hash (hex) of the
//! appended events' ids (16 bytes each, in append order), `FIRST_EVENT_ID` the first event's id.
//! An `ack` line therefore means "acknowledged": in durable mode it must survive any crash. Each
//! line is written with one `write` call to a file opened for appending, so a crash leaves at most
//! a last line without its newline (never acknowledged). Lines of concurrent workers interleave
//! in any order.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::Context as _;
use eventlog::AppendBatch;

/// The open ack log.
#[derive(Debug)]
pub struct AckLog {
    file: Mutex<File>,
}

/// What identifies one append in the log: its event count, first event id and id hash.
#[derive(Debug, Clone)]
pub struct AppendIds {
    count: usize,
    first: String,
    hash: String,
}

impl AppendIds {
    /// The ids of `step`'s events, in the order they are appended.
    pub fn of(step: &[AppendBatch]) -> Self {
        let mut hasher = blake3::Hasher::new();
        let mut count = 0;
        let mut first = None;
        for event in step.iter().flat_map(|b| b.events.iter()) {
            hasher.update(event.event_id.as_bytes());
            first.get_or_insert(event.event_id);
            count += 1;
        }
        Self {
            count,
            first: first.map(|id| id.simple().to_string()).unwrap_or_default(),
            hash: hasher.finalize().to_hex().to_string(),
        }
    }
}

impl AckLog {
    /// Opens (creating) `path` for appending.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the ack log {}", path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    fn line(&self, line: &str) -> anyhow::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(line.as_bytes())
            .context("writing the ack log")
    }

    /// Records an append about to be made.
    ///
    /// # Errors
    ///
    /// When the line cannot be written.
    pub fn begin(&self, ids: &AppendIds) -> anyhow::Result<()> {
        self.line(&format!("begin {} {} {}\n", ids.count, ids.first, ids.hash))
    }

    /// Records an acknowledged append at positions `first..=last`.
    ///
    /// # Errors
    ///
    /// When the line cannot be written.
    pub fn ack(&self, ids: &AppendIds, first: u64, last: u64) -> anyhow::Result<()> {
        self.line(&format!("ack {first} {last} {} {}\n", ids.count, ids.hash))
    }
}
