//! How much of a closed store's sled database is live data: the key and value bytes of every
//! tree (by the key's first byte, which names the keyspace) against the files sled keeps on
//! disk. A diagnostic for BENCHMARKS.md's account of bytes per event; it opens sled directly,
//! as the raw sled baseline does, because the facade does not expose sled's trees.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::measure::{DiskUsage, disk_usage};

/// Live bytes of one keyspace (keys sharing a first byte) of one tree.
#[derive(Debug, Default, Serialize)]
pub struct Keyspace {
    /// Keys.
    pub keys: u64,
    /// Bytes of the keys.
    pub key_bytes: u64,
    /// Bytes of the values.
    pub value_bytes: u64,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct SledUsage {
    /// Files under `<store>/log` (the segment files).
    pub log_on_disk: DiskUsage,
    /// Files under `<store>/data` (sled).
    pub sled_on_disk: DiskUsage,
    /// Key and value bytes of all trees.
    pub sled_live_bytes: u64,
    /// Per tree, per keyspace (the key's first byte as a character).
    pub trees: BTreeMap<String, BTreeMap<String, Keyspace>>,
}

/// Measures the closed store at `store`.
pub fn measure(store: &Path) -> anyhow::Result<SledUsage> {
    let data = store.join("data");
    let log_on_disk = disk_usage(&store.join("log"))?;
    let sled_on_disk = disk_usage(&data)?;
    // sled refuses a segment size other than the one the database was created with.
    let conf = std::fs::read(data.join("conf"))
        .with_context(|| format!("reading {}", data.join("conf").display()))?;
    let segment_size = String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|line| line.strip_prefix("segment_size: "))
        .and_then(|value| value.trim().parse().ok())
        .context("sled's conf names no segment_size")?;
    let db = sled::Config::new()
        .path(&data)
        .segment_size(segment_size)
        .open()
        .with_context(|| format!("opening {} (is the store closed?)", data.display()))?;
    let mut trees = BTreeMap::new();
    let mut sled_live_bytes = 0;
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        let mut keyspaces: BTreeMap<String, Keyspace> = BTreeMap::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            let prefix = key
                .first()
                .map_or_else(String::new, |&b| char::from(b).to_string());
            let keyspace = keyspaces.entry(prefix).or_default();
            keyspace.keys += 1;
            keyspace.key_bytes += key.len() as u64;
            keyspace.value_bytes += value.len() as u64;
            sled_live_bytes += (key.len() + value.len()) as u64;
        }
        trees.insert(String::from_utf8_lossy(&name).into_owned(), keyspaces);
    }
    Ok(SledUsage {
        log_on_disk,
        sled_on_disk,
        sled_live_bytes,
        trees,
    })
}
