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

/// A `/proc/.../stat` line's command name, parent pid and CPU seconds (user + system).
fn parse_stat(stat: &str) -> Option<(&str, u32, f64)> {
    // pid (comm) state ppid ... : comm may hold spaces; fields after the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the comm.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // USER_HZ is 100 on Linux.
    Some((comm, ppid, (ticks(11)? + ticks(12)?) / 100.0))
}

/// CPU seconds (user + system) of this process's threads whose name starts with each prefix.
pub fn thread_cpu_secs(prefixes: &[&str]) -> Vec<f64> {
    let mut totals = vec![0.0; prefixes.len()];
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return totals;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((comm, _, secs)) = parse_stat(&stat) else {
            continue;
        };
        for (total, prefix) in totals.iter_mut().zip(prefixes) {
            if comm.starts_with(prefix) {
                *total += secs;
            }
        }
    }
    totals
}

/// CPU seconds of this whole process.
pub fn process_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| parse_stat(&stat).map(|(_, _, secs)| secs))
        .unwrap_or(0.0)
}

/// CPU seconds of this process's child processes named `name` (e.g. a `nats-server` it
/// started), running ones only.
pub fn child_cpu_secs(name: &str) -> f64 {
    children(name).iter().map(|&(_, secs)| secs).sum()
}

/// The pids of this process's running child processes named `name`.
pub fn child_pids(name: &str) -> Vec<u32> {
    children(name).iter().map(|&(pid, _)| pid).collect()
}

/// This process's running children named `name`: pid and CPU seconds.
fn children(name: &str) -> Vec<(u32, f64)> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (comm, ppid, secs) = parse_stat(&stat)?;
            (comm == name && ppid == me).then_some((pid, secs))
        })
        .collect()
}
