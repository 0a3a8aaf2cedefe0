//! Helping sled reclaim the memory of the page versions it replaces.
//!
//! sled 0.34 frees a replaced page version (a copy of a whole leaf, holding references to its
//! values) through crossbeam-epoch's global collector, which frees at most 8 bags of 64 objects
//! each time a thread has pinned 128 times. A single write pins once and retires a page version or
//! two, so the collector keeps up with one-key writes; but `apply_batch` pins once for all its keys
//! and retires a page version per key, so the index persistences (tens of thousands of keys in
//! the daemon's workload) retire garbage far faster than anything frees it. Measured: raw sled
//! with a 16 MiB cache, 25 000-key batches, 400 000 keys: 1.5 GiB live heap, 75 MiB with the
//! collector run after each batch; the daemon's workload (2 M events under heaptrack): 210 MiB
//! still unfreed at exit, 23 MiB with it (BENCHMARKS.md, "Memory"). So the store's batches of
//! many keys go through [`apply_batch`], which runs the collector in proportion to them; one-key
//! writes pin once per key and need no help.
//!
//! The collector is crossbeam-epoch's default one, shared with sled because cargo unifies the
//! `0.9` requirement of both crates into one crate instance.

/// Keys per collector run: a run frees up to 512 retired objects, and a key written or a page
/// read into the cache retires a page version or two (more when a leaf splits or pages are
/// evicted); one run per 8 keys leaves a wide margin, and a run with nothing to free is cheap.
const KEYS_PER_RUN: usize = 8;

/// Runs however few the keys: garbage is freed two epochs after it was retired, and each run
/// advances the epoch at most once.
const MIN_RUNS: usize = 2;

/// `tree.apply_batch(batch)`, then the epoch collector, run for the `keys` the batch wrote and
/// read: it moves this thread's retired objects to the global queue, advances the epoch when
/// every pinned thread allows it, and frees what expired.
pub(crate) fn apply_batch(tree: &sled::Tree, batch: sled::Batch, keys: usize) -> sled::Result<()> {
    let applied = tree.apply_batch(batch);
    for _ in 0..keys / KEYS_PER_RUN + MIN_RUNS {
        crossbeam_epoch::pin().flush();
    }
    applied
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The runs only help if sled's collector is the one this crate runs: a second
    /// crossbeam-epoch version in the build would make them free nothing, silently.
    #[test]
    fn sled_and_the_store_share_one_crossbeam_epoch() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap();
        assert_eq!(lock.matches("name = \"crossbeam-epoch\"").count(), 1);
    }
}
