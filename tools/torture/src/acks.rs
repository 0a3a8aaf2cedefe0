//! The ack log both writers keep (the daemon's `--ack-log`, the appender child's own): a `begin`
//! line before each append call, an `ack` line after it returned. See `omni-writer --help`.
//!
//! - `begin COUNT FIRST_EVENT_ID HASH`
//! - `ack FIRST_POSITION LAST_POSITION COUNT HASH`
//!
//! `HASH` is the BLAKE3 hash (hex) of the appended event ids (16 bytes each, in append order).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::{Context as _, bail};
use uuid::Uuid;

/// One acknowledged append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Position of its first event.
    pub first: u64,
    /// Position of its last event.
    pub last: u64,
    /// BLAKE3 of its event ids.
    pub hash: String,
}

/// Everything an ack log says.
#[derive(Debug, Default)]
pub struct AckLog {
    /// Appends begun, by first event id (simple hex): `(event count, id hash)` of each.
    pub begins: HashMap<String, Vec<(u64, String)>>,
    /// Appends acknowledged.
    pub acks: Vec<Ack>,
    /// `begin` lines read.
    pub begin_lines: u64,
}

/// The hash the ack log gives to a run of event ids.
pub fn ids_hash<'a>(ids: impl IntoIterator<Item = &'a Uuid>) -> String {
    let mut hasher = blake3::Hasher::new();
    for id in ids {
        hasher.update(id.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

fn number(field: Option<&str>, line: &str) -> anyhow::Result<u64> {
    field
        .and_then(|f| f.parse().ok())
        .with_context(|| format!("malformed ack log line `{line}`"))
}

fn word(field: Option<&str>, line: &str) -> anyhow::Result<String> {
    field
        .map(str::to_string)
        .with_context(|| format!("malformed ack log line `{line}`"))
}

impl AckLog {
    /// Reads `path` (missing: empty). A last line without its newline was cut by the kill and
    /// is ignored: it acknowledged nothing.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or a complete line is malformed.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let complete = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(end) => &bytes[..=end],
            None => &[][..],
        };
        let text = std::str::from_utf8(complete)
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        let mut log = Self::default();
        for line in text.lines() {
            let mut fields = line.split(' ');
            match fields.next() {
                Some("begin") => {
                    let count = number(fields.next(), line)?;
                    let first = word(fields.next(), line)?;
                    let hash = word(fields.next(), line)?;
                    log.begins.entry(first).or_default().push((count, hash));
                    log.begin_lines += 1;
                }
                Some("ack") => {
                    let first = number(fields.next(), line)?;
                    let last = number(fields.next(), line)?;
                    let count = number(fields.next(), line)?;
                    let hash = word(fields.next(), line)?;
                    if first == 0 || last < first || last - first + 1 != count {
                        bail!("ack log line `{line}`: positions do not match the count");
                    }
                    log.acks.push(Ack { first, last, hash });
                }
                _ => bail!("unknown ack log line `{line}` in {}", path.display()),
            }
            if fields.next().is_some() {
                bail!("ack log line `{line}` has extra fields");
            }
        }
        Ok(log)
    }

    /// Cuts `path` after its last complete line. A kill can interrupt a `write` between pages, so
    /// the last line may be partial; the next writer would append to it.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or truncated.
    pub fn drop_partial_tail(path: &Path) -> anyhow::Result<()> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let complete = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |end| end + 1);
        if complete < bytes.len() {
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(complete as u64))
                .with_context(|| format!("truncating {}", path.display()))?;
        }
        Ok(())
    }

    /// Rewrites `path` with every `begin` and the acks that end at or before `last`: appends
    /// acknowledged and then lost (buffered mode) gave their positions to later appends.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn keep_upto(&self, path: &Path, last: u64) -> anyhow::Result<()> {
        let mut out = String::new();
        for (first, entries) in &self.begins {
            for (count, hash) in entries {
                out.push_str(&format!("begin {count} {first} {hash}\n"));
            }
        }
        for ack in self.acks.iter().filter(|a| a.last <= last) {
            out.push_str(&format!(
                "ack {} {} {} {}\n",
                ack.first,
                ack.last,
                ack.last - ack.first + 1,
                ack.hash
            ));
        }
        std::fs::write(path, out).with_context(|| format!("rewriting {}", path.display()))
    }
}

/// What [`check_acks`] found.
#[derive(Debug, Default, Clone, Copy)]
pub struct AckCheck {
    /// Acknowledged appends found whole, at their positions, with their event ids.
    pub present: u64,
    /// Acknowledged appends beyond the surviving log (allowed in buffered mode only).
    pub lost: u64,
}

/// Checks every acknowledgement against the log's event ids (`ids[p - 1]` is position `p`).
/// Durable: every acknowledged append is present. Buffered: those that survive are exactly the
/// ones ending at or before the log's end (a prefix), none cut by it.
///
/// # Errors
///
/// Naming the first acknowledgement that does not hold.
pub fn check_acks(ids: &[Uuid], log: &AckLog, durable: bool) -> anyhow::Result<AckCheck> {
    let last = ids.len() as u64;
    let mut check = AckCheck::default();
    for ack in &log.acks {
        if ack.last <= last {
            let found = ids_hash(&ids[(ack.first - 1) as usize..ack.last as usize]);
            if found != ack.hash {
                bail!(
                    "the append acknowledged at positions {}..={} is not there: other event ids \
                     hold those positions",
                    ack.first,
                    ack.last
                );
            }
            check.present += 1;
        } else if ack.first <= last {
            bail!(
                "the append acknowledged at positions {}..={} is cut by the log's end at {last} \
                 (a partial append)",
                ack.first,
                ack.last
            );
        } else if durable {
            bail!(
                "the durable append acknowledged at positions {}..={} is lost: the log ends at \
                 {last}",
                ack.first,
                ack.last
            );
        } else {
            check.lost += 1;
        }
    }
    Ok(check)
}

/// Checks that the log is made of whole appends: from position 1, each event starts an append
/// begun by the writer, and that append's events follow it, all of them, in order.
/// Returns how many appends tile the log.
///
/// # Errors
///
/// Naming the first position that does not start a whole append.
pub fn check_whole_appends(ids: &[Uuid], log: &AckLog) -> anyhow::Result<u64> {
    let mut at = 0_usize;
    let mut appends = 0;
    while at < ids.len() {
        let key = ids[at].simple().to_string();
        let Some(candidates) = log.begins.get(&key) else {
            bail!(
                "the event at position {} ({key}) does not start any append the writer began: \
                 a partial append, or an event from nowhere",
                at + 1
            );
        };
        let whole = candidates.iter().find(|(count, hash)| {
            let end = at + *count as usize;
            end <= ids.len() && ids_hash(&ids[at..end]) == *hash
        });
        let Some((count, _)) = whole else {
            bail!(
                "the append starting at position {} ({key}) is not whole: begun as {:?} \
                 (event count, id hash), the log holds something else",
                at + 1,
                candidates
            );
        };
        at += *count as usize;
        appends += 1;
    }
    Ok(appends)
}

/// The writer's side: begin and ack lines, one `write` each, to a file opened for appending.
#[derive(Debug)]
pub struct AckWriter {
    file: Mutex<File>,
}

impl AckWriter {
    /// Opens (creating) `path` for appending.
    ///
    /// # Errors
    ///
    /// When it cannot be opened.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
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

    /// Before an append of `ids`.
    ///
    /// # Errors
    ///
    /// When the line cannot be written.
    pub fn begin(&self, ids: &[Uuid]) -> anyhow::Result<()> {
        let first = ids.first().map(|id| id.simple().to_string());
        self.line(&format!(
            "begin {} {} {}\n",
            ids.len(),
            first.unwrap_or_default(),
            ids_hash(ids)
        ))
    }

    /// After the append of `ids` returned positions `first..=last`.
    ///
    /// # Errors
    ///
    /// When the line cannot be written.
    pub fn ack(&self, ids: &[Uuid], first: u64, last: u64) -> anyhow::Result<()> {
        self.line(&format!(
            "ack {first} {last} {} {}\n",
            ids.len(),
            ids_hash(ids)
        ))
    }
}
