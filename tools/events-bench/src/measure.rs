//! What is measured besides time: the process's resident memory and a directory's size.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// A field of `/proc/self/status` in bytes (`VmHWM`: peak resident set; `VmRSS`: current).
/// `None` where there is no procfs.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Bytes a directory tree uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Sum of the files' lengths.
    pub apparent: u64,
    /// Sum of the blocks allocated to them (what `du` reports; sparse files count less).
    pub allocated: u64,
}

/// The size of every file under `dir`. Files that vanish while it looks (a live store removes
/// files: sled's blobs, the journal) are skipped.
pub fn disk_usage(dir: &Path) -> anyhow::Result<DiskUsage> {
    use std::io::ErrorKind::NotFound;
    use std::os::unix::fs::MetadataExt;
    let mut total = DiskUsage::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Err(e) if e.kind() == NotFound && current != dir => continue,
            other => other.with_context(|| format!("listing {}", current.display()))?,
        };
        for entry in entries {
            let entry = match entry {
                Err(e) if e.kind() == NotFound => continue,
                other => other?,
            };
            let meta = match entry.metadata() {
                Err(e) if e.kind() == NotFound => continue,
                other => other?,
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total.apparent += meta.len();
                total.allocated += meta.blocks() * 512;
            }
        }
    }
    Ok(total)
}
